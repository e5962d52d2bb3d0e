//! `sensor bench-sinks` (hidden): pushes synthetic exec events through the
//! configured sinks as fast as they take them and reports sustained
//! events/s and the CPU used, per run. Real execs cannot reach the rates a
//! sink must sustain (100,000 events/s), so `cargo xtask bench` uses this
//! to measure the delivery path alone, from `emit` to the file or socket.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{Router, Sink, SinkError};
use crate::config::sinks::SinkConfig;
use crate::event::{
    Agent, Event, EventMeta, Frozen, Host, HostOs, Id, Process, SensorFields, Shared, Text,
};

/// Keep at most this much queued per sink: measure sustained throughput,
/// not how fast a queue fills.
const HIGH_WATER: u64 = 8 << 20;

#[derive(Debug, serde::Serialize)]
pub struct Report {
    pub events: u64,
    pub seconds: f64,
    pub events_per_second: f64,
    /// user + system CPU of the whole process, in seconds.
    pub cpu_seconds: f64,
    /// cpu_seconds / seconds: 1.0 is one core busy.
    pub cores: f64,
    pub dropped: u64,
    pub bytes_per_event: u64,
}

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we own.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a valid pointer.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return 0.0;
    }
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

/// Shared parts are shared as the pipeline shares them (see `Frozen`):
/// the host, the agent and the parent by every event, the process's own
/// strings by every event of that process.
struct SharedParts {
    host: Arc<Frozen<Host>>,
    agent: Arc<Frozen<Agent>>,
    parent: Arc<Frozen<Process>>,
    name: Shared<Text>,
    executable: Shared<Text>,
    args: Shared<Vec<Text>>,
    working_directory: Shared<Text>,
}

fn sample_event(shared: &SharedParts, seq: u64) -> Event {
    let id = |n: u32, name: &str| {
        Some(Shared::new(Id {
            id: n.to_string().into(),
            name: Some(name.into()),
        }))
    };
    let meta = EventMeta {
        kind: "event",
        category: &["process"],
        type_: &["start"],
        action: "exec",
        outcome: Some("success"),
        sequence: seq,
        id: format!("bench-{seq}"),
        module: "ebpf",
    };
    Event {
        timestamp: "2026-11-23T11:19:03.123456789Z".to_owned(),
        process: Some(Process {
            pid: 4242,
            entity_id: "c017f6569481c3213ca2f99eeda4831e".to_owned(),
            name: Some(shared.name.clone()),
            executable: Some(shared.executable.clone()),
            args_count: Some(shared.args.len()),
            args: Some(shared.args.clone()),
            working_directory: Some(shared.working_directory.clone()),
            start: Some("2026-11-23T11:19:03.120000000Z".to_owned()),
            user: id(1000, "alice"),
            real_user: id(1000, "alice"),
            saved_user: id(1000, "alice"),
            group: id(1000, "alice"),
            real_group: id(1000, "alice"),
            saved_group: id(1000, "alice"),
            parent: Some(shared.parent.clone()),
            ..Process::default()
        }),
        sensor: SensorFields {
            tty: Some("/dev/pts/3".to_owned()),
            session_id: Some(7),
            ..SensorFields::default()
        },
        ..Event::new(
            String::new(),
            meta,
            shared.host.clone(),
            shared.agent.clone(),
        )
    }
}

/// Runs `events` synthetic events through `sinks`.
pub async fn run(sinks: &[SinkConfig], state_dir: &Path, events: u64) -> Result<Report, SinkError> {
    let host = Arc::new(Frozen::new(Host {
        name: "bench-host".into(),
        id: "3d1219c7c4c5404aaa1f6d2a48adfda4".into(),
        boot_id: "6e38bd36-9146-49b0-8be4-fa7a1091eb88".into(),
        os: HostOs {
            kernel: "6.18".into(),
            type_: "linux",
            name: None,
            version: None,
            platform: None,
            full: None,
        },
    }));
    let agent = Arc::new(Frozen::new(Agent {
        name: "sensor",
        type_: "sensor",
        version: env!("CARGO_PKG_VERSION"),
        id: "bench".into(),
    }));
    let parent = Arc::new(Frozen::new(Process {
        pid: 4100,
        entity_id: "a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5".to_owned(),
        name: Some(Text::from("bash").into()),
        executable: Some(Text::from("/usr/bin/bash").into()),
        ..Process::default()
    }));
    let shared = SharedParts {
        host,
        agent,
        parent,
        name: Text::from("curl").into(),
        executable: Text::from("/usr/bin/curl").into(),
        args: vec![
            Text::from("curl"),
            Text::from("-fsSL"),
            Text::from("https://example.com/install.sh"),
        ]
        .into(),
        working_directory: Text::from("/home/alice/src/project").into(),
    };
    let mut router = Router::start(sinks, state_dir)?;
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    for seq in 1..=events {
        let _ = router.emit(sample_event(&shared, seq));
        if seq % 1000 == 0 {
            let _ = router.flush();
            // Let the sink tasks run; wait while they are behind.
            tokio::task::yield_now().await;
            while router
                .sinks
                .iter()
                .any(|s| s.stats.queued_bytes.load(Ordering::Relaxed) > HIGH_WATER)
            {
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
        }
    }
    let _ = router.flush();
    // Done when every sink has written or sent everything.
    let deadline = Instant::now() + Duration::from_secs(600);
    while Instant::now() < deadline {
        let dropped: u64 = router
            .sinks
            .iter()
            .map(|s| {
                s.stats.queue_dropped.load(Ordering::Relaxed)
                    + s.stats.spool_dropped.load(Ordering::Relaxed)
            })
            .sum();
        if router
            .sinks
            .iter()
            .all(|s| s.stats.sent.load(Ordering::Relaxed) + dropped >= events)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let seconds = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let dropped = router
        .sinks
        .iter()
        .map(|s| {
            s.stats.queue_dropped.load(Ordering::Relaxed)
                + s.stats.spool_dropped.load(Ordering::Relaxed)
        })
        .sum();
    let bytes_per_event =
        serde_json::to_vec(&sample_event(&shared, events)).map_or(0, |v| v.len() as u64);
    let _ = router.shutdown().await;
    Ok(Report {
        events,
        seconds,
        events_per_second: events as f64 / seconds.max(f64::EPSILON),
        cpu_seconds: cpu,
        cores: cpu / seconds.max(f64::EPSILON),
        dropped,
        bytes_per_event,
    })
}
