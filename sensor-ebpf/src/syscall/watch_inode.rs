//! Where the kernel allows fentry: truncate, unlink, rename, link and
//! symlink decided by the file the kernel resolved, not by the path
//! argument's text.
//!
//! A path argument can reach a watched file under another name: a
//! symlinked directory (`/tmp/e/shadow` with `/tmp/e -> /etc`), a bind
//! mount, `/proc/PID/root/etc/shadow`. The entry program cannot resolve
//! it; the security hooks below run inside the call with the dentries the
//! kernel resolved. Each completes the thread's in-flight watch record
//! (see `watch::resolved`); the exit tracepoint still sends the event.
//!
//! Written out instead of with aya's `#[fentry]` macro, like
//! `file_setattr`: each argument is a volatile load at a constant offset
//! from the unmodified context, the only context access the verifier
//! accepts for a chosen slot.

use sensor_common::OFFSET_MISSING;

use super::watch::resolved;
use crate::maps::off;

/// The context's argument slot `i`.
///
/// # Safety
/// The hooked function has more than `i` arguments.
#[inline(always)]
unsafe fn arg(ctx: *mut u64, i: usize) -> u64 {
    // SAFETY: the caller's contract.
    unsafe { core::ptr::read_volatile(ctx.add(i)) }
}

/// `security_inode_unlink(struct inode *dir, struct dentry *dentry)`.
#[unsafe(no_mangle)]
#[unsafe(link_section = "fentry/security_inode_unlink")]
pub fn watch_unlink(ctx: *mut u64) -> i32 {
    // SAFETY: two arguments on every kernel since 2.6.
    resolved([unsafe { arg(ctx, 1) }, 0]);
    0
}

/// `security_inode_rmdir(struct inode *dir, struct dentry *dentry)`.
#[unsafe(no_mangle)]
#[unsafe(link_section = "fentry/security_inode_rmdir")]
pub fn watch_rmdir(ctx: *mut u64) -> i32 {
    // SAFETY: as above.
    resolved([unsafe { arg(ctx, 1) }, 0]);
    0
}

/// `security_inode_rename(old_dir, old_dentry, new_dir, new_dentry,
/// flags)`: the file renamed, and the one it replaces (a negative dentry
/// when there is none, which is still checked through its directory).
#[unsafe(no_mangle)]
#[unsafe(link_section = "fentry/security_inode_rename")]
pub fn watch_rename(ctx: *mut u64) -> i32 {
    // SAFETY: five arguments on every kernel since 2.6.
    resolved(unsafe { [arg(ctx, 1), arg(ctx, 3)] });
    0
}

/// `security_inode_link(old_dentry, dir, new_dentry)`: the file linked,
/// and the new name (negative, checked through its directory).
#[unsafe(no_mangle)]
#[unsafe(link_section = "fentry/security_inode_link")]
pub fn watch_link(ctx: *mut u64) -> i32 {
    // SAFETY: three arguments on every kernel since 2.6.
    resolved(unsafe { [arg(ctx, 0), arg(ctx, 2)] });
    0
}

/// `security_inode_symlink(dir, dentry, old_name)`: the new name
/// (negative, checked through its directory); the target is only text.
#[unsafe(no_mangle)]
#[unsafe(link_section = "fentry/security_inode_symlink")]
pub fn watch_symlink(ctx: *mut u64) -> i32 {
    // SAFETY: three arguments on every kernel since 2.6.
    resolved([unsafe { arg(ctx, 1) }, 0]);
    0
}

/// `security_inode_setattr`: truncate(2) by path goes through
/// `notify_change`. The dentry is the first or second argument (an idmap
/// came first from 5.12; the daemon resolved which from BTF).
#[unsafe(no_mangle)]
#[unsafe(link_section = "fentry/security_inode_setattr")]
pub fn watch_setattr(ctx: *mut u64) -> i32 {
    // SAFETY: at least two arguments on every kernel (dentry and iattr).
    let args = unsafe { [arg(ctx, 0), arg(ctx, 1)] };
    let dentry = match off!(setattr_dentry_arg) {
        0 => args[0],
        1 => args[1],
        OFFSET_MISSING | _ => return 0,
    };
    resolved([dentry, 0]);
    0
}
