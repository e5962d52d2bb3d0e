//! File attribute and credential changes from the real kernel, through the
//! syscall tracepoints this machine allows (fentry/LSM are refused here).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use sensor_tests::{Sensor, action, at, pid_of};
use serde_json::Value;

/// A directory for this test's files, world-searchable so that a test
/// running as `nobody` can reach them.
fn temp_dir(name: &str) -> sensor_tests::Scratch {
    let d = sensor_tests::scratch_dir(&format!("sensor-fc-{name}"));
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).expect("chmod dir");
    d
}

fn file_in(dir: &Path, name: &str, mode: u32) -> PathBuf {
    let f = dir.join(name);
    std::fs::write(&f, b"#!/bin/sh\n").expect("write");
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)).expect("chmod");
    f
}

/// Runs a command to completion; returns its pid.
fn run(cmd: &mut Command) -> (u64, bool) {
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let pid = child.id() as u64;
    let ok = child.wait().expect("wait").success();
    (pid, ok)
}

/// `chmod MODE PATH`, which must succeed; its pid.
fn chmod(mode: &str, path: &Path) -> u64 {
    let (pid, ok) = run(Command::new("chmod").arg(mode).arg(path));
    assert!(ok, "chmod {mode} {}", path.display());
    pid
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn is_file_event(v: &Value, act: &str, pid: u64) -> bool {
    action(v) == act && pid_of(v) == pid && at(v, "event.category")[0] == "file"
}

#[test]
fn chmod_u_plus_s_names_the_setuid_bit_and_modes() {
    let sensor = Sensor::start("");
    let dir = temp_dir("suid");
    let f = file_in(&dir, "shell copy", 0o755);
    // Relative path from the file's directory: the event joins it to the cwd.
    let (pid, ok) = run(Command::new("chmod")
        .arg("u+s")
        .arg("shell copy")
        .current_dir(&dir));
    assert!(ok, "chmod u+s");
    let ev = sensor.wait_for("chmod u+s", |v| is_file_event(v, "chmod", pid));
    assert_eq!(at(&ev, "file.path").as_str(), f.to_str(), "{ev}");
    assert_eq!(at(&ev, "sensor.file_change.path_argument"), "shell copy");
    assert_eq!(at(&ev, "file.mode"), "4755");
    assert_eq!(at(&ev, "sensor.file_change.requested.mode"), "4755");
    assert_eq!(
        strings(at(&ev, "sensor.file_change.special_bits")),
        vec!["setuid"]
    );
    assert_eq!(at(&ev, "event.outcome"), "success");
    assert_eq!(at(&ev, "event.type")[0], "change");
    assert_eq!(at(&ev, "sensor.syscall"), "fchmodat");
    assert_eq!(at(&ev, "process.name"), "chmod");
    assert_eq!(at(&ev, "process.user.name"), "root");
    // A path-based call: the file's attributes before the change come from
    // the fentry hook where the kernel allows it; where it does not (this
    // build machine), the event says they are unavailable rather than guess.
    let no_fentry = sensor
        .stderr()
        .iter()
        .any(|l| l.contains("without the file's attributes from before"));
    if no_fentry {
        assert!(
            strings(at(&ev, "sensor.file_change.unavailable")).contains(&"before"),
            "{ev}"
        );
    } else {
        assert_eq!(at(&ev, "sensor.file_change.before.mode"), "0755", "{ev}");
        assert_eq!(
            strings(at(&ev, "sensor.file_change.special_bits_added")),
            vec!["setuid"],
            "{ev}"
        );
    }

    // fd-based: the inode is known at entry, so the old mode is reported
    // and the setgid bit is named as added; and its names, a second one
    // made here.
    std::fs::hard_link(&f, f.with_file_name("second name")).expect("link");
    let (pid, ok) = run(Command::new("perl")
        .arg("-e")
        .arg("open(my $f, '<', $ARGV[0]) or die $!; chmod(02755, $f) or die $!")
        .arg(&f));
    assert!(ok, "perl fchmod");
    let ev = sensor.wait_for("fchmod", |v| is_file_event(v, "chmod", pid));
    assert_eq!(at(&ev, "sensor.syscall"), "fchmod");
    assert_eq!(
        at(&ev, "file.path").as_str(),
        f.to_str(),
        "the fd's path: {ev}"
    );
    assert_eq!(at(&ev, "sensor.file_change.before.mode"), "4755");
    assert_eq!(
        strings(at(&ev, "sensor.file_change.before.special_bits")),
        vec!["setuid"]
    );
    assert_eq!(at(&ev, "file.mode"), "2755");
    assert_eq!(
        strings(at(&ev, "sensor.file_change.special_bits_added")),
        vec!["setgid"]
    );
    assert_eq!(
        strings(at(&ev, "sensor.file_change.special_bits_removed")),
        vec!["setuid"]
    );
    assert_eq!(at(&ev, "sensor.file_change.before.uid.name"), "root");
    assert_eq!(at(&ev, "sensor.file_change.before.links"), 2, "{ev}");
    let ino = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&f).expect("stat"));
    assert_eq!(
        at(&ev, "file.inode").as_str(),
        Some(ino.to_string().as_str())
    );
}

/// The task's name and terminal are read from the kernel in whole words
/// where plain loads are allowed (two of `comm`'s, four of the tty's
/// name): a name of the full 15 bytes and a terminal name come whole.
#[test]
fn a_full_length_name_and_the_terminal_are_read_whole() {
    let sensor = Sensor::start("");
    let dir = temp_dir("comm");
    let f = file_in(&dir, "target", 0o644);
    // The kernel keeps the first 15 bytes of the executable's name.
    let exe = dir.join("chmod-with-a-long-name");
    sensor_tests::copy_executable("/usr/bin/chmod", &exe);
    // script(1) runs the command on a new pseudo-terminal, its
    // controlling terminal.
    let command = format!("{} 600 {}", exe.display(), f.display());
    let out = Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .output()
        .expect("script");
    assert!(out.status.success(), "script: {out:?}");
    let ev = sensor.wait_for("the chmod on a terminal", |v| {
        action(v) == "chmod" && at(v, "process.executable").as_str() == exe.to_str()
    });
    assert_eq!(at(&ev, "file.path").as_str(), f.to_str(), "{ev}");
    assert_eq!(at(&ev, "process.name"), "chmod-with-a-lo", "{ev}");
    let tty = at(&ev, "sensor.tty").as_str().unwrap_or_default();
    let n = tty.strip_prefix("/dev/pts/").unwrap_or_default();
    assert!(
        !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()),
        "a pseudo-terminal: {ev}"
    );
}

