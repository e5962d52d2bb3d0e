//! Which namespaces a new task got that its parent does not have: the
//! kernel's own answer to what a clone or clone3 made, whatever its
//! arguments looked like at the syscall's entry. (clone3's are in the
//! caller's memory, which another of its threads can change between the
//! sensor's read and the kernel's copy: compared here, after the fact,
//! there is nothing left to race.)

use sensor_common::namespace_flags::{
    CLONE_NEWCGROUP, CLONE_NEWIPC, CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWTIME,
    CLONE_NEWUSER, CLONE_NEWUTS,
};

use aya_ebpf::helpers::generated::bpf_probe_read_kernel;

use crate::kernel::{field, plus};
use crate::maps::off;

/// The `T` at `base + off`, 0 where the field is missing or the read
/// fails. Read into a zeroed local: comparing two `Result`s from
/// `kernel::read_ptr` let LLVM load a failed read's uninitialised value,
/// which verifiers before 6.x refuse.
#[inline(always)]
fn or_zero<T: Default>(base: u64, off: u32) -> T {
    let mut v = T::default();
    if let Ok(addr) = field(base, off) {
        // SAFETY: a probe read of one T into a local; the helper zeroes it
        // on failure.
        unsafe {
            bpf_probe_read_kernel(
                (&raw mut v).cast(),
                core::mem::size_of::<T>() as u32,
                addr as *const _,
            )
        };
    }
    v
}

/// A pointer field (see [`or_zero`]).
#[inline(always)]
fn ptr_or_zero(base: u64, off: u32) -> u64 {
    or_zero(base, off)
}

/// Two pointers both read, and different.
#[inline(always)]
fn distinct(a: u64, b: u64) -> bool {
    a != 0 && b != 0 && a != b
}

/// The namespaces `struct nsproxy` holds, in `enrich::namespaces::TYPES`
/// order (user, from the credentials, left out): the member's offset, the
/// namespace's `ns_common` offset, its `CLONE_NEW*` bit. The pid and time
/// members are the ones for children, which a clone with CLONE_NEWPID or
/// CLONE_NEWTIME, and a setns, change.
#[inline(always)]
fn proxied() -> [(u32, u32, u64); 7] {
    [
        (off!(nsproxy_mnt_ns), off!(mnt_ns_common), CLONE_NEWNS),
        (
            off!(nsproxy_cgroup_ns),
            off!(cgroup_ns_common),
            CLONE_NEWCGROUP,
        ),
        (off!(nsproxy_uts_ns), off!(uts_ns_common), CLONE_NEWUTS),
        (off!(nsproxy_ipc_ns), off!(ipc_ns_common), CLONE_NEWIPC),
        (
            off!(nsproxy_pid_ns_for_children),
            off!(pid_ns_common),
            CLONE_NEWPID,
        ),
        (off!(nsproxy_net_ns), off!(net_ns_common), CLONE_NEWNET),
        (
            off!(nsproxy_time_ns_for_children),
            off!(time_ns_common),
            CLONE_NEWTIME,
        ),
    ]
}

/// Where user sits in `TYPES` order, between ipc and pid.
const USER_AT: usize = 4;

/// `task`'s user namespace, from its credentials.
#[inline(always)]
fn user_ns(task: u64) -> u64 {
    ptr_or_zero(ptr_or_zero(task, off!(task_real_cred)), off!(cred_user_ns))
}

/// The `CLONE_NEW*` bits of the namespaces `child` holds and `parent`
/// does not, at `sched_process_fork` (copy_process has set both up).
///
/// A child without a new namespace shares its parent's `nsproxy`, except
/// after its parent's unshare(CLONE_NEWTIME) (a new proxy holding the same
/// namespaces), so the proxies are compared first and their members only
/// when they differ. A clone with CLONE_NEWPID or CLONE_NEWTIME puts the
/// child itself in the new pid namespace, and its children in the new
/// time one: both show in the members for children. A new user namespace
/// is in the child's credentials, which are its own after every fork, so
/// their `user_ns` are compared. A field this kernel lacks, or a read that
/// fails, gives no bit.
#[inline(always)]
pub fn made(parent: u64, child: u64) -> u64 {
    let mut made = 0;
    let (theirs, its) = (
        ptr_or_zero(parent, off!(task_nsproxy)),
        ptr_or_zero(child, off!(task_nsproxy)),
    );
    if distinct(theirs, its) {
        for (at, _, flag) in proxied() {
            if distinct(ptr_or_zero(theirs, at), ptr_or_zero(its, at)) {
                made |= flag;
            }
        }
    }
    if distinct(user_ns(parent), user_ns(child)) {
        made |= CLONE_NEWUSER;
    }
    made
}

/// The inode numbers (as `/proc/PID/ns` shows them) of `task`'s
/// namespaces, in `enrich::namespaces::TYPES` order: mnt, cgroup, uts,
/// ipc, user, pid, net, time (pid and time: those its children get, which
/// setns changes). 0 where one cannot be read.
#[inline(always)]
pub fn inodes(task: u64) -> [u32; 8] {
    let proxy = ptr_or_zero(task, off!(task_nsproxy));
    let inum = off!(ns_common_inum);
    let of = |ns: u64, common: u32| or_zero::<u32>(ns, plus(common, inum));
    let p = proxied();
    let held = |i: usize| of(ptr_or_zero(proxy, p[i].0), p[i].1);
    // Built whole, user at USER_AT: an array zeroed first and filled in
    // became a memset call in the fork hook, which the build refuses.
    const _: () = assert!(USER_AT == 4);
    [
        held(0),
        held(1),
        held(2),
        held(3),
        of(user_ns(task), off!(user_ns_common)),
        held(4),
        held(5),
        held(6),
    ]
}
