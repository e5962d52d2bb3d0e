//! Writes to watched paths: open for writing (or creating, truncating),
//! truncate, unlink, rename, link and symlink of the files and directories
//! the daemon watches (/etc/passwd, /etc/shadow, /etc/sudoers*, ~/.ssh, cron and
//! systemd unit directories, /var/log/… by default).
//!
//! The decision is made in the kernel, so that the host's ordinary writes
//! never reach userspace:
//! - a file the call has open (open's new fd at exit, ftruncate's fd) is
//!   watched if it or a directory above it is a watched inode: exact, and
//!   blind to symlinks, bind mounts and relative paths;
//! - a path argument (truncate, unlink, rename, link, symlink's new name)
//!   is watched if it is absolute and is, or is below, a watched path (by
//!   the hashes of its prefixes: [`hashed_path_watched`]) or is spelled
//!   otherwise than where it leads (`//`, `/./`, `/../`), or goes through
//!   a magic link (`/proc/self/cwd/x`, `/dev/fd/3/x`), a single
//!   component in a directory that is, or that holds, a watched file, or a
//!   relative path of several components (which only the joined path can
//!   decide). The daemon checks the joined path exactly and drops the rest
//!   (following again, in the caller's root, a path whose `..` comes
//!   after a name that may be a symlink, or that goes through a magic
//!   link: `enrich::path_resolve`);
//! - where fentry loads (`watch_inode.rs`), a truncate, unlink, rename,
//!   link or symlink whose path argument did not decide is kept in flight
//!   anyway, and the hooks inside the call decide by the inode the kernel
//!   resolved: exact, through symlinks, bind mounts and `/proc/PID/root`;
//! - a symlink whose target text names a watched path or a directory
//!   above one (`/tmp/e -> /etc`, through which `/tmp/e/cron.d/x` is a
//!   path the checks above cannot see without fentry), or goes through a
//!   magic link or names `/proc`, `/dev` or `/dev/fd` (`/tmp/c ->
//!   /proc/self/cwd`, through which `/tmp/c/x` leads wherever its user's
//!   cwd is; see `path_through_magic_link`): absolute, or
//!   relative with a `..`, or relative in a directory above a watched
//!   path (`/etc/s -> systemd/system`); the daemon joins a relative one
//!   to the link's directory and decides on that;
//! - while a symlink record sent is not handled by the daemon yet (see
//!   [`symlink_unhandled`]), any such call: the link may lead through a
//!   magic link, whose paths the checks above find only once the daemon
//!   has put it in their map;
//! - a rename of a directory above a watched path, or over one
//!   (`mv /etc/systemd /tmp/s`, a `RENAME_EXCHANGE` of `/home/u` with a
//!   tree prepared elsewhere): it moves the watched path, or puts another
//!   tree in its place, by a path no watched path's hash prefixes;
//! - with `[watch] user_ssh_dirs` and `user_unit_dirs`, also by name: a
//!   file in a directory named `.ssh`, or in one named `user` in one named
//!   `systemd`, or such a directory, whoever's home holds it and whenever
//!   it was made (see [`named`]); with `shell_rc_files`, a file named as a
//!   shell's startup file (`.bashrc`, `.profile`…: [`rc_file`]).

use aya_ebpf::helpers::bpf_probe_read_kernel;
use aya_ebpf::helpers::generated::bpf_probe_read_user;
use aya_ebpf::macros::map;
use aya_ebpf::maps::{Array, HashMap, PerCpuArray, ProgramArray};
use sensor_common::{
    ARG_PATH_CAP, AT_EMPTY_PATH, AT_FDCWD, EventKind, ExeKey, PATH_HASH_SEED, PATH_HASH_SPAN,
    ProbeError, SHELL_RC_NAME_MAX, SHELL_RC_NAME_MIN, SHELL_RC_TAILS, SHELL_RC_WORDS, SyscallOp,
    WATCH_MATCHED_SHELL_RC, WATCH_MATCHED_SSH_DIR, WATCH_MATCHED_USER_UNITS,
    WATCHED_ABOVE_DIRS_MAX, WATCHED_BITS_WORDS, WATCHED_INODES_MAX, WATCHED_PATH_HASHES_MAX,
    WatchEvent, WatchedInode, path_hash_step, path_may_leave_prefix, path_through_magic_link,
    symlinks_sync, watch_flags, watch_matched_by_name, watched_bit, watched_set,
};

use super::{copy, dir_path, fd_file, inflight, read_user_str};
use crate::kernel::{Direct, Miss, Probe, Reader, field, plus, put, read_ptr, read_u32};
use crate::maps::{
    DATA_MASK, SYSCALL_SCRATCH, count_error, off, scratch, shell_rc_watched, ssh_dirs_watched,
    user_unit_dirs_watched,
};
use crate::path::{Walk, Writer, write_found_path};
use crate::task::{self, Current};

const O_WRONLY: u32 = 0o1;
const O_RDWR: u32 = 0o2;
const O_CREAT: u32 = 0o100;
const O_TRUNC: u32 = 0o1000;
const WRITE_INTENT: u32 = O_WRONLY | O_RDWR | O_CREAT | O_TRUNC;
/// Directories climbed from a file looking for a watched one.
const ANCESTORS_MAX: u32 = 16;

/// Value: the event's `matched` (1 + the watched path's index in the
/// daemon's list…) and the inode's generation.
#[map]
static WATCHED_INODES: HashMap<ExeKey, WatchedInode> =
    HashMap::with_max_entries(WATCHED_INODES_MAX, 0);

#[map]
static WATCHED_PARENTS: HashMap<ExeKey, u8> = HashMap::with_max_entries(1024, 0);

/// The filesystems (kernel dev_t) of the inodes in the two maps above: a
/// file on any other one is not watched, and needs no climb (most writes
/// on a host go to tmpfs, overlay and other filesystems than /etc's).
#[map]
static WATCHED_DEVS: HashMap<u32, u8> = HashMap::with_max_entries(1024, 0);

/// The watched paths as the `path_hash` of their bytes and as their
/// `path_hash_whole`, and the directories above them (`/`, `/etc`, `/etc/`)
/// as the latter only (see [`hashed_path_watched`]). One map, so that a
/// path argument that is neither costs no lookup more; the value is
/// unused.
#[map]
static WATCHED_PATH_HASHES: HashMap<u64, u8> =
    HashMap::with_max_entries(WATCHED_PATH_HASHES_MAX, 0);

/// Symlink records sent, when the last was, and how many the daemon has
/// handled (see `sensor_common::symlinks_sync`).
#[map]
static SYMLINKS_SYNC: Array<u64> = Array::with_max_entries(symlinks_sync::SLOTS, 0);

/// The directories above watched paths that exist, by inode (see
/// [`in_dir_above`]); the value is unused.
#[map]
static WATCHED_ABOVE_DIRS: HashMap<ExeKey, u8> =
    HashMap::with_max_entries(WATCHED_ABOVE_DIRS_MAX, 0);

/// A bit per key of the maps above but `WATCHED_DEVS`, set by the daemon
/// before it puts the key in and cleared after it took it out (see
/// `sensor_common::WATCHED_BITS_WORDS`): [`may_hold`]. One value, looked
/// up once before a climb or a scan: a lookup (and its null check) at
/// each key took the path scan's verifier states past the million.
#[map]
static WATCHED_BITS: Array<WatchedBits> = Array::with_max_entries(1, 0);

type WatchedBits = [u64; WATCHED_BITS_WORDS as usize];

/// `WATCHED_BITS`' value. It cannot be missing (the array's one entry
/// always exists): the path checks take its absence as "may hold" all the
/// same, and a climb, which could only pass its file by, counts it.
#[inline(always)]
fn watched_bits() -> Option<&'static WatchedBits> {
    WATCHED_BITS.get(0)
}

