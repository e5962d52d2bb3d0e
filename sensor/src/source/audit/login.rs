//! What an audit event means: logins, authentications, sessions, su and
//! sudo, account changes, changes to the audit configuration (tamper), or
//! a record passed through as is. Pure: the pipeline adds the process tree
//! and names.
//!
//! Actions follow Auditbeat's ontology (in snake case) so that SIEM users
//! meet names they know; ECS categories and types as ECS defines them.

use std::net::IpAddr;

use super::coalesce::AuditEvent;
use super::record::Record;
use super::tamper::OwnChanges;
use super::types;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalized {
    pub kind: &'static str,
    pub action: &'static str,
    pub category: &'static [&'static str],
    pub type_: &'static [&'static str],
    pub outcome: Option<&'static str>,
    /// The process that sent or caused the record.
    pub pid: Option<u32>,
    /// Its ids as the record gives them.
    pub uid: Option<u32>,
    pub euid: Option<u32>,
    pub auid: Option<u32>,
    pub session_id: Option<u32>,
    /// The user the event is about (who logged in, who was added).
    pub user_name: Option<Vec<u8>>,
    pub user_id: Option<u32>,
    pub source_ip: Option<IpAddr>,
    pub hostname: Option<Vec<u8>>,
    pub terminal: Option<Vec<u8>>,
    /// `sshd`, `login`, `su`, `sudo`: the program that reported it.
    pub service: Option<Vec<u8>>,
    /// What was done, as the reporter named it (`PAM:authentication`).
    pub method: Option<Vec<u8>>,
    /// sudo's command.
    pub command: Option<Vec<u8>>,
    /// A change to audit rules or state that the sensor did not make.
    pub tamper: bool,
    /// EXECVE's arguments, reassembled (hex decoded, chunks joined, across
    /// records).
    pub args: Option<Vec<Vec<u8>>>,
}

struct Kind {
    action: &'static str,
    category: &'static [&'static str],
    type_: &'static [&'static str],
}

const AUTH: &[&str] = &["authentication"];
const SESSION: &[&str] = &["session"];
const AUTH_SESSION: &[&str] = &["authentication", "session"];
const IAM: &[&str] = &["iam"];
const CONFIGURATION: &[&str] = &["configuration"];
const PROCESS: &[&str] = &["process"];
const INTRUSION: &[&str] = &["intrusion_detection"];
const HOST: &[&str] = &["host"];
const INFO: &[&str] = &["info"];
const START: &[&str] = &["start"];
const END: &[&str] = &["end"];
const CHANGE: &[&str] = &["change"];
const USER_CREATION: &[&str] = &["user", "creation"];
const USER_DELETION: &[&str] = &["user", "deletion"];
const USER_CHANGE: &[&str] = &["user", "change"];
const GROUP_CREATION: &[&str] = &["group", "creation"];
const GROUP_DELETION: &[&str] = &["group", "deletion"];
const GROUP_CHANGE: &[&str] = &["group", "change"];

fn kind_of(t: u16) -> Option<Kind> {
    let k = |action, category, type_| {
        Some(Kind {
            action,
            category,
            type_,
        })
    };
    match t {
        1100 => k("authenticated", AUTH, INFO),
        1101 => k("authorized", AUTH, INFO),
        1102 => k("modified_user_account", IAM, USER_CHANGE),
        1103 => k("credentials_acquired", AUTH, INFO),
        1104 => k("credentials_disposed", AUTH, INFO),
        1105 => k("session_started", SESSION, START),
        1106 => k("session_ended", SESSION, END),
        1108 => k("changed_password", IAM, USER_CHANGE),
        1110 => k("credentials_refreshed", AUTH, INFO),
        1112 => k("logged_in", AUTH_SESSION, START),
        1113 => k("logged_out", AUTH_SESSION, END),
        1114 => k("added_user_account", IAM, USER_CREATION),
        1115 => k("deleted_user_account", IAM, USER_DELETION),
        1116 => k("added_group_account", IAM, GROUP_CREATION),
        1117 => k("deleted_group_account", IAM, GROUP_DELETION),
        1123 => k("ran_command", PROCESS, START),
        1125 => k("changed_user_id", IAM, USER_CHANGE),
        1119 => k("changed_group_id", IAM, GROUP_CHANGE),
        1126 => k("authenticated_to_group", AUTH, INFO),
        1132 => k("modified_group_account", IAM, GROUP_CHANGE),
        1133 => k("changed_group_password", IAM, GROUP_CHANGE),
        1135 => k("locked_account", IAM, USER_CHANGE),
        1136 => k("unlocked_account", IAM, USER_CHANGE),
        1006 => k("changed_login_id", AUTH_SESSION, START),
        1305 => k("audit_config_changed", CONFIGURATION, CHANGE),
        1111 => k("audit_config_changed", CONFIGURATION, CHANGE),
        1200..=1209 => Some(Kind {
            action: types::name(t).unwrap_or("daemon"),
            category: CONFIGURATION,
            type_: INFO,
        }),
        1700..=1799 | 2100..=2199 => Some(Kind {
            action: types::name(t).unwrap_or("anomaly"),
            category: INTRUSION,
            type_: INFO,
        }),
        _ => None,
    }
}

