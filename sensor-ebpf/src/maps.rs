//! Maps and globals shared by every program. Names are the map's Rust
//! static names and must equal sensor_common::names (checked by the daemon
//! when it takes each map).

use aya_ebpf::macros::map;
use aya_ebpf::maps::{Array, PerCpuArray, RingBuf};
use sensor_common::{
    ERROR_SLOTS, KernelOffsets, LOSS_SLOTS, MAX_EVENT_SIZE, ProbeConfig, ProbeError,
};

/// Every event goes to userspace through this one ring buffer (ordered
/// across CPUs, unlike perf buffers). The daemon sets its size at load.
#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(16 << 20, 0);

/// Events dropped because EVENTS was full, per CPU, by event kind.
#[map]
pub static LOSSES: PerCpuArray<u64> = PerCpuArray::with_max_entries(LOSS_SLOTS, 0);

/// In-kernel read failures, per CPU, by [`ProbeError`].
#[map]
pub static ERRORS: PerCpuArray<u64> = PerCpuArray::with_max_entries(ERROR_SLOTS, 0);

/// Where an exec record (up to ~42 KiB) is assembled before one
/// bpf_ringbuf_output of its real length. A plain array with one slot per
/// CPU, indexed by the CPU id, because per-CPU map values are limited to
/// 32 KiB; the daemon sets max_entries to the number of possible CPUs.
#[map]
pub static SCRATCH: Array<Scratch> = Array::with_max_entries(1, 0);

/// Like SCRATCH, for syscall records (file events with two paths). Its own
/// map, so that a syscall exit can never overwrite an exec record that is
/// half-assembled on the same CPU.
#[map]
pub static SYSCALL_SCRATCH: Array<Scratch> = Array::with_max_entries(1, 0);

/// This CPU's slot of a scratch map, 8-aligned; None (counted) if missing.
#[inline(always)]
pub fn scratch(map: &Array<Scratch>) -> Option<*mut u8> {
    // SAFETY: the helper has no preconditions.
    let cpu = unsafe { aya_ebpf::helpers::bpf_get_smp_processor_id() };
    match map.get_ptr_mut(cpu) {
        // SAFETY: a valid map value, used by this CPU only while one program
        // runs (programs do not sleep or migrate).
        Some(s) => Some(unsafe { (*s).buf.as_mut_ptr() }),
        None => {
            count_error(ProbeError::Scratch);
            None
        }
    }
}

/// Data offsets inside the scratch buffer are masked with this, so the
/// verifier can prove every write stays inside it.
pub const DATA_MASK: usize = 0xFFFF;
pub const SCRATCH_SIZE: usize =
    core::mem::size_of::<sensor_common::ExecEvent>() + DATA_MASK + 1 + 512;
const _: () = assert!(MAX_EVENT_SIZE <= SCRATCH_SIZE);

/// 8-aligned, so the ExecEvent at its start is a well-aligned reference.
#[repr(C, align(8))]
pub struct Scratch {
    pub buf: [u8; SCRATCH_SIZE],
}

/// Filled in by the daemon from the kernel's BTF before load.
#[unsafe(no_mangle)]
pub static OFFSETS: KernelOffsets = KernelOffsets::MISSING;

#[unsafe(no_mangle)]
pub static CONFIG: ProbeConfig = ProbeConfig {
    sensor_tgid: 0,
    filters: 0,
    features: 0,
};

/// Reads one OFFSETS field. Volatile so the compiler cannot fold the
/// placeholder values in: the real ones only exist at load time.
macro_rules! off {
    ($field:ident) => {
        // SAFETY: OFFSETS is a plain static; volatile read of one field.
        unsafe { core::ptr::read_volatile(&$crate::maps::OFFSETS.$field) }
    };
}
pub(crate) use off;

pub fn sensor_tgid() -> u32 {
    // SAFETY: as for OFFSETS.
    unsafe { core::ptr::read_volatile(&CONFIG.sensor_tgid) }
}

