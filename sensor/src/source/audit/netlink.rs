//! The NETLINK_AUDIT wire protocol: requests (status get/set, rules) and
//! the reading of audit records.
//!
//! Hand-written rather than `netlink-packet-audit`: that crate's status
//! message stops at `backlog_wait_time` (no `backlog_wait_time_actual`),
//! its records are `String`s (audit values are untrusted bytes that must be
//! kept byte-exact) and it does not know the kernel's unicast length quirk
//! (below). The messages themselves are a handful of `u32` arrays from
//! include/uapi/linux/audit.h; `netlink-sys` does the socket.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, RawFd};

use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_AUDIT};

pub const NLMSG_HDRLEN: usize = 16;
pub const NLMSG_NOOP: u16 = 1;
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;

pub const AUDIT_GET: u16 = 1000;
pub const AUDIT_SET: u16 = 1001;
pub const AUDIT_SIGNAL_INFO: u16 = 1010;
pub const AUDIT_ADD_RULE: u16 = 1011;
pub const AUDIT_DEL_RULE: u16 = 1012;
pub const AUDIT_LIST_RULES: u16 = 1013;
pub const AUDIT_GET_FEATURE: u16 = 1019;

/// Multicast group of read-only log listeners (beside auditd).
pub const AUDIT_NLGRP_READLOG: u32 = 1;

pub const STATUS_ENABLED: u32 = 0x01;
pub const STATUS_FAILURE: u32 = 0x02;
pub const STATUS_PID: u32 = 0x04;
pub const STATUS_RATE_LIMIT: u32 = 0x08;
pub const STATUS_BACKLOG_LIMIT: u32 = 0x10;
pub const STATUS_BACKLOG_WAIT_TIME: u32 = 0x20;

/// Largest datagram we accept. The kernel caps a record at
/// MAX_AUDIT_MESSAGE_LENGTH (8970) and a rule reply at one page.
const RECV_BUF: usize = 64 * 1024;

/// `struct audit_status`. Older kernels send a shorter struct; missing
/// trailing fields read as 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Status {
    pub mask: u32,
    pub enabled: u32,
    pub failure: u32,
    /// pid of the registered audit daemon, 0 if none.
    pub pid: u32,
    pub rate_limit: u32,
    pub backlog_limit: u32,
    pub lost: u32,
    pub backlog: u32,
    pub feature_bitmap: u32,
    /// In jiffies; 0: a task never waits when the backlog is full.
    pub backlog_wait_time: u32,
    pub backlog_wait_time_actual: u32,
}

impl Status {
    const LEN: usize = 44;

