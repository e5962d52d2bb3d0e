//! Process lifecycle events from the real kernel: exec, fork, exit.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

use sensor_tests::{Sensor, action, args_bytes, at, field_bytes, pid_of, release};

/// Runs `exec "$0" "$@"` in /bin/sh so that the shell itself execs the
/// target with exactly these arguments.
fn sh_exec(target: &str, args: &[Vec<u8>], cwd: &std::path::Path) -> std::process::Child {
    Command::new("/bin/sh")
        .arg("-c")
        .arg("exec \"$0\" \"$@\"")
        .arg(target)
        .args(args.iter().map(|a| OsString::from_vec(a.clone())))
        .current_dir(cwd)
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn sh")
}

/// Spaces in its name: the cwd must come out whole.
fn temp_cwd(name: &str) -> sensor_tests::Scratch {
    sensor_tests::scratch_dir(&format!("sensor it {name}"))
}

#[test]
fn exec_reports_exact_argv_exe_cwd_ids_and_parent() {
    let sensor = Sensor::start("");
    let cwd = temp_cwd("exec");
    let big = vec![b'x'; 9 * 1024];
    let args: Vec<Vec<u8>> = vec![
        b"two words".to_vec(),
        b"quote\" and ' and \\ backslash".to_vec(),
        b"".to_vec(),
        b"\xff\xfenot utf-8\xc3".to_vec(),
        "ünïcode ✓".as_bytes().to_vec(),
        big,
    ];
    let mut child = sh_exec("/bin/echo", &args, &cwd);
    let pid = child.id() as u64;
    child.wait().expect("wait");

    let exec = sensor.wait_for("exec of /bin/echo", |v| {
        action(v) == "exec" && pid_of(v) == pid && at(v, "process.name") == "echo"
    });
    let mut expected = vec![b"/bin/echo".to_vec()];
    expected.extend(args.iter().cloned());
    assert_eq!(args_bytes(&exec), expected, "argv must be byte-exact");
    assert_eq!(
        at(&exec, "process.args_count").as_u64(),
        Some(expected.len() as u64)
    );
    assert!(
        at(&exec, "sensor.truncated").is_null(),
        "a 9 KiB argv is not truncated: {exec}"
    );
    assert!(
        at(&exec, "sensor.escaped")
            .as_array()
            .is_some_and(|a| a.iter().any(|f| f == "process.args[4]")),
        "the invalid UTF-8 argument is listed as escaped: {exec}"
    );
    // /bin is a symlink to /usr/bin on Debian: the kernel resolves it.
    let exe = at(&exec, "process.executable")
        .as_str()
        .expect("executable");
    assert_eq!(
        std::fs::canonicalize(exe).expect("exe exists"),
        std::fs::canonicalize("/bin/echo").expect("echo exists")
    );
    assert!(exe.starts_with('/'), "absolute: {exe}");
    let wd = field_bytes(
        &exec,
        "process.working_directory",
        at(&exec, "process.working_directory"),
    );
    assert_eq!(wd, cwd.as_os_str().as_bytes(), "cwd with spaces, exact");
    assert_eq!(at(&exec, "process.user.id"), "0");
    assert_eq!(at(&exec, "process.user.name"), "root");
    assert_eq!(at(&exec, "process.real_user.id"), "0");
    assert_eq!(at(&exec, "process.group.id"), "0");
    assert_eq!(
        at(&exec, "process.parent.pid").as_u64(),
        Some(std::process::id() as u64)
    );
    let eid = at(&exec, "process.entity_id").as_str().expect("entity id");
    assert_eq!(eid.len(), 32, "{eid}");
    let parent_eid = at(&exec, "process.parent.entity_id")
        .as_str()
        .expect("parent entity id");
    assert_ne!(parent_eid, eid);
    assert!(
        at(&exec, "process.start")
            .as_str()
            .is_some_and(|s| s.ends_with('Z'))
    );
    assert_eq!(at(&exec, "event.kind"), "event");
    assert_eq!(at(&exec, "event.category")[0], "process");
    assert_eq!(at(&exec, "event.type")[0], "start");
    assert_eq!(at(&exec, "event.module"), "ebpf");
    assert!(at(&exec, "event.sequence").as_u64().is_some_and(|s| s >= 1));
    assert!(
        at(&exec, "host.boot_id")
            .as_str()
            .is_some_and(|s| s.len() == 36)
    );
    // The OS as os-release names it (this machine's own file, read here too).
    let release = std::fs::read_to_string("/etc/os-release").expect("os-release");
    let id = release
        .lines()
        .find_map(|l| l.strip_prefix("ID="))
        .expect("ID=")
        .trim_matches('"');
    assert_eq!(at(&exec, "host.os.platform"), id);
    assert!(
        at(&exec, "host.os.full")
            .as_str()
            .is_some_and(|s| !s.is_empty()),
        "{}",
        at(&exec, "host")
    );
    assert!(
        at(&exec, "agent.id")
            .as_str()
            .is_some_and(|s| s.len() == 36)
    );

    // The shell's own exec (same pid, same process) came first and keeps the entity id.
    let sh = sensor.wait_for("exec of /bin/sh", |v| {
        action(v) == "exec" && pid_of(v) == pid && at(v, "process.name") == "sh"
    });
    assert_eq!(
        at(&sh, "process.entity_id"),
        eid,
        "exec keeps the process's entity id"
    );
    assert!(
        at(&sh, "event.sequence").as_u64() < at(&exec, "event.sequence").as_u64(),
        "sequence follows kernel order"
    );
    // And its fork from this test process was seen with the same identity.
    let fork = sensor.wait_for("fork of the shell", |v| {
        action(v) == "fork" && pid_of(v) == pid
    });
    assert_eq!(at(&fork, "process.entity_id"), eid);
    assert_eq!(
        at(&fork, "process.parent.pid").as_u64(),
        Some(std::process::id() as u64)
    );
    sensor.stop();
}

