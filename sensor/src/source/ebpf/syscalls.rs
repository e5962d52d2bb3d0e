//! Setting up the syscall families: their programs go into the
//! dispatchers' program array, the number of each traced syscall into
//! `SYSCALL_OPS`, and then the two dispatchers are attached to
//! `raw_syscalls:sys_enter`/`sys_exit` (see the eBPF side's
//! `syscall/dispatch.rs`).

use aya::Ebpf;
use aya::maps::{Array, MapData, ProgramArray};
use aya::programs::FEntry;
use sensor_common::{EventKind, SYSCALL_SLOTS, SyscallOp, X32_SLOTS_BASE, compat, names, ops_slot};

use super::{LoadError, take_map};

/// The architecture's number for `op`'s syscall; None where the
/// architecture has no such syscall (arm64 has no chmod, chown or accept,
/// only the `*at` forms and accept4, which are traced instead).
pub fn number(op: SyscallOp) -> Option<libc::c_long> {
    #[cfg(target_arch = "x86_64")]
    let legacy = |n: libc::c_long| Some(n);
    #[cfg(not(target_arch = "x86_64"))]
    let legacy = |_: libc::c_long| None;
    Some(match op {
        SyscallOp::Chmod => return legacy(libc::SYS_chmod),
        SyscallOp::Chown => return legacy(libc::SYS_chown),
        SyscallOp::Lchown => return legacy(libc::SYS_lchown),
        SyscallOp::Open => return legacy(libc::SYS_open),
        SyscallOp::Creat => return legacy(libc::SYS_creat),
        SyscallOp::Truncate => libc::SYS_truncate,
        SyscallOp::Unlink => return legacy(libc::SYS_unlink),
        SyscallOp::Rename => return legacy(libc::SYS_rename),
        SyscallOp::Openat => libc::SYS_openat,
        SyscallOp::Openat2 => libc::SYS_openat2,
        SyscallOp::Ftruncate => libc::SYS_ftruncate,
        SyscallOp::Unlinkat => libc::SYS_unlinkat,
        SyscallOp::Renameat => libc::SYS_renameat,
        SyscallOp::Renameat2 => libc::SYS_renameat2,
        SyscallOp::Link => return legacy(libc::SYS_link),
        SyscallOp::Symlink => return legacy(libc::SYS_symlink),
        SyscallOp::Linkat => libc::SYS_linkat,
        SyscallOp::Symlinkat => libc::SYS_symlinkat,
        SyscallOp::Fchmod => libc::SYS_fchmod,
        SyscallOp::Fchmodat => libc::SYS_fchmodat,
        SyscallOp::Fchmodat2 => libc::SYS_fchmodat2,
        SyscallOp::Fchown => libc::SYS_fchown,
        SyscallOp::Fchownat => libc::SYS_fchownat,
        SyscallOp::Setxattr => libc::SYS_setxattr,
        SyscallOp::Lsetxattr => libc::SYS_lsetxattr,
        SyscallOp::Fsetxattr => libc::SYS_fsetxattr,
        SyscallOp::Removexattr => libc::SYS_removexattr,
        SyscallOp::Lremovexattr => libc::SYS_lremovexattr,
        SyscallOp::Fremovexattr => libc::SYS_fremovexattr,
        SyscallOp::Setuid => libc::SYS_setuid,
        SyscallOp::Setgid => libc::SYS_setgid,
        SyscallOp::Setreuid => libc::SYS_setreuid,
        SyscallOp::Setregid => libc::SYS_setregid,
        SyscallOp::Setresuid => libc::SYS_setresuid,
        SyscallOp::Setresgid => libc::SYS_setresgid,
        SyscallOp::Setfsuid => libc::SYS_setfsuid,
        SyscallOp::Setfsgid => libc::SYS_setfsgid,
        SyscallOp::Capset => libc::SYS_capset,
        SyscallOp::Connect => libc::SYS_connect,
        SyscallOp::Accept => return legacy(libc::SYS_accept),
        SyscallOp::Accept4 => libc::SYS_accept4,
        SyscallOp::Bind => libc::SYS_bind,
        SyscallOp::Listen => libc::SYS_listen,
        SyscallOp::Socket => libc::SYS_socket,
        SyscallOp::Ptrace => libc::SYS_ptrace,
        SyscallOp::InitModule => libc::SYS_init_module,
        SyscallOp::FinitModule => libc::SYS_finit_module,
        SyscallOp::DeleteModule => libc::SYS_delete_module,
        SyscallOp::MemfdCreate => libc::SYS_memfd_create,
        SyscallOp::Mount => libc::SYS_mount,
        SyscallOp::Umount2 => libc::SYS_umount2,
        SyscallOp::Bpf => libc::SYS_bpf,
        SyscallOp::Kill => libc::SYS_kill,
        SyscallOp::Tkill => libc::SYS_tkill,
        SyscallOp::Tgkill => libc::SYS_tgkill,
        SyscallOp::MoveMount => libc::SYS_move_mount,
        SyscallOp::MountSetattr => libc::SYS_mount_setattr,
        SyscallOp::ProcessVmReadv => libc::SYS_process_vm_readv,
        SyscallOp::ProcessVmWritev => libc::SYS_process_vm_writev,
        SyscallOp::PidfdGetfd => libc::SYS_pidfd_getfd,
        SyscallOp::Setns => libc::SYS_setns,
        SyscallOp::KexecLoad => libc::SYS_kexec_load,
        SyscallOp::KexecFileLoad => libc::SYS_kexec_file_load,
        SyscallOp::Unshare => libc::SYS_unshare,
        SyscallOp::Clone => libc::SYS_clone,
        SyscallOp::Clone3 => libc::SYS_clone3,
    })
}