/// Might map `set` (a [`watched_set`]) hold key (`a`, `b`)? No where its
/// bit is clear: the lookup that would follow, a call, is skipped. Most
/// keys a climb or a path scan asks are in no map, and an open for writing
/// asked ~6 of them, an absolute rename ~8.
#[inline(always)]
fn may_hold(bits: &WatchedBits, set: u64, a: u64, b: u32) -> bool {
    key_bit(bits, set, a, b) != 0
}

/// The bit of key (`a`, `b`) of map `set`, as 0 or 1.
#[inline(always)]
fn key_bit(bits: &WatchedBits, set: u64, a: u64, b: u32) -> u64 {
    let bit = watched_bit(set, a, b);
    // Masked, which the verifier needs, and which spares a bounds check.
    let word = bits[(bit >> 6) as usize & (WATCHED_BITS_WORDS as usize - 1)];
    word >> (bit & 63) & 1
}

/// Is `hash` a key of `WATCHED_PATH_HASHES`?
#[inline(always)]
fn path_hash_listed(bits: &WatchedBits, hash: u64) -> bool {
    // SAFETY: a lookup; the value is not kept.
    may_hold(bits, watched_set::PATH_HASHES, hash, 0)
        && unsafe { WATCHED_PATH_HASHES.get(&hash) }.is_some()
}

/// An open for writing between entry and exit: whether its file is watched
/// is known only once the kernel has resolved it (the new fd).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct PendingOpen {
    op: u32,
    flags: u32,
    fd: i32,
    _pad0: u32,
}

// SAFETY: repr(C), starting with its op.
unsafe impl inflight::Record for PendingOpen {}

/// Kept between the thread's calls (see [`inflight`]): opens are the most
/// frequent calls the sensor traces.
#[map]
static OPEN_INFLIGHT: HashMap<u64, PendingOpen> = HashMap::with_max_entries(8192, 0);

/// The thread `key` is exiting: its open record goes (a watched call's
/// was removed by its exit).
#[inline(always)]
pub(super) fn thread_exited(key: &u64) {
    let _ = OPEN_INFLIGHT.remove(key);
}

/// A watched truncate, unlink, rename, link or symlink between entry and
/// exit.
#[repr(C)]
pub struct PendingWatch {
    op: u32,
    flags: u32,
    fd: i32,
    /// `path2`'s dirfd (rename's new path, link's existing file).
    fd2: i32,
    open_flags: u32,
    path_len: u32,
    path2_len: u32,
    /// See `WatchEvent::matched`.
    matched: u32,
    path: [u8; ARG_PATH_CAP],
    path2: [u8; ARG_PATH_CAP],
}

impl PendingWatch {
    /// Copies the caller's path at `src` into `path` (flags say what failed).
    #[inline(always)]
    fn read_path(&mut self, src: u64) {
        self.path_len = read_user_str(
            self.path.as_mut_ptr(),
            ARG_PATH_CAP,
            src,
            &mut self.flags,
            watch_flags::PATH_UNREADABLE,
            watch_flags::PATH_TRUNCATED,
        );
    }

    /// The same into `path2`.
    #[inline(always)]
    fn read_path2(&mut self, src: u64) {
        self.path2_len = read_user_str(
            self.path2.as_mut_ptr(),
            ARG_PATH_CAP,
            src,
            &mut self.flags,
            watch_flags::PATH_UNREADABLE,
            watch_flags::PATH_TRUNCATED,
        );
    }
}

#[map]
static WATCH_PENDING: PerCpuArray<PendingWatch> = PerCpuArray::with_max_entries(1, 0);

/// ~8 KiB values, allocated only for watched calls in flight.
#[map]
static WATCH_INFLIGHT: HashMap<u64, PendingWatch> =
    HashMap::with_max_entries(1024, BPF_F_NO_PREALLOC);

const BPF_F_NO_PREALLOC: u32 = 1;

/// The exit's second stage (slot 0, [`watch_exit_second_dir`]); the
/// daemon fills it at load.
#[map]
static WATCH_STAGES: ProgramArray = ProgramArray::with_max_entries(1, 0);

/// Slot 0 is 1 once the daemon attached the fentry hooks of
/// `watch_inode.rs`: until then an undecided call would only be stored to
/// be dropped at its exit.
#[map]
static WATCH_BY_INODE: Array<u32> = Array::with_max_entries(1, 0);

#[inline(always)]
fn by_inode_hooks() -> bool {
    crate::maps::switch_on(&WATCH_BY_INODE)
}

super::syscall_programs!(
    watch_enter,
    watch_exit,
    watch_compat_enter,
    watch_compat_exit
);

#[inline(always)]
fn enter<E: super::Entry>(c: &E) -> u32 {
    let Some(op) = c.op() else { return 0 };
    let a = |i| c.arg(i);
    // Opens: only their intent is known now; the file comes at exit.
    let open = match op {
        SyscallOp::Open => Some((AT_FDCWD, a(1) as u32)),
        SyscallOp::Openat => Some((a(0) as i32, a(2) as u32)),
        SyscallOp::Openat2 => {
            // struct open_how { u64 flags; u64 mode; u64 resolve; }
            let mut flags = 0u64;
            // SAFETY: an 8-byte probe read into a local.
            unsafe { bpf_probe_read_user((&raw mut flags).cast(), 8, a(2) as *const _) };
            Some((a(0) as i32, flags as u32))
        }
        SyscallOp::Creat => Some((AT_FDCWD, O_CREAT | O_WRONLY | O_TRUNC)),
        _ => None,
    };
    if let Some((fd, flags)) = open {
        if flags & WRITE_INTENT != 0 {
            let p = PendingOpen {
                op: op as u32,
                flags,
                fd,
                _pad0: 0,
            };
            if !inflight::store(&OPEN_INFLIGHT, &super::entry_thread_key(), &p) {
                count_error(ProbeError::Inflight);
            }
        }
        return 0;
    }
    let Some(p) = WATCH_PENDING.get_ptr_mut(0) else {
        count_error(ProbeError::Scratch);
        return 0;
    };
    // SAFETY: this CPU's slot; the program does not sleep.
    let p = unsafe { &mut *p };
    put(&mut p.op, op as u32);
    put(&mut p.flags, 0);
    put(&mut p.fd, AT_FDCWD);
    put(&mut p.fd2, AT_FDCWD);
    put(&mut p.open_flags, 0);
    put(&mut p.path_len, 0);
    put(&mut p.path2_len, 0);
    put(&mut p.matched, 0);
    // Typed where plain loads are available: the directory a relative
    // path starts from is then reached and climbed with them.
    let task = Current::get().addr();
    if op == SyscallOp::Ftruncate {
        p.fd = a(0) as i32;
        // As an open's exit decides on its new fd's file.
        let matched = match super::fd_file_typed(task, p.fd) {
            Some(typed) => file_watched::<Direct>(Ok(typed)),
            None => file_watched::<Probe>(fd_file(task, p.fd)),
        };
        if let Some(matched) = matched {
            p.matched = matched;
            keep(p);
        }
        return 0;
    }
    // The path arguments: the new (or only) name and its dirfd, then the
    // second, if any (rename's new name, link's existing file, symlink's
    // target text) and its dirfd. Chosen here and read and decided
    // once below: each `path_watched` inlined is several bounded climbs
    // and scans, and one per call site took the ia32 program to the
    // verifier's million instructions.
    let (new, fd, second, fd2) = match op {
        SyscallOp::Truncate | SyscallOp::Unlink => (a(0), AT_FDCWD, None, AT_FDCWD),
        SyscallOp::Unlinkat => {
            p.open_flags = a(2) as u32;
            (a(1), a(0) as i32, None, AT_FDCWD)
        }
        SyscallOp::Rename => (a(0), AT_FDCWD, Some(a(1)), AT_FDCWD),
        SyscallOp::Renameat | SyscallOp::Renameat2 => {
            if op == SyscallOp::Renameat2 {
                p.open_flags = a(4) as u32;
            }
            (a(1), a(0) as i32, Some(a(3)), a(2) as i32)
        }
        // Link: `path` is the new name, `path2` the existing file.
        SyscallOp::Link => (a(1), AT_FDCWD, Some(a(0)), AT_FDCWD),
        SyscallOp::Linkat => {
            p.open_flags = a(4) as u32;
            (a(3), a(2) as i32, Some(a(1)), a(0) as i32)
        }
        // Symlink: `path2` is the target text, not a file the call
        // touches (never joined or matched).
        SyscallOp::Symlink => (a(1), AT_FDCWD, Some(a(0)), AT_FDCWD),
        SyscallOp::Symlinkat => (a(2), a(1) as i32, Some(a(0)), a(1) as i32),
        _ => return 0,
    };
    let second_is_file = !matches!(op, SyscallOp::Symlink | SyscallOp::Symlinkat);
    p.fd = fd;
    p.fd2 = fd2;
    p.read_path(new);
    if let Some(second) = second {
        p.read_path2(second);
    }
    // A rename in a directory above a watched path, decided first and
    // alone: after the scans below, each of the ways they end walked it
    // again, and the verifier refused the program; as a term of the
    // same decision, 835k instructions.
    if matches!(
        op,
        SyscallOp::Rename | SyscallOp::Renameat | SyscallOp::Renameat2
    ) && (in_dir_above(task, &p.path, p.path_len, p.fd)
        || in_dir_above(task, &p.path2, p.path2_len, p.fd2))
    {
        keep(p);
        return 0;
    }
    // A symlink's target is text, relative to the link's directory, not
    // to a dirfd: one that names a watched path sets up a write through
    // the link to it (a privileged process writing `/tmp/x -> /etc/shadow`,
    // a rename through `/tmp/l -> /etc/cron.d`). Absolute, it is matched
    // as a path argument; relative, only a `..` can lead it out of the
    // link's directory (which is not watched, else the new name is), and
    // the daemon joins it there. Either may also name a directory above a
    // watched path: absolute, matched as such a path argument is; relative,
    // see [`relative_target_above`].
    let target = !second_is_file && p.path2_len > 0;
    let absolute2 = p.path2[0] == b'/';
    let watched = path_watched(task, &p.path, p.path_len, p.fd)
        || ((second_is_file || (target && absolute2))
            && path_watched(task, &p.path2, p.path2_len, p.fd2))
        || (target && !absolute2 && path_may_leave_prefix(&p.path2))
        || (target && relative_target_above(p, absolute2));
    if watched {
        keep(p);
    } else if by_inode_hooks() {
        // Not decided by its path: the hooks inside the call may still
        // find a watched inode.
        p.flags |= watch_flags::UNDECIDED;
        keep(p);
    } else if symlink_unhandled() {
        // A path through a symlink the daemon has not read yet (`/tmp/c/x`,
        // `/tmp/c -> /proc/self/cwd`) hashes as no watched path: sent, for
        // the daemon to decide once it has.
        keep(p);
    }
    0
}

