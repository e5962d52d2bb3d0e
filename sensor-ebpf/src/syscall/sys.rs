//! Actions an intruder uses: ptrace attach, another process's memory or
//! files reached without it (process_vm_readv/writev, pidfd_getfd), setns,
//! new namespaces (unshare, clone, clone3), kernel module load and unload,
//! kexec, memfd_create, mount and umount, bpf() program loads and
//! attaches, and signals sent to the sensor itself.
//!
//! Same entry/exit pattern as the file family: strings are copied at
//! entry, the result (and finit_module's file, from its fd) at exit.

use aya_ebpf::helpers::generated::bpf_probe_read_user;
use aya_ebpf::macros::{map, raw_tracepoint};
use aya_ebpf::maps::{HashMap, LruHashMap, PerCpuArray};
use aya_ebpf::programs::RawTracePointContext;
use sensor_common::{
    AT_FDCWD, EventKind, MODULE_NAME_CAP, ProbeError, SYS_OP_NAMESPACES_AT_FORK,
    SYS_OP_SIGNAL_SENSOR, SYS_STR_CAP, SYS_STR0_CAP, SysEvent, SyscallOp, compat::TASK_IA32,
    mount_flags, namespace_flags, sys_flags,
};

use super::{copy, dir_path, fd_file, read_user_str};
use crate::kernel::{copy_struct, field, put, read_ptr, read_u16, read_u32, read_u64};
use crate::maps::{
    DATA_MASK, SYSCALL_SCRATCH, count_error, fork_namespaces_reported, off, scratch, sensor_tgid,
};
use crate::path::{Walk, Writer, write_found_path};
use crate::task::{self, Current};

const PTRACE_ATTACH: u64 = 16;
const PTRACE_SEIZE: u64 = 0x4206;
const BPF_PROG_LOAD: u64 = 5;
const BPF_PROG_ATTACH: u64 = 8;
const BPF_RAW_TRACEPOINT_OPEN: u64 = 17;
const BPF_LINK_CREATE: u64 = 28;
/// `offsetof(union bpf_attr, prog_name)` for BPF_PROG_LOAD (UAPI, fixed).
const BPF_ATTR_PROG_NAME: u64 = 48;
/// `attach_type` of BPF_PROG_ATTACH and BPF_LINK_CREATE (UAPI, fixed).
const BPF_ATTR_ATTACH_TYPE: u64 = 8;
const SIGCHLD: u64 = 17;
/// kexec_file_load's flag to unload the loaded kernel (its fds unused).
const KEXEC_FILE_UNLOAD: u64 = 1;
/// nsfs's `s_magic`: the files under /proc/PID/ns.
const NSFS_MAGIC: u64 = 0x6e73_6673;

/// What was known at entry.
#[repr(C)]
pub struct PendingSys {
    op: u32,
    flags: u32,
    fd: i32,
    _pad0: u32,
    args: [u64; 4],
    lens: [u32; 3],
    _pad1: u32,
    s0: [u8; SYS_STR0_CAP],
    s1: [u8; SYS_STR_CAP],
    s2: [u8; SYS_STR_CAP],
}

#[map]
static SYS_PENDING: PerCpuArray<PendingSys> = PerCpuArray::with_max_entries(1, 0);

/// Calls between entry and exit, by thread; ~4.6 KiB values, allocated
/// only for calls in flight.
#[map]
static SYS_INFLIGHT: HashMap<u64, PendingSys> = HashMap::with_max_entries(1024, BPF_F_NO_PREALLOC);

const BPF_F_NO_PREALLOC: u32 = 1;

/// The clones in flight whose entry left a record, by thread: 0, or
/// [`MADE_SEEN`] and the `CLONE_NEW*` bits of what their fork made, for
/// their exit. Apart from SYS_INFLIGHT because the fork hook, a raw
/// tracepoint, may not touch a map allocated at run time before Linux 6.1
/// (the verifier refuses it). LRU: the marker of a clone whose exit never
/// ran (its thread killed in the call) is evicted, not leaked.
#[map]
static CLONES: LruHashMap<u64, u64> = LruHashMap::with_max_entries(1024, 0);

