//! Events as the kernel side writes them into the ring buffer.
//!
//! Every record starts with an [`EventHeader`]; `header.kind` says which
//! struct follows and `header.size` is the whole record's length, including
//! the variable-length data that trails some kinds (exec's argv and paths).

use core::mem::size_of;

/// What a record is. Numbers are grouped by domain and never reused: a retired
/// kind stays here as a comment so an old sensor never misreads a new record.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    // 1..=99: process lifecycle.
    Exec = 1,
    Fork = 2,
    Exit = 3,
    // 100..=199: file privilege changes.
    /// chmod, chown, xattr changes: [`crate::FileEvent`].
    FileAttr = 100,
    /// Writes, truncates, unlinks and renames of watched paths:
    /// [`crate::WatchEvent`].
    FileWrite = 101,
    // 200..=299: credential changes.
    /// setuid family, capset: [`crate::CredEvent`].
    Cred = 200,
    // 300..=399: network.
    /// connect, accept, bind, listen, packet-capturing sockets, UDP
    /// flows: [`crate::NetEvent`].
    Net = 300,
    // 400..=499: actions an intruder uses.
    /// ptrace, modules, memfd, mount, bpf, signals to the sensor:
    /// [`crate::SysEvent`].
    System = 400,
}

impl EventKind {
    /// Every kind, so loops over kinds (loss counters, probe tables) cannot forget one.
    pub const ALL: [EventKind; 8] = [
        EventKind::Exec,
        EventKind::Fork,
        EventKind::Exit,
        EventKind::FileAttr,
        EventKind::FileWrite,
        EventKind::Cred,
        EventKind::Net,
        EventKind::System,
    ];

    pub const fn from_u32(v: u32) -> Option<Self> {
        match v {
            1 => Some(EventKind::Exec),
            2 => Some(EventKind::Fork),
            3 => Some(EventKind::Exit),
            100 => Some(EventKind::FileAttr),
            101 => Some(EventKind::FileWrite),
            200 => Some(EventKind::Cred),
            300 => Some(EventKind::Net),
            400 => Some(EventKind::System),
            _ => None,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            EventKind::Exec => "exec",
            EventKind::Fork => "fork",
            EventKind::Exit => "exit",
            EventKind::FileAttr => "file_attr",
            EventKind::FileWrite => "file_write",
            EventKind::Cred => "cred",
            EventKind::Net => "net",
            EventKind::System => "system",
        }
    }

    /// Fixed part of this kind's record (variable data, if any, follows it).
    pub const fn fixed_size(self) -> usize {
        match self {
            EventKind::Exec => size_of::<ExecEvent>(),
            EventKind::Fork => size_of::<ForkEvent>(),
            EventKind::Exit => size_of::<ExitEvent>(),
            EventKind::FileAttr => size_of::<crate::FileEvent>(),
            EventKind::FileWrite => size_of::<crate::WatchEvent>(),
            EventKind::Cred => size_of::<crate::CredEvent>(),
            EventKind::Net => crate::NET_EVENT_FIXED,
            EventKind::System => size_of::<crate::SysEvent>(),
        }
    }

    /// Largest record of this kind the kernel side can write.
    pub const fn max_size(self) -> usize {
        match self {
            EventKind::Exec => size_of::<ExecEvent>() + EXEC_DATA_MAX,
            EventKind::FileAttr => crate::FILE_EVENT_MAX,
            EventKind::FileWrite => crate::WATCH_EVENT_MAX,
            EventKind::System => crate::SYS_EVENT_MAX,
            EventKind::Net => size_of::<crate::NetEvent>(),
            EventKind::Fork | EventKind::Exit | EventKind::Cred => self.fixed_size(),
        }
    }
}

/// Largest record of any kind: sizes the scratch buffer, computed over
/// [`EventKind::ALL`] so that a new kind cannot be forgotten.
pub const MAX_EVENT_SIZE: usize = {
    let mut max = 0;
    let mut i = 0;
    while i < EventKind::ALL.len() {
        let s = EventKind::ALL[i].max_size();
        if s > max {
            max = s;
        }
        i += 1;
    }
    max
};

/// Slots in the per-CPU loss counter map; indexed by `EventKind as u32`.
pub const LOSS_SLOTS: u32 = 512;

