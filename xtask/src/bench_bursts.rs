//! `cargo xtask bench`, the cost of one traced syscall: how much longer a
//! chmod, or a loopback connect and its accept, takes with the sensor (or
//! auditd) than without, with every event delivered.
//!
//! One thread pinned to CPU 0 times bursts of operations, with a pause
//! after each in which the monitor (free to run on the other CPUs)
//! delivers them; the fastest burst is a scenario's figure, as noise on a
//! shared machine only ever slows a burst down. The flat-out rows of the
//! syscall table cannot give this figure: there the ring buffer is full
//! most of the time, and a dropped event costs the kernel less than a
//! delivered one.
//!
//! A connect operation is two traced syscalls (the connect, and the
//! accept on the listener, in the same thread) and the TCP state changes
//! between them, which the sensor also watches: the table gives its added
//! time per operation and per traced syscall.
//!
//! The scenarios take turns in [`ROUNDS`] rounds (baseline, each sensor
//! started afresh, auditd; then again): on this kind of machine the speed
//! of the same loop drifts by a third over minutes, which would otherwise
//! land on whichever scenario ran in a slow minute. Two builds of the
//! sensor can be compared this way too (`--sensor A --sensor B`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use crate::bench::{
    AuditStatus, BpfStats, OUT_DIR, PrivateAuditd, RunningSensor, bpf_programs, file_size,
    run_time_ns, wait_until_quiet,
};
use crate::bench_syscalls::{
    AUDIT_RULES, Setup, Workload, audit_records, count_sensor_events, lost_text, reset_on_close,
    scenario_name,
};

/// The workloads timed in bursts.
const WORKLOADS: [Workload; 2] = [Workload::Chmod, Workload::Connect];

/// Operations per burst of `w`, and the least pause after each. A burst's
/// events (~3 MiB of chmods; of connects and accepts, ~5 MiB) fit the
/// default 8 MiB ring buffer, and the pause is long enough for the sensor
/// to deliver them (~8 µs each) on a calm machine; on a slow one the
/// pause lasts until the monitor's output stops growing ([`SETTLED`]), so
/// that every burst starts with the ring buffer empty (a full one drops
/// events, which costs the kernel less than sending them, and would
/// flatter the figure).
fn burst_len(w: Workload) -> u64 {
    match w {
        Workload::Connect => 4_000,
        _ => 10_000,
    }
}
const BURST_PAUSE: Duration = Duration::from_millis(150);
/// The output counts as settled when it did not grow for this long.
const SETTLED: Duration = Duration::from_millis(50);

/// Rounds in which every scenario runs once.
const ROUNDS: usize = 3;

/// How long a sensor's bursts run again with bpf_stats on (see [`bpf_pass`]).
const BPF_PASS: Duration = Duration::from_secs(2);

/// Traced syscalls per operation of `w`: a connect's accept is one too.
fn traced_per_op(w: Workload) -> u64 {
    match w {
        Workload::Connect => 2,
        _ => 1,
    }
}

/// One scenario's bursts of one workload over all rounds.
struct Column {
    workload: Workload,
    name: String,
    /// Each round's fastest burst, in ns per chmod (None: that round failed).
    bests: Vec<Option<f64>>,
    /// Each round's BPF run time per operation (bpf_stats), for sensors.
    bpf_ns: Vec<f64>,
    /// Operations timed, events (or audit records) of them that came out,
    /// and the losses the monitor reported.
    ops: u64,
    reported: Option<u64>,
    lost: BTreeMap<String, u64>,
    failed: Option<String>,
}

impl Column {
    fn new(workload: Workload, name: String) -> Column {
        Column {
            workload,
            name,
            bests: Vec::new(),
            bpf_ns: Vec::new(),
            ops: 0,
            reported: None,
            lost: BTreeMap::new(),
            failed: None,
        }
    }

    fn best(&self) -> Option<f64> {
        self.bests.iter().flatten().copied().reduce(f64::min)
    }

