//! Actions an intruder uses: ptrace and the other ways into another
//! process (process_vm_*, pidfd_getfd, /proc/PID/mem), setns, new
//! namespaces (unshare, clone, clone3), kernel modules, kexec,
//! memfd_create, mount, bpf(), signals sent (or refused) to the sensor,
//! and io_uring requests (see `io_uring` for theirs).

use std::collections::BTreeMap;

use sensor_common::SyscallOp;

use super::{Kind, Pipeline, outcome, signal_name};
use crate::enrich::namespaces::TYPES;
use crate::event::{
    Ancestor, BpfDetail, Endpoint, Event, File, IoUringDetail, KexecDetail, MemfdDetail,
    ModuleDetail, MountDetail, NamespaceDetail, ProcessAccess, SensorFields, Signal, Text,
};
use crate::source::ebpf::decode::{SysOp, SysRecord};

const PROCESS: &[&str] = &["process"];
const DRIVER: &[&str] = &["driver"];
const FILE: &[&str] = &["file"];
const NETWORK: &[&str] = &["network"];
const CONFIGURATION: &[&str] = &["configuration"];
const ACCESS: &[&str] = &["access"];
const START: &[&str] = &["start"];
const END: &[&str] = &["end"];
const CREATION: &[&str] = &["creation"];
const CHANGE: &[&str] = &["change"];
const HOST: &[&str] = &["host"];

const PTRACE_SEIZE: u64 = 0x4206;

