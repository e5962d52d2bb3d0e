//! Records of one event into one [`AuditEvent`]. Pure: the caller passes
//! the time, so tests drive it without sleeping.
//!
//! The kernel writes every record of an event with the same
//! `audit(sec.msec:serial)` stamp and closes a syscall event with EOE;
//! records of concurrent events interleave. User-space messages (PAM, sudo)
//! are events of one record with no EOE. A kernel record with no syscall
//! context never gets an EOE either: it goes out after `timeout_ms`.

use std::collections::{HashMap, VecDeque};

use super::record::{Record, Stamp};
use super::types;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub stamp: Stamp,
    /// In arrival order, EOE excluded.
    pub records: Vec<Record>,
    /// Records of this event beyond the per-event bound, dropped and counted.
    pub records_dropped: u32,
}

struct Pending {
    records: Vec<Record>,
    dropped: u32,
    first_ms: u64,
}

pub struct Coalescer {
    pending: HashMap<Stamp, Pending>,
    /// Arrival order of pending stamps, for timeouts and eviction.
    order: VecDeque<Stamp>,
    timeout_ms: u64,
    max_pending: usize,
    max_records: usize,
    /// Events sent out before they were complete because `max_pending`
    /// events were already open.
    pub evicted: u64,
    /// Records dropped because their event already had `max_records`.
    pub records_dropped: u64,
}

impl Coalescer {
    pub fn new(timeout_ms: u64, max_pending: usize, max_records: usize) -> Coalescer {
        Coalescer {
            pending: HashMap::new(),
            order: VecDeque::new(),
            timeout_ms,
            max_pending: max_pending.max(1),
            max_records: max_records.max(1),
            evicted: 0,
            records_dropped: 0,
        }
    }

    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Adds a record; returns the events it completed.
    pub fn push(&mut self, record: Record, now_ms: u64) -> Vec<AuditEvent> {
        let stamp = record.stamp;
        let mut out = Vec::new();
        if record.kind == types::EOE {
            out.extend(self.finish(stamp));
            return out;
        }
        if types::is_user_space(record.kind) && !self.pending.contains_key(&stamp) {
            out.push(AuditEvent {
                stamp,
                records: vec![record],
                records_dropped: 0,
            });
            return out;
        }
        if !self.pending.contains_key(&stamp) {
            while self.pending.len() >= self.max_pending {
                let Some(oldest) = self.order.pop_front() else {
                    break;
                };
                if let Some(ev) = self.finish(oldest) {
                    self.evicted += 1;
                    out.push(ev);
                }
            }
            self.order.push_back(stamp);
        }
        let p = self.pending.entry(stamp).or_insert_with(|| Pending {
            records: Vec::new(),
            dropped: 0,
            first_ms: now_ms,
        });
        if p.records.len() >= self.max_records {
            p.dropped += 1;
            self.records_dropped += 1;
        } else {
            p.records.push(record);
        }
        out
    }

    /// Events whose first record is older than the timeout.
    pub fn expire(&mut self, now_ms: u64) -> Vec<AuditEvent> {
        let mut out = Vec::new();
        while let Some(&stamp) = self.order.front() {
            match self.pending.get(&stamp) {
                Some(p) if now_ms.saturating_sub(p.first_ms) < self.timeout_ms => break,
                _ => {
                    self.order.pop_front();
                    out.extend(self.take(stamp));
                }
            }
        }
        out
    }

    /// Everything still open (at shutdown, or the end of a recorded stream).
    pub fn drain(&mut self) -> Vec<AuditEvent> {
        let stamps: Vec<Stamp> = self.order.drain(..).collect();
        stamps.into_iter().filter_map(|s| self.take(s)).collect()
    }

    fn finish(&mut self, stamp: Stamp) -> Option<AuditEvent> {
        let ev = self.take(stamp)?;
        self.order.retain(|s| *s != stamp);
        Some(ev)
    }

