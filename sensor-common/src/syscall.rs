//! Syscalls traced at their entry and exit (the `raw_syscalls`
//! tracepoints, whose programs dispatch by syscall number), and the
//! records they produce.
//!
//! Each traced syscall is one [`SyscallOp`]. The daemon writes the op of
//! every syscall it traces into the `SYSCALL_OPS` map, indexed by the
//! architecture's syscall number: the kernel side never compiles in
//! syscall numbers, and a number left at 0 (untraced, or its family
//! disabled in the config) makes the dispatchers return at once.

use core::mem::size_of;

use crate::event::{EventHeader, InodeGeneration, TaskInfo};

/// A traced syscall. Numbers are grouped by the record they produce and
/// never reused.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SyscallOp {
    // 1..=31: file attribute changes, [`FileEvent`].
    Chmod = 1,
    Fchmod = 2,
    Fchmodat = 3,
    /// Linux 6.6+: fchmodat with a flags argument.
    Fchmodat2 = 4,
    Chown = 5,
    Fchown = 6,
    Lchown = 7,
    Fchownat = 8,
    Setxattr = 9,
    Lsetxattr = 10,
    Fsetxattr = 11,
    Removexattr = 12,
    Lremovexattr = 13,
    Fremovexattr = 14,
    // 16..=31: writes to watched paths, [`WatchEvent`].
    Open = 16,
    Openat = 17,
    Openat2 = 18,
    Creat = 19,
    Truncate = 20,
    Ftruncate = 21,
    Unlink = 22,
    Unlinkat = 23,
    Rename = 24,
    Renameat = 25,
    Renameat2 = 26,
    /// A new name for a file (a hard link) or a symbolic link: a unit
    /// enabled by a symlink into `/etc/systemd/system/*.wants/`, a cron
    /// job linked into `/etc/cron.d/`, or a second name kept for
    /// `/etc/shadow`; no open for writing is involved.
    Link = 27,
    Linkat = 28,
    Symlink = 29,
    Symlinkat = 30,
    // 32..=63: credential changes, [`CredEvent`].
    Setuid = 32,
    Setgid = 33,
    Setreuid = 34,
    Setregid = 35,
    Setresuid = 36,
    Setresgid = 37,
    Setfsuid = 38,
    Setfsgid = 39,
    Capset = 40,
    // 64..=95: network, [`NetEvent`].
    Connect = 64,
    Accept = 65,
    Accept4 = 66,
    Bind = 67,
    Listen = 68,
    /// Only the sockets that see or forge whole packets are reported (see
    /// [`captures_packets`]): a packet socket (a sniffer, or a passive
    /// backdoor that waits for a magic packet and never binds a port), a
    /// raw IP socket (forged packets, an ICMP tunnel) and an ICMP one.
    Socket = 69,
    // 96..=126: actions an intruder uses, [`SysEvent`].
    Ptrace = 96,
    InitModule = 97,
    FinitModule = 98,
    DeleteModule = 99,
    MemfdCreate = 100,
    Mount = 101,
    Umount2 = 102,
    Bpf = 103,
    /// kill/tkill/tgkill aimed at the sensor: only refused ones are sent
    /// (a signal that is generated is reported by `signal_generate`).
    Kill = 104,
    Tkill = 105,
    Tgkill = 106,
    /// The new mount API's attach step (`fsopen`/`fsmount` or `open_tree`,
    /// then `move_mount`): what `mount(2)` does in one call.
    MoveMount = 107,
    /// Changes a mount's attributes (read-only, nosuid, noexec, idmapped…)
    /// without mount(2): a read-only mount made writable leaves no mount
    /// or remount call behind.
    MountSetattr = 108,
    /// Reads or writes another process's memory without ptrace: how
    /// credentials are lifted from a process's memory and code injected
    /// into one. The same permission as a ptrace attach.
    ProcessVmReadv = 109,
    ProcessVmWritev = 110,
    /// Copies one of another process's open files into the caller
    /// (through a pidfd): a socket, a credentials file or a pipe taken
    /// from a running service without ever opening it. The same
    /// permission as a ptrace attach.
    PidfdGetfd = 111,
    /// Moves the caller into another namespace (an nsfs fd, or a pidfd's
    /// namespaces): how a process in a container reaches the host's
    /// mount, pid or network namespace (`nsenter -t 1 -m -p`), and how
    /// runtimes enter a container.
    Setns = 112,
    /// Loads a kernel to boot into (`kexec`, from memory segments or from
    /// a file): past the running kernel's checks and into one the caller
    /// chose, without a reboot through the firmware.
    KexecLoad = 113,
    KexecFileLoad = 114,
    /// New namespaces for the caller (`unshare`) or for a new process
    /// (`clone`, `clone3`): only calls with a `CLONE_NEW*` flag are
    /// reported. An unprivileged user namespace is the usual first step of
    /// a kernel exploit (it grants the capabilities that reach netfilter,
    /// mount and other code otherwise closed to the user), and a new mount
    /// or pid namespace is how a process hides what it does from the
    /// host's view.
    Unshare = 115,
    Clone = 116,
    Clone3 = 117,
}

/// `SysEvent::op` of an open of another process's memory file
/// (`/proc/PID/mem`, from a hook on the kernel's `mem_open`): `args` =
/// [the file's `f_mode`, the target's pid]; `ret` the open's result.
pub const SYS_OP_PROC_MEM_OPEN: u32 = 125;

/// `SysEvent::op` of an io_uring request (see [`crate::io_uring`]):
/// `args[0]` is its opcode; no syscall, no result yet.
pub const SYS_OP_IO_URING: u32 = 126;

/// `SysEvent::op` of the completion of an io_uring request reported at
/// submission (op [`SYS_OP_IO_URING`]): `ret` is its result (the CQE's
/// `res`: a new fd, 0, or `-errno`), `args` = [opcode, the submission
/// record's `header.boot_ns` (which, with the process, names it), the
/// CQE's flags, 0].
pub const SYS_OP_IO_URING_COMPLETE: u32 = 124;

/// `SysEvent::op` of a new process (or thread) that got namespaces its
/// parent does not have, seen at the fork (`sched_process_fork`), from a
/// clone whose entry left no record: its arguments, as read there, asked
/// for none. clone3's are read from the caller's memory, which another
/// of its threads can change between that read and the kernel's own
/// copy; a record can also be lost (counted). `args` = [0, the
/// `CLONE_NEW*` bits of what was made, the child's pid, 0]; `flags` has
/// [`sys_flags::NAMESPACES_SEEN`]; the task is the parent.
pub const SYS_OP_NAMESPACES_AT_FORK: u32 = 123;

/// `SysEvent::op` of a signal sent to the sensor itself (from the
/// `signal_generate` tracepoint, whatever syscall or kernel path sent it).
pub const SYS_OP_SIGNAL_SENSOR: u32 = 127;

/// `AF_PACKET`: packets as they cross a network device, below IP.
pub const AF_PACKET: u16 = 17;

/// The bits of socket's type argument that are the type (the kernel's
/// `SOCK_TYPE_MASK`); the others are flags.
pub const SOCK_TYPE_MASK: u32 = 0xf;

/// Whether a `socket(family, type, protocol)` call asks for a socket that
/// sees or forges whole packets, which the sensor reports (the others, by
/// far the most, are not: their connects, binds and datagrams are):
/// - a packet socket, of any type: how a sniffer reads a device's
///   traffic, and how a passive backdoor (BPFDoor) waits for its magic
///   packet with no port bound;
/// - a raw IPv4 or IPv6 socket: forged packets, scans, ICMP tunnels;
/// - an ICMP datagram ("ping") socket, which an unprivileged user can
///   open where `net.ipv4.ping_group_range` lets them: an ICMP tunnel's
///   way without a raw socket.
///
/// `sock_type` may carry `SOCK_NONBLOCK`/`SOCK_CLOEXEC`; only
/// [`SOCK_TYPE_MASK`]'s bits are the type.
#[inline(always)]
pub const fn captures_packets(family: u32, sock_type: u32, protocol: u32) -> bool {
    const AF_INET: u32 = 2;
    const AF_INET6: u32 = 10;
    const PACKET: u32 = AF_PACKET as u32;
    const SOCK_DGRAM: u32 = 2;
    const SOCK_RAW: u32 = 3;
    const IPPROTO_ICMP: u32 = 1;
    const IPPROTO_ICMPV6: u32 = 58;
    let kind = sock_type & SOCK_TYPE_MASK;
    match family {
        PACKET => true,
        AF_INET => kind == SOCK_RAW || (kind == SOCK_DGRAM && protocol == IPPROTO_ICMP),
        AF_INET6 => kind == SOCK_RAW || (kind == SOCK_DGRAM && protocol == IPPROTO_ICMPV6),
        _ => false,
    }
}

/// `NetEvent::op` of the record that reports how a non-blocking connect
/// (`EINPROGRESS`) ended; not a syscall: it comes from the socket's state
/// change (`inet_sock_set_state`), with the connecting task remembered.
pub const NET_OP_CONNECT_OUTCOME: u32 = 95;

/// `NetEvent::op` of a TCP socket that started connecting (`CLOSE` to
/// `SYN_SENT`) in a task that was in no connect call the sensor saw: a
/// send with `MSG_FASTOPEN` (sendto, sendmsg, sendmmsg, an io_uring send),
/// which connects the socket as it sends, or any other kernel path (not an
/// io_uring connect going where its request asked: the ring's records
/// report it). Not a syscall: it comes from the socket's state change
/// (`inet_sock_set_state`), in the connecting task. `fd` is -1 (unknown);
/// `arg` tells the socket apart from others of the task (its address's
/// low bits), for its outcome, which follows as
/// [`NET_OP_CONNECT_OUTCOME`]; `flags` may have [`net_flags::FAST_OPEN`].
pub const NET_OP_CONNECT_UNSEEN: u32 = 94;

/// `NetEvent::op` of the first datagram a UDP socket sent to a peer it is
/// not connected to (sendto, sendmsg, sendmmsg or an io_uring send naming
/// the address; from the cgroup `sendmsg4`/`sendmsg6` hooks, in the
/// sending task, before the datagram is routed: no result). Once per
/// socket and peer, whichever way the first datagram went (see
/// [`NET_OP_UDP_RECEIVE`]). `fd` is -1 (unknown); `family` is the peer
/// address's (an IPv4-mapped one is IPv4); `remote_addr`/`remote_port`
/// the peer as the kernel copied it, `local_*` the socket's own end.
pub const NET_OP_UDP_SEND: u32 = 93;

