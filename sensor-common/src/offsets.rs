//! Kernel struct field offsets, resolved by the daemon from the running
//! kernel's BTF (`/sys/kernel/btf/vmlinux`) and written into the eBPF
//! object's `OFFSETS` global before load.
//!
//! This is our CO-RE: one object, no offsets compiled in for one kernel.
//! aya-ebpf (Rust) cannot emit clang's `preserve_access_index` relocations,
//! so instead of relocating instructions we relocate data: every kernel
//! struct read goes through `base + OFFSETS.<field>`. A field the running
//! kernel lacks is [`OFFSET_MISSING`] and the eBPF side skips it (for example
//! `loginuid` without CONFIG_AUDIT).

/// Marks a field that the running kernel's BTF does not have.
pub const OFFSET_MISSING: u32 = u32::MAX;

/// Byte offsets of the kernel struct fields the programs read. Field names
/// are `<struct>_<member>`; nested members are resolved to one offset
/// (e.g. `qstr_len` is inside an anonymous union).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelOffsets {
    // struct task_struct
    pub task_pid: u32,
    pub task_tgid: u32,
    pub task_real_parent: u32,
    pub task_group_leader: u32,
    pub task_start_boottime: u32,
    pub task_real_cred: u32,
    pub task_mm: u32,
    pub task_fs: u32,
    pub task_signal: u32,
    pub task_loginuid: u32,
    pub task_sessionid: u32,
    pub task_exit_code: u32,
    pub task_comm: u32,
    pub task_cgroups: u32,
    // struct cred (kuid_t/kgid_t are one u32)
    pub cred_uid: u32,
    pub cred_gid: u32,
    pub cred_suid: u32,
    pub cred_sgid: u32,
    pub cred_euid: u32,
    pub cred_egid: u32,
    pub cred_fsuid: u32,
    pub cred_fsgid: u32,
    // struct mm_struct
    pub mm_arg_start: u32,
    pub mm_arg_end: u32,
    pub mm_exe_file: u32,
    // struct fs_struct / struct path
    pub fs_pwd: u32,
    pub path_mnt: u32,
    pub path_dentry: u32,
    // struct dentry / struct qstr
    pub dentry_parent: u32,
    pub dentry_name: u32,
    pub dentry_inode: u32,
    pub qstr_len: u32,
    pub qstr_name: u32,
    // struct mount / struct vfsmount
    /// Offset of the embedded `struct vfsmount mnt` inside `struct mount`
    /// (the kernel's `real_mount()` is a container_of on it).
    pub mount_mnt: u32,
    pub mount_parent: u32,
    pub mount_mountpoint: u32,
    pub vfsmount_root: u32,
    // struct linux_binprm / struct file
    pub binprm_file: u32,
    pub file_path: u32,
    // struct signal_struct / struct tty_struct
    pub signal_live: u32,
    pub signal_tty: u32,
    pub tty_name: u32,
    // cgroups: css_set, cgroup_subsys_state, cgroup, kernfs_node
    pub css_set_dfl_cgrp: u32,
    pub css_set_subsys: u32,
    pub css_cgroup: u32,
    pub cgroup_kn: u32,
    /// `kernfs_node.parent`, renamed `__parent` in Linux 6.15.
    pub kernfs_parent: u32,
    pub kernfs_name: u32,
    pub kernfs_id: u32,
    // struct cred capability sets (kernel_cap_t: a u64 since 6.3, two u32
    // before; the same 8 little-endian bytes either way)
    pub cred_cap_inheritable: u32,
    pub cred_cap_permitted: u32,
    pub cred_cap_effective: u32,
    // fd -> struct file: task->files->fdt->fd[n]
    pub task_files: u32,
    pub files_fdt: u32,
    pub fdtable_max_fds: u32,
    pub fdtable_fd: u32,
    /// `files_struct.fd_array`: the fd table's first NR_OPEN_DEFAULT (64)
    /// slots, embedded, which `fdt->fd` points to until the table grows.
    /// Reached from the task with plain loads only (see
    /// `fd_file_typed` in the eBPF crate).
    pub files_fd_array: u32,
    // struct file / struct inode / struct super_block
    pub file_inode: u32,
    /// `umode_t i_mode`: a u16.
    pub inode_mode: u32,
    pub inode_uid: u32,
    pub inode_gid: u32,
    pub inode_ino: u32,
    pub inode_sb: u32,
    /// `i_nlink`, inside an anonymous union with `__i_nlink`.
    pub inode_nlink: u32,
    /// `i_generation`: tells a file from a later one given the same inode
    /// number (see `crate::InodeGeneration`).
    pub inode_generation: u32,
    pub sb_dev: u32,
    // struct file -> struct socket -> struct sock (sock_common is its
    // first member, so skc_* offsets apply to the sock pointer).
    pub file_private_data: u32,
    pub socket_sk: u32,
    pub skc_family: u32,
    /// `volatile unsigned char skc_state`: the TCP state.
    pub skc_state: u32,
    pub skc_num: u32,
    pub skc_dport: u32,
    pub skc_rcv_saddr: u32,
    pub skc_daddr: u32,
    pub skc_v6_rcv_saddr: u32,
    pub skc_v6_daddr: u32,
    pub sk_protocol: u32,
    pub sk_type: u32,
    pub sk_err: u32,
    /// `struct tcp_sock`'s `fastopen_req` (a `struct sock` is where a
    /// `tcp_sock` starts): set while a TCP Fast Open send connects it.
    pub tcp_fastopen_req: u32,
    /// Position of the `dentry` argument of `security_inode_setattr`
    /// (0 before 5.12, 1 after an idmap/user-namespace argument was added
    /// in front), or [`OFFSET_MISSING`]. Not an offset: a function
    /// signature resolved from BTF the same way.
    pub setattr_dentry_arg: u32,
    /// Index into `css_set.subsys[]` of the cgroup v1 hierarchy whose path
    /// names containers (from BTF's `enum cgroup_subsys_id`), or
    /// [`OFFSET_MISSING`] to use the unified (v2) hierarchy, `dfl_cgrp`.
    pub cgroup_subsys_index: u32,
    /// `task_struct.thread_info` (x86: its first member) and
    /// `thread_info.status`, where `TS_COMPAT` marks an ia32 syscall; only
    /// on x86_64.
    pub task_thread_info: u32,
    pub thread_info_status: u32,
    /// `io_kiocb.opcode` (a u8): an io_uring request's operation.
    pub io_kiocb_opcode: u32,
    /// `io_kiocb.ctx` (its ring) and its `user_data` (`io_kiocb.cqe`,
    /// whose first member it is since 5.19, or `io_kiocb.user_data`):
    /// what the completions of a multishot request name it by.
    pub io_kiocb_ctx: u32,
    pub io_kiocb_user_data: u32,
    /// Where a request's prepared command starts (`io_kiocb.cmd`, or the
    /// union of per-operation structs it replaced in 6.0: the same place),
    /// and the fields the io_uring hook reads there, each relative to it.
    pub io_kiocb_cmd: u32,
    pub io_open_dfd: u32,
    pub io_open_filename: u32,
    pub io_open_how: u32,
    /// An open into a registered file's slot (non-zero, 5.15+) installs
    /// no fd: its result is 0.
    pub io_open_file_slot: u32,
    /// An accept into a registered file's slot likewise (5.15+): its
    /// result is no fd of the process's.
    pub io_accept_file_slot: u32,
    /// `module.name`: absent without module support.
    pub module_name: u32,
    pub open_how_flags: u32,
    pub open_how_mode: u32,
    pub io_unlink_dfd: u32,
    pub io_unlink_flags: u32,
    pub io_unlink_filename: u32,
    pub io_mkdir_dfd: u32,
    pub io_mkdir_mode: u32,
    pub io_mkdir_filename: u32,
    pub io_rename_old_dfd: u32,
    pub io_rename_oldpath: u32,
    pub io_rename_newpath: u32,
    /// A rename's second directory fd and its `RENAME_*` flags; a hard
    /// link's first (the existing file's).
    pub io_rename_new_dfd: u32,
    pub io_rename_flags: u32,
    pub io_link_old_dfd: u32,
    /// A hard link's `AT_*` flags (`AT_EMPTY_PATH`, `AT_SYMLINK_FOLLOW`).
    pub io_link_flags: u32,
    pub io_link_new_dfd: u32,
    pub io_link_oldpath: u32,
    pub io_link_newpath: u32,
    pub io_xattr_filename: u32,
    /// An xattr request's `xattr_ctx` (`kernel_xattr_ctx` since 6.13),
    /// and its kernel copies of the name and value, made when the request
    /// was prepared.
    pub io_xattr_ctx: u32,
    pub xattr_ctx_kname: u32,
    pub xattr_ctx_kvalue: u32,
    pub xattr_ctx_size: u32,
    pub xattr_ctx_flags: u32,
    pub xattr_name_name: u32,
    pub io_connect_addr: u32,
    pub io_connect_addr_len: u32,
    /// The fd a request acts on (`io_kiocb.cqe.fd`, set when prepared),
    /// the request's flags (`REQ_F_FIXED_FILE`: the fd is an index in the
    /// ring's registered files), and an ftruncate's length.
    pub io_kiocb_cqe: u32,
    pub io_cqe_fd: u32,
    pub io_kiocb_flags: u32,
    pub io_ftrunc_len: u32,
    pub filename_name: u32,
    /// Position of the io_uring submit tracepoint's `struct io_kiocb *`
    /// argument (5.19+), or [`OFFSET_MISSING`]. Not an offset, like
    /// `setattr_dentry_arg`.
    pub io_uring_req_arg: u32,
    /// Position of its `u8 opcode` argument, where it has no request
    /// (5.10–5.18), or [`OFFSET_MISSING`].
    pub io_uring_opcode_arg: u32,
    /// Positions in the completion tracepoint (`io_uring_complete`) where
    /// it passes the request (5.19+): the request (`void *req`), and
    /// either the result as an argument (`int res`, the CQE flags right
    /// after it; 5.19 to 6.2) or the completion entry holding both
    /// (`struct io_uring_cqe *`, since). [`OFFSET_MISSING`] where not.
    /// Not offsets, like `setattr_dentry_arg`.
    pub io_uring_complete_req_arg: u32,
    pub io_uring_complete_res_arg: u32,
    pub io_uring_complete_cqe_arg: u32,
    /// `fmode_t f_mode`: how a file was opened (`FMODE_READ`,
    /// `FMODE_WRITE`).
    pub file_f_mode: u32,
    /// A procfs inode's process: `struct proc_inode` embeds the inode
    /// (`vfs_inode`) and holds its `struct pid *pid`.
    pub proc_inode_vfs_inode: u32,
    pub proc_inode_pid: u32,
    /// `struct pid`'s numbers, one `struct upid` per namespace level; the
    /// first is the number in the initial namespace.
    pub pid_numbers: u32,
    pub upid_nr: u32,
    /// `void *i_private`: a pidfd's `struct pid` since pidfs (6.9), where
    /// the file's `private_data` held it before.
    pub inode_i_private: u32,
    /// `unsigned long s_magic`: which filesystem (procfs's
    /// `PROC_SUPER_MAGIC`).
    pub sb_magic: u32,
    /// `struct cred`'s user namespace, and its depth (`int level`, 0 for
    /// the initial one): capabilities held in a deeper one are no
    /// privilege on the host.
    pub cred_user_ns: u32,
    pub user_ns_level: u32,
    /// `struct nsproxy *nsproxy` and the namespaces it holds, one pointer
    /// each: a child whose pointer differs from its parent's got a new
    /// namespace of that type at its clone.
    pub task_nsproxy: u32,
    pub nsproxy_uts_ns: u32,
    pub nsproxy_ipc_ns: u32,
    pub nsproxy_mnt_ns: u32,
    pub nsproxy_pid_ns_for_children: u32,
    pub nsproxy_net_ns: u32,
    pub nsproxy_time_ns_for_children: u32,
    pub nsproxy_cgroup_ns: u32,
    /// Each namespace's `struct ns_common ns`, and its inode number (as
    /// `/proc/PID/ns` shows it): where a setns left the caller.
    pub mnt_ns_common: u32,
    pub cgroup_ns_common: u32,
    pub uts_ns_common: u32,
    pub ipc_ns_common: u32,
    pub user_ns_common: u32,
    pub pid_ns_common: u32,
    pub net_ns_common: u32,
    pub time_ns_common: u32,
    pub ns_common_inum: u32,
}

