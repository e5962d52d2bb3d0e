//! `sensor probe`: what this kernel offers and which hook each event kind
//! will use, and why. Every answer comes from trying the real thing (a
//! syscall, a map creation, a program load), never from version guesses.

use std::path::Path;

use serde::Serialize;

use crate::source::ebpf::{HOOKS, VMLINUX_BTF, offsets, syscalls};

#[derive(Debug, Serialize)]
pub struct Report {
    pub kernel: String,
    pub btf: Check,
    pub ring_buffer: Check,
    pub fentry: Check,
    pub bpf_lsm: Check,
    /// Plain loads through bpf_get_current_task_btf for the task's
    /// identity (else bpf_probe_read_kernel): what `task_reads` decides.
    pub task_btf: Check,
    pub audit: Check,
    pub kernel_fields_missing: Vec<&'static str>,
    pub hooks: Vec<HookChoice>,
}

#[derive(Debug, Serialize)]
pub struct Check {
    pub available: bool,
    pub detail: String,
}

#[derive(Debug, Serialize)]
pub struct HookChoice {
    pub kind: &'static str,
    pub hook: String,
    pub why: &'static str,
    /// The better hook this one stands in for, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preferred: Option<&'static str>,
    /// Syscalls of the family this kernel does not have.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unavailable: Vec<&'static str>,
}

impl Check {
    fn yes(detail: impl Into<String>) -> Check {
        Check {
            available: true,
            detail: detail.into(),
        }
    }
    fn no(detail: impl Into<String>) -> Check {
        Check {
            available: false,
            detail: detail.into(),
        }
    }
}