/// What `sensor probe` says about each syscall family's hook.
pub struct Family {
    pub kind: EventKind,
    pub why: &'static str,
    /// The better hook this one stands in for, and what it would add.
    pub preferred: Option<&'static str>,
}

pub const FAMILIES: &[Family] = &[
    Family {
        kind: EventKind::FileAttr,
        why: "the syscall tracepoints exist on every supported kernel and load where fentry/LSM \
              are refused; arguments are copied at entry, the result is read at exit",
        preferred: Some(
            "fentry/security_path_{chmod,chown}, added where fentry loads: the file the kernel \
             resolved (through symlinks, and whatever the caller's memory or fd table held at \
             the entry), its path and its mode and owners before the call, and the \
             ignored-path-prefix filter decided by that path; fentry/security_inode_setattr: the \
             mode and owners before, where the path hooks are refused; \
             fentry/security_inode_{setxattr,removexattr}: the xattr name and value as the kernel \
             copied them, which a thread of the caller cannot rewrite after the entry's read",
        ),
    },
    Family {
        kind: EventKind::FileWrite,
        why: "opens for writing are matched at exit by the inode of the file they opened and of its \
              directories (blind to symlinks and relative paths); truncate/unlink/rename/link/symlink \
              by their path arguments at entry, whose prefixes' hashes are looked up among every \
              watched path's; only watched paths reach userspace",
        preferred: Some(
            "fentry/security_inode_{unlink,rmdir,rename,setattr,link,symlink}, added where fentry \
             loads: truncate/unlink/rename/link/symlink decided by the inode the kernel resolved \
             (through symlinks, bind mounts, /proc/PID/root); lsm/file_open (not built yet): \
             refused opens too",
        ),
    },
    Family {
        kind: EventKind::Cred,
        why: "credentials are read at entry and exit, so the event shows what really changed",
        // Entry and exit already see the committed credentials.
        preferred: None,
    },
    Family {
        kind: EventKind::Net,
        why: "the caller's sockaddr at entry, the socket's ends at exit; raw_tracepoint/inet_sock_set_state \
              reports how non-blocking connects end, and TCP connects made without a connect call \
              (a send with MSG_FASTOPEN)",
        preferred: Some(
            "fentry/security_socket_{connect,bind}, added where fentry loads: the address as the \
             kernel copied it, which a thread of the caller cannot rewrite after the entry's read",
        ),
    },
    Family {
        kind: EventKind::System,
        why: "ptrace attach/seize, process_vm_readv/writev and pidfd_getfd of another process, setns, unshare/clone/clone3 making namespaces, module load/unload, kexec_load/kexec_file_load, memfd_create, mount/umount2/move_mount/mount_setattr and bpf() loads and \
              attaches at their syscalls (uninteresting requests and commands dropped at entry); \
              raw_tracepoint/signal_generate sees every signal aimed at the sensor, however sent, and \
              kill/tkill/tgkill aimed at it report the attempts the kernel refused (no signal made); \
              raw_tracepoint/module_load and module_free name the module a load or unload acted on",
        preferred: Some(
            "lsm/ptrace_access_check, lsm/kernel_read_file, lsm/sb_mount, lsm/bpf (not built yet): \
             the resolved objects",
        ),
    },
];

/// The syscalls of `kind` that this kernel has, and those it lacks
/// (tracefs must be mounted; see `ensure_tracefs`).
pub fn available(kind: EventKind) -> (Vec<&'static str>, Vec<&'static str>) {
    ensure_tracefs();
    let (present, absent): (Vec<SyscallOp>, Vec<SyscallOp>) = SyscallOp::ALL
        .into_iter()
        .filter(|op| op.kind() == kind && number(*op).is_some())
        .partition(|op| in_kernel(*op).is_ok());
    let names = |ops: Vec<SyscallOp>| ops.into_iter().map(SyscallOp::name).collect();
    (names(present), names(absent))
}

