//! The identity and credentials of a task, read at the event.

use core::mem::offset_of;

use sensor_common::{ID_UNSET, OFFSET_MISSING, ProbeError, TASK_NESTED_USER_NS, TaskInfo};

use crate::kernel::{Direct, Miss, Probe, Reader, plus, zero_u64s};
use crate::maps::{count_error, direct_reads, off};

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

/// The task running the program, fetched once (a helper call) for all
/// that the program reads of it: typed for plain loads where the daemon
/// found them available ([`Direct`], `DIRECT_READS`), else an address for
/// probe reads. (The flag is a load-time constant: the verifier never
/// sees the other branch of each `direct_reads()`.)
#[derive(Clone, Copy)]
pub struct Current(u64);

impl Current {
    #[inline(always)]
    pub fn get() -> Current {
        if direct_reads() {
            // SAFETY: the helper has no preconditions; it exists where the
            // daemon set DIRECT_READS.
            Current(unsafe { aya_ebpf::helpers::bpf_get_current_task_btf() } as u64)
        } else {
            // SAFETY: the helper has no preconditions.
            Current(unsafe { aya_ebpf::helpers::bpf_get_current_task() })
        }
    }

    /// Its address, for probe reads (`crate::kernel::read_ptr` and co.).
    #[inline(always)]
    pub fn addr(self) -> u64 {
        self.0
    }

    /// `tgid << 32 | pid`, what bpf_get_current_pid_tgid returns: the
    /// key of the in-flight maps. Two plain loads where they are
    /// available: the helper call they replace is ~10 ns on a machine
    /// whose every return goes through a mitigation thunk.
    #[inline(always)]
    pub fn thread_key(self) -> u64 {
        if direct_reads()
            && let Ok([pid, tgid]) = Direct::u32s(self.0, [off!(task_pid), off!(task_tgid)])
        {
            return (tgid as u64) << 32 | pid as u64;
        }
        aya_ebpf::helpers::bpf_get_current_pid_tgid()
    }

    /// Its process id (tgid), as [`Current::thread_key`] gets it.
    #[inline(always)]
    pub fn tgid(self) -> u32 {
        if direct_reads()
            && let Ok(tgid) = Direct::u32(self.0, off!(task_tgid))
        {
            return tgid;
        }
        (aya_ebpf::helpers::bpf_get_current_pid_tgid() >> 32) as u32
    }

    /// Fills `t` for this task (see [`fill`]).
    #[inline(always)]
    pub fn fill(self, t: &mut TaskInfo) -> Result<(), Miss> {
        if direct_reads() {
            fill::<Direct>(t, self.0)
        } else {
            fill::<Probe>(t, self.0)
        }
    }

    /// The `struct file` open at `fd` in this task: the chain to the fd
    /// array with plain loads where available (four probe reads fewer on
    /// every fd-based call and every open for writing).
    #[inline(always)]
    pub fn fd_file(self, fd: i32) -> Result<u64, Miss> {
        if direct_reads() {
            crate::syscall::fd_file_via::<Direct>(self.0, fd)
        } else {
            crate::syscall::fd_file_via::<Probe>(self.0, fd)
        }
    }

    /// This task's credentials (its `real_cred`, what it acts as towards
    /// others, as [`TaskInfo`] reports them): the ids in [`cred_fields`]
    /// order, and its inheritable, permitted and effective capabilities.
    #[inline(always)]
    pub fn creds(self) -> Result<([u32; 8], [u64; 3]), Miss> {
        if direct_reads() {
            cred_fields::<Direct>(Direct::u64(self.0, off!(task_real_cred))?)
        } else {
            cred_fields::<Probe>(Probe::u64(self.0, off!(task_real_cred))?)
        }
    }
}

