//! Where the kernel allows fentry: the file's attributes just before a
//! chmod or chown changes them, for path-based calls too.
//!
//! `security_inode_setattr` runs inside the syscall, between the entry and
//! exit tracepoints of the file family, with the resolved dentry. It only
//! completes the in-flight record of the same thread (the "before" fields
//! the entry could not read); the exit tracepoint still sends the event,
//! so the event is the same with or without this hook, minus `before`.

use sensor_common::{OFFSET_MISSING, file_flags};

use super::file::{dentry_attrs, find};
use crate::maps::off;

/// Written out instead of with aya's `#[fentry]` macro, to read the context
/// as the array of u64 argument slots it is (libbpf's BPF_PROG convention)
/// with the loads the verifier accepts (see below).
#[unsafe(no_mangle)]
#[unsafe(link_section = "fentry/security_inode_setattr")]
pub fn file_setattr(ctx: *mut u64) -> i32 {
    // Both candidate arguments, each read at a constant offset from the
    // unmodified context: the verifier refuses a load through a context
    // pointer that was moved first, which is what LLVM makes of a load at
    // a chosen index. Volatile keeps the two loads from being merged.
    // SAFETY: security_inode_setattr has at least two arguments on every
    // kernel (dentry and iattr), so ctx[0] and ctx[1] are readable.
    let args = unsafe {
        [
            core::ptr::read_volatile(ctx),
            core::ptr::read_volatile(ctx.add(1)),
        ]
    };
    on_setattr(args);
    0
}

#[inline(always)]
fn on_setattr(args: [u64; 2]) {
    let Some(p) = find(&super::thread_key()).map(|f| f.head) else {
        return;
    };
    // SAFETY: this thread's live map value; only this thread touches it.
    let p = unsafe { &mut *p };
    if p.flags & file_flags::OLD_KNOWN != 0 {
        return;
    }
    // The dentry's position changed in 5.12 (an idmap argument came first);
    // the daemon resolved it from BTF.
    let dentry = match off!(setattr_dentry_arg) {
        0 => args[0],
        1 => args[1],
        OFFSET_MISSING | _ => return,
    };
    dentry_attrs(dentry, p);
}
