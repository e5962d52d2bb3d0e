//! Container identity from the kernel's cgroup path, with a real podman
//! container (image imported from a busybox rootfs: no registry needed).
//! `cargo xtask setup` installs podman, runc and busybox-static.

use std::process::{Command, Stdio};
use std::sync::Once;

use sensor_tests::{Sensor, action, at};

const IMAGE: &str = "localhost/sensor-test-busybox";

/// podman with the flags this build machine needs (hybrid cgroups: crun
/// refuses them and runc's RLIMIT_NPROC setting is not permitted).
fn podman() -> Command {
    let mut c = Command::new("podman");
    c.args(["--cgroup-manager=cgroupfs"]);
    c
}

fn ensure_image() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let exists = podman().args(["image", "exists", IMAGE]).status().expect("podman is installed (cargo xtask setup)");
        if exists.success() {
            return;
        }
        let dir = std::env::temp_dir().join(format!("sensor-rootfs-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("bin")).expect("rootfs dir");
        std::fs::copy("/bin/busybox", dir.join("bin/busybox")).expect("busybox-static is installed (cargo xtask setup)");
        for tool in ["sh", "echo", "true", "sleep", "cat"] {
            std::os::unix::fs::symlink("busybox", dir.join("bin").join(tool)).expect("symlink");
        }
        let tar = dir.with_extension("tar");
        let ok = Command::new("tar").arg("-C").arg(&dir).args(["-cf"]).arg(&tar).arg(".").status().expect("tar");
        assert!(ok.success(), "tar of the rootfs failed");
        let ok = podman().args(["import", "-q"]).arg(&tar).arg(IMAGE).stdout(Stdio::null()).status().expect("podman import");
        assert!(ok.success(), "podman import failed");
    });
}

/// `podman run` of `args` in the test image; returns the child and the file
/// podman writes the container id to.
fn run_container(args: &[&str]) -> (std::process::Child, std::path::PathBuf) {
    ensure_image();
    let cidfile = std::env::temp_dir().join(format!("sensor-cid-{}-{}", std::process::id(), args.join("_").len()));
    let _ = std::fs::remove_file(&cidfile);
    let child = podman()
        .args(["run", "--rm", "--runtime", "runc", "--ulimit", "nofile=1000:1000", "--ulimit", "nproc=1000:1000"])
        .arg("--cidfile")
        .arg(&cidfile)
        .arg(IMAGE)
        .args(args)
        .stdout(Stdio::null())
        .spawn()
        .expect("podman run");
    (child, cidfile)
}

fn container_id(cidfile: &std::path::Path) -> String {
    for _ in 0..100 {
        if let Ok(id) = std::fs::read_to_string(cidfile) {
            if id.trim().len() == 64 {
                return id.trim().to_owned();
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("podman wrote no container id to {}", cidfile.display());
}

#[test]
fn exec_fork_and_exit_in_a_container_carry_its_id() {
    let sensor = Sensor::start("");
    let (mut child, cidfile) = run_container(&["/bin/sh", "-c", "/bin/echo container-exec-marker; exit 3"]);
    let status = child.wait().expect("wait podman");
    assert_eq!(status.code(), Some(3), "the container ran");
    let id = container_id(&cidfile);
    let exec = sensor.wait_for("exec of echo in the container", |v| {
        action(v) == "exec" && at(v, "process.args")[1] == "container-exec-marker"
    });
    assert_eq!(at(&exec, "container.id"), id.as_str(), "{exec}");
    assert_eq!(at(&exec, "container.runtime"), "podman");
    assert!(
        at(&exec, "sensor.cgroup.path").as_str().is_some_and(|p| p.contains(&id)),
        "the cgroup path names the container: {exec}"
    );
    // The shell's fork for echo, and its exit, belong to the container too.
    let fork = sensor.wait_for("fork in the container", |v| {
        action(v) == "fork" && at(v, "container.id") == id.as_str()
    });
    assert_eq!(at(&fork, "container.runtime"), "podman");
    let exit = sensor.wait_for("exit of the container's shell", |v| {
        action(v) == "exit" && at(v, "container.id") == id.as_str() && at(v, "process.exit_code") == 3
    });
    assert_eq!(at(&exit, "process.args")[2], "/bin/echo container-exec-marker; exit 3");
    // Host processes are not in a container.
    let host = sensor.wait_for("an exec on the host", |v| {
        action(v) == "exec" && at(v, "process.name") == "podman"
    });
    assert!(at(&host, "container").is_null(), "podman itself runs on the host: {host}");
    sensor.stop();
}

#[test]
fn a_container_started_before_the_sensor_is_recognised() {
    // The container's process exists before the sensor: its identity comes
    // from /proc, read when the sensor starts.
    let (mut child, cidfile) = run_container(&["/bin/sleep", "4"]);
    let id = container_id(&cidfile);
    let sensor = Sensor::start("");
    child.wait().expect("wait podman");
    let exit = sensor.wait_for("exit of the container's sleep", |v| {
        action(v) == "exit" && at(v, "process.name") == "sleep" && at(v, "process.args")[1] == "4"
    });
    assert_eq!(at(&exit, "container.id"), id.as_str(), "{exit}");
    assert_eq!(at(&exit, "container.runtime"), "podman");
    sensor.stop();
}
