//! `process.hash.sha256` from the real kernel: a copied binary is exec'd,
//! its hash is compared with coreutils' sha256sum of the same bytes.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use sensor_tests::{Sensor, action, at, pid_of, scratch_dir};

/// sha256sum's answer: an implementation independent of the sensor's.
fn sha256sum(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("run sha256sum");
    assert!(
        out.status.success(),
        "sha256sum {}: {out:?}",
        path.display()
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .split_whitespace()
        .next()
        .expect("a hash")
        .to_owned()
}

/// A copy of /bin/sleep at `dir/name`, with `padding` zero bytes appended
/// (the loader reads only what the ELF headers name: it still runs).
fn copy_sleep(dir: &Path, name: &str, padding: usize) -> PathBuf {
    let path = dir.join(name);
    let mut bytes = std::fs::read("/bin/sleep").expect("read /bin/sleep");
    bytes.resize(bytes.len() + padding, 0);
    let mut f = std::fs::File::create(&path).expect("create copy");
    f.write_all(&bytes).expect("write copy");
    f.set_permissions(std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    drop(f);
    path
}

fn run(path: &Path, seconds: &str) -> Child {
    Command::new(path)
        .arg(seconds)
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn the copy")
}

#[test]
fn exec_carries_the_sha256_of_what_ran_even_after_the_file_is_replaced() {
    let dir = scratch_dir("sensor-hash");
    let sensor = Sensor::start("[process]\nhash_executables = true\n");
    let path = copy_sleep(&dir, "hash-me", 0);
    let want = sha256sum(&path);
    // A second name for the same file: its next exec is a cache hit.
    let same = dir.join("same-inode");
    std::fs::hard_link(&path, &same).expect("hard link");
    let mut child = run(&path, "1");
    let pid = child.id() as u64;
    // Swap the binary at once, as an intruder covering tracks would: a new
    // file renamed onto the path. The events must still name what ran.
    let decoy = copy_sleep(&dir, "decoy", 4096);
    let decoy_hash = sha256sum(&decoy);
    assert_ne!(decoy_hash, want);
    std::fs::rename(&decoy, &path).expect("replace the binary");

    let exec = sensor.wait_for("exec of the copy", |v| {
        action(v) == "exec" && pid_of(v) == pid
    });
    // The first exec of a file waits a bounded moment for its hash; the
    // hashing thread may still be busy with the programs found at start.
    match at(&exec, "process.hash.sha256").as_str() {
        Some(h) => assert_eq!(h, want, "{exec}"),
        None => assert_eq!(at(&exec, "sensor.hash_unavailable"), "pending", "{exec}"),
    }
    child.wait().expect("wait");
    let exit = sensor.wait_for("exit of the copy", |v| {
        action(v) == "exit" && pid_of(v) == pid
    });
    assert_eq!(
        at(&exit, "process.hash.sha256"),
        want.as_str(),
        "later events carry it: {exit}"
    );
    assert!(at(&exit, "sensor.hash_unavailable").is_null(), "{exit}");

    // The same inode under its other name: known, so on the exec event.
    let mut child = run(&same, "1");
    let pid = child.id() as u64;
    let exec = sensor.wait_for("exec of the hard link", |v| {
        action(v) == "exec" && pid_of(v) == pid
    });
    assert_eq!(
        at(&exec, "process.hash.sha256"),
        want.as_str(),
        "a cache hit: {exec}"
    );
    // The parent (this test, found at start and hashed in the background)
    // is looked up, never waited for: when present it must be right.
    if let Some(parent) = at(&exec, "process.parent.hash.sha256").as_str() {
        assert_eq!(
            parent,
            sha256sum(&std::env::current_exe().expect("own path")),
            "{exec}"
        );
    }
    child.wait().expect("wait");

    // A shell that execs the copy: by the time the sensor handles the
    // shell's exec, /proc/PID/exe may already lead to the copy. The shell's
    // event must then carry no hash, never the copy's.
    let mut child = Command::new("/bin/sh")
        .args(["-c", "exec \"$0\" 0.5"])
        .arg(&same)
        .spawn()
        .expect("spawn sh");
    let pid = child.id() as u64;
    child.wait().expect("wait");
    let sh = sensor.wait_for("exec of the shell", |v| {
        action(v) == "exec" && pid_of(v) == pid && at(v, "process.name") == "sh"
    });
    match at(&sh, "process.hash.sha256").as_str() {
        Some(h) => assert_eq!(
            h,
            sha256sum(Path::new("/bin/sh")),
            "the shell's own, if any: {sh}"
        ),
        None => assert_eq!(at(&sh, "sensor.hash_unavailable"), "superseded", "{sh}"),
    }
    let copy = sensor.wait_for("exec of the copy by the shell", |v| {
        action(v) == "exec" && pid_of(v) == pid && at(v, "process.name") == "same-inode"
    });
    assert_eq!(at(&copy, "process.hash.sha256"), want.as_str(), "{copy}");

    // The replacement is a different file with its own hash.
    let mut child = run(&path, "1");
    let pid = child.id() as u64;
    child.wait().expect("wait");
    let exit = sensor.wait_for("exit of the replacement", |v| {
        action(v) == "exit" && pid_of(v) == pid
    });
    assert_eq!(
        at(&exit, "process.hash.sha256"),
        decoy_hash.as_str(),
        "{exit}"
    );
    sensor.stop();
}

#[test]
fn a_file_over_the_bound_is_not_hashed_and_is_counted() {
    let dir = scratch_dir("sensor-hash-big");
    let port = sensor_tests::rsyslog::free_port();
    let sensor = Sensor::start(&format!(
        "[process]\nhash_executables = true\nhash_max_bytes = 1048576\n\
         [telemetry]\nheartbeat_interval_s = 1\nmetrics_address = \"127.0.0.1:{port}\"\n"
    ));
    let small = copy_sleep(&dir, "small", 0);
    let big = copy_sleep(&dir, "big", 2 << 20);
    let mut a = run(&small, "0.5");
    let mut b = run(&big, "0.5");
    let (pa, pb) = (a.id() as u64, b.id() as u64);
    a.wait().expect("wait");
    b.wait().expect("wait");

    let exec = sensor.wait_for("exec of the big copy", |v| {
        action(v) == "exec" && pid_of(v) == pb
    });
    assert!(at(&exec, "process.hash").is_null(), "{exec}");
    assert_eq!(at(&exec, "sensor.hash_unavailable"), "too_large", "{exec}");
    let want = sha256sum(&small);
    let exec = sensor.wait_for("exec of the small copy", |v| {
        action(v) == "exec" && pid_of(v) == pa
    });
    match at(&exec, "process.hash.sha256").as_str() {
        Some(h) => assert_eq!(h, want, "{exec}"),
        None => assert_eq!(at(&exec, "sensor.hash_unavailable"), "pending", "{exec}"),
    }
    let exit = sensor.wait_for("exit of the small copy", |v| {
        action(v) == "exit" && pid_of(v) == pa
    });
    assert_eq!(at(&exit, "process.hash.sha256"), want.as_str(), "{exit}");
    let exit = sensor.wait_for("exit of the big copy", |v| {
        action(v) == "exit" && pid_of(v) == pb
    });
    assert_eq!(at(&exit, "sensor.hash_unavailable"), "too_large", "{exit}");

    let beat = sensor.wait_for("a heartbeat counting both", |v| {
        action(v) == "heartbeat"
            && at(v, "sensor.heartbeat.executable_hashes.too_large").as_u64() >= Some(1)
            && at(v, "sensor.heartbeat.executable_hashes.hashed").as_u64() >= Some(1)
    });
    let too_large = at(&beat, "sensor.heartbeat.executable_hashes.too_large")
        .as_u64()
        .expect("count");
    // The same count on /metrics, as of that heartbeat or a later one.
    let text = sensor_tests::metrics::get(port, "/metrics").1;
    let metric =
        sensor_tests::metrics::sample(&text, "sensor_executable_hashes{result=\"too_large\"}");
    assert!(
        metric.is_some_and(|m| m >= too_large as f64),
        "{metric:?} in {text}"
    );
    sensor.stop();
}

/// A binary rewritten in place, to the same size, its old modification
/// time put back (`touch -r`), is another program: its next exec carries
/// the new content's hash, not the one cached for the old. (Cached by
/// device, inode, size and modification time, it kept the old hash; the
/// change time, which only the kernel sets, tells.)
#[test]
fn a_binary_rewritten_in_place_with_its_old_mtime_is_hashed_again() {
    let dir = scratch_dir("sensor-hash-rewrite");
    let sensor = Sensor::start("[process]\nhash_executables = true\n");
    let path = copy_sleep(&dir, "rewritten", 4096);
    let before = sha256sum(&path);
    let hash_of_run = |what: &str| {
        let mut child = run(&path, "0.3");
        let pid = child.id() as u64;
        child.wait().expect("wait");
        // The exit event carries the hash once known (the exec's may be
        // pending).
        let exit = sensor.wait_for(what, |v| action(v) == "exit" && pid_of(v) == pid);
        at(&exit, "process.hash.sha256")
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("no hash: {exit}"))
    };
    assert_eq!(hash_of_run("exit of the first run"), before);

    // A byte of the padding changed (it still runs), in place.
    let modified = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .expect("mtime");
    let mut bytes = std::fs::read(&path).expect("read");
    *bytes.last_mut().expect("padding") = 1;
    let mut f = std::fs::File::options()
        .write(true)
        .open(&path)
        .expect("open in place");
    f.write_all(&bytes).expect("rewrite");
    f.set_times(std::fs::FileTimes::new().set_modified(modified))
        .expect("touch -r");
    drop(f);
    let after = sha256sum(&path);
    assert_ne!(after, before);
    assert_eq!(
        std::fs::metadata(&path).and_then(|m| m.modified()).ok(),
        Some(modified)
    );
    assert_eq!(hash_of_run("exit of the rewritten binary's run"), after);
}
