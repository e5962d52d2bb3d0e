//! The eBPF source: loads our one object, fills in the kernel's struct
//! offsets, attaches the programs, and hands ring-buffer records to the
//! decoder. Also reads the in-kernel loss and error counters.

pub mod cgroup2;
pub mod compat;
pub mod decode;
pub mod filter;
pub mod homes;
pub mod inode_key;
pub mod io_uring;
pub mod magic_link_scan;
pub mod magic_links;
pub mod offsets;
pub mod proc_mem;
pub mod skipped;
pub mod sshd_files;
pub mod symlinks_sync;
pub mod syscalls;
pub mod task_reads;
pub mod udp_flows;
pub mod watch;
pub mod watch_sources;
#[cfg(test)]
mod wire_check;

use aya::maps::{MapData, PerCpuArray, ProgramArray, RingBuf};
use aya::programs::{BtfTracePoint, RawTracePoint};
use aya::{Ebpf, EbpfLoader};
use sensor_common::{EventKind, ProbeConfig, ProbeError, names, probe_features};

use crate::config::EbpfConfig;
use crate::config::filter::FilterConfig;
pub use task_reads::TaskReads;

/// The running kernel's own type information, from which offsets are resolved.
pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

/// The object built by sensor/build.rs from the sensor-ebpf crate.
static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/sensor-ebpf"));

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(
        "this sensor binary was built without its eBPF object (AYA_BUILD_SKIP was set); \
         rebuild it with `cargo xtask build`"
    )]
    NoObject,
    #[error(transparent)]
    Offsets(#[from] offsets::OffsetsError),
    #[error("loading the eBPF object failed: {0}")]
    Object(#[source] aya::EbpfError),
    #[error("cannot count the possible CPUs from {path}: {source}")]
    Cpus {
        path: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("the eBPF object has no {what} named {name}")]
    Missing {
        what: &'static str,
        name: &'static str,
    },
    #[error("program {program} ({hook}): {source}")]
    Program {
        program: &'static str,
        hook: &'static str,
        #[source]
        source: aya::programs::ProgramError,
    },
    #[error("invalid config value `{key}`: {problem}")]
    Filter { key: &'static str, problem: String },
    #[error("map {name}: {source}")]
    Map {
        name: &'static str,
        #[source]
        source: aya::maps::MapError,
    },
}

/// How each event kind is captured, in order of preference. Today every
/// kind has exactly one hook, a raw tracepoint, because it loads on every
/// BTF kernel (5.8+) and in sandboxes that refuse fentry/LSM; better hooks
/// are added here with the older one as their fallback.
pub struct Hook {
    pub kind: EventKind,
    pub program: &'static str,
    pub attach: &'static str,
    pub hook_type: &'static str,
    pub why: &'static str,
}

pub const HOOKS: &[Hook] = &[
    Hook {
        kind: EventKind::Exec,
        program: names::PROG_EXEC_RAW_TP,
        attach: names::TP_SCHED_PROCESS_EXEC,
        hook_type: "raw_tracepoint",
        why: "fires once the new image is committed (exec can no longer fail), with the \
              linux_binprm whose file is the resolved executable; stable since 3.x, no kprobes needed",
    },
    Hook {
        kind: EventKind::Fork,
        program: names::PROG_FORK_RAW_TP,
        attach: names::TP_SCHED_PROCESS_FORK,
        hook_type: "raw_tracepoint",
        why: "fires in the parent after the child is fully set up, with both task_structs",
    },
    Hook {
        kind: EventKind::Exit,
        program: names::PROG_EXIT_RAW_TP,
        attach: names::TP_SCHED_PROCESS_EXIT,
        hook_type: "raw_tracepoint",
        why: "fires in do_exit after exit_code is set and signal->live is decremented, \
              so the last thread of a process is known",
    },
];

pub struct EbpfSource {
    // Keep programs attached and maps alive for as long as the source lives.
    ebpf: Ebpf,
    _stages: ProgramArray<MapData>,
    _io_uring_stages: Option<ProgramArray<MapData>>,
    _native_programs: syscalls::NativePrograms,
    /// The kernel-side filter, kept to refresh its executables' inodes.
    filter: filter::Resolved,
    losses: PerCpuArray<MapData, u64>,
    errors: PerCpuArray<MapData, u64>,
    last_losses: Vec<u64>,
    last_errors: Vec<u64>,
    skipped: skipped::Skipped,
    /// Kernel fields this kernel does not have (reported by `sensor probe`).
    pub missing_fields: Vec<&'static str>,
    /// Each traced syscall and whether it could be attached here.
    pub syscalls: Vec<syscalls::Traced>,
    /// The fentry hooks completing the tracepoint families' events.
    pub fentry_hooks: syscalls::FentryHooks,
    /// The ia32 syscall hooks.
    pub ia32: compat::Ia32Hooks,
    symlinks: symlinks_sync::SymlinksSync,
}

impl EbpfSource {
    /// Loads and attaches everything; returns the source (counters) and the
    /// ring buffer, which the caller polls.
    pub fn load(
        config: &EbpfConfig,
        filter: &FilterConfig,
        watched: &watch::Watched,
    ) -> Result<(EbpfSource, RingBuf<MapData>), LoadError> {
        if EBPF_OBJECT.is_empty() {
            return Err(LoadError::NoObject);
        }
        raise_memlock_limit();
        let resolved = offsets::resolve_running_kernel()?;
        let filter = filter::resolve(filter)?;
        // One scratch slot per possible CPU (the programs index it by CPU id).
        let cpus =
            aya::util::nr_cpus().map_err(|(path, e)| LoadError::Cpus { path, source: e })? as u32;
        // The fork hook reports namespaces no clone record announced only
        // where the family that reports the rest is on.
        let system_on = !config.disable.iter().any(|d| d == EventKind::System.name());
        let fork_namespaces = if system_on {
            probe_features::FORK_NAMESPACES
        } else {
            0
        };
        let name_rules = watched.rules().fold(0, |bits, rule| bits | rule.feature());
        let load_object = |features: u32| {
            let probe_config = ProbeConfig {
                sensor_tgid: std::process::id(),
                filters: filter.flags(),
                features: features | fork_namespaces | name_rules,
            };
            EbpfLoader::new()
                .override_global(names::OFFSETS_GLOBAL, &resolved.offsets, true)
                .override_global(names::CONFIG_GLOBAL, &probe_config, true)
                .map_max_entries(names::EVENTS_MAP, config.ring_buffer_bytes)
                .map_max_entries(names::SCRATCH_MAP, cpus)
                .map_max_entries(names::SYSCALL_SCRATCH_MAP, cpus)
                .load(EBPF_OBJECT)
                .map_err(LoadError::Object)
        };
        let (mut ebpf, task_reads) =
            task_reads::choose(config.direct_task_reads, &resolved, load_object)?;
        // Parsed once, for the BTF tracepoints and every fentry hook (tens
        // of MiB, tens of ms).
        let btf = aya::Btf::from_sys_fs().map_err(|e| format!("kernel BTF: {e}"));
        verify_first(&mut ebpf, btf.as_ref().ok());
        match &task_reads {
            TaskReads::Direct => tracing::info!(
                "the current task is read with plain loads (bpf_get_current_task_btf)"
            ),
            TaskReads::Probe(why) => {
                tracing::info!("the current task is read with bpf_probe_read_kernel: {why}")
            }
        }
        // The exec stages first: they are loaded but never attached, and
        // process_exec reaches them by tail call through EXEC_STAGES. Filled
        // before any hook is attached, so no exec ever finds a stage missing.
        let mut stages: ProgramArray<MapData> = take_map(&mut ebpf, names::EXEC_STAGES_MAP)?;
        for (index, name) in [
            (names::EXEC_STAGE_CWD, names::PROG_EXEC_CWD),
            (names::EXEC_STAGE_CGROUP, names::PROG_EXEC_CGROUP),
        ] {
            let program = load_raw_tracepoint(&mut ebpf, name, "tail call")?;
            let fd = program.fd().map_err(|source| LoadError::Program {
                program: name,
                hook: "tail call",
                source,
            })?;
            stages.set(index, fd, 0).map_err(|source| LoadError::Map {
                name: names::EXEC_STAGES_MAP,
                source,
            })?;
        }
        for hook in HOOKS {
            load_raw_tracepoint(&mut ebpf, hook.program, hook.attach)?
                .attach(hook.attach)
                .map_err(|source| LoadError::Program {
                    program: hook.program,
                    hook: hook.attach,
                    source,
                })?;
        }
        // Filters before any syscall hook is attached.
        filter::install(&mut ebpf, &filter)?;
        watched.install(&mut ebpf)?;
        let enabled: Vec<EventKind> = EventKind::ALL
            .into_iter()
            .filter(|k| !config.disable.iter().any(|d| d == k.name()))
            .collect();
        let (mut syscalls, fentry_hooks, native_programs) =
            syscalls::attach(&mut ebpf, &enabled, &resolved, &btf)?;
        match &fentry_hooks.xattr {
            Some(Ok(())) => tracing::info!(
                "xattr changes name the name and value as the kernel copied them (fentry)"
            ),
            Some(Err(why)) => tracing::info!(
                "xattr changes name the name and value read from the caller's memory at entry \
                 (a thread rewriting them under the call goes unseen): {why}"
            ),
            None => {}
        }
        if let Some(hooks) = &fentry_hooks.file_path {
            log_file_path_hooks(hooks);
        }
        if let Some(Err(why)) = &fentry_hooks.setattr {
            tracing::info!(
                "chmod/chown events come without the file's attributes from before the call: {why}"
            );
        }
        match &fentry_hooks.watch_inode {
            Some(Ok(())) => tracing::info!(
                "truncate/unlink/rename/link/symlink of watched files are also decided by the \
                 inode the kernel resolved (fentry)"
            ),
            Some(Err(why)) => tracing::info!(
                "truncate/unlink/rename/link/symlink of watched files are decided by their path \
                 argument only (a symlinked or bind-mounted path to a watched file goes unseen): \
                 {why}"
            ),
            None => {}
        }
        match &fentry_hooks.socket_address {
            Some(Ok(())) => tracing::info!(
                "connect and bind events name the address as the kernel copied it (fentry)"
            ),
            Some(Err(why)) => tracing::info!(
                "connect and bind events name the address read from the caller's memory at \
                 entry, and a connected socket's peer (a thread rewriting a failed connect's \
                 address under the call goes unseen): {why}"
            ),
            None => {}
        }
        match &fentry_hooks.module_names {
            Some(Ok(())) => tracing::info!(
                "module loads and unloads name the module as the kernel has it \
                 (raw_tracepoint/module_load, raw_tracepoint/module_free)"
            ),
            Some(Err(why)) => tracing::info!(
                "module loads name no module (only finit_module's file), and unloads the name \
                 read from the caller's memory at entry: {why}"
            ),
            None => {}
        }
        let mut io_uring_stages = None;
        match io_uring::attach(&mut ebpf, &enabled, &resolved) {
            Some(Ok(io_uring::Attached {
                submit,
                complete,
                stages,
            })) => {
                match (stages, complete) {
                    // Without the stage, no request is remembered for its
                    // completion.
                    (Err(why), _) => tracing::warn!(
                        "io_uring requests are reported without the directories their relative \
                         paths start from, and without their results: their stage did not \
                         load: {why}"
                    ),
                    (Ok(stages), complete) => {
                        io_uring_stages = Some(stages);
                        match complete {
                            Ok(()) => tracing::info!(
                                "io_uring requests of file and network operations are reported, \
                                 and their results (raw_tracepoint/{submit}, \
                                 raw_tracepoint/{})",
                                sensor_common::names::TP_IO_URING_COMPLETE
                            ),
                            Err(why) => tracing::info!(
                                "io_uring requests of file and network operations are reported \
                                 (raw_tracepoint/{submit}), without their results: {why}"
                            ),
                        }
                    }
                }
            }
            Some(Err(why)) => tracing::warn!(
                "io_uring requests are not reported: an intruder's io_uring openat or connect \
                 goes unseen: {why}"
            ),
            None => {}
        }
        match proc_mem::attach(&mut ebpf, &enabled, &resolved, &btf) {
            Some(Ok(proc_mem::Status::Fexit)) => {
                tracing::info!("opens of /proc/PID/mem are reported (fexit/mem_open)")
            }
            Some(Ok(proc_mem::Status::OpenExit(why))) => tracing::info!(
                "opens of /proc/PID/mem are reported from the open syscalls' exit, successful \
                 opens for writing only (fexit: {why})"
            ),
            Some(Err(why)) => tracing::warn!(
                "opens of /proc/PID/mem are not reported: memory injection through them goes \
                 unseen: {why}"
            ),
            None => {}
        }
        match udp_flows::attach(&mut ebpf, &enabled) {
            Some(Ok(udp_flows::Attached { at, whole: true })) => tracing::info!(
                "{} (sent to an address by a socket not connected to it, or received with the \
                 sender's address; {}, at {at})",
                names::UDP_FLOWS_ON,
                udp_flows::HOOK
            ),
            Some(Ok(udp_flows::Attached { at, whole: false })) => tracing::warn!(
                "{}, {} {at}: \
                 the sensor runs in a cgroup namespace of its own, and the root of the cgroup v2 \
                 hierarchy is out of its reach (no other process's mount namespace it can look \
                 into has it mounted). \
                 Run it in the host's cgroup namespace (docker or podman run --cgroupns=host) \
                 for every socket's",
                names::UDP_FLOWS_ON,
                names::UDP_FLOWS_SUBTREE_ONLY
            ),
            Some(Err(why)) => tracing::warn!(
                "UDP flows without a connect are not reported: a script's DNS exfiltration, a UDP \
                 beacon or an implant listening on a UDP port goes unseen: {why}"
            ),
            None => {}
        }
        let ia32 = compat::attach(
            &mut ebpf,
            config.ia32_syscalls,
            &enabled,
            &resolved.offsets,
            &btf,
        );
        match &ia32.status {
            Ok(()) => tracing::info!("ia32 syscalls are traced too"),
            Err(why) if ia32.blind => tracing::warn!(
                "ia32 syscalls are not traced: a 32-bit program's syscalls (int 0x80) go \
                 unseen: {why}"
            ),
            Err(why) => tracing::info!("ia32 syscalls are not traced: {why}"),
        }
        if sensor_common::SYSCALL_FAMILIES
            .iter()
            .any(|k| enabled.contains(k))
        {
            // A kernel without syscall tracepoints (CONFIG_FTRACE_SYSCALLS)
            // still gets process events: said loudly, and per syscall in
            // `syscalls_not_traced`.
            if let Err(why) = syscalls::attach_dispatchers(&mut ebpf, &btf) {
                tracing::warn!("no syscall events: {why}");
                for t in &mut syscalls {
                    t.status = Err(why.clone());
                }
            }
        }
        let ring = take_map(&mut ebpf, names::EVENTS_MAP)?;
        let losses = take_map(&mut ebpf, names::LOSSES_MAP)?;
        let errors = take_map(&mut ebpf, names::ERRORS_MAP)?;
        let skipped = skipped::Skipped::new(&ebpf);
        let symlinks = symlinks_sync::SymlinksSync::new(&mut ebpf)?;
        let source = EbpfSource {
            ebpf,
            filter,
            _stages: stages,
            _io_uring_stages: io_uring_stages,
            _native_programs: native_programs,
            losses,
            errors,
            last_losses: vec![0; EventKind::ALL.len()],
            last_errors: vec![0; ProbeError::ALL.len()],
            skipped,
            missing_fields: resolved.missing,
            syscalls,
            fentry_hooks,
            ia32,
            symlinks,
        };
        Ok((source, ring))
    }

    /// Looks the watched paths up again (see [`watch::Watched::refreshed`]:
    /// found again where a source changed, else new inodes where a file
    /// was replaced, created or removed since `current` was made) and
    /// brings the kernel's maps up to date; the new set, if anything
    /// changed. Called on each counters tick: a stat call per path and
    /// source.
    pub fn refresh_watched(
        &mut self,
        current: &watch::Watched,
    ) -> Result<Option<watch::Watched>, LoadError> {
        let Some(new) = current.refreshed() else {
            return Ok(None);
        };
        new.update(current, &mut self.ebpf)?;
        Ok(Some(new))
    }

    /// Brings the kernel's maps from `old` to `new`, the same paths with
    /// other symlinks through magic links (see [`watch::Watched::update`]).
    pub fn update_watched(
        &mut self,
        old: &watch::Watched,
        new: &watch::Watched,
    ) -> Result<(), LoadError> {
        new.update(old, &mut self.ebpf)
    }

    /// A symlink record handled, its links (if any) in the kernel's maps
    /// already: the kernel stops sending every path call once all are.
    pub fn symlink_handled(&mut self) {
        if let Err(e) = self.symlinks.handled_one() {
            tracing::warn!("cannot tell the kernel a symlink record was handled: {e}");
        }
    }

    /// See [`symlinks_sync::SymlinksSync::catch_up`]; called on each
    /// counters tick.
    pub fn catch_up_symlinks(&mut self) {
        if let Err(e) = self.symlinks.catch_up() {
            tracing::warn!("cannot catch up with the kernel's symlink records: {e}");
        }
    }

    /// The ignored executables whose inode changed (see
    /// [`filter::Resolved::refresh_executables`]); called on each counters
    /// tick.
    pub fn refresh_ignored_executables(&mut self) -> Result<Vec<std::path::PathBuf>, LoadError> {
        self.filter.refresh_executables(&mut self.ebpf)
    }

    /// Events dropped in the kernel (ring buffer full) since the last call,
    /// per kind, only where non-zero.
    pub fn new_losses(&mut self) -> Result<Vec<(EventKind, u64)>, LoadError> {
        let slots = EventKind::ALL.map(|k| k as u32);
        let deltas = PerCpuCounters {
            map: &self.losses,
            name: names::LOSSES_MAP,
        }
        .deltas(&slots, &mut self.last_losses)?;
        Ok(EventKind::ALL
            .into_iter()
            .zip(deltas)
            .filter(|(_, d)| *d > 0)
            .collect())
    }

    /// Program runs the kernel skipped since the last call (the program
    /// was already running on that CPU), per program, where non-zero.
    pub fn new_skipped(&mut self) -> Result<Vec<(&'static str, u64)>, skipped::SkippedError> {
        self.skipped.deltas()
    }

    /// In-kernel read failures since the last call, per kind, where non-zero.
    pub fn new_errors(&mut self) -> Result<Vec<(ProbeError, u64)>, LoadError> {
        let slots = ProbeError::ALL.map(|k| k as u32);
        let deltas = PerCpuCounters {
            map: &self.errors,
            name: names::ERRORS_MAP,
        }
        .deltas(&slots, &mut self.last_errors)?;
        Ok(ProbeError::ALL
            .into_iter()
            .zip(deltas)
            .filter(|(_, d)| *d > 0)
            .collect())
    }
}

/// A per-CPU `u64` counter map read as totals over all CPUs.
struct PerCpuCounters<'a> {
    map: &'a PerCpuArray<MapData, u64>,
    name: &'static str,
}

impl PerCpuCounters<'_> {
    /// The increase of each slot since `last`, which is updated.
    fn deltas(&self, slots: &[u32], last: &mut [u64]) -> Result<Vec<u64>, LoadError> {
        slots
            .iter()
            .zip(last.iter_mut())
            .map(|(slot, last)| {
                let values = self.map.get(slot, 0).map_err(|source| LoadError::Map {
                    name: self.name,
                    source,
                })?;
                let total = values.iter().fold(0u64, |a, v| a.wrapping_add(*v));
                let delta = total.wrapping_sub(*last);
                *last = total;
                Ok(delta)
            })
            .collect()
    }
}