/// A file at an absolute path of exactly `len` bytes under `base`.
fn file_at_length(base: &Path, len: usize) -> PathBuf {
    let mut path = base.to_path_buf();
    let mut at = base.as_os_str().len();
    assert!(at + 2 <= len, "{} is too long for {len}", base.display());
    // Components of at most 200 bytes ("/" and the name), the last one the file.
    while len - at > 201 {
        path.push("d".repeat(200));
        at += 201;
    }
    std::fs::create_dir_all(&path).expect("mkdir");
    path.push("f".repeat(len - at - 1));
    std::fs::write(&path, b"").expect("write");
    assert_eq!(path.as_os_str().len(), len);
    path
}

/// The kernel keeps a call's path between its entry and exit in one of two
/// records by length (up to 255 bytes, or longer); both give the path whole.
#[test]
fn path_arguments_of_every_length_are_kept_whole() {
    let sensor = Sensor::start("");
    let dir = temp_dir("lengths");
    for len in [255, 256, 1000, 4000] {
        let f = file_at_length(&dir, len);
        let (pid, ok) = run(Command::new("chmod").arg("600").arg(&f));
        assert!(ok, "chmod of a {len}-byte path");
        let ev = sensor.wait_for(&format!("chmod of a {len}-byte path"), |v| {
            is_file_event(v, "chmod", pid)
        });
        // An absolute argument is the path itself (no `path_argument`).
        assert_eq!(at(&ev, "file.path").as_str(), f.to_str(), "{len}: {ev}");
        assert_eq!(at(&ev, "file.mode"), "0600", "{len}: {ev}");
        assert_eq!(at(&ev, "event.outcome"), "success", "{len}: {ev}");
    }
}

#[test]
fn chmod_refused_for_an_unprivileged_user_is_a_failure_with_errno() {
    let sensor = Sensor::start("");
    let dir = temp_dir("eperm");
    let f = file_in(&dir, "root-owned", 0o644);
    let (pid, ok) = run(Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "chmod",
            "4777",
        ])
        .arg(&f));
    assert!(!ok, "nobody cannot chmod a root-owned file");
    let ev = sensor.wait_for("refused chmod", |v| is_file_event(v, "chmod", pid));
    assert_eq!(at(&ev, "event.outcome"), "failure");
    assert_eq!(at(&ev, "error.code"), "EPERM");
    assert_eq!(at(&ev, "process.user.id"), "65534");
    assert_eq!(at(&ev, "sensor.file_change.requested.mode"), "4777");
    assert!(
        at(&ev, "file.mode").is_null(),
        "a refused chmod changed nothing: {ev}"
    );
    assert_eq!(
        std::fs::metadata(&f).expect("stat").permissions().mode() & 0o7777,
        0o644
    );
}

#[test]
fn chown_reports_the_new_owner_by_name() {
    let sensor = Sensor::start("");
    let dir = temp_dir("chown");
    let f = file_in(&dir, "owned", 0o644);
    let (pid, ok) = run(Command::new("chown").arg("nobody:nogroup").arg(&f));
    assert!(ok, "chown");
    let ev = sensor.wait_for("chown", |v| is_file_event(v, "chown", pid));
    assert_eq!(at(&ev, "file.path").as_str(), f.to_str());
    assert_eq!(at(&ev, "file.uid"), "65534");
    assert_eq!(at(&ev, "file.owner"), "nobody");
    assert_eq!(at(&ev, "file.group"), "nogroup");
    assert_eq!(at(&ev, "sensor.file_change.requested.uid.name"), "nobody");
    assert_eq!(at(&ev, "event.outcome"), "success");
    // The failing variant: nobody cannot give a file away.
    let (pid, ok) = run(Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "chown",
            "0",
        ])
        .arg(&f));
    assert!(!ok, "nobody cannot chown to root");
    let ev = sensor.wait_for("refused chown", |v| is_file_event(v, "chown", pid));
    assert_eq!(at(&ev, "event.outcome"), "failure");
    assert_eq!(at(&ev, "error.code"), "EPERM");
}

#[test]
fn setcap_shows_the_capability_set_and_its_removal() {
    let sensor = Sensor::start("");
    let dir = temp_dir("setcap");
    let f = file_in(&dir, "pinger", 0o755);
    let (pid, ok) = run(Command::new("setcap")
        .arg("cap_net_raw,cap_net_admin+ep")
        .arg(&f));
    assert!(ok, "setcap");
    let ev = sensor.wait_for("setcap", |v| is_file_event(v, "set_xattr", pid));
    assert_eq!(at(&ev, "file.path").as_str(), f.to_str());
    assert_eq!(
        at(&ev, "sensor.file_change.xattr.name"),
        "security.capability"
    );
    let caps = at(&ev, "sensor.file_change.xattr.capabilities");
    assert_eq!(
        strings(&caps["permitted"]),
        vec!["CAP_NET_ADMIN", "CAP_NET_RAW"],
        "{ev}"
    );
    assert_eq!(caps["effective"], true);
    assert_eq!(at(&ev, "event.outcome"), "success");

    let (pid, ok) = run(Command::new("setcap").arg("-r").arg(&f));
    assert!(ok, "setcap -r");
    let ev = sensor.wait_for("setcap -r", |v| is_file_event(v, "remove_xattr", pid));
    assert_eq!(
        at(&ev, "sensor.file_change.xattr.name"),
        "security.capability"
    );
    assert_eq!(at(&ev, "event.outcome"), "success");

    // Unprivileged: refused, and still reported with its outcome. setfattr,
    // because setcap gives up before the syscall when it lacks CAP_SETFCAP.
    // The value is a revision-2 vfs_cap_data: effective, CAP_SYS_ADMIN.
    let (pid, ok) = run(Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "setfattr",
            "-n",
            "security.capability",
        ])
        .args(["-v", "0x0100000200002000000000000000000000000000"])
        .arg(&f));
    assert!(!ok, "nobody cannot set file capabilities");
    let ev = sensor.wait_for("refused setcap", |v| is_file_event(v, "set_xattr", pid));
    assert_eq!(at(&ev, "event.outcome"), "failure");
    assert_eq!(
        strings(&at(&ev, "sensor.file_change.xattr.capabilities")["permitted"]),
        vec!["CAP_SYS_ADMIN"]
    );
}

