//! Where a path argument really led, for the calls whose path the kernel
//! side could match only by its bytes (no fentry): after a component that
//! may be a symlink, a `..` goes to the parent of the symlink's target,
//! not of its name (`/tmp/l/../cron.d/x`, with `/tmp/l -> /etc/foo`, is
//! `/etc/cron.d/x`; made normal lexically, `/tmp/cron.d/x`); and a magic
//! link (`/proc/self/cwd/x`, `/dev/fd/3/x`) leads wherever its process
//! has a directory. Both are followed again here, after the call, in the
//! caller's root, by a thread of their own.
//!
//! What can make that fail is reported, never taken as "not watched": the
//! caller, exited, was in a container whose root is gone with it; a
//! symlink on the way was removed since (the attacker's cleanup); a magic
//! link whose process is gone; a lookup that hangs (an intruder's FUSE
//! mount on the way), which is given up after [`TIMEOUT`], its thread
//! left behind.
//!
//! By hand: the crates that resolve paths (`path-clean`, `normpath`,
//! `std::fs::canonicalize`) resolve in the daemon's own root, without
//! a timeout, and on `str` or `Path` where these are the caller's bytes.

use std::ffi::OsStr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
use serde::Serialize;

use super::procfs::parse_stat;
use super::wait_budget::WaitBudget;

/// How long the pipeline waits for one path: lookups of cached dentries
/// take microseconds; a slow disk, milliseconds.
pub const TIMEOUT: Duration = Duration::from_millis(100);

/// At most this much waiting for lookups per second: one took ~140 µs
/// on the 2-CPU build VM (~45 µs of it the lookup, the caller's root and
/// start time from /proc; the rest the thread's round trip), so ~1,800 a
/// second, and a flood of such paths would otherwise slow the whole
/// pipeline; beyond it, each is reported `busy`. (No such path came in a
/// whole vm-test run but a container runtime's chown by
/// `/proc/self/fd/N`.)
const WAIT_BUDGET: Duration = Duration::from_millis(250);

/// Threads left behind on a lookup that never returned: beyond these,
/// paths are not looked up at all (each is reported `busy`) until one
/// returns, so that a hanging mount costs the pipeline a bounded wait.
pub const STUCK_MAX: usize = 4;

/// Whose call it was: the path is looked up in that process's root.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    pub tgid: u32,
    pub tid: u32,
    /// The process's start time in clock ticks (`/proc/PID/stat` field 22):
    /// a pid reused since is another process.
    pub start_ticks: u64,
    /// In a container: once it exited, its root cannot be found.
    pub in_container: bool,
}

/// A symlink the daemon saw made to lead through a magic link
/// (`/tmp/c -> /proc/self/cwd`). A path below it is followed from where
/// it leads, through its user's magic links, while the link holds the
/// same target: looked up as it is, it would go through the daemon's own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct KnownLink {
    /// Its path, absolute and normal, in its maker's root.
    pub path: Vec<u8>,
    /// Its target as the kernel stores it.
    pub written: Vec<u8>,
    /// That target joined to the link's directory and made normal.
    pub leads_to: Vec<u8>,
}

impl KnownLink {
    /// Is `path` (absolute, normal) below this link?
    pub fn above(&self, path: &[u8]) -> bool {
        below(path, &self.path).is_some()
    }

    /// Where `path` (absolute, normal), this link or below it, leads.
    pub fn leads(&self, path: &[u8]) -> Option<Vec<u8>> {
        if path == self.path {
            return Some(self.leads_to.clone());
        }
        below(path, &self.path).map(|rest| [&self.leads_to[..], rest].concat())
    }
}

/// The calling thread's cwd as the kernel walked it at the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CwdAtCall<'a> {
    pub path: &'a [u8],
    /// Its thread group leader's too (threads share it unless one
    /// unshared it): where `/proc/self/cwd` led.
    pub leaders: bool,
}

/// Why a path could not be followed again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unresolved {
    /// The caller exited, and its root (a container's) went with it; or
    /// the path goes through its magic links.
    Exited,
    /// A component no longer leads anywhere: removed or replaced since.
    Gone,
    /// Through a magic link the lookup may not follow (another root's
    /// `/proc`), or a symlink loop.
    MagicLink,
    /// The lookup did not return within [`TIMEOUT`].
    Timeout,
    /// Earlier lookups still hang ([`STUCK_MAX`]), or this second's
    /// waiting is spent: not tried.
    Busy,
    /// Any other error of the lookup.
    Error,
}

impl Unresolved {
    pub fn name(self) -> &'static str {
        match self {
            Unresolved::Exited => "exited",
            Unresolved::Gone => "gone",
            Unresolved::MagicLink => "magic_link",
            Unresolved::Timeout => "timeout",
            Unresolved::Busy => "busy",
            Unresolved::Error => "error",
        }
    }
}

/// Paths followed since the sensor started (the heartbeat's
/// `path_resolution`).
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct ResolveStats {
    /// Looked up.
    pub resolved: u64,
    /// Of those, found elsewhere than the path made normal lexically says.
    pub elsewhere: u64,
    /// Not followed (each reported with its reason).
    pub unresolved: u64,
    pub timeouts: u64,
    /// Lookup threads still hanging now.
    pub stuck: usize,
}

/// May `argument`, a path argument as passed, lead elsewhere than `normal`
/// (it joined to the caller's directory and made normal lexically) says?
/// Where a `..` follows a name in it (that name may be a symlink: the
/// directory a relative path starts from is the kernel's own, without
/// symlinks, so a leading `..` is exact), or where it goes through
/// `/proc` or `/dev/fd` (magic links).
pub fn may_lead_elsewhere(argument: &[u8], normal: &[u8]) -> bool {
    dot_dot_after_name(argument) || through_magic_link(normal)
}