/// Loads (verifies) the raw tracepoint program `name`; `hook` names where
/// it goes, for errors.
pub(crate) fn load_raw_tracepoint<'a>(
    ebpf: &'a mut Ebpf,
    name: &'static str,
    hook: &'static str,
) -> Result<&'a mut RawTracePoint, LoadError> {
    let program: &mut RawTracePoint = program_as(ebpf, name, hook)?;
    // Verified already by `verify_first` unless it failed there.
    if program.fd().is_err() {
        program.load().map_err(program_error(name, hook))?;
    }
    Ok(program)
}

/// Loads (verifies) the BTF tracepoint program `name` for `tracepoint`
/// (the kernel checks its typed arguments against that tracepoint's).
pub(crate) fn load_btf_tracepoint<'a>(
    ebpf: &'a mut Ebpf,
    name: &'static str,
    tracepoint: &'static str,
    btf: &aya::Btf,
) -> Result<&'a mut BtfTracePoint, LoadError> {
    let program: &mut BtfTracePoint = program_as(ebpf, name, tracepoint)?;
    // Verified already by `verify_first` unless it failed there.
    if program.fd().is_err() {
        program
            .load(tracepoint, btf)
            .map_err(program_error(name, tracepoint))?;
    }
    Ok(program)
}

/// The object's program `name`, as the program type `P` it must be.
fn program_as<'a, P>(
    ebpf: &'a mut Ebpf,
    name: &'static str,
    hook: &'static str,
) -> Result<&'a mut P, LoadError>
where
    &'a mut P: TryFrom<&'a mut aya::programs::Program, Error = aya::programs::ProgramError>,
{
    ebpf.program_mut(name)
        .ok_or(LoadError::Missing {
            what: "program",
            name,
        })?
        .try_into()
        .map_err(program_error(name, hook))
}

