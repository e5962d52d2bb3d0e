//! `cargo xtask bench`, the cost of one traced syscall: how much longer a
//! chmod takes with the sensor (or auditd) than without, with every event
//! delivered.
//!
//! One thread pinned to CPU 0 times bursts of [`BURST`] chmods, with a
//! pause after each in which the monitor (free to run on the other CPUs)
//! delivers them; the fastest burst is a scenario's figure, as noise on a
//! shared machine only ever slows a burst down. The flat-out rows of the
//! syscall table cannot give this figure: there the ring buffer is full
//! most of the time, and a dropped event costs the kernel less than a
//! delivered one.
//!
//! The scenarios take turns in [`ROUNDS`] rounds (baseline, each sensor
//! started afresh, auditd; then again): on this kind of machine the speed
//! of the same loop drifts by a third over minutes, which would otherwise
//! land on whichever scenario ran in a slow minute. Two builds of the
//! sensor can be compared this way too (`--sensor A --sensor B`).

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use crate::bench::{
    AuditStatus, BpfStats, OUT_DIR, PrivateAuditd, RunningSensor, bpf_programs, file_size,
    run_time_ns, wait_until_quiet,
};
use crate::bench_syscalls::{
    AUDIT_RULES, Setup, Workload, audit_records, count_sensor_events, lost_text, scenario_name,
};

/// Chmods per burst, and the least pause after each. A burst's events
/// (~3 MiB) fit the default 8 MiB ring buffer, and the pause is long
/// enough for the sensor to deliver them (~8 µs each) on a calm machine;
/// on a slow one the pause lasts until the monitor's output stops growing
/// ([`SETTLED`]), so that every burst starts with the ring buffer empty
/// (a full one drops events, which costs the kernel less than sending
/// them, and would flatter the figure).
const BURST: u64 = 10_000;
const BURST_PAUSE: Duration = Duration::from_millis(150);
/// The output counts as settled when it did not grow for this long.
const SETTLED: Duration = Duration::from_millis(50);

/// Rounds in which every scenario runs once.
const ROUNDS: usize = 3;

/// How long a sensor's bursts run again with bpf_stats on (see [`bpf_pass`]).
const BPF_PASS: Duration = Duration::from_secs(2);

/// One scenario over all rounds.
struct Column {
    name: String,
    /// Each round's fastest burst, in ns per chmod (None: that round failed).
    bests: Vec<Option<f64>>,
    /// Each round's BPF run time per chmod (bpf_stats), for sensors.
    bpf_ns: Vec<f64>,
    /// Chmods timed, events (or audit records) of them that came out, and
    /// the losses the monitor reported.
    ops: u64,
    reported: Option<u64>,
    lost: BTreeMap<String, u64>,
    failed: Option<String>,
}

impl Column {
    fn new(name: String) -> Column {
        Column {
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

    /// The least BPF run time per chmod over the rounds: the round
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
                eprintln!("bench: chmod bursts, {} failed: {e:#}", self.name);
                self.bests.push(None);
                self.failed.get_or_insert(format!("{e:#}"));
            }
        }
    }
}

