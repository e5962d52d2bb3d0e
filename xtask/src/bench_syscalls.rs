//! `cargo xtask bench`, second part: traced syscalls. chmod and loopback
//! TCP connects (each also an accept), UDP sendto to an address (the
//! cgroup sendmsg hook), and getppid, which nothing traces,
//! measured with nothing watching, with the sensor and with auditd (rules
//! for the same syscalls), in one run. Reports; never asserts.
//!
//! Per workload and scenario: operations per second; the kernel-side time
//! per operation (the sensor's BPF programs' run time from bpf_stats); the
//! monitor's CPU per operation; how many operations it reported, and how
//! many events it said it lost.
//!
//! Besides the flat-out loops, one chmod row is paced at a fixed
//! [`PACED_RATE`] operations per second in total: the flat-out loop runs
//! far above any real workload, so its losses say little about whether
//! the sensor keeps up with a busy but plausible host. The paced row is
//! the number behind "every event delivered at 100,000 traced syscalls/s".

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CString;
use std::fmt::Write as _;
use std::io::BufRead as _;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use serde_json::Value;

use crate::bench::{
    AuditStatus, BpfStats, KERNEL_PASS_MAX, OUT_DIR, PrivateAuditd, RunningSensor,
    bpf_program_runs, bpf_programs, cost, file_size, run_time_ns, scratch_dir, wait_until_quiet,
};

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(crate) enum Workload {
    Chmod,
    ChmodPaced,
    Connect,
    OpenWrite,
    OpenWriteGrownTable,
    Getppid,
    IoUringNop,
    Rename,
    RenameBesideSymlinks,
    UdpSendTo,
    SocketUnreported,
}

const WORKLOADS: [Workload; 11] = [
    Workload::Chmod,
    Workload::ChmodPaced,
    Workload::Connect,
    Workload::OpenWrite,
    Workload::OpenWriteGrownTable,
    Workload::Getppid,
    Workload::IoUringNop,
    Workload::Rename,
    Workload::RenameBesideSymlinks,
    Workload::UdpSendTo,
    Workload::SocketUnreported,
];

/// How often the symlink row's extra thread makes (and removes) a symlink
/// to a magic link.
const SYMLINK_EVERY: Duration = Duration::from_millis(10);

/// Operations per second of the paced chmod row, over all threads.
const PACED_RATE: u64 = 100_000;

impl Workload {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Workload::Chmod => "chmod",
            Workload::ChmodPaced => "chmod paced at 100k/s",
            Workload::Connect => "connect (+accept) on loopback",
            Workload::OpenWrite => "open for writing (+close), not watched, fd table embedded",
            Workload::OpenWriteGrownTable => {
                "open for writing (+close), not watched, fd table grown (over 64 fds)"
            }
            Workload::Getppid => "getppid (not traced)",
            Workload::IoUringNop => "io_uring nop (not reported)",
            Workload::Rename => "rename, not watched",
            Workload::RenameBesideSymlinks => {
                "rename, not watched, a symlink to /proc/self/cwd made every 10 ms"
            }
            Workload::UdpSendTo => "UDP sendto, one destination per socket (reported once)",
            Workload::SocketUnreported => "UDP socket (+close), not reported",
        }
    }
}

/// One workload under one scenario.
#[derive(Default)]
struct Measured {
    ops: u64,
    seconds: f64,
    /// The monitor's CPU seconds, if known.
    monitor_cpu: Option<f64>,
    /// The sensor's programs' run time per operation, in nanoseconds, and
    /// the operations of the pass that measured it (their events come out
    /// with the rate pass's, and are counted with them).
    kernel_ns_per_op: Option<f64>,
    stats_ops: u64,
    reported: Option<u64>,
    /// Losses reported while this workload ran (the monitor's output
    /// between the end of the previous workload and the end of this one).
    lost: Option<BTreeMap<String, u64>>,
}

struct Scenario {
    name: String,
    results: BTreeMap<Workload, Measured>,
    lost: BTreeMap<String, u64>,
    failed: Option<String>,
}

/// The files and the listener the workloads use; the same in every
/// scenario so that the monitors see the same paths and port.
pub(crate) struct Setup {
    pub(crate) dir: PathBuf,
    pub(crate) files: Vec<CString>,
    pub(crate) port: u16,
    pub(crate) listener: Arc<TcpListener>,
    /// Where the UDP row's datagrams go: a bound socket nobody reads (once
    /// its buffer is full, the kernel drops them on arrival, as quietly as
    /// it takes them), so that none meets a closed port.
    pub(crate) udp_sink: std::net::UdpSocket,
}

