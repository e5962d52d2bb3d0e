//! The sensor as the kernel's audit daemon: it registers, sets the kernel
//! up, turns real sshd and su logins into events, reports tamper, and puts
//! everything back when it stops.

use sensor_tests::audit::{
    Sshd, TestUser, audit_lock, audit_status, foreign_audit_daemon, set_audit_status, ssh_scenario,
    su_on_pty, su_scenario,
};
use sensor_tests::{Sensor, action, at};
use serde_json::Value;

fn skip_if_foreign_daemon() -> bool {
    if let Some(pid) = foreign_audit_daemon() {
        eprintln!(
            "skipped: pid {pid} is the kernel's audit daemon; the sensor cannot be one beside it"
        );
        return true;
    }
    false
}

/// Registers, configures, and restores exactly what was there before, on
/// SIGTERM and on SIGINT.
#[test]
fn daemon_mode_registers_and_restores_the_previous_state() {
    let _lock = audit_lock();
    if skip_if_foreign_daemon() {
        return;
    }
    let original = audit_status();
    for signal in [libc::SIGTERM, libc::SIGINT] {
        // A distinctive previous state, so that "restored" cannot be
        // confused with "reset to defaults".
        let before = sensor::source::audit::netlink::Status {
            enabled: 0,
            backlog_limit: 321,
            backlog_wait_time: 1234,
            ..original
        };
        set_audit_status(&before);
        let rules_before = list_rules();
        let sensor = Sensor::start("[audit]\nmode = \"daemon\"\nbacklog_limit = 5000\n");
        let running = audit_status();
        // With no rules anywhere, new tasks are kept out of syscall
        // auditing; beside someone's rules, the rules are left alone.
        let want: Vec<String> = if rules_before.is_empty() {
            vec!["-a never,task".into()]
        } else {
            rules_before.clone()
        };
        assert_eq!(list_rules(), want, "the rules while the sensor runs");
        assert_eq!(
            running.pid,
            sensor.pid(),
            "the sensor is the audit daemon: {running:?}"
        );
        assert_eq!(running.enabled, 1, "{running:?}");
        assert_eq!(running.backlog_limit, 5000, "{running:?}");
        assert_eq!(
            running.backlog_wait_time, 0,
            "no task ever waits for the sensor: {running:?}"
        );
        assert!(
            sensor
                .stderr()
                .iter()
                .any(|l| l.contains("sensor started") && l.contains("daemon")),
            "the start line names the mode: {:?}",
            sensor.stderr()
        );
        sensor.stop_with(signal);
        let after = audit_status();
        assert_eq!(
            after.pid, 0,
            "unregistered after signal {signal}: {after:?}"
        );
        assert_eq!(
            (after.enabled, after.backlog_limit, after.backlog_wait_time),
            (
                before.enabled,
                before.backlog_limit,
                before.backlog_wait_time
            ),
            "previous state restored after signal {signal}"
        );
        assert_eq!(
            list_rules(),
            rules_before,
            "rules as before after signal {signal}"
        );
    }
    set_audit_status(&original);
}

#[test]
fn ssh_and_su_logins_as_audit_daemon() {
    let _lock = audit_lock();
    if skip_if_foreign_daemon() {
        return;
    }
    let original = audit_status();
    // utmp = "always": btmp's record of the failures as a cross-check.
    let sensor = Sensor::start("[audit]\nmode = \"daemon\"\nutmp = \"always\"\n");
    let user = TestUser::create();
    let added = sensor.wait_for("the test user's creation", |v| {
        action(v) == "added_user_account" && at(v, "user.name") == user.name.as_str()
    });
    assert_eq!(at(&added, "event.category")[0], "iam");
    let sshd = Sshd::start(&user.name);
    ssh_scenario(&sensor, &sshd, &user);
    su_scenario(&sensor, &user);
    // The cross-check: btmp has the same three failed ssh logins.
    let btmp = sensor.wait_for_count("the failed ssh logins in btmp", 3, |v| {
        at(v, "event.module") == "utmp"
            && at(v, "user.name") == user.name.as_str()
            && at(v, "sensor.tty") == "ssh:notty"
    });
    assert_eq!(btmp.len(), 3, "btmp and audit agree: {btmp:?}");
    for v in &btmp {
        assert_eq!(at(v, "event.outcome"), "failure", "{v}");
        assert_eq!(at(v, "source.ip"), "127.0.0.1", "{v}");
    }
    drop(sshd);
    sensor.stop();
    drop(user);
    let after = audit_status();
    assert_eq!(
        (after.pid, after.enabled),
        (0, original.enabled),
        "restored: {after:?}"
    );
}

