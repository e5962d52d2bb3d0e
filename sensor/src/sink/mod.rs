//! Sinks only see finished events and encode them.
//!
//! The [`Router`] is the daemon's one sink: a synchronous front that
//! serializes each event to JSON once and hands it to every configured
//! sink. Local sinks (stdout, the JSON-lines file) are written right there;
//! network sinks (syslog, http) get the encoded record in a bounded queue
//! that their own task moves into an on-disk spool and sends from, so the
//! kernel reader never waits on a collector.

pub mod bench;
pub mod codec;
pub mod delivery;
pub mod sequence;
pub mod spool;
pub mod transport;

use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::sinks::{DeliveryConfig, HttpFormat, SinkConfig, SyslogAddress, facility_code};
use crate::event::Event;
use codec::Header;
use codec::syslog::{Encoded, SyslogCodec};
use delivery::{Queue, SinkStats, Transport, Worker};
use transport::file::RotatingFile;
use transport::syslog::Endpoint;

pub trait Sink {
    fn emit(&mut self, event: &Event) -> io::Result<()>;
    /// Called after each batch (one ring-buffer drain), not per event.
    fn flush(&mut self) -> io::Result<()>;
}

/// One ECS JSON object per line on stdout.
pub struct JsonLines<W: Write> {
    out: BufWriter<W>,
}

impl<W: Write> JsonLines<W> {
    pub fn new(w: W) -> Self {
        JsonLines {
            out: BufWriter::with_capacity(256 * 1024, w),
        }
    }
}

impl<W: Write> Sink for JsonLines<W> {
    fn emit(&mut self, event: &Event) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, event)?;
        self.out.write_all(b"\n")
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot start sink `sinks[{index}]` ({name}): {problem}")]
pub struct SinkError {
    pub index: usize,
    pub name: String,
    pub problem: String,
}

enum Output {
    Stdout(BufWriter<io::Stdout>),
    File(RotatingFile),
    Queue { codec: Codec, queue: Arc<Queue> },
}

/// How a queued sink encodes a record.
enum Codec {
    Syslog(SyslogCodec),
    Http { format: HttpFormat, index: String },
}

/// A sink as the heartbeat, loss reports and metrics see it.
pub struct SinkInfo {
    /// Leaked once at start: loss events carry `&'static str`.
    pub name: &'static str,
    pub kind: &'static str,
    pub stats: Arc<SinkStats>,
    /// For spooled sinks: the highest sequence number found in the spool
    /// from an earlier run, if there was one.
    pub resumed_seq: Option<u64>,
    reported_queue: u64,
    reported_spool: u64,
    reported_oversize: u64,
}

pub struct Router {
    outputs: Vec<Output>,
    pub sinks: Vec<SinkInfo>,
    json: Vec<u8>,
    record: Vec<u8>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Events handed to the router.
    pub events: AtomicU64,
    pub metrics: crate::telemetry::Metrics,
}

