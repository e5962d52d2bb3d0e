//! ia32 syscalls (`int 0x80`, 32-bit programs) on x86_64: the dispatchers
//! ([`super::dispatch`]) tell them from native ones by the task's
//! `TS_COMPAT` status and hand the traced ones to the family's compat
//! program, which runs the same code as the native one with the arguments
//! taken from the ia32 registers. Their numbers are the ia32 table's,
//! which `COMPAT_OPS` maps (see `sensor_common::compat`).

use aya_ebpf::macros::map;
use aya_ebpf::maps::{Array, LruHashMap, ProgramArray};
use aya_ebpf::programs::BtfTracePointContext;
use sensor_common::compat::{
    self, IDS16, NO_FLAGS, OP_MASK, SLOTS, SOCKETCALL, TS_COMPAT, socketcall_op,
};
use sensor_common::{OFFSET_MISSING, SyscallOp};

use super::regs::{BX, CX, IA32_ARGS};
use crate::kernel::{Direct, Probe, Reader};
use crate::maps::{direct_reads, off};
use crate::task::Current;

/// [`sensor_common::compat`] value of each traced ia32 syscall number.
#[map]
static COMPAT_OPS: Array<u32> = Array::with_max_entries(SLOTS, 0);

/// Traced ia32 calls between their entry and exit, over all CPUs: while
/// it is zero, as it nearly always is, the exit dispatcher skips the ia32
/// check. A count that goes wrong (an exit missed, or the dispatchers
/// attached a moment apart around a call in flight) stays above zero,
/// which only brings back the full check.
#[map]
static COMPAT_INFLIGHT: Array<u64> = Array::with_max_entries(1, 0);

/// The threads whose traced ia32 call was counted in [`COMPAT_INFLIGHT`]
/// at its entry: only their exits count it down. Two exits come without
/// an entry: a new process's or thread's return from the ia32 clone that
/// made it (its `TS_COMPAT` is its parent's copy), and a call's that was
/// in flight when the sensor attached. Counted down, they took the count
/// to zero while another ia32 call was in flight, and that call's exit
/// was then taken for a native call's: its event lost, unsaid. LRU: a
/// marker evicted (more ia32 calls in flight than entries) leaves the
/// count above zero, which only keeps the full check.
#[map]
static COMPAT_ENTERED: LruHashMap<u64, u8> = LruHashMap::with_max_entries(4096, 0);

/// The families' compat entry programs, by [`compat::slot`] (tail-called
/// through [`super::dispatch::tail_call_family`]).
#[map]
static COMPAT_PROGS: ProgramArray = ProgramArray::with_max_entries(compat::PROG_SLOTS, 0);

/// The families' compat exit programs, by [`compat::slot`] (apart from
/// the entry ones: a tail call's target has its caller's hook).
#[map]
static COMPAT_EXIT_PROGS: ProgramArray = ProgramArray::with_max_entries(compat::PROG_SLOTS, 0);

/// The `COMPAT_OPS` value of ia32 syscall `nr`: 0 if untraced.
#[inline(always)]
pub fn value(nr: u64) -> u32 {
    if nr >= SLOTS as u64 {
        return 0;
    }
    COMPAT_OPS.get(nr as u32).copied().unwrap_or(0)
}

/// Counts a traced ia32 call in flight, by thread `key`. The dispatcher
/// calls it on the same test as [`exit`]'s (`TS_COMPAT` and a traced
/// number), before anything else can return, so that every counted entry
/// has its counted exit.
#[inline(always)]
pub fn count_entry(key: u64) {
    // Counted even if the marker is not stored: the count then stays
    // above zero, the safe side.
    let _ = COMPAT_ENTERED.insert(&key, &1, 0);
    count_inflight(1);
}

/// The entry of a traced ia32 call (the dispatcher checked `TS_COMPAT`,
/// the number and the filters): tail-calls the family's compat entry
/// program.
#[inline(always)]
pub fn enter(ctx: &BtfTracePointContext) {
    let Some(entry) = Ia32Entry::new(ctx) else {
        return;
    };
    super::dispatch::tail_call_family!(ctx, COMPAT_PROGS, entry.op.kind(), false);
}

/// At a syscall's exit (number `nr`): if it is a traced ia32 call,
/// tail-calls the family's compat exit program; true if it was one.
#[inline(always)]
pub fn exit(ctx: &BtfTracePointContext, nr: u64) -> bool {
    let Some(inflight) = COMPAT_INFLIGHT.get_ptr(0) else {
        return false;
    };
    // SAFETY: the map's one value, read whole.
    if unsafe { core::ptr::read_volatile(inflight) } == 0 {
        return false;
    }
    let value = value(nr);
    let current = Current::get();
    if value == 0 || !in_ia32_syscall(current) {
        return false;
    }
    // Only an exit whose entry was counted (see COMPAT_ENTERED). The
    // others still go to the family's exit, which finds no record.
    if COMPAT_ENTERED.remove(&current.thread_key()).is_ok() {
        count_inflight(u64::MAX);
    }
    // The family is all the exit needs: the op is in its in-flight record.
    if let Some(family) = compat::family(value) {
        super::dispatch::tail_call_family!(ctx, COMPAT_EXIT_PROGS, family, true);
    }
    true
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

/// Whether the running task `current` is inside an ia32 syscall
/// (`TS_COMPAT`). Asked at the entry of every traced syscall: a plain
/// load where the task's other fields are read that way too
/// (`task::task_reads_check` loads this same read), else a probe read.
#[inline(always)]
pub fn in_ia32_syscall(current: Current) -> bool {
    let (ti, status) = (off!(task_thread_info), off!(thread_info_status));
    if ti == OFFSET_MISSING || status == OFFSET_MISSING {
        return false;
    }
    let s = if direct_reads() {
        Direct::u32(current.addr(), ti + status)
    } else {
        Probe::u32(current.addr(), ti + status)
    };
    s.is_ok_and(|s| s & TS_COMPAT != 0)
}

/// An ia32 syscall at entry: its op and where its arguments are.
pub struct Ia32Entry {
    pub op: SyscallOp,
    args: super::SavedArgs,
    /// `socketcall`'s array of `u32` arguments in the caller's memory.
    socketcall_args: u64,
    flags: u32,
}

impl Ia32Entry {
    /// From a `sys_enter` BTF tracepoint context (`regs`, `id`).
    #[inline(always)]
    pub fn new(ctx: &BtfTracePointContext) -> Option<Ia32Entry> {
        let regs: u64 = ctx.arg(0);
        let id: i64 = ctx.arg(1);
        if !(0..SLOTS as i64).contains(&id) {
            return None;
        }
        let value = *COMPAT_OPS.get(id as u32)?;
        let args = super::SavedArgs::load(regs);
        if value & OP_MASK == SOCKETCALL {
            let call = args.get(BX) as u32;
            let array = args.get(CX) as u32;
            return Some(Ia32Entry {
                op: socketcall_op(call)?,
                args,
                socketcall_args: array as u64,
                flags: 0,
            });
        }
        let op = SyscallOp::from_u32(value & OP_MASK)?;
        Some(Ia32Entry {
            op,
            args,
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
        if i >= IA32_ARGS.len() {
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
        let v = self.args.get(IA32_ARGS[i]) as u32;
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

/// The return value in a `sys_exit` BTF tracepoint context (`regs`, `ret`).
#[inline(always)]
pub fn ret(ctx: &BtfTracePointContext) -> i64 {
    let ret: i64 = ctx.arg(1);
    // ia32 results are 32-bit; the kernel sign-extends them in regs->ax.
    ret as i32 as i64
}