/// `NetEvent::op` of the first datagram a UDP socket not connected
/// received from a peer, where the receive asked for the sender's address
/// (recvfrom, recvmsg, recvmmsg; the cgroup `recvmsg4`/`recvmsg6` hooks,
/// in the receiving task, once the datagram is taken). Fields as for
/// [`NET_OP_UDP_SEND`], `remote_*` being the sender.
pub const NET_OP_UDP_RECEIVE: u32 = 92;

/// Slots of the `SYSCALL_OPS` map: the native numbers below
/// [`X32_SLOTS_BASE`] (x86_64 and arm64 end below 470), then x86_64's x32
/// numbers (see [`ops_slot`]).
pub const SYSCALL_SLOTS: u32 = 2048;

/// Where the x32 numbers start in `SYSCALL_OPS`.
pub const X32_SLOTS_BASE: u32 = 1024;

// Native numbers (x86_64's end below 512, where x32's own begin) fit below
// the x32 ones, and x32's (up to 547) fit in the map.
const _: () = assert!(X32_SLOTS_BASE >= 512 && X32_SLOTS_BASE + 548 <= SYSCALL_SLOTS);

/// The `SYSCALL_OPS` slot of syscall number `nr` as a syscall tracepoint
/// or the saved registers give it (`orig_ax` on x86_64); `SYSCALL_SLOTS`
/// or above for a number the map cannot hold (untraced).
///
/// Two things a caller controls decide which call the kernel makes, and
/// both must decide the slot too, or a traced call could pass unseen:
/// - Only the low 32 bits: the kernel takes the number as an `int`, but
///   `orig_ax` keeps the whole register, so `syscall(1 << 32 | 90, …)` is a
///   chmod whose exit shows 0x1_0000_005a.
/// - The x32 bit ([`crate::compat::X32_SYSCALL_BIT`]): any 64-bit process
///   can make x32 calls where the kernel allows them (`CONFIG_X86_X32_ABI`,
///   on Debian with `syscall.x32=y`), with the same registers and their
///   own numbers; they get their own slots, filled on x86_64 only.
#[inline(always)]
pub const fn ops_slot(nr: u64) -> u32 {
    let nr = nr as u32;
    if nr & crate::compat::X32_SYSCALL_BIT == 0 {
        nr
    } else {
        // An x32 number is at most 547; anything above stays out of range.
        X32_SLOTS_BASE.saturating_add(nr ^ crate::compat::X32_SYSCALL_BIT)
    }
}

/// The record kinds made by syscalls, one program family each.
pub const SYSCALL_FAMILIES: [crate::EventKind; 5] = [
    crate::EventKind::FileAttr,
    crate::EventKind::FileWrite,
    crate::EventKind::Cred,
    crate::EventKind::Net,
    crate::EventKind::System,
];

/// What a traced syscall's arguments mean, so that one program can serve a
/// whole family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// `(const char *path, ...)`, relative paths from the cwd.
    Path,
    /// `(int fd, ...)`.
    Fd,
    /// `(int dirfd, const char *path, ...)`.
    DirfdPath,
}

impl SyscallOp {
    pub const ALL: [SyscallOp; 66] = [
        SyscallOp::Chmod,
        SyscallOp::Fchmod,
        SyscallOp::Fchmodat,
        SyscallOp::Fchmodat2,
        SyscallOp::Chown,
        SyscallOp::Fchown,
        SyscallOp::Lchown,
        SyscallOp::Fchownat,
        SyscallOp::Setxattr,
        SyscallOp::Lsetxattr,
        SyscallOp::Fsetxattr,
        SyscallOp::Removexattr,
        SyscallOp::Lremovexattr,
        SyscallOp::Fremovexattr,
        SyscallOp::Open,
        SyscallOp::Openat,
        SyscallOp::Openat2,
        SyscallOp::Creat,
        SyscallOp::Truncate,
        SyscallOp::Ftruncate,
        SyscallOp::Unlink,
        SyscallOp::Unlinkat,
        SyscallOp::Rename,
        SyscallOp::Renameat,
        SyscallOp::Renameat2,
        SyscallOp::Link,
        SyscallOp::Linkat,
        SyscallOp::Symlink,
        SyscallOp::Symlinkat,
        SyscallOp::Setuid,
        SyscallOp::Setgid,
        SyscallOp::Setreuid,
        SyscallOp::Setregid,
        SyscallOp::Setresuid,
        SyscallOp::Setresgid,
        SyscallOp::Setfsuid,
        SyscallOp::Setfsgid,
        SyscallOp::Capset,
        SyscallOp::Connect,
        SyscallOp::Accept,
        SyscallOp::Accept4,
        SyscallOp::Bind,
        SyscallOp::Listen,
        SyscallOp::Socket,
        SyscallOp::Ptrace,
        SyscallOp::InitModule,
        SyscallOp::FinitModule,
        SyscallOp::DeleteModule,
        SyscallOp::MemfdCreate,
        SyscallOp::Mount,
        SyscallOp::Umount2,
        SyscallOp::Bpf,
        SyscallOp::Kill,
        SyscallOp::Tkill,
        SyscallOp::Tgkill,
        SyscallOp::MoveMount,
        SyscallOp::MountSetattr,
        SyscallOp::ProcessVmReadv,
        SyscallOp::ProcessVmWritev,
        SyscallOp::PidfdGetfd,
        SyscallOp::Setns,
        SyscallOp::KexecLoad,
        SyscallOp::KexecFileLoad,
        SyscallOp::Unshare,
        SyscallOp::Clone,
        SyscallOp::Clone3,
    ];

    /// A match, not a search of [`Self::ALL`]: the eBPF side calls this in
    /// every program, and a loop would be out-lined into a BPF-to-BPF call.
    #[inline(always)]
    pub const fn from_u32(v: u32) -> Option<SyscallOp> {
        Some(match v {
            1 => SyscallOp::Chmod,
            2 => SyscallOp::Fchmod,
            3 => SyscallOp::Fchmodat,
            4 => SyscallOp::Fchmodat2,
            5 => SyscallOp::Chown,
            6 => SyscallOp::Fchown,
            7 => SyscallOp::Lchown,
            8 => SyscallOp::Fchownat,
            9 => SyscallOp::Setxattr,
            10 => SyscallOp::Lsetxattr,
            11 => SyscallOp::Fsetxattr,
            12 => SyscallOp::Removexattr,
            13 => SyscallOp::Lremovexattr,
            14 => SyscallOp::Fremovexattr,
            16 => SyscallOp::Open,
            17 => SyscallOp::Openat,
            18 => SyscallOp::Openat2,
            19 => SyscallOp::Creat,
            20 => SyscallOp::Truncate,
            21 => SyscallOp::Ftruncate,
            22 => SyscallOp::Unlink,
            23 => SyscallOp::Unlinkat,
            24 => SyscallOp::Rename,
            25 => SyscallOp::Renameat,
            26 => SyscallOp::Renameat2,
            27 => SyscallOp::Link,
            28 => SyscallOp::Linkat,
            29 => SyscallOp::Symlink,
            30 => SyscallOp::Symlinkat,
            32 => SyscallOp::Setuid,
            33 => SyscallOp::Setgid,
            34 => SyscallOp::Setreuid,
            35 => SyscallOp::Setregid,
            36 => SyscallOp::Setresuid,
            37 => SyscallOp::Setresgid,
            38 => SyscallOp::Setfsuid,
            39 => SyscallOp::Setfsgid,
            40 => SyscallOp::Capset,
            64 => SyscallOp::Connect,
            65 => SyscallOp::Accept,
            66 => SyscallOp::Accept4,
            67 => SyscallOp::Bind,
            68 => SyscallOp::Listen,
            69 => SyscallOp::Socket,
            96 => SyscallOp::Ptrace,
            97 => SyscallOp::InitModule,
            98 => SyscallOp::FinitModule,
            99 => SyscallOp::DeleteModule,
            100 => SyscallOp::MemfdCreate,
            101 => SyscallOp::Mount,
            102 => SyscallOp::Umount2,
            103 => SyscallOp::Bpf,
            104 => SyscallOp::Kill,
            105 => SyscallOp::Tkill,
            106 => SyscallOp::Tgkill,
            107 => SyscallOp::MoveMount,
            108 => SyscallOp::MountSetattr,
            109 => SyscallOp::ProcessVmReadv,
            110 => SyscallOp::ProcessVmWritev,
            111 => SyscallOp::PidfdGetfd,
            112 => SyscallOp::Setns,
            113 => SyscallOp::KexecLoad,
            114 => SyscallOp::KexecFileLoad,
            115 => SyscallOp::Unshare,
            116 => SyscallOp::Clone,
            117 => SyscallOp::Clone3,
            _ => return None,
        })
    }

