//! The one place where ring-buffer bytes become typed events.
//!
//! Records come from our own eBPF programs, but their data (argv, paths)
//! is attacker-controlled and their lengths are checked here anyway: a
//! malformed record is an error to count, never a panic.

use sensor_common::{
    CredEvent, EventHeader, EventKind, ExecEvent, ExitEvent, FileEvent, ForkEvent, NET_EVENT_FIXED,
    NET_OP_CONNECT_OUTCOME, NET_OP_CONNECT_UNSEEN, NET_OP_UDP_RECEIVE, NET_OP_UDP_SEND, NetEvent,
    SOCKADDR_CAP, SYS_OP_IO_URING, SYS_OP_IO_URING_COMPLETE, SYS_OP_NAMESPACES_AT_FORK,
    SYS_OP_PROC_MEM_OPEN, SYS_OP_SIGNAL_SENSOR, SocketEnds, SysEvent, SyscallOp, TaskInfo,
    WatchEvent, exec_flags, file_flags, net_flags, sys_flags, watch_flags,
};

use crate::enrich::path_resolve::CwdAtCall;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("record of {len} bytes is shorter than its header")]
    NoHeader { len: usize },
    #[error("unknown event kind {kind}")]
    UnknownKind { kind: u32 },
    #[error("{kind:?} record of {len} bytes, expected at least {need}")]
    Short {
        kind: EventKind,
        len: usize,
        need: usize,
    },
    #[error("{kind:?} record says {said} bytes but {len} arrived")]
    SizeMismatch {
        kind: EventKind,
        said: usize,
        len: usize,
    },
    #[error("record data lengths ({sum} bytes) exceed its data ({data} bytes)")]
    DataOverflow { sum: usize, data: usize },
    #[error("unknown syscall op {op} in a {kind:?} record")]
    UnknownOp { kind: EventKind, op: u32 },
    #[error("system record flags a socket's ends, but its first string is {len} bytes")]
    SocketEnds { len: usize },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelEvent {
    Exec(ExecRecord),
    Fork(ForkRecord),
    Exit(ExitRecord),
    FileAttr(FileRecord),
    Cred(CredRecord),
    Net(NetRecord),
    System(SysRecord),
    FileWrite(WatchRecord),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecRecord {
    pub boot_ns: u64,
    pub task: TaskInfo,
    /// Arguments, byte-exact; the last one may be partial if truncated.
    pub argv: Vec<Vec<u8>>,
    pub argv_truncated: bool,
    pub argv_unreadable: bool,
    /// Length of argv in the process.
    pub argv_total: u32,
    pub exe: Vec<u8>,
    pub exe_truncated: bool,
    /// The executable had no name in any directory (memfd, deleted file).
    pub exe_unlinked: bool,
    pub cwd: Vec<u8>,
    pub cwd_truncated: bool,
    pub cgroup: Vec<u8>,
    pub cgroup_truncated: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForkRecord {
    pub boot_ns: u64,
    /// The child.
    pub task: TaskInfo,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitRecord {
    pub boot_ns: u64,
    pub task: TaskInfo,
    /// wait(2) status.
    pub status: u32,
}

/// A chmod, chown or xattr change, after the syscall returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    pub boot_ns: u64,
    pub task: TaskInfo,
    pub op: SyscallOp,
    /// 0 or `-errno`.
    pub ret: i64,
    /// The fd or dirfd argument (AT_FDCWD when there was none).
    pub fd: i32,
    pub at_flags: u32,
    /// Requested mode, owner and group (`u32::MAX`: unchanged).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// The file's attributes before the call, when the hook saw its inode.
    pub before: Option<InodeAttrs>,
    /// The path argument, byte-exact; empty for fd-based calls.
    pub path: Vec<u8>,
    pub path_unreadable: bool,
    pub path_truncated: bool,
    /// The directory a relative path starts from, or (`base_is_file`) the
    /// file itself; empty when not needed or not resolved.
    pub base: Vec<u8>,
    pub base_is_file: bool,
    pub base_truncated: bool,
    /// `base` is the calling thread's cwd at the call, walked for an
    /// absolute path through `/proc` (`file_flags::BASE_IS_CWD`).
    pub base_is_cwd: bool,
    /// That cwd is its thread group leader's too.
    pub cwd_is_leaders: bool,
    /// `base` is the file as the kernel resolved it (`security_path_*`),
    /// and `before` its own attributes.
    pub kernel_path: bool,
    /// The path argument starts with an ignored prefix; the kernel side
    /// kept the call for the daemon to decide (see `pipeline::file`).
    pub path_argument_ignored: bool,
    pub xattr_name: Option<Vec<u8>>,
    pub xattr_value: Option<Vec<u8>>,
    /// The size argument of setxattr: the value's real length.
    pub xattr_value_size: u32,
    pub xattr_value_truncated: bool,
    /// The xattr name or value could not be read from the caller's memory
    /// (and no kernel copy was seen).
    pub xattr_name_unreadable: bool,
    pub xattr_value_unreadable: bool,
    /// The caller's memory held another xattr name or value when the entry
    /// read it than the kernel copied (told where the fentry hook saw the
    /// copy, which the name and value then are).
    pub xattr_rewritten: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InodeAttrs {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Its names (hard links).
    pub nlink: u32,
    pub ino: u64,
    pub dev: u32,
}

impl FileRecord {
    /// The file's path: the argument if absolute, else joined to its base.
    /// None when it cannot be known (relative path, base unresolved).
    pub fn resolved_path(&self) -> Option<Vec<u8>> {
        if self.base_is_file {
            return (!self.base.is_empty()).then(|| self.base.clone());
        }
        join(&self.path, &self.base)
    }

    /// The calling thread's cwd at the call (see [`cwd_at_call`]).
    pub fn cwd_at_call(&self) -> Option<CwdAtCall<'_>> {
        cwd_at_call(
            self.base_is_cwd,
            self.cwd_is_leaders,
            &self.base,
            self.base_truncated,
        )
    }

    /// Is the file's path cut short: the argument, or the base it is
    /// joined to (not a cwd walked only to follow an absolute path)?
    pub fn path_cut(&self) -> bool {
        self.path_truncated || (self.base_truncated && !self.base_is_cwd)
    }
}

/// The calling thread's cwd as the kernel walked it at the call
/// (`base`, where `is_cwd`), whole: where `/proc/thread-self/cwd` led
/// (and `/proc/self/cwd`, where it was its leader's too: `leaders`),
/// which the daemon cannot read once the caller exited or moved on.
fn cwd_at_call(is_cwd: bool, leaders: bool, base: &[u8], truncated: bool) -> Option<CwdAtCall<'_>> {
    (is_cwd && !truncated && !base.is_empty()).then_some(CwdAtCall {
        path: base,
        leaders,
    })
}

/// A setuid-family or capset call, after it returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredRecord {
    pub boot_ns: u64,
    /// With the credentials after the call.
    pub task: TaskInfo,
    pub op: SyscallOp,
    pub ret: i64,
    /// The id arguments as passed.
    pub args: [u32; 3],
    /// uid, gid, suid, sgid, euid, egid, fsuid, fsgid before the call.
    pub old_ids: [u32; 8],
    /// inheritable, permitted, effective before and after.
    pub old_caps: [u64; 3],
    pub new_caps: [u64; 3],
}

/// A write, truncate, unlink, rename, link or symlink of a watched path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchRecord {
    pub boot_ns: u64,
    pub task: TaskInfo,
    pub op: SyscallOp,
    pub ret: i64,
    pub open_flags: u32,
    pub fd: i32,
    /// The path argument as passed; empty for an open or ftruncate, whose
    /// file is `base`.
    pub path: Vec<u8>,
    /// The directory a relative `path` starts from (or, where only
    /// `path2` is relative, the one it starts from), or the file itself,
    /// or, where no path is relative, the caller's cwd.
    pub base: Vec<u8>,
    pub base_is_file: bool,
    /// `base` is the caller's cwd at the call.
    pub base_is_cwd: bool,
    /// That cwd is its thread group leader's too.
    pub cwd_is_leaders: bool,
    pub base_truncated: bool,
    /// The second path argument as passed: rename's new path, link's
    /// existing file, symlink's target.
    pub path2: Vec<u8>,
    /// `path2` is relative to another dirfd than `path` (both relative):
    /// `base` is `path`'s directory, and `base2` `path2`'s, walked where
    /// it could be (else empty: `path2` is as passed).
    pub base2_unknown: bool,
    pub base2: Vec<u8>,
    pub base2_truncated: bool,
    /// linkat's existing file is the file open at its dirfd (AT_EMPTY_PATH,
    /// `path2` empty), walked as a relative `path2`'s directory would be
    /// (see [`Self::base2_of`]).
    pub second_is_file: bool,
    pub path_truncated: bool,
    pub path_unreadable: bool,
    /// The watched path the kernel matched by inode, as
    /// `WatchEvent::matched` (0: none).
    pub matched: u32,
}

