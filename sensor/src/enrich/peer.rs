//! The remote port of a login: PAM's records name the peer's address but
//! not its port. The process that reported the login (sshd's per-connection
//! process) still holds the connection, so the port is found by matching
//! its socket inodes against /proc/net/tcp{,6} for that address. Best
//! effort: a connection already closed gives no port.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

/// The remote port of `pid`'s TCP connection to `ip`, if it has one.
pub fn peer_port(proc_root: &Path, pid: u32, ip: IpAddr) -> Option<u16> {
    let inodes = socket_inodes(proc_root, pid);
    if inodes.is_empty() {
        return None;
    }
    // The connection is in the process's network namespace.
    ["net/tcp", "net/tcp6"].iter().find_map(|table| {
        let text = std::fs::read_to_string(proc_root.join(pid.to_string()).join(table)).ok()?;
        text.lines()
            .skip(1)
            .find_map(|line| match_line(line, &inodes, ip))
    })
}

fn socket_inodes(proc_root: &Path, pid: u32) -> HashSet<u64> {
    let Ok(dir) = std::fs::read_dir(proc_root.join(pid.to_string()).join("fd")) else {
        return HashSet::new();
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter_map(|t| {
            let s = t.to_str()?;
            s.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
        })
        .collect()
}

/// One line of /proc/net/tcp: `sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...`.
fn match_line(line: &str, inodes: &HashSet<u64>, ip: IpAddr) -> Option<u16> {
    let f: Vec<&str> = line.split_whitespace().collect();
    let inode: u64 = f.get(9)?.parse().ok()?;
    if !inodes.contains(&inode) {
        return None;
    }
    let (addr, port) = f.get(2)?.split_once(':')?;
    let remote = parse_addr(addr)?;
    let same = remote == ip
        || matches!(remote, IpAddr::V6(v6) if v6.to_ipv4_mapped().map(IpAddr::V4) == Some(ip));
    same.then(|| u16::from_str_radix(port, 16).ok()).flatten()
}

/// The kernel prints addresses as 32-bit words in host (little-endian) order.
fn parse_addr(hex: &str) -> Option<IpAddr> {
    let word = |s: &str| {
        u32::from_str_radix(s, 16)
            .ok()
            .map(u32::swap_bytes)
            .map(u32::to_be_bytes)
    };
    match hex.len() {
        8 => Some(IpAddr::V4(Ipv4Addr::from(word(hex)?))),
        32 => {
            let mut b = [0u8; 16];
            for i in 0..4 {
                b[i * 4..i * 4 + 4].copy_from_slice(&word(&hex[i * 8..i * 8 + 8])?);
            }
            Some(IpAddr::V6(Ipv6Addr::from(b)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_net_tcp_lines() {
        let v4 = "   1: 0100007F:0016 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 4242 1 0 20 4 30 10 -1";
        let inodes: HashSet<u64> = [4242].into();
        assert_eq!(
            match_line(v4, &inodes, "127.0.0.1".parse().expect("ip")),
            Some(0xD431)
        );
        assert_eq!(
            match_line(v4, &inodes, "127.0.0.2".parse().expect("ip")),
            None
        );
        assert_eq!(
            match_line(v4, &HashSet::new(), "127.0.0.1".parse().expect("ip")),
            None
        );
        let v6 = "   0: 00000000000000000000000001000000:0016 0000000000000000FFFF00000100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 4242 1";
        assert_eq!(
            match_line(v6, &inodes, "127.0.0.1".parse().expect("ip")),
            Some(0x9C40)
        );
        assert_eq!(parse_addr("zz"), None);
    }

    #[test]
    fn a_real_connection_of_our_own() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let c = std::net::TcpStream::connect(l.local_addr().expect("addr")).expect("connect");
        let (_s, peer) = l.accept().expect("accept");
        // Our process holds the accepted socket, whose peer is the client.
        let port = peer_port(
            Path::new("/proc"),
            std::process::id(),
            "127.0.0.1".parse().expect("ip"),
        );
        // Either socket matches 127.0.0.1; the client's peer is the listener.
        assert!(
            port == Some(peer.port()) || port == Some(l.local_addr().expect("addr").port()),
            "{port:?} vs {peer} / {:?}",
            c.local_addr()
        );
    }
}
