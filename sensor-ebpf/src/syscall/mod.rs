//! Syscalls traced at their entry and exit.
//!
//! Two programs on the `sys_enter` and `sys_exit` tracepoints (the
//! `raw_syscalls` ones) see every syscall ([`dispatch`], which says why as
//! BTF tracepoints): they look the number up in `SYSCALL_OPS` (filled by
//! the daemon), stop at once for untraced ones, and hand a traced call to
//! its family's program by tail call. Arguments are read at entry, the
//! moment the kernel copies them too, and kept per thread until the exit,
//! where one record with the result is sent.
//!
//! Why not the per-syscall `syscalls:sys_enter_<name>` tracepoints:
//! those run their programs through perf's tracepoint machinery (a
//! per-call buffer for the record, the arguments copied into it), which
//! measured ~100 ns per tracepoint on Linux 6.18, more than the family's
//! own entry program; a raw or BTF tracepoint calls the program directly. Both
//! put every task on the kernel's slow syscall path, so an untraced
//! syscall pays for the dispatcher's lookup either way. And the
//! `syscalls:` tracepoints never fire for ia32 calls, which the
//! dispatchers see too (see [`compat`]).
//!
//! One program per family serves all of its syscalls: `SYSCALL_OPS` says
//! which syscall the number is.

pub mod compat;
pub mod cred;
pub mod dispatch;
pub mod file;
pub mod file_path;
pub mod file_setattr;
pub mod file_xattr;
mod inflight;
pub mod module_name;
pub mod net;
pub mod net_address;
pub mod sys;
pub mod udp_flows;
pub mod watch;
pub mod watch_inode;

use aya_ebpf::helpers::{bpf_get_current_pid_tgid, bpf_get_current_task};
use aya_ebpf::macros::map;
use aya_ebpf::maps::{Array, PerCpuArray};
use aya_ebpf::programs::BtfTracePointContext;
use sensor_common::compat::{TASK_IA32, TASK_X32, X32_SYSCALL_BIT};
use sensor_common::{SYSCALL_SLOTS, SyscallOp, ops_slot};

use crate::kernel::{Miss, Probe, Reader, field, read_ptr, read_u32};
use crate::maps::off;

/// [`SyscallOp`] of each traced syscall, by [`ops_slot`] of its number
/// (native and x32); 0 for the rest.
#[map]
static SYSCALL_OPS: Array<u32> = Array::with_max_entries(SYSCALL_SLOTS, 0);

/// The `SYSCALL_OPS` value of native (or x32) syscall `nr`, as the
/// tracepoint or `orig_ax` gives it: 0 if untraced.
#[inline(always)]
pub fn native_value(nr: u64) -> u32 {
    let slot = ops_slot(nr);
    if slot >= SYSCALL_SLOTS {
        return 0;
    }
    SYSCALL_OPS.get(slot).copied().unwrap_or(0)
}

/// The syscall number, `regs->orig_ax`, from the `regs` a `sys_enter` or
/// `sys_exit` BTF tracepoint passes: a plain load, which the verifier
/// allows through the typed pointer (`orig_ax` is an `unsigned long` at
/// this offset). All 64 bits the caller put there: see [`ops_slot`].
#[inline(always)]
pub fn saved_nr(ctx: &BtfTracePointContext) -> u64 {
    let regs: *const u8 = ctx.arg(0);
    // SAFETY: the verifier checks the load against struct pt_regs.
    unsafe { core::ptr::read_volatile(regs.add(regs::ORIG_AX as usize).cast::<u64>()) }
}

/// `TaskInfo::flags` of a native call in a `sys_exit` program:
/// [`TASK_X32`] if its number is an x32 one.
#[inline(always)]
fn native_abi(ctx: &BtfTracePointContext) -> u32 {
    if saved_nr(ctx) as u32 & X32_SYSCALL_BIT != 0 {
        TASK_X32
    } else {
        0
    }
}