    pub fn parse(b: &[u8]) -> Option<Status> {
        if b.len() < 32 {
            return None;
        }
        let f = |i: usize| {
            b.get(i * 4..i * 4 + 4)
                .map_or(0, |s| u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
        };
        Some(Status {
            mask: f(0),
            enabled: f(1),
            failure: f(2),
            pid: f(3),
            rate_limit: f(4),
            backlog_limit: f(5),
            lost: f(6),
            backlog: f(7),
            feature_bitmap: f(8),
            backlog_wait_time: f(9),
            backlog_wait_time_actual: f(10),
        })
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let Status {
            mask,
            enabled,
            failure,
            pid,
            rate_limit,
            backlog_limit,
            lost,
            backlog,
            feature_bitmap,
            backlog_wait_time,
            backlog_wait_time_actual,
        } = *self;
        let mut v = Vec::with_capacity(Self::LEN);
        for x in [
            mask,
            enabled,
            failure,
            pid,
            rate_limit,
            backlog_limit,
            lost,
            backlog,
            feature_bitmap,
            backlog_wait_time,
            backlog_wait_time_actual,
        ] {
            v.extend_from_slice(&x.to_ne_bytes());
        }
        v
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("cannot open a NETLINK_AUDIT socket: {0} (kernel without CONFIG_AUDIT?)")]
    Socket(#[source] io::Error),
    #[error("audit netlink {what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("the kernel refused {what}: {source}")]
    Refused {
        what: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("no reply to {0} from the kernel")]
    NoReply(&'static str),
    #[error("malformed reply to {0}")]
    Malformed(&'static str),
}

impl NetlinkError {
    /// The errno the kernel answered with, if it refused.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NetlinkError::Refused { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

/// One netlink message out of a datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub kind: u16,
    pub seq: u32,
    pub body: Vec<u8>,
}

/// Whether `kind` is an audit record (as opposed to a reply to a request).
/// Records include the kernel's 1005 (USER) and 1006 (LOGIN), below the
/// user-message range.
pub fn is_record(kind: u16) -> bool {
    !matches!(
        kind,
        NLMSG_NOOP
            | NLMSG_ERROR
            | NLMSG_DONE
            | AUDIT_GET
            | AUDIT_SIGNAL_INFO
            | AUDIT_LIST_RULES
            | AUDIT_GET_FEATURE
    ) && kind >= 1000
}

/// Splits a datagram into messages. Records are one per datagram and take
/// the whole rest of it: the kernel's unicast path sets `nlmsg_len` to the
/// payload length only (a quirk auditd depends on, see kernel/audit.c
/// `kauditd_send_multicast_skb`), while the multicast path sets it right.
/// Trailing NULs and newlines of a record are dropped.
pub fn split_datagram(mut d: &[u8]) -> Vec<Message> {
    let mut out = Vec::new();
    while d.len() >= NLMSG_HDRLEN {
        let len = u32::from_ne_bytes([d[0], d[1], d[2], d[3]]) as usize;
        let kind = u16::from_ne_bytes([d[4], d[5]]);
        let seq = u32::from_ne_bytes([d[8], d[9], d[10], d[11]]);
        if is_record(kind) {
            let mut body = &d[NLMSG_HDRLEN..];
            while let [rest @ .., 0 | b'\n'] = body {
                body = rest;
            }
            out.push(Message {
                kind,
                seq,
                body: body.to_vec(),
            });
            break;
        }
        let end = if (NLMSG_HDRLEN..=d.len()).contains(&len) {
            len
        } else {
            d.len()
        };
        out.push(Message {
            kind,
            seq,
            body: d[NLMSG_HDRLEN..end].to_vec(),
        });
        let next = (end + 3) & !3;
        if next >= d.len() {
            break;
        }
        d = &d[next..];
    }
    out
}

pub fn encode(kind: u16, flags: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
    let len = NLMSG_HDRLEN + payload.len();
    let mut m = Vec::with_capacity((len + 3) & !3);
    m.extend_from_slice(&(len as u32).to_ne_bytes());
    m.extend_from_slice(&kind.to_ne_bytes());
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it in
    m.extend_from_slice(payload);
    while m.len() % 4 != 0 {
        m.push(0);
    }
    m
}

/// A NETLINK_AUDIT socket. Requests are synchronous (the socket blocks with
/// a receive timeout until the reply); records that arrive meanwhile (on
/// the socket registered as the audit daemon) are kept for [`Self::read`].
pub struct AuditSocket {
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
    stash: VecDeque<Message>,
}

impl AuditSocket {
    /// A socket for requests, or for records once registered as the daemon.
    pub fn open() -> Result<AuditSocket, NetlinkError> {
        let mut socket = Socket::new(NETLINK_AUDIT).map_err(NetlinkError::Socket)?;
        socket.bind_auto().map_err(NetlinkError::Socket)?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(NetlinkError::Socket)?;
        let s = AuditSocket {
            socket,
            seq: 0,
            buf: Vec::with_capacity(RECV_BUF),
            stash: VecDeque::new(),
        };
        s.set_recv_timeout(5)?;
        Ok(s)
    }

    /// A read-only listener on the multicast log group, beside auditd.
    pub fn open_readlog() -> Result<AuditSocket, NetlinkError> {
        let mut socket = Socket::new(NETLINK_AUDIT).map_err(NetlinkError::Socket)?;
        socket
            .bind(&SocketAddr::new(0, 1 << (AUDIT_NLGRP_READLOG - 1)))
            .map_err(NetlinkError::Socket)?;
        Ok(AuditSocket {
            socket,
            seq: 0,
            buf: Vec::with_capacity(RECV_BUF),
            stash: VecDeque::new(),
        })
    }

    fn set_recv_timeout(&self, secs: i64) -> Result<(), NetlinkError> {
        let tv = libc::timeval {
            tv_sec: secs,
            tv_usec: 0,
        };
        // SAFETY: the fd is a live socket; tv is a valid timeval of the given size.
        let r = unsafe {
            libc::setsockopt(
                self.socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(NetlinkError::Io {
                what: "SO_RCVTIMEO",
                source: io::Error::last_os_error(),
            });
        }
        Ok(())
    }

    /// Raises the receive buffer so that a burst of records waits in the
    /// socket rather than being dropped (ENOBUFS). Best effort.
    pub fn grow_receive_buffer(&self, bytes: usize) {
        let v = bytes as libc::c_int;
        // SAFETY: the fd is a live socket; v is a c_int of the given size.
        unsafe {
            libc::setsockopt(
                self.socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&v as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }

    pub fn set_nonblocking(&self) -> io::Result<()> {
        self.socket.set_non_blocking(true)
    }

    pub fn raw_fd(&self) -> i32 {
        self.socket.as_raw_fd()
    }

    fn send(
        &mut self,
        kind: u16,
        flags: u16,
        payload: &[u8],
        what: &'static str,
    ) -> Result<u32, NetlinkError> {
        self.seq = self.seq.wrapping_add(1).max(1);
        let msg = encode(kind, NLM_F_REQUEST | flags, self.seq, payload);
        self.socket
            .send(&msg, 0)
            .map_err(|source| NetlinkError::Io { what, source })?;
        Ok(self.seq)
    }

    /// One datagram, split. Blocking or not depending on the socket.
    fn recv(&mut self) -> io::Result<Vec<Message>> {
        self.buf.clear();
        let n = self.socket.recv(&mut self.buf, 0)?;
        Ok(split_datagram(&self.buf[..n.min(self.buf.len())]))
    }

    /// Messages answering `seq`, up to and including the final one (an
    /// ACK/error, NLMSG_DONE, or the single reply of kind `single`).
    fn replies(
        &mut self,
        seq: u32,
        single: Option<u16>,
        what: &'static str,
    ) -> Result<Vec<Message>, NetlinkError> {
        let mut out = Vec::new();
        loop {
            let msgs = match self.recv() {
                Ok(m) => m,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(NetlinkError::NoReply(what));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => return Err(NetlinkError::Io { what, source }),
            };
            for m in msgs {
                if is_record(m.kind) {
                    self.stash.push_back(m);
                    continue;
                }
                if m.seq != seq {
                    continue; // a late answer to an earlier request
                }
                if m.kind == NLMSG_ERROR {
                    let errno = m
                        .body
                        .get(0..4)
                        .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
                    return match errno {
                        Some(0) => Ok(out),
                        Some(e) => Err(NetlinkError::Refused {
                            what,
                            source: io::Error::from_raw_os_error(-e),
                        }),
                        None => Err(NetlinkError::Malformed(what)),
                    };
                }
                if m.kind == NLMSG_DONE {
                    return Ok(out);
                }
                let last = Some(m.kind) == single;
                out.push(m);
                if last {
                    return Ok(out);
                }
            }
        }
    }

    pub fn status(&mut self) -> Result<Status, NetlinkError> {
        let seq = self.send(AUDIT_GET, 0, &[], "AUDIT_GET")?;
        let replies = self.replies(seq, Some(AUDIT_GET), "AUDIT_GET")?;
        replies
            .first()
            .and_then(|m| Status::parse(&m.body))
            .ok_or(NetlinkError::Malformed("AUDIT_GET"))
    }

    /// AUDIT_SET of the fields in `s.mask`, acknowledged.
    pub fn set(&mut self, s: &Status) -> Result<(), NetlinkError> {
        let seq = self.send(AUDIT_SET, NLM_F_ACK, &s.to_bytes(), "AUDIT_SET")?;
        self.replies(seq, None, "AUDIT_SET").map(|_| ())
    }

    /// Every rule loaded in the kernel, as `struct audit_rule_data` bytes.
    pub fn list_rules(&mut self) -> Result<Vec<Vec<u8>>, NetlinkError> {
        let seq = self.send(AUDIT_LIST_RULES, 0, &[], "AUDIT_LIST_RULES")?;
        Ok(self
            .replies(seq, None, "AUDIT_LIST_RULES")?
            .into_iter()
            .map(|m| m.body)
            .collect())
    }

    pub fn add_rule(&mut self, rule: &[u8]) -> Result<(), NetlinkError> {
        let seq = self.send(AUDIT_ADD_RULE, NLM_F_ACK, rule, "AUDIT_ADD_RULE")?;
        self.replies(seq, None, "AUDIT_ADD_RULE").map(|_| ())
    }

    pub fn del_rule(&mut self, rule: &[u8]) -> Result<(), NetlinkError> {
        let seq = self.send(AUDIT_DEL_RULE, NLM_F_ACK, rule, "AUDIT_DEL_RULE")?;
        self.replies(seq, None, "AUDIT_DEL_RULE").map(|_| ())
    }

    /// Records that are ready now (non-blocking socket), stashed ones
    /// first, read until the socket is empty (the readiness is edge
    /// triggered). Returns how many times the socket had overflowed
    /// (ENOBUFS: the kernel dropped records for it).
    pub fn read(&mut self, out: &mut Vec<Message>) -> io::Result<u64> {
        out.extend(self.stash.drain(..));
        let mut overflows = 0;
        loop {
            match self.recv() {
                Ok(msgs) => out.extend(msgs.into_iter().filter(|m| is_record(m.kind))),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(overflows),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // Reported once, then reading goes on: what is queued is good.
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) && overflows < 1_000 => {
                    overflows += 1
                }
                Err(e) => return Err(e),
            }
        }
    }

    pub fn has_stashed(&self) -> bool {
        !self.stash.is_empty()
    }
}

impl AsRawFd for AuditSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_round_trips_and_short_structs_parse() {
        let s = Status {
            mask: 5,
            enabled: 1,
            pid: 42,
            backlog_limit: 8192,
            backlog_wait_time: 0,
            ..Status::default()
        };
        assert_eq!(Status::parse(&s.to_bytes()), Some(s));
        // A 4.x kernel sends 40 bytes, a 3.x one 36.
        let short = Status::parse(&s.to_bytes()[..36]).expect("short status parses");
        assert_eq!(short.pid, 42);
        assert_eq!(Status::parse(&[0; 20]), None);
    }

    #[test]
    fn unicast_records_take_the_whole_datagram_despite_their_length_field() {
        let body = b"audit(1.002:3): op=x\0";
        let mut d = encode(1100, 0, 0, body);
        // The unicast quirk: nlmsg_len is the payload length only.
        d[0..4].copy_from_slice(&(body.len() as u32).to_ne_bytes());
        let m = split_datagram(&d);
        assert_eq!(
            m,
            vec![Message {
                kind: 1100,
                seq: 0,
                body: b"audit(1.002:3): op=x".to_vec()
            }]
        );
    }

    #[test]
    fn several_replies_in_one_datagram_are_split() {
        let mut d = encode(AUDIT_LIST_RULES, 0, 7, &[1, 2, 3, 4, 5]);
        d.extend(encode(NLMSG_DONE, 0, 7, &[0, 0, 0, 0]));
        let m = split_datagram(&d);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].body, vec![1, 2, 3, 4, 5]);
        assert_eq!(m[1].kind, NLMSG_DONE);
        // Garbage never panics.
        for n in 0..d.len() {
            let _ = split_datagram(&d[..n]);
        }
    }

    #[test]
    fn the_real_kernel_answers_status_and_rule_listing() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: NETLINK_AUDIT requests need root");
            return;
        }
        let mut s = AuditSocket::open().expect("open");
        let st = s.status().expect("AUDIT_GET");
        assert!(st.backlog_limit > 0, "{st:?}");
        s.list_rules().expect("AUDIT_LIST_RULES");
    }
}
