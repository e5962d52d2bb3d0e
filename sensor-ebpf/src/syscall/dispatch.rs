//! The two programs every syscall passes: BTF tracepoints (`tp_btf`) on
//! `sys_enter` and `sys_exit`. Each looks the syscall number up, returns
//! at once for an untraced one, and tail-calls the family program of a
//! traced one (native: `SYSCALL_PROGS` and `SYSCALL_EXIT_PROGS`; ia32:
//! [`compat`]'s).
//!
//! Cost on an untraced syscall: at entry two array lookups; at exit a
//! plain load of the number and two array lookups.
//!
//! Why BTF tracepoints rather than raw ones (the same hooks, the same
//! runner): both pass the saved registers' pointer, but a raw tracepoint's
//! program sees it as a number and can only read through it with
//! `bpf_probe_read_kernel`, a helper call. The exit needs the syscall
//! number from there (`orig_ax`: `sys_exit` does not pass it), on every
//! syscall of every task: ~30 ns of the ~100 ns an untraced getppid paid
//! on this build machine. A traced call's entry reads its arguments there
//! too. A BTF tracepoint's verifier knows the pointer as a `struct pt_regs
//! *` and lets the program load its fields (every kernel the sensor
//! supports, 5.8 up with BTF, has BTF tracepoints). Programs reached by
//! tail call must have the caller's type and hook, hence separate program
//! arrays for the entry and exit programs.
//!
//! A traced call's tail call is a direct jump: see [`crate::tail_call`].

use aya_ebpf::macros::{btf_tracepoint, map};
use aya_ebpf::maps::ProgramArray;
use aya_ebpf::programs::BtfTracePointContext;
use sensor_common::SyscallOp;
use sensor_common::compat::PROG_SLOTS;

use super::{compat, native_value, saved_nr};
use crate::maps::sensor_tgid;
use crate::task::Current;

/// The families' native entry programs, by [`sensor_common::compat::slot`].
#[map]
static SYSCALL_PROGS: ProgramArray = ProgramArray::with_max_entries(PROG_SLOTS, 0);

/// The families' native exit programs, by [`sensor_common::compat::slot`]
/// (apart from the entry ones: a tail call's target has its caller's hook).
#[map]
static SYSCALL_EXIT_PROGS: ProgramArray = ProgramArray::with_max_entries(PROG_SLOTS, 0);

/// `tail_call_family!(ctx, PROGS, family, exit)`: tail-calls the program
/// in slot [`sensor_common::compat::slot`]`(family, exit)` of the program
/// array `PROGS` (a static), with `ctx`; `exit` is a literal `true` or
/// `false`. On failure (no program in the slot) it returns and nothing
/// happens.
///
/// Each family has its own call site with its slot as a constant, so
/// that the JIT makes each a direct jump (see [`crate::tail_call`]): that
/// is one indirect jump less on each traced call's entry and exit.
macro_rules! tail_call_family {
    ($ctx:expr, $progs:ident, $family:expr, $exit:literal) => {{
        use sensor_common::EventKind as K;
        use sensor_common::compat::slot;
        use $crate::tail_call::tail_call;
        let ctx = aya_ebpf::EbpfContext::as_ptr($ctx);
        // Every family `slot` knows; the others share System's slot.
        match $family {
            K::FileAttr => tail_call!(ctx, $progs, slot(K::FileAttr, $exit)),
            K::FileWrite => tail_call!(ctx, $progs, slot(K::FileWrite, $exit)),
            K::Cred => tail_call!(ctx, $progs, slot(K::Cred, $exit)),
            K::Net => tail_call!(ctx, $progs, slot(K::Net, $exit)),
            _ => tail_call!(ctx, $progs, slot(K::System, $exit)),
        }
    }};
}
pub(crate) use tail_call_family;

#[btf_tracepoint(function = "sys_enter")]
pub fn syscall_enter(ctx: BtfTracePointContext) -> u32 {
    let nr: u64 = ctx.arg(1);
    let (native, ia32) = (native_value(nr), compat::value(nr));
    if native == 0 && ia32 == 0 {
        return 0;
    }
    // The same number means different syscalls in the two tables: an ia32
    // call must never be taken for the native syscall of its number.
    let current = Current::get();
    let ia32_call = compat::in_ia32_syscall(current);
    if (if ia32_call { ia32 } else { native }) == 0 {
        return 0;
    }
    let key = current.thread_key();
    if ia32_call {
        compat::count_entry(key);
    }
    if (key >> 32) as u32 == sensor_tgid() {
        return 0;
    }
    super::set_entry_thread_key(key);
    if crate::filter::task_ignored(current) {
        return 0;
    }
    if ia32_call {
        compat::enter(&ctx);
        return 0;
    }
    let Some(op) = SyscallOp::from_u32(native) else {
        return 0;
    };
    tail_call_family!(&ctx, SYSCALL_PROGS, op.kind(), false);
    0
}

#[btf_tracepoint(function = "sys_exit")]
pub fn syscall_exit(ctx: BtfTracePointContext) -> u32 {
    let nr = saved_nr(&ctx);
    if compat::exit(&ctx, nr) {
        return 0;
    }
    // A native call: the family's exit finds the record its entry left
    // for this thread, or none (the call was filtered out at entry), and
    // then returns.
    let Some(op) = SyscallOp::from_u32(native_value(nr)) else {
        return 0;
    };
    tail_call_family!(&ctx, SYSCALL_EXIT_PROGS, op.kind(), true);
    0
}