    /// The syscall's name, as libc and the man pages call it.
    pub const fn name(self) -> &'static str {
        match self {
            SyscallOp::Chmod => "chmod",
            SyscallOp::Fchmod => "fchmod",
            SyscallOp::Fchmodat => "fchmodat",
            SyscallOp::Fchmodat2 => "fchmodat2",
            SyscallOp::Chown => "chown",
            SyscallOp::Fchown => "fchown",
            SyscallOp::Lchown => "lchown",
            SyscallOp::Fchownat => "fchownat",
            SyscallOp::Setxattr => "setxattr",
            SyscallOp::Lsetxattr => "lsetxattr",
            SyscallOp::Fsetxattr => "fsetxattr",
            SyscallOp::Removexattr => "removexattr",
            SyscallOp::Lremovexattr => "lremovexattr",
            SyscallOp::Fremovexattr => "fremovexattr",
            SyscallOp::Open => "open",
            SyscallOp::Openat => "openat",
            SyscallOp::Openat2 => "openat2",
            SyscallOp::Creat => "creat",
            SyscallOp::Truncate => "truncate",
            SyscallOp::Ftruncate => "ftruncate",
            SyscallOp::Unlink => "unlink",
            SyscallOp::Unlinkat => "unlinkat",
            SyscallOp::Rename => "rename",
            SyscallOp::Renameat => "renameat",
            SyscallOp::Renameat2 => "renameat2",
            SyscallOp::Link => "link",
            SyscallOp::Linkat => "linkat",
            SyscallOp::Symlink => "symlink",
            SyscallOp::Symlinkat => "symlinkat",
            SyscallOp::Setuid => "setuid",
            SyscallOp::Setgid => "setgid",
            SyscallOp::Setreuid => "setreuid",
            SyscallOp::Setregid => "setregid",
            SyscallOp::Setresuid => "setresuid",
            SyscallOp::Setresgid => "setresgid",
            SyscallOp::Setfsuid => "setfsuid",
            SyscallOp::Setfsgid => "setfsgid",
            SyscallOp::Capset => "capset",
            SyscallOp::Connect => "connect",
            SyscallOp::Accept => "accept",
            SyscallOp::Accept4 => "accept4",
            SyscallOp::Bind => "bind",
            SyscallOp::Listen => "listen",
            SyscallOp::Socket => "socket",
            SyscallOp::Ptrace => "ptrace",
            SyscallOp::InitModule => "init_module",
            SyscallOp::FinitModule => "finit_module",
            SyscallOp::DeleteModule => "delete_module",
            SyscallOp::MemfdCreate => "memfd_create",
            SyscallOp::Mount => "mount",
            SyscallOp::Umount2 => "umount2",
            SyscallOp::Bpf => "bpf",
            SyscallOp::Kill => "kill",
            SyscallOp::Tkill => "tkill",
            SyscallOp::Tgkill => "tgkill",
            SyscallOp::MoveMount => "move_mount",
            SyscallOp::MountSetattr => "mount_setattr",
            SyscallOp::ProcessVmReadv => "process_vm_readv",
            SyscallOp::ProcessVmWritev => "process_vm_writev",
            SyscallOp::PidfdGetfd => "pidfd_getfd",
            SyscallOp::Setns => "setns",
            SyscallOp::KexecLoad => "kexec_load",
            SyscallOp::KexecFileLoad => "kexec_file_load",
            SyscallOp::Unshare => "unshare",
            SyscallOp::Clone => "clone",
            SyscallOp::Clone3 => "clone3",
        }
    }

    /// The name of its tracepoints, `sys_enter_<name>`: the kernel's
    /// SYSCALL_DEFINE name, which differs from libc's for umount2.
    pub const fn tracepoint(self) -> &'static str {
        match self {
            SyscallOp::Umount2 => "umount",
            other => other.name(),
        }
    }

    /// The record kind this syscall produces.
    pub const fn kind(self) -> crate::EventKind {
        match self as u32 {
            0..16 => crate::EventKind::FileAttr,
            16..32 => crate::EventKind::FileWrite,
            32..64 => crate::EventKind::Cred,
            64..96 => crate::EventKind::Net,
            _ => crate::EventKind::System,
        }
    }

    /// How a file syscall names its file (None for credential syscalls).
    pub const fn target(self) -> Option<Target> {
        match self {
            SyscallOp::Chmod
            | SyscallOp::Chown
            | SyscallOp::Lchown
            | SyscallOp::Setxattr
            | SyscallOp::Lsetxattr
            | SyscallOp::Removexattr
            | SyscallOp::Lremovexattr => Some(Target::Path),
            SyscallOp::Fchmod
            | SyscallOp::Fchown
            | SyscallOp::Fsetxattr
            | SyscallOp::Fremovexattr => Some(Target::Fd),
            SyscallOp::Fchmodat | SyscallOp::Fchmodat2 | SyscallOp::Fchownat => {
                Some(Target::DirfdPath)
            }
            _ => None,
        }
    }

    /// True for the chmod syscalls.
    pub const fn is_chmod(self) -> bool {
        matches!(
            self,
            SyscallOp::Chmod | SyscallOp::Fchmod | SyscallOp::Fchmodat | SyscallOp::Fchmodat2
        )
    }

    /// True for the chown syscalls.
    pub const fn is_chown(self) -> bool {
        matches!(
            self,
            SyscallOp::Chown | SyscallOp::Fchown | SyscallOp::Lchown | SyscallOp::Fchownat
        )
    }

    /// Whether `[filter] ignore_path_prefixes` may drop this call, which
    /// requests `mode` (a chmod's): a chmod that sets no setuid or setgid
    /// bit, or a chown. The others (a privilege grant, an xattr change)
    /// are never dropped by a path, since a link gives any file a name
    /// under a prefix. The kernel side and the daemon both decide with it.
    pub const fn path_filter_applies(self, mode: u32) -> bool {
        (self.is_chmod() && mode & MODE_SETUID_SETGID == 0) || self.is_chown()
    }

    /// True for the xattr syscalls.
    pub const fn is_xattr(self) -> bool {
        matches!(
            self,
            SyscallOp::Setxattr
                | SyscallOp::Lsetxattr
                | SyscallOp::Fsetxattr
                | SyscallOp::Removexattr
                | SyscallOp::Lremovexattr
                | SyscallOp::Fremovexattr
        )
    }

    /// True for the xattr syscalls that set a value.
    pub const fn sets_xattr(self) -> bool {
        matches!(
            self,
            SyscallOp::Setxattr | SyscallOp::Lsetxattr | SyscallOp::Fsetxattr
        )
    }
}

/// The setuid and setgid bits of a mode: what a chmod grants, and what no
/// path filter may drop (see [`SyscallOp::path_filter_applies`]).
pub const MODE_SETUID_SETGID: u32 = 0o6000;

/// Whether an inode of `mode` with `nlink` links has names other than the
/// one a path filter matched: resolution stops at a hard link, so its
/// path under an ignored prefix says nothing of the others. A directory's
/// count is its subdirectories (it has no hard links).
pub const fn has_other_names(mode: u32, nlink: u32) -> bool {
    const S_IFMT: u32 = 0o170000;
    const S_IFDIR: u32 = 0o040000;
    nlink > 1 && mode & S_IFMT != S_IFDIR
}

/// `AT_FDCWD`: a `dirfd` meaning "the working directory".
pub const AT_FDCWD: i32 = -100;
/// `AT_SYMLINK_FOLLOW`: linkat links what a symlink given as the existing
/// file leads to (`/proc/self/fd/N`: an fd's file).
pub const AT_SYMLINK_FOLLOW: u32 = 0x400;
/// `AT_EMPTY_PATH`: an `*at` call with an empty path acts on `dirfd`
/// itself (linkat: gives the file open at that fd a name, such as an
/// `O_TMPFILE` one's).
pub const AT_EMPTY_PATH: u32 = 0x1000;

/// Bytes of a path argument copied from the caller (PATH_MAX).
pub const ARG_PATH_CAP: usize = 4096;
/// Bytes of an xattr name copied (XATTR_NAME_MAX + NUL).
pub const XATTR_NAME_CAP: usize = 256;
/// Bytes of an xattr value copied: a `vfs_cap_data` is at most 24 bytes;
/// longer values (ACLs) are cut and flagged.
pub const XATTR_VALUE_CAP: usize = 64;

/// `FileEvent::flags` bits.
pub mod file_flags {
    /// `old_mode`, `old_uid`, `old_gid`, `ino` and `dev` hold the file's
    /// attributes from before the call (the hook saw the resolved inode).
    pub const OLD_KNOWN: u32 = 1 << 0;
    /// The path argument could not be read from the caller's memory.
    pub const PATH_UNREADABLE: u32 = 1 << 1;
    /// The path argument was longer than [`crate::ARG_PATH_CAP`].
    pub const PATH_TRUNCATED: u32 = 1 << 2;
    /// The base (cwd, dirfd or fd) path was longer than the caps allow.
    pub const BASE_TRUNCATED: u32 = 1 << 3;
    /// A kernel read failed while resolving the base path.
    pub const BASE_FAILED: u32 = 1 << 4;
    /// `base` is the path of the file itself (an fd-based call, or an empty
    /// path with `AT_EMPTY_PATH`), not a directory to join `path` to.
    pub const BASE_IS_FILE: u32 = 1 << 5;
    /// The xattr name could not be read.
    pub const NAME_UNREADABLE: u32 = 1 << 6;
    /// The xattr value could not be read.
    pub const VALUE_UNREADABLE: u32 = 1 << 7;
    /// The xattr value was longer than [`crate::XATTR_VALUE_CAP`].
    pub const VALUE_TRUNCATED: u32 = 1 << 8;
    /// The xattr name and value are the kernel's own copies
    /// (`security_inode_setxattr`/`_removexattr`, where fentry loads),
    /// not what the entry read from the caller's memory.
    pub const XATTR_KERNEL_COPY: u32 = 1 << 9;
    /// With [`XATTR_KERNEL_COPY`]: the caller's memory held another name or
    /// value when the entry read it (a thread rewrote it under the call).
    pub const XATTR_REWRITTEN: u32 = 1 << 10;
    /// A chmod's or chown's file as the kernel resolved it
    /// (`security_path_chmod`/`_chown`, where fentry loads): `base` is its
    /// path (with [`BASE_IS_FILE`]), and the `old_*` attributes, `ino` and
    /// `dev` are its own, whatever the path argument or fd said at entry.
    pub const KERNEL_PATH: u32 = 1 << 11;
    /// The path argument starts with an ignored prefix, and the entry kept
    /// the call anyway: the filter is decided by the file the kernel
    /// resolved, or the call is one no argument may hide (a chmod that sets
    /// the setuid or setgid bit, an xattr change); see the daemon's
    /// `pipeline::file`. Cleared by the exit where the kernel resolved the
    /// file but that name no longer holds it: the argument, which may have
    /// led there through a symlink, then decides nothing.
    pub const ARG_IGNORED: u32 = 1 << 12;
    /// `base` is the calling thread's cwd at the call, walked for an
    /// absolute path argument through `/proc` (`/proc/self/cwd/x`, which
    /// leads there: the daemon cannot read it once the caller exited or
    /// moved on); the path is not joined to it.
    pub const BASE_IS_CWD: u32 = 1 << 13;
    /// With [`BASE_IS_CWD`]: that cwd is its thread group leader's too
    /// (`/proc/self/cwd` is the leader's).
    pub const CWD_IS_LEADERS: u32 = 1 << 14;
}

/// Bits of `FILE_PATH_BY_KERNEL`: the path hooks attached. Each loads on
/// its own: 5.10's trampolines refuse `security_path_chown`, whose ids
/// are passed as structs (`kuid_t`), and take `security_path_chmod`.
pub mod file_path_hooks {
    pub const CHMOD: u32 = 1 << 0;
    pub const CHOWN: u32 = 1 << 1;
}

/// A file attribute change: chmod, chown or an xattr change, after the
/// syscall returned. Followed by `path_len + base_len + name_len +
/// value_len` bytes of data, in that order:
/// - path: the path argument as the caller passed it (no NUL);
/// - base: the directory a relative path starts from (the cwd or `dirfd`),
///   or with [`file_flags::BASE_IS_FILE`] the file itself, as leaf-first
///   NUL-terminated components like exec's paths; empty when `path` is
///   absolute;
/// - name, value: the xattr's name (no NUL) and value bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileEvent {
    pub header: EventHeader,
    pub task: TaskInfo,
    /// [`SyscallOp`] as `u32`.
    pub op: u32,
    /// [`file_flags`] bits.
    pub flags: u32,
    /// The syscall's return value: 0 or `-errno`.
    pub ret: i64,
    /// The fd of an fd-based call, the dirfd of an `*at` call, else AT_FDCWD.
    pub fd: i32,
    /// `AT_*` flags of the `*at` calls, the xattr flags for setxattr.
    pub at_flags: u32,
    /// Requested mode (chmod), as passed.
    pub mode: u32,
    /// Requested owner and group (chown); `u32::MAX` leaves one unchanged.
    pub uid: u32,
    pub gid: u32,
    pub old_mode: u32,
    pub old_uid: u32,
    pub old_gid: u32,
    /// `inode->i_sb->s_dev` (kernel dev_t: major << 20 | minor).
    pub dev: u32,
    /// `inode->i_nlink`: the file's names (hard links), with `old_*`.
    pub nlink: u32,
    pub ino: u64,
    pub path_len: u32,
    pub base_len: u32,
    pub name_len: u32,
    pub value_len: u32,
    /// The xattr value size argument (the real length of the value).
    pub value_size: u32,
    pub _pad1: u32,
}

