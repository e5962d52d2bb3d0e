//! The two ways the programs read the task behind a syscall event, plain
//! loads through bpf_get_current_task_btf and bpf_probe_read_kernel, must
//! give the same events. Two sensors run at once, one each way, and watch
//! the same process: every event of it must be the same in both outputs.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::{Duration, SystemTime};

use sensor_tests::{Sensor, action, at, pid_of, scratch_dir};
use serde_json::Value;

/// Linux 5.11 brought bpf_get_current_task_btf.
fn kernel_has_task_btf() -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").expect("osrelease");
    let mut parts = release.trim().split(['.', '-']).map(|p| p.parse::<u32>());
    match (parts.next(), parts.next()) {
        (Some(Ok(major)), Some(Ok(minor))) => (major, minor) >= (5, 11),
        _ => panic!("cannot parse the kernel release {release:?}"),
    }
}

/// The event without what differs between two sensors by design: their
/// own identity and numbering, and the instants, which each sensor turns
/// from the kernel's boot clock into wall-clock time with its own reading
/// of the clocks at start. Returns those instants apart (`@timestamp`,
/// `process.start`), to be compared with a tolerance.
fn comparable(v: &Value) -> (Value, Vec<SystemTime>) {
    let mut v = v.clone();
    let mut instants = Vec::new();
    let mut take = |o: &mut serde_json::Map<String, Value>, key: &str| {
        if let Some(Value::String(t)) = o.remove(key) {
            let t = humantime::parse_rfc3339(&t)
                .unwrap_or_else(|e| panic!("`{key}` {t:?} is not RFC 3339: {e}"));
            instants.push(t);
        }
    };
    let o = v.as_object_mut().expect("an event is an object");
    take(o, "@timestamp");
    o.remove("agent");
    let event = o
        .get_mut("event")
        .and_then(Value::as_object_mut)
        .expect("event");
    event.remove("sequence");
    event.remove("id");
    if let Some(process) = o.get_mut("process").and_then(Value::as_object_mut) {
        take(process, "start");
    }
    (v, instants)
}

/// Clock readings at two starts differ by microseconds; a wrong field read
/// as a start time would be off by far more.
const CLOCK_TOLERANCE: Duration = Duration::from_millis(1);

/// Two sensors, one reading with plain loads (where the kernel has them),
/// one with probe reads, both started.
fn two_sensors() -> (Sensor, Sensor) {
    let direct = Sensor::start("");
    let probe = Sensor::start("[ebpf]\ndirect_task_reads = false\n");
    if kernel_has_task_btf() {
        direct.wait_for_log("read with plain loads", Duration::from_secs(5));
    }
    probe.wait_for_log(
        "read with bpf_probe_read_kernel: off in the config",
        Duration::from_secs(5),
    );
    (direct, probe)
}

