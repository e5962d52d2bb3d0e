//! setns: a process entering another namespace, and whether it is the
//! host's (from a container, an escape: `nsenter -t 1 -m -p`); unshare,
//! clone and clone3 making new namespaces (an unprivileged user's user
//! namespace: a kernel exploit's first step). The tests make the real
//! calls in forked children, check where each call left them, and assert
//! the events.
//!
//! "The host's" is the sensor's (init's where it can read them; this
//! build machine hides its init's): the tests go back into their own
//! process's namespaces, which are the sensor's.

use std::ffi::{CStr, CString};

use sensor_tests::{CloneArgs, Sensor, action, at, pid_of};

const OWN_NET: &CStr = c"/proc/self/ns/net";
const OWN_MNT: &CStr = c"/proc/self/ns/mnt";
const OWN_UTS: &CStr = c"/proc/self/ns/uts";

/// This test process's namespace file of type `name`, for its children.
fn parents(name: &str) -> CString {
    CString::new(format!("/proc/{}/ns/{name}", std::process::id())).unwrap()
}

/// The namespace's inode number (0 if it cannot be read). No allocation:
/// the forked children of this multi-threaded test call it.
fn ns_ino(path: &CStr) -> u64 {
    // SAFETY: stat into a zeroed local.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::stat(path.as_ptr(), &mut st) != 0 {
            return 0;
        }
        st.st_ino
    }
}

fn open(path: &CStr) -> libc::c_int {
    // SAFETY: a plain open of a namespace file.
    unsafe { libc::open(path.as_ptr(), libc::O_RDONLY) }
}

