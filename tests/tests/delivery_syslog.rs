//! The syslog sink against a real rsyslog: over TCP and TLS (with a client
//! certificate) every event arrives and rsyslog parses it as RFC 5424 with
//! the event's JSON as the message; RFC 3164 over a unix socket; and the
//! server's certificate is verified by default. Over UDP, an event too
//! large for a datagram arrives shortened and holds up nothing; over a
//! unix socket, one the kernel refuses is reported as lost.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use sensor_tests::delivery::{is_exec_of, read_jsonl, run_true, sequences, wait_until};
use sensor_tests::rsyslog::{Certs, Listen, Received, Rsyslog, sequence};
use sensor_tests::{Sensor, at, scratch_dir};

const DELIVERY_WAIT: Duration = Duration::from_secs(90);

/// Runs execs, then checks that rsyslog got every event the file sink got,
/// parsed as RFC 5424, with the header fields derived from the event.
fn every_event_arrives_as_rfc5424(
    rs: &Rsyslog,
    sensor: Sensor,
    file: &std::path::Path,
    marker: &str,
) {
    run_true(marker, 50);
    wait_until("the 50 execs in the file sink", DELIVERY_WAIT, || {
        read_jsonl(file)
            .iter()
            .filter(|e| is_exec_of(e, marker))
            .count()
            == 50
    });
    let local = read_jsonl(file);
    let want = sequences(&local);
    let got = rs.wait_until("every event the file sink has", DELIVERY_WAIT, |r| {
        want.is_subset(&r.iter().map(sequence).collect())
    });
    sensor.stop();

    let max = *want.last().expect("events");
    assert_eq!(
        want,
        (1..=max).collect(),
        "the local copy has contiguous sequence numbers from 1"
    );
    let execs: Vec<&Received> = got.iter().filter(|r| is_exec_of(&r.json, marker)).collect();
    assert_eq!(execs.len(), 50, "each exec arrived once");
    for r in &got {
        let seq = sequence(r);
        assert_eq!(r.protocol_version, "1", "rsyslog parsed RFC 5424: {r:?}");
        assert_eq!(r.app_name, "sensor");
        assert_eq!(
            r.msgid,
            at(&r.json, "event.action").as_str().expect("action"),
            "MSGID is the action"
        );
        assert_eq!(
            r.structured_data,
            format!("[sensor@32473 sequence=\"{seq}\"]")
        );
        assert_eq!(r.facility, "local3");
        assert!(
            r.procid.parse::<u32>().is_ok(),
            "PROCID is the sensor's pid: {r:?}"
        );
    }
    assert!(
        execs.iter().all(|r| r.severity == "info"),
        "process events are info"
    );
    // The message is the event itself, byte for byte the same JSON value.
    let by_seq: std::collections::BTreeMap<u64, &serde_json::Value> = local
        .iter()
        .map(|e| (at(e, "event.sequence").as_u64().expect("seq"), e))
        .collect();
    for r in &execs {
        assert_eq!(
            &&r.json,
            by_seq.get(&sequence(r)).expect("in the local copy"),
            "same event in both sinks"
        );
    }
}

#[test]
fn tcp_every_event_arrives_as_rfc5424() {
    let dir = scratch_dir("delivery-tcp");
    let rs = Rsyslog::start(&dir.join("rsyslog"), Listen::Tcp);
    let file = dir.join("out/events.jsonl");
    let sensor = Sensor::start_in(
        &dir.join("state"),
        &format!(
            "[[sinks]]\nkind = \"syslog\"\naddress = \"tcp://127.0.0.1:{}\"\nformat = \"rfc5424\"\nfacility = \"local3\"\n\
             [[sinks]]\nkind = \"file\"\npath = \"{}\"\n",
            rs.port,
            file.display()
        ),
    );
    every_event_arrives_as_rfc5424(
        &rs,
        sensor,
        &file,
        &format!("delivery-tcp-{}", std::process::id()),
    );
}

#[test]
fn tls_with_client_certificate_every_event_arrives_as_rfc5424() {
    let dir = scratch_dir("delivery-tls");
    let certs = Certs::generate(&dir.join("pki"));
    let rs = Rsyslog::start(
        &dir.join("rsyslog"),
        Listen::Tls {
            certs: certs.clone(),
            client_auth: true,
        },
    );
    let file = dir.join("out/events.jsonl");
    let sensor = Sensor::start_in(
        &dir.join("state"),
        &format!(
            "[[sinks]]\nkind = \"syslog\"\naddress = \"tls://127.0.0.1:{}\"\nfacility = \"local3\"\n\
             tls = {{ ca_file = \"{}\", cert_file = \"{}\", key_file = \"{}\" }}\n\
             [[sinks]]\nkind = \"file\"\npath = \"{}\"\n",
            rs.port,
            certs.ca.display(),
            certs.client_cert.display(),
            certs.client_key.display(),
            file.display()
        ),
    );
    every_event_arrives_as_rfc5424(
        &rs,
        sensor,
        &file,
        &format!("delivery-tls-{}", std::process::id()),
    );
}

