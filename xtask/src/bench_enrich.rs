//! The enrichment half of `cargo xtask bench`:
//! - per-event cost of enrichment on a cache hit, from the sensor's hidden
//!   `bench-enrich` (the real `Pipeline::handle`, caches warm, no JSON);
//! - the sensor's RSS with 10,000 live processes in its table: once when
//!   they start under a running sensor (10,000 fork events), once when the
//!   sensor starts among them (its table seeded from /proc).
//!
//! Reports; never asserts.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde_json::Value;

use crate::bench::{OUT_DIR, RunningSensor, cost, file_size, wait_until_quiet};

const PROCESSES: usize = 10_000;
const EVENTS: u64 = 200_000;

/// A markdown section for the report.
pub fn run(sensor: &Path) -> String {
    let mut r = String::new();
    let _ = writeln!(r, "\n# Enrichment\n");
    let _ = writeln!(
        r,
        "Per event, on a cache hit: `Pipeline::handle` alone (process table, parent and ancestry, user and \
         group names, container, privilege tracking; no decoding, no JSON), {EVENTS} of this host's own \
         exec and connect records through the real pipeline seeded from /proc (`sensor bench-enrich`), \
         with {PROCESSES} more live processes in its table. CPU time is the measuring thread's own \
         (user + system); wall time also counts waiting for a CPU on a busy machine. \
         Target: under 5 µs per event.\n"
    );
    let _ = writeln!(r, "| event | CPU µs/event | wall µs/event | note |");
    let _ = writeln!(r, "|---|---:|---:|---|");
    match enrich(sensor) {
        Ok(v) => {
            let table = v["table"].as_u64().unwrap_or(0);
            for (name, key, note) in [
                (
                    "exec",
                    "exec_ns_per_event",
                    format!("{table} processes in the table"),
                ),
                ("connect", "connect_ns_per_event", String::new()),
                (
                    "exec, hash_executables on",
                    "exec_hashed_ns_per_event",
                    "a stat and a readlink of /proc/PID/exe more".into(),
                ),
            ] {
                let us = v[key].as_f64().unwrap_or(f64::NAN) / 1000.0;
                let wall = v[key.replace("_ns_", "_wall_ns_").as_str()]
                    .as_f64()
                    .unwrap_or(f64::NAN)
                    / 1000.0;
                let verdict = if us < 5.0 {
                    "meets the target"
                } else {
                    "above the target"
                };
                let _ = writeln!(
                    r,
                    "| {name} | {us:.2} | {wall:.2} | {verdict}{}{note} |",
                    if note.is_empty() { "" } else { "; " }
                );
            }
        }
        Err(e) => {
            let _ = writeln!(
                r,
                "| all | failed | | {} |",
                format!("{e:#}").replace('|', "\\|")
            );
        }
    }
    let _ = writeln!(r, "\n# Memory with {PROCESSES} live processes\n");
    let _ = writeln!(
        r,
        "The sensor's RSS (`VmRSS`, peak `VmHWM`) with {PROCESSES} more live processes (children of a \
         forker that pause), with the default config. Target: under 64 MiB.\n"
    );
    let _ = writeln!(r, "| case | RSS before | RSS with them (peak) | note |");
    let _ = writeln!(r, "|---|---:|---:|---|");
    for (name, result) in [
        (
            "started under the sensor (fork events)",
            started_under(sensor),
        ),
        (
            "sensor started among them (seeded from /proc)",
            started_among(sensor),
        ),
    ] {
        match result {
            Ok((before, after, peak)) => {
                let mib = |k: u64| k as f64 / 1024.0;
                let verdict = if peak < 64 * 1024 {
                    "meets the target"
                } else {
                    "above the target"
                };
                let _ = writeln!(
                    r,
                    "| {name} | {:.1} MiB | {:.1} MiB ({:.1} MiB) | {verdict} |",
                    mib(before),
                    mib(after),
                    mib(peak)
                );
            }
            Err(e) => {
                let _ = writeln!(
                    r,
                    "| {name} | failed | | {} |",
                    format!("{e:#}").replace('|', "\\|")
                );
            }
        }
    }
    r
}

