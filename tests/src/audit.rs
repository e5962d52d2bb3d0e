//! Helpers for the audit tests: a lock so that only one test at a time
//! touches the kernel's audit daemon slot, a throwaway user with a known
//! password, a real sshd on a loopback port, a real auditd, and `su` typed
//! into through a pseudo-terminal.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{Sensor, action, at};
use sensor::source::audit::netlink::{
    AuditSocket, STATUS_BACKLOG_LIMIT, STATUS_BACKLOG_WAIT_TIME, STATUS_ENABLED, Status,
};

/// Held while a test uses the audit subsystem: the kernel has one audit
/// daemon slot, and audit tests in every test binary take turns.
pub struct AuditLock {
    _file: File,
}

pub fn audit_lock() -> AuditLock {
    let f = File::options()
        .create(true)
        .append(true)
        .open("/tmp/sensor-audit-tests.lock")
        .expect("open the audit test lock file");
    // SAFETY: flock on a file descriptor we own.
    let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(r, 0, "flock: {}", std::io::Error::last_os_error());
    AuditLock { _file: f }
}

pub fn audit_status() -> Status {
    AuditSocket::open()
        .expect("NETLINK_AUDIT socket")
        .status()
        .expect("AUDIT_GET")
}

/// Sets enabled, backlog limit and wait time as in `s`.
pub fn set_audit_status(s: &Status) {
    let want = Status {
        mask: STATUS_ENABLED | STATUS_BACKLOG_LIMIT | STATUS_BACKLOG_WAIT_TIME,
        enabled: s.enabled,
        backlog_limit: s.backlog_limit,
        backlog_wait_time: s.backlog_wait_time,
        ..Status::default()
    };
    AuditSocket::open()
        .expect("NETLINK_AUDIT socket")
        .set(&want)
        .expect("AUDIT_SET");
}

/// Whether another process (not a test's) is the audit daemon now; such
/// a test skips and says why rather than fight it.
pub fn foreign_audit_daemon() -> Option<u32> {
    let s = audit_status();
    (s.pid != 0 && std::path::Path::new(&format!("/proc/{}", s.pid)).exists()).then_some(s.pid)
}

fn run(cmd: &mut Command, what: &str) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn unique() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    std::process::id() % 100_000 * 10 + N.fetch_add(1, Ordering::Relaxed) % 10
}

/// A local user with a known password; removed (with its home) on drop.
pub struct TestUser {
    pub name: String,
    pub password: String,
    pub uid: u32,
}

impl TestUser {
    pub fn create() -> TestUser {
        let name = format!("sensort{}", unique());
        let password = format!("pw-{}-Secret", unique());
        let _ = Command::new("userdel")
            .args(["-r", &name])
            .stderr(Stdio::null())
            .status();
        run(
            Command::new("useradd").args(["-m", "-s", "/bin/sh", &name]),
            "useradd",
        );
        let mut chpasswd = Command::new("chpasswd")
            .stdin(Stdio::piped())
            .spawn()
            .expect("chpasswd");
        chpasswd
            .stdin
            .take()
            .expect("stdin")
            .write_all(format!("{name}:{password}\n").as_bytes())
            .expect("write chpasswd");
        assert!(
            chpasswd.wait().expect("wait chpasswd").success(),
            "chpasswd failed"
        );
        let id = run(Command::new("id").args(["-u", &name]), "id -u");
        let uid = String::from_utf8_lossy(&id.stdout)
            .trim()
            .parse()
            .expect("uid");
        TestUser {
            name,
            password,
            uid,
        }
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        // Processes of the user (a lingering sshd session) first.
        let _ = Command::new("pkill")
            .args(["-KILL", "-u", &self.name])
            .status();
        let _ = Command::new("userdel")
            .args(["-r", "-f", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

/// Lines a child writes on a pipe, collected by a thread.
#[derive(Clone, Default)]
struct Lines(Arc<(Mutex<Vec<String>>, Condvar)>);

impl Lines {
    fn collect(&self, r: impl Read + Send + 'static, tag: &'static str) {
        let me = self.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(r).lines() {
                let Ok(line) = line else { break };
                eprintln!("[{tag}] {line}");
                let (m, c) = &*me.0;
                m.lock().expect("lock").push(line);
                c.notify_all();
            }
        });
    }

    fn wait_for(&self, what: &str, needle: &str) {
        let (m, c) = &*self.0;
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut g = m.lock().expect("lock");
        while !g.iter().any(|l| l.contains(needle)) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "{what}: no line containing {needle:?} within 30 s:\n{}",
                g.join("\n")
            );
            g = c.wait_timeout(g, left).expect("lock").0;
        }
    }
}