/// Whether the running kernel has `op`'s syscall. Its `syscalls:`
/// tracepoint says so (fchmodat2 came in 6.6, mount_setattr in 5.12):
/// an older kernel answers the number with ENOSYS, which is not the
/// syscall. Without tracefs nothing can be told, and the number is traced.
fn in_kernel(op: SyscallOp) -> Result<(), String> {
    let events = std::path::Path::new("/sys/kernel/tracing/events/syscalls");
    let event = format!("sys_enter_{}", op.tracepoint());
    if events.is_dir() && !events.join(&event).exists() {
        return Err(format!(
            "not in this kernel (no syscalls:{event} tracepoint)"
        ));
    }
    Ok(())
}

/// A syscall family's programs, all reached by tail call from the
/// dispatchers: entry and exit, and their ia32 variants.
pub struct Programs {
    pub enter: &'static str,
    pub exit: &'static str,
    pub ia32_enter: &'static str,
    pub ia32_exit: &'static str,
}

/// The programs of each record kind.
pub fn programs(kind: EventKind) -> Programs {
    let (enter, exit, ia32_enter, ia32_exit) = match kind {
        EventKind::FileAttr => (
            names::PROG_FILE_ENTER,
            names::PROG_FILE_EXIT,
            names::PROG_FILE_COMPAT_ENTER,
            names::PROG_FILE_COMPAT_EXIT,
        ),
        EventKind::FileWrite => (
            names::PROG_WATCH_ENTER,
            names::PROG_WATCH_EXIT,
            names::PROG_WATCH_COMPAT_ENTER,
            names::PROG_WATCH_COMPAT_EXIT,
        ),
        EventKind::Net => (
            names::PROG_NET_ENTER,
            names::PROG_NET_EXIT,
            names::PROG_NET_COMPAT_ENTER,
            names::PROG_NET_COMPAT_EXIT,
        ),
        EventKind::System => (
            names::PROG_SYS_ENTER,
            names::PROG_SYS_EXIT,
            names::PROG_SYS_COMPAT_ENTER,
            names::PROG_SYS_COMPAT_EXIT,
        ),
        _ => (
            names::PROG_CRED_ENTER,
            names::PROG_CRED_EXIT,
            names::PROG_CRED_COMPAT_ENTER,
            names::PROG_CRED_COMPAT_EXIT,
        ),
    };
    Programs {
        enter,
        exit,
        ia32_enter,
        ia32_exit,
    }
}

/// Whether an optional hook loaded: Err says why not.
pub type HookStatus = Result<(), String>;

/// How one syscall ended up being traced.
#[derive(Debug, Clone)]
pub struct Traced {
    pub op: SyscallOp,
    /// Err: why it is not traced (no such syscall on this architecture or
    /// kernel, e.g. fchmodat2 before 6.6).
    pub status: Result<(), String>,
}

/// The optional fentry hooks that complete the tracepoint families' events
/// (None: their family is off).
#[derive(Debug, Default)]
pub struct FentryHooks {
    /// chmod/chown: the file's attributes from before the call.
    pub setattr: Option<HookStatus>,
    /// chmod and chown: the file as the kernel resolved it.
    pub file_path: Option<FilePathHooks>,
    /// xattr changes: the name and value as the kernel copied them.
    pub xattr: Option<HookStatus>,
    /// truncate/unlink/rename/link/symlink of watched files decided by inode.
    pub watch_inode: Option<HookStatus>,
    /// connect/bind: the address as the kernel copied it.
    pub socket_address: Option<HookStatus>,
    /// Module loads and unloads: the module as the kernel named it (raw
    /// tracepoints, kept here beside the family's other extra hooks).
    pub module_names: Option<HookStatus>,
}

/// The path hooks of chmod and of chown, each attached where it loads.
#[derive(Debug)]
pub struct FilePathHooks {
    pub chmod: HookStatus,
    pub chown: HookStatus,
}