fn dot_dot_after_name(argument: &[u8]) -> bool {
    let mut named = false;
    for component in argument.split(|&b| b == b'/') {
        match component {
            b"" | b"." => {}
            b".." if named => return true,
            b".." => {}
            _ => named = true,
        }
    }
    false
}

/// `/dev/fd` and `/dev/std*` are symlinks to `/proc/self/…`.
const MAGIC_DIRS: &[&[u8]] = &[
    b"/proc",
    b"/dev/fd",
    b"/dev/stdin",
    b"/dev/stdout",
    b"/dev/stderr",
];

fn through_magic_link(normal: &[u8]) -> bool {
    MAGIC_DIRS.iter().any(|d| below(normal, d).is_some())
}

/// Does a symlink's target (joined to the link's directory and made
/// normal) go through a magic link, or name one or a directory of them
/// (`/proc/self/cwd`, `/proc`, `/dev`)? A path through the symlink then
/// leads wherever its user's magic links do, which no path's bytes tell.
pub fn target_through_magic_link(target: &[u8]) -> bool {
    target == b"/dev"
        || MAGIC_DIRS
            .iter()
            .any(|d| target == *d || below(target, d).is_some())
}

/// What follows `dir` in `path` when `path` is below it (`/proc/x` below
/// `/proc`: `/x`).
fn below<'a>(path: &'a [u8], dir: &[u8]) -> Option<&'a [u8]> {
    path.strip_prefix(dir)
        .filter(|rest| rest.len() > 1 && rest[0] == b'/')
}

/// Follows paths on a thread of its own, each within [`TIMEOUT`].
pub struct PathResolver {
    /// [`follow`]; another in tests of the waiting.
    follow: Follow,
    worker: Option<Worker>,
    /// Threads given up on: each sets its flag once its lookup returned.
    stuck: Vec<Arc<AtomicBool>>,
    budget: WaitBudget,
    stats: ResolveStats,
}

/// One lookup: whose, which path, whether its last component is
/// followed too, the known symlink on its way, if any, and the calling
/// thread's cwd at the call, where the kernel walked it.
struct Job {
    caller: Caller,
    path: Vec<u8>,
    follow_last: bool,
    through: Option<KnownLink>,
    /// [`CwdAtCall`], owned.
    cwd_at_call: Option<(Vec<u8>, bool)>,
}

type Follow = fn(&Job) -> Result<Vec<u8>, Unresolved>;

struct Worker {
    jobs: SyncSender<Job>,
    answers: Receiver<Result<Vec<u8>, Unresolved>>,
    done: Arc<AtomicBool>,
}

impl Default for PathResolver {
    fn default() -> Self {
        PathResolver::new()
    }
}

impl PathResolver {
    pub fn new() -> PathResolver {
        PathResolver {
            follow,
            worker: None,
            stuck: Vec::new(),
            budget: WaitBudget::new(WAIT_BUDGET),
            stats: ResolveStats::default(),
        }
    }

    pub fn stats(&mut self) -> ResolveStats {
        self.stuck.retain(|done| !done.load(Ordering::Acquire));
        ResolveStats {
            stuck: self.stuck.len(),
            ..self.stats
        }
    }

    /// Where `path` (absolute: the argument, or the argument after the
    /// caller's directory; not made normal) led, the way the kernel
    /// resolves a name it creates or removes: every component but the
    /// last followed, the last kept as it is. `normal` is the path made
    /// normal lexically, to count the paths found elsewhere.
    #[cfg(test)]
    pub fn resolve(
        &mut self,
        caller: Caller,
        path: &[u8],
        normal: &[u8],
    ) -> Result<Vec<u8>, Unresolved> {
        self.resolve_with(caller, path, normal, false, None, None)
    }

    /// The same, with the last component followed too where it is a
    /// symlink, as a call that follows it does (chmod, chown, setxattr,
    /// truncate).
    #[cfg(test)]
    pub fn resolve_following(
        &mut self,
        caller: Caller,
        path: &[u8],
        normal: &[u8],
    ) -> Result<Vec<u8>, Unresolved> {
        self.resolve_with(caller, path, normal, true, None, None)
    }

    /// Either of the above (`follow_last`; the pipeline's one way in),
    /// `path` going through symlink `through` (then `path` is made
    /// normal: below the link's own path). Through the calling thread's
    /// `/proc/thread-self/cwd` (and `/proc/self/cwd`, where that was its
    /// leader's too), it is followed from `cwd_at_call` where the kernel
    /// walked that: the directory then, which the caller may since have
    /// left, or taken with it when it exited.
    pub fn resolve_with(
        &mut self,
        caller: Caller,
        path: &[u8],
        normal: &[u8],
        follow_last: bool,
        through: Option<&KnownLink>,
        cwd_at_call: Option<CwdAtCall>,
    ) -> Result<Vec<u8>, Unresolved> {
        let answer = self.ask(Job {
            caller,
            path: path.to_vec(),
            follow_last,
            through: through.cloned(),
            cwd_at_call: cwd_at_call.map(|c| (c.path.to_vec(), c.leaders)),
        });
        match &answer {
            Ok(p) => {
                self.stats.resolved += 1;
                if p.as_slice() != normal {
                    self.stats.elsewhere += 1;
                }
            }
            Err(e) => {
                self.stats.unresolved += 1;
                if *e == Unresolved::Timeout {
                    self.stats.timeouts += 1;
                }
            }
        }
        answer
    }