impl Pipeline {
    pub(super) fn system(&mut self, x: SysRecord) -> Event {
        let ticks = self.table.ids.ticks(x.task.start_boottime);
        self.known(&x.task, ticks);
        let (mut outcome, mut error) = outcome(x.ret);
        let text = |b: &[u8]| (!b.is_empty()).then(|| Text(b.to_vec()));
        let mut sensor = SensorFields::default();
        let mut file = None;
        let (mut source, mut destination, mut server, mut network) = (None, None, None, None);
        let mut submitted = None;
        let (category, type_, action): (
            &'static [&'static str],
            &'static [&'static str],
            &'static str,
        ) = match x.op {
            SysOp::SignalSensor => {
                let sig = x.args[0] as u32;
                sensor.signal = Some(Signal {
                    number: sig,
                    name: signal_name(sig),
                });
                sensor.signal_result = Some(signal_result(x.args[1]));
                (PROCESS, ACCESS, "signal_sensor")
            }
            SysOp::IoUring => {
                // Reported at submission: what became of it is not known
                // (see the completion, below).
                (outcome, error) = ("unknown", None);
                let mut request = super::io_uring::Request::of(&x);
                self.follow_request(&x, &mut request);
                self.track_requested_magic_link(&x, &request);
                (file, destination) = (request.file(), request.destination());
                if super::io_uring::xattr_value_cut(&x) {
                    sensor.truncated.push("sensor.io_uring.xattr.value_hex");
                }
                sensor.io_uring = Some(request.detail.clone());
                submitted = Some(request);
                (
                    category_of(sensor.io_uring.as_ref()),
                    ACCESS,
                    "io_uring_submit",
                )
            }
            SysOp::IoUringComplete => {
                let done = self.io_uring.complete(&x);
                (file, source, destination, server, network) = (
                    done.file,
                    done.source,
                    done.destination,
                    done.server,
                    done.network,
                );
                sensor.io_uring = Some(done.detail);
                (
                    category_of(sensor.io_uring.as_ref()),
                    ACCESS,
                    "io_uring_complete",
                )
            }
            // Another process's memory file opened (the open's
            // permission is an attach's; the reads and writes follow on
            // the fd, unseen one by one).
            SysOp::ProcMemOpen => {
                let target = x.args[1] as u32;
                sensor.ptrace_target = Some(self.target_process(target));
                let mode = memory_open_mode(x.args[0]);
                sensor.process_access = Some(ProcessAccess {
                    mode: Some(mode),
                    ..ProcessAccess::default()
                });
                (PROCESS, ACCESS, "process_memory_open")
            }
            // A clone that made namespaces no record announced: its
            // arguments asked for none when its entry read them.
            SysOp::NamespacesAtFork => {
                let mut detail = creation(Vec::new(), x.namespaces_made);
                detail.inodes = made_inodes(&detail.types, &x.name);
                sensor.namespace = Some(detail);
                (PROCESS, START, "namespace_create")
            }
            SysOp::Syscall(op) => {
                sensor.syscall = Some(op.name());
                match op {
                    SyscallOp::ProcessVmReadv | SyscallOp::ProcessVmWritev => {
                        sensor.ptrace_target = Some(self.target_process(x.args[1] as u32));
                        (
                            PROCESS,
                            ACCESS,
                            if op == SyscallOp::ProcessVmWritev {
                                "process_memory_write"
                            } else {
                                "process_memory_read"
                            },
                        )
                    }
                    // The pid comes from the pidfd's file, which is no
                    // pidfd where the call failed with EBADF (or EINVAL,
                    // before looking): no target is named then.
                    SyscallOp::PidfdGetfd => {
                        let target = x.args[1] as u32;
                        sensor.ptrace_target = (pidfd_target_known(target, x.ret)
                            && !x.target_unknown)
                            .then(|| self.target_process(target));
                        let (path, object) = taken_file(&x);
                        sensor.process_access = Some(ProcessAccess {
                            fd: Some(x.args[0]),
                            object,
                            target_unknown: x.target_unknown,
                            ..ProcessAccess::default()
                        });
                        file = path.map(|path| File {
                            path: Some(path),
                            ..File::default()
                        });
                        (PROCESS, ACCESS, "process_fd_copy")
                    }
                    SyscallOp::Setns => {
                        let (detail, target) = self.namespace_detail(&x);
                        sensor.ptrace_target = target.map(|pid| self.target_process(pid));
                        sensor.namespace = Some(detail);
                        (PROCESS, CHANGE, "namespace_enter")
                    }
                    SyscallOp::Unshare | SyscallOp::Clone | SyscallOp::Clone3 => {
                        let asked = created_namespaces(op, x.args[0]);
                        let mut detail = creation(asked, x.namespaces_made);
                        detail.inodes = made_inodes(&detail.types, &x.name);
                        sensor.namespace = Some(detail);
                        // unshare moves the caller; a clone starts a
                        // process in them (its own fork event follows).
                        let type_ = if op == SyscallOp::Unshare {
                            CHANGE
                        } else {
                            START
                        };
                        (PROCESS, type_, "namespace_create")
                    }
                    SyscallOp::Ptrace => {
                        sensor.ptrace_target = Some(self.target_process(x.args[1] as u32));
                        (
                            PROCESS,
                            ACCESS,
                            if x.args[0] == PTRACE_SEIZE {
                                "ptrace_seize"
                            } else {
                                "ptrace_attach"
                            },
                        )
                    }
                    SyscallOp::KexecLoad | SyscallOp::KexecFileLoad => {
                        let from_file = op == SyscallOp::KexecFileLoad;
                        sensor.kexec = Some(KexecDetail {
                            segments: (!from_file).then_some(x.args[0]),
                            flags: x.args[1],
                            cmdline: text(&x.name),
                        });
                        file = (from_file && !x.path.is_empty()).then(|| File {
                            path: Some(Text(x.path.clone())),
                            ..File::default()
                        });
                        (HOST, CHANGE, "kexec_load")
                    }
                    SyscallOp::InitModule | SyscallOp::FinitModule => {
                        sensor.module = Some(ModuleDetail {
                            name: x.module_name.as_deref().and_then(text),
                            params: text(&x.name),
                            image_bytes: (op == SyscallOp::InitModule).then_some(x.args[0]),
                            name_argument: None,
                        });
                        if op == SyscallOp::FinitModule {
                            file = Some(File {
                                path: text(&x.path),
                                ..File::default()
                            });
                        }
                        (DRIVER, START, "module_load")
                    }
                    SyscallOp::DeleteModule => {
                        // The module the kernel freed, over the argument.
                        let argument = text(&x.name);
                        let freed = x.module_name.as_deref().and_then(text);
                        sensor.module = Some(ModuleDetail {
                            name_argument: argument.clone().filter(|_| {
                                freed.as_ref().is_some_and(|f| Some(f) != argument.as_ref())
                            }),
                            name: freed.or(argument),
                            ..ModuleDetail::default()
                        });
                        (DRIVER, END, "module_unload")
                    }
                    SyscallOp::MemfdCreate => {
                        sensor.memfd = Some(MemfdDetail {
                            name: Text(x.name.clone()),
                            flags: x.args[1],
                        });
                        (FILE, CREATION, "memfd_create")
                    }
                    SyscallOp::Mount | SyscallOp::Umount2 | SyscallOp::MoveMount => {
                        let umount = op == SyscallOp::Umount2;
                        // A bind or move mount's source is a path too.
                        let source_path = x.mount_source_path();
                        let source_argument = source_path
                            .as_ref()
                            .filter(|p| **p != x.name)
                            .map(|_| Text(x.name.clone()));
                        sensor.mount = Some(Box::new(MountDetail {
                            target: Text(x.mount_point()),
                            target_argument: target_argument(&x),
                            source: source_path.map(Text).or_else(|| text(&x.name)),
                            source_argument,
                            fstype: text(&x.fstype),
                            flags: if umount { x.args[1] } else { x.args[0] },
                            ..MountDetail::default()
                        }));
                        (
                            CONFIGURATION,
                            CHANGE,
                            if umount { "umount" } else { "mount" },
                        )
                    }
                    // A mount's attributes changed: shown as a mount, like
                    // the `mount -o remount,…` it can stand in for.
                    SyscallOp::MountSetattr => {
                        sensor.mount = Some(Box::new(MountDetail {
                            target: Text(x.mount_point()),
                            target_argument: target_argument(&x),
                            flags: x.args[0],
                            attributes_set: mount_attributes(x.args[1]),
                            attributes_cleared: mount_attributes(x.args[2]),
                            propagation: (x.args[3] != 0).then_some(x.args[3]),
                            ..MountDetail::default()
                        }));
                        (CONFIGURATION, CHANGE, "mount")
                    }
                    SyscallOp::Bpf => {
                        let (command, prog_type, attach_type) = match x.args[0] {
                            5 => ("prog_load", Some(x.args[1]), None),
                            8 => ("prog_attach", None, Some(x.args[1])),
                            17 => ("raw_tracepoint_open", None, None),
                            _ => ("link_create", None, Some(x.args[1])),
                        };
                        sensor.bpf = Some(BpfDetail {
                            command,
                            prog_type,
                            attach_type,
                            name: text(&x.name),
                        });
                        (CONFIGURATION, CHANGE, "bpf")
                    }
                    // A kill the kernel refused: no signal was generated,
                    // so signal_generate saw nothing; the outcome says why.
                    SyscallOp::Kill | SyscallOp::Tkill | SyscallOp::Tgkill => {
                        let sig = x.args[0] as u32;
                        sensor.signal = Some(Signal {
                            number: sig,
                            name: signal_name(sig),
                        });
                        (PROCESS, ACCESS, "signal_sensor")
                    }
                    // Decode produces only system ops here.
                    _ => (PROCESS, ACCESS, "unknown"),
                }
            }
        };
        if x.truncated {
            sensor.truncated.push(truncated_field(&x));
        }
        sensor.escaped = escaped_fields(&sensor, file.as_ref(), destination.as_ref());
        let kind = Kind {
            category,
            type_,
            action,
            outcome,
        };
        let mut ev = self.process_event(x.boot_ns, &x.task, kind, sensor);
        if let Some(request) = submitted {
            // Its completion names this event.
            self.io_uring.submitted(&x, ev.event.id.clone(), request);
        }
        ev.error = error;
        ev.file = file;
        ev.source = source;
        ev.destination = destination;
        ev.server = server;
        ev.network = network;
        ev
    }
}