/// Is a symlink the kernel sent not handled by the daemon yet (within
/// `symlinks_sync::WINDOW_NS` of the last one sent)?
#[inline(always)]
fn symlink_unhandled() -> bool {
    let slot = |i| SYMLINKS_SYNC.get_ptr(i);
    let (Some(sent), Some(handled), Some(last)) = (
        slot(symlinks_sync::SENT),
        slot(symlinks_sync::HANDLED),
        slot(symlinks_sync::LAST_SENT_NS),
    ) else {
        return false;
    };
    // SAFETY: the map's values, read whole; written by other CPUs and the
    // daemon, so read as they are now.
    let (sent, handled, last) = unsafe {
        (
            core::ptr::read_volatile(sent),
            core::ptr::read_volatile(handled),
            core::ptr::read_volatile(last),
        )
    };
    if sent == handled {
        return false;
    }
    // SAFETY: the helper has no preconditions.
    let now = unsafe { aya_ebpf::helpers::bpf_ktime_get_boot_ns() };
    now.wrapping_sub(last) < symlinks_sync::WINDOW_NS
}

/// Does `task` share its `fs_struct` (root and cwd) with its thread
/// group's leader (itself, for the leader)?
#[inline(always)]
pub(super) fn shares_leaders_fs(task: u64) -> bool {
    let fs = read_ptr(task, off!(task_fs));
    let leaders = read_ptr(task, off!(task_group_leader)).and_then(|l| read_ptr(l, off!(task_fs)));
    matches!((fs, leaders), (Ok(a), Ok(b)) if a == b && a != 0)
}

/// Counts a symlink record about to be sent (or, from `io_uring`, just
/// sent: a symlinkat, renameat or linkat request's): its time first, so
/// that a
/// call on another CPU that sees the count sees a fresh time too. Before
/// the record is built: after it, the verifier walked this once for each
/// of the path walk's ends (watch_exit from 135k to 285k instructions).
/// One not sent after all (the ring buffer full: counted as a loss)
/// leaves the daemon behind the count until it catches up, once the
/// window (`symlinks_sync::WINDOW_NS`) has passed.
#[inline(always)]
pub(crate) fn symlink_sent() {
    use core::intrinsics::{AtomicOrdering, atomic_xadd};
    // SAFETY: the helper has no preconditions.
    let now = unsafe { aya_ebpf::helpers::bpf_ktime_get_boot_ns() };
    if let Some(last) = SYMLINKS_SYNC.get_ptr_mut(symlinks_sync::LAST_SENT_NS) {
        // SAFETY: the map's value, 8-aligned; a plain store of a time.
        unsafe { core::ptr::write_volatile(last, now) };
    }
    if let Some(sent) = SYMLINKS_SYNC.get_ptr_mut(symlinks_sync::SENT) {
        // SAFETY: the map's value, 8-aligned, shared between CPUs and only
        // changed atomically by them: an add whose result is unused, the
        // BPF_XADD every supported kernel takes (as `compat.rs` does).
        let _ = unsafe { atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(sent, 1) };
    }
}

/// Keeps the watched (or undecided) call `p` for its exit.
#[inline(always)]
fn keep(p: &PendingWatch) {
    if WATCH_INFLIGHT
        .insert(&super::entry_thread_key(), p, 0)
        .is_err()
    {
        count_error(ProbeError::Inflight);
    }
}

/// For the fentry hooks: the call in flight on this thread acts on
/// `dentries` (0: none). The first that is, or is under, a watched inode
/// names the watched path in the event (`matched`), which also decides an
/// undecided call; else one matched by name ([`named`]) does.
#[inline(always)]
pub(super) fn resolved(dentries: [u64; 2]) {
    let Some(p) = WATCH_INFLIGHT.get_ptr_mut(&super::thread_key()) else {
        return;
    };
    // SAFETY: this thread's live map value; only this thread touches it.
    let p = unsafe { &mut *p };
    // A match by name may still become one by inode (a rename's second
    // dentry comes in a later hook).
    if p.matched != 0 && !watch_matched_by_name(p.matched) {
        return;
    }
    let mut by_name = 0;
    for d in dentries {
        if d == 0 {
            continue;
        }
        let m = dentry_watched(d);
        if m != 0 {
            p.matched = m;
            return;
        }
        if by_name == 0 {
            by_name = named(d);
        }
    }
    if by_name != 0 {
        p.matched = by_name;
    }
}

