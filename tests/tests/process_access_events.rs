//! Other ways into another process than ptrace and process_vm_*:
//! `pidfd_getfd` (copy one of its open files) and `/proc/PID/mem` (read
//! or write its memory through a file). The tests make the real calls on
//! a forked child, check that they worked from the child's side, and
//! assert the events; and the calls a process makes on itself.
//!
//! On this build machine fexit is refused, so `/proc/PID/mem` opens come
//! from the open syscalls' exit (successful opens for writing); the vm-test
//! guests run the fexit hook.

use std::ffi::CString;
use std::io::Write as _;
use std::os::fd::AsRawFd as _;

use sensor_tests::victim::{PAYLOAD, TARGET, exited_zero, fork_checking_target, pipe};
use sensor_tests::{Sensor, action, at, pid_of, scratch_dir};

fn pidfd_open(pid: libc::pid_t) -> libc::c_int {
    // SAFETY: a plain syscall.
    unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) as libc::c_int }
}

fn pidfd_getfd(pidfd: libc::c_int, fd: libc::c_int) -> libc::c_int {
    // SAFETY: a plain syscall; a new fd in this process on success.
    unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd, fd, 0) as libc::c_int }
}

fn fd_path(fd: libc::c_int) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt as _;
    std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .expect("readlink")
        .as_os_str()
        .as_bytes()
        .to_vec()
}

#[test]
fn a_file_taken_from_another_process_is_named_with_its_owner() {
    let sensor = Sensor::start("");
    let dir = scratch_dir("pidfd-getfd");
    let secret = dir.join("secret");
    std::fs::File::create(&secret)
        .and_then(|mut f| f.write_all(b"key"))
        .expect("secret file");
    // Opened here, inherited by the child, closed here: only the child
    // holds it when it is taken.
    let file = std::fs::File::open(&secret).expect("open secret");
    let fd = file.as_raw_fd();
    let go = pipe();
    let child = fork_checking_target(go[0]);
    drop(file);
    // Only the child keeps its end of the pipe: a file the caller holds at
    // the same number itself would be no theft (see below).
    // SAFETY: our own copy of the fd; the child has its own.
    unsafe { libc::close(go[0]) };
    // Our own pidfd first: taking one's own file crosses nothing, not
    // reported.
    let me = std::process::id();
    let own_pidfd = pidfd_open(me as libc::pid_t);
    assert!(own_pidfd >= 0, "pidfd_open(self)");
    let own_copy = pidfd_getfd(own_pidfd, go[1]);
    assert!(
        own_copy >= 0,
        "pidfd_getfd(self): {}",
        std::io::Error::last_os_error()
    );

    let pidfd = pidfd_open(child);
    assert!(
        pidfd >= 0,
        "pidfd_open: {}",
        std::io::Error::last_os_error()
    );
    let taken = pidfd_getfd(pidfd, fd);
    assert!(
        taken >= 0,
        "pidfd_getfd: {}",
        std::io::Error::last_os_error()
    );
    // Then the child's end of its pipe: a file with no path, named as
    // /proc names it.
    let taken_pipe = pidfd_getfd(pidfd, go[0]);
    assert!(
        taken_pipe >= 0,
        "pidfd_getfd: {}",
        std::io::Error::last_os_error()
    );
    let pipe_name = fd_path(taken_pipe);
    assert!(pipe_name.starts_with(b"pipe:["), "{pipe_name:?}");
    let expected_path = std::fs::canonicalize(&secret).expect("canonical path");
    {
        use std::os::unix::ffi::OsStrExt as _;
        assert_eq!(fd_path(taken), expected_path.as_os_str().as_bytes());
    }
    // SAFETY: one byte to our pipe releases the child.
    unsafe { libc::write(go[1], b"g".as_ptr().cast(), 1) };
    // (It finds no payload: nothing here writes one.)
    exited_zero(child);

    let me = u64::from(me);
    let ev = sensor.wait_for("the file taken from the child", |v| {
        action(v) == "process_fd_copy" && pid_of(v) == me
    });
    assert_eq!(at(&ev, "sensor.ptrace_target.pid"), child, "{ev}");
    assert_eq!(at(&ev, "sensor.process_access.fd"), fd, "{ev}");
    assert_eq!(
        at(&ev, "file.path"),
        expected_path.to_str().expect("utf-8 path"),
        "{ev}"
    );
    assert_eq!(at(&ev, "sensor.syscall"), "pidfd_getfd", "{ev}");
    assert_eq!(at(&ev, "event.outcome"), "success", "{ev}");
    let ev = sensor.wait_for("the pipe taken from the child", |v| {
        action(v) == "process_fd_copy" && at(v, "sensor.process_access.fd") == go[0]
    });
    assert_eq!(
        at(&ev, "sensor.process_access.object")
            .as_str()
            .map(str::as_bytes),
        Some(pipe_name.as_slice()),
        "{ev}"
    );
    assert!(at(&ev, "file").is_null(), "{ev}");
    // The child is a fork of this test: the table knows its executable.
    assert_eq!(
        at(&ev, "sensor.ptrace_target.executable"),
        at(&ev, "process.executable"),
        "{ev}"
    );
    // Our own copy came first: it would be here by now.
    let own: Vec<_> = sensor
        .events()
        .into_iter()
        .filter(|v| action(v) == "process_fd_copy" && at(v, "sensor.process_access.fd") == go[1])
        .collect();
    assert!(own.is_empty(), "{own:?}");
}

