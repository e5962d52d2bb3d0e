//! The sinks' side of the router: serializes each event to JSON once,
//! then writes it to the local outputs and encodes it for the queued ones.
//! Runs on the sink thread (see `sink::thread`).

use std::io::{self, BufWriter, Write};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::codec::syslog::{Encoded, SyslogCodec};
use super::codec::{self, Header};
use super::delivery::{Queue, SinkStats};
use super::transport::file::RotatingFile;
use crate::config::sinks::HttpFormat;
use crate::event::Event;

pub(super) enum Output {
    Stdout(BufWriter<io::Stdout>),
    File(RotatingFile),
    Queue { codec: Codec, queue: Arc<Queue> },
}

/// How a queued sink encodes a record.
pub(super) enum Codec {
    Syslog(SyslogCodec),
    Http { format: HttpFormat, index: String },
}

/// One configured sink as the writing side sees it.
pub(super) struct Target {
    pub output: Output,
    pub name: &'static str,
    pub stats: Arc<SinkStats>,
}

pub(super) struct Outputs {
    pub targets: Vec<Target>,
    pub metrics: crate::telemetry::Metrics,
    json: Vec<u8>,
    record: Vec<u8>,
}

impl Outputs {
    pub fn new(targets: Vec<Target>, metrics: crate::telemetry::Metrics) -> Outputs {
        Outputs {
            targets,
            metrics,
            json: Vec::with_capacity(4096),
            record: Vec::with_capacity(4096),
        }
    }

    /// Writes `event` to every sink. An error is returned only for stdout,
    /// whose loss stops the daemon; a file or queue that cannot take the
    /// event counts it and the others go on.
    pub fn emit(&mut self, event: &Event) -> io::Result<()> {
        self.json.clear();
        serde_json::to_writer(&mut self.json, event)?;
        self.count(event);
        let header = Header::of(event);
        for t in &mut self.targets {
            match &mut t.output {
                Output::Stdout(w) => {
                    w.write_all(&self.json)?;
                    w.write_all(b"\n")?;
                    t.stats.sent.fetch_add(1, Ordering::Relaxed);
                }
                Output::File(f) => {
                    self.record.clear();
                    codec::json_line(&mut self.record, &self.json);
                    match f.write(&self.record) {
                        Ok(()) => {
                            t.stats.sent.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            // A full disk must not stop the other sinks: count it.
                            tracing::error!(sink = t.name, "cannot write the file: {e}");
                            t.stats.queue_dropped.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                Output::Queue { codec, queue } => {
                    let mut record = Vec::with_capacity(self.json.len() + 128);
                    match codec {
                        Codec::Syslog(c) => match c.encode(&mut record, &header, &self.json) {
                            Encoded::Whole => {}
                            Encoded::Truncated => {
                                t.stats.truncated.fetch_add(1, Ordering::Relaxed);
                            }
                            Encoded::TooLarge => {
                                t.stats.oversize_dropped.fetch_add(1, Ordering::Relaxed);
                                continue;
                            }
                        },
                        Codec::Http { format, index } => {
                            codec::http::encode(&mut record, *format, index, &header, &self.json)
                        }
                    }
                    queue.push(header.sequence, record);
                }
            }
        }
        Ok(())
    }

    /// The metrics every event updates.
    fn count(&self, event: &Event) {
        self.metrics
            .events
            .get_or_create(&[("action", event.event.action)])
            .inc();
        if let Some(l) = &event.sensor.lost {
            self.metrics
                .lost
                .get_or_create(&[("source", l.source)])
                .inc_by(l.count);
        }
        if let Some(status) = &event.sensor.audit_status {
            self.metrics.audit_status(status);
        }
        let heartbeat = event.sensor.heartbeat.as_ref();
        if let Some(lookups) = heartbeat.and_then(|h| h.container_lookups.as_ref()) {
            self.metrics.container_lookups(lookups);
        }
        if let Some(hashes) = heartbeat.and_then(|h| h.executable_hashes.as_ref()) {
            self.metrics.executable_hashes(hashes);
        }
        self.metrics
            .last_sequence
            .store(event.event.sequence, Ordering::Relaxed);
    }

    pub fn flush(&mut self) -> io::Result<()> {
        for t in &mut self.targets {
            match &mut t.output {
                Output::Stdout(w) => w.flush()?,
                Output::File(f) => {
                    if let Err(e) = f.flush() {
                        tracing::error!(sink = t.name, "cannot write the file: {e}");
                    }
                }
                Output::Queue { queue, .. } => queue.wake(),
            }
        }
        Ok(())
    }

    /// SIGHUP: files are opened anew (after an outside rotation).
    pub fn reopen(&mut self) {
        for t in &mut self.targets {
            if let Output::File(f) = &mut t.output {
                if let Err(e) = f.reopen() {
                    tracing::error!(sink = t.name, "cannot reopen the file: {e}");
                }
            }
        }
    }
}
