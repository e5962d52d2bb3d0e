//! The delivery half of `cargo xtask bench`: sustained events/s through
//! one sink at a time (the JSON-lines file, syslog over TCP), measured by
//! the sensor's hidden `bench-sinks` command on synthetic exec events,
//! since real execs cannot come fast enough. The TCP collector is a
//! listener here that reads and discards, so the number is the sensor's
//! side alone. Reports; never asserts.

use std::fmt::Write as _;
use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, Result};
use serde_json::Value;

const EVENTS: u64 = 1_000_000;

/// A markdown section for the report.
pub fn run(sensor: &Path, out_dir: &Path) -> String {
    let mut r = String::new();
    let _ = writeln!(r, "\n# Sink throughput\n");
    let _ = writeln!(
        r,
        "{EVENTS} synthetic exec events (about 1.1 KiB of JSON each) through one sink at a time, as fast as \
         the sink takes them (`sensor bench-sinks`). Target: at least 100,000 events/s per sink, under one core.\n"
    );
    let _ = writeln!(r, "| sink | events/s | CPU (cores) | dropped | note |");
    let _ = writeln!(r, "|---|---:|---:|---:|---|");
    for (name, result) in [
        ("file (JSON lines)", file(sensor, out_dir)),
        (
            "syslog TCP (RFC 5424, octet counting, spooled)",
            tcp(sensor, out_dir),
        ),
    ] {
        match result {
            Ok(v) => {
                let eps = v["events_per_second"].as_f64().unwrap_or(0.0);
                let cores = v["cores"].as_f64().unwrap_or(0.0);
                let dropped = v["dropped"].as_u64().unwrap_or(u64::MAX);
                let verdict = if eps >= 100_000.0 && cores < 1.0 && dropped == 0 {
                    "meets the target"
                } else {
                    "below the target"
                };
                let _ = writeln!(
                    r,
                    "| {name} | {eps:.0} | {cores:.2} | {} | {verdict} |",
                    v["dropped"]
                );
            }
            Err(e) => {
                let _ = writeln!(
                    r,
                    "| {name} | failed | | | {} |",
                    format!("{e:#}").replace('|', "\\|")
                );
            }
        }
    }
    r
}

fn bench(sensor: &Path, dir: &Path, sinks: &str) -> Result<Value> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    // The sensor wants absolute paths in its config.
    let dir = &std::path::absolute(dir).with_context(|| format!("resolving {}", dir.display()))?;
    let cfg = dir.join("sensor.toml");
    std::fs::write(
        &cfg,
        format!("[agent]\nstate_dir = \"{}\"\n{sinks}", dir.display()),
    )
    .with_context(|| format!("writing {}", cfg.display()))?;
    crate::bench::sensor_report(
        Command::new(sensor)
            .args(["bench-sinks", "--events", &EVENTS.to_string(), "--config"])
            .arg(&cfg),
        "bench-sinks",
    )
}

fn file(sensor: &Path, out_dir: &Path) -> Result<Value> {
    let dir =
        std::path::absolute(out_dir.join("sink-file")).context("resolving the bench directory")?;
    let _ = std::fs::remove_dir_all(&dir);
    bench(
        sensor,
        &dir,
        &format!(
            "[[sinks]]\nkind = \"file\"\npath = \"{}\"\nkeep = 1\n",
            dir.join("events.jsonl").display()
        ),
    )
}

fn tcp(sensor: &Path, out_dir: &Path) -> Result<Value> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding the TCP collector")?;
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 1 << 20];
                while conn.read(&mut buf).is_ok_and(|n| n > 0) {}
            });
        }
    });
    let dir = out_dir.join("sink-tcp");
    let _ = std::fs::remove_dir_all(&dir);
    bench(
        sensor,
        &dir,
        &format!("[[sinks]]\nkind = \"syslog\"\naddress = \"tcp://127.0.0.1:{port}\"\n"),
    )
}