/// In a [`CLONES`] value: its fork made namespaces (the other bits).
const MADE_SEEN: u64 = 1 << 63;

/// The namespace inodes of the new process of a clone in [`CLONES`] that
/// made namespaces, by thread, as its fork saw them
/// (`process::namespaces::inodes`), for the exit to report. LRU, like
/// [`CLONES`]; the exit removes its entry.
#[map]
static CLONE_INODES: LruHashMap<u64, [u32; 8]> = LruHashMap::with_max_entries(1024, 0);

super::syscall_programs!(sys_enter, sys_exit, sys_compat_enter, sys_compat_exit);

#[inline(always)]
fn enter<E: super::Entry>(c: &E) -> u32 {
    let Some(op) = c.op() else { return 0 };
    let a = |i| c.arg(i);
    let clone3 = if op == SyscallOp::Clone3 {
        clone3_flags(a(0))
    } else {
        0
    };
    // Cheap filters first: only the requests and commands that matter.
    match op {
        SyscallOp::Ptrace if a(0) != PTRACE_ATTACH && a(0) != PTRACE_SEIZE => return 0,
        SyscallOp::Bpf
            if !matches!(
                a(0),
                BPF_PROG_LOAD | BPF_PROG_ATTACH | BPF_RAW_TRACEPOINT_OPEN | BPF_LINK_CREATE
            ) =>
        {
            return 0;
        }
        // Only what is aimed at the sensor: its pid (kill, tgkill) or its
        // main thread (tkill).
        SyscallOp::Kill | SyscallOp::Tkill | SyscallOp::Tgkill if a(0) as u32 != sensor_tgid() => {
            return 0;
        }
        // A process reading or writing its own memory this way crosses no
        // boundary.
        SyscallOp::ProcessVmReadv | SyscallOp::ProcessVmWritev
            if a(0) as u32 == (super::entry_thread_key() >> 32) as u32 =>
        {
            return 0;
        }
        // Only calls that make namespaces: every fork and thread start is
        // a clone or clone3 without one. (clone's low byte is its exit
        // signal, where CLONE_NEWTIME's bit would be.)
        SyscallOp::Unshare if a(0) & namespace_flags::CLONE_NEW_ANY == 0 => return 0,
        SyscallOp::Clone if a(0) & namespace_flags::CLONE_NEW_NOT_TIME == 0 => return 0,
        SyscallOp::Clone3 if clone3 & namespace_flags::CLONE_NEW_ANY == 0 => return 0,
        _ => {}
    }
    let Some(p) = SYS_PENDING.get_ptr_mut(0) else {
        count_error(ProbeError::Scratch);
        return 0;
    };
    // SAFETY: this CPU's slot; the program does not sleep.
    let p = unsafe { &mut *p };
    put(&mut p.op, op as u32);
    put(&mut p.flags, 0);
    put(&mut p.fd, -1);
    for i in 0..4 {
        put(&mut p.args[i], 0);
    }
    for i in 0..3 {
        put(&mut p.lens[i], 0);
    }
    match op {
        SyscallOp::Ptrace => {
            p.args[0] = a(0);
            p.args[1] = a(1);
        }
        // (pid, local iov, liovcnt, remote iov, riovcnt, flags): the
        // target, and how many pieces of its memory.
        SyscallOp::ProcessVmReadv | SyscallOp::ProcessVmWritev => {
            p.args[1] = a(0);
            p.args[2] = a(4);
        }
        // (pidfd, targetfd, flags): the fd taken, and the process it is
        // taken from (see `pidfd_target`).
        SyscallOp::PidfdGetfd => {
            let file = fd_file(super::current_task(), a(0) as i32);
            let target = pidfd_target(file).unwrap_or(0);
            // Whose file was taken is decided at the exit (see
            // `own_file_taken`): the fd is read here, and another thread
            // can put another process's pidfd under its number before the
            // kernel reads it.
            // (Its flags must be 0: any other value is the call's EINVAL.)
            // Volatile: on some compat paths LLVM sees two of these as
            // zero and merges them into a memset call.
            put(&mut p.args[0], a(1));
            put(&mut p.args[1], target as u64);
        }
        // (fd, nstype): what the fd stands for, read now (the caller may
        // close it once the call returns): an nsfs file's namespace (its
        // inode number, as /proc/PID/ns names it), or a pidfd's process.
        SyscallOp::Setns => {
            put(&mut p.args[0], a(0));
            put(&mut p.args[1], a(1));
            let file = fd_file(super::current_task(), a(0) as i32);
            let inode = file.and_then(|f| read_ptr(f, off!(file_inode)));
            let magic = inode
                .and_then(|i| read_ptr(i, off!(inode_sb)))
                .and_then(|sb| read_u64(sb, off!(sb_magic)));
            if magic == Ok(NSFS_MAGIC) {
                let ino = inode.and_then(|i| read_u64(i, off!(inode_ino)));
                put(&mut p.args[2], ino.unwrap_or(0));
            } else {
                let target = pidfd_target(file).unwrap_or(0);
                put(&mut p.args[3], target as u64);
            }
            // Where the caller is now, to compare with where the exit finds
            // it: the fd is only read here, and another thread can put a
            // different file under its number before the kernel reads it.
            write_inodes(
                &mut p.s0,
                &crate::process::namespaces::inodes(super::current_task()),
            );
            p.lens[0] = NAMESPACE_INODES_LEN;
        }
        // (flags, ...), or clone3's from its struct: the namespaces asked
        // for.
        SyscallOp::Unshare | SyscallOp::Clone => put(&mut p.args[0], a(0)),
        SyscallOp::Clone3 => put(&mut p.args[0], clone3),
        // (entry, nr_segments, segments, flags).
        SyscallOp::KexecLoad => {
            put(&mut p.args[0], a(1));
            put(&mut p.args[1], a(3));
            put(&mut p.args[2], a(0));
        }
        // (kernel_fd, initrd_fd, cmdline_len, cmdline, flags): the kernel
        // file is walked from its fd at exit, like finit_module's.
        SyscallOp::KexecFileLoad => {
            p.fd = a(0) as i32;
            put(&mut p.args[0], a(0));
            put(&mut p.args[1], a(4));
            put(&mut p.args[2], a(1));
            if a(2) != 0 {
                str1(p, a(3));
            }
        }
        SyscallOp::InitModule => {
            p.args[0] = a(1);
            str1(p, a(2));
        }
        SyscallOp::FinitModule => {
            p.fd = a(0) as i32;
            p.args[0] = a(0);
            p.args[1] = a(2);
            str1(p, a(1));
        }
        SyscallOp::DeleteModule | SyscallOp::MemfdCreate => {
            str1(p, a(0));
            p.args[1] = a(1);
        }
        SyscallOp::Mount => {
            str0(p, a(1));
            str1(p, a(0));
            str2(p, a(2));
            p.args[0] = a(3);
        }
        SyscallOp::Umount2 => {
            str0(p, a(0));
            p.args[1] = a(1);
        }
        // move_mount(from_dfd, from_path, to_dfd, to_path, flags): the
        // target as given (relative to to_dfd), the source path (often ""
        // with an fd), flags.
        SyscallOp::MoveMount => {
            p.fd = a(2) as i32;
            str0(p, a(3));
            str1(p, a(1));
            p.args[0] = a(4);
        }
        // mount_setattr(dfd, path, flags, uattr, usize): the path as given,
        // the at-flags, and struct mount_attr's attr_set, attr_clr and
        // propagation (its first 24 bytes in every version).
        SyscallOp::MountSetattr => {
            p.fd = a(0) as i32;
            str0(p, a(1));
            p.args[0] = a(2);
            for i in 1..4 {
                put(&mut p.args[i], 0);
            }
            // SAFETY: a 24-byte probe read into args[1..4]; they stay 0 if
            // it fails (the kernel then fails the call with EFAULT too).
            let r = unsafe {
                bpf_probe_read_user(p.args.as_mut_ptr().add(1).cast(), 24, a(3) as *const _)
            };
            if r < 0 {
                count_error(ProbeError::ReadArg);
            }
        }
        SyscallOp::Bpf => {
            let cmd = a(0);
            let attr = a(1);
            p.args[0] = cmd;
            match cmd {
                BPF_PROG_LOAD => {
                    p.args[1] = user_u32(attr) as u64;
                    str1_bytes(p, attr + BPF_ATTR_PROG_NAME, 16);
                }
                BPF_RAW_TRACEPOINT_OPEN => {
                    let mut name = 0u64;
                    // SAFETY: an 8-byte probe read into a local.
                    let r =
                        unsafe { bpf_probe_read_user((&raw mut name).cast(), 8, attr as *const _) };
                    if r == 0 && name != 0 {
                        str1(p, name);
                    }
                }
                _ => p.args[1] = user_u32(attr + BPF_ATTR_ATTACH_TYPE) as u64,
            }
        }
        // Signal number, then the target.
        SyscallOp::Kill | SyscallOp::Tkill => {
            p.args[0] = a(1);
            p.args[1] = a(0);
        }
        SyscallOp::Tgkill => {
            p.args[0] = a(2);
            p.args[1] = a(0);
        }
        _ => return 0,
    }
    let key = super::entry_thread_key();
    if SYS_INFLIGHT.insert(&key, &*p, 0).is_err() {
        count_error(ProbeError::Inflight);
    } else if op == SyscallOp::Clone || op == SyscallOp::Clone3 {
        // (If this fails, the fork reports what it made on its own.)
        let _ = CLONES.insert(&key, &0, 0);
    } else if matches!(
        op,
        SyscallOp::InitModule | SyscallOp::FinitModule | SyscallOp::DeleteModule
    ) {
        super::module_name::forget(&key);
    }
    0
}

