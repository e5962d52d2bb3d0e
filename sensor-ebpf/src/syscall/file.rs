//! File attribute changes: chmod, chown and xattr changes.
//!
//! At entry: the path argument (copied when the kernel copies it), the xattr
//! name and value, and for fd-based calls the file's attributes before the
//! change. At exit: the result, the caller's credentials, and the base
//! directory that a relative path starts from (or the fd's own path).
//!
//! What these hooks cannot see: the inode behind a *path* argument (no
//! lookup is possible from a tracepoint), so path-based calls carry no
//! "before" attributes here, and the path is the argument's text. Where
//! fentry loads, `security_path_{chmod,chown}` give the file the kernel
//! resolved (`file_path.rs`), and `security_inode_setattr` the attributes
//! for the rest (`file_setattr.rs`); see the daemon's hook table.

use aya_ebpf::helpers::generated::bpf_probe_read_user;
use aya_ebpf::macros::map;
use aya_ebpf::maps::{HashMap, PerCpuArray};
use sensor_common::{
    ARG_PATH_CAP, AT_EMPTY_PATH, AT_FDCWD, EventKind, FileEvent, PATH_CAP, PATH_COMPONENTS_MAX,
    ProbeError, SyscallOp, Target, XATTR_NAME_CAP, XATTR_VALUE_CAP, file_flags, file_path_hooks,
    has_other_names,
};

use super::{copy, fd_file, inflight, read_user_str};
use crate::kernel::{Miss, copy_len, field, put, read_ptr, read_u16, read_u32, read_u64};
use crate::maps::{DATA_MASK, SYSCALL_SCRATCH, count_error, off, scratch};
use crate::path::{Walk, Writer, path_parts, write_mounted};
use crate::task::{self, Current};

/// What was known at entry, besides the strings.
#[repr(C)]
pub struct PendingHead {
    pub(super) op: u32,
    pub(super) flags: u32,
    fd: i32,
    at_flags: u32,
    mode: u32,
    uid: u32,
    gid: u32,
    old_mode: u32,
    old_uid: u32,
    old_gid: u32,
    dev: u32,
    path_len: u32,
    pub(super) name_len: u32,
    pub(super) value_len: u32,
    pub(super) value_size: u32,
    nlink: u32,
    ino: u64,
    /// With [`file_flags::KERNEL_PATH`]: the `struct vfsmount` and dentry
    /// the kernel resolved (see `file_path.rs`), walked at the exit.
    pub(super) kernel_mnt: u64,
    pub(super) kernel_dentry: u64,
}

/// What was known at entry. Too large for the stack: assembled in a per-CPU
/// slot, then copied into an in-flight map.
#[repr(C)]
pub struct PendingFile {
    pub(super) head: PendingHead,
    path: [u8; ARG_PATH_CAP],
    pub(super) name: [u8; XATTR_NAME_CAP],
    pub(super) value: [u8; XATTR_VALUE_CAP],
}

/// The first part of a [`PendingFile`]: its head and a path shorter than
/// [`SHORT_PATH_CAP`], for calls without an xattr (nearly all of them).
#[repr(C)]
pub struct PendingShort {
    head: PendingHead,
    path: [u8; SHORT_PATH_CAP],
}

const SHORT_PATH_CAP: usize = 256;

#[map]
static FILE_PENDING: PerCpuArray<PendingFile> = PerCpuArray::with_max_entries(1, 0);

/// File syscalls between entry and exit, by thread, whose path fits in a
/// [`PendingShort`]. Preallocated (about 1.5 MiB): storing one costs a
/// copy of a third of a KiB and no allocation, where a [`PendingFile`]
/// costs an allocation and a 4.5 KiB copy, which was a third of the
/// file family's time per call.
///
/// Kept between the thread's calls (see [`inflight`]).
#[map]
static FILE_INFLIGHT_SHORT: HashMap<u64, PendingShort> = HashMap::with_max_entries(4096, 0);

/// The other file syscalls between entry and exit (long paths, xattrs,
/// or the short map full). Not preallocated: each value is ~4.5 KiB and
/// only calls in flight need one.
#[map]
pub(super) static FILE_INFLIGHT: HashMap<u64, PendingFile> =
    HashMap::with_max_entries(4096, BPF_F_NO_PREALLOC);

