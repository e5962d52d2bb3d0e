//! Prometheus `/metrics` and `/healthz` on the configured local address:
//! events by action, per-sink deliveries, spool bytes and lag of a sink
//! whose collector is down.

use std::time::Duration;

use sensor_tests::delivery::{run_true, wait_until};
use sensor_tests::metrics::{get, sample};
use sensor_tests::rsyslog::free_port;
use sensor_tests::{Sensor, scratch_dir};

#[test]
fn metrics_and_healthz_describe_the_sinks() {
    let dir = scratch_dir("delivery-metrics");
    let port = free_port();
    let down = free_port();
    let sensor = Sensor::start_in(
        &dir.join("state"),
        &format!(
            "[telemetry]\nmetrics_address = \"127.0.0.1:{port}\"\n\
             [[sinks]]\nkind = \"file\"\nname = \"local\"\npath = \"{}\"\n\
             [[sinks]]\nkind = \"syslog\"\nname = \"siem\"\naddress = \"tcp://127.0.0.1:{down}\"\n",
            dir.join("events.jsonl").display()
        ),
    );
    let (status, body) = get(port, "/healthz");
    assert!(status.contains("200"), "{status} {body}");
    run_true("delivery-metrics", 10);
    let mut text = String::new();
    wait_until(
        "exec events and a spooled backlog in the metrics",
        Duration::from_secs(60),
        || {
            text = get(port, "/metrics").1;
            sample(&text, "sensor_events_total{action=\"exec\"}").is_some_and(|v| v >= 10.0)
                && sample(&text, "sensor_spool_bytes{sink=\"siem\",kind=\"syslog\"}")
                    .is_some_and(|v| v > 0.0)
        },
    );
    sensor.stop();
    let sent = sample(
        &text,
        "sensor_sink_sent_total{sink=\"local\",kind=\"file\"}",
    )
    .expect("file sink counter");
    assert!(
        sent >= 30.0,
        "exec, fork and exit of 10 processes were written: {sent}\n{text}"
    );
    let lag = sample(
        &text,
        "sensor_sink_lag_events{sink=\"siem\",kind=\"syslog\"}",
    )
    .expect("lag");
    let last = sample(&text, "sensor_last_sequence").expect("last sequence");
    assert!(
        lag > 0.0 && lag <= last,
        "nothing delivered to a collector that is down: lag {lag} of {last}\n{text}"
    );
    assert_eq!(
        sample(
            &text,
            "sensor_sink_connected{sink=\"siem\",kind=\"syslog\"}"
        ),
        Some(0.0)
    );
    assert!(
        text.contains("sensor_sink_spool_dropped_total{sink=\"siem\",kind=\"syslog\"} 0"),
        "{text}"
    );
}
