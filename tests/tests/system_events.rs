//! Actions an intruder uses, performed for real by the `actor` helper:
//! ptrace attach, module load attempts and unload, fileless execution,
//! mount, bpf() program loads, and signals sent to the sensor.

use std::path::Path;
use std::process::{Command, Stdio};

use sensor_tests::{Sensor, action, at, pid_of, scratch_dir};
use serde_json::Value;

fn actor(args: &[&str]) -> (u64, bool) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_actor"))
        .args(args)
        .spawn()
        .expect("spawn actor");
    let pid = child.id() as u64;
    (pid, child.wait().expect("wait").success())
}

/// A kernel without some syscalls: the sensor's start line must list
/// each as not traced.
fn assert_listed_untraced(sensor: &Sensor, syscalls: &[&str]) {
    let started = sensor
        .stderr()
        .into_iter()
        .find(|l| l.contains("sensor started"))
        .expect("start line");
    for syscall in syscalls {
        assert!(
            started.contains(syscall),
            "{syscall} not listed as not traced: {started}"
        );
    }
}

fn by(v: &Value, act: &str, pid: u64) -> bool {
    action(v) == act && pid_of(v) == pid
}

#[test]
fn ptrace_attach_names_the_target() {
    let sensor = Sensor::start("");
    let mut target = Command::new("sleep")
        .arg("30")
        .stdout(Stdio::null())
        .spawn()
        .expect("sleep");
    let target_pid = target.id();
    sensor.wait_for("the target's exec", |v| {
        action(v) == "exec" && pid_of(v) == target_pid as u64
    });
    let (pid, ok) = actor(&["ptrace-attach", &target_pid.to_string()]);
    assert!(ok, "attach");
    let ev = sensor.wait_for("ptrace attach", |v| by(v, "ptrace_attach", pid));
    assert_eq!(
        at(&ev, "sensor.ptrace_target.pid").as_u64(),
        Some(target_pid as u64)
    );
    assert!(
        at(&ev, "sensor.ptrace_target.executable")
            .as_str()
            .is_some_and(|e| e.ends_with("/sleep")),
        "{ev}"
    );
    assert_eq!(at(&ev, "event.outcome"), "success");
    assert_eq!(at(&ev, "sensor.syscall"), "ptrace");
    let _ = target.kill();
    let _ = target.wait();
}

#[test]
fn kexec_attempts_are_reported_with_the_kernel_file_and_their_outcome() {
    let sensor = Sensor::start("");
    if !Path::new("/sys/kernel/tracing/events/syscalls/sys_enter_kexec_file_load").exists() {
        // A kernel built without kexec (this build machine's) has no kexec
        // syscalls to trace: the sensor must say so at start. The vm-test
        // guests, whose kernels have them, play an attempt.
        assert_listed_untraced(&sensor, &["kexec_load", "kexec_file_load"]);
        eprintln!(
            "this kernel has no kexec syscalls; checked that the sensor reports them untraced"
        );
        return;
    }
    let dir = scratch_dir("kexec");
    let image = dir.join("vmlinuz-evil");
    std::fs::write(&image, b"not a kernel image").expect("write");
    let (pid, ok) = actor(&["kexec-file-garbage", image.to_str().expect("utf-8")]);
    assert!(ok);
    let ev = sensor.wait_for("kexec_file_load", |v| by(v, "kexec_load", pid));
    assert_eq!(at(&ev, "event.outcome"), "failure", "{ev}");
    assert_eq!(at(&ev, "file.path"), image.to_str().unwrap(), "{ev}");
    assert_eq!(at(&ev, "sensor.kexec.cmdline"), "sensor_test=1", "{ev}");
    assert_eq!(at(&ev, "sensor.syscall"), "kexec_file_load", "{ev}");
    let (pid, ok) = actor(&["kexec-load-as-nobody"]);
    assert!(ok);
    let ev = sensor.wait_for("kexec_load", |v| by(v, "kexec_load", pid));
    assert_eq!(at(&ev, "error.code"), "EPERM", "{ev}");
    assert_eq!(at(&ev, "sensor.kexec.segments"), 0, "{ev}");
    assert_eq!(at(&ev, "sensor.syscall"), "kexec_load", "{ev}");
}