/// Runs `f` in a forked child, returning its pid and its exit code (0:
/// `f`'s checks held). `f` must not allocate: another test thread may
/// hold the allocator's lock at the fork.
fn in_child(f: impl FnOnce() -> i32) -> (libc::pid_t, i32) {
    // SAFETY: the child makes syscalls and reads /proc, then _exit.
    let child = unsafe { libc::fork() };
    assert!(child >= 0, "fork: {}", std::io::Error::last_os_error());
    if child == 0 {
        let code = f();
        // SAFETY: ends the forked child.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waits for our own child.
    unsafe { libc::waitpid(child, &mut status, 0) };
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    (child, code)
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn unshare_net() -> bool {
    // SAFETY: a plain syscall in the child.
    unsafe { libc::unshare(libc::CLONE_NEWNET) == 0 }
}

fn setns(fd: libc::c_int, nstype: libc::c_int) -> libc::c_int {
    // SAFETY: a plain syscall in the child.
    unsafe { libc::setns(fd, nstype) }
}

fn namespace_event(sensor: &Sensor, child: libc::pid_t) -> serde_json::Value {
    sensor.wait_for("the setns", |v| {
        action(v) == "namespace_enter" && pid_of(v) == child as u64
    })
}

#[test]
fn a_process_back_in_the_hosts_network_namespace_is_flagged() {
    let sensor = Sensor::start("");
    let host = parents("net");
    let host_net = ns_ino(&host);
    let (child, code) = in_child(|| {
        if !unshare_net() || ns_ino(OWN_NET) == host_net {
            return 2;
        }
        let fd = open(&host);
        if fd < 0 || setns(fd, libc::CLONE_NEWNET) != 0 {
            return 3;
        }
        i32::from(ns_ino(OWN_NET) != host_net)
    });
    assert_eq!(
        code, 0,
        "the child did not get back into the host's namespace"
    );
    let ev = namespace_event(&sensor, child);
    assert_eq!(at(&ev, "event.outcome"), "success", "{ev}");
    assert_eq!(at(&ev, "sensor.syscall"), "setns", "{ev}");
    assert_eq!(
        at(&ev, "sensor.namespace.types"),
        &serde_json::json!(["net"]),
        "{ev}"
    );
    assert_eq!(at(&ev, "sensor.namespace.inode"), host_net, "{ev}");
    assert_eq!(at(&ev, "sensor.namespace.host"), true, "{ev}");
}

#[test]
fn entering_another_namespace_is_not_the_host() {
    let sensor = Sensor::start("");
    let mut go = [0; 2];
    // SAFETY: a plain pipe.
    assert_eq!(unsafe { libc::pipe(go.as_mut_ptr()) }, 0);
    // A first child in a network namespace of its own, waiting.
    // SAFETY: the child makes syscalls only, then _exit.
    let owner = unsafe { libc::fork() };
    assert!(owner >= 0);
    if owner == 0 {
        let ok = unshare_net();
        // SAFETY: tells the parent, then waits for its SIGKILL (reading
        // the pipe here could take back the byte just written).
        unsafe {
            libc::write(go[1], if ok { b"r" } else { b"f" }.as_ptr().cast(), 1);
            loop {
                libc::pause();
            }
        }
    }
    let mut b = 0u8;
    // SAFETY: waits for the first child's namespace.
    unsafe { libc::read(go[0], (&raw mut b).cast(), 1) };
    assert_eq!(b, b'r', "the first child could not unshare");
    let path = CString::new(format!("/proc/{owner}/ns/net")).unwrap();
    let theirs = ns_ino(&path);
    assert_ne!(theirs, 0, "its namespace");
    assert_ne!(theirs, ns_ino(OWN_NET));
    let (child, code) = in_child(|| {
        let fd = open(&path);
        if fd < 0 || setns(fd, 0) != 0 {
            return 2;
        }
        i32::from(ns_ino(OWN_NET) != theirs)
    });
    // SAFETY: releases and reaps the first child.
    unsafe {
        libc::close(go[1]);
        libc::close(go[0]);
        libc::kill(owner, libc::SIGKILL);
        libc::waitpid(owner, std::ptr::null_mut(), 0);
    }
    assert_eq!(code, 0, "the child did not enter the other namespace");
    let ev = namespace_event(&sensor, child);
    assert_eq!(at(&ev, "event.outcome"), "success", "{ev}");
    assert_eq!(at(&ev, "sensor.namespace.inode"), theirs, "{ev}");
    assert_eq!(at(&ev, "sensor.namespace.host"), false, "{ev}");
    // nstype 0 (any): the type is the one that changed.
    assert_eq!(at(&ev, "sensor.namespace.types"), &types(&["net"]), "{ev}");
    assert!(at(&ev, "sensor.namespace.argument_inode").is_null(), "{ev}");
}

#[test]
fn the_hosts_namespaces_entered_through_a_pidfd_name_its_process() {
    let sensor = Sensor::start("");
    let host_net = ns_ino(OWN_NET);
    let me = std::process::id();
    let (child, code) = in_child(|| {
        if !unshare_net() {
            return 2;
        }
        // SAFETY: a plain syscall.
        let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, me, 0) } as libc::c_int;
        if pidfd < 0 || setns(pidfd, libc::CLONE_NEWNET) != 0 {
            return 3;
        }
        i32::from(ns_ino(OWN_NET) != host_net)
    });
    assert_eq!(
        code, 0,
        "the child did not get back into the host's namespace"
    );
    let ev = namespace_event(&sensor, child);
    assert_eq!(at(&ev, "event.outcome"), "success", "{ev}");
    assert_eq!(at(&ev, "sensor.ptrace_target.pid"), me, "{ev}");
    assert_eq!(
        at(&ev, "sensor.namespace.types"),
        &serde_json::json!(["net"]),
        "{ev}"
    );
    assert_eq!(at(&ev, "sensor.namespace.host"), true, "{ev}");
}

#[test]
fn a_setns_refused_to_nobody_is_reported_with_the_namespace_it_aimed_at() {
    let sensor = Sensor::start("");
    let host_mnt = ns_ino(OWN_MNT);
    let (child, code) = in_child(|| {
        // Opened as root, then the rights are dropped: the call needs
        // CAP_SYS_ADMIN.
        let fd = open(OWN_MNT);
        // SAFETY: a plain syscall.
        if fd < 0 || unsafe { libc::setresuid(65534, 65534, 65534) } != 0 {
            return 2;
        }
        if setns(fd, 0) == 0 {
            return 3;
        }
        i32::from(errno() != libc::EPERM)
    });
    assert_eq!(code, 0, "nobody's setns was not refused with EPERM");
    let ev = namespace_event(&sensor, child);
    assert_eq!(at(&ev, "event.outcome"), "failure", "{ev}");
    assert_eq!(at(&ev, "error.code"), "EPERM", "{ev}");
    assert_eq!(at(&ev, "sensor.namespace.inode"), host_mnt, "{ev}");
    assert_eq!(
        at(&ev, "sensor.namespace.types"),
        &serde_json::json!(["mnt"]),
        "{ev}"
    );
    assert_eq!(at(&ev, "sensor.namespace.host"), true, "{ev}");
    assert_eq!(at(&ev, "process.user.id"), "65534", "{ev}");
}