pub fn run(sensors: &[PathBuf], seconds: u64) -> Result<String> {
    let duration = Duration::from_secs(seconds);
    let setup = Setup::new(1)?;
    let file = &setup.files[0];
    let mut columns = vec![Column::new("baseline".to_owned())];
    columns.extend((0..sensors.len()).map(|i| Column::new(scenario_name(sensors, i))));
    columns.push(Column::new("auditd".to_owned()));
    // Warm-up, so that the first round is not penalised.
    bursts(file, Duration::from_millis(500), None);
    for round in 1..=ROUNDS {
        println!("bench: chmod bursts, round {round} of {ROUNDS}");
        let mut columns = columns.iter_mut();
        if let Some(c) = columns.next() {
            c.push(Ok(Round::of(bursts(file, duration, None))));
        }
        for (i, sensor) in sensors.iter().enumerate() {
            if let Some(c) = columns.next() {
                c.push(with_sensor(sensor, i, &setup, duration));
            }
        }
        if let Some(c) = columns.next() {
            c.push(with_auditd(file, duration));
        }
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
    /// The fastest burst's ns per chmod.
    best_ns_per_op: Option<f64>,
}

/// Times bursts of [`BURST`] chmods of `file` for `duration`, from a
/// thread pinned to CPU 0; after each, waits out [`BURST_PAUSE`] and then
/// until the monitor's `output` (if any) has settled.
fn bursts(file: &CString, duration: Duration, output: Option<&Path>) -> Run {
    let file = file.clone();
    let output = output.map(Path::to_path_buf);
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
            for i in 0..BURST {
                // SAFETY: a valid C string.
                unsafe { libc::chmod(file.as_ptr(), if i % 2 == 0 { 0o600 } else { 0o644 }) };
            }
            best = best.min(t.elapsed().as_nanos() as f64 / BURST as f64);
            ops += BURST;
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

/// One round with the sensor: started afresh, bursts, then the BPF pass,
/// stopped once its output is quiet; with the chmod events it wrote and
/// the losses it reported during the timed bursts.
fn with_sensor(sensor: &Path, index: usize, setup: &Setup, duration: Duration) -> Result<Round> {
    let out_path = Path::new(OUT_DIR).join(format!("sensor-bursts-{}.jsonl", index + 1));
    let before = bpf_programs();
    let RunningSensor { mut child, .. } =
        RunningSensor::start(sensor, &format!("sensor-bursts-{}", index + 1), &out_path)?;
    let run = bursts(&setup.files[0], duration, Some(&out_path));
    wait_until_quiet(|| file_size(&out_path));
    let timed_end = file_size(&out_path);
    let ours: BTreeSet<u64> = bpf_programs()
        .into_keys()
        .filter(|id| !before.contains_key(id))
        .collect();
    let bpf_ns_per_op = bpf_pass(&setup.files[0], &ours, &out_path);
    wait_until_quiet(|| file_size(&out_path));
    child.stop()?;
    let (counts, lost) = count_sensor_events(&out_path, setup, 0..timed_end)?;
    let _ = std::fs::remove_file(&out_path);
    let events = counts.get(&Workload::Chmod).copied().unwrap_or(0);
    Ok(Round {
        reported: Some(events),
        lost,
        bpf_ns_per_op,
        ..Round::of(run)
    })
}

/// The run time of the sensor's programs (`ours`) per chmod, from bursts
/// of [`BPF_PASS`] with the kernel's accounting on (bpf_stats), after the
/// timed ones: the accounting reads the clock around every program run,
/// which would slow the timed bursts. A steadier figure than the added
/// time when comparing builds on a machine that drifts, but not the same
/// one: it leaves out the tracepoints' own machinery, adds the
/// accounting's clock reads, and counts every run of the sensor's
/// programs in the pass, the other tasks' syscalls included. None when
/// the accounting cannot be turned on or read.
fn bpf_pass(file: &CString, ours: &BTreeSet<u64>, output: &Path) -> Option<f64> {
    if ours.is_empty() {
        return None;
    }
    let _stats = BpfStats::enable()?;
    let before = run_time_ns(ours);
    let run = bursts(file, BPF_PASS, Some(output));
    let ns = run_time_ns(ours).saturating_sub(before);
    (run.ops > 0).then(|| ns as f64 / run.ops as f64)
}

/// One round with auditd (its chmod rule): started, bursts, stopped;
/// with the SYSCALL records it wrote and the kernel's audit lost count.
fn with_auditd(file: &CString, duration: Duration) -> Result<Round> {
    let auditd = PrivateAuditd::start(AUDIT_RULES)?;
    let lost_before = AuditStatus::read()?.lost;
    let start = file_size(&auditd.log) as usize;
    let run = bursts(file, duration, Some(&auditd.log));
    wait_until_quiet(|| file_size(&auditd.log));
    let lost = AuditStatus::read()?.lost.saturating_sub(lost_before);
    let log = auditd.log.clone();
    drop(auditd);
    let text = std::fs::read(&log).with_context(|| format!("reading {}", log.display()))?;
    let records = audit_records(&text, "sensor-bench-chmod", start..text.len());
    Ok(Round {
        reported: Some(records),
        lost: BTreeMap::from([("audit records".to_owned(), lost)]),
        ..Round::of(run)
    })
}

fn render(columns: &[Column], seconds: u64) -> String {
    let mut r = String::new();
    let _ = writeln!(r, "\n# Added time per traced syscall (chmod in bursts)\n");
    let _ = writeln!(
        r,
        "{ROUNDS} rounds; in each, every scenario for {seconds} s, one after the other.\n"
    );
    let _ = writeln!(
        r,
        "| scenario | best burst ns/op | added ns/op | added in each round | BPF ns/op | reported | lost (reported) |"
    );
    let _ = writeln!(r, "|---|---:|---:|---|---:|---:|---|");
    let base = columns.first();
    let base_best = base.and_then(Column::best);
    for c in columns {
        let best = c.best().map_or("–".to_owned(), |b| format!("{b:.0}"));
        let is_base = std::ptr::eq(c, base.expect("a column exists here"));
        let added = match (c.best(), base_best) {
            (Some(b), Some(base)) if !is_base => format!("**{:.0}**", b - base),
            _ => "–".to_owned(),
        };
        let rounds = if is_base {
            "–".to_owned()
        } else {
            let each = c.bests.iter().zip(base.map_or(&[][..], |b| &b.bests));
            each.map(|(b, base)| match (b, base) {
                (Some(b), Some(base)) => format!("{:.0}", b - base),
                _ => "–".to_owned(),
            })
            .collect::<Vec<_>>()
            .join(", ")
        };
        let bpf = c.bpf_best().map_or("–".to_owned(), |ns| format!("{ns:.0}"));
        let reported = c
            .reported
            .map_or("–".to_owned(), |n| format!("{n} of {}", c.ops));
        let lost = if is_base {
            "–".to_owned()
        } else {
            lost_text(&c.lost)
        };
        let failed = c.failed.as_ref().map_or(String::new(), |why| {
            format!(" (failed: {})", why.replace(['\n', '|'], " "))
        });
        let _ = writeln!(
            r,
            "| {}{failed} | {best} | {added} | {rounds} | {bpf} | {reported} | {lost} |",
            c.name
        );
    }
    let _ = writeln!(
        r,
        "\n- One thread pinned to CPU 0 times bursts of {BURST} chmods, each followed by a pause \
         of at least {} ms, until the monitor (free to run on the other CPUs) has delivered \
         them (its output stopped growing), so that no burst runs into a full ring buffer. A \
         scenario's figure is its fastest burst over all rounds (noise only ever slows a \
         burst); added ns/op is that minus the baseline's fastest: what the kernel adds to \
         each traced chmod, its events delivered.\n\
         - Added in each round: the same difference within each round, which shows how far \
         the machine drifted. The scenarios take turns so that a slow minute falls on all \
         of them; each sensor is started afresh in each round.\n\
         - BPF ns/op: the sensor's programs' run time per chmod (bpf_stats) in {} s of \
         bursts after the timed ones, the least over the rounds. Steadier than the added time \
         for comparing builds, but not the same figure: it leaves out the tracepoints' own \
         machinery, includes the accounting's clock reads and the runs for other tasks' \
         syscalls.\n\
         - reported: chmod events that came out of the sensor (auditd: SYSCALL records with \
         its rule's key), of the chmods timed.",
        BURST_PAUSE.as_millis(),
        BPF_PASS.as_secs()
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(name: &str, bests: &[Option<f64>]) -> Column {
        Column {
            bests: bests.to_vec(),
            ops: 30_000,
            reported: (name != "baseline").then_some(30_000),
            bpf_ns: if name == "baseline" {
                Vec::new()
            } else {
                vec![412.4, 398.6]
            },
            ..Column::new(name.to_owned())
        }
    }

    /// Added is the fastest bursts' difference over all rounds, and each
    /// round's difference is shown beside it; a failed round shows as such.
    #[test]
    fn added_time_is_the_fastest_bursts_difference() {
        let report = render(
            &[
                column("baseline", &[Some(640.0), Some(600.0), Some(900.0)]),
                column("sensor", &[Some(950.0), Some(930.0), None]),
            ],
            5,
        );
        let row = report
            .lines()
            .find(|l| l.starts_with("| sensor |"))
            .unwrap_or_else(|| panic!("no sensor row in\n{report}"));
        assert!(
            row.contains("| 930 | **330** | 310, 330, – | 399 | 30000 of 30000 | 0 |"),
            "{row}"
        );
        let base = report
            .lines()
            .find(|l| l.starts_with("| baseline |"))
            .unwrap_or_else(|| panic!("no baseline row in\n{report}"));
        assert!(base.contains("| 600 | – | – | – |"), "{base}");
    }
}