/// Fills every field of `t` (the memory may be uninitialised ring-buffer
/// space) for `task`, through `R`. Fails only when the task's own ids
/// cannot be read; any other field that is absent in this kernel is left
/// unset, and one that faults is left unset and counted as
/// [`ProbeError::ReadTask`].
#[inline(always)]
pub fn fill<R: Reader>(t: &mut TaskInfo, task: u64) -> Result<(), Miss> {
    let [tid, tgid] = R::u32s(task, [off!(task_pid), off!(task_tgid)])?;
    put!(t.tgid, tgid);
    put!(t.tid, tid);
    let mut f = Faults::default();

    // Four chains of pointers lead to lines the syscall did not touch: the
    // leader's start time, the parent (its tgid and its leader's start
    // time), the cgroup (css_set, cgroup, kernfs node) and the controlling
    // terminal (signal, tty; its name is read below). Each step of a
    // chain can be a cache miss, and the ring buffer's writes evict them
    // between events. Leaving chains out measured the parent's at ~35 ns
    // and the cgroup's at ~35 ns per chmod event, read one chain after the
    // other. So the chains are read level by level, each level's loads
    // side by side, for the CPU to wait for their misses together (the
    // loads are volatile: they stay in this order).
    let leader = R::u64(task, off!(task_group_leader));
    let parent = R::u64(task, off!(task_real_parent));
    let css_set = R::u64(task, off!(task_cgroups));
    let signal = R::u64(task, off!(task_signal));

    let start = leader.and_then(|l| R::u64(l, off!(task_start_boottime)));
    let ppid = parent.and_then(|p| R::u32(p, off!(task_tgid)));
    let parent_leader = parent.and_then(|p| R::u64(p, off!(task_group_leader)));
    let cgroup = css_set.and_then(css_set_cgroup::<R>);
    // NULL for a task without a controlling terminal: Absent.
    let tty = signal.and_then(|s| R::u64(s, off!(signal_tty)));

    let parent_start = parent_leader.and_then(|l| R::u64(l, off!(task_start_boottime)));
    let kn = cgroup.and_then(|c| R::u64(c, off!(cgroup_kn)));

    let cgroup_id = kn.and_then(|kn| R::u64(kn, off!(kernfs_id)));

    put!(t.start_boottime, f.or(start, 0));
    put!(t.ppid, f.or(ppid, 0));
    put!(t.parent_start_boottime, f.or(parent_start, 0));
    put!(t.cgroup_id, f.or(cgroup_id, 0));

    // real_cred: the task's objective credentials, what it acts as.
    let cred = R::u64(task, off!(task_real_cred));
    let (ids, caps) = f.or(cred.and_then(cred_fields::<R>), ([ID_UNSET; 8], [0; 3]));
    put!(t.uid, ids[0]);
    put!(t.gid, ids[1]);
    put!(t.suid, ids[2]);
    put!(t.sgid, ids[3]);
    put!(t.euid, ids[4]);
    put!(t.egid, ids[5]);
    put!(t.fsuid, ids[6]);
    put!(t.fsgid, ids[7]);
    put!(t.cap_permitted, caps[1]);
    put!(t.cap_effective, caps[2]);
    // Whose capabilities: read only for a non-root task that holds some
    // (rare: a user namespace's root, a file-capability program), so that
    // every other event pays nothing for it.
    let nested = if caps[1] != 0 && ids[0] != 0 {
        let level = cred
            .and_then(|c| R::u64(c, off!(cred_user_ns)))
            .and_then(|ns| R::u32(ns, off!(user_ns_level)));
        f.or(level, 0) > 0
    } else {
        false
    };
    // loginuid.val and sessionid: absent without CONFIG_AUDIT (then unset).
    let audit = R::u32s(task, [off!(task_loginuid), off!(task_sessionid)]);
    let [loginuid, sessionid] = f.or(audit, [ID_UNSET; 2]);
    put!(t.loginuid, loginuid);
    put!(t.sessionid, sessionid);
    put!(t.flags, if nested { TASK_NESTED_USER_NS } else { 0 });

    let (comm_at, tty_name_at) = (off!(task_comm), off!(tty_name));
    // SAFETY: comm and tty are 8-aligned arrays of 16 and 32 bytes
    // (asserted above); comm is a char[16] and tty->name a char[64].
    let (comm, name) = unsafe {
        zero_u64s::<2>(t.comm.as_mut_ptr());
        zero_u64s::<4>(t.tty.as_mut_ptr());
        (
            R::words::<2>(task, comm_at, t.comm.as_mut_ptr()),
            tty.and_then(|tty| R::str_words::<4>(tty, tty_name_at, t.tty.as_mut_ptr())),
        )
    };
    f.or(comm, ());
    f.or(name, ());
    if f.0 {
        count_error(ProbeError::ReadTask);
    }
    Ok(())
}

