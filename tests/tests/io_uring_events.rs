//! io_uring requests: a process opens, connects, renames and unlinks
//! through a ring, which makes none of those syscalls. The test submits
//! the real requests on a real ring and asserts the events the submit
//! tracepoint gives, with what the kernel prepared (paths, flags, mode,
//! address), the events of their completions (the result, naming the
//! submission), and that the ring's other traffic (a nop) gives none.

use std::ffi::CString;
use std::net::TcpListener;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use io_uring::{IoUring, opcode, squeue, types};
use sensor_tests::{Sensor, action, at, file_caps_v2, pid_of, scratch_dir};
use serde_json::{Value, json};

/// This test thread's io_uring events: the tests of this file run in
/// threads of one process, each with its own sensor seeing them all.
fn io_uring_event(v: &Value, tid: u64) -> bool {
    action(v) == "io_uring_submit"
        && pid_of(v) == u64::from(std::process::id())
        && at(v, "process.thread.id").as_u64().unwrap_or(pid_of(v)) == tid
}

/// The completions of `submissions`, in their order: matched by the
/// submission they name, as the completing thread may be an io-wq worker
/// of this process rather than this thread.
fn completions_of(sensor: &Sensor, submissions: &[Value]) -> Vec<Value> {
    let ids: Vec<&str> = submissions
        .iter()
        .map(|e| at(e, "event.id").as_str().expect("event.id"))
        .collect();
    let position = |v: &Value| {
        let completes = at(v, "sensor.io_uring.completes").as_str();
        ids.iter().position(|id| Some(*id) == completes)
    };
    let mut done = sensor.wait_for_count("their completions", ids.len(), |v| {
        action(v) == "io_uring_complete" && position(v).is_some()
    });
    done.sort_by_key(|v| position(v));
    done
}

fn gettid() -> u64 {
    // SAFETY: no arguments, cannot fail.
    u64::from(unsafe { libc::gettid() } as u32)
}

fn c_path(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("no NUL")
}

/// Submits `entry` alone and waits for its completion: its result.
fn run(ring: &mut IoUring, entry: io_uring::squeue::Entry) -> i32 {
    // SAFETY: every buffer the entry points to lives until its completion,
    // which this waits for.
    unsafe { ring.submission().push(&entry).expect("the queue has room") };
    ring.submit_and_wait(1).expect("io_uring_enter");
    ring.completion().next().expect("a completion").result()
}

/// A sensor whose `[filter] ignore_path_prefixes` is `dir`'s.
fn sensor_ignoring(dir: &Path) -> Sensor {
    Sensor::start(&format!(
        "[filter]\nignore_path_prefixes = [\"{}/\"]\n",
        dir.display()
    ))
}

/// A rename of `from` to `to` (both relative to the cwd), through the
/// ring: its result.
fn rename(ring: &mut IoUring, from: &CString, to: &CString) -> i32 {
    run(
        ring,
        opcode::RenameAt::new(
            types::Fd(libc::AT_FDCWD),
            from.as_ptr(),
            types::Fd(libc::AT_FDCWD),
            to.as_ptr(),
        )
        .build(),
    )
}

/// 127.0.0.1:`port`.
fn loopback(port: u16) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_be_bytes([127, 0, 0, 1]).to_be(),
        },
        sin_zero: [0; 8],
    }
}