/// The fields of a system-family event (and of `magic_link_found`) whose
/// bytes came from the process or the filesystem (names, paths,
/// parameters) and are not UTF-8, so were escaped (`event::text`): the
/// consumer unescapes the ones listed.
pub(super) fn escaped_fields(
    sensor: &SensorFields,
    file: Option<&File>,
    destination: Option<&Endpoint>,
) -> Vec<String> {
    let module = sensor.module.as_ref();
    let mount = sensor.mount.as_deref();
    let io_uring = sensor.io_uring.as_ref();
    let fields: [(&str, Option<&Text>); 19] = [
        ("file.path", file.and_then(|f| f.path.as_ref())),
        (
            "file.target_path",
            file.and_then(|f| f.target_path.as_ref()),
        ),
        (
            "destination.address",
            destination.and_then(|d| d.address.as_ref()),
        ),
        ("sensor.module.name", module.and_then(|m| m.name.as_ref())),
        (
            "sensor.module.name_argument",
            module.and_then(|m| m.name_argument.as_ref()),
        ),
        (
            "sensor.module.params",
            module.and_then(|m| m.params.as_ref()),
        ),
        ("sensor.memfd.name", sensor.memfd.as_ref().map(|m| &m.name)),
        ("sensor.mount.target", mount.map(|m| &m.target)),
        (
            "sensor.mount.target_argument",
            mount.and_then(|m| m.target_argument.as_ref()),
        ),
        ("sensor.mount.source", mount.and_then(|m| m.source.as_ref())),
        (
            "sensor.mount.source_argument",
            mount.and_then(|m| m.source_argument.as_ref()),
        ),
        ("sensor.mount.fstype", mount.and_then(|m| m.fstype.as_ref())),
        (
            "sensor.process_access.object",
            sensor
                .process_access
                .as_ref()
                .and_then(|a| a.object.as_ref()),
        ),
        (
            "sensor.kexec.cmdline",
            sensor.kexec.as_ref().and_then(|k| k.cmdline.as_ref()),
        ),
        (
            "sensor.io_uring.path_argument",
            io_uring.and_then(|u| u.path_argument.as_ref()),
        ),
        (
            "sensor.io_uring.target",
            io_uring.and_then(|u| u.target.as_ref()),
        ),
        (
            "sensor.io_uring.target_argument",
            io_uring.and_then(|u| u.target_argument.as_ref()),
        ),
        (
            "sensor.io_uring.xattr.name",
            io_uring.and_then(|u| u.xattr.as_ref().map(|x| &x.name)),
        ),
        (
            "sensor.bpf.name",
            sensor.bpf.as_ref().and_then(|b| b.name.as_ref()),
        ),
    ];
    fields
        .into_iter()
        .filter(|(_, text)| text.is_some_and(Text::is_escaped))
        .map(|(field, _)| field.to_owned())
        .collect()
}