/// The record that says what the event is: the first one with a meaning,
/// else SYSCALL, else the first.
fn primary(ev: &AuditEvent) -> Option<&Record> {
    ev.records
        .iter()
        .find(|r| kind_of(r.kind).is_some())
        .or_else(|| ev.records.iter().find(|r| r.kind == types::SYSCALL))
        .or_else(|| ev.records.first())
}

fn id(r: &Record, key: &str) -> Option<u32> {
    r.known(key)
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|s| s.parse().ok())
}

fn outcome(r: &Record) -> Option<&'static str> {
    match r.get("res").or_else(|| r.get("success"))? {
        b"success" | b"yes" | b"1" => Some("success"),
        b"failed" | b"fail" | b"no" | b"0" => Some("failure"),
        _ => Some("unknown"),
    }
}

fn basename(path: &[u8]) -> Vec<u8> {
    path.rsplit(|&b| b == b'/').next().unwrap_or(path).to_vec()
}

/// `own_pid` and `own` say which audit changes are the sensor's own (not
/// tamper); see [`OwnChanges`].
pub fn normalize(ev: &AuditEvent, own_pid: u32, own: &mut OwnChanges, now_ms: u64) -> Normalized {
    let Some(p) = primary(ev) else {
        return Normalized::passthrough(0);
    };
    let syscall = ev.records.iter().find(|r| r.kind == types::SYSCALL);
    let pid = id(p, "pid").or_else(|| syscall.and_then(|s| id(s, "pid")));
    let ids_from = if p.get("uid").is_some() {
        p
    } else {
        syscall.unwrap_or(p)
    };
    let mut n = match kind_of(p.kind) {
        Some(k) => Normalized {
            kind: "event",
            action: k.action,
            category: k.category,
            type_: k.type_,
            ..Normalized::passthrough(p.kind)
        },
        None => Normalized::passthrough(p.kind),
    };
    n.pid = pid;
    n.uid = id(ids_from, "uid");
    n.euid = id(ids_from, "euid");
    n.auid = id(ids_from, "auid");
    n.session_id = id(ids_from, "ses");
    n.outcome = outcome(p).or_else(|| syscall.and_then(outcome));
    n.source_ip = p
        .known("addr")
        .and_then(|a| std::str::from_utf8(a).ok())
        .and_then(|a| a.parse::<IpAddr>().ok())
        .map(unmap_v4);
    n.hostname = p
        .known("hostname")
        .filter(|h| Some(*h) != p.get("addr"))
        .map(<[u8]>::to_vec);
    n.terminal = p
        .known("terminal")
        .or_else(|| p.known("tty"))
        .map(<[u8]>::to_vec);
    n.service = p
        .known("exe")
        .or_else(|| syscall.and_then(|s| s.known("exe")))
        .map(basename);
    n.method = p.known("op").map(<[u8]>::to_vec);
    match p.kind {
        // sudo: the command, run by the user in uid.
        1123 => {
            n.command = p.known("cmd").map(<[u8]>::to_vec);
            n.user_id = n.uid;
        }
        // pam_loginuid: the new login uid.
        1006 => {
            n.user_id = id(p, "auid");
            n.outcome = outcome(p);
        }
        // Account management: the account changed.
        1102 | 1114..=1117 | 1108 | 1125 | 1119 | 1132 | 1133 | 1135 | 1136 => {
            n.user_name = p
                .known("acct")
                .or_else(|| p.known("grp"))
                .map(<[u8]>::to_vec);
            n.user_id = id(p, "id");
        }
        1305 | 1111 => {
            let claimed = own.claims(p, now_ms);
            n.tamper = match pid {
                Some(pid) => pid != own_pid,
                None => !claimed,
            };
            if n.tamper {
                n.kind = "alert";
            }
        }
        _ if kind_of(p.kind).is_some() => {
            n.user_name = p.known("acct").map(<[u8]>::to_vec);
            n.user_id = id(p, "id");
        }
        _ => {}
    }
    n.args = execve_args(ev);
    if n.args.is_some() && p.kind == types::SYSCALL {
        // A program started under an audit rule (`-S execve`).
        n.action = "executed";
        n.category = PROCESS;
        n.type_ = START;
    }
    if p.kind / 100 == 17 || p.kind / 100 == 21 {
        n.kind = "alert";
    }
    n
}

