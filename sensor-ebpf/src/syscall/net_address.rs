//! Where the kernel allows fentry: a connect's or bind's address as the
//! kernel copied it from the caller.
//!
//! The entry tracepoint reads the address from the caller's memory, and
//! the kernel copies it again afterwards (`move_addr_to_kernel`): a second
//! thread of the caller that rewrites it in between has the kernel connect
//! to one address while the entry read another. `security_socket_connect`
//! and `security_socket_bind` run inside the syscall, with the kernel's
//! copy, between the family's entry and exit tracepoints. They only
//! complete the in-flight record of the same thread; the exit tracepoint
//! still sends the event.
//!
//! Both hooks take `(struct socket *sock, struct sockaddr *address, int
//! addrlen)` on every supported kernel; the daemon checks the names in
//! BTF before attaching.

use aya_ebpf::helpers::generated::bpf_probe_read_kernel;
use sensor_common::{ProbeError, SOCKADDR_CAP, SyscallOp, net_flags};

use super::inflight;
use super::net::NET_INFLIGHT;
use crate::kernel::{copy_len, zero_u64s};
use crate::maps::count_error;

/// Written out instead of with aya's `#[fentry]` macro, as in
/// `file_setattr.rs`: the context is read as the array of u64 argument
/// slots it is, each at a constant offset.
#[unsafe(no_mangle)]
#[unsafe(link_section = "fentry/security_socket_connect")]
pub fn net_connect_address(ctx: *mut u64) -> i32 {
    // SAFETY: the hook has three arguments (checked by the daemon in BTF).
    let (address, len) = unsafe {
        (
            core::ptr::read_volatile(ctx.add(1)),
            core::ptr::read_volatile(ctx.add(2)),
        )
    };
    on_address(SyscallOp::Connect, address, len);
    0
}

/// As [`net_connect_address`], for bind.
#[unsafe(no_mangle)]
#[unsafe(link_section = "fentry/security_socket_bind")]
pub fn net_bind_address(ctx: *mut u64) -> i32 {
    // SAFETY: as above.
    let (address, len) = unsafe {
        (
            core::ptr::read_volatile(ctx.add(1)),
            core::ptr::read_volatile(ctx.add(2)),
        )
    };
    on_address(SyscallOp::Bind, address, len);
    0
}

/// Copies the kernel's `address` (`len` bytes as the caller gave them,
/// an int) into this thread's in-flight record of `op`. Nothing without
/// such a record: an io_uring request's connect, a filtered process.
#[inline(always)]
fn on_address(op: SyscallOp, address: u64, len: u64) {
    let Some(p) = inflight::find(&NET_INFLIGHT, &super::thread_key()) else {
        return;
    };
    // SAFETY: this thread's live map value; only this thread touches it.
    let p = unsafe { &mut *p };
    if p.op != op as u32 {
        return;
    }
    // SAFETY: kernel_sockaddr is 8-aligned (asserted in net.rs) and
    // SOCKADDR_CAP long.
    unsafe { zero_u64s::<{ SOCKADDR_CAP / 8 }>(p.kernel_sockaddr.as_mut_ptr()) };
    // An int, which the kernel already refused if negative or larger than
    // a sockaddr_storage, before its copy.
    let len = copy_len::<SOCKADDR_CAP>((len as i32).max(0) as u64);
    if len > 0 {
        // SAFETY: at most SOCKADDR_CAP bytes into kernel_sockaddr.
        let r = unsafe {
            bpf_probe_read_kernel(
                p.kernel_sockaddr.as_mut_ptr().cast(),
                len,
                address as *const _,
            )
        };
        if r < 0 {
            count_error(ProbeError::ReadTask);
            return;
        }
    }
    p.kernel_sockaddr_len = len;
    p.flags |= net_flags::KERNEL_ADDRESS as u32;
}
