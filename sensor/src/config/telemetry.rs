//! `[telemetry]`: how the sensor reports on itself.

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// Seconds between heartbeat events (counters in the stream, so that a
    /// collector can tell a quiet host from a dead sensor). 0: none.
    pub heartbeat_interval_s: u64,
    /// `host:port` for Prometheus `/metrics` and `/healthz`, e.g.
    /// `127.0.0.1:9464`. Unset: no listener.
    pub metrics_address: Option<String>,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            heartbeat_interval_s: 60,
            metrics_address: None,
        }
    }
}

impl TelemetryConfig {
    pub fn metrics_socket(&self) -> Result<Option<std::net::SocketAddr>, super::ConfigError> {
        self.metrics_address
            .as_deref()
            .map(|a| {
                a.parse().map_err(|e| super::ConfigError::InvalidSink {
                    key: "telemetry.metrics_address".into(),
                    problem: format!("`{a}` is not an address:port ({e})"),
                })
            })
            .transpose()
    }
}