/// The native program arrays (entry, exit, the watch exits' stages); they
/// must stay open, or the kernel empties them.
pub struct NativePrograms(#[allow(dead_code)] [ProgramArray<MapData>; 3]);

/// Loads the programs of the `enabled` families into the dispatchers'
/// program arrays and puts the number of each of their syscalls into
/// SYSCALL_OPS (the dispatchers are attached by [`attach_dispatchers`]).
/// A syscall this kernel lacks is reported, not an error; a program that
/// fails to load is. Where the dispatchers cannot load (BTF tracepoints:
/// no kernel BTF, or no syscall tracepoints), no family is loaded, every
/// syscall is reported not traced, and [`attach_dispatchers`] fails with
/// the same reason.
pub fn attach(
    ebpf: &mut Ebpf,
    enabled: &[EventKind],
    resolved: &super::offsets::ResolvedOffsets,
    btf: &Result<aya::Btf, String>,
) -> Result<(Vec<Traced>, FentryHooks, NativePrograms), LoadError> {
    let offsets = &resolved.offsets;
    let mut hooks = FentryHooks::default();
    ensure_tracefs();
    let dispatch = btf.as_ref().map_err(Clone::clone).and_then(|btf| {
        for (name, tracepoint) in DISPATCHERS {
            load_dispatcher(ebpf, btf, name, tracepoint)?;
        }
        Ok(btf)
    });
    let mut ops: Array<MapData, u32> = take_map(ebpf, names::SYSCALL_OPS_MAP)?;
    let mut progs: ProgramArray<MapData> = take_map(ebpf, names::SYSCALL_PROGS_MAP)?;
    let mut exit_progs: ProgramArray<MapData> = take_map(ebpf, names::SYSCALL_EXIT_PROGS_MAP)?;
    let mut watch_stages: ProgramArray<MapData> = take_map(ebpf, names::WATCH_STAGES_MAP)?;
    let mut traced = Vec::new();
    for kind in sensor_common::SYSCALL_FAMILIES {
        if !enabled.contains(&kind) {
            continue;
        }
        match kind {
            EventKind::FileAttr => {
                hooks.setattr = Some(attach_setattr(ebpf, btf, offsets));
                hooks.file_path = Some(attach_file_path(ebpf, btf, resolved));
                hooks.xattr = Some(attach_xattr(ebpf, btf, resolved));
            }
            EventKind::FileWrite => {
                hooks.watch_inode = Some(attach_watch_inode(ebpf, btf, offsets))
            }
            EventKind::Net => {
                // Before any connect can return EINPROGRESS.
                attach_raw(ebpf, names::PROG_NET_STATE, names::TP_INET_SOCK_SET_STATE)?;
                hooks.socket_address = Some(attach_socket_address(ebpf, btf, resolved));
            }
            EventKind::System => {
                attach_raw(ebpf, names::PROG_SIGNAL_SENSOR, names::TP_SIGNAL_GENERATE)?;
                hooks.module_names = Some(attach_module_names(ebpf, offsets));
            }
            _ => {}
        }
        let ops_of_kind = SyscallOp::ALL.into_iter().filter(|op| op.kind() == kind);
        let btf = match &dispatch {
            Ok(btf) => *btf,
            Err(why) => {
                traced.extend(ops_of_kind.map(|op| Traced {
                    op,
                    status: Err(why.clone()),
                }));
                continue;
            }
        };
        if kind == EventKind::FileWrite {
            // Before the exits that reach it (native here, ia32 later).
            let name = names::PROG_WATCH_EXIT_SECOND_DIR;
            let program = super::load_btf_tracepoint(ebpf, name, names::TP_SYS_EXIT, btf)?;
            let fd = program.fd().map_err(|source| LoadError::Program {
                program: name,
                hook: "tail call",
                source,
            })?;
            watch_stages
                .set(0, fd, 0)
                .map_err(|source| LoadError::Map {
                    name: names::WATCH_STAGES_MAP,
                    source,
                })?;
        }
        let Programs { enter, exit, .. } = programs(kind);
        let program = super::load_btf_tracepoint(ebpf, enter, names::TP_SYS_ENTER, btf)?;
        let fd = program.fd();
        set_program(&mut progs, names::SYSCALL_PROGS_MAP, kind, false, enter, fd)?;
        let program = super::load_btf_tracepoint(ebpf, exit, names::TP_SYS_EXIT, btf)?;
        let fd = program.fd();
        set_program(
            &mut exit_progs,
            names::SYSCALL_EXIT_PROGS_MAP,
            kind,
            true,
            exit,
            fd,
        )?;
        for op in ops_of_kind {
            let status = trace_one(&mut ops, op);
            if let Err(why) = &status {
                tracing::debug!(syscall = op.name(), "not traced: {why}");
            }
            traced.push(Traced { op, status });
        }
    }
    Ok((
        traced,
        hooks,
        NativePrograms([progs, exit_progs, watch_stages]),
    ))
}

/// Puts the family program `name` (`fd`, as loaded) into `map`'s slot for
/// `kind`'s entry or exit.
pub(super) fn set_program(
    map: &mut ProgramArray<MapData>,
    map_name: &'static str,
    kind: EventKind,
    is_exit: bool,
    name: &'static str,
    fd: Result<&aya::programs::ProgramFd, aya::programs::ProgramError>,
) -> Result<(), LoadError> {
    let fd = fd.map_err(|source| LoadError::Program {
        program: name,
        hook: "tail call",
        source,
    })?;
    map.set(compat::slot(kind, is_exit), fd, 0)
        .map_err(|source| LoadError::Map {
            name: map_name,
            source,
        })
}

/// The dispatchers and their tracepoints, exit first: see
/// [`attach_dispatchers`].
const DISPATCHERS: [(&str, &str); 2] = [
    (names::PROG_SYSCALL_EXIT, names::TP_SYS_EXIT),
    (names::PROG_SYSCALL_ENTER, names::TP_SYS_ENTER),
];

/// Loads a dispatcher, a BTF tracepoint (why: the eBPF side's
/// dispatch.rs).
fn load_dispatcher<'a>(
    ebpf: &'a mut Ebpf,
    btf: &aya::Btf,
    name: &'static str,
    tracepoint: &'static str,
) -> Result<&'a mut aya::programs::BtfTracePoint, String> {
    super::load_btf_tracepoint(ebpf, name, tracepoint, btf)
        .map_err(|e| format!("tp_btf/{tracepoint}: {e}"))
}