/// The `namespace_create` events of process `pid`, once `count` came.
fn creations(sensor: &Sensor, pid: libc::pid_t, count: usize) -> Vec<serde_json::Value> {
    sensor.wait_for_count("the namespace creations", count, |v| {
        action(v) == "namespace_create" && pid_of(v) == pid as u64
    })
}

/// Every `namespace_create` event of process `pid` the sensor printed so far.
fn all_creations(sensor: &Sensor, pid: libc::pid_t) -> Vec<serde_json::Value> {
    sensor
        .events()
        .into_iter()
        .filter(|v| action(v) == "namespace_create" && pid_of(v) == pid as u64)
        .collect()
}

fn types(names: &[&str]) -> serde_json::Value {
    serde_json::json!(names)
}

#[test]
fn unshare_into_new_namespaces_is_reported_and_an_unshare_of_files_is_not() {
    let sensor = Sensor::start("");
    let host_net = ns_ino(OWN_NET);
    // The child's new namespaces' inodes come back through a pipe.
    let mut pipe = [0; 2];
    // SAFETY: a pipe into a local array of two fds.
    assert_eq!(unsafe { libc::pipe(pipe.as_mut_ptr()) }, 0, "pipe");
    let (child, code) = in_child(|| {
        // SAFETY: plain syscalls in the child. The first makes no
        // namespace: it must not be reported.
        if unsafe { libc::unshare(libc::CLONE_FILES) } != 0 {
            return 2;
        }
        // SAFETY: as above.
        if unsafe { libc::unshare(libc::CLONE_NEWUTS | libc::CLONE_NEWNET) } != 0 {
            return 3;
        }
        let made = [ns_ino(OWN_UTS), ns_ino(OWN_NET)];
        // SAFETY: 16 bytes from a local array into the pipe.
        if unsafe { libc::write(pipe[1], made.as_ptr().cast(), 16) } != 16 {
            return 4;
        }
        i32::from(ns_ino(OWN_NET) == host_net)
    });
    assert_eq!(code, 0, "the child did not get a namespace of its own");
    let mut made = [0u64; 2];
    // SAFETY: 16 bytes into a local array, which the child wrote.
    let read = unsafe { libc::read(pipe[0], made.as_mut_ptr().cast(), 16) };
    assert_eq!(read, 16, "the child's namespace inodes");
    // SAFETY: closing the pipe's two fds, ours.
    unsafe { (libc::close(pipe[0]), libc::close(pipe[1])) };
    let ev = &creations(&sensor, child, 1)[0];
    assert_eq!(at(ev, "event.outcome"), "success", "{ev}");
    assert_eq!(at(ev, "event.type"), &serde_json::json!(["change"]), "{ev}");
    assert_eq!(at(ev, "sensor.syscall"), "unshare", "{ev}");
    assert_eq!(
        at(ev, "sensor.namespace.types"),
        &types(&["uts", "net"]),
        "{ev}"
    );
    assert_eq!(
        at(ev, "sensor.namespace.inodes"),
        &serde_json::json!({"uts": made[0], "net": made[1]}),
        "{ev}"
    );
    // The CLONE_FILES call, made first by the same thread, would have come
    // first.
    let all = all_creations(&sensor, child);
    assert_eq!(
        all.len(),
        1,
        "an unshare without a namespace was reported: {all:?}"
    );
}

/// A raw clone or clone3 that returns like fork (no new stack): 0 in the
/// child, which leaves at once, having written its uts, ipc and net
/// namespaces' inodes to `report` (if one, a pipe); the child's pid in
/// the caller, after it was reaped (-1 if the call failed).
fn clone_and_reap(
    call: impl FnOnce() -> libc::c_long,
    report: Option<libc::c_int>,
) -> libc::c_long {
    let pid = call();
    if pid == 0 {
        if let Some(fd) = report {
            let own = [OWN_UTS, c"/proc/self/ns/ipc", OWN_NET].map(ns_ino);
            // SAFETY: 24 bytes from a local array into the pipe.
            unsafe { libc::write(fd, own.as_ptr().cast(), 24) };
        }
        // SAFETY: ends the new process without touching the copied state.
        unsafe { libc::_exit(0) };
    }
    if pid > 0 {
        // SAFETY: reaps our own child.
        unsafe { libc::waitpid(pid as libc::pid_t, std::ptr::null_mut(), 0) };
    }
    pid
}

