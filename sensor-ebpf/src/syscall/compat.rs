//! ia32 syscalls (`int 0x80`, 32-bit programs) on x86_64: the `syscalls:`
//! tracepoints never fire for them (see `sensor_common::compat`), so these
//! two programs on the `raw_syscalls` tracepoints pick out the ia32 calls
//! of traced syscalls and tail-call the family's compat program, which
//! runs the same code as the native one with the arguments taken from the
//! registers.
//!
//! Cost: both run on every syscall of every task. The entry one stops at
//! an array lookup for numbers no traced ia32 syscall has, and at one read
//! of the task's status for native syscalls; the exit one stops at one
//! array lookup while no traced ia32 call is in flight ([`COMPAT_INFLIGHT`]).

use aya_ebpf::macros::{map, raw_tracepoint};
use aya_ebpf::maps::{Array, ProgramArray};
use aya_ebpf::programs::RawTracePointContext;
use sensor_common::compat::{
    self, IDS16, NO_FLAGS, OP_MASK, SLOTS, SOCKETCALL, TS_COMPAT, socketcall_op,
};
use sensor_common::{OFFSET_MISSING, SyscallOp};

use crate::kernel::{read_u32, read_u64};
use crate::maps::{off, sensor_tgid};

/// [`sensor_common::compat`] value of each traced ia32 syscall number.
#[map]
static COMPAT_OPS: Array<u32> = Array::with_max_entries(SLOTS, 0);

/// Traced ia32 calls between their entry and exit, over all CPUs: while
/// it is zero, as it nearly always is, the exit program returns at once
/// instead of reading the registers and the task. A count that goes wrong
/// (an exit missed, or the two programs attached a moment apart around a
/// call in flight) stays above zero, which only brings back the full check.
#[map]
static COMPAT_INFLIGHT: Array<u64> = Array::with_max_entries(1, 0);

/// The families' compat programs, by [`compat::slot`].
#[map]
static COMPAT_PROGS: ProgramArray = ProgramArray::with_max_entries(compat::PROG_SLOTS, 0);

// x86_64 `struct pt_regs` (arch/x86/include/asm/ptrace.h), a fixed layout:
// r15 r14 r13 r12 bp bx r11 r10 r9 r8 ax cx dx si di orig_ax …
const BP: u64 = 4 * 8;
const BX: u64 = 5 * 8;
const CX: u64 = 11 * 8;
const DX: u64 = 12 * 8;
const SI: u64 = 13 * 8;
const DI: u64 = 14 * 8;
const ORIG_AX: u64 = 15 * 8;
/// The ia32 argument registers in order.
const ARG_REGS: [u64; 6] = [BX, CX, DX, SI, DI, BP];

#[raw_tracepoint(tracepoint = "sys_enter")]
pub fn compat_enter(ctx: RawTracePointContext) -> u32 {
    let id: i64 = ctx.arg(1);
    if !(0..SLOTS as i64).contains(&id) {
        return 0;
    }
    let Some(&value) = COMPAT_OPS.get(id as u32) else {
        return 0;
    };
    if value == 0 {
        return 0;
    }
    let task = super::current_task();
    if !in_ia32_syscall(task) {
        return 0;
    }
    // Counted on the same test as the exit's, before anything else can
    // return, so that every counted entry has its counted exit.
    count_inflight(1);
    if (aya_ebpf::helpers::bpf_get_current_pid_tgid() >> 32) as u32 == sensor_tgid() {
        return 0;
    }
    if crate::filter::task_ignored(task) {
        return 0;
    }
    let Some(entry) = Ia32Entry::new(&ctx) else {
        return 0;
    };
    // SAFETY: a tail call with this program's own context; on failure (no
    // program in the slot) it returns and nothing happens.
    unsafe { COMPAT_PROGS.tail_call(&ctx, compat::slot(entry.op.kind(), false)) };
    0
}

#[raw_tracepoint(tracepoint = "sys_exit")]
pub fn compat_exit(ctx: RawTracePointContext) -> u32 {
    let Some(inflight) = COMPAT_INFLIGHT.get_ptr(0) else {
        return 0;
    };
    // SAFETY: the map's one value, read whole.
    if unsafe { core::ptr::read_volatile(inflight) } == 0 {
        return 0;
    }
    let regs: u64 = ctx.arg(0);
    let Ok(nr) = read_u64(regs, ORIG_AX as u32) else {
        return 0;
    };
    if nr >= SLOTS as u64 {
        return 0;
    }
    let Some(&value) = COMPAT_OPS.get(nr as u32) else {
        return 0;
    };
    if value == 0 || !in_ia32_syscall(super::current_task()) {
        return 0;
    }
    count_inflight(u64::MAX);
    // The family is all the exit needs: the op is in its in-flight record.
    let Some(family) = compat::family(value) else {
        return 0;
    };
    // SAFETY: as in compat_enter.
    unsafe { COMPAT_PROGS.tail_call(&ctx, compat::slot(family, true)) };
    0
}