fn enrich(sensor: &Path) -> Result<Value> {
    // A full-size table, as on a busy host: lookups in a small one say little.
    let _pausers = Pausers::spawn(PROCESSES)?;
    crate::bench::sensor_report(
        Command::new(sensor).args(["bench-enrich", "--events", &EVENTS.to_string()]),
        "bench-enrich",
    )
}

/// (RSS before, RSS after, peak) in KiB: the sensor first, then the
/// processes.
fn started_under(sensor: &Path) -> Result<(u64, u64, u64)> {
    let out_path = Path::new(OUT_DIR).join("rss-under-events.jsonl");
    let RunningSensor {
        mut child,
        err_path,
    } = RunningSensor::start(sensor, "rss-under", &out_path)?;
    wait_until_quiet(|| file_size(&out_path));
    let before = cost(child.0.id())?.rss_kib;
    let pausers = Pausers::spawn(PROCESSES)?;
    wait_until_quiet(|| file_size(&out_path));
    if let Ok(Some(status)) = child.0.try_wait() {
        bail!(
            "the sensor exited ({status}); its stderr is in {}",
            err_path.display()
        );
    }
    let after = cost(child.0.id())?;
    drop(pausers);
    child.stop()?;
    Ok((before, after.rss_kib, after.peak_rss_kib))
}

/// The processes first, then the sensor; "before" is a sensor started
/// without them, for comparison.
fn started_among(sensor: &Path) -> Result<(u64, u64, u64)> {
    let out_path = Path::new(OUT_DIR).join("rss-among-events.jsonl");
    let RunningSensor { mut child, .. } = RunningSensor::start(sensor, "rss-alone", &out_path)?;
    wait_until_quiet(|| file_size(&out_path));
    let before = cost(child.0.id())?.rss_kib;
    child.stop()?;
    let pausers = Pausers::spawn(PROCESSES)?;
    let RunningSensor {
        mut child,
        err_path,
    } = RunningSensor::start(sensor, "rss-among", &out_path)?;
    wait_until_quiet(|| file_size(&out_path));
    if let Ok(Some(status)) = child.0.try_wait() {
        bail!(
            "the sensor exited ({status}); its stderr is in {}",
            err_path.display()
        );
    }
    let after = cost(child.0.id())?;
    child.stop()?;
    drop(pausers);
    Ok((before, after.rss_kib, after.peak_rss_kib))
}

/// `n` children that do nothing but pause; killed and reaped on drop (and
/// killed by the kernel if this process dies first).
struct Pausers(Vec<libc::pid_t>);

impl Pausers {
    fn spawn(n: usize) -> Result<Pausers> {
        let mut p = Pausers(Vec::with_capacity(n));
        let t0 = Instant::now();
        for _ in 0..n {
            // SAFETY: the child calls only async-signal-safe functions
            // (prctl, pause, _exit), as required after fork in a process
            // that may have threads.
            let pid = unsafe { libc::fork() };
            match pid {
                -1 => bail!(
                    "fork failed after {} processes: {} (see /proc/sys/kernel/pid_max, threads-max)",
                    p.0.len(),
                    std::io::Error::last_os_error()
                ),
                // SAFETY: see above.
                0 => unsafe {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    loop {
                        libc::pause();
                    }
                },
                pid => p.0.push(pid),
            }
        }
        eprintln!(
            "bench: {n} pausing processes in {:.1} s",
            t0.elapsed().as_secs_f64()
        );
        Ok(p)
    }
}

impl Drop for Pausers {
    fn drop(&mut self) {
        for &pid in &self.0 {
            // SAFETY: our own children, not yet reaped, so the pids are theirs.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        for &pid in &self.0 {
            // SAFETY: waitpid on our own child with a null status pointer.
            unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
        }
        // Give the sensor a moment to take in the exits before it stops.
        std::thread::sleep(Duration::from_millis(100));
    }
}