    /// The least BPF run time per operation over the rounds: the round
    /// least disturbed by the rest of the machine.
    fn bpf_best(&self) -> Option<f64> {
        self.bpf_ns.iter().copied().reduce(f64::min)
    }

    /// Adds one round: its run and what the monitor reported of it.
    fn push(&mut self, round: Result<Round>) {
        match round {
            Ok(round) => {
                self.bests.push(round.run.best_ns_per_op);
                self.ops += round.run.ops;
                if let Some(n) = round.reported {
                    *self.reported.get_or_insert(0) += n;
                }
                for (k, n) in round.lost {
                    *self.lost.entry(k).or_insert(0) += n;
                }
                self.bpf_ns.extend(round.bpf_ns_per_op);
            }
            Err(e) => {
                eprintln!(
                    "bench: {} bursts, {} failed: {e:#}",
                    self.workload.name(),
                    self.name
                );
                self.bests.push(None);
                self.failed.get_or_insert(format!("{e:#}"));
            }
        }
    }
}

pub fn run(sensors: &[PathBuf], seconds: u64) -> Result<String> {
    let duration = Duration::from_secs(seconds);
    let setup = Setup::new(1)?;
    let mut names = vec!["baseline".to_owned()];
    names.extend((0..sensors.len()).map(|i| scenario_name(sensors, i)));
    names.push("auditd".to_owned());
    // Per workload, one column per scenario, in `names`' order.
    let mut columns: Vec<Vec<Column>> = WORKLOADS
        .iter()
        .map(|&w| names.iter().map(|n| Column::new(w, n.clone())).collect())
        .collect();
    // Warm-up, so that the first round is not penalised.
    for w in WORKLOADS {
        bursts(w, &setup, Duration::from_millis(500), None);
    }
    for round in 1..=ROUNDS {
        println!("bench: bursts, round {round} of {ROUNDS}");
        // Scenario s's rounds of every workload, pushed into column s of each.
        let mut push = |s: usize, rounds: Result<Vec<Round>>| match rounds {
            Ok(rounds) => {
                for (w, r) in columns.iter_mut().zip(rounds) {
                    w[s].push(Ok(r));
                }
            }
            Err(e) => {
                let why = format!("{e:#}");
                for w in &mut columns {
                    w[s].push(Err(anyhow::anyhow!("{why}")));
                }
            }
        };
        push(
            0,
            Ok(WORKLOADS
                .iter()
                .map(|&w| Round::of(bursts(w, &setup, duration, None)))
                .collect()),
        );
        for (i, sensor) in sensors.iter().enumerate() {
            push(1 + i, with_sensor(sensor, i, &setup, duration));
        }
        push(names.len() - 1, with_auditd(&setup, duration));
    }
    let _ = std::fs::remove_dir_all(&setup.dir);
    Ok(render(&columns, seconds))
}

/// One scenario's round: its bursts, and what its monitor reported.
struct Round {
    run: Run,
    /// The events (or audit records) of the chmods that came out.
    reported: Option<u64>,
    /// The losses the monitor reported, by what lost them.
    lost: BTreeMap<String, u64>,
    /// The sensor's BPF run time per chmod ([`bpf_pass`]).
    bpf_ns_per_op: Option<f64>,
}

impl Round {
    /// A round without a monitor.
    fn of(run: Run) -> Round {
        Round {
            run,
            reported: None,
            lost: BTreeMap::new(),
            bpf_ns_per_op: None,
        }
    }
}

/// What one scenario's bursts did.
struct Run {
    ops: u64,
    /// The fastest burst's ns per operation.
    best_ns_per_op: Option<f64>,
}