/// A connect to 127.0.0.1:`port` on a new TCP socket, through the ring.
fn connect(ring: &mut IoUring, port: u16) -> i32 {
    let addr = loopback(port);
    // SAFETY: a plain socket.
    let sock = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
    assert!(sock >= 0, "socket: {}", std::io::Error::last_os_error());
    let r = run(
        ring,
        opcode::Connect::new(
            types::Fd(sock),
            (&raw const addr).cast(),
            size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
        .build(),
    );
    // SAFETY: our own fd.
    unsafe { libc::close(sock) };
    r
}

#[test]
fn file_and_network_requests_through_a_ring_are_reported_with_their_arguments() {
    let sensor = Sensor::start("");
    let dir = scratch_dir("sensor-io-uring");
    let file = dir.join("written through a ring");
    let renamed = dir.join("renamed");
    let (path, new_path) = (c_path(&file), c_path(&renamed));
    let dir_fd = std::fs::File::open(&dir).expect("open the directory");
    let relative = CString::new("renamed").expect("no NUL");
    // A port nothing listens on.
    let closed = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);

    let mut ring = IoUring::new(8).expect("io_uring_setup");
    assert_eq!(run(&mut ring, opcode::Nop::new().build()), 0, "nop");
    let fd = run(
        &mut ring,
        opcode::OpenAt::new(types::Fd(libc::AT_FDCWD), path.as_ptr())
            .flags(libc::O_WRONLY | libc::O_CREAT | libc::O_CLOEXEC)
            .mode(0o640)
            .build(),
    );
    assert!(fd >= 0, "openat through the ring: {fd}");
    // SAFETY: our own fd.
    unsafe { libc::close(fd) };
    assert!(file.exists(), "the ring's openat created the file");
    assert_eq!(connect(&mut ring, port), -libc::ECONNREFUSED, "connect");
    assert_eq!(
        rename(&mut ring, &path, &new_path),
        0,
        "renameat through the ring"
    );
    // Relative to a directory fd.
    use std::os::fd::AsRawFd;
    let unlinked = run(
        &mut ring,
        opcode::UnlinkAt::new(types::Fd(dir_fd.as_raw_fd()), relative.as_ptr()).build(),
    );
    assert_eq!(unlinked, 0, "unlinkat through the ring");
    assert!(!renamed.exists());

    let tid = gettid();
    let events = sensor.wait_for_count("the ring's four requests", 4, |v| io_uring_event(v, tid));
    let operations: Vec<&str> = events
        .iter()
        .map(|e| at(e, "sensor.io_uring.operation").as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        operations,
        ["openat", "connect", "renameat", "unlinkat"],
        "{events:?}"
    );
    for (ev, (opcode, category)) in
        events
            .iter()
            .zip([(18, "file"), (16, "network"), (35, "file"), (36, "file")])
    {
        assert_eq!(at(ev, "sensor.io_uring.opcode"), opcode, "{ev}");
        assert_eq!(at(ev, "event.category"), &json!([category]), "{ev}");
        assert_eq!(at(ev, "event.outcome"), "unknown", "{ev}");
        assert_eq!(at(ev, "process.user.id"), "0", "{ev}");
        assert!(
            at(ev, "sensor.syscall").is_null(),
            "no syscall made it: {ev}"
        );
    }
    let [open, connected, rename, unlink] = &events[..] else {
        unreachable!("four events");
    };
    assert_eq!(at(open, "file.path").as_str(), file.to_str(), "{open}");
    assert_eq!(
        at(open, "sensor.io_uring.open_flags"),
        &json!(["O_WRONLY", "O_CREAT"]),
        "{open}"
    );
    assert_eq!(at(open, "sensor.io_uring.mode"), "0640", "{open}");
    assert!(at(open, "sensor.io_uring.dirfd").is_null(), "{open}");

    assert_eq!(at(connected, "destination.ip"), "127.0.0.1", "{connected}");
    assert_eq!(at(connected, "destination.port"), port, "{connected}");

    assert_eq!(at(rename, "file.path").as_str(), file.to_str(), "{rename}");
    assert_eq!(
        at(rename, "sensor.io_uring.target").as_str(),
        renamed.to_str(),
        "{rename}"
    );
    assert!(
        at(rename, "sensor.io_uring.open_flags").is_null(),
        "{rename}"
    );

    // The relative name joined to the directory the fd names.
    assert_eq!(
        at(unlink, "file.path").as_str(),
        renamed.to_str(),
        "{unlink}"
    );
    assert_eq!(
        at(unlink, "sensor.io_uring.path_argument"),
        "renamed",
        "{unlink}"
    );
    assert_eq!(
        at(unlink, "sensor.io_uring.dirfd"),
        dir_fd.as_raw_fd(),
        "{unlink}"
    );

    // Their results, one completion each, with what each request was.
    let done = completions_of(&sensor, &events);
    for (ev, (operation, category)) in done.iter().zip([
        ("openat", "file"),
        ("connect", "network"),
        ("renameat", "file"),
        ("unlinkat", "file"),
    ]) {
        assert_eq!(at(ev, "sensor.io_uring.operation"), operation, "{ev}");
        assert_eq!(at(ev, "event.category"), &json!([category]), "{ev}");
        assert_eq!(pid_of(ev), u64::from(std::process::id()), "{ev}");
        assert!(at(ev, "sensor.io_uring.multishot").is_null(), "{ev}");
    }
    let [opened, refused, renamed_done, unlinked_done] = &done[..] else {
        unreachable!("four completions");
    };
    assert_eq!(at(opened, "event.outcome"), "success", "{opened}");
    assert_eq!(
        at(opened, "sensor.io_uring.result"),
        fd,
        "the new fd: {opened}"
    );
    assert_eq!(at(opened, "file.path").as_str(), file.to_str(), "{opened}");
    assert_eq!(at(opened, "sensor.io_uring.mode"), "0640", "{opened}");
    assert_eq!(at(refused, "event.outcome"), "failure", "{refused}");
    assert_eq!(at(refused, "error.code"), "ECONNREFUSED", "{refused}");
    assert!(at(refused, "sensor.io_uring.result").is_null(), "{refused}");
    assert_eq!(at(refused, "destination.port"), port, "{refused}");
    for (ev, path) in [(renamed_done, &file), (unlinked_done, &renamed)] {
        assert_eq!(at(ev, "event.outcome"), "success", "{ev}");
        assert_eq!(at(ev, "sensor.io_uring.result"), 0, "{ev}");
        assert_eq!(at(ev, "file.path").as_str(), path.to_str(), "{ev}");
    }

    // The nop came first: had it been reported, or its completion, it
    // would be among these.
    let all = sensor
        .events()
        .into_iter()
        .filter(|v| io_uring_event(v, tid))
        .count();
    assert_eq!(all, 4, "only the four requests");
    let completed = sensor
        .events()
        .into_iter()
        .filter(|v| action(v) == "io_uring_complete" && pid_of(v) == u64::from(std::process::id()))
        .filter(|v| at(v, "sensor.io_uring.operation") == "nop")
        .count();
    assert_eq!(completed, 0, "no completion of the nop");
}

