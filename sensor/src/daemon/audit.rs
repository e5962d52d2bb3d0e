//! The audit source (and the wtmp/btmp fallback) inside `sensor run`:
//! start, events, counters, stop.

use super::RunError;
use crate::config::audit::{AuditConfig, AuditMode, UtmpMode};
use crate::event::AuditStatus;
use crate::pipeline::Pipeline;
use crate::sink::Sink;
use crate::source::audit::client::{AuditError, AuditSource, Mode, Report};
use crate::source::audit::coalesce::AuditEvent;
use crate::source::audit::login;
use crate::source::logins::{LoginsSource, watch};

/// In `auto` mode a host without audit support is not an error: the
/// sensor runs on without audit events, and says so.
pub(super) fn start(cfg: &AuditConfig) -> Result<Option<AuditSource>, RunError> {
    match AuditSource::start(cfg) {
        Ok(source) => Ok(source),
        Err(e @ AuditError::Netlink(_)) if cfg.mode == AuditMode::Auto => {
            tracing::warn!("audit events disabled: {e}");
            Ok(None)
        }
        Err(e) => Err(RunError::Audit(e)),
    }
}

pub(super) fn emit(
    source: &mut AuditSource,
    pipeline: &mut Pipeline,
    sink: &mut impl Sink,
    events: Vec<AuditEvent>,
) -> Result<(), RunError> {
    let now = source.now();
    for ev in events {
        let n = login::normalize(&ev, source.own_pid, &mut source.own, now);
        if n.tamper {
            tracing::warn!(action = n.action, pid = ?n.pid, "audit configuration changed by someone else");
        }
        sink.emit(pipeline.audit(ev, n)).map_err(RunError::Output)?;
    }
    Ok(())
}

/// Timed-out events and the counters, as in-stream events.
pub(super) fn tick(
    source: &mut Option<AuditSource>,
    pipeline: &mut Pipeline,
    sink: &mut impl Sink,
) -> Result<(), RunError> {
    let Some(s) = source.as_mut() else {
        return Ok(());
    };
    let (events, report) = s.tick(false);
    emit(s, pipeline, sink, events)?;
    report_counters(s.mode, report, pipeline, sink)
}

fn report_counters(
    mode: Mode,
    r: Report,
    pipeline: &mut Pipeline,
    sink: &mut impl Sink,
) -> Result<(), RunError> {
    let Report {
        kernel_lost,
        socket_overflows,
        parse_errors,
        coalesce_evicted,
        records_dropped,
        status,
    } = r;
    let mut out = Vec::new();
    if let Some(s) = status {
        out.push(pipeline.audit_status(AuditStatus {
            mode: mode.name(),
            enabled: s.enabled,
            daemon_pid: s.pid,
            backlog: s.backlog,
            backlog_limit: s.backlog_limit,
            backlog_wait_time: s.backlog_wait_time,
            backlog_wait_time_actual: s.backlog_wait_time_actual,
            lost: s.lost,
        }));
    }
    if kernel_lost > 0 {
        tracing::warn!(
            count = kernel_lost,
            "the kernel dropped audit records (backlog full or rate limit)"
        );
        out.push(pipeline.lost("audit", "kernel", kernel_lost));
    }
    if socket_overflows > 0 {
        // The count is of overflows; each dropped one or more records.
        tracing::warn!(
            count = socket_overflows,
            "audit socket overflowed: records dropped"
        );
        out.push(pipeline.lost("audit", "socket_overflow", socket_overflows));
    }
    if records_dropped > 0 {
        out.push(pipeline.lost("audit", "records_per_event", records_dropped));
    }
    if parse_errors > 0 {
        out.push(pipeline.probe_error("audit_parse", parse_errors));
    }
    if coalesce_evicted > 0 {
        out.push(pipeline.probe_error("audit_coalesce_full", coalesce_evicted));
    }
    for ev in out {
        sink.emit(ev).map_err(RunError::Output)?;
    }
    Ok(())
}

/// At exit: what is pending goes out, then the kernel is put back.
pub(super) fn stop(
    source: Option<AuditSource>,
    pipeline: &mut Pipeline,
    sink: &mut impl Sink,
) -> Result<(), RunError> {
    let Some(mut s) = source else { return Ok(()) };
    let events = s.drain();
    let (expired, report) = s.tick(true);
    s.restore();
    emit(
        &mut s,
        pipeline,
        sink,
        events.into_iter().chain(expired).collect(),
    )?;
    report_counters(s.mode, report, pipeline, sink)
}

/// wtmp/btmp following: as the fallback when there is no audit source, or
/// always as a cross-check.
pub(super) fn start_logins(cfg: &AuditConfig, audit: &Option<AuditSource>) -> Option<LoginsSource> {
    let on = match cfg.utmp {
        UtmpMode::Always => true,
        UtmpMode::Fallback => audit.is_none(),
        UtmpMode::Off => false,
    };
    if on {
        tracing::info!("following /var/log/wtmp and /var/log/btmp for logins");
    }
    on.then(|| LoginsSource::new(watch::default_files()))
}

pub(super) fn tick_logins(
    logins: &mut Option<LoginsSource>,
    pipeline: &mut Pipeline,
    sink: &mut impl Sink,
) -> Result<(), RunError> {
    let Some(l) = logins.as_mut() else {
        return Ok(());
    };
    for (n, sec, usec) in l.poll() {
        sink.emit(pipeline.utmp(n, sec, usec))
            .map_err(RunError::Output)?;
    }
    Ok(())
}
