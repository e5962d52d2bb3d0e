//! Harness for the privileged integration tests: starts the real `sensor`
//! binary (built by `cargo xtask test`), collects its JSON lines, and waits
//! for events matching a predicate.
//!
//! These tests load real eBPF programs into the running kernel: they need
//! root. Without it they fail with a message saying so, rather than pass.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub use sensor::event::text::unescape;

pub mod audit;
pub mod delivery;
pub mod http_receiver;
pub mod metrics;
pub mod rsyslog;
pub mod victim;

/// How long to wait for an event that must come. Generous because CI
/// machines are slow; a test never asserts on timing.
pub const EVENT_WAIT: Duration = Duration::from_secs(20);

/// Path of the sensor binary: `SENSOR_BIN`, else the workspace's debug build.
pub fn sensor_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("SENSOR_BIN") {
        return PathBuf::from(p);
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug/sensor");
    assert!(
        p.exists(),
        "{} does not exist: run the tests with `cargo xtask test`, which builds it",
        p.display()
    );
    p
}

/// Whether this kernel lets the sensor load fentry programs, as `sensor
/// probe` finds out: the hooks that complete events from the kernel's own
/// copies of a call's arguments load only then.
pub fn fentry_loads() -> bool {
    let out = std::process::Command::new(sensor_bin())
        .args(["probe", "--json"])
        .output()
        .expect("sensor probe");
    let probe: serde_json::Value = serde_json::from_slice(&out.stdout).expect("probe JSON");
    probe["fentry"]["available"] == true
}

pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "these tests load eBPF programs and must run as root (`cargo xtask test` as root)"
    );
}

#[derive(Default)]
struct Collected {
    events: Vec<Value>,
    stderr: Vec<String>,
    started: bool,
    /// Either stream ended: the sensor is exiting or gone.
    closed: bool,
    /// Its stdout ended and every line of it is in `events`. (Not the
    /// same: stderr can end first while lines are still being read.)
    stdout_done: bool,
}

/// A running sensor whose output is being collected.
pub struct Sensor {
    child: Child,
    shared: Arc<(Mutex<Collected>, Condvar)>,
    /// The state directory [`Sensor::start`] made for it, removed when it
    /// goes (one made by the caller, for [`Sensor::start_in`], is theirs).
    /// Removed after the child is killed (fields drop after `drop`).
    own_dir: Option<Scratch>,
}

impl Sensor {
    /// Starts `sensor run` with `config` (TOML text, may be empty) and waits
    /// until its programs are attached.
    pub fn start(config: &str) -> Sensor {
        let dir = scratch_dir("sensor-test");
        let mut sensor = Sensor::start_in(&dir, config);
        sensor.own_dir = Some(dir);
        sensor
    }

    /// Starts with `dir` as its state directory: a second start in the same
    /// directory is a restart (sequence numbers, spools).
    pub fn start_in(dir: &std::path::Path, config: &str) -> Sensor {
        Sensor::launch(dir, config, &[])
    }

    /// Starts as [`Sensor::start`] does, through the command `wrapper`,
    /// which gets the sensor's command line as its last arguments and must
    /// end by executing it (so that the child is the sensor): to start it
    /// in namespaces or a cgroup of its own.
    pub fn start_wrapped(wrapper: &[String], config: &str) -> Sensor {
        let dir = scratch_dir("sensor-test");
        let mut sensor = Sensor::launch(&dir, config, wrapper);
        sensor.own_dir = Some(dir);
        sensor
    }