pub fn run(sensors: &[PathBuf], seconds: u64, workers: usize) -> Result<String> {
    let duration = Duration::from_secs(seconds);
    let setup = Setup::new(workers)?;
    let _acceptor = Acceptor::start(setup.listener.clone());

    // Warm-up, so that the first scenario is not penalised.
    for w in WORKLOADS {
        load(w, &setup, workers, Duration::from_millis(300));
    }
    let mut scenarios = Vec::new();
    println!("bench: syscalls, baseline");
    scenarios.push(baseline(&setup, workers, duration));
    for (i, sensor) in sensors.iter().enumerate() {
        let name = scenario_name(sensors, i);
        println!("bench: syscalls, {name}");
        scenarios.push(
            with_sensor(sensor, &name, i, &setup, workers, duration)
                .unwrap_or_else(|e| failed(&name, e)),
        );
    }
    println!("bench: syscalls, auditd");
    scenarios.push(with_auditd(&setup, workers, duration).unwrap_or_else(|e| failed("auditd", e)));
    let _ = std::fs::remove_dir_all(&setup.dir);
    Ok(render(&scenarios, workers, seconds))
}

/// Several binaries (before/after a change) are told apart by path.
pub(crate) fn scenario_name(sensors: &[PathBuf], i: usize) -> String {
    if sensors.len() == 1 {
        "sensor".to_owned()
    } else {
        format!("sensor {} ({})", i + 1, sensors[i].display())
    }
}

/// `cargo xtask bench --only startup` (and part of the full run): each
/// sensor started while the paced chmod load already runs, as on a busy
/// host. How long the start took, and whether the events of its first
/// moments were lost: hooks that go live while others are still being
/// verified fill the ring buffer before anything reads it.
pub fn run_startup(sensors: &[PathBuf], workers: usize) -> Result<String> {
    const BEFORE: Duration = Duration::from_secs(1);
    const LOAD: Duration = Duration::from_secs(10);
    let setup = Setup::new(workers)?;
    let mut r = String::new();
    let _ = writeln!(
        r,
        "
# Starting under load
"
    );
    let _ = writeln!(
        r,
        "The paced chmod load ({PACED_RATE}/s) runs for {} s; each sensor is started {} s into it.
",
        LOAD.as_secs(),
        BEFORE.as_secs()
    );
    let _ = writeln!(
        r,
        "| sensor | start took | chmods reported | lost (reported) |"
    );
    let _ = writeln!(r, "|---|---:|---:|---|");
    for (i, sensor) in sensors.iter().enumerate() {
        let name = scenario_name(sensors, i);
        println!("bench: starting under load, {name}");
        let row = start_under_load(sensor, i, &setup, workers, BEFORE, LOAD);
        let _ = match row {
            Ok((took, reported, lost)) => writeln!(
                r,
                "| {name} | {:.2} s | {reported} | {} |",
                took.as_secs_f64(),
                lost_text(&lost)
            ),
            Err(e) => writeln!(
                r,
                "| {name} | failed: {} | | |",
                format!("{e:#}").replace(['\n', '|'], " ")
            ),
        };
    }
    let _ = writeln!(
        r,
        "
- start took: from spawning `sensor run` to its \"sensor started\" (programs verified and attached, /proc read).\n\
         - chmods reported: of the load's chmods after the hooks went live. Lost: the loss reports; none is the target.\n"
    );
    let _ = std::fs::remove_dir_all(&setup.dir);
    Ok(r)
}

/// One sensor started `before` into a `load`-long paced chmod load:
/// (how long its start took, chmods it reported, losses it reported).
fn start_under_load(
    sensor: &Path,
    index: usize,
    setup: &Setup,
    workers: usize,
    before: Duration,
    load_for: Duration,
) -> Result<(Duration, u64, BTreeMap<String, u64>)> {
    let out_path = Path::new(OUT_DIR).join(format!("sensor-startup-{}.jsonl", index + 1));
    std::thread::scope(|scope| {
        let loader = scope.spawn(|| load(Workload::ChmodPaced, setup, workers, load_for));
        std::thread::sleep(before);
        let spawned = Instant::now();
        let started =
            RunningSensor::start(sensor, &format!("sensor-startup-{}", index + 1), &out_path);
        let took = spawned.elapsed();
        let _ = loader.join();
        let RunningSensor { mut child, .. } = started?;
        wait_until_quiet(|| file_size(&out_path));
        child.stop()?;
        let (counts, lost) = count_sensor_events(&out_path, setup, 0..file_size(&out_path))?;
        Ok((
            took,
            counts.get(&Workload::Chmod).copied().unwrap_or(0),
            lost,
        ))
    })
}

