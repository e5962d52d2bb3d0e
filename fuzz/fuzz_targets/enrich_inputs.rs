//! What enrichment reads from files a container or an unprivileged
//! process shapes: `/proc/PID/stat` (comm holds any bytes, parentheses
//! and spaces too), `/proc/PID/cgroup` and the cgroup path (a delegated
//! cgroup tree names its own children), and a runtime's container JSON
//! (labels and names are the container author's). None may panic.
//!
//! Run: `AYA_BUILD_SKIP=1 cargo +nightly fuzz run enrich_inputs` in this
//! directory.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sensor::enrich::{container, procfs, runtime};
use sensor::source::ebpf::offsets::CgroupMode;

fuzz_target!(|data: &[u8]| {
    let _ = procfs::parse_stat(data);
    for mode in [CgroupMode::Unified, CgroupMode::Legacy] {
        if let Some(path) = procfs::cgroup_path(data, mode) {
            let _ = container::from_cgroup_path(&path);
        }
    }
    let _ = container::from_cgroup_path(data);
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = runtime::from_docker(&v);
    }
});
