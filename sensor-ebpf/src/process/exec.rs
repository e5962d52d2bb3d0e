//! Exec, in three stages chained by tail calls (each path walk alone fits
//! the verifier's budget; the three together do not). The record is built
//! in this CPU's scratch slot and sent by the last stage; if a tail call
//! fails, the record is sent with what it has and the failure is counted.

use aya_ebpf::EbpfContext as _;
use aya_ebpf::helpers::bpf_ktime_get_boot_ns;
use aya_ebpf::helpers::generated::bpf_probe_read_user;
use aya_ebpf::macros::{map, raw_tracepoint};
use aya_ebpf::maps::ProgramArray;
use aya_ebpf::programs::RawTracePointContext;
use sensor_common::names::{EXEC_STAGE_CGROUP, EXEC_STAGE_CWD};
use sensor_common::{
    ARGV_CAP, CGROUP_CAP, CGROUP_COMPONENTS_MAX, EventKind, ExecEvent, ProbeError, exec_flags,
};

use crate::kernel::Probe;
use crate::kernel::{Miss, field, read_ptr, read_u32, read_u64};
use crate::maps::{DATA_MASK, SCRATCH, count_error, off, sensor_tgid};
use crate::path::{Walk, Writer, write_cgroup, write_found_path};
use crate::task;

const FIXED: usize = core::mem::size_of::<ExecEvent>();

/// The later exec stages; the daemon fills it at load.
#[map]
static EXEC_STAGES: ProgramArray = ProgramArray::with_max_entries(2, 0);

/// sched_process_exec (TP_PROTO(struct task_struct *p, pid_t old_pid,
/// struct linux_binprm *bprm)): fires after the new image is committed, so
/// the exec succeeded, bprm->file is the resolved executable and the new
/// argv is in place in the new mm.
/// https://elixir.bootlin.com/linux/v6.18/source/fs/exec.c (exec_binprm)
#[raw_tracepoint(tracepoint = "sched_process_exec")]
pub fn process_exec(ctx: RawTracePointContext) -> u32 {
    match try_process_exec(&ctx) {
        Ok(ret) => ret,
        Err(_) => {
            count_error(ProbeError::ReadTask);
            0
        }
    }
}

/// Stage 2 (tail-called, never attached): the working directory.
#[raw_tracepoint(tracepoint = "sched_process_exec")]
pub fn exec_cwd(ctx: RawTracePointContext) -> u32 {
    let Some(buf) = scratch() else { return 0 };
    // SAFETY: stage 1 wrote an ExecEvent at the start of this CPU's slot.
    let ev = unsafe { &mut *buf.cast::<ExecEvent>() };
    let task: u64 = ctx.arg(0);
    let mut w = writer(buf, ev.argv_len as usize + ev.exe_len as usize);
    let pwd = read_ptr(task, off!(task_fs)).and_then(|fs| field(fs, off!(fs_pwd)));
    let (len, flags) = path_into(&mut w, pwd, exec_flags::CWD_TRUNCATED);
    ev.cwd_len = len;
    ev.flags |= flags;
    next_stage::<EXEC_STAGE_CGROUP>(&ctx, buf);
    0
}

/// Stage 3 (tail-called, never attached): the cgroup path, then send.
#[raw_tracepoint(tracepoint = "sched_process_exec")]
pub fn exec_cgroup(ctx: RawTracePointContext) -> u32 {
    let Some(buf) = scratch() else { return 0 };
    // SAFETY: as in exec_cwd.
    let ev = unsafe { &mut *buf.cast::<ExecEvent>() };
    let task: u64 = ctx.arg(0);
    let mut w = writer(
        buf,
        ev.argv_len as usize + ev.exe_len as usize + ev.cwd_len as usize,
    );
    let before = w.pos;
    // A kernel without the cgroup fields simply has no cgroup path.
    let walk = match task::cgroup_kn::<Probe>(task) {
        Ok(kn) => Some(write_cgroup(&mut w, kn, CGROUP_CAP, CGROUP_COMPONENTS_MAX)),
        Err(Miss::Absent) => None,
        Err(Miss::Fault) => Some(Walk::Failed),
    };
    if let Some(walk) = walk {
        if walk == Walk::Failed {
            count_error(ProbeError::ReadCgroup);
        }
        // Counted as ReadCgroup, not ReadPath: PATH_FAILED stays for exe/cwd.
        ev.flags |= walk_flags(walk, exec_flags::CGROUP_TRUNCATED) & !exec_flags::PATH_FAILED;
    }
    ev.cgroup_len = w.since(before) as u32;
    send(buf);
    0
}