/// Adds `delta` (1, or u64::MAX for -1) to [`COMPAT_INFLIGHT`]. An atomic
/// add whose result is unused: the BPF_XADD every supported kernel takes
/// (a fetching add or a sub would need 5.12's atomics).
#[inline(always)]
fn count_inflight(delta: u64) {
    use core::intrinsics::{AtomicOrdering, atomic_xadd};
    if let Some(n) = COMPAT_INFLIGHT.get_ptr_mut(0) {
        // SAFETY: the map's one value, 8-aligned, shared between CPUs and
        // only ever changed atomically. (The BPF target's core has no
        // AtomicU64::fetch_add; this is the intrinsic behind it.)
        let _ = unsafe { atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(n, delta) };
    }
}

/// Whether the running task is inside an ia32 syscall (`TS_COMPAT`).
#[inline(always)]
fn in_ia32_syscall(task: u64) -> bool {
    let (ti, status) = (off!(task_thread_info), off!(thread_info_status));
    if ti == OFFSET_MISSING || status == OFFSET_MISSING {
        return false;
    }
    read_u32(task, ti + status).is_ok_and(|s| s & TS_COMPAT != 0)
}

/// An ia32 syscall at entry: its op and where its arguments are.
pub struct Ia32Entry {
    pub op: SyscallOp,
    regs: u64,
    /// `socketcall`'s array of `u32` arguments in the caller's memory.
    socketcall_args: u64,
    flags: u32,
}

impl Ia32Entry {
    /// From a `raw_syscalls:sys_enter` context (`regs`, `id`).
    #[inline(always)]
    pub fn new(ctx: &RawTracePointContext) -> Option<Ia32Entry> {
        let regs: u64 = ctx.arg(0);
        let id: i64 = ctx.arg(1);
        if !(0..SLOTS as i64).contains(&id) {
            return None;
        }
        let value = *COMPAT_OPS.get(id as u32)?;
        if value & OP_MASK == SOCKETCALL {
            let call = read_u64(regs, BX as u32).ok()? as u32;
            let args = read_u64(regs, CX as u32).ok()? as u32;
            return Some(Ia32Entry {
                op: socketcall_op(call)?,
                regs,
                socketcall_args: args as u64,
                flags: 0,
            });
        }
        let op = SyscallOp::from_u32(value & OP_MASK)?;
        Some(Ia32Entry {
            op,
            regs,
            socketcall_args: 0,
            flags: value,
        })
    }
}

impl super::Entry for Ia32Entry {
    #[inline(always)]
    fn op(&self) -> Option<SyscallOp> {
        Some(self.op)
    }

    /// Arguments are 32-bit: zero-extended as the kernel's compat wrappers
    /// do (an fd or AT_FDCWD read back `as i32` keeps its sign).
    #[inline(always)]
    fn arg(&self, i: usize) -> u64 {
        if i >= ARG_REGS.len() {
            return 0;
        }
        if self.socketcall_args != 0 {
            let at = self.socketcall_args + 4 * i as u64;
            // SAFETY: a probe read of the caller's memory; failure gives 0.
            return unsafe { aya_ebpf::helpers::bpf_probe_read_user(at as *const u32) }.unwrap_or(0)
                as u64;
        }
        if self.flags & NO_FLAGS != 0 && i == 1 {
            return 0;
        }
        let v = read_u64(self.regs, ARG_REGS[i] as u32).unwrap_or(0) as u32;
        let first_id = if self.op.target().is_some() { 1 } else { 0 };
        if self.flags & IDS16 != 0 && i >= first_id {
            // The legacy calls take u16 ids; 0xffff is their "unchanged".
            let id = v & 0xffff;
            return if id == 0xffff {
                u32::MAX as u64
            } else {
                id as u64
            };
        }
        v as u64
    }
}

/// The return value in a `raw_syscalls:sys_exit` context (`regs`, `ret`).
#[inline(always)]
pub fn ret(ctx: &RawTracePointContext) -> i64 {
    let ret: i64 = ctx.arg(1);
    // ia32 results are 32-bit; the kernel sign-extends them in regs->ax.
    ret as i32 as i64
}
