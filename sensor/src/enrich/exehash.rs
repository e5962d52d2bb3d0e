//! `process.hash.sha256`: the SHA-256 of the program a process runs.
//!
//! The file is reached through `/proc/PID/exe`, never through the path the
//! kernel reported: the link leads to the inode the process actually
//! executes, even when that file has since been deleted, or replaced by a
//! rename onto its path (the usual way an intruder swaps a binary). A path
//! would name whatever sits there by the time the sensor reads it, or
//! another file in another mount namespace.
//!
//! Hashing is off the event path: the pipeline stats the link (one
//! syscall), looks the file's identity ([`FileKey`]) up in a
//! bounded cache, and on a miss hands an open descriptor to one background
//! thread. An exec event then waits for the answer at most `wait` (default
//! 10 ms, and at most `WAIT_BUDGET` in total per second, so a flood of new
//! binaries cannot stall the pipeline); if the hash is not ready the event
//! says `sensor.hash_unavailable = "pending"` and later events of the
//! process carry the hash once it is known.
//!
//! A process that exited before the pipeline handled its exec has no
//! `/proc/PID/exe` any more: its event says `"exited"`. Hashing the path
//! instead could attribute the wrong file's hash to it (see above), which is
//! worse than none.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::Read;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::file_stamp::FileStamp;

use sha2::{Digest, Sha256};

use super::wait_budget::WaitBudget;

/// At most this much waiting for hashes per second of events, whatever
/// `wait` is.
const WAIT_BUDGET: Duration = Duration::from_millis(100);
/// Execs' files waiting for the hashing thread, each an open descriptor;
/// past it a miss is dropped and counted (the next exec of the same file
/// tries again).
const QUEUE: usize = 64;
/// Programs of processes found at start, waiting behind every exec's: a
/// pid each, opened only when their turn comes (no descriptor held).
const BACKGROUND_QUEUE: usize = 8192;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashConfig {
    pub max_bytes: u64,
    pub wait: Duration,
    pub timeout: Duration,
    pub cache_entries: usize,
}

/// What identifies a file's content without reading it: its device,
/// inode, size, modification time and change time. The change time
/// because a binary rewritten in place to the same size, its old
/// modification time put back (`touch -r`), would otherwise keep the
/// hash of what it held before: only the kernel sets the change time.
pub type FileKey = FileStamp;

#[derive(Debug, Clone)]
enum State {
    Pending,
    Done(Arc<str>),
    /// Why not: `too_large`, `unreadable`, `timeout`.
    Failed(&'static str),
}

/// What an event says about its executable's hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Sha256(Arc<str>),
    /// `pending`, `exited`, `superseded`, `too_large`, `unreadable`,
    /// `timeout`, `queue_full`.
    Unavailable(&'static str),
}

/// Counts since start, for the heartbeat and `/metrics`.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct HashStats {
    pub hashed: u64,
    pub too_large: u64,
    /// Unreadable, or slower than `hash_timeout_ms`.
    pub errors: u64,
    pub cache_hits: u64,
    /// Misses not queued because the hashing thread was behind.
    pub dropped: u64,
    /// Execs whose process was gone before its executable could be opened.
    pub exited: u64,
    /// Execs whose process had exec'd another program by then.
    pub superseded: u64,
    pub evicted: u64,
}

struct Job {
    key: FileKey,
    source: Source,
}

enum Source {
    /// Opened when the exec was handled: what ran, whatever happens next.
    File(File),
    /// A process found at start: opened when its turn comes, and hashed
    /// only if it still runs the same file.
    Pid(u32),
}

/// Two queues, execs' first: an event may be waiting for those.
#[derive(Default)]
struct Jobs {
    urgent: VecDeque<Job>,
    background: VecDeque<Job>,
    closed: bool,
}

#[derive(Default)]
struct Queue {
    jobs: Mutex<Jobs>,
    ready: Condvar,
}

impl Queue {
    /// Queues `job` unless its queue is full.
    fn push(&self, job: Job) -> bool {
        let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        let (queue, bound) = match job.source {
            Source::File(_) => (&mut jobs.urgent, QUEUE),
            Source::Pid(_) => (&mut jobs.background, BACKGROUND_QUEUE),
        };
        if queue.len() >= bound {
            return false;
        }
        queue.push_back(job);
        self.ready.notify_one();
        true
    }

