//! The sensor's eBPF programs: one object that loads unchanged on every
//! kernel with BTF (5.8+).
//!
//! Kernel structs are never read at compiled-in offsets: every field comes
//! from the `OFFSETS` global, which the daemon fills from the running
//! kernel's BTF before load (see sensor-common's `offsets` module).
#![no_std]
#![no_main]
// atomic_xadd: the BPF target's core has no AtomicU64::fetch_add (see
// syscall::compat::count_inflight).
#![allow(internal_features)]
#![feature(core_intrinsics)]
// asm!: constant-index tail calls (see the tail_call module).
#![feature(asm_experimental_arch)]

mod filter;
mod io_uring;
mod kernel;
mod maps;
mod path;
mod proc_mem;
mod process;
mod ring;
mod syscall;
mod tail_call;
mod task;

use aya_ebpf as _;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // SAFETY: a panic cannot happen in a program the verifier accepted (an
    // endless loop would be rejected at load), so this is never reached.
    unsafe { core::hint::unreachable_unchecked() }
}

/// bpf_probe_read_kernel and friends are GPL-only helpers.
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
