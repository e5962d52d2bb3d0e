//! Kernel struct offsets from the running kernel's BTF: our CO-RE.
//!
//! The eBPF programs read every kernel struct at `base + OFFSETS.<field>`;
//! this module finds each field by name in `/sys/kernel/btf/vmlinux`, so one
//! object runs on every kernel with BTF (5.8+), whatever its config, struct
//! randomization or version. Fields are looked up through anonymous unions
//! and structs (as C flattens them) and under their older names. A field an
//! older or differently configured kernel lacks is `OFFSET_MISSING`, which
//! the eBPF side reports as unset; a field without which events would be
//! wrong is an error naming it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use btf_rs::{Btf, Struct};
use sensor_common::{KernelOffsets, OFFSET_MISSING};

use super::VMLINUX_BTF;

// A submodule of this one, not of `ebpf`: nothing else needs raw BTF.
#[path = "btf.rs"]
mod btf;

#[derive(Debug, thiserror::Error)]
pub enum OffsetsError {
    #[error(
        "{} does not exist: the sensor learns kernel struct layouts from the BTF that kernels \
         built with CONFIG_DEBUG_INFO_BTF=y publish there (distribution kernels since about 5.8; \
         in a container, /sys must be the host's)",
        .path.display()
    )]
    BtfMissing { path: PathBuf },
    #[error(
        "cannot read kernel type information from {}: {source} \
         (it is provided by kernels built with CONFIG_DEBUG_INFO_BTF=y)",
        .path.display()
    )]
    BtfUnreadable {
        path: PathBuf,
        #[source]
        source: btf_rs::Error,
    },
    #[error("the kernel's BTF is malformed: {0}")]
    Malformed(#[source] btf_rs::Error),
    /// All the required fields that were not found, each as `struct.member`
    /// with the reason, so one run shows everything an unusual kernel lacks.
    #[error("the kernel's BTF lacks {}, without which the sensor cannot work", .fields.join(", "))]
    Required { fields: Vec<String> },
}

#[derive(Clone, Debug)]
pub struct ResolvedOffsets {
    pub offsets: KernelOffsets,
    /// Optional fields this kernel lacks, by `KernelOffsets` field name
    /// (e.g. `task_loginuid` without CONFIG_AUDIT).
    pub missing: Vec<&'static str>,
    /// The kernel has the bpf_get_current_task_btf helper (5.11+), which
    /// the programs' plain task reads need (see `task_reads`).
    pub task_btf_helper: bool,
    /// The io_uring submit tracepoint this kernel has, in a shape the
    /// hook can read (see [`io_uring_hook`]).
    pub io_uring_tracepoint: Option<&'static str>,
    /// Whether the io_uring completion hook can report those requests'
    /// results here, or why not (see [`io_uring_complete_hook`]).
    pub io_uring_complete: Result<(), String>,
    /// Whether the `/proc/PID/mem` hook can load here, or why not (see
    /// [`proc_mem_hook`]).
    pub proc_mem: Result<(), String>,
    /// Whether the hooks on the kernel's copy of a connect's or bind's
    /// address can load here, or why not (see [`socket_address_hooks`]).
    pub socket_address: Result<(), String>,
    /// Where `security_inode_setxattr` and `_removexattr` take the xattr's
    /// name (1 or 2), or why their hooks cannot load (see [`xattr_hooks`]).
    pub xattr_name_arg: Result<u32, String>,
    /// Whether the hooks on the `struct path` a chmod or chown resolved
    /// can load here, or why not (see [`path_hooks`]).
    pub file_path: Result<(), String>,
}

pub fn resolve_running_kernel() -> Result<ResolvedOffsets, OffsetsError> {
    resolve_from_file(Path::new(VMLINUX_BTF))
}

/// Resolves from a BTF file; the cgroup hierarchy is chosen for this host
/// (see [`CgroupMode::detect`]), since the programs run here.
pub fn resolve_from_file(path: &Path) -> Result<ResolvedOffsets, OffsetsError> {
    let btf = btf::open(path).map_err(|source| match source {
        btf_rs::Error::IO(ref e) if e.kind() == std::io::ErrorKind::NotFound => {
            OffsetsError::BtfMissing {
                path: path.to_owned(),
            }
        }
        source => OffsetsError::BtfUnreadable {
            path: path.to_owned(),
            source,
        },
    })?;
    resolve_btf(&btf, CgroupMode::detect())
}

/// Resolves every field from already-opened BTF.
pub fn resolve_btf(btf: &Btf, cgroup_mode: CgroupMode) -> Result<ResolvedOffsets, OffsetsError> {
    let mut structs = StructCache::new(btf);
    let mut values = HashMap::with_capacity(FIELDS.len());
    let mut missing = Vec::new();
    let mut required_missing = Vec::new();
    for spec in FIELDS {
        let value = match structs.find(spec)? {
            Found::At(offset) => offset,
            absent => {
                match spec.need {
                    Need::Required => required_missing.push(absent.describe(spec)),
                    Need::Optional => {
                        tracing::debug!(
                            field = spec.field,
                            "kernel lacks {}",
                            absent.describe(spec)
                        );
                        missing.push(spec.field);
                    }
                }
                OFFSET_MISSING
            }
        };
        values.insert(spec.field, value);
    }
    if !required_missing.is_empty() {
        return Err(OffsetsError::Required {
            fields: required_missing,
        });
    }
    let subsys_ids = btf::enumerators(btf, "cgroup_subsys_id").map_err(OffsetsError::Malformed)?;
    let hierarchy = choose_cgroup_hierarchy(cgroup_mode, |name| {
        subsys_ids
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, id)| *id)
    });
    if hierarchy == CgroupHierarchy::V1Unknown {
        // cgroup v1 in use but none of the controllers we know: events
        // fall back to the default hierarchy, whose path on v1 is "/".
        missing.push("cgroup_subsys_index");
    }
    tracing::debug!(?hierarchy, ?missing, "kernel offsets resolved from BTF");
    // Optional: without it the fentry hook on security_inode_setattr is
    // not loaded and path-based chmods carry no "before" attributes.
    let setattr_dentry_arg = match btf::func_param_index(btf, "security_inode_setattr", "dentry") {
        Ok(Some(i)) if i < 2 => i,
        _ => {
            missing.push("setattr_dentry_arg");
            OFFSET_MISSING
        }
    };
    let io_uring = io_uring_hook(btf, values["io_kiocb_opcode"] != OFFSET_MISSING);
    if io_uring.is_none() {
        missing.push("io_uring_req_arg");
    }
    let (io_uring_tracepoint, io_uring_args) = match io_uring {
        Some((tracepoint, args)) => (Some(tracepoint), args),
        None => (None, [OFFSET_MISSING; 2]),
    };
    // The completion is matched to the submission by the request, which
    // only a submit hook that has the request remembers.
    let io_uring_complete = if io_uring_args[0] == OFFSET_MISSING {
        Err("the submit tracepoint does not pass the request (before 5.19)".to_owned())
    } else {
        io_uring_complete_hook(btf)
    };
    if io_uring_complete.is_err() {
        missing.push("io_uring_complete_req_arg");
    }
    let offsets = assemble(
        |field| values[field],
        hierarchy.subsys_index(),
        setattr_dentry_arg,
        io_uring_args,
        io_uring_complete.clone().unwrap_or([OFFSET_MISSING; 3]),
    );
    let proc_mem = proc_mem_hook(btf, |field| values[field] != OFFSET_MISSING);
    let task_btf_helper = btf::enumerators(btf, "bpf_func_id").is_ok_and(|helpers| {
        helpers
            .iter()
            .any(|(n, _)| n == "BPF_FUNC_get_current_task_btf")
    });
    Ok(ResolvedOffsets {
        offsets,
        missing,
        task_btf_helper,
        io_uring_tracepoint,
        io_uring_complete: io_uring_complete.map(|_| ()),
        proc_mem,
        socket_address: socket_address_hooks(btf),
        xattr_name_arg: xattr_hooks(btf),
        file_path: path_hooks(btf),
    })
}

