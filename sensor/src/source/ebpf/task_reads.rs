//! How the programs read the task behind each syscall event.
//!
//! Every syscall event carries the task's identity: about twenty kernel
//! fields behind half a dozen pointers. Read with bpf_probe_read_kernel
//! that is twenty helper calls, the largest part of a traced syscall's
//! cost. From 5.11, bpf_get_current_task_btf hands the program a pointer
//! the verifier knows the type of, and fields behind it are read with plain
//! loads, checked against the kernel's BTF at load time.
//!
//! Whether the verifier accepts those loads is learnt by loading them: the
//! object's never-attached `task_reads_check` program runs the same code as
//! every syscall program. If it is refused, the object is loaded again with
//! probe reads, which every kernel accepts.

use aya::Ebpf;
use sensor_common::{names, probe_features};

use super::offsets::ResolvedOffsets;
use super::{LoadError, load_raw_tracepoint};

/// The reads the programs were loaded with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskReads {
    /// Plain loads through bpf_get_current_task_btf.
    Direct,
    /// bpf_probe_read_kernel, and why not plain loads.
    Probe(String),
}

/// Loads the object (through `load_object`, given the
/// [`ProbeConfig::features`](sensor_common::ProbeConfig) to set) with
/// plain task reads where `wanted` and this kernel verifies them, else
/// with probe reads.
pub fn choose(
    wanted: bool,
    resolved: &ResolvedOffsets,
    load_object: impl Fn(u32) -> Result<Ebpf, LoadError>,
) -> Result<(Ebpf, TaskReads), LoadError> {
    if !wanted {
        let why = "off in the config (ebpf.direct_task_reads)";
        return Ok((load_object(0)?, TaskReads::Probe(why.to_owned())));
    }
    if !resolved.task_btf_helper {
        let why = "the kernel has no bpf_get_current_task_btf (Linux 5.11+)";
        return Ok((load_object(0)?, TaskReads::Probe(why.to_owned())));
    }
    let mut ebpf = load_object(probe_features::DIRECT_READS)?;
    match load_raw_tracepoint(&mut ebpf, names::PROG_TASK_READS_CHECK, "none (check)") {
        Ok(_) => Ok((ebpf, TaskReads::Direct)),
        Err(refused) => {
            // The whole verifier log goes to debug; the reason in it is
            // its last line.
            tracing::debug!("plain task reads refused: {refused:?}");
            let why = format!("the verifier refused plain loads: {}", last_line(&refused));
            drop(ebpf);
            Ok((load_object(0)?, TaskReads::Probe(why)))
        }
    }
}

/// The last non-empty line of an error's message (for a refused program,
/// the verifier's reason).
fn last_line(e: &LoadError) -> String {
    let text = match e {
        LoadError::Program {
            source: aya::programs::ProgramError::LoadError { verifier_log, .. },
            ..
        } => verifier_log.to_string(),
        other => other.to_string(),
    };
    text.lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("no reason given")
        .to_owned()
}