#[test]
fn module_load_attempts_and_unloads_are_reported_with_their_outcome() {
    let sensor = Sensor::start("");
    if !Path::new("/sys/kernel/tracing/events/syscalls/sys_enter_init_module").exists() {
        // A kernel built without module support (this build machine's) has
        // no module syscalls to trace: the sensor must say so at start.
        // The QEMU kernels check (`cargo xtask kernels`) loads a module
        // attempt on Debian's kernels, which have them.
        assert_listed_untraced(&sensor, &["init_module", "finit_module", "delete_module"]);
        eprintln!(
            "this kernel has no module syscalls; checked that the sensor reports them untraced"
        );
        return;
    }
    let (pid, ok) = actor(&["init-module-garbage"]);
    assert!(ok);
    let ev = sensor.wait_for("init_module", |v| by(v, "module_load", pid));
    assert_eq!(at(&ev, "event.outcome"), "failure", "{ev}");
    assert_eq!(at(&ev, "event.category")[0], "driver");
    assert_eq!(at(&ev, "sensor.module.params"), "sensor_test=1");
    assert!(
        at(&ev, "sensor.module.image_bytes")
            .as_u64()
            .is_some_and(|n| n > 0)
    );

    let dir = scratch_dir("sensor-mod");
    let fake = dir.join("evil.ko");
    std::fs::write(&fake, b"not a module either").expect("write");
    let (pid, ok) = actor(&["finit-module", fake.to_str().expect("utf-8")]);
    assert!(ok);
    let ev = sensor.wait_for("finit_module", |v| by(v, "module_load", pid));
    assert_eq!(
        at(&ev, "file.path").as_str(),
        fake.to_str(),
        "the module file, from its fd: {ev}"
    );
    assert_eq!(at(&ev, "event.outcome"), "failure");
    assert_eq!(at(&ev, "sensor.syscall"), "finit_module");

    let (pid, ok) = actor(&["delete-module", "sensor_no_such_module"]);
    assert!(ok);
    let ev = sensor.wait_for("delete_module", |v| by(v, "module_unload", pid));
    assert_eq!(at(&ev, "sensor.module.name"), "sensor_no_such_module");
    assert_eq!(at(&ev, "error.code"), "ENOENT");
}

#[test]
fn a_program_run_from_a_memfd_is_flagged_fileless() {
    let sensor = Sensor::start("");
    let (pid, ok) = actor(&["memfd-exec"]);
    assert!(ok, "/bin/true from a memfd exits 0");
    let created = sensor.wait_for("memfd_create", |v| by(v, "memfd_create", pid));
    assert_eq!(at(&created, "sensor.memfd.name"), "sensor-payload");
    assert!(at(&created, "event.outcome") == "success");
    let exec = sensor.wait_for("exec from the memfd", |v| {
        by(v, "exec", pid) && at(v, "sensor.fileless").as_str().is_some()
    });
    assert_eq!(at(&exec, "sensor.fileless"), "memfd", "{exec}");
    assert!(
        at(&exec, "process.executable")
            .as_str()
            .is_some_and(|e| e.contains("memfd:sensor-payload")),
        "{exec}"
    );
}

/// A name that is not UTF-8 is kept byte-exact (escaped) and listed in
/// `sensor.escaped`, so a consumer knows to unescape it.
#[test]
fn a_memfd_name_that_is_not_utf8_is_escaped_and_listed() {
    let sensor = Sensor::start("");
    let me = std::process::id() as u64;
    let name = c"payload\xff\\x";
    // SAFETY: a memfd with a valid C string name, closed at once.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), 0) };
    assert!(fd >= 0, "memfd_create: {}", std::io::Error::last_os_error());
    // SAFETY: our own fd.
    unsafe { libc::close(fd) };
    let ev = sensor.wait_for("memfd_create", |v| {
        by(v, "memfd_create", me)
            && at(v, "sensor.memfd.name")
                .as_str()
                .is_some_and(|n| n.starts_with("payload"))
    });
    // 0xff as \xff, the backslash doubled.
    assert_eq!(at(&ev, "sensor.memfd.name"), "payload\\xff\\\\x", "{ev}");
    assert_eq!(
        at(&ev, "sensor.escaped"),
        &serde_json::json!(["sensor.memfd.name"]),
        "{ev}"
    );
}