/// Loss reports as "n kind, …", or 0.
pub(crate) fn lost_text(lost: &BTreeMap<String, u64>) -> String {
    if lost.values().all(|n| *n == 0) {
        return "0".to_owned();
    }
    lost.iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Setup {
    /// A file per worker and a loopback listener with a deep queue.
    pub(crate) fn new(workers: usize) -> Result<Setup> {
        let dir = scratch_dir("syscalls")?;
        let files = (0..workers)
            .map(|i| {
                let f = dir.join(format!("file-{i}"));
                std::fs::write(&f, b"").with_context(|| format!("creating {}", f.display()))?;
                Ok(CString::new(f.into_os_string().into_encoded_bytes())
                    .expect("no NUL in a temp path"))
            })
            .collect::<Result<Vec<_>>>()?;
        let listener = TcpListener::bind("127.0.0.1:0").context("binding the loopback listener")?;
        let port = listener.local_addr()?.port();
        // A deep accept queue: when the acceptor thread is briefly starved of
        // CPU, a full queue would drop SYNs and stall connects for a second
        // (the SYN retransmit), measuring the scheduler instead of the monitor.
        // SAFETY: listen on our own listening socket just raises its backlog.
        unsafe { libc::listen(listener.as_raw_fd(), 4096) };
        let udp_sink = std::net::UdpSocket::bind("127.0.0.1:0").context("binding the UDP sink")?;
        Ok(Setup {
            dir,
            files,
            port,
            listener: Arc::new(listener),
            udp_sink,
        })
    }
}

fn failed(name: &str, e: anyhow::Error) -> Scenario {
    eprintln!("bench: syscalls, {name} failed: {e:#}");
    Scenario {
        name: name.to_owned(),
        results: BTreeMap::new(),
        lost: BTreeMap::new(),
        failed: Some(format!("{e:#}")),
    }
}

/// Accepts and drops connections on the listener until dropped.
struct Acceptor {
    stop: Arc<AtomicBool>,
    port: u16,
}

impl Acceptor {
    fn start(listener: Arc<TcpListener>) -> Acceptor {
        let stop = Arc::new(AtomicBool::new(false));
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        let flag = stop.clone();
        std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                let _ = listener.accept();
            }
        });
        Acceptor { stop, port }
    }
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the blocked accept.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// What one run of a workload did.
struct Run {
    ops: u64,
    seconds: f64,
}

/// `workers` threads run the workload for `duration`.
fn load(w: Workload, setup: &Setup, workers: usize, duration: Duration) -> Run {
    let count = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let handles: Vec<_> = (0..workers)
        .map(|i| {
            let (count, stop) = (count.clone(), stop.clone());
            let file = setup.files[i].clone();
            let renamed = CString::new([file.as_bytes(), b".r"].concat()).expect("no NUL");
            let port = setup.port;
            let udp_sink = setup.udp_sink.local_addr().ok();
            std::thread::spawn(move || {
                let mut n = 0u64;
                // This thread's share of the paced rate, in operations per µs.
                let per_us = PACED_RATE as f64 / workers as f64 / 1e6;
                let begin = Instant::now();
                // The io_uring row's ring, one per thread.
                let mut ring = (w == Workload::IoUringNop)
                    .then(|| io_uring::IoUring::new(8).ok())
                    .flatten();
                if matches!(w, Workload::OpenWrite | Workload::OpenWriteGrownTable) {
                    own_fd_table(w == Workload::OpenWriteGrownTable);
                }
                // The UDP row's socket, never connected, one per thread.
                let udp = (w == Workload::UdpSendTo)
                    .then(|| std::net::UdpSocket::bind("127.0.0.1:0").ok())
                    .flatten();
                while !stop.load(Ordering::Relaxed) {
                    if w == Workload::ChmodPaced {
                        // Paced by the clock: catch up to what is due by
                        // now, then sleep to the next millisecond, so the
                        // calls come in 1 ms batches at the set rate (and a
                        // thread starved for a while catches up in bursts,
                        // as a real workload would).
                        let elapsed = begin.elapsed().as_micros() as u64;
                        if n as f64 >= elapsed as f64 * per_us {
                            std::thread::sleep(Duration::from_micros(1000 - elapsed % 1000));
                            continue;
                        }
                    }
                    let ok = match w {
                        // SAFETY: a valid C string.
                        Workload::Chmod | Workload::ChmodPaced => unsafe {
                            libc::chmod(
                                file.as_ptr(),
                                if n.is_multiple_of(2) { 0o600 } else { 0o644 },
                            ) == 0
                        },
                        Workload::Connect => connect_once(port),
                        // What every write on the host pays: the sensor
                        // checks each open for writing against the watched
                        // files, and reports none of these.
                        // SAFETY: a valid C string; the fd is closed.
                        Workload::OpenWrite | Workload::OpenWriteGrownTable => unsafe {
                            let fd = libc::open(file.as_ptr(), libc::O_WRONLY);
                            fd >= 0 && libc::close(fd) == 0
                        },
                        // What every program's socket call pays: traced
                        // (packet, raw and ICMP ones are reported), this one
                        // left out at the entry.
                        // SAFETY: plain syscalls; the fd is closed.
                        Workload::SocketUnreported => unsafe {
                            let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
                            fd >= 0 && libc::close(fd) == 0
                        },
                        Workload::Getppid => {
                            // SAFETY: no arguments.
                            unsafe { libc::getppid() };
                            true
                        }
                        // What every request of a ring pays: the sensor's
                        // submit hook sees each, and reports none of these.
                        Workload::IoUringNop => ring.as_mut().is_some_and(nop_once),
                        // What every datagram sent to an address pays (a DNS
                        // server's replies, a QUIC server's): the sensor's
                        // sendmsg hook runs for each, and finds all but the
                        // socket's first to this destination already seen.
                        Workload::UdpSendTo => match (&udp, udp_sink) {
                            (Some(s), Some(to)) => s.send_to(b"x", to).is_ok(),
                            _ => false,
                        },
                        // What every rename of a file nobody watches pays
                        // (the path check at entry); beside symlinks to a
                        // magic link, the window after each, in which every
                        // path call goes to the daemon to decide.
                        Workload::Rename | Workload::RenameBesideSymlinks => {
                            let (from, to) = if n.is_multiple_of(2) {
                                (&file, &renamed)
                            } else {
                                (&renamed, &file)
                            };
                            // SAFETY: two valid C strings.
                            unsafe { libc::rename(from.as_ptr(), to.as_ptr()) == 0 }
                        }
                    };
                    if ok {
                        n += 1;
                    }
                }
                if !n.is_multiple_of(2)
                    && matches!(w, Workload::Rename | Workload::RenameBesideSymlinks)
                {
                    // Back under its name, for the next rows.
                    // SAFETY: two valid C strings.
                    unsafe { libc::rename(renamed.as_ptr(), file.as_ptr()) };
                }
                count.fetch_add(n, Ordering::Relaxed);
            })
        })
        .collect();
    let symlinks = (w == Workload::RenameBesideSymlinks).then(|| {
        let (stop, link) = (stop.clone(), setup.dir.join("magic"));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let _ = std::os::unix::fs::symlink("/proc/self/cwd", &link);
                let _ = std::fs::remove_file(&link);
                std::thread::sleep(SYMLINK_EVERY);
            }
        })
    });
    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    for h in handles.into_iter().chain(symlinks) {
        let _ = h.join();
    }
    Run {
        ops: count.load(Ordering::Relaxed),
        seconds: start.elapsed().as_secs_f64(),
    }
}