impl Router {
    /// Opens every sink (files, spools, TLS settings) and starts the
    /// delivery tasks; must run inside the tokio runtime. No sink
    /// configured: JSON lines on stdout.
    pub fn start(sinks: &[SinkConfig], state_dir: &Path) -> Result<Router, SinkError> {
        let default = [SinkConfig::Stdout(Default::default())];
        let sinks = if sinks.is_empty() {
            &default[..]
        } else {
            sinks
        };
        let mut router = Router {
            outputs: Vec::new(),
            sinks: Vec::new(),
            json: Vec::with_capacity(4096),
            record: Vec::with_capacity(4096),
            tasks: Vec::new(),
            events: AtomicU64::new(0),
            metrics: Default::default(),
        };
        let mut workers = Vec::new();
        for (index, cfg) in sinks.iter().enumerate() {
            let name = cfg.name(index);
            let err = |problem: String| SinkError {
                index,
                name: name.clone(),
                problem,
            };
            let stats = Arc::new(SinkStats::default());
            let mut resumed_seq = None;
            let output = match cfg {
                SinkConfig::Stdout(_) => {
                    Output::Stdout(BufWriter::with_capacity(256 << 10, io::stdout()))
                }
                SinkConfig::File(f) => Output::File(
                    RotatingFile::open(f).map_err(|e| err(format!("{}: {e}", f.path.display())))?,
                ),
                SinkConfig::Syslog(s) => {
                    let address = SyslogAddress::parse(&s.address).map_err(err)?;
                    let tls = match &address {
                        SyslogAddress::Tls(_) => {
                            let connector = tokio_rustls::TlsConnector::from(Arc::new(
                                transport::tls::client_config(&s.tls).map_err(err)?,
                            ));
                            let host = s
                                .tls
                                .server_name
                                .clone()
                                .or_else(|| address.host().map(str::to_owned));
                            let host = host.unwrap_or_default();
                            let name = rustls::pki_types::ServerName::try_from(host.clone())
                                .map_err(|e| err(format!("TLS server name `{host}`: {e}")))?;
                            Some((connector, name))
                        }
                        _ => None,
                    };
                    let codec = Codec::Syslog(SyslogCodec {
                        format: s.format,
                        facility: facility_code(&s.facility)
                            .ok_or_else(|| err(format!("facility `{}`", s.facility)))?,
                        app_name: s.app_name.clone(),
                        pid: std::process::id(),
                        max_message_bytes: s.message_limit(&address),
                    });
                    let transport = Transport::Syslog {
                        endpoint: Endpoint { address, tls },
                        conn: None,
                    };
                    let (queue, worker, resumed) =
                        queued(&name, &s.delivery, state_dir, transport, stats.clone())
                            .map_err(err)?;
                    workers.push(worker);
                    resumed_seq = resumed;
                    Output::Queue { codec, queue }
                }
                SinkConfig::Http(h) => {
                    let sender = transport::http::HttpSender::new(h).map_err(err)?;
                    let transport = Transport::Http {
                        sender,
                        batch_events: h.batch_events,
                    };
                    let (queue, worker, resumed) =
                        queued(&name, &h.delivery, state_dir, transport, stats.clone())
                            .map_err(err)?;
                    workers.push(worker);
                    resumed_seq = resumed;
                    Output::Queue {
                        codec: Codec::Http {
                            format: h.format,
                            index: h.index.clone(),
                        },
                        queue,
                    }
                }
            };
            router.outputs.push(output);
            router.sinks.push(SinkInfo {
                name: Box::leak(name.into_boxed_str()),
                kind: cfg.kind(),
                stats,
                resumed_seq,
                reported_queue: 0,
                reported_spool: 0,
                reported_oversize: 0,
            });
        }
        // Only now that every sink opened: a bad one must not leave tasks behind.
        for w in workers {
            router.tasks.push(tokio::spawn(w.run()));
        }
        Ok(router)
    }

    /// What the metrics endpoint shows of the sinks.
    pub fn views(&self) -> Vec<crate::telemetry::SinkView> {
        self.sinks
            .iter()
            .map(|s| crate::telemetry::SinkView {
                name: s.name,
                kind: s.kind,
                stats: s.stats.clone(),
            })
            .collect()
    }

    /// SIGHUP: files are opened anew (after an outside rotation).
    pub fn reopen(&mut self) {
        for (out, info) in self.outputs.iter_mut().zip(&self.sinks) {
            if let Output::File(f) = out {
                if let Err(e) = f.reopen() {
                    tracing::error!(sink = info.name, "cannot reopen the file: {e}");
                }
            }
        }
    }

    /// Drops since the last call: (`sink_queue`, `sink_spool` or
    /// `sink_oversize`, sink, count).
    pub fn new_drops(&mut self) -> Vec<(&'static str, &'static str, u64)> {
        let mut out = Vec::new();
        for s in &mut self.sinks {
            let counters = [
                ("sink_queue", &s.stats.queue_dropped, &mut s.reported_queue),
                ("sink_spool", &s.stats.spool_dropped, &mut s.reported_spool),
                (
                    "sink_oversize",
                    &s.stats.oversize_dropped,
                    &mut s.reported_oversize,
                ),
            ];
            for (source, counter, reported) in counters {
                let now = counter.load(Ordering::Relaxed);
                if now > *reported {
                    out.push((source, s.name, now - *reported));
                    *reported = now;
                }
            }
        }
        out
    }

