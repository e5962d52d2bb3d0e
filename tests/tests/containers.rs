//! Container identity from the kernel's cgroup path, with a real podman
//! container (image imported from a busybox rootfs: no registry needed).
//! `cargo xtask setup` installs podman, runc and busybox-static.

use std::process::{Command, Stdio};
use std::sync::Once;

use sensor_tests::{Sensor, action, at};

/// Bump the tag when the rootfs below changes: a machine keeps old images.
const IMAGE: &str = "localhost/sensor-test-busybox:3";
/// A user and group that exist only in the image.
const CONTAINER_USER: (&str, u32) = ("ctruser", 4242);
const CONTAINER_GROUP: (&str, u32) = ("ctrgroup", 4243);

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
        let exists = podman()
            .args(["image", "exists", IMAGE])
            .status()
            .expect("podman is installed (cargo xtask setup)");
        if exists.success() {
            return;
        }
        let dir = sensor_tests::scratch_dir("sensor-rootfs");
        std::fs::create_dir_all(dir.join("bin")).expect("rootfs dir");
        // (busybox-static: cargo xtask setup installs it.)
        sensor_tests::copy_executable("/bin/busybox", dir.join("bin/busybox"));
        for tool in ["sh", "echo", "true", "sleep", "cat", "touch", "chmod", "nc"] {
            std::os::unix::fs::symlink("busybox", dir.join("bin").join(tool)).expect("symlink");
        }
        std::fs::create_dir_all(dir.join("etc")).expect("etc");
        let (user, uid) = CONTAINER_USER;
        let (group, gid) = CONTAINER_GROUP;
        std::fs::write(
            dir.join("etc/passwd"),
            format!("root:x:0:0:root:/:/bin/sh\n{user}:x:{uid}:{gid}::/:/bin/sh\n"),
        )
        .expect("passwd");
        std::fs::write(
            dir.join("etc/group"),
            format!("root:x:0:\n{group}:x:{gid}:\n"),
        )
        .expect("group");
        let tar = dir.with_extension("tar");
        let ok = Command::new("tar")
            .arg("-C")
            .arg(&dir)
            .args(["-cf"])
            .arg(&tar)
            .arg(".")
            .status()
            .expect("tar");
        assert!(ok.success(), "tar of the rootfs failed");
        let ok = podman()
            .args(["import", "-q"])
            .arg(&tar)
            .arg(IMAGE)
            .stdout(Stdio::null())
            .status()
            .expect("podman import");
        assert!(ok.success(), "podman import failed");
    });
}

/// `podman run` of `args` in the test image; returns the child and the file
/// podman writes the container id to.
fn run_container(args: &[&str]) -> (std::process::Child, std::path::PathBuf) {
    run_container_with(&[], args)
}

fn run_container_with(
    options: &[&str],
    args: &[&str],
) -> (std::process::Child, std::path::PathBuf) {
    ensure_image();
    // Tests run in parallel: each container its own id file.
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let cidfile = std::env::temp_dir().join(format!("sensor-cid-{}-{n}", std::process::id()));
    let _ = std::fs::remove_file(&cidfile);
    let child = podman()
        .args([
            "run",
            "--rm",
            "--runtime",
            "runc",
            "--ulimit",
            "nofile=1000:1000",
            "--ulimit",
            "nproc=1000:1000",
        ])
        .arg("--cidfile")
        .arg(&cidfile)
        .args(options)
        .arg(IMAGE)
        .args(args)
        .stdout(Stdio::null())
        .spawn()
        .expect("podman run");
    (child, cidfile)
}

