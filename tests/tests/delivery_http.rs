//! The HTTP collector sink against a receiver that checks every request:
//! gzip'd NDJSON with a bearer token through a stretch of 503 answers (no
//! event lost), the Elasticsearch `_bulk` shape with basic auth, and the
//! Splunk HEC shape.

use std::collections::BTreeSet;
use std::time::Duration;

use base64::Engine as _;
use sensor_tests::delivery::{is_exec_of, read_jsonl, run_true, sequences, wait_until};
use sensor_tests::http_receiver::{Receiver, Request};
use sensor_tests::rsyslog::Certs;
use sensor_tests::{Sensor, at, scratch_dir};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(90);

fn lines(r: &Request) -> Vec<Value> {
    std::str::from_utf8(&r.body)
        .expect("UTF-8 body")
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("body line is not JSON ({e}): {l}"))
        })
        .collect()
}

fn accepted(reqs: &[Request]) -> impl Iterator<Item = &Request> {
    reqs.iter().filter(|r| r.status == 200)
}

#[test]
fn ndjson_gzip_bearer_every_event_arrives_through_503s() {
    let dir = scratch_dir("delivery-http");
    let rx = Receiver::start(true);
    let file = dir.join("events.jsonl");
    let sensor = Sensor::start_in(
        &dir.join("state"),
        &format!(
            "[[sinks]]\nkind = \"http\"\nurl = \"{}\"\nbearer_token = \"s3cret\"\n\
             delivery = {{ retry_max_ms = 1000 }}\n\
             [[sinks]]\nkind = \"file\"\npath = \"{}\"\n",
            rx.url("/ingest"),
            file.display()
        ),
    );
    let marker = format!("delivery-http-{}", std::process::id());
    run_true(&marker, 30);
    // The collector refuses for a while; the sensor keeps trying.
    rx.wait_until("three refused requests", WAIT, |r| {
        r.iter().filter(|r| r.status == 503).count() >= 3
    });
    rx.set_unavailable(false);
    wait_until("the 30 execs in the file sink", WAIT, || {
        read_jsonl(&file)
            .iter()
            .filter(|e| is_exec_of(e, &marker))
            .count()
            == 30
    });
    let want = sequences(&read_jsonl(&file));
    let reqs = rx.wait_until("every event of the local copy", WAIT, |reqs| {
        let got: BTreeSet<u64> = accepted(reqs)
            .flat_map(lines)
            .filter_map(|e| at(&e, "event.sequence").as_u64())
            .collect();
        want.is_subset(&got)
    });
    sensor.stop();
    for r in &reqs {
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/ingest");
        assert_eq!(
            r.headers.get("authorization").map(String::as_str),
            Some("Bearer s3cret")
        );
        assert_eq!(
            r.headers.get("content-encoding").map(String::as_str),
            Some("gzip")
        );
        assert_eq!(
            r.headers.get("content-type").map(String::as_str),
            Some("application/x-ndjson")
        );
        assert_eq!(&r.raw_body[..2], &[0x1f, 0x8b], "gzip magic");
        for e in lines(r) {
            assert!(
                at(&e, "event.sequence").as_u64().is_some() && at(&e, "@timestamp").is_string(),
                "an event: {e}"
            );
        }
    }
    let execs: BTreeSet<u64> = accepted(&reqs)
        .flat_map(lines)
        .filter(|e| is_exec_of(e, &marker))
        .filter_map(|e| at(&e, "event.sequence").as_u64())
        .collect();
    assert_eq!(execs.len(), 30, "every exec accepted");
}

#[test]
fn elasticsearch_bulk_shape_with_basic_auth() {
    let dir = scratch_dir("delivery-http-es");
    let rx = Receiver::start(false);
    let sensor = Sensor::start_in(
        &dir.join("state"),
        &format!(
            "[[sinks]]\nkind = \"http\"\nurl = \"{}\"\nformat = \"elasticsearch\"\nindex = \"sensor-test\"\n\
             gzip = false\nusername = \"elastic\"\npassword = \"pw\"\n",
            rx.url("/_bulk")
        ),
    );
    let marker = format!("delivery-http-es-{}", std::process::id());
    run_true(&marker, 5);
    let reqs = rx.wait_until("the 5 execs", WAIT, |reqs| {
        reqs.iter()
            .flat_map(lines)
            .filter(|e| is_exec_of(e, &marker))
            .count()
            == 5
    });
    sensor.stop();
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("elastic:pw")
    );
    for r in &reqs {
        assert_eq!(r.headers.get("authorization"), Some(&basic));
        assert!(!r.headers.contains_key("content-encoding"), "gzip = false");
        let l = lines(r);
        assert_eq!(l.len() % 2, 0, "action and document lines in pairs");
        for pair in l.chunks(2) {
            let (action, doc) = (&pair[0], &pair[1]);
            assert_eq!(action["create"]["_index"], "sensor-test", "{action}");
            assert_eq!(
                &action["create"]["_id"],
                at(doc, "event.id"),
                "the document id is the event id"
            );
        }
    }
}

#[test]
fn splunk_hec_shape() {
    let dir = scratch_dir("delivery-http-hec");
    let rx = Receiver::start(false);
    let sensor = Sensor::start_in(
        &dir.join("state"),
        &format!(
            "[[sinks]]\nkind = \"http\"\nurl = \"{}\"\nformat = \"splunk_hec\"\nbearer_token = \"hec-token\"\n",
            rx.url("/services/collector/event")
        ),
    );
    let marker = format!("delivery-http-hec-{}", std::process::id());
    run_true(&marker, 5);
    let reqs = rx.wait_until("the 5 execs", WAIT, |reqs| {
        reqs.iter()
            .flat_map(lines)
            .filter(|o| is_exec_of(&o["event"], &marker))
            .count()
            == 5
    });
    sensor.stop();
    for r in &reqs {
        assert_eq!(
            r.headers.get("authorization").map(String::as_str),
            Some("Splunk hec-token")
        );
        for o in lines(r) {
            assert!(
                o["time"].as_f64().is_some_and(|t| t > 1.6e9),
                "epoch time: {o}"
            );
            assert_eq!(&o["host"], at(&o["event"], "host.name"));
            assert_eq!(o["sourcetype"], "_json");
            assert!(at(&o["event"], "event.sequence").as_u64().is_some());
        }
    }
}

#[test]
fn https_verifies_the_server_and_presents_a_client_certificate() {
    let dir = scratch_dir("delivery-https");
    let certs = Certs::generate(&dir.join("pki"));
    let rx = Receiver::start_tls(&certs);
    let sensor = Sensor::start_in(
        &dir.join("state"),
        &format!(
            "[[sinks]]\nkind = \"http\"\nurl = \"{}\"\n\
             tls = {{ ca_file = \"{}\", cert_file = \"{}\", key_file = \"{}\" }}\n",
            rx.https_url("/ingest"),
            certs.ca.display(),
            certs.client_cert.display(),
            certs.client_key.display()
        ),
    );
    let marker = format!("delivery-https-{}", std::process::id());
    run_true(&marker, 5);
    let reqs = rx.wait_until("the 5 execs over HTTPS", WAIT, |reqs| {
        reqs.iter()
            .flat_map(lines)
            .filter(|e| is_exec_of(e, &marker))
            .count()
            == 5
    });
    sensor.stop();
    assert!(
        reqs.iter()
            .all(|r| r.headers.get("content-encoding").map(String::as_str) == Some("gzip"))
    );
}