impl WatchRecord {
    /// The calling thread's cwd at the call (see [`cwd_at_call`]).
    pub fn cwd_at_call(&self) -> Option<CwdAtCall<'_>> {
        cwd_at_call(
            self.base_is_cwd,
            self.cwd_is_leaders,
            &self.base,
            self.base_truncated,
        )
    }

    /// Is `base` part of a path the event shows: the file itself, or the
    /// directory a relative path argument starts from?
    pub fn base_shown(&self) -> bool {
        let symlink = matches!(self.op, SyscallOp::Symlink | SyscallOp::Symlinkat);
        self.base_is_file
            || self.second_is_file
            || relative(&self.path)
            || (!symlink && relative(&self.path2))
    }

    /// Is `base` the second path's (its directory, or linkat's fd's file)
    /// rather than the first's, in the paths shown? Where only the second
    /// was relative, or it is the fd's file. (Where both were, to two
    /// fds, the second's is `base2`.)
    pub fn base_is_seconds(&self) -> bool {
        self.base_shown() && !self.base_is_file && !relative(&self.path)
    }

    /// The file's path: the file itself, or the argument joined to its base.
    pub fn resolved_path(&self) -> Option<Vec<u8>> {
        if self.base_is_file {
            return (!self.base.is_empty()).then(|| self.base.clone());
        }
        join(&self.path, &self.base)
    }

    /// The second path (rename's new one, link's existing file), joined to
    /// the directory it starts from when it is relative ([`Self::base2_of`]);
    /// the file itself where it is the one at linkat's fd.
    pub fn resolved_path2(&self) -> Option<Vec<u8>> {
        if self.second_is_file {
            let file = self.base2_of();
            return (!file.is_empty()).then(|| file.to_vec());
        }
        if self.path2.is_empty() {
            return None;
        }
        join(&self.path2, self.base2_of())
    }

    /// Is the directory `path2` starts from unknown: its own dirfd's, not
    /// walked (closed by another thread before the exit read it, or no
    /// second stage)? `path2` is then as passed, and may name anything.
    pub fn base2_lost(&self) -> bool {
        self.base2_unknown
            && self.base2.is_empty()
            && (relative(&self.path2) || self.second_is_file)
    }

    /// The directory a relative `path2` starts from: `base`, or its own
    /// (`base2`, empty where it could not be walked).
    pub fn base2_of(&self) -> &[u8] {
        if self.base2_unknown {
            &self.base2
        } else {
            &self.base
        }
    }
}

/// The path a symlink's target (`written`, text the kernel stores: a
/// `WatchRecord`'s `path2`) names: made normal, and joined to the
/// directory of `link` (the link's path, `WatchRecord::resolved_path`)
/// when relative. None when that is unknown.
pub fn symlink_target_path(written: &[u8], link: Option<&[u8]>) -> Option<Vec<u8>> {
    if written.first() == Some(&b'/') {
        return Some(lexically_normal(written));
    }
    let link = link?;
    let dir = &link[..=link.iter().rposition(|&b| b == b'/')?];
    join(written, dir)
}

/// Is `path` relative: not empty, and not from the root?
pub fn relative(path: &[u8]) -> bool {
    path.first().is_some_and(|&b| b != b'/')
}

/// `path` if absolute, else `base/path`, made normal ([`lexically_normal`]);
/// None when neither is known.
pub fn join(path: &[u8], base: &[u8]) -> Option<Vec<u8>> {
    if path.first() == Some(&b'/') {
        return Some(lexically_normal(path));
    }
    if base.is_empty() || path.is_empty() {
        return None;
    }
    let mut p = base.to_vec();
    if p.last() != Some(&b'/') {
        p.push(b'/');
    }
    p.extend_from_slice(path);
    // Most joined paths are normal already: kept, not built again.
    Some(if is_lexically_normal(&p) {
        p
    } else {
        lexically_normal(&p)
    })
}

/// Is `path` as [`lexically_normal`] makes it: absolute, with no empty
/// (but a trailing slash's), `.` or `..` component?
fn is_lexically_normal(path: &[u8]) -> bool {
    let Some(rest) = path.strip_prefix(b"/") else {
        return false;
    };
    let mut components = rest.split(|&b| b == b'/').peekable();
    while let Some(c) = components.next() {
        let last = components.peek().is_none();
        if (c.is_empty() && !last) || c == b"." || c == b".." {
            return false;
        }
    }
    true
}

/// The absolute `path` without empty and `.` components, and with each
/// `..` taking the component before it away (none above the root), as
/// the watched paths and ignored prefixes it is compared with are written:
/// `/var/tmp/../../etc/cron.d/x` is `/etc/cron.d/x`. A trailing slash is
/// kept. Lexical: where a symlink precedes a `..`, the kernel went
/// elsewhere (the fentry hooks see where, by inode); the base a relative
/// path is joined to is the kernel's own, without symlinks.
///
/// By hand over bytes (std's `Path::components` drops `.` and empty
/// components but leaves `..`, and crates that clean paths work on
/// `str`): a path is the caller's bytes, kept exact.
pub fn lexically_normal(path: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::with_capacity(path.len());
    for component in path.split(|&b| b == b'/') {
        match component {
            b"" | b"." => {}
            b".." => {
                let parent = out.iter().rposition(|&b| b == b'/').unwrap_or(0);
                out.truncate(parent);
            }
            name => {
                out.push(b'/');
                out.extend_from_slice(name);
            }
        }
    }
    if out.is_empty() || (path.ends_with(b"/") && out != b"/") {
        out.push(b'/');
    }
    out
}

/// What a system record reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SysOp {
    Syscall(SyscallOp),
    /// A signal aimed at the sensor; the task is its sender.
    SignalSensor,
    /// An io_uring request; args[0] is its opcode.
    IoUring,
    /// The completion of a reported io_uring request: `ret` its result,
    /// args = [opcode, the submission record's `boot_ns`, CQE flags].
    IoUringComplete,
    /// An open of a process's memory file; args = [f_mode, target pid].
    ProcMemOpen,
    /// A new process or thread with namespaces of its own that no clone
    /// record announced: args = [0, what was made, the child's pid].
    NamespacesAtFork,
}

/// An action an intruder uses (see sensor_common::SysEvent). What the
/// numbers and strings mean depends on `op`:
/// - ptrace: args = [request, target pid];
/// - process_vm_readv/writev: args[1] = target pid, args[2] = its pieces
///   (riovcnt), `ret` the bytes moved;
/// - pidfd_getfd: args = [the fd taken, target pid (0: unknown), the
///   taken file's i_mode, its inode number] (the last two and `path`, the
///   file, on success), `ret` its new fd;
/// - setns: args = [fd, nstype, the nsfs fd's namespace inode (0: not
///   one), the pidfd's target pid (0: unknown)], `path` and `name` the
///   caller's namespace inodes at entry and, on success, at exit (a
///   little-endian `u32` per type, in `enrich::namespaces::TYPES` order);
/// - unshare, clone, clone3: args[0] = the call's flags (clone3's from its
///   struct), `ret` (clone's) the child's pid as the caller sees it, and
///   for a clone that made a process, `namespaces_made`;
/// - kexec_load: args = [segments, flags, entry];
/// - kexec_file_load: args = [kernel fd, flags, initrd fd], `path` (the
///   kernel file, unless unloading), `params` (the command line);
/// - init_module: args[0] = image length, `params`;
/// - finit_module: args = [fd, flags], `path` (the file), `params`;
/// - delete_module: `name`, args[1] = flags;
/// - memfd_create: `name`, args[1] = flags, `ret` the fd;
/// - mount: `path` (target), `source`, `fstype`, args[0] = flags;
/// - umount2: `path`, args[1] = flags;
/// - move_mount: `path` (target), `name` (source path), args[0] = flags;
/// - mount_setattr: `path`, args = [at-flags, attr_set, attr_clr,
///   propagation];
/// - the four mount ops: `base`, where a relative or empty target starts;
/// - bpf: args = [cmd, prog_type or attach_type], `name` (program or
///   tracepoint);
/// - signal to the sensor: args = [signal, result, group];
/// - io_uring request: args = [opcode, dirfd, open flags, mode], `path`
///   and `name` its paths, `fstype` a connect's sockaddr, `base` where a
///   relative `path` starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysRecord {
    pub boot_ns: u64,
    pub task: TaskInfo,
    pub op: SysOp,
    pub ret: i64,
    pub args: [u64; 4],
    /// str0: a path (walked in the kernel for finit_module).
    pub path: Vec<u8>,
    /// str1: a name or parameters.
    pub name: Vec<u8>,
    /// str2: mount's filesystem type.
    pub fstype: Vec<u8>,
    /// The directory a relative or empty mount target, or a bind or move
    /// mount's relative source, starts from (the cwd, or the dirfd's
    /// path); empty when neither is relative.
    pub base: Vec<u8>,
    pub truncated: bool,
    pub unreadable: bool,
    /// The `CLONE_NEW*` bits of the namespaces a clone made, seen at its
    /// fork (`sys_flags::NAMESPACES_SEEN`): what the kernel did, where
    /// args[0] is what the arguments asked for when the entry read them.
    pub namespaces_made: Option<u64>,
    /// pidfd_getfd: the pidfd named the caller's own process at entry, but
    /// the file taken came from another (`sys_flags::TARGET_UNKNOWN`).
    pub target_unknown: bool,
    /// io_uring: the request's fd is a registered file's index
    /// (`sys_flags::FIXED_FILE`).
    pub fixed_file: bool,
    /// io_uring: a completion reported alone, its submission dropped by
    /// its path argument; or a submission reported although its path
    /// argument is under an ignored prefix, as nothing tells where it
    /// lands (`sys_flags::ARGUMENT_IGNORED`).
    pub argument_ignored: bool,
    /// With it: the file opened has other names (`sys_flags::OTHER_NAMES`).
    pub other_names: bool,
    /// io_uring rename or hard link: both paths are relative, to different
    /// directory fds, and `base` is the first's (`sys_flags::BASE2_UNKNOWN`).
    pub base2_unknown: bool,
    /// io_uring hard link: its existing file is the one open at its fd
    /// (`args[3]`; `AT_EMPTY_PATH`, `sys_flags::SECOND_IS_FILE`), walked
    /// as a relative second path's directory is.
    pub second_is_file: bool,
    /// With `base2_unknown`: the second path's own directory (or the file
    /// at a hard link's fd), walked by the submit hook's stage
    /// (`sys_flags::STR2_AFTER_BASE`); empty where it was not.
    pub base2: Vec<u8>,
    /// io_uring, the completion of a connect or an accept: its socket as
    /// the kernel has it (`sys_flags::SOCKET_ENDS`, in `str0`).
    pub socket: Option<SocketView>,
    /// A module load or unload: the module's name as the kernel has it
    /// (`sys_flags::MODULE_NAMED`, in `str2`, up to its first NUL).
    pub module_name: Option<Vec<u8>>,
}

