//! Where the kernel allows fentry: an xattr change's name and value as the
//! kernel copied them from the caller.
//!
//! The entry tracepoint reads them from the caller's memory, and the kernel
//! copies them again afterwards (`setxattr_copy`): a second thread that
//! rewrites them in between has the kernel set `security.capability` while
//! the entry read `user.something` (a call the entry would have dropped)
//! or a harmless capability set. `security_inode_setxattr` and
//! `security_inode_removexattr` run inside the syscall with the kernel's
//! copies, between the file family's entry and exit tracepoints: they put
//! those into the in-flight record, over what the entry read, and say
//! whether the two differed. The exit still sends the event, and decides
//! by the name it then holds whether the change is one to report.
//!
//! The hooks gained a first argument in 5.12 (the mount's user namespace,
//! later its idmap), which moved the name from the second to the third:
//! each hook is built for both, and the daemon attaches the one this
//! kernel's BTF matches.

use aya_ebpf::helpers::generated::bpf_probe_read_kernel;
use aya_ebpf::macros::map;
use aya_ebpf::maps::{Array, PerCpuArray};
use sensor_common::{ProbeError, SyscallOp, XATTR_NAME_CAP, XATTR_VALUE_CAP, file_flags};

use super::file::{FILE_INFLIGHT, dentry_attrs};
use super::read_kernel_str;
use crate::kernel::{copy_len, copy_struct};
use crate::maps::count_error;

/// 1 once the daemon attached these hooks: the entry then keeps every xattr
/// call, for the exit to decide by the kernel's copy of its name.
#[map]
static XATTR_BY_KERNEL: Array<u32> = Array::with_max_entries(1, 0);

/// Whether the hooks below complete xattr records.
#[inline(always)]
pub fn kernel_copies() -> bool {
    crate::maps::switch_on(&XATTR_BY_KERNEL)
}

/// The kernel's name and value, read here before they are compared with
/// the record's (too large for the stack).
#[repr(C)]
pub struct Copied {
    name: [u8; XATTR_NAME_CAP],
    value: [u8; XATTR_VALUE_CAP],
}

#[map]
static XATTR_COPIED: PerCpuArray<Copied> = PerCpuArray::with_max_entries(1, 0);

/// Reads fentry argument `i` (each at a constant offset from the unmodified
/// context, as `file_setattr.rs` explains).
macro_rules! arg {
    ($ctx:expr, $i:literal) => {
        // SAFETY: the caller's hook has more than $i arguments on the
        // kernels it is attached to (the daemon checks BTF).
        unsafe { core::ptr::read_volatile($ctx.add($i)) }
    };
}

/// Reads fentry argument `i` with a probe read of the context's argument
/// slots: for a `void *` argument (setxattr's value), which kernels before
/// 5.16 or so refuse to let a program load from the context directly ("is
/// not a struct").
#[inline(always)]
fn untyped_arg(ctx: *mut u64, i: usize) -> Option<u64> {
    let mut v = 0u64;
    // SAFETY: slot i of the context's argument array (the caller's hook
    // has more than i arguments), read into a local.
    let r = unsafe {
        bpf_probe_read_kernel(
            (&raw mut v).cast(),
            8,
            ctx.wrapping_add(i) as *const core::ffi::c_void,
        )
    };
    (r == 0).then_some(v)
}

/// `security_inode_setxattr(idmap, dentry, name, value, size, flags)`.
#[unsafe(no_mangle)]
#[unsafe(link_section = "fentry/security_inode_setxattr")]
pub fn file_setxattr(ctx: *mut u64) -> i32 {
    if let Some(value) = untyped_arg(ctx, 3) {
        on_xattr(arg!(ctx, 1), arg!(ctx, 2), Some((value, arg!(ctx, 4))));
    }
    0
}

/// Before 5.12: `security_inode_setxattr(dentry, name, value, size, flags)`.
#[unsafe(no_mangle)]
#[unsafe(link_section = "fentry/security_inode_setxattr")]
pub fn file_setxattr_no_idmap(ctx: *mut u64) -> i32 {
    if let Some(value) = untyped_arg(ctx, 2) {
        on_xattr(arg!(ctx, 0), arg!(ctx, 1), Some((value, arg!(ctx, 3))));
    }
    0
}

/// `security_inode_removexattr(idmap, dentry, name)`.
#[unsafe(no_mangle)]
#[unsafe(link_section = "fentry/security_inode_removexattr")]
pub fn file_removexattr(ctx: *mut u64) -> i32 {
    on_xattr(arg!(ctx, 1), arg!(ctx, 2), None);
    0
}

/// Before 5.12: `security_inode_removexattr(dentry, name)`.
#[unsafe(no_mangle)]
#[unsafe(link_section = "fentry/security_inode_removexattr")]
pub fn file_removexattr_no_idmap(ctx: *mut u64) -> i32 {
    on_xattr(arg!(ctx, 0), arg!(ctx, 1), None);
    0
}

