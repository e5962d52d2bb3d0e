//! `sensor run`: wire the source, the pipeline and the sink together and
//! run until SIGINT/SIGTERM.

use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::signal::unix::{SignalKind, signal};

use crate::config::Config;
use crate::enrich::{host, procfs};
use crate::pipeline::Pipeline;
use crate::sink::{JsonLines, Sink};
use crate::source::ebpf::{EbpfSource, LoadError, decode};

mod audit;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(
        "the sensor must run as root (it loads eBPF programs and reads every process); \
         euid is {0}"
    )]
    NotRoot(u32),
    #[error(transparent)]
    Host(#[from] host::HostError),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("cannot watch the ring buffer: {0}")]
    Poll(#[source] std::io::Error),
    #[error("cannot write events: {0}")]
    Output(#[source] std::io::Error),
    #[error("cannot install signal handlers: {0}")]
    Signals(#[source] std::io::Error),
    #[error("audit: {0}")]
    Audit(#[from] crate::source::audit::client::AuditError),
}

pub async fn run(config: Config) -> Result<(), RunError> {
    let euid = nix::unistd::geteuid();
    if !euid.is_root() {
        return Err(RunError::NotRoot(euid.as_raw()));
    }
    let host = host::host()?;
    let agent = host::agent(&config.agent.state_dir)?;
    let mut pipeline = Pipeline::new(
        host,
        agent,
        config.process.table_size,
        config.process.ancestry_depth,
        procfs::clock_ticks_per_second(),
    );

    // Attach first, then read /proc: a process that starts in between is
    // in both, and the kernel's record (applied later) wins.
    let (mut source, ring) = EbpfSource::load(&config.ebpf)?;
    let cgroup_mode = crate::source::ebpf::offsets::CgroupMode::detect();
    pipeline.seed(procfs::all_processes(std::path::Path::new("/proc"), cgroup_mode));
    // Parsing the kernel's BTF and the object takes tens of MiB that are
    // free now; hand them back instead of carrying them as RSS forever.
    // SAFETY: malloc_trim has no preconditions.
    unsafe { libc::malloc_trim(0) };
    // Handlers before anything that must be undone at exit (the audit
    // daemon registration): a signal in between would otherwise kill the
    // sensor with the kernel still pointing at it.
    let mut sigterm = signal(SignalKind::terminate()).map_err(RunError::Signals)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(RunError::Signals)?;
    let mut audit = audit::start(&config.audit)?;
    let mut logins = audit::start_logins(&config.audit, &audit);
    tracing::info!(
        processes = pipeline.table().process_count(),
        missing_kernel_fields = ?source.missing_fields,
        audit = audit.as_ref().map_or("off", |a| a.mode.name()),
        "sensor started"
    );

    let mut sink = JsonLines::new(std::io::stdout());
    // SAFETY: the RingBuf owns its map fd, which stays open and unchanged for
    // as long as the AsyncFd owns the RingBuf.
    let mut ring = unsafe { AsyncFd::register(ring) }.map_err(|e| RunError::Poll(e.into()))?;
    let mut ticker = tokio::time::interval(Duration::from_millis(config.ebpf.counters_interval_ms));
    let batch_delay = Duration::from_millis(config.ebpf.batch_delay_ms);
    let mut decode_errors: u64 = 0;
    let mut reported_evictions: u64 = 0;

    loop {
        tokio::select! {
            guard = ring.readable_mut() => {
                let mut guard = guard.map_err(RunError::Poll)?;
                let rb = guard.get_inner_mut();
                while let Some(item) = rb.next() {
                    match decode::decode(&item) {
                        Ok(ev) => {
                            let event = pipeline.handle(ev);
                            sink.emit(&event).map_err(RunError::Output)?;
                        }
                        Err(e) => {
                            decode_errors += 1;
                            tracing::warn!("undecodable ring buffer record: {e}");
                        }
                    }
                }
                guard.clear_ready();
                sink.flush().map_err(RunError::Output)?;
                if !batch_delay.is_zero() {
                    // The ring buffer holds what arrives meanwhile; the
                    // kernel never waits for us.
                    tokio::time::sleep(batch_delay).await;
                }
            }
            events = crate::source::audit::client::next(&mut audit) => {
                if let Some(a) = audit.as_mut() {
                    audit::emit(a, &mut pipeline, &mut sink, events?)?;
                    sink.flush().map_err(RunError::Output)?;
                }
            }
            _ = ticker.tick() => {
                pipeline.tick();
                audit::tick(&mut audit, &mut pipeline, &mut sink)?;
                audit::tick_logins(&mut logins, &mut pipeline, &mut sink)?;
                let evicted = pipeline.table().evicted();
                if evicted > reported_evictions {
                    tracing::warn!(
                        evicted = evicted - reported_evictions,
                        size = config.process.table_size,
                        "process table full: oldest processes evicted (raise process.table_size)"
                    );
                    reported_evictions = evicted;
                }
                report_counters(&mut source, &mut pipeline, &mut sink, &mut decode_errors)?;
                sink.flush().map_err(RunError::Output)?;
            }
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
        }
    }
    // Report what happened since the last tick before going away.
    audit::stop(audit, &mut pipeline, &mut sink)?;
    report_counters(&mut source, &mut pipeline, &mut sink, &mut decode_errors)?;
    sink.flush().map_err(RunError::Output)?;
    tracing::info!("sensor stopped");
    Ok(())
}

/// Turns counter deltas into in-stream events: nothing is lost silently.
fn report_counters(
    source: &mut EbpfSource,
    pipeline: &mut Pipeline,
    sink: &mut impl Sink,
    decode_errors: &mut u64,
) -> Result<(), RunError> {
    for (kind, count) in source.new_losses()? {
        tracing::warn!(kind = kind.name(), count, "kernel dropped events: ring buffer full");
        sink.emit(&pipeline.lost("ring_buffer", kind.name(), count)).map_err(RunError::Output)?;
    }
    for (kind, count) in source.new_errors()? {
        tracing::debug!(kind = kind.name(), count, "in-kernel read failures");
        sink.emit(&pipeline.probe_error(kind.name(), count)).map_err(RunError::Output)?;
    }
    if *decode_errors > 0 {
        sink.emit(&pipeline.probe_error("decode", *decode_errors)).map_err(RunError::Output)?;
        *decode_errors = 0;
    }
    Ok(())
}
