//! Wire format between the eBPF programs (`sensor-ebpf`) and the daemon (`sensor`).
//!
//! Rules every type here follows (so both compilers lay them out identically):
//! `#[repr(C)]`, `Copy`, only fixed-width integers and byte arrays, no `bool`,
//! no implicit padding (explicit `_pad` fields), sizes pinned by `const` asserts.
//! The userspace decoder (`sensor::source::ebpf::decode`) is the only reader.
#![no_std]

pub mod compat;
pub mod event;
pub mod io_uring;
pub mod offsets;
pub mod syscall;
pub mod verifier_log;

pub use event::*;
pub use offsets::*;
pub use syscall::*;

/// Names of maps, globals and programs in the eBPF object. Shared so that a
/// typo is a compile error, not a failure at load time.
pub mod names {
    /// Ring buffer carrying every event to userspace.
    pub const EVENTS_MAP: &str = "EVENTS";
    /// Per-CPU `u64` counters of events dropped because the ring buffer was
    /// full, indexed by [`crate::EventKind`] as `u32`.
    pub const LOSSES_MAP: &str = "LOSSES";
    /// Per-CPU `u64` counters of in-kernel failures, indexed by [`crate::ProbeError`].
    pub const ERRORS_MAP: &str = "ERRORS";
    /// Per-CPU scratch buffer in which large events are assembled.
    pub const SCRATCH_MAP: &str = "SCRATCH";
    /// Global [`crate::KernelOffsets`], resolved from the running kernel's BTF at load.
    pub const OFFSETS_GLOBAL: &str = "OFFSETS";
    /// Global [`crate::ProbeConfig`], set at load.
    pub const CONFIG_GLOBAL: &str = "CONFIG";

    /// `raw_tracepoint/sched_process_exec`: task, argv and executable path,
    /// then tail-calls the next exec stage.
    pub const PROG_EXEC_RAW_TP: &str = "process_exec";
    /// Exec stage: the working directory. Each path walk is its own program
    /// because the three walks together exceed the verifier's 1M-insn budget.
    pub const PROG_EXEC_CWD: &str = "exec_cwd";
    /// Exec stage: the cgroup path, then the record goes to the ring buffer.
    pub const PROG_EXEC_CGROUP: &str = "exec_cgroup";
    /// Never attached: loaded first to learn whether the verifier accepts
    /// plain loads through the current task (`probe_features::DIRECT_READS`).
    pub const PROG_TASK_READS_CHECK: &str = "task_reads_check";
    /// Program array of the exec stages, indexed by the `EXEC_STAGE_*` constants.
    pub const EXEC_STAGES_MAP: &str = "EXEC_STAGES";
    pub const EXEC_STAGE_CWD: u32 = 0;
    pub const EXEC_STAGE_CGROUP: u32 = 1;
    /// `raw_tracepoint/sched_process_fork`.
    pub const PROG_FORK_RAW_TP: &str = "process_fork";
    /// `raw_tracepoint/sched_process_exit`.
    pub const PROG_EXIT_RAW_TP: &str = "process_exit";