    fn ask(&mut self, job: Job) -> Result<Vec<u8>, Unresolved> {
        let wait = self.budget.allow(TIMEOUT);
        if wait.is_zero() {
            return Err(Unresolved::Busy);
        }
        if self.worker.is_none() {
            self.stuck.retain(|done| !done.load(Ordering::Acquire));
            if self.stuck.len() >= STUCK_MAX {
                return Err(Unresolved::Busy);
            }
            self.worker = Some(Worker::start(self.follow).map_err(|e| {
                tracing::warn!("cannot start the path lookup thread: {e}");
                Unresolved::Error
            })?);
        }
        let worker = self.worker.as_ref().expect("started above");
        if worker.jobs.send(job).is_err() {
            self.worker = None;
            return Err(Unresolved::Error);
        }
        let started = Instant::now();
        let answer = worker.answers.recv_timeout(wait);
        self.budget.spent(started);
        match answer {
            Ok(answer) => answer,
            Err(RecvTimeoutError::Timeout) => {
                let worker = self.worker.take().expect("asked above");
                tracing::warn!(
                    "a path lookup did not return within {wait:?} (a hanging mount on \
                     the way, or this second's waiting nearly spent): its thread is left \
                     behind; {} such now",
                    self.stuck.len() + 1
                );
                self.stuck.push(worker.done);
                Err(Unresolved::Timeout)
            }
            Err(RecvTimeoutError::Disconnected) => {
                self.worker = None;
                Err(Unresolved::Error)
            }
        }
    }
}

impl Worker {
    fn start(follow: Follow) -> std::io::Result<Worker> {
        // One job at a time: the pipeline waits for each answer.
        let (jobs, job_rx) = sync_channel::<Job>(1);
        let (answer_tx, answers) = sync_channel(1);
        let done = Arc::new(AtomicBool::new(false));
        let flag = done.clone();
        std::thread::Builder::new()
            .name("path-lookup".into())
            .spawn(move || {
                for job in job_rx {
                    if answer_tx.send(follow(&job)).is_err() {
                        break;
                    }
                }
                flag.store(true, Ordering::Release);
            })?;
        Ok(Worker {
            jobs,
            answers,
            done,
        })
    }
}

/// The caller's root, as the lookup starts from it.
enum Root {
    /// `/proc/PID/root` of the live caller, and where it is in ours
    /// (`/` unless chrooted or pivoted below it).
    Alive { fd: OwnedFd, shown_as: Vec<u8> },
    /// An exited caller outside any container: the host's root, ours.
    Host,
}

impl Root {
    fn of(caller: Caller) -> Result<Root, Unresolved> {
        let dir = format!("/proc/{}", caller.tgid);
        // Opened first and checked after: a pid reused in between is
        // another process, which the start time tells.
        let fd = open_path(
            None,
            format!("{dir}/root").as_bytes(),
            ResolveFlag::empty(),
            true,
        );
        let same = std::fs::read(format!("{dir}/stat"))
            .ok()
            .and_then(|s| parse_stat(&s))
            .is_some_and(|(_, _, start)| start == caller.start_ticks);
        match fd {
            Ok(fd) if same => {
                let shown_as = std::fs::read_link(format!("{dir}/root"))
                    .map(|p| p.as_os_str().as_bytes().to_vec())
                    .map_err(|_| Unresolved::Exited)?;
                Ok(Root::Alive { fd, shown_as })
            }
            _ if caller.in_container => Err(Unresolved::Exited),
            _ => Ok(Root::Host),
        }
    }
}

/// `job`'s path followed for its caller (see [`PathResolver::resolve`]).
fn follow(job: &Job) -> Result<Vec<u8>, Unresolved> {
    let (caller, follow_last) = (job.caller, job.follow_last);
    let through;
    let path: &[u8] = match &job.through {
        Some(link) => {
            through = through_link(caller, link, &job.path)?;
            &through
        }
        None => &job.path,
    };
    // The whole path where the call follows its last component too (a
    // chmod's symlink, `/proc/self/fd/N`); else its directory.
    let (dir, leaf, trailing_slash) = if follow_last {
        (path, &b""[..], false)
    } else {
        split_leaf(path)
    };
    let directory = !follow_last;
    let dir = without_empty_and_dot(dir);
    let at_call = (job.cwd_at_call.as_ref()).and_then(|(path, leaders)| {
        let cwd = CwdAtCall {
            path,
            leaders: *leaders,
        };
        from_cwd_at_call(&dir, caller, cwd)
    });
    let from_cwd = at_call.is_some();
    let dir = at_call.unwrap_or(dir);
    let magic = magic_rewrite(&dir, caller);
    // Another process's magic links, by the number the caller gave: the
    // host's unless it was in a container. Followed from the daemon's
    // side, whoever the caller was.
    let root = match &magic {
        Magic::Other(_) if caller.in_container => return Err(Unresolved::MagicLink),
        Magic::Other(_) => None,
        _ => Some(Root::of(caller)?),
    };
    // That cwd is a path from the root of the caller's mount namespace:
    // its own root, unless it is chrooted below that (then, for a host
    // process, the daemon's root, and shown as the caller sees it); an
    // exited host process's is the daemon's.
    let in_daemon_root = from_cwd
        && !caller.in_container
        && !matches!(&root, Some(Root::Alive { shown_as, .. }) if shown_as == b"/");
    let fd = match (magic, &root) {
        (Magic::Other(dir), _) => open_path(None, &dir, ResolveFlag::empty(), directory)?,
        // The caller's own, from the daemon's side too, by its pid.
        (Magic::Own(dir), Some(Root::Alive { .. })) => {
            open_path(None, &dir, ResolveFlag::empty(), directory)?
        }
        (Magic::Own(_), _) => return Err(Unresolved::Exited),
        // In the caller's root, whose `..` stays in it; a magic link on
        // the way (a symlink into `/proc`) would be the daemon's own.
        (Magic::None, Some(Root::Alive { fd, .. })) if !in_daemon_root => open_path(
            Some(fd),
            &dir,
            ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS,
            directory,
        )?,
        (Magic::None, _) => open_path(None, &dir, ResolveFlag::RESOLVE_NO_MAGICLINKS, directory)?,
    };
    let found = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .map_err(|_| Unresolved::Error)?;
    let mut found = found.as_os_str().as_bytes().to_vec();
    // Removed since the call (an unlinked directory keeps its fd).
    if found.ends_with(b" (deleted)") {
        return Err(Unresolved::Gone);
    }
    // As the caller sees it, where its root is below the daemon's.
    if let Some(Root::Alive { shown_as, .. }) = &root {
        if let Some(rest) = below(&found, shown_as) {
            found = rest.to_vec();
        } else if found == *shown_as {
            found = b"/".to_vec();
        }
    }
    if !leaf.is_empty() {
        if found.last() != Some(&b'/') {
            found.push(b'/');
        }
        found.extend_from_slice(leaf);
    }
    if trailing_slash && found.last() != Some(&b'/') {
        found.push(b'/');
    }
    Ok(found)
}