#[test]
fn a_deleted_executable_is_flagged_fileless() {
    let sensor = Sensor::start("");
    let dir = scratch_dir("sensor-del");
    let copy = dir.join("vanishing");
    sensor_tests::copy_executable("/bin/sleep", &copy);
    // Open it, delete it, then run it through the open fd: the classic
    // dropper that leaves nothing on disk.
    let script = format!(
        "exec 7<{p}; rm {p}; exec /proc/self/fd/7 0",
        p = copy.display()
    );
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(script)
        .spawn()
        .expect("bash");
    let pid = child.id() as u64;
    assert!(child.wait().expect("wait").success());
    let exec = sensor.wait_for("exec of the deleted file", |v| {
        by(v, "exec", pid) && at(v, "sensor.fileless").as_str().is_some()
    });
    assert_eq!(at(&exec, "sensor.fileless"), "deleted", "{exec}");
}

#[test]
fn mount_and_umount_are_reported() {
    let sensor = Sensor::start("");
    let dir = scratch_dir("sensor-mnt");
    let (pid, ok) = actor(&["mount-tmpfs", dir.to_str().expect("utf-8")]);
    assert!(ok);
    let ev = sensor.wait_for("mount", |v| by(v, "mount", pid));
    assert_eq!(at(&ev, "sensor.mount.target").as_str(), dir.to_str());
    assert_eq!(at(&ev, "sensor.mount.fstype"), "tmpfs");
    assert_eq!(at(&ev, "sensor.mount.source"), "sensor-test");
    assert_eq!(at(&ev, "event.outcome"), "success");
    let ev = sensor.wait_for("umount", |v| by(v, "umount", pid));
    assert_eq!(at(&ev, "sensor.mount.target").as_str(), dir.to_str());
}

#[test]
fn bpf_program_loads_by_others_are_reported() {
    let sensor = Sensor::start("");
    let (pid, ok) = actor(&["bpf-prog-load"]);
    assert!(ok);
    let ev = sensor.wait_for("bpf prog load", |v| by(v, "bpf", pid));
    assert_eq!(at(&ev, "sensor.bpf.command"), "prog_load");
    assert_eq!(at(&ev, "sensor.bpf.name"), "sensor_test");
    assert_eq!(
        at(&ev, "sensor.bpf.prog_type").as_u64(),
        Some(1),
        "socket filter"
    );
    assert_eq!(at(&ev, "event.outcome"), "success");
    // The sensor's own loads (at its start) are never reported.
    assert!(
        !sensor
            .events()
            .iter()
            .any(|v| action(v) == "bpf" && pid_of(v) == sensor.pid() as u64),
        "the sensor reported its own bpf() calls"
    );
}

#[test]
fn signals_sent_to_the_sensor_are_reported() {
    let sensor = Sensor::start("");
    // SIGCONT does the sensor no harm (its default action, for a running
    // process, is to be ignored); SIGKILL could not be reported by the
    // process it kills.
    let target = sensor.pid().to_string();
    let (pid, ok) = actor(&["signal", &target, &libc::SIGCONT.to_string()]);
    assert!(ok);
    let ev = sensor.wait_for("signal to the sensor", |v| by(v, "signal_sensor", pid));
    assert_eq!(at(&ev, "sensor.signal.name"), "SIGCONT");
    assert_eq!(at(&ev, "sensor.signal_result"), "ignored");
    assert_eq!(at(&ev, "event.category")[0], "process");
    assert_eq!(
        at(&ev, "process.executable").as_str(),
        Some(env!("CARGO_BIN_EXE_actor"))
    );
}