fn program_error(
    program: &'static str,
    hook: &'static str,
) -> impl FnOnce(aya::programs::ProgramError) -> LoadError {
    move |source| LoadError::Program {
        program,
        hook,
        source,
    }
}

/// Verifies every raw and BTF tracepoint program of the object before the
/// first one is attached. Verification is what takes time (seconds for
/// all of them); loading each just before attaching it, as the steps
/// after this do,
/// left events of the first hooks piling up in the ring buffer unread
/// until the last was verified: at 100,000 events/s, 150,000 lost at each
/// start. Now the attaches follow each other within milliseconds. A
/// program refused here is loaded again where it is attached, which
/// reports the error as it always did (or, for optional hooks, sets them
/// aside).
fn verify_first(ebpf: &mut Ebpf, btf: Option<&aya::Btf>) {
    for (name, program) in ebpf.programs_mut() {
        let loaded = match program {
            aya::programs::Program::RawTracePoint(p) if p.fd().is_err() => p.load(),
            aya::programs::Program::BtfTracePoint(p) if p.fd().is_err() => match btf {
                Some(btf) => p.load(syscalls::btf_tracepoint_of(name), btf),
                None => continue,
            },
            // fentry needs its target at load; it is loaded where attached.
            _ => continue,
        };
        if let Err(e) = loaded {
            if !report_if_too_complex(name, &e) {
                tracing::debug!(program = name, "not verified ahead: {e}");
            }
        }
    }
    report_verifier_headroom(ebpf.programs().filter_map(|(name, program)| {
        let walked = program.info().ok()?.verified_instruction_count()?;
        Some((name, walked))
    }));
}

