//! At-least-once delivery across a collector outage: at about 1,000
//! events/s from real processes, rsyslog is stopped for 30 s and started
//! again; every sequence number the local copy has must reach it.

use std::collections::BTreeSet;
use std::time::Duration;

use sensor_tests::delivery::{Generator, read_jsonl, sequences};
use sensor_tests::rsyslog::{Listen, Rsyslog};
use sensor_tests::{Sensor, scratch_dir};

#[test]
fn every_sequence_number_arrives_after_a_30_s_collector_outage() {
    let dir = scratch_dir("delivery-outage");
    let mut rs = Rsyslog::start(&dir.join("rsyslog"), Listen::Tcp);
    let file = dir.join("out/events.jsonl");
    // The check reads the whole local copy: about 50,000 events of ~2 KiB
    // come in this test, right at the default 100 MiB rotation, and a
    // rotation would hide the first ones from it. So the copy never rotates.
    let sensor = Sensor::start_in(
        &dir.join("state"),
        &format!(
            "[[sinks]]\nkind = \"syslog\"\naddress = \"tcp://127.0.0.1:{}\"\n\
             delivery = {{ retry_max_ms = 2000 }}\n\
             [[sinks]]\nkind = \"file\"\npath = \"{}\"\nrotate_bytes = 0\n",
            rs.port,
            file.display()
        ),
    );
    // exec + fork + exit per process: ~350 processes/s is ~1,000 events/s.
    let generator = Generator::start(350, &format!("delivery-outage-{}", std::process::id()));
    rs.wait_until("events before the outage", Duration::from_secs(60), |r| {
        r.len() >= 2_000
    });

    rs.stop();
    let before = read_jsonl(&file).len();
    std::thread::sleep(Duration::from_secs(30));
    let during = read_jsonl(&file).len() - before;
    sensor.wait_for_log("sending to the collector failed", Duration::from_secs(60));
    rs.restart();
    std::thread::sleep(Duration::from_secs(5));
    let processes = generator.stop();

    let want = sequences(&read_jsonl(&file));
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    let mut got: BTreeSet<u64>;
    loop {
        got = rs.received_sequences();
        if want.is_subset(&got) || std::time::Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    sensor.stop();
    eprintln!(
        "outage test: {processes} processes, {} events in the local copy, {during} of them during the 30 s outage, \
         {} distinct sequence numbers at rsyslog",
        want.len(),
        got.len()
    );
    let missing: Vec<u64> = want.difference(&got).copied().take(20).collect();
    assert!(
        missing.is_empty(),
        "sequence numbers never delivered (first 20): {missing:?}\n{}",
        rs.stderr()
    );
    let max = *want.last().expect("events");
    assert_eq!(
        want.len() as u64,
        max,
        "the local copy is contiguous from 1"
    );
    assert!(
        during > 0,
        "events were produced while the collector was down"
    );
    drop(rs);
    // Some 100 MB of logs in `dir`: its guard keeps them only when the test
    // fails, for a look.
}