/// Arguments beyond this many are not reassembled (the records stay).
const MAX_ARGS: usize = 4096;

/// The argv of an EXECVE event: `argc` arguments, each either `aN` or the
/// chunks `aN[0]`, `aN[1]`… that the kernel writes for long ones, possibly
/// spread over several EXECVE records. A missing argument is empty.
pub fn execve_args(ev: &AuditEvent) -> Option<Vec<Vec<u8>>> {
    let execve: Vec<&Record> = ev.records.iter().filter(|r| r.kind == 1309).collect();
    let argc = execve.iter().find_map(|r| r.num("argc"))? as usize;
    let mut whole: std::collections::HashMap<&[u8], &[u8]> = std::collections::HashMap::new();
    let mut chunks: std::collections::HashMap<&[u8], Vec<(usize, &[u8])>> =
        std::collections::HashMap::new();
    for f in execve.iter().flat_map(|r| r.fields.iter()) {
        let key = f.key.as_slice();
        match key.iter().position(|&b| b == b'[') {
            Some(open) if key.ends_with(b"]") => {
                let idx = std::str::from_utf8(&key[open + 1..key.len() - 1])
                    .ok()
                    .and_then(|s| s.parse().ok());
                if let Some(idx) = idx {
                    chunks
                        .entry(&key[..open])
                        .or_default()
                        .push((idx, &f.value));
                }
            }
            _ => {
                whole.insert(key, &f.value);
            }
        }
    }
    let mut args = Vec::with_capacity(argc.min(MAX_ARGS));
    for i in 0..argc.min(MAX_ARGS) {
        let name = format!("a{i}");
        if let Some(v) = whole.get(name.as_bytes()) {
            args.push(v.to_vec());
        } else if let Some(c) = chunks.get_mut(name.as_bytes()) {
            c.sort_by_key(|(idx, _)| *idx);
            args.push(c.iter().flat_map(|(_, v)| v.iter().copied()).collect());
        } else {
            args.push(Vec::new());
        }
    }
    Some(args)
}