/// The most instructions the verifier walks in one program
/// (`BPF_COMPLEXITY_LIMIT_INSNS`) before it refuses it with E2BIG.
const VERIFIER_LIMIT: u32 = 1_000_000;

/// Beyond this share of [`VERIFIER_LIMIT`], in percent, a program loaded
/// here is reported as nearly too complex.
const VERIFIER_HEADROOM_PERCENT: u32 = 90;

/// Is a program whose verification walked `walked` instructions close
/// to [`VERIFIER_LIMIT`]?
fn nearly_too_complex(walked: u32) -> bool {
    u64::from(walked) * 100 > u64::from(VERIFIER_LIMIT) * u64::from(VERIFIER_HEADROOM_PERCENT)
}

/// Logs the most instructions the verifier walked in one of the loaded
/// `programs` (name, `verified_insns`: Linux 5.16+; an older kernel does
/// not tell), and as an error each program nearly [`TOO_COMPLEX`]. The
/// count of paths the verifier walks changes from one kernel to the next:
/// watch_compat_enter took 998,536 of the million on 6.18 before 35d9620,
/// loaded, and a small change then took it over. Said here, a program
/// close to the limit fails the tests on the kernel that shows it, before
/// it is refused on some other.
fn report_verifier_headroom<'a>(programs: impl Iterator<Item = (&'a str, u32)>) {
    let mut most: Option<(&str, u32)> = None;
    for (name, walked) in programs {
        tracing::debug!("program {name}: its verification walked {walked} instructions");
        if nearly_too_complex(walked) {
            tracing::error!(
                "program {name} is nearly {TOO_COMPLEX}: its verification walked {walked} of \
                 the {VERIFIER_LIMIT} instructions allowed; a sensor bug (a kernel whose \
                 verifier walks a few more paths refuses it)"
            );
        }
        if most.is_none_or(|(_, m)| walked > m) {
            most = Some((name, walked));
        }
    }
    if let Some((name, walked)) = most {
        tracing::info!(
            "the verifier walked at most {walked} of the {VERIFIER_LIMIT} instructions it \
             allows in one program ({name})"
        );
    }
}

