//! io_uring requests of file and network operations (see
//! `sensor_common::io_uring` for why and which): one raw tracepoint on
//! the kernel's submit tracepoint, which fires in the submitting task
//! (the caller of io_uring_enter, or the ring's SQPOLL thread, a thread
//! of the same process since 5.12) for every request.
//!
//! Cost on the ring's other traffic (reads, writes): the opcode read
//! (a probe read where the tracepoint passes the request) and a mask test.

use aya_ebpf::programs::RawTracePointContext;
use sensor_common::io_uring::REPORTED;
use sensor_common::{EventKind, OFFSET_MISSING, ProbeError, SYS_OP_IO_URING, SysEvent};

use crate::kernel::{put, read_u8};
use crate::maps::{count_error, off, sensor_tgid};
use crate::task::Current;

/// Written out instead of with aya's macro, whose inner function LLVM
/// left un-inlined here: a BPF-to-BPF call, which the build refuses (see
/// `syscall_programs`). The section has no tracepoint: the daemon attaches
/// it to whichever submit tracepoint the kernel has.
#[unsafe(no_mangle)]
#[unsafe(link_section = "raw_tp")]
pub extern "C" fn io_uring_submit(ctx: *mut core::ffi::c_void) -> u32 {
    submit(&RawTracePointContext::new(ctx))
}

#[inline(always)]
fn submit(ctx: &RawTracePointContext) -> u32 {
    let Some(opcode) = opcode(ctx) else {
        return 0;
    };
    if opcode >= 64 || REPORTED & (1 << opcode) == 0 {
        return 0;
    }
    let current = Current::get();
    if current.tgid() == sensor_tgid() || crate::filter::task_ignored(current) {
        return 0;
    }
    let sent = crate::ring::emit::<SysEvent>(EventKind::System, |ev| {
        // SAFETY: emit hands us reserved space for one SysEvent.
        let ev = unsafe { &mut *ev };
        current.fill(&mut ev.task)?;
        ev.op = SYS_OP_IO_URING;
        ev.flags = 0;
        ev.ret = 0;
        // Each put volatile: LLVM otherwise makes the zeros a memset, a
        // BPF-to-BPF call.
        put(&mut ev.args[0], opcode as u64);
        for arg in &mut ev.args[1..] {
            put(arg, 0);
        }
        for len in &mut ev.str_lens {
            put(len, 0);
        }
        ev.base_len = 0;
        Ok(())
    });
    if sent.is_err() {
        count_error(ProbeError::ReadTask);
    }
    0
}

/// The request's opcode, from wherever this kernel's tracepoint has it
/// (the daemon found the position in BTF): through the request, or as an
/// argument. Argument positions are constants for the verifier, hence the
/// match.
#[inline(always)]
fn opcode(ctx: &RawTracePointContext) -> Option<u8> {
    let arg = |i: u32| -> Option<u64> {
        Some(match i {
            0 => ctx.arg(0),
            1 => ctx.arg(1),
            2 => ctx.arg(2),
            _ => return None,
        })
    };
    let req_arg = off!(io_uring_req_arg);
    if req_arg != OFFSET_MISSING {
        let req = arg(req_arg)?;
        return read_u8(req, off!(io_kiocb_opcode)).ok();
    }
    let opcode_arg = off!(io_uring_opcode_arg);
    if opcode_arg != OFFSET_MISSING {
        return arg(opcode_arg).map(|v| v as u8);
    }
    None
}