/// A setcap whose value the process rewrites between the sensor's read at
/// the call's entry and the kernel's copy (no race: see the actor's
/// `setcap-rewritten`). Where fentry loads, the event names what the
/// kernel set and says it was rewritten; where it is refused (this build
/// machine), the change is still reported, and the name the entry could
/// not read is listed as unavailable rather than shown empty as if known.
#[test]
fn a_setcap_rewritten_under_the_call_is_still_reported() {
    let sensor = Sensor::start("");
    let fentry = sensor_tests::fentry_loads();
    let dir = temp_dir("setcap-rewritten");
    let f = file_in(&dir, "su", 0o755);
    let (pid, ok) = run(Command::new(env!("CARGO_BIN_EXE_actor"))
        .arg("setcap-rewritten")
        .arg(&f));
    assert!(ok, "the actor");
    let ev = sensor.wait_for("setcap", |v| is_file_event(v, "set_xattr", pid));
    assert_eq!(at(&ev, "file.path").as_str(), f.to_str(), "{ev}");
    assert_eq!(at(&ev, "event.outcome"), "success", "{ev}");
    let xattr = at(&ev, "sensor.file_change.xattr");
    if fentry {
        assert_eq!(xattr["name"], "security.capability", "{ev}");
        assert_eq!(
            strings(&xattr["capabilities"]["permitted"]),
            vec!["CAP_SETUID"],
            "{ev}"
        );
        assert_eq!(xattr["rewritten"], true, "{ev}");
    } else {
        assert!(
            strings(at(&ev, "sensor.file_change.unavailable")).contains(&"xattr.name"),
            "{ev}"
        );
        // What the entry read: CAP_NET_BIND_SERVICE, effective (v2).
        assert_eq!(
            xattr["value_hex"], "0100000200040000000000000000000000000000",
            "{ev}"
        );
        assert!(xattr["rewritten"].is_null(), "{ev}");
    }
}

/// A removexattr whose name sits in a page the sensor's read at the
/// call's entry cannot fault in: where fentry loads, the kernel's copy
/// names it; here, the name is reported as unavailable, not dropped as if
/// it were an unprivileged one.
#[test]
fn a_removexattr_whose_name_cannot_be_read_at_entry_is_still_reported() {
    let sensor = Sensor::start("");
    let fentry = sensor_tests::fentry_loads();
    let dir = temp_dir("removexattr-unread");
    // No capability set: the removal fails with ENODATA, after the hook.
    let f = file_in(&dir, "tool", 0o755);
    let (pid, ok) = run(Command::new(env!("CARGO_BIN_EXE_actor"))
        .arg("removexattr-unread-name")
        .arg(dir.join("name-page"))
        .arg("security.capability")
        .arg(&f));
    assert!(ok, "the actor");
    let ev = sensor.wait_for("removexattr", |v| is_file_event(v, "remove_xattr", pid));
    assert_eq!(at(&ev, "file.path").as_str(), f.to_str(), "{ev}");
    assert_eq!(at(&ev, "event.outcome"), "failure", "{ev}");
    assert_eq!(at(&ev, "error.code"), "ENODATA", "{ev}");
    let unavailable = strings(at(&ev, "sensor.file_change.unavailable"));
    if fentry {
        assert_eq!(
            at(&ev, "sensor.file_change.xattr.name"),
            "security.capability",
            "{ev}"
        );
        assert!(!unavailable.contains(&"xattr.name"), "{ev}");
    } else {
        assert!(unavailable.contains(&"xattr.name"), "{ev}");
    }
}

fn is_cred_event(v: &Value, syscall: &str, pid: u64) -> bool {
    action(v) == "credential_change" && pid_of(v) == pid && at(v, "sensor.syscall") == syscall
}

#[test]
fn dropping_privileges_shows_ids_before_and_after() {
    let sensor = Sensor::start("");
    let (pid, ok) = run(Command::new("setpriv").args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "true",
    ]));
    assert!(ok, "setpriv");
    let ev = sensor.wait_for("setresuid", |v| is_cred_event(v, "setresuid", pid));
    let change = at(&ev, "sensor.cred_change");
    assert_eq!(change["before"]["uid"], 0);
    assert_eq!(change["after"]["uid"], 65534);
    assert_eq!(change["after"]["euid"], 65534);
    assert_eq!(change["requested"]["ruid"], 65534);
    assert!(strings(&change["changed"]).contains(&"euid"), "{ev}");
    assert_eq!(change["gained_root"], false);
    // Root's effective capabilities go with the uid.
    assert!(
        !strings(&change["capabilities_before"]["effective"]).is_empty(),
        "{ev}"
    );
    assert!(
        strings(&change["capabilities_after"]["effective"]).is_empty(),
        "{ev}"
    );
    assert_eq!(
        at(&ev, "process.user.id"),
        "65534",
        "process.* shows the ids after the call"
    );
    assert_eq!(at(&ev, "event.outcome"), "success");
    assert_eq!(at(&ev, "event.category")[1], "iam");
}