    /// The next job, or None once closed.
    fn pop(&self) -> Option<Job> {
        let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if jobs.closed {
                return None;
            }
            if let Some(job) = jobs
                .urgent
                .pop_front()
                .or_else(|| jobs.background.pop_front())
            {
                return Some(job);
            }
            jobs = self.ready.wait(jobs).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn close(&self) {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner()).closed = true;
        self.ready.notify_all();
    }
}

pub struct ExeHasher {
    config: HashConfig,
    cache: HashMap<FileKey, State>,
    /// Insertion order, for eviction at `cache_entries`.
    order: VecDeque<FileKey>,
    queue: Arc<Queue>,
    done: Receiver<(FileKey, State)>,
    pub stats: HashStats,
    budget: WaitBudget,
}

impl ExeHasher {
    /// Starts the hashing thread.
    pub fn start(config: HashConfig) -> std::io::Result<ExeHasher> {
        let queue = Arc::new(Queue::default());
        // Bounded by the jobs queued: one answer each, and the pipeline
        // drains them on every lookup.
        let (done_tx, done) = std::sync::mpsc::channel();
        let (max_bytes, timeout) = (config.max_bytes, config.timeout);
        let jobs = queue.clone();
        std::thread::Builder::new()
            .name("exe-hash".into())
            .spawn(move || {
                while let Some(job) = jobs.pop() {
                    let file = match job.source {
                        Source::File(f) => Some(f),
                        Source::Pid(pid) => File::open(format!("/proc/{pid}/exe"))
                            .ok()
                            .filter(|f| f.metadata().is_ok_and(|m| FileKey::from(&m) == job.key)),
                    };
                    let state = match file {
                        Some(f) => hash_file(f, max_bytes, timeout),
                        // Gone or exec'd since: forget the key, the next exec
                        // of that file queues it again.
                        None => State::Failed("exited"),
                    };
                    if done_tx.send((job.key, state)).is_err() {
                        break;
                    }
                }
            })?;
        Ok(ExeHasher {
            config,
            cache: HashMap::new(),
            order: VecDeque::new(),
            queue,
            done,
            stats: HashStats::default(),
            budget: WaitBudget::new(WAIT_BUDGET),
        })
    }

    pub fn cached(&self) -> usize {
        self.cache.len()
    }

    /// The executable of live process `pid`: its identity, and its hash if
    /// known or quickly computed. `exec_path`: the path an exec record
    /// named, to check the process still runs that program (see
    /// [`still_runs`]). `wait`: an exec event may wait a little; a process
    /// found at start never does.
    pub fn identify(
        &mut self,
        pid: u32,
        exec_path: Option<&[u8]>,
        wait: bool,
    ) -> (Option<FileKey>, Outcome) {
        let link = format!("/proc/{pid}/exe");
        // stat, not open, on the hit path: one syscall and no descriptor.
        let Ok(meta) = std::fs::metadata(&link) else {
            self.stats.exited += 1;
            return (None, Outcome::Unavailable("exited"));
        };
        // After the stat: an exec in between makes the check fail, never
        // pass for the wrong file.
        if exec_path.is_some_and(|path| !still_runs(&link, path)) {
            self.stats.superseded += 1;
            return (None, Outcome::Unavailable("superseded"));
        }
        let key = FileKey::from(&meta);
        if let Some(state) = self.lookup(key) {
            if !matches!(state, State::Pending) {
                self.stats.cache_hits += 1;
            }
            let out = self.settle(key, state, wait);
            return (Some(key), out);
        }
        if meta.len() > self.config.max_bytes {
            self.stats.too_large += 1;
            self.insert(key, State::Failed("too_large"));
            return (Some(key), Outcome::Unavailable("too_large"));
        }
        if !wait {
            // Found at start: nobody waits, so no descriptor is held.
            return self.enqueue(
                Job {
                    key,
                    source: Source::Pid(pid),
                },
                false,
            );
        }
        // The descriptor pins the inode: the thread reads what ran even if
        // the file is unlinked or replaced meanwhile.
        let Ok(file) = File::open(&link) else {
            self.stats.exited += 1;
            return (None, Outcome::Unavailable("exited"));
        };
        // The process may have exec'd again between stat and open.
        if !file.metadata().is_ok_and(|m| FileKey::from(&m) == key) {
            return (None, Outcome::Unavailable("exited"));
        }
        self.enqueue(
            Job {
                key,
                source: Source::File(file),
            },
            true,
        )
    }