/// A credential change: the setuid family or capset, after it returned.
/// `task` holds the credentials after the call; `old_*` those before.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CredEvent {
    pub header: EventHeader,
    pub task: TaskInfo,
    /// [`SyscallOp`] as `u32`.
    pub op: u32,
    pub _pad0: u32,
    /// The syscall's return value: 0 or `-errno` (setfsuid/setfsgid
    /// return the previous fsuid/fsgid and never fail visibly).
    pub ret: i64,
    /// The id arguments as passed (`u32::MAX` = -1, "unchanged").
    pub args: [u32; 3],
    pub _pad1: u32,
    /// uid, gid, suid, sgid, euid, egid, fsuid, fsgid before the call.
    pub old_ids: [u32; 8],
    /// Capability sets before the call: inheritable, permitted, effective.
    pub old_caps: [u64; 3],
    /// Capability sets after the call: inheritable, permitted, effective.
    pub new_caps: [u64; 3],
}

/// `WatchEvent::flags` bits.
pub mod watch_flags {
    /// `path` was longer than [`crate::ARG_PATH_CAP`] (or `path2`).
    pub const PATH_TRUNCATED: u32 = 1 << 0;
    /// A path argument could not be read.
    pub const PATH_UNREADABLE: u32 = 1 << 1;
    /// `base` is the file itself (an open, by the fd it returned; an
    /// ftruncate), walked in the kernel: `path` is empty.
    pub const BASE_IS_FILE: u32 = 1 << 2;
    /// The base path was cut at the caps, or a read failed walking it.
    pub const BASE_TRUNCATED: u32 = 1 << 3;
    /// rename's new path (link's existing one) is relative to a different
    /// dirfd than `path`, which is relative too, and whose directory is
    /// `base`: `path2`'s is walked after it (`base2_len` bytes, after
    /// `path2`; none where that walk failed: `path2` is then as passed).
    /// (Where `path` is absolute, the directory walked is `path2`'s.)
    /// coreutils' `mv x /etc/cron.d/` is `renameat2(AT_FDCWD, "x", <fd of
    /// /etc/cron.d>, "x", …)`.
    pub const BASE2_UNKNOWN: u32 = 1 << 4;
    /// The base is the caller's cwd, walked at the call's exit: the
    /// directory a relative path starts from, or, where no path is
    /// relative, where `/proc/self/cwd` led for the calling thread.
    pub const BASE_IS_CWD: u32 = 1 << 5;
    /// Kernel-side only, never sent: a truncate, unlink, rename, link or
    /// symlink whose path argument did not decide, kept in flight for the
    /// fentry hooks on `security_inode_{unlink,rmdir,rename,setattr,link,
    /// symlink}` to decide by the inode the kernel resolved (a symlinked directory, a bind mount,
    /// `/proc/PID/root/…`); its exit sends it only if they set `matched`.
    pub const UNDECIDED: u32 = 1 << 6;
    /// With [`BASE_IS_CWD`]: the calling thread shares its cwd with its
    /// thread group's leader (its `fs_struct`, as threads do unless one
    /// unshared it), so `/proc/self/cwd` led there too. A Go program's
    /// calls come from any of its threads.
    pub const CWD_IS_LEADERS: u32 = 1 << 7;
    /// linkat's existing file is the one open at its dirfd (an empty
    /// `path2` with `AT_EMPTY_PATH`: an `O_TMPFILE` file given a name),
    /// walked as a relative `path2`'s directory is: `base` where `path`
    /// is absolute, else the second stage's (see [`BASE2_UNKNOWN`]).
    pub const SECOND_IS_FILE: u32 = 1 << 8;
    /// With [`BASE2_UNKNOWN`]: `path2`'s directory was cut at the caps,
    /// or a read failed walking it.
    pub const BASE2_TRUNCATED: u32 = 1 << 9;
}

/// A write to a watched path: an open for writing (or creating,
/// truncating), a truncate, an unlink, a rename, a link or a symlink,
/// after it returned. Followed by `path_len + base_len + path2_len +
/// base2_len` bytes: the path argument as passed (no NUL; for link and
/// symlink the new name), the directory it is relative to or the file
/// itself (leaf-first components, like exec's paths; the cwd when no path
/// is relative: [`watch_flags::BASE_IS_CWD`]), the second argument as
/// passed: rename's new path, link's existing file, symlink's target
/// text; and, where that is relative to a dirfd of its own, its
/// directory ([`watch_flags::BASE2_UNKNOWN`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatchEvent {
    pub header: EventHeader,
    pub task: TaskInfo,
    /// [`SyscallOp`] as `u32`.
    pub op: u32,
    /// [`watch_flags`] bits.
    pub flags: u32,
    /// 0, a new fd, or `-errno`.
    pub ret: i64,
    /// open's flags (`O_*`), unlinkat's, renameat2's and linkat's flags.
    pub open_flags: u32,
    /// The dirfd (or fd) argument `path` is relative to; AT_FDCWD when
    /// there was none.
    pub fd: i32,
    pub path_len: u32,
    pub base_len: u32,
    pub path2_len: u32,
    /// `path2`'s own directory, walked (see [`watch_flags::BASE2_UNKNOWN`]).
    pub base2_len: u32,
    /// The dirfd `path2` is relative to (AT_FDCWD when there was none).
    pub fd2: i32,
    /// 1 + the index in the daemon's list of the watched path whose inode
    /// the kernel found (the file itself or a directory above it);
    /// [`WATCH_MATCHED_SSH_DIR`] or [`WATCH_MATCHED_USER_UNITS`] when it
    /// found a file in a directory of that rule's name, or one, by the
    /// names it resolved; [`WATCH_MATCHED_SHELL_RC`] for a file of one of
    /// [`SHELL_RC_NAMES`]; 0 when nothing was matched by inode or name (a
    /// path argument matched as a string).
    pub matched: u32,
}

/// `WatchEvent::matched` of a file the kernel matched by its names
/// (`[watch] user_ssh_dirs`): a directory named `.ssh`, or a file in
/// one. Above every `1 +` index of a watched path.
pub const WATCH_MATCHED_SSH_DIR: u32 = 0x100;

/// `WatchEvent::matched` of a file the kernel matched by its names
/// (`[watch] user_unit_dirs`): a directory named `user` in one named
/// `systemd`, or a file in it or in a directory directly in it.
pub const WATCH_MATCHED_USER_UNITS: u32 = 0x101;

/// `WatchEvent::matched` of a file the kernel matched by its own name
/// (`[watch] shell_rc_files`): one of [`SHELL_RC_NAMES`].
pub const WATCH_MATCHED_SHELL_RC: u32 = 0x102;

/// The `WATCHED_INODES` value, and so the `WatchEvent::matched`, of a
/// file that a home's startup file is a symlink to (`[watch]
/// shell_rc_files`): a dotfile manager's `~/.bashrc -> dotfiles/bashrc`,
/// whose target's name the kernel's name rule does not know. Above every
/// `1 +` index of a watched path, which the kernel passes on as it does
/// this.
pub const WATCH_INODE_SHELL_RC_TARGET: u8 = u8::MAX;

/// Watched paths in all, at most (the config's, sshd's files, homes'
/// `.ssh`). Their `1 +` index stays below [`WATCH_INODE_SHELL_RC_TARGET`]
/// in a `WATCHED_INODES` value (a `u8`).
pub const WATCH_PATHS_MAX: usize = WATCH_INODE_SHELL_RC_TARGET as usize - 1;

/// Entries of the kernel's `WATCHED_PATH_HASHES` for the directories
/// above watched paths (`/`, `/etc`, `/home/u`): each with and without
/// its trailing slash. A host's watched paths share a few such
/// directories (a few hundred with every home's `.ssh`); beyond this, the
/// deepest are left out, and the daemon says how many.
pub const WATCHED_ABOVE_HASHES_MAX: u32 = 4096;

/// Entries of the kernel's `WATCHED_ABOVE_DIRS`: the directories above
/// watched paths that `WATCHED_PATH_HASHES` holds, by inode; and those
/// holding symlinks through magic links ([`MAGIC_LINKS_MAX`]).
pub const WATCHED_ABOVE_DIRS_MAX: u32 = WATCHED_ABOVE_HASHES_MAX / 2 + 1 + MAGIC_LINKS_MAX as u32;

/// Symlinks made to lead through a magic link (`/tmp/c ->
/// /proc/self/cwd`) whose paths the kernel's path check sends on: three
/// `WATCHED_PATH_HASHES` entries each, its path with a slash as a prefix,
/// its whole path (the link itself renamed or linked) and its directory's
/// (a link to it by a relative target), and its directory's inode in
/// `WATCHED_ABOVE_DIRS` (renamed by a relative name). Each one's making
/// was reported, and a host has none as a matter of course; beyond this
/// many, the oldest is left out and counted.
pub const MAGIC_LINKS_MAX: usize = 256;

/// Slots of the kernel's `SYMLINKS_SYNC` array. A symlink may lead
/// through a magic link, whose paths the kernel's path check sends on only
/// once the daemon has read the symlink's record and put the link in it:
/// `ln -s /proc/self/cwd /tmp/c; cd /etc/cron.d; mv x /tmp/c/evil` is done
/// before that, and a single process's `symlink` and `rename` long before.
/// So while a symlink the kernel sent is not handled yet, every call with
/// a path argument is sent, for the daemon to decide once it has.
pub mod symlinks_sync {
    /// Symlink records the kernel sent (an atomic add): the watch
    /// family's, and io_uring's symlinkat, renameat and linkat
    /// submissions (see `io_uring::names_links`).
    pub const SENT: u32 = 0;
    /// When it sent the last one (boot ns).
    pub const LAST_SENT_NS: u32 = 1;
    /// Of those, how many the daemon has handled (the daemon writes it).
    pub const HANDLED: u32 = 2;
    pub const SLOTS: u32 = 3;
    /// How long after the last symlink sent the kernel waits for the
    /// daemon at most: a record lost or undecodable never brings
    /// `HANDLED` up to `SENT`, and sending every path call from then on
    /// would cost every rename and unlink of the host its trip.
    pub const WINDOW_NS: u64 = 1_000_000_000;
}