/// `path`, below `link`, from where the link leads (`/tmp/c/x`, with
/// `/tmp/c -> /proc/self/cwd`: `/proc/self/cwd/x`, which [`follow`]
/// takes to the caller's own), where the link in the caller's root holds
/// the same target still, or is gone: removed since the call (an
/// intruder's cleanup right after it), the records before this one having
/// seen it made and not removed. Else `path` as it is: whatever is there
/// now is followed as any path is (and a magic link on the way is not).
fn through_link(caller: Caller, link: &KnownLink, path: &[u8]) -> Result<Vec<u8>, Unresolved> {
    let Some(rest) = below(path, &link.path) else {
        return Ok(path.to_vec());
    };
    let (dir, name, _) = split_leaf(&link.path);
    let dir = if dir.is_empty() { &b"/"[..] } else { dir };
    let dir_fd = match Root::of(caller)? {
        Root::Alive { fd, .. } => open_path(
            Some(&fd),
            dir,
            ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS,
            true,
        ),
        Root::Host => open_path(None, dir, ResolveFlag::RESOLVE_NO_MAGICLINKS, true),
    };
    let held = dir_fd.map(|fd| {
        nix::fcntl::readlinkat(Some(fd.as_raw_fd()), OsStr::from_bytes(name))
            .map(|t| t.as_bytes() == link.written)
    });
    let holds_or_gone = match held {
        Ok(Ok(same)) => same,
        Ok(Err(Errno::ENOENT)) | Err(Unresolved::Gone) => true,
        _ => false,
    };
    if holds_or_gone {
        Ok([&link.leads_to[..], rest].concat())
    } else {
        Ok(path.to_vec())
    }
}

/// A file (a `directory` only), by `O_PATH` (no permission on it needed,
/// nothing of it read, a FIFO not waited on), from `root` (the daemon's
/// own when None).
fn open_path(
    root: Option<&OwnedFd>,
    path: &[u8],
    resolve: ResolveFlag,
    directory: bool,
) -> Result<OwnedFd, Unresolved> {
    let mut flags = OFlag::O_PATH | OFlag::O_CLOEXEC;
    if directory {
        flags |= OFlag::O_DIRECTORY;
    }
    let how = OpenHow::new().flags(flags).resolve(resolve);
    let path = OsStr::from_bytes(path);
    let fd = match root {
        Some(r) => openat2(r.as_raw_fd(), path, how),
        None => openat2(libc::AT_FDCWD, path, how),
    };
    match fd {
        // SAFETY: a new fd, owned by nothing else.
        Ok(fd) => Ok(unsafe { OwnedFd::from_raw_fd(fd) }),
        Err(Errno::ENOENT | Errno::ENOTDIR) => Err(Unresolved::Gone),
        Err(Errno::ELOOP | Errno::EXDEV) => Err(Unresolved::MagicLink),
        Err(_) => Err(Unresolved::Error),
    }
}

/// The directory the last component is in, that component, and whether a
/// slash followed it. A last component of `.` or `..` is a directory to
/// follow like the others.
fn split_leaf(path: &[u8]) -> (&[u8], &[u8], bool) {
    let end = path.iter().rposition(|&b| b != b'/').map_or(0, |i| i + 1);
    let trailing_slash = end > 0 && end < path.len();
    let body = &path[..end];
    let cut = body.iter().rposition(|&b| b == b'/');
    let (dir, leaf) = match cut {
        Some(i) => (&body[..i], &body[i + 1..]),
        None => (&body[..0], body),
    };
    if leaf == b"." || leaf == b".." {
        return (body, b"", trailing_slash);
    }
    (dir, leaf, trailing_slash)
}