/// An io_uring request's category: its operation's.
fn category_of(detail: Option<&IoUringDetail>) -> &'static [&'static str] {
    match detail.map(|d| d.operation) {
        Some("accept" | "connect" | "socket" | "bind" | "listen") => NETWORK,
        _ => FILE,
    }
}

impl Pipeline {
    /// The process `pid` a call reaches (ptrace, process_vm_*, a
    /// pidfd…), from the table; a pid the sensor never saw still says
    /// which pid it was.
    fn target_process(&self, pid: u32) -> Ancestor {
        let target = self.table.get(pid);
        Ancestor {
            pid,
            entity_id: target.map(|t| t.entity_id.clone()).unwrap_or_default(),
            executable: target.and_then(|t| t.executable.as_deref().cloned()),
            name: target.and_then(|t| t.name.as_deref().cloned()),
        }
    }

    /// `sensor.namespace` of a setns (args = [fd, nstype, the nsfs fd's
    /// namespace inode or 0, the pidfd's process or 0]; `path` and `name`
    /// the caller's namespace inodes before and after), and the process
    /// whose namespaces a pidfd named.
    ///
    /// Where the call moved the caller, the namespaces it is in now say
    /// what was entered: the fd was read at the call's entry, and another
    /// thread can put a different file under its number before the kernel
    /// reads it (to pass the host's namespace off as another).
    fn namespace_detail(&self, x: &SysRecord) -> (NamespaceDetail, Option<u32>) {
        use crate::enrich::namespaces::types_of;
        let (nstype, inode, target) = (x.args[1], x.args[2], x.args[3] as u32);
        let target = (inode == 0 && pidfd_target_known(target, x.ret)).then_some(target);
        let mut entered = entered_namespaces(&x.path, &x.name);
        if entered.is_empty()
            && let [only] = types_of(nstype)[..]
        {
            // Into the namespace it was in already: the one it is in now.
            entered = now_in(&x.name, only).into_iter().collect();
        }
        if x.ret == 0 && !entered.is_empty() {
            let detail = NamespaceDetail {
                types: entered.iter().map(|(name, _)| *name).collect(),
                inode: match entered[..] {
                    [(_, only)] => Some(only),
                    _ => None,
                },
                host: Some(
                    entered
                        .iter()
                        .any(|(_, ino)| self.host_namespaces.host_type(*ino).is_some()),
                ),
                argument_inode: (inode != 0 && !entered.iter().any(|(_, ino)| *ino == inode))
                    .then_some(inode),
                ..NamespaceDetail::default()
            };
            return (detail, target);
        }
        let mut types = types_of(nstype);
        if inode != 0 {
            let host_type = self.host_namespaces.host_type(inode);
            if types.is_empty() {
                types.extend(host_type);
            }
            let detail = NamespaceDetail {
                types,
                inode: Some(inode),
                host: Some(host_type.is_some()),
                ..NamespaceDetail::default()
            };
            return (detail, None);
        }
        let host = target.and_then(|pid| self.host_namespaces.process_in_host(pid, &types));
        let detail = NamespaceDetail {
            types,
            host,
            ..NamespaceDetail::default()
        };
        (detail, target)
    }
}

/// The namespaces a setns moved its caller into, by type, with their
/// inode numbers: where `before` and `after`, each the caller's inodes in
/// `TYPES` order as little-endian `u32`s (`namespace_inodes` in the eBPF
/// side), differ. Empty where either is missing (an older record, or a
/// failed call) or nothing changed.
fn entered_namespaces(before: &[u8], after: &[u8]) -> Vec<(&'static str, u64)> {
    let (Some(before), Some(after)) = (namespace_inodes(before), namespace_inodes(after)) else {
        return Vec::new();
    };
    TYPES
        .iter()
        .zip(before.iter().zip(&after))
        .filter(|(_, (b, a))| **b != 0 && **a != 0 && b != a)
        .map(|((name, _), (_, a))| (*name, u64::from(*a)))
        .collect()
}

/// The caller's namespace of type `name` after a setns (`after`, as for
/// [`entered_namespaces`]), where it was read.
fn now_in(after: &[u8], name: &'static str) -> Option<(&'static str, u64)> {
    let after = namespace_inodes(after)?;
    let at = TYPES.iter().position(|(n, _)| *n == name)?;
    let ino = *after.get(at)?;
    (ino != 0).then_some((name, u64::from(ino)))
}

