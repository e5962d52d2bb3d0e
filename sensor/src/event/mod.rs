//! The public event schema: ECS-shaped JSON (see DESIGN.md section 4).
//!
//! Field names follow the Elastic Common Schema where it has the field;
//! everything ECS lacks lives under `sensor.*`. These types are only built
//! by the pipeline and only read by sinks.

pub mod audit;
pub mod text;

use std::sync::Arc;

use serde::Serialize;

pub use audit::{AuditFields, AuditRecord, AuditStatus};
pub use text::Text;

/// One finished event.
#[derive(Debug, Serialize)]
pub struct Event {
    #[serde(rename = "@timestamp")]
    pub timestamp: String,
    pub event: EventMeta,
    pub host: Arc<Host>,
    pub agent: Arc<Agent>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process: Option<Process>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<Container>,
    /// ECS `user.*`: the user an authentication, session or account event
    /// is about (not necessarily the process's user).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<User>,
    /// ECS `source.*`: where a login came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    #[serde(skip_serializing_if = "SensorFields::is_empty")]
    pub sensor: SensorFields,
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
}

#[derive(Debug, Serialize)]
pub struct Agent {
    pub name: &'static str,
    #[serde(rename = "type")]
    pub type_: &'static str,
    pub version: &'static str,
    pub id: String,
}

/// ECS `process.*`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Process {
    pub pid: u32,
    pub entity_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<Text>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executable: Option<Text>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<Text>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args_count: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_directory: Option<Text>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// ECS: `process.user` is the effective user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<Id>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub real_user: Option<Id>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub saved_user: Option<Id>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<Id>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub real_group: Option<Id>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub saved_group: Option<Id>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<Box<Process>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread: Option<Thread>,
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
}

/// A user or group: ECS keeps ids as strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Id {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
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

/// ECS `source.*`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Source {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<std::net::IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// A host name the reporter resolved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<Text>,
}

/// Everything ECS has no field for.
#[derive(Debug, Default, Serialize)]
pub struct SensorFields {
    /// Audit login uid of the process, if set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login_user: Option<Id>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<u32>,
    /// Controlling terminal, e.g. `/dev/pts/3`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tty: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<Cgroup>,
    /// Filesystem ids, when they differ from the effective ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fs_user: Option<Id>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fs_group: Option<Id>,
    /// Ancestors beyond `process.parent`, nearest first, bounded by config.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ancestors: Vec<Ancestor>,
    /// Length in bytes of the whole argv in the process, set when
    /// `process.args` is truncated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args_bytes: Option<u32>,
    /// Fields whose values are incomplete (the kernel side hit a bound).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub truncated: Vec<&'static str>,
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
    /// On an event from the kernel audit subsystem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit: Option<AuditFields>,
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
            escaped,
            signal,
            core_dumped,
            lost,
            probe_error,
            audit,
            audit_status,
        } = self;
        login_user.is_none()
            && session_id.is_none()
            && tty.is_none()
            && cgroup.is_none()
            && fs_user.is_none()
            && fs_group.is_none()
            && ancestors.is_empty()
            && args_bytes.is_none()
            && truncated.is_empty()
            && escaped.is_empty()
            && signal.is_none()
            && core_dumped.is_none()
            && lost.is_none()
            && probe_error.is_none()
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