/// A socket's kind and ends as the kernel has them (an io_uring connect's
/// socket, an accept's new one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketView {
    /// `AF_*` and `IPPROTO_*`.
    pub family: u16,
    pub protocol: u16,
    /// Its own end and its peer, for IP sockets.
    pub local: Option<std::net::SocketAddr>,
    pub remote: Option<std::net::SocketAddr>,
}

impl SocketView {
    /// From a record's [`SocketEnds`] bytes; None if they are not that.
    fn parse(bytes: &[u8]) -> Option<SocketView> {
        if bytes.len() != core::mem::size_of::<SocketEnds>() {
            return None;
        }
        let e: SocketEnds = read_struct(bytes)?;
        Some(SocketView {
            family: e.family,
            protocol: e.protocol,
            local: endpoint(e.family, &e.local_addr, e.local_port),
            remote: endpoint(e.family, &e.remote_addr, e.remote_port),
        })
    }
}

impl SysRecord {
    /// A mount op's target as the kernel resolved it: `path` joined to
    /// `base`, or `base` itself for an empty path (the dirfd's mount).
    /// `path` as given when there is no base to join (absolute, or the
    /// walk failed).
    pub fn mount_point(&self) -> Vec<u8> {
        if self.path.is_empty() && self.mount_point_resolved() {
            return self.base.clone();
        }
        join(&self.path, &self.base).unwrap_or_else(|| self.path.clone())
    }

    /// Whether the mount target was joined to a base (relative, or empty
    /// for an fd-based call): [`Self::mount_point`] differs from `path`.
    pub fn mount_point_resolved(&self) -> bool {
        // An empty path names the dirfd itself only for the fd-based calls
        // (mount(2) and umount2 fail on it).
        let fd_based = matches!(
            self.op,
            SysOp::Syscall(SyscallOp::MoveMount | SyscallOp::MountSetattr)
        );
        !self.base.is_empty()
            && match self.path.first() {
                Some(&c) => c != b'/',
                None => fd_based,
            }
    }

    /// An io_uring request's path, joined to where a relative one starts
    /// (as given when that is unknown). `base` is that directory wherever
    /// the path is relative (else, for a rename or hard link, its second
    /// path's, which an absolute path leaves out).
    pub fn io_uring_path(&self) -> Vec<u8> {
        join(&self.path, &self.base).unwrap_or_else(|| self.path.clone())
    }

    /// An io_uring rename's new name or hard link's existing file (its
    /// second path, `name`), joined to its directory where relative: the
    /// base where that is the second path's own directory, or the
    /// directory walked for it alone ([`Self::base2`], where both paths
    /// are relative to different fds); the file itself where it is the one
    /// open at the link's fd ([`Self::second_is_file`]), walked in the same
    /// places. None for other requests, where the directory is unknown,
    /// and for an empty name otherwise.
    pub fn io_uring_second_path(&self) -> Option<Vec<u8>> {
        if !sensor_common::io_uring::second_path_has_dir(self.args[0] as u8) {
            return None;
        }
        let base = if self.base2_unknown {
            &self.base2
        } else {
            &self.base
        };
        if self.second_is_file {
            return (!base.is_empty()).then(|| base.clone());
        }
        join(&self.name, base)
    }

    /// mount(2)'s source for a bind or a move, where it is a path: joined
    /// to the cwd when relative. None for other mounts (a device or a name
    /// the filesystem interprets) and when a relative source has no base
    /// (the walk failed).
    pub fn mount_source_path(&self) -> Option<Vec<u8>> {
        let path_source = self.op == SysOp::Syscall(SyscallOp::Mount)
            && self.args[0] & sensor_common::mount_flags::SOURCE_IS_PATH != 0;
        if !path_source {
            return None;
        }
        join(&self.name, &self.base)
    }
}

/// What a network record reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetOp {
    Syscall(SyscallOp),
    /// How a connect that returned EINPROGRESS ended (or one reported as
    /// [`NetOp::ConnectUnseen`]).
    ConnectOutcome,
    /// A TCP socket that started connecting outside any connect call the
    /// sensor saw (`NET_OP_CONNECT_UNSEEN`): `fast_open` where a send with
    /// `MSG_FASTOPEN` connected it.
    ConnectUnseen {
        fast_open: bool,
    },
    /// The first datagram a UDP socket sent to a peer it is not connected
    /// to (`NET_OP_UDP_SEND`), or received from one (`NET_OP_UDP_RECEIVE`),
    /// whichever came first.
    UdpSend,
    UdpReceive,
}

/// A network syscall after it returned, or the end of a non-blocking connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetRecord {
    pub boot_ns: u64,
    pub task: TaskInfo,
    pub op: NetOp,
    pub fd: i32,
    pub ret: i64,
    /// `AF_*`, `IPPROTO_*` and `SOCK_*` of the socket; 0 when unknown.
    pub family: u16,
    pub protocol: u16,
    pub sock_type: u16,
    /// listen's backlog, accept4's flags.
    pub arg: u32,
    /// The caller's socket address (connect, bind) as read from its
    /// memory at the call's entry, byte-exact.
    pub sockaddr: Vec<u8>,
    /// The same address as the kernel copied it, where the fentry hook
    /// saw the copy: the one the call used.
    pub kernel_sockaddr: Option<Vec<u8>>,
    /// The socket's own end and its peer, for IP sockets.
    pub local: Option<std::net::SocketAddr>,
    pub remote: Option<std::net::SocketAddr>,
}

/// A socket address as a caller passed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SockAddr {
    Ip(std::net::SocketAddr),
    /// A path, or an abstract name shown with a leading `@`; empty for an
    /// unnamed socket.
    Unix(Vec<u8>),
    /// Another family, by number.
    Other(u16),
}

impl SockAddr {
    /// Parses a `struct sockaddr` (untrusted bytes: anything short or
    /// unknown is reported as what it is, never a panic).
    pub fn parse(b: &[u8]) -> Option<SockAddr> {
        let family = u16::from_ne_bytes(b.get(0..2)?.try_into().ok()?);
        let port = |b: &[u8]| b.get(2..4).map(|p| u16::from_be_bytes([p[0], p[1]]));
        Some(match family {
            2 => {
                let ip: [u8; 4] = b.get(4..8)?.try_into().ok()?;
                SockAddr::Ip((std::net::Ipv4Addr::from(ip), port(b)?).into())
            }
            10 => {
                let ip: [u8; 16] = b.get(8..24)?.try_into().ok()?;
                SockAddr::Ip((std::net::Ipv6Addr::from(ip), port(b)?).into())
            }
            1 => {
                let path = &b[2..];
                match path.first() {
                    // Abstract: the name is every byte after the NUL.
                    Some(0) => {
                        let mut name = vec![b'@'];
                        name.extend_from_slice(&path[1..]);
                        SockAddr::Unix(name)
                    }
                    _ => {
                        SockAddr::Unix(path.split(|&c| c == 0).next().unwrap_or_default().to_vec())
                    }
                }
            }
            other => SockAddr::Other(other),
        })
    }
}

/// A socket end from the kernel's raw address bytes and host-order port.
fn endpoint(family: u16, addr: &[u8; 16], port: u16) -> Option<std::net::SocketAddr> {
    match family {
        2 => {
            let ip: [u8; 4] = addr[..4].try_into().expect("4 bytes");
            Some((std::net::Ipv4Addr::from(ip), port).into())
        }
        10 => Some((std::net::Ipv6Addr::from(*addr), port).into()),
        _ => None,
    }
}