/// `abi`: the `TaskInfo::flags` of the ABI the call came through; `ctx`
/// the program's context, for the second stage's tail call.
#[inline(always)]
fn exit(ctx: *mut core::ffi::c_void, ret: i64, abi: u32) -> u32 {
    let current = Current::get();
    let key = current.thread_key();
    if let Some(record) = inflight::find(&OPEN_INFLIGHT, &key) {
        // SAFETY: a live map value, this thread's only; copied out.
        let open = unsafe { *record };
        inflight::consume(record);
        // A failed open resolved no file to check.
        if ret < 0 || ret > i32::MAX as i64 {
            return 0;
        }
        let fd = ret as i32;
        // Decided through a typed file where one can be had (plain loads:
        // what nearly every open for writing pays), else through probe
        // reads. Neither file is live past the decision, so the verifier
        // walks what follows once.
        let verdict = match super::fd_file_typed(current.addr(), fd) {
            Some(typed) => open_verdict::<Direct>(current, Ok(typed)),
            None => open_verdict::<Probe>(current, current.fd_file(fd)),
        };
        let Some(matched) = verdict else {
            return 0;
        };
        // Read again for the record, untyped: only for watched files.
        let file = current.fd_file(fd);
        send(
            ret, abi, current, open.op, 0, open.fd, AT_FDCWD, open.flags, matched, None, file,
        );
        return 0;
    }
    let Some(p) = WATCH_INFLIGHT.get_ptr(&key) else {
        return 0;
    };
    // SAFETY: a live map value, removed below.
    let p = unsafe { &*p };
    if p.flags & watch_flags::UNDECIDED != 0 && p.matched == 0 {
        // Kept for the hooks, which found no watched inode.
        let _ = WATCH_INFLIGHT.remove(&key);
        return 0;
    }
    let file = if p.op == SyscallOp::Ftruncate as u32 {
        current.fd_file(p.fd)
    } else {
        Err(Miss::Absent)
    };
    if p.op == SyscallOp::Symlink as u32 || p.op == SyscallOp::Symlinkat as u32 {
        symlink_sent();
    }
    let staged = send(
        ret,
        abi,
        current,
        p.op,
        p.flags,
        p.fd,
        p.fd2,
        p.open_flags,
        p.matched,
        Some(p),
        file,
    );
    let _ = WATCH_INFLIGHT.remove(&key);
    if staged {
        crate::tail_call::tail_call!(ctx, WATCH_STAGES, 0);
        // No second stage: sent with the second path as given.
        count_error(ProbeError::TailCall);
        send_built();
    }
    0
}

/// The watch exit's second stage, native and ia32 alike, reached by tail
/// call (never attached): walks the directory of the second path of the
/// record the first built in this CPU's scratch (see
/// [`watch_flags::BASE2_UNKNOWN`]), after it, and sends the record. In a
/// program of its own: after the first walk, in the exit, the verifier
/// walked this one in each of that one's states, past its million
/// instructions (from 154k).
#[unsafe(no_mangle)]
#[unsafe(link_section = "tp_btf/sys_exit")]
pub extern "C" fn watch_exit_second_dir(_ctx: *mut core::ffi::c_void) -> u32 {
    let Some(buf) = scratch(&SYSCALL_SCRATCH) else {
        return 0;
    };
    // SAFETY: the first stage built a WatchEvent at the slot's start.
    let ev = unsafe { &mut *buf.cast::<WatchEvent>() };
    // SAFETY: FIXED is inside the scratch value.
    let data = unsafe { buf.add(FIXED) };
    let start = (ev.header.size as usize).wrapping_sub(FIXED) & DATA_MASK;
    let mut w = Writer { data, pos: start };
    let walk = write_found_path(&mut w, dir_path(Current::get().addr(), ev.fd2));
    if walk != Walk::Complete {
        ev.flags |= watch_flags::BASE2_TRUNCATED;
    }
    ev.base2_len = w.since(start) as u32;
    let size = FIXED + (w.pos & DATA_MASK);
    ev.header.size = size as u32;
    // SAFETY: size <= FIXED + DATA_MASK, inside the scratch value.
    unsafe { crate::ring::output(EventKind::FileWrite, buf, size) };
    0
}

/// Sends the record built in this CPU's scratch as it is.
#[inline(always)]
fn send_built() {
    let Some(buf) = scratch(&SYSCALL_SCRATCH) else {
        return;
    };
    // SAFETY: the first stage built a WatchEvent at the slot's start.
    let size = unsafe { (*buf.cast::<WatchEvent>()).header.size } as usize;
    let size = FIXED + (size.wrapping_sub(FIXED) & DATA_MASK);
    // SAFETY: size <= FIXED + DATA_MASK, inside the scratch value.
    unsafe { crate::ring::output(EventKind::FileWrite, buf, size) };
}

/// The open exit's decision on the file just opened for writing, read
/// through `R`: [`file_watched`]'s. One not watched may still be a
/// process's memory file, reported on its own.
#[inline(always)]
fn open_verdict<R: Reader>(current: Current, file: Result<u64, Miss>) -> Option<u32> {
    let verdict = file_watched::<R>(file);
    if verdict.is_none()
        && let Ok(file) = file
    {
        crate::proc_mem::opened_for_writing::<R>(current, file);
    }
    verdict
}

/// Builds and sends the record: the path arguments of `p` (if any), and
/// the base: `file`'s own path when it is known, else the directory a
/// relative path starts from. True where it is built and not sent: the
/// second path's directory is left for the second stage.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn send(
    ret: i64,
    abi: u32,
    current: Current,
    op: u32,
    flags: u32,
    fd: i32,
    fd2: i32,
    open_flags: u32,
    matched: u32,
    p: Option<&PendingWatch>,
    file: Result<u64, Miss>,
) -> bool {
    let Some(buf) = scratch(&SYSCALL_SCRATCH) else {
        return false;
    };
    // SAFETY: this CPU's scratch slot, 8-aligned, larger than WatchEvent.
    let ev = unsafe { &mut *buf.cast::<WatchEvent>() };
    if current.fill(&mut ev.task).is_err() {
        count_error(ProbeError::ReadTask);
        return false;
    }
    task::mark_abi(&mut ev.task, abi);
    ev.header.kind = EventKind::FileWrite as u32;
    // SAFETY: the helper has no preconditions.
    ev.header.boot_ns = unsafe { aya_ebpf::helpers::bpf_ktime_get_boot_ns() };
    ev.op = op;
    ev.flags = flags & !watch_flags::UNDECIDED;
    ev.ret = ret;
    ev.open_flags = open_flags;
    ev.fd = fd;
    ev.matched = matched;
    // SAFETY: FIXED is inside the scratch value.
    let data = unsafe { buf.add(FIXED) };
    let (path_len, path2_len) = match p {
        Some(p) => (
            p.path_len as usize & (ARG_PATH_CAP - 1),
            p.path2_len as usize & (ARG_PATH_CAP - 1),
        ),
        None => (0, 0),
    };
    if let Some(p) = p {
        copy(data, 0, p.path.as_ptr(), path_len);
    }
    let mut w = Writer {
        data,
        pos: path_len,
    };
    // Which paths are relative (a symlink's target is text, never joined).
    // linkat's empty existing file with AT_EMPTY_PATH is the file open at
    // its dirfd (an O_TMPFILE file written unseen, then given a name in
    // cron.d): walked as a relative second path's directory would be.
    let (relative, relative2, second_is_file) = match p {
        Some(p) => {
            let fd_file2 = p.path2_len == 0
                && op == SyscallOp::Linkat as u32
                && open_flags & AT_EMPTY_PATH != 0;
            (
                p.path_len > 0 && p.path[0] != b'/',
                fd_file2
                    || (p.path2_len > 0
                        && p.path2[0] != b'/'
                        && op != SyscallOp::Symlink as u32
                        && op != SyscallOp::Symlinkat as u32),
                fd_file2,
            )
        }
        None => (false, false, false),
    };
    // Set before the walk: the verifier walks it once per state that
    // reaches it, and these flags kept live past it made three of them.
    if relative && relative2 && fd2 != fd {
        ev.flags |= watch_flags::BASE2_UNKNOWN;
    }
    if second_is_file {
        ev.flags |= watch_flags::SECOND_IS_FILE;
    }
    let base = if file.is_ok() {
        ev.flags |= watch_flags::BASE_IS_FILE;
        Some(file.and_then(|f| field(f, off!(file_path))))
    } else if p.is_some() {
        // The first path's directory; where only the second path is
        // relative (`mv /tmp/x etc/cron.d/`), the second's: the daemon
        // joins both to it, and an absolute path is left as it is. Where
        // neither is, the cwd: an absolute path through `/proc/self/cwd`
        // (or a symlink to it: `/tmp/c/x`, `/tmp/c -> /proc/self/cwd`)
        // leads there, and the daemon cannot read it once the caller
        // exited or moved on (a rename's `mv` is gone before the record
        // is read).
        let dirfd = if relative {
            fd
        } else if relative2 {
            fd2
        } else {
            AT_FDCWD
        };
        if dirfd == AT_FDCWD {
            ev.flags |= watch_flags::BASE_IS_CWD;
            if shares_leaders_fs(current.addr()) {
                ev.flags |= watch_flags::CWD_IS_LEADERS;
            }
        }
        Some(dir_path(current.addr(), dirfd))
    } else {
        None
    };
    if let Some(base) = base {
        let walk = write_found_path(&mut w, base);
        if walk != Walk::Complete {
            ev.flags |= watch_flags::BASE_TRUNCATED;
        }
    }
    let base_len = w.since(path_len);
    if let Some(p) = p {
        copy(data, w.pos, p.path2.as_ptr(), path2_len);
    }
    ev.path_len = path_len as u32;
    ev.base_len = base_len as u32;
    ev.path2_len = path2_len as u32;
    ev.base2_len = 0;
    ev.fd2 = fd2;
    let size = FIXED + ((w.pos + path2_len) & DATA_MASK);
    ev.header.size = size as u32;
    // The second path's own directory is for the second stage (coreutils'
    // `mv x /etc/cron.d/` is renameat2(AT_FDCWD, "x", <fd of cron.d>,
    // "x"): the new name alone said nothing of where it went). Told by
    // the flag read back from the record: a value kept live past the
    // walk above multiplies the states the verifier walks it in.
    // SAFETY: the record's flags, inside the scratch value.
    if unsafe { core::ptr::read_volatile(&ev.flags) } & watch_flags::BASE2_UNKNOWN != 0 {
        return true;
    }
    // SAFETY: size <= FIXED + DATA_MASK, inside the scratch value.
    unsafe { crate::ring::output(EventKind::FileWrite, buf, size) };
    false
}

