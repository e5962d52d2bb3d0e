//! The io_uring hooks (see `sensor_common::io_uring`): file and network
//! operations requested through a ring, which no syscall hook sees, and
//! their results. Optional: a kernel without io_uring, or with a submit
//! tracepoint in a shape not known here, has the rest of the system
//! family without them; one whose completion tracepoint does not pass the
//! request (before 5.19) has the requests without their results.

use aya::Ebpf;
use aya::maps::{MapData, ProgramArray};
use sensor_common::{EventKind, names};

use super::offsets::ResolvedOffsets;

/// What `sensor probe` and the start log say about the hooks.
pub const WHY: &str = "io_uring requests of file and network operations (openat, connect, \
    unlinkat, renameat, setxattr, bind, listen…) are submitted without their syscalls, so no \
    syscall hook sees them; the kernel's submit tracepoint does, for every request, in the \
    submitting process, once the kernel prepared it: the operation, and from 5.19 (where it \
    passes the request) its paths, open flags, mode and a connect's address; its completion \
    tracepoint then gives each reported request's result";

/// What a better hook would add.
pub const PREFERRED: &str = "the address a connect's request holds in the kernel rather than \
    the caller's copy (not built yet)";

/// The submit tracepoint this kernel's hook goes on, or why there is none.
pub fn tracepoint(resolved: &ResolvedOffsets) -> Result<&'static str, String> {
    resolved.io_uring_tracepoint.ok_or_else(|| {
        "no io_uring submit tracepoint in this kernel's BTF that the hook can read \
         (CONFIG_IO_URING off?)"
            .to_owned()
    })
}

/// The hooks as `sensor probe` lists them.
pub fn describe(resolved: &ResolvedOffsets) -> String {
    match tracepoint(resolved) {
        Ok(submit) => match &resolved.io_uring_complete {
            Ok(()) => format!(
                "raw_tracepoint/{submit} + raw_tracepoint/{}",
                names::TP_IO_URING_COMPLETE
            ),
            Err(why) => format!("raw_tracepoint/{submit} (no results: {why})"),
        },
        Err(why) => format!("none: {why}"),
    }
}

/// What [`attach`] attached.
pub struct Attached {
    pub submit: &'static str,
    /// The completion hook, or why it is not attached.
    pub complete: Result<(), String>,
    /// The submit hook's stage, which walks its directories and sends
    /// its records: kept open, or the kernel empties it; or why it is not
    /// loaded.
    pub stages: Result<ProgramArray<MapData>, String>,
}

/// Attaches the hooks if the system family is `enabled`. None: the family
/// is off; else what was attached, or why nothing was.
pub fn attach(
    ebpf: &mut Ebpf,
    enabled: &[EventKind],
    resolved: &ResolvedOffsets,
) -> Option<Result<Attached, String>> {
    if !enabled.contains(&EventKind::System) {
        return None;
    }
    Some(tracepoint(resolved).and_then(|submit| {
        // The stage before the hook that reaches it. Without it, the hook
        // sends its records without walking their directories (each
        // counted, `tail_call`), and so remembers no request for its
        // completion: still each request, where an intruder's would
        // otherwise go unseen.
        let stages = load_stage(ebpf, submit);
        attach_one(ebpf, names::PROG_IO_URING_SUBMIT, submit)?;
        // Only once the submit hook is in: it is what the completion
        // hook's requests come from.
        let complete = resolved.io_uring_complete.clone().and_then(|()| {
            attach_one(
                ebpf,
                names::PROG_IO_URING_COMPLETE,
                names::TP_IO_URING_COMPLETE,
            )
        });
        Ok(Attached {
            submit,
            complete,
            stages,
        })
    }))
}

/// Loads the submit hook's stage (a raw tracepoint program never
/// attached, of the hook's `tracepoint`) into its slot.
fn load_stage(ebpf: &mut Ebpf, tracepoint: &'static str) -> Result<ProgramArray<MapData>, String> {
    let name = names::PROG_IO_URING_SUBMIT_WALKS;
    let program = super::load_raw_tracepoint(ebpf, name, tracepoint).map_err(|e| e.to_string())?;
    let fd = program
        .fd()
        .map_err(|e| format!("{name}: {e}"))?
        .try_clone();
    let fd = fd.map_err(|e| format!("{name}: {e}"))?;
    let mut stages: ProgramArray<MapData> =
        super::take_map(ebpf, names::IO_URING_STAGES_MAP).map_err(|e| e.to_string())?;
    stages
        .set(0, &fd, 0)
        .map_err(|e| format!("{}: {e}", names::IO_URING_STAGES_MAP))?;
    Ok(stages)
}

fn attach_one(
    ebpf: &mut Ebpf,
    program: &'static str,
    tracepoint: &'static str,
) -> Result<(), String> {
    super::load_raw_tracepoint(ebpf, program, tracepoint)
        .map_err(|e| e.to_string())?
        .attach(tracepoint)
        .map_err(|e| format!("attaching to {tracepoint}: {e}"))?;
    Ok(())
}
