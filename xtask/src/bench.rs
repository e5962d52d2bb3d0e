//! `cargo xtask bench`: an exec storm measured, in one run, with nothing
//! watching, with the sensor, and with Debian's auditd and an execve rule
//! (what users would otherwise pick). Reports; never asserts: timings are
//! not test results.
//!
//! Per scenario: execs per second; the monitoring process's CPU time
//! (utime + stime from /proc/PID/stat) per exec; the kernel-side cost where
//! it can be read (the sensor's BPF programs' run time from bpf_stats;
//! kauditd's CPU); peak RSS (VmHWM); how many of the storm's execs the
//! monitor reported; and how many events it said were lost. Execs neither
//! reported nor counted as lost are silent loss.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use serde_json::Value;

use crate::{cmd, setup};

pub(crate) const OUT_DIR: &str = "target/bench";

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
    /// Kernel-side time spent for the monitor per exec, in microseconds,
    /// where it can be measured.
    kernel_us_per_exec: Option<f64>,
    peak_rss_kib: u64,
    /// RSS at the end of the storm: what it costs to keep running.
    rss_kib: u64,
    /// Execs of the storm that the monitor reported.
    execs_seen: u64,
    /// Lost events it reported, by kind.
    lost: BTreeMap<String, u64>,
    note: String,
}

/// Which parts of the benchmark run (`--only`): all by default.
pub struct Parts {
    exec: bool,
    syscalls: bool,
    bursts: bool,
    startup: bool,
    sinks: bool,
    enrich: bool,
}

impl Parts {
    pub fn from_only(only: Option<&str>) -> Result<Parts> {
        let none = Parts {
            exec: false,
            syscalls: false,
            bursts: false,
            startup: false,
            sinks: false,
            enrich: false,
        };
        Ok(match only {
            None => Parts {
                exec: true,
                syscalls: true,
                bursts: true,
                startup: true,
                sinks: true,
                enrich: true,
            },
            Some("exec") => Parts { exec: true, ..none },
            Some("syscalls") => Parts {
                syscalls: true,
                ..none
            },
            Some("bursts") => Parts {
                bursts: true,
                ..none
            },
            Some("startup") => Parts {
                startup: true,
                ..none
            },
            Some("sinks") => Parts {
                sinks: true,
                ..none
            },
            Some("enrich") => Parts {
                enrich: true,
                ..none
            },
            Some(other) => {
                bail!("--only {other}: expected exec, syscalls, bursts, startup, sinks or enrich")
            }
        })
    }
}

pub fn run(sensors: &[PathBuf], seconds: u64, parts: Parts) -> Result<()> {
    let sensor = sensors.first().context("no sensor binary")?;
    let duration = Duration::from_secs(seconds);
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let marker = format!("sensor-bench-{}", std::process::id());
    std::fs::create_dir_all(OUT_DIR).with_context(|| format!("creating {OUT_DIR}"))?;
    let mut report = crate::bench_machine::section();

    if parts.exec {
        println!("bench: {workers} workers spawning /bin/true, {seconds} s per scenario");
        // Warm the page cache and the allocator so the first scenario is not penalised.
        storm(workers, Duration::from_secs(1), "warm-up");

        let mut scenarios = Vec::new();
        println!("bench: baseline (nothing watching)");
        let (execs, secs) = storm(workers, duration, &marker);
        scenarios.push(Scenario {
            name: "baseline",
            execs,
            seconds: secs,
            monitor: None,
            failed: None,
        });

        println!("bench: sensor (`sensor run`, JSON to a file)");
        scenarios.push(
            with_sensor(sensor, workers, duration, &marker).unwrap_or_else(|e| failed("sensor", e)),
        );

        println!("bench: auditd (Debian's auditd, execve rule)");
        scenarios
            .push(with_auditd(workers, duration, &marker).unwrap_or_else(|e| failed("auditd", e)));
        report.push_str(&render(&scenarios, workers, seconds));
    }
    if parts.syscalls {
        report.push_str(&crate::bench_syscalls::run(sensors, seconds, workers)?);
    }
    if parts.bursts {
        report.push_str(&crate::bench_bursts::run(sensors, seconds)?);
    }
    if parts.startup {
        report.push_str(&crate::bench_syscalls::run_startup(sensors, workers)?);
    }
    if parts.sinks {
        println!("bench: sink throughput (file, syslog TCP)");
        report.push_str(&crate::bench_sinks::run(sensor, Path::new(OUT_DIR)));
    }
    if parts.enrich {
        println!("bench: enrichment per event, memory with 10,000 processes");
        report.push_str(&crate::bench_enrich::run(sensor));
    }
    let path = Path::new(OUT_DIR).join("report.md");
    std::fs::write(&path, &report).with_context(|| format!("writing {}", path.display()))?;
    println!("\n{report}\nbench: written to {}", path.display());
    Ok(())
}

