//! `sensor bench-enrich` (hidden): the per-event cost of enrichment on a
//! cache hit, measured on the real code path.
//!
//! A [`Pipeline`] is built as `sensor run` builds it (real host identity,
//! the process table seeded from this host's /proc) and handed exec and
//! exit records of this very process, again and again: its table entry,
//! its parent and ancestors, its user and group names (and, with hashing
//! on, its executable's hash) are all in the caches after the first round,
//! which is the common case on a busy host. The time is `Pipeline::handle`
//! alone: decoding is before it, JSON encoding and sinks after it (the sink
//! benchmark measures those). Nothing here asserts; `cargo xtask bench`
//! prints the numbers.

use std::time::Instant;

use sensor_common::{ID_UNSET, TaskInfo};

use super::Pipeline;
use crate::enrich::exehash::HashConfig;
use crate::enrich::{host, procfs};
use crate::event::{Agent, Host, HostOs};
use crate::source::ebpf::decode::{ExecRecord, ExitRecord, KernelEvent};
use crate::source::ebpf::offsets::CgroupMode;

#[derive(Debug, serde::Serialize)]
pub struct Report {
    pub events: u64,
    /// Mean wall time of `Pipeline::handle` per event, in nanoseconds.
    pub exec_ns_per_event: f64,
    pub exit_ns_per_event: f64,
    /// The same exec events with `[process] hash_executables` on (a stat of
    /// /proc/PID/exe and a cache lookup more).
    pub exec_hashed_ns_per_event: f64,
    /// Processes in the table (seeded from /proc).
    pub table: usize,
}

/// This process as the kernel would describe it.
fn own_task(ticks_per_second: u64) -> TaskInfo {
    let stat = std::fs::read("/proc/self/stat").unwrap_or_default();
    let (_, ppid, start_ticks) = procfs::parse_stat(&stat).unwrap_or_default();
    let pid = std::process::id();
    let uid = nix::unistd::getuid().as_raw();
    let gid = nix::unistd::getgid().as_raw();
    let mut comm = [0u8; 16];
    comm[..5].copy_from_slice(b"bench");
    TaskInfo {
        tgid: pid,
        tid: pid,
        ppid,
        uid,
        gid,
        euid: uid,
        egid: gid,
        suid: uid,
        sgid: gid,
        fsuid: uid,
        fsgid: gid,
        loginuid: ID_UNSET,
        sessionid: ID_UNSET,
        _pad0: 0,
        start_boottime: start_ticks * (1_000_000_000 / ticks_per_second.max(1)),
        parent_start_boottime: 0,
        cgroup_id: 0,
        cap_permitted: 0,
        cap_effective: 0,
        comm,
        tty: [0; 32],
    }
}

fn exec(task: TaskInfo) -> KernelEvent {
    KernelEvent::Exec(ExecRecord {
        boot_ns: task.start_boottime + 1,
        task,
        argv: vec![b"/usr/bin/curl".to_vec(), b"-fsSL".to_vec(), b"https://example.com/install.sh".to_vec()],
        argv_truncated: false,
        argv_unreadable: false,
        argv_total: 52,
        exe: b"/usr/bin/curl".to_vec(),
        exe_truncated: false,
        exe_unlinked: false,
        cwd: b"/home/alice/src/project".to_vec(),
        cwd_truncated: false,
        cgroup: b"/user.slice/user-1000.slice/session-3.scope".to_vec(),
        cgroup_truncated: false,
    })
}

fn exit(task: TaskInfo) -> KernelEvent {
    KernelEvent::Exit(ExitRecord { boot_ns: task.start_boottime + 2, task, status: 0 })
}

/// Mean ns per `handle` over `events` events made by `make` (after a warm-up
/// round that fills the caches).
fn time(pipeline: &mut Pipeline, events: u64, make: impl Fn() -> KernelEvent) -> f64 {
    for _ in 0..1000 {
        std::hint::black_box(pipeline.handle(make()));
    }
    // The record is built outside the timed part: decoding is not
    // enrichment. The Event is dropped inside it: its allocations are.
    let records: Vec<KernelEvent> = (0..events).map(|_| make()).collect();
    let t0 = Instant::now();
    for r in records {
        std::hint::black_box(pipeline.handle(r));
    }
    t0.elapsed().as_nanos() as f64 / events.max(1) as f64
}

fn pipeline(hashing: bool) -> Pipeline {
    let host = host::host().unwrap_or_else(|_| Host {
        name: "bench-host".into(),
        id: "bench".into(),
        boot_id: "bench".into(),
        os: HostOs { kernel: "unknown".into(), type_: "linux" },
    });
    let agent = Agent { name: "sensor", type_: "sensor", version: env!("CARGO_PKG_VERSION"), id: "bench".into() };
    let mut p = Pipeline::new(host, agent, 65_536, 8, procfs::clock_ticks_per_second());
    if hashing {
        let config = crate::config::Config::default().process;
        let mut h: HashConfig =
            crate::config::ProcessConfig { hash_executables: true, ..config }.hashing().expect("on");
        h.wait = std::time::Duration::from_secs(5);
        let _ = p.enable_hashing(h);
    }
    p.seed(procfs::all_processes(std::path::Path::new("/proc"), CgroupMode::detect()));
    p
}

pub fn run(events: u64) -> Report {
    let hz = procfs::clock_ticks_per_second();
    let task = own_task(hz);
    let mut p = pipeline(false);
    let exec_ns = time(&mut p, events, || exec(task));
    let exit_ns = time(&mut p, events, || exit(task));
    let table = p.table().process_count();
    let mut p = pipeline(true);
    let exec_hashed_ns = time(&mut p, events, || exec(task));
    Report {
        events,
        exec_ns_per_event: exec_ns,
        exit_ns_per_event: exit_ns,
        exec_hashed_ns_per_event: exec_hashed_ns,
        table,
    }
}