// x86_64 `struct pt_regs` (arch/x86/include/uapi/asm/ptrace.h), a fixed
// layout: r15 r14 r13 r12 bp bx r11 r10 r9 r8 ax cx dx si di orig_ax …
// The syscall number is in orig_ax (ax holds the result at exit).
pub(crate) mod regs {
    pub const BP: u32 = 4 * 8;
    pub const BX: u32 = 5 * 8;
    pub const R10: u32 = 7 * 8;
    pub const R9: u32 = 8 * 8;
    pub const R8: u32 = 9 * 8;
    pub const CX: u32 = 11 * 8;
    pub const DX: u32 = 12 * 8;
    pub const SI: u32 = 13 * 8;
    pub const DI: u32 = 14 * 8;
    pub const ORIG_AX: u32 = 15 * 8;
    /// The native (x86_64) argument registers in order.
    pub const NATIVE_ARGS: [u32; 6] = [DI, SI, DX, R10, R8, R9];
    /// The ia32 argument registers in order.
    pub const IA32_ARGS: [u32; 6] = [BX, CX, DX, SI, DI, BP];
    /// The span every argument register of both ABIs is in, `bp..=di`.
    pub const FIRST_ARG: u32 = BP;
    pub const ARG_WORDS: usize = ((DI - BP) / 8 + 1) as usize;
}

/// A syscall's argument registers, loaded at its entry from the saved
/// `pt_regs` span that holds them all (native and ia32), for code that
/// picks an argument by a computed index: plain loads from the typed
/// registers need a constant offset each, and this copy on the stack
/// does not.
pub struct SavedArgs([u64; regs::ARG_WORDS]);

impl SavedArgs {
    /// From the `regs` a `sys_enter` BTF tracepoint passes: one plain load
    /// per register (the verifier checks each against `struct pt_regs`; a
    /// fault reads as zero).
    #[inline(always)]
    pub fn load(regs: u64) -> SavedArgs {
        let base = (regs + regs::FIRST_ARG as u64) as *const u64;
        // SAFETY: word i of the span, a field of the saved registers.
        let word = |i: usize| unsafe { core::ptr::read_volatile(base.add(i)) };
        // Written out: a loop would load at a computed offset, which the
        // verifier refuses through a typed pointer.
        const _: () = assert!(regs::ARG_WORDS == 11);
        SavedArgs([
            word(0),
            word(1),
            word(2),
            word(3),
            word(4),
            word(5),
            word(6),
            word(7),
            word(8),
            word(9),
            word(10),
        ])
    }

    /// The register at `pt_regs` offset `off`, one of [`regs`]'s argument
    /// registers.
    #[inline(always)]
    pub fn get(&self, off: u32) -> u64 {
        let i = (off.wrapping_sub(regs::FIRST_ARG) / 8) as usize;
        if i < regs::ARG_WORDS { self.0[i] } else { 0 }
    }
}

/// A syscall at its entry, as a family's code needs it: native calls
/// ([`NativeEntry`]) and ia32 calls ([`compat::Ia32Entry`]) take their
/// arguments from different registers. Generic code, so each program gets
/// its own inlined copy and the verifier sees no indirection.
pub trait Entry {
    /// The op. The dispatcher has applied the sensor's own and the ignore
    /// filters before its tail call.
    fn op(&self) -> Option<SyscallOp>;
    /// Argument `i` (0-based).
    fn arg(&self, i: usize) -> u64;
}

/// A native syscall at entry, from a `sys_enter` BTF tracepoint context
/// (`regs`, `id`).
pub struct NativeEntry {
    op: SyscallOp,
    args: SavedArgs,
}

impl NativeEntry {
    #[inline(always)]
    pub fn new(ctx: &BtfTracePointContext) -> Option<NativeEntry> {
        let id: u64 = ctx.arg(1);
        let op = SyscallOp::from_u32(native_value(id))?;
        Some(NativeEntry {
            op,
            args: SavedArgs::load(ctx.arg(0)),
        })
    }
}

impl Entry for NativeEntry {
    #[inline(always)]
    fn op(&self) -> Option<SyscallOp> {
        Some(self.op)
    }

    /// 0 if the registers were unreadable.
    #[inline(always)]
    fn arg(&self, i: usize) -> u64 {
        if i >= regs::NATIVE_ARGS.len() {
            return 0;
        }
        self.args.get(regs::NATIVE_ARGS[i])
    }
}