/// The tracepoint a BTF tracepoint program of the object is for: every
/// one is a syscall dispatcher or a family's program (or a stage one
/// reaches by tail call, which must have its hook), on the syscall entry
/// or exit.
pub(super) fn btf_tracepoint_of(program: &str) -> &'static str {
    let exit = program == names::PROG_SYSCALL_EXIT
        || program == names::PROG_WATCH_EXIT_SECOND_DIR
        || sensor_common::SYSCALL_FAMILIES.into_iter().any(|kind| {
            let p = programs(kind);
            program == p.exit || program == p.ia32_exit
        });
    if exit {
        names::TP_SYS_EXIT
    } else {
        names::TP_SYS_ENTER
    }
}

/// Attaches the two dispatchers, once every program array and number
/// table they read is filled. Exit first: an entry whose exit is not
/// attached yet would leave a stale in-flight record behind.
pub fn attach_dispatchers(ebpf: &mut Ebpf, btf: &Result<aya::Btf, String>) -> Result<(), String> {
    let btf = btf.as_ref().map_err(Clone::clone)?;
    for (name, tracepoint) in DISPATCHERS {
        load_dispatcher(ebpf, btf, name, tracepoint)?
            .attach()
            .map_err(|e| format!("tp_btf/{tracepoint}: {e}"))?;
    }
    Ok(())
}

/// The fentry hook that gives chmod/chown events the file's attributes
/// from before the call. Optional: where fentry is refused (some
/// sandboxes, kernels without trampolines) the events come without them.
fn attach_setattr(
    ebpf: &mut Ebpf,
    btf: &Result<aya::Btf, String>,
    offsets: &sensor_common::KernelOffsets,
) -> HookStatus {
    setattr_dentry_known(offsets)?;
    attach_fentry(
        ebpf,
        btf.as_ref()?,
        names::PROG_FILE_SETATTR,
        names::FN_SECURITY_INODE_SETATTR,
    )
}

/// The fentry hooks that give xattr changes their name and value as the
/// kernel copied them (see the eBPF side's `file_xattr.rs`), the build of
/// each that matches this kernel's arguments; then the switch that has
/// the entry keep every xattr call for the exit to decide by that name.
/// Both or neither, as for the socket hooks.
fn attach_xattr(
    ebpf: &mut Ebpf,
    btf: &Result<aya::Btf, String>,
    resolved: &super::offsets::ResolvedOffsets,
) -> HookStatus {
    let name_arg = resolved.xattr_name_arg.clone()?;
    let btf = btf.as_ref()?;
    let (set, remove) = if name_arg == 2 {
        (names::PROG_FILE_SETXATTR, names::PROG_FILE_REMOVEXATTR)
    } else {
        (
            names::PROG_FILE_SETXATTR_NO_IDMAP,
            names::PROG_FILE_REMOVEXATTR_NO_IDMAP,
        )
    };
    attach_all(
        ebpf,
        btf,
        &[
            (set, names::FN_SECURITY_INODE_SETXATTR),
            (remove, names::FN_SECURITY_INODE_REMOVEXATTR),
        ],
    )?;
    set_switch(ebpf, names::XATTR_BY_KERNEL_MAP)
}