/// After a symlink, a `..` goes to the parent of the link's target: a
/// request by such a path names where it led (followed again by the
/// daemon), not its bytes made normal, at submission and at completion;
/// so do a rename's new name and a hard link's existing file.
#[test]
fn a_path_up_through_a_symlink_names_where_it_led() {
    let sensor = Sensor::start("");
    let dir = scratch_dir("sensor-io-uring-up");
    std::fs::create_dir_all(dir.join("elsewhere/inner")).expect("mkdir");
    let victim = dir.join("elsewhere/victim");
    std::fs::write(&victim, b"x").expect("write");
    let moved = dir.join("moved");
    std::fs::write(&moved, b"y").expect("write");
    std::os::unix::fs::symlink(dir.join("elsewhere/inner"), dir.join("l")).expect("symlink");
    let through = dir.join("l/../victim");
    // A rename's new name and a hard link's existing file too.
    let (renamed, renamed_through) = (dir.join("elsewhere/renamed"), dir.join("l/../renamed"));
    let hard = dir.join("hard");
    let [through_c, moved_c, renamed_c, hard_c] =
        [&through, &moved, &renamed_through, &hard].map(|p| c_path(p));
    let cwd = types::Fd(libc::AT_FDCWD);

    let mut ring = IoUring::new(8).expect("io_uring_setup");
    let results = [
        opcode::UnlinkAt::new(cwd, through_c.as_ptr()).build(),
        opcode::RenameAt::new(cwd, moved_c.as_ptr(), cwd, renamed_c.as_ptr()).build(),
        opcode::LinkAt::new(cwd, renamed_c.as_ptr(), cwd, hard_c.as_ptr()).build(),
    ]
    .map(|entry| run(&mut ring, entry));
    assert_eq!(
        results, [0; 3],
        "unlinkat, renameat and linkat through the ring"
    );
    assert!(
        !victim.exists(),
        "the ring unlinked the link's target's neighbour"
    );
    assert!(
        renamed.exists() && hard.exists(),
        "renamed there, and linked"
    );

    let tid = gettid();
    let events = sensor.wait_for_count("the ring's three requests", 3, |v| io_uring_event(v, tid));
    let [ev, rename, link] = &events[..] else {
        unreachable!("three events");
    };
    assert_eq!(at(ev, "file.path").as_str(), victim.to_str(), "{ev}");
    assert_eq!(
        at(ev, "sensor.io_uring.path_argument").as_str(),
        through.to_str(),
        "{ev}"
    );
    let done = completions_of(&sensor, &events);
    for (ev, second) in [
        (rename, "sensor.io_uring.target"),
        (link, "file.target_path"),
    ]
    .into_iter()
    .chain([
        (&done[1], "sensor.io_uring.target"),
        (&done[2], "file.target_path"),
    ]) {
        assert_eq!(at(ev, second).as_str(), renamed.to_str(), "{ev}");
        assert_eq!(
            at(ev, "sensor.io_uring.target_argument").as_str(),
            renamed_through.to_str(),
            "{ev}"
        );
    }
    for ev in events.iter().chain(&done) {
        assert!(at(ev, "sensor.io_uring.unresolved").is_null(), "{ev}");
    }
    assert_eq!(
        at(&done[0], "file.path").as_str(),
        victim.to_str(),
        "{}",
        done[0]
    );
}

/// Links made through a ring name the new name in `file.path`, joined to
/// the directory its fd names, and what it links to in `file.target_path`,
/// as the watch family's link events do.
#[test]
fn links_through_a_ring_name_the_new_name_and_what_it_links_to() {
    use std::os::fd::AsRawFd;
    let sensor = Sensor::start("");
    let dir = scratch_dir("sensor-io-uring-links");
    let existing = dir.join("existing");
    std::fs::write(&existing, b"x").expect("a file to link to");
    let dir_fd = std::fs::File::open(&dir).expect("open the directory");
    let existing_c = c_path(&existing);
    let (hard, soft) = (c"hard", c"soft");
    let target = c"/etc/shadow";
    let mut ring = IoUring::new(4).expect("io_uring_setup");
    let linked = run(
        &mut ring,
        opcode::LinkAt::new(
            types::Fd(libc::AT_FDCWD),
            existing_c.as_ptr(),
            types::Fd(dir_fd.as_raw_fd()),
            hard.as_ptr(),
        )
        .build(),
    );
    assert_eq!(linked, 0, "linkat through the ring");
    let symlinked = run(
        &mut ring,
        opcode::SymlinkAt::new(
            types::Fd(dir_fd.as_raw_fd()),
            target.as_ptr(),
            soft.as_ptr(),
        )
        .build(),
    );
    assert_eq!(symlinked, 0, "symlinkat through the ring");

    let tid = gettid();
    let events = sensor.wait_for_count("the two links", 2, |v| io_uring_event(v, tid));
    let done = completions_of(&sensor, &events);
    for (ev, (operation, name, points_at)) in events.iter().chain(&done).zip(
        [
            ("linkat", "hard", existing.to_str().expect("UTF-8")),
            ("symlinkat", "soft", "/etc/shadow"),
        ]
        .repeat(2),
    ) {
        assert_eq!(at(ev, "sensor.io_uring.operation"), operation, "{ev}");
        assert_eq!(
            at(ev, "file.path").as_str(),
            dir.join(name).to_str(),
            "{ev}"
        );
        assert_eq!(at(ev, "sensor.io_uring.path_argument"), name, "{ev}");
        assert_eq!(at(ev, "file.target_path"), points_at, "{ev}");
        assert!(at(ev, "sensor.io_uring.target").is_null(), "{ev}");
    }
    for ev in &done {
        assert_eq!(at(ev, "event.outcome"), "success", "{ev}");
    }
}

