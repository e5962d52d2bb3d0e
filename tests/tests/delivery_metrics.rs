//! Prometheus `/metrics` and `/healthz` on the configured local address:
//! events by action, per-sink deliveries, spool bytes and lag of a sink
//! whose collector is down.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use sensor_tests::delivery::{run_true, wait_until};
use sensor_tests::rsyslog::free_port;
use sensor_tests::{Sensor, scratch_dir};

/// GET `path` with HTTP/1.0; returns (status line, body).
fn get(port: u16, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the metrics address");
    s.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").expect("request");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("response");
    let (head, body) = text.split_once("\r\n\r\n").expect("HTTP response");
    (head.lines().next().unwrap_or("").to_owned(), body.to_owned())
}

/// The value of the sample `name{labels}` (labels exactly as printed).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

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
    wait_until("exec events and a spooled backlog in the metrics", Duration::from_secs(60), || {
        text = get(port, "/metrics").1;
        sample(&text, "sensor_events_total{action=\"exec\"}").is_some_and(|v| v >= 10.0)
            && sample(&text, "sensor_spool_bytes{sink=\"siem\",kind=\"syslog\"}").is_some_and(|v| v > 0.0)
    });
    sensor.stop();
    let sent = sample(&text, "sensor_sink_sent_total{sink=\"local\",kind=\"file\"}").expect("file sink counter");
    assert!(sent >= 30.0, "exec, fork and exit of 10 processes were written: {sent}\n{text}");
    let lag = sample(&text, "sensor_sink_lag_events{sink=\"siem\",kind=\"syslog\"}").expect("lag");
    let last = sample(&text, "sensor_last_sequence").expect("last sequence");
    assert!(lag > 0.0 && lag <= last, "nothing delivered to a collector that is down: lag {lag} of {last}\n{text}");
    assert_eq!(sample(&text, "sensor_sink_connected{sink=\"siem\",kind=\"syslog\"}"), Some(0.0));
    assert!(text.contains("sensor_sink_spool_dropped_total{sink=\"siem\",kind=\"syslog\"} 0"), "{text}");
}