    fn launch(dir: &std::path::Path, config: &str, wrapper: &[String]) -> Sensor {
        require_root();
        std::fs::create_dir_all(dir).expect("temp dir");
        let cfg = dir.join("sensor.toml");
        // Only one process can be the kernel's audit daemon: tests that do
        // not ask for audit leave it alone (audit tests take turns, see
        // `audit::audit_lock`).
        let audit_off = if config.contains("[audit]") {
            ""
        } else {
            "[audit]\nmode = \"off\"\nutmp = \"off\"\n"
        };
        let config = format!(
            "[agent]\nstate_dir = \"{}\"\n{audit_off}{config}",
            dir.display()
        );
        std::fs::write(&cfg, config).expect("write config");
        let mut command = match wrapper {
            [] => Command::new(sensor_bin()),
            [program, args @ ..] => {
                let mut c = Command::new(program);
                c.args(args).arg(sensor_bin());
                c
            }
        };
        let mut child = command
            .args(["run", "--config"])
            .arg(&cfg)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start sensor");
        let shared = Arc::new((Mutex::new(Collected::default()), Condvar::new()));
        let out = child.stdout.take().expect("stdout");
        let s = shared.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).split(b'\n') {
                let Ok(line) = line else { break };
                let v: Value = serde_json::from_slice(&line).unwrap_or_else(|e| {
                    panic!(
                        "sensor printed a line that is not JSON ({e}): {}",
                        String::from_utf8_lossy(&line)
                    )
                });
                let (m, c) = &*s;
                m.lock().expect("lock").events.push(v);
                c.notify_all();
            }
            let (m, c) = &*s;
            let mut g = m.lock().expect("lock");
            g.closed = true;
            g.stdout_done = true;
            c.notify_all();
        });
        let err = child.stderr.take().expect("stderr");
        let s = shared.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                eprintln!("[sensor] {line}");
                let (m, c) = &*s;
                let mut g = m.lock().expect("lock");
                if is_start_line(&line) {
                    g.started = true;
                }
                g.stderr.push(line);
                c.notify_all();
            }
            let (m, c) = &*s;
            m.lock().expect("lock").closed = true;
            c.notify_all();
        });
        let sensor = Sensor {
            child,
            shared,
            own_dir: None,
        };
        sensor.wait_started();
        sensor
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn wait_started(&self) {
        let (m, c) = &*self.shared;
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut g = m.lock().expect("lock");
        while !g.started {
            assert!(
                !g.closed,
                "sensor exited before starting:\n{}",
                g.stderr.join("\n")
            );
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "sensor did not start within 60 s:\n{}",
                g.stderr.join("\n")
            );
            g = c.wait_timeout(g, left).expect("lock").0;
        }
        assert_programs_verified(&g.stderr);
    }

    /// Waits for the first event matching `pred`; panics naming `what`.
    pub fn wait_for(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        self.wait_for_within(what, EVENT_WAIT, pred)
    }

    pub fn wait_for_within(
        &self,
        what: &str,
        wait: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let (m, c) = &*self.shared;
        let deadline = Instant::now() + wait;
        let mut g = m.lock().expect("lock");
        loop {
            if let Some(v) = g.events.iter().find(|v| pred(v)) {
                return v.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || g.closed {
                panic!(
                    "no event for {what} among {} events (sensor {}){}:\nlast stderr:\n{}",
                    g.events.len(),
                    if g.closed { "exited" } else { "running" },
                    loss_reports(&g.events),
                    g.stderr
                        .iter()
                        .rev()
                        .take(20)
                        .rev()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join("\n")
                );
            }
            g = c.wait_timeout(g, left).expect("lock").0;
        }
    }

    /// Waits until `n` events match `pred`; returns them.
    pub fn wait_for_count(
        &self,
        what: &str,
        n: usize,
        pred: impl Fn(&Value) -> bool,
    ) -> Vec<Value> {
        let (m, c) = &*self.shared;
        let deadline = Instant::now() + EVENT_WAIT * 2;
        let mut g = m.lock().expect("lock");
        // Each event is looked at once: rescanning (and cloning) all of
        // them on every wakeup held the lock long enough, with thousands
        // of events, to starve the thread that reads the sensor's output.
        let mut found = Vec::new();
        let mut seen = 0;
        loop {
            found.extend(g.events[seen..].iter().filter(|v| pred(v)).cloned());
            seen = g.events.len();
            if found.len() >= n {
                return found;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || g.closed {
                panic!(
                    "{} of {n} events for {what} among {} events{} (the last 20 found):\n{}\nlast stderr:\n{}",
                    found.len(),
                    g.events.len(),
                    loss_reports(&g.events),
                    found
                        .iter()
                        .rev()
                        .take(20)
                        .rev()
                        .map(|v| v.to_string())
                        .collect::<Vec<_>>()
                        .join("\n"),
                    g.stderr
                        .iter()
                        .rev()
                        .take(20)
                        .rev()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join("\n")
                );
            }
            g = c.wait_timeout(g, left).expect("lock").0;
        }
    }

    /// The sensor's own log lines so far.
    pub fn stderr(&self) -> Vec<String> {
        self.shared.0.lock().expect("lock").stderr.clone()
    }

    /// Waits for a line of the sensor's stderr holding `needle`.
    pub fn wait_for_log(&self, needle: &str, wait: Duration) -> String {
        let (m, c) = &*self.shared;
        let deadline = Instant::now() + wait;
        let mut g = m.lock().expect("lock");
        loop {
            if let Some(l) = g.stderr.iter().find(|l| l.contains(needle)) {
                return l.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero() && !g.closed,
                "the sensor never logged `{needle}`:\n{}",
                g.stderr.join("\n")
            );
            g = c.wait_timeout(g, left).expect("lock").0;
        }
    }

    /// Every event collected so far.
    pub fn events(&self) -> Vec<Value> {
        self.shared.0.lock().expect("lock").events.clone()
    }

    /// Sends SIGTERM and waits for the exit; returns all events.
    pub fn stop(self) -> Vec<Value> {
        self.stop_with(libc::SIGTERM)
    }

    /// Sends `signal` (SIGTERM or SIGINT) and waits for a clean exit.
    pub fn stop_with(mut self, signal: i32) -> Vec<Value> {
        // SAFETY: kill on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, signal) };
        let status = self.child.wait().expect("wait sensor");
        assert!(
            status.success(),
            "sensor exited with {status} on signal {signal}"
        );
        let (m, c) = &*self.shared;
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut g = m.lock().expect("lock");
        while !g.stdout_done && Instant::now() < deadline {
            g = c
                .wait_timeout(g, Duration::from_millis(100))
                .expect("lock")
                .0;
        }
        g.events.clone()
    }
}

/// Every test's sensor must have had every program it loaded accepted
/// by this kernel's verifier. A refusal leaves the sensor running with a
/// fallback, or without the hook, so only the tests of that hook's events
/// would fail, if any does: the ia32 hooks' refusal on this kernel showed
/// only as `ia32_syscalls`' failures. A refusal for complexity is a bug on
/// every kernel; a warning with the verifier's output is a hook the
/// sensor expected to load (the refusals it expects, such as fentry's
/// under lockdown, are logged at info level).
fn assert_programs_verified(stderr: &[String]) {
    let refused: Vec<&String> = stderr
        .iter()
        .filter(|l| sensor_common::verifier_log::is_refusal(l))
        .collect();
    assert!(
        refused.is_empty(),
        "the verifier refused programs of the sensor:\n{}",
        refused
            .iter()
            .map(|l| l.chars().take(600).collect::<String>())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

impl Drop for Sensor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `struct clone_args` up to `tls` (CLONE_ARGS_SIZE_VER0, 64 bytes), for
/// raw clone3 calls.
#[repr(C)]
#[derive(Default)]
pub struct CloneArgs {
    pub flags: u64,
    pub pidfd: u64,
    pub child_tid: u64,
    pub parent_tid: u64,
    pub exit_signal: u64,
    pub stack: u64,
    pub stack_size: u64,
    pub tls: u64,
}

/// Copies the executable `from` to `to` for a test to run. Through `cp`,
/// not `std::fs::copy`: a file this multi-threaded process writes is open
/// for writing in every child another test thread forks meanwhile, until
/// that child's exec, and running the copy then fails with ETXTBSY.
pub fn copy_executable(from: impl AsRef<std::path::Path>, to: impl AsRef<std::path::Path>) {
    let (from, to) = (from.as_ref(), to.as_ref());
    let status = Command::new("cp")
        .arg("--")
        .arg(from)
        .arg(to)
        .status()
        .expect("run cp");
    assert!(
        status.success(),
        "cp {} {}: {status}",
        from.display(),
        to.display()
    );
}

/// A new empty directory under the temp dir, named after `what`, removed
/// with everything in it when the returned guard drops (kept when a test
/// fails: see [`Scratch`]).
pub fn scratch_dir(what: &str) -> Scratch {
    let dir = std::env::temp_dir().join(format!("{what}-{}-{}", std::process::id(), unique()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    Scratch(dir)
}

/// A test's scratch directory, removed when dropped, so runs do not pile
/// up under /tmp; kept when dropped by a failing test's unwinding, for a
/// look (its path is printed).
///
/// By hand rather than tempfile's `TempDir`: this one derefs to `Path`, so
/// the tests use it as they would a `PathBuf` (`dir.join(…)`, `&dir`), and
/// keeps the readable `what-PID-N` names the tests' messages show.
#[must_use = "the directory is removed when this is dropped"]
#[derive(Debug)]
pub struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl AsRef<std::path::Path> for Scratch {
    fn as_ref(&self) -> &std::path::Path {
        &self.0
    }
}

impl AsRef<std::ffi::OsStr> for Scratch {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.0.as_os_str()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept for a look: {}", self.0.display());
            remove_magic_links(&self.0, 0);
            return;
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Removes the symlinks to magic links (`/proc/self/cwd`, `/dev/fd`) below
/// `dir`, a failed test's directory kept for a look, and says which: every
/// sensor started on this host afterwards finds them in `/tmp` and
/// follows them (`magic_link_found`), which a later test's assertions on
/// the events it sees would meet.
fn remove_magic_links(dir: &std::path::Path, depth: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let (path, Ok(kind)) = (entry.path(), entry.file_type()) else {
            continue;
        };
        if kind.is_dir() && depth < 8 {
            remove_magic_links(&path, depth + 1);
        } else if kind.is_symlink()
            && let Ok(target) = std::fs::read_link(&path)
        {
            // By a component named so, absolute or relative: a few
            // ordinary links may go too, which only the look misses.
            let magic = target
                .components()
                .any(|c| c.as_os_str() == "proc" || c.as_os_str() == "dev");
            if magic && std::fs::remove_file(&path).is_ok() {
                eprintln!(
                    "  removed its symlink {} -> {}",
                    path.display(),
                    target.display()
                );
            }
        }
    }
}

/// The sensor's own loss and error reports, to explain a missing event.
fn loss_reports(events: &[Value]) -> String {
    let r: Vec<String> = events
        .iter()
        .filter(|v| matches!(action(v), "lost" | "probe_error"))
        .map(|v| at(v, "sensor").to_string())
        .collect();
    if r.is_empty() {
        String::new()
    } else {
        format!(" (loss/error reports: {})", r.join(", "))
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// A `security.capability` value (vfs_cap_data revision 2, effective)
/// granting the capabilities of bitmask `caps`: what `setcap …+ep` writes.
pub fn file_caps_v2(caps: u64) -> [u8; 20] {
    let mut v = [0u8; 20];
    v[..4].copy_from_slice(&(0x0200_0000u32 | 1).to_le_bytes());
    v[4..8].copy_from_slice(&(caps as u32).to_le_bytes());
    v[12..16].copy_from_slice(&((caps >> 32) as u32).to_le_bytes());
    v
}

/// `v` at a dotted path (`process.parent.pid`).
pub fn at<'a>(v: &'a Value, path: &str) -> &'a Value {
    path.split('.')
        .fold(v, |v, k| v.get(k).unwrap_or(&Value::Null))
}

pub fn action(v: &Value) -> &str {
    at(v, "event.action").as_str().unwrap_or("")
}

pub fn pid_of(v: &Value) -> u64 {
    at(v, "process.pid").as_u64().unwrap_or(0)
}

/// The exact bytes of a string field, undoing the sensor's escaping where
/// the event says it escaped that field.
pub fn field_bytes(event: &Value, field: &str, value: &Value) -> Vec<u8> {
    let s = value
        .as_str()
        .unwrap_or_else(|| panic!("{field} is not a string: {value}"));
    let escaped = at(event, "sensor.escaped")
        .as_array()
        .is_some_and(|a| a.iter().any(|f| f.as_str() == Some(field)));
    if escaped {
        unescape(s)
            .unwrap_or_else(|| panic!("{field} is marked escaped but does not unescape: {s}"))
    } else {
        s.as_bytes().to_vec()
    }
}

/// `process.args` as exact bytes.
pub fn args_bytes(event: &Value) -> Vec<Vec<u8>> {
    at(event, "process.args")
        .as_array()
        .unwrap_or_else(|| panic!("no process.args in {event}"))
        .iter()
        .enumerate()
        .map(|(i, a)| field_bytes(event, &format!("process.args[{i}]"), a))
        .collect()
}

/// `cmd` spawned with its stdout piped, returned once it has printed
/// `line` (its first: a process that did something and then waits, so
/// that what it did is known done and its pid still its own).
pub fn spawned_until(mut cmd: Command, line: &str) -> Child {
    let mut child = cmd.stdout(Stdio::piped()).spawn().expect("spawn");
    let mut first = String::new();
    BufReader::new(child.stdout.as_mut().expect("piped"))
        .read_line(&mut first)
        .expect("read its first line");
    assert_eq!(first.trim_end(), line, "{cmd:?}");
    child
}

/// Writes `line` to a child's stdin (used to release processes that wait
/// for the sensor to be up).
pub fn release(child: &mut Child, line: &str) {
    let stdin = child.stdin.as_mut().expect("child stdin is piped");
    stdin.write_all(line.as_bytes()).expect("write to child");
    stdin.flush().expect("flush child stdin");
}

/// Is `line` (of the sensor's stderr) the daemon's log that it started:
/// its own message with its first field, not any line that mentions it
/// (a path or a message saying "before the sensor started"). The colours
/// tracing adds on a terminal-less stderr too are taken out first.
fn is_start_line(line: &str) -> bool {
    let mut plain = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // An SGR sequence: ESC [ parameters m.
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain.contains("sensor::daemon: sensor started processes=")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_daemons_start_message_is_its_start() {
        let coloured = "\x1b[2m2026-12-07T03:50:30.750947Z\x1b[0m \x1b[32m INFO\x1b[0m \
                        \x1b[2msensor::daemon\x1b[0m\x1b[2m:\x1b[0m sensor started \
                        \x1b[3mprocesses\x1b[0m\x1b[2m=\x1b[0m79";
        assert!(is_start_line(coloured));
        assert!(is_start_line(
            "2026-12-07T03:50:30Z  INFO sensor::daemon: sensor started processes=79 audit=\"off\""
        ));
        assert!(!is_start_line(
            "2026-12-07T03:50:30Z  WARN sensor::daemon: a link made before the sensor started \
             processes=1"
        ));
        assert!(!is_start_line("[sensor] /tmp/sensor started"));
    }

    #[test]
    fn a_scratch_directory_goes_with_its_guard_and_stays_after_a_failure() {
        let passed = {
            let d = scratch_dir("scratch-passed");
            std::fs::write(d.join("f"), b"x").expect("write");
            d.to_path_buf()
        };
        assert!(!passed.exists(), "{} is still there", passed.display());
        // Its symlinks to magic links go: later sensors would follow them.
        let links = [
            ("cwd", "/proc/self/cwd", false),
            ("a/b/fd", "../../../dev/fd", false),
            ("a/proc", "/proc", false),
            ("a/b/up", "../../../proc/1/root", false),
            ("a/job", "../job", true),
            ("a/processes", "processes", true),
        ];
        let failed = std::thread::spawn(move || {
            let d = scratch_dir("scratch-failed");
            std::fs::create_dir_all(d.join("a/b")).expect("mkdir");
            for (name, target, _) in links {
                std::os::unix::fs::symlink(target, d.join(name)).expect("symlink");
            }
            let path = d.to_path_buf();
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
                let _d = d;
                panic!("a failing test");
            }));
            path
        })
        .join()
        .expect("the thread");
        assert!(failed.exists(), "a failed test's directory was removed");
        for (name, target, kept) in links {
            let there = failed.join(name).symlink_metadata().is_ok();
            assert_eq!(there, kept, "{name} -> {target}");
        }
        std::fs::remove_dir_all(&failed).expect("cleanup");
    }
}