const BPF_F_NO_PREALLOC: u32 = 1;

// SAFETY: repr(C), starting with its op (PendingShort with its PendingHead).
unsafe impl inflight::Record for PendingHead {}
// SAFETY: as above.
unsafe impl inflight::Record for PendingShort {}

super::syscall_programs!(file_enter, file_exit, file_compat_enter, file_compat_exit);

#[inline(always)]
fn enter<E: super::Entry>(c: &E) -> u32 {
    let Some(op) = c.op() else { return 0 };
    let Some(target) = op.target() else { return 0 };
    let key = super::entry_thread_key();
    // Nearly every call: the thread's short record from its previous call
    // is there, and is filled in place (a copy of a third of a KiB less
    // than assembling it aside). Its op is written last: until then the
    // record reads as consumed.
    if !op.is_xattr()
        && let Some(slot) = FILE_INFLIGHT_SHORT.get_ptr_mut(&key)
    {
        // SAFETY: this thread's record, which no other thread touches.
        let r = unsafe { &mut *slot };
        inflight::consume(slot);
        if fill(c, op, target, &mut r.head, &mut r.path).is_none() {
            return 0;
        }
        if r.head.flags & file_flags::PATH_TRUNCATED == 0 {
            put(&mut r.head.op, op as u32);
            return 0;
        }
        // Too long for it: read again into a long record below.
    }
    let Some(p) = FILE_PENDING.get_ptr_mut(0) else {
        count_error(ProbeError::Scratch);
        return 0;
    };
    // SAFETY: this CPU's slot; the program does not sleep.
    let p = unsafe { &mut *p };
    let Some(rest) = fill(c, op, target, &mut p.head, &mut p.path) else {
        return 0;
    };
    p.head.op = op as u32;
    if op.is_xattr() {
        let name_ptr = c.arg(rest);
        let unreadable = file_flags::NAME_UNREADABLE;
        p.head.name_len = read_user_str(
            p.name.as_mut_ptr(),
            XATTR_NAME_CAP,
            name_ptr,
            &mut p.head.flags,
            unreadable,
            0,
        );
        // Only security.* (file capabilities, LSM labels) and POSIX ACLs
        // change privileges; user.* and trusted.* are dropped here. An
        // unreadable name is reported as such. Where the kernel's copy of
        // the name is seen (`file_xattr.rs`), the exit decides by that
        // instead: the caller's memory can say user.* now and security.*
        // when the kernel copies it.
        if p.head.flags & unreadable == 0
            && !privileged_xattr(&p.name)
            && !crate::syscall::file_xattr::kernel_copies()
        {
            return 0;
        }
        if op.sets_xattr() {
            let value_ptr = c.arg(rest + 1);
            let size = c.arg(rest + 2);
            p.head.at_flags = c.arg(rest + 3) as u32;
            p.head.value_size = if size > u32::MAX as u64 {
                u32::MAX
            } else {
                size as u32
            };
            if p.head.value_size > XATTR_VALUE_CAP as u32 {
                p.head.flags |= file_flags::VALUE_TRUNCATED;
            }
            let mut len = copy_len::<XATTR_VALUE_CAP>(size);
            if len > 0 {
                // SAFETY: probe read of at most XATTR_VALUE_CAP bytes into value.
                let r = unsafe {
                    bpf_probe_read_user(p.value.as_mut_ptr().cast(), len, value_ptr as *const _)
                };
                if r < 0 {
                    p.head.flags |= file_flags::VALUE_UNREADABLE;
                    count_error(ProbeError::ReadArg);
                    len = 0;
                }
            }
            p.head.value_len = len;
        }
    }
    let short = !op.is_xattr() && (p.head.path_len as usize) < SHORT_PATH_CAP;
    // SAFETY: a PendingShort is the start of a PendingFile (the same head,
    // then the first SHORT_PATH_CAP bytes of the path, which hold it all).
    let prefix = unsafe { &*(p as *const PendingFile).cast::<PendingShort>() };
    if short && inflight::store(&FILE_INFLIGHT_SHORT, &key, prefix) {
        return 0;
    }
    // The exit looks in the short map first: a record left there by a call
    // whose exit never ran must not shadow this one.
    if let Some(stale) = inflight::find(&FILE_INFLIGHT_SHORT, &key) {
        inflight::consume(stale);
    }
    if FILE_INFLIGHT.insert(&key, &*p, 0).is_err() {
        count_error(ProbeError::Inflight);
    }
    0
}

