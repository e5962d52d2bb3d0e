//! The public event schema: ECS-shaped JSON (see DESIGN.md section 4).
//!
//! Field names follow the Elastic Common Schema where it has the field;
//! everything ECS lacks lives under `sensor.*`. These types are only built
//! by the pipeline and only read by sinks.

pub mod audit;
pub mod caps;
pub mod frozen;
pub mod text;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

pub use audit::{AuditFields, AuditRecord, AuditStatus};
pub use frozen::{Frozen, Shared};
pub use text::Text;

/// One finished event.
#[derive(Debug, Serialize)]
pub struct Event {
    #[serde(rename = "@timestamp")]
    pub timestamp: String,
    pub event: EventMeta,
    pub host: Arc<Frozen<Host>>,
    pub agent: Arc<Frozen<Agent>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process: Option<Process>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<Container>,
    /// ECS `orchestrator.*`: the Kubernetes pod of the container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub orchestrator: Option<Orchestrator>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<File>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorInfo>,
    /// ECS `source.*`/`destination.*`: a connection's initiator and target;
    /// for a login, where it came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Endpoint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination: Option<Endpoint>,
    /// ECS `server.*`: the address a bind or listen serves on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<Endpoint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<Network>,
    /// ECS `user.*`: the user an authentication, session or account event
    /// is about (not necessarily the process's user).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<User>,
    #[serde(skip_serializing_if = "SensorFields::is_empty")]
    pub sensor: SensorFields,
}

