//! An event whose process the table does not know is resolved from /proc,
//! not emitted bare. A full table is the deterministic way to get there:
//! a process exec'd under the sensor is evicted by 1,300 newer ones, then
//! makes a syscall of its own.

use std::io::Write;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};

use sensor_tests::{Sensor, action, at, pid_of};

/// Sleepers killed and reaped on drop.
struct Sleepers(Vec<Child>);

impl Drop for Sleepers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
        }
        for c in &mut self.0 {
            let _ = c.wait();
        }
    }
}

#[test]
fn an_evicted_process_is_read_back_from_proc() {
    let sensor =
        Sensor::start("[process]\ntable_size = 1024\n[telemetry]\nheartbeat_interval_s = 1\n");
    let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
    let port = listener.local_addr().expect("addr").port();
    let marker = format!("late-{}", std::process::id());
    // bash itself connects (/dev/tcp), once told to: no new exec. It stays
    // alive after: a process already gone cannot be read back (that event
    // goes out with what the kernel record holds, counted as unresolved).
    let script = format!("read x; echo hi > /dev/tcp/127.0.0.1/{port}; read y");
    let mut target = Command::new("/bin/bash")
        .args(["-c", &script, &marker])
        .stdin(Stdio::piped())
        .spawn()
        .expect("spawn bash");
    let pid = target.id() as u64;
    sensor.wait_for("exec of the target", |v| {
        action(v) == "exec" && pid_of(v) == pid
    });

    // Newer processes push it (and everything seeded at start) out.
    let mut sleepers = Sleepers(Vec::new());
    for _ in 0..1300 {
        sleepers.0.push(
            Command::new("/bin/sleep")
                .arg("120")
                .spawn()
                .expect("spawn sleep"),
        );
    }
    let last = sleepers.0.last().expect("spawned").id() as u64;
    sensor.wait_for("exec of the last sleeper", |v| {
        action(v) == "exec" && pid_of(v) == last
    });

    let mut stdin = target.stdin.take().expect("stdin");
    stdin.write_all(b"go\n").expect("tell bash");
    let (_conn, _) = listener.accept().expect("bash connects");
    let connect = sensor.wait_for("the target's connect", |v| {
        action(v) == "connect"
            && pid_of(v) == pid
            && at(v, "destination.port").as_u64() == Some(port as u64)
    });
    let exe = at(&connect, "process.executable")
        .as_str()
        .unwrap_or_else(|| panic!("resolved, not bare: {connect}"));
    assert_eq!(
        std::fs::canonicalize(exe).expect("exists"),
        std::fs::canonicalize("/bin/bash").expect("bash"),
        "{connect}"
    );
    let args = at(&connect, "process.args");
    assert!(
        args.as_array()
            .is_some_and(|a| a.iter().any(|x| x == marker.as_str())),
        "{connect}"
    );
    assert!(
        at(&connect, "process.parent.pid").as_u64() == Some(std::process::id() as u64),
        "{connect}"
    );
    sensor.wait_for("a heartbeat counting the adoption", |v| {
        action(v) == "heartbeat" && at(v, "sensor.heartbeat.processes_adopted").as_u64() >= Some(1)
    });
    drop(stdin);
    target.wait().expect("wait bash");
    drop(sleepers);
    sensor.stop();
}