#[test]
fn a_kill_of_the_sensor_refused_to_nobody_is_reported() {
    // signal_generate never fires for it (no signal is made), so this is
    // the kill syscall's own event: an unprivileged intruder probing.
    let sensor = Sensor::start("");
    let target = sensor.pid().to_string();
    let (pid, ok) = actor(&["signal-as-nobody", &target, &libc::SIGTERM.to_string()]);
    assert!(ok, "the kill was not refused with EPERM");
    let ev = sensor.wait_for("the refused kill", |v| by(v, "signal_sensor", pid));
    assert_eq!(at(&ev, "event.outcome"), "failure", "{ev}");
    assert_eq!(at(&ev, "error.code"), "EPERM", "{ev}");
    assert_eq!(at(&ev, "sensor.syscall"), "kill", "{ev}");
    assert_eq!(at(&ev, "sensor.signal.name"), "SIGTERM", "{ev}");
    assert_eq!(at(&ev, "process.user.id"), "65534", "{ev}");
    assert!(
        at(&ev, "sensor.signal_result").is_null(),
        "no signal was generated: {ev}"
    );
}

#[test]
fn a_mount_through_the_new_api_is_reported_and_so_is_a_refused_one() {
    let sensor = Sensor::start("");
    let dir = scratch_dir("sensor-move-mount");
    let target = dir.to_str().expect("utf-8");
    let (pid, ok) = actor(&["move-mount-tmpfs", target]);
    assert!(ok, "move_mount of a tmpfs");
    let ev = sensor.wait_for("the move_mount", |v| by(v, "mount", pid));
    assert_eq!(at(&ev, "sensor.syscall"), "move_mount", "{ev}");
    assert_eq!(at(&ev, "event.outcome"), "success", "{ev}");
    assert_eq!(
        at(&ev, "sensor.mount.target").as_str(),
        Some(target),
        "{ev}"
    );
    assert_eq!(
        at(&ev, "sensor.mount.flags"),
        4,
        "MOVE_MOUNT_F_EMPTY_PATH: {ev}"
    );
    // The umount2 that follows is the usual umount event.
    sensor.wait_for("its umount", |v| by(v, "umount", pid));

    let (pid, ok) = actor(&["move-mount-as-nobody", target]);
    assert!(ok, "move_mount as nobody was not refused with EPERM");
    let ev = sensor.wait_for("the refused move_mount", |v| by(v, "mount", pid));
    assert_eq!(at(&ev, "event.outcome"), "failure", "{ev}");
    assert_eq!(at(&ev, "error.code"), "EPERM", "{ev}");
    assert_eq!(at(&ev, "process.user.id"), "65534", "{ev}");
    let _ = std::fs::remove_dir(&dir);
}

#[test]
fn mount_attributes_changed_with_mount_setattr_are_reported_and_so_is_a_refused_change() {
    let sensor = Sensor::start("");
    let dir = scratch_dir("sensor-mount-setattr");
    let target = dir.to_str().expect("utf-8");
    let (pid, ok) = actor(&["mount-setattr-rdonly", target]);
    assert!(ok, "mount_setattr on a tmpfs");
    let ev = sensor.wait_for("the mount_setattr", |v| {
        by(v, "mount", pid) && at(v, "sensor.syscall") == "mount_setattr"
    });
    assert_eq!(at(&ev, "event.outcome"), "success", "{ev}");
    assert_eq!(
        at(&ev, "sensor.mount.target").as_str(),
        Some(target),
        "{ev}"
    );
    assert_eq!(
        at(&ev, "sensor.mount.attributes_set"),
        &serde_json::json!(["rdonly", "nosuid"]),
        "{ev}"
    );
    assert_eq!(
        at(&ev, "sensor.mount.attributes_cleared"),
        &serde_json::json!(["noexec"]),
        "{ev}"
    );

    let (pid, ok) = actor(&["mount-setattr-as-nobody", "/"]);
    assert!(ok, "mount_setattr as nobody was not refused with EPERM");
    let ev = sensor.wait_for("the refused mount_setattr", |v| by(v, "mount", pid));
    assert_eq!(at(&ev, "sensor.syscall"), "mount_setattr", "{ev}");
    assert_eq!(at(&ev, "event.outcome"), "failure", "{ev}");
    assert_eq!(at(&ev, "error.code"), "EPERM", "{ev}");
    assert_eq!(
        at(&ev, "sensor.mount.attributes_set"),
        &serde_json::json!(["rdonly"]),
        "{ev}"
    );
    assert_eq!(at(&ev, "process.user.id"), "65534", "{ev}");
    let _ = std::fs::remove_dir(&dir);
}