pub fn run() -> Report {
    let kernel = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_else(|e| format!("unknown ({e})"));
    let btf_path = Path::new(VMLINUX_BTF);
    let btf = if btf_path.exists() {
        Check::yes(format!("{} present", btf_path.display()))
    } else {
        Check::no(format!(
            "{} missing: the kernel needs CONFIG_DEBUG_INFO_BTF",
            btf_path.display()
        ))
    };
    let (kernel_fields_missing, ia32, io_uring, proc_mem, btf, task_btf) =
        match offsets::resolve_running_kernel() {
            Ok(r) => (
                r.missing.clone(),
                crate::source::ebpf::compat::supported(&r.offsets),
                crate::source::ebpf::io_uring::describe(&r),
                crate::source::ebpf::proc_mem::available(&r),
                btf,
                bpf::task_btf(r.offsets.task_pid),
            ),
            Err(e) => (
                Vec::new(),
                Err("kernel BTF unreadable".to_owned()),
                "none: kernel BTF unreadable".to_owned(),
                Err("kernel BTF unreadable".to_owned()),
                Check::no(e.to_string()),
                Check::no("kernel BTF unreadable"),
            ),
        };
    let mut hooks: Vec<HookChoice> = HOOKS
        .iter()
        .map(|h| HookChoice {
            kind: h.kind.name(),
            hook: format!("{}/{}", h.hook_type, h.attach),
            why: h.why,
            preferred: None,
            unavailable: Vec::new(),
        })
        .collect();
    let fentry = bpf::tracing_program(bpf::Tracing::Fentry);
    for family in syscalls::FAMILIES {
        let (traced, unavailable) = syscalls::available(family.kind);
        let mut hook = format!(
            "tp_btf/sys_{{enter,exit}} dispatching {{{}}} by number",
            traced.join(",")
        );
        match family.kind {
            sensor_common::EventKind::FileAttr => {
                hook += if fentry.available {
                    " + fentry/security_path_{chmod,chown} + fentry/security_inode_setattr \
                     + fentry/security_inode_{setxattr,removexattr}"
                } else {
                    " (fentry refused here: path-based calls named by their path argument, without \
                     before attributes; xattr names and values as read from the caller's memory at \
                     entry)"
                }
            }
            sensor_common::EventKind::FileWrite => {
                hook += if fentry.available {
                    " + fentry/security_inode_{unlink,rmdir,rename,setattr,link,symlink}"
                } else {
                    " (fentry refused here: truncate/unlink/rename/link/symlink decided by their \
                     path argument only)"
                }
            }
            sensor_common::EventKind::Net => {
                hook += if fentry.available {
                    " + fentry/security_socket_{connect,bind}"
                } else {
                    " (fentry refused here: the address as read from the caller's memory at \
                     entry, and a connected socket's peer)"
                }
            }
            _ => {}
        }
        hooks.push(HookChoice {
            kind: family.kind.name(),
            hook,
            why: family.why,
            preferred: family.preferred,
            unavailable,
        });
    }
    hooks.push(HookChoice {
        kind: "ia32",
        hook: match ia32 {
            Ok(()) => "tp_btf/sys_{enter,exit}, tail-calling each family's ia32 programs".to_owned(),
            Err(why) => format!("none: {why}"),
        },
        why: crate::source::ebpf::compat::WHY,
        preferred: Some(
            "kprobes on the __ia32_sys_* entry points (not built yet): nothing to pay on native syscalls",
        ),
        unavailable: Vec::new(),
    });
    hooks.push(HookChoice {
        kind: "io_uring",
        hook: io_uring,
        why: crate::source::ebpf::io_uring::WHY,
        preferred: Some(crate::source::ebpf::io_uring::PREFERRED),
        unavailable: Vec::new(),
    });
    let fexit = bpf::tracing_program(bpf::Tracing::Fexit);
    hooks.push(HookChoice {
        kind: "proc_mem",
        hook: match (proc_mem, fexit.available) {
            (Ok(()), true) => format!("fexit/{}", sensor_common::names::FN_MEM_OPEN),
            (Ok(()), false) => format!(
                "{} (fexit refused here: {})",
                crate::source::ebpf::proc_mem::FALLBACK,
                fexit.detail
            ),
            (Err(why), _) => format!("none: {why}"),
        },
        why: crate::source::ebpf::proc_mem::WHY,
        preferred: None,
        unavailable: Vec::new(),
    });
    hooks.push(HookChoice {
        kind: "udp_flows",
        hook: format!(
            "{} ({})",
            crate::source::ebpf::udp_flows::HOOK,
            match crate::source::ebpf::cgroup2::open_root() {
                Ok(root) if root.whole => format!("at {}", root.at),
                Ok(root) => format!(
                    "at {}, a cgroup namespace's root, the hierarchy's being out of reach: only \
                     its subtree's sockets",
                    root.at
                ),
                Err(why) => format!("none: {why}"),
            }
        ),
        why: crate::source::ebpf::udp_flows::WHY,
        preferred: None,
        unavailable: Vec::new(),
    });
    Report {
        kernel,
        btf,
        ring_buffer: bpf::ring_buffer(),
        fentry,
        bpf_lsm: bpf_lsm(),
        task_btf,
        audit: audit(),
        kernel_fields_missing,
        hooks,
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mark = |c: &Check| if c.available { "yes" } else { "no " };
        writeln!(f, "kernel        {}", self.kernel)?;
        for (name, c) in [
            ("btf", &self.btf),
            ("ring buffer", &self.ring_buffer),
            ("fentry", &self.fentry),
            ("bpf-lsm", &self.bpf_lsm),
            ("task btf", &self.task_btf),
            ("audit", &self.audit),
        ] {
            writeln!(f, "{name:<13} {}  {}", mark(c), c.detail)?;
        }
        if !self.kernel_fields_missing.is_empty() {
            writeln!(
                f,
                "fields absent from this kernel (reported as unset): {}",
                self.kernel_fields_missing.join(", ")
            )?;
        }
        writeln!(f, "\nhooks:")?;
        for h in &self.hooks {
            writeln!(f, "  {:<9} {}\n            why: {}", h.kind, h.hook, h.why)?;
            if let Some(p) = h.preferred {
                writeln!(f, "            better hook: {p}")?;
            }
            if !h.unavailable.is_empty() {
                writeln!(
                    f,
                    "            not in this kernel: {}",
                    h.unavailable.join(", ")
                )?;
            }
        }
        Ok(())
    }
}