/// Gives the calling thread an fd table of its own, as most processes
/// have it (`grown` false: `files_struct`'s embedded 64 slots, which the
/// sensor reads the new fd's file from with plain loads) or as a process
/// that has had over 64 fds open has it (`grown`: an allocated table,
/// read with probe reads). The bench's own table may be either (this
/// build VM's sessions hand every process an fd numbered 251), so each
/// row sets its own: `close_range` with CLOSE_RANGE_UNSHARE copies the
/// table without fds 64 and up, into the embedded slots; fd 64 then
/// grows it. Says so on the console where the table is not as asked.
/// The thread's FDSize, as its status tells it.
fn own_fd_table(grown: bool) -> Option<u32> {
    // SAFETY: closes fds of this thread's new copy of the table only.
    let unshared = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            64u32,
            u32::MAX,
            libc::CLOSE_RANGE_UNSHARE,
        )
    } == 0;
    if unshared && grown {
        // SAFETY: fd 0 duplicated into this thread's table, left open
        // until the thread ends (its table goes with it).
        unsafe { libc::dup2(0, 64) };
    }
    let size = std::fs::read_to_string("/proc/thread-self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("FDSize:"))
                .and_then(|v| v.trim().parse::<u32>().ok())
        });
    if !unshared || (size == Some(64)) == grown {
        println!(
            "bench: the open for writing row's thread asked for a{} fd table and has \
             FDSize {size:?}{}",
            if grown { " grown" } else { "n embedded" },
            if unshared {
                ""
            } else {
                " (close_range failed)"
            }
        );
    }
    size
}

/// One nop through `ring`: submitted, waited for, reaped.
fn nop_once(ring: &mut io_uring::IoUring) -> bool {
    let nop = io_uring::opcode::Nop::new().build();
    // SAFETY: a nop names no buffer.
    if unsafe { ring.submission().push(&nop) }.is_err() || ring.submit_and_wait(1).is_err() {
        return false;
    }
    ring.completion().next().is_some_and(|c| c.result() == 0)
}

/// Connects and closes with a reset (see [`reset_on_close`]).
fn connect_once(port: u16) -> bool {
    let Ok(s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    reset_on_close(&s);
    true
}

/// Makes `s` close with a reset (SO_LINGER 0), so that tens of thousands
/// of connects do not exhaust ephemeral ports in TIME_WAIT.
pub(crate) fn reset_on_close(s: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket and option buffer.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const linger).cast(),
            size_of::<libc::linger>() as u32,
        )
    };
}

