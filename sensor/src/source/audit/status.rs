//! AUDIT_GET: the kernel's audit status (enabled, daemon pid, lost counter).

use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_AUDIT};

const AUDIT_GET: u16 = 1000;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLMSG_HDRLEN: usize = 16;

/// `struct audit_status` fields we report (include/uapi/linux/audit.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditStatus {
    pub enabled: u32,
    pub failure: u32,
    /// pid of the registered audit daemon, 0 if none.
    pub pid: u32,
    pub rate_limit: u32,
    pub backlog_limit: u32,
    pub lost: u32,
    pub backlog: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("cannot open a NETLINK_AUDIT socket: {0} (kernel without CONFIG_AUDIT?)")]
    Socket(#[source] std::io::Error),
    #[error("AUDIT_GET failed: {0}")]
    Io(#[source] std::io::Error),
    #[error("the kernel refused AUDIT_GET: {0}")]
    Refused(std::io::Error),
    #[error("malformed AUDIT_GET reply ({0} bytes)")]
    Malformed(usize),
}

pub fn get() -> Result<AuditStatus, StatusError> {
    let mut socket = Socket::new(NETLINK_AUDIT).map_err(StatusError::Socket)?;
    socket.bind_auto().map_err(StatusError::Socket)?;
    socket.connect(&SocketAddr::new(0, 0)).map_err(StatusError::Socket)?;
    let mut msg = Vec::with_capacity(NLMSG_HDRLEN);
    msg.extend_from_slice(&(NLMSG_HDRLEN as u32).to_ne_bytes());
    msg.extend_from_slice(&AUDIT_GET.to_ne_bytes());
    msg.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    msg.extend_from_slice(&1u32.to_ne_bytes()); // seq
    msg.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it
    socket.send(&msg, 0).map_err(StatusError::Io)?;
    let (reply, _) = socket.recv_from_full().map_err(StatusError::Io)?;
    parse_reply(&reply)
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

fn parse_reply(reply: &[u8]) -> Result<AuditStatus, StatusError> {
    let bad = || StatusError::Malformed(reply.len());
    let kind = u16::from_ne_bytes(reply.get(4..6).ok_or_else(bad)?.try_into().map_err(|_| bad())?);
    let body = &reply[NLMSG_HDRLEN.min(reply.len())..];
    if kind == NLMSG_ERROR {
        let errno = u32_at(body, 0).ok_or_else(bad)? as i32;
        return Err(StatusError::Refused(std::io::Error::from_raw_os_error(-errno)));
    }
    if kind != AUDIT_GET {
        return Err(bad());
    }
    let f = |i: usize| u32_at(body, i * 4).ok_or_else(bad);
    Ok(AuditStatus {
        enabled: f(1)?,
        failure: f(2)?,
        pid: f(3)?,
        rate_limit: f(4)?,
        backlog_limit: f(5)?,
        lost: f(6)?,
        backlog: f(7)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_real_kernel_answers() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: AUDIT_GET needs root");
            return;
        }
        let s = get().expect("AUDIT_GET answers on a CONFIG_AUDIT kernel");
        assert!(s.enabled <= 2, "enabled is 0, 1 or 2: {s:?}");
        assert!(s.backlog_limit > 0, "{s:?}");
    }

    #[test]
    fn error_replies_and_garbage_are_errors() {
        let mut err = vec![0u8; 36];
        err[0..4].copy_from_slice(&36u32.to_ne_bytes());
        err[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        err[16..20].copy_from_slice(&(-1i32).to_ne_bytes());
        assert!(matches!(parse_reply(&err), Err(StatusError::Refused(_))));
        assert!(matches!(parse_reply(&[1, 2, 3]), Err(StatusError::Malformed(3))));
    }
}
