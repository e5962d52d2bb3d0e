//! Kernel records carry attacker-controlled bytes (paths, argv, socket
//! addresses, xattr values, io_uring arguments) and lengths the daemon
//! must not trust: decoding, the pipeline's enrichment and the JSON
//! encoding must never panic, whatever a record holds.
//!
//! The first byte picks the record's kind, and the header is made to
//! match (kind, and a size between the kind's fixed and largest size), so
//! that the fuzzer spends its time on the bodies rather than on finding
//! eight valid header bytes; the rest of the input is the record from its
//! ninth byte. A record with a lying header is the decoder's first check,
//! which `decode`'s own tests cover.
//!
//! Run: `AYA_BUILD_SKIP=1 cargo +nightly fuzz run kernel_record` in this
//! directory.

#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use sensor::event::{Agent, Host};
use sensor::pipeline::Pipeline;
use sensor::source::ebpf::decode::decode;
use sensor_common::EventKind;

thread_local! {
    // One pipeline for the whole run, as in the daemon: records meet the
    // process table earlier ones left.
    static PIPELINE: RefCell<Pipeline> =
        RefCell::new(Pipeline::new(Host::named("fuzz"), Agent::named("fuzz"), 1024, 4, 100));
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let kind = EventKind::ALL[pick as usize % EventKind::ALL.len()];
    let size = (8 + body.len()).clamp(kind.fixed_size(), kind.max_size());
    let mut record = vec![0u8; size];
    let n = body.len().min(size - 8);
    record[8..8 + n].copy_from_slice(&body[..n]);
    record[0..4].copy_from_slice(&(kind as u32).to_ne_bytes());
    record[4..8].copy_from_slice(&(size as u32).to_ne_bytes());
    let Ok(event) = decode(&record) else {
        return;
    };
    PIPELINE.with(|p| {
        if let Some(event) = p.borrow_mut().handle(event) {
            serde_json::to_vec(&event).expect("an event always encodes");
        }
    });
});
