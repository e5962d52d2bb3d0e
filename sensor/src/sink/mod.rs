//! Sinks only see finished events and encode them.
//!
//! The [`Router`] is the daemon's one sink: a synchronous front that hands
//! each event to the sink thread (`thread`), which serializes it to JSON
//! once and gives it to every configured sink (`outputs`). Local sinks
//! (stdout, the JSON-lines file) are written right there; network sinks
//! (syslog, http) get the encoded record in a bounded queue that their own
//! task moves into an on-disk spool and sends from, so the kernel reader
//! never waits on a collector.

pub mod bench;
pub mod codec;
pub mod delivery;
mod outputs;
pub mod sequence;
pub mod spool;
mod thread;
pub mod transport;

use std::io::{self, BufWriter};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::sinks::{DeliveryConfig, SinkConfig, SyslogAddress, facility_code};
use crate::event::Event;
use codec::syslog::SyslogCodec;
use delivery::{Queue, SinkStats, Transport, Worker};
use outputs::{Codec, Output, Outputs, Target};
use thread::SinkThread;
use transport::file::RotatingFile;
use transport::syslog::Endpoint;

pub trait Sink {
    fn emit(&mut self, event: Event) -> io::Result<()>;
    /// Called after each batch (one ring-buffer drain), not per event.
    fn flush(&mut self) -> io::Result<()>;
}

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("cannot start sink `sinks[{index}]` ({name}): {problem}")]
    Open {
        index: usize,
        name: String,
        problem: String,
    },
    #[error("cannot start the sink thread: {0}")]
    Thread(#[source] io::Error),
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
    writer: SinkThread,
    pub sinks: Vec<SinkInfo>,
    /// The queued sinks' queues, closed at shutdown.
    queues: Vec<Arc<Queue>>,
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
        let mut targets = Vec::new();
        let mut infos = Vec::new();
        let mut workers = Vec::new();
        for (index, cfg) in sinks.iter().enumerate() {
            let name = cfg.name(index);
            let err = |problem: String| SinkError::Open {
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
            let name: &'static str = Box::leak(name.into_boxed_str());
            targets.push(Target {
                output,
                name,
                stats: stats.clone(),
            });
            infos.push(SinkInfo {
                name,
                kind: cfg.kind(),
                stats,
                resumed_seq,
                reported_queue: 0,
                reported_spool: 0,
                reported_oversize: 0,
            });
        }
        let queues = targets
            .iter()
            .filter_map(|t| match &t.output {
                Output::Queue { queue, .. } => Some(queue.clone()),
                _ => None,
            })
            .collect();
        let metrics = crate::telemetry::Metrics::default();
        let writer =
            SinkThread::start(Outputs::new(targets, metrics.clone())).map_err(SinkError::Thread)?;
        // Only now that every sink opened: a bad one must not leave tasks behind.
        let tasks = workers.into_iter().map(|w| tokio::spawn(w.run())).collect();
        Ok(Router {
            writer,
            sinks: infos,
            queues,
            tasks,
            events: AtomicU64::new(0),
            metrics,
        })
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
        if let Err(e) = self.writer.reopen() {
            tracing::error!("cannot reopen the files: {e}");
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
        self.writer.stop()?;
        for queue in &self.queues {
            queue.close();
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
    fn emit(&mut self, event: Event) -> io::Result<()> {
        self.events.fetch_add(1, Ordering::Relaxed);
        self.writer.emit(event)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }
}