/// Fills `head` (all but its op) and `path` from the call's arguments: the
/// path or fd, the mode or owners, and for fd-based calls the file's
/// attributes before the change. None: the path is ignored by the
/// filters. Else the index of the first argument after the target, where
/// an xattr call's name is.
#[inline(always)]
fn fill<E: super::Entry, const CAP: usize>(
    c: &E,
    op: SyscallOp,
    target: Target,
    head: &mut PendingHead,
    path: &mut [u8; CAP],
) -> Option<usize> {
    head.flags = 0;
    head.fd = AT_FDCWD;
    head.at_flags = 0;
    head.mode = 0;
    head.uid = u32::MAX;
    head.gid = u32::MAX;
    put(&mut head.path_len, 0);
    put(&mut head.name_len, 0);
    put(&mut head.value_len, 0);
    put(&mut head.value_size, 0);

    // Where the path (or fd) is, and where the other arguments start.
    let (path_ptr, rest) = match target {
        Target::Path => (c.arg(0), 1),
        Target::Fd => {
            head.fd = c.arg(0) as i32;
            (0, 1)
        }
        Target::DirfdPath => {
            head.fd = c.arg(0) as i32;
            (c.arg(1), 2)
        }
    };
    match op {
        SyscallOp::Chmod | SyscallOp::Fchmod | SyscallOp::Fchmodat => {
            head.mode = c.arg(rest) as u32
        }
        SyscallOp::Fchmodat2 => {
            head.mode = c.arg(rest) as u32;
            head.at_flags = c.arg(rest + 1) as u32;
        }
        SyscallOp::Chown | SyscallOp::Fchown | SyscallOp::Lchown | SyscallOp::Fchownat => {
            head.uid = c.arg(rest) as u32;
            head.gid = c.arg(rest + 1) as u32;
            if op == SyscallOp::Fchownat {
                head.at_flags = c.arg(rest + 2) as u32;
            }
        }
        _ => {}
    }
    if path_ptr != 0 {
        let (unreadable, truncated) = (file_flags::PATH_UNREADABLE, file_flags::PATH_TRUNCATED);
        head.path_len = read_user_str(
            path.as_mut_ptr(),
            CAP,
            path_ptr,
            &mut head.flags,
            unreadable,
            truncated,
        );
        // An argument with a `..` can lead out of the prefix its bytes
        // start with (`/tmp/ignored/../../etc/shadow`), and so can one read
        // cut short: neither is ignored by its bytes (nor, to keep the
        // check cheap, one with a `.` or empty component, or a name that
        // ends in a dot). io_uring's requests need no such check: their
        // opens go by the file opened, and their name changes are kept.
        if crate::filter::path_ignored(path, head.path_len)
            && !sensor_common::path_may_leave_prefix(path)
        {
            if !kept_when_ignored(op, head.mode) {
                return None;
            }
            head.flags |= file_flags::ARG_IGNORED;
        }
    }
    // The file itself is known now for fd-based calls: its attributes
    // before the change.
    if acts_on_fd(target, head.path_len, head.at_flags, head.flags) {
        let inode =
            fd_file(super::current_task(), head.fd).and_then(|f| read_ptr(f, off!(file_inode)));
        match inode.and_then(|i| read_attrs(i, head)) {
            Ok(()) => head.flags |= file_flags::OLD_KNOWN,
            Err(Miss::Fault) => count_error(ProbeError::ReadTask),
            Err(Miss::Absent) => {}
        }
    }
    Some(rest)
}

