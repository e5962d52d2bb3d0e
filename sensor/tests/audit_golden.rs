//! Golden tests: recorded audit streams (auditd log lines: split EXECVE
//! arguments, hex-encoded values, interleaved events, real sshd/su/useradd
//! records, malformed lines) through the same parser, coalescer,
//! normalisation and pipeline as the live source, compared with expected
//! JSON in `tests/fixtures/audit/*.expected.jsonl`.
//!
//! `WRITE_GOLDEN=1 cargo test -p sensor --test audit_golden` rewrites the
//! expected files; review their diff like code.

use std::path::{Path, PathBuf};

use sensor::event::{Agent, Host, HostOs};
use sensor::pipeline::Pipeline;
use sensor::source::audit::coalesce::from_log;
use sensor::source::audit::login::normalize;
use sensor::source::audit::tamper::OwnChanges;
use serde_json::Value;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/audit")
}

fn pipeline() -> Pipeline {
    let host = Host {
        name: "golden".into(),
        id: "0".repeat(32),
        boot_id: "00000000-0000-0000-0000-000000000000".into(),
        os: HostOs {
            kernel: "golden".into(),
            type_: "linux",
            name: None,
            version: None,
            platform: None,
            full: None,
        },
    };
    let agent = Agent {
        name: "sensor",
        type_: "sensor",
        version: "golden",
        id: "golden".into(),
    };
    Pipeline::new(host, agent, 1024, 8, 100)
}

/// What depends on the machine running the test rather than on the
/// records: identity, sequence, and whatever /proc or /etc/passwd say.
fn stable(mut v: Value) -> Value {
    let o = v.as_object_mut().expect("event is an object");
    o.remove("host");
    o.remove("agent");
    if let Some(e) = o.get_mut("event").and_then(Value::as_object_mut) {
        e.remove("id");
        e.remove("sequence");
    }
    if let Some(p) = o.get_mut("process").and_then(Value::as_object_mut) {
        p.retain(|k, _| k == "pid" || k == "user" || k == "real_user");
        for u in ["user", "real_user"] {
            strip_non_root_name(p.get_mut(u));
        }
    }
    if let Some(s) = o.get_mut("sensor").and_then(Value::as_object_mut) {
        strip_non_root_name(s.get_mut("login_user"));
    }
    if let Some(u) = o.get_mut("user").and_then(Value::as_object_mut) {
        // Only the records' own ids; ids looked up by name are the host's.
        if u.get("name").is_some() && u.get("id").is_some_and(|id| id != "0") {
            u.remove("id");
        }
        if u.get("id").is_some_and(|id| id != "0") {
            u.remove("name");
        }
    }
    v
}

fn strip_non_root_name(u: Option<&mut Value>) {
    if let Some(u) = u.and_then(Value::as_object_mut) {
        if u.get("id").is_some_and(|id| id != "0") {
            u.remove("name");
        }
    }
}

fn run(name: &str) -> (String, u64) {
    let text = std::fs::read(fixtures().join(format!("{name}.log"))).expect("fixture");
    let (events, errors) = from_log(&text, 64);
    let mut p = pipeline();
    let mut own = OwnChanges::default();
    let mut out = String::new();
    for ev in events {
        let n = normalize(&ev, 1, &mut own, 0);
        let json = serde_json::to_value(p.audit(ev, n)).expect("serializes");
        out.push_str(&serde_json::to_string(&stable(json)).expect("json"));
        out.push('\n');
    }
    out.push_str(&format!("{{\"parse_errors\":{errors}}}\n"));
    (out, errors)
}