#[test]
fn argv_longer_than_the_cap_is_flagged_truncated_with_its_real_length() {
    let sensor = Sensor::start("");
    let cwd = temp_cwd("trunc");
    let args: Vec<Vec<u8>> = vec![b"first".to_vec(), vec![b'y'; 40 * 1024], b"last".to_vec()];
    let total = "/bin/true".len() + 1 + args.iter().map(|a| a.len() + 1).sum::<usize>();
    let mut child = sh_exec("/bin/true", &args, &cwd);
    let pid = child.id() as u64;
    child.wait().expect("wait");
    let exec = sensor.wait_for("exec of /bin/true", |v| {
        action(v) == "exec" && pid_of(v) == pid && at(v, "process.name") == "true"
    });
    let truncated = at(&exec, "sensor.truncated")
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        truncated.iter().any(|f| f == "process.args"),
        "truncation flagged: {truncated:?}"
    );
    assert_eq!(at(&exec, "sensor.args_bytes").as_u64(), Some(total as u64));
    let got = args_bytes(&exec);
    assert_eq!(got[0], b"/bin/true");
    assert_eq!(got[1], b"first");
    assert!(
        got[2].iter().all(|&b| b == b'y') && got[2].len() < 40 * 1024,
        "partial, never invented"
    );
    assert_eq!(
        got.iter().map(|a| a.len() + 1).sum::<usize>() - 1,
        32 * 1024,
        "exactly the cap was kept"
    );
    sensor.stop();
}

#[test]
fn exit_reports_the_exit_code() {
    let sensor = Sensor::start("");
    let status = Command::new("/bin/sh")
        .args(["-c", "exit 7"])
        .status()
        .expect("sh");
    assert_eq!(status.code(), Some(7));
    // The pid is only known after spawn; match on the shell's argv.
    let exit = sensor.wait_for("exit of `sh -c 'exit 7'`", |v| {
        action(v) == "exit"
            && at(v, "process.args")
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == "exit 7"))
    });
    assert_eq!(at(&exit, "process.exit_code").as_i64(), Some(7));
    assert!(at(&exit, "sensor.signal").is_null());
    assert_eq!(at(&exit, "event.type")[0], "end");
    sensor.stop();
}