fn baseline(setup: &Setup, workers: usize, duration: Duration) -> Scenario {
    let results = WORKLOADS
        .into_iter()
        .map(|w| {
            let run = load(w, setup, workers, duration);
            (
                w,
                Measured {
                    ops: run.ops,
                    seconds: run.seconds,
                    ..Measured::default()
                },
            )
        })
        .collect();
    Scenario {
        name: "baseline".to_owned(),
        results,
        lost: BTreeMap::new(),
        failed: None,
    }
}

fn with_sensor(
    sensor: &Path,
    name: &str,
    index: usize,
    setup: &Setup,
    workers: usize,
    duration: Duration,
) -> Result<Scenario> {
    let suffix = if index == 0 {
        String::new()
    } else {
        format!("-{}", index + 1)
    };
    let out_path = Path::new(OUT_DIR).join(format!("sensor-syscall-events{suffix}.jsonl"));
    let before_progs = bpf_programs();
    let RunningSensor { mut child, .. } =
        RunningSensor::start(sensor, &format!("sensor-syscall{suffix}"), &out_path)?;
    let ours: BTreeSet<u64> = bpf_programs()
        .into_keys()
        .filter(|id| !before_progs.contains_key(id))
        .collect();
    let mut results = BTreeMap::new();
    // Where each workload's output starts and ends in the file: events and
    // loss reports are counted per workload.
    let mut segments = Vec::new();
    for w in WORKLOADS {
        let start = file_size(&out_path);
        // The rate is measured with the kernel's run-time accounting off,
        // as the sensor runs in production: bpf_stats reads the clock
        // twice around every program run, which on this machine more than
        // doubled what an untraced syscall paid (getppid +22 ns without,
        // +150 ns with). The accounting runs in a pass of its own.
        let c0 = cost(child.0.id())?.cpu_seconds;
        let run = load(w, setup, workers, duration);
        wait_until_quiet(|| file_size(&out_path));
        let c1 = cost(child.0.id())?.cpu_seconds;
        let kernel = if ours.is_empty() {
            None
        } else {
            kernel_pass(w, setup, workers, duration, &ours)
        };
        wait_until_quiet(|| file_size(&out_path));
        segments.push((w, start, file_size(&out_path)));
        // The flat-out rows leave gigabytes of the sensor's output dirty in
        // the page cache; written back during the next row, they took CPU
        // and disk from it (the paced row lost events in some runs and not
        // in others). Each row starts with them on disk.
        // SAFETY: sync has no preconditions.
        unsafe { libc::sync() };
        results.insert(
            w,
            Measured {
                ops: run.ops,
                seconds: run.seconds,
                monitor_cpu: Some(c1 - c0),
                kernel_ns_per_op: kernel.map(|(ns, n)| ns as f64 / n.max(1) as f64),
                stats_ops: kernel.map_or(0, |(_, n)| n),
                ..Measured::default()
            },
        );
    }
    child.stop()?;
    let mut all_lost = BTreeMap::new();
    for (w, start, end) in segments {
        let (counts, lost) = count_sensor_events(&out_path, setup, start..end)?;
        for (k, n) in &lost {
            *all_lost.entry(k.clone()).or_insert(0) += n;
        }
        if let Some(m) = results.get_mut(&w) {
            if !matches!(
                w,
                Workload::Getppid | Workload::IoUringNop | Workload::UdpSendTo
            ) {
                m.reported = Some(counts.get(&w.traced()).copied().unwrap_or(0));
            }
            m.lost = Some(lost);
        }
    }
    // Counted: the output is not kept (gigabytes per sensor: the flat-out
    // rows); the sensor's stderr stays beside the report.
    let _ = std::fs::remove_file(&out_path);
    Ok(Scenario {
        name: name.to_owned(),
        results,
        lost: all_lost,
        failed: None,
    })
}

/// How long the sensor's programs ran per operation of `w`, from a pass
/// of its own with the kernel's run-time accounting on (bpf_stats):
/// (their run time in nanoseconds, the pass's operations). None when the
/// accounting cannot be turned on or read (no bpftool).
fn kernel_pass(
    w: Workload,
    setup: &Setup,
    workers: usize,
    duration: Duration,
    ours: &BTreeSet<u64>,
) -> Option<(u64, u64)> {
    let _stats = BpfStats::enable()?;
    let runs0 = bpf_program_runs();
    let k0 = run_time_ns(ours);
    let ops = load(w, setup, workers, duration.min(KERNEL_PASS_MAX)).ops;
    let k1 = run_time_ns(ours);
    print_program_runs(w, ops, ours, &runs0, &bpf_program_runs());
    Some((k1.saturating_sub(k0), ops))
}