#[test]
fn clone_and_clone3_into_new_namespaces_are_reported_and_plain_forks_are_not() {
    let sensor = Sensor::start("");
    let sigchld = libc::SIGCHLD as u64;
    // The new processes' namespace inodes come back through a pipe.
    let mut pipe = [0; 2];
    // SAFETY: a pipe into a local array of two fds.
    assert_eq!(unsafe { libc::pipe(pipe.as_mut_ptr()) }, 0, "pipe");
    let (child, code) = in_child(|| {
        // SAFETY: raw clones without a new stack return like fork; the
        // new processes only _exit.
        let clone = |flags: u64| unsafe { libc::syscall(libc::SYS_clone, flags, 0, 0, 0, 0) };
        // A plain fork through clone, and one through clone3: not reported.
        if clone_and_reap(|| clone(sigchld), None) <= 0 {
            return 2;
        }
        let clone3 = |flags: u64| {
            let args = CloneArgs {
                flags,
                exit_signal: sigchld,
                ..CloneArgs::default()
            };
            // SAFETY: clone3 with a valid struct and its size.
            unsafe { libc::syscall(libc::SYS_clone3, &raw const args, size_of::<CloneArgs>()) }
        };
        if clone_and_reap(|| clone3(0), None) <= 0 {
            return 3;
        }
        if clone_and_reap(|| clone(libc::CLONE_NEWUTS as u64 | sigchld), Some(pipe[1])) <= 0 {
            return 4;
        }
        let new = (libc::CLONE_NEWIPC | libc::CLONE_NEWNET) as u64;
        i32::from(clone_and_reap(|| clone3(new), Some(pipe[1])) <= 0) * 5
    });
    assert_eq!(code, 0, "a clone failed");
    // [uts, ipc, net] of the clone's new process, then of the clone3's.
    let mut made = [0u64; 6];
    // SAFETY: 48 bytes into a local array, which the new processes wrote.
    let read = unsafe { libc::read(pipe[0], made.as_mut_ptr().cast(), 48) };
    assert_eq!(read, 48, "the new processes' namespace inodes");
    // SAFETY: closing the pipe's two fds, ours.
    unsafe { (libc::close(pipe[0]), libc::close(pipe[1])) };
    let events = creations(&sensor, child, 2);
    let by = |call: &str| {
        events
            .iter()
            .find(|v| at(v, "sensor.syscall") == call)
            .unwrap_or_else(|| panic!("no {call} event: {events:?}"))
    };
    let (clone, clone3) = (by("clone"), by("clone3"));
    // (SIGCHLD, in clone's low byte, is no namespace.)
    assert_eq!(
        at(clone, "sensor.namespace.types"),
        &types(&["uts"]),
        "{clone}"
    );
    assert_eq!(
        at(clone3, "sensor.namespace.types"),
        &types(&["ipc", "net"]),
        "{clone3}"
    );
    assert_eq!(
        at(clone, "sensor.namespace.inodes"),
        &serde_json::json!({"uts": made[0]}),
        "{clone}"
    );
    assert_eq!(
        at(clone3, "sensor.namespace.inodes"),
        &serde_json::json!({"ipc": made[4], "net": made[5]}),
        "{clone3}"
    );
    for ev in [clone, clone3] {
        assert_eq!(at(ev, "event.outcome"), "success", "{ev}");
        assert_eq!(at(ev, "event.type"), &serde_json::json!(["start"]), "{ev}");
        // What the kernel made, seen at the fork, is what the flags asked.
        assert!(at(ev, "sensor.namespace.requested").is_null(), "{ev}");
    }
    let all = all_creations(&sensor, child).len();
    assert_eq!(all, 2, "a plain fork was reported");
}