/// In-kernel failures, counted per CPU in the `ERRORS` map and reported by
/// the daemon. Never silently swallowed.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeError {
    /// The per-CPU scratch buffer lookup failed.
    Scratch = 0,
    /// Reading a kernel struct (task, cred, signal…) failed.
    ReadTask = 1,
    /// Reading argv from the new process's memory failed.
    ReadArgv = 2,
    /// Walking a dentry/mount chain failed.
    ReadPath = 3,
    /// Walking the cgroup chain failed.
    ReadCgroup = 4,
    /// A tail call to a program's next stage (exec's, the watch exit's,
    /// the io_uring submit hook's) failed; the record was sent without
    /// the later stages' paths.
    TailCall = 5,
    /// A syscall argument (path, xattr name or value) could not be read
    /// from the caller's memory.
    ReadArg = 6,
    /// Something could not be remembered in a map (an insert failed):
    /// a syscall's entry until its exit (the in-flight map was full: that
    /// call is not reported); or a record kept for a later one (a
    /// non-blocking connect for its end, an io_uring connect, a UDP
    /// flow's peer), whose event itself was sent: its end goes
    /// unpaired, or the flow is reported again at its next datagram.
    Inflight = 7,
}

impl ProbeError {
    pub const ALL: [ProbeError; 8] = [
        ProbeError::Scratch,
        ProbeError::ReadTask,
        ProbeError::ReadArgv,
        ProbeError::ReadPath,
        ProbeError::ReadCgroup,
        ProbeError::TailCall,
        ProbeError::ReadArg,
        ProbeError::Inflight,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            ProbeError::Scratch => "scratch",
            ProbeError::ReadTask => "read_task",
            ProbeError::ReadArgv => "read_argv",
            ProbeError::ReadPath => "read_path",
            ProbeError::ReadCgroup => "read_cgroup",
            ProbeError::TailCall => "tail_call",
            ProbeError::ReadArg => "read_arg",
            ProbeError::Inflight => "inflight_full",
        }
    }
}

/// Slots in the per-CPU error counter map.
pub const ERROR_SLOTS: u32 = 16;

/// Bytes of argv copied per exec; the original length is always reported,
/// so a longer argv is flagged as truncated, never silently cut.
pub const ARGV_CAP: usize = 32 * 1024;
/// Bytes of one resolved path (exe, cwd) copied per exec (PATH_MAX).
pub const PATH_CAP: usize = 4096;
/// Path components walked before giving up and flagging the path truncated.
pub const PATH_COMPONENTS_MAX: u32 = 64;
/// Bytes of the cgroup path copied per exec.
pub const CGROUP_CAP: usize = 1024;
/// cgroup path components walked before flagging the cgroup path truncated.
pub const CGROUP_COMPONENTS_MAX: u32 = 16;
/// Longest single path component the kernel allows (NAME_MAX + NUL).
pub const COMPONENT_MAX: usize = 256;
/// Upper bound on the variable data after an [`ExecEvent`]: argv, then the
/// three paths, each path possibly overshooting its cap by one component.
pub const EXEC_DATA_MAX: usize =
    ARGV_CAP + 2 * (PATH_CAP + COMPONENT_MAX) + CGROUP_CAP + COMPONENT_MAX;

/// `ExecEvent::flags` bits.
pub mod exec_flags {
    /// argv was longer than [`crate::ARGV_CAP`]; `argv_total` has its real length.
    pub const ARGV_TRUNCATED: u32 = 1 << 0;
    /// The executable path was longer than the caps allow.
    pub const EXE_TRUNCATED: u32 = 1 << 1;
    /// The working directory path was longer than the caps allow.
    pub const CWD_TRUNCATED: u32 = 1 << 2;
    /// The cgroup path was longer than the caps allow.
    pub const CGROUP_TRUNCATED: u32 = 1 << 3;
    /// argv could not be read at all (e.g. the page was not present).
    pub const ARGV_UNREADABLE: u32 = 1 << 4;
    /// A kernel read failed while walking a path; the path whose
    /// `*_TRUNCATED` bit is set holds what was resolved before the failure.
    pub const PATH_FAILED: u32 = 1 << 5;
    /// The executable has no name left in any directory (`i_nlink == 0`):
    /// a memfd, or a file deleted after it was opened. Fileless execution.
    pub const EXE_UNLINKED: u32 = 1 << 6;
}

/// Value of a uid/gid/session field the kernel does not have (e.g. a kernel
/// without CONFIG_AUDIT has no login uid) or that is unset (`(uid_t)-1`).
pub const ID_UNSET: u32 = u32::MAX;

/// First bytes of every record.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventHeader {
    /// [`EventKind`] as `u32`.
    pub kind: u32,
    /// Length of the whole record in bytes.
    pub size: u32,
    /// `bpf_ktime_get_boot_ns()`: CLOCK_BOOTTIME, so suspend does not skew it.
    pub boot_ns: u64,
}

