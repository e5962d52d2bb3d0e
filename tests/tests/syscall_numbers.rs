//! Syscall numbers a caller can dress up so that a traced call does not
//! look like one: bits 32–63, which the kernel ignores (it takes the
//! number as an `int`) but the saved registers keep, and the x32 bit,
//! which any 64-bit process may set. Each test makes the real call through
//! `syscall(2)` with such a number and asserts an event that says what the
//! kernel did with it: where it ran the call, the event of that call;
//! where it refused the number (ENOSYS: a kernel without x32, or one
//! older than 5.11 that compares all 64 bits), the attempt.
#![cfg(target_arch = "x86_64")]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use sensor_tests::{Sensor, action, at, pid_of, scratch_dir};
use serde_json::Value;

/// `__X32_SYSCALL_BIT`.
const X32: libc::c_long = 0x4000_0000;
/// x32's own number for ptrace (native ptrace, 101, is not an x32 call).
const X32_PTRACE: libc::c_long = 521;

/// Runs `child` in a forked child (only raw syscalls there: the test
/// process has threads); its pid, and what the call it made returned, as
/// the child's exit status told ([`status_of`]).
fn in_child(child: impl FnOnce() -> libc::c_long) -> (u64, Result<(), i32>) {
    // SAFETY: the child makes syscalls only and leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        let code = status_of(child());
        // SAFETY: ends the forked child without running the parent's atexit state.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waits for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(libc::WIFEXITED(status), "child failed: status {status:#x}");
    let result = match libc::WEXITSTATUS(status) {
        0 => Ok(()),
        errno => Err(errno),
    };
    (pid as u64, result)
}

/// A child's exit status for what `syscall(2)` returned: 0, or the errno
/// (every errno is below 256).
fn status_of(ret: libc::c_long) -> i32 {
    if ret == 0 {
        0
    } else {
        std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(255)
    }
}

fn c_path(p: &Path) -> std::ffi::CString {
    std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).expect("no NUL in the path")
}

/// Asserts that `ev` reports the result the caller saw, one of `allowed`
/// (what this test accepts from the kernel; ENOSYS where it refuses the
/// number).
fn assert_outcome(ev: &Value, result: Result<(), i32>, allowed: &[(i32, &str)]) {
    match result {
        Ok(()) => assert_eq!(at(ev, "event.outcome"), "success", "{ev}"),
        Err(errno) => {
            let Some((_, name)) = allowed.iter().find(|(e, _)| *e == errno) else {
                panic!("the call failed with errno {errno}; event: {ev}");
            };
            assert_eq!(at(ev, "event.outcome"), "failure", "{ev}");
            assert_eq!(at(ev, "error.code"), *name, "{ev}");
        }
    }
}

const ENOSYS: (i32, &str) = (libc::ENOSYS, "ENOSYS");

#[test]
fn a_chmod_u_plus_s_whose_number_has_high_bits_set_is_reported() {
    let sensor = Sensor::start("");
    let dir = scratch_dir("sensor-high-bits");
    let file = dir.join("copy of a shell");
    std::fs::write(&file, b"#!/bin/sh\n").expect("write");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let path = c_path(&file);
    // SAFETY: chmod with a valid path, under a number the kernel reads as
    // chmod's (or refuses, before 5.11).
    let (pid, result) =
        in_child(|| unsafe { libc::syscall(1 << 32 | libc::SYS_chmod, path.as_ptr(), 0o4755) });
    let mode = std::fs::metadata(&file).expect("stat").permissions().mode() & 0o7777;
    assert_eq!(mode == 0o4755, result.is_ok(), "mode {mode:o}, {result:?}");
    let ev = sensor.wait_for("the chmod with bit 32 set", |v| {
        action(v) == "chmod" && pid_of(v) == pid
    });
    assert_eq!(at(&ev, "file.path").as_str(), file.to_str(), "{ev}");
    assert_eq!(at(&ev, "sensor.syscall"), "chmod", "{ev}");
    assert!(
        at(&ev, "sensor.syscall_abi").is_null(),
        "a native call: {ev}"
    );
    assert_eq!(at(&ev, "sensor.file_change.requested.mode"), "4755", "{ev}");
    assert_eq!(
        at(&ev, "sensor.file_change.special_bits"),
        &serde_json::json!(["setuid"]),
        "{ev}"
    );
    assert_outcome(&ev, result, &[ENOSYS]);
}

