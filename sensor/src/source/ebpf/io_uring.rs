//! The io_uring hook (see `sensor_common::io_uring`): file and network
//! operations requested through a ring, which no syscall hook sees.
//! Optional: a kernel without io_uring, or with a submit tracepoint in a
//! shape not known here, has the rest of the system family without it.

use aya::Ebpf;
use sensor_common::{EventKind, names};

use super::offsets::ResolvedOffsets;

/// What `sensor probe` and the start log say about the hook.
pub const WHY: &str = "io_uring requests of file and network operations (openat, connect, \
    unlinkat, renameat, setxattr, bind, listen…) are submitted without their syscalls, so no \
    syscall hook sees them; the kernel's submit tracepoint does, for every request, in the \
    submitting process, once the kernel prepared it: the operation, and from 5.19 (where it \
    passes the request) its paths, open flags, mode and a connect's address";

/// What a better hook would add.
pub const PREFERRED: &str = "the request's result from io_uring_complete, and the address a \
    connect's request holds in the kernel rather than the caller's copy (not built yet)";

/// The tracepoint this kernel's hook goes on, or why there is none.
pub fn tracepoint(resolved: &ResolvedOffsets) -> Result<&'static str, String> {
    resolved.io_uring_tracepoint.ok_or_else(|| {
        "no io_uring submit tracepoint in this kernel's BTF that the hook can read \
         (CONFIG_IO_URING off?)"
            .to_owned()
    })
}

/// Attaches the hook if the system family is `enabled`. None: the family
/// is off; else the tracepoint it went on, or why it is not attached.
pub fn attach(
    ebpf: &mut Ebpf,
    enabled: &[EventKind],
    resolved: &ResolvedOffsets,
) -> Option<Result<&'static str, String>> {
    if !enabled.contains(&EventKind::System) {
        return None;
    }
    Some(tracepoint(resolved).and_then(|tracepoint| {
        super::load_raw_tracepoint(ebpf, names::PROG_IO_URING_SUBMIT, tracepoint)
            .map_err(|e| e.to_string())?
            .attach(tracepoint)
            .map_err(|e| format!("attaching to {tracepoint}: {e}"))?;
        Ok(tracepoint)
    }))
}