/// `abi`: the `TaskInfo::flags` of the ABI the call came through.
#[inline(always)]
fn exit(_ctx: *mut core::ffi::c_void, ret: i64, abi: u32) -> u32 {
    let current = Current::get();
    let key = current.thread_key();
    let Some(p) = SYS_INFLIGHT.get_ptr_mut(&key) else {
        return 0;
    };
    let Some(buf) = scratch(&SYSCALL_SCRATCH) else {
        let _ = SYS_INFLIGHT.remove(&key);
        return 0;
    };
    // SAFETY: a live map value, removed only at the end; this thread's
    // (the key is the thread).
    let p = unsafe { &mut *p };
    // A signal that was sent is signal_generate's event; only a refused
    // attempt (EPERM, ESRCH…) is reported from here.
    let kill = p.op == SyscallOp::Kill as u32
        || p.op == SyscallOp::Tkill as u32
        || p.op == SyscallOp::Tgkill as u32;
    if kill && ret >= 0 {
        let _ = SYS_INFLIGHT.remove(&key);
        return 0;
    }
    let task = current.addr();
    // pidfd_getfd that took the very file the caller holds at that number
    // gained nothing and is not reported (a process copying its own file;
    // a child's file it shares since the fork), nor is a failure through
    // the caller's own pidfd. A file that is not its own, taken through
    // what the entry read as its own pidfd, means the kernel read another
    // process's pidfd there: reported, with that process unknown.
    if p.op == SyscallOp::PidfdGetfd as u32 {
        let own_pidfd = p.args[1] == key >> 32 || p.args[1] == key & 0xffff_ffff;
        if (ret < 0 && own_pidfd) || (ret >= 0 && own_file_taken(task, p.args[0], ret)) {
            let _ = SYS_INFLIGHT.remove(&key);
            return 0;
        }
        if own_pidfd {
            p.flags |= sys_flags::TARGET_UNKNOWN;
        }
    }
    // SAFETY: this CPU's scratch slot, 8-aligned, larger than SysEvent.
    let ev = unsafe { &mut *buf.cast::<SysEvent>() };
    if current.fill(&mut ev.task).is_err() {
        count_error(ProbeError::ReadTask);
        let _ = SYS_INFLIGHT.remove(&key);
        return 0;
    }
    task::mark_abi(&mut ev.task, abi);
    ev.header.kind = EventKind::System as u32;
    // SAFETY: the helper has no preconditions.
    ev.header.boot_ns = unsafe { aya_ebpf::helpers::bpf_ktime_get_boot_ns() };
    ev.op = p.op;
    ev.flags = p.flags;
    ev.ret = ret;
    // SAFETY: two arrays of the same type, in map values.
    unsafe { copy_struct(&mut ev.args, &p.args) };
    // Where a setns left the caller (str1), next to where it was (str0);
    // the namespaces an unshare made and moved it into (str1).
    if (p.op == SyscallOp::Setns as u32 || p.op == SyscallOp::Unshare as u32) && ret == 0 {
        write_inodes(&mut p.s1, &crate::process::namespaces::inodes(task));
        p.lens[1] = NAMESPACE_INODES_LEN;
    }
    if p.op == SyscallOp::Clone as u32 || p.op == SyscallOp::Clone3 as u32 {
        // SAFETY: a lookup; the value is copied out.
        if let Some(&seen) = unsafe { CLONES.get(&key) }
            && seen & MADE_SEEN != 0
        {
            ev.args[1] = seen & !MADE_SEEN;
            ev.flags |= sys_flags::NAMESPACES_SEEN;
            // The namespaces made, as the new process has them (str1).
            // SAFETY: a lookup; the value is copied out before the remove.
            if let Some(inodes) = unsafe { CLONE_INODES.get(&key) } {
                write_inodes(&mut p.s1, inodes);
                p.lens[1] = NAMESPACE_INODES_LEN;
            }
            let _ = CLONE_INODES.remove(&key);
        }
        let _ = CLONES.remove(&key);
    }
    // The module as the kernel named it (str2), where it got that far.
    let module_op = p.op == SyscallOp::InitModule as u32
        || p.op == SyscallOp::FinitModule as u32
        || p.op == SyscallOp::DeleteModule as u32;
    if module_op && super::module_name::take(&key, p.s2.as_mut_ptr().cast()) {
        p.lens[2] = MODULE_NAME_CAP as u32;
        ev.flags |= sys_flags::MODULE_NAMED;
    }
    ev.base_len = 0;
    // SAFETY: FIXED is inside the scratch value.
    let data = unsafe { buf.add(FIXED) };
    // The strings as copied at entry (finit_module has no str0).
    let len0 = p.lens[0] as usize & (SYS_STR0_CAP - 1);
    copy(data, 0, p.s0.as_ptr(), len0);
    let len1 = p.lens[1] as usize & (SYS_STR_CAP - 1);
    copy(data, len0, p.s1.as_ptr(), len1);
    let len2 = p.lens[2] as usize & (SYS_STR_CAP - 1);
    copy(data, (len0 + len1) & DATA_MASK, p.s2.as_ptr(), len2);
    ev.str_lens = [len0 as u32, len1 as u32, len2 as u32];
    // Then one path walked here (one walk site: a second puts sys_exit past
    // the verifier's budget): finit_module's or kexec_file_load's file,
    // from its fd, or the file pidfd_getfd took (its new fd); or where a
    // mount target relative to the cwd or a dirfd, or empty (the dirfd
    // itself), or a bind or move mount's relative source, starts, so the
    // daemon can show the paths the kernel used.
    let strings = (len0 + len1 + len2) & DATA_MASK;
    let mut w = Writer { data, pos: strings };
    // SAFETY: s0's first byte, inside the map value.
    let relative = len0 == 0 || unsafe { *p.s0.as_ptr() } != b'/';
    // A bind or move mount's source is a path relative to the same cwd.
    // SAFETY: s1's first byte, inside the map value.
    let source_relative = p.op == SyscallOp::Mount as u32
        && p.args[0] & mount_flags::SOURCE_IS_PATH != 0
        && len1 > 0
        && unsafe { *p.s1.as_ptr() } != b'/';
    let taken = p.op == SyscallOp::PidfdGetfd as u32 && ret >= 0;
    // (An unload names no file.)
    let kernel_file = p.op == SyscallOp::KexecFileLoad as u32 && p.args[1] & KEXEC_FILE_UNLOAD == 0;
    let walked = if p.op == SyscallOp::FinitModule as u32 || taken || kernel_file {
        ev.flags |= sys_flags::FILE_WALKED;
        let fd = if taken { ret as i32 } else { p.fd };
        let file = fd_file(task, fd);
        if taken {
            // Its type and inode number: a socket, a pipe or an anonymous
            // inode has no path, and the daemon names it as /proc does.
            let inode = file.and_then(|f| read_ptr(f, off!(file_inode)));
            // Volatile: two zeros would become a memset call.
            let mode = inode.and_then(|i| read_u16(i, off!(inode_mode)));
            put(&mut ev.args[2], mode.unwrap_or(0) as u64);
            let ino = inode.and_then(|i| read_u64(i, off!(inode_ino)));
            put(&mut ev.args[3], ino.unwrap_or(0));
        }
        Some(file.and_then(|f| field(f, off!(file_path))))
    } else if mount_target(p.op) && (relative || source_relative) {
        let dirfd = if p.op == SyscallOp::Mount as u32 || p.op == SyscallOp::Umount2 as u32 {
            AT_FDCWD
        } else {
            p.fd
        };
        Some(dir_path(task, dirfd))
    } else {
        None
    };
    if let Some(walked) = walked {
        let walk = write_found_path(&mut w, walked);
        match walk {
            Walk::Complete => {}
            Walk::Truncated => ev.flags |= sys_flags::TRUNCATED,
            Walk::Failed => count_error(ProbeError::ReadPath),
        }
    }
    ev.base_len = w.since(strings) as u32;
    let size = FIXED + (w.pos & DATA_MASK);
    ev.header.size = size as u32;
    // SAFETY: size <= FIXED + DATA_MASK, inside the scratch value.
    unsafe { crate::ring::output(EventKind::System, buf, size) };
    let _ = SYS_INFLIGHT.remove(&key);
    0
}