/// A rename's new name and a hard link's existing file start from a
/// directory fd of their own: joined to its directory, shown with that fd
/// and as given, wherever the first path starts (absolute: `mv /tmp/x`
/// into a directory fd of a cron directory; relative to another fd:
/// coreutils' `mv job /etc/cron.d/`, done through a ring). A hard link of
/// the file open at an fd (`AT_EMPTY_PATH`: an `O_TMPFILE` file given a
/// name) names that file. Rename and link flags by name.
#[test]
fn a_second_path_is_joined_to_its_own_directory_fd() {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let sensor = Sensor::start("");
    let dir = scratch_dir("sensor-io-uring-second");
    let into = dir.join("into");
    std::fs::create_dir(&into).expect("mkdir");
    for name in ["a", "c", "e"] {
        std::fs::write(dir.join(name), b"x").expect("a file to move");
    }
    std::fs::write(into.join("f"), b"y").expect("a file to swap with");
    let dir_fd = std::fs::File::open(&dir).expect("open the directory");
    let into_fd = std::fs::File::open(&into).expect("open the directory");
    let (dir_raw, into_raw) = (dir_fd.as_raw_fd(), into_fd.as_raw_fd());
    let (a, e, hard, named) = (
        c_path(&dir.join("a")),
        c_path(&dir.join("e")),
        c_path(&dir.join("hard")),
        c_path(&dir.join("named")),
    );
    // An unnamed file, given names by its fd: at an absolute name, and
    // relative to `into`.
    let unnamed = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_TMPFILE)
        .open(&dir)
        .expect("O_TMPFILE");
    let unnamed_raw = unnamed.as_raw_fd();
    let ino = unnamed.metadata().expect("fstat").ino();
    let cwd = types::Fd(libc::AT_FDCWD);
    let mut ring = IoUring::new(4).expect("io_uring_setup");
    let results = [
        // Absolute, then relative to `into`.
        opcode::RenameAt::new(cwd, a.as_ptr(), types::Fd(into_raw), c"b".as_ptr())
            .flags(libc::RENAME_NOREPLACE)
            .build(),
        // Relative to two fds.
        opcode::RenameAt::new(
            types::Fd(dir_raw),
            c"c".as_ptr(),
            types::Fd(into_raw),
            c"d".as_ptr(),
        )
        .build(),
        // An exchange, the second name relative to `into`.
        opcode::RenameAt::new(cwd, e.as_ptr(), types::Fd(into_raw), c"f".as_ptr())
            .flags(libc::RENAME_EXCHANGE)
            .build(),
        // A hard link at an absolute name to `into/b`, relative to `into`.
        opcode::LinkAt::new(types::Fd(into_raw), c"b".as_ptr(), cwd, hard.as_ptr()).build(),
        opcode::LinkAt::new(types::Fd(unnamed_raw), c"".as_ptr(), cwd, named.as_ptr())
            .flags(libc::AT_EMPTY_PATH)
            .build(),
        opcode::LinkAt::new(
            types::Fd(unnamed_raw),
            c"".as_ptr(),
            types::Fd(into_raw),
            c"named".as_ptr(),
        )
        .flags(libc::AT_EMPTY_PATH)
        .build(),
    ]
    .map(|entry| run(&mut ring, entry));
    assert_eq!(results, [0; 6], "the six requests through the ring");
    assert!(into.join("b").exists() && into.join("d").exists() && dir.join("hard").exists());
    assert_eq!(std::fs::read(dir.join("e")).expect("swapped"), b"y");

    let tid = gettid();
    let events = sensor.wait_for_count("the six requests", 6, |v| io_uring_event(v, tid));
    let done = completions_of(&sensor, &events);
    let text = |p: &Path| p.to_str().expect("UTF-8").to_owned();
    let into_b = text(&into.join("b"));
    let no_flags = ("rename_flags", Value::Null);
    // file.path, the second path shown, as given (where that differs),
    // its fd, the flags.
    let expected = [
        (
            text(&dir.join("a")),
            "sensor.io_uring.target",
            Some(into_b.clone()),
            Some("b"),
            Some(into_raw),
            ("rename_flags", json!(["RENAME_NOREPLACE"])),
        ),
        // Each fd's directory walked (by the submit hook's stage).
        (
            text(&dir.join("c")),
            "sensor.io_uring.target",
            Some(text(&into.join("d"))),
            Some("d"),
            Some(into_raw),
            no_flags.clone(),
        ),
        (
            text(&dir.join("e")),
            "sensor.io_uring.target",
            Some(text(&into.join("f"))),
            Some("f"),
            Some(into_raw),
            ("rename_flags", json!(["RENAME_EXCHANGE"])),
        ),
        (
            text(&dir.join("hard")),
            "file.target_path",
            Some(into_b),
            Some("b"),
            Some(into_raw),
            ("link_flags", Value::Null),
        ),
        // The file at the fd, walked: `#<inode>` in the directory it
        // was made in.
        (
            text(&dir.join("named")),
            "file.target_path",
            Some(format!("{}/#{ino}", dir.display())),
            None,
            Some(unnamed_raw),
            ("link_flags", json!(["AT_EMPTY_PATH"])),
        ),
        // The new name's directory walked, and the fd's file.
        (
            text(&into.join("named")),
            "file.target_path",
            Some(format!("{}/#{ino}", dir.display())),
            None,
            Some(unnamed_raw),
            ("link_flags", json!(["AT_EMPTY_PATH"])),
        ),
    ];
    for (ev, (path, second_field, second, argument, fd, (flags_field, flags))) in
        events.iter().chain(&done).zip(expected.iter().cycle())
    {
        assert_eq!(at(ev, "file.path").as_str(), Some(path.as_str()), "{ev}");
        assert_eq!(at(ev, second_field).as_str(), second.as_deref(), "{ev}");
        assert_eq!(
            at(ev, "sensor.io_uring.target_argument").as_str(),
            *argument,
            "{ev}"
        );
        assert_eq!(
            at(ev, "sensor.io_uring.target_dirfd").as_i64(),
            fd.map(i64::from),
            "{ev}"
        );
        assert_eq!(
            at(ev, &format!("sensor.io_uring.{flags_field}")),
            flags,
            "{ev}"
        );
    }
    assert_eq!(
        at(&events[1], "sensor.io_uring.dirfd"),
        dir_raw,
        "{}",
        events[1]
    );
    for ev in &done {
        assert_eq!(at(ev, "event.outcome"), "success", "{ev}");
    }
}