/// `::ffff:1.2.3.4` is how sshd on a dual-stack socket sees an IPv4 peer.
fn unmap_v4(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl Normalized {
    /// A record with no meaning of its own: its type names the action.
    fn passthrough(kind: u16) -> Normalized {
        Normalized {
            kind: "event",
            action: types::name(kind).unwrap_or("unknown"),
            category: HOST,
            type_: INFO,
            outcome: None,
            pid: None,
            uid: None,
            euid: None,
            auid: None,
            session_id: None,
            user_name: None,
            user_id: None,
            source_ip: None,
            hostname: None,
            terminal: None,
            service: None,
            method: None,
            command: None,
            tamper: false,
            args: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::audit::record::parse_log_line;

    fn event(lines: &[&str]) -> AuditEvent {
        let records: Vec<Record> = lines
            .iter()
            .map(|l| parse_log_line(l.as_bytes()).expect("fixture parses"))
            .collect();
        AuditEvent {
            stamp: records[0].stamp,
            records,
            records_dropped: 0,
        }
    }

    #[test]
    fn sshd_password_failure() {
        let n = normalize(
            &event(&[
                "type=USER_AUTH msg=audit(1700000000.1:10): pid=900 uid=0 auid=4294967295 ses=4294967295 msg='op=PAM:authentication grantors=? acct=\"alice\" exe=\"/usr/sbin/sshd\" hostname=::ffff:127.0.0.1 addr=::ffff:127.0.0.1 terminal=ssh res=failed'",
            ]),
            1,
            &mut OwnChanges::default(),
            0,
        );
        assert_eq!(
            (n.action, n.category, n.outcome),
            ("authenticated", AUTH, Some("failure"))
        );
        assert_eq!(n.user_name.as_deref(), Some(&b"alice"[..]));
        assert_eq!(n.source_ip, Some("127.0.0.1".parse().expect("ip")));
        assert_eq!(n.hostname, None, "hostname equal to addr is not repeated");
        assert_eq!(n.service.as_deref(), Some(&b"sshd"[..]));
        assert_eq!(n.terminal.as_deref(), Some(&b"ssh"[..]));
        assert_eq!(n.pid, Some(900));
        assert_eq!(n.session_id, None);
        assert_eq!(n.auid, None);
    }

    #[test]
    fn session_start_carries_the_session() {
        let n = normalize(
            &event(&[
                "type=USER_START msg=audit(1700000000.1:11): pid=900 uid=0 auid=1001 ses=7 msg='op=PAM:session_open grantors=pam_unix acct=\"alice\" exe=\"/usr/sbin/sshd\" hostname=127.0.0.1 addr=127.0.0.1 terminal=ssh res=success'",
            ]),
            1,
            &mut OwnChanges::default(),
            0,
        );
        assert_eq!(
            (n.action, n.category, n.type_, n.outcome),
            ("session_started", SESSION, START, Some("success"))
        );
        assert_eq!((n.session_id, n.auid), (Some(7), Some(1001)));
    }

    #[test]
    fn sudo_command_and_login_uid() {
        let n = normalize(
            &event(&[
                "type=USER_CMD msg=audit(1.0:12): pid=5 uid=1000 auid=1000 ses=2 msg='cwd=\"/home/a\" cmd=6C73202D6C terminal=pts/0 res=success'",
            ]),
            1,
            &mut OwnChanges::default(),
            0,
        );
        assert_eq!(n.action, "ran_command");
        assert_eq!(n.command.as_deref(), Some(&b"ls -l"[..]));
        assert_eq!(n.user_id, Some(1000));
        let n = normalize(
            &event(&[
                "type=LOGIN msg=audit(1.0:13): pid=6 uid=0 subj=unconfined old-auid=4294967295 auid=1000 tty=(none) old-ses=4294967295 ses=3 res=1",
                "type=SYSCALL msg=audit(1.0:13): arch=c000003e syscall=1 success=yes exit=4 pid=6 uid=0 auid=1000 ses=3 comm=\"sshd\" exe=\"/usr/sbin/sshd\"",
            ]),
            1,
            &mut OwnChanges::default(),
            0,
        );
        assert_eq!(
            (n.action, n.user_id, n.outcome),
            ("changed_login_id", Some(1000), Some("success"))
        );
        assert_eq!(n.service.as_deref(), Some(&b"sshd"[..]));
    }

    #[test]
    fn config_changes_by_others_are_tamper() {
        let line =
            "type=CONFIG_CHANGE msg=audit(1.0:14): op=set audit_enabled=0 old=1 auid=0 ses=1 res=1";
        let sys = "type=SYSCALL msg=audit(1.0:14): arch=c000003e syscall=44 success=yes exit=60 pid=4242 uid=0 auid=0 ses=1 comm=\"auditctl\" exe=\"/usr/sbin/auditctl\"";
        let other = normalize(&event(&[line, sys]), 1, &mut OwnChanges::default(), 0);
        assert!(other.tamper);
        assert_eq!(
            (other.kind, other.action, other.pid),
            ("alert", "audit_config_changed", Some(4242))
        );
        let own = normalize(&event(&[line, sys]), 4242, &mut OwnChanges::default(), 0);
        assert!(!own.tamper);
        // No SYSCALL record (the task had no audit context): the ledger decides.
        let mut ledger = OwnChanges::default();
        ledger.expect_set("audit_enabled", 0, 0);
        let own = normalize(&event(&[line]), 4242, &mut ledger, 0);
        assert!(!own.tamper);
        let other = normalize(&event(&[line]), 4242, &mut ledger, 0);
        assert!(other.tamper);
        let own = normalize(&event(&[line, sys]), 4242, &mut OwnChanges::default(), 0);
        assert!(!own.tamper);
        assert_eq!(own.kind, "event");
    }

    #[test]
    fn unknown_records_pass_through() {
        let n = normalize(
            &event(&["type=UNKNOWN[1999] msg=audit(1.0:15): pid=3 foo=bar"]),
            1,
            &mut OwnChanges::default(),
            0,
        );
        assert_eq!((n.action, n.category, n.pid), ("unknown", HOST, Some(3)));
        let n = normalize(
            &event(&[
                "type=ANOM_PROMISCUOUS msg=audit(1.0:16): dev=eth0 prom=256 old_prom=0 auid=0 uid=0 gid=0 ses=1",
            ]),
            1,
            &mut OwnChanges::default(),
            0,
        );
        assert_eq!(
            (n.kind, n.action, n.category),
            ("alert", "anom_promiscuous", INTRUSION)
        );
    }
}