/// The file family's xattr hooks are built for the name as the second
/// argument of `security_inode_setxattr` and `security_inode_removexattr`
/// (before 5.12) or the third (after the mount's user namespace or idmap),
/// with the dentry right before it and setxattr's value and size right
/// after it.
fn xattr_hooks(btf: &Btf) -> Result<u32, String> {
    let index = |func: &str, param: &str| match btf::func_param_index(btf, func, param) {
        Ok(Some(i)) => Ok(i),
        Ok(None) => Err(format!("{func} has no {param} argument in BTF")),
        Err(e) => Err(format!("{func}: {e}")),
    };
    let set = sensor_common::names::FN_SECURITY_INODE_SETXATTR;
    let remove = sensor_common::names::FN_SECURITY_INODE_REMOVEXATTR;
    let name = index(set, "name")?;
    if !matches!(name, 1 | 2) {
        return Err(format!("{set}'s name is argument {name}, not 1 or 2"));
    }
    for (func, param, at) in [
        (set, "dentry", name - 1),
        (set, "value", name + 1),
        (set, "size", name + 2),
        (remove, "dentry", name - 1),
        (remove, "name", name),
    ] {
        let i = index(func, param)?;
        if i != at {
            return Err(format!("{func}'s {param} is argument {i}, not {at}"));
        }
    }
    Ok(name)
}

/// The file family's path hooks read `security_path_chmod`'s and
/// `security_path_chown`'s `struct path` as their first argument. Both
/// exist only with `CONFIG_SECURITY_PATH`; where this kernel's BTF lacks
/// them or says otherwise, they are not loaded.
fn path_hooks(btf: &Btf) -> Result<(), String> {
    for func in [
        sensor_common::names::FN_SECURITY_PATH_CHMOD,
        sensor_common::names::FN_SECURITY_PATH_CHOWN,
    ] {
        match btf::func_param_index(btf, func, "path") {
            Ok(Some(0)) => {}
            Ok(Some(i)) => return Err(format!("{func}'s path is argument {i}, not 0")),
            Ok(None) => return Err(format!("{func} has no path argument in BTF")),
            Err(e) => {
                return Err(format!(
                    "{func}: {e} (a kernel without CONFIG_SECURITY_PATH?)"
                ));
            }
        }
    }
    Ok(())
}

/// The network family's fentry hooks read `security_socket_connect`'s and
/// `security_socket_bind`'s address and length as their second and third
/// arguments (`sock, address, addrlen` since the hooks were made): where
/// this kernel's BTF says otherwise they are not loaded.
fn socket_address_hooks(btf: &Btf) -> Result<(), String> {
    for func in [
        sensor_common::names::FN_SECURITY_SOCKET_CONNECT,
        sensor_common::names::FN_SECURITY_SOCKET_BIND,
    ] {
        for (param, at) in [("address", 1), ("addrlen", 2)] {
            match btf::func_param_index(btf, func, param) {
                Ok(Some(i)) if i == at => {}
                Ok(Some(i)) => return Err(format!("{func}'s {param} is argument {i}, not {at}")),
                Ok(None) => return Err(format!("{func} has no {param} argument in BTF")),
                Err(e) => return Err(format!("{func}: {e}")),
            }
        }
    }
    Ok(())
}

/// The `/proc/PID/mem` hook goes on `mem_open(struct inode *, struct file
/// *)` and names the target through the inode's `proc_inode`: both must be
/// in this kernel's BTF as the hook reads them. (Its fallback, in the open
/// exit, also tells procfs by its superblock's magic.)
fn proc_mem_hook(btf: &Btf, found: impl Fn(&str) -> bool) -> Result<(), String> {
    let fields = [
        "file_f_mode",
        "proc_inode_vfs_inode",
        "proc_inode_pid",
        "pid_numbers",
        "upid_nr",
        "sb_magic",
    ];
    let lacking: Vec<&str> = fields.into_iter().filter(|f| !found(f)).collect();
    if !lacking.is_empty() {
        return Err(format!("the kernel's BTF lacks {}", lacking.join(", ")));
    }
    let function = sensor_common::names::FN_MEM_OPEN;
    match btf::func_param_index(btf, function, "file") {
        Ok(Some(1)) => Ok(()),
        Ok(_) => Err(format!(
            "no {function}(inode, file) in this kernel's BTF (inlined or changed)"
        )),
        Err(e) => Err(format!("reading {function} from the kernel's BTF: {e}")),
    }
}

/// How the host mounts cgroups, which decides where container paths live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CgroupMode {
    /// Only cgroup v2, mounted at /sys/fs/cgroup: every process's cgroup is
    /// in the default hierarchy.
    Unified,
    /// cgroup v1 controllers, alone or with cgroup2 beside them (systemd's
    /// "hybrid", cgroup2 at /sys/fs/cgroup/unified): container runtimes
    /// place containers in the v1 controllers.
    Legacy,
}

impl CgroupMode {
    pub fn detect() -> CgroupMode {
        Self::detect_at(Path::new("/sys/fs/cgroup"))
    }

    /// cgroup.controllers exists only at the root of a cgroup2 mount, so its
    /// presence at the usual root means the unified hierarchy is the one.
    fn detect_at(root: &Path) -> CgroupMode {
        if root.join("cgroup.controllers").exists() {
            CgroupMode::Unified
        } else {
            CgroupMode::Legacy
        }
    }
}

/// Which hierarchy the programs take a task's cgroup path from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CgroupHierarchy {
    /// `css_set.dfl_cgrp`, the cgroup v2 hierarchy.
    Unified,
    /// `css_set.subsys[index]`, the hierarchy of one v1 controller.
    V1 {
        controller: &'static str,
        index: u32,
    },
    /// v1 in use but the kernel has none of the controllers we look for.
    V1Unknown,
}

impl CgroupHierarchy {
    /// The value of `KernelOffsets::cgroup_subsys_index`.
    pub fn subsys_index(self) -> u32 {
        match self {
            CgroupHierarchy::V1 { index, .. } => index,
            CgroupHierarchy::Unified | CgroupHierarchy::V1Unknown => OFFSET_MISSING,
        }
    }
}

/// `enum cgroup_subsys_id` enumerators, best first: every container runtime
/// creates its cgroups in the memory controller (limits), most in pids and
/// cpu. The enumerators exist only for controllers built into the kernel.
pub const V1_HIERARCHIES: [&str; 3] = ["memory_cgrp_id", "pids_cgrp_id", "cpu_cgrp_id"];