/// A multishot accept: one request, a completion per connection, each
/// naming it and flagged as more to come.
#[test]
fn each_connection_of_a_multishot_accept_is_a_completion_of_its_request() {
    use std::os::fd::AsRawFd;
    let sensor = Sensor::start("");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let mut ring = IoUring::new(8).expect("io_uring_setup");
    let accept = opcode::AcceptMulti::new(types::Fd(listener.as_raw_fd())).build();
    // SAFETY: no buffers: the peer addresses are not asked for.
    unsafe { ring.submission().push(&accept).expect("the queue has room") };
    ring.submit().expect("io_uring_enter");
    let clients: Vec<_> = (0..2)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect"))
        .collect();
    ring.submit_and_wait(2).expect("two completions");
    let fds: Vec<i32> = ring.completion().map(|c| c.result()).collect();
    assert!(fds.len() >= 2 && fds.iter().all(|fd| *fd >= 0), "{fds:?}");

    let tid = gettid();
    let submitted = sensor.wait_for("the accept's submission", |v| {
        io_uring_event(v, tid) && at(v, "sensor.io_uring.operation") == "accept"
    });
    assert_eq!(at(&submitted, "event.category"), &json!(["network"]));
    let id = at(&submitted, "event.id")
        .as_str()
        .expect("event.id")
        .to_owned();
    let done = sensor.wait_for_count("a completion per connection", 2, |v| {
        action(v) == "io_uring_complete" && at(v, "sensor.io_uring.completes") == id.as_str()
    });
    for (ev, fd) in done.iter().zip(&fds) {
        assert_eq!(at(ev, "sensor.io_uring.result"), *fd, "{ev}");
        assert_eq!(at(ev, "sensor.io_uring.multishot"), true, "{ev}");
        assert_eq!(at(ev, "event.outcome"), "success", "{ev}");
        // The connection as the accepted socket has it: the client, and
        // the listener's end on this host.
        assert_eq!(at(ev, "destination.ip"), "127.0.0.1", "{ev}");
        assert_eq!(at(ev, "destination.port"), port, "{ev}");
        assert_eq!(at(ev, "network.direction"), "ingress", "{ev}");
    }
    let mut reported: Vec<u64> = done
        .iter()
        .map(|ev| at(ev, "source.port").as_u64().expect("source.port"))
        .collect();
    let mut ports: Vec<u64> = clients
        .iter()
        .map(|c| u64::from(c.local_addr().expect("client addr").port()))
        .collect();
    reported.sort();
    ports.sort();
    assert_eq!(reported, ports, "the clients' ports");
    for fd in fds {
        // SAFETY: the accepted fds are ours.
        unsafe { libc::close(fd) };
    }
    drop(clients);
}

/// A connect that succeeds, on a socket passed by fd and on one of the
/// ring's registered files: its completion names both ends as the socket
/// has them (the port the kernel picked for it as `source`).
#[test]
fn a_connects_completion_names_both_ends_of_its_socket() {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let sensor = Sensor::start("");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let addr = loopback(port);
    let new_socket = || {
        // SAFETY: a plain socket, owned at once.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        // SAFETY: a new fd of ours.
        unsafe { OwnedFd::from_raw_fd(fd) }
    };
    let (plain, registered) = (new_socket(), new_socket());
    let mut ring = IoUring::new(4).expect("io_uring_setup");
    ring.submitter()
        .register_files(&[registered.as_raw_fd()])
        .expect("register the socket");
    let len = size_of::<libc::sockaddr_in>() as libc::socklen_t;
    let by_fd = opcode::Connect::new(types::Fd(plain.as_raw_fd()), (&raw const addr).cast(), len);
    let by_slot = opcode::Connect::new(types::Fixed(0), (&raw const addr).cast(), len);
    for entry in [by_fd.build(), by_slot.build()] {
        assert_eq!(run(&mut ring, entry), 0, "connect");
    }
    let local_port = |s: &OwnedFd| {
        // SAFETY: an all-zero sockaddr_in is valid.
        let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        let mut len = size_of::<libc::sockaddr_in>() as libc::socklen_t;
        // SAFETY: getsockname into a local of `len` bytes.
        let r = unsafe { libc::getsockname(s.as_raw_fd(), (&raw mut sa).cast(), &mut len) };
        assert_eq!(r, 0, "getsockname");
        u16::from_be(sa.sin_port)
    };
    let tid = gettid();
    let submitted = sensor.wait_for_count("the connects' submissions", 2, |v| {
        io_uring_event(v, tid) && at(v, "sensor.io_uring.operation") == "connect"
    });
    let done = completions_of(&sensor, &submitted);
    for (ev, socket) in done.iter().zip([&plain, &registered]) {
        assert_eq!(at(ev, "event.outcome"), "success", "{ev}");
        assert_eq!(at(ev, "destination.ip"), "127.0.0.1", "{ev}");
        assert_eq!(at(ev, "destination.port"), port, "{ev}");
        assert_eq!(at(ev, "source.ip"), "127.0.0.1", "{ev}");
        assert_eq!(at(ev, "source.port"), local_port(socket), "{ev}");
        assert!(at(ev, "sensor.io_uring.argument_address").is_null(), "{ev}");
        assert!(at(ev, "file").is_null(), "{ev}");
        assert_eq!(at(ev, "network.transport"), "tcp", "{ev}");
        assert_eq!(at(ev, "network.direction"), "egress", "{ev}");
    }
    // The network family's connects made outside connect calls: the one
    // on a registered file (whose socket the submission cannot look up)
    // is one, with its end; the other is the ring's alone.
    let me = std::process::id() as u64;
    let unseen = |v: &Value| {
        action(v) == "connect"
            && pid_of(v) == me
            && at(v, "destination.port") == port
            && at(v, "sensor.network.without_connect") == true
    };
    let registered_port = local_port(&registered);
    let ended = sensor.wait_for("the registered socket's connect, ended", |v| {
        action(v) == "connect_completed" && at(v, "source.port") == registered_port
    });
    let started: Vec<Value> = sensor.events().into_iter().filter(unseen).collect();
    assert_eq!(started.len(), 1, "{started:?}");
    assert_eq!(
        at(&ended, "sensor.network.completes"),
        at(&started[0], "event.id")
    );
}

/// A bind to port 0 and a listen through the ring (6.11+): their
/// completions name the socket's end, with the port the kernel picked,
/// which no submission holds.
#[test]
fn a_bind_and_a_listen_through_a_ring_name_the_port_the_kernel_picked() {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let sensor = Sensor::start("");
    let addr = loopback(0);
    // SAFETY: a plain socket, owned at once.
    let socket = unsafe { OwnedFd::from_raw_fd(libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0)) };
    let mut ring = IoUring::new(4).expect("io_uring_setup");
    let len = size_of::<libc::sockaddr_in>() as libc::socklen_t;
    let fd = types::Fd(socket.as_raw_fd());
    let bind = opcode::Bind::new(fd, (&raw const addr).cast(), len).build();
    assert_eq!(run(&mut ring, bind), 0, "bind through the ring (6.11+)");
    assert_eq!(
        run(&mut ring, opcode::Listen::new(fd, 8).build()),
        0,
        "listen"
    );
    let port = TcpListener::from(socket).local_addr().expect("addr").port();
    assert_ne!(port, 0);

    let tid = gettid();
    let submitted = sensor.wait_for_count("the bind's and the listen's submissions", 2, |v| {
        io_uring_event(v, tid)
            && ["bind", "listen"]
                .contains(&at(v, "sensor.io_uring.operation").as_str().unwrap_or(""))
    });
    for ev in completions_of(&sensor, &submitted) {
        assert_eq!(at(&ev, "event.outcome"), "success", "{ev}");
        assert_eq!(at(&ev, "server.ip"), "127.0.0.1", "{ev}");
        assert_eq!(at(&ev, "server.port"), port, "{ev}");
    }
}