#[test]
fn tls_server_certificate_is_verified_by_default() {
    let dir = scratch_dir("delivery-tls-verify");
    let certs = Certs::generate(&dir.join("pki"));
    let rs = Rsyslog::start(
        &dir.join("rsyslog"),
        Listen::Tls {
            certs,
            client_auth: false,
        },
    );
    // No ca_file: the system's CAs, which did not sign the test server's.
    let sensor = Sensor::start_in(
        &dir.join("state"),
        &format!(
            "[[sinks]]\nkind = \"syslog\"\naddress = \"tls://127.0.0.1:{}\"\n",
            rs.port
        ),
    );
    run_true("delivery-tls-verify", 3);
    let line = sensor.wait_for_log("cannot connect to the collector", DELIVERY_WAIT);
    assert!(
        line.contains("certificate"),
        "the refusal names the certificate problem: {line}"
    );
    sensor.stop();
    assert!(
        rs.received().is_empty(),
        "nothing was sent to an unverified server"
    );
}

#[test]
fn rfc3164_over_a_unix_socket() {
    let dir = scratch_dir("delivery-unix");
    let rs = Rsyslog::start(&dir.join("rsyslog"), Listen::Unix);
    let marker = format!("delivery-unix-{}", std::process::id());
    let sensor = Sensor::start_in(
        &dir.join("state"),
        &format!(
            "[[sinks]]\nkind = \"syslog\"\naddress = \"unix://{}\"\nformat = \"rfc3164\"\nfacility = \"auth\"\n",
            rs.socket().display()
        ),
    );
    run_true(&marker, 5);
    let got = rs.wait_until("the 5 execs", DELIVERY_WAIT, |r| {
        r.iter().filter(|r| is_exec_of(&r.json, &marker)).count() == 5
    });
    sensor.stop();
    for r in got.iter().filter(|r| is_exec_of(&r.json, &marker)) {
        assert_eq!(r.app_name, "sensor", "rsyslog read the RFC 3164 tag: {r:?}");
        assert_eq!(r.facility, "auth");
        assert_eq!(
            r.procid.parse::<u32>().ok(),
            Some(sensor_pid_of(&got)),
            "PID in the tag"
        );
    }
}

/// The pid in the tag is the sensor's; all messages carry the same one.
fn sensor_pid_of(got: &[Received]) -> u32 {
    let pids: std::collections::BTreeSet<&str> = got.iter().map(|r| r.procid.as_str()).collect();
    assert_eq!(pids.len(), 1, "one sensor, one pid: {pids:?}");
    pids.first()
        .and_then(|p| p.parse().ok())
        .expect("numeric pid")
}

#[test]
fn rfc5424_over_udp() {
    let dir = scratch_dir("delivery-udp");
    let rs = Rsyslog::start(&dir.join("rsyslog"), Listen::Udp);
    let marker = format!("delivery-udp-{}", std::process::id());
    let sensor = Sensor::start_in(
        &dir.join("state"),
        &format!(
            "[[sinks]]\nkind = \"syslog\"\naddress = \"udp://127.0.0.1:{}\"\nfacility = \"daemon\"\n",
            rs.port
        ),
    );
    // First an exec whose JSON is far over a datagram's 65,507 bytes: 30,000
    // control bytes in argv escape to 180,000. It must arrive shortened, and
    // must not hold up the events after it.
    let control = format!("{marker}-big-{}", "\u{1}".repeat(30_000));
    let ok = Command::new("/bin/true")
        .arg(&control)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "/bin/true failed");
    run_true(&marker, 5);
    let second_arg = |e: &Value| {
        at(e, "process.args")
            .get(1)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let is_big = |e: &Value| {
        at(e, "event.action") == "exec"
            && second_arg(e).is_some_and(|a| a.starts_with(&format!("{marker}-big-")))
    };
    let got = rs.wait_until("the 5 execs and the big one", DELIVERY_WAIT, |r| {
        r.iter().filter(|r| is_exec_of(&r.json, &marker)).count() == 5
            && r.iter().any(|r| is_big(&r.json))
    });
    sensor.stop();
    for r in got.iter().filter(|r| is_exec_of(&r.json, &marker)) {
        assert_eq!(r.protocol_version, "1", "RFC 5424 over UDP: {r:?}");
        assert_eq!(r.facility, "daemon");
        assert_eq!(
            r.structured_data,
            format!("[sensor@32473 sequence=\"{}\"]", sequence(r))
        );
    }
    let big = &got.iter().find(|r| is_big(&r.json)).expect("checked").json;
    let original = at(big, "sensor.truncated.original_bytes")
        .as_u64()
        .unwrap_or_else(|| panic!("not marked truncated: {big}"));
    assert!(original > 150_000, "original size {original}");
    assert_eq!(
        at(big, "sensor.truncated.fields"),
        &serde_json::json!(["process.args"]),
        "{big}"
    );
    assert_eq!(at(big, "process.executable"), "/usr/bin/true");
    assert!(
        second_arg(big).unwrap().len() > marker.len() + 5,
        "the argument's start is kept: {big}"
    );
}

