//! The ia32 syscall ABI on x86_64 (`int 0x80`, `sysenter`, and every
//! syscall of a 32-bit program).
//!
//! Why it needs its own table: an ia32 call has its own numbers (chmod is
//! 15, not 90) and its own argument registers, and a `chmod u+s` or a
//! `setuid(0)` made through `int 0x80` from an ordinary 64-bit process
//! must not pass unseen. The `raw_syscalls` dispatchers see every call;
//! they check the task's `TS_COMPAT` status and hand the ia32 calls of
//! traced syscalls to the families' compat programs by tail call. (The
//! per-syscall `syscalls:` tracepoints ignore compat syscalls on x86:
//! `ARCH_TRACE_IGNORE_COMPAT_SYSCALLS` in the kernel's trace_syscalls.c.)
//!
//! The daemon fills `COMPAT_OPS` (ia32 number → value) from [`TABLE`]; a
//! value is a [`crate::SyscallOp`] in its low byte plus the flags below.
//!
//! The x32 ABI needs much less: its calls are native ones (the same
//! registers, `TS_COMPAT` unset) whose number carries [`X32_SYSCALL_BIT`],
//! so the native programs serve them, from slots of their own in
//! `SYSCALL_OPS` (see [`crate::ops_slot`]).

use crate::SyscallOp;

/// Slots of the `COMPAT_OPS` map: above every ia32 syscall number.
pub const SLOTS: u32 = 512;

/// The op's low byte.
pub const OP_MASK: u32 = 0xff;
/// `socketcall(call, args)`: the op comes from `call`, the arguments from
/// the `u32` array at `args` in the caller's memory.
pub const SOCKETCALL: u32 = 0xff;
/// The legacy 16-bit id variant (`setuid`, `chown`…): ids are `u16`, and
/// `0xffff` means "unchanged" as `-1` does for the 32-bit calls.
pub const IDS16: u32 = 1 << 8;
/// `umount(name)`: `umount2` without its flags argument.
pub const NO_FLAGS: u32 = 1 << 9;

/// `TaskInfo::flags` bit: the event's syscall came through the ia32 ABI.
pub const TASK_IA32: u32 = 1;
/// `TaskInfo::flags` bit: the event's syscall came through the x32 ABI.
pub const TASK_X32: u32 = 2;

/// The bit that makes a native syscall number an x32 one
/// (`__X32_SYSCALL_BIT`).
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// The x32 number of a traced syscall whose x32 number is not its native
/// one: x32 has its own compat entry points at 512–547 (`syscall_64.tbl`'s
/// "x32" lines) for calls whose arguments hold pointers or longs; every
/// other traced syscall is "common", the same number for both ABIs.
pub const fn x32_own_number(op: SyscallOp) -> Option<u32> {
    match op {
        SyscallOp::Ptrace => Some(521),
        SyscallOp::ProcessVmReadv => Some(539),
        SyscallOp::ProcessVmWritev => Some(540),
        SyscallOp::KexecLoad => Some(528),
        _ => None,
    }
}

/// `thread_info.status` bit of a task inside an ia32 syscall (x86's
/// `TS_COMPAT`, the same since Linux 2.6).
pub const TS_COMPAT: u32 = 0x0002;

/// `socketcall` call numbers (linux/net.h) of the traced network calls.
pub const SYS_SOCKET: u32 = 1;
pub const SYS_BIND: u32 = 2;
pub const SYS_CONNECT: u32 = 3;
pub const SYS_LISTEN: u32 = 4;
pub const SYS_ACCEPT: u32 = 5;
pub const SYS_ACCEPT4: u32 = 18;

/// Index in `SYSCALL_PROGS` (native) and `COMPAT_PROGS` (ia32) of a
/// family's entry (`exit = false`) or exit program (a family is a
/// [`crate::SYSCALL_FAMILIES`] kind).
pub const fn slot(family: crate::EventKind, exit: bool) -> u32 {
    let index = match family {
        crate::EventKind::FileAttr => 0,
        crate::EventKind::FileWrite => 1,
        crate::EventKind::Cred => 2,
        crate::EventKind::Net => 3,
        _ => 4,
    };
    index * 2 + exit as u32
}

/// The family of a [`TABLE`] value: its op's, network for `socketcall`.
#[inline(always)]
pub const fn family(value: u32) -> Option<crate::EventKind> {
    if value & OP_MASK == SOCKETCALL {
        return Some(crate::EventKind::Net);
    }
    match SyscallOp::from_u32(value & OP_MASK) {
        Some(op) => Some(op.kind()),
        None => None,
    }
}

/// Slots of `SYSCALL_PROGS` and `COMPAT_PROGS`.
pub const PROG_SLOTS: u32 = 10;