pub fn decode(bytes: &[u8]) -> Result<KernelEvent, DecodeError> {
    let header: EventHeader =
        read_struct(bytes).ok_or(DecodeError::NoHeader { len: bytes.len() })?;
    let kind =
        EventKind::from_u32(header.kind).ok_or(DecodeError::UnknownKind { kind: header.kind })?;
    let need = kind.fixed_size();
    if bytes.len() < need {
        return Err(DecodeError::Short {
            kind,
            len: bytes.len(),
            need,
        });
    }
    let said = header.size as usize;
    // bpf_ringbuf_output pads records to 8 bytes; the declared size must fit.
    if said < need || said > bytes.len() {
        return Err(DecodeError::SizeMismatch {
            kind,
            said,
            len: bytes.len(),
        });
    }
    let bytes = &bytes[..said];
    match kind {
        EventKind::Exec => decode_exec(bytes).map(KernelEvent::Exec),
        EventKind::Fork => {
            let e: ForkEvent = read_struct(bytes).ok_or(DecodeError::Short {
                kind,
                len: bytes.len(),
                need,
            })?;
            Ok(KernelEvent::Fork(ForkRecord {
                boot_ns: e.header.boot_ns,
                task: e.task,
            }))
        }
        EventKind::Exit => {
            let e: ExitEvent = read_struct(bytes).ok_or(DecodeError::Short {
                kind,
                len: bytes.len(),
                need,
            })?;
            Ok(KernelEvent::Exit(ExitRecord {
                boot_ns: e.header.boot_ns,
                task: e.task,
                status: e.exit_status,
            }))
        }
        EventKind::FileAttr => decode_file(bytes).map(KernelEvent::FileAttr),
        EventKind::System => decode_sys(bytes).map(KernelEvent::System),
        EventKind::FileWrite => decode_watch(bytes).map(KernelEvent::FileWrite),
        EventKind::Net => decode_net(bytes).map(KernelEvent::Net),
        EventKind::Cred => {
            let e: CredEvent = read_struct(bytes).ok_or(DecodeError::Short {
                kind,
                len: bytes.len(),
                need,
            })?;
            let op = SyscallOp::from_u32(e.op).ok_or(DecodeError::UnknownOp { kind, op: e.op })?;
            Ok(KernelEvent::Cred(CredRecord {
                boot_ns: e.header.boot_ns,
                task: e.task,
                op,
                ret: e.ret,
                args: e.args,
                old_ids: e.old_ids,
                old_caps: e.old_caps,
                new_caps: e.new_caps,
            }))
        }
    }
}

fn decode_watch(bytes: &[u8]) -> Result<WatchRecord, DecodeError> {
    let kind = EventKind::FileWrite;
    let fixed = core::mem::size_of::<WatchEvent>();
    let e: WatchEvent = read_struct(bytes).ok_or(DecodeError::Short {
        kind,
        len: bytes.len(),
        need: fixed,
    })?;
    let op = SyscallOp::from_u32(e.op).ok_or(DecodeError::UnknownOp { kind, op: e.op })?;
    let data = &bytes[fixed..];
    let lens = [e.path_len, e.base_len, e.path2_len, e.base2_len].map(|l| l as usize);
    let sum: usize = lens.iter().sum();
    if sum > data.len() {
        return Err(DecodeError::DataOverflow {
            sum,
            data: data.len(),
        });
    }
    let (path, rest) = data.split_at(lens[0]);
    let (base, rest) = rest.split_at(lens[1]);
    let (path2, rest) = rest.split_at(lens[2]);
    let base2 = &rest[..lens[3]];
    let has = |bit: u32| e.flags & bit != 0;
    Ok(WatchRecord {
        boot_ns: e.header.boot_ns,
        task: e.task,
        op,
        ret: e.ret,
        open_flags: e.open_flags,
        fd: e.fd,
        path: path.to_vec(),
        base: join_components(base),
        base_is_file: has(watch_flags::BASE_IS_FILE),
        base_is_cwd: has(watch_flags::BASE_IS_CWD),
        cwd_is_leaders: has(watch_flags::CWD_IS_LEADERS),
        base_truncated: has(watch_flags::BASE_TRUNCATED),
        path2: path2.to_vec(),
        base2_unknown: has(watch_flags::BASE2_UNKNOWN),
        base2: join_components(base2),
        base2_truncated: has(watch_flags::BASE2_TRUNCATED),
        second_is_file: has(watch_flags::SECOND_IS_FILE),
        path_truncated: has(watch_flags::PATH_TRUNCATED),
        path_unreadable: has(watch_flags::PATH_UNREADABLE),
        matched: e.matched,
    })
}

fn decode_sys(bytes: &[u8]) -> Result<SysRecord, DecodeError> {
    let kind = EventKind::System;
    let fixed = core::mem::size_of::<SysEvent>();
    let e: SysEvent = read_struct(bytes).ok_or(DecodeError::Short {
        kind,
        len: bytes.len(),
        need: fixed,
    })?;
    let op = match e.op {
        SYS_OP_SIGNAL_SENSOR => SysOp::SignalSensor,
        SYS_OP_IO_URING => SysOp::IoUring,
        SYS_OP_IO_URING_COMPLETE => SysOp::IoUringComplete,
        SYS_OP_PROC_MEM_OPEN => SysOp::ProcMemOpen,
        SYS_OP_NAMESPACES_AT_FORK => SysOp::NamespacesAtFork,
        op => SysOp::Syscall(SyscallOp::from_u32(op).ok_or(DecodeError::UnknownOp { kind, op })?),
    };
    let data = &bytes[fixed..];
    let lens = [e.str_lens[0], e.str_lens[1], e.str_lens[2], e.base_len].map(|l| l as usize);
    let sum: usize = lens.iter().sum();
    if sum > data.len() {
        return Err(DecodeError::DataOverflow {
            sum,
            data: data.len(),
        });
    }
    let (s0, rest) = data.split_at(lens[0]);
    let (s1, rest) = rest.split_at(lens[1]);
    // The io_uring submit hook's stage walks a second directory after the
    // base, as the third string.
    let base2_walked = e.flags & sys_flags::STR2_AFTER_BASE != 0;
    let (s2, walked) = if base2_walked {
        let (walked, rest) = rest.split_at(lens[3]);
        (&rest[..lens[2]], walked)
    } else {
        let (s2, rest) = rest.split_at(lens[2]);
        (s2, &rest[..lens[3]])
    };
    let file_walked = e.flags & sys_flags::FILE_WALKED != 0;
    let module_named = e.flags & sys_flags::MODULE_NAMED != 0;
    Ok(SysRecord {
        boot_ns: e.header.boot_ns,
        task: e.task,
        op,
        ret: e.ret,
        args: e.args,
        path: if file_walked {
            join_components(walked)
        } else if e.flags & sys_flags::SOCKET_ENDS != 0 {
            Vec::new()
        } else {
            s0.to_vec()
        },
        name: s1.to_vec(),
        fstype: if module_named || base2_walked {
            Vec::new()
        } else {
            s2.to_vec()
        },
        base2: if base2_walked {
            join_components(s2)
        } else {
            Vec::new()
        },
        base: if file_walked {
            Vec::new()
        } else {
            join_components(walked)
        },
        truncated: e.flags & sys_flags::TRUNCATED != 0,
        unreadable: e.flags & sys_flags::UNREADABLE != 0,
        namespaces_made: (e.flags & sys_flags::NAMESPACES_SEEN != 0).then_some(e.args[1]),
        target_unknown: e.flags & sys_flags::TARGET_UNKNOWN != 0,
        fixed_file: e.flags & sys_flags::FIXED_FILE != 0,
        argument_ignored: e.flags & sys_flags::ARGUMENT_IGNORED != 0,
        other_names: e.flags & sys_flags::OTHER_NAMES != 0,
        base2_unknown: e.flags & sys_flags::BASE2_UNKNOWN != 0,
        second_is_file: e.flags & sys_flags::SECOND_IS_FILE != 0,
        module_name: module_named
            .then(|| s2.split(|&b| b == 0).next().unwrap_or_default().to_vec()),
        socket: if e.flags & sys_flags::SOCKET_ENDS != 0 {
            Some(SocketView::parse(s0).ok_or(DecodeError::SocketEnds { len: s0.len() })?)
        } else {
            None
        },
    })
}