/// A clone by the current thread made process (or thread) `child`, whose
/// pid is `child_pid`, with new namespaces (`made`, `CLONE_NEW*` bits,
/// seen at the fork: see `process::namespaces`). Where its entry left a
/// record, its marker in [`CLONES`] takes them, [`CLONE_INODES`] the
/// child's namespace inodes, and its exit reports them next to what its
/// arguments asked for. Without a record (its arguments asked for no
/// namespace when the entry read them, or the record was lost, counted),
/// they are reported from here.
#[inline(always)]
pub fn namespaces_made(current: Current, child: u64, child_pid: u32, made: u64) {
    let key = current.thread_key();
    if let Some(seen) = CLONES.get_ptr_mut(&key) {
        // SAFETY: this thread's marker (the key is the thread), a map value.
        unsafe { *seen = made | MADE_SEEN };
        let inodes = crate::process::namespaces::inodes(child);
        if CLONE_INODES.insert(&key, &inodes, 0).is_err() {
            count_error(ProbeError::Inflight);
        }
        return;
    }
    if !fork_namespaces_reported() || crate::filter::task_ignored(current) {
        return;
    }
    let abi = if super::compat::in_ia32_syscall(current) {
        TASK_IA32
    } else {
        0
    };
    let sent = crate::ring::emit::<ForkNamespaces>(EventKind::System, |r| {
        // SAFETY: emit hands us reserved space for one ForkNamespaces.
        let r = unsafe { &mut *r };
        let ev = &mut r.ev;
        current.fill(&mut ev.task)?;
        task::mark_abi(&mut ev.task, abi);
        let args = [0, made, child_pid as u64, 0];
        fill_bare(
            ev,
            SYS_OP_NAMESPACES_AT_FORK,
            sys_flags::NAMESPACES_SEEN,
            0,
            args,
        );
        // The new process's namespace inodes, as a clone's exit gives
        // them (str1).
        put(&mut ev.str_lens[1], NAMESPACE_INODES_LEN);
        r.inodes = crate::process::namespaces::inodes(child);
        Ok(())
    });
    if sent.is_err() {
        count_error(ProbeError::ReadTask);
    }
}

