//! Opens of a process's memory file (`/proc/PID/mem`, also under
//! `task/TID/`): the classic way to inject code into another process, or
//! into oneself past W^X (the kernel writes through read-only mappings
//! for it), and to read another's secrets, with no ptrace attach and no
//! syscall a syscall hook would single out (an open, then reads or writes
//! at offsets).
//!
//! Two hooks, one record:
//! - where fexit loads, on the kernel's `mem_open`, the file's open
//!   handler: it runs only for these files (nothing to pay on other
//!   opens), after the kernel's permission check (an attach's), with its
//!   result, for reading and for writing;
//! - else the watch family's open exit, which already looks at the file
//!   of every successful open for writing, tests whether it is one
//!   (procfs, named `mem`): successful opens for writing only.
//!
//! Not reported: a process opening its own memory file for reading only
//! (some runtimes and debuggers read their own memory that way). Its own
//! memory opened for writing is reported: that is how a shell overwrites
//! its own code with a payload (DDexec).

use aya_ebpf::macros::map;
use aya_ebpf::maps::Array;
use sensor_common::{EventKind, OFFSET_MISSING, ProbeError, SYS_OP_PROC_MEM_OPEN, SysEvent};

use crate::kernel::{Miss, Reader, plus, put, read_ptr, read_u32};
use crate::maps::{count_error, off, sensor_tgid};
use crate::task::Current;

/// `FMODE_WRITE`: the file was opened for writing.
const FMODE_WRITE: u32 = 2;
/// procfs's `s_magic`.
const PROC_SUPER_MAGIC: u64 = 0x9fa0;
/// "mem" and its NUL, as a little-endian u32.
const MEM_NAME: u32 = u32::from_le_bytes(*b"mem\0");

/// Slot 0 is 1 once the daemon attached the fexit hook: the open exit's
/// test then stands down, so that no open is reported twice.
#[map]
static PROC_MEM_BY_FEXIT: Array<u32> = Array::with_max_entries(1, 0);

/// `mem_open(struct inode *inode, struct file *file)`, returning an int:
/// the context holds the two arguments, then the return value.
///
/// Written out instead of with aya's macro, like the fentry hooks: each
/// argument is a volatile load at a constant offset from the unmodified
/// context.
#[unsafe(no_mangle)]
#[unsafe(link_section = "fexit/mem_open")]
pub extern "C" fn proc_mem_open(ctx: *mut u64) -> i32 {
    // SAFETY: mem_open has two arguments on every kernel with BTF (the
    // daemon checked its prototype); the return value follows them.
    let (inode, file, ret) = unsafe {
        (
            core::ptr::read_volatile(ctx),
            core::ptr::read_volatile(ctx.add(1)),
            core::ptr::read_volatile(ctx.add(2)),
        )
    };
    let current = Current::get();
    if current.tgid() == sensor_tgid() || crate::filter::task_ignored(current) {
        return 0;
    }
    report(current, inode, file, ret as i32 as i64);
    0
}

/// For the watch family's open exit: `file` was just opened for writing
/// by `current` (already past the family's filters). Reported if it is a
/// memory file and the fexit hook is not attached. Read through `R`
/// (plain loads where the open exit has the file typed: every open for
/// writing pays this test), but for the name's bytes, by probe read (the
/// verifier types `qstr.name` as a number).
#[inline(always)]
pub fn opened_for_writing<R: Reader>(current: Current, file: u64) {
    if crate::maps::switch_on(&PROC_MEM_BY_FEXIT) {
        return;
    }
    let Ok(inode) = R::u64(file, off!(file_inode)) else {
        return;
    };
    let magic = R::u64(inode, off!(inode_sb)).and_then(|sb| R::u64(sb, off!(sb_magic)));
    if magic != Ok(PROC_SUPER_MAGIC) {
        return;
    }
    let named_mem = R::u64(file, plus(off!(file_path), off!(path_dentry))).and_then(|d| {
        let len = R::u32(d, plus(off!(dentry_name), off!(qstr_len)))?;
        let name = R::u64(d, plus(off!(dentry_name), off!(qstr_name)))?;
        Ok(len == 3 && read_u32(name, 0)? == MEM_NAME)
    });
    if named_mem == Ok(true) {
        // The open succeeded: mem_open returned 0.
        report(current, inode, file, 0);
    }
}

/// Sends the record: `ret` is mem_open's result.
#[inline(always)]
fn report(current: Current, inode: u64, file: u64, ret: i64) {
    let f_mode = read_u32(file, off!(file_f_mode)).unwrap_or(0);
    let target = match target_pid(inode) {
        Ok(pid) => pid,
        Err(Miss::Fault) => {
            count_error(ProbeError::ReadArg);
            0
        }
        Err(Miss::Absent) => 0,
    };
    let key = current.thread_key();
    let own = target == (key >> 32) as u32 || target == key as u32;
    if own && f_mode & FMODE_WRITE == 0 {
        return;
    }
    // Reserved in place, not `ring::emit`: its closure would be outlined
    // into a BPF-to-BPF call in the two programs this is inlined into.
    let Some(mut entry) = crate::ring::reserve::<SysEvent>(EventKind::System) else {
        return;
    };
    // SAFETY: reserved space for one SysEvent; its header is written.
    let ev = unsafe { &mut *entry.as_mut_ptr() };
    if current.fill(&mut ev.task).is_err() {
        count_error(ProbeError::ReadTask);
        entry.discard(0);
        return;
    }
    put(&mut ev.op, SYS_OP_PROC_MEM_OPEN);
    put(&mut ev.flags, 0);
    put(&mut ev.ret, ret);
    // One volatile store each: runs of zero stores become a memset call,
    // which the build refuses.
    for (arg, value) in ev.args.iter_mut().zip([f_mode as u64, target as u64, 0, 0]) {
        put(arg, value);
    }
    for len in &mut ev.str_lens {
        put(len, 0);
    }
    put(&mut ev.base_len, 0);
    entry.submit(0);
}

/// The process a procfs inode belongs to: `proc_inode` embeds the inode
/// and holds the process's `struct pid`.
#[inline(always)]
fn target_pid(inode: u64) -> Result<u32, Miss> {
    let embedded = off!(proc_inode_vfs_inode);
    if embedded == OFFSET_MISSING || inode == 0 {
        return Err(Miss::Absent);
    }
    let pid = read_ptr(inode - embedded as u64, off!(proc_inode_pid))?;
    crate::syscall::pid_number(pid)
}