#[test]
fn a_setuid_to_root_refused_to_nobody_under_bit_63_is_reported() {
    let sensor = Sensor::start("");
    let (pid, result) = in_child(|| {
        // SAFETY: plain syscalls with integer arguments.
        unsafe {
            if libc::setresuid(65534, 65534, 65534) != 0 {
                return -1;
            }
            libc::syscall(1 << 63 | libc::SYS_setuid, 0)
        }
    });
    assert!(result.is_err(), "nobody became root");
    let ev = sensor.wait_for("the setuid with bit 63 set", |v| {
        action(v) == "credential_change" && pid_of(v) == pid && at(v, "sensor.syscall") == "setuid"
    });
    assert_outcome(&ev, result, &[(libc::EPERM, "EPERM"), ENOSYS]);
    assert_eq!(at(&ev, "sensor.cred_change.requested.uid"), 0, "{ev}");
    assert_eq!(at(&ev, "process.user.id"), "65534", "{ev}");
}

#[test]
fn an_x32_chmod_is_reported_with_its_abi_whether_or_not_the_kernel_runs_it() {
    let sensor = Sensor::start("");
    let dir = scratch_dir("sensor-x32");
    let file = dir.join("x32 target");
    std::fs::write(&file, b"#!/bin/sh\n").expect("write");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let path = c_path(&file);
    // SAFETY: chmod with a valid path through the x32 ABI (which most
    // kernels refuse).
    let (pid, result) =
        in_child(|| unsafe { libc::syscall(X32 | libc::SYS_chmod, path.as_ptr(), 0o2755) });
    let mode = std::fs::metadata(&file).expect("stat").permissions().mode() & 0o7777;
    assert_eq!(mode == 0o2755, result.is_ok(), "mode {mode:o}, {result:?}");
    let ev = sensor.wait_for("the x32 chmod", |v| {
        action(v) == "chmod" && pid_of(v) == pid
    });
    assert_eq!(at(&ev, "sensor.syscall_abi"), "x32", "{ev}");
    assert_eq!(at(&ev, "sensor.syscall"), "chmod", "{ev}");
    assert_eq!(at(&ev, "file.path").as_str(), file.to_str(), "{ev}");
    assert_eq!(at(&ev, "sensor.file_change.requested.mode"), "2755", "{ev}");
    assert_outcome(&ev, result, &[ENOSYS]);
}

#[test]
fn an_x32_ptrace_attach_is_reported_at_x32s_own_number() {
    let sensor = Sensor::start("");
    // A target that waits to be killed.
    let mut target = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .expect("spawn sleep");
    let target_pid = target.id() as libc::c_long;
    // SAFETY: ptrace(PTRACE_ATTACH, pid, 0, 0) through the x32 ABI. Where
    // it attaches, the tracer's exit detaches.
    let (pid, result) = in_child(|| unsafe {
        libc::syscall(
            X32 | X32_PTRACE,
            libc::PTRACE_ATTACH as libc::c_long,
            target_pid,
            0,
            0,
        )
    });
    let ev = sensor.wait_for("the x32 ptrace attach", |v| {
        action(v) == "ptrace_attach" && pid_of(v) == pid
    });
    let _ = target.kill();
    let _ = target.wait();
    assert_eq!(at(&ev, "sensor.syscall_abi"), "x32", "{ev}");
    assert_eq!(at(&ev, "sensor.syscall"), "ptrace", "{ev}");
    assert_eq!(
        at(&ev, "sensor.ptrace_target.pid").as_u64(),
        Some(target_pid as u64),
        "{ev}"
    );
    assert_outcome(&ev, result, &[ENOSYS]);
}