/// Is a call whose path argument starts with an ignored prefix still kept?
/// The argument's text does not decide which file changes: a symlink under
/// the prefix can point anywhere. So the entry drops only what it may:
/// - chmod and chown where the kernel resolves the file (`file_path.rs`)
///   are kept for the exit to decide by that file's path (see
///   [`ignored_by_path`]);
/// - a chmod that sets the setuid or setgid bit, and a privileged xattr
///   change (the exit drops the others), are never dropped by a path: a
///   link can give any file a name under an ignored prefix.
#[inline(always)]
fn kept_when_ignored(op: SyscallOp, mode: u32) -> bool {
    if !op.path_filter_applies(mode) {
        true
    } else if op.is_chmod() {
        super::file_path::kernel_resolves(file_path_hooks::CHMOD)
    } else {
        super::file_path::kernel_resolves(file_path_hooks::CHOWN)
    }
}

/// Where the parts of this thread's in-flight record are.
pub(super) struct Found {
    pub(super) head: *mut PendingHead,
    path: *const u8,
    /// The xattr name and value (a short record has none: their lengths
    /// are 0 and these point at its path).
    name: *const u8,
    value: *const u8,
    short: bool,
}

/// This thread's in-flight record, in whichever map holds it (the short
/// one first: see `enter`).
#[inline(always)]
pub(super) fn find(key: &u64) -> Option<Found> {
    if let Some(p) = inflight::find(&FILE_INFLIGHT_SHORT, key) {
        // SAFETY: a live map value.
        let p = unsafe { &mut *p };
        return Some(Found {
            head: &mut p.head,
            path: p.path.as_ptr(),
            name: p.path.as_ptr(),
            value: p.path.as_ptr(),
            short: true,
        });
    }
    // SAFETY: as above.
    let p = unsafe { &mut *FILE_INFLIGHT.get_ptr_mut(key)? };
    Some(Found {
        head: &mut p.head,
        path: p.path.as_ptr(),
        name: p.name.as_ptr(),
        value: p.value.as_ptr(),
        short: false,
    })
}

/// Ends the call whose record is `found`: a short record is kept for the
/// thread's next call (see [`inflight`]), a long one is removed.
#[inline(always)]
fn end(key: &u64, found: &Found) {
    if found.short {
        inflight::consume(found.head);
    } else {
        let _ = FILE_INFLIGHT.remove(key);
    }
}

/// The thread `key` is exiting: its short record goes (a long one was
/// removed by its exit already).
#[inline(always)]
pub(super) fn thread_exited(key: &u64) {
    let _ = FILE_INFLIGHT_SHORT.remove(key);
}

