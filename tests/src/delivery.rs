//! Helpers for the delivery tests: real processes as the event source, and
//! the sinks' output read back.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::at;

/// Every JSON line of a file sink (an unfinished last line is left out).
pub fn read_jsonl(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = match text.rfind('\n') {
        Some(i) => &text[..=i],
        None => "",
    };
    complete
        .lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("file sink line is not JSON ({e}): {l}"))
        })
        .collect()
}

pub fn sequences<'a>(events: impl IntoIterator<Item = &'a Value>) -> BTreeSet<u64> {
    events
        .into_iter()
        .filter_map(|e| at(e, "event.sequence").as_u64())
        .collect()
}

/// Runs `/bin/true MARKER` `n` times: exec, fork and exit events.
pub fn run_true(marker: &str, n: usize) {
    for _ in 0..n {
        let ok = Command::new("/bin/true")
            .arg(marker)
            .stdin(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "/bin/true failed");
    }
}

/// Whether an event is the exec of `/bin/true MARKER`.
pub fn is_exec_of(e: &Value, marker: &str) -> bool {
    at(e, "event.action") == "exec"
        && at(e, "process.args")
            .as_array()
            .is_some_and(|a| a.len() == 2 && a[1] == marker)
}

/// Starts processes at a steady rate on a thread until stopped: each is an
/// exec, a fork (the spawn) and an exit event, so 350 processes/s make
/// about 1,000 events/s.
pub struct Generator {
    stop: Arc<AtomicBool>,
    started: Arc<AtomicU64>,
    handle: Option<JoinHandle<()>>,
}

impl Generator {
    pub fn start(processes_per_second: u64, marker: &str) -> Generator {
        let stop = Arc::new(AtomicBool::new(false));
        let started = Arc::new(AtomicU64::new(0));
        let (s, n, marker) = (stop.clone(), started.clone(), marker.to_owned());
        let handle = std::thread::spawn(move || {
            let t0 = Instant::now();
            while !s.load(Ordering::Relaxed) {
                let due = t0.elapsed().as_secs_f64() * processes_per_second as f64;
                if (n.load(Ordering::Relaxed) as f64) < due {
                    let _ = Command::new("/bin/true")
                        .arg(&marker)
                        .stdin(Stdio::null())
                        .status();
                    n.fetch_add(1, Ordering::Relaxed);
                } else {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        });
        Generator {
            stop,
            started,
            handle: Some(handle),
        }
    }

    /// Stops and returns how many processes were started.
    pub fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        self.started.load(Ordering::Relaxed)
    }
}

impl Drop for Generator {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Waits until `cond` holds, polling; panics naming `what` after `wait`.
pub fn wait_until(what: &str, wait: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + wait;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {wait:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