/// Prints, per program of the sensor that ran during the workload, its
/// runs and run time per run and per operation: where the kernel-side
/// time goes (a console aid, not part of the report).
fn print_program_runs(
    w: Workload,
    ops: u64,
    ours: &BTreeSet<u64>,
    before: &BTreeMap<u64, (String, u64, u64)>,
    after: &BTreeMap<u64, (String, u64, u64)>,
) {
    for id in ours {
        let (Some((name, t1, n1)), Some((_, t0, n0))) = (after.get(id), before.get(id)) else {
            continue;
        };
        let (t, n) = (t1.saturating_sub(*t0), n1.saturating_sub(*n0));
        if let Some(per_run) = t.checked_div(n) {
            println!(
                "bench:   {}: {name}: {n} runs, {per_run} ns/run, {} ns/op",
                w.name(),
                t / ops.max(1)
            );
        }
    }
}

impl Workload {
    /// The workload whose events this one's are (both chmod rows make
    /// chmod events; they are told apart by when they came).
    fn traced(self) -> Workload {
        match self {
            Workload::ChmodPaced => Workload::Chmod,
            Workload::RenameBesideSymlinks => Workload::Rename,
            Workload::OpenWriteGrownTable => Workload::OpenWrite,
            w => w,
        }
    }
}

/// Events of the workloads (chmods of the bench's files; connects to the
/// listener's port) and loss reports by kind, in the bytes `range` of the
/// output.
pub(crate) fn count_sensor_events(
    path: &Path,
    setup: &Setup,
    range: std::ops::Range<u64>,
) -> Result<(BTreeMap<Workload, u64>, BTreeMap<String, u64>)> {
    use std::io::{Read as _, Seek as _};
    let dir = setup.dir.to_string_lossy().into_owned();
    let (mut counts, mut lost) = (BTreeMap::new(), BTreeMap::new());
    let mut file =
        std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    file.seek(std::io::SeekFrom::Start(range.start))?;
    let file = file.take(range.end.saturating_sub(range.start));
    for line in std::io::BufReader::new(file).split(b'\n') {
        let Ok(v) = serde_json::from_slice::<Value>(&line?) else {
            continue;
        };
        let action = v.pointer("/event/action").and_then(Value::as_str);
        match action {
            Some("chmod")
                if v.pointer("/file/path")
                    .and_then(Value::as_str)
                    .is_some_and(|p| p.starts_with(&dir)) =>
            {
                *counts.entry(Workload::Chmod).or_insert(0) += 1;
            }
            Some("connect")
                if v.pointer("/destination/port").and_then(Value::as_u64)
                    == Some(setup.port as u64) =>
            {
                *counts.entry(Workload::Connect).or_insert(0) += 1;
            }
            // None expected: the bench's files are not watched.
            Some("rename")
                if v.pointer("/file/path")
                    .and_then(Value::as_str)
                    .is_some_and(|p| p.starts_with(&dir)) =>
            {
                *counts.entry(Workload::Rename).or_insert(0) += 1;
            }
            Some("open_write")
                if v.pointer("/file/path")
                    .and_then(Value::as_str)
                    .is_some_and(|p| p.starts_with(&dir)) =>
            {
                *counts.entry(Workload::OpenWrite).or_insert(0) += 1;
            }
            Some("lost") => {
                let kind = v
                    .pointer("/sensor/lost/kind")
                    .and_then(Value::as_str)
                    .unwrap_or("?");
                let n = v
                    .pointer("/sensor/lost/count")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                *lost.entry(kind.to_owned()).or_insert(0) += n;
            }
            _ => {}
        }
    }
    Ok((counts, lost))
}

/// auditd's rules in its scenarios: the same syscalls as the sensor's
/// rows trace, each with a key its records are counted by.
pub(crate) const AUDIT_RULES: &[&[&str]] = &[
    &[
        "-a",
        "always,exit",
        "-F",
        "arch=b64",
        "-S",
        "chmod",
        "-S",
        "fchmodat",
        "-k",
        "sensor-bench-chmod",
    ],
    &[
        "-a",
        "always,exit",
        "-F",
        "arch=b64",
        "-S",
        "connect",
        "-k",
        "sensor-bench-connect",
    ],
    // The sensor's default watches that exist on every Debian host,
    // so that auditd checks opens for writing as the sensor does.
    &["-w", "/etc/passwd", "-p", "wa", "-k", "sensor-bench-watch"],
    &["-w", "/etc/shadow", "-p", "wa", "-k", "sensor-bench-watch"],
    &["-w", "/etc/cron.d/", "-p", "wa", "-k", "sensor-bench-watch"],
];