const FIXED: usize = core::mem::size_of::<WatchEvent>();

/// Is the open file watched? `Some(1 + the watched path's index)` when it,
/// or a directory above it, is a watched inode;
/// `Some(WATCH_MATCHED_*)` when it is in a directory a name rule names,
/// or is named as a shell's startup file ([`file_named`]); `Some(0)` when
/// it is in a directory that holds a watched file, for the daemon to
/// decide by its path: a watched file created after the sensor started
/// (`/etc/ld.so.preload`), or replaced since by a rename over it (how
/// passwd, useradd and visudo write) has an inode the maps do not hold
/// yet. None otherwise.
#[inline(always)]
fn file_watched<R: Reader>(file: Result<u64, Miss>) -> Option<u32> {
    let dentry = file
        .and_then(|f| field(f, off!(file_path)))
        .and_then(|path| R::u64(path, off!(path_dentry)))
        .ok()?;
    let (matched, in_parent) = climb::<R>(dentry, FILES_DIRECTORY);
    if matched != 0 {
        return Some(matched);
    }
    let rule = file_named::<R>(dentry);
    if rule != 0 {
        return Some(rule);
    }
    in_parent.then_some(0)
}

/// `.ssh` as four bytes read as a little-endian u32, the BPF target's
/// order.
const SSH_NAME: u32 = u32::from_le_bytes(*b".ssh");
/// `user`, likewise.
const USER_NAME: u32 = u32::from_le_bytes(*b"user");
/// `systemd` as the low seven bytes of a little-endian u64.
const SYSTEMD_NAME: u64 = u64::from_le_bytes(*b"systemd\0");
const SYSTEMD_MASK: u64 = (1 << 56) - 1;

/// The name rules: is `dentry` a directory one names, a file in one, or
/// a file one names? Its `WATCH_MATCHED_*` value, or 0. The rules, each
/// with its `[watch]` switch:
/// - `user_ssh_dirs`: a directory named `.ssh`. sshd reads a user's
///   `authorized_keys`, `rc` (run at each login) and `environment` there,
///   whichever account's home holds it and whenever it was made: an
///   account added by an intruder, or one that had no `~/.ssh` when the
///   sensor started;
/// - `user_unit_dirs`: a directory named `user` in one named `systemd`,
///   and the directories directly in it. systemd starts an account's own
///   units from `~/.config/systemd/user/` (persistence without root), with
///   their drop-ins (`x.service.d/`: an override of a unit the account
///   already runs) and dependencies (`default.target.wants/`); every
///   system-wide user unit directory has that name too;
/// - `shell_rc_files`: a file named as a shell's startup file
///   ([`rc_file`]).
///
/// Matched by the names the kernel resolved, whatever path led there (a
/// `~/.ssh` that is a symlink to another name is matched by inode, when
/// it exists at start; so is the file a home's startup file links to, as
/// the daemon finds them: `WATCH_INODE_SHELL_RC_TARGET`).
#[inline(always)]
fn named(dentry: u64) -> u32 {
    let rule = dir_rule::<Probe>(dentry);
    if rule != 0 {
        rule
    } else {
        file_named::<Probe>(dentry)
    }
}

/// [`named`] for a file (an open one: never a directory to rename): in a
/// directory a rule names, or named as a shell's startup file.
#[inline(always)]
fn file_named<R: Reader>(dentry: u64) -> u32 {
    let rule = parent::<R>(dentry).map_or(0, holds_named::<R>);
    if rule != 0 {
        rule
    } else {
        rc_file::<R>(dentry)
    }
}

/// The name rule for files (`shell_rc_files`): is `dentry` named as one
/// of the startup files a shell runs from a home (`SHELL_RC_NAMES`:
/// `.bashrc`, `.profile`, `.zshrc`…)? `WATCH_MATCHED_SHELL_RC`, or 0.
/// Whichever directory holds it: a home made after the start, root's,
/// `/etc/skel`'s (copied into each new account).
#[inline(always)]
fn rc_file<R: Reader>(dentry: u64) -> u32 {
    if !shell_rc_watched() {
        return 0;
    }
    // On every open for writing: with probe reads, the name's length and
    // address in one where `struct qstr` is laid out as on every kernel
    // (`hash_len`, then `name`), else one by one. (Plain loads take them
    // one by one: 6.1's verifier refuses a u64 load of `hash_len`, the
    // union's second member, as past the first's `hash`.)
    let name = off!(dentry_name);
    let Ok((len, text)) = (if !R::PLAIN_LOADS && off!(qstr_len) == 4 && off!(qstr_name) == 8 {
        field(dentry, name).and_then(|q| {
            // SAFETY: probe read of kernel memory into a local.
            unsafe { bpf_probe_read_kernel(q as *const [u64; 2]) }
                .map(|[hash_len, text]| ((hash_len >> 32) as u32, text))
                .map_err(|_| Miss::Fault)
        })
    } else {
        R::u32(dentry, plus(name, off!(qstr_len))).map(|len| {
            (
                len,
                R::u64(dentry, plus(name, off!(qstr_name))).unwrap_or(0),
            )
        })
    }) else {
        return 0;
    };
    if !(SHELL_RC_NAME_MIN as u32..=SHELL_RC_NAME_MAX as u32).contains(&len) || text == 0 {
        return 0;
    }
    // Both words are inside the dentry's inline copy of a name this short
    // (DNAME_INLINE_LEN: 32 bytes or more). A probe read either way: the
    // verifier types `name` (`const unsigned char *`) as a number.
    // SAFETY: probe read of kernel memory into a local.
    let Ok([lo, hi]) = (unsafe { bpf_probe_read_kernel(text as *const [u64; 2]) }) else {
        return 0;
    };
    if is_rc_name(len, lo, hi) {
        WATCH_MATCHED_SHELL_RC
    } else {
        0
    }
}