/// A namespace report from a fork: a system record whose one string
/// (str1) is the new process's namespace inodes.
#[repr(C)]
struct ForkNamespaces {
    ev: SysEvent,
    inodes: [u32; 8],
}

// The inodes start where the record's strings do, and fill str1.
const _: () = assert!(
    core::mem::offset_of!(ForkNamespaces, inodes) == core::mem::size_of::<SysEvent>()
        && NAMESPACE_INODES_LEN as usize == core::mem::size_of::<[u32; 8]>()
);

/// The fields of a system record without strings, after its task: what
/// a hook reports on its own, outside a syscall's exit. (Each caller's
/// `emit` closure keeps its own copy: one closure shared by the hooks
/// was outlined by LLVM, a BPF-to-BPF call the build refuses.)
#[inline(always)]
pub fn fill_bare(ev: &mut SysEvent, op: u32, flags: u32, ret: i64, args: [u64; 4]) {
    // Volatile: LLVM merges neighbouring zero stores into a memset call,
    // which the verifier refuses.
    put(&mut ev.op, op);
    put(&mut ev.flags, flags);
    put(&mut ev.ret, ret);
    for (slot, value) in ev.args.iter_mut().zip(args) {
        put(slot, value);
    }
    for len in &mut ev.str_lens {
        put(len, 0);
    }
    put(&mut ev.base_len, 0);
}

