//! Credential changes: the setuid family and capset. The credentials are
//! read before (entry) and after (exit) the call, so the record says what
//! actually changed, whatever the arguments asked for.

use aya_ebpf::macros::{map, tracepoint};
use aya_ebpf::maps::HashMap;
use aya_ebpf::programs::TracePointContext;
use sensor_common::{CredEvent, EventKind, ProbeError, SyscallOp};

use crate::kernel::{Miss, put, read_ptr, read_u32, read_u64};
use crate::maps::{count_error, off};
use crate::task;

/// What was known at entry.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct PendingCred {
    op: u32,
    args: [u32; 3],
    old_ids: [u32; 8],
    old_caps: [u64; 3],
}

/// Credential syscalls between entry and exit, by thread.
#[map]
static CRED_INFLIGHT: HashMap<u64, PendingCred> = HashMap::with_max_entries(8192, 0);

#[tracepoint]
pub fn cred_enter(ctx: TracePointContext) -> u32 {
    enter(&ctx)
}

super::compat_programs!(cred_compat_enter, cred_compat_exit);

#[inline(always)]
fn enter<E: super::Entry>(c: &E) -> u32 {
    let Some(op) = c.op() else { return 0 };
    let task = super::current_task();
    // Every field is written below: arrays are filled element by element,
    // because an array initialiser becomes a memset call (see ring.rs).
    let mut p = core::mem::MaybeUninit::<PendingCred>::uninit();
    // SAFETY: p is written completely before it is read (by insert).
    let p = unsafe { &mut *p.as_mut_ptr() };
    p.op = op as u32;
    // Ids are 32-bit; capset's two pointers are not ids and are not kept.
    let ids = op != SyscallOp::Capset;
    for i in 0..3 {
        put(&mut p.args[i], if ids { c.arg(i) as u32 } else { 0 });
    }
    let cred = read_ptr(task, off!(task_real_cred));
    let read = cred
        .and_then(|c| read_ids(c, &mut p.old_ids))
        .and_then(|()| cred.and_then(|c| read_caps(c, &mut p.old_caps)));
    if read.is_err() {
        for id in &mut p.old_ids {
            put(id, u32::MAX);
        }
        for cap in &mut p.old_caps {
            put(cap, 0);
        }
        count_error(ProbeError::ReadTask);
    }
    if CRED_INFLIGHT.insert(&super::thread_key(), &*p, 0).is_err() {
        count_error(ProbeError::Inflight);
    }
    0
}

#[tracepoint]
pub fn cred_exit(ctx: TracePointContext) -> u32 {
    exit(super::ret(&ctx), false)
}

/// `ia32`: the call came through the ia32 ABI (`TaskInfo::flags`).
#[inline(always)]
fn exit(ret: i64, ia32: bool) -> u32 {
    let key = super::thread_key();
    // SAFETY: the value is copied out before the entry is removed.
    let Some(p) = (unsafe { CRED_INFLIGHT.get(&key) }).copied() else {
        return 0;
    };
    let _ = CRED_INFLIGHT.remove(&key);
    let task = super::current_task();
    let Some(mut entry) = crate::ring::reserve::<CredEvent>(EventKind::Cred) else {
        return 0;
    };
    // SAFETY: reserved space for one CredEvent, filled completely below.
    let ev = unsafe { &mut *entry.as_mut_ptr() };
    if task::fill(&mut ev.task, task).is_err() {
        entry.discard(0);
        count_error(ProbeError::ReadTask);
        return 0;
    }
    task::mark_ia32(&mut ev.task, ia32);
    ev.op = p.op;
    ev._pad0 = 0;
    ev.ret = ret;
    ev.args = p.args;
    ev._pad1 = 0;
    ev.old_ids = p.old_ids;
    ev.old_caps = p.old_caps;
    if read_ptr(task, off!(task_real_cred))
        .and_then(|c| read_caps(c, &mut ev.new_caps))
        .is_err()
    {
        for cap in &mut ev.new_caps {
            put(cap, 0);
        }
        count_error(ProbeError::ReadTask);
    }
    entry.submit(0);
    0
}

/// Ids of a `struct cred`, in CredEvent order. The cred read is
/// `real_cred`: the task's objective credentials, what it acts as towards
/// others (what TaskInfo reports too).
#[inline(always)]
fn read_ids(cred: u64, ids: &mut [u32; 8]) -> Result<(), Miss> {
    ids[0] = read_u32(cred, off!(cred_uid))?;
    ids[1] = read_u32(cred, off!(cred_gid))?;
    ids[2] = read_u32(cred, off!(cred_suid))?;
    ids[3] = read_u32(cred, off!(cred_sgid))?;
    ids[4] = read_u32(cred, off!(cred_euid))?;
    ids[5] = read_u32(cred, off!(cred_egid))?;
    ids[6] = read_u32(cred, off!(cred_fsuid))?;
    ids[7] = read_u32(cred, off!(cred_fsgid))?;
    Ok(())
}

/// Inheritable, permitted and effective capability sets of a `struct cred`.
#[inline(always)]
fn read_caps(cred: u64, caps: &mut [u64; 3]) -> Result<(), Miss> {
    caps[0] = read_u64(cred, off!(cred_cap_inheritable))?;
    caps[1] = read_u64(cred, off!(cred_cap_permitted))?;
    caps[2] = read_u64(cred, off!(cred_cap_effective))?;
    Ok(())
}