fn failed(name: &'static str, e: anyhow::Error) -> Scenario {
    eprintln!("bench: {name} scenario failed: {e:#}");
    Scenario {
        name,
        execs: 0,
        seconds: 0.0,
        monitor: None,
        failed: Some(format!("{e:#}")),
    }
}

/// `workers` threads spawn `/bin/true MARKER` as fast as they can for
/// `duration`. Each spawn is a fork (clone), an exec and an exit; std's
/// `Command` uses a vfork-style clone, so the storm itself stays cheap.
fn storm(workers: usize, duration: Duration, marker: &str) -> (u64, f64) {
    let count = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let handles: Vec<_> = (0..workers)
        .map(|_| {
            let (count, stop, marker) = (count.clone(), stop.clone(), marker.to_owned());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let ok = Command::new("/bin/true")
                        .arg(&marker)
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .status()
                        .is_ok_and(|s| s.success());
                    if ok {
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

/// CPU time and memory of one process.
pub(crate) struct Cost {
    pub cpu_seconds: f64,
    pub peak_rss_kib: u64,
    pub rss_kib: u64,
}

/// utime + stime of `pid`, its peak RSS and its RSS.
pub(crate) fn cost(pid: u32) -> Result<Cost> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat (did the process exit?)"))?;
    let after_comm = stat
        .get(stat.rfind(')').context("malformed /proc/PID/stat")? + 2..)
        .unwrap_or("");
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime) are at 11 and 12 after the comm.
    let tick = |i: usize| -> Result<u64> {
        fields
            .get(i)
            .context("short /proc/PID/stat")?
            .parse::<u64>()
            .context("parsing /proc/PID/stat")
    };
    let ticks = tick(11)? + tick(12)?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    Ok(Cost {
        cpu_seconds: ticks as f64 / hz,
        peak_rss_kib: kib("VmHWM:"),
        rss_kib: kib("VmRSS:"),
    })
}

/// Waits until `size()` has not changed for a second (the monitor has
/// drained what the storm left behind), at most 30 s.
pub(crate) fn wait_until_quiet(mut size: impl FnMut() -> u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = size();
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_secs(1));
        let now = size();
        if now == last {
            return;
        }
        last = now;
    }
}