/// Bytes of [`write_inodes`] in a string slot.
const NAMESPACE_INODES_LEN: u32 = 32;

/// A task's namespace inode numbers (`process::namespaces::inodes`), as
/// little-endian `u32`s at the start of `out`, a string slot of the
/// record.
#[inline(always)]
fn write_inodes<const N: usize>(out: &mut [u8; N], inodes: &[u32; 8]) {
    const _: () = assert!(SYS_STR_CAP >= 32 && SYS_STR0_CAP >= 32);
    for (i, ino) in inodes.iter().enumerate() {
        let at = i * 4;
        if at + 4 <= N {
            // SAFETY: 4 bytes inside `out`, a map value.
            unsafe { core::ptr::write_unaligned(out.as_mut_ptr().add(at).cast::<u32>(), *ino) };
        }
    }
}

/// The ops whose `str0` is a mount point, resolved like a path.
#[inline(always)]
fn mount_target(op: u32) -> bool {
    op == SyscallOp::Mount as u32
        || op == SyscallOp::Umount2 as u32
        || op == SyscallOp::MoveMount as u32
        || op == SyscallOp::MountSetattr as u32
}

/// `signal_generate(int sig, struct kernel_siginfo *info, struct
/// task_struct *task, int group, int result)`: every signal the kernel
/// generates, whoever sends it; only those aimed at the sensor are kept.
/// A SIGKILL's record is in the ring buffer when the sensor dies, so only
/// a restarted sensor reading a pinned buffer could see it; the gap in
/// event.sequence is what the collector sees.
#[raw_tracepoint(tracepoint = "signal_generate")]
pub fn signal_sensor(ctx: RawTracePointContext) -> u32 {
    let sig: u64 = ctx.arg(0);
    let target: u64 = ctx.arg(2);
    let sensor = sensor_tgid();
    if read_u32(target, off!(task_tgid)) != Ok(sensor) || sig == SIGCHLD {
        return 0;
    }
    let sender = Current::get();
    if sender.tgid() == sensor {
        return 0;
    }
    let group: u64 = ctx.arg(3);
    let result: u64 = ctx.arg(4);
    let sent = crate::ring::emit::<SysEvent>(EventKind::System, |ev| {
        // SAFETY: emit hands us reserved space for one SysEvent.
        let ev = unsafe { &mut *ev };
        sender.fill(&mut ev.task)?;
        let args = [sig, result as u32 as u64, group as u32 as u64, 0];
        fill_bare(ev, SYS_OP_SIGNAL_SENSOR, 0, 0, args);
        Ok(())
    });
    if sent.is_err() {
        count_error(ProbeError::ReadTask);
    }
    0
}