/// Entries of the kernel's `WATCHED_PATH_HASHES`: each watched path's
/// [`path_hash`] and [`path_hash_whole`], and a directory's also without
/// its trailing slash; then the directories above them; then the
/// symlinks through magic links.
pub const WATCHED_PATH_HASHES_MAX: u32 =
    4 * WATCH_PATHS_MAX as u32 + WATCHED_ABOVE_HASHES_MAX + 3 * MAGIC_LINKS_MAX as u32;

/// The bytes of a path argument the kernel hashes, and so the longest
/// watched path: a watched directory's prefix, and a watched file's whole
/// path, lie within them.
pub const PATH_HASH_SPAN: usize = 256;

/// FNV-1a's 64-bit offset basis: [`path_hash`] of no bytes.
pub const PATH_HASH_SEED: u64 = 0xcbf2_9ce4_8422_2325;

/// One byte more into a [`path_hash`]: FNV-1a, which the kernel computes
/// as it scans a path argument (looking up each prefix that ends in a
/// slash on the way), in a few instructions a byte. Not a keyed hash: an
/// intruder who makes a path collide with a watched one only has the call
/// sent to the daemon, which compares the path itself.
#[inline(always)]
pub fn path_hash_step(hash: u64, byte: u8) -> u64 {
    (hash ^ byte as u64).wrapping_mul(0x0000_0100_0000_01b3)
}

/// The hash the kernel looks up for `bytes` (see [`path_hash_step`]) as
/// a prefix of a path argument, up to a slash: a watched directory's.
pub fn path_hash(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(PATH_HASH_SEED, |h, &b| path_hash_step(h, b))
}

/// The hash the kernel looks up for `bytes` as a whole path argument: its
/// [`path_hash`] with the NUL that ends it. Two keys, so that a directory
/// above a watched path (`/etc/`, whose rename moves it and to which a
/// symlink leads into it) can be matched whole and never as a prefix,
/// with one lookup at each slash and one at the end, as before.
pub fn path_hash_whole(bytes: &[u8]) -> u64 {
    path_hash_step(path_hash(bytes), 0)
}

/// Words (u64) of the `WATCHED_BITS` array: 2^18 bits, 32 KiB. One bit per
/// key of the watch maps the kernel asks on every open for writing and
/// path call (`WATCHED_INODES`, `WATCHED_PARENTS`, `WATCHED_ABOVE_DIRS`,
/// `WATCHED_PATH_HASHES`), set by the daemon: a clear bit spares the
/// kernel the hash map's lookup, a call (~35 ns on this build VM, most of
/// it the return thunk), for a load from the array's one value, looked up
/// once per climb or path scan. The maps' full sizes together (~10k keys)
/// set one bit in 26; a usual config (a few hundred keys) one in several
/// hundred.
pub const WATCHED_BITS_WORDS: u32 = 1 << (WATCHED_BITS_LOG2 - 6);
const WATCHED_BITS_LOG2: u32 = 18;

/// Which map a key of [`watched_bit`] is for: each hashed with its own
/// salt, so that one map's keys do not set another's bits.
pub mod watched_set {
    pub const INODES: u64 = 0x6a09_e667_f3bc_c908;
    pub const PARENTS: u64 = 0xbb67_ae85_84ca_a73b;
    pub const ABOVE_DIRS: u64 = 0x3c6e_f372_fe94_f82b;
    pub const PATH_HASHES: u64 = 0xa54f_f53a_5f1d_36f1;
}

/// The bit of `WATCHED_BITS` that stands for key (`a`, `b`) of map `set`
/// (an inode's number and device, or a path hash and 0): murmur3's 64-bit
/// finalizer over them, its top bits. A dozen instructions in BPF. An
/// intruder who makes a key share a watched one's bit only has the map
/// looked up.
#[inline(always)]
pub fn watched_bit(set: u64, a: u64, b: u32) -> u32 {
    let mut x = a ^ set ^ (b as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^= x >> 33;
    (x >> (64 - WATCHED_BITS_LOG2)) as u32
}

/// The bytes of a path argument [`path_may_leave_prefix`] looks at: one
/// longer may leave.
pub const LEAVE_CHECK_SPAN: usize = 512;

/// Might the absolute, NUL-terminated `path` lead out of a prefix its
/// bytes start with, or be spelled otherwise than where it leads? The
/// kernel compares a path argument's bytes with watched paths and
/// ignored prefixes, which are written without `.`, `..` or empty
/// components (the config refuses them): a path spelled otherwise must be
/// taken neither as outside a watched path (`//etc/cron.d/x`), nor as
/// inside an ignored one (`/tmp/ignored/../../etc/shadow`). True for a
/// component that is empty or ends in a dot (`.`, `..`, and rarely a
/// name: `x.`), and for a path with no NUL within its first
/// [`LEAVE_CHECK_SPAN`] bytes (nor within `N`: a path read cut short,
/// whose rest the caller cannot see).
///
/// Eight bytes at a time, with two branches a word (found, ended) and
/// nothing carried that a branch compared: the verifier walks the loop
/// at each of its call sites' states (a score in the chmod family's
/// entry), and a scan a byte at a time took the ia32 entry past its
/// million instructions.
#[inline(always)]
pub fn path_may_leave_prefix<const N: usize>(path: &[u8; N]) -> bool {
    const DOTS: u64 = u64::from_ne_bytes([b'.'; 8]);
    const SLASHES: u64 = u64::from_ne_bytes([b'/'; 8]);
    let span = if N < LEAVE_CHECK_SPAN {
        N
    } else {
        LEAVE_CHECK_SPAN
    };
    // Whether the previous word's last byte was a dot, a slash (its 0x80
    // bit, at the top).
    let (mut dots_before, mut slashes_before) = (0u64, 0u64);
    for i in 0..span / 8 {
        // SAFETY: bytes 8i..8i+8 of the array, span <= N. (Little-endian,
        // the BPF target's and the host's order: byte k is bits 8k..8k+8.)
        let word = unsafe { core::ptr::read_unaligned(path.as_ptr().add(8 * i).cast::<u64>()) };
        let (dots, slashes, nuls) = (
            zero_bytes(word ^ DOTS),
            zero_bytes(word ^ SLASHES),
            zero_bytes(word),
        );
        // Where the byte before is a dot, a slash.
        let dot_ahead = (dots << 8) | (dots_before >> 56);
        let slash_ahead = (slashes << 8) | (slashes_before >> 56);
        // Up to the first NUL: what follows it is an older path's.
        let first_nul = nuls & nuls.wrapping_neg();
        let this_path = (first_nul << 1).wrapping_sub(1);
        // A component that ends in a dot (`.`, `..`), or an empty one.
        let odd = ((dot_ahead & (slashes | nuls)) | (slash_ahead & slashes)) & this_path;
        if odd != 0 {
            return true;
        }
        if nuls != 0 {
            return false;
        }
        dots_before = dots;
        slashes_before = slashes;
    }
    true
}

/// Does the absolute `path` go through a magic link: below `/proc/`
/// (`/proc/self/cwd/x`, `/proc/PID/root/etc/x`), `/dev/fd/` or `/dev/std…`
/// (symlinks to `/proc/self/fd/…`)? Its bytes then say nothing of where it
/// leads: the kernel sends it, and the daemon follows it again. Or is it
/// `/proc`, `/dev` or `/dev/fd` itself: as a symlink's target, a path
/// through the link (`/tmp/p/self/cwd/x`) goes through one, and the
/// daemon reports the link. One word compared, the path's first eight
/// bytes.
#[inline(always)]
pub fn path_through_magic_link<const N: usize>(path: &[u8; N]) -> bool {
    const PROC_DIR: u64 = u64::from_le_bytes(*b"/proc/\0\0");
    const PROC: u64 = u64::from_le_bytes(*b"/proc\0\0\0");
    const DEV: u64 = u64::from_le_bytes(*b"/dev\0\0\0\0");
    const DEV_DIR: u64 = u64::from_le_bytes(*b"/dev/\0\0\0");
    const MASK_6: u64 = 0x0000_ffff_ffff_ffff;
    const MASK_5: u64 = 0x0000_00ff_ffff_ffff;
    const DEV_FD_DIR: u64 = u64::from_le_bytes(*b"/dev/fd/");
    const DEV_FD: u64 = u64::from_le_bytes(*b"/dev/fd\0");
    const DEV_STD: u64 = u64::from_le_bytes(*b"/dev/std");
    if N < 8 {
        return false;
    }
    // SAFETY: bytes 0..8 of the array, N >= 8 (little-endian, as above).
    let word = unsafe { core::ptr::read_unaligned(path.as_ptr().cast::<u64>()) };
    let six = word & MASK_6;
    six == PROC_DIR
        || six == PROC
        || six == DEV_DIR
        || word & MASK_5 == DEV
        || word == DEV_FD_DIR
        || word == DEV_FD
        || word == DEV_STD
}

/// 0x80 in each byte of `v` that is zero, and nothing else: exact, no
/// carry from one byte into the next (the shorter `(v - 0x01…) & !v &
/// 0x80…` flags a 0x01 byte above a zero one, and `/` is `.` ^ 0x01).
#[inline(always)]
const fn zero_bytes(v: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    !(((v & LOW7) + LOW7) | v | LOW7)
}

/// Entries of the kernel's `WATCHED_INODES`: every watched path's inode,
/// then the startup-file symlinks' targets in the room left.
pub const WATCHED_INODES_MAX: u32 = 1024;
const _: () = assert!(WATCH_PATHS_MAX < WATCHED_INODES_MAX as usize);

/// A value of `WATCHED_INODES`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WatchedInode {
    /// 1 + the watched path's index, or [`WATCH_INODE_SHELL_RC_TARGET`]:
    /// the event's `matched`.
    pub matched: u32,
    /// The inode's generation when the daemon found it. The inode number
    /// of a watched file replaced by a rename over it (as passwd, useradd
    /// and visudo write) goes to the next file made on its filesystem
    /// (ext4 takes the lowest free one: useradd's `/etc/subuid+` got the
    /// old `/etc/gshadow`'s), which would pass for the watched file until
    /// the daemon's next look; the filesystem gives it another generation.
    /// (`WATCHED_PARENTS`, the directories holding watched files, needs
    /// none: a directory there only sends the call to the daemon, which
    /// decides by its path.)
    pub generation: InodeGeneration,
}

// As `InodeGeneration`: only read through the map's value pointer.
const _: () = assert!(size_of::<WatchedInode>() == 12);

