//! Codecs turn a finished event into the bytes one sink stores and sends.
//! The event is serialized to JSON once per event by the router; codecs
//! only wrap that JSON.

pub mod http;
pub mod shrink;
pub mod syslog;

use crate::event::Event;

/// What codecs need of an event besides its JSON, taken once per event.
#[derive(Debug, Clone, Copy)]
pub struct Header<'a> {
    pub sequence: u64,
    /// RFC 3339 with nanoseconds, UTC (`event.@timestamp`).
    pub timestamp: &'a str,
    pub host: &'a str,
    pub action: &'a str,
    /// RFC 5424 severity, 0 (emergency) to 7 (debug).
    pub severity: u8,
    /// `event.id`.
    pub id: &'a str,
}

impl<'a> Header<'a> {
    pub fn of(event: &'a Event) -> Header<'a> {
        Header {
            sequence: event.event.sequence,
            timestamp: &event.timestamp,
            host: &event.host.name,
            action: event.event.action,
            severity: severity(event),
            id: &event.event.id,
        }
    }
}

/// Severity from what the event says, so that a collector can route on
/// the PRI alone: alerts are `alert`, the sensor's own failures (lost
/// events, probe errors) `warning`/`error`, failed actions (a refused
/// login) `notice`, everything else `info`.
pub fn severity(event: &Event) -> u8 {
    match (event.event.kind, event.event.action, event.event.outcome) {
        ("alert", _, _) => 1,
        ("pipeline_error", "probe_error", _) => 3,
        ("pipeline_error", _, _) => 4,
        (_, _, Some("failure")) => 5,
        _ => 6,
    }
}

/// One JSON object per line: the file and stdout sinks' format.
pub fn json_line(out: &mut Vec<u8>, json: &[u8]) {
    out.extend_from_slice(json);
    out.push(b'\n');
}