/// Times bursts of [`burst_len`] operations of `w` for `duration`, from
/// a thread pinned to CPU 0; after each, waits out [`BURST_PAUSE`] and
/// then until the monitor's `output` (if any) has settled.
fn bursts(w: Workload, setup: &Setup, duration: Duration, output: Option<&Path>) -> Run {
    let file = setup.files[0].clone();
    let (listener, port) = (setup.listener.clone(), setup.port);
    let output = output.map(Path::to_path_buf);
    let burst = burst_len(w);
    let thread = std::thread::spawn(move || {
        // SAFETY: a zeroed cpu_set_t with CPU 0 set, for this thread (pid 0).
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(0, &mut set);
            libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set);
        }
        let start = Instant::now();
        let (mut ops, mut best) = (0u64, f64::INFINITY);
        while start.elapsed() < duration {
            let t = Instant::now();
            for i in 0..burst {
                match w {
                    Workload::Connect => {
                        // The handshake completes within the connect
                        // (loopback), so the accept does not wait.
                        if let Ok(client) = TcpStream::connect(("127.0.0.1", port)) {
                            reset_on_close(&client);
                            let _ = listener.accept();
                        }
                    }
                    // SAFETY: a valid C string.
                    _ => unsafe {
                        libc::chmod(file.as_ptr(), if i % 2 == 0 { 0o600 } else { 0o644 });
                    },
                }
            }
            best = best.min(t.elapsed().as_nanos() as f64 / burst as f64);
            ops += burst;
            std::thread::sleep(BURST_PAUSE);
            if let Some(out) = &output {
                wait_until_settled(out);
            }
        }
        Run {
            ops,
            best_ns_per_op: best.is_finite().then_some(best),
        }
    });
    thread.join().unwrap_or(Run {
        ops: 0,
        best_ns_per_op: None,
    })
}

/// Waits until `path` has not grown for [`SETTLED`], at most 10 s.
fn wait_until_settled(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = file_size(path);
    while Instant::now() < deadline {
        std::thread::sleep(SETTLED);
        let now = file_size(path);
        if now == last {
            return;
        }
        last = now;
    }
}

/// One round with the sensor: started afresh; each workload's bursts,
/// then each one's BPF pass; stopped once its output is quiet. Per
/// workload, the events it wrote and the losses it reported during the
/// timed bursts.
fn with_sensor(
    sensor: &Path,
    index: usize,
    setup: &Setup,
    duration: Duration,
) -> Result<Vec<Round>> {
    let out_path = Path::new(OUT_DIR).join(format!("sensor-bursts-{}.jsonl", index + 1));
    let before = bpf_programs();
    let RunningSensor { mut child, .. } =
        RunningSensor::start(sensor, &format!("sensor-bursts-{}", index + 1), &out_path)?;
    let ours: BTreeSet<u64> = bpf_programs()
        .into_keys()
        .filter(|id| !before.contains_key(id))
        .collect();
    let mut timed = Vec::new();
    for w in WORKLOADS {
        let start = file_size(&out_path);
        let run = bursts(w, setup, duration, Some(&out_path));
        wait_until_quiet(|| file_size(&out_path));
        timed.push((w, run, start..file_size(&out_path)));
    }
    let bpf: Vec<Option<f64>> = WORKLOADS
        .iter()
        .map(|&w| bpf_pass(w, setup, &ours, &out_path))
        .collect();
    wait_until_quiet(|| file_size(&out_path));
    child.stop()?;
    let mut rounds = Vec::new();
    for ((w, run, range), bpf_ns_per_op) in timed.into_iter().zip(bpf) {
        let (counts, lost) = count_sensor_events(&out_path, setup, range)?;
        rounds.push(Round {
            reported: Some(counts.get(&w).copied().unwrap_or(0)),
            lost,
            bpf_ns_per_op,
            ..Round::of(run)
        });
    }
    let _ = std::fs::remove_file(&out_path);
    Ok(rounds)
}

/// The run time of the sensor's programs (`ours`) per operation of `w`,
/// from bursts of [`BPF_PASS`] with the kernel's accounting on
/// (bpf_stats), after the timed ones: the accounting reads the clock
/// around every program run, which would slow the timed bursts. A
/// steadier figure than the added time when comparing builds on a machine
/// that drifts, but not the same one: it leaves out the tracepoints' own
/// machinery, adds the accounting's clock reads, and counts every run of
/// the sensor's programs in the pass, the other tasks' syscalls included.
/// None when the accounting cannot be turned on or read.
fn bpf_pass(w: Workload, setup: &Setup, ours: &BTreeSet<u64>, output: &Path) -> Option<f64> {
    if ours.is_empty() {
        return None;
    }
    let _stats = BpfStats::enable()?;
    let before = run_time_ns(ours);
    let run = bursts(w, setup, BPF_PASS, Some(output));
    let ns = run_time_ns(ours).saturating_sub(before);
    (run.ops > 0).then(|| ns as f64 / run.ops as f64)
}