pub(crate) fn file_size(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

// ---------------------------------------------------------------- sensor

/// `sensor run` with a private state dir, its JSON to `out_path`, its
/// stderr to target/bench/<name>-stderr.log; returned once it has started.
pub(crate) struct RunningSensor {
    pub child: Monitored,
    pub err_path: PathBuf,
}

impl RunningSensor {
    pub(crate) fn start(sensor: &Path, name: &str, out_path: &Path) -> Result<RunningSensor> {
        let err_path = Path::new(OUT_DIR).join(format!("{name}-stderr.log"));
        let out = std::fs::File::create(out_path)
            .with_context(|| format!("creating {}", out_path.display()))?;
        let state = scratch_dir(&format!("{name}-state"))?;
        let cfg = state.join("sensor.toml");
        std::fs::write(
            &cfg,
            format!("[agent]\nstate_dir = \"{}\"\n", state.display()),
        )
        .with_context(|| format!("writing {}", cfg.display()))?;
        let child = Command::new(sensor)
            .args(["run", "--config"])
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", sensor.display()))?;
        let mut child = Monitored(child);
        let stderr = StderrLog::follow(&mut child.0, &err_path)?;
        stderr.wait_for("sensor started", Duration::from_secs(60))?;
        Ok(RunningSensor { child, err_path })
    }
}

fn with_sensor(
    sensor: &Path,
    workers: usize,
    duration: Duration,
    marker: &str,
) -> Result<Scenario> {
    let out_path = Path::new(OUT_DIR).join("sensor-events.jsonl");
    let progs_before = bpf_programs();
    let RunningSensor {
        mut child,
        err_path,
    } = RunningSensor::start(sensor, "sensor", &out_path)?;
    // The sensor's programs: those that appeared with it.
    let ours: BTreeSet<u64> = bpf_programs()
        .into_keys()
        .filter(|id| !progs_before.contains_key(id))
        .collect();

    // The rate with the kernel's run-time accounting off, as in
    // production (bpf_stats reads the clock around every program run).
    let before = cost(child.0.id())?;
    let (execs, secs) = storm(workers, duration, marker);
    wait_until_quiet(|| file_size(&out_path));
    if let Ok(Some(status)) = child.0.try_wait() {
        bail!(
            "the sensor exited during the storm ({status}); its stderr is in {}",
            err_path.display()
        );
    }
    let after = cost(child.0.id())?;
    // Then the programs' run time per exec, in a shorter pass of its own
    // with the accounting on; its execs carry another marker, so they are
    // not counted with the storm's.
    let kernel_us_per_exec = BpfStats::enable()
        .filter(|_| !ours.is_empty())
        .map(|_stats| {
            let k0 = run_time_ns(&ours);
            let (n, _) = storm(
                workers,
                duration.min(KERNEL_PASS_MAX),
                &format!("{marker}-kernel-pass"),
            );
            run_time_ns(&ours).saturating_sub(k0) as f64 / 1e3 / n.max(1) as f64
        });
    wait_until_quiet(|| file_size(&out_path));
    child.stop()?;

    let (execs_seen, lost) = read_sensor_output(&out_path, marker)?;
    // Counted: the output is not kept (gigabytes over a few runs); the
    // sensor's stderr stays beside the report.
    let _ = std::fs::remove_file(&out_path);
    Ok(Scenario {
        name: "sensor",
        execs,
        seconds: secs,
        monitor: Some(Monitor {
            cpu_seconds: after.cpu_seconds - before.cpu_seconds,
            kernel_us_per_exec,
            peak_rss_kib: after.peak_rss_kib,
            rss_kib: after.rss_kib,
            execs_seen,
            lost,
            note: "fork+exec+exit events, enriched, JSON lines to a file; kernel = its BPF programs' run time".into(),
        }),
        failed: None,
    })
}

/// Exec events of the storm (`event.action` `exec` with the marker in
/// `process.args`) and the loss events' counts by `sensor.lost.kind`.
fn read_sensor_output(path: &Path, marker: &str) -> Result<(u64, BTreeMap<String, u64>)> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let (mut seen, mut lost) = (0u64, BTreeMap::new());
    for line in BufReader::new(file).split(b'\n') {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        let Ok(v) = serde_json::from_slice::<Value>(&line) else {
            continue;
        };
        match v.pointer("/event/action").and_then(Value::as_str) {
            Some("exec") => {
                let args = v.pointer("/process/args").and_then(Value::as_array);
                if args.is_some_and(|a| a.iter().any(|x| x.as_str() == Some(marker))) {
                    seen += 1;
                }
            }
            Some("lost") => {
                let kind = v
                    .pointer("/sensor/lost/kind")
                    .and_then(Value::as_str)
                    .unwrap_or("?");
                let count = v
                    .pointer("/sensor/lost/count")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                *lost.entry(kind.to_owned()).or_insert(0) += count;
            }
            _ => {}
        }
    }
    Ok((seen, lost))
}

/// Turns on the kernel's per-program run-time accounting while alive.
pub(crate) struct BpfStats {
    previous: String,
}

const BPF_STATS: &str = "/proc/sys/kernel/bpf_stats_enabled";

impl BpfStats {
    pub(crate) fn enable() -> Option<BpfStats> {
        let previous = std::fs::read_to_string(BPF_STATS).ok()?;
        std::fs::write(BPF_STATS, "1").ok()?;
        // bpftool reads the counters; without it there is nothing to report.
        if Command::new("bpftool").arg("version").output().is_err() {
            let _ = std::fs::write(BPF_STATS, &previous);
            return None;
        }
        Some(BpfStats { previous })
    }
}

impl Drop for BpfStats {
    fn drop(&mut self) {
        let _ = std::fs::write(BPF_STATS, self.previous.trim());
    }
}

