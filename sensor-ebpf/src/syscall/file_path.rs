//! Where the kernel allows fentry: the file a chmod or chown changes, as
//! the kernel resolved it.
//!
//! The entry tracepoint reads the path argument from the caller's memory.
//! That text need not name the file that changes: a symlink anywhere along
//! it (`/tmp/x/l -> /usr/bin/tool`), or a second thread that rewrites it
//! after the entry's read and before the kernel's own copy, send the call
//! to another file; an fd can be swapped under an fchmod the same way.
//! `security_path_chmod` and `security_path_chown` run inside every chmod
//! and chown variant (fd-based too, through `chmod_common`/`chown_common`)
//! with the `struct path` the kernel resolved, before the permission check,
//! so failures with EPERM pass here as well.
//!
//! The hooks run between the file family's entry and exit tracepoints and
//! keep, in the thread's in-flight record, the resolved mount and dentry
//! and the inode's attributes, which are those from before the change.
//! The path itself is walked at the exit, which writes the event: a walk
//! here would need a buffer that lives until then (a path of up to 4 KiB
//! per in-flight call, where the record is kept short so that a chmod
//! costs no allocation). The hook takes no reference for the exit, which
//! checks that the dentry still names the inode seen here before walking
//! it.
//!
//! Needs `CONFIG_SECURITY_PATH` (Debian's kernels have it, for AppArmor).
//! The daemon attaches each hook where it loads (5.10 refuses the chown
//! one, whose ids are structs), then sets the switch below to say which.

use aya_ebpf::macros::map;
use aya_ebpf::maps::Array;
use sensor_common::{ProbeError, file_flags};

use super::file::{dentry_attrs, find};
use crate::maps::count_error;
use crate::path::path_parts;

/// Which of these hooks the daemon attached (bits of
/// [`sensor_common::file_path_hooks`]): the entry then leaves the
/// ignored-path-prefix decision on those calls to the daemon, which has
/// the path the kernel resolved.
#[map]
static FILE_PATH_BY_KERNEL: Array<u32> = Array::with_max_entries(1, 0);

/// Whether the hook below for `hook` (a bit of
/// [`sensor_common::file_path_hooks`]) resolves its calls' records.
#[inline(always)]
pub fn kernel_resolves(hook: u32) -> bool {
    crate::maps::switch_value(&FILE_PATH_BY_KERNEL) & hook != 0
}

/// `security_path_chmod(const struct path *path, umode_t mode)`.
#[unsafe(no_mangle)]
#[unsafe(link_section = "fentry/security_path_chmod")]
pub fn file_path_chmod(ctx: *mut u64) -> i32 {
    // SAFETY: the hook's first argument, on every kernel that has it (the
    // daemon checks its name in BTF).
    on_path(unsafe { core::ptr::read_volatile(ctx) });
    0
}

/// `security_path_chown(const struct path *path, kuid_t uid, kgid_t gid)`.
#[unsafe(no_mangle)]
#[unsafe(link_section = "fentry/security_path_chown")]
pub fn file_path_chown(ctx: *mut u64) -> i32 {
    // SAFETY: as above.
    on_path(unsafe { core::ptr::read_volatile(ctx) });
    0
}

#[inline(always)]
fn on_path(path: u64) {
    let Some(found) = find(&super::thread_key()) else {
        return;
    };
    // SAFETY: this thread's live map value; only this thread touches it.
    let p = unsafe { &mut *found.head };
    let (mnt, dentry) = path_parts(path);
    if mnt == 0 || dentry == 0 {
        count_error(ProbeError::ReadTask);
        return;
    }
    // Over what the entry read for an fd-based call: the fd may have been
    // another file by the time the kernel looked it up.
    if dentry_attrs(dentry, p) {
        p.kernel_mnt = mnt;
        p.kernel_dentry = dentry;
        p.flags |= file_flags::KERNEL_PATH;
    }
}
