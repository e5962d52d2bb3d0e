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

use crate::kernel::read_ptr;
use crate::maps::off;

/// The `CLONE_NEW*` bits of the namespaces `child` holds and `parent`
/// does not, at `sched_process_fork` (copy_process has set both up).
///
/// A child without a new namespace shares its parent's `nsproxy`, except
/// after its parent's unshare(CLONE_NEWTIME) (a new proxy holding the same
/// namespaces), so the proxies are compared first and their members only
/// when they differ. The pid and time namespaces compared are the ones
/// for children: a clone with CLONE_NEWPID or CLONE_NEWTIME puts the child
/// itself in the new pid namespace, and its children in the new time one.
/// A new user namespace is in the child's credentials, which are its own
/// after every fork, so their `user_ns` are compared. A field this kernel
/// lacks reads the same on both sides: no bit.
#[inline(always)]
pub fn made(parent: u64, child: u64) -> u64 {
    let mut made = 0;
    let (theirs, its) = (
        read_ptr(parent, off!(task_nsproxy)),
        read_ptr(child, off!(task_nsproxy)),
    );
    if let (Ok(theirs), Ok(its)) = (theirs, its)
        && theirs != its
    {
        let differs = |at: u32| read_ptr(theirs, at).ok() != read_ptr(its, at).ok();
        if differs(off!(nsproxy_mnt_ns)) {
            made |= CLONE_NEWNS;
        }
        if differs(off!(nsproxy_cgroup_ns)) {
            made |= CLONE_NEWCGROUP;
        }
        if differs(off!(nsproxy_uts_ns)) {
            made |= CLONE_NEWUTS;
        }
        if differs(off!(nsproxy_ipc_ns)) {
            made |= CLONE_NEWIPC;
        }
        if differs(off!(nsproxy_pid_ns_for_children)) {
            made |= CLONE_NEWPID;
        }
        if differs(off!(nsproxy_net_ns)) {
            made |= CLONE_NEWNET;
        }
        if differs(off!(nsproxy_time_ns_for_children)) {
            made |= CLONE_NEWTIME;
        }
    }
    let user_ns = |task: u64| {
        read_ptr(task, off!(task_real_cred))
            .and_then(|cred| read_ptr(cred, off!(cred_user_ns)))
            .ok()
    };
    if user_ns(parent) != user_ns(child) {
        made |= CLONE_NEWUSER;
    }
    made
}
