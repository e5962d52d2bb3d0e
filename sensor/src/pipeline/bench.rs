//! `sensor bench-enrich` (hidden): the per-event cost of enrichment on a
//! cache hit, measured on the real code path.
//!
//! A [`Pipeline`] is built as `sensor run` builds it (real host identity,
//! the process table seeded from this host's /proc) and handed exec and
//! connect records of this very process, again and again: its table entry,
//! its parent and ancestors, its user and group names (and, with hashing
//! on, its executable's hash) are all in the caches after the first round,
//! which is the common case on a busy host. The time is the CPU time of
//! `Pipeline::handle` alone: decoding is before it, JSON encoding and sinks after it (the sink
//! benchmark measures those). Nothing here asserts; `cargo xtask bench`
//! prints the numbers.

use std::time::Instant;

use sensor_common::{ID_UNSET, SyscallOp, TaskInfo};

use super::Pipeline;
use crate::enrich::exehash::HashConfig;
use crate::enrich::{host, procfs};
use crate::event::{Agent, Host};
use crate::source::ebpf::decode::{ExecRecord, KernelEvent, NetOp, NetRecord};
use crate::source::ebpf::offsets::CgroupMode;

#[derive(Debug, serde::Serialize)]
pub struct Report {
    pub events: u64,
    /// Mean CPU time of `Pipeline::handle` per event (the calling thread's,
    /// user + system), in nanoseconds.
    pub exec_ns_per_event: f64,
    pub connect_ns_per_event: f64,
    /// The same exec events with `[process] hash_executables` on (a stat and a
    /// readlink of /proc/PID/exe and a cache lookup more).
    pub exec_hashed_ns_per_event: f64,
    /// The same three in wall time (includes waiting for a CPU).
    pub exec_wall_ns_per_event: f64,
    pub connect_wall_ns_per_event: f64,
    pub exec_hashed_wall_ns_per_event: f64,
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
        flags: 0,
        start_boottime: start_ticks * (1_000_000_000 / ticks_per_second.max(1)),
        parent_start_boottime: 0,
        cgroup_id: 0,
        cap_permitted: 0,
        cap_effective: 0,
        comm,
        tty: [0; 32],
    }
}

/// `exe`: this process's own, as the kernel would name it (with hashing on
/// the pipeline checks that the process still runs it).
fn exec(task: TaskInfo, exe: &[u8]) -> KernelEvent {
    KernelEvent::Exec(ExecRecord {
        boot_ns: task.start_boottime + 1,
        task,
        argv: vec![
            b"/usr/bin/curl".to_vec(),
            b"-fsSL".to_vec(),
            b"https://example.com/install.sh".to_vec(),
        ],
        argv_truncated: false,
        argv_unreadable: false,
        argv_total: 52,
        exe: exe.to_vec(),
        exe_truncated: false,
        exe_unlinked: false,
        cwd: b"/home/alice/src/project".to_vec(),
        cwd_truncated: false,
        cgroup: b"/user.slice/user-1000.slice/session-3.scope".to_vec(),
        cgroup_truncated: false,
    })
}

/// A connect to 10.0.0.1:443: the commonest syscall event. (Not exit: a
/// process exits once, and repeating one pid's exit measures the table
/// dropping and re-creating it, which no real stream does.)
pub(super) fn connect(task: TaskInfo) -> KernelEvent {
    let mut sockaddr = vec![2, 0, 0x01, 0xbb, 10, 0, 0, 1];
    sockaddr.resize(16, 0);
    KernelEvent::Net(NetRecord {
        boot_ns: task.start_boottime + 2,
        task,
        op: NetOp::Syscall(SyscallOp::Connect),
        fd: 3,
        ret: 0,
        family: 2,
        protocol: 6,
        sock_type: 1,
        arg: 0,
        kernel_sockaddr: Some(sockaddr.clone()),
        sockaddr,
        local: Some("10.0.0.2:40000".parse().expect("address")),
        remote: Some("10.0.0.1:443".parse().expect("address")),
    })
}

/// This thread's CPU time (user + system), in ns: unlike the wall clock it
/// does not count time the thread waited for a CPU, which on a shared
/// build machine would be most of it.
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a pointer to a timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Mean (CPU ns, wall ns) per `handle` over `events` events made by `make`
/// (after a warm-up round that fills the caches).
fn time(pipeline: &mut Pipeline, events: u64, make: impl Fn() -> KernelEvent) -> (f64, f64) {
    for _ in 0..1000 {
        std::hint::black_box(pipeline.handle(make()));
    }
    // The record is built outside the timed part: decoding is not
    // enrichment. The Event is dropped inside it: its allocations are.
    let records: Vec<KernelEvent> = (0..events).map(|_| make()).collect();
    let (cpu0, t0) = (thread_cpu_ns(), Instant::now());
    for r in records {
        std::hint::black_box(pipeline.handle(r));
    }
    let n = events.max(1) as f64;
    (
        (thread_cpu_ns() - cpu0) as f64 / n,
        t0.elapsed().as_nanos() as f64 / n,
    )
}

fn pipeline(hashing: bool) -> Pipeline {
    let host = host::host().unwrap_or_else(|_| Host::named("bench-host"));
    let mut p = Pipeline::new(
        host,
        Agent::named("bench"),
        65_536,
        8,
        procfs::clock_ticks_per_second(),
    );
    if hashing {
        let config = crate::config::Config::default().process;
        let mut h: HashConfig = crate::config::ProcessConfig {
            hash_executables: true,
            ..config
        }
        .hashing()
        .expect("on");
        h.wait = std::time::Duration::from_secs(5);
        let _ = p.enable_hashing(h);
    }
    p.seed(procfs::all_processes(
        std::path::Path::new("/proc"),
        CgroupMode::detect(),
    ));
    p
}

pub fn run(events: u64) -> Report {
    let hz = procfs::clock_ticks_per_second();
    let task = own_task(hz);
    let exe = std::fs::read_link("/proc/self/exe")
        .map(|p| p.into_os_string().into_encoded_bytes())
        .unwrap_or_default();
    let mut p = pipeline(false);
    let exec_ns = time(&mut p, events, || exec(task, &exe));
    let connect_ns = time(&mut p, events, || connect(task));
    let table = p.table().process_count();
    let mut p = pipeline(true);
    let exec_hashed_ns = time(&mut p, events, || exec(task, &exe));
    Report {
        events,
        exec_ns_per_event: exec_ns.0,
        connect_ns_per_event: connect_ns.0,
        exec_hashed_ns_per_event: exec_hashed_ns.0,
        exec_wall_ns_per_event: exec_ns.1,
        connect_wall_ns_per_event: connect_ns.1,
        exec_hashed_wall_ns_per_event: exec_hashed_ns.1,
        table,
    }
}