fn decode_file(bytes: &[u8]) -> Result<FileRecord, DecodeError> {
    let kind = EventKind::FileAttr;
    let fixed = core::mem::size_of::<FileEvent>();
    let e: FileEvent = read_struct(bytes).ok_or(DecodeError::Short {
        kind,
        len: bytes.len(),
        need: fixed,
    })?;
    let op = SyscallOp::from_u32(e.op).ok_or(DecodeError::UnknownOp { kind, op: e.op })?;
    let data = &bytes[fixed..];
    let lens = [e.path_len, e.base_len, e.name_len, e.value_len].map(|l| l as usize);
    let sum: usize = lens.iter().sum();
    if sum > data.len() {
        return Err(DecodeError::DataOverflow {
            sum,
            data: data.len(),
        });
    }
    let (path, rest) = data.split_at(lens[0]);
    let (base, rest) = rest.split_at(lens[1]);
    let (name, rest) = rest.split_at(lens[2]);
    let value = &rest[..lens[3]];
    let flags = e.flags;
    let has = |bit: u32| flags & bit != 0;
    Ok(FileRecord {
        boot_ns: e.header.boot_ns,
        task: e.task,
        op,
        ret: e.ret,
        fd: e.fd,
        at_flags: e.at_flags,
        mode: e.mode,
        uid: e.uid,
        gid: e.gid,
        before: has(file_flags::OLD_KNOWN).then_some(InodeAttrs {
            mode: e.old_mode,
            uid: e.old_uid,
            gid: e.old_gid,
            nlink: e.nlink,
            ino: e.ino,
            dev: e.dev,
        }),
        path: path.to_vec(),
        path_unreadable: has(file_flags::PATH_UNREADABLE),
        path_truncated: has(file_flags::PATH_TRUNCATED),
        base: join_components(base),
        base_is_file: has(file_flags::BASE_IS_FILE),
        base_truncated: has(file_flags::BASE_TRUNCATED),
        base_is_cwd: has(file_flags::BASE_IS_CWD),
        cwd_is_leaders: has(file_flags::CWD_IS_LEADERS),
        kernel_path: has(file_flags::KERNEL_PATH),
        path_argument_ignored: has(file_flags::ARG_IGNORED),
        xattr_name: op.is_xattr().then(|| name.to_vec()),
        xattr_value: op.sets_xattr().then(|| value.to_vec()),
        xattr_value_size: e.value_size,
        xattr_value_truncated: has(file_flags::VALUE_TRUNCATED),
        xattr_name_unreadable: op.is_xattr() && has(file_flags::NAME_UNREADABLE),
        xattr_value_unreadable: op.sets_xattr() && has(file_flags::VALUE_UNREADABLE),
        xattr_rewritten: has(file_flags::XATTR_REWRITTEN),
    })
}

fn decode_exec(bytes: &[u8]) -> Result<ExecRecord, DecodeError> {
    let fixed = core::mem::size_of::<ExecEvent>();
    let e: ExecEvent = read_struct(bytes).ok_or(DecodeError::Short {
        kind: EventKind::Exec,
        len: bytes.len(),
        need: fixed,
    })?;
    let data = &bytes[fixed..];
    let lens = [e.argv_len, e.exe_len, e.cwd_len, e.cgroup_len].map(|l| l as usize);
    let sum: usize = lens.iter().sum();
    if sum > data.len() {
        return Err(DecodeError::DataOverflow {
            sum,
            data: data.len(),
        });
    }
    let (argv, rest) = data.split_at(lens[0]);
    let (exe, rest) = rest.split_at(lens[1]);
    let (cwd, rest) = rest.split_at(lens[2]);
    let cgroup = &rest[..lens[3]];
    let flags = e.flags;
    Ok(ExecRecord {
        boot_ns: e.header.boot_ns,
        task: e.task,
        argv: split_argv(argv),
        argv_truncated: flags & exec_flags::ARGV_TRUNCATED != 0,
        argv_unreadable: flags & exec_flags::ARGV_UNREADABLE != 0,
        argv_total: e.argv_total,
        exe: join_components(exe),
        exe_truncated: flags & exec_flags::EXE_TRUNCATED != 0,
        exe_unlinked: flags & exec_flags::EXE_UNLINKED != 0,
        cwd: join_components(cwd),
        cwd_truncated: flags & exec_flags::CWD_TRUNCATED != 0,
        cgroup: join_components(cgroup),
        cgroup_truncated: flags & exec_flags::CGROUP_TRUNCATED != 0,
    })
}

/// `arg_start..arg_end` holds NUL-terminated arguments. An empty argument
/// is a lone NUL and must survive; a truncated tail has no final NUL.
pub fn split_argv(raw: &[u8]) -> Vec<Vec<u8>> {
    if raw.is_empty() {
        return Vec::new();
    }
    let body = raw.strip_suffix(b"\0").unwrap_or(raw);
    body.split(|&b| b == 0).map(<[u8]>::to_vec).collect()
}