/// A family's programs, reached by tail call from the dispatchers: the
/// family's own `enter` and `exit`, natively and with the ia32 registers
/// as the argument source. Written out instead of with aya's macro, whose
/// inner function LLVM may leave un-inlined once a family's code has two
/// instances: a BPF-to-BPF call that kernels before 5.10 refuse beside a
/// tail call.
macro_rules! syscall_programs {
    ($enter:ident, $exit:ident, $compat_enter:ident, $compat_exit:ident) => {
        /// This family's entry program (native syscalls), a BTF
        /// tracepoint as the dispatchers (see `dispatch`).
        #[unsafe(no_mangle)]
        #[unsafe(link_section = "tp_btf/sys_enter")]
        pub extern "C" fn $enter(ctx: *mut core::ffi::c_void) -> u32 {
            let ctx = aya_ebpf::programs::BtfTracePointContext::new(ctx);
            match super::NativeEntry::new(&ctx) {
                Some(c) => enter(&c),
                None => 0,
            }
        }

        /// This family's exit program (native syscalls). `exit` gets the
        /// context too, for a tail call of its own.
        #[unsafe(no_mangle)]
        #[unsafe(link_section = "tp_btf/sys_exit")]
        pub extern "C" fn $exit(ctx: *mut core::ffi::c_void) -> u32 {
            let raw = ctx;
            let ctx = aya_ebpf::programs::BtfTracePointContext::new(ctx);
            exit(raw, ctx.arg::<i64>(1), super::native_abi(&ctx))
        }

        /// The ia32 variant of this family's entry program.
        #[unsafe(no_mangle)]
        #[unsafe(link_section = "tp_btf/sys_enter")]
        pub extern "C" fn $compat_enter(ctx: *mut core::ffi::c_void) -> u32 {
            let ctx = aya_ebpf::programs::BtfTracePointContext::new(ctx);
            match super::compat::Ia32Entry::new(&ctx) {
                Some(c) => enter(&c),
                None => 0,
            }
        }

        /// The ia32 variant of this family's exit program.
        #[unsafe(no_mangle)]
        #[unsafe(link_section = "tp_btf/sys_exit")]
        pub extern "C" fn $compat_exit(ctx: *mut core::ffi::c_void) -> u32 {
            let raw = ctx;
            let ctx = aya_ebpf::programs::BtfTracePointContext::new(ctx);
            exit(raw, super::compat::ret(&ctx), super::TASK_IA32)
        }
    };
}
pub(crate) use syscall_programs;

/// The thread `key` is exiting: the in-flight records kept between its
/// calls go with it (see [`inflight`]).
#[inline(always)]
pub fn thread_exited(key: &u64) {
    file::thread_exited(key);
    net::thread_exited(key);
    cred::thread_exited(key);
    watch::thread_exited(key);
}

/// Key of the in-flight maps: the thread, which runs one syscall at a time.
/// For programs outside a syscall's dispatch (hooks, sched tracepoints);
/// the family programs have it cheaper: [`entry_thread_key`], and
/// `task::Current::thread_key` at exit.
#[inline(always)]
pub fn thread_key() -> u64 {
    bpf_get_current_pid_tgid()
}

/// The entry dispatcher's thread key, for the family entry program it
/// tail-calls: a tail call passes nothing but the context, and this
/// per-CPU slot is read with a few instructions that the JIT inlines
/// (6.10+), where bpf_get_current_pid_tgid is a helper call.
///
/// Written and read only within one run of the entry dispatcher (it and
/// the programs it tail-calls), and no other run of it interleaves on the
/// same CPU: `sys_enter` does not fire in interrupts, its programs run
/// with preemption off, and where a kernel lets them be preempted it
/// also skips a program already running on that CPU (`prog->active`).
#[map]
static ENTRY_THREAD: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// Hands `key` to the family entry program about to be tail-called.
#[inline(always)]
pub fn set_entry_thread_key(key: u64) {
    if let Some(slot) = ENTRY_THREAD.get_ptr_mut(0) {
        // SAFETY: this CPU's slot (see ENTRY_THREAD).
        unsafe { *slot = key };
    }
}