/// Whether `matched` (`WatchEvent::matched`) is a match by name.
pub const fn watch_matched_by_name(matched: u32) -> bool {
    matched == WATCH_MATCHED_SSH_DIR
        || matched == WATCH_MATCHED_USER_UNITS
        || matched == WATCH_MATCHED_SHELL_RC
}

/// The startup files that bash, sh (dash, ksh) and zsh read from a home
/// directory: code the account runs at each login or interactive shell,
/// where an intruder who has the account persists without root (and
/// where root's are, as root). Debian's `.bashrc` sources `.bash_aliases`.
/// Each is at most [`SHELL_RC_NAME_MAX`] bytes: the kernel compares them
/// as two little-endian words.
pub const SHELL_RC_NAMES: [&[u8]; 11] = [
    b".bashrc",
    b".bash_profile",
    b".bash_login",
    b".bash_logout",
    b".bash_aliases",
    b".profile",
    b".zshrc",
    b".zshenv",
    b".zprofile",
    b".zlogin",
    b".zlogout",
];

/// The most bytes a name of [`SHELL_RC_NAMES`] may have: two words, with
/// room for the `/` before it ([`SHELL_RC_TAILS`]).
pub const SHELL_RC_NAME_MAX: usize = 15;
/// No name of [`SHELL_RC_NAMES`] is shorter: the kernel's first check.
pub const SHELL_RC_NAME_MIN: usize = 6;

/// A name of at most [`SHELL_RC_NAME_MAX`] bytes as the kernel compares
/// it: its length and its bytes as two little-endian words, zero-padded.
pub const fn name_words(name: &[u8]) -> (u32, u64, u64) {
    assert!(name.len() <= SHELL_RC_NAME_MAX);
    let mut words = [0u64; 2];
    let mut i = 0;
    while i < name.len() {
        words[i / 8] |= (name[i] as u64) << (8 * (i % 8));
        i += 1;
    }
    (name.len() as u32, words[0], words[1])
}

/// How the kernel finds one of [`SHELL_RC_NAMES`] at the end of a path:
/// `/` and the name, right-aligned in 16 bytes read as two little-endian
/// words, with the masks that keep only those bytes. A path's last 16
/// bytes match when `(lo & lo_mask) == lo_want && (hi & hi_mask) ==
/// hi_want`: no branch on the name's length, nor on the path's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PathTail {
    pub lo_want: u64,
    pub lo_mask: u64,
    pub hi_want: u64,
    pub hi_mask: u64,
}

/// `/` and `name` as a [`PathTail`].
pub const fn path_tail(name: &[u8]) -> PathTail {
    let bytes = name.len() + 1;
    assert!(bytes <= 16);
    let (mut want, mut mask) = ([0u8; 16], [0u8; 16]);
    let mut i = 0;
    while i < bytes {
        want[16 - bytes + i] = if i == 0 { b'/' } else { name[i - 1] };
        mask[16 - bytes + i] = 0xff;
        i += 1;
    }
    PathTail {
        lo_want: le_word(&want, 0),
        lo_mask: le_word(&mask, 0),
        hi_want: le_word(&want, 8),
        hi_mask: le_word(&mask, 8),
    }
}

/// The 8 bytes of `b` from `at` as a little-endian word.
const fn le_word(b: &[u8; 16], at: usize) -> u64 {
    let mut w = [0u8; 8];
    let mut j = 0;
    while j < 8 {
        w[j] = b[at + j];
        j += 1;
    }
    u64::from_le_bytes(w)
}

/// [`SHELL_RC_NAMES`] as [`path_tail`]s.
pub const SHELL_RC_TAILS: [PathTail; SHELL_RC_NAMES.len()] = {
    let mut out = [path_tail(b""); SHELL_RC_NAMES.len()];
    let mut i = 0;
    while i < out.len() {
        out[i] = path_tail(SHELL_RC_NAMES[i]);
        i += 1;
    }
    out
};

/// [`SHELL_RC_NAMES`] as [`name_words`].
pub const SHELL_RC_WORDS: [(u32, u64, u64); SHELL_RC_NAMES.len()] = {
    let mut out = [(0, 0, 0); SHELL_RC_NAMES.len()];
    let mut i = 0;
    while i < out.len() {
        let name = SHELL_RC_NAMES[i];
        assert!(name.len() >= SHELL_RC_NAME_MIN);
        out[i] = name_words(name);
        i += 1;
    }
    out
};

const _: () = assert!(size_of::<WatchEvent>() == 16 + 144 + 48);

/// Largest record of the watched-path kind.
pub const WATCH_EVENT_MAX: usize =
    size_of::<WatchEvent>() + 2 * ARG_PATH_CAP + crate::PATH_CAP + crate::COMPONENT_MAX;

/// Bytes of a socket address copied from the caller (sizeof(struct
/// sockaddr_storage)): a unix socket path fits whole.
pub const SOCKADDR_CAP: usize = 128;

/// A network syscall after it returned (connect, accept, accept4, bind,
/// listen, a packet-capturing socket), or with `op`
/// [`NET_OP_CONNECT_OUTCOME`] the end of a non-blocking connect. Addresses in network byte order as the kernel
/// keeps them; ports in host order.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetEvent {
    pub header: EventHeader,
    pub task: TaskInfo,
    /// [`SyscallOp`] as `u32`, or [`NET_OP_CONNECT_OUTCOME`].
    pub op: u32,
    /// The socket's fd (for accept: the listening socket's; -1 for
    /// socket).
    pub fd: i32,
    /// 0 or `-errno`; accept's and socket's new fd.
    pub ret: i64,
    /// `sk_family`, `sk_protocol` and `sk_type` of the socket, 0 if unknown
    /// (socket: the family, protocol and type it asked for, without the
    /// type's flags).
    pub family: u16,
    pub protocol: u16,
    pub sock_type: u16,
    /// [`net_flags`].
    pub flags: u16,
    /// listen's backlog, accept4's flags, socket's type argument whole
    /// (with `SOCK_NONBLOCK`, `SOCK_CLOEXEC`).
    pub arg: u32,
    /// Bytes of `sockaddr` copied (connect, bind: the caller's address).
    pub sockaddr_len: u32,
    /// The socket's own address and port after the call.
    pub local_addr: [u8; 16],
    /// The peer's address and port (accept: the client; connect: the
    /// server, as the socket has it).
    pub remote_addr: [u8; 16],
    pub local_port: u16,
    pub remote_port: u16,
    /// Bytes of `kernel_sockaddr` copied.
    pub kernel_sockaddr_len: u32,
    /// The caller's `struct sockaddr` (connect, bind) as the entry read it
    /// from the caller's memory, byte-exact.
    pub sockaddr: [u8; SOCKADDR_CAP],
    /// With [`net_flags::KERNEL_ADDRESS`]: the kernel's own copy of the
    /// caller's address, the one it connected or bound to.
    pub kernel_sockaddr: [u8; SOCKADDR_CAP],
}

const _: () = assert!(size_of::<NetEvent>() == 16 + 144 + 200 + SOCKADDR_CAP);

/// Bytes of a [`NetEvent`] before its addresses: the whole record of a
/// call that copied none (accept, listen).
pub const NET_EVENT_FIXED: usize = core::mem::offset_of!(NetEvent, sockaddr);

/// A caller's address at most this long (IPv4 and IPv6 ones) is sent in
/// a record cut this far into `sockaddr`.
pub const NET_SHORT_SOCKADDR: usize = 32;

impl NetEvent {
    /// Bytes of the record to send (its `header.size`): the addresses
    /// only as far as they hold something, the rest left out. A connect
    /// or accept then writes 4 or 5 of the ring buffer's cache lines
    /// instead of 8. The buffer is too large to stay in a cache, so a
    /// line can be a miss: on this build machine, a connect loop whose
    /// caches other work keeps cold paid ~45 ns per line, a tight loop
    /// ~20. The daemon reads what was left out as zeros.
    pub const fn record_size(sockaddr_len: u32, kernel_copy: bool) -> usize {
        if kernel_copy {
            size_of::<NetEvent>()
        } else if sockaddr_len == 0 {
            NET_EVENT_FIXED
        } else if sockaddr_len as usize <= NET_SHORT_SOCKADDR {
            NET_EVENT_FIXED + NET_SHORT_SOCKADDR
        } else {
            core::mem::offset_of!(NetEvent, kernel_sockaddr)
        }
    }
}

/// [`NetEvent::flags`].
pub mod net_flags {
    /// `kernel_sockaddr` holds the address as the kernel copied it from
    /// the caller (`security_socket_connect`/`_bind`, where fentry loads).
    /// The caller's memory can change between the entry's read and the
    /// kernel's: this copy is the one the call used.
    pub const KERNEL_ADDRESS: u16 = 1 << 0;
    /// With [`super::NET_OP_CONNECT_UNSEEN`]: the socket had a TCP Fast
    /// Open request pending (`tcp_sock.fastopen_req`) as it started
    /// connecting: a send with `MSG_FASTOPEN` connected it.
    pub const FAST_OPEN: u16 = 1 << 1;
}

/// Bytes of the first string of a [`SysEvent`] (a path: PATH_MAX).
pub const SYS_STR0_CAP: usize = 4096;
/// Bytes of its second and third strings (names, parameters).
pub const SYS_STR_CAP: usize = 256;