impl Event {
    /// An event with only its envelope; callers fill the rest with struct
    /// update syntax, so that a new optional section does not touch them.
    pub fn new(
        timestamp: String,
        event: EventMeta,
        host: Arc<Frozen<Host>>,
        agent: Arc<Frozen<Agent>>,
    ) -> Event {
        Event {
            timestamp,
            event,
            host,
            agent,
            process: None,
            container: None,
            orchestrator: None,
            file: None,
            error: None,
            source: None,
            destination: None,
            server: None,
            network: None,
            user: None,
            sensor: SensorFields::default(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct EventMeta {
    pub kind: &'static str,
    pub category: &'static [&'static str],
    #[serde(rename = "type")]
    pub type_: &'static [&'static str],
    pub action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<&'static str>,
    pub sequence: u64,
    pub id: String,
    pub module: &'static str,
}

#[derive(Debug, Serialize)]
pub struct Host {
    pub name: String,
    /// `/etc/machine-id`.
    pub id: String,
    pub boot_id: String,
    pub os: HostOs,
}

#[derive(Debug, Serialize)]
pub struct HostOs {
    pub kernel: String,
    #[serde(rename = "type")]
    pub type_: &'static str,
    /// From os-release (`NAME`, `VERSION`, `ID`, `PRETTY_NAME`); absent
    /// when the host has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full: Option<String>,
}

impl Host {
    /// A host known by a name only: for benchmarks and tests, and where
    /// the real one cannot be read.
    pub fn named(name: &str) -> Host {
        Host {
            name: name.into(),
            id: name.into(),
            boot_id: name.into(),
            os: HostOs {
                kernel: "unknown".into(),
                type_: "linux",
                name: None,
                version: None,
                platform: None,
                full: None,
            },
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Agent {
    pub name: &'static str,
    #[serde(rename = "type")]
    pub type_: &'static str,
    pub version: &'static str,
    pub id: String,
}

impl Agent {
    /// This build's agent under the instance id `id` (benchmarks, tests).
    pub fn named(id: &str) -> Agent {
        Agent {
            name: "sensor",
            type_: "sensor",
            version: env!("CARGO_PKG_VERSION"),
            id: id.into(),
        }
    }
}

/// ECS `process.*`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Process {
    pub pid: u32,
    pub entity_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<Shared<Text>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executable: Option<Shared<Text>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<Shared<Vec<Text>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args_count: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_directory: Option<Shared<Text>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// ECS: `process.user` is the effective user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<Shared<Id>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub real_user: Option<Shared<Id>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub saved_user: Option<Shared<Id>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<Shared<Id>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub real_group: Option<Shared<Id>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub saved_group: Option<Shared<Id>>,
    /// Shared by every event of the process's children (see `Frozen`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<Arc<Frozen<Process>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread: Option<Thread>,
    /// ECS `process.hash`: of the file the process executes (`[process]
    /// hash_executables`); when it cannot be given, `sensor.hash_unavailable`
    /// says why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash: Option<ProcessHash>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProcessHash {
    pub sha256: std::sync::Arc<str>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Thread {
    pub id: u32,
}

/// ECS `container.*`: the container the process runs in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Container {
    pub id: String,
    pub runtime: &'static str,
    /// From the runtime (see `enrich::runtime`), when it could be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<Text>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<ContainerImage>,
    #[serde(skip_serializing_if = "Labels::is_empty")]
    pub labels: Labels,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerImage {
    pub name: Text,
}

/// Key-value pairs chosen by whoever started a container, as a JSON
/// object; keys are unique. Shared: one container's events all carry them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Labels(pub Arc<[(Text, Text)]>);

impl Labels {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Labels {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0.iter() {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// ECS `orchestrator.*`: `type` is `kubernetes`, the resource a pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Orchestrator {
    #[serde(rename = "type")]
    pub type_: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<Text>,
    pub resource: OrchestratorResource,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrchestratorResource {
    #[serde(rename = "type")]
    pub type_: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<Text>,
    /// The pod's uid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<Text>,
}

/// ECS `file.*`: the file an event acted on, as it is after the event
/// where that is known.
#[derive(Debug, Clone, Default, Serialize)]
pub struct File {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<Text>,
    /// A link's target: the file a hard link names again, or the text a
    /// symlink points at (as written; relative to the link's directory).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_path: Option<Text>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inode: Option<String>,
    /// `major:minor` of the filesystem's device.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Octal permission bits, ECS style (`"4755"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<Arc<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gid: Option<Arc<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<Arc<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<Arc<str>>,
}

/// One end of a connection. ECS keeps the raw address (an IP or a unix
/// socket path) in `address`, and the IP and port apart.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<Text>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<std::net::IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// A host name the reporter resolved (a login's remote host).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<Text>,
}

/// ECS `network.*`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Network {
    /// `tcp`, `udp`, or the IANA protocol number as text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transport: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iana_number: Option<String>,
    /// `ipv4`, `ipv6` or `unix`.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<&'static str>,
    /// Host-based: `egress` (this host connects out) or `ingress`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction: Option<&'static str>,
}

/// ECS `error.*`: why an action failed (`event.outcome: failure`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorInfo {
    /// The errno name, e.g. `EPERM`.
    pub code: String,
    pub message: String,
}

/// A user or group: ECS keeps ids as strings. Shared strings: every
/// event carries six or more of these, cloned from a cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Id {
    pub id: Arc<str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<Arc<str>>,
}

/// ECS `user.*`: an id, a name, or both (a failed login names a user
/// that may not exist).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<Text>,
}

/// Everything ECS has no field for.
#[derive(Debug, Default, Serialize)]
pub struct SensorFields {
    /// Audit login uid of the process, if set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login_user: Option<Shared<Id>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<u32>,
    /// Controlling terminal, e.g. `/dev/pts/3`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tty: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<Cgroup>,
    /// Filesystem ids, when they differ from the effective ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fs_user: Option<Shared<Id>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fs_group: Option<Shared<Id>>,
    /// Ancestors beyond `process.parent`, nearest first, bounded by config;
    /// absent when there are none. Shared like `process.parent`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ancestors: Option<Arc<Frozen<Vec<Ancestor>>>>,
    /// Length in bytes of the whole argv in the process, set when
    /// `process.args` is truncated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args_bytes: Option<u32>,
    /// Fields whose values are incomplete (the kernel side hit a bound).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub truncated: Vec<&'static str>,
    /// Fields left out because their source did not answer in time:
    /// `container.labels` when podman's API service did not (its labels
    /// are only there; looked up again later).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unavailable: Vec<&'static str>,
    /// Fields holding invalid UTF-8, escaped as described in `event::text`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub escaped: Vec<String>,
    /// On exit: the signal that ended the process.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<Signal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub core_dumped: Option<bool>,
    /// On a loss event: what was dropped, where, and how much.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost: Option<Lost>,
    /// On a probe-error event: in-kernel read failures since the last report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe_error: Option<ProbeErrorCount>,
    /// The syscall behind a syscall event (`fchmodat`, `setresuid`…).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub syscall: Option<&'static str>,
    /// `ia32` when the syscall came through the 32-bit ABI (`int 0x80`, a
    /// 32-bit program): rare on a 64-bit host, and a way to slip past
    /// tools that only watch the native syscall table.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub syscall_abi: Option<&'static str>,
    /// On a file attribute change: before, requested, special bits, xattr.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_change: Option<Box<FileChange>>,
    /// On a credential change: ids and capabilities before and after.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cred_change: Option<Box<CredChange>>,
    /// The process gained root or capabilities on this event; `via` says
    /// how (`exec` of a setuid/file-capability program, or `unexplained`:
    /// no credential syscall or exec accounts for it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub privilege_gain: Option<PrivilegeGain>,
    /// The executable ran without a name on disk: `memfd` (memfd_create)
    /// or `deleted` (unlinked after it was opened). Fileless execution.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fileless: Option<&'static str>,
    /// Why `process.hash` is absent though hashing is on: `pending` (not
    /// computed yet; later events of the process carry it), `exited` (gone
    /// before its executable could be opened), `superseded` (it had exec'd
    /// another program by then), `too_large`, `unreadable`, `timeout`,
    /// `queue_full`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash_unavailable: Option<&'static str>,
    /// ptrace: the process attached to; process_vm_readv/writev and a
    /// `/proc/PID/mem` open: the process whose memory was reached;
    /// pidfd_getfd: the process an open file was taken from (all under
    /// the same permission as a ptrace attach); setns with a pidfd: the
    /// process whose namespaces were entered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ptrace_target: Option<Ancestor>,
    /// How another process was reached without ptrace, where the target
    /// alone does not say it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process_access: Option<ProcessAccess>,
    /// kexec_load/kexec_file_load: the kernel loaded to boot into.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kexec: Option<KexecDetail>,
    /// setns: the namespaces entered; unshare, clone, clone3: those made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<NamespaceDetail>,
    /// Kernel module load or unload, memfd_create, mount/umount, bpf():
    /// what the call named.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub module: Option<ModuleDetail>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memfd: Option<MemfdDetail>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mount: Option<Box<MountDetail>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpf: Option<BpfDetail>,
    /// An io_uring request: its operation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub io_uring: Option<IoUringDetail>,
    /// A signal to the sensor: how the kernel handled it (`delivered`,
    /// `ignored`, `already_pending`…).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal_result: Option<&'static str>,
    /// A write to a watched path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_write: Option<Box<FileWrite>>,
    /// What ECS `network.*` has no field for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkDetail>,
    /// On a loss event after a crash: the sequence numbers, first to last,
    /// that never reached the sink's spool.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gap: Option<SequenceGap>,
    /// On a heartbeat: the sensor's counters, so that a collector can tell
    /// a quiet host from a dead sensor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heartbeat: Option<Box<Heartbeat>>,
    /// On an event from the kernel audit subsystem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit: Option<Box<AuditFields>>,
    /// On an `audit_status` metric event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_status: Option<AuditStatus>,
}

impl SensorFields {
    pub fn is_empty(&self) -> bool {
        let SensorFields {
            login_user,
            session_id,
            tty,
            cgroup,
            fs_user,
            fs_group,
            ancestors,
            args_bytes,
            truncated,
            unavailable,
            escaped,
            signal,
            core_dumped,
            lost,
            probe_error,
            syscall,
            syscall_abi,
            file_change,
            cred_change,
            privilege_gain,
            fileless,
            hash_unavailable,
            ptrace_target,
            process_access,
            namespace,
            kexec,
            module,
            memfd,
            mount,
            bpf,
            io_uring,
            signal_result,
            file_write,
            network,
            gap,
            heartbeat,
            audit,
            audit_status,
        } = self;
        login_user.is_none()
            && session_id.is_none()
            && tty.is_none()
            && cgroup.is_none()
            && fs_user.is_none()
            && fs_group.is_none()
            && ancestors.is_none()
            && args_bytes.is_none()
            && truncated.is_empty()
            && unavailable.is_empty()
            && escaped.is_empty()
            && signal.is_none()
            && core_dumped.is_none()
            && lost.is_none()
            && probe_error.is_none()
            && syscall.is_none()
            && syscall_abi.is_none()
            && file_change.is_none()
            && cred_change.is_none()
            && privilege_gain.is_none()
            && fileless.is_none()
            && hash_unavailable.is_none()
            && ptrace_target.is_none()
            && process_access.is_none()
            && namespace.is_none()
            && kexec.is_none()
            && module.is_none()
            && memfd.is_none()
            && mount.is_none()
            && bpf.is_none()
            && io_uring.is_none()
            && signal_result.is_none()
            && file_write.is_none()
            && network.is_none()
            && gap.is_none()
            && heartbeat.is_none()
            && audit.is_none()
            && audit_status.is_none()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Cgroup {
    pub path: Text,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Ancestor {
    pub pid: u32,
    pub entity_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executable: Option<Text>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<Text>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Signal {
    pub number: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'static str>,
}

/// A loss report: `count` events of `kind` were dropped at `source`.
#[derive(Debug, Clone, Serialize)]
pub struct Lost {
    pub source: &'static str,
    pub kind: &'static str,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProbeErrorCount {
    pub kind: &'static str,
    pub count: u64,
}

/// `sensor.file_change`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FileChange {
    /// The path as the caller passed it, when `file.path` differs from it
    /// (a relative path, joined here to the directory it starts from; one
    /// spelled otherwise than where it leads, `//`, `/./`, `/../`, made
    /// normal; one whose `..` follows a name, or through a magic link,
    /// followed again).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_argument: Option<Text>,
    /// Why such a path could not be followed again (as
    /// `sensor.file_write.unresolved`): `file.path` is then made normal
    /// lexically.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unresolved: Option<&'static str>,
    /// The file as it was before the call; absent where the hook could not
    /// see the inode (see `sensor.unavailable`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<FileAttrs>,
    /// What the call asked for.
    pub requested: Requested,
    /// setuid, setgid and sticky bits of the requested mode (chmod).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub special_bits: Vec<&'static str>,
    /// Special bits set by this call that were not set before.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub special_bits_added: Vec<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub special_bits_removed: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub xattr: Option<Xattr>,
    /// Fields this hook cannot provide (e.g. `before` for a path-based
    /// call seen from a syscall tracepoint).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unavailable: Vec<&'static str>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileAttrs {
    pub mode: String,
    pub uid: Shared<Id>,
    pub gid: Shared<Id>,
    /// The file's names (hard links): more than one, and a path filter
    /// that matched this name may not have matched the others.
    pub links: u32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub special_bits: Vec<&'static str>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Requested {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<Shared<Id>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gid: Option<Shared<Id>>,
}

/// An extended attribute set or removed.
#[derive(Debug, Clone, Serialize)]
pub struct Xattr {
    pub name: Text,
    /// The value's length as passed (absent for a removal).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u32>,
    /// The value's bytes in hex (up to the kernel side's cap).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_hex: Option<String>,
    /// `security.capability` decoded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<caps::FileCaps>,
    /// The caller's memory held another name or value when the sensor read
    /// it at the call's entry than the kernel copied, and reported here: a
    /// thread rewrote it under the call, to pass the change off as another
    /// (or as one not worth reporting). Told where fentry loads.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub rewritten: bool,
}

/// `sensor.cred_change`.
#[derive(Debug, Clone, Serialize)]
pub struct CredChange {
    /// The id arguments as passed, by name (`-1`, "unchanged", left out).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub requested: BTreeMap<&'static str, u32>,
    pub before: CredIds,
    pub after: CredIds,
    /// Names of the ids that changed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changed: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capabilities_before: Option<caps::CapSets>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capabilities_after: Option<caps::CapSets>,
    /// The call made the process root (any of uid/euid/suid/fsuid 0 now,
    /// none before).
    pub gained_root: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CredIds {
    pub uid: u32,
    pub euid: u32,
    pub suid: u32,
    pub fsuid: u32,
    pub gid: u32,
    pub egid: u32,
    pub sgid: u32,
    pub fsgid: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct PrivilegeGain {
    pub via: &'static str,
    pub before: Gain,
    pub after: Gain,
}

#[derive(Debug, Clone, Serialize)]
pub struct Gain {
    pub uid: u32,
    pub euid: u32,
    /// Permitted capabilities, by name.
    pub capabilities: Vec<&'static str>,
}

/// `sensor.network`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NetworkDetail {
    /// The socket's fd in the process (accept: the listening socket's);
    /// absent where no call named it (a connect seen from the socket's
    /// state change: `without_connect`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fd: Option<i32>,
    /// `stream`, `dgram`, `seqpacket`, `raw`…
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket_type: Option<&'static str>,
    /// A non-blocking connect that returned EINPROGRESS: its end is a
    /// later `connect_completed` event.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub in_progress: bool,
    /// A TCP connect seen as its socket started connecting (its state
    /// change to SYN_SENT), in a task that was in no connect call the
    /// sensor saw: a send with `MSG_FASTOPEN` (`fast_open`) connects a
    /// socket without one (an io_uring connect's socket is left to the
    /// ring's events, unless it is a registered file of the ring). Its end
    /// is a `connect_completed`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub without_connect: bool,
    /// With `without_connect`: the socket had a TCP Fast Open request
    /// pending as it started connecting (sendto or sendmsg with
    /// `MSG_FASTOPEN`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub fast_open: bool,
    /// On `connect_completed`: the `event.id` of the connect it ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completes: Option<String>,
    /// accept: the new connection's fd.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accepted_fd: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backlog: Option<u32>,
    /// A packet socket's protocol, the EtherType of the frames it gets
    /// (host order): 3 (`ETH_P_ALL`) every frame of every protocol, 0 none
    /// until a bind names one, 0x0800 IPv4, 0x86DD IPv6, 0x0806 ARP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ethertype: Option<u16>,
    /// An address family the sensor does not decode, by number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family: Option<u16>,
    /// connect, bind: the address in the caller's memory when the sensor
    /// read it at the call's entry, where the call used another (the
    /// kernel's own copy, or the socket's end): the trace of a thread
    /// rewriting it under the call to pass one destination off as another.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub argument_address: Option<Endpoint>,
}

/// `sensor.module`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ModuleDetail {
    /// The module's name as the kernel has it, where the call got that far
    /// (a load: once the kernel formed the module, also when its init then
    /// failed; an unload: once it freed it); else delete_module's argument.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<Text>,
    /// delete_module: the name in the caller's memory when the sensor read
    /// it at the call's entry, where the kernel unloaded another: a thread
    /// rewrote it under the call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name_argument: Option<Text>,
    /// Load parameters as passed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub params: Option<Text>,
    /// init_module: the image's length (the image itself is in memory).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_bytes: Option<u64>,
}

/// `sensor.memfd`.
#[derive(Debug, Clone, Serialize)]
pub struct MemfdDetail {
    pub name: Text,
    pub flags: u64,
}

/// `sensor.mount`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MountDetail {
    /// The mount point: the target joined to the cwd or the dirfd when it
    /// was relative, the dirfd's own path when it was empty.
    pub target: Text,
    /// The target as the caller passed it, when `target` had to join it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_argument: Option<Text>,
    /// The device or name mounted; for a bind or move mount(2), the path
    /// the kernel used: joined to the cwd when relative.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Text>,
    /// The source as the caller passed it, when `source` had to join it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_argument: Option<Text>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fstype: Option<Text>,
    pub flags: u64,
    /// mount_setattr: the `MOUNT_ATTR_*` set and cleared, by name
    /// (lower case, without the prefix; an unknown bit as hex).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attributes_set: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attributes_cleared: Vec<String>,
    /// mount_setattr: the propagation asked for (`MS_SHARED` and co.).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub propagation: Option<u64>,
}

/// `sensor.process_access`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProcessAccess {
    /// pidfd_getfd: the fd number taken, in the target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fd: Option<u64>,
    /// pidfd_getfd of a file with no path, named as `/proc/PID/fd` names
    /// it: `socket:[INODE]`, `pipe:[INODE]`, `anon_inode:[eventfd]`. (A
    /// file with a path has it in `file.path`.)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<Text>,
    /// A `/proc/PID/mem` open: `read`, `write` or `read_write`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<&'static str>,
    /// pidfd_getfd: the pidfd named the caller's own process when the
    /// sensor read it at the call's entry, but the file taken is not one
    /// of the caller's: another thread put another process's pidfd under
    /// the fd's number before the kernel read it, to pass a theft off as
    /// a process copying its own file. Where it came from is unknown
    /// (no `sensor.ptrace_target`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub target_unknown: bool,
}

/// `sensor.kexec` (the kernel file, for kexec_file_load, is `file.path`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct KexecDetail {
    /// kexec_load: how many memory segments the image came in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segments: Option<u64>,
    /// `KEXEC_*` / `KEXEC_FILE_*` flags (`KEXEC_ON_CRASH`, an unload…).
    pub flags: u64,
    /// kexec_file_load: the new kernel's command line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cmdline: Option<Text>,
}

/// `sensor.namespace`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NamespaceDetail {
    /// The types entered (`mnt`, `pid`, `net`…): as the call asked, or
    /// for a namespace fd with any type allowed, the host's namespace's;
    /// for `namespace_create`, the types made.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<&'static str>,
    /// For `namespace_create`: what the call's flags asked for when the
    /// sensor read them at its entry, where that differs from `types`,
    /// what the kernel made (seen at the fork). An empty list: they asked
    /// for none. A clone3's flags are in the caller's memory, so this is
    /// the trace of a race aimed at hiding the creation (or of a record
    /// the sensor lost, counted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested: Option<Vec<&'static str>>,
    /// For `namespace_create`: the namespaces made, by type, as
    /// inode numbers (`/proc/PID/ns` shows `user:[4026532201]`), which a
    /// later `namespace_enter` (its `inode`) or a container's processes
    /// name them by.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub inodes: BTreeMap<&'static str, u64>,
    /// For `namespace_enter`: the namespace the fd argument named when the
    /// sensor read it at the call's entry, where the call entered another
    /// (`inode`): the trace of a file swapped under the fd's number to
    /// pass one namespace off as another.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub argument_inode: Option<u64>,
    /// The namespace entered, by inode number (as `/proc/PID/ns` shows
    /// it: `net:[4026531840]`): where a successful call moved the caller
    /// into one type, the one it is in now; else the namespace fd's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inode: Option<u64>,
    /// Whether what was entered is the host's (init's) namespace: from a
    /// container, an escape.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<bool>,
}

/// `sensor.io_uring`.
#[derive(Debug, Clone, Serialize)]
pub struct IoUringDetail {
    /// `IORING_OP_*` number.
    pub opcode: u8,
    /// Its name without the prefix, lower case (`openat`, `connect`).
    pub operation: &'static str,
    /// The path as the request gave it, where `file.path` differs: joined
    /// to the cwd or `dirfd`, or made normal (`//`, `/./`, `/../` taken
    /// out; one whose `..` follows a name, or through a magic link,
    /// followed again); on an open's completion, the submission's
    /// path where the file opened is another (through a symlink).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_argument: Option<Text>,
    /// Why such a path (or a rename's or hard link's second path, followed
    /// the same way) could not be followed (as
    /// `sensor.file_write.unresolved`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unresolved: Option<&'static str>,
    /// The directory fd a relative path starts from (absent: the cwd).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dirfd: Option<i32>,
    /// fsetxattr, ftruncate: the fd of the file acted on (`file.path`
    /// names it), or the index of one of the ring's registered files
    /// (`fixed_file`, whose path is not read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fd: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fixed_file: Option<u32>,
    /// ftruncate: the length the file is cut or extended to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub length: Option<i64>,
    /// A rename's new name, joined to its directory (`target_dirfd`, or
    /// the cwd) where relative, and made normal; as given where that
    /// directory could not be walked. A
    /// hard link's existing file is `file.target_path`, joined the same
    /// way.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<Text>,
    /// That second path (a rename's new name, a hard link's existing
    /// file) as the request gave it, where the one shown differs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_argument: Option<Text>,
    /// The directory fd that second path starts from where relative
    /// (absent: the cwd).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_dirfd: Option<i32>,
    /// renameat: its `RENAME_*` flags by name (`RENAME_EXCHANGE`: the two
    /// names swap what they hold; `RENAME_NOREPLACE`, `RENAME_WHITEOUT`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rename_flags: Vec<&'static str>,
    /// linkat: its `AT_*` flags by name (`AT_EMPTY_PATH`: `file.target_path`
    /// is the file open at `target_dirfd`; `AT_SYMLINK_FOLLOW`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub link_flags: Vec<&'static str>,
    /// openat/openat2: the access mode and flags, by name.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub open_flags: Vec<&'static str>,
    /// The mode of a file or directory it creates, in octal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// setxattr/fsetxattr: the name and value the kernel copied when it
    /// prepared the request (what it sets), `security.capability`
    /// decoded, as `sensor.file_change.xattr`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub xattr: Option<Xattr>,
    /// On `io_uring_complete`: the `event.id` of the submission it ends
    /// (absent if the sensor did not see it, or forgot it at its bound).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completes: Option<String>,
    /// On `io_uring_complete`, where it succeeded: the result (openat,
    /// accept, socket: the new fd, or the fixed-file slot where one was
    /// asked for; a connect, unlink…: 0). A failure is in `error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<i64>,
    /// On `io_uring_complete`: the request stays armed and completes
    /// again (`IORING_CQE_F_MORE`: a multishot accept, per connection).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub multishot: bool,
    /// On an open's `io_uring_complete`: its path argument was under an
    /// ignored prefix, so its submission was not reported, but the file it
    /// opened (`file.path`) is not (a symlink led out): this event is the
    /// whole request. On an `io_uring` submission: its path argument is
    /// under an ignored prefix, but nothing tells where the request lands
    /// (an open whose success posts no completion, `IOSQE_CQE_SKIP_SUCCESS`;
    /// a rename, unlink, mkdir, symlink or link), so it is reported.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub path_argument_ignored: bool,
    /// On a connect's `io_uring_complete`: the address its submission
    /// read from the caller's memory (and reported as `destination`),
    /// where the socket connected elsewhere: a thread rewrote it after
    /// the kernel copied it, to pass the connection off as one to
    /// elsewhere. As `sensor.network.argument_address`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub argument_address: Option<Endpoint>,
}

impl IoUringDetail {
    /// What the opcode alone says.
    pub fn of_opcode(opcode: u8) -> IoUringDetail {
        IoUringDetail {
            opcode,
            operation: sensor_common::io_uring::name(opcode).unwrap_or("unknown"),
            path_argument: None,
            dirfd: None,
            fd: None,
            fixed_file: None,
            length: None,
            target: None,
            target_argument: None,
            target_dirfd: None,
            rename_flags: Vec::new(),
            link_flags: Vec::new(),
            open_flags: Vec::new(),
            mode: None,
            xattr: None,
            completes: None,
            result: None,
            multishot: false,
            path_argument_ignored: false,
            argument_address: None,
            unresolved: None,
        }
    }
}

/// `sensor.bpf`.
#[derive(Debug, Clone, Serialize)]
pub struct BpfDetail {
    /// `prog_load`, `prog_attach`, `link_create`, `raw_tracepoint_open`.
    pub command: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prog_type: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attach_type: Option<u64>,
    /// The program's name, or the raw tracepoint's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<Text>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SequenceGap {
    pub first: u64,
    pub last: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Heartbeat {
    pub interval_s: u64,
    pub uptime_s: u64,
    /// Events the sensor produced since it started.
    pub events: u64,
    pub sinks: Vec<SinkHeartbeat>,
    /// Container runtime lookups (filled by the pipeline).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_lookups: Option<ContainerLookups>,
    /// Processes read from /proc because an event named one the process
    /// table did not know (lost fork/exec records, eviction, an audit record
    /// ahead of the ring buffer), and events whose process was gone by then
    /// (emitted with what the kernel record holds). Filled by the pipeline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processes_adopted: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processes_unresolved: Option<u64>,
    /// chmod and chown events that crossed to userspace only for
    /// `[filter] ignore_path_prefixes` to decide, and were dropped here:
    /// the kernel side matches the file it resolved against prefixes that
    /// are directories (`/…/`); the others are matched here, at a cost
    /// this counts. Filled by the pipeline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_filter_userspace_drops: Option<u64>,
    /// Path arguments followed again because they may lead elsewhere than
    /// their bytes say (`sensor.file_write.unresolved` names why one
    /// could not be). Filled by the pipeline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_resolution: Option<crate::enrich::path_resolve::ResolveStats>,
    /// Symlinks seen made to lead through a magic link, whose paths the
    /// kernel's path check sends on (see `source::ebpf::magic_links`).
    /// Filled by the pipeline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub magic_links: Option<crate::source::ebpf::magic_links::MagicLinkStats>,
    /// Executable hashing (filled by the pipeline when it is on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executable_hashes: Option<ExecutableHashes>,
}

/// `process.hash` work since the sensor started (see `enrich::exehash`).
#[derive(Debug, Clone, Serialize)]
pub struct ExecutableHashes {
    #[serde(flatten)]
    pub counts: crate::enrich::exehash::HashStats,
    pub cached: usize,
}

/// Lookups of container names, images and pods since the sensor started.
#[derive(Debug, Clone, Serialize)]
pub struct ContainerLookups {
    pub found: u64,
    /// No runtime file knew the container: its events carry the id only.
    pub failed: u64,
    /// Cache entries dropped at the bound.
    pub evicted: u64,
    pub cached: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct SinkHeartbeat {
    pub name: &'static str,
    pub kind: &'static str,
    pub sent: u64,
    pub queue_dropped: u64,
    pub spool_dropped: u64,
    /// Events shortened to the sink's `max_message_bytes`.
    pub truncated: u64,
    /// Events too large for the sink even when shortened.
    pub oversize_dropped: u64,
    pub spool_bytes: u64,
    pub spool_pending: u64,
    pub connected: bool,
}

/// `sensor.file_write`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FileWrite {
    /// The watched path (as configured) this write falls under; absent
    /// when the file was reached another way (a bind mount, another
    /// mount namespace) and matched by inode only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watched: Option<Text>,
    /// How the kernel knew the file was watched: `path` (the path
    /// argument names a watched path) or `inode` (the file it opened or
    /// resolved, or a directory above it, is a watched inode: opens and
    /// ftruncate always, truncate/unlink/rename/link/symlink through
    /// another name where the fentry hooks load) or `name` (the file the
    /// kernel resolved is in a directory named `.ssh`, or is one:
    /// `[watch] user_ssh_dirs`; or likewise a `user` directory in one
    /// named `systemd`: `user_unit_dirs`; or the file is named as a
    /// shell's startup file: `shell_rc_files`) or `target` (a symlink made
    /// elsewhere whose target, `file.target_path`, names a watched path:
    /// absolute, or relative and joined to the link's directory; a write
    /// through the link lands there) or `target_above` and `above` (a
    /// symlink to, or a rename of or over, a directory above a watched
    /// path) or `target_magic_link` (a symlink whose target goes through
    /// a magic link, or is `/proc` or `/dev`: a path through it leads
    /// wherever its user's cwd or fds are; no `watched`) or `unresolved`
    /// (a path argument that may lead elsewhere than
    /// its bytes say could not be followed again: see `unresolved`).
    pub matched_by: &'static str,
    /// open's flags by name (`O_WRONLY`, `O_CREAT`, `O_TRUNC`…).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub open_flags: Vec<&'static str>,
    /// rename's destination.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_path: Option<Text>,
    /// renameat2's `RENAME_*` flags by name (`RENAME_EXCHANGE`: the two
    /// names swap what they hold, so the watched path now holds what
    /// `new_path` held; `RENAME_NOREPLACE`, `RENAME_WHITEOUT`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rename_flags: Vec<&'static str>,
    /// linkat's `AT_*` flags by name (`AT_EMPTY_PATH`: `file.target_path` is
    /// the file open at its fd, such as an `O_TMPFILE` file, named
    /// `#<inode>` in the directory it was made in; `AT_SYMLINK_FOLLOW`:
    /// what a symlink given as the existing file leads to).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub link_flags: Vec<&'static str>,
    /// The path argument as passed, when `file.path` differs: joined to a
    /// directory, or made normal (`//`, `/./`, `/../` taken out).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_argument: Option<Text>,
    /// The second path argument as passed (rename's new name, link's
    /// existing file), when `new_path` or `file.target_path` differs from
    /// it in the same ways.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub second_path_argument: Option<Text>,
    /// Why a path argument that may lead elsewhere than its bytes say (a
    /// `..` after a name, which may be a symlink; a magic link under
    /// `/proc` or `/dev/fd`) could not be followed again after the call:
    /// `exited` (a container's process, or its own magic links), `gone`
    /// (a component removed since), `magic_link`, `timeout`, `busy`,
    /// `error`. Its path is then shown made normal lexically.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unresolved: Option<&'static str>,
}

#[cfg(test)]
mod container_tests {
    use super::*;

    #[test]
    fn a_container_without_runtime_details_serializes_as_before() {
        let c = Container {
            id: "ab".into(),
            runtime: "podman",
            name: None,
            image: None,
            labels: Labels::default(),
        };
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            r#"{"id":"ab","runtime":"podman"}"#
        );
    }

    #[test]
    fn container_details_and_the_pod_are_ecs_fields() {
        let labels = Labels(
            vec![
                (Text::from("app"), Text::from("web")),
                (Text(b"k\xff".to_vec()), Text::from("\\")),
            ]
            .into(),
        );
        let c = Container {
            id: "ab".into(),
            runtime: "cri-o",
            name: Some(Text::from("nginx")),
            image: Some(ContainerImage {
                name: Text::from("nginx:1"),
            }),
            labels,
        };
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["name"], "nginx");
        assert_eq!(v["image"]["name"], "nginx:1");
        assert_eq!(
            v["labels"],
            serde_json::json!({"app": "web", "k\\xff": "\\"})
        );
        let o = Orchestrator {
            type_: "kubernetes",
            namespace: Some(Text::from("shop")),
            resource: OrchestratorResource {
                type_: "pod",
                name: Some(Text::from("web-0")),
                id: None,
            },
        };
        assert_eq!(
            serde_json::to_value(&o).unwrap(),
            serde_json::json!({"type": "kubernetes", "namespace": "shop", "resource": {"type": "pod", "name": "web-0"}})
        );
    }
}