/// `abi`: the `TaskInfo::flags` of the ABI the call came through.
#[inline(always)]
fn exit(_ctx: *mut core::ffi::c_void, ret: i64, abi: u32) -> u32 {
    let current = Current::get();
    let key = current.thread_key();
    let Some(found) = find(&key) else {
        return 0;
    };
    let Some(buf) = scratch(&SYSCALL_SCRATCH) else {
        end(&key, &found);
        return 0;
    };
    // SAFETY: a live map value, this thread's only, ended only at the end.
    let p = unsafe { &*found.head };
    let op = SyscallOp::from_u32(p.op);
    // An xattr call the entry kept for its name to be decided here (see
    // `enter`): dropped unless the name, the kernel's copy where the hook
    // saw it, changes privileges. Xattr calls are never in short records.
    if !found.short
        && p.flags & file_flags::NAME_UNREADABLE == 0
        && op.is_some_and(SyscallOp::is_xattr)
        // SAFETY: a long record's name, XATTR_NAME_CAP bytes in the map value.
        && !privileged_xattr(unsafe { &*found.name.cast::<[u8; XATTR_NAME_CAP]>() })
    {
        end(&key, &found);
        return 0;
    }
    // SAFETY: this CPU's scratch slot, 8-aligned and larger than FileEvent.
    let ev = unsafe { &mut *buf.cast::<FileEvent>() };
    // SAFETY: the helper has no preconditions.
    ev.header.boot_ns = unsafe { aya_ebpf::helpers::bpf_ktime_get_boot_ns() };
    ev.header.kind = EventKind::FileAttr as u32;
    if current.fill(&mut ev.task).is_err() {
        count_error(ProbeError::ReadTask);
        end(&key, &found);
        return 0;
    }
    task::mark_abi(&mut ev.task, abi);
    ev.op = p.op;
    ev.flags = p.flags;
    ev.ret = ret;
    ev.fd = p.fd;
    ev.at_flags = p.at_flags;
    ev.mode = p.mode;
    ev.uid = p.uid;
    ev.gid = p.gid;
    ev.old_mode = p.old_mode;
    ev.old_uid = p.old_uid;
    ev.old_gid = p.old_gid;
    ev.dev = p.dev;
    ev.nlink = p.nlink;
    ev.ino = p.ino;
    ev.value_size = p.value_size;
    ev._pad1 = 0;

    // SAFETY: FIXED is inside the scratch value.
    let data = unsafe { buf.add(FIXED) };
    // 1. The path argument. path_len < ARG_PATH_CAP by construction; the
    //    mask proves it to the verifier.
    let path_len = p.path_len as usize & (ARG_PATH_CAP - 1);
    if found.short {
        copy_short_path(data, found.path, path_len);
    } else {
        copy(data, 0, found.path, path_len);
    }
    ev.path_len = path_len as u32;

    // 2. The base: the fd's file, or the directory a relative path starts from.
    let mut w = Writer {
        data,
        pos: path_len,
    };
    //    Where the kernel resolved the file, its path, as the mount and
    //    dentry the hook kept; else the kernel's `struct path` of the base.
    let target = op.and_then(SyscallOp::target);
    let base: Option<(u64, u64)> = if p.flags & file_flags::KERNEL_PATH != 0 && still_resolved(p) {
        ev.flags |= file_flags::BASE_IS_FILE;
        Some((p.kernel_mnt, p.kernel_dentry))
    } else {
        // Resolved, but that name no longer holds the file (unlinked by
        // another thread since the hook): the argument, which may have
        // led there through a symlink, no longer decides the path filter.
        if p.flags & file_flags::KERNEL_PATH != 0 {
            ev.flags &= !file_flags::ARG_IGNORED;
        }
        ev.flags &= !file_flags::KERNEL_PATH;
        let path = match target {
            Some(t) if acts_on_fd(t, p.path_len, p.at_flags, p.flags) => {
                ev.flags |= file_flags::BASE_IS_FILE;
                Some(
                    current
                        .fd_file(p.fd)
                        .and_then(|f| field(f, off!(file_path))),
                )
            }
            // An absolute path needs no base, unless it goes through
            // `/proc` (`/proc/self/cwd/x`, or `/proc/thread-self/cwd/x`):
            // the daemon follows it from the cwd at the call, which it
            // cannot read once the caller exited or moved on.
            // SAFETY: the path's first byte, inside the map value.
            _ if p.path_len > 0 && unsafe { *found.path } == b'/' => {
                if through_proc(found.path, p.path_len) {
                    ev.flags |= file_flags::BASE_IS_CWD;
                    if super::watch::shares_leaders_fs(current.addr()) {
                        ev.flags |= file_flags::CWD_IS_LEADERS;
                    }
                    Some(super::dir_path(current.addr(), AT_FDCWD))
                } else {
                    None
                }
            }
            _ => Some(super::dir_path(current.addr(), p.fd)),
        };
        // An unreadable one is (0, 0): a failed walk.
        path.map(|path| path.map_or((0, 0), path_parts))
    };
    let mut complete = false;
    if let Some((mnt, dentry)) = base {
        let walk = write_mounted(&mut w, mnt, dentry, PATH_CAP, PATH_COMPONENTS_MAX);
        match walk {
            Walk::Complete => complete = true,
            Walk::Truncated => ev.flags |= file_flags::BASE_TRUNCATED,
            Walk::Failed => {
                ev.flags |= file_flags::BASE_TRUNCATED | file_flags::BASE_FAILED;
                count_error(ProbeError::ReadPath);
            }
        }
    }
    ev.base_len = w.since(path_len) as u32;
    let resolved = match (ev.flags & file_flags::KERNEL_PATH != 0, complete) {
        (true, true) => Resolved::Walked(path_len, ev.base_len as usize),
        (true, false) => Resolved::CutShort,
        (false, _) => Resolved::No,
    };
    if ignored_by_path(op, p, ev.flags, data, resolved) {
        end(&key, &found);
        return 0;
    }

    // 3. The xattr name and value.
    let name_len = p.name_len as usize & (XATTR_NAME_CAP - 1);
    copy(data, w.pos, found.name, name_len);
    ev.name_len = name_len as u32;
    let value_at = (w.pos + name_len) & DATA_MASK;
    let value_len = p.value_len as usize & (2 * XATTR_VALUE_CAP - 1);
    let value_len = if value_len > XATTR_VALUE_CAP {
        XATTR_VALUE_CAP
    } else {
        value_len
    };
    copy(data, value_at, found.value, value_len);
    ev.value_len = value_len as u32;

    let size = FIXED + ((value_at + value_len) & DATA_MASK);
    ev.header.size = size as u32;
    // SAFETY: size <= FIXED + DATA_MASK, inside the scratch value.
    unsafe { crate::ring::output(EventKind::FileAttr, buf, size) };
    end(&key, &found);
    0
}