impl KernelOffsets {
    /// Every field missing: what the eBPF side sees if the daemon forgot to
    /// set the global, so it reads nothing rather than garbage.
    pub const MISSING: KernelOffsets = KernelOffsets {
        task_pid: OFFSET_MISSING,
        task_tgid: OFFSET_MISSING,
        task_real_parent: OFFSET_MISSING,
        task_group_leader: OFFSET_MISSING,
        task_start_boottime: OFFSET_MISSING,
        task_real_cred: OFFSET_MISSING,
        task_mm: OFFSET_MISSING,
        task_fs: OFFSET_MISSING,
        task_signal: OFFSET_MISSING,
        task_loginuid: OFFSET_MISSING,
        task_sessionid: OFFSET_MISSING,
        task_exit_code: OFFSET_MISSING,
        task_comm: OFFSET_MISSING,
        task_cgroups: OFFSET_MISSING,
        cred_uid: OFFSET_MISSING,
        cred_gid: OFFSET_MISSING,
        cred_suid: OFFSET_MISSING,
        cred_sgid: OFFSET_MISSING,
        cred_euid: OFFSET_MISSING,
        cred_egid: OFFSET_MISSING,
        cred_fsuid: OFFSET_MISSING,
        cred_fsgid: OFFSET_MISSING,
        mm_arg_start: OFFSET_MISSING,
        mm_arg_end: OFFSET_MISSING,
        mm_exe_file: OFFSET_MISSING,
        fs_pwd: OFFSET_MISSING,
        path_mnt: OFFSET_MISSING,
        path_dentry: OFFSET_MISSING,
        dentry_parent: OFFSET_MISSING,
        dentry_name: OFFSET_MISSING,
        dentry_inode: OFFSET_MISSING,
        qstr_len: OFFSET_MISSING,
        qstr_name: OFFSET_MISSING,
        mount_mnt: OFFSET_MISSING,
        mount_parent: OFFSET_MISSING,
        mount_mountpoint: OFFSET_MISSING,
        vfsmount_root: OFFSET_MISSING,
        binprm_file: OFFSET_MISSING,
        file_path: OFFSET_MISSING,
        signal_live: OFFSET_MISSING,
        signal_tty: OFFSET_MISSING,
        tty_name: OFFSET_MISSING,
        css_set_dfl_cgrp: OFFSET_MISSING,
        css_set_subsys: OFFSET_MISSING,
        css_cgroup: OFFSET_MISSING,
        cgroup_kn: OFFSET_MISSING,
        kernfs_parent: OFFSET_MISSING,
        kernfs_name: OFFSET_MISSING,
        kernfs_id: OFFSET_MISSING,
        cred_cap_inheritable: OFFSET_MISSING,
        cred_cap_permitted: OFFSET_MISSING,
        cred_cap_effective: OFFSET_MISSING,
        task_files: OFFSET_MISSING,
        files_fdt: OFFSET_MISSING,
        fdtable_max_fds: OFFSET_MISSING,
        fdtable_fd: OFFSET_MISSING,
        files_fd_array: OFFSET_MISSING,
        file_inode: OFFSET_MISSING,
        inode_mode: OFFSET_MISSING,
        inode_uid: OFFSET_MISSING,
        inode_gid: OFFSET_MISSING,
        inode_ino: OFFSET_MISSING,
        inode_sb: OFFSET_MISSING,
        inode_nlink: OFFSET_MISSING,
        inode_generation: OFFSET_MISSING,
        sb_dev: OFFSET_MISSING,
        file_private_data: OFFSET_MISSING,
        socket_sk: OFFSET_MISSING,
        skc_family: OFFSET_MISSING,
        skc_state: OFFSET_MISSING,
        skc_num: OFFSET_MISSING,
        skc_dport: OFFSET_MISSING,
        skc_rcv_saddr: OFFSET_MISSING,
        skc_daddr: OFFSET_MISSING,
        skc_v6_rcv_saddr: OFFSET_MISSING,
        skc_v6_daddr: OFFSET_MISSING,
        sk_protocol: OFFSET_MISSING,
        sk_type: OFFSET_MISSING,
        sk_err: OFFSET_MISSING,
        tcp_fastopen_req: OFFSET_MISSING,
        setattr_dentry_arg: OFFSET_MISSING,
        cgroup_subsys_index: OFFSET_MISSING,
        task_thread_info: OFFSET_MISSING,
        thread_info_status: OFFSET_MISSING,
        io_kiocb_opcode: OFFSET_MISSING,
        io_kiocb_ctx: OFFSET_MISSING,
        io_kiocb_user_data: OFFSET_MISSING,
        io_kiocb_cmd: OFFSET_MISSING,
        io_open_dfd: OFFSET_MISSING,
        io_open_filename: OFFSET_MISSING,
        io_open_how: OFFSET_MISSING,
        io_open_file_slot: OFFSET_MISSING,
        io_accept_file_slot: OFFSET_MISSING,
        module_name: OFFSET_MISSING,
        open_how_flags: OFFSET_MISSING,
        open_how_mode: OFFSET_MISSING,
        io_unlink_dfd: OFFSET_MISSING,
        io_unlink_flags: OFFSET_MISSING,
        io_unlink_filename: OFFSET_MISSING,
        io_mkdir_dfd: OFFSET_MISSING,
        io_mkdir_mode: OFFSET_MISSING,
        io_mkdir_filename: OFFSET_MISSING,
        io_rename_old_dfd: OFFSET_MISSING,
        io_rename_oldpath: OFFSET_MISSING,
        io_rename_newpath: OFFSET_MISSING,
        io_rename_new_dfd: OFFSET_MISSING,
        io_rename_flags: OFFSET_MISSING,
        io_link_old_dfd: OFFSET_MISSING,
        io_link_flags: OFFSET_MISSING,
        io_link_new_dfd: OFFSET_MISSING,
        io_link_oldpath: OFFSET_MISSING,
        io_link_newpath: OFFSET_MISSING,
        io_xattr_filename: OFFSET_MISSING,
        io_xattr_ctx: OFFSET_MISSING,
        xattr_ctx_kname: OFFSET_MISSING,
        xattr_ctx_kvalue: OFFSET_MISSING,
        xattr_ctx_size: OFFSET_MISSING,
        xattr_ctx_flags: OFFSET_MISSING,
        xattr_name_name: OFFSET_MISSING,
        io_connect_addr: OFFSET_MISSING,
        io_connect_addr_len: OFFSET_MISSING,
        io_kiocb_cqe: OFFSET_MISSING,
        io_cqe_fd: OFFSET_MISSING,
        io_kiocb_flags: OFFSET_MISSING,
        io_ftrunc_len: OFFSET_MISSING,
        filename_name: OFFSET_MISSING,
        io_uring_req_arg: OFFSET_MISSING,
        io_uring_opcode_arg: OFFSET_MISSING,
        io_uring_complete_req_arg: OFFSET_MISSING,
        io_uring_complete_res_arg: OFFSET_MISSING,
        io_uring_complete_cqe_arg: OFFSET_MISSING,
        file_f_mode: OFFSET_MISSING,
        proc_inode_vfs_inode: OFFSET_MISSING,
        proc_inode_pid: OFFSET_MISSING,
        pid_numbers: OFFSET_MISSING,
        upid_nr: OFFSET_MISSING,
        inode_i_private: OFFSET_MISSING,
        sb_magic: OFFSET_MISSING,
        cred_user_ns: OFFSET_MISSING,
        user_ns_level: OFFSET_MISSING,
        task_nsproxy: OFFSET_MISSING,
        nsproxy_uts_ns: OFFSET_MISSING,
        nsproxy_ipc_ns: OFFSET_MISSING,
        nsproxy_mnt_ns: OFFSET_MISSING,
        nsproxy_pid_ns_for_children: OFFSET_MISSING,
        nsproxy_net_ns: OFFSET_MISSING,
        nsproxy_time_ns_for_children: OFFSET_MISSING,
        nsproxy_cgroup_ns: OFFSET_MISSING,
        mnt_ns_common: OFFSET_MISSING,
        cgroup_ns_common: OFFSET_MISSING,
        uts_ns_common: OFFSET_MISSING,
        ipc_ns_common: OFFSET_MISSING,
        user_ns_common: OFFSET_MISSING,
        pid_ns_common: OFFSET_MISSING,
        net_ns_common: OFFSET_MISSING,
        time_ns_common: OFFSET_MISSING,
        ns_common_inum: OFFSET_MISSING,
    };
}

const _: () = assert!(core::mem::size_of::<KernelOffsets>() == 157 * 4);

#[cfg(feature = "user")]
// SAFETY: repr(C), only u32 fields, no padding (size assert above).
unsafe impl aya::Pod for KernelOffsets {}