/// Puts the kernel's `name` and, for a set, `value` (`(pointer, size)`)
/// into this thread's in-flight xattr record, and the attributes of the
/// file the kernel resolved (`dentry`): its inode and device name it
/// whatever symlink or fd the call went through. Nothing without a
/// record (an io_uring request's change, a filtered process), and only
/// the first time in a call: overlayfs sets the same xattr again on the
/// layer below.
#[inline(always)]
fn on_xattr(dentry: u64, name: u64, value: Option<(u64, u64)>) {
    let key = super::thread_key();
    // Xattr calls are only ever in the long map (see file.rs's `enter`).
    let Some(p) = FILE_INFLIGHT.get_ptr_mut(&key) else {
        return;
    };
    // SAFETY: this thread's live map value; only this thread touches it.
    let p = unsafe { &mut *p };
    let Some(op) = SyscallOp::from_u32(p.head.op) else {
        return;
    };
    if !op.is_xattr() || op.sets_xattr() != value.is_some() {
        return;
    }
    if p.head.flags & file_flags::XATTR_KERNEL_COPY != 0 {
        return;
    }
    let Some(c) = XATTR_COPIED.get_ptr_mut(0) else {
        count_error(ProbeError::Scratch);
        return;
    };
    // SAFETY: this CPU's slot; the program does not sleep.
    let c = unsafe { &mut *c };
    let mut flags = 0;
    let unreadable = file_flags::NAME_UNREADABLE;
    let name_len = read_kernel_str(
        c.name.as_mut_ptr(),
        XATTR_NAME_CAP,
        name,
        &mut flags,
        unreadable,
        0,
    );
    if flags & unreadable != 0 {
        return;
    }
    // What the entry could not read is unknown, not different.
    let mut differs = p.head.flags & file_flags::NAME_UNREADABLE == 0
        && (name_len != p.head.name_len || !same(&c.name, &p.name, name_len as usize));
    let mut value_len = 0;
    if let Some((value, size)) = value {
        let size = if size > u32::MAX as u64 {
            u32::MAX
        } else {
            size as u32
        };
        value_len = copy_len::<XATTR_VALUE_CAP>(size as u64);
        if value_len > 0 {
            // SAFETY: at most XATTR_VALUE_CAP bytes into value.
            let r = unsafe {
                bpf_probe_read_kernel(c.value.as_mut_ptr().cast(), value_len, value as *const _)
            };
            if r < 0 {
                count_error(ProbeError::ReadTask);
                return;
            }
        }
        // A file capability set in a user namespace reaches the hook
        // converted (`cap_convert_nscap`: revision 3, with the namespace's
        // root uid, a longer value): for that name only the capability
        // sets and the effective flag are the caller's to compare.
        let caps = name_len as usize == CAPABILITY.len()
            && same(&c.name, &CAPABILITY_NAME, CAPABILITY.len());
        differs |= p.head.flags & file_flags::VALUE_UNREADABLE == 0
            && if caps {
                !same_capabilities(&c.value, &p.value)
            } else {
                size != p.head.value_size || !same(&c.value, &p.value, value_len as usize)
            };
        p.head.value_size = size;
        p.head.flags &= !(file_flags::VALUE_UNREADABLE | file_flags::VALUE_TRUNCATED);
        if size as usize > XATTR_VALUE_CAP {
            p.head.flags |= file_flags::VALUE_TRUNCATED;
        }
    }
    // SAFETY: two arrays of the same type, a map value and this CPU's slot.
    unsafe {
        copy_struct(&mut p.name, &c.name);
        if value.is_some() {
            copy_struct(&mut p.value, &c.value);
        }
    }
    p.head.name_len = name_len;
    if value.is_some() {
        p.head.value_len = value_len;
    }
    p.head.flags &= !file_flags::NAME_UNREADABLE;
    p.head.flags |= file_flags::XATTR_KERNEL_COPY;
    if differs {
        p.head.flags |= file_flags::XATTR_REWRITTEN;
    }
    // Over what the entry read for an fd-based call (the fd may have been
    // another file by the kernel's lookup).
    dentry_attrs(dentry, &mut p.head);
}

const CAPABILITY: &[u8] = b"security.capability";

/// [`CAPABILITY`] in a name buffer's shape, to compare with one.
const CAPABILITY_NAME: [u8; XATTR_NAME_CAP] = {
    let mut n = [0u8; XATTR_NAME_CAP];
    let mut i = 0;
    while i < CAPABILITY.len() {
        n[i] = CAPABILITY[i];
        i += 1;
    }
    n
};

/// Whether two `security.capability` values grant the same: their
/// effective flag (the first byte of `magic_etc`) and their permitted and
/// inheritable words (bytes 4 to 19), whatever their revision (the last
/// byte of `magic_etc`) and a revision 3's root uid (bytes 20 to 23).
#[inline(always)]
fn same_capabilities<const N: usize>(a: &[u8; N], b: &[u8; N]) -> bool {
    let mut i = 0;
    while i < N {
        if i >= 20 {
            break;
        }
        if i != 3 && a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Whether the first `len` bytes of `a` and `b` are the same.
#[inline(always)]
fn same<const N: usize>(a: &[u8; N], b: &[u8; N], len: usize) -> bool {
    let mut i = 0;
    while i < N {
        if i >= len {
            break;
        }
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}
