//! `[telemetry]`: how the sensor reports on itself.

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// Seconds between heartbeat events (counters in the stream, so that a
    /// collector can tell a quiet host from a dead sensor). 0: none.
    pub heartbeat_interval_s: u64,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig { heartbeat_interval_s: 60 }
    }
}