/// `TaskInfo::flags` bit: the task's credentials belong to a user
/// namespace below the initial one, where its capabilities hold (a user's
/// `unshare -U`, a rootless container, a browser sandbox): they are no
/// privilege on the host. Read only where the task holds capabilities and
/// is not root (its ids are the host's either way).
pub const TASK_NESTED_USER_NS: u32 = 4;

/// The identity and credentials of a task, captured in the kernel at the
/// moment of the event (never re-read from /proc, which races).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskInfo {
    /// Thread-group id: what userspace calls the pid.
    pub tgid: u32,
    /// Thread id of the task that triggered the event.
    pub tid: u32,
    /// `real_parent->tgid`.
    pub ppid: u32,
    pub uid: u32,
    pub gid: u32,
    pub euid: u32,
    pub egid: u32,
    pub suid: u32,
    pub sgid: u32,
    pub fsuid: u32,
    pub fsgid: u32,
    /// Audit login uid, [`ID_UNSET`] if never set or not in this kernel.
    pub loginuid: u32,
    /// Audit session id, [`ID_UNSET`] if never set or not in this kernel.
    pub sessionid: u32,
    /// [`crate::compat::TASK_IA32`] or [`crate::compat::TASK_X32`] when the
    /// event's syscall came through that ABI, and [`TASK_NESTED_USER_NS`].
    pub flags: u32,
    /// `group_leader->start_boottime` (ns since boot): with the pid and the
    /// boot id it identifies the process across pid reuse.
    pub start_boottime: u64,
    /// `real_parent->group_leader->start_boottime`.
    pub parent_start_boottime: u64,
    /// kernfs id of the task's cgroup in the hierarchy the daemon chose
    /// (`KernelOffsets::cgroup_subsys_index`): on a cgroup v2 host the
    /// unified one, where this equals `bpf_get_current_cgroup_id`; else a v1
    /// controller's. 0 if unknown.
    pub cgroup_id: u64,
    /// Permitted and effective capability sets (`real_cred`), bit n =
    /// capability n: how a gain of privilege without a credential syscall
    /// (a setuid-root or file-capability exec, an exploit) is noticed.
    pub cap_permitted: u64,
    pub cap_effective: u64,
    /// `comm`, NUL-padded.
    pub comm: [u8; 16],
    /// Controlling terminal name (`signal->tty->name`, e.g. `pts3`), empty if none.
    pub tty: [u8; 32],
}

/// `sched_process_exec`: a process replaced its image. Followed by
/// `argv_len + exe_len + cwd_len + cgroup_len` bytes of data in that order:
/// - argv: the raw `arg_start..arg_end` bytes (NUL-separated arguments);
/// - exe, cwd, cgroup: paths as NUL-terminated components, leaf first
///   (`/usr/bin/ls` is `ls\0bin\0usr\0`); names cannot hold `/` or NUL,
///   so this is unambiguous and saves the kernel side a reverse copy.
///   The root itself (cwd `/`, the root cgroup) is the one component `/`
///   (`/\0`), so that an empty path always means "not resolved" (then the
///   path's `*_TRUNCATED` bit, and `PATH_FAILED` for exe/cwd, say why; a
///   kernel without cgroup fields sends an empty cgroup with no flag).
///   A truncated path holds its leaf-most components.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecEvent {
    pub header: EventHeader,
    pub task: TaskInfo,
    /// [`exec_flags`] bits.
    pub flags: u32,
    /// Length of argv in the process (`arg_end - arg_start`).
    pub argv_total: u32,
    pub argv_len: u32,
    pub exe_len: u32,
    pub cwd_len: u32,
    pub cgroup_len: u32,
}

/// `sched_process_fork` for a new process (new threads are not reported).
/// `task` is the child; `task.ppid` is the parent that forked it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ForkEvent {
    pub header: EventHeader,
    pub task: TaskInfo,
}

/// `sched_process_exit` of the last thread of a process.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitEvent {
    pub header: EventHeader,
    pub task: TaskInfo,
    /// `task->exit_code` in wait(2) status form: `(code << 8) | signal`,
    /// with 0x80 set when a core was dumped.
    pub exit_status: u32,
    pub _pad0: u32,
}

// Sizes pinned on both targets: a change here is a wire-format change.
const _: () = assert!(size_of::<EventHeader>() == 16);
const _: () = assert!(size_of::<TaskInfo>() == 144);
const _: () = assert!(size_of::<ExecEvent>() == 184);
const _: () = assert!(size_of::<ForkEvent>() == 160);
const _: () = assert!(size_of::<ExitEvent>() == 168);

