use aya_ebpf::macros::raw_tracepoint;
use aya_ebpf::programs::RawTracePointContext;
use sensor_common::{EventKind, ForkEvent, ProbeError};

use crate::kernel::Probe;
use crate::kernel::read_u32;
use crate::maps::{count_error, off, sensor_tgid};
use crate::task::{self, Current};

/// sched_process_fork (TP_PROTO(struct task_struct *parent, struct task_struct *child)):
/// fires in the parent once copy_process has fully built the child, with
/// the child's credentials, parent and start time in place.
/// https://elixir.bootlin.com/linux/v6.18/source/kernel/fork.c (kernel_clone)
#[raw_tracepoint(tracepoint = "sched_process_fork")]
pub fn process_fork(ctx: RawTracePointContext) -> u32 {
    match try_process_fork(&ctx) {
        Ok(ret) => ret,
        Err(_) => {
            count_error(ProbeError::ReadTask);
            0
        }
    }
}

fn try_process_fork(ctx: &RawTracePointContext) -> Result<u32, i64> {
    let parent: u64 = ctx.arg(0);
    let child: u64 = ctx.arg(1);
    if read_u32(parent, off!(task_tgid))? == sensor_tgid() {
        return Ok(0);
    }
    // Before the thread check: a thread can get namespaces of its own too
    // (clone with CLONE_THREAD and CLONE_NEWNET, say).
    let made = super::namespaces::made(parent, child);
    if made != 0 {
        let child_pid = read_u32(child, off!(task_pid))?;
        crate::syscall::sys::namespaces_made(Current::get(), child, child_pid, made);
    }
    // New threads share the parent's tgid: not a new process.
    if read_u32(child, off!(task_tgid))? != read_u32(child, off!(task_pid))? {
        return Ok(0);
    }
    crate::ring::emit::<ForkEvent>(EventKind::Fork, |ev| {
        // SAFETY: emit hands us reserved space for one ForkEvent.
        task::fill::<Probe>(unsafe { &mut (*ev).task }, child).map_err(Into::into)
    })?;
    Ok(0)
}