/// `SysEvent::flags` bits.
pub mod sys_flags {
    /// The walked path after the strings (`base_len` bytes) is the file
    /// itself (finit_module's, from its fd), not a mount target's base.
    pub const FILE_WALKED: u32 = 1 << 0;
    /// A string was longer than its cap (which one: the lengths say, a
    /// string at its cap minus one was cut).
    pub const TRUNCATED: u32 = 1 << 1;
    /// A string argument could not be read from the caller.
    pub const UNREADABLE: u32 = 1 << 2;
    /// A clone or clone3 that started a process: `args[1]` holds the
    /// `CLONE_NEW*` bits of the namespaces the kernel made for it, seen at
    /// the fork (what `args[0]`, read at entry, asked for can differ: see
    /// [`super::SYS_OP_NAMESPACES_AT_FORK`]).
    pub const NAMESPACES_SEEN: u32 = 1 << 3;
    /// pidfd_getfd: the pidfd named the caller's own process when the
    /// entry read it, but the file taken is not the caller's own: another
    /// thread put another process's pidfd under the fd's number before the
    /// kernel read it. Which process the file came from is unknown.
    pub const TARGET_UNKNOWN: u32 = 1 << 4;
    /// io_uring: the fd the request acts on (`args[1]`) is an index in
    /// the ring's registered files, not one of the process's fds.
    pub const FIXED_FILE: u32 = 1 << 5;
    /// io_uring: a completion whose submission was not reported, its path
    /// argument being under an ignored prefix, while the file it opened
    /// (walked, as with `FILE_WALKED`) is not: a symlink led out.
    /// `args[3]` holds the open's flags. On a submission: a request whose
    /// path argument is under an ignored prefix, reported anyway because
    /// nothing tells where it lands: an open whose success posts no
    /// completion (`IOSQE_CQE_SKIP_SUCCESS`), or a rename, unlink, mkdir,
    /// symlink or link (`io_uring::changes_names`).
    pub const ARGUMENT_IGNORED: u32 = 1 << 6;
    /// io_uring, with `ARGUMENT_IGNORED`: the file opened has other names
    /// (hard links: `has_other_names`), so its path decides nothing.
    pub const OTHER_NAMES: u32 = 1 << 7;
    /// io_uring, on the completion of a connect, accept, bind or listen
    /// that succeeded: `str0` is the socket's [`super::SocketEnds`] (an
    /// accept's new one; the others' own), the kernel's own state, where
    /// the submission's address was read from the caller's memory (or,
    /// for a bind, not at all).
    pub const SOCKET_ENDS: u32 = 1 << 8;
    /// init_module, finit_module, delete_module: `str2` is the module's
    /// name as the kernel has it ([`super::MODULE_NAME_CAP`] bytes,
    /// NUL-padded), read when it formed or freed the module.
    pub const MODULE_NAMED: u32 = 1 << 9;
    /// io_uring rename or hard link: both paths are relative, to two
    /// different directory fds (`args[1]`, `args[3]`); the base is the
    /// first's, and the second's is walked too ([`STR2_AFTER_BASE`]) where
    /// the submit hook's stage ran, else the second is as given. (Where
    /// only the second is relative, the base is its own directory.)
    pub const BASE2_UNKNOWN: u32 = 1 << 10;
    /// io_uring hard link: the existing file is the one open at its
    /// directory fd (`args[3]`; an empty second path with `AT_EMPTY_PATH`),
    /// walked as a relative second path's directory is.
    pub const SECOND_IS_FILE: u32 = 1 << 11;
    /// With [`BASE2_UNKNOWN`], from the io_uring submit hook's stage:
    /// `str2` is the second path's own directory (the one its fd,
    /// `args[3]`, names; or the file there, with [`SECOND_IS_FILE`]),
    /// walked, and comes after the base in the data.
    pub const STR2_AFTER_BASE: u32 = 1 << 12;
}

/// `MODULE_NAME_LEN` on 64-bit kernels: `struct module`'s `name` array.
pub const MODULE_NAME_CAP: usize = 56;
const _: () = assert!(MODULE_NAME_CAP <= SYS_STR_CAP);

/// A socket's family, protocol, type and both ends, as the socket has
/// them (`struct sock_common`): what an io_uring connect's, accept's,
/// bind's or listen's completion carries (see [`sys_flags::SOCKET_ENDS`]). Ports in host
/// order; addresses as the kernel stores them (an IPv4 one in the first
/// four bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SocketEnds {
    pub family: u16,
    pub protocol: u16,
    pub sock_type: u16,
    pub local_port: u16,
    pub remote_port: u16,
    pub _pad: [u16; 3],
    pub local_addr: [u8; 16],
    pub remote_addr: [u8; 16],
}

const _: () = assert!(size_of::<SocketEnds>() == 48 && SYS_STR0_CAP >= 48);

/// mount(2) flags under which its source is a path too, resolved like the
/// target: a bind mount and a move.
pub mod mount_flags {
    pub const MS_BIND: u64 = 0x1000;
    pub const MS_MOVE: u64 = 0x2000;
    /// Either.
    pub const SOURCE_IS_PATH: u64 = MS_BIND | MS_MOVE;
}

/// The `CLONE_NEW*` flags (linux/sched.h): which namespaces an unshare,
/// clone or clone3 creates.
pub mod namespace_flags {
    pub const CLONE_NEWNS: u64 = 0x0002_0000;
    pub const CLONE_NEWCGROUP: u64 = 0x0200_0000;
    pub const CLONE_NEWUTS: u64 = 0x0400_0000;
    pub const CLONE_NEWIPC: u64 = 0x0800_0000;
    pub const CLONE_NEWUSER: u64 = 0x1000_0000;
    pub const CLONE_NEWPID: u64 = 0x2000_0000;
    pub const CLONE_NEWNET: u64 = 0x4000_0000;
    /// Every namespace type but time: mnt, cgroup, uts, ipc, user, pid,
    /// net.
    pub const CLONE_NEW_NOT_TIME: u64 = CLONE_NEWNS
        | CLONE_NEWCGROUP
        | CLONE_NEWUTS
        | CLONE_NEWIPC
        | CLONE_NEWUSER
        | CLONE_NEWPID
        | CLONE_NEWNET;
    /// `CLONE_NEWTIME`: in clone(2)'s flags this bit is part of the exit
    /// signal (the low byte), so only unshare and clone3 can ask for it.
    pub const CLONE_NEWTIME: u64 = 0x80;
    /// clone(2)'s exit signal, in the low byte of its flags.
    pub const CSIGNAL: u64 = 0xff;
    /// What unshare and clone3 can create.
    pub const CLONE_NEW_ANY: u64 = CLONE_NEW_NOT_TIME | CLONE_NEWTIME;
}

/// An action an intruder uses: ptrace attach, a kernel module load or
/// unload, memfd_create, mount/umount, a bpf() program load or attach, or
/// (op [`SYS_OP_SIGNAL_SENSOR`]) a signal sent to the sensor, or (op
/// [`SYS_OP_IO_URING`]) an io_uring request, or (op
/// [`SYS_OP_IO_URING_COMPLETE`]) its result, or (op
/// [`SYS_OP_PROC_MEM_OPEN`]) an open of a process's memory file. Followed by
/// `str_lens[0] + str_lens[1] + str_lens[2]` bytes: three strings whose
/// meaning depends on `op` (see the daemon's decoder), then `base_len`
/// bytes: a path walked in the kernel (see the field).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SysEvent {
    pub header: EventHeader,
    /// The acting task (for a signal: the sender).
    pub task: TaskInfo,
    /// [`SyscallOp`] as `u32`, [`SYS_OP_SIGNAL_SENSOR`], [`SYS_OP_IO_URING`],
    /// [`SYS_OP_IO_URING_COMPLETE`] or [`SYS_OP_PROC_MEM_OPEN`].
    pub op: u32,
    /// [`sys_flags`] bits.
    pub flags: u32,
    /// 0 or `-errno` (memfd_create: the new fd).
    pub ret: i64,
    /// Numeric arguments; meaning by op.
    pub args: [u64; 4],
    pub str_lens: [u32; 3],
    /// A path walked in the kernel (leaf-first components, like exec's
    /// paths), after the strings: finit_module's file
    /// ([`sys_flags::FILE_WALKED`]); for mount, umount2, move_mount and
    /// mount_setattr with a target (`str0`) that is relative or empty, and
    /// for a bind or move mount(2) with a relative source (`str1`), the
    /// cwd's or the dirfd's path. 0 otherwise.
    pub base_len: u32,
}

const _: () = assert!(size_of::<SysEvent>() == 16 + 144 + 64);

/// Largest record of the system kind.
pub const SYS_EVENT_MAX: usize = {
    // A walk may overshoot its cap by one component.
    let walk = crate::PATH_CAP + crate::COMPONENT_MAX;
    let three_strings = SYS_STR0_CAP + 2 * SYS_STR_CAP + walk;
    // An io_uring rename's or link's two paths and two walked directories
    // ([`sys_flags::STR2_AFTER_BASE`]).
    let two_walks = SYS_STR0_CAP + SYS_STR_CAP + 2 * walk;
    size_of::<SysEvent>()
        + if three_strings > two_walks {
            three_strings
        } else {
            two_walks
        }
};
const _: () = assert!(size_of::<FileEvent>() == 16 + 144 + 88);
const _: () = assert!(size_of::<CredEvent>() == 16 + 144 + 112);

/// Largest record of the file kind.
pub const FILE_EVENT_MAX: usize = size_of::<FileEvent>()
    + ARG_PATH_CAP
    + crate::PATH_CAP
    + crate::COMPONENT_MAX
    + XATTR_NAME_CAP
    + XATTR_VALUE_CAP;

#[cfg(test)]
mod tests {
    #[test]
    fn paths_through_magic_links_are_told_by_their_first_word() {
        let through = |p: &[u8]| {
            let mut a = [b'x'; 32];
            a[..p.len()].copy_from_slice(p);
            path_through_magic_link(&a)
        };
        for p in [
            &b"/proc/self/cwd/x\0"[..],
            b"/proc/1\0",
            b"/dev/fd/3\0",
            b"/dev/stdin\0",
            // Symlink targets through which paths go through one.
            b"/proc\0",
            b"/dev\0",
            b"/dev/\0",
            b"/dev/fd\0",
        ] {
            assert!(through(p), "{p:?}");
        }
        for p in [
            &b"/procs/x\0"[..],
            b"/proc.d\0",
            b"/devx\0",
            b"/dev/fdx\0",
            b"/dev/sda\0",
            b"proc/self\0",
            b"/etc/x\0",
        ] {
            assert!(!through(p), "{p:?}");
        }
        // Shorter than a word: never read past it.
        assert!(!path_through_magic_link(b"/proc/"));
    }

    use super::*;