/// What the sensor logs for a program the verifier refused as too
/// complex, or nearly did: the harnesses fail on it.
pub use sensor_common::verifier_log::TOO_COMPLEX;

/// Logs `error` as a bug of ours if the verifier refused `program` for
/// its size or complexity (E2BIG: over the million instructions it walks,
/// or too long a sequence of jumps); says whether it did.
///
/// A hook this kernel lacks is a fallback the sensor plans for, logged
/// where it is taken, at info or warning level. This refusal is not: the
/// count of paths the verifier walks changes from one kernel to the next,
/// so a program the guests' kernels load can be refused here (95df7cf:
/// the ia32 hooks on 6.18), and its fallback hid that under an info line.
/// Whichever fallback follows, this line says what went wrong.
pub(crate) fn report_if_too_complex(program: &str, error: &aya::programs::ProgramError) -> bool {
    let aya::programs::ProgramError::LoadError { io_error, .. } = error else {
        return false;
    };
    if !refused_for_complexity(io_error) {
        return false;
    }
    tracing::error!(
        "program {program} is {TOO_COMPLEX} (BPF_PROG_LOAD returned E2BIG): a sensor bug; it \
         runs on with the fallback logged next, or without the hook"
    );
    true
}

/// BPF_PROG_LOAD's errno for a program over the verifier's limits (and
/// for nothing else a loadable program of ours can hit).
fn refused_for_complexity(load: &std::io::Error) -> bool {
    load.raw_os_error() == Some(libc::E2BIG)
}

