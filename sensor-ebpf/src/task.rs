//! The identity and credentials of a task, read at the event.

use core::mem::offset_of;

use sensor_common::{ID_UNSET, OFFSET_MISSING, ProbeError, TaskInfo};

use crate::kernel::{Miss, field, read_bytes, read_ptr, read_str, read_u32, read_u64, zero_u64s};
use crate::maps::{count_error, off};

// zero_u64s needs both byte arrays 8-aligned inside the (8-aligned) TaskInfo.
const _: () = assert!(offset_of!(TaskInfo, comm) % 8 == 0 && offset_of!(TaskInfo, tty) % 8 == 0);
const _: () = assert!(core::mem::align_of::<TaskInfo>() == 8);

/// Stores one field. Volatile, so that LLVM cannot merge runs of constant
/// stores (all credentials ID_UNSET when the cred is unreadable) into a
/// memset: that would be a BPF-to-BPF call, which kernels before 5.10
/// refuse in a program that also tail-calls (process_exec).
macro_rules! put {
    ($dst:expr, $v:expr) => {{
        let v = $v;
        // SAFETY: a field of a live &mut TaskInfo.
        unsafe { core::ptr::write_volatile(&raw mut $dst, v) }
    }};
}

/// Remembers whether any read faulted, so that one event with several
/// failed reads is counted once, and an absent field not at all.
#[derive(Default)]
struct Faults(bool);

impl Faults {
    #[inline(always)]
    fn or<T>(&mut self, r: Result<T, Miss>, unset: T) -> T {
        match r {
            Ok(v) => v,
            Err(Miss::Absent) => unset,
            Err(Miss::Fault) => {
                self.0 = true;
                unset
            }
        }
    }
}

/// Fills every field of `t` (the memory may be uninitialised ring-buffer
/// space). Fails only when the task's own ids cannot be read; any other
/// field that is absent in this kernel is left unset, and one that faults
/// is left unset and counted as [`ProbeError::ReadTask`].
#[inline(always)]
pub fn fill(t: &mut TaskInfo, task: u64) -> Result<(), Miss> {
    let (tid, tgid) = pair(task, off!(task_pid), off!(task_tgid));
    put!(t.tgid, tgid?);
    put!(t.tid, tid?);
    let mut f = Faults::default();

    let leader = read_ptr(task, off!(task_group_leader));
    put!(
        t.start_boottime,
        f.or(
            leader.and_then(|l| read_u64(l, off!(task_start_boottime))),
            0
        )
    );
    let parent = read_ptr(task, off!(task_real_parent));
    put!(
        t.ppid,
        f.or(parent.and_then(|p| read_u32(p, off!(task_tgid))), 0)
    );
    let parent_leader = parent.and_then(|p| read_ptr(p, off!(task_group_leader)));
    put!(
        t.parent_start_boottime,
        f.or(
            parent_leader.and_then(|l| read_u64(l, off!(task_start_boottime))),
            0
        )
    );

    // real_cred: the task's objective credentials, what it acts as.
    let cred = read_ptr(task, off!(task_real_cred));
    let ids = f.or(cred.and_then(cred_ids), [ID_UNSET; 8]);
    put!(t.uid, ids[0]);
    put!(t.gid, ids[1]);
    put!(t.suid, ids[2]);
    put!(t.sgid, ids[3]);
    put!(t.euid, ids[4]);
    put!(t.egid, ids[5]);
    put!(t.fsuid, ids[6]);
    put!(t.fsgid, ids[7]);
    let caps = f.or(cred.and_then(cred_caps), [0; 2]);
    put!(t.cap_permitted, caps[0]);
    put!(t.cap_effective, caps[1]);
    // loginuid.val and sessionid: absent without CONFIG_AUDIT (then unset).
    let (loginuid, sessionid) = pair(task, off!(task_loginuid), off!(task_sessionid));
    put!(t.loginuid, f.or(loginuid, ID_UNSET));
    put!(t.sessionid, f.or(sessionid, ID_UNSET));
    put!(t.flags, 0);

    // SAFETY: comm and tty are 8-aligned arrays of 16 and 32 bytes (asserted above).
    unsafe {
        zero_u64s::<2>(t.comm.as_mut_ptr());
        zero_u64s::<4>(t.tty.as_mut_ptr());
    }
    let comm = read_bytes(task, off!(task_comm), &mut t.comm);
    f.or(comm, ());
    // signal->tty is NULL for a task without a controlling terminal: Absent.
    let tty = read_ptr(task, off!(task_signal)).and_then(|s| read_ptr(s, off!(signal_tty)));
    let name = tty.and_then(|tty| read_str(tty, off!(tty_name), &mut t.tty));
    f.or(name, ());
    let kn = cgroup_kn(task);
    put!(
        t.cgroup_id,
        f.or(kn.and_then(|kn| read_u64(kn, off!(kernfs_id))), 0)
    );
    if f.0 {
        count_error(ProbeError::ReadTask);
    }
    Ok(())
}