/// The inode numbers of the namespaces of `types` an unshare or a clone
/// made (`after`, as for [`entered_namespaces`]): an unshare's caller's
/// after the call, read at its exit; a clone's new process's, read at its
/// fork. For a pid or time namespace, the one for children. Empty where
/// they were not read.
fn made_inodes(types: &[&'static str], after: &[u8]) -> BTreeMap<&'static str, u64> {
    let Some(after) = namespace_inodes(after) else {
        return BTreeMap::new();
    };
    TYPES
        .iter()
        .zip(&after)
        .filter(|((name, _), ino)| **ino != 0 && types.contains(name))
        .map(|((name, _), ino)| (*name, u64::from(*ino)))
        .collect()
}

/// Namespace inode numbers in `TYPES` order from their little-endian
/// `u32`s; None unless there is exactly one per type.
fn namespace_inodes(b: &[u8]) -> Option<Vec<u32>> {
    (b.len() == 4 * TYPES.len()).then(|| {
        b.chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    })
}

/// The namespace types an unshare, clone or clone3 with `flags` asks
/// for. clone(2)'s low byte is its exit signal, not CLONE_NEWTIME.
fn created_namespaces(op: SyscallOp, flags: u64) -> Vec<&'static str> {
    use sensor_common::namespace_flags::CSIGNAL;
    let flags = if op == SyscallOp::Clone {
        flags & !CSIGNAL
    } else {
        flags
    };
    crate::enrich::namespaces::types_of(flags)
}

/// `sensor.namespace` of a namespace creation whose call asked for
/// `asked`: the types the kernel made where its fork showed them (`made`,
/// `CLONE_NEW*` bits), else those asked for (an unshare, a clone that
/// failed); and what was asked, where that differs from what was made (a
/// clone3 whose flags changed between the sensor's read and the kernel's).
fn creation(asked: Vec<&'static str>, made: Option<u64>) -> NamespaceDetail {
    let Some(made) = made else {
        return NamespaceDetail {
            types: asked,
            ..NamespaceDetail::default()
        };
    };
    let types = crate::enrich::namespaces::types_of(made);
    NamespaceDetail {
        requested: (asked != types).then_some(asked),
        types,
        ..NamespaceDetail::default()
    }
}

/// Whether the process read through a pidfd argument (`target`, 0 when
/// unread) is one: the call did not fail on that fd being no pidfd
/// (EBADF), or before looking at it (EINVAL).
fn pidfd_target_known(target: u32, ret: i64) -> bool {
    target != 0 && ret != -(libc::EBADF as i64) && ret != -(libc::EINVAL as i64)
}

/// The file pidfd_getfd took (`args[2..4]` its i_mode and inode number,
/// `path` its walked path): a path where it has one, else the name
/// `/proc/PID/fd` gives it (a socket's, a pipe's or an anonymous inode's
/// path is only the kernel's pseudo name: `/TCP`, `/`, `/[eventfd]`).
fn taken_file(x: &SysRecord) -> (Option<Text>, Option<Text>) {
    if x.ret < 0 || x.path.is_empty() {
        return (None, None);
    }
    let (kind, ino) = (x.args[2] as libc::mode_t & libc::S_IFMT, x.args[3]);
    let name = x.path.rsplit(|c| *c == b'/').next().unwrap_or_default();
    let object = match kind {
        libc::S_IFSOCK => format!("socket:[{ino}]").into_bytes(),
        // A named FIFO has a path; a pipe's pseudo file is pipefs's root.
        libc::S_IFIFO if x.path == b"/" => format!("pipe:[{ino}]").into_bytes(),
        // Anonymous inodes (eventfd, timerfd, bpf objects…) have no type.
        0 => [b"anon_inode:".as_slice(), name].concat(),
        _ => return (Some(Text(x.path.clone())), None),
    };
    (None, Some(Text(object)))
}

/// A memory file's open mode from its `f_mode` (`FMODE_READ` 1,
/// `FMODE_WRITE` 2).
fn memory_open_mode(f_mode: u64) -> &'static str {
    match f_mode & 3 {
        3 => "read_write",
        2 => "write",
        _ => "read",
    }
}

/// The target as the caller gave it, when the event's target had to join
/// it to the cwd or dirfd (absent when they are the same).
fn target_argument(x: &SysRecord) -> Option<Text> {
    x.mount_point_resolved().then(|| Text(x.path.clone()))
}

/// The field a cut string went to: the kernel flags only that one was cut,
/// and a path at its cap is the likely one.
fn truncated_field(x: &SysRecord) -> &'static str {
    let path_at_cap = x.path.len() + 1 >= sensor_common::SYS_STR0_CAP;
    let base_cut = x.base.len() + sensor_common::COMPONENT_MAX >= sensor_common::PATH_CAP;
    let path_cut = path_at_cap || base_cut;
    // An io_uring rename's or hard link's directory walked for its second
    // path alone (the first is absolute): a cut there is the second's.
    let base_is_seconds = x.path.first() == Some(&b'/')
        && sensor_common::io_uring::second_path_has_dir(x.args[0] as u8);
    match x.op {
        // Its one string: an open's file, walked.
        SysOp::IoUringComplete => "file.path",
        // A path at its cap, or an fd-based request's file (walked: its
        // only string that can be cut).
        SysOp::IoUring
            if path_at_cap
                || (base_cut && !base_is_seconds)
                || sensor_common::io_uring::acts_on_fd(x.args[0] as u8) =>
        {
            "file.path"
        }
        SysOp::IoUring if super::io_uring::is_link(x) => "file.target_path",
        SysOp::IoUring => "sensor.io_uring.target",
        SysOp::Syscall(SyscallOp::FinitModule) if path_cut => "file.path",
        SysOp::Syscall(
            SyscallOp::Mount | SyscallOp::Umount2 | SyscallOp::MoveMount | SyscallOp::MountSetattr,
        ) if path_cut => "sensor.mount.target",
        SysOp::Syscall(SyscallOp::Mount | SyscallOp::MoveMount) => "sensor.mount.source",
        SysOp::Syscall(SyscallOp::InitModule | SyscallOp::FinitModule) => "sensor.module.params",
        SysOp::Syscall(SyscallOp::DeleteModule) => "sensor.module.name",
        SysOp::Syscall(SyscallOp::MemfdCreate) => "sensor.memfd.name",
        _ => "sensor.bpf.name",
    }
}

