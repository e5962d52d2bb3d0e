//! `[audit]`: the kernel audit subsystem client.

use std::path::PathBuf;

use serde::Deserialize;

use super::ConfigError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditMode {
    /// Daemon when no audit daemon runs, read-only beside one.
    Auto,
    /// Be the kernel's audit daemon (unicast); fail if another one runs.
    Daemon,
    /// Listen on the read-only multicast group beside auditd.
    Readonly,
    /// Do not use the audit subsystem.
    Off,
}

/// Following wtmp (logins, logouts) and btmp (failed logins).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UtmpMode {
    /// Only when the audit subsystem is off or unavailable.
    Fallback,
    /// Always, as a cross-check beside audit (module "utmp").
    Always,
    Off,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    pub mode: AuditMode,
    pub utmp: UtmpMode,
    /// Records the kernel queues for the daemon before it drops (and
    /// counts) them. Daemon mode only; the previous value is restored on exit.
    pub backlog_limit: u32,
    /// Rules in auditctl syntax, one per entry, loaded in daemon mode
    /// after `rules_file`. The default is none: eBPF covers syscalls, and
    /// PAM's messages flow without rules.
    pub rules: Vec<String>,
    /// A file in audit.rules syntax, loaded in daemon mode.
    pub rules_file: Option<PathBuf>,
    /// A kernel event without EOE goes out after this long.
    pub coalesce_timeout_ms: u64,
    /// Events being assembled at once; beyond it the oldest goes out early
    /// (counted).
    pub max_pending_events: usize,
    /// How often the kernel's lost and backlog counters are read.
    pub status_interval_ms: u64,
    /// How often they are also reported as an `audit_status` metric event
    /// (besides loss events, and at once when the backlog passes 80%).
    /// 0: only then.
    pub metrics_interval_ms: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            mode: AuditMode::Auto,
            utmp: UtmpMode::Fallback,
            // auditd's default rules file uses 8192: seconds of a login storm.
            backlog_limit: 8192,
            rules: Vec::new(),
            rules_file: None,
            coalesce_timeout_ms: 1000,
            max_pending_events: 4096,
            status_interval_ms: 1000,
            metrics_interval_ms: 60_000,
        }
    }
}

impl AuditConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.backlog_limit == 0 {
            return Err(ConfigError::Invalid {
                key: "audit.backlog_limit",
                problem: "must be greater than 0".into(),
            });
        }
        if self.coalesce_timeout_ms == 0 || self.coalesce_timeout_ms > 60_000 {
            return Err(ConfigError::Invalid {
                key: "audit.coalesce_timeout_ms",
                problem: format!("{} must be between 1 and 60000", self.coalesce_timeout_ms),
            });
        }
        if self.max_pending_events == 0 {
            return Err(ConfigError::Invalid {
                key: "audit.max_pending_events",
                problem: "must be greater than 0".into(),
            });
        }
        if self.status_interval_ms == 0 {
            return Err(ConfigError::Invalid {
                key: "audit.status_interval_ms",
                problem: "must be greater than 0".into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::*;

    #[test]
    fn modes_and_rules_parse() {
        let c = Config::parse(
            "[audit]\nmode = \"readonly\"\nrules = [\"-w /etc/shadow -p wa -k shadow\"]\n",
        )
        .expect("parses");
        assert_eq!(c.audit.mode, AuditMode::Readonly);
        assert_eq!(c.audit.rules.len(), 1);
        let err = Config::parse("[audit]\nmode = \"sometimes\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("sometimes") || err.contains("mode"), "{err}");
        let err = Config::parse("[audit]\nbacklog_limit = 0\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("audit.backlog_limit"), "{err}");
    }
}
