//! The identity and credentials of a task, read at the event.

use sensor_common::{ID_UNSET, OFFSET_MISSING, ProbeError, TaskInfo};

use crate::kernel::{read_bytes, read_ptr, read_str, read_u32, read_u64};
use crate::maps::{count_error, off};

/// Fills every field of `t` (the memory may be uninitialised ring-buffer
/// space). Fails only when the task's own ids cannot be read; a missing
/// detail (tty, login uid…) is left unset and counted.
#[inline(always)]
pub fn fill(t: &mut TaskInfo, task: u64) -> Result<(), i64> {
    t.tgid = read_u32(task, off!(task_tgid))?;
    t.tid = read_u32(task, off!(task_pid))?;
    let mut complete = true;
    let mut ok = |r: Result<u32, i64>, default: u32| match r {
        Ok(v) => v,
        Err(_) => {
            complete = false;
            default
        }
    };

    let leader = read_ptr(task, off!(task_group_leader)).unwrap_or(0);
    t.start_boottime = read_u64(leader, off!(task_start_boottime)).unwrap_or(0);
    let parent = read_ptr(task, off!(task_real_parent)).unwrap_or(0);
    t.ppid = ok(read_u32(parent, off!(task_tgid)), 0);
    let parent_leader = read_ptr(parent, off!(task_group_leader)).unwrap_or(0);
    t.parent_start_boottime = read_u64(parent_leader, off!(task_start_boottime)).unwrap_or(0);

    // real_cred: the task's objective credentials, what it acts as.
    let cred = read_ptr(task, off!(task_real_cred)).unwrap_or(0);
    t.uid = ok(read_u32(cred, off!(cred_uid)), ID_UNSET);
    t.gid = ok(read_u32(cred, off!(cred_gid)), ID_UNSET);
    t.euid = ok(read_u32(cred, off!(cred_euid)), ID_UNSET);
    t.egid = ok(read_u32(cred, off!(cred_egid)), ID_UNSET);
    t.suid = ok(read_u32(cred, off!(cred_suid)), ID_UNSET);
    t.sgid = ok(read_u32(cred, off!(cred_sgid)), ID_UNSET);
    t.fsuid = ok(read_u32(cred, off!(cred_fsuid)), ID_UNSET);
    t.fsgid = ok(read_u32(cred, off!(cred_fsgid)), ID_UNSET);
    // Absent without CONFIG_AUDIT: unset, and not an error.
    t.loginuid = read_u32(task, off!(task_loginuid)).unwrap_or(ID_UNSET);
    t.sessionid = read_u32(task, off!(task_sessionid)).unwrap_or(ID_UNSET);
    t._pad0 = 0;

    if read_bytes(task, off!(task_comm), &mut t.comm).is_err() {
        t.comm = [0; 16];
        complete = false;
    }
    t.tty = [0; 32];
    let signal = read_ptr(task, off!(task_signal)).unwrap_or(0);
    let tty = read_ptr(signal, off!(signal_tty)).unwrap_or(0);
    if tty != 0 && read_str(tty, off!(tty_name), &mut t.tty).is_err() {
        complete = false;
    }
    t.cgroup_id = match cgroup_kn(task) {
        Ok(kn) => read_u64(kn, off!(kernfs_id)).unwrap_or(0),
        Err(_) => 0,
    };
    if !complete {
        count_error(ProbeError::ReadTask);
    }
    Ok(())
}

/// The kernfs node of the task's cgroup in the hierarchy that names
/// containers: the unified one (`dfl_cgrp`), or on v1/hybrid hosts the v1
/// controller the daemon picked (`cgroup_subsys_index`).
#[inline(always)]
pub fn cgroup_kn(task: u64) -> Result<u64, i64> {
    let css_set = read_ptr(task, off!(task_cgroups))?;
    let index = off!(cgroup_subsys_index);
    let cgroup = if index == OFFSET_MISSING {
        read_ptr(css_set, off!(css_set_dfl_cgrp))?
    } else {
        let subsys = off!(css_set_subsys);
        if subsys == OFFSET_MISSING || index >= 32 {
            return Err(-1);
        }
        let css = read_ptr(css_set, subsys + index * 8)?;
        read_ptr(css, off!(css_cgroup))?
    };
    read_ptr(cgroup, off!(cgroup_kn))
}