/// ia32 syscall numbers of the traced syscalls, from the kernel's
/// `arch/x86/entry/syscalls/syscall_32.tbl` (the numbers never change).
/// Written out: no crate carries the ia32 table for an x86_64 build, and
/// `source::ebpf::compat`'s tests in the daemon check it against the
/// kernel headers where installed.
pub const TABLE: &[(u32, u32)] = &[
    (15, SyscallOp::Chmod as u32),
    (94, SyscallOp::Fchmod as u32),
    (306, SyscallOp::Fchmodat as u32),
    (452, SyscallOp::Fchmodat2 as u32),
    (182, SyscallOp::Chown as u32 | IDS16),
    (16, SyscallOp::Lchown as u32 | IDS16),
    (95, SyscallOp::Fchown as u32 | IDS16),
    (212, SyscallOp::Chown as u32),
    (198, SyscallOp::Lchown as u32),
    (207, SyscallOp::Fchown as u32),
    (298, SyscallOp::Fchownat as u32),
    (226, SyscallOp::Setxattr as u32),
    (227, SyscallOp::Lsetxattr as u32),
    (228, SyscallOp::Fsetxattr as u32),
    (235, SyscallOp::Removexattr as u32),
    (236, SyscallOp::Lremovexattr as u32),
    (237, SyscallOp::Fremovexattr as u32),
    (5, SyscallOp::Open as u32),
    (295, SyscallOp::Openat as u32),
    (437, SyscallOp::Openat2 as u32),
    (8, SyscallOp::Creat as u32),
    (92, SyscallOp::Truncate as u32),
    (193, SyscallOp::Truncate as u32),
    (93, SyscallOp::Ftruncate as u32),
    (194, SyscallOp::Ftruncate as u32),
    (10, SyscallOp::Unlink as u32),
    (301, SyscallOp::Unlinkat as u32),
    (38, SyscallOp::Rename as u32),
    (302, SyscallOp::Renameat as u32),
    (353, SyscallOp::Renameat2 as u32),
    (9, SyscallOp::Link as u32),
    (303, SyscallOp::Linkat as u32),
    (83, SyscallOp::Symlink as u32),
    (304, SyscallOp::Symlinkat as u32),
    (23, SyscallOp::Setuid as u32 | IDS16),
    (46, SyscallOp::Setgid as u32 | IDS16),
    (70, SyscallOp::Setreuid as u32 | IDS16),
    (71, SyscallOp::Setregid as u32 | IDS16),
    (164, SyscallOp::Setresuid as u32 | IDS16),
    (170, SyscallOp::Setresgid as u32 | IDS16),
    (138, SyscallOp::Setfsuid as u32 | IDS16),
    (139, SyscallOp::Setfsgid as u32 | IDS16),
    (213, SyscallOp::Setuid as u32),
    (214, SyscallOp::Setgid as u32),
    (203, SyscallOp::Setreuid as u32),
    (204, SyscallOp::Setregid as u32),
    (208, SyscallOp::Setresuid as u32),
    (210, SyscallOp::Setresgid as u32),
    (215, SyscallOp::Setfsuid as u32),
    (216, SyscallOp::Setfsgid as u32),
    (185, SyscallOp::Capset as u32),
    (362, SyscallOp::Connect as u32),
    (364, SyscallOp::Accept4 as u32),
    (361, SyscallOp::Bind as u32),
    (363, SyscallOp::Listen as u32),
    (359, SyscallOp::Socket as u32),
    (102, SOCKETCALL),
    (26, SyscallOp::Ptrace as u32),
    (128, SyscallOp::InitModule as u32),
    (350, SyscallOp::FinitModule as u32),
    (129, SyscallOp::DeleteModule as u32),
    (356, SyscallOp::MemfdCreate as u32),
    (21, SyscallOp::Mount as u32),
    (52, SyscallOp::Umount2 as u32),
    (22, SyscallOp::Umount2 as u32 | NO_FLAGS),
    (357, SyscallOp::Bpf as u32),
    (37, SyscallOp::Kill as u32),
    (238, SyscallOp::Tkill as u32),
    (270, SyscallOp::Tgkill as u32),
    (429, SyscallOp::MoveMount as u32),
    (442, SyscallOp::MountSetattr as u32),
    (347, SyscallOp::ProcessVmReadv as u32),
    (348, SyscallOp::ProcessVmWritev as u32),
    (438, SyscallOp::PidfdGetfd as u32),
    (346, SyscallOp::Setns as u32),
    (283, SyscallOp::KexecLoad as u32),
    (310, SyscallOp::Unshare as u32),
    (120, SyscallOp::Clone as u32),
    (435, SyscallOp::Clone3 as u32),
];

/// The op a `socketcall` call number stands for.
#[inline(always)]
pub const fn socketcall_op(call: u32) -> Option<SyscallOp> {
    Some(match call {
        SYS_SOCKET => SyscallOp::Socket,
        SYS_BIND => SyscallOp::Bind,
        SYS_CONNECT => SyscallOp::Connect,
        SYS_LISTEN => SyscallOp::Listen,
        SYS_ACCEPT => SyscallOp::Accept,
        SYS_ACCEPT4 => SyscallOp::Accept4,
        _ => return None,
    })
}