/// One round with auditd (its chmod and connect rules): started, each
/// workload's bursts, stopped; per workload, the SYSCALL records it wrote
/// (of connects: auditd has no rule for the accept) and the kernel's
/// audit lost count.
fn with_auditd(setup: &Setup, duration: Duration) -> Result<Vec<Round>> {
    let auditd = PrivateAuditd::start(AUDIT_RULES)?;
    let mut timed = Vec::new();
    for w in WORKLOADS {
        let lost_before = AuditStatus::read()?.lost;
        let start = file_size(&auditd.log) as usize;
        let run = bursts(w, setup, duration, Some(&auditd.log));
        wait_until_quiet(|| file_size(&auditd.log));
        let lost = AuditStatus::read()?.lost.saturating_sub(lost_before);
        timed.push((w, run, start..file_size(&auditd.log) as usize, lost));
    }
    let log = auditd.log.clone();
    drop(auditd);
    let text = std::fs::read(&log).with_context(|| format!("reading {}", log.display()))?;
    Ok(timed
        .into_iter()
        .map(|(w, run, range, lost)| {
            let key = match w {
                Workload::Connect => "sensor-bench-connect",
                _ => "sensor-bench-chmod",
            };
            Round {
                reported: Some(audit_records(&text, key, range)),
                lost: BTreeMap::from([("audit records".to_owned(), lost)]),
                ..Round::of(run)
            }
        })
        .collect())
}

/// The table: per workload (`columns[w]`), a row per scenario, the
/// baseline first.
fn render(columns: &[Vec<Column>], seconds: u64) -> String {
    let mut r = String::new();
    let _ = writeln!(
        r,
        "\n# Added time per traced syscall (chmod, and connect with its accept, in bursts)\n"
    );
    let _ = writeln!(
        r,
        "{ROUNDS} rounds; in each, every scenario runs each workload for {seconds} s, one after the other.\n"
    );
    let _ = writeln!(
        r,
        "| workload | scenario | best burst ns/op | added ns/op | added per traced syscall | added in each round | BPF ns/op | reported | lost (reported) |"
    );
    let _ = writeln!(r, "|---|---|---:|---:|---:|---|---:|---:|---|");
    for workload in columns {
        let Some((base, others)) = workload.split_first() else {
            continue;
        };
        row(&mut r, base, None);
        for c in others {
            row(&mut r, c, Some(base));
        }
    }
    let _ = writeln!(
        r,
        "\n- One thread pinned to CPU 0 times bursts of operations ({} chmods; {} connects, \
         each with its accept), each followed by a pause of at least {} ms, until the \
         monitor (free to run on the other CPUs) has delivered them (its output stopped \
         growing), so that no burst runs into a full ring buffer. A scenario's figure is its \
         fastest burst over all rounds (noise only ever slows a burst); added ns/op is that \
         minus the baseline's fastest: what the kernel adds to each operation, its events \
         delivered.\n\
         - A connect operation is a loopback TCP connect and the accept of it on the \
         listener, in the same thread: two traced syscalls, and the TCP state changes \
         between them, which the sensor watches too (how a non-blocking connect ends). Added \
         per traced syscall is the added time per operation over those two.\n\
         - Added in each round: the same difference within each round, which shows how far \
         the machine drifted. The scenarios take turns so that a slow minute falls on all \
         of them; each sensor is started afresh in each round.\n\
         - BPF ns/op: the sensor's programs' run time per operation (bpf_stats) in {} s of \
         bursts after the timed ones, the least over the rounds. Steadier than the added time \
         for comparing builds, but not the same figure: it leaves out the tracepoints' own \
         machinery, includes the accounting's clock reads and the runs for other tasks' \
         syscalls.\n\
         - reported: chmod and connect events that came out of the sensor (auditd: SYSCALL \
         records with its rule's key; it has no rule for accept), of the operations timed.",
        burst_len(Workload::Chmod),
        burst_len(Workload::Connect),
        BURST_PAUSE.as_millis(),
        BPF_PASS.as_secs()
    );
    r
}

