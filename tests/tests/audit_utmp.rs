//! Without the audit subsystem, logins still come out of wtmp and btmp,
//! written by the real sshd.

use sensor_tests::audit::{Sshd, TestUser};
use sensor_tests::{Sensor, action, at};

#[test]
fn ssh_logins_from_wtmp_and_btmp_when_audit_is_off() {
    let sensor = Sensor::start("[audit]\nmode = \"off\"\nutmp = \"fallback\"\n");
    let user = TestUser::create();
    let sshd = Sshd::start(&user.name);
    let name = user.name.as_str();
    let out = sshd.login(name, "wrong-password", "true");
    assert!(!out.status.success(), "a wrong password must fail");
    let failure = sensor.wait_for("the failed login from btmp", |v| {
        at(v, "event.module") == "utmp"
            && action(v) == "authenticated"
            && at(v, "user.name") == name
    });
    assert_eq!(at(&failure, "event.outcome"), "failure", "{failure}");
    assert_eq!(at(&failure, "source.ip"), "127.0.0.1", "{failure}");
    assert_eq!(at(&failure, "sensor.tty"), "ssh:notty", "{failure}");
    let out = sshd.login_tty(name, &user.password, "exit 0");
    assert!(
        out.status.success(),
        "a login with a terminal: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let login = sensor.wait_for("the login in wtmp", |v| {
        at(v, "event.module") == "utmp" && action(v) == "logged_in" && at(v, "user.name") == name
    });
    assert_eq!(at(&login, "source.ip"), "127.0.0.1", "{login}");
    let tty = at(&login, "sensor.tty").as_str().expect("tty").to_owned();
    assert!(tty.starts_with("/dev/pts/"), "{login}");
    // Joined through the pid: sshd's session process.
    assert_eq!(
        at(&login, "process.executable"),
        "/usr/sbin/sshd",
        "{login}"
    );
    // No logout assertion: Debian's sshd writes no DEAD_PROCESS record to
    // wtmp on this machine (there is no /run/utmp; `last` says "gone - no
    // logout"). The pairing of logouts to logins is unit-tested in
    // source::logins; the audit tests assert the session end.
    drop(sshd);
    sensor.stop();
}