// Each probe read costs tens of nanoseconds, and every event reads the
// task's identity: fields that sit next to each other in every kernel are
// read together, with the layout checked against the BTF offsets and a
// field-by-field fallback should a kernel ever lay them out otherwise.

/// Two u32 fields at `a` and `b`: one read when `b` follows `a`.
#[inline(always)]
fn pair(base: u64, a: u32, b: u32) -> (Result<u32, Miss>, Result<u32, Miss>) {
    if a != OFFSET_MISSING && b == a.wrapping_add(4) {
        match read_u64(base, a) {
            // Little-endian: the field at the lower address is the low half.
            Ok(v) => (Ok(v as u32), Ok((v >> 32) as u32)),
            Err(m) => (Err(m), Err(m)),
        }
    } else {
        (read_u32(base, a), read_u32(base, b))
    }
}

/// The cred's uid, gid, suid, sgid, euid, egid, fsuid and fsgid, in that
/// order (contiguous in `struct cred` since 2.6.29).
#[inline(always)]
fn cred_ids(cred: u64) -> Result<[u32; 8], Miss> {
    let uid = off!(cred_uid);
    let offs = [
        uid,
        off!(cred_gid),
        off!(cred_suid),
        off!(cred_sgid),
        off!(cred_euid),
        off!(cred_egid),
        off!(cred_fsuid),
        off!(cred_fsgid),
    ];
    let mut contiguous = uid != OFFSET_MISSING;
    for (i, o) in offs.iter().enumerate() {
        contiguous &= *o == uid.wrapping_add(4 * i as u32);
    }
    if contiguous {
        let addr = field(cred, uid)?;
        // SAFETY: probe read of 32 bytes; failure is an error value.
        return unsafe { aya_ebpf::helpers::bpf_probe_read_kernel(addr as *const [u32; 8]) }
            .map_err(|_| Miss::Fault);
    }
    let mut ids = [ID_UNSET; 8];
    for (i, o) in offs.iter().enumerate() {
        ids[i] = read_u32(cred, *o)?;
    }
    Ok(ids)
}

/// cap_permitted and cap_effective (adjacent in `struct cred`).
#[inline(always)]
fn cred_caps(cred: u64) -> Result<[u64; 2], Miss> {
    let (p, e) = (off!(cred_cap_permitted), off!(cred_cap_effective));
    if p != OFFSET_MISSING && e == p.wrapping_add(8) {
        let addr = field(cred, p)?;
        // SAFETY: probe read of 16 bytes into a 16-byte stack array.
        unsafe { aya_ebpf::helpers::bpf_probe_read_kernel(addr as *const [u64; 2]) }
            .map_err(|_| Miss::Fault)
    } else {
        Ok([read_u64(cred, p)?, read_u64(cred, e)?])
    }
}

/// The kernfs node of the task's cgroup in the hierarchy that names
/// containers: the unified one (`dfl_cgrp`), or on v1/hybrid hosts the v1
/// controller the daemon picked (`cgroup_subsys_index`).
#[inline(always)]
pub fn cgroup_kn(task: u64) -> Result<u64, Miss> {
    let css_set = read_ptr(task, off!(task_cgroups))?;
    let index = off!(cgroup_subsys_index);
    let cgroup = if index == OFFSET_MISSING {
        read_ptr(css_set, off!(css_set_dfl_cgrp))?
    } else {
        let subsys = off!(css_set_subsys);
        // CGROUP_SUBSYS_COUNT is below 20 in every kernel.
        if subsys == OFFSET_MISSING || index >= 32 {
            return Err(Miss::Absent);
        }
        let css = read_ptr(css_set, subsys + index * 8)?;
        read_ptr(css, off!(css_cgroup))?
    };
    read_ptr(cgroup, off!(cgroup_kn))
}

/// Marks a filled [`TaskInfo`] as acting through the ia32 syscall ABI.
#[inline(always)]
pub fn mark_ia32(t: &mut TaskInfo, ia32: bool) {
    if ia32 {
        t.flags = sensor_common::compat::TASK_IA32;
    }
}
