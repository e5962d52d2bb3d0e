//! `sensor`: a Linux kernel-level audit sensor.
//!
//! Captures process executions, forks and exits in the kernel with eBPF,
//! enriches them with the process tree, user names and host identity, and
//! prints one ECS-shaped JSON object per line.

use sensor::{config, daemon, probe};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "sensor",
    version,
    about = "Linux kernel-level audit sensor: sees every process execution in the kernel and \
             reports it as JSON",
    long_about = "Linux kernel-level audit sensor.\n\n\
        `sensor run` (as root) loads eBPF programs into the running kernel and prints one \
        JSON object per line on stdout for every process start (exec, fork) and exit on the \
        host, with its executable, arguments, working directory, users, parent chain and \
        cgroup. Events dropped under load are reported in the stream as `lost` events, never \
        silently.\n\n\
        `sensor probe` shows what this kernel supports and which hook each event kind uses.\n\n\
        Diagnostics go to stderr; set RUST_LOG=debug for more."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Capture events and print them as JSON lines on stdout (needs root).
    Run {
        /// TOML configuration file; without it, built-in defaults are used.
        #[arg(short, long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Report kernel features (BTF, ring buffer, fentry, BPF-LSM, audit) and the
    /// hook chosen for each event kind, with the reason.
    Probe {
        /// Print the report as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Measure the sinks of a config alone: synthetic events through them as
    /// fast as they take them; prints a JSON report (used by `cargo xtask bench`).
    #[command(hide = true)]
    BenchSinks {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        #[arg(long, default_value_t = 500_000)]
        events: u64,
    },
    /// Measure enrichment alone: this process's own exec and exit records
    /// through the real pipeline, caches warm; prints a JSON report (used by
    /// `cargo xtask bench`).
    #[command(hide = true)]
    BenchEnrich {
        #[arg(long, default_value_t = 200_000)]
        events: u64,
    },
    /// List the audit rules loaded in the kernel, in auditctl syntax; with
    /// --check, translate a rules file without loading it.
    AuditRules {
        /// An audit.rules file to check and show as the kernel would list it.
        #[arg(long, value_name = "FILE")]
        check: Option<PathBuf>,
    },
    /// Check a configuration file and print the effective configuration.
    CheckConfig {
        #[arg(value_name = "FILE")]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sensor: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run { config } => {
            let config = match config {
                Some(path) => config::Config::load(&path)?,
                None => config::Config::default(),
            };
            // One thread: the pipeline is a single owner of its state, and a
            // second core is better left to the workload we observe.
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(daemon::run(config))?;
        }
        Command::Probe { json } => {
            let report = probe::run();
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{report}");
            }
        }
        Command::BenchSinks { config, events } => {
            let c = config::Config::load(&config)?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let report = rt.block_on(sensor::sink::bench::run(
                &c.sinks,
                &c.agent.state_dir,
                events,
            ))?;
            println!("{}", serde_json::to_string(&report)?);
        }
        Command::BenchEnrich { events } => {
            println!(
                "{}",
                serde_json::to_string(&sensor::pipeline::bench::run(events))?
            );
        }
        Command::AuditRules { check } => sensor::source::audit::rules::print(check.as_deref())?,
        Command::CheckConfig { config } => {
            let c = config::Config::load(&config)?;
            println!("{c:#?}");
        }
    }
    Ok(())
}
