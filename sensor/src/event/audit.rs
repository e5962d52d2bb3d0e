//! `sensor.audit.*`: what an event from the kernel audit subsystem carries
//! beyond ECS, including its records, byte-exact.

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use super::Text;

#[derive(Debug, Clone, Default, Serialize)]
pub struct AuditFields {
    /// The kernel's serial number of the event (with `@timestamp`, its id).
    pub serial: u64,
    /// `sshd`, `login`, `su`, `sudo`…: the program that reported it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<Text>,
    /// What the reporter did, in its own words (`PAM:authentication`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<Text>,
    /// `ssh`, `/dev/pts/0`, `tty1`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub terminal: Option<Text>,
    /// The remote host name, when the reporter resolved one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<Text>,
    /// sudo's command line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<Text>,
    /// An EXECVE's arguments, reassembled from the records.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<Text>>,
    /// A change to audit rules or state that the sensor did not make.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub tamper: bool,
    /// Records of this event dropped at the per-event bound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub records_dropped: Option<u32>,
    pub records: Vec<AuditRecord>,
}

/// `sensor.audit_status`: the kernel's audit counters, as a metric event
/// (periodically, and at once when the backlog passes 80% of its limit).
#[derive(Debug, Clone, Serialize)]
pub struct AuditStatus {
    /// The sensor's mode: `daemon` or `readonly`.
    pub mode: &'static str,
    pub enabled: u32,
    /// pid of the kernel's audit daemon (the sensor's own in daemon mode).
    pub daemon_pid: u32,
    /// Records queued in the kernel for the audit daemon.
    pub backlog: u32,
    pub backlog_limit: u32,
    pub backlog_wait_time: u32,
    /// Total time tasks have waited on a full backlog (jiffies).
    pub backlog_wait_time_actual: u32,
    /// The kernel's count of records it dropped, since boot or reset.
    pub lost: u32,
}

/// One record: its type and its fields, decoded (hex and quotes undone).
#[derive(Debug, Clone, Serialize)]
pub struct AuditRecord {
    #[serde(rename = "type")]
    pub type_: String,
    pub fields: Fields,
    /// Words that were not `key=value` pairs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unparsed: Option<Text>,
}

/// Fields in record order; a key may repeat, as in the record.
#[derive(Debug, Clone, Default)]
pub struct Fields(pub Vec<(Text, Text)>);

impl Serialize for Fields {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}