/// Mount targets given relative to the cwd or a dirfd, or empty (the
/// dirfd itself), are reported as the mount point the kernel used, with
/// the argument as passed beside it.
#[test]
fn relative_and_empty_mount_targets_are_resolved() {
    let sensor = Sensor::start("");
    let dir = scratch_dir("sensor-mount-relative");
    let target = dir.to_str().expect("utf-8");
    let name = dir.file_name().and_then(|n| n.to_str()).expect("a name");
    let (pid, ok) = actor(&["mount-relative", target]);
    assert!(ok, "mounts by relative targets");
    for (what, syscall, action, argument) in [
        ("mount(2) relative to the cwd", "mount", "mount", name),
        (
            "mount_setattr of the dirfd itself",
            "mount_setattr",
            "mount",
            "",
        ),
        ("umount2 relative to the cwd", "umount2", "umount", name),
        (
            "move_mount relative to a dirfd",
            "move_mount",
            "mount",
            name,
        ),
    ] {
        let ev = sensor.wait_for(what, |v| {
            by(v, action, pid) && at(v, "sensor.syscall") == syscall
        });
        assert_eq!(at(&ev, "event.outcome"), "success", "{what}: {ev}");
        assert_eq!(
            at(&ev, "sensor.mount.target").as_str(),
            Some(target),
            "{what}: {ev}"
        );
        assert_eq!(
            at(&ev, "sensor.mount.target_argument"),
            argument,
            "{what}: {ev}"
        );
    }
    let _ = std::fs::remove_dir(&dir);
}

/// A bind mount's source is a path too: `cd /etc; mount --bind shadow-dir
/// /tmp/x` must show the directory the kernel bound, not `shadow-dir`.
#[test]
fn a_bind_mount_relative_source_is_resolved() {
    let sensor = Sensor::start("");
    let src = scratch_dir("sensor-bind-source");
    let dst = scratch_dir("sensor-bind-target");
    let (source, target) = (src.to_str().expect("utf-8"), dst.to_str().expect("utf-8"));
    let name = src.file_name().and_then(|n| n.to_str()).expect("a name");
    let (pid, ok) = actor(&["bind-relative", source, target]);
    assert!(ok, "bind mount by a relative source");
    let ev = sensor.wait_for("the bind mount", |v| {
        by(v, "mount", pid) && at(v, "sensor.syscall") == "mount"
    });
    assert_eq!(at(&ev, "event.outcome"), "success", "{ev}");
    assert_eq!(
        at(&ev, "sensor.mount.source").as_str(),
        Some(source),
        "{ev}"
    );
    assert_eq!(at(&ev, "sensor.mount.source_argument"), name, "{ev}");
    // The absolute target is shown as passed, with nothing joined.
    assert_eq!(
        at(&ev, "sensor.mount.target").as_str(),
        Some(target),
        "{ev}"
    );
    assert!(
        at(&ev, "sensor.mount.target_argument").is_null(),
        "an absolute target has no argument form: {ev}"
    );
    assert_eq!(
        at(&ev, "sensor.mount.flags")
            .as_u64()
            .map(|f| f & libc::MS_BIND),
        Some(libc::MS_BIND),
        "{ev}"
    );
    let _ = std::fs::remove_dir(&src);
    let _ = std::fs::remove_dir(&dst);
}
