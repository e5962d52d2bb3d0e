//! The ia32 syscall hooks (see `sensor_common::compat` for why they
//! exist): the families' compat programs go into `COMPAT_PROGS` (entry)
//! and `COMPAT_EXIT_PROGS` (exit) and the
//! ia32 numbers of their syscalls into `COMPAT_OPS`, where the syscall
//! dispatchers (`syscalls::attach_dispatchers`) find them.
//!
//! Optional: without x86_64's ia32 emulation there is nothing to hook, and
//! a failure here is reported (the native syscalls are traced either way).

use aya::Ebpf;
use aya::maps::{Array, MapData, ProgramArray};
use sensor_common::compat;
use sensor_common::{EventKind, KernelOffsets, OFFSET_MISSING, SYSCALL_FAMILIES, names};

use super::syscalls::{self, HookStatus};
use super::{load_btf_tracepoint, take_map};

/// What `sensor probe` and the start log say about the ia32 hooks.
pub const WHY: &str = "ia32 syscalls (int 0x80, 32-bit programs) have their own numbers and \
    argument registers; the syscall dispatchers tell them by the task's TS_COMPAT status and hand \
    the traced ones to the families' ia32 programs by tail call";

/// The attached hooks; the program arrays must stay open, or the kernel
/// empties them.
pub struct Ia32Hooks {
    pub status: HookStatus,
    /// `status` failed where ia32 syscalls can happen (x86_64 with the
    /// emulation on, and wanted): a 32-bit program's syscalls go unseen,
    /// which the start log says as a warning. A verifier that refused a
    /// program lands here too.
    pub blind: bool,
    /// Entry and exit programs.
    _programs: Option<[ProgramArray<MapData>; 2]>,
}

/// Whether this kernel and architecture can have ia32 syscalls to hook.
pub fn supported(offsets: &KernelOffsets) -> HookStatus {
    if !cfg!(target_arch = "x86_64") {
        return Err("not x86_64: no ia32 syscalls".into());
    }
    if offsets.task_thread_info == OFFSET_MISSING || offsets.thread_info_status == OFFSET_MISSING {
        return Err("task_struct.thread_info.status is not in this kernel's BTF".into());
    }
    if !std::path::Path::new("/sys/kernel/tracing/events/raw_syscalls/sys_enter").exists() {
        return Err("no raw_syscalls tracepoints (CONFIG_FTRACE_SYSCALLS)".into());
    }
    Ok(())
}

/// Whether the kernel command line turned ia32 emulation off
/// (`ia32_emulation=0`, Linux 6.7+): then no ia32 syscall can happen.
fn emulation_off_at_boot() -> bool {
    std::fs::read_to_string("/proc/cmdline").is_ok_and(|c| emulation_off(&c))
}

fn emulation_off(cmdline: &str) -> bool {
    cmdline
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("ia32_emulation="))
        .any(|v| matches!(v, "0" | "n" | "N" | "off" | "false"))
}

/// Attaches the ia32 hooks for the `enabled` syscall families, unless the
/// config (`wanted`) or the kernel rules them out.
pub fn attach(
    ebpf: &mut Ebpf,
    wanted: bool,
    enabled: &[EventKind],
    offsets: &KernelOffsets,
    btf: &Result<aya::Btf, String>,
) -> Ia32Hooks {
    if !wanted {
        return Ia32Hooks {
            status: Err("off in the config (ebpf.ia32_syscalls)".into()),
            blind: false,
            _programs: None,
        };
    }
    if emulation_off_at_boot() {
        return Ia32Hooks {
            status: Err(
                "ia32 emulation is off (ia32_emulation= on the kernel command line)".into(),
            ),
            blind: false,
            _programs: None,
        };
    }
    let families: Vec<EventKind> = SYSCALL_FAMILIES
        .into_iter()
        .filter(|k| enabled.contains(k))
        .collect();
    if families.is_empty() {
        return Ia32Hooks {
            status: Err("no syscall family enabled".into()),
            blind: false,
            _programs: None,
        };
    }
    let installed = supported(offsets)
        .and_then(|()| btf.as_ref().map_err(Clone::clone))
        .and_then(|btf| install(ebpf, &families, btf));
    match installed {
        Ok(programs) => Ia32Hooks {
            status: Ok(()),
            blind: false,
            _programs: Some(programs),
        },
        Err(why) => Ia32Hooks {
            status: Err(why),
            blind: cfg!(target_arch = "x86_64"),
            _programs: None,
        },
    }
}