#[test]
fn setuid_zero_as_nobody_is_refused_and_reported() {
    let sensor = Sensor::start("");
    let (pid, ok) = run(Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "perl",
            "-MPOSIX",
            "-e",
        ])
        .arg("POSIX::setuid(0) or exit 3"));
    assert!(!ok, "nobody cannot become root");
    let ev = sensor.wait_for("refused setuid", |v| is_cred_event(v, "setuid", pid));
    assert_eq!(at(&ev, "event.outcome"), "failure");
    assert_eq!(at(&ev, "error.code"), "EPERM");
    let change = at(&ev, "sensor.cred_change");
    assert_eq!(change["requested"]["uid"], 0);
    assert_eq!(change["before"]["uid"], 65534);
    assert_eq!(change["after"]["uid"], 65534);
    assert!(change.get("changed").is_none(), "nothing changed: {ev}");
}

#[test]
fn a_setuid_root_exec_is_flagged_as_a_privilege_gain() {
    let sensor = Sensor::start("");
    let dir = temp_dir("suid-exec");
    let id = dir.join("id-suid");
    sensor_tests::copy_executable("/usr/bin/id", &id);
    std::fs::set_permissions(&id, std::fs::Permissions::from_mode(0o4755)).expect("chmod 4755");
    // setpriv drops to nobody, then execs the setuid-root copy.
    let (pid, ok) = run(Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&id));
    assert!(ok, "setuid id runs");
    let ev = sensor.wait_for("exec of the setuid copy", |v| {
        action(v) == "exec"
            && pid_of(v) == pid
            && at(v, "process.executable").as_str() == id.to_str()
    });
    assert_eq!(
        at(&ev, "process.user.id"),
        "0",
        "effective uid after the setuid exec"
    );
    assert_eq!(at(&ev, "process.real_user.id"), "65534");
    let gain = at(&ev, "sensor.privilege_gain");
    assert_eq!(gain["via"], "exec", "{ev}");
    assert_eq!(gain["before"]["euid"], 65534);
    assert_eq!(gain["after"]["euid"], 0);
}

#[test]
fn disabled_kinds_are_not_captured() {
    let sensor = Sensor::start("[ebpf]\ndisable = [\"file_attr\"]\n");
    let dir = temp_dir("disabled");
    let f = file_in(&dir, "quiet", 0o644);
    let (pid, ok) = run(Command::new("chmod").arg("600").arg(&f));
    assert!(ok);
    // The exit of the same process proves the sensor saw it; by then a
    // chmod event would have been in the ring buffer before it.
    sensor.wait_for("chmod's exit", |v| action(v) == "exit" && pid_of(v) == pid);
    let events = sensor.stop();
    // The chmod's own: the host's other file events (a write to a watched
    // log, a symlink through a magic link planted in /tmp before the
    // sensor started) are not file_attr's to hold back.
    let file_events: Vec<&Value> = events
        .iter()
        .filter(|v| at(v, "event.category")[0] == "file" && pid_of(v) == pid)
        .collect();
    assert!(
        file_events.is_empty(),
        "file_attr is disabled, yet the chmod was reported: {file_events:?}"
    );
}

/// The cgroup v2 mount: /sys/fs/cgroup, or /sys/fs/cgroup/unified on this
/// machine's hybrid hierarchy.
fn cgroup2_root() -> PathBuf {
    let unified = Path::new("/sys/fs/cgroup/unified");
    if unified.join("cgroup.procs").exists() {
        unified.to_owned()
    } else {
        PathBuf::from("/sys/fs/cgroup")
    }
}

/// A copy of chmod at `tool` in a directory of its own, ignored by a
/// sensor that looks its path up again every `interval_ms`, and a file
/// for it to change.
struct IgnoredTool {
    dir: sensor_tests::Scratch,
    tool: PathBuf,
    kept: PathBuf,
    sensor: Sensor,
}

fn ignored_tool(name: &str, interval_ms: u64) -> IgnoredTool {
    let dir = temp_dir(name);
    let tool = dir.join("tool");
    sensor_tests::copy_executable("/usr/bin/chmod", &tool);
    let sensor = Sensor::start(&format!(
        "[filter]\nignore_executables = [\"{}\"]\n[ebpf]\ncounters_interval_ms = {interval_ms}\n",
        tool.display()
    ));
    let kept = file_in(&dir, "kept", 0o644);
    IgnoredTool {
        dir,
        tool,
        kept,
        sensor,
    }
}

/// A package upgrade writes a new executable and renames it over the old
/// one: the ignore list, kept by inode in the kernel, must follow it to the
/// new file, and drop the old inode, whose number the next file made on the
/// filesystem would get (here the old file stays alive under a second name,
/// which must now be seen).
#[test]
fn an_ignored_executable_replaced_by_an_upgrade_stays_ignored_and_its_old_inode_does_not() {
    // `sensor` last: dropped (stopped) first, before the directory goes.
    let IgnoredTool {
        dir,
        tool,
        kept,
        sensor,
    } = ignored_tool("ignore-upgrade", 200);
    let (before, ok) = run(Command::new(&tool).arg("600").arg(&kept));
    assert!(ok);

    let old_name = dir.join("tool-old");
    std::fs::hard_link(&tool, &old_name).expect("link");
    let new = dir.join("tool.new");
    sensor_tests::copy_executable("/usr/bin/chmod", &new);
    std::fs::rename(&new, &tool).expect("rename over");
    sensor.wait_for_log(
        "ignored executables with a new inode",
        std::time::Duration::from_secs(5),
    );
    let (after, ok) = run(Command::new(&tool).arg("640").arg(&kept));
    assert!(ok);
    let (old_inode, ok) = run(Command::new(&old_name).arg("604").arg(&kept));
    assert!(ok);

    let ev = sensor.wait_for("the old inode's chmod", |v| {
        is_file_event(v, "chmod", old_inode)
    });
    assert_eq!(
        at(&ev, "process.executable").as_str(),
        old_name.to_str(),
        "{ev}"
    );
    // Ring-buffer order follows time: the ignored chmods ran before it.
    let events = sensor.events();
    for (what, pid) in [("before the upgrade", before), ("after it", after)] {
        assert!(
            !events.iter().any(|v| is_file_event(v, "chmod", pid)),
            "the ignored executable's chmod {what} was reported"
        );
    }
}

