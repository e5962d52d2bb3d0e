//! Kernel struct offsets from the running kernel's BTF: our CO-RE.
//!
//! The eBPF programs read every kernel struct at `base + OFFSETS.<field>`;
//! this module resolves each field by name in `/sys/kernel/btf/vmlinux`
//! (through anonymous unions and structs, and across the renames listed
//! below), so one object runs on every kernel with BTF. A field that an
//! older or differently-configured kernel lacks is OFFSET_MISSING and the
//! event reports it as unset; a field without which events would be wrong
//! is an error that names it.

use std::path::Path;

use btf_rs::{Btf, Type};
use sensor_common::{KernelOffsets, OFFSET_MISSING};

use super::VMLINUX_BTF;

#[derive(Debug, thiserror::Error)]
pub enum OffsetsError {
    #[error(
        "cannot read kernel type information from {path}: {message} \
         (the kernel must be built with CONFIG_DEBUG_INFO_BTF=y, as distribution kernels are since 5.8)"
    )]
    Btf { path: String, message: String },
    #[error("the running kernel's BTF has no {field}, which the sensor cannot work without")]
    Required { field: String },
}

pub struct ResolvedOffsets {
    pub offsets: KernelOffsets,
    /// Optional fields this kernel lacks, as `struct.member`.
    pub missing: Vec<&'static str>,
}

pub fn resolve_running_kernel() -> Result<ResolvedOffsets, OffsetsError> {
    let unified_only = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    resolve_from_file(Path::new(VMLINUX_BTF), unified_only)
}