/// The thread key in a family's entry program, which only the entry
/// dispatcher reaches (see [`ENTRY_THREAD`]).
#[inline(always)]
pub fn entry_thread_key() -> u64 {
    match ENTRY_THREAD.get_ptr(0) {
        // SAFETY: this CPU's slot, set by the dispatcher of this run.
        Some(slot) => unsafe { *slot },
        None => bpf_get_current_pid_tgid(),
    }
}

#[inline(always)]
pub fn current_task() -> u64 {
    // SAFETY: the helper has no preconditions.
    unsafe { bpf_get_current_task() }
}

/// The `struct file` open at `fd` in `task`, with probe reads (any task
/// address). A program with the current task has it cheaper:
/// [`crate::task::Current::fd_file`].
#[inline(always)]
pub fn fd_file(task: u64, fd: i32) -> Result<u64, Miss> {
    fd_file_via::<Probe>(task, fd)
}

/// The `struct file` open at `fd` in `task`: the chain to the fd array
/// (files, fdtable, its size and array) through `R`, the array's slot
/// with a probe read (the array is a pointer to pointers, which the
/// verifier types as a plain number, so no plain load follows it).
#[inline(always)]
pub fn fd_file_via<R: Reader>(task: u64, fd: i32) -> Result<u64, Miss> {
    if fd < 0 {
        return Err(Miss::Absent);
    }
    let files = R::u64(task, off!(task_files))?;
    let fdt = R::u64(files, off!(files_fdt))?;
    let max = R::u32(fdt, off!(fdtable_max_fds))?;
    if fd as u32 >= max {
        return Err(Miss::Absent);
    }
    let array = R::u64(fdt, off!(fdtable_fd))?;
    // Never OFFSET_MISSING: a multiple of 8.
    read_ptr(array, fd as u32 * 8)
}

/// The slots of the fd table embedded in `files_struct` (NR_OPEN_DEFAULT,
/// BITS_PER_LONG on every 64-bit kernel): `fdt->fd` points to them
/// until the process has had more files open at once.
const EMBEDDED_FDS: i32 = 64;

/// The `struct file` open at `fd` in the task `task` (from
/// bpf_get_current_task_btf, with `DIRECT_READS`), as a pointer the
/// verifier knows the type of: everything read through it, its dentry
/// chain included, is a plain load, where [`fd_file_via`]'s file, read
/// out of a `struct file **` the verifier types as a number, takes a
/// probe read for each field (~30 ns each on a CPU whose every return
/// goes through a mitigation thunk: the open exit's look at each file
/// opened for writing made ~20). None where it cannot be had so: `fd`
/// past the embedded slots, a table grown out of them, no plain loads
/// or no `fd_array` in this kernel; the caller falls back to
/// [`fd_file_via`].
///
/// The verifier takes a plain load only at a constant offset, so the
/// slot is picked by a `match` whose every arm sets its constant in
/// inline assembly: LLVM merges arms it can see into one load at
/// `8 * fd`, which the verifier refuses, and it cannot see into these.
/// The index is `fd` masked by an instruction whose destination starts
/// as a constant: a copy of `fd` would stay linked to it, and each arm's
/// exact value of it would then make every later check on the return
/// value (the same register) a state of its own, walked once per arm.
#[inline(always)]
pub fn fd_file_typed(task: u64, fd: i32) -> Option<u64> {
    use crate::kernel::Direct;
    if !crate::maps::direct_reads() || off!(files_fd_array) == sensor_common::OFFSET_MISSING {
        return None;
    }
    if !(0..EMBEDDED_FDS).contains(&fd) {
        return None;
    }
    let files = Direct::u64(task, off!(task_files)).ok()?;
    let fdt = Direct::u64(files, off!(files_fdt)).ok()?;
    let array = Direct::u64(fdt, off!(fdtable_fd)).ok()?;
    // The table still the embedded one (else its slots are stale copies).
    if array != field(files, off!(files_fd_array)).ok()? {
        return None;
    }
    let index: u64;
    // SAFETY: two ALU instructions on registers LLVM hands over.
    unsafe {
        core::arch::asm!(
            "{i} = {mask}",
            "{i} &= {fd}",
            i = out(reg) index,
            fd = in(reg) fd as u64,
            mask = const EMBEDDED_FDS - 1,
        )
    };
    macro_rules! slot {
        ($($k:literal)*) => {
            match index {
                $($k => {
                    let at: u64;
                    // SAFETY: a constant into a register.
                    unsafe { core::arch::asm!("{at} = {v}", at = out(reg) at, v = const 8 * $k) };
                    at
                })*
                _ => return None,
            }
        };
    }
    let at = slot!(
        0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31
        32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56 57 58 59 60 61 62 63
    );
    let file = Direct::u64(files, off!(files_fd_array) + at as u32).ok()?;
    (file != 0).then_some(file)
}

