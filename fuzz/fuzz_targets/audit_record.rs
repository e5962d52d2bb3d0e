//! Audit records are attacker-influenced bytes (user names, paths, argv,
//! anything a CAP_AUDIT_WRITE process sends): the parser, the datagram
//! splitter, the coalescer and the normalisation must never panic.
//!
//! Run: `AYA_BUILD_SKIP=1 cargo +nightly fuzz run audit_record` in this
//! directory (AYA_BUILD_SKIP: the eBPF object is not needed here).

#![no_main]

use libfuzzer_sys::fuzz_target;
use sensor::source::audit::{coalesce, login, netlink, record, tamper};

fuzz_target!(|data: &[u8]| {
    // As a netlink record: the first two bytes pick the type.
    if let [a, b, body @ ..] = data {
        let kind = u16::from_ne_bytes([*a, *b]);
        let _ = record::parse(kind, body);
        let _ = record::parse(1309, body);
    }
    let _ = netlink::split_datagram(data);
    let _ = netlink::Status::parse(data);
    let _ = record::parse_log_line(data);
    // As a recorded stream: events, then their meaning.
    let (events, _errors) = coalesce::from_log(data, 8);
    let mut own = tamper::OwnChanges::default();
    for ev in &events {
        let _ = login::normalize(ev, 1, &mut own, 0);
        let _ = login::execve_args(ev);
    }
});