/// An ignored executable removed gives its inode number to a later file
/// on its filesystem (ext4 takes the lowest free one, as on this
/// machine): that file is not the one ignored, and must be seen from its
/// first action, not from the daemon's next look at the path (a minute
/// away here). The filesystem gave it another generation.
#[test]
fn a_file_given_a_removed_ignored_executables_inode_number_is_seen() {
    // `sensor` last: dropped (stopped) first, before the directory goes.
    let IgnoredTool {
        dir,
        tool,
        kept,
        sensor,
    } = ignored_tool("ignore-reuse", 60_000);
    let (ignored, ok) = run(Command::new(&tool).arg("600").arg(&kept));
    assert!(ok);

    let reuser = program_in_its_number(&dir, &tool);
    let (reused, ok) = run(Command::new(&reuser).arg("640").arg(&kept));
    assert!(ok);

    let ev = sensor.wait_for("the chmod by the file with the reused number", |v| {
        is_file_event(v, "chmod", reused)
    });
    assert_eq!(
        at(&ev, "process.executable").as_str(),
        reuser.to_str(),
        "{ev}"
    );
    assert!(
        !sensor
            .events()
            .iter()
            .any(|v| is_file_event(v, "chmod", ignored)),
        "the ignored executable's own chmod was reported"
    );
}