/// Are the first `len` bytes of two little-endian words (the bytes past
/// them are ignored) one of `SHELL_RC_NAMES`?
#[inline(always)]
fn is_rc_name(len: u32, lo: u64, hi: u64) -> bool {
    let lo = if len >= 8 {
        lo
    } else {
        lo & ((1u64 << (8 * len)) - 1)
    };
    let hi = if len > 8 {
        hi & ((1u64 << (8 * (len - 8))) - 1)
    } else {
        0
    };
    for (n, a, b) in SHELL_RC_WORDS {
        if len == n && lo == a && hi == b {
            return true;
        }
    }
    false
}

/// [`rc_file`]'s check on the `n` bytes of a path argument from `start`
/// (a relative path of one component: all of it).
#[inline(always)]
fn rc_name_in(path: &[u8; ARG_PATH_CAP], start: usize, n: usize) -> bool {
    if !(SHELL_RC_NAME_MIN..=SHELL_RC_NAME_MAX).contains(&n) {
        return false;
    }
    // All 16 bytes, past the name too (masked off), without a branch per
    // byte: a loop that stops at the name's end multiplies the states the
    // verifier walks at each of `path_watched`'s inlined sites.
    let (mut lo, mut hi) = (0u64, 0u64);
    for i in 0..8 {
        lo |= (path[(start + i) & (ARG_PATH_CAP - 1)] as u64) << (8 * i);
        hi |= (path[(start + 8 + i) & (ARG_PATH_CAP - 1)] as u64) << (8 * i);
    }
    is_rc_name(n as u32, lo, hi)
}

/// Does `path` end in `/` and one of `SHELL_RC_NAMES`? Its last 16 bytes,
/// read once, against each name's `SHELL_RC_TAILS` entry: no branch on
/// where the last slash is, whose every place would be a state of its own
/// for the verifier at each of `path_watched`'s inlined sites (ia32's
/// watch program went over the 1M-instruction limit that way).
#[inline(always)]
fn ends_in_rc_name(path: &[u8; ARG_PATH_CAP], len: usize) -> bool {
    let (mut lo, mut hi) = (0u64, 0u64);
    for i in 0..8 {
        lo |= (path[(len.wrapping_sub(16 - i)) & (ARG_PATH_CAP - 1)] as u64) << (8 * i);
        hi |= (path[(len.wrapping_sub(8 - i)) & (ARG_PATH_CAP - 1)] as u64) << (8 * i);
    }
    // Not compared with `len`: that would split its range, and the scans
    // below would be walked once per piece. A path shorter than the tail
    // has its start's bytes from the end of the buffer (wrapped): at worst
    // a call let through, which the daemon's exact check drops.
    for t in SHELL_RC_TAILS {
        if lo & t.lo_mask == t.lo_want && hi & t.hi_mask == t.hi_want {
            return true;
        }
    }
    false
}

/// The rule under which a file in directory `dir` is watched, or 0.
#[inline(always)]
fn holds_named<R: Reader>(dir: u64) -> u32 {
    let rule = dir_rule::<R>(dir);
    if rule != 0 || !user_unit_dirs_watched() {
        return rule;
    }
    // A unit's drop-in or dependency directory: one level down.
    match parent::<R>(dir) {
        Some(up) if dir_rule::<R>(up) == WATCH_MATCHED_USER_UNITS => WATCH_MATCHED_USER_UNITS,
        _ => 0,
    }
}

/// `dentry`'s directory; None at its filesystem's root.
#[inline(always)]
fn parent<R: Reader>(dentry: u64) -> Option<u64> {
    R::u64(dentry, off!(dentry_parent))
        .ok()
        .filter(|&dir| dir != 0 && dir != dentry)
}

/// The rule that names directory `dentry`, or 0.
#[inline(always)]
fn dir_rule<R: Reader>(dentry: u64) -> u32 {
    let name = off!(dentry_name);
    if R::u32(dentry, plus(name, off!(qstr_len))) != Ok(4) {
        return 0;
    }
    // The name's bytes by probe read: `name` is typed as a number.
    let Ok(first) = R::u64(dentry, plus(name, off!(qstr_name))).and_then(|n| read_u32(n, 0)) else {
        return 0;
    };
    if first == SSH_NAME && ssh_dirs_watched() {
        return WATCH_MATCHED_SSH_DIR;
    }
    if first == USER_NAME && user_unit_dirs_watched() && in_dir_named_systemd::<R>(dentry) {
        return WATCH_MATCHED_USER_UNITS;
    }
    0
}

#[inline(always)]
fn in_dir_named_systemd<R: Reader>(dentry: u64) -> bool {
    let name = off!(dentry_name);
    let Some(dir) = parent::<R>(dentry) else {
        return false;
    };
    R::u32(dir, plus(name, off!(qstr_len))) == Ok(7)
        && R::u64(dir, plus(name, off!(qstr_name)))
            .and_then(|n| Probe::u64(n, 0))
            .is_ok_and(|n| n & SYSTEMD_MASK == SYSTEMD_NAME)
}

/// Does the absolute `path` end in a directory a name rule names
/// (`…/.ssh`, `…/systemd/user/`) or in a component directly in one
/// (`…/.ssh/authorized_keys`), or in a shell's startup file's name
/// (`…/.bashrc`)? Scanned back from its end, over its last component (at
/// most NAME_MAX bytes) and the rule's names before it. For user units,
/// also one level further down: a drop-in or dependency directory's file
/// (`…/systemd/user/x.service.d/override.conf`).
#[inline(always)]
fn named_path(path: &[u8; ARG_PATH_CAP], len: u32) -> bool {
    let (ssh, units, rc) = (
        ssh_dirs_watched(),
        user_unit_dirs_watched(),
        shell_rc_watched(),
    );
    let len = len as usize;
    // Before the scans below, not after (see `ends_in_rc_name`).
    if rc && ends_in_rc_name(path, len) {
        return true;
    }
    if !ssh && !units {
        return false;
    }
    // `…/.ssh`: the directory itself.
    if dir_named_before(path, len, ssh, units) {
        return true;
    }
    // The last slash: `…/.ssh/` and `…/.ssh/name` have `/.ssh` before it.
    let mut last = None;
    for back in 1..=256usize {
        if back > len {
            break;
        }
        if path[(len - back) & (ARG_PATH_CAP - 1)] == b'/' {
            last = Some((len - back) & (ARG_PATH_CAP - 1));
            break;
        }
    }
    let Some(last) = last else {
        return false;
    };
    if dir_named_before(path, last, ssh, units) {
        return true;
    }
    if !units {
        return false;
    }
    // The slash before: a unit's drop-in or dependency directory
    // (`…/systemd/user/x.service.d/`), whose name is a unit's and short.
    for back in 1..=UNIT_DIR_NAME_MAX {
        if back > last {
            break;
        }
        if path[(last - back) & (ARG_PATH_CAP - 1)] == b'/' {
            return ends_with(path, last - back, b"/systemd/user");
        }
    }
    false
}

/// The longest name of a unit's drop-in or dependency directory that a
/// path argument's check looks past (a unit's name, and `.d` or
/// `.wants`): bounded for the verifier, which walks the loop at each of
/// `path_watched`'s inlined sites.
const UNIT_DIR_NAME_MAX: usize = 128;