#[test]
fn a_killed_process_reports_the_signal() {
    let sensor = Sensor::start("");
    let mut child = Command::new("/bin/sleep")
        .arg("300")
        .spawn()
        .expect("sleep");
    let pid = child.id() as u64;
    sensor.wait_for("exec of sleep", |v| action(v) == "exec" && pid_of(v) == pid);
    child.kill().expect("kill");
    let status = child.wait().expect("wait");
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    let exit = sensor.wait_for("exit of the killed sleep", |v| {
        action(v) == "exit" && pid_of(v) == pid
    });
    assert_eq!(at(&exit, "sensor.signal.number").as_u64(), Some(9));
    assert_eq!(at(&exit, "sensor.signal.name"), "SIGKILL");
    assert_eq!(at(&exit, "process.exit_code").as_i64(), Some(128 + 9));
    assert!(
        at(&exit, "process.executable")
            .as_str()
            .is_some_and(|e| e.ends_with("/sleep")),
        "the exit names the process that died: {exit}"
    );
    sensor.stop();
}

#[test]
fn a_process_started_before_the_sensor_has_its_parent_chain() {
    // test → sh (started before the sensor, waits on stdin) → true
    let mut sh = Command::new("/bin/sh")
        .args(["-c", "read line; /bin/true started-before-marker; exit 0"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("sh");
    let sh_pid = sh.id() as u64;
    let sensor = Sensor::start("");
    release(&mut sh, "go\n");
    sh.wait().expect("wait sh");
    let exec = sensor.wait_for("exec of true by the pre-existing shell", |v| {
        action(v) == "exec" && at(v, "process.args")[1] == "started-before-marker"
    });
    assert_eq!(at(&exec, "process.parent.pid").as_u64(), Some(sh_pid));
    // The parent's details come from /proc, read when the sensor started.
    assert_eq!(at(&exec, "process.parent.args")[0], "/bin/sh");
    assert_eq!(
        at(&exec, "process.parent.args")[2],
        "read line; /bin/true started-before-marker; exit 0"
    );
    assert!(
        at(&exec, "process.parent.executable")
            .as_str()
            .is_some_and(|e| e.starts_with('/'))
    );
    let ancestors = at(&exec, "sensor.ancestors")
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        ancestors.first().and_then(|a| a["pid"].as_u64()),
        Some(std::process::id() as u64),
        "the test process is the grandparent: {ancestors:?}"
    );
    assert!(
        ancestors.len() >= 2,
        "the chain goes on above the test: {ancestors:?}"
    );
    // The parent's entity id is the same whether it came from /proc or the kernel.
    let fork = sensor.wait_for("fork in the pre-existing shell", |v| {
        action(v) == "fork" && at(v, "process.parent.pid").as_u64() == Some(sh_pid)
    });
    assert_eq!(
        at(&fork, "process.parent.entity_id"),
        at(&exec, "process.parent.entity_id")
    );
    sensor.stop();
}

#[test]
fn kernel_drops_are_reported_as_loss_events() {
    // One page of ring buffer and a sensor that is not reading: the kernel
    // must drop, count, and the sensor must report the count.
    let sensor = Sensor::start("[ebpf]\nring_buffer_bytes = 4096\n");
    // SAFETY: signals to our own child.
    unsafe { libc::kill(sensor.pid() as i32, libc::SIGSTOP) };
    const N: usize = 300;
    for _ in 0..N {
        let s = Command::new("/bin/true")
            .arg("loss-test-marker")
            .status()
            .expect("true");
        assert!(s.success());
    }
    // SAFETY: as above.
    unsafe { libc::kill(sensor.pid() as i32, libc::SIGCONT) };
    let lost = sensor.wait_for("a loss event for exec", |v| {
        action(v) == "lost" && at(v, "sensor.lost.kind") == "exec"
    });
    assert_eq!(at(&lost, "sensor.lost.source"), "ring_buffer");
    assert_eq!(at(&lost, "event.kind"), "pipeline_error");
    let events = sensor.stop();
    let seen = events
        .iter()
        .filter(|v| action(v) == "exec" && at(v, "process.args")[1] == "loss-test-marker")
        .count();
    let lost: u64 = events
        .iter()
        .filter(|v| action(v) == "lost" && at(v, "sensor.lost.kind") == "exec")
        .map(|v| at(v, "sensor.lost.count").as_u64().unwrap_or(0))
        .sum();
    assert!(
        seen < N,
        "a one-page ring buffer cannot hold {N} execs (saw {seen})"
    );
    assert!(
        seen as u64 + lost >= N as u64,
        "every exec is either delivered or counted as lost: {seen} seen + {lost} lost < {N}"
    );
}

/// Spawns `program args` so that it gets pid `pid`, by setting the kernel's
/// last-allocated pid just below it (CONFIG_CHECKPOINT_RESTORE's
/// ns_last_pid, root only). Other processes may take the pid first: a few
/// tries, then None.
fn spawn_with_pid(pid: u32, program: &str, args: &[&str]) -> Option<std::process::Child> {
    const LAST_PID: &str = "/proc/sys/kernel/ns_last_pid";
    let read_last = || {
        std::fs::read_to_string(LAST_PID)
            .ok()?
            .trim()
            .parse::<u32>()
            .ok()
    };
    let latest = read_last()?;
    let mut found = None;
    for _ in 0..20 {
        std::fs::write(LAST_PID, (pid - 1).to_string()).ok()?;
        let mut child = Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn");
        if child.id() == pid {
            found = Some(child);
            break;
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    // Put the allocator back past every pid handed out meanwhile, so that
    // tests running beside this one never see a recent pid come back.
    let now = read_last().unwrap_or(latest).max(latest);
    let _ = std::fs::write(LAST_PID, now.to_string());
    found
}

#[test]
fn a_reused_pid_is_a_new_process() {
    let sensor = Sensor::start("");
    let mut first = Command::new("/bin/sleep").arg("30").spawn().expect("sleep");
    let pid = first.id();
    let old = sensor.wait_for("exec of the first process", |v| {
        action(v) == "exec" && pid_of(v) == pid as u64 && at(v, "process.name") == "sleep"
    });
    first.kill().expect("kill");
    first.wait().expect("wait");
    sensor.wait_for("exit of the first process", |v| {
        action(v) == "exit" && pid_of(v) == pid as u64
    });

    let Some(mut second) = spawn_with_pid(pid, "/bin/true", &["pid-reuse-marker"]) else {
        panic!(
            "could not get pid {pid} back through ns_last_pid: the machine is too busy or lacks it"
        )
    };
    second.wait().expect("wait");
    let new = sensor.wait_for("exec of the process that reused the pid", |v| {
        action(v) == "exec"
            && pid_of(v) == pid as u64
            && at(v, "process.args")[1] == "pid-reuse-marker"
    });
    assert_ne!(
        at(&new, "process.entity_id"),
        at(&old, "process.entity_id"),
        "a reused pid is a new entity"
    );
    assert!(
        at(&new, "process.executable")
            .as_str()
            .is_some_and(|e| e.ends_with("/true")),
        "{new}"
    );
    // Its exit carries its own identity, not the sleep's that had the pid.
    let exit = sensor.wait_for("exit of the second process", |v| {
        action(v) == "exit"
            && pid_of(v) == pid as u64
            && at(v, "process.entity_id") == at(&new, "process.entity_id")
    });
    assert_eq!(at(&exit, "process.args")[1], "pid-reuse-marker", "{exit}");
    sensor.stop();
}
