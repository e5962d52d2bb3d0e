//! `struct utmp` records (glibc, x86_64 and every other 64-bit Linux ABI
//! with 32-bit time fields in utmp: 384 bytes). Hand-written: the layout is
//! fixed by the files on disk; the `utmp` crates on crates.io are unmaintained
//! or pull in more than this one struct needs.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const RECORD: usize = 384;

pub const USER_PROCESS: i16 = 7;
pub const DEAD_PROCESS: i16 = 8;
pub const LOGIN_PROCESS: i16 = 6;
pub const BOOT_TIME: i16 = 2;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Utmp {
    pub kind: i16,
    pub pid: u32,
    /// Terminal without `/dev/` (`pts/0`, `ssh:notty`).
    pub line: Vec<u8>,
    pub user: Vec<u8>,
    pub host: Vec<u8>,
    pub session: i32,
    pub sec: u32,
    pub usec: u32,
    /// `ut_addr_v6`: an IPv4 address in the first word, else IPv6.
    pub addr: Option<IpAddr>,
}

fn cstr(b: &[u8]) -> Vec<u8> {
    b[..b.iter().position(|&c| c == 0).unwrap_or(b.len())].to_vec()
}

fn i32_at(b: &[u8], off: usize) -> i32 {
    i32::from_ne_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

/// One record; `None` unless `b` is exactly [`RECORD`] bytes.
pub fn parse(b: &[u8]) -> Option<Utmp> {
    if b.len() != RECORD {
        return None;
    }
    let words: Vec<u32> = (0..4).map(|i| i32_at(b, 348 + i * 4) as u32).collect();
    let addr = if words.iter().all(|&w| w == 0) {
        None
    } else if words[1..].iter().all(|&w| w == 0) {
        // Network byte order in memory.
        Some(IpAddr::V4(Ipv4Addr::from(words[0].to_ne_bytes())))
    } else {
        let mut o = [0u8; 16];
        for (i, w) in words.iter().enumerate() {
            o[i * 4..i * 4 + 4].copy_from_slice(&w.to_ne_bytes());
        }
        Some(IpAddr::V6(Ipv6Addr::from(o)))
    };
    Some(Utmp {
        kind: i16::from_ne_bytes([b[0], b[1]]),
        pid: i32_at(b, 4) as u32,
        line: cstr(&b[8..40]),
        user: cstr(&b[44..76]),
        host: cstr(&b[76..332]),
        session: i32_at(b, 336),
        sec: i32_at(b, 340) as u32,
        usec: i32_at(b, 344) as u32,
        addr,
    })
}

#[cfg(test)]
pub fn encode(u: &Utmp) -> Vec<u8> {
    let mut b = vec![0u8; RECORD];
    b[0..2].copy_from_slice(&u.kind.to_ne_bytes());
    b[4..8].copy_from_slice(&u.pid.to_ne_bytes());
    b[8..8 + u.line.len()].copy_from_slice(&u.line);
    b[44..44 + u.user.len()].copy_from_slice(&u.user);
    b[76..76 + u.host.len()].copy_from_slice(&u.host);
    b[336..340].copy_from_slice(&u.session.to_ne_bytes());
    b[340..344].copy_from_slice(&u.sec.to_ne_bytes());
    b[344..348].copy_from_slice(&u.usec.to_ne_bytes());
    match u.addr {
        Some(IpAddr::V4(v4)) => b[348..352].copy_from_slice(&v4.octets()),
        Some(IpAddr::V6(v6)) => b[348..364].copy_from_slice(&v6.octets()),
        None => {}
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_sizes_are_checked() {
        let u = Utmp {
            kind: USER_PROCESS,
            pid: 4242,
            line: b"pts/3".to_vec(),
            user: b"alice".to_vec(),
            host: b"203.0.113.9".to_vec(),
            session: 7,
            sec: 1_700_000_000,
            usec: 5,
            addr: Some("203.0.113.9".parse().expect("ip")),
        };
        assert_eq!(parse(&encode(&u)), Some(u.clone()));
        let v6 = Utmp {
            addr: Some("2001:db8::1".parse().expect("ip")),
            ..u
        };
        assert_eq!(parse(&encode(&v6)), Some(v6));
        assert_eq!(parse(&[0; 383]), None);
    }

    #[test]
    fn the_real_btmp_parses_when_readable() {
        let Ok(b) = std::fs::read("/var/log/btmp") else {
            return;
        };
        for r in b.chunks_exact(RECORD) {
            let u = parse(r).expect("full record");
            assert!(u.kind >= 0 && u.kind <= 9, "{u:?}");
        }
    }
}