/// Knobs the daemon sets in the object before load.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProbeConfig {
    /// The sensor's own tgid: its events are dropped in the kernel.
    pub sensor_tgid: u32,
    /// [`filter_flags`]: which ignore maps hold entries, so that an empty
    /// one costs no lookup.
    pub filters: u32,
    /// [`probe_features`] the programs may use on this kernel.
    pub features: u32,
}

/// `ProbeConfig::features` bits.
pub mod probe_features {
    /// Read the current task through bpf_get_current_task_btf and plain
    /// loads (Linux 5.11+, checked by the daemon with a real program load)
    /// instead of bpf_probe_read_kernel.
    pub const DIRECT_READS: u32 = 1 << 0;
    /// The system family is on: a new process or thread that got
    /// namespaces its parent does not have, where no clone record
    /// announced them, is reported from the fork
    /// (`SYS_OP_NAMESPACES_AT_FORK`).
    pub const FORK_NAMESPACES: u32 = 1 << 1;
    /// `[watch] user_ssh_dirs`: the files in any directory named `.ssh`,
    /// and such a directory itself, are watched by their names, wherever
    /// and whenever made (`sensor-ebpf`'s `syscall::watch::named`).
    pub const SSH_DIRS: u32 = 1 << 2;
    /// `[watch] user_unit_dirs`: the files in any directory named `user`
    /// in one named `systemd` (`~/.config/systemd/user/`, where systemd
    /// finds an account's own units) and in the directories directly in
    /// it (drop-ins, `.wants`), and such a directory itself.
    pub const USER_UNIT_DIRS: u32 = 1 << 3;
    /// `[watch] shell_rc_files`: any file named as a shell's startup file
    /// (`crate::SHELL_RC_NAMES`: `.bashrc`, `.profile`…), wherever and
    /// whenever made.
    pub const SHELL_RC_FILES: u32 = 1 << 4;
}

/// `ProbeConfig::filters` bits.
pub mod filter_flags {
    pub const UIDS: u32 = 1 << 0;
    pub const CGROUPS: u32 = 1 << 1;
    pub const EXECUTABLES: u32 = 1 << 2;
    pub const PATH_PREFIXES: u32 = 1 << 3;
    /// Some of those prefixes are directories (`/…/`), also held as the
    /// walked paths below them end (`IGNORE_DIRS_WALKED`).
    pub const WALKED_DIRS: u32 = 1 << 4;
}

/// Key of the `IGNORE_EXES` map: an executable by inode, so that a copy,
/// a hard link or a bind mount of an ignored program is the same program,
/// and a different file at the same path is not.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ExeKey {
    pub ino: u64,
    /// Kernel dev_t (`major << 20 | minor`) of the inode's filesystem.
    pub dev: u32,
    pub _pad0: u32,
}

/// Value of the `IGNORE_EXES` map: the ignored file's `i_generation`, as
/// `FS_IOC_GETVERSION` told it. An inode number freed by deleting an
/// ignored executable goes to the next file made on its filesystem (ext4
/// takes the lowest free one), which would run ignored until the daemon's
/// next look at the path; the filesystem gives that file another
/// generation. `known` 0 where the filesystem does not tell (tmpfs,
/// overlayfs): the inode number alone decides there.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct InodeGeneration {
    pub generation: u32,
    pub known: u32,
}

// Only read through the map's value pointer, so the eBPF object's BTF
// lacks it (the daemon's wire check cannot compare it): two u32s.
const _: () = assert!(core::mem::size_of::<InodeGeneration>() == 8);

/// Ignored path prefixes, at most this many…
pub const IGNORE_PREFIXES_MAX: u32 = 8;
/// …of at most this many bytes.
pub const IGNORE_PREFIX_CAP: usize = 64;

/// One entry of the `IGNORE_PREFIXES` array; `len` 0 is unused.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PathPrefix {
    pub len: u32,
    pub _pad0: u32,
    pub bytes: [u8; IGNORE_PREFIX_CAP],
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: every type is repr(C), Copy, made only of integers and byte
    // arrays with no padding (checked by the size asserts above), so any bit
    // pattern is a valid value.
    unsafe impl aya::Pod for super::EventHeader {}
    unsafe impl aya::Pod for super::TaskInfo {}
    unsafe impl aya::Pod for super::ExecEvent {}
    unsafe impl aya::Pod for super::ForkEvent {}
    unsafe impl aya::Pod for super::ExitEvent {}
    unsafe impl aya::Pod for super::ProbeConfig {}
    unsafe impl aya::Pod for super::ExeKey {}
    unsafe impl aya::Pod for super::InodeGeneration {}
    unsafe impl aya::Pod for super::PathPrefix {}
}