    /// `u32` array indexed by syscall number: the [`crate::SyscallOp`] of
    /// each traced syscall, 0 for the rest.
    pub const SYSCALL_OPS_MAP: &str = "SYSCALL_OPS";
    /// Per-CPU scratch (like SCRATCH) in which syscall records are assembled.
    pub const SYSCALL_SCRATCH_MAP: &str = "SYSCALL_SCRATCH";
    /// File syscalls between entry and exit, by thread.
    pub const FILE_INFLIGHT_MAP: &str = "FILE_INFLIGHT";
    /// Credential syscalls between entry and exit, by thread.
    pub const CRED_INFLIGHT_MAP: &str = "CRED_INFLIGHT";
    /// Entry program (by tail call from `syscall_enter`) of the file attribute syscalls.
    pub const PROG_FILE_ENTER: &str = "file_enter";
    /// Exit program (by tail call from `syscall_exit`) of the file attribute syscalls.
    pub const PROG_FILE_EXIT: &str = "file_exit";
    /// `fentry/security_inode_setattr`: a chmod's or chown's file as it
    /// was before, completing the file family's in-flight record.
    pub const PROG_FILE_SETATTR: &str = "file_setattr";
    pub const FN_SECURITY_INODE_SETATTR: &str = "security_inode_setattr";
    /// `fentry/security_inode_setxattr` and `_removexattr`: the xattr name
    /// and value as the kernel copied them, completing the file family's
    /// in-flight record. Two builds of each: with the name as the third
    /// argument (5.12+, after an idmap or user namespace) or the second.
    pub const PROG_FILE_SETXATTR: &str = "file_setxattr";
    pub const PROG_FILE_SETXATTR_NO_IDMAP: &str = "file_setxattr_no_idmap";
    pub const FN_SECURITY_INODE_SETXATTR: &str = "security_inode_setxattr";
    pub const PROG_FILE_REMOVEXATTR: &str = "file_removexattr";
    pub const PROG_FILE_REMOVEXATTR_NO_IDMAP: &str = "file_removexattr_no_idmap";
    pub const FN_SECURITY_INODE_REMOVEXATTR: &str = "security_inode_removexattr";
    /// `u32` array of one: 1 once the xattr hooks above are attached, which
    /// has the file family's entry keep every xattr call for the exit to
    /// decide by the kernel's copy of the name.
    pub const XATTR_BY_KERNEL_MAP: &str = "XATTR_BY_KERNEL";
    /// `fentry/security_path_chmod` and `_chown`: the file a chmod or chown
    /// changes, as the kernel resolved it (through symlinks, and whatever
    /// the caller's memory held at the entry), completing the file family's
    /// in-flight record.
    pub const PROG_FILE_PATH_CHMOD: &str = "file_path_chmod";
    pub const FN_SECURITY_PATH_CHMOD: &str = "security_path_chmod";
    pub const PROG_FILE_PATH_CHOWN: &str = "file_path_chown";
    pub const FN_SECURITY_PATH_CHOWN: &str = "security_path_chown";
    /// `u32` array of one: which of the path hooks above are attached
    /// ([`crate::file_path_hooks`] bits), which has the file family's entry
    /// leave the ignored-path-prefix decision on those calls to the daemon,
    /// by the file the kernel resolved.
    pub const FILE_PATH_BY_KERNEL_MAP: &str = "FILE_PATH_BY_KERNEL";
    /// Entry program (by tail call from `syscall_enter`) of the credential syscalls.
    pub const PROG_CRED_ENTER: &str = "cred_enter";
    /// Exit program (by tail call from `syscall_exit`) of the credential syscalls.
    pub const PROG_CRED_EXIT: &str = "cred_exit";
    /// Entry program (by tail call from `syscall_enter`) of the network syscalls.
    pub const PROG_NET_ENTER: &str = "net_enter";
    /// Exit program (by tail call from `syscall_exit`) of the network syscalls.
    pub const PROG_NET_EXIT: &str = "net_exit";
    /// `fentry/security_socket_connect` and `fentry/security_socket_bind`:
    /// the address as the kernel copied it, completing the network
    /// family's in-flight record.
    pub const PROG_NET_CONNECT_ADDRESS: &str = "net_connect_address";
    pub const FN_SECURITY_SOCKET_CONNECT: &str = "security_socket_connect";
    pub const PROG_NET_BIND_ADDRESS: &str = "net_bind_address";
    pub const FN_SECURITY_SOCKET_BIND: &str = "security_socket_bind";
    /// `raw_tracepoint/inet_sock_set_state`: how non-blocking connects end,
    /// and TCP sockets that start connecting outside a connect call.
    pub const PROG_NET_STATE: &str = "net_state";
    pub const TP_INET_SOCK_SET_STATE: &str = "inet_sock_set_state";
    /// `cgroup/sendmsg4`, `cgroup/sendmsg6`, `cgroup/recvmsg4` and
    /// `cgroup/recvmsg6`, attached at the root of the cgroup v2 hierarchy:
    /// UDP datagrams sent to an address on a socket not connected to it,
    /// and received with the sender's address.
    pub const PROG_UDP_SEND4: &str = "udp_send4";
    pub const PROG_UDP_SEND6: &str = "udp_send6";
    pub const PROG_UDP_RECEIVE4: &str = "udp_receive4";
    pub const PROG_UDP_RECEIVE6: &str = "udp_receive6";
    /// The start log's words where those hooks are on: written by the
    /// daemon, looked for by `cargo xtask kernels`.
    pub const UDP_FLOWS_ON: &str =
        "UDP flows without a connect are reported, once per socket and peer";
    /// The words that follow [`UDP_FLOWS_ON`] in a warning where the hooks
    /// went on a cgroup namespace's root, a subtree, the hierarchy's root
    /// being out of reach: written by the daemon, looked for by the tests
    /// and refused by `cargo xtask kernels`.
    pub const UDP_FLOWS_SUBTREE_ONLY: &str =
        "but only from the sockets of the processes in the cgroup subtree at";
    /// Network syscalls between entry and exit, by thread.
    pub const NET_INFLIGHT_MAP: &str = "NET_INFLIGHT";
    /// Entry program (by tail call from `syscall_enter`) of the intruder-action syscalls.
    pub const PROG_SYS_ENTER: &str = "sys_enter";
    /// Exit program (by tail call from `syscall_exit`) of the intruder-action syscalls.
    pub const PROG_SYS_EXIT: &str = "sys_exit";
    /// `raw_tracepoint/signal_generate`: signals sent to the sensor.
    pub const PROG_SIGNAL_SENSOR: &str = "signal_sensor";
    pub const TP_SIGNAL_GENERATE: &str = "signal_generate";
    /// `raw_tracepoint/module_load` and `module_free`: the name of the
    /// module a load or unload syscall acted on, for its exit.
    pub const PROG_MODULE_LOADED: &str = "module_loaded";
    pub const TP_MODULE_LOAD: &str = "module_load";
    pub const PROG_MODULE_FREED: &str = "module_freed";
    pub const TP_MODULE_FREE: &str = "module_free";
    /// `raw_tracepoint/io_uring_submit_req` (`io_uring_submit_sqe` before
    /// 6.4): io_uring requests of the operations in [`crate::io_uring::OPS`].
    pub const PROG_IO_URING_SUBMIT: &str = "io_uring_submit";
    /// Its stage, which walks the request's directories and sends its
    /// record, reached by tail call through `IO_URING_STAGES` (slot 0).
    pub const PROG_IO_URING_SUBMIT_WALKS: &str = "io_uring_submit_walks";
    pub const IO_URING_STAGES_MAP: &str = "IO_URING_STAGES";
    pub const TP_IO_URING_SUBMIT_REQ: &str = "io_uring_submit_req";
    pub const TP_IO_URING_SUBMIT_SQE: &str = "io_uring_submit_sqe";
    /// `raw_tracepoint/io_uring_complete`: the result of each request the
    /// submit hook reported (5.19+, where both tracepoints pass the
    /// request), from [`IO_URING_REPORTED_MAP`].
    pub const PROG_IO_URING_COMPLETE: &str = "io_uring_complete";
    pub const TP_IO_URING_COMPLETE: &str = "io_uring_complete";
    /// Requests reported at submission and not completed yet, by request
    /// address, to the submission record's `boot_ns` (an LRU map: a
    /// request whose completion posts nothing, such as one submitted with
    /// `IOSQE_CQE_SKIP_SUCCESS` that succeeded, ages out).
    pub const IO_URING_REPORTED_MAP: &str = "IO_URING_REPORTED";
    /// `fexit/mem_open`: opens of `/proc/PID/mem`.
    pub const PROG_PROC_MEM_OPEN: &str = "proc_mem_open";
    pub const FN_MEM_OPEN: &str = "mem_open";
    /// Slot 0 set to 1 once that hook is attached: the watch family's
    /// open exit then no longer tests for those files itself.
    pub const PROC_MEM_BY_FEXIT_MAP: &str = "PROC_MEM_BY_FEXIT";
    /// Kernel-side filters (syscall families only; see sensor::config):
    /// `u32` uids and `u64` cgroup ids, each to a `u8`, [`crate::ExeKey`]
    /// executables to their [`crate::InodeGeneration`], and an array of
    /// [`crate::PathPrefix`].
    pub const IGNORE_UIDS_MAP: &str = "IGNORE_UIDS";
    pub const IGNORE_CGROUPS_MAP: &str = "IGNORE_CGROUPS";
    pub const IGNORE_EXES_MAP: &str = "IGNORE_EXES";
    pub const IGNORE_PREFIXES_MAP: &str = "IGNORE_PREFIXES";
    /// The prefixes that are directories (`/tmp/x/`), as the end of a path
    /// walked from a file below them: components leaf first, each ending
    /// in NUL (`x\0tmp\0`), in [`crate::PathPrefix`] entries.
    pub const IGNORE_DIRS_WALKED_MAP: &str = "IGNORE_DIRS_WALKED";
    /// Entry and exit programs (by tail call) of the watched-path
    /// syscalls (open for writing, truncate, unlink, rename, link, symlink).
    pub const PROG_WATCH_ENTER: &str = "watch_enter";
    pub const PROG_WATCH_EXIT: &str = "watch_exit";
    /// fentry programs deciding truncate/unlink/rename/link/symlink by the
    /// inode the kernel resolved, where fentry loads; and the switch (`u32`
    /// at 0) telling the entry program they are attached.
    pub const PROG_WATCH_UNLINK: &str = "watch_unlink";
    pub const FN_SECURITY_INODE_UNLINK: &str = "security_inode_unlink";
    pub const PROG_WATCH_RMDIR: &str = "watch_rmdir";
    pub const FN_SECURITY_INODE_RMDIR: &str = "security_inode_rmdir";
    pub const PROG_WATCH_RENAME: &str = "watch_rename";
    pub const FN_SECURITY_INODE_RENAME: &str = "security_inode_rename";
    pub const PROG_WATCH_LINK: &str = "watch_link";
    pub const FN_SECURITY_INODE_LINK: &str = "security_inode_link";
    pub const PROG_WATCH_SYMLINK: &str = "watch_symlink";
    pub const FN_SECURITY_INODE_SYMLINK: &str = "security_inode_symlink";
    pub const PROG_WATCH_SETATTR: &str = "watch_setattr";
    pub const WATCH_BY_INODE_MAP: &str = "WATCH_BY_INODE";
    /// Watched files and directories by inode ([`crate::ExeKey`] keys,
    /// [`crate::WatchedInode`] values), the directories holding watched
    /// files, and the watched paths' [`crate::path_hash`]es (u64 keys, u8
    /// values).
    pub const WATCHED_INODES_MAP: &str = "WATCHED_INODES";
    pub const WATCHED_PARENTS_MAP: &str = "WATCHED_PARENTS";
    /// The filesystems (kernel dev_t) of both maps' inodes.
    pub const WATCHED_DEVS_MAP: &str = "WATCHED_DEVS";
    pub const WATCHED_PATH_HASHES_MAP: &str = "WATCHED_PATH_HASHES";
    /// The directories above watched paths, by inode.
    pub const WATCHED_ABOVE_DIRS_MAP: &str = "WATCHED_ABOVE_DIRS";
    /// A bit per key of the four maps above that hold inodes or path
    /// hashes (see [`crate::watched_bit`]).
    pub const WATCHED_BITS_MAP: &str = "WATCHED_BITS";
    /// Symlinks sent and handled (see [`crate::symlinks_sync`]).
    pub const SYMLINKS_SYNC_MAP: &str = "SYMLINKS_SYNC";
    /// Sockets with a connect in progress, by socket address.
    pub const CONNECTING_MAP: &str = "CONNECTING";
    /// `tp_btf/sys_enter` and `tp_btf/sys_exit`: every syscall passes
    /// them; each tail-calls the family program of a traced one,
    /// from `SYSCALL_PROGS`/`SYSCALL_EXIT_PROGS` (native) or
    /// `COMPAT_PROGS`/`COMPAT_EXIT_PROGS` (ia32).
    pub const PROG_SYSCALL_ENTER: &str = "syscall_enter";
    pub const PROG_SYSCALL_EXIT: &str = "syscall_exit";
    pub const TP_SYS_ENTER: &str = "sys_enter";
    pub const TP_SYS_EXIT: &str = "sys_exit";
    /// Program arrays of the families' native entry and exit programs,
    /// indexed by [`crate::compat::slot`] (a program reached by tail call
    /// must have the caller's type and hook).
    pub const SYSCALL_PROGS_MAP: &str = "SYSCALL_PROGS";
    pub const SYSCALL_EXIT_PROGS_MAP: &str = "SYSCALL_EXIT_PROGS";
    /// ia32 syscall number to [`crate::compat`] value.
    pub const COMPAT_OPS_MAP: &str = "COMPAT_OPS";
    /// Program arrays of the families' compat entry and exit programs,
    /// indexed by [`crate::compat::slot`].
    pub const COMPAT_PROGS_MAP: &str = "COMPAT_PROGS";
    pub const COMPAT_EXIT_PROGS_MAP: &str = "COMPAT_EXIT_PROGS";
    /// The watch exits' second stage, reached by tail call through
    /// `WATCH_STAGES` (slot 0) from the native and ia32 exits alike.
    pub const PROG_WATCH_EXIT_SECOND_DIR: &str = "watch_exit_second_dir";
    pub const WATCH_STAGES_MAP: &str = "WATCH_STAGES";
    /// The families' ia32 entry and exit programs, reached by tail call.
    pub const PROG_FILE_COMPAT_ENTER: &str = "file_compat_enter";
    pub const PROG_FILE_COMPAT_EXIT: &str = "file_compat_exit";
    pub const PROG_WATCH_COMPAT_ENTER: &str = "watch_compat_enter";
    pub const PROG_WATCH_COMPAT_EXIT: &str = "watch_compat_exit";
    pub const PROG_CRED_COMPAT_ENTER: &str = "cred_compat_enter";
    pub const PROG_CRED_COMPAT_EXIT: &str = "cred_compat_exit";
    pub const PROG_NET_COMPAT_ENTER: &str = "net_compat_enter";
    pub const PROG_NET_COMPAT_EXIT: &str = "net_compat_exit";
    pub const PROG_SYS_COMPAT_ENTER: &str = "sys_compat_enter";
    pub const PROG_SYS_COMPAT_EXIT: &str = "sys_compat_exit";

    pub const TP_SCHED_PROCESS_EXEC: &str = "sched_process_exec";
    pub const TP_SCHED_PROCESS_FORK: &str = "sched_process_fork";
    pub const TP_SCHED_PROCESS_EXIT: &str = "sched_process_exit";
}
