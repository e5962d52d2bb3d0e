//! `sensor run`: wire the source, the pipeline and the sink together and
//! run until SIGINT/SIGTERM.

use std::path::Path;
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::signal::unix::{SignalKind, signal};

use crate::config::Config;
use crate::enrich::{host, procfs};
use crate::event::{Heartbeat, SinkHeartbeat};
use crate::pipeline::Pipeline;
use crate::sink::sequence::SequenceLease;
use crate::sink::{Router, Sink, SinkError};
use crate::source::ebpf::magic_links::{MagicLink, MagicLinks};
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
    #[error(transparent)]
    Skipped(#[from] crate::source::ebpf::skipped::SkippedError),
    #[error("cannot watch the ring buffer: {0}")]
    Poll(#[source] std::io::Error),
    #[error("cannot write events: {0}")]
    Output(#[source] std::io::Error),
    #[error("cannot install signal handlers: {0}")]
    Signals(#[source] std::io::Error),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("cannot listen on telemetry.metrics_address {addr}: {source}")]
    Metrics {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid config: {0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("cannot keep the sequence number in {dir}: {source}")]
    Sequence {
        dir: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the executable hashing thread (process.hash_executables): {0}")]
    Hasher(#[source] std::io::Error),
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
    let (lease, last_seq) =
        SequenceLease::open(&config.agent.state_dir).map_err(|source| RunError::Sequence {
            dir: config.agent.state_dir.clone(),
            source,
        })?;
    pipeline.resume_sequence(lease, last_seq);
    if let Some(hashing) = config.process.hashing() {
        pipeline.enable_hashing(hashing).map_err(RunError::Hasher)?;
    }
    // Sinks open before the kernel side loads: a bad sink fails the start
    // at once, naming it.
    let mut sink = Router::start(&config.sinks, &config.agent.state_dir)?;
    if let Some(addr) = config.telemetry.metrics_socket()? {
        let listener = crate::telemetry::server::bind(addr)
            .await
            .map_err(|source| RunError::Metrics { addr, source })?;
        crate::telemetry::server::spawn(
            listener,
            crate::telemetry::registry(&sink.metrics, sink.views()),
        );
        tracing::info!(%addr, "metrics on http://{addr}/metrics");
    }

    // Attach first, then read /proc: a process that starts in between is
    // in both, and the kernel's record (applied later) wins.
    let mut watched = crate::source::ebpf::watch::Watched::resolve(&config.watch);
    let state_dir = config.agent.state_dir.as_path();
    watched.magic_links = MagicLinks::load(state_dir);
    let kept = watched.magic_links.stats().tracked;
    if kept > 0 {
        tracing::info!(
            links = kept,
            "symlinks through magic links an earlier run saw made are followed again"
        );
    }
    let (mut source, ring) = EbpfSource::load(&config.ebpf, &config.filter, &watched)?;
    // Once the programs are attached: a link made from now on is seen
    // made, one made before is found here.
    let planted = magic_links_made_before(&watched.magic_links);
    let found = planted.len();
    if found > 0 {
        let mut with_found = watched.clone();
        with_found.magic_links.add_all(planted.iter().cloned());
        if let Err(e) = source.update_watched(&watched, &with_found) {
            tracing::warn!(
                "cannot add symlinks through magic links to the kernel's path check: {e}"
            );
        }
        watched = with_found;
    }
    if kept > 0 || found > 0 {
        // Without those gone meanwhile, with those found.
        save_magic_links(&watched.magic_links, state_dir);
    }
    pipeline.set_watched(watched);
    pipeline.set_ignored_path_prefixes(&config.filter.ignore_path_prefixes);
    let cgroup_mode = crate::source::ebpf::offsets::CgroupMode::detect();
    pipeline.seed(procfs::all_processes(
        std::path::Path::new("/proc"),
        cgroup_mode,
    ));
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
        syscalls_traced = source.syscalls.iter().filter(|t| t.status.is_ok()).count(),
        syscalls_not_traced = ?source.syscalls.iter().filter(|t| t.status.is_err()).map(|t| t.op.name()).collect::<Vec<_>>(),
        audit = audit.as_ref().map_or("off", |a| a.mode.name()),
        "sensor started"
    );

    report_restart_gaps(&mut pipeline, &mut sink, last_seq)?;
    for link in &planted {
        let event = pipeline.magic_link_found(link);
        sink.emit(event).map_err(RunError::Output)?;
    }
    let started = std::time::Instant::now();
    // SAFETY: the RingBuf owns its map fd, which stays open and unchanged for
    // as long as the AsyncFd owns the RingBuf.
    let mut ring = unsafe { AsyncFd::register(ring) }.map_err(|e| RunError::Poll(e.into()))?;
    let mut sighup = signal(SignalKind::hangup()).map_err(RunError::Signals)?;
    let heartbeat_every = config.telemetry.heartbeat_interval_s;
    let mut heartbeat = tokio::time::interval(Duration::from_secs(heartbeat_every.max(1)));
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    heartbeat.tick().await;
    let mut ticker = tokio::time::interval(Duration::from_millis(config.ebpf.counters_interval_ms));
    let batch_delay = Duration::from_millis(config.ebpf.batch_delay_ms);
    let mut decode_errors: u64 = 0;
    let mut reported_evictions: u64 = 0;

    loop {
        tokio::select! {
            guard = ring.readable_mut() => {
                let mut guard = guard.map_err(RunError::Poll)?;
                let rb = guard.get_inner_mut();
                drain(rb, &mut pipeline, &mut sink, &mut decode_errors, (&mut source, state_dir))?;
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
                    // What is in the ring buffer happened before this audit
                    // message was read (it may be waiting out the batch
                    // delay): handle it first, so the audit event finds the
                    // exec that started its process.
                    let rb = ring.get_mut();
                    drain(rb, &mut pipeline, &mut sink, &mut decode_errors, (&mut source, state_dir))?;
                    audit::emit(a, &mut pipeline, &mut sink, events?)?;
                    sink.flush().map_err(RunError::Output)?;
                }
            }
            _ = ticker.tick() => {
                pipeline.tick();
                refresh_inodes(&mut source, &mut pipeline, state_dir);
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
            _ = heartbeat.tick(), if heartbeat_every > 0 => {
                let event = pipeline.heartbeat(heartbeat_fields(&sink, heartbeat_every, started));
                sink.emit(event).map_err(RunError::Output)?;
                sink.flush().map_err(RunError::Output)?;
            }
            _ = sighup.recv() => {
                tracing::info!("SIGHUP: reopening files");
                sink.reopen();
            }
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
        }
    }
    // What the kernel already wrote is part of this run: a stop must not
    // lose it silently.
    let rb = ring.get_mut();
    drain(
        rb,
        &mut pipeline,
        &mut sink,
        &mut decode_errors,
        (&mut source, state_dir),
    )?;
    // Report what happened since the last tick before going away.
    audit::stop(audit, &mut pipeline, &mut sink)?;
    report_counters(&mut source, &mut pipeline, &mut sink, &mut decode_errors)?;
    sink.flush().map_err(RunError::Output)?;
    pipeline.close_sequence();
    sink.shutdown().await.map_err(RunError::Output)?;
    tracing::info!("sensor stopped");
    Ok(())
}

/// `paths` joined by spaces, or "none".
fn or_none(paths: &[String]) -> String {
    if paths.is_empty() {
        "none".to_owned()
    } else {
        paths.join(" ")
    }
}

/// Files the kernel side knows by inode (watched files, ignored
/// executables) get new inodes when they are replaced: look them up again
/// and update the kernel's maps. A failure leaves the earlier inodes in
/// place and is logged; the next tick tries again.
fn refresh_inodes(source: &mut EbpfSource, pipeline: &mut Pipeline, state_dir: &Path) {
    match source.refresh_watched(pipeline.watched()) {
        Ok(Some(watched)) => {
            let old = pipeline.watched();
            if !watched.magic_links.same_links(&old.magic_links) {
                save_magic_links(&watched.magic_links, state_dir);
            }
            let (added, gone) = (watched.paths_not_in(old), old.paths_not_in(&watched));
            if !added.is_empty() || !gone.is_empty() {
                tracing::info!(
                    "watched paths found again (/etc/passwd, a home or sshd_config changed): \
                     now also {}; no longer {}; kernel maps updated",
                    or_none(&added),
                    or_none(&gone)
                );
            }
            let changed = watched.changed_paths(old);
            if !changed.is_empty() {
                tracing::info!(
                    "watched paths with a new inode (replaced, created or removed): {}; \
                     kernel maps updated",
                    changed.join(" ")
                );
            }
            pipeline.set_watched(watched);
        }
        Ok(None) => {}
        // The earlier inodes stay: opens of the new file are
        // still reported, by its directory and path.
        Err(e) => tracing::warn!("cannot update the watched inodes: {e}"),
    }
    match source.refresh_ignored_executables() {
        Ok(paths) if !paths.is_empty() => tracing::info!(
            "ignored executables with a new inode (replaced or removed): {}; kernel \
             map updated",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" ")
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!("cannot update the ignored executables: {e}"),
    }
}

/// Puts the symlinks through magic links the pipeline saw made into the
/// kernel's path check (see `source::ebpf::magic_links`), and takes those
/// it saw removed out, right after the record that did it: the next
/// record (a path through the link, a rename of it, a link to it) finds
/// them as they were at its call.
fn track_magic_links(source: &mut EbpfSource, pipeline: &mut Pipeline, state_dir: &Path) {
    let changes = pipeline.take_magic_link_changes();
    if changes.is_empty() {
        return;
    }
    let mut watched = pipeline.watched().clone();
    for out in watched.magic_links.apply(changes) {
        tracing::warn!(
            "more than {} symlinks through magic links: the oldest, {}, is no longer \
             followed by the kernel's path check",
            sensor_common::MAGIC_LINKS_MAX,
            out.link.path.escape_ascii()
        );
    }
    // Kept on a failure too: the next update of the map writes them all.
    if let Err(e) = source.update_watched(pipeline.watched(), &watched) {
        tracing::warn!("cannot add symlinks through magic links to the kernel's path check: {e}");
    }
    save_magic_links(&watched.magic_links, state_dir);
    pipeline.set_watched(watched);
}

/// The symlinks through magic links in the temporary directories that
/// `links` does not hold (see `source::ebpf::magic_link_scan`), in the
/// room it leaves, each said: made before the sensor started, and not
/// seen made.
fn magic_links_made_before(links: &MagicLinks) -> Vec<MagicLink> {
    use crate::source::ebpf::magic_link_scan::{ENTRIES_MAX, SCAN_ROOTS, scan};
    let roots: Vec<&Path> = SCAN_ROOTS.iter().map(Path::new).collect();
    let found = scan(&roots, ENTRIES_MAX);
    if found.cut {
        tracing::warn!(
            "looked at only the first {ENTRIES_MAX} entries of {SCAN_ROOTS:?} for symlinks \
             through magic links that predate this run"
        );
    }
    let mut new: Vec<_> = (found.links.into_iter())
        .filter(|l| !links.tracks(&l.link.path))
        .collect();
    // In the room left only: a flood of them in /tmp must not push out
    // the links seen made.
    let room = sensor_common::MAGIC_LINKS_MAX.saturating_sub(links.stats().tracked);
    if new.len() > room {
        tracing::warn!(
            "{} symlinks through magic links that predate this run, room for {room}: the \
             others are not followed",
            new.len()
        );
        new.truncate(room);
    }
    for l in &new {
        tracing::warn!(
            link = %l.link.path.escape_ascii(),
            target = %l.link.written.escape_ascii(),
            "a symlink through a magic link that predates this run: paths through it are \
             followed from now on"
        );
    }
    new
}

/// Keeps the symlinks through magic links for the next run; a failure is
/// said, and the next change tries again.
fn save_magic_links(links: &MagicLinks, state_dir: &Path) {
    if let Err(e) = links.save(state_dir) {
        tracing::warn!(
            "cannot keep the symlinks through magic links in {}: {e} (a restart would \
             forget them)",
            state_dir.display()
        );
    }
}

/// Decodes and emits every record waiting in the ring buffer; each
/// symlink through a magic link one made goes to the kernel at once (see
/// [`track_magic_links`]).
fn drain(
    rb: &mut aya::maps::RingBuf<aya::maps::MapData>,
    pipeline: &mut Pipeline,
    sink: &mut Router,
    decode_errors: &mut u64,
    (source, state_dir): (&mut EbpfSource, &Path),
) -> Result<(), RunError> {
    while let Some(item) = rb.next() {
        match decode::decode(&item) {
            Ok(ev) => {
                let symlink = crate::source::ebpf::symlinks_sync::counted(&ev);
                if let Some(event) = pipeline.handle(ev) {
                    sink.emit(event).map_err(RunError::Output)?;
                }
                track_magic_links(source, pipeline, state_dir);
                // After its links are in the kernel's path check: until
                // then, it sends every path call.
                if symlink {
                    source.symlink_handled();
                }
            }
            Err(e) => {
                *decode_errors += 1;
                tracing::warn!("undecodable ring buffer record: {e}");
            }
        }
    }
    Ok(())
}

/// After a crash, numbers leased by the earlier run never reached a
/// sink's spool: say so, with the range, before anything else.
fn report_restart_gaps(
    pipeline: &mut Pipeline,
    sink: &mut Router,
    last_seq: u64,
) -> Result<(), RunError> {
    let gaps: Vec<(&'static str, u64)> = sink
        .sinks
        .iter()
        .filter_map(|s| s.resumed_seq.filter(|&r| r < last_seq).map(|r| (s.name, r)))
        .collect();
    for (name, reached) in gaps {
        tracing::warn!(
            sink = name,
            first = reached + 1,
            last = last_seq,
            "events of the previous run were only in memory when it stopped: reported as a gap"
        );
        let event = pipeline.sequence_gap(name, reached + 1, last_seq);
        sink.emit(event).map_err(RunError::Output)?;
    }
    Ok(())
}

fn heartbeat_fields(router: &Router, interval_s: u64, started: std::time::Instant) -> Heartbeat {
    use std::sync::atomic::Ordering::Relaxed;
    Heartbeat {
        interval_s,
        uptime_s: started.elapsed().as_secs(),
        events: router.events.load(Relaxed),
        sinks: router
            .sinks
            .iter()
            .map(|s| SinkHeartbeat {
                name: s.name,
                kind: s.kind,
                sent: s.stats.sent.load(Relaxed),
                queue_dropped: s.stats.queue_dropped.load(Relaxed),
                spool_dropped: s.stats.spool_dropped.load(Relaxed),
                truncated: s.stats.truncated.load(Relaxed),
                oversize_dropped: s.stats.oversize_dropped.load(Relaxed),
                spool_bytes: s.stats.spool_bytes.load(Relaxed),
                spool_pending: s.stats.spool_pending.load(Relaxed),
                connected: s.stats.connected.load(Relaxed) == 1,
            })
            .collect(),
        container_lookups: None,
        processes_adopted: None,
        processes_unresolved: None,
        path_filter_userspace_drops: None,
        path_resolution: None,
        magic_links: None,
        executable_hashes: None,
    }
}

/// Turns counter deltas into in-stream events: nothing is lost silently.
fn report_counters(
    source: &mut EbpfSource,
    pipeline: &mut Pipeline,
    sink: &mut Router,
    decode_errors: &mut u64,
) -> Result<(), RunError> {
    source.catch_up_symlinks();
    for (kind, count) in source.new_losses()? {
        tracing::warn!(
            kind = kind.name(),
            count,
            "kernel dropped events: ring buffer full"
        );
        sink.emit(pipeline.lost("ring_buffer", kind.name(), count))
            .map_err(RunError::Output)?;
    }
    for (program, count) in source.new_skipped()? {
        tracing::warn!(
            program,
            count,
            "kernel skipped program runs (the program was running on that CPU already)"
        );
        sink.emit(pipeline.lost("kernel_skipped", program, count))
            .map_err(RunError::Output)?;
    }
    for (kind, count) in source.new_errors()? {
        tracing::debug!(kind = kind.name(), count, "in-kernel read failures");
        sink.emit(pipeline.probe_error(kind.name(), count))
            .map_err(RunError::Output)?;
    }
    if *decode_errors > 0 {
        sink.emit(pipeline.probe_error("decode", *decode_errors))
            .map_err(RunError::Output)?;
        *decode_errors = 0;
    }
    for (source, sink_name, count) in sink.new_drops() {
        tracing::warn!(sink = sink_name, count, source, "sink dropped events");
        sink.emit(pipeline.lost(source, sink_name, count))
            .map_err(RunError::Output)?;
    }
    Ok(())
}