/// A change to the audit state by someone else is an alert; the sensor's
/// own changes at start are not.
#[test]
fn audit_changes_by_others_are_tamper_events() {
    let _lock = audit_lock();
    if skip_if_foreign_daemon() {
        return;
    }
    let original = audit_status();
    let sensor = Sensor::start("[audit]\nmode = \"daemon\"\n");
    auditctl(["-b", "4321"]);
    let tamper = sensor.wait_for("the backlog change by auditctl", |v| {
        action(v) == "audit_config_changed" && is_field(v, "audit_backlog_limit", "4321")
    });
    assert_eq!(at(&tamper, "event.kind"), "alert", "{tamper}");
    assert_eq!(at(&tamper, "sensor.audit.tamper"), true, "{tamper}");
    let events = sensor.stop();
    let own: Vec<&Value> = events
        .iter()
        .filter(|v| {
            action(v) == "audit_config_changed" && is_field(v, "audit_backlog_limit", "8192")
        })
        .collect();
    assert!(
        !own.is_empty(),
        "the sensor's own backlog change is reported"
    );
    for v in own {
        assert_eq!(
            at(v, "event.kind"),
            "event",
            "the sensor's own change is not tamper: {v}"
        );
        assert!(at(v, "sensor.audit.tamper").is_null(), "{v}");
    }
    assert_eq!(
        audit_status().backlog_limit,
        original.backlog_limit,
        "restored after the tamper too"
    );
}