/// The object's map `name`, borrowed as the map type `T` (the programs
/// loaded later refer to it).
pub(crate) fn map_mut<'a, T>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<T, LoadError>
where
    T: TryFrom<&'a mut aya::maps::Map, Error = aya::maps::MapError>,
{
    let map = ebpf
        .map_mut(name)
        .ok_or(LoadError::Missing { what: "map", name })?;
    T::try_from(map).map_err(|source| LoadError::Map { name, source })
}

/// Brings the hash map `name` from the entries `before` to `after`: the
/// keys gone first (an inode number in a key is reused by the next file
/// made on its filesystem), then the others written over those kept (never
/// absent in between).
pub(crate) fn replace_hash_entries<K: aya::Pod + PartialEq, V: aya::Pod>(
    ebpf: &mut Ebpf,
    name: &'static str,
    before: &[(K, V)],
    after: &[(K, V)],
) -> Result<(), LoadError> {
    let mut hash: aya::maps::HashMap<&mut MapData, K, V> = map_mut(ebpf, name)?;
    for (k, _) in before
        .iter()
        .filter(|(k, _)| !after.iter().any(|(a, _)| a == k))
    {
        // Absent already is fine: the goal is its absence.
        let _ = hash.remove(k);
    }
    for (k, v) in after {
        hash.insert(k, v, 0)
            .map_err(|source| LoadError::Map { name, source })?;
    }
    Ok(())
}

