//! The audit source: chooses daemon or read-only mode, sets the kernel up
//! (and restores it on exit), and turns datagrams into coalesced events.

use std::io;
use std::time::Instant;

use tokio::io::unix::AsyncFd;

use super::coalesce::{AuditEvent, Coalescer};
use super::netlink::{
    AuditSocket, Message, NetlinkError, STATUS_BACKLOG_LIMIT, STATUS_BACKLOG_WAIT_TIME,
    STATUS_ENABLED, STATUS_PID, Status,
};
use super::record;
use super::rules::{self, RuleError};
use super::tamper::OwnChanges;
use super::task_contexts::NoTaskContexts;
use crate::config::audit::{AuditConfig, AuditMode};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Daemon,
    Readonly,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Daemon => "daemon",
            Mode::Readonly => "readonly",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    #[error("audit mode \"daemon\" asked for, but pid {0} is the kernel's audit daemon (auditd?)")]
    DaemonRunning(u32),
    #[error("cannot watch the audit socket: {0}")]
    Poll(#[source] io::Error),
    #[error(transparent)]
    Rules(#[from] RuleError),
}

/// `enabled == 2`: audit configuration is locked until reboot.
const LOCKED: u32 = 2;

/// What the kernel had before the sensor became its audit daemon.
struct Saved {
    status: Status,
    rules: Option<Vec<Vec<u8>>>,
}

/// Counters since the last report.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// The kernel's `lost` counter grew by this much.
    pub kernel_lost: u64,
    /// The socket overflowed (ENOBUFS) this many times: records dropped.
    pub socket_overflows: u64,
    pub parse_errors: u64,
    /// Events sent out before complete, the coalescer being full.
    pub coalesce_evicted: u64,
    pub records_dropped: u64,
    /// The kernel's counters, when a metric report is due.
    pub status: Option<Status>,
}

pub struct AuditSource {
    pub mode: Mode,
    reader: AsyncFd<AuditSocket>,
    control: AuditSocket,
    saved: Option<Saved>,
    coalescer: Coalescer,
    pub own: OwnChanges,
    pub own_pid: u32,
    epoch: Instant,
    last_lost: Option<u32>,
    pending_report: Report,
    status_interval_ms: u64,
    metrics_interval_ms: u64,
    last_status_ms: Option<u64>,
    last_metrics_ms: u64,
    backlog_high: bool,
    batch: Vec<Message>,
    /// The sensor's `-a never,task`, while it is in.
    task_contexts: Option<NoTaskContexts>,
}

fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

