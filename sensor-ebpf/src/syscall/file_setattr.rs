//! Where the kernel allows fentry: the file's attributes just before a
//! chmod or chown changes them, for path-based calls too.
//!
//! `security_inode_setattr` runs inside the syscall, between the entry and
//! exit tracepoints of the file family, with the resolved dentry. It only
//! completes the in-flight record of the same thread (the "before" fields
//! the entry could not read); the exit tracepoint still sends the event,
//! so the event is the same with or without this hook, minus `before`.

use aya_ebpf::macros::fentry;
use aya_ebpf::programs::FEntryContext;
use sensor_common::{OFFSET_MISSING, ProbeError, file_flags};

use super::file::{FILE_INFLIGHT, read_attrs};
use crate::kernel::{Miss, read_ptr};
use crate::maps::{count_error, off};

#[fentry(function = "security_inode_setattr")]
pub fn file_setattr(ctx: FEntryContext) -> u32 {
    let Some(p) = FILE_INFLIGHT.get_ptr_mut(&super::thread_key()) else { return 0 };
    // SAFETY: this thread's live map value; only this thread touches it.
    let p = unsafe { &mut *p };
    if p.flags & file_flags::OLD_KNOWN != 0 {
        return 0;
    }
    // The dentry's position changed in 5.12 (an idmap argument came first);
    // the daemon resolved it from BTF. Context reads need a constant index.
    let dentry: u64 = match off!(setattr_dentry_arg) {
        0 => ctx.arg(0),
        1 => ctx.arg(1),
        OFFSET_MISSING | _ => return 0,
    };
    match read_ptr(dentry, off!(dentry_inode)).and_then(|inode| read_attrs(inode, p)) {
        Ok(()) => p.flags |= file_flags::OLD_KNOWN,
        Err(Miss::Fault) => count_error(ProbeError::ReadTask),
        Err(Miss::Absent) => {}
    }
    0
}