const FIXED: usize = core::mem::size_of::<FileEvent>();

// copy_short_path's word loads and stores are aligned: the scratch slot
// is, and so are the event's data and the short record's path in theirs.
const _: () = assert!(FIXED % 8 == 0);
const _: () = assert!(core::mem::offset_of!(PendingShort, path) % 8 == 0);
const _: () = assert!(SHORT_PATH_CAP % 8 == 0);

/// Copies a short record's path (`len` < [`SHORT_PATH_CAP`]) to the start
/// of the event's data, eight bytes at a time with plain loads and
/// stores: both are map values, and [`copy`]'s helper call costs more
/// than the few words of a path. Whole words: up to 7 bytes past the path
/// go along, inside both buffers, and are written over or not sent.
/// Volatile, so that LLVM does not turn the loop into a `memcpy` call.
#[inline(always)]
fn copy_short_path(data: *mut u8, path: *const u8, len: usize) {
    let words = len.div_ceil(8);
    let (dst, src) = (data.cast::<u64>(), path.cast::<u64>());
    for i in 0..SHORT_PATH_CAP / 8 {
        if i >= words {
            break;
        }
        // SAFETY: word i < SHORT_PATH_CAP / 8 of the short record's path
        // and of the scratch slot's data (larger), both 8-aligned.
        unsafe { dst.add(i).write_volatile(src.add(i).read_volatile()) };
    }
}