/// Do `path`'s bytes before `end` end in a directory a rule in use names?
/// (A function, not a closure: LLVM outlined the closure, a BPF-to-BPF
/// call the build refuses.)
#[inline(always)]
fn dir_named_before(path: &[u8; ARG_PATH_CAP], end: usize, ssh: bool, units: bool) -> bool {
    (ssh && ends_with(path, end, b"/.ssh")) || (units && ends_with(path, end, b"/systemd/user"))
}

/// Do `path`'s bytes before `end` end with `suffix`?
#[inline(always)]
fn ends_with<const N: usize>(path: &[u8; ARG_PATH_CAP], end: usize, suffix: &[u8; N]) -> bool {
    if end < N {
        return false;
    }
    for i in 0..N {
        if path[(end - N + i) & (ARG_PATH_CAP - 1)] != suffix[i] {
            return false;
        }
    }
    true
}

/// A relative single-component path a name rule names: `.ssh`, `user`
/// (whose directory the daemon checks on the joined path), or a shell's
/// startup file.
#[inline(always)]
fn named_arg(path: &[u8; ARG_PATH_CAP], len: u32) -> bool {
    (len == 4
        && ((path[..4] == *b".ssh" && ssh_dirs_watched())
            || (path[..4] == *b"user" && user_unit_dirs_watched())))
        || (shell_rc_watched() && rc_name_in(path, 0, len as usize))
}

/// Climbs from `dentry` to its filesystem's root looking for a watched
/// inode: its `matched` (non-zero), or 0.
#[inline(always)]
fn dentry_watched(dentry: u64) -> u32 {
    climb::<Probe>(dentry, NO_LEVEL).0
}

/// [`climb`]'s `parent_level` for a file: whether its directory holds a
/// watched file.
const FILES_DIRECTORY: u32 = 1;
/// …for a directory: whether it holds one itself.
const ITSELF: u32 = 0;
/// …for neither.
const NO_LEVEL: u32 = u32::MAX;

/// [`dentry_watched`], and whether the directory `parent_level` steps up
/// from `dentry` (see the constants above) is in `WATCHED_PARENTS`: looked
/// up with the key the climb reads anyway (one lookup more, no reads),
/// since every successful open for writing on a watched filesystem asks.
#[inline(always)]
fn climb<R: Reader>(dentry: u64, parent_level: u32) -> (u32, bool) {
    // The climb never leaves the filesystem (d_parent ends at its root):
    // one device for every inode on the way, read once.
    let dev = match dentry_dev::<R>(dentry) {
        Some(dev) => dev,
        None => return (0, false),
    };
    // SAFETY: a lookup; the value is not kept.
    if unsafe { WATCHED_DEVS.get(&dev) }.is_none() {
        return (0, false);
    }
    let Some(bits) = watched_bits() else {
        count_error(ProbeError::Scratch);
        return (0, false);
    };
    let mut in_parent = false;
    let mut d = dentry;
    for i in 0..ANCESTORS_MAX {
        // Both at once: one probe read where those are the reads.
        let (inode, parent) =
            R::u64_pair(d, off!(dentry_inode), off!(dentry_parent)).unwrap_or((0, 0));
        if inode != 0 {
            let ino = R::u64(inode, off!(inode_ino)).unwrap_or(0);
            let key = ExeKey { ino, dev, _pad0: 0 };
            let watched = if may_hold(bits, watched_set::INODES, ino, dev) {
                // SAFETY: a lookup; the value is not kept.
                unsafe { WATCHED_INODES.get(&key) }
            } else {
                None
            };
            if let Some(v) = watched {
                // Another generation: a file made since with the watched
                // one's inode number, not it (and maybe under it: the climb
                // goes on). One unread is taken for it: a missed write is
                // worse than a wrong name.
                let same = v.generation.known == 0
                    || match R::u32(inode, off!(inode_generation)) {
                        Ok(g) => g == v.generation.generation,
                        Err(_) => true,
                    };
                if same {
                    // Non-zero: the daemon writes 1 + an index, or 1.
                    return (v.matched.max(1), in_parent);
                }
            }
            // SAFETY: as above.
            if i == parent_level
                && may_hold(bits, watched_set::PARENTS, ino, dev)
                && unsafe { WATCHED_PARENTS.get(&key) }.is_some()
            {
                in_parent = true;
            }
        }
        if parent == 0 || parent == d {
            break;
        }
        d = parent;
    }
    (0, in_parent)
}

/// The device of `dentry`'s filesystem, through its inode or (a negative
/// dentry: a rename's new name) its directory's.
#[inline(always)]
fn dentry_dev<R: Reader>(dentry: u64) -> Option<u32> {
    let mut inode = R::u64(dentry, off!(dentry_inode)).unwrap_or(0);
    if inode == 0 {
        let parent = R::u64(dentry, off!(dentry_parent)).unwrap_or(0);
        inode = R::u64(parent, off!(dentry_inode)).unwrap_or(0);
    }
    R::u64(inode, off!(inode_sb))
        .and_then(|sb| R::u32(sb, off!(sb_dev)))
        .ok()
}

/// Might symlink `p`, whose target (`path2`) is relative, lead from a
/// directory above a watched path into it (`/etc/s -> systemd/system`)?
/// Its target stays in the link's directory (a `..` is checked before),
/// which is looked up by its hash (`/etc/`); a relative link's directory
/// is the daemon's to find. The daemon decides on the target joined.
///
/// A scan of its own, after the others and for such symlinks only: the
/// hash coming out of `hashed_path_watched`, live across the scans that
/// follow it, took `watch_enter` from 213k verified instructions to over
/// the million. `absolute2` is tested here, not by the caller: with
/// `!absolute2 &&` at the call, next to the same test before it, the
/// compiled program took the verifier over the million too (224k so).
#[inline(always)]
fn relative_target_above(p: &PendingWatch, absolute2: bool) -> bool {
    if absolute2 {
        return false;
    }
    if p.path[0] != b'/' {
        return p.path_len > 0;
    }
    let mut hash = PATH_HASH_SEED;
    // The hash up to the last slash: the directory's.
    let mut dir_hash = PATH_HASH_SEED;
    // To the NUL, as `hashed_path_watched` scans. A name that long (up to
    // 255 bytes after its directory) is taken as in its last directory
    // within the span, which sends too much rather than too little.
    for i in 0..=PATH_HASH_SPAN {
        let b = p.path[i];
        if b == 0 {
            break;
        }
        hash = path_hash_step(hash, b);
        if b == b'/' {
            dir_hash = hash;
        }
    }
    // Above a watched path, or one (then the link's name is watched, and
    // was sent before this).
    watched_bits().is_none_or(|bits| path_hash_listed(bits, path_hash_step(dir_hash, 0)))
}

/// Is the path argument, relative and of one component (a longer one
/// was sent before this), a name in a directory above a watched path?
/// Its rename (`cd /home && mv u x`) may move a watched path, or put
/// another tree in its place: no hash of a relative path can tell, so the
/// directory is looked up by inode, and the daemon decides on the path
/// joined.
#[inline(always)]
fn in_dir_above(task: u64, path: &[u8; ARG_PATH_CAP], len: u32, dirfd: i32) -> bool {
    if len == 0 || path[0] == b'/' {
        return false;
    }
    dir_is::<AboveWatched>(task, dirfd)
}

/// A question [`dir_is`] asks of the directory a relative path starts
/// from, read with plain loads or probe reads.
trait DirCheck {
    fn check<R: Reader>(d: u64) -> bool;
}

/// [`dir_above`].
struct AboveWatched;

impl DirCheck for AboveWatched {
    #[inline(always)]
    fn check<R: Reader>(d: u64) -> bool {
        dir_above::<R>(d)
    }
}

/// [`dir_watched`].
struct WatchedOrHolding;

