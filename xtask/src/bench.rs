//! `cargo xtask bench`: an exec storm measured, in one run, with nothing
//! watching, with the sensor, and with auditd (what users would otherwise
//! pick). Reports; never asserts: timings are not test results.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::cmd;

struct Scenario {
    name: &'static str,
    execs: u64,
    seconds: f64,
    monitor: Option<Monitor>,
    /// Why the scenario could not run, if it could not.
    failed: Option<String>,
}

/// What the monitoring process cost and what it saw.
struct Monitor {
    cpu_seconds: f64,
    peak_rss_kib: u64,
    /// RSS at the end of the storm: what it costs to keep running.
    rss_kib: u64,
    events_seen: u64,
    events_lost: u64,
    note: String,
}

pub fn run(sensor: &Path, seconds: u64) -> Result<()> {
    let duration = Duration::from_secs(seconds);
    let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let marker = format!("sensor-bench-{}", std::process::id());
    println!("bench: {workers} workers, {seconds} s per scenario");

    let mut scenarios = Vec::new();
    println!("bench: baseline (nothing watching)");
    let (execs, secs) = storm(workers, duration, &marker);
    scenarios.push(Scenario { name: "baseline", execs, seconds: secs, monitor: None, failed: None });

    println!("bench: sensor");
    scenarios.push(with_sensor(sensor, workers, duration, &marker).unwrap_or_else(|e| failed("sensor", e)));

    println!("bench: auditd");
    scenarios.push(with_auditd(workers, duration, &marker).unwrap_or_else(|e| failed("auditd", e)));

    let report = render(&scenarios, workers, seconds);
    std::fs::create_dir_all("target/bench").context("creating target/bench")?;
    std::fs::write("target/bench/report.md", &report).context("writing target/bench/report.md")?;
    println!("\n{report}\nbench: written to target/bench/report.md");
    Ok(())
}

fn failed(name: &'static str, e: anyhow::Error) -> Scenario {
    eprintln!("bench: {name} scenario failed: {e:#}");
    Scenario { name, execs: 0, seconds: 0.0, monitor: None, failed: Some(format!("{e:#}")) }
}

/// `workers` threads spawn `/bin/true MARKER` as fast as they can for
/// `duration`. Each spawn is a fork (clone), an exec and an exit.
fn storm(workers: usize, duration: Duration, marker: &str) -> (u64, f64) {
    let count = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let handles: Vec<_> = (0..workers)
        .map(|_| {
            let (count, stop, marker) = (count.clone(), stop.clone(), marker.to_owned());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if Command::new("/bin/true").arg(&marker).status().is_ok_and(|s| s.success()) {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        let _ = h.join();
    }
    (count.load(Ordering::Relaxed), start.elapsed().as_secs_f64())
}

/// utime + stime of `pid` in seconds, its peak RSS and its RSS in KiB.
fn cost(pid: u32) -> Result<(f64, u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).context("reading /proc/PID/stat")?;
    let after_comm = &stat[stat.rfind(')').context("malformed stat")? + 2..];
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime) are at 11 and 12 after the comm.
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).context("reading /proc/PID/status")?;
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    Ok((ticks as f64 / hz, kib("VmHWM:"), kib("VmRSS:")))
}

fn with_sensor(sensor: &Path, workers: usize, duration: Duration, marker: &str) -> Result<Scenario> {
    let out_path = Path::new("target/bench/sensor-events.jsonl");
    std::fs::create_dir_all("target/bench")?;
    let out = std::fs::File::create(out_path).context("creating the sensor's output file")?;
    let state = tempdir("sensor-bench-state")?;
    let cfg = state.join("sensor.toml");
    std::fs::write(&cfg, format!("[agent]\nstate_dir = \"{}\"\n", state.display()))?;
    let mut child = Command::new(sensor)
        .args(["run", "--config"])
        .arg(&cfg)
        .stdout(out)
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", sensor.display()))?;
    wait_for_line(&mut child, "sensor started", Duration::from_secs(60))?;
    let (before, _, _) = cost(child.id())?;
    let (execs, secs) = storm(workers, duration, marker);
    // Let the sensor drain what the storm left in the ring buffer.
    std::thread::sleep(Duration::from_secs(2));
    let (after, peak, rss) = cost(child.id())?;
    stop(&mut child)?;
    let text = std::fs::read_to_string(out_path)?;
    let (mut seen, mut lost) = (0u64, 0u64);
    for line in text.lines() {
        if line.contains(marker) && line.contains(r#""action":"exec""#) {
            seen += 1;
        } else if line.contains(r#""action":"lost""#) {
            lost += count_field(line).unwrap_or(0);
        }
    }
    Ok(Scenario {
        name: "sensor",
        execs,
        seconds: secs,
        monitor: Some(Monitor {
            cpu_seconds: after - before,
            peak_rss_kib: peak,
            rss_kib: rss,
            events_seen: seen,
            events_lost: lost,
            note: "fork+exec+exit events, enriched, JSON to a file".into(),
        }),
        failed: None,
    })
}