    fn enqueue(&mut self, job: Job, wait: bool) -> (Option<FileKey>, Outcome) {
        let key = job.key;
        if !self.queue.push(job) {
            self.stats.dropped += 1;
            return (None, Outcome::Unavailable("queue_full"));
        }
        self.insert(key, State::Pending);
        (Some(key), self.settle(key, State::Pending, wait))
    }

    /// The hash of a file identified earlier (events after the exec).
    pub fn resolve(&mut self, key: FileKey) -> Outcome {
        match self.lookup(key) {
            Some(state) => outcome(&state),
            // Evicted meanwhile: the next exec of it hashes it again.
            None => Outcome::Unavailable("pending"),
        }
    }

    fn lookup(&mut self, key: FileKey) -> Option<State> {
        self.collect();
        self.cache.get(&key).cloned()
    }

    /// Waits for a pending hash within both bounds.
    fn settle(&mut self, key: FileKey, state: State, wait: bool) -> Outcome {
        if !matches!(state, State::Pending) || !wait || self.config.wait.is_zero() {
            return outcome(&state);
        }
        let now = Instant::now();
        let deadline = now + self.budget.allow(self.config.wait);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match self.done.recv_timeout(left) {
                Ok((k, s)) => {
                    self.record(k, s);
                    if k == key {
                        break;
                    }
                }
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        self.budget.spent(now);
        outcome(self.cache.get(&key).unwrap_or(&State::Pending))
    }

    /// Takes in every answer the thread has ready.
    fn collect(&mut self) {
        while let Ok((key, state)) = self.done.try_recv() {
            self.record(key, state);
        }
    }

    fn record(&mut self, key: FileKey, state: State) {
        if let State::Failed("exited") = state {
            // A process found at start that was gone by its turn: nothing
            // learned about the file.
            self.stats.exited += 1;
            if matches!(self.cache.get(&key), Some(State::Pending)) {
                self.cache.remove(&key);
            }
            return;
        }
        match &state {
            State::Done(_) => self.stats.hashed += 1,
            State::Failed("too_large") => self.stats.too_large += 1,
            State::Failed(_) => self.stats.errors += 1,
            State::Pending => {}
        }
        // Only a key still cached is updated: an evicted one stays out.
        if let Some(slot) = self.cache.get_mut(&key) {
            *slot = state;
        }
    }

    fn insert(&mut self, key: FileKey, state: State) {
        while self.cache.len() >= self.config.cache_entries.max(1) {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if self.cache.remove(&old).is_some() {
                self.stats.evicted += 1;
            }
        }
        if self.cache.insert(key, state).is_none() {
            self.order.push_back(key);
        }
        // Keys forgotten early (a start-time process gone by its turn)
        // leave stale entries behind: keep the queue bounded too.
        if self.order.len() > 2 * self.config.cache_entries.max(1) {
            let cache = &self.cache;
            self.order.retain(|k| cache.contains_key(k));
        }
    }
}

impl Drop for ExeHasher {
    fn drop(&mut self) {
        self.queue.close();
    }
}

/// Does the process behind `link` still run the program its exec record
/// named? It may have exec'd again before the pipeline got to the first
/// record (`sh -c 'exec prog'`): then the link leads to the later program,
/// whose hash must not be given to the earlier exec. The link's text is the
/// path as this process sees it: for a process in a container the path in
/// the record is its tail, for a file deleted or replaced since it has
/// ` (deleted)` after it. A renamed binary fails the check: no hash rather
/// than a guess.
fn still_runs(link: &str, exec_path: &[u8]) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(target) = std::fs::read_link(link) else {
        return false;
    };
    let target = target.as_os_str().as_bytes();
    let target = target.strip_suffix(b" (deleted)").unwrap_or(target);
    !exec_path.is_empty() && target.ends_with(exec_path)
}

fn outcome(state: &State) -> Outcome {
    match state {
        State::Done(h) => Outcome::Sha256(h.clone()),
        State::Pending => Outcome::Unavailable("pending"),
        State::Failed(why) => Outcome::Unavailable(why),
    }
}

