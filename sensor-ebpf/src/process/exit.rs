use aya_ebpf::macros::raw_tracepoint;
use aya_ebpf::programs::RawTracePointContext;
use sensor_common::{EventKind, ExitEvent, ProbeError};

use crate::kernel::Probe;
use crate::kernel::{read_ptr, read_u32};
use crate::maps::{count_error, off, sensor_tgid};
use crate::task;

/// sched_process_exit (TP_PROTO(struct task_struct *p, …)): fires in do_exit
/// after exit_code is set and after signal->live was decremented, so
/// `live == 0` marks the last thread of the process, whatever its order.
/// https://elixir.bootlin.com/linux/v6.18/source/kernel/exit.c (do_exit)
#[raw_tracepoint(tracepoint = "sched_process_exit")]
pub fn process_exit(ctx: RawTracePointContext) -> u32 {
    match try_process_exit(&ctx) {
        Ok(ret) => ret,
        Err(_) => {
            count_error(ProbeError::ReadTask);
            0
        }
    }
}

fn try_process_exit(ctx: &RawTracePointContext) -> Result<u32, i64> {
    // Every thread passes here once (do_exit runs in the exiting thread):
    // its in-flight records that outlive a call go with it.
    crate::syscall::thread_exited(&crate::syscall::thread_key());
    let task: u64 = ctx.arg(0);
    if read_u32(task, off!(task_tgid))? == sensor_tgid() {
        return Ok(0);
    }
    let signal = read_ptr(task, off!(task_signal))?;
    if read_u32(signal, off!(signal_live))? != 0 {
        return Ok(0);
    }
    let exit_status = read_u32(task, off!(task_exit_code))?;
    crate::ring::emit::<ExitEvent>(EventKind::Exit, |ev| {
        // SAFETY: emit hands us reserved space for one ExitEvent.
        let ev = unsafe { &mut *ev };
        ev.exit_status = exit_status;
        ev._pad0 = 0;
        task::fill::<Probe>(&mut ev.task, task).map_err(Into::into)
    })?;
    Ok(0)
}