/// The SYSCALL records in `text[range]` (auditd's log) with the rule key
/// `key` and the bench's own pid (the workers are its threads): one per
/// traced call.
pub(crate) fn audit_records(text: &[u8], key: &str, range: std::ops::Range<usize>) -> u64 {
    let me = format!(" pid={} ", std::process::id());
    let range = range.start.min(text.len())..range.end.min(text.len());
    text[range]
        .split(|&b| b == b'\n')
        .map(String::from_utf8_lossy)
        .filter(|l| l.starts_with("type=SYSCALL") && l.contains(&me) && l.contains(key))
        .count() as u64
}

fn with_auditd(setup: &Setup, workers: usize, duration: Duration) -> Result<Scenario> {
    let auditd = PrivateAuditd::start(AUDIT_RULES)?;
    let lost_before = AuditStatus::read()?.lost;
    let mut results = BTreeMap::new();
    let mut segments = Vec::new();
    for w in WORKLOADS {
        let start = file_size(&auditd.log);
        let c0 = cost(auditd.pid)?.cpu_seconds;
        let run = load(w, setup, workers, duration);
        wait_until_quiet(|| file_size(&auditd.log));
        let c1 = cost(auditd.pid)?.cpu_seconds;
        segments.push((w, start as usize, file_size(&auditd.log) as usize));
        results.insert(
            w,
            Measured {
                ops: run.ops,
                seconds: run.seconds,
                monitor_cpu: Some(c1 - c0),
                ..Measured::default()
            },
        );
    }
    let lost = AuditStatus::read()?.lost.saturating_sub(lost_before);
    let log = auditd.log.clone();
    drop(auditd);
    let text = std::fs::read(&log).with_context(|| format!("reading {}", log.display()))?;
    for (w, start, end) in segments {
        let key = match w.traced() {
            Workload::Chmod => "sensor-bench-chmod",
            Workload::Connect => "sensor-bench-connect",
            Workload::OpenWrite => "sensor-bench-watch",
            _ => continue,
        };
        if let Some(m) = results.get_mut(&w) {
            m.reported = Some(audit_records(&text, key, start..end));
        }
    }
    Ok(Scenario {
        name: "auditd".to_owned(),
        results,
        lost: BTreeMap::from([("audit records".to_owned(), lost)]),
        failed: None,
    })
}