/// `rm` then `install` (or a package manager that does the same) puts a
/// new file at an ignored executable's path, which may get the removed
/// file's inode number back: the daemon must take its generation too, or
/// the kernel would stop ignoring it.
#[test]
fn an_ignored_executable_reinstalled_with_its_old_inode_number_stays_ignored() {
    // `sensor` last: dropped (stopped) first, before the directory goes.
    let IgnoredTool {
        dir,
        tool,
        kept,
        sensor,
    } = ignored_tool("ignore-reinstall", 200);

    const REFRESHED: &str = "ignored executables with a new inode";
    let refreshes = || {
        sensor
            .stderr()
            .iter()
            .filter(|l| l.contains(REFRESHED))
            .count()
    };
    let before = refreshes();
    let new = program_in_its_number(&dir, &tool);
    std::fs::rename(&new, &tool).expect("install it at the ignored path");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while refreshes() == before {
        assert!(
            std::time::Instant::now() < deadline,
            "no refresh of the ignored executables"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // A tick between the removal and the rename logs the removal alone;
    // the ticks after the rename (200 ms apart) then take the new file.
    std::thread::sleep(std::time::Duration::from_secs(1));
    let (reinstalled, ok) = run(Command::new(&tool).arg("600").arg(&kept));
    assert!(ok);
    let (control, ok) = run(Command::new("chmod").arg("640").arg(&kept));
    assert!(ok);

    sensor.wait_for("the control chmod", |v| is_file_event(v, "chmod", control));
    // Ring-buffer order follows time: the reinstalled tool's chmod ran first.
    assert!(
        !sensor
            .events()
            .iter()
            .any(|v| is_file_event(v, "chmod", reinstalled)),
        "the reinstalled ignored executable's chmod was reported"
    );
}

/// Removes the executable `old` from `dir` and writes chmod into a new file
/// there that gets its inode number; that file.
fn program_in_its_number(dir: &Path, old: &Path) -> PathBuf {
    let ino = std::fs::metadata(old).expect("stat").ino();
    std::fs::remove_file(old).expect("remove the ignored executable");
    let new = file_numbered(dir, ino);
    std::fs::copy("/usr/bin/chmod", &new).expect("write the program into it");
    std::fs::set_permissions(&new, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    assert_eq!(std::fs::metadata(&new).expect("stat").ino(), ino);
    new
}

/// Makes empty files in `dir` until one gets inode number `ino`, which
/// was just freed there, and returns it; the others stay, holding the
/// lower free numbers the filesystem hands out first.
fn file_numbered(dir: &Path, ino: u64) -> PathBuf {
    const TRIES: usize = 4096;
    for i in 0..TRIES {
        let f = dir.join(format!("filler-{i}"));
        let made = std::fs::File::create(&f).expect("create");
        if made.metadata().expect("stat").ino() == ino {
            return f;
        }
    }
    panic!(
        "none of {TRIES} new files in {} got the freed inode number {ino}: \
         this test needs a filesystem that reuses them (ext4)",
        dir.display()
    );
}

#[test]
fn kernel_side_filters_drop_what_they_match_and_nothing_else() {
    let dir = temp_dir("filters");
    let cgroup = format!("/sensor-test-ignored-{}", std::process::id());
    let cgroup_dir = cgroup2_root().join(cgroup.trim_start_matches('/'));
    std::fs::create_dir_all(&cgroup_dir).expect("create a cgroup");
    let ignored_prefix = dir.join("ignored");
    std::fs::create_dir_all(&ignored_prefix).expect("mkdir");
    let config = format!(
        "[filter]\nignore_uids = [65534]\nignore_executables = [\"/usr/bin/chgrp\"]\n\
         ignore_cgroups = [\"{cgroup}\"]\nignore_path_prefixes = [\"{}/\"]\n",
        ignored_prefix.display()
    );
    let sensor = Sensor::start(&config);
    let kept = file_in(&dir, "kept", 0o644);
    let hidden = file_in(&ignored_prefix, "hidden", 0o644);

    // Each ignored action, then one that must still be seen.
    let (by_nobody, _) = run(Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "chmod",
            "600",
        ])
        .arg(&kept));
    let (by_chgrp, ok) = run(Command::new("chgrp").arg("nogroup").arg(&kept));
    assert!(ok);
    let (under_prefix, ok) = run(Command::new("chmod").arg("600").arg(&hidden));
    assert!(ok);
    let script = format!(
        "echo $$ > {}/cgroup.procs && exec chmod 640 {}",
        cgroup_dir.display(),
        kept.display()
    );
    let (in_cgroup, ok) = run(Command::new("sh").arg("-c").arg(script));
    assert!(ok);
    // One thread, three calls: the middle one is dropped at its entry.
    // Its exit must not send the record the first call left behind.
    let (mixed, ok) = run(Command::new("chmod")
        .arg("606")
        .arg(&kept)
        .arg(&hidden)
        .arg(&kept));
    assert!(ok);
    let (control, ok) = run(Command::new("chmod").arg("604").arg(&kept));
    assert!(ok);

    sensor.wait_for("the control chmod", |v| is_file_event(v, "chmod", control));
    let mixed_paths: Vec<String> = sensor
        .events()
        .iter()
        .filter(|v| is_file_event(v, "chmod", mixed))
        .map(|v| at(v, "file.path").as_str().unwrap_or_default().to_owned())
        .collect();
    let kept_path = kept.display().to_string();
    assert_eq!(
        mixed_paths,
        vec![kept_path.clone(), kept_path],
        "one event per call that is not ignored, none for the ignored one"
    );
    // Ring-buffer order follows time: every ignored action ran before the
    // control one, so its event would already be here.
    let events = sensor.events();
    for (what, pid) in [
        ("uid 65534", by_nobody),
        ("/usr/bin/chgrp", by_chgrp),
        ("path prefix", under_prefix),
        ("cgroup", in_cgroup),
    ] {
        assert!(
            !events
                .iter()
                .any(|v| pid_of(v) == pid && at(v, "event.category")[0] == "file"),
            "the file event of a process ignored by {what} was reported"
        );
        // The process itself is still known: lifecycle events are never filtered.
        assert!(
            events
                .iter()
                .any(|v| pid_of(v) == pid && action(v) == "exec"),
            "exec of the {what} process"
        );
    }
    drop(sensor);
    let _ = std::fs::remove_dir(&cgroup_dir);
}

/// A symlink under an ignored prefix can name any file: the path filter
/// must not hide a change to a file outside the prefix through it. Where
/// the kernel resolves the file (fentry), the file decides; where it does
/// not (this machine), a chmod that sets the setuid or setgid bit is never
/// dropped by its path, and the rest is decided by the argument.
#[test]
fn a_symlink_under_an_ignored_prefix_does_not_hide_a_setuid_chmod() {
    let dir = temp_dir("filter-link");
    let ignored_prefix = dir.join("ignored");
    std::fs::create_dir_all(&ignored_prefix).expect("mkdir");
    let config = format!(
        "[filter]\nignore_path_prefixes = [\"{}/\"]\n",
        ignored_prefix.display()
    );
    let resolves = sensor_tests::fentry_loads();
    let sensor = Sensor::start(&config);
    let outside = file_in(&dir, "tool", 0o755);
    let link = ignored_prefix.join("link");
    std::os::unix::fs::symlink(&outside, &link).expect("symlink");
    let inside = file_in(&ignored_prefix, "plain", 0o755);
    // A second name under the prefix for a file outside it: resolution
    // stops at a hard link.
    let shared = file_in(&dir, "shared", 0o644);
    let hard = ignored_prefix.join("hard");
    std::fs::hard_link(&shared, &hard).expect("hard link");

    let setuid_via_link = chmod("u+s", &link);
    let plain_via_link = chmod("700", &link);
    let setgid_inside = chmod("g+s", &inside);
    let plain_inside = chmod("700", &inside);
    let plain_via_hard_link = chmod("640", &hard);
    let control = chmod("755", &outside);
    sensor.wait_for("the control chmod", |v| is_file_event(v, "chmod", control));
    let events = sensor.events();
    let event_of = |pid| events.iter().find(|v| is_file_event(v, "chmod", pid));

    let ev = event_of(setuid_via_link).expect("the setuid chmod through the symlink is reported");
    assert_eq!(
        at(ev, "sensor.file_change.special_bits"),
        &serde_json::json!(["setuid"]),
        "{ev}"
    );
    if resolves {
        assert_eq!(at(ev, "file.path").as_str(), outside.to_str(), "{ev}");
        assert_eq!(
            at(ev, "sensor.file_change.path_argument").as_str(),
            link.to_str(),
            "{ev}"
        );
    } else {
        assert_eq!(at(ev, "file.path").as_str(), link.to_str(), "{ev}");
    }
    let ev = event_of(setgid_inside).expect("a setgid chmod under the prefix is reported");
    assert_eq!(at(ev, "file.path").as_str(), inside.to_str(), "{ev}");
    // Resolved, a chmod through the link changes a file outside the
    // prefix: reported. Unresolved, its argument is all there is.
    assert_eq!(
        event_of(plain_via_link).is_some(),
        resolves,
        "chmod 700 through the symlink (the kernel resolves the file: {resolves})"
    );
    assert!(
        event_of(plain_inside).is_none(),
        "a chmod that sets no special bit under the prefix is ignored"
    );
    // Resolved, the file's second name shows: reported. Unresolved, the
    // argument decides (the inode behind a path is unknown at entry).
    let ev = event_of(plain_via_hard_link);
    assert_eq!(
        ev.is_some(),
        resolves,
        "chmod 640 through a hard link under the prefix (resolved: {resolves})"
    );
    if let Some(ev) = ev {
        assert_eq!(at(ev, "file.path").as_str(), hard.to_str(), "{ev}");
        assert_eq!(at(ev, "sensor.file_change.before.links"), 2, "{ev}");
    }
}

/// A `..` leads out of an ignored prefix that the argument's bytes start
/// with: where the kernel does not resolve the file (this machine), the
/// argument must not be ignored by its bytes, however far into a long
/// path the `..` comes. The event shows the path made normal, and the
/// argument as passed; after a symlink, where the `..` really led (the
/// link's target's parent), not where the bytes say.
#[test]
fn a_dot_dot_out_of_an_ignored_prefix_does_not_hide_a_chmod() {
    let dir = temp_dir("filter-dot-dot");
    let ignored_prefix = dir.join("ignored");
    // Two full-length names: the `..` comes past the 256 bytes the
    // kernel's short record holds, in the long record's read.
    let deep = ignored_prefix.join("a".repeat(250)).join("b".repeat(250));
    std::fs::create_dir_all(&deep).expect("mkdir");
    let config = format!(
        "[filter]\nignore_path_prefixes = [\"{}/\"]\n",
        ignored_prefix.display()
    );
    let sensor = Sensor::start(&config);
    let outside = file_in(&dir, "tool", 0o755);
    let inside = file_in(&ignored_prefix, "plain", 0o755);
    let climbing = ignored_prefix.join("../tool");
    let deep_climbing = deep.join("../../../tool");
    assert!(deep_climbing.as_os_str().len() > 512);
    let out_by_dot_dot = chmod("700", &climbing);
    let out_by_deep_dot_dot = chmod("710", &deep_climbing);
    std::fs::create_dir_all(dir.join("elsewhere/inner")).expect("mkdir");
    let secret = file_in(&dir.join("elsewhere"), "secret", 0o755);
    std::os::unix::fs::symlink(dir.join("elsewhere/inner"), ignored_prefix.join("l"))
        .expect("symlink");
    let through_link = ignored_prefix.join("l/../secret");
    let out_by_link = chmod("750", &through_link);
    let plain_inside = chmod("700", &inside);
    let control = chmod("755", &outside);
    sensor.wait_for("the control chmod", |v| is_file_event(v, "chmod", control));
    let events = sensor.events();
    let event_of = |pid| events.iter().find(|v| is_file_event(v, "chmod", pid));
    for (pid, argument, mode, file) in [
        (out_by_dot_dot, &climbing, "0700", &outside),
        (out_by_deep_dot_dot, &deep_climbing, "0710", &outside),
        (out_by_link, &through_link, "0750", &secret),
    ] {
        let ev = event_of(pid)
            .unwrap_or_else(|| panic!("chmod {mode} {} was not reported", argument.display()));
        assert_eq!(at(ev, "file.path").as_str(), file.to_str(), "{ev}");
        assert_eq!(
            at(ev, "sensor.file_change.path_argument").as_str(),
            argument.to_str(),
            "{ev}"
        );
        assert_eq!(at(ev, "sensor.file_change.requested.mode"), mode, "{ev}");
    }
    assert!(
        event_of(plain_inside).is_none(),
        "a chmod under the prefix spelled plainly is still ignored"
    );
}

/// A chmod or chown by a path through the caller's own cwd in `/proc`
/// names the file there, as the cwd was at the call: where the caller
/// exited at once (the daemon cannot read its cwd any more), and where it
/// moved on to another directory right after (whose file it would name).
#[test]
fn a_path_through_the_callers_cwd_names_the_file_there_after_the_caller_moved_on() {
    let sensor = Sensor::start("");
    let dir = temp_dir("proc-cwd");
    let tool = file_in(&dir, "tool", 0o755);
    let other = file_in(&dir, "other", 0o755);
    let exited = run(Command::new("chmod")
        .args(["u+s", "/proc/self/cwd/tool"])
        .current_dir(&dir));
    assert!(exited.1, "chmod through /proc/self/cwd");
    let chowned = run(Command::new("chown")
        .args(["nobody", "/proc/thread-self/cwd/other"])
        .current_dir(&dir));
    assert!(chowned.1, "chown through /proc/thread-self/cwd");
    let mut perl = Command::new("perl");
    perl.arg("-e")
        .arg(
            "chmod(02755, '/proc/self/cwd/tool') or die \"$!\"; chdir('/') or die \"$!\"; \
             $| = 1; print \"done\\n\"; sleep 60",
        )
        .current_dir(&dir);
    let mut moved_on = sensor_tests::spawned_until(perl, "done");
    let moved_on_pid = u64::from(moved_on.id());
    for (pid, act, argument, file) in [
        (exited.0, "chmod", "/proc/self/cwd/tool", &tool),
        (chowned.0, "chown", "/proc/thread-self/cwd/other", &other),
        (moved_on_pid, "chmod", "/proc/self/cwd/tool", &tool),
    ] {
        let ev = sensor.wait_for(&format!("{act} {argument} by {pid}"), |v| {
            is_file_event(v, act, pid)
        });
        assert_eq!(at(&ev, "file.path").as_str(), file.to_str(), "{ev}");
        assert_eq!(
            at(&ev, "sensor.file_change.path_argument").as_str(),
            Some(argument),
            "{ev}"
        );
        assert!(at(&ev, "sensor.file_change.unresolved").is_null(), "{ev}");
    }
    let _ = moved_on.kill();
    let _ = moved_on.wait();
}

/// The path argument in a page the entry's read cannot fault in: the
/// kernel's own copy resolves it. Where fentry loads, the event names the
/// file the kernel resolved; here, it says the path could not be read
/// rather than naming none as if there were none.
#[test]
fn a_chmod_whose_path_cannot_be_read_at_entry_is_still_reported() {
    let resolves = sensor_tests::fentry_loads();
    let sensor = Sensor::start("");
    let dir = temp_dir("unread-path");
    let target = file_in(&dir, "target", 0o755);
    let out = Command::new(env!("CARGO_BIN_EXE_actor"))
        .arg("chmod-unread-path")
        .arg(dir.join("path-page"))
        .arg(&target)
        .arg("4755")
        .output()
        .expect("run the actor");
    assert!(out.status.success(), "actor: {out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
    let ev = sensor.wait_for("the chmod", |v| {
        action(v) == "chmod"
            && at(v, "process.name") == "actor"
            && at(v, "process.args")[1] == "chmod-unread-path"
    });
    assert_eq!(at(&ev, "event.outcome"), "success", "{ev}");
    assert_eq!(at(&ev, "sensor.file_change.requested.mode"), "4755", "{ev}");
    assert!(
        strings(at(&ev, "sensor.file_change.unavailable")).contains(&"path_argument"),
        "{ev}"
    );
    if resolves {
        assert_eq!(at(&ev, "file.path").as_str(), target.to_str(), "{ev}");
        assert_eq!(
            at(&ev, "sensor.file_change.special_bits_added"),
            &serde_json::json!(["setuid"]),
            "{ev}"
        );
    } else {
        assert!(at(&ev, "file.path").is_null(), "{ev}");
    }
}

/// The keys (thread ids) of every map named `name` (as the kernel keeps
/// it: at most 15 bytes), read with bpftool.
fn map_keys(name: &str) -> Vec<u64> {
    let out = Command::new("bpftool")
        .args(["-j", "map", "dump", "name", name])
        .output()
        .expect("run bpftool");
    assert!(
        out.status.success(),
        "bpftool map dump name {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dumps: Value = serde_json::from_slice(&out.stdout).expect("bpftool JSON");
    // One map: an array of entries; several: an array of {"elements": [...]}.
    let entries: Vec<&Value> = match dumps.as_array() {
        Some(a) if a.iter().all(|d| d.get("elements").is_some()) => a
            .iter()
            .flat_map(|d| d["elements"].as_array().into_iter().flatten())
            .collect(),
        Some(a) => a.iter().collect(),
        None => panic!("bpftool printed {dumps}"),
    };
    entries
        .iter()
        .map(|e| {
            let bytes: Vec<u8> = e["key"]
                .as_array()
                .expect("key bytes")
                .iter()
                .map(|b| {
                    let b = b.as_str().expect("hex byte");
                    u8::from_str_radix(b.trim_start_matches("0x"), 16).expect("hex")
                })
                .collect();
            u64::from_le_bytes(bytes.try_into().expect("8-byte key"))
        })
        .collect()
}

#[test]
fn a_thread_s_in_flight_records_go_when_it_exits() {
    let sensor = Sensor::start("");
    let dir = temp_dir("inflight");
    let f = file_in(&dir, "f", 0o644);
    let shell = |script: String| {
        let mut c = Command::new("bash");
        c.arg("-c").arg(script);
        c
    };
    // Per in-flight map, a process whose one thread makes such a call.
    let mut runs: Vec<(&str, Command)> = Vec::new();
    for _ in 0..20 {
        let mut chmod = Command::new("chmod");
        chmod.arg("600").arg(&f);
        runs.push(("FILE_INFLIGHT_S", chmod));
        // A connect to a closed port (refused: the shell fails).
        runs.push((
            "NET_INFLIGHT",
            shell("exec 2>/dev/null; echo > /dev/tcp/127.0.0.1/1".into()),
        ));
        // An open for writing.
        runs.push(("OPEN_INFLIGHT", shell(format!("echo x > {}", f.display()))));
        let mut drop_ids = Command::new("setpriv");
        drop_ids.args(["--reuid=65534", "true"]);
        runs.push(("CRED_INFLIGHT", drop_ids));
    }
    let mut pids: Vec<(&str, u64)> = Vec::new();
    for (map, mut cmd) in runs {
        let (pid, _) = run(&mut cmd);
        pids.push((map, pid));
    }
    // The last process's events: the sensor saw them all by then.
    let (_, last) = pids[pids.len() - 1];
    sensor.wait_for("the last setpriv's credential change", |v| {
        action(v) == "credential_change" && pid_of(v) == last
    });
    // Each ran in its own thread (tgid == tid), now gone; their records
    // stayed in the maps between calls and must have left with them.
    let maps = [
        "FILE_INFLIGHT_S",
        "NET_INFLIGHT",
        "OPEN_INFLIGHT",
        "CRED_INFLIGHT",
    ];
    for map in maps {
        let keys = map_keys(map);
        for (_, pid) in pids.iter().filter(|(m, _)| *m == map) {
            let key = pid << 32 | pid;
            assert!(
                !keys.contains(&key),
                "{map} still holds the record of exited thread {pid}"
            );
        }
    }

    // While the thread lives, its records stay (this is also what shows
    // that the maps above are the right ones, read the right way): one
    // perl process makes all four kinds of call in its one thread, then
    // waits.
    let script = "chmod 0600, $ARGV[0]; open(my $f, '>', $ARGV[0]) or die; close $f; \
                  use Socket; socket(my $s, PF_INET, SOCK_STREAM, 0) or die; \
                  connect($s, pack_sockaddr_in(1, inet_aton('127.0.0.1'))); \
                  $> = 65534; $| = 1; print \"ready\\n\"; <STDIN>;";
    let mut perl = Command::new("perl");
    perl.args(["-e", script])
        .arg(&f)
        .stdin(std::process::Stdio::piped());
    let mut perl = sensor_tests::spawned_until(perl, "ready");
    let pid = perl.id() as u64;
    let key = pid << 32 | pid;
    sensor.wait_for("perl's credential change", |v| {
        action(v) == "credential_change" && pid_of(v) == pid
    });
    for map in maps {
        assert!(
            map_keys(map).contains(&key),
            "{map} has no record of live thread {pid}"
        );
    }
    sensor_tests::release(&mut perl, "\n");
    assert!(perl.wait().expect("wait perl").success(), "perl failed");
    for map in maps {
        assert!(
            !map_keys(map).contains(&key),
            "{map} still holds the record of exited thread {pid}"
        );
    }
}