    /// What a component of an absolute path is: the exact answer, which
    /// the kernel's cheaper [`path_may_leave_prefix`] must cover.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Spelled {
        Normal,
        /// `//` or `/./`: leads where the path without it does.
        Redundant,
        /// `/../`: can lead out of any prefix before it.
        Climb,
    }

    /// The component of `path` that ends at `end`, exactly.
    fn component_ending_at(path: &[u8], end: usize) -> Spelled {
        let component = &path[..end];
        let start = component
            .iter()
            .rposition(|&b| b == b'/')
            .map_or(0, |i| i + 1);
        match &component[start..] {
            b".." => Spelled::Climb,
            b"." => Spelled::Redundant,
            b"" if end > 0 && path.get(end) == Some(&b'/') => Spelled::Redundant,
            _ => Spelled::Normal,
        }
    }

    /// [`path_may_leave_prefix`] of `path`, with the bytes of an earlier,
    /// longer path after its NUL.
    fn leaves(path: &[u8]) -> bool {
        let mut buf = [b'.'; 64];
        buf[..path.len()].copy_from_slice(path);
        buf[path.len()] = 0;
        path_may_leave_prefix(&buf)
    }

    /// The worst component in `path`, checking that the kernel's check
    /// flags the path when it is not normal.
    fn spelled(path: &[u8]) -> Spelled {
        let mut buf = [0u8; 64];
        buf[..path.len()].copy_from_slice(path);
        let mut worst = Spelled::Normal;
        for end in 0..=path.len() {
            if buf[end] != b'/' && buf[end] != 0 {
                continue;
            }
            match component_ending_at(&buf[..=path.len()], end) {
                Spelled::Normal => {}
                Spelled::Redundant if worst == Spelled::Climb => {}
                s => worst = s,
            }
        }
        assert!(
            worst == Spelled::Normal || leaves(path),
            "the kernel's check misses {worst:?} in {:?}",
            str(path)
        );
        worst
    }

    #[test]
    fn paths_spelled_otherwise_than_where_they_lead_are_told() {
        for normal in [
            &b"/"[..],
            b"/etc/cron.d/",
            b"/etc/cron.d/x",
            b"/home/u/.ssh/authorized_keys",
            b"/a/..b/c",
            b"/a/.b",
        ] {
            assert_eq!(spelled(normal), Spelled::Normal, "{:?}", str(normal));
            assert!(!leaves(normal), "{:?}", str(normal));
        }
        for redundant in [
            &b"//etc/cron.d/x"[..],
            b"/etc//cron.d/x",
            b"/etc/./cron.d/x",
            b"/etc/cron.d/.",
            b"/etc/cron.d//",
            b"/./etc",
        ] {
            assert_eq!(
                spelled(redundant),
                Spelled::Redundant,
                "{:?}",
                str(redundant)
            );
        }
        for climb in [
            &b"/tmp/../etc/shadow"[..],
            b"/tmp/ignored/x/..",
            b"/..",
            b"/tmp//../etc",
        ] {
            assert_eq!(spelled(climb), Spelled::Climb, "{:?}", str(climb));
        }
        // The kernel's false alarms: names that end in a dot.
        for name_with_dot in [&b"/a/.../b"[..], b"/a/b../c", b"/a/b."] {
            assert_eq!(spelled(name_with_dot), Spelled::Normal);
            assert!(leaves(name_with_dot), "{:?}", str(name_with_dot));
        }
    }

    fn str(b: &[u8]) -> &str {
        core::str::from_utf8(b).expect("utf-8")
    }

    #[test]
    fn a_path_may_leave_its_prefix_by_dot_dot_or_by_a_rest_not_read() {
        let mut path = [0u8; 32];
        path[..16].copy_from_slice(b"/tmp/x/../../etc");
        assert!(path_may_leave_prefix(&path));
        path[..16].copy_from_slice(b"/tmp/x/ab/cd/etc");
        assert!(!path_may_leave_prefix(&path));
        // Past the NUL is what an earlier, longer path left: not read.
        path[17..23].copy_from_slice(b"/../..");
        assert!(!path_may_leave_prefix(&path));
        // No NUL: the rest was not read, and may climb.
        let full = [b'a'; 32];
        assert!(path_may_leave_prefix(&full));
        // Past the span: not looked at, and may climb.
        let mut long = [b'a'; LEAVE_CHECK_SPAN + 64];
        long[0] = b'/';
        long[LEAVE_CHECK_SPAN + 8] = 0;
        assert!(path_may_leave_prefix(&long));
        long[LEAVE_CHECK_SPAN - 8] = 0;
        assert!(!path_may_leave_prefix(&long));
        // Every place in a word, and across words.
        for at in 2..40 {
            let mut path = [b'x'; 64];
            path[0] = b'/';
            path[at..at + 4].copy_from_slice(b"/../");
            path[50] = 0;
            assert!(path_may_leave_prefix(&path), "`/../` at {at}");
            path[at..at + 4].copy_from_slice(b"/.x/");
            assert!(!path_may_leave_prefix(&path), "`/.x/` at {at}");
            path[at..at + 4].copy_from_slice(b"//xx");
            assert!(path_may_leave_prefix(&path), "`//` at {at}");
            path[at..at + 4].copy_from_slice(b"/x/\0");
            assert!(!path_may_leave_prefix(&path), "a trailing slash at {at}");
            path[at..at + 4].copy_from_slice(b"/..\0");
            assert!(path_may_leave_prefix(&path), "a trailing `/..` at {at}");
        }
    }

    #[test]
    fn path_hash_is_fnv_1a_64() {
        // The published FNV-1a 64 values of "" and "a".
        assert_eq!(path_hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(path_hash(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_ne!(path_hash(b"/etc/cron.d/"), path_hash(b"/etc/cron.d"));
    }

    #[test]
    fn shell_rc_names_are_compared_as_their_little_endian_bytes() {
        assert_eq!(
            name_words(b".bashrc"),
            (7, u64::from_le_bytes(*b".bashrc\0"), 0)
        );
        assert_eq!(
            name_words(b".bash_profile"),
            (
                13,
                u64::from_le_bytes(*b".bash_pr"),
                u64::from_le_bytes(*b"ofile\0\0\0")
            )
        );
        for (name, words) in SHELL_RC_NAMES.iter().zip(SHELL_RC_WORDS) {
            assert_eq!(name_words(name), words);
            assert!((SHELL_RC_NAME_MIN..=SHELL_RC_NAME_MAX).contains(&name.len()));
            // Each a dotfile (the daemon's glob of them relies on it).
            assert_eq!(name[0], b'.');
        }
    }

    /// What the kernel does with a path argument's last 16 bytes (those
    /// before a short path's start zero here).
    fn ends_in_tail(path: &[u8], tail: &PathTail) -> bool {
        let mut last = [0u8; 16];
        let n = path.len().min(16);
        last[16 - n..].copy_from_slice(&path[path.len() - n..]);
        let lo = u64::from_le_bytes(last[..8].try_into().expect("8 bytes"));
        let hi = u64::from_le_bytes(last[8..].try_into().expect("8 bytes"));
        lo & tail.lo_mask == tail.lo_want && hi & tail.hi_mask == tail.hi_want
    }

    #[test]
    fn a_path_tail_matches_a_slash_and_the_name_at_the_end_only() {
        let bashrc = path_tail(b".bashrc");
        // `/.bashrc`: 8 bytes, the high word's.
        assert_eq!(bashrc.lo_mask, 0);
        assert_eq!(bashrc.hi_mask, u64::MAX);
        assert_eq!(bashrc.hi_want, u64::from_le_bytes(*b"/.bashrc"));
        for (path, name, want) in [
            (&b"/home/bob/.bashrc"[..], &b".bashrc"[..], true),
            (b"/.bashrc", b".bashrc", true),
            (b"/home/bob/.bash_profile", b".bash_profile", true),
            (b"/root/.profile", b".profile", true),
            (b"/home/bob/x.bashrc", b".bashrc", false),
            (b"/home/bob/.bashrc.bak", b".bashrc", false),
            (b".bashrc", b".bashrc", false),
            (b"/home/bob/.bash_profile", b".profile", false),
            (b"/x/.bash_profile2", b".bash_profile", false),
        ] {
            assert_eq!(ends_in_tail(path, &path_tail(name)), want, "{path:?}");
        }
        for (name, tail) in SHELL_RC_NAMES.iter().zip(SHELL_RC_TAILS) {
            let mut path = b"/home/someone/".to_vec();
            path.extend_from_slice(name);
            assert!(ends_in_tail(&path, &tail));
        }
    }

    #[test]
    fn from_u32_inverts_every_op() {
        for op in SyscallOp::ALL {
            assert_eq!(SyscallOp::from_u32(op as u32), Some(op), "{op:?}");
        }
        assert_eq!(SyscallOp::from_u32(0), None);
        assert_eq!(SyscallOp::from_u32(NET_OP_CONNECT_OUTCOME), None);
        assert_eq!(SyscallOp::from_u32(NET_OP_CONNECT_UNSEEN), None);
        assert_eq!(SyscallOp::from_u32(NET_OP_UDP_SEND), None);
        assert_eq!(SyscallOp::from_u32(NET_OP_UDP_RECEIVE), None);
        assert_eq!(SyscallOp::from_u32(SYS_OP_IO_URING), None);
        assert_eq!(SyscallOp::from_u32(SYS_OP_IO_URING_COMPLETE), None);
        assert_eq!(SyscallOp::from_u32(SYS_OP_PROC_MEM_OPEN), None);
        assert_eq!(SyscallOp::from_u32(SYS_OP_SIGNAL_SENSOR), None);
    }

    #[test]
    fn a_path_decides_plain_chmods_and_chowns_of_files_with_one_name() {
        assert!(SyscallOp::Fchmodat.path_filter_applies(0o1777));
        assert!(SyscallOp::Lchown.path_filter_applies(0));
        for mode in [0o4755, 0o2700, 0o6000] {
            assert!(!SyscallOp::Chmod.path_filter_applies(mode), "{mode:o}");
        }
        assert!(!SyscallOp::Setxattr.path_filter_applies(0));
        assert!(!SyscallOp::Removexattr.path_filter_applies(0));
        // A regular file's second name; a directory's count is not one.
        assert!(has_other_names(0o100644, 2));
        assert!(!has_other_names(0o100644, 1));
        assert!(!has_other_names(0o040755, 5));
    }

    #[test]
    fn a_number_takes_its_slot_from_its_low_32_bits_and_the_x32_bit() {
        let x32 = crate::compat::X32_SYSCALL_BIT as u64;
        assert_eq!(ops_slot(90), 90);
        // The bits the kernel ignores do not move a call out of its slot.
        assert_eq!(ops_slot(1 << 32 | 90), 90);
        assert_eq!(ops_slot(1 << 63 | 90), 90);
        assert_eq!(ops_slot(x32 | 90), X32_SLOTS_BASE + 90);
        assert_eq!(ops_slot(1 << 40 | x32 | 521), X32_SLOTS_BASE + 521);
        // Every x32 number fits; negative numbers (-1: no syscall) and
        // other bits land outside the map.
        assert!(ops_slot(x32 | 547) < SYSCALL_SLOTS);
        for nr in [
            u64::MAX,
            -2i64 as u64,
            0x8000_005a,
            0x2000_005a,
            x32 | 0x1000_0000,
        ] {
            assert!(ops_slot(nr) >= SYSCALL_SLOTS, "{nr:#x}");
        }
    }
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: repr(C), Copy, integers and arrays only, no padding (size
    // asserts above).
    unsafe impl aya::Pod for super::FileEvent {}
    unsafe impl aya::Pod for super::CredEvent {}
    unsafe impl aya::Pod for super::NetEvent {}
    unsafe impl aya::Pod for super::SysEvent {}
    unsafe impl aya::Pod for super::WatchEvent {}
    unsafe impl aya::Pod for super::SocketEnds {}
    unsafe impl aya::Pod for super::WatchedInode {}
}