/// clone3's flags are in the caller's memory, read by the sensor at the
/// call's entry, where a read cannot fault a page in: the actor's are in
/// a file page it never touched (see its `clone3-unread-flags`), so that
/// read fails, while the kernel's own copy succeeds and makes the
/// namespaces. The fork shows what was made, and reports it.
#[test]
fn a_clone3_whose_flags_cannot_be_read_at_entry_is_reported_from_its_fork() {
    let sensor = Sensor::start("");
    let dir = sensor_tests::scratch_dir("sensor-ns");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_actor"))
        .arg("clone3-unread-flags")
        .arg(dir.join("clone_args"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run the actor");
    let actor = child.id() as libc::pid_t;
    let out = child.wait_with_output().expect("wait for the actor");
    assert!(out.status.success(), "actor: {out:?}");
    let ev = &creations(&sensor, actor, 1)[0];
    assert_eq!(
        at(ev, "sensor.namespace.types"),
        &types(&["uts", "user"]),
        "{ev}"
    );
    // As the sensor read them, the flags asked for nothing; which call
    // it was is unknown (no record of its entry).
    assert_eq!(at(ev, "sensor.namespace.requested"), &types(&[]), "{ev}");
    assert!(at(ev, "sensor.syscall").is_null(), "{ev}");
    assert_eq!(at(ev, "event.outcome"), "success", "{ev}");
    assert_eq!(at(ev, "event.type"), &serde_json::json!(["start"]), "{ev}");
    // The namespaces by inode, as the new process read them: its links
    // (`uts:[N] user:[M]`) are the actor's last line.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let links = stdout.lines().last().expect("the new process's links");
    for link in links.split(' ') {
        let (kind, rest) = link.split_once(":[").expect("a namespace link");
        let inode: u64 = rest.trim_end_matches(']').parse().expect("an inode");
        assert_eq!(
            at(ev, &format!("sensor.namespace.inodes.{kind}")),
            inode,
            "{kind}: {ev}"
        );
    }
    let all = all_creations(&sensor, actor);
    assert_eq!(all.len(), 1, "reported twice: {all:?}");
}

#[test]
fn nobodys_new_user_namespace_is_reported_and_its_capabilities_are_no_privilege_gain() {
    let sensor = Sensor::start("");
    let (child, code) = in_child(|| {
        // SAFETY: plain syscalls in the child.
        if unsafe { libc::setresuid(65534, 65534, 65534) } != 0 {
            return 200;
        }
        // Without a user namespace of its own nobody may not: EPERM.
        // SAFETY: as above.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } == 0 || errno() != libc::EPERM {
            return 201;
        }
        // Whether nobody may make a user namespace is the host's choice
        // (sysctls, LSMs): the exit code tells the test what it got.
        // SAFETY: as above.
        if unsafe { libc::unshare(libc::CLONE_NEWUSER) } != 0 {
            return errno();
        }
        // Then what it opens: every capability there, so a network
        // namespace (the exploit's way to nf_tables) is no longer refused.
        // SAFETY: as above.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            return 202;
        }
        0
    });
    assert!(code < 200, "nobody's unshares went otherwise ({code})");
    let events = creations(&sensor, child, if code == 0 { 3 } else { 2 });
    let (net, user) = (&events[0], &events[1]);
    assert_eq!(at(net, "sensor.namespace.types"), &types(&["net"]), "{net}");
    assert_eq!(at(net, "event.outcome"), "failure", "{net}");
    assert_eq!(at(net, "error.code"), "EPERM", "{net}");
    assert_eq!(
        at(user, "sensor.namespace.types"),
        &types(&["user"]),
        "{user}"
    );
    if code == 0 {
        assert_eq!(at(user, "event.outcome"), "success", "{user}");
    } else {
        assert_eq!(at(user, "event.outcome"), "failure", "{user}");
        let name = match code {
            libc::EPERM => "EPERM",
            libc::EACCES => "EACCES",
            libc::ENOSPC => "ENOSPC",
            libc::EUSERS => "EUSERS",
            other => panic!("nobody's user namespace failed with errno {other}"),
        };
        assert_eq!(at(user, "error.code"), name, "{user}");
    }
    for ev in &events {
        assert_eq!(at(ev, "process.user.id"), "65534", "{ev}");
        // The capabilities it holds in its own user namespace are not the
        // host's: no privilege was gained.
        assert!(at(ev, "sensor.privilege_gain").is_null(), "{ev}");
    }
    if code == 0 {
        let inside = &events[2];
        assert_eq!(
            at(inside, "sensor.namespace.types"),
            &types(&["net"]),
            "{inside}"
        );
        assert_eq!(at(inside, "event.outcome"), "success", "{inside}");
    }
}