/// Leaf-first NUL-terminated components (`ls\0bin\0usr\0`) to `/usr/bin/ls`.
/// No components is the root directory. An empty input (the kernel could
/// not resolve the path) stays empty.
pub fn join_components(raw: &[u8]) -> Vec<u8> {
    if raw.is_empty() {
        return Vec::new();
    }
    let body = raw.strip_suffix(b"\0").unwrap_or(raw);
    let mut out = Vec::with_capacity(raw.len() + 1);
    for comp in body.split(|&b| b == 0).rev() {
        // The kernel names a filesystem root "/" itself; it adds nothing.
        if comp.is_empty() || comp == b"/" {
            continue;
        }
        out.push(b'/');
        out.extend_from_slice(comp);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

/// Copies a `repr(C)` wire struct out of the front of `bytes`.
/// A network record. It carries its addresses only as far as they hold
/// something ([`NetEvent::record_size`]): what it leaves out reads as
/// zeros, and an address said to be longer than what came is an error.
fn decode_net(bytes: &[u8]) -> Result<NetRecord, DecodeError> {
    let kind = EventKind::Net;
    let mut whole = [0u8; size_of::<NetEvent>()];
    let sent = bytes.len().min(whole.len());
    whole[..sent].copy_from_slice(&bytes[..sent]);
    let short = |need: usize| DecodeError::Short {
        kind,
        len: bytes.len(),
        need,
    };
    // (Never short: `whole` is a NetEvent's size.)
    let e: NetEvent = read_struct(&whole).ok_or_else(|| short(whole.len()))?;
    let op = match e.op {
        NET_OP_CONNECT_OUTCOME => NetOp::ConnectOutcome,
        NET_OP_CONNECT_UNSEEN => NetOp::ConnectUnseen {
            fast_open: e.flags & net_flags::FAST_OPEN != 0,
        },
        NET_OP_UDP_SEND => NetOp::UdpSend,
        NET_OP_UDP_RECEIVE => NetOp::UdpReceive,
        op => NetOp::Syscall(SyscallOp::from_u32(op).ok_or(DecodeError::UnknownOp { kind, op })?),
    };
    let len = (e.sockaddr_len as usize).min(SOCKADDR_CAP);
    let need = NET_EVENT_FIXED + len;
    if need > bytes.len() {
        return Err(short(need));
    }
    let kernel_sockaddr = if e.flags & net_flags::KERNEL_ADDRESS != 0 {
        let len = (e.kernel_sockaddr_len as usize).min(SOCKADDR_CAP);
        let need = core::mem::offset_of!(NetEvent, kernel_sockaddr) + len;
        if need > bytes.len() {
            return Err(short(need));
        }
        Some(e.kernel_sockaddr[..len].to_vec())
    } else {
        None
    };
    Ok(NetRecord {
        boot_ns: e.header.boot_ns,
        task: e.task,
        op,
        fd: e.fd,
        ret: e.ret,
        family: e.family,
        protocol: e.protocol,
        sock_type: e.sock_type,
        arg: e.arg,
        sockaddr: e.sockaddr[..len].to_vec(),
        kernel_sockaddr,
        local: endpoint(e.family, &e.local_addr, e.local_port),
        remote: endpoint(e.family, &e.remote_addr, e.remote_port),
    })
}

fn read_struct<T: aya::Pod>(bytes: &[u8]) -> Option<T> {
    if bytes.len() < core::mem::size_of::<T>() {
        return None;
    }
    // SAFETY: the length was checked; T is Pod (any bit pattern is valid)
    // and read_unaligned copes with the ring buffer's 8-byte alignment.
    Some(unsafe { core::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sensor_common::{ID_UNSET, NET_SHORT_SOCKADDR};

    fn task(tgid: u32) -> TaskInfo {
        TaskInfo {
            tgid,
            tid: tgid,
            ppid: 1,
            uid: 1000,
            gid: 1000,
            euid: 0,
            egid: 0,
            suid: 0,
            sgid: 0,
            fsuid: 0,
            fsgid: 0,
            loginuid: ID_UNSET,
            sessionid: ID_UNSET,
            flags: 0,
            start_boottime: 5_000_000_000,
            parent_start_boottime: 1,
            cgroup_id: 7,
            cap_permitted: 0,
            cap_effective: 0,
            comm: *b"ls\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
            tty: [0; 32],
        }
    }

    fn mount_record(
        op: SyscallOp,
        flags: u64,
        path: &[u8],
        source: &[u8],
        base: &[u8],
    ) -> SysRecord {
        SysRecord {
            boot_ns: 0,
            task: task(9),
            op: SysOp::Syscall(op),
            ret: 0,
            args: [flags, 0, 0, 0],
            path: path.to_vec(),
            name: source.to_vec(),
            fstype: Vec::new(),
            base: base.to_vec(),
            truncated: false,
            unreadable: false,
            namespaces_made: None,
            target_unknown: false,
            fixed_file: false,
            argument_ignored: false,
            other_names: false,
            base2_unknown: false,
            second_is_file: false,
            base2: Vec::new(),
            socket: None,
            module_name: None,
        }
    }

    #[test]
    fn mount_paths_are_joined_to_their_base() {
        let bind = sensor_common::mount_flags::MS_BIND;
        // Relative target and source of a bind mount: both joined.
        let r = mount_record(SyscallOp::Mount, bind, b"mnt", b"etc", b"/srv");
        assert_eq!(r.mount_point(), b"/srv/mnt");
        assert!(r.mount_point_resolved());
        assert_eq!(r.mount_source_path().as_deref(), Some(&b"/srv/etc"[..]));
        // An absolute target beside a relative source: the target as is.
        let r = mount_record(SyscallOp::Mount, bind, b"/mnt", b"etc", b"/srv");
        assert_eq!(r.mount_point(), b"/mnt");
        assert!(!r.mount_point_resolved());
        assert_eq!(r.mount_source_path().as_deref(), Some(&b"/srv/etc"[..]));
        // Not a bind or move: the source is a device or a name, kept as is.
        let r = mount_record(SyscallOp::Mount, 0, b"mnt", b"tmpfs", b"/srv");
        assert_eq!(r.mount_source_path(), None);
        // A relative source whose base walk failed is not made up.
        let r = mount_record(SyscallOp::Mount, bind, b"/mnt", b"etc", b"");
        assert_eq!(r.mount_source_path(), None);
        // An empty path is the dirfd itself only for the fd-based calls.
        let r = mount_record(SyscallOp::MountSetattr, 0, b"", b"", b"/srv/mnt");
        assert_eq!(r.mount_point(), b"/srv/mnt");
        assert!(r.mount_point_resolved());
        let r = mount_record(SyscallOp::Mount, bind, b"", b"etc", b"/srv");
        assert_eq!(r.mount_point(), b"");
        assert!(!r.mount_point_resolved());
    }

    fn as_bytes<T>(v: &T) -> &[u8] {
        // SAFETY: test-only view of a plain repr(C) struct.
        unsafe {
            core::slice::from_raw_parts((v as *const T).cast::<u8>(), core::mem::size_of::<T>())
        }
    }

    /// A connect's record as the kernel side sends it: cut after its
    /// addresses (`NetEvent::record_size`), padded to 8 bytes.
    fn net_record(sockaddr: &[u8], kernel: Option<&[u8]>) -> Vec<u8> {
        let mut e = NetEvent {
            header: EventHeader {
                kind: EventKind::Net as u32,
                size: 0,
                boot_ns: 42,
            },
            task: task(99),
            op: SyscallOp::Connect as u32,
            fd: 3,
            ret: -111,
            family: 2,
            protocol: 6,
            sock_type: 1,
            flags: 0,
            arg: 0,
            sockaddr_len: sockaddr.len() as u32,
            local_addr: [127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            remote_addr: [127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            local_port: 40000,
            remote_port: 9,
            kernel_sockaddr_len: kernel.map_or(0, |k| k.len() as u32),
            // Bytes past an address's length: never part of the record.
            sockaddr: [0xEE; SOCKADDR_CAP],
            kernel_sockaddr: [0xEE; SOCKADDR_CAP],
        };
        e.sockaddr[..sockaddr.len()].copy_from_slice(sockaddr);
        if let Some(k) = kernel {
            e.flags = net_flags::KERNEL_ADDRESS;
            e.kernel_sockaddr[..k.len()].copy_from_slice(k);
        }
        let size = NetEvent::record_size(e.sockaddr_len, kernel.is_some());
        e.header.size = size as u32;
        let mut v = as_bytes(&e)[..size].to_vec();
        while !v.len().is_multiple_of(8) {
            v.push(0xAA);
        }
        v
    }

    /// A system record of `op` with `flags` and the three strings
    /// `strings`, as the kernel side sends it (padded to 8 bytes).
    fn sys_event_record(op: u32, flags: u32, args: [u64; 4], strings: [&[u8]; 3]) -> Vec<u8> {
        let data = strings.concat();
        let e = SysEvent {
            header: EventHeader {
                kind: EventKind::System as u32,
                size: (size_of::<SysEvent>() + data.len()) as u32,
                boot_ns: 42,
            },
            task: task(99),
            op,
            flags,
            ret: 0,
            args,
            str_lens: strings.map(|s| s.len() as u32),
            base_len: 0,
        };
        let mut record = [as_bytes(&e), &data].concat();
        while !record.len().is_multiple_of(8) {
            record.push(0);
        }
        record
    }

    /// An io_uring connect's completion carries its socket's ends as its
    /// first string; one whose string is not that size is refused, and
    /// the bytes are never taken for a path.
    #[test]
    fn a_completion_with_its_sockets_ends_decodes_them() {
        let ends = SocketEnds {
            family: 2,
            protocol: 17,
            sock_type: 2,
            local_port: 5555,
            remote_port: 40002,
            local_addr: [127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            remote_addr: [127, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            ..SocketEnds::default()
        };
        let record = |data: &[u8]| {
            let op = SYS_OP_IO_URING_COMPLETE;
            sys_event_record(op, sys_flags::SOCKET_ENDS, [16, 41, 0, 0], [data, b"", b""])
        };
        let Ok(KernelEvent::System(x)) = decode(&record(as_bytes(&ends))) else {
            panic!("not decoded");
        };
        assert!(x.path.is_empty());
        assert_eq!(
            x.socket,
            Some(SocketView {
                family: 2,
                protocol: 17,
                local: Some("127.0.0.1:5555".parse().expect("addr")),
                remote: Some("127.0.0.2:40002".parse().expect("addr")),
            })
        );
        assert_eq!(
            decode(&record(&as_bytes(&ends)[..40])),
            Err(DecodeError::SocketEnds { len: 40 })
        );
    }

    /// A module syscall's record may carry the kernel's name for the
    /// module, NUL-padded in its third string, which is then no fstype.
    #[test]
    fn a_module_named_by_the_kernel_decodes_up_to_its_nul() {
        let mut name = [0u8; sensor_common::MODULE_NAME_CAP];
        name[..5].copy_from_slice(b"nlmon");
        let op = SyscallOp::DeleteModule as u32;
        let record = sys_event_record(op, sys_flags::MODULE_NAMED, [0; 4], [b"", b"other", &name]);
        let Ok(KernelEvent::System(x)) = decode(&record) else {
            panic!("not decoded");
        };
        assert_eq!(x.module_name.as_deref(), Some(&b"nlmon"[..]));
        assert_eq!(
            (x.name.as_slice(), x.fstype.as_slice()),
            (&b"other"[..], &b""[..])
        );
    }

    /// A connect seen from the socket's state change has its own op, and
    /// says whether a Fast Open send made it; no other op takes the flag.
    #[test]
    fn a_connect_without_a_call_decodes_its_fast_open_flag() {
        let mut record = net_record(&[], None);
        let mut whole = record.clone();
        whole.resize(size_of::<NetEvent>(), 0);
        let mut e: NetEvent = read_struct(&whole).expect("a record");
        for (flags, fast_open) in [(net_flags::FAST_OPEN, true), (0, false)] {
            (e.op, e.flags, e.fd) = (NET_OP_CONNECT_UNSEEN, flags, -1);
            record[..NET_EVENT_FIXED].copy_from_slice(&as_bytes(&e)[..NET_EVENT_FIXED]);
            let Ok(KernelEvent::Net(n)) = decode(&record) else {
                panic!("not decoded");
            };
            assert_eq!(n.op, NetOp::ConnectUnseen { fast_open });
            assert_eq!((n.fd, n.sockaddr.len()), (-1, 0));
        }
    }

    /// A datagram's record is sent whole, its caller's-address fields
    /// unwritten (whatever the ring buffer held): with their lengths 0 and
    /// no flag, none of it is read; its ends are the datagram's.
    #[test]
    fn a_udp_send_is_read_from_its_ends_alone() {
        let mut whole = net_record(&[], None);
        whole.resize(size_of::<NetEvent>(), 0);
        let mut e: NetEvent = read_struct(&whole).expect("a record");
        (e.op, e.fd, e.ret, e.family, e.protocol, e.sock_type) =
            (NET_OP_UDP_SEND, -1, 0, 10, 17, 2);
        e.remote_addr = std::net::Ipv6Addr::LOCALHOST.octets();
        e.local_addr = [0; 16];
        (e.remote_port, e.local_port) = (53, 40001);
        (e.sockaddr, e.kernel_sockaddr) = ([0xEE; SOCKADDR_CAP], [0xEE; SOCKADDR_CAP]);
        let Ok(KernelEvent::Net(n)) = decode(as_bytes(&e)) else {
            panic!("not decoded");
        };
        assert_eq!(n.op, NetOp::UdpSend);
        assert_eq!((n.sockaddr.len(), n.kernel_sockaddr), (0, None));
        assert_eq!(n.remote, Some("[::1]:53".parse().expect("an address")));
        assert_eq!(n.local, Some("[::]:40001".parse().expect("an address")));
        assert_eq!((n.family, n.protocol, n.sock_type), (10, 17, 2));
    }

    /// The io_uring submit hook's stage writes a rename's second directory
    /// after the base, as the third string (`STR2_AFTER_BASE`): it is
    /// `base2`, never an fstype, and the base is still the first's.
    #[test]
    fn a_second_directory_after_the_base_is_base2() {
        use sensor_common::io_uring::op;
        let (base, base2) = (&b"dir\0tmp\0"[..], &b"into\0dir\0tmp\0"[..]);
        let flags = sys_flags::BASE2_UNKNOWN | sys_flags::STR2_AFTER_BASE;
        let args = [op::RENAMEAT as u64, 3, 0, 4];
        let walked = [base, base2].concat();
        let mut record = sys_event_record(SYS_OP_IO_URING, flags, args, [b"c", b"d", &walked]);
        let mut e: SysEvent = read_struct(&record).expect("a record");
        (e.str_lens[2], e.base_len) = (base2.len() as u32, base.len() as u32);
        record[..size_of::<SysEvent>()].copy_from_slice(as_bytes(&e));
        let Ok(KernelEvent::System(x)) = decode(&record) else {
            panic!("not decoded");
        };
        assert_eq!(
            (x.path.as_slice(), x.name.as_slice()),
            (&b"c"[..], &b"d"[..])
        );
        assert_eq!(x.base, b"/tmp/dir");
        assert_eq!(x.base2, b"/tmp/dir/into");
        assert!(x.fstype.is_empty());
        assert_eq!(x.io_uring_path(), b"/tmp/dir/c");
        assert_eq!(
            x.io_uring_second_path().as_deref(),
            Some(&b"/tmp/dir/into/d"[..])
        );

        // Without the flag, the same bytes are the third string and then
        // the base.
        let mut record = sys_event_record(SYS_OP_IO_URING, 0, args, [b"c", b"d", &walked]);
        (e.flags, e.str_lens[2]) = (0, base.len() as u32);
        e.base_len = base2.len() as u32;
        record[..size_of::<SysEvent>()].copy_from_slice(as_bytes(&e));
        let Ok(KernelEvent::System(x)) = decode(&record) else {
            panic!("not decoded");
        };
        assert_eq!(
            (x.fstype.as_slice(), x.base.as_slice()),
            (base, &b"/tmp/dir/into"[..])
        );
        assert!(x.base2.is_empty());
    }

    /// Network records carry their addresses only as far as they hold
    /// something: each size decodes whole, and one whose address is said
    /// to be longer than what came is refused, not read past its end.
    #[test]
    fn net_records_are_cut_after_their_addresses() {
        let v4 = [2, 0, 0, 9, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        let unix = [&[1u8, 0][..], &[b'x'; 100]].concat();
        for (addr, kernel, size) in [
            (&[][..], None, NET_EVENT_FIXED),
            (&v4[..], None, NET_EVENT_FIXED + NET_SHORT_SOCKADDR),
            (&unix[..], None, NET_EVENT_FIXED + SOCKADDR_CAP),
            (&v4[..], Some(&v4[..]), size_of::<NetEvent>()),
        ] {
            let rec = net_record(addr, kernel);
            assert_eq!(rec.len(), size.next_multiple_of(8));
            let KernelEvent::Net(n) = decode(&rec).expect("decodes") else {
                panic!("not a network record")
            };
            assert_eq!(n.sockaddr, addr);
            assert_eq!(n.kernel_sockaddr.as_deref(), kernel);
            assert_eq!(n.ret, -111);
            assert_eq!(n.remote, Some("127.0.0.1:9".parse().expect("an address")));
        }
        // An address longer than the record holds (a header saying less
        // than the length field claims).
        let mut rec = net_record(&v4, None);
        let at = core::mem::offset_of!(NetEvent, sockaddr_len);
        rec[at..at + 4].copy_from_slice(&100u32.to_ne_bytes());
        assert!(
            matches!(decode(&rec), Err(DecodeError::Short { need, .. }) if need == NET_EVENT_FIXED + 100),
            "{:?}",
            decode(&rec).map(|_| ())
        );
    }

    fn exec_record(argv: &[u8], exe: &[u8], cwd: &[u8], cgroup: &[u8], flags: u32) -> Vec<u8> {
        let fixed = core::mem::size_of::<ExecEvent>();
        let total = fixed + argv.len() + exe.len() + cwd.len() + cgroup.len();
        let e = ExecEvent {
            header: EventHeader {
                kind: EventKind::Exec as u32,
                size: total as u32,
                boot_ns: 42,
            },
            task: task(99),
            flags,
            argv_total: argv.len() as u32,
            argv_len: argv.len() as u32,
            exe_len: exe.len() as u32,
            cwd_len: cwd.len() as u32,
            cgroup_len: cgroup.len() as u32,
        };
        let mut v = as_bytes(&e).to_vec();
        for part in [argv, exe, cwd, cgroup] {
            v.extend_from_slice(part);
        }
        // Ring buffer records are padded to 8 bytes.
        while !v.len().is_multiple_of(8) {
            v.push(0xAA);
        }
        v
    }

    #[test]
    fn exec_record_decodes_byte_exact() {
        let argv = b"/bin/echo\0a b\0\0\"q\"\0\xff\xfe\0";
        let rec = exec_record(argv, b"echo\0bin\0usr\0", b"tmp\0", b"user.slice\0", 0);
        let KernelEvent::Exec(e) = decode(&rec).expect("decodes") else {
            panic!("not exec")
        };
        assert_eq!(
            e.argv,
            vec![
                b"/bin/echo".to_vec(),
                b"a b".to_vec(),
                b"".to_vec(),
                b"\"q\"".to_vec(),
                b"\xff\xfe".to_vec()
            ]
        );
        assert_eq!(e.exe, b"/usr/bin/echo");
        assert_eq!(e.cwd, b"/tmp");
        assert_eq!(e.cgroup, b"/user.slice");
        assert_eq!(e.task.tgid, 99);
        assert_eq!(e.boot_ns, 42);
        assert!(!e.argv_truncated);
    }

    #[test]
    fn truncated_argv_keeps_partial_last_argument_and_flag() {
        let rec = exec_record(
            b"sh\0-c\0abc",
            b"sh\0bin\0",
            b"",
            b"",
            exec_flags::ARGV_TRUNCATED,
        );
        let KernelEvent::Exec(e) = decode(&rec).expect("decodes") else {
            panic!("not exec")
        };
        assert_eq!(
            e.argv,
            vec![b"sh".to_vec(), b"-c".to_vec(), b"abc".to_vec()]
        );
        assert!(e.argv_truncated);
    }

    #[test]
    fn socket_addresses_parse_from_untrusted_bytes() {
        let mut v4 = vec![2, 0, 0x1f, 0x90, 127, 0, 0, 1];
        v4.extend_from_slice(&[0; 8]);
        assert_eq!(
            SockAddr::parse(&v4),
            Some(SockAddr::Ip("127.0.0.1:8080".parse().expect("addr")))
        );
        let mut v6 = vec![10, 0, 0, 22, 0, 0, 0, 0];
        v6.extend_from_slice(&std::net::Ipv6Addr::LOCALHOST.octets());
        assert_eq!(
            SockAddr::parse(&v6),
            Some(SockAddr::Ip("[::1]:22".parse().expect("addr")))
        );
        assert_eq!(
            SockAddr::parse(b"\x01\0/run/x.sock\0junk"),
            Some(SockAddr::Unix(b"/run/x.sock".to_vec()))
        );
        assert_eq!(
            SockAddr::parse(b"\x01\0\0abs\0name"),
            Some(SockAddr::Unix(b"@abs\0name".to_vec()))
        );
        assert_eq!(SockAddr::parse(&[2, 0, 1]), None, "a short IPv4 address");
        assert_eq!(SockAddr::parse(&[1]), None);
        assert_eq!(SockAddr::parse(&[16, 0, 9]), Some(SockAddr::Other(16)));
    }

    /// The cwd walked for absolute paths is given to follow
    /// `/proc/self/cwd` from, whole only; it is not part of a path shown.
    #[test]
    fn the_cwd_walked_at_the_call_is_whole_and_not_part_of_an_absolute_path() {
        let rename = |path: &[u8], path2: &[u8], base_is_cwd, base_truncated| WatchRecord {
            boot_ns: 0,
            // SAFETY: TaskInfo is plain integers and byte arrays.
            task: unsafe { std::mem::zeroed() },
            op: SyscallOp::Rename,
            ret: 0,
            open_flags: 0,
            fd: sensor_common::AT_FDCWD,
            path: path.to_vec(),
            base: b"/etc/cron.d".to_vec(),
            base_is_file: false,
            base_is_cwd,
            cwd_is_leaders: false,
            base_truncated,
            path2: path2.to_vec(),
            base2_unknown: false,
            base2: Vec::new(),
            base2_truncated: false,
            second_is_file: false,
            path_truncated: false,
            path_unreadable: false,
            matched: 0,
        };
        let absolute = rename(b"/tmp/x", b"/proc/self/cwd/x", true, false);
        assert_eq!(
            absolute.cwd_at_call().map(|c| c.path),
            Some(&b"/etc/cron.d"[..])
        );
        assert!(!absolute.base_shown());
        assert_eq!(
            absolute.resolved_path2().as_deref(),
            Some(&b"/proc/self/cwd/x"[..])
        );
        let cut = rename(b"/tmp/x", b"/proc/self/cwd/x", true, true);
        assert!(cut.cwd_at_call().is_none());
        assert!(!cut.base_shown());
        assert!(
            rename(b"/tmp/x", b"/y", false, false)
                .cwd_at_call()
                .is_none()
        );
        assert!(rename(b"x", b"/y", true, false).base_shown());
        assert!(rename(b"/x", b"y", true, false).base_shown());
    }

    /// linkat's file at its fd (AT_EMPTY_PATH) is the base, walked: the
    /// second path, shown; a relative second path's directory likewise,
    /// or its own (`base2`) where the first is relative to another fd.
    #[test]
    fn the_base_is_the_second_paths_where_only_it_starts_from_an_fd() {
        let link = |path: &[u8], path2: &[u8], second_is_file| WatchRecord {
            boot_ns: 0,
            // SAFETY: TaskInfo is plain integers and byte arrays.
            task: unsafe { std::mem::zeroed() },
            op: SyscallOp::Linkat,
            ret: 0,
            open_flags: sensor_common::AT_EMPTY_PATH,
            fd: sensor_common::AT_FDCWD,
            path: path.to_vec(),
            base: b"/tmp/#12".to_vec(),
            base_is_file: false,
            base_is_cwd: false,
            cwd_is_leaders: false,
            base_truncated: false,
            path2: path2.to_vec(),
            base2_unknown: false,
            base2: Vec::new(),
            base2_truncated: false,
            second_is_file,
            path_truncated: false,
            path_unreadable: false,
            matched: 0,
        };
        let by_fd = link(b"/etc/cron.d/x", b"", true);
        assert_eq!(by_fd.resolved_path2().as_deref(), Some(&b"/tmp/#12"[..]));
        assert_eq!(
            by_fd.resolved_path().as_deref(),
            Some(&b"/etc/cron.d/x"[..])
        );
        assert!(by_fd.base_shown() && by_fd.base_is_seconds());
        let relative2 = link(b"/etc/cron.d/x", b"y", false);
        assert!(relative2.base_shown() && relative2.base_is_seconds());
        let relative = link(b"x", b"", false);
        assert!(relative.base_shown() && !relative.base_is_seconds());
        assert!(relative.resolved_path2().is_none());
        let absolute = link(b"/etc/cron.d/x", b"/y", false);
        assert!(!absolute.base_shown() && !absolute.base_is_seconds());
        // Relative to two fds: the second's own directory, where walked.
        let two_fds = |base2: &[u8]| WatchRecord {
            base2_unknown: true,
            base2: base2.to_vec(),
            ..link(b"x", b"y", false)
        };
        let walked = two_fds(b"/etc/cron.d");
        assert_eq!(walked.resolved_path(), Some(b"/tmp/#12/x".to_vec()));
        assert_eq!(walked.resolved_path2(), Some(b"/etc/cron.d/y".to_vec()));
        assert!(!walked.base_is_seconds());
        assert!(!walked.base2_lost());
        assert!(two_fds(b"").resolved_path2().is_none());
        assert!(two_fds(b"").base2_lost());
        // The file at linkat's fd, at a name relative to another fd.
        let file = WatchRecord {
            base2_unknown: true,
            base2: b"/tmp/#13".to_vec(),
            ..link(b"x", b"", true)
        };
        assert_eq!(file.resolved_path2(), Some(b"/tmp/#13".to_vec()));
    }

    #[test]
    fn a_symlinks_target_is_the_path_it_names_from_the_links_directory() {
        let link = |path: &[u8], target: &[u8], base: &[u8]| WatchRecord {
            boot_ns: 0,
            // SAFETY: TaskInfo is plain integers and byte arrays.
            task: unsafe { std::mem::zeroed() },
            op: SyscallOp::Symlinkat,
            ret: 0,
            open_flags: 0,
            fd: sensor_common::AT_FDCWD,
            path: path.to_vec(),
            base: base.to_vec(),
            base_is_file: false,
            base_is_cwd: false,
            cwd_is_leaders: false,
            base_truncated: false,
            path2: target.to_vec(),
            base2_unknown: false,
            base2: Vec::new(),
            base2_truncated: false,
            second_is_file: false,
            path_truncated: false,
            path_unreadable: false,
            matched: 0,
        };
        let target = |r: WatchRecord| {
            symlink_target_path(&r.path2, r.resolved_path().as_deref())
                .map(|p| String::from_utf8(p).expect("utf-8"))
        };
        assert_eq!(
            target(link(b"/tmp/x", b"/etc//shadow", b"")).as_deref(),
            Some("/etc/shadow")
        );
        assert_eq!(
            target(link(b"/tmp/a/x", b"../../etc/shadow", b"")).as_deref(),
            Some("/etc/shadow")
        );
        assert_eq!(
            target(link(b"a/x", b"../y", b"/srv")).as_deref(),
            Some("/srv/y"),
            "the link joined to its base first"
        );
        assert_eq!(
            target(link(b"x", b"y", b"")),
            None,
            "the link's directory unknown"
        );
    }

    #[test]
    fn joined_and_absolute_paths_are_made_normal_byte_for_byte() {
        let normal = |p: &[u8]| String::from_utf8_lossy(&lexically_normal(p)).into_owned();
        for (path, want) in [
            (&b"/etc/cron.d/x"[..], "/etc/cron.d/x"),
            (b"/etc/cron.d/", "/etc/cron.d/"),
            (b"/", "/"),
            (b"//etc//cron.d/x", "/etc/cron.d/x"),
            (b"/etc/./cron.d/./x", "/etc/cron.d/x"),
            (b"/var/tmp/../../etc/cron.d/x", "/etc/cron.d/x"),
            (b"/../../etc/shadow", "/etc/shadow"),
            (b"/etc/cron.d/..", "/etc"),
            (b"/etc/cron.d/.", "/etc/cron.d"),
            (b"/etc/cron.d/../", "/etc/"),
            (b"/..", "/"),
            (b"/a/.../b", "/a/.../b"),
        ] {
            assert_eq!(normal(path), want, "{}", String::from_utf8_lossy(path));
        }
        // Bytes that are not UTF-8 stay as they were.
        assert_eq!(lexically_normal(b"/tmp/\xff/../\xfe"), b"/tmp/\xfe");
        // The quick check says a path is normal exactly when making it
        // normal leaves it as it is.
        for path in [
            &b"/"[..],
            b"//",
            b"/etc",
            b"/etc/",
            b"/etc//",
            b"/etc/.",
            b"/etc/..",
            b"/etc/./x",
            b"/.x/..y/...",
            b"/a.",
            b"/..",
            b"/.",
            b"etc",
            b"",
        ] {
            assert_eq!(
                is_lexically_normal(path),
                lexically_normal(path) == path,
                "{}",
                String::from_utf8_lossy(path)
            );
        }
        assert_eq!(
            join(b"../../etc/cron.d/x", b"/var/tmp").as_deref(),
            Some(&b"/etc/cron.d/x"[..])
        );
        assert_eq!(
            join(b"./etc/cron.d/x", b"/").as_deref(),
            Some(&b"/etc/cron.d/x"[..])
        );
        assert_eq!(join(b"x", b""), None, "a relative path with no base");
    }

    #[test]
    fn root_directory_has_no_components() {
        assert_eq!(join_components(b"/\0"), b"/");
        assert_eq!(join_components(b""), b"");
        assert_eq!(join_components(b"etc\0"), b"/etc");
    }

    #[test]
    fn lying_lengths_are_rejected_not_trusted() {
        let mut rec = exec_record(b"a\0", b"", b"", b"", 0);
        // Claim a 60 KiB argv in a tiny record.
        let off = core::mem::offset_of!(ExecEvent, argv_len);
        rec[off..off + 4].copy_from_slice(&60_000u32.to_ne_bytes());
        assert!(matches!(
            decode(&rec),
            Err(DecodeError::DataOverflow { .. })
        ));
        // Declared size larger than the record.
        let mut rec = exec_record(b"a\0", b"", b"", b"", 0);
        rec[4..8].copy_from_slice(&100_000u32.to_ne_bytes());
        assert!(matches!(
            decode(&rec),
            Err(DecodeError::SizeMismatch { .. })
        ));
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x2545F4914F6CDD1Du64;
        for len in 0..400 {
            let mut buf = vec![0u8; len];
            for b in &mut buf {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                *b = seed as u8;
            }
            if len >= 4 {
                buf[0..4].copy_from_slice(&((seed % 4) as u32).to_ne_bytes());
            }
            let _ = decode(&buf);
        }
    }

    #[test]
    fn exit_and_fork_decode() {
        let e = ExitEvent {
            header: EventHeader {
                kind: EventKind::Exit as u32,
                size: core::mem::size_of::<ExitEvent>() as u32,
                boot_ns: 9,
            },
            task: task(5),
            exit_status: 9,
            _pad0: 0,
        };
        assert_eq!(
            decode(as_bytes(&e)),
            Ok(KernelEvent::Exit(ExitRecord {
                boot_ns: 9,
                task: task(5),
                status: 9
            }))
        );
        let f = ForkEvent {
            header: EventHeader {
                kind: EventKind::Fork as u32,
                size: core::mem::size_of::<ForkEvent>() as u32,
                boot_ns: 3,
            },
            task: task(6),
        };
        assert_eq!(
            decode(as_bytes(&f)),
            Ok(KernelEvent::Fork(ForkRecord {
                boot_ns: 3,
                task: task(6)
            }))
        );
    }
}