    /// Graceful stop: queued records go to the spools (and out, if the
    /// collector is there within a short grace period).
    pub async fn shutdown(mut self) -> io::Result<()> {
        self.flush()?;
        for out in &self.outputs {
            if let Output::Queue { queue, .. } = out {
                queue.close();
            }
        }
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
        Ok(())
    }
}

/// Opens a queued sink's spool and makes its queue and delivery task;
/// also returns the highest sequence number spooled by an earlier run.
fn queued(
    name: &str,
    delivery: &DeliveryConfig,
    state_dir: &Path,
    transport: Transport,
    stats: Arc<SinkStats>,
) -> Result<(Arc<Queue>, Worker, Option<u64>), String> {
    let dir = delivery
        .spool_dir
        .clone()
        .unwrap_or_else(|| state_dir.join("spool").join(name));
    let existed = spool::exists(&dir);
    let spool = spool::Spool::open(&dir, delivery.spool_bytes, delivery.when_full)
        .map_err(|e| format!("spool {}: {e}", dir.display()))?;
    if spool.pending() > 0 {
        tracing::info!(sink = %name, pending = spool.pending(), "undelivered records from an earlier run");
    }
    let resumed = existed.then(|| spool.last_seq());
    let queue = Queue::new(delivery.queue_bytes, stats.clone());
    let worker = Worker {
        name: name.to_owned(),
        queue: queue.clone(),
        spool,
        transport,
        config: delivery.clone(),
        stats,
    };
    Ok((queue, worker, resumed))
}

impl Sink for Router {
    fn emit(&mut self, event: &Event) -> io::Result<()> {
        self.json.clear();
        serde_json::to_writer(&mut self.json, event)?;
        self.events.fetch_add(1, Ordering::Relaxed);
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
        if let Some(lookups) = event
            .sensor
            .heartbeat
            .as_ref()
            .and_then(|h| h.container_lookups.as_ref())
        {
            self.metrics.container_lookups(lookups);
        }
        if let Some(hashes) = event
            .sensor
            .heartbeat
            .as_ref()
            .and_then(|h| h.executable_hashes.as_ref())
        {
            self.metrics.executable_hashes(hashes);
        }
        self.metrics
            .last_sequence
            .store(event.event.sequence, Ordering::Relaxed);
        let header = Header::of(event);
        for (out, info) in self.outputs.iter_mut().zip(&self.sinks) {
            match out {
                Output::Stdout(w) => {
                    w.write_all(&self.json)?;
                    w.write_all(b"\n")?;
                    info.stats.sent.fetch_add(1, Ordering::Relaxed);
                }
                Output::File(f) => {
                    self.record.clear();
                    codec::json_line(&mut self.record, &self.json);
                    match f.write(&self.record) {
                        Ok(()) => {
                            info.stats.sent.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            // A full disk must not stop the other sinks: count it.
                            tracing::error!(sink = info.name, "cannot write the file: {e}");
                            info.stats.queue_dropped.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                Output::Queue { codec, queue } => {
                    let mut record = Vec::with_capacity(self.json.len() + 128);
                    match codec {
                        Codec::Syslog(c) => match c.encode(&mut record, &header, &self.json) {
                            Encoded::Whole => {}
                            Encoded::Truncated => {
                                info.stats.truncated.fetch_add(1, Ordering::Relaxed);
                            }
                            Encoded::TooLarge => {
                                info.stats.oversize_dropped.fetch_add(1, Ordering::Relaxed);
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

    fn flush(&mut self) -> io::Result<()> {
        for (out, info) in self.outputs.iter_mut().zip(&self.sinks) {
            match out {
                Output::Stdout(w) => w.flush()?,
                Output::File(f) => {
                    if let Err(e) = f.flush() {
                        tracing::error!(sink = info.name, "cannot write the file: {e}");
                    }
                }
                Output::Queue { queue, .. } => queue.wake(),
            }
        }
        Ok(())
    }
}