/// With no rules, the sensor's `-a never,task` keeps the tasks started
/// while it is in out of syscall auditing (they would pay for it on every
/// syscall); once someone else adds a rule, it is out and their rule sees
/// the tasks started from then on. Behaviour, not only the rule list: a
/// task started while it was in makes no syscall record under the new
/// rule, one started after does.
#[test]
fn no_rules_keep_new_tasks_out_of_syscall_auditing_until_someone_adds_one() {
    let _lock = audit_lock();
    if skip_if_foreign_daemon() {
        return;
    }
    let original = audit_status();
    set_audit_status(&sensor::source::audit::netlink::Status {
        enabled: 0,
        ..original
    });
    let rules_before = list_rules();
    if !rules_before.is_empty() {
        eprintln!("skipped: the kernel has audit rules already: {rules_before:?}");
        set_audit_status(&original);
        return;
    }
    let dir = sensor_tests::scratch_dir("sensor-ctx");
    let (early, late) = (dir.join("early-fifo"), dir.join("late-fifo"));
    let sensor = Sensor::start("[audit]\nmode = \"daemon\"\n");
    assert_eq!(list_rules(), ["-a never,task"]);
    // Started while the rule is in: it waits for a line, then makes a fifo
    // itself (a shell would fork a new task for mkfifo).
    let mut started_early = std::process::Command::new("perl")
        .arg("-e")
        .arg("<STDIN>; require POSIX; POSIX::mkfifo($ARGV[0], 0600) or die $!")
        .arg(&early)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("spawn perl");
    let rule = "-a always,exit -F arch=b64 -S mknodat -k sensor_test_ctx";
    auditctl(rule.split(' '));
    // The sensor sees the change at its next status poll (every second).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while list_rules() != [rule] {
        assert!(
            std::time::Instant::now() < deadline,
            "never,task still in beside the new rule: {:?}",
            list_rules()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    use std::io::Write;
    let mut stdin = started_early.stdin.take().expect("stdin");
    stdin.write_all(b"go\n").expect("write");
    drop(stdin);
    assert!(
        started_early.wait().expect("wait").success(),
        "early mkfifo"
    );
    let late_ok = std::process::Command::new("mkfifo")
        .arg(&late)
        .status()
        .expect("mkfifo");
    assert!(late_ok.success(), "late mkfifo");
    let is_mknod_of = |v: &Value, path: &std::path::Path| {
        action(v) == "syscall"
            && at(v, "sensor.audit.records").as_array().is_some_and(|rs| {
                rs.iter()
                    .any(|r| r["type"] == "SYSCALL" && r["fields"]["key"] == "sensor_test_ctx")
                    && rs.iter().any(|r| {
                        r["type"] == "PATH" && r["fields"]["name"] == path.display().to_string()
                    })
            })
    };
    sensor.wait_for("the late task's mknodat under the new rule", |v| {
        is_mknod_of(v, &late)
    });
    let events = sensor.stop();
    let rules_after = list_rules();
    auditctl(std::iter::once("-d").chain(rule.split(' ').skip(1)));
    set_audit_status(&original);
    // The kernel sends records in order: the early task's would have come
    // before the late one's.
    assert!(
        !events.iter().any(|v| is_mknod_of(v, &early)),
        "the task started while never,task was in has no syscall audit context"
    );
    assert_eq!(
        rules_after,
        [rule],
        "the other party's rule stays after the sensor's stop"
    );
}

/// Rules from the config are loaded in daemon mode, produce events, and
/// the kernel's previous rules are back after the stop.
#[test]
fn configured_rules_are_loaded_and_removed() {
    let _lock = audit_lock();
    if skip_if_foreign_daemon() {
        return;
    }
    let dir = sensor_tests::scratch_dir("sensor-rules");
    let file = dir.join("watched");
    std::fs::write(&file, "x").expect("write");
    // A rule someone had before the sensor: `-D` in the sensor's rules
    // removes it while the sensor runs; the stop puts it back.
    let previous = "-a always,exit -F arch=b64 -S mknodat -k sensor_test_previous";
    auditctl(previous.split(' '));
    let before = list_rules();
    assert!(
        before.iter().any(|r| r == previous),
        "sensor audit-rules shows the rule as auditctl wrote it: {before:?}"
    );
    let sensor = Sensor::start(&format!(
        "[audit]\nmode = \"daemon\"\nrules = [\"-D\", \"-w {} -p wa -k sensor_test_watch\", \
         \"-a always,exit -F arch=b64 -S execve -F ppid={} -k sensor_test_exec\"]\n",
        file.display(),
        std::process::id()
    ));
    let listed = list_rules();
    assert!(
        listed
            .iter()
            .any(|r| r.contains(&file.display().to_string()) && r.contains("sensor_test_watch")),
        "the kernel lists the rule: {listed:?}"
    );
    assert!(
        !listed.iter().any(|r| r.contains("sensor_test_previous")),
        "-D removed the previous rule: {listed:?}"
    );
    assert!(
        !listed.iter().any(|r| r == "-a never,task"),
        "configured rules are never kept from their tasks: {listed:?}"
    );
    std::fs::write(&file, "changed").expect("write watched file");
    // The syscall event of the write (not the rule's own CONFIG_CHANGE,
    // which names the key too).
    let ev = sensor.wait_for("the watched file's write", |v| {
        action(v) == "syscall"
            && at(v, "sensor.audit.records").as_array().is_some_and(|rs| {
                rs.iter()
                    .any(|r| r["type"] == "SYSCALL" && r["fields"]["key"] == "sensor_test_watch")
            })
    });
    assert_eq!(
        at(&ev, "process.pid").as_u64(),
        Some(u64::from(std::process::id())),
        "the writer: {ev}"
    );
    // An exec under the execve rule: the kernel hex-encodes the odd
    // argument and splits the long one into chunks; the event has them exact.
    use std::os::unix::ffi::OsStrExt;
    let args: Vec<Vec<u8>> = vec![
        b"two words".to_vec(),
        b"\xff\xfe\\".to_vec(),
        vec![b'x'; 9000],
    ];
    let child = std::process::Command::new("/bin/echo")
        .args(args.iter().map(|a| std::ffi::OsStr::from_bytes(a)))
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run echo");
    assert!(child.success());
    let exec = sensor.wait_for("the exec under the execve rule", |v| {
        action(v) == "executed" && at(v, "sensor.audit.args")[0] == "/bin/echo"
    });
    let got: Vec<Vec<u8>> = at(&exec, "sensor.audit.args")
        .as_array()
        .expect("args")
        .iter()
        .enumerate()
        .map(|(i, a)| sensor_tests::field_bytes(&exec, &format!("sensor.audit.args[{i}]"), a))
        .collect();
    let mut want = vec![b"/bin/echo".to_vec()];
    want.extend(args);
    assert!(got == want, "argv byte-exact: {exec}");
    assert_eq!(at(&exec, "event.category")[0], "process");
    sensor.stop();
    assert_eq!(list_rules(), before, "the kernel's rules are as before");
    auditctl(std::iter::once("-d").chain(previous.split(' ').skip(1)));
}

/// Runs auditctl with `args`; its stderr in the panic if it fails.
fn auditctl<'a>(args: impl IntoIterator<Item = &'a str>) {
    let args: Vec<&str> = args.into_iter().collect();
    let out = std::process::Command::new("auditctl")
        .args(&args)
        .output()
        .expect("run auditctl");
    assert!(
        out.status.success(),
        "auditctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn list_rules() -> Vec<String> {
    let out = std::process::Command::new(sensor_tests::sensor_bin())
        .arg("audit-rules")
        .output()
        .expect("sensor audit-rules");
    assert!(
        out.status.success(),
        "sensor audit-rules: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn is_field(v: &Value, key: &str, value: &str) -> bool {
    at(v, "sensor.audit.records")
        .as_array()
        .is_some_and(|rs| rs.iter().any(|r| r["fields"][key] == value))
}

#[test]
fn su_helper_needs_a_prompt() {
    // The pty helper itself: su as nobody to a user with a wrong password
    // fails (and is not something a sensor test can pass by accident).
    let _lock = audit_lock();
    let user = TestUser::create();
    let (_pid, ok, text) = su_on_pty(65534, &user.name, "definitely-wrong");
    assert!(!ok, "su with a wrong password must fail: {text}");
    assert!(text.contains("Authentication failure"), "{text}");
}

/// Records the kernel drops (here: over a rate limit) are counted by the
/// kernel; the sensor reports them in the stream as a loss event.
#[test]
fn kernel_audit_losses_are_reported_in_stream() {
    let _lock = audit_lock();
    if skip_if_foreign_daemon() {
        return;
    }
    let sensor = Sensor::start("[audit]\nmode = \"daemon\"\n");
    let lost_before = audit_status().lost;
    let sh = |script: &str| {
        let out = std::process::Command::new("sh")
            .args(["-c", script])
            .output()
            .expect("sh");
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // One record per second allowed, a hundred sent at once.
    sh(
        "auditctl -r 1 >/dev/null && for i in $(seq 100); do auditctl -m sensor-loss-test-$i; done; auditctl -r 0 >/dev/null",
    );
    let lost_after = audit_status().lost;
    assert!(
        lost_after > lost_before,
        "the kernel dropped records: {lost_before} -> {lost_after}"
    );
    let events = sensor.wait_for_count("an audit loss report", 1, |v| {
        action(v) == "lost"
            && at(v, "sensor.lost.source") == "audit"
            && at(v, "sensor.lost.kind") == "kernel"
    });
    let reported: u64 = events
        .iter()
        .filter_map(|v| at(v, "sensor.lost.count").as_u64())
        .sum();
    assert!(reported >= 1, "{events:?}");
    let events = sensor.stop();
    let total: u64 = events
        .iter()
        .filter(|v| action(v) == "lost" && at(v, "sensor.lost.source") == "audit")
        .filter_map(|v| at(v, "sensor.lost.count").as_u64())
        .sum();
    assert_eq!(
        total,
        u64::from(lost_after - lost_before),
        "every record the kernel dropped is reported, once"
    );
}

/// The kernel's audit counters come out as metric events.
#[test]
fn audit_status_metrics_report_the_kernel_counters() {
    let _lock = audit_lock();
    if skip_if_foreign_daemon() {
        return;
    }
    let port = sensor_tests::rsyslog::free_port();
    let sensor = Sensor::start(&format!(
        "[audit]\nmode = \"daemon\"\nbacklog_limit = 6000\nmetrics_interval_ms = 1000\n\
         [telemetry]\nmetrics_address = \"127.0.0.1:{port}\"\n"
    ));
    let m = sensor.wait_for("an audit_status metric", |v| action(v) == "audit_status");
    assert_eq!(at(&m, "event.kind"), "metric", "{m}");
    assert_eq!(at(&m, "sensor.audit_status.mode"), "daemon", "{m}");
    assert_eq!(
        at(&m, "sensor.audit_status.daemon_pid").as_u64(),
        Some(u64::from(sensor.pid())),
        "{m}"
    );
    assert_eq!(at(&m, "sensor.audit_status.backlog_limit"), 6000, "{m}");
    assert_eq!(at(&m, "sensor.audit_status.enabled"), 1, "{m}");
    assert_eq!(at(&m, "sensor.audit_status.backlog_wait_time"), 0, "{m}");
    assert!(
        at(&m, "sensor.audit_status.lost").is_u64()
            && at(&m, "sensor.audit_status.backlog").is_u64(),
        "{m}"
    );
    // The same counters on /metrics, as of the last status read.
    let text = sensor_tests::metrics::get(port, "/metrics").1;
    let series =
        |c: &str| sensor_tests::metrics::sample(&text, &format!("sensor_audit{{counter=\"{c}\"}}"));
    assert_eq!(series("backlog_limit"), Some(6000.0), "{text}");
    assert_eq!(series("enabled"), Some(1.0), "{text}");
    assert!(
        series("lost").is_some() && series("backlog").is_some(),
        "{text}"
    );
    sensor.stop();
}

/// A mistake in the configured rules stops the start, names the rule, and
/// leaves the kernel untouched.
#[test]
fn a_bad_rule_stops_the_start_before_the_kernel_is_touched() {
    let _lock = audit_lock();
    if skip_if_foreign_daemon() {
        return;
    }
    let before = audit_status();
    let dir = sensor_tests::scratch_dir("sensor-bad-rule");
    let cfg = dir.join("sensor.toml");
    std::fs::write(
        &cfg,
        format!(
            "[agent]\nstate_dir = \"{}\"\n[audit]\nmode = \"daemon\"\nrules = [\"-a always,exit -S nosuchcall\"]\n",
            dir.display()
        ),
    )
    .expect("write config");
    let out = std::process::Command::new(sensor_tests::sensor_bin())
        .args(["run", "--config"])
        .arg(&cfg)
        .output()
        .expect("run sensor");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("audit.rules[0]") && stderr.contains("unknown syscall nosuchcall"),
        "{stderr}"
    );
    let after = audit_status();
    assert_eq!(
        (
            after.pid,
            after.enabled,
            after.backlog_limit,
            after.backlog_wait_time
        ),
        (
            before.pid,
            before.enabled,
            before.backlog_limit,
            before.backlog_wait_time
        ),
        "the kernel is as before"
    );
}