/// A `struct cred`'s uid, gid, suid, sgid, euid, egid, fsuid and fsgid (in
/// that order, adjacent since 2.6.29), and its inheritable, permitted and
/// effective capabilities (adjacent too).
#[inline(always)]
fn cred_fields<R: Reader>(cred: u64) -> Result<([u32; 8], [u64; 3]), Miss> {
    let ids = R::u32s(
        cred,
        [
            off!(cred_uid),
            off!(cred_gid),
            off!(cred_suid),
            off!(cred_sgid),
            off!(cred_euid),
            off!(cred_egid),
            off!(cred_fsuid),
            off!(cred_fsgid),
        ],
    )?;
    // Read as u32 halves: before 6.3 kernel_cap_t is `u32 cap[2]`, and a
    // plain load may not span two array elements.
    let (i, p, e) = (
        off!(cred_cap_inheritable),
        off!(cred_cap_permitted),
        off!(cred_cap_effective),
    );
    let h = R::u32s(cred, [i, plus(i, 4), p, plus(p, 4), e, plus(e, 4)])?;
    let caps = [
        h[0] as u64 | (h[1] as u64) << 32,
        h[2] as u64 | (h[3] as u64) << 32,
        h[4] as u64 | (h[5] as u64) << 32,
    ];
    Ok((ids, caps))
}

/// The kernfs node of the task's cgroup in the hierarchy that names
/// containers: the unified one (`dfl_cgrp`), or on v1/hybrid hosts the v1
/// controller the daemon picked (`cgroup_subsys_index`).
#[inline(always)]
pub fn cgroup_kn<R: Reader>(task: u64) -> Result<u64, Miss> {
    let cgroup = css_set_cgroup::<R>(R::u64(task, off!(task_cgroups))?)?;
    R::u64(cgroup, off!(cgroup_kn))
}

/// The cgroup of `css_set` in the hierarchy [`cgroup_kn`] names.
#[inline(always)]
fn css_set_cgroup<R: Reader>(css_set: u64) -> Result<u64, Miss> {
    let index = off!(cgroup_subsys_index);
    if index == OFFSET_MISSING {
        return R::u64(css_set, off!(css_set_dfl_cgrp));
    }
    let subsys = off!(css_set_subsys);
    // CGROUP_SUBSYS_COUNT is below 20 in every kernel.
    if subsys == OFFSET_MISSING || index >= 32 {
        return Err(Miss::Absent);
    }
    let css = R::u64(css_set, subsys + index * 8)?;
    R::u64(css, off!(css_cgroup))
}

/// Marks a filled [`TaskInfo`] with the syscall ABI its call came
/// through: `abi` is 0 (native), `TASK_IA32` or `TASK_X32`.
#[inline(always)]
pub fn mark_abi(t: &mut TaskInfo, abi: u32) {
    t.flags |= abi;
}

/// Never attached. The daemon loads it first, with DIRECT_READS set, to
/// learn whether this kernel's verifier accepts the plain loads of
/// [`Current`] (the task, and the chain to its fd array) and of the
/// dispatchers' ia32 check; every syscall program reads the task with
/// that same code, so if this loads they do, and if not the daemon loads
/// the object again with probe reads.
#[aya_ebpf::macros::raw_tracepoint]
pub fn task_reads_check(_ctx: aya_ebpf::programs::RawTracePointContext) -> u32 {
    let mut t = core::mem::MaybeUninit::<TaskInfo>::uninit();
    // SAFETY: fill writes every field before any is read.
    let t = unsafe { &mut *t.as_mut_ptr() };
    let current = Current::get();
    // The syscall programs' other plain loads: thread_info.status in the
    // dispatchers, the thread key.
    let ia32 = crate::syscall::compat::in_ia32_syscall(current) as u32;
    let key = current.thread_key() as u32;
    let file = current.fd_file(0).unwrap_or(0) as u32;
    match current.fill(t) {
        Ok(()) => t
            .uid
            .wrapping_add(ia32)
            .wrapping_add(key)
            .wrapping_add(file),
        Err(_) => 0,
    }
}
