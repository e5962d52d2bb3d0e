//! Crash safety: the sensor is killed (SIGKILL) while events wait in its
//! spool for a collector that is down; after a restart they are delivered,
//! and the sequence numbers that were only in memory are reported as a gap
//! with its size. A graceful restart continues the numbering without one.

use std::collections::BTreeSet;
use std::time::Duration;

use sensor_tests::delivery::{is_exec_of, run_true, wait_until};
use sensor_tests::rsyslog::{Listen, Rsyslog, free_port};
use sensor_tests::{Sensor, at, scratch_dir};

const WAIT: Duration = Duration::from_secs(90);

fn syslog_sink(port: u16) -> String {
    format!(
        "[[sinks]]\nkind = \"syslog\"\naddress = \"tcp://127.0.0.1:{port}\"\ndelivery = {{ retry_max_ms = 1000 }}\n"
    )
}

fn spooled_bytes_containing(spool: &std::path::Path, needle: &str) -> usize {
    let Ok(dir) = std::fs::read_dir(spool) else {
        return 0;
    };
    dir.filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".seg"))
        .map(|e| {
            let data = std::fs::read(e.path()).unwrap_or_default();
            data.windows(needle.len())
                .filter(|w| *w == needle.as_bytes())
                .count()
        })
        .sum()
}

#[test]
fn spooled_events_survive_sigkill_and_the_in_memory_loss_is_a_gap() {
    let dir = scratch_dir("delivery-crash");
    let state = dir.join("state");
    let port = free_port();
    let marker = format!("delivery-crash-{}", std::process::id());

    // The collector is down: everything waits in the spool.
    let sensor = Sensor::start_in(&state, &syslog_sink(port));
    run_true(&marker, 100);
    let spool = state.join("spool/syslog0");
    // Each exec and exit of `/bin/true MARKER` carries the marker.
    wait_until("the 100 execs and exits in the spool", WAIT, || {
        spooled_bytes_containing(&spool, &marker) >= 200
    });
    // SAFETY: kill on the sensor, our child.
    unsafe { libc::kill(sensor.pid() as i32, libc::SIGKILL) };
    drop(sensor);

    let rs = Rsyslog::start_on(&dir.join("rsyslog"), Listen::Tcp, port);
    let sensor = Sensor::start_in(&state, &syslog_sink(port));
    let got = rs.wait_until("the spooled execs and the gap report", WAIT, |r| {
        r.iter().filter(|r| is_exec_of(&r.json, &marker)).count() >= 100
            && r.iter()
                .any(|r| at(&r.json, "sensor.lost.source") == "restart")
    });
    let gap = got
        .iter()
        .find(|r| at(&r.json, "sensor.lost.source") == "restart")
        .expect("gap event")
        .json
        .clone();
    let first = at(&gap, "sensor.gap.first").as_u64().expect("gap.first");
    let last = at(&gap, "sensor.gap.last").as_u64().expect("gap.last");
    assert!(first >= 1 && last >= first, "a gap range: {gap}");
    assert_eq!(
        at(&gap, "sensor.lost.count").as_u64(),
        Some(last - first + 1),
        "the gap's size is its range: {gap}"
    );
    assert_eq!(
        at(&gap, "sensor.lost.kind"),
        "syslog0",
        "the gap names the sink: {gap}"
    );
    assert_eq!(
        at(&gap, "event.sequence").as_u64(),
        Some(last + 1),
        "numbering resumes after the gap: {gap}"
    );

    // New events after the restart, then every number is accounted for.
    let marker2 = format!("{marker}-after");
    run_true(&marker2, 20);
    let got = rs.wait_until("the execs after the restart", WAIT, |r| {
        r.iter().filter(|r| is_exec_of(&r.json, &marker2)).count() >= 20
    });
    sensor.stop();
    let seqs: BTreeSet<u64> = got.iter().map(sensor_tests::rsyslog::sequence).collect();
    let max = *seqs.last().expect("messages");
    let unaccounted: Vec<u64> = (1..=max)
        .filter(|s| !seqs.contains(s) && !(first..=last).contains(s))
        .take(20)
        .collect();
    assert!(
        unaccounted.is_empty(),
        "numbers neither delivered nor in the gap: {unaccounted:?}"
    );
    let before_gap = (1..first).filter(|s| seqs.contains(s)).count() as u64;
    assert_eq!(
        before_gap,
        first - 1,
        "everything that reached the spool before the kill was delivered"
    );
}

#[test]
fn a_graceful_restart_continues_the_sequence_without_a_gap() {
    let dir = scratch_dir("delivery-restart");
    let state = dir.join("state");
    let rs = Rsyslog::start(&dir.join("rsyslog"), Listen::Tcp);
    let marker = format!("delivery-restart-{}", std::process::id());
    let sensor = Sensor::start_in(&state, &syslog_sink(rs.port));
    run_true(&marker, 5);
    rs.wait_until("the first run's execs", WAIT, |r| {
        r.iter().filter(|r| is_exec_of(&r.json, &marker)).count() == 5
    });
    sensor.stop();
    let first_run = rs.received_sequences();
    let last = *first_run.last().expect("messages");

    let sensor = Sensor::start_in(&state, &syslog_sink(rs.port));
    let marker2 = format!("{marker}-again");
    run_true(&marker2, 5);
    let got = rs.wait_until("the second run's execs", WAIT, |r| {
        r.iter().filter(|r| is_exec_of(&r.json, &marker2)).count() == 5
    });
    sensor.stop();
    assert!(
        !got.iter()
            .any(|r| at(&r.json, "sensor.lost.source") == "restart"),
        "no gap after a graceful stop"
    );
    let all = rs.received_sequences();
    let max = *all.last().expect("messages");
    assert!(max > last, "the second run numbered on");
    assert_eq!(all, (1..=max).collect(), "contiguous across the restart");
}

#[test]
fn a_graceful_stop_keeps_undelivered_events_in_the_spool_for_the_next_start() {
    let dir = scratch_dir("delivery-stop-spool");
    let state = dir.join("state");
    let port = free_port();
    let marker = format!("delivery-stop-spool-{}", std::process::id());
    // Collector down: SIGTERM must leave everything queued in the spool.
    let sensor = Sensor::start_in(&state, &syslog_sink(port));
    run_true(&marker, 20);
    sensor.stop();
    let first_run_last: u64 = std::fs::read_to_string(state.join("sequence"))
        .expect("sequence state")
        .trim()
        .parse()
        .expect("a number");

    let rs = Rsyslog::start_on(&dir.join("rsyslog"), Listen::Tcp, port);
    let sensor = Sensor::start_in(&state, &syslog_sink(port));
    rs.wait_until("every number of the first run", WAIT, |r| {
        let seqs: BTreeSet<u64> = r.iter().map(sensor_tests::rsyslog::sequence).collect();
        (1..=first_run_last).all(|s| seqs.contains(&s))
    });
    let got = rs.received();
    sensor.stop();
    assert_eq!(
        got.iter().filter(|r| is_exec_of(&r.json, &marker)).count(),
        20,
        "the 20 execs, once each"
    );
    assert!(
        !got.iter()
            .any(|r| at(&r.json, "sensor.lost.source") == "restart"),
        "no gap after a graceful stop"
    );
}