/// One scenario's row of the table; `base` is the baseline's column of
/// the same workload (None: this is it).
fn row(r: &mut String, c: &Column, base: Option<&Column>) {
    let dash = || "–".to_owned();
    let best = c.best().map_or_else(dash, |b| format!("{b:.0}"));
    let added = match (c.best(), base.and_then(Column::best)) {
        (Some(b), Some(base)) => Some(b - base),
        _ => None,
    };
    let per_syscall = added.map_or_else(dash, |a| {
        format!("{:.0}", a / traced_per_op(c.workload) as f64)
    });
    let added = added.map_or_else(dash, |a| format!("**{a:.0}**"));
    let rounds = match base {
        None => dash(),
        Some(base) => c
            .bests
            .iter()
            .zip(&base.bests)
            .map(|(b, base)| match (b, base) {
                (Some(b), Some(base)) => format!("{:.0}", b - base),
                _ => dash(),
            })
            .collect::<Vec<_>>()
            .join(", "),
    };
    let bpf = c.bpf_best().map_or_else(dash, |ns| format!("{ns:.0}"));
    let reported = c
        .reported
        .map_or_else(dash, |n| format!("{n} of {}", c.ops));
    let lost = if base.is_none() {
        dash()
    } else {
        lost_text(&c.lost)
    };
    let failed = c.failed.as_ref().map_or(String::new(), |why| {
        format!(" (failed: {})", why.replace(['\n', '|'], " "))
    });
    let _ = writeln!(
        r,
        "| {} | {}{failed} | {best} | {added} | {per_syscall} | {rounds} | {bpf} | {reported} | {lost} |",
        c.workload.name(),
        c.name
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(w: Workload, name: &str, bests: &[Option<f64>]) -> Column {
        Column {
            bests: bests.to_vec(),
            ops: 30_000,
            reported: (name != "baseline").then_some(30_000),
            bpf_ns: if name == "baseline" {
                Vec::new()
            } else {
                vec![412.4, 398.6]
            },
            ..Column::new(w, name.to_owned())
        }
    }

    fn find_row<'a>(report: &'a str, start: &str) -> &'a str {
        report
            .lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no row starting {start:?} in\n{report}"))
    }

    /// Added is the fastest bursts' difference over all rounds, and each
    /// round's difference is shown beside it; a failed round shows as such.
    /// A connect's added time is shared by its two traced syscalls.
    #[test]
    fn added_time_is_the_fastest_bursts_difference() {
        let report = render(
            &[
                vec![
                    column(
                        Workload::Chmod,
                        "baseline",
                        &[Some(640.0), Some(600.0), Some(900.0)],
                    ),
                    column(Workload::Chmod, "sensor", &[Some(950.0), Some(930.0), None]),
                ],
                vec![
                    column(
                        Workload::Connect,
                        "baseline",
                        &[Some(9000.0), Some(8800.0), None],
                    ),
                    column(
                        Workload::Connect,
                        "sensor",
                        &[Some(9700.0), Some(9900.0), None],
                    ),
                ],
            ],
            5,
        );
        let row = find_row(&report, "| chmod | sensor |");
        assert!(
            row.contains("| 930 | **330** | 330 | 310, 330, – | 399 | 30000 of 30000 | 0 |"),
            "{row}"
        );
        let base = find_row(&report, "| chmod | baseline |");
        assert!(base.contains("| 600 | – | – | – | – |"), "{base}");
        let connect = find_row(&report, "| connect (+accept) on loopback | sensor |");
        assert!(
            connect.contains("| 9700 | **900** | 450 | 700, 1100, – |"),
            "{connect}"
        );
    }
}
