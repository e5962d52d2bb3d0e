//! Credential changes: the setuid family and capset. The credentials are
//! read before (entry) and after (exit) the call, so the record says what
//! actually changed, whatever the arguments asked for.

use aya_ebpf::macros::map;
use aya_ebpf::maps::HashMap;
use sensor_common::{CredEvent, EventKind, ProbeError, SyscallOp};

use super::inflight;
use crate::kernel::put;
use crate::maps::count_error;
use crate::task::{self, Current};

/// What was known at entry.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct PendingCred {
    op: u32,
    args: [u32; 3],
    old_ids: [u32; 8],
    old_caps: [u64; 3],
}

// SAFETY: repr(C), starting with its op.
unsafe impl inflight::Record for PendingCred {}

/// Credential syscalls between entry and exit, by thread; kept between
/// the thread's calls (see [`inflight`]).
#[map]
static CRED_INFLIGHT: HashMap<u64, PendingCred> = HashMap::with_max_entries(8192, 0);

/// The thread `key` is exiting: its record goes.
#[inline(always)]
pub(super) fn thread_exited(key: &u64) {
    let _ = CRED_INFLIGHT.remove(key);
}

super::syscall_programs!(cred_enter, cred_exit, cred_compat_enter, cred_compat_exit);

#[inline(always)]
fn enter<E: super::Entry>(c: &E) -> u32 {
    let Some(op) = c.op() else { return 0 };
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
    let current = Current::get();
    match current.creds() {
        Ok((ids, caps)) => {
            p.old_ids = ids;
            p.old_caps = caps;
        }
        Err(_) => {
            for id in &mut p.old_ids {
                put(id, u32::MAX);
            }
            for cap in &mut p.old_caps {
                put(cap, 0);
            }
            count_error(ProbeError::ReadTask);
        }
    }
    if !inflight::store(&CRED_INFLIGHT, &super::entry_thread_key(), p) {
        count_error(ProbeError::Inflight);
    }
    0
}

/// `abi`: the `TaskInfo::flags` of the ABI the call came through.
#[inline(always)]
fn exit(_ctx: *mut core::ffi::c_void, ret: i64, abi: u32) -> u32 {
    let current = Current::get();
    let key = current.thread_key();
    let Some(record) = inflight::find(&CRED_INFLIGHT, &key) else {
        return 0;
    };
    // SAFETY: a live map value, this thread's only; copied out.
    let p = unsafe { *record };
    inflight::consume(record);
    let Some(mut entry) = crate::ring::reserve::<CredEvent>(EventKind::Cred) else {
        return 0;
    };
    // SAFETY: reserved space for one CredEvent, filled completely below.
    let ev = unsafe { &mut *entry.as_mut_ptr() };
    if current.fill(&mut ev.task).is_err() {
        entry.discard(0);
        count_error(ProbeError::ReadTask);
        return 0;
    }
    task::mark_abi(&mut ev.task, abi);
    ev.op = p.op;
    ev._pad0 = 0;
    ev.ret = ret;
    ev.args = p.args;
    ev._pad1 = 0;
    ev.old_ids = p.old_ids;
    ev.old_caps = p.old_caps;
    match current.creds() {
        Ok((_, caps)) => ev.new_caps = caps,
        Err(_) => {
            for cap in &mut ev.new_caps {
                put(cap, 0);
            }
            count_error(ProbeError::ReadTask);
        }
    }
    entry.submit(0);
    0
}