/// Accepts into the ring's registered files (a multishot one into
/// allocated slots, whose completions come without the request, and a
/// single-shot one into a given slot) complete with a slot's index or 0,
/// no fd of the process's: their completions name no ends, and above all
/// not those of the socket the process has at that number (a decoy on fd
/// 0, by the actor).
#[test]
fn accepts_into_registered_files_name_no_ends_of_the_processs_fd_of_that_number() {
    let sensor = Sensor::start("");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_actor"))
        .arg("io-uring-accept-into-slots")
        .output()
        .expect("run the actor");
    assert!(out.status.success(), "actor: {out:?}");
    let decoy = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    // (The multishot one also ends, cancelled, when the actor's ring goes.)
    let accepted = |v: &Value| {
        action(v) == "io_uring_complete"
            && at(v, "process.name") == "actor"
            && at(v, "sensor.io_uring.operation") == "accept"
            && at(v, "event.outcome") == "success"
    };
    let done = sensor.wait_for_count("both accepts' completions", 2, accepted);
    for ev in &done {
        assert!(at(ev, "sensor.io_uring.completes").is_string(), "{ev}");
        assert!(
            at(ev, "source").is_null() && at(ev, "destination").is_null(),
            "the decoy's ends ({decoy}) or others: {ev}"
        );
    }
}

#[test]
fn a_request_under_an_ignored_path_prefix_is_dropped_in_the_kernel() {
    let dir = scratch_dir("sensor-io-uring-ignored");
    let sensor = sensor_ignoring(&dir);
    let ignored_file = dir.join("ignored");
    let ignored = c_path(&ignored_file);
    let other_dir = scratch_dir("sensor-io-uring-kept");
    let kept_file = other_dir.join("kept");
    let kept = c_path(&kept_file);
    // A symlink under the prefix to a file outside it: what it opens
    // decides, not its name.
    let led_to = other_dir.join("led to");
    std::fs::write(&led_to, b"").expect("create");
    let link_file = dir.join("link");
    std::os::unix::fs::symlink(&led_to, &link_file).expect("symlink");
    let link = c_path(&link_file);
    // A hard link under the prefix: walked from the fd, the file is named
    // by the link, but it has another name outside.
    let linked = other_dir.join("linked");
    std::fs::write(&linked, b"").expect("create");
    let hard_file = dir.join("hard");
    std::fs::hard_link(&linked, &hard_file).expect("link");
    let hard = c_path(&hard_file);
    let mut ring = IoUring::new(4).expect("io_uring_setup");
    for path in [&ignored, &kept, &link, &hard] {
        let fd = run(
            &mut ring,
            opcode::OpenAt::new(types::Fd(libc::AT_FDCWD), path.as_ptr())
                .flags(libc::O_WRONLY | libc::O_CREAT | libc::O_CLOEXEC)
                .mode(0o600)
                .build(),
        );
        assert!(fd >= 0, "openat through the ring: {fd}");
        // SAFETY: our own fd.
        unsafe { libc::close(fd) };
    }
    let tid = gettid();
    let ev = sensor.wait_for("the kept openat", |v| {
        io_uring_event(v, tid) && at(v, "file.path").as_str() == kept_file.to_str()
    });
    assert_eq!(at(&ev, "sensor.io_uring.operation"), "openat", "{ev}");
    // The symlink's open: no submission, its completion alone, naming the
    // file opened.
    let mine = |v: &Value| pid_of(v) == u64::from(std::process::id());
    let held = sensor.wait_for("the open through the symlink", |v| {
        action(v) == "io_uring_complete"
            && mine(v)
            && at(v, "file.path").as_str() == led_to.to_str()
    });
    assert_eq!(
        at(&held, "sensor.io_uring.path_argument_ignored"),
        true,
        "{held}"
    );
    assert!(at(&held, "sensor.io_uring.completes").is_null(), "{held}");
    assert!(
        at(&held, "sensor.io_uring.result")
            .as_i64()
            .is_some_and(|fd| fd >= 0),
        "{held}"
    );
    assert_eq!(
        at(&held, "sensor.io_uring.open_flags"),
        &json!(["O_WRONLY", "O_CREAT"]),
        "{held}"
    );
    let hard = sensor.wait_for("the open through the hard link", |v| {
        action(v) == "io_uring_complete"
            && mine(v)
            && at(v, "file.path").as_str() == hard_file.to_str()
    });
    assert_eq!(
        at(&hard, "sensor.io_uring.path_argument_ignored"),
        true,
        "{hard}"
    );
    // The others were submitted before these: they would be here by now.
    let all: Vec<Value> = sensor
        .events()
        .into_iter()
        .filter(|v| io_uring_event(v, tid))
        .collect();
    assert_eq!(all.len(), 1, "only the kept openat's submission: {all:?}");
    let done = completions_of(&sensor, &all);
    assert_eq!(at(&done[0], "file.path").as_str(), kept_file.to_str());
    // Of the file under the prefix, nothing: the kernel held its open and
    // dropped it at its completion.
    let ignored_events: Vec<Value> = sensor
        .events()
        .into_iter()
        .filter(|v| mine(v) && at(v, "file.path").as_str() == ignored_file.to_str())
        .collect();
    assert!(ignored_events.is_empty(), "{ignored_events:?}");
    let orphans: Vec<Value> = sensor
        .events()
        .into_iter()
        .filter(|v| action(v) == "io_uring_complete" && mine(v))
        .filter(|v| at(v, "sensor.io_uring.completes").is_null())
        .filter(|v| at(v, "sensor.io_uring.path_argument_ignored").is_null())
        .collect();
    assert!(
        orphans.is_empty(),
        "a completion of nothing reported: {orphans:?}"
    );
}