#[test]
fn a_datagram_the_socket_refuses_is_counted_as_lost() {
    use std::os::unix::ffi::OsStrExt as _;
    let dir = scratch_dir("delivery-refused");
    let rs = Rsyslog::start(&dir.join("rsyslog"), Listen::Unix);
    let marker = format!("delivery-refused-{}", std::process::id());
    let file = dir.join("events.jsonl");
    // No message limit of our own below the event's size: the kernel's is
    // what refuses it (a unix datagram over the socket's send buffer,
    // 212,992 bytes by default, fails with EMSGSIZE).
    let sensor = Sensor::start_in(
        &dir.join("state"),
        &format!(
            "[[sinks]]\nkind = \"syslog\"\nname = \"refusing\"\naddress = \"unix://{}\"\n\
             max_message_bytes = 1000000\n\n\
             [[sinks]]\nkind = \"file\"\npath = \"{}\"\n",
            rs.socket().display(),
            file.display()
        ),
    );
    // An exec whose JSON passes 212,992 bytes: argv is kept up to 32 KiB,
    // whose control bytes escape to 6 bytes each (196,608), and the
    // working directory and the executable's path, ~3,800 bytes of control
    // bytes each, add 45,000 more.
    let control = format!("{marker}-big-{}", "\u{1}".repeat(33_000));
    let deep = control_byte_dirs(&dir, 18);
    let exe = deep.join(std::ffi::OsStr::from_bytes(&[1; 200]));
    sensor_tests::copy_executable("/bin/true", &exe);
    let ok = Command::new(&exe)
        .arg(&control)
        .current_dir(&deep)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "the copy of /bin/true failed");
    run_true(&marker, 5);
    let is_big = |e: &Value| {
        at(e, "event.action") == "exec"
            && at(e, "process.args")
                .get(1)
                .and_then(Value::as_str)
                .is_some_and(|a| a.starts_with(&format!("{marker}-big-")))
    };
    // The refusal is reported, naming the sink, in the other sink.
    wait_until("a loss report for the refused event", DELIVERY_WAIT, || {
        read_jsonl(&file).iter().any(|e| {
            at(e, "event.action") == "lost" && at(e, "sensor.lost.source") == "sink_oversize"
        })
    });
    let local = read_jsonl(&file);
    let big = local
        .iter()
        .find(|e| is_big(e))
        .expect("the file sink has the big event");
    let big_pid = at(big, "process.pid").clone();
    // Every event reaches the collector but the refused ones: the big
    // process's events that carry its argv and paths (its exec and exit).
    let of_big = |e: &Value| at(e, "process.pid") == &big_pid;
    let want: std::collections::BTreeSet<u64> = sequences(local.iter().filter(|e| !of_big(e)));
    rs.wait_until("every event but the refused ones", DELIVERY_WAIT, |r| {
        want.is_subset(&r.iter().map(sequence).collect())
            && r.iter().filter(|r| is_exec_of(&r.json, &marker)).count() == 5
    });
    sensor.stop();
    // Compare again once the sensor has stopped and its sinks have flushed:
    // the loss of the process's later events (its exit) may be reported
    // after the first report, as late as the shutdown's flush, and the
    // events written meanwhile must reach the collector too.
    let local = read_jsonl(&file);
    let want: std::collections::BTreeSet<u64> = sequences(local.iter().filter(|e| !of_big(e)));
    let got = rs.wait_until("every event written before the stop", DELIVERY_WAIT, |r| {
        want.is_subset(&r.iter().map(sequence).collect())
    });
    let received: std::collections::BTreeSet<u64> = got.iter().map(sequence).collect();
    let missing: Vec<&Value> = local
        .iter()
        .filter(|e| !received.contains(&at(e, "event.sequence").as_u64().expect("seq")))
        .collect();
    assert!(
        missing.iter().any(|e| is_big(e)),
        "the big exec was refused"
    );
    assert!(
        missing.iter().all(|e| of_big(e)),
        "only the big process's events are refused: {missing:?}"
    );
    let lost: Vec<&Value> = local
        .iter()
        .filter(|e| {
            at(e, "event.action") == "lost" && at(e, "sensor.lost.source") == "sink_oversize"
        })
        .collect();
    let count: u64 = lost
        .iter()
        .map(|e| at(e, "sensor.lost.count").as_u64().unwrap_or(0))
        .sum();
    assert_eq!(
        count,
        missing.len() as u64,
        "every refused event is counted, and nothing else: {lost:?}"
    );
    assert_eq!(at(lost[0], "sensor.lost.kind"), "refusing", "{}", lost[0]);
}

/// `depth` nested directories under `base`, each named with 200 bytes of
/// 0x01; the innermost.
fn control_byte_dirs(base: &std::path::Path, depth: usize) -> std::path::PathBuf {
    use std::os::unix::ffi::OsStrExt as _;
    let mut dir = base.to_path_buf();
    for _ in 0..depth {
        dir.push(std::ffi::OsStr::from_bytes(&[1; 200]));
    }
    std::fs::create_dir_all(&dir).expect("mkdir the control-byte directories");
    dir
}