const FIXED: usize = core::mem::size_of::<SysEvent>();

/// Whether the file pidfd_getfd installed at `taken` in `task`'s table is
/// the one the task itself has at `fd`: the same `struct file`. (Plain
/// numbers compared: a comparison of two failed reads' results had LLVM
/// load a stack slot that 5.10's and 6.1's verifiers refuse.)
#[inline(always)]
fn own_file_taken(task: u64, fd: u64, taken: i64) -> bool {
    let own = fd_file(task, fd as i32).unwrap_or(0);
    let got = fd_file(task, taken as i32).unwrap_or(1);
    own == got
}

/// The number of the process a pidfd (`file`) stands for: its `struct
/// pid` is the file's private data (before pidfs, 6.9) or its inode's
/// (pidfs). Whatever another kind of file holds there reads as some
/// number, but the call then fails (EBADF or EINVAL), and the daemon
/// names no target.
#[inline(always)]
fn pidfd_target(file: Result<u64, crate::kernel::Miss>) -> Result<u32, crate::kernel::Miss> {
    let file = file?;
    let mut pid = read_ptr(file, off!(file_private_data))?;
    if pid == 0 {
        pid = read_ptr(file, off!(file_inode))
            .and_then(|inode| read_ptr(inode, off!(inode_i_private)))?;
    }
    super::pid_number(pid)
}

