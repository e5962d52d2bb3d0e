//! The sensor beside a running auditd: it reads the multicast log group,
//! leaves auditd the audit daemon, and sees the same logins.

use std::process::Command;

use sensor_tests::audit::{
    Auditd, Sshd, TestUser, audit_lock, audit_status, foreign_audit_daemon, ssh_scenario,
    su_scenario,
};
use sensor_tests::{Sensor, sensor_bin};

#[test]
fn ssh_and_su_logins_beside_auditd() {
    let _lock = audit_lock();
    if let Some(pid) = foreign_audit_daemon() {
        eprintln!(
            "skipped: pid {pid} is already the audit daemon; this test starts its own auditd"
        );
        return;
    }
    let before = audit_status();
    let auditd = Auditd::start();
    // The default mode, auto, must choose read-only by itself.
    let sensor = Sensor::start("[audit]\nmode = \"auto\"\n");
    assert!(
        sensor
            .stderr()
            .iter()
            .any(|l| l.contains("sensor started") && l.contains("readonly")),
        "auto mode chose read-only beside auditd: {:?}",
        sensor.stderr()
    );
    assert_eq!(
        audit_status().pid,
        auditd.pid(),
        "auditd stays the audit daemon"
    );
    let user = TestUser::create();
    let sshd = Sshd::start(&user.name);
    ssh_scenario(&sensor, &sshd, &user);
    su_scenario(&sensor, &user);
    drop(sshd);
    sensor.stop();
    assert_eq!(
        audit_status().pid,
        auditd.pid(),
        "the sensor's exit leaves auditd registered"
    );
    // Cross-check with auditd's own log: it saw the same failed logins.
    let log = auditd.log();
    let failures = log
        .lines()
        .filter(|l| {
            l.contains("type=USER_AUTH")
                && l.contains(&format!("acct=\"{}\"", user.name))
                && l.contains("exe=\"/usr/sbin/sshd\"")
                && l.contains("res=failed")
        })
        .count();
    assert_eq!(
        failures, 3,
        "auditd logged the three failed ssh logins too:\n{log}"
    );
    drop(user);
    drop(auditd);
    let after = audit_status();
    assert_eq!(
        (after.pid, after.enabled),
        (0, before.enabled),
        "auditd stopped, state as before: {after:?}"
    );
}

#[test]
fn daemon_mode_beside_auditd_is_refused_with_a_reason() {
    let _lock = audit_lock();
    if let Some(pid) = foreign_audit_daemon() {
        eprintln!(
            "skipped: pid {pid} is already the audit daemon; this test starts its own auditd"
        );
        return;
    }
    let auditd = Auditd::start();
    let dir = sensor_tests::scratch_dir("sensor-audit-refused");
    let cfg = dir.join("sensor.toml");
    std::fs::write(
        &cfg,
        format!(
            "[agent]\nstate_dir = \"{}\"\n[audit]\nmode = \"daemon\"\n",
            dir.display()
        ),
    )
    .expect("write config");
    let out = Command::new(sensor_bin())
        .args(["run", "--config"])
        .arg(&cfg)
        .output()
        .expect("run sensor");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the sensor must refuse: {stderr}");
    assert!(
        stderr.contains(&format!(
            "pid {} is the kernel's audit daemon",
            auditd.pid()
        )),
        "the error names the running daemon: {stderr}"
    );
    assert_eq!(audit_status().pid, auditd.pid(), "auditd undisturbed");
}
