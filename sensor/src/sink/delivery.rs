//! A network sink's delivery: a bounded in-memory queue that the router
//! fills without waiting, and a task that moves queued records into the
//! spool and sends from the spool, with exponential backoff while the
//! collector is unreachable.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::spool::{Cursor, Spool};
use super::transport::http::HttpSender;
use super::transport::syslog::{Connection, Endpoint};
use crate::config::sinks::DeliveryConfig;

/// Bytes sent per write to a syslog collector.
const BATCH_BYTES: usize = 256 << 10;
/// Bytes of records per HTTP request at most.
const HTTP_BATCH_BYTES: usize = 4 << 20;
/// How often delivered positions are persisted while busy.
const TICK: Duration = Duration::from_millis(200);

/// Counters shared by the router, the task and the heartbeat/metrics.
#[derive(Debug, Default)]
pub struct SinkStats {
    pub sent: AtomicU64,
    pub queue_dropped: AtomicU64,
    pub spool_dropped: AtomicU64,
    /// Events shortened to the sink's message limit.
    pub truncated: AtomicU64,
    /// Events too large for the sink even when shortened, or refused by
    /// the datagram socket as too long.
    pub oversize_dropped: AtomicU64,
    pub spool_bytes: AtomicU64,
    pub spool_pending: AtomicU64,
    pub queued_bytes: AtomicU64,
    /// Highest sequence number delivered, for lag.
    pub delivered_seq: AtomicU64,
    pub connected: AtomicU64,
}

#[derive(Default)]
struct QueueInner {
    records: VecDeque<(u64, Vec<u8>)>,
    bytes: usize,
    closed: bool,
}

/// Bounded by bytes, not records: one exec event can be 40 KiB or 400 B.
pub struct Queue {
    inner: Mutex<QueueInner>,
    max_bytes: usize,
    notify: Notify,
    stats: Arc<SinkStats>,
}

impl Queue {
    pub fn new(max_bytes: usize, stats: Arc<SinkStats>) -> Arc<Queue> {
        Arc::new(Queue {
            inner: Mutex::default(),
            max_bytes,
            notify: Notify::new(),
            stats,
        })
    }

    /// Never waits: a full queue drops the newest record and counts it.
    pub fn push(&self, seq: u64, record: Vec<u8>) {
        let mut q = self.inner.lock().expect("queue lock");
        if q.bytes + record.len() > self.max_bytes {
            self.stats.queue_dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        q.bytes += record.len();
        q.records.push_back((seq, record));
        self.stats
            .queued_bytes
            .store(q.bytes as u64, Ordering::Relaxed);
    }

    /// Wakes the task (after each batch of events, not per event).
    pub fn wake(&self) {
        self.notify.notify_one();
    }

    pub fn close(&self) {
        self.inner.lock().expect("queue lock").closed = true;
        self.notify.notify_one();
    }

    fn take(&self) -> (VecDeque<(u64, Vec<u8>)>, bool) {
        let mut q = self.inner.lock().expect("queue lock");
        q.bytes = 0;
        self.stats.queued_bytes.store(0, Ordering::Relaxed);
        (std::mem::take(&mut q.records), q.closed)
    }
}

/// Sent but maybe not read by the collector: acknowledged once older than
/// the replay window (streams), at once for datagrams.
struct InFlight {
    to: Cursor,
    seq: u64,
    at: Instant,
}

/// How a sink's records leave the host.
pub enum Transport {
    Syslog {
        endpoint: Endpoint,
        conn: Option<Connection>,
    },
    Http {
        sender: HttpSender,
        batch_events: usize,
    },
}

/// A send that failed, and when the server asked us to come back.
struct Failed {
    reason: String,
    retry_after: Option<Duration>,
}

impl Transport {
    fn ready(&self) -> bool {
        match self {
            Transport::Syslog { conn, .. } => conn.is_some(),
            // reqwest keeps its own connection pool.
            Transport::Http { .. } => true,
        }
    }

    async fn connect(&mut self) -> std::io::Result<()> {
        if let Transport::Syslog { endpoint, conn } = self {
            *conn = Some(endpoint.connect().await?);
        }
        Ok(())
    }