#[test]
fn plain_loads_and_probe_reads_give_the_same_events() {
    let (direct, probe) = two_sensors();

    let dir = scratch_dir("task-reads");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod dir");
    let file = dir.join("target");
    std::fs::write(&file, b"x").expect("write");
    // Every id different (real 1, effective 2; groups 3 and 4), the
    // inheritable capabilities dropped (a capset), and a controlling
    // terminal from `script`: the fields the task reads fill all differ
    // from their defaults. The chmod is refused (EPERM): still an event.
    let inner = format!(
        "exec setpriv --inh-caps=-all --ruid 1 --euid 2 --rgid 3 --egid 4 --clear-groups \
         chmod 600 {}",
        file.display()
    );
    let status = Command::new("script")
        .args(["-qec", &inner, "/dev/null"])
        .status()
        .expect("run script");
    assert!(!status.success(), "the chmod as uid 2 should be refused");

    // The process script ran: the one whose chmod both sensors report.
    let chmod = direct.wait_for("the chmod, direct", |v| {
        action(v) == "chmod" && at(v, "file.path").as_str() == file.to_str()
    });
    let pid = pid_of(&chmod);
    assert_eq!(at(&chmod, "process.user.id"), "2", "{chmod}");
    assert_eq!(at(&chmod, "process.real_user.id"), "1", "{chmod}");
    assert_eq!(at(&chmod, "process.group.id"), "4", "{chmod}");
    assert_eq!(at(&chmod, "process.real_group.id"), "3", "{chmod}");
    let tty = at(&chmod, "sensor.tty").as_str().unwrap_or_default();
    assert!(tty.starts_with("/dev/pts/"), "{chmod}");
    let capset = direct.wait_for("the capset, direct", |v| {
        pid_of(v) == pid && at(v, "sensor.syscall") == "capset"
    });
    // Both halves of a capability set (read as two u32s): CAP_CHOWN is
    // bit 0, CAP_CHECKPOINT_RESTORE bit 40.
    let effective = at(&capset, "sensor.cred_change.capabilities_after.effective");
    for cap in ["CAP_CHOWN", "CAP_CHECKPOINT_RESTORE"] {
        assert!(
            effective
                .as_array()
                .is_some_and(|a| a.iter().any(|c| c == cap)),
            "{cap} missing: {capset}"
        );
    }
    // The process's last event: everything else of it is in by then.
    for sensor in [&direct, &probe] {
        sensor.wait_for("the exit of the chmod", |v| {
            action(v) == "exit" && pid_of(v) == pid
        });
    }

    let of_pid = |events: Vec<Value>| -> Vec<(Value, Vec<SystemTime>)> {
        events
            .iter()
            .filter(|v| pid_of(v) == pid)
            .map(comparable)
            .collect()
    };
    let (a, b) = (of_pid(direct.events()), of_pid(probe.events()));
    let actions = |events: &[(Value, Vec<SystemTime>)]| -> Vec<String> {
        events.iter().map(|(v, _)| action(v).to_owned()).collect()
    };
    for wanted in ["exec", "credential_change", "chmod", "exit"] {
        assert!(
            actions(&a).iter().any(|a| a == wanted),
            "no {wanted} among {:?}",
            actions(&a)
        );
    }
    assert_eq!(
        actions(&a),
        actions(&b),
        "the two sensors saw different events of pid {pid}"
    );
    for ((x, x_at), (y, y_at)) in a.iter().zip(&b) {
        assert_eq!(x, y, "the two sensors disagree on an event of pid {pid}");
        assert_eq!(x_at.len(), y_at.len(), "{x}");
        for (p, q) in x_at.iter().zip(y_at) {
            let apart = p.duration_since(*q).or_else(|_| q.duration_since(*p));
            assert!(
                apart.is_ok_and(|d| d < CLOCK_TOLERANCE),
                "instants {p:?} and {q:?} of the same event differ by more than clock \
                 calibration could: {x}"
            );
        }
    }
}

/// The calls that name their object by fd (a connect and its accept, an
/// fchmod) reach the file through the task's fd table, which plain loads
/// read too: both sensors must give the same events of them, and the
/// socket's ends must be the ones the test's own sockets have.
#[test]
fn fd_based_events_are_the_same_either_way() {
    let (direct, probe) = two_sensors();
    let me = std::process::id() as u64;

    let listener = std::net::TcpListener::bind("[::1]:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let client = std::net::TcpStream::connect(("::1", port)).expect("connect");
    let (_served, peer) = listener.accept().expect("accept");
    let dir = scratch_dir("task-reads-fd");
    let file = dir.join("by-fd");
    let opened = std::fs::File::create(&file).expect("create");
    opened
        .set_permissions(std::fs::Permissions::from_mode(0o640))
        .expect("fchmod");

    let connect = |v: &Value| {
        pid_of(v) == me
            && action(v) == "connect"
            && at(v, "destination.port").as_u64() == Some(port as u64)
    };
    let accept = |v: &Value| {
        pid_of(v) == me
            && action(v).starts_with("accept")
            && at(v, "destination.port").as_u64() == Some(port as u64)
    };
    let fchmod = |v: &Value| action(v) == "chmod" && at(v, "file.path").as_str() == file.to_str();
    let events = |s: &Sensor| {
        [
            s.wait_for("the connect", connect),
            s.wait_for("the accept", accept),
            s.wait_for("the fchmod", fchmod),
        ]
    };
    let (a, b) = (events(&direct), events(&probe));
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(
            comparable(x).0,
            comparable(y).0,
            "the two sensors disagree on an event"
        );
    }
    let [connected, accepted, chmod] = &a;
    let local = client.local_addr().expect("client addr");
    assert_eq!(at(connected, "destination.ip"), "::1", "{connected}");
    assert_eq!(
        at(connected, "source.port").as_u64(),
        Some(local.port() as u64),
        "{connected}"
    );
    assert_eq!(at(connected, "network.type"), "ipv6", "{connected}");
    assert_eq!(at(connected, "network.transport"), "tcp", "{connected}");
    assert_eq!(at(accepted, "source.ip"), "::1", "{accepted}");
    assert_eq!(
        at(accepted, "source.port").as_u64(),
        Some(peer.port() as u64),
        "{accepted}"
    );
    assert_eq!(at(chmod, "sensor.syscall"), "fchmod", "{chmod}");
}