    fn take(&mut self, stamp: Stamp) -> Option<AuditEvent> {
        self.pending.remove(&stamp).map(|p| AuditEvent {
            stamp,
            records: p.records,
            records_dropped: p.dropped,
        })
    }
}

/// A recorded stream (auditd's log lines) into events, the way the live
/// source does it; unparsable lines are counted, never fatal.
pub fn from_log(text: &[u8], max_pending: usize) -> (Vec<AuditEvent>, u64) {
    let mut c = Coalescer::new(u64::MAX, max_pending, 1024);
    let mut out = Vec::new();
    let mut errors = 0;
    for line in text.split(|&b| b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match super::record::parse_log_line(line) {
            Ok(r) => out.extend(c.push(r, 0)),
            Err(_) => errors += 1,
        }
    }
    out.extend(c.drain());
    (out, errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::audit::record::parse;

    fn rec(kind: u16, serial: u64, text: &str) -> Record {
        parse(kind, format!("audit(100.000:{serial}): {text}").as_bytes())
            .expect("test record parses")
    }

    #[test]
    fn interleaved_events_are_separated_and_closed_by_eoe() {
        let mut c = Coalescer::new(1000, 16, 64);
        assert!(c.push(rec(1300, 1, "syscall=59 pid=10"), 0).is_empty());
        assert!(c.push(rec(1300, 2, "syscall=2 pid=11"), 0).is_empty());
        assert!(c.push(rec(1309, 1, "argc=1 a0=\"ls\""), 0).is_empty());
        assert!(c.push(rec(1302, 2, "item=0 name=\"/etc\""), 0).is_empty());
        let two = c.push(rec(1320, 2, ""), 0);
        assert_eq!(two.len(), 1);
        assert_eq!(two[0].stamp.serial, 2);
        assert_eq!(
            two[0].records.iter().map(|r| r.kind).collect::<Vec<_>>(),
            vec![1300, 1302]
        );
        let one = c.push(rec(1320, 1, ""), 0);
        assert_eq!(
            one[0].records.iter().map(|r| r.kind).collect::<Vec<_>>(),
            vec![1300, 1309]
        );
        assert_eq!(c.pending(), 0);
    }

    #[test]
    fn user_messages_are_events_at_once() {
        let mut c = Coalescer::new(1000, 16, 64);
        let ev = c.push(
            rec(1100, 5, "pid=1 msg='op=PAM:authentication res=failed'"),
            0,
        );
        assert_eq!(ev.len(), 1);
        assert_eq!(c.pending(), 0);
    }

    #[test]
    fn records_without_eoe_go_out_after_the_timeout() {
        let mut c = Coalescer::new(1000, 16, 64);
        c.push(rec(1305, 7, "op=set audit_enabled=1"), 100);
        assert!(c.expire(1099).is_empty());
        let ev = c.expire(1100);
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].stamp.serial, 7);
        assert!(c.expire(5000).is_empty());
    }

    #[test]
    fn bounds_are_counted_not_exceeded() {
        let mut c = Coalescer::new(1000, 2, 2);
        c.push(rec(1300, 1, "a=1"), 0);
        c.push(rec(1300, 2, "a=1"), 0);
        let out = c.push(rec(1300, 3, "a=1"), 0);
        assert_eq!(out.len(), 1, "the oldest pending event goes out early");
        assert_eq!(out[0].stamp.serial, 1);
        assert_eq!(c.evicted, 1);
        assert_eq!(c.pending(), 2);
        c.push(rec(1302, 3, "item=0"), 0);
        c.push(rec(1302, 3, "item=1"), 0);
        assert_eq!(c.records_dropped, 1);
        let ev = c.push(rec(1320, 3, ""), 0);
        assert_eq!(ev[0].records.len(), 2);
        assert_eq!(ev[0].records_dropped, 1);
        assert_eq!(c.drain().len(), 1);
    }
}