/// The fentry hooks that give chmod and chown events the file the kernel
/// resolved (see the eBPF side's `file_path.rs`), then the switch that has
/// the entry leave the ignored-path-prefix decision on those calls to the
/// daemon. Each where it loads: 5.10 refuses the chown one (its ids are
/// structs), and a chmod resolved is worth having without it; the events
/// say which calls were resolved.
fn attach_file_path(
    ebpf: &mut Ebpf,
    btf: &Result<aya::Btf, String>,
    resolved: &super::offsets::ResolvedOffsets,
) -> FilePathHooks {
    let mut attach = |name: &str, function: &str| -> HookStatus {
        resolved.file_path.clone()?;
        attach_fentry(ebpf, btf.as_ref()?, name, function)
            .map_err(|why| format!("{function}: {why}"))
    };
    let mut hooks = FilePathHooks {
        chmod: attach(names::PROG_FILE_PATH_CHMOD, names::FN_SECURITY_PATH_CHMOD),
        chown: attach(names::PROG_FILE_PATH_CHOWN, names::FN_SECURITY_PATH_CHOWN),
    };
    let bits = [
        (&hooks.chmod, sensor_common::file_path_hooks::CHMOD),
        (&hooks.chown, sensor_common::file_path_hooks::CHOWN),
    ]
    .into_iter()
    .filter(|(status, _)| status.is_ok())
    .fold(0, |bits, (_, bit)| bits | bit);
    if bits != 0
        && let Err(why) = set_switch_to(ebpf, names::FILE_PATH_BY_KERNEL_MAP, bits)
    {
        // The hooks still resolve the records; only the entry's filter is
        // not left to the daemon.
        for status in [&mut hooks.chmod, &mut hooks.chown] {
            if status.is_ok() {
                *status = Err(why.clone());
            }
        }
    }
    hooks
}

/// Sets the one-element switch map `name` to 1: what has a kernel-side
/// program rely on the optional hook just attached.
pub(super) fn set_switch(ebpf: &mut Ebpf, name: &str) -> HookStatus {
    set_switch_to(ebpf, name, 1)
}

/// Sets the one-element switch map `name` to `value`.
fn set_switch_to(ebpf: &mut Ebpf, name: &str, value: u32) -> HookStatus {
    let map = ebpf
        .map_mut(name)
        .ok_or_else(|| format!("map {name} missing"))?;
    let mut switch: Array<&mut MapData, u32> =
        Array::try_from(map).map_err(|e| format!("{name}: {e}"))?;
    switch.set(0, value, 0).map_err(|e| format!("{name}: {e}"))
}

/// Detaches `link` of the fentry program `name`: the undoing of a hook
/// whose partner did not load.
fn detach_fentry(ebpf: &mut Ebpf, name: &str, link: aya::programs::fentry::FEntryLinkId) {
    if let Some(p) = ebpf
        .program_mut(name)
        .and_then(|p| <&mut FEntry>::try_from(p).ok())
    {
        let _ = p.detach(link);
    }
}

/// The fentry hooks that give connect and bind events the address as the
/// kernel copied it (see the eBPF side's `net_address.rs`). Both or
/// neither: events of one kind told apart from the other's by a hook
/// that loaded for one only would read as a difference between the calls.
fn attach_socket_address(
    ebpf: &mut Ebpf,
    btf: &Result<aya::Btf, String>,
    resolved: &super::offsets::ResolvedOffsets,
) -> HookStatus {
    resolved.socket_address.clone()?;
    attach_all(
        ebpf,
        btf.as_ref()?,
        &[
            (
                names::PROG_NET_CONNECT_ADDRESS,
                names::FN_SECURITY_SOCKET_CONNECT,
            ),
            (names::PROG_NET_BIND_ADDRESS, names::FN_SECURITY_SOCKET_BIND),
        ],
    )
}

/// The module tracepoints that name the module a load or unload acted on
/// (see the eBPF side's `module_name.rs`). Without them a load from memory
/// (init_module) names none, and an unload names its argument.
fn attach_module_names(ebpf: &mut Ebpf, offsets: &sensor_common::KernelOffsets) -> HookStatus {
    if offsets.module_name == sensor_common::OFFSET_MISSING {
        return Err("this kernel's BTF has no struct module (no module support)".into());
    }
    for (program, tracepoint) in [
        (names::PROG_MODULE_LOADED, names::TP_MODULE_LOAD),
        (names::PROG_MODULE_FREED, names::TP_MODULE_FREE),
    ] {
        attach_raw(ebpf, program, tracepoint)
            .map_err(|why| format!("raw_tracepoint/{tracepoint}: {why}"))?;
    }
    Ok(())
}

/// The fentry hooks that decide truncate/unlink/rename/link/symlink by the
/// inode the kernel resolved (see the eBPF side's `watch_inode.rs`), then
/// the switch that has the entry program keep undecided calls for them. All or
/// nothing: with only some attached, a symlinked rename would be caught
/// and a symlinked unlink not, which reads as coverage that is not there.
fn attach_watch_inode(
    ebpf: &mut Ebpf,
    btf: &Result<aya::Btf, String>,
    offsets: &sensor_common::KernelOffsets,
) -> HookStatus {
    setattr_dentry_known(offsets)?;
    attach_all(
        ebpf,
        btf.as_ref()?,
        &[
            (names::PROG_WATCH_UNLINK, names::FN_SECURITY_INODE_UNLINK),
            (names::PROG_WATCH_RMDIR, names::FN_SECURITY_INODE_RMDIR),
            (names::PROG_WATCH_RENAME, names::FN_SECURITY_INODE_RENAME),
            (names::PROG_WATCH_LINK, names::FN_SECURITY_INODE_LINK),
            (names::PROG_WATCH_SYMLINK, names::FN_SECURITY_INODE_SYMLINK),
            (names::PROG_WATCH_SETATTR, names::FN_SECURITY_INODE_SETATTR),
        ],
    )?;
    set_switch(ebpf, names::WATCH_BY_INODE_MAP)
}