/// Loaded BPF programs: id → (name, run_time_ns, run_cnt), for the
/// per-program breakdown that says where the kernel-side time goes.
pub(crate) fn bpf_program_runs() -> BTreeMap<u64, (String, u64, u64)> {
    let Ok(out) = Command::new("bpftool")
        .args(["-j", "prog", "show"])
        .output()
    else {
        return BTreeMap::new();
    };
    let Ok(Value::Array(progs)) = serde_json::from_slice::<Value>(&out.stdout) else {
        return BTreeMap::new();
    };
    let num = |p: &Value, k: &str| p.get(k).and_then(Value::as_u64).unwrap_or(0);
    progs
        .iter()
        .filter_map(|p| {
            let name = p
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_owned();
            Some((
                p.get("id")?.as_u64()?,
                (name, num(p, "run_time_ns"), num(p, "run_cnt")),
            ))
        })
        .collect()
}

/// Loaded BPF programs: id → run_time_ns.
pub(crate) fn bpf_programs() -> BTreeMap<u64, u64> {
    bpf_program_runs()
        .into_iter()
        .map(|(id, (_, ns, _))| (id, ns))
        .collect()
}

/// The run time so far (bpf_stats) of the programs `ours`, summed.
pub(crate) fn run_time_ns(ours: &BTreeSet<u64>) -> u64 {
    let progs = bpf_programs();
    ours.iter().filter_map(|id| progs.get(id)).sum()
}

/// The longest pass with bpf_stats on: per-run times settle within
/// seconds, and the measured (rate) pass is the long one.
pub(crate) const KERNEL_PASS_MAX: Duration = Duration::from_secs(3);

// ---------------------------------------------------------------- auditd

fn with_auditd(workers: usize, duration: Duration, marker: &str) -> Result<Scenario> {
    let auditd = PrivateAuditd::start(&[&[
        "-a",
        "always,exit",
        "-F",
        "arch=b64",
        "-S",
        "execve",
        "-k",
        "sensor-bench",
    ]])?;
    let (pid, log) = (auditd.pid, auditd.log.clone());

    let kauditd = setup::pids_named("kauditd").first().map(|&p| p as u32);
    let kauditd_cpu = || kauditd.and_then(|p| cost(p).ok()).map(|c| c.cpu_seconds);
    let lost_before = AuditStatus::read()?.lost;
    let kernel_before = kauditd_cpu();
    let before = cost(pid)?;
    let (execs, secs) = storm(workers, duration, marker);
    wait_until_quiet(|| file_size(&log));
    let after = cost(pid)?;
    let kernel_after = kauditd_cpu();
    let lost = AuditStatus::read()?.lost.saturating_sub(lost_before);
    drop(auditd);

    // One EXECVE record per exec, holding the argv (quoted, or hex when it
    // has special characters).
    let hex_marker: String = marker.bytes().map(|b| format!("{b:02X}")).collect();
    let text = std::fs::read(&log).with_context(|| format!("reading {}", log.display()))?;
    let execs_seen = text
        .split(|&b| b == b'\n')
        .map(String::from_utf8_lossy)
        .filter(|l| l.starts_with("type=EXECVE") && (l.contains(marker) || l.contains(&hex_marker)))
        .count() as u64;
    let kernel_us_per_exec = kernel_before
        .zip(kernel_after)
        .map(|(b, a)| (a - b) * 1e6 / execs.max(1) as f64);
    Ok(Scenario {
        name: "auditd",
        execs,
        seconds: secs,
        monitor: Some(Monitor {
            cpu_seconds: after.cpu_seconds - before.cpu_seconds,
            kernel_us_per_exec,
            peak_rss_kib: after.peak_rss_kib,
            rss_kib: after.rss_kib,
            execs_seen,
            lost: BTreeMap::from([("audit records".to_owned(), lost)]),
            note: "execve rule and Debian's default rules, raw records to a file, no enrichment; \
                   kernel = kauditd's CPU (the audit work in each syscall is not counted)"
                .into(),
        }),
        failed: None,
    })
}

/// Debian's auditd, run in the foreground as the audit daemon with a
/// private configuration (log in target/bench, no rotation) and `rules`;
/// stopped, with the rules deleted and the audit settings restored, when
/// dropped.
pub(crate) struct PrivateAuditd {
    _guard: AuditGuard,
    _stderr: StderrLog,
    pub pid: u32,
    pub log: PathBuf,
}

