//! Reading and writing another process's memory without ptrace
//! (`process_vm_readv`/`process_vm_writev`): how credentials are lifted
//! from a running process and code injected into one. The tests make the
//! real calls on a forked child and assert the events, and a refused one.

use sensor_tests::victim::{PAYLOAD, TARGET, exited_zero, fork_checking_target, pipe};
use sensor_tests::{Sensor, action, at, pid_of};

#[test]
fn a_write_into_another_process_names_it_and_succeeds() {
    let sensor = Sensor::start("");
    let go = pipe();
    let child = fork_checking_target(go[0]);
    let local = libc::iovec {
        iov_base: PAYLOAD.as_ptr() as *mut _,
        iov_len: PAYLOAD.len(),
    };
    let remote = libc::iovec {
        iov_base: TARGET.as_ptr() as *mut _,
        iov_len: PAYLOAD.len(),
    };
    // First a read of this process's own memory: no boundary crossed, not
    // reported.
    let mut copy = [0u8; 16];
    let own = libc::iovec {
        iov_base: copy.as_mut_ptr().cast(),
        iov_len: copy.len(),
    };
    let me = std::process::id();
    // SAFETY: reads 16 bytes of our own PAYLOAD into `copy`.
    let read = unsafe { libc::process_vm_readv(me as libc::pid_t, &own, 1, &local, 1, 0) };
    assert_eq!((read, &copy), (16, PAYLOAD), "reading ourselves");
    // SAFETY: one iovec each way, both 16 bytes, in the two processes.
    let moved = unsafe { libc::process_vm_writev(child, &local, 1, &remote, 1, 0) };
    assert_eq!(
        moved,
        16,
        "process_vm_writev: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: one byte to our pipe releases the child.
    unsafe { libc::write(go[1], b"g".as_ptr().cast(), 1) };
    let (ok, status) = exited_zero(child);
    assert!(ok, "the child did not find the payload: {status:#x}");

    let me = u64::from(me);
    let ev = sensor.wait_for("the write into the child", |v| {
        action(v) == "process_memory_write"
            && pid_of(v) == me
            && at(v, "sensor.ptrace_target.pid").as_u64() == Some(child as u64)
    });
    assert_eq!(at(&ev, "sensor.syscall"), "process_vm_writev", "{ev}");
    assert_eq!(at(&ev, "event.outcome"), "success", "{ev}");
    assert_eq!(
        at(&ev, "event.category"),
        &serde_json::json!(["process"]),
        "{ev}"
    );
    // The read of ourselves came first: it would be here by now.
    let own_reads: Vec<_> = sensor
        .events()
        .into_iter()
        .filter(|v| {
            action(v) == "process_memory_read"
                && at(v, "sensor.ptrace_target.pid").as_u64() == Some(me)
        })
        .collect();
    assert!(own_reads.is_empty(), "{own_reads:?}");
    // The child is a fork of this test: the table knows its executable.
    assert_eq!(
        at(&ev, "sensor.ptrace_target.executable"),
        at(&ev, "process.executable"),
        "{ev}"
    );
}

#[test]
fn a_read_of_init_refused_to_nobody_is_reported() {
    let sensor = Sensor::start("");
    // SAFETY: the child makes syscalls only, then _exit.
    let child = unsafe { libc::fork() };
    assert!(child >= 0, "fork: {}", std::io::Error::last_os_error());
    if child == 0 {
        let mut buf = [0u8; 16];
        let local = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let remote = libc::iovec {
            iov_base: 0x1000 as *mut _,
            iov_len: buf.len(),
        };
        // SAFETY: plain syscalls; the read is refused before it is made.
        let code = unsafe {
            if libc::setresuid(65534, 65534, 65534) != 0 {
                2
            } else if libc::process_vm_readv(1, &local, 1, &remote, 1, 0) >= 0 {
                3
            } else if *libc::__errno_location() != libc::EPERM {
                4
            } else {
                0
            }
        };
        // SAFETY: ends the forked child.
        unsafe { libc::_exit(code) };
    }
    let (ok, status) = exited_zero(child);
    assert!(
        ok,
        "nobody's read of init was not refused with EPERM: {status:#x}"
    );
    let ev = sensor.wait_for("the refused read", |v| {
        action(v) == "process_memory_read" && pid_of(v) == child as u64
    });
    assert_eq!(at(&ev, "event.outcome"), "failure", "{ev}");
    assert_eq!(at(&ev, "error.code"), "EPERM", "{ev}");
    assert_eq!(at(&ev, "sensor.ptrace_target.pid"), 1, "{ev}");
    assert_eq!(at(&ev, "process.user.id"), "65534", "{ev}");
}