fn golden(name: &str) -> Vec<Value> {
    let (got, _) = run(name);
    let path = fixtures().join(format!("{name}.expected.jsonl"));
    if std::env::var_os("WRITE_GOLDEN").is_some() {
        std::fs::write(&path, &got).expect("write golden");
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (WRITE_GOLDEN=1 creates it)", path.display()));
    let parse = |s: &str| -> Vec<Value> {
        s.lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect()
    };
    let (got_v, want_v) = (parse(&got), parse(&want));
    for (i, (g, w)) in got_v.iter().zip(&want_v).enumerate() {
        assert_eq!(g, w, "{name}: event {i} differs from {}", path.display());
    }
    assert_eq!(got_v.len(), want_v.len(), "{name}: number of events");
    got_v
}

fn at<'a>(v: &'a Value, path: &str) -> &'a Value {
    path.split('.')
        .fold(v, |v, k| v.get(k).unwrap_or(&Value::Null))
}

#[test]
fn execve_split_hex_and_interleaved() {
    let evs = golden("execve_split");
    // Beyond the golden file, the facts it must contain:
    let echo = evs
        .iter()
        .find(|v| at(v, "sensor.audit.serial") == 440)
        .expect("event 440");
    let args = at(echo, "sensor.audit.args").as_array().expect("args");
    assert_eq!(args.len(), 4);
    assert_eq!(args[1], "two words");
    assert_eq!(args[2], "\\xff\\xfe", "invalid UTF-8 escaped reversibly");
    assert_eq!(
        args[3].as_str().map(str::len),
        Some(9000),
        "three chunks joined"
    );
    assert!(
        at(echo, "sensor.escaped")
            .as_array()
            .is_some_and(|e| e.iter().any(|f| f == "sensor.audit.args[2]"))
    );
    let useradd = evs
        .iter()
        .find(|v| at(v, "sensor.audit.serial") == 441)
        .expect("event 441");
    assert_eq!(
        at(useradd, "sensor.audit.args").as_array().map(Vec::len),
        Some(3)
    );
    assert_eq!(at(useradd, "process.pid"), 25340);
}

#[test]
fn sshd_su_logins() {
    let evs = golden("sshd_logins");
    let failures = evs
        .iter()
        .filter(|v| at(v, "event.action") == "authenticated" && at(v, "event.outcome") == "failure")
        .count();
    assert_eq!(failures, 4, "three sshd failures and one su failure");
    let start = evs
        .iter()
        .find(|v| at(v, "event.action") == "session_started")
        .expect("session start");
    assert_eq!(at(start, "sensor.session_id"), 2);
    assert_eq!(at(start, "source.ip"), "127.0.0.1");
}

#[test]
fn accounts_sudo_tamper_and_unknown() {
    let evs = golden("accounts_and_more");
    let tamper = evs
        .iter()
        .find(|v| at(v, "event.action") == "audit_config_changed")
        .expect("tamper");
    assert_eq!(at(tamper, "event.kind"), "alert");
    let sudo = evs
        .iter()
        .find(|v| at(v, "event.action") == "ran_command")
        .expect("sudo");
    assert_eq!(at(sudo, "sensor.audit.command"), "cat /etc/shadow");
    assert!(
        evs.iter().any(|v| at(v, "event.action") == "unknown"),
        "unknown types pass through"
    );
    let evil = evs
        .iter()
        .find(|v| at(v, "source.ip") == "203.0.113.9")
        .expect("hex user name");
    assert_eq!(at(evil, "user.name"), "evil user\\xff");
}

#[test]
fn malformed_records_are_counted_not_fatal() {
    let evs = golden("malformed");
    let (_, errors) = run("malformed");
    assert_eq!(
        errors, 4,
        "four lines have no type, no stamp or an unknown type name"
    );
    assert!(
        evs.iter()
            .any(|v| at(v, "user.name") == "carol" && at(v, "event.action") == "authorized")
    );
}

#[test]
fn every_fixture_has_a_golden_test() {
    for e in std::fs::read_dir(fixtures()).expect("fixtures dir") {
        let p = e.expect("entry").path();
        if p.extension().is_some_and(|x| x == "log") {
            let stem = p.file_stem().and_then(|s| s.to_str()).expect("name");
            let expected = Path::new(&fixtures()).join(format!("{stem}.expected.jsonl"));
            assert!(expected.exists(), "{} has no expected output", p.display());
        }
    }
}
