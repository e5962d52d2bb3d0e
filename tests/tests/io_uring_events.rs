//! io_uring requests: a process opens, connects and unlinks through a
//! ring, which makes none of those syscalls. The test submits the real
//! requests on a real ring and asserts the events the submit tracepoint
//! gives, and that the ring's other traffic (a nop) gives none.

use std::net::TcpListener;
use std::os::unix::ffi::OsStrExt;

use io_uring::{IoUring, opcode, types};
use sensor_tests::{Sensor, action, at, pid_of, scratch_dir};
use serde_json::Value;

fn io_uring_event(v: &Value, pid: u64) -> bool {
    action(v) == "io_uring_submit" && pid_of(v) == pid
}

/// Submits `entry` alone and waits for its completion: its result.
fn run(ring: &mut IoUring, entry: io_uring::squeue::Entry) -> i32 {
    // SAFETY: every buffer the entry points to lives until its completion,
    // which this waits for.
    unsafe { ring.submission().push(&entry).expect("the queue has room") };
    ring.submit_and_wait(1).expect("io_uring_enter");
    ring.completion().next().expect("a completion").result()
}

#[test]
fn an_open_a_connect_and_an_unlink_through_a_ring_are_reported() {
    let sensor = Sensor::start("");
    let dir = scratch_dir("sensor-io-uring");
    let file = dir.join("written through a ring");
    let path = std::ffi::CString::new(file.as_os_str().as_bytes()).expect("no NUL");
    // A port nothing listens on.
    let closed = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let addr = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_be_bytes([127, 0, 0, 1]).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: a plain socket.
    let sock = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
    assert!(sock >= 0, "socket: {}", std::io::Error::last_os_error());

    let mut ring = IoUring::new(8).expect("io_uring_setup");
    assert_eq!(run(&mut ring, opcode::Nop::new().build()), 0, "nop");
    let fd = run(
        &mut ring,
        opcode::OpenAt::new(types::Fd(libc::AT_FDCWD), path.as_ptr())
            .flags(libc::O_WRONLY | libc::O_CREAT | libc::O_CLOEXEC)
            .mode(0o600)
            .build(),
    );
    assert!(fd >= 0, "openat through the ring: {fd}");
    assert!(file.exists(), "the ring's openat created the file");
    let connected = run(
        &mut ring,
        opcode::Connect::new(
            types::Fd(sock),
            (&raw const addr).cast(),
            size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
        .build(),
    );
    assert_eq!(connected, -libc::ECONNREFUSED, "connect to a closed port");
    let unlinked = run(
        &mut ring,
        opcode::UnlinkAt::new(types::Fd(libc::AT_FDCWD), path.as_ptr()).build(),
    );
    assert_eq!(unlinked, 0, "unlinkat through the ring");
    assert!(!file.exists());
    // SAFETY: closing our own fds.
    unsafe {
        libc::close(fd);
        libc::close(sock);
    }

    let pid = u64::from(std::process::id());
    let events = sensor.wait_for_count("the ring's three requests", 3, |v| io_uring_event(v, pid));
    let operations: Vec<&str> = events
        .iter()
        .map(|e| at(e, "sensor.io_uring.operation").as_str().unwrap_or(""))
        .collect();
    assert_eq!(operations, ["openat", "connect", "unlinkat"], "{events:?}");
    for (ev, (opcode, category)) in events
        .iter()
        .zip([(18, "file"), (16, "network"), (36, "file")])
    {
        assert_eq!(at(ev, "sensor.io_uring.opcode"), opcode, "{ev}");
        assert_eq!(
            at(ev, "event.category"),
            &serde_json::json!([category]),
            "{ev}"
        );
        assert_eq!(at(ev, "event.outcome"), "unknown", "{ev}");
        assert_eq!(at(ev, "process.user.id"), "0", "{ev}");
        assert!(
            at(ev, "sensor.syscall").is_null(),
            "no syscall made it: {ev}"
        );
    }
    // The nop came first: had it been reported, it would be among these.
    let all: Vec<Value> = sensor
        .events()
        .into_iter()
        .filter(|v| io_uring_event(v, pid))
        .collect();
    assert_eq!(all.len(), 3, "only the three requests: {all:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