fn try_process_exec(ctx: &RawTracePointContext) -> Result<u32, i64> {
    let task: u64 = ctx.arg(0);
    let bprm: u64 = ctx.arg(2);
    if read_u32(task, off!(task_tgid))? == sensor_tgid() {
        return Ok(0);
    }
    let Some(buf) = scratch() else { return Ok(0) };
    // SAFETY: this CPU's slot, large enough for ExecEvent and 8-aligned.
    let ev = unsafe { &mut *buf.cast::<ExecEvent>() };
    ev.header.kind = EventKind::Exec as u32;
    ev.flags = 0;
    // SAFETY: the helper has no preconditions.
    ev.header.boot_ns = unsafe { bpf_ktime_get_boot_ns() };
    task::fill::<Probe>(&mut ev.task, task)?;
    ev.exe_len = 0;
    ev.cwd_len = 0;
    ev.cgroup_len = 0;

    // argv: the raw arg_start..arg_end bytes of the new image.
    let mm = read_ptr(task, off!(task_mm));
    let bounds = mm.and_then(|mm| {
        Ok((
            read_u64(mm, off!(mm_arg_start))?,
            read_u64(mm, off!(mm_arg_end))?,
        ))
    });
    let (arg_start, total) = match bounds {
        Ok((start, end)) if end > start => (start, end - start),
        Ok(_) | Err(Miss::Absent) => (0, 0),
        Err(Miss::Fault) => {
            ev.flags |= exec_flags::ARGV_UNREADABLE;
            count_error(ProbeError::ReadArgv);
            (0, 0)
        }
    };
    // Clamped to u32 first, before the cap: if this clamp came after, LLVM
    // tests `total > u32::MAX` on the path where total <= ARGV_CAP too; the
    // 5.10 verifier walks that dead branch with impossible bounds
    // (umin > umax) and turns the `len`-derived write pointer into a scalar
    // ("R1 type=inv expected=fp, ..."), rejecting the program (6.1 prunes it).
    let total = if total > u32::MAX as u64 {
        u32::MAX
    } else {
        total as u32
    };
    ev.argv_total = total;
    let mut len = if total > ARGV_CAP as u32 {
        ARGV_CAP as u32
    } else {
        total
    };
    if total > ARGV_CAP as u32 {
        ev.flags |= exec_flags::ARGV_TRUNCATED;
    }
    if len > 0 {
        // SAFETY: the data area has room for ARGV_CAP bytes; a failed read
        // is reported, never silently empty.
        let ret = unsafe { bpf_probe_read_user(buf.add(FIXED).cast(), len, arg_start as *const _) };
        if ret < 0 {
            ev.flags |= exec_flags::ARGV_UNREADABLE;
            count_error(ProbeError::ReadArgv);
            len = 0;
        }
    }
    ev.argv_len = len;

    // exe: bprm->file->f_path (f_path is embedded in struct file).
    let mut w = writer(buf, len as usize);
    let file = read_ptr(bprm, off!(binprm_file));
    // No name left in any directory: a memfd or a deleted file.
    let nlink = file
        .and_then(|f| read_ptr(f, off!(file_inode)))
        .and_then(|i| read_u32(i, off!(inode_nlink)));
    if nlink == Ok(0) {
        ev.flags |= exec_flags::EXE_UNLINKED;
    }
    let f_path = file.and_then(|file| field(file, off!(file_path)));
    let (exe_len, flags) = path_into(&mut w, f_path, exec_flags::EXE_TRUNCATED);
    ev.exe_len = exe_len;
    ev.flags |= flags;
    next_stage::<EXEC_STAGE_CWD>(ctx, buf);
    Ok(0)
}

fn scratch() -> Option<*mut u8> {
    crate::maps::scratch(&SCRATCH)
}

fn writer(buf: *mut u8, pos: usize) -> Writer {
    // SAFETY: FIXED is inside the scratch value.
    Writer {
        data: unsafe { buf.add(FIXED) },
        pos: pos & DATA_MASK,
    }
}

/// Jumps to the next stage; only returns if the jump failed, in which case
/// the record goes out as it is.
#[inline(always)]
fn next_stage<const STAGE: u32>(ctx: &RawTracePointContext, buf: *mut u8) {
    crate::tail_call::tail_call!(ctx.as_ptr(), EXEC_STAGES, STAGE);
    count_error(ProbeError::TailCall);
    send(buf);
}

/// Sends the record assembled in `buf` to userspace.
fn send(buf: *mut u8) {
    // SAFETY: stage 1 wrote an ExecEvent at the start of the slot.
    let ev = unsafe { &mut *buf.cast::<ExecEvent>() };
    let data =
        ev.argv_len as usize + ev.exe_len as usize + ev.cwd_len as usize + ev.cgroup_len as usize;
    let size = FIXED + (data & DATA_MASK);
    ev.header.size = size as u32;
    if ev.flags & exec_flags::PATH_FAILED != 0 {
        count_error(ProbeError::ReadPath);
    }
    // SAFETY: buf..buf+size lies inside the scratch value (size <= FIXED +
    // DATA_MASK, which the value exceeds).
    unsafe { crate::ring::output(EventKind::Exec, buf, size) };
}

/// Walks the `struct path` at `path` (if it could be reached) into `w`:
/// the bytes written, and the flag bits for how the walk ended.
#[inline(always)]
fn path_into(w: &mut Writer, path: Result<u64, Miss>, truncated: u32) -> (u32, u32) {
    let before = w.pos;
    let walk = write_found_path(w, path);
    (w.since(before) as u32, walk_flags(walk, truncated))
}

/// Flag bits for how a path walk ended.
fn walk_flags(walk: Walk, truncated: u32) -> u32 {
    match walk {
        Walk::Complete => 0,
        Walk::Truncated => truncated,
        Walk::Failed => truncated | exec_flags::PATH_FAILED,
    }
}