/// `MOUNT_ATTR_*` bits by name (include/uapi/linux/mount.h), an unknown
/// one as hex. The access-time mode is a 3-bit field, not flags: only its
/// noatime and strictatime values have bits to name.
fn mount_attributes(bits: u64) -> Vec<String> {
    const NAMES: [(u64, &str); 9] = [
        (0x1, "rdonly"),
        (0x2, "nosuid"),
        (0x4, "nodev"),
        (0x8, "noexec"),
        (0x10, "noatime"),
        (0x20, "strictatime"),
        (0x80, "nodiratime"),
        (0x10_0000, "idmap"),
        (0x20_0000, "nosymfollow"),
    ];
    let mut names: Vec<String> = NAMES
        .iter()
        .filter(|(bit, _)| bits & bit != 0)
        .map(|(_, name)| (*name).to_owned())
        .collect();
    let unknown = bits & !NAMES.iter().fold(0, |a, (bit, _)| a | bit);
    if unknown != 0 {
        names.push(format!("{unknown:#x}"));
    }
    names
}

/// The kernel's `enum trace_signal_result`.
fn signal_result(r: u64) -> &'static str {
    match r {
        0 => "delivered",
        1 => "ignored",
        2 => "already_pending",
        3 => "overflow_fail",
        4 => "lose_info",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_low_byte_is_its_exit_signal_not_a_time_namespace() {
        let flags = (libc::CLONE_NEWUSER | libc::CLONE_NEWNS) as u64 | 0x80;
        assert_eq!(created_namespaces(SyscallOp::Clone, flags), ["mnt", "user"]);
        for op in [SyscallOp::Unshare, SyscallOp::Clone3] {
            assert_eq!(created_namespaces(op, flags), ["mnt", "user", "time"]);
        }
    }

    #[test]
    fn a_creation_names_what_the_kernel_made_and_what_was_asked_where_they_differ() {
        let (uts, net) = (libc::CLONE_NEWUTS as u64, libc::CLONE_NEWNET as u64);
        let shown = |d: NamespaceDetail| (d.types, d.requested);
        // No fork seen (an unshare, a failed clone): what was asked.
        assert_eq!(shown(creation(vec!["net"], None)), (vec!["net"], None));
        // Made as asked: nothing more.
        assert_eq!(shown(creation(vec!["net"], Some(net))), (vec!["net"], None));
        // Flags changed under the sensor's read, or not readable at all.
        assert_eq!(
            shown(creation(vec!["uts"], Some(net | uts))),
            (vec!["uts", "net"], Some(vec!["uts"]))
        );
        assert_eq!(
            shown(creation(Vec::new(), Some(net))),
            (vec!["net"], Some(Vec::new()))
        );
    }

    #[test]
    fn a_setns_entered_the_namespaces_whose_inodes_changed() {
        let bytes =
            |inodes: [u32; 8]| -> Vec<u8> { inodes.iter().flat_map(|i| i.to_le_bytes()).collect() };
        let before = bytes([1, 2, 3, 4, 5, 6, 7, 8]);
        // net (7th) and time (8th) changed; cgroup (2nd) unreadable after.
        let after = bytes([1, 0, 3, 4, 5, 6, 70, 80]);
        assert_eq!(
            entered_namespaces(&before, &after),
            [("net", 70), ("time", 80)]
        );
        assert!(entered_namespaces(&before, &before).is_empty());
        // A failed call has no "after"; an older record neither.
        assert!(entered_namespaces(&before, &[]).is_empty());
        assert!(entered_namespaces(b"/some/path", &after).is_empty());
        assert_eq!(now_in(&after, "net"), Some(("net", 70)));
        assert_eq!(now_in(&after, "cgroup"), None);
        assert_eq!(now_in(&[], "net"), None);
    }

    /// Every field `escaped_fields` can list is found under its name in
    /// the JSON, escaped; and only fields that are not UTF-8 are listed.
    #[test]
    fn escaped_fields_name_where_the_escaped_bytes_are() {
        let bad = || Text(b"a\xffb".to_vec());
        let some = || Some(bad());
        let mut io_uring = IoUringDetail::of_opcode(18);
        (io_uring.path_argument, io_uring.target) = (some(), some());
        io_uring.target_argument = some();
        io_uring.xattr = Some(crate::pipeline::file::xattr(bad().0, None, None));
        let sensor = SensorFields {
            module: Some(ModuleDetail {
                name: some(),
                name_argument: some(),
                params: some(),
                ..ModuleDetail::default()
            }),
            memfd: Some(MemfdDetail {
                name: bad(),
                flags: 0,
            }),
            mount: Some(Box::new(MountDetail {
                target: bad(),
                target_argument: some(),
                source: some(),
                source_argument: some(),
                fstype: some(),
                ..MountDetail::default()
            })),
            process_access: Some(ProcessAccess {
                object: some(),
                ..ProcessAccess::default()
            }),
            kexec: Some(KexecDetail {
                cmdline: some(),
                ..KexecDetail::default()
            }),
            io_uring: Some(io_uring),
            bpf: Some(BpfDetail {
                command: "prog_load",
                prog_type: None,
                attach_type: None,
                name: some(),
            }),
            ..SensorFields::default()
        };
        let file = File {
            path: some(),
            target_path: some(),
            ..File::default()
        };
        let destination = Endpoint {
            address: some(),
            ..Endpoint::default()
        };
        let listed = escaped_fields(&sensor, Some(&file), Some(&destination));
        assert_eq!(listed.len(), 19, "{listed:?}");
        let json = serde_json::json!({
            "sensor": sensor,
            "file": file,
            "destination": destination,
        });
        for field in &listed {
            let value = field.split('.').fold(&json, |v, k| &v[k]);
            assert_eq!(value, "a\\xffb", "{field}");
        }
        let fine = SensorFields {
            memfd: Some(MemfdDetail {
                name: Text(b"payload".to_vec()),
                flags: 0,
            }),
            ..SensorFields::default()
        };
        assert!(escaped_fields(&fine, None, None).is_empty());
    }

    /// The field a cut string went to, for each kind of record that has
    /// more than one string.
    #[test]
    fn a_cut_string_is_named_by_the_field_it_went_to() {
        use sensor_common::io_uring::op;
        let record = |op: SysOp, args: [u64; 4], path: &[u8]| SysRecord {
            truncated: true,
            ..sys_record(op, args, path)
        };
        let long = vec![b'a'; sensor_common::SYS_STR0_CAP - 1];
        let cases = [
            (
                SysOp::IoUringComplete,
                [op::OPENAT as u64, 0, 0, 0],
                &b"/x"[..],
                "file.path",
            ),
            (
                SysOp::IoUring,
                [op::OPENAT as u64, 0, 0, 0],
                &long[..],
                "file.path",
            ),
            (
                SysOp::IoUring,
                [op::FTRUNCATE as u64, 3, 0, 1],
                b"/x",
                "file.path",
            ),
            (
                SysOp::IoUring,
                [op::SYMLINKAT as u64, 0, 0, 0],
                b"/x",
                "file.target_path",
            ),
            (
                SysOp::IoUring,
                [op::RENAMEAT as u64, 0, 0, 0],
                b"/x",
                "sensor.io_uring.target",
            ),
            (
                SysOp::Syscall(SyscallOp::FinitModule),
                [0; 4],
                &long[..],
                "file.path",
            ),
            (
                SysOp::Syscall(SyscallOp::FinitModule),
                [0; 4],
                b"/x",
                "sensor.module.params",
            ),
            (
                SysOp::Syscall(SyscallOp::Mount),
                [0; 4],
                &long[..],
                "sensor.mount.target",
            ),
            (
                SysOp::Syscall(SyscallOp::Mount),
                [0; 4],
                b"/x",
                "sensor.mount.source",
            ),
            (
                SysOp::Syscall(SyscallOp::DeleteModule),
                [0; 4],
                b"",
                "sensor.module.name",
            ),
            (
                SysOp::Syscall(SyscallOp::MemfdCreate),
                [0; 4],
                b"",
                "sensor.memfd.name",
            ),
        ];
        for (op, args, path, want) in cases {
            assert_eq!(
                truncated_field(&record(op, args, path)),
                want,
                "{op:?} {args:?}"
            );
        }
        // A long directory walked for a rename's or hard link's relative
        // second path, the first being absolute: it is the second's that
        // was cut; where the first is relative, the first's.
        let deep = vec![b'd'; sensor_common::PATH_CAP - 1];
        for (opcode, first, want) in [
            (op::RENAMEAT, &b"/x"[..], "sensor.io_uring.target"),
            (op::LINKAT, b"/x", "file.target_path"),
            (op::RENAMEAT, b"x", "file.path"),
            (op::LINKAT, b"x", "file.path"),
        ] {
            let x = SysRecord {
                name: b"y".to_vec(),
                base: deep.clone(),
                ..record(SysOp::IoUring, [opcode as u64, 0, 0, 0], first)
            };
            assert_eq!(truncated_field(&x), want, "{opcode} {first:?}");
        }
    }

    /// A record of `op` with `args` and `path`, its other fields empty.
    fn sys_record(op: SysOp, args: [u64; 4], path: &[u8]) -> SysRecord {
        SysRecord {
            boot_ns: 0,
            // SAFETY: TaskInfo is plain integers and byte arrays.
            task: unsafe { std::mem::zeroed() },
            op,
            ret: 0,
            args,
            path: path.to_vec(),
            name: Vec::new(),
            fstype: Vec::new(),
            base: Vec::new(),
            truncated: false,
            unreadable: false,
            namespaces_made: None,
            target_unknown: false,
            fixed_file: false,
            argument_ignored: false,
            other_names: false,
            base2_unknown: false,
            second_is_file: false,
            base2: Vec::new(),
            socket: None,
            module_name: None,
        }
    }

    fn taken(ret: i64, mode: u32, ino: u64, path: &[u8]) -> (Option<Text>, Option<Text>) {
        let op = SysOp::Syscall(SyscallOp::PidfdGetfd);
        taken_file(&SysRecord {
            ret,
            ..sys_record(op, [3, 1, u64::from(mode), ino], path)
        })
    }

    #[test]
    fn a_taken_file_without_a_path_is_named_as_proc_names_it() {
        let text = |s: &str| Some(Text(s.as_bytes().to_vec()));
        assert_eq!(
            taken(5, libc::S_IFREG | 0o600, 7, b"/etc/shadow"),
            (text("/etc/shadow"), None)
        );
        assert_eq!(
            taken(5, libc::S_IFSOCK | 0o777, 42, b"/TCP"),
            (None, text("socket:[42]"))
        );
        assert_eq!(
            taken(5, libc::S_IFIFO | 0o600, 43, b"/"),
            (None, text("pipe:[43]"))
        );
        // A named FIFO keeps its path.
        assert_eq!(
            taken(5, libc::S_IFIFO | 0o644, 44, b"/run/fifo"),
            (text("/run/fifo"), None)
        );
        assert_eq!(
            taken(5, 0o600, 1, b"/[eventfd]"),
            (None, text("anon_inode:[eventfd]"))
        );
        // Refused: nothing was taken.
        assert_eq!(taken(-1, 0, 0, b""), (None, None));
    }

    /// A module load or unload names the module as the kernel had it; an
    /// unload whose argument said another (a thread rewrote it) keeps the
    /// argument aside; without the kernel's name, the argument.
    #[test]
    fn a_module_is_named_as_the_kernel_had_it() {
        use crate::event::{Agent, Host};
        use crate::source::ebpf::decode::KernelEvent;
        let mut p = super::Pipeline::new(Host::named("t"), Agent::named("t"), 64, 4, 100);
        let mut module = |op, argument: &[u8], kernel: Option<&[u8]>| {
            let x = SysRecord {
                name: argument.to_vec(),
                module_name: kernel.map(<[u8]>::to_vec),
                ..sys_record(SysOp::Syscall(op), [0; 4], b"")
            };
            let ev = p.handle(KernelEvent::System(x)).expect("an event");
            let json = serde_json::to_value(&ev).expect("encodes");
            let at = |f: &str| json["sensor"]["module"][f].as_str().map(str::to_owned);
            (at("name"), at("name_argument"))
        };
        let some = |s: &str| Some(s.to_owned());
        assert_eq!(
            module(SyscallOp::InitModule, b"", Some(b"nlmon")),
            (some("nlmon"), None)
        );
        assert_eq!(
            module(SyscallOp::InitModule, b"debug=1", None),
            (None, None)
        );
        assert_eq!(
            module(SyscallOp::DeleteModule, b"nlmon", Some(b"rootkit")),
            (some("rootkit"), some("nlmon"))
        );
        assert_eq!(
            module(SyscallOp::DeleteModule, b"nlmon", Some(b"nlmon")),
            (some("nlmon"), None)
        );
        assert_eq!(
            module(SyscallOp::DeleteModule, b"nlmon", None),
            (some("nlmon"), None)
        );
    }

    #[test]
    fn a_memory_file_is_named_by_how_it_was_opened() {
        // FMODE_READ 1, FMODE_WRITE 2, with other f_mode bits around them.
        assert_eq!(memory_open_mode(0x1), "read");
        assert_eq!(memory_open_mode(0x2), "write");
        assert_eq!(memory_open_mode(0x3), "read_write");
        assert_eq!(memory_open_mode(0x4_801d), "read");
        assert_eq!(memory_open_mode(0x4_801f), "read_write");
    }

    #[test]
    fn mount_attributes_are_named_and_unknown_bits_kept() {
        assert!(mount_attributes(0).is_empty());
        assert_eq!(mount_attributes(0x1 | 0x8), ["rdonly", "noexec"]);
        assert_eq!(
            mount_attributes(0x10_0000 | 0x20_0000 | 0x4000),
            ["idmap", "nosymfollow", "0x4000"]
        );
    }
}