#[inline(always)]
fn user_u32(addr: u64) -> u32 {
    let mut v = 0u32;
    // SAFETY: a 4-byte probe read into a local; 0 if it fails.
    unsafe { bpf_probe_read_user((&raw mut v).cast(), 4, addr as *const _) };
    v
}

/// `clone_args.flags`, the first `u64` of clone3's struct (0 if it cannot
/// be read: the kernel then fails the call with EFAULT).
///
/// Read from the caller's memory, which another of its threads can change
/// between this read and the kernel's copy: a race that could hide a
/// clone3's namespaces (unshare's and clone's flags are registers, which
/// it cannot touch).
#[inline(always)]
fn clone3_flags(uargs: u64) -> u64 {
    let mut v = 0u64;
    // SAFETY: an 8-byte probe read into a local; 0 if it fails.
    unsafe { bpf_probe_read_user((&raw mut v).cast(), 8, uargs as *const _) };
    v
}

#[inline(always)]
fn str0(p: &mut PendingSys, src: u64) {
    p.lens[0] = read_user_str(
        p.s0.as_mut_ptr(),
        SYS_STR0_CAP,
        src,
        &mut p.flags,
        sys_flags::UNREADABLE,
        sys_flags::TRUNCATED,
    );
}

#[inline(always)]
fn str1(p: &mut PendingSys, src: u64) {
    p.lens[1] = read_user_str(
        p.s1.as_mut_ptr(),
        SYS_STR_CAP,
        src,
        &mut p.flags,
        sys_flags::UNREADABLE,
        sys_flags::TRUNCATED,
    );
}

#[inline(always)]
fn str2(p: &mut PendingSys, src: u64) {
    p.lens[2] = read_user_str(
        p.s2.as_mut_ptr(),
        SYS_STR_CAP,
        src,
        &mut p.flags,
        sys_flags::UNREADABLE,
        sys_flags::TRUNCATED,
    );
}

/// A fixed-size name field (bpf_attr's prog_name), up to its first NUL.
#[inline(always)]
fn str1_bytes(p: &mut PendingSys, src: u64, len: u32) {
    // SAFETY: len (16) is below SYS_STR_CAP.
    let r = unsafe { bpf_probe_read_user(p.s1.as_mut_ptr().cast(), len, src as *const _) };
    if r < 0 {
        p.flags |= sys_flags::UNREADABLE;
        return;
    }
    let mut n = 0;
    while n < len as usize && p.s1[n] != 0 {
        n += 1;
    }
    p.lens[1] = n as u32;
}