impl PrivateAuditd {
    pub(crate) fn start(rules: &[&[&str]]) -> Result<PrivateAuditd> {
        if Command::new("auditctl").arg("-v").output().is_err() {
            bail!("auditd is not installed (`cargo xtask setup` installs it)");
        }
        let running = setup::pids_named("auditd");
        if !running.is_empty() {
            bail!("an auditd is already running (pids {running:?}): stop it to run this scenario");
        }
        let initial = AuditStatus::read()?;
        if initial.pid != 0 {
            bail!(
                "process {} already holds the audit socket as the audit daemon",
                initial.pid
            );
        }

        // A private configuration: Debian's, with the log in target/bench and no
        // rotation, so every record of the storm can be counted afterwards.
        let conf_dir = scratch_dir("auditd-conf")?;
        let log_dir = std::path::absolute(Path::new(OUT_DIR).join("audit"))
            .context("resolving target/bench/audit")?;
        let _ = std::fs::remove_dir_all(&log_dir);
        std::fs::create_dir_all(&log_dir)
            .with_context(|| format!("creating {}", log_dir.display()))?;
        let log = log_dir.join("audit.log");
        let conf = std::fs::read_to_string("/etc/audit/auditd.conf")
            .context("reading /etc/audit/auditd.conf")?;
        let conf = private_auditd_conf(&conf, &log);
        std::fs::write(conf_dir.join("auditd.conf"), conf)
            .context("writing the private auditd.conf")?;
        // auditd refuses a config that others can write.
        set_mode(&conf_dir.join("auditd.conf"), 0o640)?;

        // -n: stay in the foreground so we own its pid and can measure it.
        let child = Command::new("auditd")
            .arg("-n")
            .arg("-c")
            .arg(&conf_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting auditd")?;
        let mut guard = AuditGuard {
            child: Monitored(child),
            initial,
        };
        let err_path = Path::new(OUT_DIR).join("auditd-stderr.log");
        let _stderr = StderrLog::follow(&mut guard.child.0, &err_path)?;
        let pid = guard.child.0.id();
        let deadline = Instant::now() + Duration::from_secs(15);
        while AuditStatus::read()?.pid != pid {
            if let Ok(Some(status)) = guard.child.0.try_wait() {
                bail!(
                    "auditd exited at start ({status}); see {}",
                    err_path.display()
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "auditd did not register as the audit daemon within 15 s; see {}",
                    err_path.display()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // Debian's default rules (buffer size, backlog wait) as its service
        // would load them, then the scenario's rules.
        if Path::new("/etc/audit/rules.d/audit.rules").exists() {
            cmd::stdout(
                Command::new("auditctl").args(["-R", "/etc/audit/rules.d/audit.rules"]),
                "auditctl -R",
            )?;
        }
        for rule in rules {
            cmd::stdout(
                Command::new("auditctl").args(*rule),
                "auditctl (a benchmark rule)",
            )?;
        }
        cmd::stdout(Command::new("auditctl").args(["-e", "1"]), "auditctl -e 1")?;

        Ok(PrivateAuditd {
            _guard: guard,
            _stderr,
            pid,
            log,
        })
    }
}

/// Debian's auditd.conf with the log moved to `log` and rotation off.
fn private_auditd_conf(conf: &str, log: &Path) -> String {
    let mut out = String::new();
    for line in conf.lines() {
        let key = line.split('=').next().unwrap_or("").trim();
        if !matches!(key, "log_file" | "max_log_file_action" | "max_log_file") {
            out.push_str(line);
            out.push('\n');
        }
    }
    let _ = writeln!(
        out,
        "log_file = {}\nmax_log_file = 4096\nmax_log_file_action = IGNORE",
        log.display()
    );
    out
}

/// The fields of `auditctl -s` the bench uses or restores.
pub(crate) struct AuditStatus {
    enabled: u64,
    failure: u64,
    pid: u32,
    pub lost: u64,
    backlog_limit: u64,
    backlog_wait_time: u64,
}

impl AuditStatus {
    pub(crate) fn read() -> Result<AuditStatus> {
        let s = cmd::stdout(Command::new("auditctl").arg("-s"), "auditctl -s")?;
        let field = |name: &str| {
            s.lines()
                .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        Ok(AuditStatus {
            enabled: field("enabled"),
            failure: field("failure"),
            pid: field("pid") as u32,
            lost: field("lost"),
            backlog_limit: field("backlog_limit"),
            backlog_wait_time: field("backlog_wait_time"),
        })
    }
}

/// Stops auditd, deletes the rules and puts the audit settings back as they
/// were, however the scenario ends.
struct AuditGuard {
    child: Monitored,
    initial: AuditStatus,
}

impl Drop for AuditGuard {
    fn drop(&mut self) {
        let _ = Command::new("auditctl").arg("-D").output();
        let _ = self.child.stop();
        let i = &self.initial;
        let _ = Command::new("auditctl")
            .args(["-b", &i.backlog_limit.to_string()])
            .output();
        let _ = Command::new("auditctl")
            .args(["--backlog_wait_time", &i.backlog_wait_time.to_string()])
            .output();
        let _ = Command::new("auditctl")
            .args(["-f", &i.failure.to_string()])
            .output();
        let _ = Command::new("auditctl")
            .args(["-e", &i.enabled.to_string()])
            .output();
    }
}

// ---------------------------------------------------------------- helpers

/// A monitor process that is stopped (SIGTERM, then SIGKILL) when dropped.
pub(crate) struct Monitored(pub Child);

impl Monitored {
    pub(crate) fn stop(&mut self) -> Result<()> {
        if self.0.try_wait().ok().flatten().is_some() {
            return Ok(());
        }
        // SAFETY: a signal to our own child, which has not been reaped.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self
                .0
                .try_wait()
                .context("waiting for the monitor to exit")?
                .is_some()
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        self.0.wait().context("waiting for the monitor to exit")?;
        bail!("the monitor ignored SIGTERM for 10 s and was killed")
    }
}

impl Drop for Monitored {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// A child's stderr, copied to a file and watched for a line.
pub(crate) struct StderrLog {
    lines: mpsc::Receiver<Option<String>>,
    path: PathBuf,
}

impl StderrLog {
    pub(crate) fn follow(child: &mut Child, path: &Path) -> Result<StderrLog> {
        use std::io::Write as _;
        let stderr = child.stderr.take().context("stderr not piped")?;
        let mut file =
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let _ = writeln!(file, "{line}");
                let _ = tx.send(Some(line));
            }
            let _ = tx.send(None);
        });
        Ok(StderrLog {
            lines: rx,
            path: path.to_path_buf(),
        })
    }

    /// Waits for a line containing `needle`; fails if the stream ends first.
    pub(crate) fn wait_for(&self, needle: &str, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut tail: Vec<String> = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(Some(line)) if line.contains(needle) => return Ok(()),
                Ok(Some(line)) => {
                    tail.push(line);
                    if tail.len() > 10 {
                        tail.remove(0);
                    }
                }
                Ok(None) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                    bail!("it exited before saying \"{needle}\":\n{}", tail.join("\n"))
                }
                Err(mpsc::RecvTimeoutError::Timeout) => bail!(
                    "no \"{needle}\" within {} s (stderr in {}):\n{}",
                    timeout.as_secs(),
                    self.path.display(),
                    tail.join("\n")
                ),
            }
        }
    }
}