#[test]
fn taking_a_file_from_init_refused_to_nobody_is_reported() {
    let sensor = Sensor::start("");
    // SAFETY: the child makes syscalls only, then _exit.
    let child = unsafe { libc::fork() };
    assert!(child >= 0, "fork: {}", std::io::Error::last_os_error());
    if child == 0 {
        // SAFETY: plain syscalls; pidfd_open needs no permission, the
        // take is refused.
        let code = unsafe {
            if libc::setresuid(65534, 65534, 65534) != 0 {
                2
            } else {
                let pidfd = pidfd_open(1);
                if pidfd < 0 {
                    3
                } else if pidfd_getfd(pidfd, 0) >= 0 {
                    4
                } else if *libc::__errno_location() != libc::EPERM {
                    5
                } else {
                    0
                }
            }
        };
        // SAFETY: ends the forked child.
        unsafe { libc::_exit(code) };
    }
    let (ok, status) = exited_zero(child);
    assert!(
        ok,
        "nobody's take from init was not refused with EPERM: {status:#x}"
    );
    let ev = sensor.wait_for("the refused take", |v| {
        action(v) == "process_fd_copy" && pid_of(v) == child as u64
    });
    assert_eq!(at(&ev, "event.outcome"), "failure", "{ev}");
    assert_eq!(at(&ev, "error.code"), "EPERM", "{ev}");
    assert_eq!(at(&ev, "sensor.ptrace_target.pid"), 1, "{ev}");
    assert_eq!(at(&ev, "sensor.process_access.fd"), 0, "{ev}");
    assert!(at(&ev, "file.path").is_null(), "{ev}");
}

#[test]
fn a_write_into_another_process_through_its_memory_file_names_it() {
    let sensor = Sensor::start("");
    let go = pipe();
    let child = fork_checking_target(go[0]);
    let mem = CString::new(format!("/proc/{child}/mem")).unwrap();
    // SAFETY: opens the child's memory file.
    let fd = unsafe { libc::open(mem.as_ptr(), libc::O_RDWR) };
    assert!(fd >= 0, "open {mem:?}: {}", std::io::Error::last_os_error());
    // SAFETY: writes 16 bytes of PAYLOAD at TARGET's address in the child.
    let written = unsafe {
        libc::pwrite(
            fd,
            PAYLOAD.as_ptr().cast(),
            PAYLOAD.len(),
            TARGET.as_ptr() as libc::off_t,
        )
    };
    assert_eq!(written, 16, "pwrite: {}", std::io::Error::last_os_error());
    // SAFETY: our fd, and one byte to our pipe.
    unsafe {
        libc::close(fd);
        libc::write(go[1], b"g".as_ptr().cast(), 1);
    }
    let (ok, status) = exited_zero(child);
    assert!(ok, "the child did not find the payload: {status:#x}");

    let me = u64::from(std::process::id());
    // By its target too: the test beside this one opens its own memory
    // file from this same process.
    let ev = sensor.wait_for("the open of the child's memory", |v| {
        action(v) == "process_memory_open"
            && pid_of(v) == me
            && at(v, "sensor.ptrace_target.pid") == child
    });
    assert_eq!(at(&ev, "sensor.ptrace_target.pid"), child, "{ev}");
    assert_eq!(at(&ev, "sensor.process_access.mode"), "read_write", "{ev}");
    assert_eq!(at(&ev, "event.outcome"), "success", "{ev}");
    assert_eq!(
        at(&ev, "event.category"),
        &serde_json::json!(["process"]),
        "{ev}"
    );
    assert_eq!(
        at(&ev, "sensor.ptrace_target.executable"),
        at(&ev, "process.executable"),
        "{ev}"
    );
}

#[test]
fn its_own_memory_opened_for_writing_is_reported_and_for_reading_not() {
    let sensor = Sensor::start("");
    let me = std::process::id();
    let mem = CString::new(format!("/proc/{me}/mem")).unwrap();
    // Reading first: not reported. Then writing (how a shell overwrites
    // its own code past W^X): reported.
    for flags in [libc::O_RDONLY, libc::O_WRONLY] {
        // SAFETY: opens and closes our own memory file.
        let fd = unsafe { libc::open(mem.as_ptr(), flags) };
        assert!(fd >= 0, "open {mem:?}: {}", std::io::Error::last_os_error());
        // SAFETY: our fd.
        unsafe { libc::close(fd) };
    }
    let me = u64::from(me);
    // By its target too: the test beside this one opens a child's memory
    // file from this same process.
    let own = |v: &serde_json::Value| {
        action(v) == "process_memory_open"
            && pid_of(v) == me
            && at(v, "sensor.ptrace_target.pid") == me
    };
    let ev = sensor.wait_for("the open of our own memory for writing", own);
    assert_eq!(at(&ev, "sensor.process_access.mode"), "write", "{ev}");
    let opens = sensor.events().into_iter().filter(own).count();
    assert_eq!(opens, 1, "the read-only open was reported too");
}