/// Does the path argument (`path`, `len` bytes of a map value) start with
/// `/proc/`? Byte by byte: six loads, in either record's path.
#[inline(always)]
fn through_proc(path: *const u8, len: u32) -> bool {
    const PROC: &[u8; 6] = b"/proc/";
    if len < PROC.len() as u32 {
        return false;
    }
    let mut i = 0;
    while i < PROC.len() {
        // SAFETY: i < 6, inside either record's path (at least 8 bytes).
        if unsafe { path.add(i).read_volatile() } != PROC[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Does the dentry the kernel resolved (`file_path.rs`) still name the
/// inode it named then? The hook held no reference: by the exit the
/// dentry may have been unlinked (no inode) or freed and reused. Compared
/// as plain numbers, which 5.10's verifier follows.
#[inline(always)]
fn still_resolved(p: &PendingHead) -> bool {
    let Ok(inode) = read_ptr(p.kernel_dentry, off!(dentry_inode)) else {
        return false;
    };
    let ino = read_u64(inode, off!(inode_ino)).unwrap_or(0);
    let dev = read_ptr(inode, off!(inode_sb))
        .and_then(|sb| read_u32(sb, off!(sb_dev)))
        .unwrap_or(u32::MAX);
    ino != 0 && ino == p.ino && dev == p.dev
}

/// Whether, and how, the exit has the file the kernel resolved.
#[derive(Clone, Copy)]
enum Resolved {
    /// Walked completely: at the data's `.0`, `.1` bytes long.
    Walked(usize, usize),
    /// Walked, but cut short: its start, which a prefix is, is missing.
    CutShort,
    /// Not resolved (no hook, or the file gone from its name by the exit).
    No,
}

/// Does `[filter] ignore_path_prefixes` drop this call? Decided here
/// rather than at the entry for the calls the entry kept (see
/// [`kept_when_ignored`]), so that what the filter drops still never
/// reaches userspace; the daemon's `pipeline::file::ignored` takes the
/// same decision, and takes it alone for prefixes that are not
/// directories (`/var/lib/docker`), which a walked path cannot be matched
/// against (see `filter::walked_path_ignored`).
/// - A chmod that sets the setuid or setgid bit, and xattr changes: never.
/// - A resolved file: by its path, unless it has other names (a hard link
///   under a prefix can name any file). Walked only in part: kept, as no
///   prefix can be told.
/// - Not resolved: by the argument, as the entry would have (`flags`,
///   the event's: see where the exit clears `ARG_IGNORED`).
#[inline(always)]
fn ignored_by_path(
    op: Option<SyscallOp>,
    p: &PendingHead,
    flags: u32,
    data: *const u8,
    resolved: Resolved,
) -> bool {
    if !op.is_some_and(|op| op.path_filter_applies(p.mode)) {
        return false;
    }
    match resolved {
        Resolved::Walked(at, len) => {
            !has_other_names(p.old_mode, p.nlink)
                && crate::filter::walked_path_ignored(data, at, len)
        }
        Resolved::CutShort => false,
        Resolved::No => flags & file_flags::ARG_IGNORED != 0,
    }
}

/// Does the call act on the file open at `fd` rather than on a path?
#[inline(always)]
fn acts_on_fd(target: Target, path_len: u32, at_flags: u32, flags: u32) -> bool {
    match target {
        Target::Fd => true,
        Target::DirfdPath => {
            path_len == 0
                && flags & file_flags::PATH_UNREADABLE == 0
                && at_flags & AT_EMPTY_PATH != 0
        }
        Target::Path => false,
    }
}

/// The attributes of the file a hook inside the call saw the kernel
/// resolve (`dentry`) into `p`, over what the entry read: with
/// `OLD_KNOWN` when read, without it where a read failed (some may have
/// been written over). Whether they were read.
#[inline(always)]
pub(super) fn dentry_attrs(dentry: u64, p: &mut PendingHead) -> bool {
    match read_ptr(dentry, off!(dentry_inode)).and_then(|inode| read_attrs(inode, p)) {
        Ok(()) => {
            p.flags |= file_flags::OLD_KNOWN;
            true
        }
        Err(miss) => {
            p.flags &= !file_flags::OLD_KNOWN;
            if miss == Miss::Fault {
                count_error(ProbeError::ReadTask);
            }
            false
        }
    }
}

/// The inode's mode, owner, links, number and device, into `p.old_*`,
/// `p.nlink`, `p.ino` and `p.dev`. The links tell the daemon's path filter
/// that the file has other names than the one it decides by.
#[inline(always)]
pub(super) fn read_attrs(inode: u64, p: &mut PendingHead) -> Result<(), Miss> {
    p.old_mode = read_u16(inode, off!(inode_mode))? as u32;
    p.old_uid = read_u32(inode, off!(inode_uid))?;
    p.old_gid = read_u32(inode, off!(inode_gid))?;
    p.nlink = read_u32(inode, off!(inode_nlink))?;
    p.ino = read_u64(inode, off!(inode_ino))?;
    let sb = read_ptr(inode, off!(inode_sb))?;
    p.dev = read_u32(sb, off!(sb_dev))?;
    Ok(())
}

/// `security.` or `system.posix_acl_` names.
#[inline(always)]
pub(crate) fn privileged_xattr(name: &[u8; XATTR_NAME_CAP]) -> bool {
    const SECURITY: &[u8] = b"security.";
    const ACL: &[u8] = b"system.posix_acl_";
    starts_with(name, SECURITY) || starts_with(name, ACL)
}

#[inline(always)]
fn starts_with(name: &[u8; XATTR_NAME_CAP], prefix: &[u8]) -> bool {
    let mut i = 0;
    while i < prefix.len() {
        if name[i] != prefix[i] {
            return false;
        }
        i += 1;
    }
    true
}