/// `path` without empty and `.` components, which never change where it
/// leads (unlike `..`): `//proc/./self` is `/proc/self`. Absolute.
fn without_empty_and_dot(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len() + 1);
    for c in path.split(|&b| b == b'/') {
        if !c.is_empty() && c != b"." {
            out.push(b'/');
            out.extend_from_slice(c);
        }
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

/// `dir` (absolute, without empty and `.` components) from `cwd`, the
/// calling thread's cwd at the call, where it goes through the magic
/// link to it: `/proc/thread-self/cwd`, and `/proc/self/cwd` where the
/// cwd was its thread group leader's too (a thread that did
/// `unshare(CLONE_FS)` can move on its own).
fn from_cwd_at_call(dir: &[u8], caller: Caller, cwd: CwdAtCall) -> Option<Vec<u8>> {
    let mut links = vec![&b"/proc/thread-self/cwd"[..]];
    if cwd.leaders || caller.tid == caller.tgid {
        links.push(b"/proc/self/cwd");
    }
    let rest = links.into_iter().find_map(|link| {
        (dir == link)
            .then_some(&b""[..])
            .or_else(|| below(dir, link))
    })?;
    let mut out = cwd.path.to_vec();
    if out.last() == Some(&b'/') {
        out.pop();
    }
    out.extend_from_slice(rest);
    Some(without_empty_and_dot(&out))
}

/// A directory's way through magic links.
#[derive(Debug, PartialEq, Eq)]
enum Magic {
    None,
    /// Through the caller's own (`/proc/self`, `/proc/thread-self`,
    /// `/dev/fd`, `/dev/std*`): the directory with them named by its pid,
    /// as the daemon sees them.
    Own(Vec<u8>),
    /// Through `/proc/PID/…`, by the number the caller gave.
    Other(Vec<u8>),
}

/// How `dir` goes through magic links (see [`through_magic_link`]).
fn magic_rewrite(dir: &[u8], caller: Caller) -> Magic {
    let (tgid, tid) = (caller.tgid, caller.tid);
    let own = [
        (&b"/proc/self"[..], format!("/proc/{tgid}")),
        (b"/proc/thread-self", format!("/proc/{tgid}/task/{tid}")),
        (b"/dev/fd", format!("/proc/{tgid}/fd")),
        (b"/dev/stdin", format!("/proc/{tgid}/fd/0")),
        (b"/dev/stdout", format!("/proc/{tgid}/fd/1")),
        (b"/dev/stderr", format!("/proc/{tgid}/fd/2")),
    ];
    for (link, named) in own {
        if dir == link {
            return Magic::Own(named.into_bytes());
        }
        if let Some(rest) = below(dir, link) {
            let mut out = named.into_bytes();
            out.extend_from_slice(rest);
            return Magic::Own(out);
        }
    }
    if dir == b"/proc" || below(dir, b"/proc").is_some() {
        Magic::Other(dir.to_vec())
    } else {
        Magic::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> Caller {
        Caller {
            tgid: std::process::id(),
            // SAFETY: gettid has no preconditions.
            tid: unsafe { libc::gettid() } as u32,
            start_ticks: std::fs::read("/proc/self/stat")
                .ok()
                .and_then(|s| parse_stat(&s))
                .expect("own stat")
                .2,
            in_container: false,
        }
    }

    #[test]
    fn a_dot_dot_after_a_name_or_a_path_through_proc_may_lead_elsewhere() {
        assert!(may_lead_elsewhere(b"/tmp/l/../x", b"/tmp/x"));
        assert!(may_lead_elsewhere(b"l/../x", b"/cwd/x"));
        assert!(may_lead_elsewhere(b"./a/./../x", b"/cwd/x"));
        // From the kernel's own directory, or above the root: exact.
        assert!(!may_lead_elsewhere(b"../x", b"/x"));
        assert!(!may_lead_elsewhere(b"/../etc/x", b"/etc/x"));
        assert!(!may_lead_elsewhere(b"/etc/./cron.d//x", b"/etc/cron.d/x"));
        assert!(may_lead_elsewhere(b"x", b"/proc/self/cwd/x"));
        assert!(may_lead_elsewhere(b"/dev/fd/3/x", b"/dev/fd/3/x"));
        assert!(may_lead_elsewhere(b"/dev/stdin/x", b"/dev/stdin/x"));
        assert!(!may_lead_elsewhere(b"/procx/y", b"/procx/y"));
        assert!(!may_lead_elsewhere(b"/dev/fdx/y", b"/dev/fdx/y"));
        assert!(!may_lead_elsewhere(b"/dev/sda", b"/dev/sda"));
    }

    #[test]
    fn a_symlink_target_through_or_at_a_magic_link_or_its_directory() {
        for t in [
            &b"/proc"[..],
            b"/proc/self/cwd",
            b"/proc/1/root",
            b"/dev",
            b"/dev/fd",
            b"/dev/fd/3",
            b"/dev/stdin",
        ] {
            assert!(target_through_magic_link(t), "{}", t.escape_ascii());
        }
        for t in [
            &b"/"[..],
            b"/procx",
            b"/dev/sda",
            b"/devx",
            b"/etc/proc",
            b"/dev/fdx",
        ] {
            assert!(!target_through_magic_link(t), "{}", t.escape_ascii());
        }
    }

    #[test]
    fn the_last_component_is_split_off_unless_it_is_a_dot() {
        assert_eq!(split_leaf(b"/a/b/c"), (&b"/a/b"[..], &b"c"[..], false));
        assert_eq!(split_leaf(b"/a/b/c//"), (&b"/a/b"[..], &b"c"[..], true));
        assert_eq!(split_leaf(b"/c"), (&b""[..], &b"c"[..], false));
        assert_eq!(split_leaf(b"/a/l/.."), (&b"/a/l/.."[..], &b""[..], false));
        assert_eq!(split_leaf(b"/a/l/./"), (&b"/a/l/."[..], &b""[..], true));
        assert_eq!(without_empty_and_dot(b"//proc/./self/"), b"/proc/self");
        assert_eq!(without_empty_and_dot(b""), b"/");
    }

    #[test]
    fn the_callers_own_magic_links_are_named_by_its_pid() {
        let c = Caller {
            tgid: 10,
            tid: 11,
            start_ticks: 0,
            in_container: false,
        };
        let r = |d: &[u8]| magic_rewrite(d, c);
        let own = |p: &[u8]| Magic::Own(p.to_vec());
        assert_eq!(r(b"/proc/self/cwd"), own(b"/proc/10/cwd"));
        assert_eq!(
            r(b"/proc/thread-self/root/etc"),
            own(b"/proc/10/task/11/root/etc")
        );
        assert_eq!(r(b"/dev/fd/3"), own(b"/proc/10/fd/3"));
        assert_eq!(r(b"/dev/stdin"), own(b"/proc/10/fd/0"));
        assert_eq!(r(b"/proc/1/root"), Magic::Other(b"/proc/1/root".to_vec()));
        assert_eq!(r(b"/proc/selfish"), Magic::Other(b"/proc/selfish".to_vec()));
        assert_eq!(r(b"/etc/proc"), Magic::None);
        assert_eq!(r(b"/dev/fdx"), Magic::None);
    }

    /// A real tree: a `..` after a symlink leads to its target's parent;
    /// a magic link of a live process to its directory; a removed link
    /// says so; an exited container process cannot be followed.
    #[test]
    fn paths_are_followed_as_the_kernel_follows_them() {
        let base = std::env::temp_dir().join(format!("sensor-resolve-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("etc/foo")).unwrap();
        std::fs::create_dir_all(base.join("etc/cron.d")).unwrap();
        std::fs::create_dir_all(base.join("tmp")).unwrap();
        std::os::unix::fs::symlink(base.join("etc/foo"), base.join("tmp/l")).unwrap();
        let b = base.to_str().unwrap();
        let mut r = PathResolver::new();
        let path = format!("{b}/tmp/l/../cron.d/x");
        let lexical = format!("{b}/tmp/cron.d/x");
        let found = r.resolve(me(), path.as_bytes(), lexical.as_bytes());
        assert_eq!(found, Ok(format!("{b}/etc/cron.d/x").into_bytes()));
        // The last component is not followed; a trailing slash is kept.
        let found = r.resolve(me(), format!("{b}/tmp/l/").as_bytes(), b"");
        assert_eq!(found, Ok(format!("{b}/tmp/l/").into_bytes()));
        // The caller's cwd, by its magic link, from the daemon's side.
        let cwd = std::env::current_dir().unwrap();
        let found = r.resolve(me(), b"/proc/self/cwd/x", b"");
        assert_eq!(found, Ok(cwd.join("x").as_os_str().as_bytes().to_vec()));
        let stats = r.stats();
        assert_eq!(
            (stats.resolved, stats.elsewhere, stats.unresolved),
            (3, 3, 0)
        );
        // A call that follows its last component too (chmod): through a
        // symlink at the end, and through the caller's own fd.
        std::fs::write(base.join("etc/cron.d/x"), b"x").unwrap();
        std::os::unix::fs::symlink(base.join("etc/cron.d/x"), base.join("etc/foo/s")).unwrap();
        let at_end = format!("{b}/tmp/l/../foo/s");
        assert_eq!(
            r.resolve_following(me(), at_end.as_bytes(), b""),
            Ok(format!("{b}/etc/cron.d/x").into_bytes())
        );
        assert_eq!(
            r.resolve(me(), at_end.as_bytes(), b""),
            Ok(format!("{b}/etc/foo/s").into_bytes())
        );
        let file = std::fs::File::open(base.join("etc/cron.d/x")).unwrap();
        let by_fd = format!("/proc/self/fd/{}", file.as_raw_fd());
        assert_eq!(
            r.resolve_following(me(), by_fd.as_bytes(), b""),
            Ok(format!("{b}/etc/cron.d/x").into_bytes())
        );
        drop(file);

        // A pid that is no process (or not this one): a host caller is
        // followed in the host's root, but not through its magic links; a
        // container's cannot be followed.
        let gone = Caller {
            start_ticks: me().start_ticks + 1,
            ..me()
        };
        assert_eq!(
            r.resolve(gone, path.as_bytes(), b""),
            Ok(format!("{b}/etc/cron.d/x").into_bytes())
        );
        assert_eq!(
            r.resolve(gone, b"/proc/self/cwd/x", b""),
            Err(Unresolved::Exited)
        );
        // Another process's, by its number: the host's, unless the caller
        // was in a container.
        let other = format!("/proc/{}/cwd/x", me().tgid);
        assert_eq!(
            r.resolve(gone, other.as_bytes(), b""),
            Ok(cwd.join("x").as_os_str().as_bytes().to_vec())
        );
        let container = Caller {
            in_container: true,
            ..gone
        };
        assert_eq!(
            r.resolve(container, path.as_bytes(), b""),
            Err(Unresolved::Exited)
        );
        assert_eq!(
            r.resolve(container, other.as_bytes(), b""),
            Err(Unresolved::MagicLink)
        );
        // In the host's root, a symlink to a magic link is not followed
        // (it would be the daemon's own).
        std::os::unix::fs::symlink("/proc/self/cwd", base.join("tmp/c")).unwrap();
        let through = format!("{b}/tmp/c/a/../x");
        assert_eq!(
            r.resolve(me(), through.as_bytes(), b""),
            Err(Unresolved::MagicLink)
        );
        // Removed since.
        std::fs::remove_file(base.join("tmp/l")).unwrap();
        assert_eq!(r.resolve(me(), path.as_bytes(), b""), Err(Unresolved::Gone));
        assert_eq!(r.stats().unresolved, 5);
        assert_eq!(r.stats().resolved, 8);
        std::fs::remove_dir_all(&base).unwrap();
    }

    /// Below a symlink seen made to lead through a magic link, a path is
    /// followed from where the link leads: the caller's own magic links,
    /// not the daemon's. A link that holds another target now is
    /// followed as it is.
    #[test]
    fn a_path_below_a_known_link_to_a_magic_link_leads_where_the_callers_do() {
        let base = std::env::temp_dir().join(format!("sensor-known-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("d")).unwrap();
        std::os::unix::fs::symlink("/proc/self/cwd", base.join("c")).unwrap();
        let b = base.to_str().unwrap();
        let link = KnownLink {
            path: format!("{b}/c").into_bytes(),
            written: b"/proc/self/cwd".to_vec(),
            leads_to: b"/proc/self/cwd".to_vec(),
        };
        let path = format!("{b}/c/x").into_bytes();
        assert!(link.above(&path) && !link.above(&link.path));
        let mut r = PathResolver::new();
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            r.resolve_with(me(), &path, &path, false, Some(&link), None),
            Ok(cwd.join("x").as_os_str().as_bytes().to_vec())
        );
        // Looked up as it is, it would be the daemon's own: refused.
        assert_eq!(r.resolve(me(), &path, b""), Err(Unresolved::MagicLink));
        // The caller's cwd is gone with it.
        let gone = Caller {
            start_ticks: me().start_ticks + 1,
            ..me()
        };
        assert_eq!(
            r.resolve_with(gone, &path, &path, false, Some(&link), None),
            Err(Unresolved::Exited)
        );
        // Removed since (the records before the call's saw it made, and
        // not removed): as it was.
        std::fs::remove_file(base.join("c")).unwrap();
        assert_eq!(
            r.resolve_with(me(), &path, &path, false, Some(&link), None),
            Ok(cwd.join("x").as_os_str().as_bytes().to_vec())
        );
        // Pointed elsewhere since.
        std::os::unix::fs::symlink(base.join("d"), base.join("c")).unwrap();
        assert_eq!(
            r.resolve_with(me(), &path, &path, false, Some(&link), None),
            Ok(format!("{b}/d/x").into_bytes())
        );
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn the_cwd_at_the_call_stands_for_the_callers_own_cwd_link() {
        let leader = Caller {
            tgid: 10,
            tid: 10,
            start_ticks: 0,
            in_container: false,
        };
        let thread = Caller { tid: 11, ..leader };
        let at = |dir: &[u8], caller, cwd: &[u8]| {
            let cwd = CwdAtCall {
                path: cwd,
                leaders: false,
            };
            from_cwd_at_call(dir, caller, cwd)
        };
        let some = |p: &[u8]| Some(p.to_vec());
        assert_eq!(at(b"/proc/self/cwd", leader, b"/etc"), some(b"/etc"));
        assert_eq!(at(b"/proc/self/cwd/a", leader, b"/etc"), some(b"/etc/a"));
        assert_eq!(at(b"/proc/self/cwd/a", leader, b"/"), some(b"/a"));
        assert_eq!(at(b"/proc/self/cwd", leader, b"/"), some(b"/"));
        assert_eq!(
            at(b"/proc/thread-self/cwd/a", thread, b"/etc"),
            some(b"/etc/a")
        );
        // Another thread's `/proc/self/cwd` is its leader's: the same
        // where the kernel saw it shared.
        assert_eq!(at(b"/proc/self/cwd/a", thread, b"/etc"), None);
        let shared = CwdAtCall {
            path: b"/etc",
            leaders: true,
        };
        assert_eq!(
            from_cwd_at_call(b"/proc/self/cwd/a", thread, shared),
            some(b"/etc/a")
        );
        for other in [
            &b"/proc/self/root"[..],
            b"/proc/self/cwdx",
            b"/proc/10/cwd",
            b"/etc",
        ] {
            assert_eq!(at(other, leader, b"/etc"), None, "{}", other.escape_ascii());
        }
    }

    /// Through the caller's own cwd link, a path is followed from its cwd
    /// at the call, where the kernel walked it: also once the caller
    /// exited (a host process's), or moved on; through a known link to
    /// it too. Not where that cwd is unknown, or another thread's.
    #[test]
    fn a_path_through_the_cwd_link_is_followed_from_the_cwd_at_the_call() {
        let base = std::env::temp_dir().join(format!("sensor-cwd-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("etc/cron.d")).unwrap();
        std::os::unix::fs::symlink("/proc/self/cwd", base.join("c")).unwrap();
        let b = base.to_str().unwrap();
        let cron = format!("{b}/etc/cron.d");
        let in_cron = format!("{cron}/x").into_bytes();
        let exited_leader = Caller {
            start_ticks: me().start_ticks + 1,
            tid: me().tgid,
            ..me()
        };
        let mut r = PathResolver::new();
        let mut at_call = |caller, path: &[u8], through, cwd: Option<&str>| {
            let cwd = cwd.map(|c| CwdAtCall {
                path: c.as_bytes(),
                leaders: false,
            });
            r.resolve_with(caller, path, path, false, through, cwd)
        };
        let own = b"/proc/self/cwd/x";
        assert_eq!(
            at_call(exited_leader, own, None, Some(&cron)),
            Ok(in_cron.clone())
        );
        assert_eq!(
            at_call(exited_leader, own, None, None),
            Err(Unresolved::Exited)
        );
        let link = KnownLink {
            path: format!("{b}/c").into_bytes(),
            written: b"/proc/self/cwd".to_vec(),
            leads_to: b"/proc/self/cwd".to_vec(),
        };
        let below_link = format!("{b}/c/x").into_bytes();
        assert_eq!(
            at_call(exited_leader, &below_link, Some(&link), Some(&cron)),
            Ok(in_cron.clone())
        );
        // A thread other than the leader (not the harness's, which may be
        // the main one) of a live process that has since moved elsewhere:
        // where its cwd was, not where it is.
        let thread = std::thread::spawn(me).join().unwrap();
        assert_ne!(thread.tid, thread.tgid);
        assert_eq!(
            at_call(thread, b"/proc/thread-self/cwd/x", None, Some(&cron)),
            Ok(in_cron.clone())
        );
        // Not its leader's, which may be elsewhere (the kernel did not see
        // it shared): that one is read.
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            at_call(thread, own, None, Some(&cron)),
            Ok(cwd.join("x").as_os_str().as_bytes().to_vec())
        );
        // An exited container process's root went with it.
        let container = Caller {
            in_container: true,
            ..exited_leader
        };
        assert_eq!(
            at_call(container, own, None, Some(&cron)),
            Err(Unresolved::Exited)
        );
        std::fs::remove_dir_all(&base).unwrap();
    }

    /// A lookup that hangs is given up, and its thread left behind; the
    /// next one gets a thread of its own; beyond STUCK_MAX hanging, none
    /// is tried until one returns.
    #[test]
    fn a_hanging_lookup_is_given_up_and_bounded() {
        static RELEASED: AtomicBool = AtomicBool::new(false);
        fn hang(job: &Job) -> Result<Vec<u8>, Unresolved> {
            while job.path == b"/hang" && !RELEASED.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(10));
            }
            Ok(job.path.clone())
        }
        let mut r = PathResolver {
            follow: hang,
            budget: WaitBudget::new(TIMEOUT * 10),
            ..PathResolver::new()
        };
        assert_eq!(r.resolve(me(), b"/x", b"/x"), Ok(b"/x".to_vec()));
        for _ in 0..STUCK_MAX {
            assert_eq!(
                r.resolve(me(), b"/hang", b"/hang"),
                Err(Unresolved::Timeout)
            );
        }
        assert_eq!(r.resolve(me(), b"/x", b"/x"), Err(Unresolved::Busy));
        let s = r.stats();
        assert_eq!(
            (s.timeouts, s.unresolved, s.stuck),
            (STUCK_MAX as u64, STUCK_MAX as u64 + 1, STUCK_MAX)
        );
        // A second's waiting is bounded too, hanging threads or not: the
        // third lookup gets what is left, the fourth none.
        let mut bounded = PathResolver {
            follow: hang,
            ..PathResolver::new()
        };
        for _ in 0..3 {
            assert_eq!(
                bounded.resolve(me(), b"/hang", b""),
                Err(Unresolved::Timeout)
            );
        }
        assert_eq!(bounded.resolve(me(), b"/x", b"/x"), Err(Unresolved::Busy));
        assert!(bounded.stats().stuck < STUCK_MAX);
        // Once they return, lookups go on.
        RELEASED.store(true, Ordering::Release);
        while r.stats().stuck > 0 {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(r.resolve(me(), b"/x", b"/x"), Ok(b"/x".to_vec()));
    }

    /// A live caller chrooted below the daemon's root: its paths are
    /// followed in its root (an absolute symlink there is its own), and
    /// shown as it sees them.
    #[test]
    fn a_chrooted_callers_paths_are_followed_in_its_root() {
        let base = std::env::temp_dir().join(format!("sensor-chroot-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        for d in ["etc/foo", "etc/cron.d", "tmp"] {
            std::fs::create_dir_all(base.join(d)).unwrap();
        }
        // Absolute: `/etc/foo` in the caller's root.
        std::os::unix::fs::symlink("/etc/foo", base.join("tmp/l")).unwrap();
        let root = std::ffi::CString::new(base.as_os_str().as_bytes()).unwrap();
        // SAFETY: the child calls only async-signal-safe functions
        // (chroot, chdir, pause, _exit) before it is killed.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            unsafe {
                if libc::chroot(root.as_ptr()) != 0 || libc::chdir(c"/".as_ptr()) != 0 {
                    libc::_exit(1);
                }
                loop {
                    libc::pause();
                }
            }
        }
        // Once chrooted.
        let link = format!("/proc/{pid}/root");
        while std::fs::read_link(&link).ok().as_deref() != Some(base.as_path()) {
            std::thread::sleep(Duration::from_millis(5));
        }
        let child = Caller {
            tgid: pid as u32,
            tid: pid as u32,
            start_ticks: std::fs::read(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| parse_stat(&s))
                .unwrap()
                .2,
            in_container: false,
        };
        let mut r = PathResolver::new();
        let found = r.resolve(child, b"/tmp/l/../cron.d/x", b"");
        let up = r.resolve(child, b"/tmp/l/../..", b"");
        // Its cwd as the kernel walks it: from the root of its mount
        // namespace, the daemon's.
        let cron = base.join("etc/cron.d");
        let cwd = CwdAtCall {
            path: cron.as_os_str().as_bytes(),
            leaders: true,
        };
        let own = b"/proc/self/cwd/x";
        let from_cwd = r.resolve_with(child, own, own, false, None, Some(cwd));
        // SAFETY: our child.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
        std::fs::remove_dir_all(&base).unwrap();
        assert_eq!(found, Ok(b"/etc/cron.d/x".to_vec()));
        assert_eq!(up, Ok(b"/".to_vec()));
        assert_eq!(from_cwd, Ok(b"/etc/cron.d/x".to_vec()));
    }
}
