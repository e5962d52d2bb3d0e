//! Logins from utmp/wtmp/btmp: the fallback when the kernel audit
//! subsystem is not available, and a cross-check beside it. login, sshd
//! and su write these files themselves; `wtmp` gets logins and logouts of
//! terminal sessions, `btmp` failed logins.

pub mod utmp;
pub mod watch;

use std::collections::HashMap;
use std::net::IpAddr;

use crate::source::audit::login::Normalized;
use utmp::{DEAD_PROCESS, USER_PROCESS, Utmp};
use watch::{Followed, Kind};

/// Terminals whose login is remembered until its logout, at most.
const MAX_OPEN: usize = 4096;

pub struct LoginsSource {
    files: Vec<Followed>,
    /// Open sessions by terminal line: a DEAD_PROCESS record has no user.
    open: HashMap<Vec<u8>, Vec<u8>>,
}

impl LoginsSource {
    pub fn new(files: Vec<Followed>) -> LoginsSource {
        LoginsSource {
            files,
            open: HashMap::new(),
        }
    }

    /// New login records, with what they mean, and their time (sec, usec).
    pub fn poll(&mut self) -> Vec<(Normalized, u32, u32)> {
        let mut out = Vec::new();
        for i in 0..self.files.len() {
            let kind = self.files[i].kind;
            for u in self.files[i].read_new() {
                if let Some(n) = self.normalize(kind, &u) {
                    out.push((n, u.sec, u.usec));
                }
            }
        }
        out
    }

    fn normalize(&mut self, kind: Kind, u: &Utmp) -> Option<Normalized> {
        let (action, category, type_, outcome, user): (
            _,
            &'static [&'static str],
            &'static [&'static str],
            _,
            _,
        ) = match (kind, u.kind) {
            (Kind::Btmp, _) => (
                "authenticated",
                &["authentication"],
                &["info"],
                "failure",
                u.user.clone(),
            ),
            (Kind::Wtmp, USER_PROCESS) => {
                if self.open.len() >= MAX_OPEN {
                    self.open.clear();
                }
                self.open.insert(u.line.clone(), u.user.clone());
                (
                    "logged_in",
                    &["authentication", "session"],
                    &["start"],
                    "success",
                    u.user.clone(),
                )
            }
            (Kind::Wtmp, DEAD_PROCESS) => {
                let user = self.open.remove(&u.line).unwrap_or_default();
                (
                    "logged_out",
                    &["authentication", "session"],
                    &["end"],
                    "success",
                    user,
                )
            }
            _ => return None,
        };
        let host = (!u.host.is_empty()).then(|| u.host.clone());
        let ip = u.addr.or_else(|| {
            std::str::from_utf8(&u.host)
                .ok()
                .and_then(|h| h.parse::<IpAddr>().ok())
        });
        Some(Normalized {
            kind: "event",
            action,
            category,
            type_,
            outcome: Some(outcome),
            pid: (u.pid != 0).then_some(u.pid),
            uid: None,
            euid: None,
            auid: None,
            session_id: (u.session > 0).then_some(u.session as u32),
            user_name: (!user.is_empty()).then_some(user),
            user_id: None,
            source_ip: ip,
            hostname: host
                .filter(|h| ip.is_none_or(|ip| ip.to_string().as_bytes() != h.as_slice())),
            terminal: (!u.line.is_empty()).then(|| u.line.clone()),
            service: None,
            method: None,
            command: None,
            tamper: false,
            args: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(kind: i16, line: &str, user: &str, host: &str) -> Utmp {
        Utmp {
            kind,
            pid: 10,
            line: line.into(),
            user: user.into(),
            host: host.into(),
            session: 0,
            sec: 1,
            usec: 0,
            addr: None,
        }
    }

    #[test]
    fn logins_logouts_and_failures() {
        let mut s = LoginsSource::new(Vec::new());
        let n = s
            .normalize(Kind::Wtmp, &u(USER_PROCESS, "pts/1", "alice", "127.0.0.1"))
            .expect("login");
        assert_eq!((n.action, n.outcome), ("logged_in", Some("success")));
        assert_eq!(n.source_ip, Some("127.0.0.1".parse().expect("ip")));
        assert_eq!(n.hostname, None);
        let n = s
            .normalize(Kind::Wtmp, &u(DEAD_PROCESS, "pts/1", "", ""))
            .expect("logout");
        assert_eq!(
            (n.action, n.user_name.as_deref()),
            ("logged_out", Some(&b"alice"[..]))
        );
        let n = s
            .normalize(Kind::Btmp, &u(6, "ssh:notty", "mallory", "evil.example"))
            .expect("failure");
        assert_eq!((n.action, n.outcome), ("authenticated", Some("failure")));
        assert_eq!(n.hostname.as_deref(), Some(&b"evil.example"[..]));
        assert!(s.normalize(Kind::Wtmp, &u(2, "~", "reboot", "")).is_none());
    }
}