/// Debian's sshd in the foreground on a free loopback port, with its own
/// host key and config, password logins through PAM.
pub struct Sshd {
    child: Child,
    pub port: u16,
    _dir: crate::Scratch,
}

impl Sshd {
    pub fn start(allowed_user: &str) -> Sshd {
        let dir = crate::scratch_dir("sensor-sshd");
        let key = dir.join("host_ed25519");
        run(
            Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(&key),
            "ssh-keygen",
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let config = dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile {}\nUsePAM yes\n\
                 PasswordAuthentication yes\nKbdInteractiveAuthentication no\nPubkeyAuthentication no\n\
                 AuthorizedKeysFile none\nPermitRootLogin no\nAllowUsers {allowed_user}\nMaxAuthTries 10\n\
                 UseDNS no\nStrictModes no\nLogLevel VERBOSE\nPrintMotd no\n",
                key.display(),
                dir.join("sshd.pid").display()
            ),
        )
        .expect("write sshd_config");
        // Privilege separation directory, as the package's service creates it.
        std::fs::create_dir_all("/run/sshd").expect("mkdir /run/sshd");
        let mut child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect(
                "start /usr/sbin/sshd (apt-get install openssh-server; `cargo xtask setup` does)",
            );
        let lines = Lines::default();
        lines.collect(child.stderr.take().expect("stderr"), "sshd");
        lines.wait_for("sshd start", "Server listening on");
        Sshd {
            child,
            port,
            _dir: dir,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `ssh user@127.0.0.1 command` with `password` typed by sshpass.
    pub fn login(&self, user: &str, password: &str, command: &str) -> Output {
        self.ssh(user, password, command, false)
    }

    /// The same with a remote terminal (`ssh -tt`): a session that login
    /// accounting (utmp, wtmp) records.
    pub fn login_tty(&self, user: &str, password: &str, command: &str) -> Output {
        self.ssh(user, password, command, true)
    }

    /// `login` started, its stdin piped (see [`crate::release`]).
    pub fn login_spawn(&self, user: &str, password: &str, command: &str) -> Child {
        self.command(user, password, command, false)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run sshpass ssh (apt-get install sshpass)")
    }

    fn ssh(&self, user: &str, password: &str, command: &str, tty: bool) -> Output {
        self.command(user, password, command, tty)
            .stdin(Stdio::null())
            .output()
            .expect("run sshpass ssh (apt-get install sshpass)")
    }

    fn command(&self, user: &str, password: &str, command: &str, tty: bool) -> Command {
        let mut c = Command::new("sshpass");
        c.arg("-e")
            .env("SSHPASS", password)
            .args([
                "ssh",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "PreferredAuthentications=password",
                "-o",
                "PubkeyAuthentication=no",
                "-o",
                "NumberOfPasswordPrompts=1",
                "-o",
                "ConnectTimeout=30",
                "-o",
                "LogLevel=ERROR",
                if tty { "-tt" } else { "-T" },
                "-p",
            ])
            .arg(self.port.to_string())
            .arg(format!("{user}@127.0.0.1"))
            .arg(command);
        c
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        // SAFETY: kill on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

/// Debian's auditd in the foreground with a generated config (its log in
/// a temp dir, no plugins); stopped on drop, and the audit settings it
/// changed are put back.
pub struct Auditd {
    child: Child,
    before: Status,
    pub dir: crate::Scratch,
}

impl Auditd {
    pub fn start() -> Auditd {
        let before = audit_status();
        let dir = crate::scratch_dir("sensor-auditd");
        let plugins = dir.join("plugins.d");
        std::fs::create_dir_all(&plugins).expect("plugins dir");
        std::fs::write(
            dir.join("auditd.conf"),
            format!(
                "local_events = yes\nwrite_logs = yes\nlog_file = {}\nlog_format = RAW\nflush = INCREMENTAL_ASYNC\n\
                 freq = 50\nmax_log_file = 8\nnum_logs = 2\nmax_log_file_action = ROTATE\nspace_left = 75\n\
                 space_left_action = IGNORE\nadmin_space_left = 50\nadmin_space_left_action = IGNORE\n\
                 disk_full_action = IGNORE\ndisk_error_action = IGNORE\ntcp_listen_queue = 5\n\
                 plugin_dir = {}\nq_depth = 2000\noverflow_action = IGNORE\nend_of_event_timeout = 2\n",
                dir.join("audit.log").display(),
                plugins.display()
            ),
        )
        .expect("write auditd.conf");
        let mut child = Command::new("/usr/sbin/auditd")
            .args(["-n", "-c"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start /usr/sbin/auditd (apt-get install auditd)");
        Lines::default().collect(child.stderr.take().expect("stderr"), "auditd");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let s = audit_status();
            if s.pid == child.id() && s.enabled == 1 {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("auditd exited with {status} before registering");
            }
            assert!(
                Instant::now() < deadline,
                "auditd did not register as the audit daemon within 30 s: {s:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        // What Debian's default audit.rules set (the service loads them;
        // this auditd runs without the service): the kernel's default
        // backlog of 64 overflows under bursts of other records.
        run(
            Command::new("auditctl").args(["-b", "8192"]),
            "auditctl -b 8192",
        );
        Auditd { child, before, dir }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("audit.log")).unwrap_or_default()
    }
}

impl Drop for Auditd {
    fn drop(&mut self) {
        // SAFETY: kill on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
        set_audit_status(&self.before);
    }
}

/// Runs `su -c true TARGET` as `uid` (via setpriv, which execs, so the
/// returned pid is su's) on a fresh pseudo-terminal, types `password` at
/// the prompt, and returns su's pid, exit success and what it printed.
pub fn su_on_pty(uid: u32, target: &str, password: &str) -> (u32, bool, String) {
    let (mut master_fd, mut slave_fd) = (-1, -1);
    // SAFETY: openpty writes two fds; the other pointers may be null.
    let r = unsafe {
        libc::openpty(
            &mut master_fd,
            &mut slave_fd,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(r, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: openpty returned these fds and nothing else owns them.
    let (master, slave) = unsafe {
        (
            OwnedFd::from_raw_fd(master_fd),
            OwnedFd::from_raw_fd(slave_fd),
        )
    };
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--reuid",
        &uid.to_string(),
        "--regid",
        &uid.to_string(),
        "--clear-groups",
        "su",
        "-c",
        "true",
        target,
    ])
    .stdin(slave.try_clone().expect("dup"))
    .stdout(slave.try_clone().expect("dup"))
    .stderr(slave.try_clone().expect("dup"));
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn setpriv su");
    drop(slave);
    drop(cmd);
    let mut master = File::from(master);
    let mut seen = Vec::new();
    let mut typed = false;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut buf = [0u8; 1024];
    loop {
        let mut pfd = libc::pollfd {
            fd: master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, 500) };
        if n > 0 {
            match master.read(&mut buf) {
                Ok(0) | Err(_) => break, // EIO: every slave side is closed
                Ok(k) => seen.extend_from_slice(&buf[..k]),
            }
        }
        if !typed && String::from_utf8_lossy(&seen).contains("assword") {
            master
                .write_all(format!("{password}\n").as_bytes())
                .expect("type the password");
            typed = true;
        }
        if let Ok(Some(_)) = child.try_wait() {
            // Read what is left, then stop.
            if n <= 0 {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "su did not finish within 60 s: {}",
            String::from_utf8_lossy(&seen)
        );
    }
    let status = child.wait().expect("wait su");
    assert!(
        typed,
        "su never asked for a password: {}",
        String::from_utf8_lossy(&seen)
    );
    (
        child.id(),
        status.success(),
        String::from_utf8_lossy(&seen).into_owned(),
    )
}

fn is_auth(v: &Value, user: &str, service: &str, outcome: &str) -> bool {
    at(v, "event.module") == "audit"
        && action(v) == "authenticated"
        && at(v, "event.outcome") == outcome
        && at(v, "user.name") == user
        && at(v, "sensor.audit.service") == service
}

/// Several failed password logins and one that works, through a real
/// sshd: one failure event per attempt with user and source, the success,
/// the session with its id, and its end; all joined to sshd's processes.
pub fn ssh_scenario(sensor: &Sensor, sshd: &Sshd, user: &TestUser) {
    const FAILURES: usize = 3;
    for i in 0..FAILURES {
        let out = sshd.login(&user.name, "wrong-password", "true");
        assert!(
            !out.status.success(),
            "login {i} with a wrong password must fail"
        );
    }
    // The successful login keeps its session open until the test has seen
    // it (the remote command waits for a line on stdin), so that the
    // connection is still there when the sensor looks up the client's port.
    let marker = format!("sensor-ssh-ok-{}", std::process::id());
    let mut ssh_client = sshd.login_spawn(
        &user.name,
        &user.password,
        &format!("read x; echo {marker}"),
    );
    let name = user.name.as_str();
    let failures = sensor.wait_for_count("failed ssh logins", FAILURES, |v| {
        is_auth(v, name, "sshd", "failure")
    });
    let success = sensor.wait_for("the successful ssh authentication", |v| {
        is_auth(v, name, "sshd", "success")
    });
    let start = sensor.wait_for("the ssh session start", |v| {
        action(v) == "session_started"
            && at(v, "user.name") == name
            && at(v, "event.outcome") == "success"
    });
    let session = at(&start, "sensor.session_id")
        .as_u64()
        .unwrap_or_else(|| panic!("session id: {start}"));
    assert!(session > 0 && session < u64::from(u32::MAX), "{start}");
    assert_eq!(at(&start, "event.category")[0], "session");
    assert_eq!(
        at(&start, "sensor.login_user.id"),
        user.uid.to_string().as_str(),
        "login uid: {start}"
    );
    // The client's port, from the connection sshd holds (PAM's records have
    // only the address); the connection is open until released below.
    for f in [&success, &start] {
        let port = at(f, "source.port")
            .as_u64()
            .unwrap_or_else(|| panic!("source.port: {f}"));
        assert!(
            port > 0 && port != u64::from(sshd.port),
            "the client's port, not sshd's: {f}"
        );
    }
    crate::release(&mut ssh_client, "go\n");
    let out = ssh_client.wait_with_output().expect("wait ssh");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains(&marker),
        "login with the right password must work: {} {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let end = sensor.wait_for("the ssh session end", |v| {
        action(v) == "session_ended" && at(v, "sensor.session_id").as_u64() == Some(session)
    });
    assert_eq!(at(&end, "user.name"), name, "{end}");
    // The end came after every failure: exactly one event per attempt.
    let all = sensor.events();
    let n = all
        .iter()
        .filter(|v| is_auth(v, name, "sshd", "failure"))
        .count();
    assert_eq!(n, FAILURES, "one failure event per attempt");
    let mut pids = Vec::new();
    for f in failures.iter().chain([&success]) {
        assert_eq!(at(f, "event.category")[0], "authentication", "{f}");
        assert_eq!(at(f, "source.ip"), "127.0.0.1", "{f}");
        assert_eq!(at(f, "user.id"), user.uid.to_string().as_str(), "{f}");
        assert_eq!(at(f, "sensor.audit.terminal"), "ssh", "{f}");
        // Joined to the process tree: sshd's per-connection process, a
        // child of the sshd the test started.
        assert_eq!(at(f, "process.executable"), "/usr/sbin/sshd", "{f}");
        assert_eq!(
            at(f, "process.parent.pid").as_u64(),
            Some(u64::from(sshd.pid())),
            "{f}"
        );
        pids.push(at(f, "process.pid").as_u64());
    }
    pids.sort();
    pids.dedup();
    assert_eq!(
        pids.len(),
        FAILURES + 1,
        "each connection has its own sshd process"
    );
    // A failed attempt's connection may be gone by the time the sensor
    // looks: its port is best effort, but never sshd's own.
    for f in &failures {
        if let Some(port) = at(f, "source.port").as_u64() {
            assert!(
                port > 0 && port != u64::from(sshd.port),
                "the client's port, not sshd's: {f}"
            );
        }
    }
}

/// `su` to the test user with a wrong password, as `nobody` on a pty.
pub fn su_scenario(sensor: &Sensor, user: &TestUser) {
    let (pid, ok, text) = su_on_pty(65534, &user.name, "definitely-wrong");
    assert!(!ok, "su with a wrong password must fail: {text}");
    let ev = sensor.wait_for("su's failed authentication", |v| {
        is_auth(v, &user.name, "su", "failure")
            && at(v, "process.pid").as_u64() == Some(u64::from(pid))
    });
    assert_eq!(
        at(&ev, "process.real_user.id"),
        "65534",
        "su was run by nobody: {ev}"
    );
    assert!(
        at(&ev, "sensor.audit.terminal")
            .as_str()
            .is_some_and(|t| t.starts_with("/dev/pts/")),
        "su's terminal: {ev}"
    );
    assert_eq!(at(&ev, "user.id"), user.uid.to_string().as_str(), "{ev}");
}