/// Attaches each fentry program `(name, function)` of `hooks`, all or
/// none: where one fails, those attached before it are detached, and the
/// failing function is named.
fn attach_all(ebpf: &mut Ebpf, btf: &aya::Btf, hooks: &[(&str, &str)]) -> HookStatus {
    let mut links = Vec::new();
    for &(name, function) in hooks {
        match attach_fentry_link(ebpf, btf, name, function) {
            Ok(link) => links.push((name, link)),
            Err(why) => {
                for (name, link) in links {
                    detach_fentry(ebpf, name, link);
                }
                return Err(format!("{function}: {why}"));
            }
        }
    }
    Ok(())
}

/// Both setattr hooks find the dentry among security_inode_setattr's
/// arguments where the daemon's BTF reading put it.
fn setattr_dentry_known(offsets: &sensor_common::KernelOffsets) -> HookStatus {
    if offsets.setattr_dentry_arg == sensor_common::OFFSET_MISSING {
        return Err("security_inode_setattr has no dentry argument in this kernel's BTF".into());
    }
    Ok(())
}

/// Loads `name` as fentry on `function` and attaches it.
fn attach_fentry(ebpf: &mut Ebpf, btf: &aya::Btf, name: &str, function: &str) -> HookStatus {
    attach_fentry_link(ebpf, btf, name, function).map(|_| ())
}

fn attach_fentry_link(
    ebpf: &mut Ebpf,
    btf: &aya::Btf,
    name: &str,
    function: &str,
) -> Result<aya::programs::fentry::FEntryLinkId, String> {
    let program: &mut FEntry = ebpf
        .program_mut(name)
        .ok_or_else(|| format!("program {name} missing"))?
        .try_into()
        .map_err(|e| format!("{name}: {e}"))?;
    program.load(function, btf).map_err(|e| {
        super::report_if_too_complex(name, &e);
        format!("fentry refused: {e}")
    })?;
    program.attach().map_err(|e| format!("fentry attach: {e}"))
}

/// A family's raw tracepoint (how a non-blocking connect ended, signals
/// to the sensor).
fn attach_raw(ebpf: &mut Ebpf, name: &'static str, hook: &'static str) -> Result<(), LoadError> {
    super::load_raw_tracepoint(ebpf, name, hook)?
        .attach(hook)
        .map_err(|source| LoadError::Program {
            program: name,
            hook,
            source,
        })?;
    Ok(())
}

/// The x32 number of `op`'s syscall, without the x32 bit: on x86_64 its
/// native number, or its own (see [`compat::x32_own_number`]); None
/// elsewhere. The table test checks this against the kernel headers.
pub fn x32_number(op: SyscallOp) -> Option<u32> {
    if !cfg!(target_arch = "x86_64") {
        return None;
    }
    compat::x32_own_number(op).or_else(|| number(op).and_then(|nr| u32::try_from(nr).ok()))
}

/// Puts `op`'s syscall numbers into SYSCALL_OPS, which has the
/// dispatchers trace it: the native one, and on x86_64 the x32 one.
///
/// The x32 number is traced whether or not this kernel runs x32 calls: where
/// it does not (most), such a call fails with ENOSYS, and an event for
/// that attempt shows someone trying the ABI to pass unseen.
fn trace_one(ops: &mut Array<MapData, u32>, op: SyscallOp) -> Result<(), String> {
    let nr = number(op).ok_or("no such syscall on this architecture")?;
    let slot = u64::try_from(nr)
        .ok()
        .map(ops_slot)
        .filter(|slot| *slot < X32_SLOTS_BASE)
        .ok_or(format!("syscall number {nr} out of range"))?;
    in_kernel(op)?;
    let mut slots = vec![slot];
    if let Some(x32) = x32_number(op) {
        let slot = ops_slot(u64::from(x32 | compat::X32_SYSCALL_BIT));
        if slot >= SYSCALL_SLOTS {
            return Err(format!("x32 syscall number {x32} out of range"));
        }
        slots.push(slot);
    }
    for slot in slots {
        ops.set(slot, op as u32, 0)
            .map_err(|e| format!("SYSCALL_OPS: {e}"))?;
    }
    Ok(())
}