/// Reads at most `max_bytes` (the file may have grown since its stat) and
/// gives up past `timeout`, checked between chunks: a read that blocks
/// outright (a hung network filesystem) holds the thread, and the queue
/// bound then turns later misses into counted drops instead of memory.
fn hash_file(mut file: File, max_bytes: u64, timeout: Duration) -> State {
    let start = Instant::now();
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total: u64 = 0;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return State::Failed("unreadable"),
        };
        total += n as u64;
        if total > max_bytes {
            return State::Failed("too_large");
        }
        hasher.update(&buf[..n]);
        if start.elapsed() > timeout {
            return State::Failed("timeout");
        }
    }
    let digest = hasher.finalize();
    State::Done(
        digest
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
            .into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(max_bytes: u64) -> HashConfig {
        HashConfig {
            max_bytes,
            wait: Duration::from_secs(2),
            timeout: Duration::from_secs(5),
            cache_entries: 4,
        }
    }

    fn sha256_hex(b: &[u8]) -> String {
        Sha256::digest(b)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[test]
    fn own_executable_hashes_then_hits_the_cache() {
        let me = std::process::id();
        let want = sha256_hex(&std::fs::read("/proc/self/exe").expect("read own exe"));
        let mut h = ExeHasher::start(config(u64::MAX)).expect("thread");
        let (key, mut out) = h.identify(me, None, true);
        // A test binary is large: it may take longer than the wait budget.
        for _ in 0..1000 {
            if out != Outcome::Unavailable("pending") {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
            out = h.resolve(key.expect("identified"));
        }
        assert_eq!(out, Outcome::Sha256(want.clone().into()));
        assert_eq!(h.stats.hashed, 1);
        let (key2, out) = h.identify(me, None, true);
        assert_eq!((key2, out), (key, Outcome::Sha256(want.into())));
        assert_eq!(h.stats.cache_hits, 1);
    }

    #[test]
    fn too_large_is_not_read_and_is_counted() {
        let mut h = ExeHasher::start(config(1000)).expect("thread");
        let (_, out) = h.identify(std::process::id(), None, true);
        assert_eq!(out, Outcome::Unavailable("too_large"));
        assert_eq!(h.stats.too_large, 1);
        assert_eq!(h.stats.hashed, 0);
    }

    #[test]
    fn a_gone_process_is_exited_not_guessed() {
        let mut h = ExeHasher::start(config(u64::MAX)).expect("thread");
        assert_eq!(
            h.identify(u32::MAX, None, true).1,
            Outcome::Unavailable("exited")
        );
        assert_eq!(h.stats.exited, 1);
    }

    #[test]
    fn an_exec_record_for_another_program_gets_no_hash() {
        let mut h = ExeHasher::start(config(u64::MAX)).expect("thread");
        let me = std::process::id();
        let own = std::fs::read_link("/proc/self/exe").expect("own exe");
        let own = own.as_os_str().as_encoded_bytes();
        assert_eq!(
            h.identify(me, Some(b"/usr/bin/sh"), false).1,
            Outcome::Unavailable("superseded")
        );
        assert_eq!(h.stats.superseded, 1);
        // The tail of the path (as a container's process names it) is enough.
        let tail = &own[own.iter().rposition(|&b| b == b'/').expect("a slash")..];
        assert_ne!(
            h.identify(me, Some(tail), false).1,
            Outcome::Unavailable("superseded")
        );
        assert_ne!(
            h.identify(me, Some(own), false).1,
            Outcome::Unavailable("superseded")
        );
    }

    #[test]
    fn the_cache_is_bounded_and_counts_evictions() {
        let mut h = ExeHasher::start(config(u64::MAX)).expect("thread");
        for ino in 0..10 {
            h.insert(FileKey::fake(ino), State::Failed("unreadable"));
        }
        assert_eq!(h.cached(), 4);
        assert_eq!(h.stats.evicted, 6);
    }

    #[test]
    fn reads_stop_at_the_byte_bound_even_if_the_file_grew() {
        let path = std::env::temp_dir().join(format!("exehash-{}", std::process::id()));
        std::fs::write(&path, vec![7u8; 5000]).expect("write");
        let state = hash_file(
            File::open(&path).expect("open"),
            4096,
            Duration::from_secs(5),
        );
        std::fs::remove_file(&path).ok();
        assert!(matches!(state, State::Failed("too_large")), "{state:?}");
    }
}