impl DirCheck for WatchedOrHolding {
    #[inline(always)]
    fn check<R: Reader>(d: u64) -> bool {
        dir_watched::<R>(d)
    }
}

/// `C`'s answer for the directory a relative path given with `dirfd`
/// starts from: through its typed dentry where [`dir_dentry_typed`] has
/// one, else read with probe reads. Neither dentry is live past the
/// check, so the verifier walks what follows once.
#[inline(always)]
fn dir_is<C: DirCheck>(task: u64, dirfd: i32) -> bool {
    match dir_dentry_typed(task, dirfd) {
        Some(d) => C::check::<Direct>(d),
        None => dir_path(task, dirfd)
            .and_then(|p| read_ptr(p, off!(path_dentry)))
            .is_ok_and(C::check::<Probe>),
    }
}

/// Is directory `d` one above a watched path ([`in_dir_above`])?
#[inline(always)]
fn dir_above<R: Reader>(d: u64) -> bool {
    let Some(dev) = dentry_dev::<R>(d) else {
        return false;
    };
    let Ok(ino) = R::u64(d, off!(dentry_inode)).and_then(|i| R::u64(i, off!(inode_ino))) else {
        return false;
    };
    let key = ExeKey { ino, dev, _pad0: 0 };
    watched_bits().is_none_or(|bits| {
        may_hold(bits, watched_set::ABOVE_DIRS, ino, dev)
            // SAFETY: a lookup; the value is not kept.
            && unsafe { WATCHED_ABOVE_DIRS.get(&key) }.is_some()
    })
}

/// The dentry of the directory a relative path given with `dirfd`
/// starts from, typed for plain loads where it can be had: the cwd, from
/// the task (typed where the daemon set `DIRECT_READS`), or a dirfd's
/// file from the fd table's embedded slots ([`super::fd_file_typed`]).
/// None elsewhere: the caller reads it with probe reads. A relative
/// rename's or unlink's two checks climb it: ~2 µs of probe reads on
/// this build VM for a rename in the cwd.
#[inline(always)]
fn dir_dentry_typed(task: u64, dirfd: i32) -> Option<u64> {
    if !crate::maps::direct_reads() {
        return None;
    }
    let path = if dirfd == AT_FDCWD {
        Direct::u64(task, off!(task_fs)).and_then(|fs| field(fs, off!(fs_pwd)))
    } else {
        field(super::fd_file_typed(task, dirfd)?, off!(file_path))
    };
    path.and_then(|p| Direct::u64(p, off!(path_dentry)))
        .ok()
        .filter(|&d| d != 0)
}

/// Might the path argument name a watched path? Absolute: it is one, or
/// below a watched directory. Relative: its directory is watched, or holds
/// a watched file.
#[inline(always)]
fn path_watched(task: u64, path: &[u8; ARG_PATH_CAP], len: u32, dirfd: i32) -> bool {
    if len == 0 {
        return false;
    }
    if path[0] == b'/' {
        // A path through a magic link (`/proc/self/cwd/x`, `/dev/fd/3/x`)
        // says nothing of where it leads: the daemon follows it. Checked
        // last: as a term before the hash scan, every one of the scan's
        // states was walked twice (+50k instructions).
        return hashed_path_watched(path) || named_path(path, len) || path_through_magic_link(path);
    }
    // A relative path of several components (`etc/cron.d/job`) can reach a
    // watched directory from anywhere: only the joined path can tell, and
    // the daemon joins it. One component is decided here, by its directory.
    if has_slash(path, len) || named_arg(path, len) {
        return true;
    }
    dir_is::<WatchedOrHolding>(task, dirfd)
}

/// Is directory `d`, where a relative path of one component names a
/// file, under a watched directory or holding a watched file (the daemon
/// checks which on the joined path)?
#[inline(always)]
fn dir_watched<R: Reader>(d: u64) -> bool {
    let (matched, holds_watched) = climb::<R>(d, ITSELF);
    matched != 0 || holds_watched || holds_named::<R>(d) != 0
}

/// Is the absolute path argument a watched path, or below a watched
/// directory, or a directory above one, or might it be? Hashed as it is
/// scanned: at each slash, the prefix up to it (`/etc/cron.d/`) is looked
/// up; at its end, the whole (`/etc/passwd`, `/etc/cron.d` itself, `/etc`).
/// Every watched path has its
/// hash in the map, so none is left to the fentry hooks alone, as those
/// beyond a fixed count of string slots were (`mv x /etc/udev/rules.d/`
/// went unseen where fentry is refused). A collision only sends the call
/// to the daemon, which compares the path itself.
///
/// A path spelled otherwise than where it leads (`//etc/cron.d/x`,
/// `/etc/./cron.d/x`, `/tmp/../etc/cron.d/x`, a `..` past the hashed
/// bytes) hashes as no watched path does: it is sent for the daemon to
/// decide on the path made normal (few programs write such paths; see
/// `path_may_leave_prefix`). A symlinked directory on the way is left to
/// the hooks, which decide by inode where they load (and to the daemon,
/// which follows a `..` after it again).
#[inline(always)]
fn hashed_path_watched(path: &[u8; ARG_PATH_CAP]) -> bool {
    const { assert!(PATH_HASH_SPAN < ARG_PATH_CAP) };
    if path_may_leave_prefix(path) {
        return true;
    }
    let Some(bits) = watched_bits() else {
        return true;
    };
    let mut hash = PATH_HASH_SEED;
    // Whether the prefix up to some slash may be a key (below a watched
    // directory; the directories above watched paths are in the map only
    // as whole paths): the prefixes' bits OR'ed, with no branch on them (a
    // branch at each slash took the verifier past the million). The
    // prefixes are looked up only where one's bit is set: below a watched
    // directory, or one path in hundreds.
    let mut prefix_bits = 0;
    // Scanned to its NUL (bpf_probe_read_user_str always writes one), one
    // byte past PATH_HASH_SPAN for the end of a path that long; not to
    // `len`: a loop that stops at `len` tells the verifier its exact value
    // at each exit, and every check after it was walked once for each.
    for i in 0..=PATH_HASH_SPAN {
        let b = path[i];
        if b == 0 {
            // A watched path, or a directory above one (its rename moves
            // a watched path, a symlink to it leads into one): the whole
            // path's hash, its NUL hashed too.
            if path_hash_listed(bits, path_hash_step(hash, 0)) {
                return true;
            }
            break;
        }
        hash = path_hash_step(hash, b);
        if b == b'/' {
            prefix_bits |= key_bit(bits, watched_set::PATH_HASHES, hash, 0);
        }
    }
    // Neither a watched path nor a directory above one (a path longer than
    // the span is longer than any): below a watched directory if one of
    // its prefixes is (and without a `..` that could lead back into one:
    // checked above).
    prefix_bits != 0 && prefix_listed(path)
}

/// Is the prefix of `path` up to one of its slashes a key of
/// `WATCHED_PATH_HASHES` (a watched directory)? [`hashed_path_watched`]
/// asks where one's bit is set.
#[inline(always)]
fn prefix_listed(path: &[u8; ARG_PATH_CAP]) -> bool {
    let mut hash = PATH_HASH_SEED;
    for i in 0..=PATH_HASH_SPAN {
        let b = path[i];
        if b == 0 {
            return false;
        }
        hash = path_hash_step(hash, b);
        // SAFETY: a lookup; the value is not kept.
        if b == b'/' && unsafe { WATCHED_PATH_HASHES.get(&hash) }.is_some() {
            return true;
        }
    }
    false
}

#[inline(always)]
fn has_slash(path: &[u8; ARG_PATH_CAP], len: u32) -> bool {
    // Bounded for the verifier; a path with no slash in its first 256
    // bytes is a single (long) component.
    for i in 0..256 {
        if i >= len as usize {
            break;
        }
        if path[i] == b'/' {
            return true;
        }
    }
    false
}