impl AuditSource {
    /// `None` when the config says off. Must run inside the tokio runtime.
    pub fn start(cfg: &AuditConfig) -> Result<Option<AuditSource>, AuditError> {
        if cfg.mode == AuditMode::Off {
            return Ok(None);
        }
        let own_pid = std::process::id();
        // A mistake in the rules stops the start before the kernel is touched.
        let loaded = rules::load_config(cfg)?;
        let mut control = AuditSocket::open()?;
        let status = control.status()?;
        let other_daemon = status.pid != 0 && status.pid != own_pid && alive(status.pid);
        let mode = match (cfg.mode, other_daemon) {
            (AuditMode::Daemon, true) => return Err(AuditError::DaemonRunning(status.pid)),
            (AuditMode::Readonly, _) | (AuditMode::Auto, true) => Mode::Readonly,
            _ => Mode::Daemon,
        };
        let src = |mode, reader: AuditSocket, control| -> Result<AuditSource, AuditError> {
            reader.set_nonblocking().map_err(AuditError::Poll)?;
            reader.grow_receive_buffer(8 << 20);
            Ok(AuditSource {
                mode,
                // SAFETY: the AuditSocket owns its fd, which stays open and
                // unchanged for as long as the AsyncFd owns the AuditSocket.
                reader: unsafe { AsyncFd::register(reader) }
                    .map_err(|e| AuditError::Poll(e.into()))?,
                control,
                saved: None,
                coalescer: Coalescer::new(cfg.coalesce_timeout_ms, cfg.max_pending_events, 1024),
                own: OwnChanges::default(),
                own_pid,
                epoch: Instant::now(),
                last_lost: Some(status.lost),
                pending_report: Report::default(),
                status_interval_ms: cfg.status_interval_ms,
                metrics_interval_ms: cfg.metrics_interval_ms,
                last_status_ms: None,
                last_metrics_ms: 0,
                backlog_high: false,
                batch: Vec::new(),
                task_contexts: None,
            })
        };
        if mode == Mode::Readonly {
            let reader = AuditSocket::open_readlog()?;
            if !loaded.rules.is_empty() || loaded.delete_all {
                tracing::warn!(
                    "audit rules in the config are not loaded in read-only mode (auditd owns the rules)"
                );
            }
            if status.enabled == 0 {
                tracing::warn!(
                    "audit read-only mode, but auditing is disabled: only what the kernel logs \
                     unconditionally will be seen (PAM's messages need audit enabled)"
                );
            }
            tracing::info!(
                audit_daemon = status.pid,
                "audit: read-only listener (multicast) beside the audit daemon"
            );
            return Ok(Some(src(Mode::Readonly, reader, control)?));
        }
        // Daemon: register this process on the socket that will read.
        let mut reader = AuditSocket::open()?;
        let mut source = {
            // The ledger's clock starts with the source (`epoch`): now is 0.
            let mut own = OwnChanges::default();
            own.expect_set("audit_pid", own_pid, 0);
            match reader.set(&Status {
                mask: STATUS_PID,
                pid: own_pid,
                ..Status::default()
            }) {
                Ok(()) => {}
                Err(e) if e.errno() == Some(libc::EEXIST) && cfg.mode == AuditMode::Auto => {
                    // Another daemon registered between our look and our try.
                    tracing::info!(
                        "audit: another audit daemon registered first; read-only instead"
                    );
                    let reader = AuditSocket::open_readlog()?;
                    return Ok(Some(src(Mode::Readonly, reader, control)?));
                }
                Err(e) if e.errno() == Some(libc::EEXIST) => {
                    let pid = control.status().map(|s| s.pid).unwrap_or(0);
                    return Err(AuditError::DaemonRunning(pid));
                }
                Err(e) => return Err(e.into()),
            }
            let mut s = src(Mode::Daemon, reader, control)?;
            s.own = own;
            s.saved = Some(Saved {
                status,
                rules: None,
            });
            s
        };
        // From here on, errors must restore what was changed: `source`'s
        // Drop does.
        source.configure(cfg, &loaded, status)?;
        tracing::info!(
            backlog_limit = cfg.backlog_limit,
            previous_enabled = status.enabled,
            "audit: registered as the kernel's audit daemon (unicast)"
        );
        Ok(Some(source))
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn configure(
        &mut self,
        cfg: &AuditConfig,
        loaded: &rules::Loaded,
        before: Status,
    ) -> Result<(), AuditError> {
        let now = self.now_ms();
        if !loaded.rules.is_empty() || loaded.delete_all {
            let existing = self.control.list_rules()?;
            if let Some(s) = self.saved.as_mut() {
                s.rules = Some(existing.clone());
            }
            if loaded.delete_all {
                for r in &existing {
                    self.own.expect_rule("remove_rule", now);
                    self.control.del_rule(r)?;
                }
            }
            for r in &loaded.rules {
                self.own.expect_rule("add_rule", now);
                match self.control.add_rule(&r.data) {
                    Ok(()) => {}
                    // auditctl also treats an identical rule as loaded.
                    Err(e) if e.errno() == Some(libc::EEXIST) => {}
                    Err(e) => {
                        return Err(RuleError::Kernel {
                            rule: r.text.clone(),
                            message: e.to_string(),
                        }
                        .into());
                    }
                }
            }
            tracing::info!(rules = loaded.rules.len(), "audit: rules loaded");
        }
        let mut want = Status {
            mask: STATUS_BACKLOG_LIMIT | STATUS_BACKLOG_WAIT_TIME,
            backlog_limit: loaded.backlog_limit.unwrap_or(cfg.backlog_limit),
            // The kernel never makes a task wait for the sensor.
            backlog_wait_time: 0,
            ..Status::default()
        };
        if before.enabled == LOCKED {
            tracing::warn!(
                "audit configuration is locked (enabled=2): backlog and enable state left as they are"
            );
            return Ok(());
        }
        if let Some(f) = loaded.failure {
            want.mask |= super::netlink::STATUS_FAILURE;
            want.failure = f;
        }
        let enable = loaded.enabled.unwrap_or(1);
        if enable == 1 && before.enabled == 0 && loaded.rules.is_empty() && !loaded.delete_all {
            self.task_contexts = NoTaskContexts::install(&mut self.control);
        }
        if before.enabled != enable {
            want.mask |= STATUS_ENABLED;
            want.enabled = enable;
        }
        // The kernel logs a CONFIG_CHANGE for every field set, changed or not.
        self.expect_own(&want, now);
        self.control.set(&want)?;
        Ok(())
    }

    /// Enters the CONFIG_CHANGE records an AUDIT_SET of `want` will cause
    /// in the ledger of the sensor's own changes.
    fn expect_own(&mut self, want: &Status, now: u64) {
        for (bit, field, value) in [
            (STATUS_ENABLED, "audit_enabled", want.enabled),
            (
                super::netlink::STATUS_FAILURE,
                "audit_failure",
                want.failure,
            ),
            (
                STATUS_BACKLOG_LIMIT,
                "audit_backlog_limit",
                want.backlog_limit,
            ),
            (
                STATUS_BACKLOG_WAIT_TIME,
                "audit_backlog_wait_time",
                want.backlog_wait_time,
            ),
        ] {
            if want.mask & bit != 0 {
                self.own.expect_set(field, value, now);
            }
        }
    }

    /// Waits until records arrive; returns the events they completed.
    /// Cancel-safe: nothing is awaited after the socket was read.
    pub async fn next_events(&mut self) -> Result<Vec<AuditEvent>, AuditError> {
        self.batch.clear();
        // Records that came in while a request waited for its answer are
        // ready without the socket becoming readable again.
        let read = if self.reader.get_ref().has_stashed() {
            self.reader.get_mut().read(&mut self.batch)
        } else {
            let mut guard = self.reader.readable_mut().await.map_err(AuditError::Poll)?;
            let read = guard.get_inner_mut().read(&mut self.batch);
            guard.clear_ready();
            read
        };
        self.pending_report.socket_overflows += read.map_err(AuditError::Poll)?;
        let now = self.now_ms();
        let (out, errors) = ingest(std::mem::take(&mut self.batch), &mut self.coalescer, now);
        self.pending_report.parse_errors += errors;
        Ok(out)
    }

    /// Periodic: events that timed out, and counters since the last call.
    /// `last`: the final call before exit, which reads the counters whether
    /// due or not, so that nothing lost goes unreported.
    pub fn tick(&mut self, last: bool) -> (Vec<AuditEvent>, Report) {
        let now = self.now_ms();
        let events = self.coalescer.expire(now);
        let due = last
            || self
                .last_status_ms
                .is_none_or(|t| now.saturating_sub(t) >= self.status_interval_ms);
        if due {
            self.last_status_ms = Some(now);
            match self.control.status() {
                Ok(s) => self.check_status(s, now),
                Err(e) => tracing::debug!("AUDIT_GET failed: {e}"),
            }
            if let Some(t) = &self.task_contexts
                && !t.still_alone(&mut self.control, &mut self.own, now)
            {
                self.task_contexts = None;
            }
        }
        self.pending_report.coalesce_evicted += std::mem::take(&mut self.coalescer.evicted);
        self.pending_report.records_dropped += std::mem::take(&mut self.coalescer.records_dropped);
        (events, std::mem::take(&mut self.pending_report))
    }

    fn check_status(&mut self, s: Status, now: u64) {
        if let Some(last) = self.last_lost {
            // The counter only resets through AUDIT_SET; a reset reads as a
            // fresh start rather than a loss.
            self.pending_report.kernel_lost += u64::from(s.lost.saturating_sub(last));
        }
        self.last_lost = Some(s.lost);
        let high =
            s.backlog_limit > 0 && u64::from(s.backlog) * 10 > u64::from(s.backlog_limit) * 8;
        if high && !self.backlog_high {
            tracing::warn!(
                backlog = s.backlog,
                limit = s.backlog_limit,
                "audit backlog above 80% of its limit"
            );
        }
        let metrics_due = self.metrics_interval_ms > 0
            && now.saturating_sub(self.last_metrics_ms) >= self.metrics_interval_ms;
        if metrics_due || (high && !self.backlog_high) {
            self.last_metrics_ms = now;
            self.pending_report.status = Some(s);
        }
        self.backlog_high = high;
        if self.mode == Mode::Daemon && s.pid != self.own_pid {
            tracing::warn!(
                pid = s.pid,
                "the sensor is no longer the kernel's audit daemon"
            );
        }
    }

    /// At shutdown: what is still being assembled.
    pub fn drain(&mut self) -> Vec<AuditEvent> {
        self.coalescer.drain()
    }

    pub fn now(&self) -> u64 {
        self.now_ms()
    }

    /// Puts the kernel back as it was (daemon mode): rules, enabled,
    /// backlog settings, then unregisters. Idempotent; also run on Drop.
    pub fn restore(&mut self) {
        if let Some(t) = self.task_contexts.take() {
            let now = self.now_ms();
            t.remove(&mut self.control, &mut self.own, now);
        }
        let Some(saved) = self.saved.take() else {
            return;
        };
        if let Some(rules) = &saved.rules {
            match self.control.list_rules() {
                Ok(now) => {
                    for r in &now {
                        let _ = self.control.del_rule(r);
                    }
                }
                Err(e) => tracing::warn!("audit: cannot list rules to restore them: {e}"),
            }
            for r in rules {
                if let Err(e) = self.control.add_rule(r) {
                    tracing::warn!("audit: cannot restore a previous rule: {e}");
                }
            }
        }
        let s = saved.status;
        if s.enabled != LOCKED {
            let back = Status {
                mask: STATUS_ENABLED
                    | super::netlink::STATUS_FAILURE
                    | STATUS_BACKLOG_LIMIT
                    | STATUS_BACKLOG_WAIT_TIME,
                enabled: s.enabled,
                failure: s.failure,
                backlog_limit: s.backlog_limit,
                backlog_wait_time: s.backlog_wait_time,
                ..Status::default()
            };
            let now = self.now_ms();
            self.expect_own(&back, now);
            if let Err(e) = self.control.set(&back) {
                tracing::warn!("audit: cannot restore the previous audit settings: {e}");
            }
        }
        // Any socket of the registered process may unregister it: the
        // kernel checks the sender's pid, not its socket.
        if let Err(e) = self.control.set(&Status {
            mask: STATUS_PID,
            pid: 0,
            ..Status::default()
        }) {
            tracing::warn!("audit: cannot unregister as the audit daemon: {e}");
        }
        tracing::info!(
            enabled = s.enabled,
            backlog_limit = s.backlog_limit,
            "audit: previous state restored"
        );
    }
}

impl Drop for AuditSource {
    fn drop(&mut self) {
        self.restore();
    }
}

/// Messages off the socket into completed events; an unparsable record is
/// counted (and reported as a `probe_error` of kind `audit_parse`), never
/// fatal.
pub fn ingest(
    messages: Vec<Message>,
    coalescer: &mut Coalescer,
    now_ms: u64,
) -> (Vec<AuditEvent>, u64) {
    let mut out = Vec::new();
    let mut errors = 0;
    for m in messages {
        match record::parse(m.kind, &m.body) {
            Ok(r) => out.extend(coalescer.push(r, now_ms)),
            Err(e) => {
                errors += 1;
                tracing::debug!(kind = m.kind, "unparsable audit record: {e}");
            }
        }
    }
    (out, errors)
}

/// `source.next_events()`, or never when there is no source.
pub async fn next(source: &mut Option<AuditSource>) -> Result<Vec<AuditEvent>, AuditError> {
    match source {
        Some(s) => s.next_events().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(kind: u16, body: &[u8]) -> Message {
        Message {
            kind,
            seq: 0,
            body: body.to_vec(),
        }
    }

    #[test]
    fn malformed_records_become_a_parse_error_count() {
        let mut c = Coalescer::new(1000, 16, 64);
        let (events, errors) = ingest(
            vec![
                msg(
                    1100,
                    b"audit(1.0:1): pid=1 msg='op=PAM:authentication acct=\"a\" res=failed'",
                ),
                msg(1100, b"no stamp at all"),
                msg(1300, b"audit(oops"),
                msg(1100, &vec![b'x'; record::MAX_RECORD + 1]),
                msg(1300, b"audit(1.0:2): syscall=59 \xff\xfe pid=2"),
                msg(1320, b"audit(1.0:2): "),
            ],
            &mut c,
            0,
        );
        assert_eq!(errors, 3);
        assert_eq!(
            events.len(),
            2,
            "the good records still make events: {events:?}"
        );
    }
}