/// Picks the hierarchy from the host's cgroup mode and the kernel's
/// controller ids (`subsys_id` maps an enumerator name to its value).
pub fn choose_cgroup_hierarchy(
    mode: CgroupMode,
    subsys_id: impl Fn(&str) -> Option<u64>,
) -> CgroupHierarchy {
    match mode {
        CgroupMode::Unified => CgroupHierarchy::Unified,
        CgroupMode::Legacy => V1_HIERARCHIES
            .iter()
            .find_map(|&controller| {
                // An index is small (below CGROUP_SUBSYS_COUNT); anything
                // else, or the u32 that means "missing", is not one.
                let index = u32::try_from(subsys_id(controller)?)
                    .ok()
                    .filter(|&i| i != OFFSET_MISSING)?;
                Some(CgroupHierarchy::V1 { controller, index })
            })
            .unwrap_or(CgroupHierarchy::V1Unknown),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Need {
    /// Without it the sensor's events would be wrong or empty: refuse to load.
    Required,
    /// Depends on the kernel's config; the event field is left unset.
    Optional,
}

/// The io_uring submit tracepoint and where its arguments are:
/// `[io_uring_req_arg, io_uring_opcode_arg]`, one of them set. Since 5.19
/// it passes the request (`struct io_kiocb *`, whose opcode needs
/// `io_kiocb_opcode`: `opcode_field`), before that the opcode itself as a `u8`; 6.4
/// renamed it `io_uring_submit_req`. None without io_uring, or in a shape
/// not known here. The hook reads only the first three arguments.
fn io_uring_hook(btf: &Btf, opcode_field: bool) -> Option<(&'static str, [u32; 2])> {
    use sensor_common::names::{TP_IO_URING_SUBMIT_REQ, TP_IO_URING_SUBMIT_SQE};
    for tracepoint in [TP_IO_URING_SUBMIT_REQ, TP_IO_URING_SUBMIT_SQE] {
        let Ok(Some(args)) = btf::tracepoint_args(btf, tracepoint) else {
            continue;
        };
        let at = |want: &[&str]| {
            args.iter()
                .position(|a| want.contains(&a.as_str()))
                .filter(|i| *i < 3)
                .map(|i| i as u32)
        };
        if let Some(i) = at(&["struct io_kiocb"]) {
            return opcode_field.then_some((tracepoint, [i, OFFSET_MISSING]));
        }
        return at(&["u8", "__u8"]).map(|i| (tracepoint, [OFFSET_MISSING, i]));
    }
    None
}

/// Where the completion tracepoint (`io_uring_complete`) has what its hook
/// reads: `[io_uring_complete_req_arg, io_uring_complete_res_arg,
/// io_uring_complete_cqe_arg]`, the request and one of the other two set.
/// Since 5.19 the request comes second (`void *req`); 5.19 to 6.2 then
/// pass the CQE's fields (`u64 user_data, int res, unsigned cflags, u64
/// extra1, u64 extra2`), later kernels the CQE (`struct io_uring_cqe *`).
/// Before 5.19 (`void *ctx, u64 user_data, int res…`) there is no request
/// to match with its submission.
fn io_uring_complete_hook(btf: &Btf) -> Result<[u32; 3], String> {
    let tracepoint = sensor_common::names::TP_IO_URING_COMPLETE;
    let args = match btf::tracepoint_args(btf, tracepoint) {
        Ok(Some(args)) => args,
        Ok(None) => return Err(format!("no {tracepoint} tracepoint in this kernel's BTF")),
        Err(e) => return Err(format!("{tracepoint}'s prototype unreadable: {e}")),
    };
    // A pointer to something other than a struct reads as "".
    if args.get(1).map(String::as_str) != Some("") {
        return Err(format!(
            "{tracepoint} does not pass the request in this kernel (before 5.19)"
        ));
    }
    if let Some(cqe) = args.iter().position(|a| a == "struct io_uring_cqe") {
        if cqe < 5 {
            return Ok([1, OFFSET_MISSING, cqe as u32]);
        }
    }
    if args.len() >= 5 && args[3] == "int" && args[4].contains("int") {
        return Ok([1, 3, OFFSET_MISSING]);
    }
    Err(format!(
        "{tracepoint}'s arguments are in a shape not known here: {args:?}"
    ))
}

/// One `KernelOffsets` field: the struct and the member names to try, the
/// current name first, then older ones.
#[derive(Debug)]
struct FieldSpec {
    field: &'static str,
    need: Need,
    strukt: &'static str,
    members: &'static [&'static str],
}

/// Declares the table of fields and the function that builds
/// `KernelOffsets` from it. The struct literal in `assemble` is exhaustive:
/// a new `KernelOffsets` field does not compile until it is listed here.
macro_rules! kernel_fields {
    ($($field:ident: $need:ident $strukt:ident . $($member:ident)|+;)*) => {
        const FIELDS: &[FieldSpec] = &[$(FieldSpec {
            field: stringify!($field),
            need: Need::$need,
            strukt: stringify!($strukt),
            members: &[$(stringify!($member)),+],
        },)*];

        fn assemble(
            value: impl Fn(&'static str) -> u32,
            cgroup_subsys_index: u32,
            setattr_dentry_arg: u32,
            [io_uring_req_arg, io_uring_opcode_arg]: [u32; 2],
            [io_uring_complete_req_arg, io_uring_complete_res_arg, io_uring_complete_cqe_arg]: [u32; 3],
        ) -> KernelOffsets {
            KernelOffsets {
                $($field: value(stringify!($field)),)*
                setattr_dentry_arg,
                cgroup_subsys_index,
                io_uring_req_arg,
                io_uring_opcode_arg,
                io_uring_complete_req_arg,
                io_uring_complete_res_arg,
                io_uring_complete_cqe_arg,
            }
        }

        /// A field by name, so tests can walk the table.
        #[cfg(test)]
        fn field_value(offsets: &KernelOffsets, field: &str) -> u32 {
            match field {
                $(stringify!($field) => offsets.$field,)*
                _ => panic!("{field} is not in the table"),
            }
        }
    };
}

// `a | b`: try member a, then b (older name).
kernel_fields! {
    task_pid: Required task_struct.pid;
    task_tgid: Required task_struct.tgid;
    task_real_parent: Required task_struct.real_parent;
    task_group_leader: Required task_struct.group_leader;
    // Renamed from real_start_time in 5.5.
    task_start_boottime: Required task_struct.start_boottime | real_start_time;
    task_real_cred: Required task_struct.real_cred;
    // mm and fs lead to the required arg_start/arg_end and pwd.
    task_mm: Required task_struct.mm;
    task_fs: Required task_struct.fs;
    // signal->live and exit_code are how an exit is told from a thread's
    // exit and what it returned: without them there are no exit events.
    task_signal: Required task_struct.signal;
    // Only with CONFIG_AUDIT (CONFIG_AUDITSYSCALL before 5.1).
    task_loginuid: Optional task_struct.loginuid;
    task_sessionid: Optional task_struct.sessionid;
    task_exit_code: Required task_struct.exit_code;
    task_comm: Required task_struct.comm;
    // Only with CONFIG_CGROUPS.
    task_cgroups: Optional task_struct.cgroups;
    cred_uid: Required cred.uid;
    cred_gid: Required cred.gid;
    cred_suid: Required cred.suid;
    cred_sgid: Required cred.sgid;
    cred_euid: Required cred.euid;
    cred_egid: Required cred.egid;
    cred_fsuid: Required cred.fsuid;
    cred_fsgid: Required cred.fsgid;
    // Inside an anonymous struct on recent kernels.
    mm_arg_start: Required mm_struct.arg_start;
    mm_arg_end: Required mm_struct.arg_end;
    // The running executable, for the ignore-executables filter.
    mm_exe_file: Required mm_struct.exe_file;
    fs_pwd: Required fs_struct.pwd;
    path_mnt: Required path.mnt;
    path_dentry: Required path.dentry;
    dentry_parent: Required dentry.d_parent;
    dentry_name: Required dentry.d_name;
    // Watched paths are matched by the inodes of a file's dentry chain.
    dentry_inode: Required dentry.d_inode;
    // union { struct { u32 hash; u32 len; }; u64 hash_len; }
    qstr_len: Required qstr.len;
    qstr_name: Required qstr.name;
    // The embedded struct vfsmount: real_mount() is container_of on it.
    mount_mnt: Required mount.mnt;
    mount_parent: Required mount.mnt_parent;
    mount_mountpoint: Required mount.mnt_mountpoint;
    vfsmount_root: Required vfsmount.mnt_root;
    binprm_file: Required linux_binprm.file;
    file_path: Required file.f_path;
    // atomic_t: its int counter is at offset 0.
    signal_live: Required signal_struct.live;
    // Only with CONFIG_TTY.
    signal_tty: Optional signal_struct.tty;
    tty_name: Optional tty_struct.name;
    // The cgroup chain, only with CONFIG_CGROUPS.
    css_set_dfl_cgrp: Optional css_set.dfl_cgrp;
    // An array of pointers, indexed by cgroup_subsys_index.
    css_set_subsys: Optional css_set.subsys;
    css_cgroup: Optional cgroup_subsys_state.cgroup;
    cgroup_kn: Optional cgroup.kn;
    // Renamed __parent in 6.15 (now RCU-protected).
    kernfs_parent: Optional kernfs_node.__parent | parent;
    kernfs_name: Optional kernfs_node.name;
    // A u64 since 5.5, a union before: its offset either way.
    kernfs_id: Optional kernfs_node.id;
    // Capability sets: what capset and a setuid exec change.
    cred_cap_inheritable: Required cred.cap_inheritable;
    cred_cap_permitted: Required cred.cap_permitted;
    cred_cap_effective: Required cred.cap_effective;
    // An fd-based chmod/chown names its file through the fd table.
    task_files: Required task_struct.files;
    files_fdt: Required files_struct.fdt;
    fdtable_max_fds: Required fdtable.max_fds;
    fdtable_fd: Required fdtable.fd;
    // The embedded first slots: a file reached through them is typed for
    // plain loads (the open exit's look at each file opened for writing).
    files_fd_array: Optional files_struct.fd_array;
    file_inode: Required file.f_inode;
    inode_mode: Required inode.i_mode;
    inode_uid: Required inode.i_uid;
    inode_gid: Required inode.i_gid;
    inode_ino: Required inode.i_ino;
    inode_sb: Required inode.i_sb;
    inode_nlink: Required inode.i_nlink;
    inode_generation: Required inode.i_generation;
    sb_dev: Required super_block.s_dev;
    // Sockets, for the network events. sock_common is struct sock's first
    // member (checked by a test), so its offsets apply to a sock pointer.
    file_private_data: Required file.private_data;
    socket_sk: Required socket.sk;
    skc_family: Required sock_common.skc_family;
    skc_state: Required sock_common.skc_state;
    skc_num: Required sock_common.skc_num;
    skc_dport: Required sock_common.skc_dport;
    skc_rcv_saddr: Required sock_common.skc_rcv_saddr;
    skc_daddr: Required sock_common.skc_daddr;
    // Only with CONFIG_IPV6.
    skc_v6_rcv_saddr: Optional sock_common.skc_v6_rcv_saddr;
    skc_v6_daddr: Optional sock_common.skc_v6_daddr;
    // Plain u16 fields since 5.6 (a bitfield before, below our 5.8 floor).
    sk_protocol: Required sock.sk_protocol;
    sk_type: Required sock.sk_type;
    sk_err: Required sock.sk_err;
    // Only with CONFIG_INET; tells a TCP Fast Open send's connect.
    tcp_fastopen_req: Optional tcp_sock.fastopen_req;
    // x86_64 only (CONFIG_THREAD_INFO_IN_TASK): TS_COMPAT in the status
    // tells an ia32 syscall; without them those are not traced.
    task_thread_info: Optional task_struct.thread_info;
    thread_info_status: Optional thread_info.status;
    // Only with CONFIG_IO_URING.
    io_kiocb_opcode: Optional io_kiocb.opcode;
    // What a multishot accept's completions name it by: its ring and
    // user_data (the first member of `cqe`, an io_cqe, since 5.19).
    io_kiocb_ctx: Optional io_kiocb.ctx;
    io_kiocb_user_data: Optional io_kiocb.cqe | user_data;
    // The request's arguments, once prepared (the hook reads them only
    // where the tracepoint passes the request, 5.19+). `file` is the first
    // member of the per-operation union before 6.0's io_cmd_data `cmd`:
    // both are where a request's command starts.
    io_kiocb_cmd: Optional io_kiocb.cmd | file;
    io_open_dfd: Optional io_open.dfd;
    io_open_filename: Optional io_open.filename;
    io_open_how: Optional io_open.how;
    io_open_file_slot: Optional io_open.file_slot;
    io_accept_file_slot: Optional io_accept.file_slot;
    // What a module load or unload names (absent without CONFIG_MODULES).
    module_name: Optional module.name;
    open_how_flags: Optional open_how.flags;
    open_how_mode: Optional open_how.mode;
    io_unlink_dfd: Optional io_unlink.dfd;
    io_unlink_flags: Optional io_unlink.flags;
    io_unlink_filename: Optional io_unlink.filename;
    io_mkdir_dfd: Optional io_mkdir.dfd;
    io_mkdir_mode: Optional io_mkdir.mode;
    io_mkdir_filename: Optional io_mkdir.filename;
    io_rename_old_dfd: Optional io_rename.old_dfd;
    io_rename_oldpath: Optional io_rename.oldpath;
    io_rename_newpath: Optional io_rename.newpath;
    io_rename_new_dfd: Optional io_rename.new_dfd;
    io_rename_flags: Optional io_rename.flags;
    io_link_old_dfd: Optional io_link.old_dfd;
    io_link_flags: Optional io_link.flags;
    io_link_new_dfd: Optional io_link.new_dfd;
    io_link_oldpath: Optional io_link.oldpath;
    io_link_newpath: Optional io_link.newpath;
    io_xattr_filename: Optional io_xattr.filename;
    // The kernel's copies of an xattr request's name and value (5.19+;
    // the struct is `xattr_ctx` before 6.13: see STRUCT_RENAMES).
    io_xattr_ctx: Optional io_xattr.ctx;
    xattr_ctx_kname: Optional kernel_xattr_ctx.kname;
    xattr_ctx_kvalue: Optional kernel_xattr_ctx.kvalue;
    xattr_ctx_size: Optional kernel_xattr_ctx.size;
    xattr_ctx_flags: Optional kernel_xattr_ctx.flags;
    xattr_name_name: Optional xattr_name.name;
    io_connect_addr: Optional io_connect.addr;
    io_connect_addr_len: Optional io_connect.addr_len;
    // fd-based requests (fsetxattr, ftruncate): the fd, and whether it is
    // a registered file's index. `flags` is a u64 since 6.10, a u32
    // before: its low word holds REQ_F_FIXED_FILE either way.
    io_kiocb_cqe: Optional io_kiocb.cqe;
    io_cqe_fd: Optional io_cqe.fd;
    io_kiocb_flags: Optional io_kiocb.flags;
    io_ftrunc_len: Optional io_ftrunc.len;
    filename_name: Optional filename.name;
    // The /proc/PID/mem hook and pidfd_getfd name the target process
    // through its struct pid.
    file_f_mode: Optional file.f_mode;
    proc_inode_vfs_inode: Optional proc_inode.vfs_inode;
    proc_inode_pid: Optional proc_inode.pid;
    pid_numbers: Optional pid.numbers;
    upid_nr: Optional upid.nr;
    inode_i_private: Optional inode.i_private;
    sb_magic: Optional super_block.s_magic;
    // Capabilities in a user namespace of the process's own (unshare -U,
    // rootless containers, browser sandboxes) are not the host's.
    cred_user_ns: Optional cred.user_ns;
    user_ns_level: Optional user_namespace.level;
    // What a clone made, whatever its arguments said: the child's
    // namespaces against its parent's.
    task_nsproxy: Optional task_struct.nsproxy;
    nsproxy_uts_ns: Optional nsproxy.uts_ns;
    nsproxy_ipc_ns: Optional nsproxy.ipc_ns;
    nsproxy_mnt_ns: Optional nsproxy.mnt_ns;
    nsproxy_pid_ns_for_children: Optional nsproxy.pid_ns_for_children;
    nsproxy_net_ns: Optional nsproxy.net_ns;
    nsproxy_time_ns_for_children: Optional nsproxy.time_ns_for_children;
    nsproxy_cgroup_ns: Optional nsproxy.cgroup_ns;
    // Where a setns left the caller, whatever fd it was given.
    mnt_ns_common: Optional mnt_namespace.ns;
    cgroup_ns_common: Optional cgroup_namespace.ns;
    uts_ns_common: Optional uts_namespace.ns;
    ipc_ns_common: Optional ipc_namespace.ns;
    user_ns_common: Optional user_namespace.ns;
    pid_ns_common: Optional pid_namespace.ns;
    net_ns_common: Optional net.ns;
    time_ns_common: Optional time_namespace.ns;
    ns_common_inum: Optional ns_common.inum;
}

/// Structs the table names as they are called now, and what they were
/// called before: `(now, before)`. A struct is looked up under its older
/// name only where the current one is absent.
const STRUCT_RENAMES: &[(&str, &str)] = &[
    // 6.13 (the *xattrat syscalls) renamed it.
    ("kernel_xattr_ctx", "xattr_ctx"),
];

/// Outcome of looking one field up.
#[derive(Debug, PartialEq, Eq)]
enum Found {
    At(u32),
    NoStruct,
    NoMember,
    Bitfield,
}

impl Found {
    fn describe(&self, spec: &FieldSpec) -> String {
        let mut name = format!("{}.{}", spec.strukt, spec.members[0]);
        for older in &spec.members[1..] {
            name += &format!(" (or {older})");
        }
        let why = match self {
            Found::At(_) => "found",
            Found::NoStruct => "no such struct",
            Found::NoMember => "no such member",
            Found::Bitfield => "a bitfield, not readable as bytes",
        };
        format!("{name} [{why}]")
    }
}

/// Struct lookups by name, one per struct however many fields it has: with
/// the mmap backend each costs a scan of the names.
struct StructCache<'a> {
    btf: &'a Btf,
    structs: HashMap<&'static str, Vec<Struct>>,
}

impl<'a> StructCache<'a> {
    fn new(btf: &'a Btf) -> Self {
        StructCache {
            btf,
            structs: HashMap::new(),
        }
    }

    fn find(&mut self, spec: &FieldSpec) -> Result<Found, OffsetsError> {
        if !self.structs.contains_key(spec.strukt) {
            let older = STRUCT_RENAMES
                .iter()
                .filter(|(now, _)| *now == spec.strukt)
                .map(|(_, before)| *before);
            let mut found = Vec::new();
            // The current name first; an older one only where it is absent.
            for name in std::iter::once(spec.strukt).chain(older) {
                found = btf::structs_named(self.btf, name).map_err(OffsetsError::Malformed)?;
                if !found.is_empty() {
                    break;
                }
            }
            self.structs.insert(spec.strukt, found);
        }
        let candidates = &self.structs[spec.strukt];
        if candidates.is_empty() {
            return Ok(Found::NoStruct);
        }
        // Names in order of preference, each in every same-named struct:
        // the current name wins wherever it is.
        for name in spec.members {
            for s in candidates {
                if let Some(at) = btf::member(self.btf, s, name).map_err(OffsetsError::Malformed)? {
                    return Ok(if at.bitfield {
                        Found::Bitfield
                    } else {
                        Found::At(at.bits / 8)
                    });
                }
            }
        }
        Ok(Found::NoMember)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::process::Command;
    use std::sync::OnceLock;

    use super::btf::testing::{BtfBuilder, M};
    use super::*;
    use sensor_common::names;

    // ---- Kernels described by hand ---------------------------------------

    /// A kernel described as struct → [(member, byte offset)], turned into
    /// BTF. Starts with every field of the table, at distinct non-zero
    /// offsets, so a test can then take one away or rename it.
    struct FakeKernel {
        structs: BTreeMap<&'static str, Vec<(&'static str, u32)>>,
        subsys_ids: Vec<(&'static str, u32)>,
        /// Whether `mem_open(inode, file)` is in its BTF.
        mem_open: bool,
    }

    impl FakeKernel {
        fn complete() -> Self {
            let mut structs: BTreeMap<&'static str, Vec<(&'static str, u32)>> = BTreeMap::new();
            for spec in FIELDS {
                let members = structs.entry(spec.strukt).or_default();
                let offset = 8 * (members.len() as u32 + 1);
                members.push((spec.members[0], offset));
            }
            FakeKernel {
                structs,
                subsys_ids: vec![
                    ("cpuset_cgrp_id", 0),
                    ("cpu_cgrp_id", 1),
                    ("memory_cgrp_id", 4),
                    ("pids_cgrp_id", 11),
                ],
                mem_open: true,
            }
        }

        fn without(mut self, strukt: &str, member: &str) -> Self {
            let members = self.structs.get_mut(strukt).expect("struct in the table");
            members.retain(|(m, _)| *m != member);
            self
        }

        fn renamed(mut self, strukt: &str, from: &str, to: &'static str) -> Self {
            let members = self.structs.get_mut(strukt).expect("struct in the table");
            members
                .iter_mut()
                .filter(|(m, _)| *m == from)
                .for_each(|(m, _)| *m = to);
            self
        }

        /// The struct called `now` in the table, under its older name.
        fn struct_renamed(mut self, now: &str, before: &'static str) -> Self {
            let members = self.structs.remove(now).expect("struct in the table");
            self.structs.insert(before, members);
            self
        }

        /// Where the description put a table field.
        fn offset_of(&self, spec: &FieldSpec) -> u32 {
            let members = &self.structs[spec.strukt];
            spec.members
                .iter()
                .find_map(|name| members.iter().find(|(m, _)| m == name).map(|(_, off)| *off))
                .expect("field in the description")
        }

        fn btf(&self) -> Btf {
            self.btf_with(|b, structs| {
                // 6.4+: the request alone.
                let req = b.ptr(structs["io_kiocb"]);
                b.tracepoint(names::TP_IO_URING_SUBMIT_REQ, &[req]);
                // Since 6.3: the ring, the request, the completion entry.
                let ring = b.strukt("io_ring_ctx", 8, &[]);
                let (ctx, void_ptr) = (b.ptr(ring), b.ptr(0));
                let entry = b.strukt("io_uring_cqe", 16, &[]);
                let cqe = b.ptr(entry);
                b.tracepoint(names::TP_IO_URING_COMPLETE, &[ctx, void_ptr, cqe]);
            })
        }

        /// Its BTF, with `more` adding types (it gets each struct's id).
        fn btf_with(&self, more: impl FnOnce(&mut BtfBuilder, &BTreeMap<&str, u32>)) -> Btf {
            let mut b = BtfBuilder::new();
            let u64_t = b.int("u64", 8);
            let mut ids = BTreeMap::new();
            for (name, members) in &self.structs {
                let members: Vec<M> = members
                    .iter()
                    .map(|(m, off)| M(m, u64_t, off * 8, 0))
                    .collect();
                ids.insert(
                    *name,
                    b.strukt(name, 8 * (members.len() as u32 + 2), &members),
                );
            }
            more(&mut b, &ids);
            if !self.subsys_ids.is_empty() {
                b.enumeration("cgroup_subsys_id", &self.subsys_ids);
            }
            // 5.12+: an idmap (user namespace before 6.3) in front of the dentry.
            b.function(
                "security_inode_setattr",
                &[("idmap", u64_t), ("dentry", u64_t), ("attr", u64_t)],
            );
            if self.mem_open {
                b.function(names::FN_MEM_OPEN, &[("inode", u64_t), ("file", u64_t)]);
            }
            b.btf()
        }
    }

    #[test]
    fn every_kernel_offsets_field_is_in_the_table() {
        // assemble() already fails to compile otherwise; this pins the one
        // field resolved outside the table.
        let words = std::mem::size_of::<KernelOffsets>() / 4;
        assert_eq!(
            FIELDS.len() + 7,
            words,
            "the table plus cgroup_subsys_index, setattr_dentry_arg, the two io_uring submit \
             arguments and the three completion arguments"
        );
    }

    #[test]
    fn a_kernel_with_every_field_resolves_each_to_its_offset() {
        let kernel = FakeKernel::complete();
        let r = resolve_btf(&kernel.btf(), CgroupMode::Legacy).expect("resolves");
        assert!(r.missing.is_empty(), "missing: {:?}", r.missing);
        for spec in FIELDS {
            assert_eq!(
                field_value(&r.offsets, spec.field),
                kernel.offset_of(spec),
                "{}",
                spec.field
            );
        }
        assert_eq!(r.offsets.cgroup_subsys_index, 4, "memory_cgrp_id");
        assert_eq!(r.offsets.setattr_dentry_arg, 1, "dentry after the idmap");
        assert_eq!(r.offsets.io_uring_req_arg, 0, "the request alone");
        assert_eq!(r.offsets.io_uring_opcode_arg, OFFSET_MISSING);
        assert_eq!(r.io_uring_tracepoint, Some(names::TP_IO_URING_SUBMIT_REQ));
        assert_eq!(
            [
                r.offsets.io_uring_complete_req_arg,
                r.offsets.io_uring_complete_res_arg,
                r.offsets.io_uring_complete_cqe_arg
            ],
            [1, OFFSET_MISSING, 2],
            "the request, then the completion entry"
        );
        assert_eq!(r.io_uring_complete, Ok(()));
        let unified = resolve_btf(&kernel.btf(), CgroupMode::Unified).expect("resolves");
        assert_eq!(
            unified.offsets.cgroup_subsys_index, OFFSET_MISSING,
            "v2: dfl_cgrp"
        );
        assert!(unified.missing.is_empty());
    }

    /// The completion tracepoint's shapes: 5.19 to 6.2 (the request, then
    /// the CQE's fields), and two without the request (5.10, 5.13 to
    /// 5.18), where its hook is not loaded; nor where the submit hook has
    /// no request to remember (the opcode alone).
    #[test]
    fn a_struct_is_found_under_its_older_name_where_the_new_one_is_absent() {
        // Before 6.13: xattr_ctx, not kernel_xattr_ctx.
        let complete = FakeKernel::complete();
        let older = FakeKernel::complete().struct_renamed("kernel_xattr_ctx", "xattr_ctx");
        let r = resolve_btf(&older.btf(), CgroupMode::Unified).expect("resolves");
        assert!(r.missing.is_empty(), "missing: {:?}", r.missing);
        let kname = FIELDS
            .iter()
            .find(|f| f.field == "xattr_ctx_kname")
            .expect("in the table");
        assert_eq!(r.offsets.xattr_ctx_kname, complete.offset_of(kname));
        // Neither name: missing, as any absent struct.
        let neither = FakeKernel::complete().struct_renamed("kernel_xattr_ctx", "other_ctx");
        let r = resolve_btf(&neither.btf(), CgroupMode::Unified).expect("resolves");
        assert!(r.missing.contains(&"xattr_ctx_kname"));
        assert_eq!(r.offsets.xattr_ctx_kname, OFFSET_MISSING);
    }

    #[test]
    fn the_io_uring_completion_hook_follows_its_tracepoints_shape() {
        let kernel = FakeKernel::complete();
        let complete = names::TP_IO_URING_COMPLETE;
        let resolve = |btf: Btf| resolve_btf(&btf, CgroupMode::Unified).expect("resolves");
        let positions = |r: &ResolvedOffsets| {
            [
                r.offsets.io_uring_complete_req_arg,
                r.offsets.io_uring_complete_res_arg,
                r.offsets.io_uring_complete_cqe_arg,
            ]
        };
        let submit_req = |b: &mut BtfBuilder, structs: &BTreeMap<&str, u32>| {
            let req = b.ptr(structs["io_kiocb"]);
            b.tracepoint(names::TP_IO_URING_SUBMIT_REQ, &[req]);
        };

        let r = resolve(kernel.btf_with(|b, structs| {
            submit_req(b, structs);
            let (void_ptr, u64_t) = (b.ptr(0), b.int("u64", 8));
            let (int, unsigned) = (b.int("int", 4), b.int("unsigned int", 4));
            b.tracepoint(
                complete,
                &[void_ptr, void_ptr, u64_t, int, unsigned, u64_t, u64_t],
            );
        }));
        assert_eq!(r.io_uring_complete, Ok(()));
        assert_eq!(positions(&r), [1, 3, OFFSET_MISSING]);

        for (shape, args) in [
            ("5.10", &["ptr", "u64", "long"][..]),
            ("5.13", &["ptr", "u64", "int", "unsigned int"][..]),
            ("none", &[][..]),
        ] {
            let r = resolve(kernel.btf_with(|b, structs| {
                submit_req(b, structs);
                if !args.is_empty() {
                    let ids: Vec<u32> = args
                        .iter()
                        .map(|a| match *a {
                            "ptr" => b.ptr(0),
                            "u64" | "long" => b.int(a, 8),
                            _ => b.int(a, 4),
                        })
                        .collect();
                    b.tracepoint(complete, &ids);
                }
            }));
            assert!(r.io_uring_complete.is_err(), "{shape}");
            assert_eq!(positions(&r), [OFFSET_MISSING; 3], "{shape}");
            assert!(r.missing.contains(&"io_uring_complete_req_arg"), "{shape}");
        }

        // A completion that passes the request, but a submit hook that
        // has only the opcode.
        let r = resolve(kernel.btf_with(|b, _| {
            let (ctx, u8_t, u64_t) = (b.ptr(0), b.int("u8", 1), b.int("u64", 8));
            b.tracepoint(names::TP_IO_URING_SUBMIT_SQE, &[ctx, u8_t, u64_t]);
            let cqe = b.strukt("io_uring_cqe", 16, &[]);
            let (void_ptr, cqe_ptr) = (b.ptr(0), b.ptr(cqe));
            b.tracepoint(complete, &[void_ptr, void_ptr, cqe_ptr]);
        }));
        assert!(r.io_uring_complete.is_err());
        assert_eq!(positions(&r), [OFFSET_MISSING; 3]);
    }

    /// The submit tracepoint's older shapes: 5.19–6.3 (`io_uring_submit_sqe`
    /// with the request second), 5.10–5.18 (the opcode as a `u8`, no
    /// request), and one the hook cannot read.
    #[test]
    fn the_io_uring_hook_follows_its_tracepoints_shape() {
        let kernel = FakeKernel::complete();
        let sqe = names::TP_IO_URING_SUBMIT_SQE;
        let resolve = |btf: Btf| resolve_btf(&btf, CgroupMode::Unified).expect("resolves");

        let r = resolve(kernel.btf_with(|b, structs| {
            let (ctx, req, u8_t) = (b.ptr(0), b.ptr(structs["io_kiocb"]), b.int("u8", 1));
            b.tracepoint(sqe, &[ctx, req, u8_t]);
        }));
        assert_eq!(r.io_uring_tracepoint, Some(sqe));
        assert_eq!(
            [r.offsets.io_uring_req_arg, r.offsets.io_uring_opcode_arg],
            [1, OFFSET_MISSING]
        );

        let r = resolve(kernel.btf_with(|b, _| {
            let (ctx, u8_t, u64_t) = (b.ptr(0), b.int("u8", 1), b.int("u64", 8));
            b.tracepoint(sqe, &[ctx, u8_t, u64_t]);
        }));
        assert_eq!(r.io_uring_tracepoint, Some(sqe));
        assert_eq!(
            [r.offsets.io_uring_req_arg, r.offsets.io_uring_opcode_arg],
            [OFFSET_MISSING, 1]
        );

        // The request, but no opcode field to read through it; and no
        // tracepoint at all.
        let without_opcode = FakeKernel::complete().without("io_kiocb", "opcode");
        for r in [
            resolve(without_opcode.btf()),
            resolve(kernel.btf_with(|_, _| {})),
        ] {
            assert_eq!(r.io_uring_tracepoint, None);
            assert_eq!(
                [r.offsets.io_uring_req_arg, r.offsets.io_uring_opcode_arg],
                [OFFSET_MISSING; 2]
            );
            assert!(r.missing.contains(&"io_uring_req_arg"), "{:?}", r.missing);
        }
    }

    /// The /proc/PID/mem hook needs mem_open's prototype and the fields
    /// it reads; without either, it says which.
    #[test]
    fn the_proc_mem_hook_needs_mem_open_and_the_procfs_fields() {
        let resolve = |kernel: FakeKernel| {
            resolve_btf(&kernel.btf(), CgroupMode::Unified)
                .expect("resolves")
                .proc_mem
        };
        assert_eq!(resolve(FakeKernel::complete()), Ok(()));
        let mut without_function = FakeKernel::complete();
        without_function.mem_open = false;
        let why = resolve(without_function).expect_err("no mem_open");
        assert!(why.contains("mem_open"), "{why}");
        let why = resolve(FakeKernel::complete().without("proc_inode", "pid"))
            .expect_err("no proc_inode.pid");
        assert!(why.contains("proc_inode_pid"), "{why}");
    }

    #[test]
    fn a_missing_required_field_is_an_error_naming_it() {
        let btf = FakeKernel::complete().without("mm_struct", "arg_end").btf();
        let err = resolve_btf(&btf, CgroupMode::Unified).expect_err("arg_end is required");
        let OffsetsError::Required { fields } = &err else {
            panic!("wrong error: {err}")
        };
        assert_eq!(fields, &["mm_struct.arg_end [no such member]"]);
        assert!(err.to_string().contains("mm_struct.arg_end"), "{err}");
    }

    #[test]
    fn every_required_field_missing_is_named_at_once() {
        let mut kernel = FakeKernel::complete();
        kernel.structs.remove("cred");
        let kernel = kernel.without("task_struct", "start_boottime");
        let err = resolve_btf(&kernel.btf(), CgroupMode::Unified).expect_err("cred is required");
        let message = err.to_string();
        for name in [
            "cred.uid",
            "cred.fsgid",
            "[no such struct]",
            "task_struct.start_boottime (or real_start_time)",
        ] {
            assert!(message.contains(name), "{name} not in: {message}");
        }
    }

    #[test]
    fn a_missing_optional_field_is_listed_by_its_offsets_name() {
        // A kernel without CONFIG_AUDIT.
        let btf = FakeKernel::complete()
            .without("task_struct", "loginuid")
            .without("task_struct", "sessionid")
            .btf();
        let r = resolve_btf(&btf, CgroupMode::Unified).expect("loginuid is optional");
        assert_eq!(r.missing, ["task_loginuid", "task_sessionid"]);
        assert_eq!(r.offsets.task_loginuid, OFFSET_MISSING);
        assert_eq!(r.offsets.task_sessionid, OFFSET_MISSING);
        assert_ne!(r.offsets.task_pid, OFFSET_MISSING);
    }

    #[test]
    fn older_kernels_names_are_followed() {
        // Before 5.5: real_start_time. Before 6.15: kernfs_node.parent.
        let kernel = FakeKernel::complete()
            .renamed("task_struct", "start_boottime", "real_start_time")
            .renamed("kernfs_node", "__parent", "parent");
        let r = resolve_btf(&kernel.btf(), CgroupMode::Unified).expect("resolves");
        assert!(r.missing.is_empty(), "missing: {:?}", r.missing);
        let spec = |field| FIELDS.iter().find(|s| s.field == field).expect("in table");
        assert_eq!(
            r.offsets.task_start_boottime,
            kernel.offset_of(spec("task_start_boottime"))
        );
        assert_eq!(
            r.offsets.kernfs_parent,
            kernel.offset_of(spec("kernfs_parent"))
        );
    }

    #[test]
    fn a_required_field_that_became_a_bitfield_is_refused() {
        let mut b = BtfBuilder::new();
        let u32_t = b.int("u32", 4);
        b.strukt(
            "task_struct",
            8,
            &[M("pid", u32_t, 0, 20), M("tgid", u32_t, 32, 0)],
        );
        let err = resolve_btf(&b.btf(), CgroupMode::Unified).expect_err("pid is a bitfield");
        assert!(
            err.to_string().contains("task_struct.pid [a bitfield"),
            "{err}"
        );
        assert!(!err.to_string().contains("task_struct.tgid"), "{err}");
    }

    #[test]
    fn v1_without_a_known_controller_is_reported_missing() {
        let mut kernel = FakeKernel::complete();
        kernel.subsys_ids = vec![("cpuset_cgrp_id", 0)];
        let r = resolve_btf(&kernel.btf(), CgroupMode::Legacy).expect("resolves");
        assert_eq!(r.offsets.cgroup_subsys_index, OFFSET_MISSING);
        assert_eq!(r.missing, ["cgroup_subsys_index"]);
        // On v2 the controllers do not matter.
        let r = resolve_btf(&kernel.btf(), CgroupMode::Unified).expect("resolves");
        assert!(r.missing.is_empty(), "missing: {:?}", r.missing);
    }

    // ---- The cgroup decision ------------------------------------------------

    #[test]
    fn cgroup_hierarchy_choice() {
        let ids = |n: &str| match n {
            "memory_cgrp_id" => Some(4),
            "pids_cgrp_id" => Some(11),
            "cpu_cgrp_id" => Some(1),
            _ => None,
        };
        assert_eq!(
            choose_cgroup_hierarchy(CgroupMode::Unified, ids),
            CgroupHierarchy::Unified
        );
        assert_eq!(
            choose_cgroup_hierarchy(CgroupMode::Legacy, ids),
            CgroupHierarchy::V1 {
                controller: "memory_cgrp_id",
                index: 4
            }
        );
        // Without CONFIG_MEMCG: pids, then cpu.
        let no_memcg = |n: &str| if n == "memory_cgrp_id" { None } else { ids(n) };
        assert_eq!(
            choose_cgroup_hierarchy(CgroupMode::Legacy, no_memcg).subsys_index(),
            11
        );
        let only_cpu = |n: &str| (n == "cpu_cgrp_id").then_some(1);
        assert_eq!(
            choose_cgroup_hierarchy(CgroupMode::Legacy, only_cpu).subsys_index(),
            1
        );
        assert_eq!(
            choose_cgroup_hierarchy(CgroupMode::Legacy, |_| None),
            CgroupHierarchy::V1Unknown
        );
        assert_eq!(CgroupHierarchy::Unified.subsys_index(), OFFSET_MISSING);
        assert_eq!(CgroupHierarchy::V1Unknown.subsys_index(), OFFSET_MISSING);
        // A value that cannot be an index is not taken for one.
        let huge = |n: &str| {
            if n == "memory_cgrp_id" {
                Some(1 << 40)
            } else {
                ids(n)
            }
        };
        assert_eq!(
            choose_cgroup_hierarchy(CgroupMode::Legacy, huge).subsys_index(),
            11
        );
    }

    #[test]
    fn cgroup_mode_is_unified_only_when_cgroup2_is_the_root() {
        let root = std::env::temp_dir().join(format!("sensor-cgroup-mode-{}", std::process::id()));
        std::fs::create_dir_all(root.join("unified")).expect("temp dir");
        // Hybrid: v1 controllers at the root, cgroup2 under unified/.
        std::fs::write(root.join("unified/cgroup.controllers"), "").expect("write");
        let hybrid = CgroupMode::detect_at(&root);
        std::fs::write(root.join("cgroup.controllers"), "cpu memory pids").expect("write");
        let unified = CgroupMode::detect_at(&root);
        std::fs::remove_dir_all(&root).ok();
        assert_eq!(hybrid, CgroupMode::Legacy);
        assert_eq!(unified, CgroupMode::Unified);
        eprintln!("this host's cgroup mode: {:?}", CgroupMode::detect());
    }

    #[test]
    fn a_missing_btf_file_says_what_the_kernel_needs() {
        let err = resolve_from_file(Path::new("/nonexistent/vmlinux")).expect_err("no such file");
        assert!(matches!(err, OffsetsError::BtfMissing { .. }), "{err:?}");
        let message = err.to_string();
        assert!(
            message.contains("/nonexistent/vmlinux") && message.contains("CONFIG_DEBUG_INFO_BTF"),
            "{message}"
        );
    }

    // ---- This kernel --------------------------------------------------------

    /// The running kernel's BTF, opened once for all tests; None (with the
    /// reason printed) on a kernel without it.
    fn kernel_btf() -> Option<&'static Btf> {
        static BTF: OnceLock<Option<Btf>> = OnceLock::new();
        let btf = BTF
            .get_or_init(|| btf::open(Path::new(VMLINUX_BTF)).ok())
            .as_ref();
        if btf.is_none() {
            eprintln!(
                "SKIPPED: {VMLINUX_BTF} is not readable (kernel without CONFIG_DEBUG_INFO_BTF?)"
            );
        }
        btf
    }

    fn struct_size(btf: &Btf, name: &str) -> u32 {
        let found = btf::structs_named(btf, name).expect("lookup");
        found
            .first()
            .unwrap_or_else(|| panic!("struct {name}"))
            .size() as u32
    }

    #[test]
    fn this_kernel_resolves_with_every_required_field() {
        if kernel_btf().is_none() {
            return;
        }
        let r =
            resolve_running_kernel().unwrap_or_else(|e| panic!("this kernel's BTF resolves: {e}"));
        // Which optional fields a kernel lacks depends on its config; the
        // bpftool test checks that each absence is real.
        eprintln!(
            "cgroup mode {:?}; optional fields missing: {:?}",
            CgroupMode::detect(),
            r.missing
        );
    }

    #[test]
    fn offsets_on_this_kernel_obey_layouts_that_hold_on_every_kernel() {
        let Some(btf) = kernel_btf() else { return };
        let o = resolve_btf(btf, CgroupMode::Legacy)
            .expect("resolves")
            .offsets;
        // `pid_t pid; pid_t tgid;` are adjacent in task_struct, randomized or not
        // (they sit outside the randomized part).
        assert_eq!(o.task_tgid, o.task_pid + 4);
        // qstr: len inside the anonymous union and struct, name after the union.
        assert_eq!((o.qstr_len, o.qstr_name), (4, 8));
        // struct path { struct vfsmount *mnt; struct dentry *dentry; }
        assert_eq!((o.path_mnt, o.path_dentry), (0, 8));
        // kuid_t uid, gid, suid, sgid, euid, egid, fsuid, fsgid: consecutive.
        assert_eq!(
            [
                o.cred_gid,
                o.cred_suid,
                o.cred_sgid,
                o.cred_euid,
                o.cred_egid,
                o.cred_fsuid,
                o.cred_fsgid
            ],
            [4, 8, 12, 16, 20, 24, 28].map(|d| o.cred_uid + d)
        );
        assert_eq!(o.mm_arg_end, o.mm_arg_start + 8);
        assert_eq!(o.vfsmount_root, 0, "mnt_root is vfsmount's first member");
        // Every field lies inside its struct; a flexible array (pid's
        // numbers[] since 6.x) starts at its end.
        for spec in FIELDS {
            let value = field_value(&o, spec.field);
            let flexible = spec.field == "pid_numbers";
            if value != OFFSET_MISSING {
                assert!(
                    value < struct_size(btf, spec.strukt)
                        || (flexible && value == struct_size(btf, spec.strukt)),
                    "{} = {value} outside struct {}",
                    spec.field,
                    spec.strukt
                );
            }
        }
        // signal_live is read as the atomic_t's int: counter must be at 0.
        let atomic = btf.resolve_types_by_name("atomic_t").expect("lookup");
        let Some(btf_rs::Type::Typedef(td)) = atomic.first() else {
            panic!("atomic_t is a typedef")
        };
        let btf_rs::Type::Struct(s) = btf.resolve_chained_type(td).expect("atomic_t's struct")
        else {
            panic!("atomic_t is a typedef of a struct")
        };
        assert_eq!(
            btf::member(btf, &s, "counter")
                .expect("lookup")
                .map(|m| m.bits),
            Some(0)
        );
    }

    // ---- Cross-check with bpftool ---------------------------------------------

    /// One type of `bpftool btf dump format raw`.
    #[derive(Default)]
    struct RawType {
        kind: String,
        name: String,
        size: u64,
        type_id: u32,
        nelems: u64,
        /// (name, type id, bit offset, bitfield size)
        members: Vec<(String, u32, u32, u32)>,
        enumerators: Vec<(String, i128)>,
    }

    /// Parses lines like `[114] STRUCT 'task_struct' size=3264 vlen=248`
    /// followed by `\t'pid' type_id=68 bits_offset=10112`.
    fn parse_raw(text: &str) -> HashMap<u32, RawType> {
        let mut types = HashMap::new();
        let mut current: Option<u32> = None;
        let attrs = |s: &str| -> HashMap<String, String> {
            s.split_whitespace()
                .filter_map(|kv| kv.split_once('='))
                // VAR lines separate attributes with commas.
                .map(|(k, v)| (k.to_string(), v.trim_end_matches(',').to_string()))
                .collect()
        };
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix('[') {
                let (id, rest) = rest.split_once("] ").expect("[id] KIND");
                let (kind, rest) = rest.split_once(" '").expect("KIND 'name'");
                let (name, rest) = rest.split_once('\'').expect("closing quote");
                let a = attrs(rest);
                let num = |k: &str| {
                    a.get(k)
                        .map(|v| v.parse::<u64>().expect("number"))
                        .unwrap_or(0)
                };
                let id: u32 = id.parse().expect("type id");
                types.insert(
                    id,
                    RawType {
                        kind: kind.to_string(),
                        name: name.to_string(),
                        size: num("size"),
                        type_id: num("type_id") as u32,
                        nelems: num("nr_elems"),
                        ..RawType::default()
                    },
                );
                current = Some(id);
            } else if let (Some(id), Some(rest)) = (current, line.strip_prefix("\t'")) {
                let (name, rest) = rest.split_once('\'').expect("member name");
                let a = attrs(rest);
                let t = types.get_mut(&id).expect("current type");
                if let Some(val) = a.get("val") {
                    // ENUM64 values carry a C suffix: 4ULL.
                    let val = val
                        .trim_end_matches(['U', 'L'])
                        .parse()
                        .expect("enum value");
                    t.enumerators.push((name.to_string(), val));
                } else if let Some(bits) = a.get("bits_offset") {
                    let num = |k: &str| {
                        a.get(k)
                            .map(|v| v.parse::<u32>().expect("number"))
                            .unwrap_or(0)
                    };
                    t.members.push((
                        name.to_string(),
                        num("type_id"),
                        bits.parse().expect("bits"),
                        num("bitfield_size"),
                    ));
                }
            }
        }
        types
    }

    /// Past typedefs and qualifiers.
    fn raw_peel(types: &HashMap<u32, RawType>, mut id: u32) -> u32 {
        loop {
            match types.get(&id) {
                Some(t)
                    if matches!(
                        t.kind.as_str(),
                        "TYPEDEF" | "CONST" | "VOLATILE" | "RESTRICT" | "TYPE_TAG"
                    ) =>
                {
                    id = t.type_id
                }
                _ => return id,
            }
        }
    }

    fn raw_size(types: &HashMap<u32, RawType>, id: u32) -> u64 {
        let t = &types[&raw_peel(types, id)];
        match t.kind.as_str() {
            "PTR" => 8,
            "ARRAY" => t.nelems * raw_size(types, t.type_id),
            _ => t.size,
        }
    }

    /// (bit offset, member type id) of `name` in struct/union `id`, through
    /// anonymous members: written apart from btf.rs on purpose.
    fn raw_member(types: &HashMap<u32, RawType>, id: u32, name: &str) -> Option<(u32, u32)> {
        for (member, type_id, bits, _) in &types[&id].members {
            if member == name {
                return Some((*bits, *type_id));
            }
            let inner = raw_peel(types, *type_id);
            if member == "(anon)" && matches!(types[&inner].kind.as_str(), "STRUCT" | "UNION") {
                if let Some((b, t)) = raw_member(types, inner, name) {
                    return Some((bits + b, t));
                }
            }
        }
        None
    }

    #[test]
    fn offsets_on_this_kernel_match_bpftool() {
        let Some(btf) = kernel_btf() else { return };
        let output = match Command::new("bpftool")
            .args(["btf", "dump", "file", VMLINUX_BTF, "format", "raw"])
            .output()
        {
            Ok(output) if output.status.success() => output,
            Ok(output) => {
                let stderr = String::from_utf8_lossy(&output.stderr);
                eprintln!("SKIPPED: bpftool failed ({}): {stderr}", output.status);
                return;
            }
            Err(e) => {
                eprintln!(
                    "SKIPPED: bpftool is not installed ({e}); `apt-get install bpftool` to run this check"
                );
                return;
            }
        };
        let types = parse_raw(&String::from_utf8(output.stdout).expect("utf-8 dump"));
        let ours = resolve_btf(btf, CgroupMode::Legacy).expect("resolves");
        for spec in FIELDS {
            let candidates: Vec<u32> = types
                .iter()
                .filter(|(_, t)| t.kind == "STRUCT" && t.name == spec.strukt)
                .map(|(id, _)| *id)
                .collect();
            let found = spec.members.iter().find_map(|m| {
                candidates
                    .iter()
                    .find_map(|id| raw_member(&types, *id, m).map(|f| (*id, f)))
            });
            let value = field_value(&ours.offsets, spec.field);
            match found {
                Some((struct_id, (bits, type_id))) => {
                    assert_eq!(
                        bits % 8,
                        0,
                        "{} is not byte-aligned per bpftool",
                        spec.field
                    );
                    assert_eq!(value, bits / 8, "{}: ours vs bpftool", spec.field);
                    let end = u64::from(value) + raw_size(&types, type_id);
                    assert!(
                        end <= types[&struct_id].size,
                        "{} ends at {end}, past its struct",
                        spec.field
                    );
                }
                None => assert_eq!(
                    value, OFFSET_MISSING,
                    "{}: bpftool has no such member",
                    spec.field
                ),
            }
        }
        let memory = types
            .values()
            .filter(|t| t.kind == "ENUM" && t.name == "cgroup_subsys_id")
            .find_map(|t| {
                t.enumerators
                    .iter()
                    .find(|(n, _)| n == "memory_cgrp_id")
                    .map(|(_, v)| *v as u32)
            });
        if let Some(memory) = memory {
            assert_eq!(ours.offsets.cgroup_subsys_index, memory, "memory_cgrp_id");
        }
    }
}