/// `unified_only`: the host mounts only cgroup v2 (then container cgroups
/// are found in the default hierarchy).
pub fn resolve_from_file(path: &Path, unified_only: bool) -> Result<ResolvedOffsets, OffsetsError> {
    let btf = Btf::from_file(path).map_err(|e| OffsetsError::Btf {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    let mut r = Resolver { btf, missing: Vec::new() };
    // Exhaustive: a new KernelOffsets field does not compile until it is
    // resolved here.
    let offsets = KernelOffsets {
        task_pid: r.required("task_struct", &["pid"])?,
        task_tgid: r.required("task_struct", &["tgid"])?,
        task_real_parent: r.required("task_struct", &["real_parent"])?,
        task_group_leader: r.required("task_struct", &["group_leader"])?,
        // Named real_start_time before 5.5.
        task_start_boottime: r.required("task_struct", &["start_boottime", "real_start_time"])?,
        task_real_cred: r.required("task_struct", &["real_cred"])?,
        task_mm: r.required("task_struct", &["mm"])?,
        task_fs: r.required("task_struct", &["fs"])?,
        task_signal: r.required("task_struct", &["signal"])?,
        // Only with CONFIG_AUDIT.
        task_loginuid: r.optional("task_struct.loginuid", "task_struct", &["loginuid"]),
        task_sessionid: r.optional("task_struct.sessionid", "task_struct", &["sessionid"]),
        task_exit_code: r.required("task_struct", &["exit_code"])?,
        task_comm: r.required("task_struct", &["comm"])?,
        task_cgroups: r.optional("task_struct.cgroups", "task_struct", &["cgroups"]),
        cred_uid: r.required("cred", &["uid"])?,
        cred_gid: r.required("cred", &["gid"])?,
        cred_suid: r.required("cred", &["suid"])?,
        cred_sgid: r.required("cred", &["sgid"])?,
        cred_euid: r.required("cred", &["euid"])?,
        cred_egid: r.required("cred", &["egid"])?,
        cred_fsuid: r.required("cred", &["fsuid"])?,
        cred_fsgid: r.required("cred", &["fsgid"])?,
        mm_arg_start: r.required("mm_struct", &["arg_start"])?,
        mm_arg_end: r.required("mm_struct", &["arg_end"])?,
        fs_pwd: r.required("fs_struct", &["pwd"])?,
        path_mnt: r.required("path", &["mnt"])?,
        path_dentry: r.required("path", &["dentry"])?,
        dentry_parent: r.required("dentry", &["d_parent"])?,
        dentry_name: r.required("dentry", &["d_name"])?,
        qstr_len: r.required("qstr", &["len"])?,
        qstr_name: r.required("qstr", &["name"])?,
        mount_mnt: r.required("mount", &["mnt"])?,
        mount_parent: r.required("mount", &["mnt_parent"])?,
        mount_mountpoint: r.required("mount", &["mnt_mountpoint"])?,
        vfsmount_root: r.required("vfsmount", &["mnt_root"])?,
        binprm_file: r.required("linux_binprm", &["file"])?,
        file_path: r.required("file", &["f_path"])?,
        signal_live: r.required("signal_struct", &["live"])?,
        signal_tty: r.optional("signal_struct.tty", "signal_struct", &["tty"]),
        tty_name: r.optional("tty_struct.name", "tty_struct", &["name"]),
        css_set_dfl_cgrp: r.optional("css_set.dfl_cgrp", "css_set", &["dfl_cgrp"]),
        css_set_subsys: r.optional("css_set.subsys", "css_set", &["subsys"]),
        css_cgroup: r.optional("cgroup_subsys_state.cgroup", "cgroup_subsys_state", &["cgroup"]),
        cgroup_kn: r.optional("cgroup.kn", "cgroup", &["kn"]),
        // Renamed __parent in 6.15 (RCU-protected since).
        kernfs_parent: r.optional("kernfs_node.parent", "kernfs_node", &["__parent", "parent"]),
        kernfs_name: r.optional("kernfs_node.name", "kernfs_node", &["name"]),
        kernfs_id: r.optional("kernfs_node.id", "kernfs_node", &["id"]),
        cgroup_subsys_index: choose_cgroup_hierarchy(unified_only, |name| {
            r.enum_value("cgroup_subsys_id", name)
        }),
    };
    Ok(ResolvedOffsets { offsets, missing: r.missing })
}

/// Which cgroup hierarchy names containers. On a cgroup v2 host, the
/// unified one (OFFSET_MISSING tells the programs to use `dfl_cgrp`). On v1
/// or hybrid hosts, runtimes place containers in the v1 controllers, so we
/// take one every runtime uses: memory, else pids, else cpu.
pub fn choose_cgroup_hierarchy(unified_only: bool, subsys_id: impl Fn(&str) -> Option<u32>) -> u32 {
    if unified_only {
        return OFFSET_MISSING;
    }
    ["memory_cgrp_id", "pids_cgrp_id", "cpu_cgrp_id"]
        .iter()
        .find_map(|n| subsys_id(n))
        .unwrap_or(OFFSET_MISSING)
}

struct Resolver {
    btf: Btf,
    missing: Vec<&'static str>,
}

impl Resolver {
    fn required(&self, strukt: &str, members: &[&str]) -> Result<u32, OffsetsError> {
        self.find(strukt, members).ok_or_else(|| OffsetsError::Required {
            field: format!("{strukt}.{}", members.join(" (or ")) + &")".repeat(members.len() - 1),
        })
    }

    fn optional(&mut self, label: &'static str, strukt: &str, members: &[&str]) -> u32 {
        self.find(strukt, members).unwrap_or_else(|| {
            self.missing.push(label);
            OFFSET_MISSING
        })
    }

    /// Byte offset of the first of `members` found in `struct strukt`.
    fn find(&self, strukt: &str, members: &[&str]) -> Option<u32> {
        let types = self.btf.resolve_types_by_name(strukt).ok()?;
        let s = types.iter().find_map(|t| match t {
            Type::Struct(s) if !s.members.is_empty() => Some(s),
            _ => None,
        })?;
        members.iter().find_map(|m| self.member_bits(s, m)).map(|bits| bits / 8)
    }

    /// Bit offset of `name` in `s`, looking inside anonymous members.
    fn member_bits(&self, s: &btf_rs::Struct, name: &str) -> Option<u32> {
        for m in &s.members {
            let mname = self.btf.resolve_name(m).unwrap_or_default();
            if mname == name {
                return Some(m.bit_offset());
            }
            if mname.is_empty() {
                if let Some(inner) = self.aggregate(self.btf.resolve_chained_type(m).ok()?) {
                    if let Some(bits) = self.member_bits(&inner, name) {
                        return Some(m.bit_offset() + bits);
                    }
                }
            }
        }
        None
    }

    /// The struct or union behind typedefs and qualifiers.
    fn aggregate(&self, mut t: Type) -> Option<btf_rs::Struct> {
        for _ in 0..16 {
            t = match t {
                Type::Struct(s) | Type::Union(s) => return Some(s),
                Type::Typedef(x) => self.btf.resolve_chained_type(&x).ok()?,
                Type::Const(x) | Type::Volatile(x) | Type::Restrict(x) => self.btf.resolve_chained_type(&x).ok()?,
                Type::TypeTag(x) => self.btf.resolve_chained_type(&x).ok()?,
                _ => return None,
            };
        }
        None
    }

    fn enum_value(&self, enum_name: &str, variant: &str) -> Option<u32> {
        let types = self.btf.resolve_types_by_name(enum_name).ok()?;
        types.iter().find_map(|t| match t {
            Type::Enum(e) => e
                .members
                .iter()
                .find(|m| self.btf.resolve_name(*m).is_ok_and(|n| n == variant))
                .map(|m| m.val()),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running() -> ResolvedOffsets {
        resolve_from_file(Path::new(VMLINUX_BTF), false).expect("this kernel's BTF resolves")
    }

    #[test]
    fn every_field_of_this_kernel_resolves() {
        let r = running();
        // Linux 6.18 with CONFIG_AUDIT and cgroups has everything.
        assert!(r.missing.is_empty(), "missing: {:?}", r.missing);
        assert_ne!(r.offsets.cgroup_subsys_index, OFFSET_MISSING);
    }

    #[test]
    fn offsets_obey_layouts_that_hold_on_every_kernel() {
        let o = running().offsets;
        // pid_t pid; pid_t tgid; are adjacent in task_struct.
        assert_eq!(o.task_tgid, o.task_pid + 4);
        // struct qstr { union { struct { u32 hash; u32 len; }; u64 hash_len; }; const char *name; }
        assert_eq!(o.qstr_len, 4, "found inside the anonymous union and struct");
        assert_eq!(o.qstr_name, 8);
        // struct path { struct vfsmount *mnt; struct dentry *dentry; }
        assert_eq!((o.path_mnt, o.path_dentry), (0, 8));
        // kuid_t uid, gid, suid, sgid, euid, egid, fsuid, fsgid: consecutive.
        assert_eq!(
            [o.cred_gid, o.cred_suid, o.cred_sgid, o.cred_euid, o.cred_egid, o.cred_fsuid, o.cred_fsgid],
            [4, 8, 12, 16, 20, 24, 28].map(|d| o.cred_uid + d)
        );
        assert_eq!(o.mm_arg_end, o.mm_arg_start + 8);
        assert_eq!(o.vfsmount_root, 0);
    }

    #[test]
    fn the_6_15_kernfs_rename_is_followed() {
        // This kernel (6.18) only has __parent.
        let o = running().offsets;
        assert_ne!(o.kernfs_parent, OFFSET_MISSING);
    }

    #[test]
    fn a_missing_required_field_is_named() {
        let btf = Btf::from_file(VMLINUX_BTF).expect("btf");
        let r = Resolver { btf, missing: Vec::new() };
        let err = r.required("task_struct", &["no_such_member", "nor_this"]).unwrap_err().to_string();
        assert!(err.contains("task_struct.no_such_member (or nor_this)"), "{err}");
        let err = r.required("no_such_struct", &["x"]).unwrap_err().to_string();
        assert!(err.contains("no_such_struct.x"), "{err}");
    }

    #[test]
    fn a_missing_btf_file_says_what_the_kernel_needs() {
        let err = resolve_from_file(Path::new("/nonexistent/vmlinux"), false).err().expect("fails").to_string();
        assert!(err.contains("/nonexistent/vmlinux") && err.contains("CONFIG_DEBUG_INFO_BTF"), "{err}");
    }

    #[test]
    fn cgroup_hierarchy_choice() {
        let ids = |n: &str| match n {
            "memory_cgrp_id" => Some(4),
            "pids_cgrp_id" => Some(11),
            _ => None,
        };
        assert_eq!(choose_cgroup_hierarchy(true, ids), OFFSET_MISSING);
        assert_eq!(choose_cgroup_hierarchy(false, ids), 4);
        assert_eq!(choose_cgroup_hierarchy(false, |n| (n == "pids_cgrp_id").then_some(11)), 11);
        assert_eq!(choose_cgroup_hierarchy(false, |_| None), OFFSET_MISSING);
    }
}