/// The id podman wrote to `cidfile`, which is then removed (podman's
/// `--rm` leaves it behind).
fn container_id(cidfile: &std::path::Path) -> String {
    for _ in 0..100 {
        if let Ok(id) = std::fs::read_to_string(cidfile) {
            if id.trim().len() == 64 {
                let _ = std::fs::remove_file(cidfile);
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
    let (mut child, cidfile) =
        run_container(&["/bin/sh", "-c", "/bin/echo container-exec-marker; exit 3"]);
    let status = child.wait().expect("wait podman");
    assert_eq!(status.code(), Some(3), "the container ran");
    let id = container_id(&cidfile);
    let exec = sensor.wait_for("exec of echo in the container", |v| {
        action(v) == "exec" && at(v, "process.args")[1] == "container-exec-marker"
    });
    assert_eq!(at(&exec, "container.id"), id.as_str(), "{exec}");
    assert_eq!(at(&exec, "container.runtime"), "podman");
    assert!(
        at(&exec, "sensor.cgroup.path")
            .as_str()
            .is_some_and(|p| p.contains(&id)),
        "the cgroup path names the container: {exec}"
    );
    // The shell's fork for echo, and its exit, belong to the container too.
    let fork = sensor.wait_for("fork in the container", |v| {
        action(v) == "fork" && at(v, "container.id") == id.as_str()
    });
    assert_eq!(at(&fork, "container.runtime"), "podman");
    let exit = sensor.wait_for("exit of the container's shell", |v| {
        action(v) == "exit"
            && at(v, "container.id") == id.as_str()
            && at(v, "process.exit_code") == 3
    });
    assert_eq!(
        at(&exit, "process.args")[2],
        "/bin/echo container-exec-marker; exit 3"
    );
    // Host processes are not in a container.
    let host = sensor.wait_for("an exec on the host", |v| {
        action(v) == "exec" && at(v, "process.name") == "podman"
    });
    assert!(
        at(&host, "container").is_null(),
        "podman itself runs on the host: {host}"
    );
    sensor.stop();
}

#[test]
fn a_container_started_before_the_sensor_is_recognised() {
    // The container's process exists before the sensor: its identity comes
    // from /proc, read when the sensor starts. It runs until killed once
    // the sensor is up (a timed sleep raced a slow start under load).
    let (mut child, cidfile) = run_container(&["/bin/sleep", "600"]);
    let id = container_id(&cidfile);
    wait_for_sleep_in(&id);
    let sensor = Sensor::start("");
    podman_kill(&id);
    child.wait().expect("wait podman");
    let exit = sensor.wait_for("exit of the container's sleep", |v| {
        action(v) == "exit" && at(v, "process.name") == "sleep" && at(v, "process.args")[1] == "600"
    });
    assert_eq!(at(&exit, "container.id"), id.as_str(), "{exit}");
    assert_eq!(at(&exit, "container.runtime"), "podman");
    sensor.stop();
}

/// Waits until the container `id`'s main process is running `sleep`.
fn wait_for_sleep_in(id: &str) {
    for _ in 0..300 {
        let out = podman()
            .args(["inspect", "--format", "{{.State.Pid}}", id])
            .output()
            .expect("podman inspect");
        let pid = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if pid != "0" && comm.trim() == "sleep" {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("the container {id} did not start its sleep within 30 s");
}

#[test]
fn ids_in_a_container_are_named_from_the_containers_own_accounts() {
    let (user, uid) = CONTAINER_USER;
    let (group, gid) = CONTAINER_GROUP;
    assert!(
        nix_free_lookup(uid).is_none(),
        "uid {uid} must not exist on the host for this test to mean anything"
    );
    let sensor = Sensor::start("");
    let ids = format!("{uid}:{gid}");
    let (mut child, cidfile) = run_container_with(
        &["--user", &ids],
        &["/bin/sh", "-c", "/bin/echo container-user-marker; sleep 2"],
    );
    child.wait().expect("wait podman");
    let id = container_id(&cidfile);
    let exec = sensor.wait_for("exec of echo as the container's user", |v| {
        action(v) == "exec" && at(v, "process.args")[1] == "container-user-marker"
    });
    assert_eq!(at(&exec, "container.id"), id.as_str());
    assert_eq!(at(&exec, "process.user.id"), uid.to_string().as_str());
    assert_eq!(at(&exec, "process.user.name"), user, "{exec}");
    assert_eq!(at(&exec, "process.group.name"), group, "{exec}");
    sensor.stop();
}

/// The host's passwd entry for `uid`, read from the file (the test crate
/// has no NSS binding; the sensor's own lookup is what is under test).
fn nix_free_lookup(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.get(2)? == &uid.to_string()).then(|| f[0].to_owned())
    })
}

/// Removes the named container when a test ends, also when it fails
/// (`--rm` alone would leave it running until its command ends).
struct Removed(String);

impl Drop for Removed {
    fn drop(&mut self) {
        let _ = podman()
            .args(["rm", "-f", "-t", "0", &self.0])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn podman_exec(name: &str, args: &[&str]) {
    let ok = podman()
        .arg("exec")
        .arg(name)
        .args(args)
        .stdout(Stdio::null())
        .status()
        .expect("podman exec");
    assert!(ok.success(), "podman exec {args:?} failed");
}

fn podman_kill(id: &str) {
    let killed = podman()
        .args(["kill", id])
        .stdout(Stdio::null())
        .status()
        .expect("podman kill");
    assert!(killed.success(), "podman kill {id}");
}

/// `container.*` names the container and its image, as podman has them.
fn assert_named(ev: &serde_json::Value, id: &str, name: &str) {
    assert_eq!(at(ev, "container.id"), id, "{ev}");
    assert_eq!(at(ev, "container.runtime"), "podman", "{ev}");
    assert_eq!(at(ev, "container.name"), name, "{ev}");
    assert_eq!(at(ev, "container.image.name"), IMAGE, "{ev}");
}

#[test]
fn events_in_a_container_carry_its_name_image_and_pod() {
    let pid = std::process::id();
    let name = format!("sensor-it-{pid}-pod");
    let pod = format!("web-{pid}");
    let uid = format!("6b1f0c2a-{:04x}-4c55-9a9e-{pid:012x}", pid & 0xffff);
    // podman splits --annotation like CSV: no quotes or commas in it.
    let note = "tab\there \u{e9} \\ {x} <&> $(id)";
    let _removed = Removed(name.clone());
    let sensor = Sensor::start("[telemetry]\nheartbeat_interval_s = 1\n");
    let annotations = [
        format!("io.kubernetes.pod.name={pod}"),
        "io.kubernetes.pod.namespace=shop".to_owned(),
        format!("io.kubernetes.pod.uid={uid}"),
        format!("sensor.test/note={note}"),
    ];
    let mut options = vec!["--name", &name];
    for a in &annotations {
        options.extend(["--annotation", a]);
    }
    // The shell's own commands: a setuid chmod, a refused connect, a marker
    // exec; then it waits for `podman exec`.
    let script = "touch /x; chmod 4755 /x; nc 127.0.0.1 1 </dev/null 2>/dev/null; /bin/echo pod-marker; sleep 5";
    let (mut child, cidfile) = run_container_with(&options, &["/bin/sh", "-c", script]);
    let id = container_id(&cidfile);

    let exec = sensor.wait_for("exec of echo in the pod", |v| {
        action(v) == "exec" && at(v, "process.args")[1] == "pod-marker"
    });
    assert_named(&exec, &id, &name);
    assert_eq!(at(&exec, "orchestrator.type"), "kubernetes", "{exec}");
    assert_eq!(at(&exec, "orchestrator.namespace"), "shop");
    assert_eq!(at(&exec, "orchestrator.resource.type"), "pod");
    assert_eq!(at(&exec, "orchestrator.resource.name"), pod.as_str());
    assert_eq!(at(&exec, "orchestrator.resource.id"), uid.as_str());
    // The user's annotations are the container's labels, byte-exact.
    assert_eq!(
        at(&exec, "container.labels")["sensor.test/note"],
        note,
        "{exec}"
    );
    assert_eq!(
        at(&exec, "container.labels")["io.kubernetes.pod.name"],
        pod.as_str()
    );

    let chmod = sensor.wait_for("chmod in the pod", |v| {
        action(v) == "chmod" && at(v, "container.id") == id.as_str()
    });
    assert_named(&chmod, &id, &name);
    assert_eq!(at(&chmod, "orchestrator.resource.name"), pod.as_str());
    let connect = sensor.wait_for("connect in the pod", |v| {
        action(v) == "connect" && at(v, "container.id") == id.as_str()
    });
    assert_named(&connect, &id, &name);
    assert_eq!(at(&connect, "destination.port"), 1, "{connect}");
    assert_eq!(at(&connect, "orchestrator.namespace"), "shop");

    // A process entered from outside with `podman exec`.
    podman_exec(&name, &["/bin/echo", "pod-exec-marker"]);
    let entered = sensor.wait_for("podman exec into the pod", |v| {
        action(v) == "exec" && at(v, "process.args")[1] == "pod-exec-marker"
    });
    assert_named(&entered, &id, &name);
    assert_eq!(at(&entered, "orchestrator.resource.name"), pod.as_str());

    // Host processes have neither.
    let host = sensor.wait_for("podman on the host", |v| {
        action(v) == "exec" && at(v, "process.name") == "podman"
    });
    assert!(at(&host, "orchestrator").is_null(), "{host}");
    child.wait().expect("wait podman");
    // Lookups are counted in the heartbeat: this container's at least.
    let beat = sensor.wait_for("a heartbeat counting the lookup", |v| {
        action(v) == "heartbeat"
            && at(v, "sensor.heartbeat.container_lookups.found").as_u64() >= Some(1)
    });
    assert!(
        at(&beat, "sensor.heartbeat.container_lookups.cached").as_u64() >= Some(1),
        "{beat}"
    );
    sensor.stop();
}

#[test]
fn a_container_started_before_the_sensor_is_named_too() {
    let name = format!("sensor-it-{}-early", std::process::id());
    let _removed = Removed(name.clone());
    // Runs until killed once the sensor is up: a timed sleep raced a slow
    // start under CI load (the container had stopped before the exec).
    let (mut child, cidfile) = run_container_with(&["--name", &name], &["/bin/sleep", "600"]);
    let id = container_id(&cidfile);
    wait_for_sleep_in(&id);
    let sensor = Sensor::start("");
    podman_exec(&name, &["/bin/echo", "early-exec-marker"]);
    let entered = sensor.wait_for("podman exec into the early container", |v| {
        action(v) == "exec" && at(v, "process.args")[1] == "early-exec-marker"
    });
    assert_named(&entered, &id, &name);
    assert!(
        at(&entered, "orchestrator").is_null(),
        "no pod annotations: {entered}"
    );
    // Its first process, found in /proc at start, is named when it exits.
    podman_kill(&id);
    let exit = sensor.wait_for("exit of the early container's sleep", |v| {
        action(v) == "exit"
            && at(v, "process.name") == "sleep"
            && at(v, "container.id") == id.as_str()
    });
    assert_named(&exit, &id, &name);
    child.wait().expect("wait podman");
    sensor.stop();
}

#[test]
fn a_container_no_runtime_knows_keeps_its_id_and_the_failed_lookup_is_counted() {
    // runc alone, its state in a scratch directory and its cgroup named as
    // podman would: the id is in the cgroup path, but no runtime file on
    // the host knows it (as with an unreachable or unknown runtime).
    let dir = sensor_tests::scratch_dir("sensor-unknown-runtime");
    let bin = dir.join("bundle/rootfs/bin");
    std::fs::create_dir_all(&bin).expect("rootfs");
    std::fs::create_dir_all(dir.join("state")).expect("state dir");
    sensor_tests::copy_executable("/bin/busybox", bin.join("busybox"));
    for tool in ["sh", "echo"] {
        std::os::unix::fs::symlink("busybox", bin.join(tool)).expect("symlink");
    }
    let ok = Command::new("runc")
        .arg("spec")
        .current_dir(dir.join("bundle"))
        .status()
        .expect("runc is installed");
    assert!(ok.success());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let id = format!("{:032x}{:032x}", nanos, std::process::id());
    let config_path = dir.join("bundle/config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config_path).expect("config.json"))
            .expect("runc spec JSON");
    config["process"]["terminal"] = false.into();
    config["process"]["args"] =
        serde_json::json!(["/bin/sh", "-c", "/bin/echo unknown-runtime-marker"]);
    // Not permitted on this build machine (see TOOLCHAIN.md).
    config["process"].as_object_mut().unwrap().remove("rlimits");
    config["linux"]["cgroupsPath"] = format!("/libpod_parent/libpod-{id}").into();
    std::fs::write(&config_path, config.to_string()).expect("write config.json");

    let port = sensor_tests::rsyslog::free_port();
    let sensor = Sensor::start(&format!(
        "[telemetry]\nheartbeat_interval_s = 1\nmetrics_address = \"127.0.0.1:{port}\"\n"
    ));
    let ok = Command::new("runc")
        .arg("--root")
        .arg(dir.join("state"))
        .args(["run", "-b"])
        .arg(dir.join("bundle"))
        .arg(format!("sensor-it-{}", std::process::id()))
        .stdout(Stdio::null())
        .status()
        .expect("runc run");
    assert!(ok.success(), "runc run failed");
    let exec = sensor.wait_for("exec in the unknown container", |v| {
        action(v) == "exec" && at(v, "process.args")[1] == "unknown-runtime-marker"
    });
    assert_eq!(at(&exec, "container.id"), id.as_str(), "{exec}");
    assert!(at(&exec, "container.name").is_null(), "{exec}");
    assert!(at(&exec, "container.image").is_null(), "{exec}");
    let beat = sensor.wait_for("a heartbeat counting the failed lookup", |v| {
        action(v) == "heartbeat"
            && at(v, "sensor.heartbeat.container_lookups.failed").as_u64() >= Some(1)
    });
    assert!(
        at(&beat, "sensor.heartbeat.container_lookups.cached").as_u64() >= Some(1),
        "{beat}"
    );
    // The same count on /metrics, as of that heartbeat.
    let text = sensor_tests::metrics::get(port, "/metrics").1;
    let failed =
        sensor_tests::metrics::sample(&text, "sensor_container_lookups{result=\"failed\"}");
    assert!(failed.is_some_and(|n| n >= 1.0), "{text}");
    sensor.stop();
}

/// podman's API service on its default socket, for the duration of a test
/// (podman keeps `--label`s in its database; the sensor asks the service).
struct PodmanService {
    child: Option<std::process::Child>,
}

const PODMAN_SOCKET: &str = "/run/podman/podman.sock";

impl PodmanService {
    fn start() -> PodmanService {
        if answers_ping() {
            return PodmanService { child: None }; // one runs already: use it
        }
        let _ = std::fs::remove_file(PODMAN_SOCKET);
        std::fs::create_dir_all("/run/podman").expect("/run/podman");
        let child = podman()
            .args([
                "system",
                "service",
                "--time",
                "0",
                &format!("unix://{PODMAN_SOCKET}"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("podman system service");
        let service = PodmanService { child: Some(child) };
        // Answering, not only listening: its first request is slow (it
        // sets its runtime up then), and the sensor waits 250 ms for an
        // answer before it names the container without the API's labels.
        for _ in 0..300 {
            if answers_ping() {
                return service;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("podman system service did not answer on {PODMAN_SOCKET}");
    }
}

/// Whether the API service at [`PODMAN_SOCKET`] answers `GET /_ping`.
fn answers_ping() -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::os::unix::net::UnixStream::connect(PODMAN_SOCKET) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(10)));
    let mut answer = String::new();
    s.write_all(b"GET /_ping HTTP/1.0\r\nHost: d\r\n\r\n")
        .is_ok()
        && s.read_to_string(&mut answer).is_ok()
        && answer.starts_with("HTTP/1.")
        && answer.contains(" 200 ")
}

impl Drop for PodmanService {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_file(PODMAN_SOCKET);
        }
    }
}

#[test]
fn podman_labels_come_from_its_api_service() {
    let name = format!("sensor-it-{}-labels", std::process::id());
    let _removed = Removed(name.clone());
    let _service = PodmanService::start();
    let sensor = Sensor::start("");
    let team = format!("shop-{}", std::process::id());
    let label = format!("team={team}");
    let (mut child, cidfile) = run_container_with(
        &["--name", &name, "--label", &label],
        &["/bin/sh", "-c", "/bin/echo label-marker"],
    );
    child.wait().expect("wait podman");
    let id = container_id(&cidfile);
    let exec = sensor.wait_for("exec in the labelled container", |v| {
        action(v) == "exec" && at(v, "process.args")[1] == "label-marker"
    });
    assert_named(&exec, &id, &name);
    // Under load (CI, two CPUs, the other container tests beside it) the
    // service can take longer than the sensor waits: the event must then
    // say its labels are missing, never pass them off as complete.
    let missed = at(&exec, "sensor.unavailable")
        .as_array()
        .is_some_and(|a| a.iter().any(|f| f == "container.labels"));
    if missed {
        eprintln!("podman's API service did not answer in time: {exec}");
        assert!(at(&exec, "container.labels")["team"].is_null(), "{exec}");
    } else {
        assert_eq!(
            at(&exec, "container.labels")["team"],
            team.as_str(),
            "{exec}"
        );
    }
    sensor.stop();
}