/// The number of `struct pid` `pid` in the initial pid namespace (what
/// the sensor's events name processes by).
#[inline(always)]
pub fn pid_number(pid: u64) -> Result<u32, Miss> {
    read_u32(pid, crate::kernel::plus(off!(pid_numbers), off!(upid_nr)))
}

/// The `struct path` of the directory a relative path given with `dirfd`
/// starts from: the cwd for AT_FDCWD, else the fd's file (which is also
/// the object itself for an empty path with `AT_EMPTY_PATH`).
#[inline(always)]
pub fn dir_path(task: u64, dirfd: i32) -> Result<u64, Miss> {
    if dirfd == sensor_common::AT_FDCWD {
        read_ptr(task, off!(task_fs)).and_then(|fs| field(fs, off!(fs_pwd)))
    } else {
        fd_file(task, dirfd).and_then(|f| field(f, off!(file_path)))
    }
}

/// Copies `len` bytes of kernel memory at `src` to `data + at`, the
/// position masked so the verifier can prove the write stays in the
/// scratch buffer (`len` is below 4 KiB at every caller).
#[inline(always)]
pub fn copy(data: *mut u8, at: usize, src: *const u8, len: usize) {
    if len == 0 {
        return;
    }
    // SAFETY: at is masked and len is below 4 KiB: inside the scratch value.
    unsafe {
        aya_ebpf::helpers::generated::bpf_probe_read_kernel(
            data.add(at & crate::maps::DATA_MASK).cast(),
            len as u32,
            src.cast(),
        )
    };
}

/// Copies the caller's string at `src` into `dst` (`cap` bytes); its
/// length without the NUL. A failed read sets `unreadable` in `flags` (and
/// is counted), a string filling the buffer sets `truncated`.
#[inline(always)]
pub fn read_user_str(
    dst: *mut u8,
    cap: usize,
    src: u64,
    flags: &mut u32,
    unreadable: u32,
    truncated: u32,
) -> u32 {
    if src == 0 {
        return 0;
    }
    // SAFETY: a probe read of at most cap bytes into a buffer of cap bytes.
    let n = unsafe {
        aya_ebpf::helpers::generated::bpf_probe_read_user_str(
            dst.cast(),
            cap as u32,
            src as *const _,
        )
    };
    str_len(n, cap, flags, unreadable, truncated)
}

/// Copies the kernel string at `src` into `dst` (`cap` bytes), as
/// [`read_user_str`] does the caller's.
#[inline(always)]
pub fn read_kernel_str(
    dst: *mut u8,
    cap: usize,
    src: u64,
    flags: &mut u32,
    unreadable: u32,
    truncated: u32,
) -> u32 {
    // SAFETY: a probe read of at most cap bytes into a buffer of cap bytes.
    let n = unsafe {
        aya_ebpf::helpers::generated::bpf_probe_read_kernel_str(
            dst.cast(),
            cap as u32,
            src as *const _,
        )
    };
    str_len(n, cap, flags, unreadable, truncated)
}

/// A string read's length without its NUL, from the helper's result `n`:
/// a failure sets `unreadable` (and is counted), a string filling the
/// `cap`-byte buffer sets `truncated`.
#[inline(always)]
fn str_len(n: i64, cap: usize, flags: &mut u32, unreadable: u32, truncated: u32) -> u32 {
    if n <= 0 {
        *flags |= unreadable;
        crate::maps::count_error(sensor_common::ProbeError::ReadArg);
        return 0;
    }
    let n = n as u32 - 1;
    if n as usize >= cap - 1 {
        *flags |= truncated;
    }
    n
}
