//! The sensor's own metrics: Prometheus `/metrics` and `/healthz` on a
//! local address (`[telemetry] metrics_address`, off by default).
//!
//! Counters that change per event (events by action, lost events by
//! source) are prometheus-client families the router increments; the
//! sinks' counters already live in atomics their tasks update, so a
//! collector reads those at scrape time instead of keeping a second copy.

pub mod server;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::sink::delivery::SinkStats;

type Label = [(&'static str, &'static str); 1];
/// A per-sink gauge: name, help, and how to read it.
type Gauge<'a> = (&'static str, &'static str, &'a dyn Fn(&SinkView) -> i64);

/// Updated by the router for every event.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    pub events: Family<Label, Counter>,
    pub lost: Family<Label, Counter>,
    pub last_sequence: Arc<AtomicU64>,
    /// The kernel audit subsystem's counters from the last `audit_status`
    /// (`sensor_audit_backlog`, `sensor_audit_lost`, …).
    pub audit: Family<Label, Gauge64>,
    /// Container runtime lookups as of the last heartbeat.
    pub container_lookups: Family<Label, Gauge64>,
    /// Executable hashing counts as of the last heartbeat.
    pub executable_hashes: Family<Label, Gauge64>,
}

/// A gauge with a 64-bit value.
pub type Gauge64 = prometheus_client::metrics::gauge::Gauge<i64, std::sync::atomic::AtomicI64>;

impl Metrics {
    /// Keeps the container lookup gauges at a heartbeat's counts.
    pub fn container_lookups(&self, c: &crate::event::ContainerLookups) {
        for (name, value) in [
            ("found", c.found),
            ("failed", c.failed),
            ("evicted", c.evicted),
        ] {
            self.container_lookups
                .get_or_create(&[("result", name)])
                .set(value as i64);
        }
    }

    /// Keeps the executable hashing gauges at a heartbeat's counts.
    pub fn executable_hashes(&self, h: &crate::event::ExecutableHashes) {
        let h = &h.counts;
        for (name, value) in [
            ("hashed", h.hashed),
            ("too_large", h.too_large),
            ("errors", h.errors),
            ("cache_hits", h.cache_hits),
            ("dropped", h.dropped),
            ("exited", h.exited),
            ("superseded", h.superseded),
            ("evicted", h.evicted),
        ] {
            self.executable_hashes
                .get_or_create(&[("result", name)])
                .set(value as i64);
        }
    }

    /// Keeps the audit gauges at the values of a status report.
    pub fn audit_status(&self, s: &crate::event::AuditStatus) {
        for (name, value) in [
            ("backlog", s.backlog),
            ("backlog_limit", s.backlog_limit),
            ("lost", s.lost),
            ("backlog_wait_time_actual", s.backlog_wait_time_actual),
            ("enabled", s.enabled),
        ] {
            self.audit
                .get_or_create(&[("counter", name)])
                .set(i64::from(value));
        }
    }
}

#[derive(Debug)]
pub struct SinkView {
    pub name: &'static str,
    pub kind: &'static str,
    pub stats: Arc<SinkStats>,
}

/// Reads the sinks' atomics at scrape time.
#[derive(Debug)]
struct SinkCollector {
    sinks: Vec<SinkView>,
    last_sequence: Arc<AtomicU64>,
}

impl Collector for SinkCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut counter = |name: &str,
                           help: &str,
                           value: &dyn Fn(&SinkStats) -> u64|
         -> Result<(), std::fmt::Error> {
            let mut m = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for s in &self.sinks {
                let labels = [("sink", s.name), ("kind", s.kind)];
                ConstCounter::new(value(&s.stats)).encode(m.encode_family(&labels)?)?;
            }
            Ok(())
        };
        counter(
            "sensor_sink_sent",
            "Events written or delivered, per sink",
            &|s| load(&s.sent),
        )?;
        counter(
            "sensor_sink_queue_dropped",
            "Events dropped because the sink's memory queue was full",
            &|s| load(&s.queue_dropped),
        )?;
        counter(
            "sensor_sink_spool_dropped",
            "Events dropped because the sink's spool was full",
            &|s| load(&s.spool_dropped),
        )?;
        counter(
            "sensor_sink_truncated",
            "Events shortened to the sink's message limit",
            &|s| load(&s.truncated),
        )?;
        counter(
            "sensor_sink_oversize_dropped",
            "Events dropped as too large for the sink even when shortened",
            &|s| load(&s.oversize_dropped),
        )?;
        let last = load(&self.last_sequence);
        let gauges: [Gauge<'_>; 5] = [
            (
                "sensor_spool_bytes",
                "Bytes in the sink's on-disk spool",
                &|s| load(&s.stats.spool_bytes) as i64,
            ),
            (
                "sensor_spool_pending_events",
                "Events in the spool not yet delivered",
                &|s| load(&s.stats.spool_pending) as i64,
            ),
            (
                "sensor_queue_bytes",
                "Bytes waiting in the sink's memory queue",
                &|s| load(&s.stats.queued_bytes) as i64,
            ),
            (
                "sensor_sink_lag_events",
                "Sequence numbers produced but not yet delivered by the sink",
                &|s| {
                    if s.kind == "syslog" || s.kind == "http" {
                        last.saturating_sub(load(&s.stats.delivered_seq)) as i64
                    } else {
                        0
                    }
                },
            ),
            (
                "sensor_sink_connected",
                "1 while the sink has a connection to its collector",
                &|s| load(&s.stats.connected) as i64,
            ),
        ];
        for (name, help, value) in gauges {
            let mut m = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for s in &self.sinks {
                let labels = [("sink", s.name), ("kind", s.kind)];
                ConstGauge::new(value(s)).encode(m.encode_family(&labels)?)?;
            }
        }
        let m = encoder.encode_descriptor(
            "sensor_last_sequence",
            "The last event.sequence assigned",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(last as i64).encode(m)?;
        Ok(())
    }
}

/// Everything `/metrics` shows.
pub fn registry(metrics: &Metrics, sinks: Vec<SinkView>) -> Registry {
    let mut r = Registry::default();
    r.register(
        "sensor_events",
        "Events produced, by event.action",
        metrics.events.clone(),
    );
    r.register(
        "sensor_lost_events",
        "Events reported lost, by where they were lost",
        metrics.lost.clone(),
    );
    r.register(
        "sensor_audit",
        "The kernel audit subsystem's status (backlog, backlog_limit, lost since boot…), as last read",
        metrics.audit.clone(),
    );
    r.register(
        "sensor_container_lookups",
        "Container name/image/pod lookups since start, by result, as of the last heartbeat",
        metrics.container_lookups.clone(),
    );
    r.register(
        "sensor_executable_hashes",
        "Executable hashing (process.hash) since start, by result, as of the last heartbeat",
        metrics.executable_hashes.clone(),
    );
    r.register_collector(Box::new(SinkCollector {
        sinks,
        last_sequence: metrics.last_sequence.clone(),
    }));
    r
}