fn install(
    ebpf: &mut Ebpf,
    families: &[EventKind],
    btf: &aya::Btf,
) -> Result<[ProgramArray<MapData>; 2], String> {
    let mut progs: ProgramArray<MapData> =
        take_map(ebpf, names::COMPAT_PROGS_MAP).map_err(|e| e.to_string())?;
    let mut exit_progs: ProgramArray<MapData> =
        take_map(ebpf, names::COMPAT_EXIT_PROGS_MAP).map_err(|e| e.to_string())?;
    for &kind in families {
        let programs = syscalls::programs(kind);
        let (enter, exit) = (programs.ia32_enter, programs.ia32_exit);
        let fd = load_btf_tracepoint(ebpf, enter, names::TP_SYS_ENTER, btf)
            .map_err(|e| e.to_string())?
            .fd();
        syscalls::set_program(&mut progs, names::COMPAT_PROGS_MAP, kind, false, enter, fd)
            .map_err(|e| e.to_string())?;
        let fd = load_btf_tracepoint(ebpf, exit, names::TP_SYS_EXIT, btf)
            .map_err(|e| e.to_string())?
            .fd();
        syscalls::set_program(
            &mut exit_progs,
            names::COMPAT_EXIT_PROGS_MAP,
            kind,
            true,
            exit,
            fd,
        )
        .map_err(|e| e.to_string())?;
    }
    let mut ops: Array<MapData, u32> =
        take_map(ebpf, names::COMPAT_OPS_MAP).map_err(|e| e.to_string())?;
    for &(nr, value) in compat::TABLE {
        if compat::family(value).is_some_and(|k| families.contains(&k)) {
            ops.set(nr, value, 0)
                .map_err(|e| format!("{}: {e}", names::COMPAT_OPS_MAP))?;
        }
    }
    Ok([progs, exit_progs])
}

#[cfg(test)]
mod tests {
    use super::*;
    use sensor_common::SyscallOp;
    use sensor_common::compat::{OP_MASK, SOCKETCALL};

    /// The written-out table against the kernel's own numbers.
    #[test]
    fn the_ia32_table_matches_the_kernel_headers() {
        use crate::source::ebpf::syscalls::tests::{header_number, unistd_header};
        let header = unistd_header("unistd_32.h");
        let number = |name: &str| header_number(&header, name);
        let mut checked = 0;
        for &(nr, value) in compat::TABLE {
            let base = if value & OP_MASK == SOCKETCALL {
                "socketcall".to_owned()
            } else {
                let op = SyscallOp::from_u32(value & OP_MASK).expect("a known op");
                op.name().to_owned()
            };
            // The ia32 table names the 32-bit-id and 64-bit-length variants
            // apart; any of these names at this number is the same call.
            let mut names = vec![base.clone(), format!("{base}32"), format!("{base}64")];
            if value & compat::NO_FLAGS != 0 {
                names = vec!["umount".to_owned()];
            }
            let found: Vec<u32> = names.iter().filter_map(|n| number(n)).collect();
            if found.is_empty() {
                continue; // e.g. fchmodat2, newer than the installed headers
            }
            assert!(
                found.contains(&nr),
                "ia32 {base}: table says {nr}, headers say {found:?}"
            );
            checked += 1;
        }
        assert!(checked > 50, "only {checked} entries found in the headers");
    }

    #[test]
    fn ia32_emulation_off_on_the_command_line_is_recognised() {
        assert!(emulation_off(
            "BOOT_IMAGE=/vmlinuz root=/dev/vda1 ia32_emulation=0 quiet"
        ));
        assert!(emulation_off("ia32_emulation=false"));
        assert!(!emulation_off("BOOT_IMAGE=/vmlinuz ia32_emulation=1"));
        assert!(!emulation_off("root=/dev/vda1 quiet"));
    }

    #[test]
    fn every_family_has_a_program_per_slot() {
        let mut slots: Vec<u32> = Vec::new();
        for kind in SYSCALL_FAMILIES {
            slots.extend([compat::slot(kind, false), compat::slot(kind, true)]);
        }
        slots.sort();
        assert_eq!(slots, (0..compat::PROG_SLOTS).collect::<Vec<_>>());
    }
}
