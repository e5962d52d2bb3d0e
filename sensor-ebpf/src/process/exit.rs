use aya_ebpf::helpers::bpf_ktime_get_boot_ns;
use aya_ebpf::macros::raw_tracepoint;
use aya_ebpf::programs::RawTracePointContext;
use sensor_common::{EventKind, ExitEvent, ProbeError};

use crate::kernel::{read_ptr, read_u32};
use crate::maps::{EVENTS, count_error, count_loss, off, sensor_tgid};
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
    let task: u64 = ctx.arg(0);
    if read_u32(task, off!(task_tgid))? == sensor_tgid() {
        return Ok(0);
    }
    let signal = read_ptr(task, off!(task_signal))?;
    if read_u32(signal, off!(signal_live))? != 0 {
        return Ok(0);
    }
    let exit_status = read_u32(task, off!(task_exit_code))?;
    let Some(mut entry) = EVENTS.reserve::<ExitEvent>(0) else {
        count_loss(EventKind::Exit);
        return Ok(0);
    };
    let ev = entry.as_mut_ptr();
    // SAFETY: ev points at reserved space for one ExitEvent; every field is
    // written before submit.
    let filled = unsafe {
        (*ev).header.kind = EventKind::Exit as u32;
        (*ev).header.size = core::mem::size_of::<ExitEvent>() as u32;
        (*ev).header.boot_ns = bpf_ktime_get_boot_ns();
        (*ev).exit_status = exit_status;
        (*ev)._pad0 = 0;
        task::fill(&mut (*ev).task, task)
    };
    match filled {
        Ok(()) => entry.submit(0),
        Err(e) => {
            entry.discard(0);
            return Err(e.into());
        }
    }
    Ok(0)
}