#[test]
fn requests_under_an_ignored_prefix_that_can_land_outside_it_are_reported_at_submission() {
    // Held, as above, an open whose success posts no completion
    // (IOSQE_CQE_SKIP_SUCCESS) would never be decided; and a rename or an
    // unlink has no file for its completion to decide by, while its other
    // path or a symlink under the prefix can land it anywhere.
    let dir = scratch_dir("sensor-io-uring-skip");
    let sensor = sensor_ignoring(&dir);
    let other_dir = scratch_dir("sensor-io-uring-skip-out");
    let led_to = other_dir.join("led to");
    std::fs::write(&led_to, b"").expect("create");
    let link_file = dir.join("link");
    std::os::unix::fs::symlink(&led_to, &link_file).expect("symlink");
    let link = c_path(&link_file);
    let mut ring = IoUring::new(4).expect("io_uring_setup");
    let open = opcode::OpenAt::new(types::Fd(libc::AT_FDCWD), link.as_ptr())
        .flags(libc::O_WRONLY | libc::O_CLOEXEC)
        .build()
        .flags(squeue::Flags::SKIP_SUCCESS | squeue::Flags::IO_LINK)
        .user_data(1);
    // Linked after it: its completion says the open is done (a failed open
    // would post its own, and cancel this one).
    let nop = opcode::Nop::new().build().user_data(2);
    // SAFETY: the path lives until the nop's completion, which comes after
    // the open's end.
    unsafe {
        let mut sq = ring.submission();
        sq.push(&open).expect("room");
        sq.push(&nop).expect("room");
    }
    ring.submit_and_wait(1).expect("io_uring_enter");
    let posted: Vec<(u64, i32)> = ring
        .completion()
        .map(|c| (c.user_data(), c.result()))
        .collect();
    assert_eq!(posted, [(2, 0)], "the open succeeded and posted nothing");
    // It opened the file the link leads to: that fd is this process's now.
    let fd = std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .filter_map(|e| e.ok())
        .find(|e| std::fs::read_link(e.path()).is_ok_and(|p| p == led_to))
        .and_then(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .expect("the fd the open made");
    // SAFETY: the fd the ring opened for this test.
    unsafe { libc::close(fd) };

    // A file moved out of the prefix, and one removed through a directory
    // symlink under it.
    let (inside, moved) = (dir.join("inside"), other_dir.join("moved"));
    std::fs::write(&inside, b"").expect("create");
    let (from, to) = (c_path(&inside), c_path(&moved));
    assert_eq!(
        rename(&mut ring, &from, &to),
        0,
        "renameat through the ring"
    );
    assert!(moved.exists());
    let victim = other_dir.join("victim");
    std::fs::write(&victim, b"").expect("create");
    std::os::unix::fs::symlink(&other_dir, dir.join("out")).expect("symlink");
    let through = dir.join("out").join("victim");
    let through_c = c_path(&through);
    let r = run(
        &mut ring,
        opcode::UnlinkAt::new(types::Fd(libc::AT_FDCWD), through_c.as_ptr()).build(),
    );
    assert_eq!(r, 0, "unlinkat through the ring");
    assert!(!victim.exists(), "removed outside the prefix");

    let tid = gettid();
    for (operation, path) in [
        ("openat", &link_file),
        ("renameat", &inside),
        ("unlinkat", &through),
    ] {
        let ev = sensor.wait_for(operation, |v| {
            io_uring_event(v, tid) && at(v, "sensor.io_uring.operation") == operation
        });
        assert_eq!(at(&ev, "file.path").as_str(), path.to_str(), "{ev}");
        assert_eq!(
            at(&ev, "sensor.io_uring.path_argument_ignored"),
            true,
            "{ev}"
        );
        if operation == "openat" {
            assert_eq!(
                at(&ev, "sensor.io_uring.open_flags"),
                &json!(["O_WRONLY"]),
                "{ev}"
            );
        }
        if operation == "renameat" {
            assert_eq!(
                at(&ev, "sensor.io_uring.target").as_str(),
                moved.to_str(),
                "{ev}"
            );
        }
    }
}

#[test]
fn xattr_changes_through_a_ring_show_what_the_kernel_sets_and_a_path_prefix_hides_no_capability() {
    let dir = scratch_dir("sensor-io-uring-xattr");
    let sensor = sensor_ignoring(&dir);
    let (capable, noted) = (dir.join("capable"), dir.join("noted"));
    for f in [&capable, &noted] {
        std::fs::write(f, b"#!/bin/sh\n").expect("create");
    }
    let other = scratch_dir("sensor-io-uring-xattr-fd");
    let by_fd = std::fs::File::create(other.join("by fd")).expect("create");
    let mut ring = IoUring::new(4).expect("io_uring_setup");

    // Under the ignored prefix: a file capability, reported whatever the
    // path; a user.* attribute, dropped by it.
    const CAP_SETUID: u64 = 7;
    let (path, capability) = (c_path(&capable), file_caps_v2(1 << CAP_SETUID));
    let name = CString::new("security.capability").expect("no NUL");
    let r = run(
        &mut ring,
        opcode::SetXattr::new(
            name.as_ptr(),
            capability.as_ptr().cast(),
            path.as_ptr(),
            capability.len() as u32,
        )
        .build(),
    );
    assert_eq!(r, 0, "setxattr security.capability through the ring");
    let (path, user) = (c_path(&noted), CString::new("user.note").expect("no NUL"));
    let r = run(
        &mut ring,
        opcode::SetXattr::new(user.as_ptr(), b"hello".as_ptr().cast(), path.as_ptr(), 5).build(),
    );
    assert_eq!(r, 0, "setxattr user.note through the ring");
    // Outside it, by fd: a value longer than the sensor copies.
    let long = [b'x'; 100];
    let r = run(
        &mut ring,
        opcode::FSetXattr::new(
            types::Fd(std::os::fd::AsRawFd::as_raw_fd(&by_fd)),
            user.as_ptr(),
            long.as_ptr().cast(),
            long.len() as u32,
        )
        .build(),
    );
    assert_eq!(r, 0, "fsetxattr through the ring");

    let tid = gettid();
    let cap = sensor.wait_for("the capability set through the ring", |v| {
        io_uring_event(v, tid) && at(v, "sensor.io_uring.operation") == "setxattr"
    });
    assert_eq!(at(&cap, "file.path").as_str(), capable.to_str(), "{cap}");
    let xattr = at(&cap, "sensor.io_uring.xattr");
    assert_eq!(xattr["name"], "security.capability", "{cap}");
    assert_eq!(xattr["size"], 20, "{cap}");
    assert_eq!(
        xattr["capabilities"],
        json!({"revision": 2, "permitted": ["CAP_SETUID"], "inheritable": [], "effective": true}),
        "{cap}"
    );
    let fd_event = sensor.wait_for("the fsetxattr", |v| {
        io_uring_event(v, tid) && at(v, "sensor.io_uring.operation") == "fsetxattr"
    });
    // By fd: the file the fd names, as the kernel walked it.
    assert_eq!(
        at(&fd_event, "file.path").as_str(),
        other.join("by fd").to_str(),
        "{fd_event}"
    );
    let fd = std::os::fd::AsRawFd::as_raw_fd(&by_fd);
    assert_eq!(at(&fd_event, "sensor.io_uring.fd"), fd, "{fd_event}");
    let xattr = at(&fd_event, "sensor.io_uring.xattr");
    assert_eq!(xattr["name"], "user.note", "{fd_event}");
    assert_eq!(xattr["size"], 100, "{fd_event}");
    assert_eq!(
        xattr["value_hex"],
        "78".repeat(64),
        "the first 64 bytes: {fd_event}"
    );
    assert!(xattr["capabilities"].is_null(), "{fd_event}");
    assert!(
        at(&fd_event, "sensor.truncated")
            .as_array()
            .is_some_and(|t| t.contains(&json!("sensor.io_uring.xattr.value_hex"))),
        "{fd_event}"
    );
    assert!(
        at(&fd_event, "destination").is_null(),
        "a value is no address: {fd_event}"
    );
    // The user.* change under the prefix was submitted before the
    // fsetxattr: it would be here by now.
    let setxattrs: Vec<Value> = sensor
        .events()
        .into_iter()
        .filter(|v| io_uring_event(v, tid) && at(v, "sensor.io_uring.operation") == "setxattr")
        .collect();
    assert_eq!(setxattrs.len(), 1, "only the capability: {setxattrs:?}");
    // The completion repeats what was set.
    let done = completions_of(&sensor, &[cap]);
    assert_eq!(at(&done[0], "sensor.io_uring.result"), 0, "{}", done[0]);
    assert_eq!(
        at(&done[0], "sensor.io_uring.xattr.name"),
        "security.capability"
    );
}

#[test]
fn a_truncate_through_a_ring_names_its_file_and_length() {
    let sensor = Sensor::start("");
    let dir = scratch_dir("sensor-io-uring-truncate");
    let (log, registered) = (dir.join("auth.log"), dir.join("registered"));
    for f in [&log, &registered] {
        std::fs::write(f, b"evidence\n").expect("create");
    }
    let log_file = std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .expect("open");
    let registered_file = std::fs::OpenOptions::new()
        .write(true)
        .open(&registered)
        .expect("open");
    let mut ring = IoUring::new(4).expect("io_uring_setup");
    let fd = std::os::fd::AsRawFd::as_raw_fd(&log_file);
    let r = run(&mut ring, opcode::Ftruncate::new(types::Fd(fd), 0).build());
    assert_eq!(r, 0, "ftruncate through the ring");
    assert_eq!(std::fs::metadata(&log).expect("stat").len(), 0);
    // A registered file: the ring's own table, named by its index.
    ring.submitter()
        .register_files(&[std::os::fd::AsRawFd::as_raw_fd(&registered_file)])
        .expect("register the file");
    let r = run(
        &mut ring,
        opcode::Ftruncate::new(types::Fixed(0), 3).build(),
    );
    assert_eq!(r, 0, "ftruncate of a registered file");
    assert_eq!(std::fs::metadata(&registered).expect("stat").len(), 3);

    let tid = gettid();
    let truncates = sensor.wait_for_count("the two truncates", 2, |v| {
        io_uring_event(v, tid) && at(v, "sensor.io_uring.operation") == "ftruncate"
    });
    let by_fd = &truncates[0];
    assert_eq!(at(by_fd, "file.path").as_str(), log.to_str(), "{by_fd}");
    assert_eq!(at(by_fd, "sensor.io_uring.fd"), fd, "{by_fd}");
    assert_eq!(at(by_fd, "sensor.io_uring.length"), 0, "{by_fd}");
    assert!(at(by_fd, "sensor.io_uring.fixed_file").is_null(), "{by_fd}");
    let fixed = &truncates[1];
    assert_eq!(at(fixed, "sensor.io_uring.fixed_file"), 0, "{fixed}");
    assert_eq!(at(fixed, "sensor.io_uring.length"), 3, "{fixed}");
    assert!(
        at(fixed, "file.path").is_null() && at(fixed, "sensor.io_uring.fd").is_null(),
        "a registered file's index is no fd of the process: {fixed}"
    );
    let done = completions_of(&sensor, &truncates[..1]);
    assert_eq!(at(&done[0], "file.path").as_str(), log.to_str());
    assert_eq!(at(&done[0], "sensor.io_uring.result"), 0, "{}", done[0]);
}
