//! Completeness: a full spool drops by its declared policy and every drop
//! is reported in the stream (`lost` events) and in the heartbeat, so that
//! delivered + reported-dropped accounts for every event; heartbeats come
//! even when nothing else happens.

use std::time::Duration;

use sensor_tests::delivery::{is_exec_of, read_jsonl, run_true, wait_until};
use sensor_tests::rsyslog::{Listen, Rsyslog, free_port};
use sensor_tests::{Sensor, at, scratch_dir};

const WAIT: Duration = Duration::from_secs(120);

fn spool_drops_reported(events: &[serde_json::Value]) -> u64 {
    events
        .iter()
        .filter(|e| {
            at(e, "sensor.lost.source") == "sink_spool" && at(e, "sensor.lost.kind") == "syslog0"
        })
        .map(|e| at(e, "sensor.lost.count").as_u64().expect("count"))
        .sum()
}

fn heartbeat_sink<'a>(e: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    at(e, "sensor.heartbeat.sinks")
        .as_array()?
        .iter()
        .find(|s| s["name"] == name)
}

#[test]
fn a_full_spool_drops_the_oldest_and_every_drop_is_reported() {
    let dir = scratch_dir("delivery-loss");
    let port = free_port();
    let file = dir.join("out/events.jsonl");
    let config = format!(
        "[telemetry]\nheartbeat_interval_s = 1\n\
         [[sinks]]\nkind = \"syslog\"\naddress = \"tcp://127.0.0.1:{port}\"\n\
         delivery = {{ spool_bytes = 1048576, when_full = \"drop_oldest\", retry_max_ms = 1000 }}\n\
         [[sinks]]\nkind = \"file\"\npath = \"{}\"\n",
        file.display()
    );
    let sensor = Sensor::start_in(&dir.join("state"), &config);
    // About 4,500 events of over 1 KiB each while the collector is down:
    // several times the 1 MiB spool.
    let marker = format!("delivery-loss-{}", std::process::id());
    run_true(&marker, 1500);
    wait_until("a spool loss report", WAIT, || {
        spool_drops_reported(&read_jsonl(&file)) > 0
    });

    let rs = Rsyslog::start_on(&dir.join("rsyslog"), Listen::Tcp, port);
    let marker2 = format!("{marker}-after");
    run_true(&marker2, 1);
    // The stream is ordered: once this exec arrived, everything before it
    // that was not dropped arrived too.
    let after = rs.wait_until("the exec after the outage", WAIT, |r| {
        r.iter().any(|r| is_exec_of(&r.json, &marker2))
    });
    let x = after
        .iter()
        .find(|r| is_exec_of(&r.json, &marker2))
        .map(sensor_tests::rsyslog::sequence)
        .expect("exec");

    // Drops of events before x can happen until x is delivered, so the
    // final count is in a heartbeat produced after that was seen: after an
    // exec the test starts only now.
    let marker3 = format!("{marker}-settled");
    run_true(&marker3, 1);
    let mut y = 0;
    wait_until("the settling exec in the file sink", WAIT, || {
        y = read_jsonl(&file)
            .iter()
            .find(|e| is_exec_of(e, &marker3))
            .and_then(|e| at(e, "event.sequence").as_u64())
            .unwrap_or(0);
        y > 0
    });
    // The heartbeat gives the final drop count; the loss events in the
    // stream must add up to it.
    let mut total = 0;
    wait_until(
        "loss reports that add up to the heartbeat's drop count",
        WAIT,
        || {
            let events = read_jsonl(&file);
            let Some(hb) = events.iter().rev().find(|e| {
                at(e, "event.action") == "heartbeat"
                    && at(e, "event.sequence").as_u64().is_some_and(|s| s > y)
            }) else {
                return false;
            };
            total = heartbeat_sink(hb, "syslog0")
                .and_then(|s| s["spool_dropped"].as_u64())
                .expect("spool_dropped");
            spool_drops_reported(&events) == total
        },
    );
    let local = read_jsonl(&file);
    sensor.stop();
    let got = rs.received_sequences();
    let want: Vec<u64> = local
        .iter()
        .filter_map(|e| at(e, "event.sequence").as_u64())
        .filter(|&s| s <= x)
        .collect();
    let missing = want.iter().filter(|s| !got.contains(s)).count() as u64;
    assert!(total > 0, "the spool overflowed");
    assert_eq!(
        missing, total,
        "every event not delivered is one the stream reported as dropped"
    );
    // drop_oldest keeps the newest: the last events before the collector came back arrived.
    assert!(
        got.contains(&(x - 1)) || !want.contains(&(x - 1)),
        "the newest events were kept"
    );
}

#[test]
fn heartbeats_carry_the_sinks_counters() {
    let dir = scratch_dir("delivery-heartbeat");
    let file = dir.join("events.jsonl");
    let sensor = Sensor::start_in(
        &dir.join("state"),
        &format!(
            "[telemetry]\nheartbeat_interval_s = 1\n[[sinks]]\nkind = \"file\"\nname = \"local\"\npath = \"{}\"\n",
            file.display()
        ),
    );
    wait_until("two heartbeats", WAIT, || {
        read_jsonl(&file)
            .iter()
            .filter(|e| at(e, "event.action") == "heartbeat")
            .count()
            >= 2
    });
    sensor.stop();
    let events = read_jsonl(&file);
    let hbs: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| at(e, "event.action") == "heartbeat")
        .collect();
    let hb = hbs[1];
    assert_eq!(at(hb, "event.kind"), "metric");
    assert_eq!(at(hb, "event.module"), "sensor");
    assert_eq!(at(hb, "sensor.heartbeat.interval_s").as_u64(), Some(1));
    let sink = heartbeat_sink(hb, "local").unwrap_or_else(|| panic!("no sink counters in {hb}"));
    assert_eq!(sink["kind"], "file");
    let seq = at(hb, "event.sequence").as_u64().expect("seq");
    // Everything before the heartbeat was written to the file before it.
    assert!(
        sink["sent"].as_u64().expect("sent") >= seq - 1,
        "sent counts the events written: {hb}"
    );
    assert!(at(hb, "sensor.heartbeat.events").as_u64().expect("events") >= seq - 1);
}