fn render(scenarios: &[Scenario], workers: usize, seconds: u64) -> String {
    let mut r = String::new();
    let _ = writeln!(r, "\n# Traced syscalls benchmark\n");
    let _ = writeln!(
        r,
        "{workers} threads per workload, {seconds} s per workload and scenario.\n"
    );
    let _ = writeln!(
        r,
        "| workload | scenario | ops/s | added ns/op | kernel ns/op | monitor CPU ns/op | reported | lost (reported) |"
    );
    let _ = writeln!(r, "|---|---|---:|---:|---:|---:|---:|---|");
    let base = scenarios.iter().find(|s| s.name == "baseline");
    for w in WORKLOADS {
        for s in scenarios {
            if let Some(why) = &s.failed {
                let _ = writeln!(
                    r,
                    "| {} | {} | failed: {} | | | | | |",
                    w.name(),
                    s.name,
                    why.replace(['\n', '|'], " ")
                );
                continue;
            }
            let Some(m) = s.results.get(&w) else { continue };
            let rate = m.ops as f64 / m.seconds.max(f64::EPSILON);
            let base_rate = base
                .and_then(|b| b.results.get(&w))
                .map(|b| b.ops as f64 / b.seconds.max(f64::EPSILON));
            let rate_text = match base_rate {
                Some(b) if s.name != "baseline" && b > 0.0 => {
                    format!("{rate:.0} ({:+.1}%)", (rate / b - 1.0) * 100.0)
                }
                _ => format!("{rate:.0}"),
            };
            let per_op = |secs: Option<f64>| {
                secs.map_or("–".to_owned(), |x| {
                    format!("{:.0}", x * 1e9 / m.ops.max(1) as f64)
                })
            };
            // Each thread's time per operation is workers / rate: what one
            // operation took longer than without a monitor.
            let added = match base_rate {
                _ if s.name == "baseline" => "–".to_owned(),
                Some(b) if w != Workload::ChmodPaced && b > 0.0 && rate > 0.0 => {
                    format!("{:.0}", workers as f64 * (1.0 / rate - 1.0 / b) * 1e9)
                }
                _ => "–".to_owned(),
            };
            let reported = m.reported.map_or("–".to_owned(), |n| {
                format!("{n} of {}", m.ops + m.stats_ops)
            });
            let lost_map = m.lost.as_ref().unwrap_or(&s.lost);
            let lost = if s.name == "baseline" {
                "–".to_owned()
            } else {
                lost_text(lost_map)
            };
            let _ = writeln!(
                r,
                "| {} | {} | {rate_text} | {added} | {} | {} | {reported} | {lost} |",
                w.name(),
                s.name,
                m.kernel_ns_per_op
                    .map_or("–".to_owned(), |ns| format!("{ns:.0}")),
                per_op(m.monitor_cpu)
            );
        }
    }
    let _ = writeln!(
        r,
        "\n- added ns/op: how much longer each operation took than in the baseline, from the \
         rates ({workers} threads / ops/s): everything included, the kernel's work and the \
         monitor's CPU taken from the workload's threads (not for the paced row, whose \
         threads mostly sleep).\n\
         - kernel ns/op: the sensor's BPF programs' run time (bpf_stats) per operation, from a \
         pass of its own after the rate's (bpf_stats costs a clock read before and after every \
         program run, so ops/s is measured with it off, as in production). That clock read \
         also falls inside each measured run: the getppid row's two near-empty programs show \
         it, against that row's added ns/op. For a \
         connect it covers the connect, the accept on the other end and the TCP state change. \
         auditd's in-syscall audit work cannot be measured this way.\n\
         - ops/s against the baseline is the cost the workload feels, everything included.\n\
         - open for writing: the sensor traces every open for writing and reports those of \
         watched files (auditd: `-w` rules on /etc/passwd, /etc/shadow, /etc/cron.d/, which \
         are in force in all its rows); the bench's files are not watched, so these rows are the \
         filter's cost on every write a host makes, and 0 reported is the expected count. Two \
         rows, by the opening thread's fd table: embedded (a process that never had over 64 \
         fds open: most), where the sensor reads the new fd's file with plain loads, and grown \
         (databases, JVMs, children of a shell that held a high fd), read with probe reads.\n\
         - getppid is traced by nobody: its rate shows what untraced syscalls pay. While any \
         syscall tracepoint is in use (the sensor's dispatchers are on every syscall) the kernel \
         takes its slow syscall entry/exit path (SYSCALL_WORK_SYSCALL_TRACEPOINT), as it does \
         for auditd's rules (TIF_SYSCALL_AUDIT); this row shows whether that is measurable.\n\
         - io_uring nop: one request per io_uring_enter, submitted and reaped; the sensor's \
         submit and completion hooks see every request of every ring and report only file and \
         network operations, so this row is their cost on a ring's ordinary traffic, plus what \
         the untraced io_uring_enter pays (the getppid row).\n\
         - reported: operations that came out of the monitor (the sensor: events; auditd: SYSCALL \
         records), of the rate pass's and the kernel pass's operations. Lost: for the sensor, the loss reports that came out while that workload ran \
         or drained; for auditd, the kernel's audit lost counter over the whole scenario.\n\
         - chmod paced at 100k/s: chmods at a fixed {PACED_RATE} per second in total, in 1 ms \
         batches spread over the threads; ops/s shows the rate achieved. Every operation \
         reported and nothing lost is the delivery target.\n\
         - What the kernel adds to one traced syscall is in the next table (chmod in bursts): \
         the flat-out rows cannot give it, as the ring buffer is full most of the time there, \
         and a dropped event costs the kernel less than a delivered one."
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_open_row_thread_gets_the_fd_table_it_asks_for() {
        // Whatever this process's own table is (a high fd open makes it
        // grown), each thread's copy is as asked.
        let null = std::fs::File::open("/dev/null").expect("open /dev/null");
        // SAFETY: a valid fd duplicated to 200, closed at the end.
        assert_eq!(unsafe { libc::dup2(null.as_raw_fd(), 200) }, 200);
        let size = |grown| {
            std::thread::spawn(move || own_fd_table(grown))
                .join()
                .unwrap()
        };
        assert_eq!(size(false), Some(64), "the embedded table");
        assert!(size(true).is_some_and(|s| s > 64), "a grown table");
        // SAFETY: the fd dup2 made above.
        unsafe { libc::close(200) };
    }

    fn scenario(name: &str, results: Vec<(Workload, Measured)>) -> Scenario {
        Scenario {
            name: name.to_owned(),
            results: results.into_iter().collect(),
            lost: BTreeMap::new(),
            failed: None,
        }
    }

    /// A flat-out row's added time comes from the rates, per thread.
    #[test]
    fn added_time_of_a_flat_row_is_per_thread() {
        let flat = |ops: u64| Measured {
            ops,
            seconds: 1.0,
            ..Measured::default()
        };
        let report = render(
            &[
                scenario("baseline", vec![(Workload::Chmod, flat(2_000_000))]),
                scenario("sensor", vec![(Workload::Chmod, flat(1_000_000))]),
            ],
            2,
            5,
        );
        let row = report
            .lines()
            .find(|l| l.starts_with(&format!("| {} | sensor |", Workload::Chmod.name())))
            .unwrap_or_else(|| panic!("no sensor chmod row in\n{report}"));
        // 2 threads: 2 / 1e6 − 2 / 2e6 s = 1,000 ns per operation.
        assert!(row.contains("| 1000 |"), "{row}");
    }
}
