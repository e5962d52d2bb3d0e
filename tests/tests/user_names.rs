//! User and group names follow the host's account files: a uid with no
//! name gets one when an account is added, and loses it when the account
//! is deleted, while the sensor runs (its name cache is dropped when
//! /etc/passwd or /etc/group change).

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use sensor_tests::{Sensor, action, at, pid_of};

/// A host account made by useradd/groupadd for this test, always removed.
struct Account {
    name: String,
}

impl Account {
    fn create(name: &str, id: u32) -> Account {
        let account = Account {
            name: name.to_owned(),
        };
        let id = id.to_string();
        // Other tests add users too: shadow-utils' lock may be held.
        retry("groupadd", &["-g", &id, name]);
        retry(
            "useradd",
            &["-u", &id, "-g", &id, "-M", "-s", "/usr/sbin/nologin", name],
        );
        account
    }
}

fn retry(tool: &str, args: &[&str]) {
    for _ in 0..50 {
        if Command::new(tool)
            .args(args)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{tool} {args:?} kept failing");
}

impl Drop for Account {
    fn drop(&mut self) {
        let _ = Command::new("userdel")
            .arg(&self.name)
            .stderr(Stdio::null())
            .status();
        let _ = Command::new("groupdel")
            .arg(&self.name)
            .stderr(Stdio::null())
            .status();
    }
}

fn free_id() -> u32 {
    (47_000 + std::process::id() % 10_000..60_000)
        .find(|&id| {
            let known = |db: &str| {
                Command::new("getent")
                    .args([db, &id.to_string()])
                    .stdout(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            };
            !known("passwd") && !known("group")
        })
        .expect("a free uid")
}

/// Runs a short process as `id`:`id` and returns its exec event.
fn exec_as(sensor: &Sensor, id: u32) -> serde_json::Value {
    let mut child = Command::new("/bin/sleep")
        .arg("0.1")
        .uid(id)
        .gid(id)
        .spawn()
        .expect("spawn as the uid");
    let pid = child.id() as u64;
    child.wait().expect("wait");
    sensor.wait_for("exec as the test uid", |v| {
        action(v) == "exec" && pid_of(v) == pid
    })
}

#[test]
fn names_appear_and_vanish_with_the_account() {
    let id = free_id();
    let name = format!("sensit{}", std::process::id() % 100_000);
    // The cache is checked every counters interval: short here.
    let sensor = Sensor::start("[ebpf]\ncounters_interval_ms = 200\n");
    let before = exec_as(&sensor, id);
    assert_eq!(
        at(&before, "process.user.id"),
        id.to_string().as_str(),
        "{before}"
    );
    assert!(
        at(&before, "process.user.name").is_null(),
        "no account yet: {before}"
    );
    assert!(
        at(&before, "process.group.name").is_null(),
        "no group yet: {before}"
    );

    let account = Account::create(&name, id);
    std::thread::sleep(Duration::from_millis(600));
    let named = exec_as(&sensor, id);
    assert_eq!(
        at(&named, "process.user.name"),
        name.as_str(),
        "the new account is seen: {named}"
    );
    assert_eq!(at(&named, "process.group.name"), name.as_str(), "{named}");

    drop(account);
    std::thread::sleep(Duration::from_millis(600));
    let gone = exec_as(&sensor, id);
    assert!(
        at(&gone, "process.user.name").is_null(),
        "the deleted account is forgotten: {gone}"
    );
    sensor.stop();
}