/// Whether the daemon set [`sensor_common::probe_features`] bit `bit`.
#[inline(always)]
fn feature(bit: u32) -> bool {
    // SAFETY: as for OFFSETS.
    let features = unsafe { core::ptr::read_volatile(&CONFIG.features) };
    features & bit != 0
}

/// Whether the current task is read with plain loads
/// ([`sensor_common::probe_features::DIRECT_READS`]).
#[inline(always)]
pub fn direct_reads() -> bool {
    feature(sensor_common::probe_features::DIRECT_READS)
}

/// Whether namespaces that a fork made and no clone record announced are
/// reported from the fork ([`sensor_common::probe_features::FORK_NAMESPACES`]).
#[inline(always)]
pub fn fork_namespaces_reported() -> bool {
    feature(sensor_common::probe_features::FORK_NAMESPACES)
}

/// Whether directories named `.ssh` are watched by name
/// ([`sensor_common::probe_features::SSH_DIRS`]).
#[inline(always)]
pub fn ssh_dirs_watched() -> bool {
    feature(sensor_common::probe_features::SSH_DIRS)
}

/// Whether directories named `user` in one named `systemd` are watched by
/// name ([`sensor_common::probe_features::USER_UNIT_DIRS`]).
#[inline(always)]
pub fn user_unit_dirs_watched() -> bool {
    feature(sensor_common::probe_features::USER_UNIT_DIRS)
}

/// Whether files named as a shell's startup file are watched by name
/// ([`sensor_common::probe_features::SHELL_RC_FILES`]).
#[inline(always)]
pub fn shell_rc_watched() -> bool {
    feature(sensor_common::probe_features::SHELL_RC_FILES)
}

/// [`sensor_common::filter_flags`] in use.
pub fn filters() -> u32 {
    // SAFETY: as for OFFSETS.
    unsafe { core::ptr::read_volatile(&CONFIG.filters) }
}

/// Whether the one-element switch map `map` is on: the daemon sets it
/// (`syscalls::set_switch`) once the optional hooks it stands for are
/// attached, so that a program relies on them only then.
#[inline(always)]
pub fn switch_on(map: &Array<u32>) -> bool {
    switch_value(map) != 0
}

/// The value of the one-element switch map `map` (0 until the daemon sets
/// it): for a switch that stands for several hooks, one bit each.
#[inline(always)]
pub fn switch_value(map: &Array<u32>) -> u32 {
    map.get(0).map_or(0, |v| *v)
}

pub fn count_error(e: ProbeError) {
    bump(&ERRORS, e as u32);
}

pub fn count_loss(kind: sensor_common::EventKind) {
    bump(&LOSSES, kind as u32);
}

fn bump(map: &PerCpuArray<u64>, index: u32) {
    if let Some(p) = map.get_ptr_mut(index) {
        // SAFETY: a valid per-CPU slot; only this CPU writes it.
        unsafe { *p += 1 };
    }
}

/// Never read. Makes every wire struct part of the object's BTF, so the
/// daemon's wire_check test can compare the kernel side's layout with its
/// own (the idea of tetragon's alignchecker).
#[repr(C)]
pub struct WireTypes {
    pub exec: sensor_common::ExecEvent,
    pub fork: sensor_common::ForkEvent,
    pub exit: sensor_common::ExitEvent,
    pub file: sensor_common::FileEvent,
    pub cred: sensor_common::CredEvent,
    pub net: sensor_common::NetEvent,
    pub sys: sensor_common::SysEvent,
    pub watch: sensor_common::WatchEvent,
    pub exe_key: sensor_common::ExeKey,
    pub path_prefix: sensor_common::PathPrefix,
}

#[unsafe(no_mangle)]
#[used]
pub static WIRE_TYPES: core::mem::MaybeUninit<WireTypes> = core::mem::MaybeUninit::zeroed();