/// `"count":N` in a loss event.
fn count_field(line: &str) -> Option<u64> {
    let at = line.find(r#""count":"#)? + 8;
    line[at..].split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

fn with_auditd(workers: usize, duration: Duration, marker: &str) -> Result<Scenario> {
    if Command::new("auditd").arg("-h").output().is_err() {
        bail!("auditd is not installed (cargo xtask setup installs it)");
    }
    // auditd rotates audit.log (8 MiB by default): read and clear every file.
    let audit_logs = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir("/var/log/audit")
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("audit.log")))
                    .collect()
            })
            .unwrap_or_default()
    };
    for f in audit_logs() {
        let _ = std::fs::remove_file(f);
    }
    let lost_before = audit_lost()?;
    // -n: stay in the foreground so we own its pid and can measure it.
    let mut child = Command::new("auditd").arg("-n").stdout(Stdio::null()).stderr(Stdio::null()).spawn()
        .context("starting auditd")?;
    std::thread::sleep(Duration::from_secs(2));
    let cleanup = |child: &mut Child| {
        let _ = Command::new("auditctl").args(["-D"]).output();
        let _ = Command::new("auditctl").args(["-e", "0"]).output();
        let _ = stop(child);
    };
    let rule = cmd::output(
        Command::new("auditctl").args(["-a", "always,exit", "-F", "arch=b64", "-S", "execve", "-k", "sensor-bench"]),
        "auditctl -a",
    )?;
    if !rule.status.success() {
        cleanup(&mut child);
        bail!("auditctl refused the execve rule: {}", String::from_utf8_lossy(&rule.stderr).trim());
    }
    let _ = Command::new("auditctl").args(["-e", "1"]).output();
    let (before, _, _) = cost(child.id())?;
    let (execs, secs) = storm(workers, duration, marker);
    std::thread::sleep(Duration::from_secs(2));
    let (after, peak, rss) = cost(child.id())?;
    let lost = audit_lost()?.saturating_sub(lost_before);
    cleanup(&mut child);
    // One EXECVE record per exec, holding the hex or quoted argv.
    let hex_marker: String = marker.bytes().map(|b| format!("{b:02X}")).collect();
    let mut seen = 0u64;
    for f in audit_logs() {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        seen += text
            .lines()
            .filter(|l| l.starts_with("type=EXECVE") && (l.contains(marker) || l.contains(&hex_marker)))
            .count() as u64;
    }
    Ok(Scenario {
        name: "auditd",
        execs,
        seconds: secs,
        monitor: Some(Monitor {
            cpu_seconds: after - before,
            peak_rss_kib: peak,
            rss_kib: rss,
            events_seen: seen,
            events_lost: lost,
            note: "execve rule, raw records to /var/log/audit, no enrichment; kauditd's kernel CPU not counted".into(),
        }),
        failed: None,
    })
}

fn audit_lost() -> Result<u64> {
    let s = cmd::stdout(Command::new("auditctl").arg("-s"), "auditctl -s")?;
    Ok(s.lines()
        .find_map(|l| l.strip_prefix("lost "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0))
}

fn wait_for_line(child: &mut Child, needle: &str, timeout: Duration) -> Result<()> {
    let stderr = child.stderr.take().context("stderr not piped")?;
    let (tx, rx) = std::sync::mpsc::channel();
    let needle = needle.to_owned();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if line.contains(&needle) {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(());
                }
            }
        }
    });
    rx.recv_timeout(timeout).context("the sensor did not report being started")
}

fn stop(child: &mut Child) -> Result<()> {
    // SAFETY: a signal to our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait().context("waiting for the monitor to exit")?;
    Ok(())
}

fn tempdir(name: &str) -> Result<std::path::PathBuf> {
    let d = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
    Ok(d)
}

fn render(scenarios: &[Scenario], workers: usize, seconds: u64) -> String {
    let mut r = String::new();
    let _ = writeln!(r, "# Exec storm benchmark\n");
    let _ = writeln!(
        r,
        "{workers} threads spawning `/bin/true` for {seconds} s per scenario on {} CPUs. \
         Each exec is also a fork and an exit: 3 kernel events.\n",
        workers
    );
    let _ = writeln!(r, "| scenario | execs/s | monitor CPU µs per exec | monitor RSS (peak) | execs seen | lost (reported) | note |");
    let _ = writeln!(r, "|---|---:|---:|---:|---:|---:|---|");
    for s in scenarios {
        if let Some(why) = &s.failed {
            let _ = writeln!(r, "| {} | failed | | | | | {why} |", s.name);
            continue;
        }
        let rate = s.execs as f64 / s.seconds.max(f64::EPSILON);
        match &s.monitor {
            None => {
                let _ = writeln!(r, "| {} | {rate:.0} | – | – | – | – | nothing watching |", s.name);
            }
            Some(m) => {
                let per = m.cpu_seconds * 1e6 / (s.execs.max(1) as f64);
                let _ = writeln!(
                    r,
                    "| {} | {rate:.0} | {per:.1} | {} MiB ({} MiB) | {} of {} | {} | {} |",
                    s.name,
                    m.rss_kib / 1024,
                    m.peak_rss_kib / 1024,
                    m.events_seen,
                    s.execs,
                    m.events_lost,
                    m.note
                );
            }
        }
    }
    let _ = writeln!(
        r,
        "\nCPU per exec is the monitoring process's user+system time divided by the execs \
         performed (for the sensor this covers 3 events per exec). The sensor's RSS includes \
         its BPF ring buffer, which the kernel maps into it twice. Missing execs that are \
         not reported as lost would be silent loss."
    );
    r
}