pub(crate) fn scratch_dir(name: &str) -> Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("sensor-bench-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
    Ok(d)
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {}", path.display()))
}

// ---------------------------------------------------------------- report

fn render(scenarios: &[Scenario], workers: usize, seconds: u64) -> String {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut r = String::new();
    let _ = writeln!(r, "# Exec storm benchmark\n");
    let _ = writeln!(
        r,
        "{workers} threads spawning `/bin/true` for {seconds} s per scenario, kernel {}, {workers} CPUs. \
         Each exec is also a fork and an exit.\n",
        kernel.trim()
    );
    let _ = writeln!(
        r,
        "| scenario | execs/s | monitor CPU µs/exec | kernel µs/exec | RSS end (peak) | execs reported | lost (reported) | note |"
    );
    let _ = writeln!(r, "|---|---:|---:|---:|---:|---:|---:|---|");
    let baseline = scenarios
        .iter()
        .find(|s| s.name == "baseline" && s.failed.is_none())
        .map(rate);
    for s in scenarios {
        if let Some(why) = &s.failed {
            let why = why.replace('\n', " ").replace('|', "\\|");
            let _ = writeln!(r, "| {} | failed | | | | | | {why} |", s.name);
            continue;
        }
        let rate_text = match baseline {
            Some(b) if s.name != "baseline" && b > 0.0 => {
                format!("{:.0} ({:+.0}%)", rate(s), (rate(s) / b - 1.0) * 100.0)
            }
            _ => format!("{:.0}", rate(s)),
        };
        let Some(m) = &s.monitor else {
            let _ = writeln!(
                r,
                "| {} | {rate_text} | – | – | – | – | – | nothing watching |",
                s.name
            );
            continue;
        };
        let per_exec = |secs: f64| secs * 1e6 / s.execs.max(1) as f64;
        let kernel = m
            .kernel_us_per_exec
            .map_or("n/a".to_owned(), |k| format!("{k:.1}"));
        let lost = if m.lost.is_empty() {
            "0".to_owned()
        } else {
            m.lost
                .iter()
                .map(|(k, n)| format!("{n} {k}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            r,
            "| {} | {rate_text} | {:.1} | {kernel} | {:.1} MiB ({:.1} MiB) | {} of {} | {lost} | {} |",
            s.name,
            per_exec(m.cpu_seconds),
            m.rss_kib as f64 / 1024.0,
            m.peak_rss_kib as f64 / 1024.0,
            m.execs_seen,
            s.execs,
            m.note
        );
    }
    let _ = writeln!(
        r,
        "\n- execs/s: the storm's rate; the difference from the baseline is what watching costs \
         the workload (in-kernel work included).\n\
         - monitor CPU: the monitoring process's user+system time (/proc/PID/stat) divided by \
         the execs performed; for the sensor it covers the fork and exit events too.\n\
         - kernel: for the sensor, its BPF programs' run time (kernel.bpf_stats_enabled, read \
         with bpftool), from a shorter storm of its own after the measured one (the accounting \
         reads the clock around every program run, so execs/s is measured with it off); for \
         auditd, kauditd's CPU time.\n\
         - RSS: VmRSS at the end of the storm and VmHWM. The sensor's includes its ring buffer, \
         which the kernel maps into it.\n\
         - execs reported: the storm's execs that came out of the monitor. Execs neither \
         reported nor counted as lost are silent loss."
    );
    r
}

fn rate(s: &Scenario) -> f64 {
    s.execs as f64 / s.seconds.max(f64::EPSILON)
}

/// Runs one of the sensor's hidden bench subcommands (`what`), which prints
/// its report as one JSON line.
pub fn sensor_report(c: &mut Command, what: &str) -> Result<serde_json::Value> {
    let out = c
        .output()
        .with_context(|| format!("running sensor {what}"))?;
    if !out.status.success() {
        bail!(
            "sensor {what} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let line = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(line.trim()).with_context(|| format!("reading the {what} report: {line}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensor_output_counts_marked_execs_and_losses_by_kind() {
        let dir = std::env::temp_dir().join(format!("xtask-bench-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let p = dir.join("out.jsonl");
        let lines = [
            r#"{"event":{"action":"exec"},"process":{"pid":1,"args":["/bin/true","m-1"]}}"#,
            r#"{"event":{"action":"exec"},"process":{"pid":2,"args":["/bin/true","other"]}}"#,
            r#"{"event":{"action":"exit"},"process":{"pid":1,"args":["/bin/true","m-1"]}}"#,
            r#"{"event":{"action":"lost"},"sensor":{"lost":{"source":"ring","kind":"exec","count":3}}}"#,
            r#"{"event":{"action":"lost"},"sensor":{"lost":{"source":"ring","kind":"exec","count":2}}}"#,
            r#"{"event":{"action":"lost"},"sensor":{"lost":{"source":"ring","kind":"fork","count":7}}}"#,
            "not json",
        ];
        std::fs::write(&p, lines.join("\n")).expect("write");
        let (seen, lost) = read_sensor_output(&p, "m-1").expect("read");
        assert_eq!(seen, 1);
        assert_eq!(
            lost,
            BTreeMap::from([("exec".to_owned(), 5), ("fork".to_owned(), 7)])
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn private_auditd_conf_moves_the_log_and_turns_rotation_off() {
        let conf = "log_file = /var/log/audit/audit.log\nmax_log_file = 8\nmax_log_file_action = ROTATE\nfreq = 50\n";
        let out = private_auditd_conf(conf, Path::new("/x/audit.log"));
        assert!(out.contains("freq = 50"));
        assert!(out.contains("log_file = /x/audit.log"));
        assert!(out.contains("max_log_file_action = IGNORE"));
        assert!(!out.contains("/var/log/audit") && !out.contains("ROTATE"));
    }
}