/// Which syscalls the kernel has is read from tracefs; on hosts that do
/// not mount it at boot (this build machine, many minimal images) mount it
/// where the kernel documents it.
fn ensure_tracefs() {
    let dir = std::path::Path::new("/sys/kernel/tracing");
    let populated = dir.read_dir().is_ok_and(|mut d| d.next().is_some());
    if populated {
        return;
    }
    let result = nix::mount::mount(
        Some("tracefs"),
        dir,
        Some("tracefs"),
        nix::mount::MsFlags::MS_NOSUID
            | nix::mount::MsFlags::MS_NODEV
            | nix::mount::MsFlags::MS_NOEXEC,
        None::<&str>,
    );
    match result {
        Ok(()) => tracing::info!("mounted tracefs at /sys/kernel/tracing"),
        Err(e) => tracing::warn!("cannot mount tracefs at /sys/kernel/tracing: {e}"),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// The kernel's `asm/<file>` for x86_64, from linux-libc-dev (which
    /// `cargo xtask test` installs).
    pub(in crate::source::ebpf) fn unistd_header(file: &str) -> String {
        let path = format!("/usr/include/x86_64-linux-gnu/asm/{file}");
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{path} (Debian's linux-libc-dev): {e}"))
    }

    /// Syscall `name`'s number in a unistd header, without the x32 bit:
    /// `#define __NR_chmod 15`, or `#define __NR_chmod (__X32_SYSCALL_BIT + 90)`.
    pub(in crate::source::ebpf) fn header_number(header: &str, name: &str) -> Option<u32> {
        let prefix = format!("#define __NR_{name} ");
        header.lines().find_map(|l| {
            let value = l.strip_prefix(&prefix)?;
            value
                .strip_prefix("(__X32_SYSCALL_BIT + ")
                .and_then(|v| v.strip_suffix(')'))
                .unwrap_or(value)
                .parse::<u32>()
                .ok()
        })
    }

    /// x32 numbers against the kernel's own: ptrace and process_vm_* at
    /// their own numbers, every other traced syscall at its native one.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn the_x32_numbers_match_the_kernel_headers() {
        let header = unistd_header("unistd_x32.h");
        let number = |name: &str| header_number(&header, name);
        let mut checked = 0;
        for op in SyscallOp::ALL {
            let Some(expected) = number(op.name()) else {
                // Newer than the installed headers (fchmodat2), or not an
                // x86 syscall name.
                continue;
            };
            assert_eq!(x32_number(op), Some(expected), "x32 {}", op.name());
            checked += 1;
        }
        assert!(
            checked > 40,
            "only {checked} x32 numbers found in the headers"
        );
        assert_eq!(number("ptrace"), compat::x32_own_number(SyscallOp::Ptrace));
    }

    /// Every BTF tracepoint program in the built object, with the
    /// tracepoint of its section (`tp_btf/<tracepoint>`).
    fn object_btf_programs() -> Vec<(String, String)> {
        use object::{Object, ObjectSection, ObjectSymbol, SymbolKind, SymbolSection};
        assert!(
            !super::super::EBPF_OBJECT.is_empty(),
            "the eBPF object was not built (AYA_BUILD_SKIP?)"
        );
        let obj = object::File::parse(super::super::EBPF_OBJECT).expect("the eBPF object is ELF");
        obj.symbols()
            .filter(|s| s.kind() == SymbolKind::Text)
            .filter_map(|s| {
                let SymbolSection::Section(index) = s.section() else {
                    return None;
                };
                let section = obj.section_by_index(index).ok()?.name().ok()?.to_owned();
                let tracepoint = section.strip_prefix("tp_btf/")?.to_owned();
                Some((s.name().ok()?.to_owned(), tracepoint))
            })
            .collect()
    }

    /// The daemon loads each BTF tracepoint program for the tracepoint
    /// `btf_tracepoint_of` names (in `verify_first`); a wrong one would
    /// load a family's program for the other hook. Checked against the
    /// object itself, so a new family's programs cannot be missed.
    #[test]
    fn each_btf_tracepoint_program_is_loaded_for_its_sections_tracepoint() {
        let in_object = object_btf_programs();
        for dispatcher in [names::PROG_SYSCALL_ENTER, names::PROG_SYSCALL_EXIT] {
            assert!(
                in_object.iter().any(|(name, _)| name == dispatcher),
                "{dispatcher} is not a BTF tracepoint in the object: {in_object:?}"
            );
        }
        for kind in sensor_common::SYSCALL_FAMILIES {
            let p = programs(kind);
            for name in [p.enter, p.exit, p.ia32_enter, p.ia32_exit] {
                assert!(
                    in_object.iter().any(|(n, _)| n == name),
                    "{name} is not a BTF tracepoint in the object"
                );
            }
        }
        for (name, tracepoint) in &in_object {
            assert_eq!(btf_tracepoint_of(name), tracepoint, "program {name}");
        }
    }
}
