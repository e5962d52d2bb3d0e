//! Syscalls traced at their entry and exit (`syscalls:sys_enter_<name>`
//! and `sys_exit_<name>` tracepoints).
//!
//! Why these hooks: they exist on every kernel the sensor supports (unlike
//! fentry/BPF-LSM, which sandboxes and some distributions refuse), they
//! only fire for the syscalls they name (an untraced syscall costs
//! nothing), and the exit tracepoint gives the outcome. Arguments are read
//! at entry, the moment the kernel copies them too, and kept per thread
//! until the exit, where one record with the result is sent.
//!
//! One program per family serves all of its syscalls: the tracepoint
//! record says which syscall fired (`__syscall_nr`), and `SYSCALL_OPS`,
//! filled by the daemon, says what that number is.

pub mod compat;
pub mod cred;
pub mod file;
pub mod file_setattr;
mod inflight;
pub mod net;
pub mod sys;
pub mod watch;
pub mod watch_inode;

use aya_ebpf::EbpfContext as _;
use aya_ebpf::helpers::{bpf_get_current_pid_tgid, bpf_get_current_task};
use aya_ebpf::macros::map;
use aya_ebpf::maps::Array;
use aya_ebpf::programs::TracePointContext;
use sensor_common::{SYSCALL_SLOTS, SyscallOp};

use crate::kernel::{Miss, field, read_ptr, read_u32};
use crate::maps::{off, sensor_tgid};

/// [`SyscallOp`] of each traced syscall number; 0 for the rest.
#[map]
static SYSCALL_OPS: Array<u32> = Array::with_max_entries(SYSCALL_SLOTS, 0);

// Layout of the syscalls:sys_enter_*/sys_exit_* records, the same on every
// kernel since 3.x: 8 bytes of common fields, `int __syscall_nr`, then at
// entry the arguments as 8-byte slots, at exit `long ret`.
// https://elixir.bootlin.com/linux/v6.18/source/kernel/trace/trace_syscalls.c
const NR: usize = 8;
const ARGS: usize = 16;
const RET: usize = 16;

/// The op of the syscall that fired, if it is traced and neither the
/// sensor's own nor from a task the filters ignore.
#[inline(always)]
pub fn op(ctx: &TracePointContext) -> Option<SyscallOp> {
    if (bpf_get_current_pid_tgid() >> 32) as u32 == sensor_tgid() {
        return None;
    }
    let nr: i32 = record(ctx, NR);
    if nr < 0 {
        return None;
    }
    let op = SyscallOp::from_u32(*SYSCALL_OPS.get(nr as u32)?)?;
    if crate::filter::task_ignored(current_task()) {
        return None;
    }
    Some(op)
}

/// A syscall at its entry, as a family's code needs it: native calls from
/// the `syscalls:` tracepoint record, ia32 calls from the registers
/// ([`compat::Ia32Entry`]). Generic code, so each program gets its own
/// inlined copy and the verifier sees no indirection.
pub trait Entry {
    /// The op, if the call is traced (for native calls this also applies
    /// the sensor's own and the ignore filters; the compat dispatcher
    /// applies them before its tail call).
    fn op(&self) -> Option<SyscallOp>;
    /// Argument `i` (0-based).
    fn arg(&self, i: usize) -> u64;
}

impl Entry for TracePointContext {
    #[inline(always)]
    fn op(&self) -> Option<SyscallOp> {
        op(self)
    }

    #[inline(always)]
    fn arg(&self, i: usize) -> u64 {
        arg(self, i)
    }
}

/// A family's ia32 programs, reached by tail call from the compat
/// dispatchers: the family's own `enter` and `exit` with the registers as
/// the argument source. Written out instead of with aya's macro, whose
/// inner function LLVM may leave un-inlined once a family's code has two
/// instances: a BPF-to-BPF call that kernels before 5.10 refuse beside a
/// tail call.
macro_rules! compat_programs {
    ($enter:ident, $exit:ident) => {
        /// The ia32 variant of this family's entry program.
        #[unsafe(no_mangle)]
        #[unsafe(link_section = "raw_tp/sys_enter")]
        pub extern "C" fn $enter(ctx: *mut core::ffi::c_void) -> u32 {
            let ctx = aya_ebpf::programs::RawTracePointContext::new(ctx);
            match super::compat::Ia32Entry::new(&ctx) {
                Some(c) => enter(&c),
                None => 0,
            }
        }

        /// The ia32 variant of this family's exit program.
        #[unsafe(no_mangle)]
        #[unsafe(link_section = "raw_tp/sys_exit")]
        pub extern "C" fn $exit(ctx: *mut core::ffi::c_void) -> u32 {
            let ctx = aya_ebpf::programs::RawTracePointContext::new(ctx);
            exit(super::compat::ret(&ctx), true)
        }
    };
}
pub(crate) use compat_programs;

/// Argument `i` (0-based) of the syscall entry record.
#[inline(always)]
pub fn arg(ctx: &TracePointContext, i: usize) -> u64 {
    // SAFETY: reads inside the tracepoint record (every entry record has
    // as many slots as its syscall has arguments; callers only read those).
    unsafe { ctx.read_at(ARGS + 8 * i) }.unwrap_or(0)
}

/// The return value in a syscall exit record.
#[inline(always)]
pub fn ret(ctx: &TracePointContext) -> i64 {
    record(ctx, RET)
}

/// A field of the tracepoint record at a constant `offset`, with a plain
/// load, which the verifier checks against the record's bounds: a few ns
/// where a probe read is a helper call. Only for constant offsets: a
/// variable one is refused (that is why `arg` probe-reads).
#[inline(always)]
fn record<T: Copy>(ctx: &TracePointContext, offset: usize) -> T {
    // SAFETY: inside the record (NR and RET are in every syscall record).
    unsafe { core::ptr::read_volatile(ctx.as_ptr().cast::<u8>().add(offset).cast::<T>()) }
}

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
#[inline(always)]
pub fn thread_key() -> u64 {
    bpf_get_current_pid_tgid()
}

#[inline(always)]
pub fn current_task() -> u64 {
    // SAFETY: the helper has no preconditions.
    unsafe { bpf_get_current_task() }
}

/// The `struct file` open at `fd` in `task`.
#[inline(always)]
pub fn fd_file(task: u64, fd: i32) -> Result<u64, Miss> {
    if fd < 0 {
        return Err(Miss::Absent);
    }
    let files = read_ptr(task, off!(task_files))?;
    let fdt = read_ptr(files, off!(files_fdt))?;
    let max = read_u32(fdt, off!(fdtable_max_fds))?;
    if fd as u32 >= max {
        return Err(Miss::Absent);
    }
    let array = read_ptr(fdt, off!(fdtable_fd))?;
    // Never OFFSET_MISSING: a multiple of 8.
    read_ptr(array, fd as u32 * 8)
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