/// A set's entries, for a hash map whose value is unused: each key to 1.
pub(crate) fn present<K: Copy>(keys: &[K]) -> Vec<(K, u8)> {
    keys.iter().map(|k| (*k, 1)).collect()
}

pub(crate) fn take_map<T>(ebpf: &mut Ebpf, name: &'static str) -> Result<T, LoadError>
where
    T: TryFrom<aya::maps::Map, Error = aya::maps::MapError>,
{
    let map = ebpf
        .take_map(name)
        .ok_or(LoadError::Missing { what: "map", name })?;
    T::try_from(map).map_err(|source| LoadError::Map { name, source })
}

/// What chmod and chown events name, by which path hooks loaded. The line
/// for a resolved call is one `cargo xtask kernels` looks for.
fn log_file_path_hooks(hooks: &syscalls::FilePathHooks) {
    const RESOLVED: &str = "name the file the kernel resolved (fentry)";
    const ARGUMENT: &str = "name the path argument read from the caller's memory at entry \
                            (through a symlink or a thread rewriting it, another file can \
                            change), and an ignored path prefix is matched against it";
    match (&hooks.chmod, &hooks.chown) {
        (Ok(()), Ok(())) => tracing::info!("chmod events {RESOLVED}, and so do chown events"),
        (Ok(()), Err(why)) => {
            tracing::info!("chmod events {RESOLVED}; chown events {ARGUMENT}: {why}")
        }
        (Err(why), Ok(())) => {
            tracing::info!("chown events {RESOLVED}; chmod events {ARGUMENT}: {why}")
        }
        (Err(why), Err(_)) => tracing::info!("chmod and chown events {ARGUMENT}: {why}"),
    }
}

/// Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK; lift it so a
/// 16 MiB ring buffer loads there too. Later kernels ignore it.
fn raise_memlock_limit() {
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit reads a valid rlimit struct; failure is harmless
    // (on new kernels the limit does not apply).
    let ret = unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) };
    if ret != 0 {
        tracing::debug!(
            "could not raise RLIMIT_MEMLOCK: {}",
            std::io::Error::last_os_error()
        );
    }
}

#[cfg(test)]
mod tests {
    use std::io::Error;

    #[test]
    fn only_a_refusal_for_complexity_is_reported_as_a_bug() {
        assert!(super::refused_for_complexity(&Error::from_raw_os_error(
            libc::E2BIG
        )));
        // The refusals the sensor plans fallbacks for: fentry under
        // lockdown, a hook's arguments an older verifier does not allow.
        for errno in [libc::EPERM, libc::EACCES, libc::EINVAL, libc::EOPNOTSUPP] {
            assert!(!super::refused_for_complexity(&Error::from_raw_os_error(
                errno
            )));
        }
        assert!(!super::report_if_too_complex(
            "p",
            &aya::programs::ProgramError::AlreadyLoaded
        ));
    }

    #[test]
    fn a_program_within_a_tenth_of_the_verifier_s_limit_is_nearly_too_complex() {
        assert!(!super::nearly_too_complex(577_122), "watch_enter on 6.18");
        assert!(!super::nearly_too_complex(900_000));
        assert!(super::nearly_too_complex(900_001));
        assert!(super::nearly_too_complex(998_536), "before 35d9620");
        assert!(super::nearly_too_complex(u32::MAX), "no overflow");
    }
}