    fn disconnect(&mut self) {
        if let Transport::Syslog { conn, .. } = self {
            *conn = None;
        }
    }

    fn batch_limits(&self) -> (usize, usize) {
        match self {
            Transport::Syslog { .. } => (BATCH_BYTES, usize::MAX),
            Transport::Http { batch_events, .. } => (HTTP_BATCH_BYTES, *batch_events),
        }
    }

    /// Whether a successful send can still be lost (a stream whose peer
    /// has not read it yet): such records are acknowledged after the
    /// replay window only.
    fn needs_replay(&self) -> bool {
        matches!(self, Transport::Syslog { conn: Some(c), .. } if c.is_stream())
    }

    /// Sends a batch; returns how many records the transport refused as
    /// too long (skipped, not retried).
    async fn send(
        &mut self,
        batch: &[(u64, Vec<u8>)],
        scratch: &mut Vec<u8>,
    ) -> Result<u64, Failed> {
        match self {
            Transport::Syslog { conn: Some(c), .. } => {
                c.send(batch, scratch).await.map_err(|e| Failed {
                    reason: e.to_string(),
                    retry_after: None,
                })
            }
            Transport::Syslog { conn: None, .. } => Err(Failed {
                reason: "not connected".into(),
                retry_after: None,
            }),
            Transport::Http { sender, .. } => {
                sender.send(batch).await.map(|()| 0).map_err(|r| Failed {
                    reason: r.reason,
                    retry_after: r.retry_after,
                })
            }
        }
    }
}

pub struct Worker {
    pub name: String,
    pub queue: Arc<Queue>,
    pub spool: Spool,
    pub transport: Transport,
    pub config: DeliveryConfig,
    pub stats: Arc<SinkStats>,
}

impl Worker {
    pub async fn run(mut self) {
        let mut backoff = Duration::from_millis(self.config.retry_initial_ms);
        let mut retry_at = Instant::now();
        let mut in_flight: VecDeque<InFlight> = VecDeque::new();
        let mut scratch = Vec::new();
        let replay = Duration::from_millis(self.config.replay_ms);
        let mut closing_deadline: Option<Instant> = None;
        // Warn once per outage, not at every retry.
        let mut failing = false;
        loop {
            let (records, closed) = self.queue.take();
            for (seq, r) in records {
                if let Err(e) = self.spool.append(seq, &r) {
                    // Disk trouble: the record is lost; say so, keep going.
                    tracing::error!(sink = %self.name, "cannot write to the spool: {e}");
                    self.spool.dropped += 1;
                }
            }
            if let Err(e) = self.spool.flush() {
                tracing::error!(sink = %self.name, "cannot write to the spool: {e}");
            }
            if closed && closing_deadline.is_none() {
                // Graceful shutdown: everything queued is in the spool now;
                // try briefly to deliver, the rest waits for the next start.
                closing_deadline = Some(Instant::now() + Duration::from_secs(2));
            }

            if !self.transport.ready() && Instant::now() >= retry_at && self.spool.has_unsent() {
                match self.transport.connect().await {
                    Ok(()) => {
                        tracing::info!(sink = %self.name, "connected to the collector");
                        self.stats.connected.store(1, Ordering::Relaxed);
                        backoff = Duration::from_millis(self.config.retry_initial_ms);
                        failing = false;
                    }
                    Err(e) => {
                        if failing {
                            tracing::debug!(sink = %self.name, retry_in = ?backoff, "cannot connect to the collector: {e}");
                        } else {
                            tracing::warn!(sink = %self.name, retry_in = ?backoff, "cannot connect to the collector: {e}; retrying with backoff");
                            failing = true;
                        }
                        retry_at = Instant::now() + backoff;
                        backoff =
                            (backoff * 2).min(Duration::from_millis(self.config.retry_max_ms));
                    }
                }
            }

            let mut sent_any = false;
            if self.transport.ready() && Instant::now() >= retry_at {
                let (max_bytes, max_records) = self.transport.batch_limits();
                match self.spool.next_batch(max_bytes, max_records) {
                    Ok((batch, to)) if !batch.is_empty() => {
                        let last = batch.last().map_or(0, |r| r.0);
                        let replayable = self.transport.needs_replay();
                        match self.transport.send(&batch, &mut scratch).await {
                            Ok(refused) => {
                                if refused > 0 {
                                    tracing::warn!(sink = %self.name, refused, "the socket refused messages as too long; lower max_message_bytes");
                                    self.stats
                                        .oversize_dropped
                                        .fetch_add(refused, Ordering::Relaxed);
                                }
                                self.stats
                                    .sent
                                    .fetch_add(batch.len() as u64 - refused, Ordering::Relaxed);
                                if replayable {
                                    in_flight.push_back(InFlight {
                                        to,
                                        seq: last,
                                        at: Instant::now(),
                                    });
                                } else {
                                    in_flight.clear();
                                    self.ack(to, last);
                                }
                                backoff = Duration::from_millis(self.config.retry_initial_ms);
                                failing = false;
                                sent_any = true;
                            }
                            Err(f) => {
                                let wait = f.retry_after.unwrap_or(backoff);
                                if failing {
                                    tracing::debug!(sink = %self.name, retry_in = ?wait, "sending to the collector failed: {}", f.reason);
                                } else {
                                    tracing::warn!(sink = %self.name, retry_in = ?wait, "sending to the collector failed: {}; will resend", f.reason);
                                    failing = true;
                                }
                                self.transport.disconnect();
                                self.stats.connected.store(0, Ordering::Relaxed);
                                in_flight.clear();
                                self.spool.rewind();
                                retry_at = Instant::now() + wait;
                                backoff = (backoff * 2)
                                    .min(Duration::from_millis(self.config.retry_max_ms));
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::error!(sink = %self.name, "cannot read the spool: {e}");
                        self.spool.rewind();
                    }
                }
            }
            // Acknowledge what left the replay window without a failure.
            while let Some(f) = in_flight.front() {
                if f.at.elapsed() < replay && closing_deadline.is_none() {
                    break;
                }
                let f = in_flight.pop_front().expect("checked");
                self.ack(f.to, f.seq);
            }
            if let Err(e) = self.spool.sync(false) {
                tracing::error!(sink = %self.name, "cannot sync the spool: {e}");
            }
            self.publish();

            if let Some(deadline) = closing_deadline {
                let done = !self.spool.has_unsent()
                    || !self.transport.ready()
                    || Instant::now() >= deadline;
                if done {
                    // Records still in the window were sent; keep them for a
                    // resend after restart only if the connection failed.
                    if let Err(e) = self.spool.sync(true) {
                        tracing::error!(sink = %self.name, "cannot sync the spool: {e}");
                    }
                    tracing::info!(sink = %self.name, pending = self.spool.pending(), "sink stopped; undelivered records stay in the spool");
                    return;
                }
                if !sent_any {
                    // Waiting for a retry (e.g. a 503's Retry-After) until the deadline.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                continue;
            }
            if sent_any {
                // Give the event reader its turn on this thread.
                tokio::task::yield_now().await;
                continue;
            }
            let wait = if self.spool.has_unsent() {
                retry_at.saturating_duration_since(Instant::now()).min(TICK)
            } else {
                TICK
            };
            let _ = tokio::time::timeout(wait, self.queue.notify.notified()).await;
        }
    }

    fn ack(&mut self, to: Cursor, seq: u64) {
        if let Err(e) = self.spool.ack(to, seq) {
            tracing::error!(sink = %self.name, "cannot update the spool: {e}");
        }
        self.stats.delivered_seq.fetch_max(seq, Ordering::Relaxed);
    }

    fn publish(&self) {
        self.stats
            .spool_bytes
            .store(self.spool.bytes(), Ordering::Relaxed);
        self.stats
            .spool_pending
            .store(self.spool.pending(), Ordering::Relaxed);
        self.stats
            .spool_dropped
            .store(self.spool.dropped, Ordering::Relaxed);
    }
}
