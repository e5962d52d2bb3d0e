//! The `/proc/PID/mem` hook (see the eBPF side's `proc_mem.rs`): opens
//! of a process's memory file, the way into another process's memory (or
//! past one's own W^X) that needs no ptrace call.
//!
//! fexit on `mem_open` where the kernel allows it; else the watch family's
//! open exit tests each successful open for writing (so it depends on that
//! family being enabled). Optional either way: without both, the rest of
//! the system family goes on.

use aya::Ebpf;
use aya::programs::FExit;
use sensor_common::{EventKind, names};

use super::offsets::ResolvedOffsets;

/// What `sensor probe` and the start log say about the hook.
pub const WHY: &str = "an open of /proc/PID/mem reads or writes another process's memory (code \
    injection, secrets lifted from a running process; into one's own, writes past W^X) with no \
    ptrace call and no syscall a syscall hook could single out; the kernel's mem_open runs only \
    for those files, after the permission check (an attach's), with its result";

/// The fallback's hook, and what it misses.
pub const FALLBACK: &str = "tp_btf/sys_exit of the open syscalls (the file_write family's open \
    exit tests the file: procfs, named mem): successful opens for writing only";

/// How the hook went on, or why it is not on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Fexit,
    /// The fallback, and why fexit is not used.
    OpenExit(String),
}

/// Whether the hook's reads fit this kernel, or why not.
pub fn available(resolved: &ResolvedOffsets) -> Result<(), String> {
    resolved.proc_mem.clone()
}

/// Attaches the hook if the system family is `enabled`. None: the family
/// is off; else which hook reports the opens, or why none does.
pub fn attach(
    ebpf: &mut Ebpf,
    enabled: &[EventKind],
    resolved: &ResolvedOffsets,
    btf: &Result<aya::Btf, String>,
) -> Option<Result<Status, String>> {
    if !enabled.contains(&EventKind::System) {
        return None;
    }
    if let Err(why) = available(resolved) {
        return Some(Err(why));
    }
    let fexit = attach_fexit(ebpf, btf)
        .and_then(|()| super::syscalls::set_switch(ebpf, names::PROC_MEM_BY_FEXIT_MAP));
    Some(match fexit {
        Ok(()) => Ok(Status::Fexit),
        Err(why) if enabled.contains(&EventKind::FileWrite) => Ok(Status::OpenExit(why)),
        Err(why) => Err(format!(
            "{why}; the fallback needs the file_write family, which is disabled"
        )),
    })
}

fn attach_fexit(ebpf: &mut Ebpf, btf: &Result<aya::Btf, String>) -> Result<(), String> {
    let btf = btf.as_ref().map_err(Clone::clone)?;
    let name = names::PROG_PROC_MEM_OPEN;
    let function = names::FN_MEM_OPEN;
    let program: &mut FExit = ebpf
        .program_mut(name)
        .ok_or_else(|| format!("program {name} missing"))?
        .try_into()
        .map_err(|e| format!("{name}: {e}"))?;
    program.load(function, btf).map_err(|e| {
        super::report_if_too_complex(name, &e);
        format!("fexit/{function} refused: {e}")
    })?;
    program
        .attach()
        .map_err(|e| format!("fexit/{function}: {e}"))?;
    Ok(())
}