fn bpf_lsm() -> Check {
    const LSM: &str = "/sys/kernel/security/lsm";
    if !Path::new(LSM).exists() {
        // securityfs is normally mounted by systemd; mount it if we can.
        let _ = nix::mount::mount(
            Some("securityfs"),
            "/sys/kernel/security",
            Some("securityfs"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        );
    }
    let active = match std::fs::read_to_string(LSM) {
        Ok(s) => s.trim().to_owned(),
        Err(e) => return Check::no(format!("cannot read {LSM}: {e}")),
    };
    if !active.split(',').any(|l| l == "bpf") {
        return Check::no(format!("not in the active LSM list ({active})"));
    }
    let load = bpf::tracing_program(bpf::Tracing::Lsm);
    if load.available {
        Check::yes(format!("active ({active}); {}", load.detail))
    } else {
        Check::no(format!("active ({active}) but {}", load.detail))
    }
}

fn audit() -> Check {
    use crate::source::audit::netlink::AuditSocket;
    match AuditSocket::open().and_then(|mut socket| socket.status()) {
        Ok(s) => Check::yes(format!(
            "netlink answers: enabled={} daemon pid={} backlog_limit={} lost={}",
            s.enabled, s.pid, s.backlog_limit, s.lost
        )),
        Err(e) => Check::no(format!("netlink audit: {e}")),
    }
}

/// Minimal raw `bpf(2)` calls for feature probes. aya offers no way to load
/// an arbitrary program without an object file, and a probe must try the
/// exact program type to learn whether this kernel (or sandbox) allows it.
mod bpf {
    use super::Check;

    const BPF_MAP_CREATE: libc::c_long = 0;
    const BPF_PROG_LOAD: libc::c_long = 5;
    const BPF_MAP_TYPE_RINGBUF: u32 = 27;
    const BPF_PROG_TYPE_TRACING: u32 = 26;
    const BPF_PROG_TYPE_LSM: u32 = 29;
    const BPF_TRACE_FENTRY: u32 = 24;
    const BPF_TRACE_FEXIT: u32 = 25;
    const BPF_LSM_MAC: u32 = 27;

    pub enum Tracing {
        Fentry,
        /// On the `/proc/PID/mem` hook's own function.
        Fexit,
        Lsm,
    }

    fn sys_bpf(cmd: libc::c_long, attr: &mut [u8; 128]) -> Result<i32, std::io::Error> {
        // SAFETY: attr is a zero-initialised union bpf_attr of 128 bytes, larger
        // than what either command reads; the kernel checks the rest is zero.
        let ret =
            unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), attr.len() as u32) };
        if ret < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(ret as i32)
        }
    }

    fn put_u32(attr: &mut [u8; 128], off: usize, v: u32) {
        attr[off..off + 4].copy_from_slice(&v.to_ne_bytes());
    }

    fn put_u64(attr: &mut [u8; 128], off: usize, v: u64) {
        attr[off..off + 8].copy_from_slice(&v.to_ne_bytes());
    }

    /// BPF_PROG_LOAD's attr for a GPL program of `insns` (which must
    /// outlive the load: the attr holds their address).
    fn prog_load_attr(prog_type: u32, insns: &[u64]) -> [u8; 128] {
        static LICENSE: &[u8] = b"GPL\0";
        let mut attr = [0u8; 128];
        put_u32(&mut attr, 0, prog_type);
        put_u32(&mut attr, 4, insns.len() as u32);
        put_u64(&mut attr, 8, insns.as_ptr() as u64);
        put_u64(&mut attr, 16, LICENSE.as_ptr() as u64);
        attr
    }

    fn close(fd: i32) {
        // SAFETY: fd was returned by bpf(2) to us and is closed once.
        unsafe { libc::close(fd) };
    }

    pub fn ring_buffer() -> Check {
        let mut attr = [0u8; 128];
        put_u32(&mut attr, 0, BPF_MAP_TYPE_RINGBUF);
        put_u32(&mut attr, 12, 4096); // max_entries: one page
        match sys_bpf(BPF_MAP_CREATE, &mut attr) {
            Ok(fd) => {
                close(fd);
                Check::yes("BPF_MAP_TYPE_RINGBUF created")
            }
            Err(e) => Check::no(format!(
                "BPF_MAP_TYPE_RINGBUF refused: {e} (needs Linux 5.8)"
            )),
        }
    }

    /// Whether a tracepoint program may read the current task through
    /// bpf_get_current_task_btf with a plain load (of `task_struct.pid`, at
    /// `pid_offset`): the kind of read every syscall program makes when
    /// the daemon picks plain loads (it verifies its own programs too).
    pub fn task_btf(pid_offset: u32) -> Check {
        const BPF_PROG_TYPE_TRACEPOINT: u32 = 5;
        const BPF_FUNC_GET_CURRENT_TASK_BTF: u64 = 158;
        let Ok(off) = i16::try_from(pid_offset) else {
            return Check::no(format!(
                "task_struct.pid at {pid_offset} is beyond a load's reach"
            ));
        };
        let insns: [u64; 3] = [
            // call bpf_get_current_task_btf
            0x85 | BPF_FUNC_GET_CURRENT_TASK_BTF << 32,
            // r0 = *(u32 *)(r0 + off)
            0x61 | (off as u16 as u64) << 16,
            // exit
            0x95,
        ];
        let mut attr = prog_load_attr(BPF_PROG_TYPE_TRACEPOINT, &insns);
        match sys_bpf(BPF_PROG_LOAD, &mut attr) {
            Ok(fd) => {
                close(fd);
                Check::yes(
                    "plain loads through bpf_get_current_task_btf verify; the daemon uses them \
                     unless its own programs are refused (its log says)",
                )
            }
            Err(e) => Check::no(format!(
                "refused ({e}; needs Linux 5.11): the task is read with bpf_probe_read_kernel"
            )),
        }
    }

    pub fn tracing_program(kind: Tracing) -> Check {
        let (prog_type, attach_type, target, what) = match kind {
            Tracing::Fentry => (
                BPF_PROG_TYPE_TRACING,
                BPF_TRACE_FENTRY,
                "security_bprm_check",
                "fentry",
            ),
            Tracing::Fexit => (
                BPF_PROG_TYPE_TRACING,
                BPF_TRACE_FEXIT,
                sensor_common::names::FN_MEM_OPEN,
                "fexit",
            ),
            Tracing::Lsm => (
                BPF_PROG_TYPE_LSM,
                BPF_LSM_MAC,
                "bpf_lsm_bprm_check_security",
                "BPF-LSM",
            ),
        };
        let btf_id = match btf_rs::Btf::from_file(super::VMLINUX_BTF)
            .ok()
            .and_then(|b| b.resolve_ids_by_name(target).ok())
            .and_then(|ids| ids.into_iter().next())
        {
            Some(id) => id,
            None => return Check::no(format!("{target} not found in the kernel's BTF")),
        };
        // r0 = 0; exit
        let insns: [u64; 2] = [0x0000_0000_0000_00b7, 0x0000_0000_0000_0095];
        let mut attr = prog_load_attr(prog_type, &insns);
        put_u32(&mut attr, 68, attach_type);
        put_u32(&mut attr, 108, btf_id);
        match sys_bpf(BPF_PROG_LOAD, &mut attr) {
            Ok(fd) => {
                close(fd);
                Check::yes(format!("a {what} program on {target} loads"))
            }
            Err(e) => Check::no(format!(
                "loading a {what} program on {target} was refused: {e}"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::bpf;

    // Loads real programs: the unit tests run as root (`cargo xtask test`).
    #[test]
    fn the_task_btf_check_verifies_the_load_it_describes() {
        let pid = crate::source::ebpf::offsets::resolve_running_kernel()
            .expect("this kernel's BTF")
            .offsets
            .task_pid;
        assert!(bpf::task_btf(pid).available, "task_struct.pid at {pid}");
        // Past the end of task_struct: the verifier refuses the same load,
        // so the check reports what the verifier says, not the kernel's age.
        let refused = bpf::task_btf(32_000);
        assert!(!refused.available, "{}", refused.detail);
        assert!(refused.detail.contains("refused"), "{}", refused.detail);
        assert!(!bpf::task_btf(u32::MAX).available);
    }
}
