//! `cargo xtask`: what cargo cannot do alone for this project — toolchain
//! setup, building the eBPF object, privileged tests, benchmarks.

mod bench;
mod cmd;
mod setup;

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "Build, run, test and benchmark the sensor (run as root on a Linux host with BTF)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Make this machine ready: nightly rust-src, bpf-linker built against the
    /// nightly toolchain's LLVM, and the Debian packages tests and benchmarks use.
    /// Idempotent: only does what is missing.
    Setup {
        /// Build bpf-linker into this directory even if one is installed
        /// (checks the from-scratch path without touching the real install).
        #[arg(long, hide = true, value_name = "DIR")]
        bpf_linker_root: Option<String>,
    },
    /// Build the sensor and its eBPF object (runs setup if something is missing).
    Build {
        #[arg(long)]
        release: bool,
    },
    /// Build, then run the sensor (default arguments: `run`).
    Run {
        #[arg(long)]
        release: bool,
        /// Arguments for the sensor, e.g. `-- probe` or `-- run --config sensor.toml`.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Build, then run every test (unit, and privileged integration tests against
    /// the running kernel). Needs root.
    Test,
    /// Exec-storm benchmark: no monitoring vs the sensor vs auditd, in one run.
    /// Writes target/bench/report.md.
    Bench {
        /// Seconds of exec storm per scenario.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let root = workspace_root()?;
    std::env::set_current_dir(&root).with_context(|| format!("cd {}", root.display()))?;
    match cli.command {
        Command::Setup { bpf_linker_root: Some(dir) } => setup::install_bpf_linker(Some(&dir)),
        Command::Setup { bpf_linker_root: None } => setup::run(),
        Command::Build { release } => build(release).map(|_| ()),
        Command::Run { release, args } => {
            require_root("cargo xtask run")?;
            let bin = build(release)?;
            let args = if args.is_empty() { vec!["run".to_owned()] } else { args };
            cmd::run(std::process::Command::new(&bin).args(&args), "the sensor")
        }
        Command::Test => test(),
        Command::Bench { seconds } => {
            require_root("cargo xtask bench")?;
            let bin = build(true)?;
            bench::run(&bin, seconds)
        }
    }
}

/// Builds the sensor (and, through sensor/build.rs, the eBPF object).
fn build(release: bool) -> Result<PathBuf> {
    setup::ensure_build_tools()?;
    let mut c = std::process::Command::new("cargo");
    c.args(["build", "--package", "sensor"]);
    if release {
        c.arg("--release");
    }
    cmd::run(&mut c, "cargo build")?;
    Ok(PathBuf::from("target").join(if release { "release" } else { "debug" }).join("sensor"))
}

fn test() -> Result<()> {
    require_root("cargo xtask test")?;
    setup::run()?;
    let bin = build(false)?;
    // Default members only: the eBPF crate is not a host crate.
    cmd::run(
        std::process::Command::new("cargo")
            .args(["test", "--no-fail-fast"])
            .env("SENSOR_BIN", std::fs::canonicalize(&bin).context("sensor binary")?),
        "cargo test",
    )
    // VM end-to-end tests (cargo xtask vm-test) will run here as well.
}

fn require_root(what: &str) -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("{what} loads eBPF programs and installs packages: run it as root");
    }
    Ok(())
}

fn workspace_root() -> Result<PathBuf> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .map(PathBuf::from)
        .context("xtask is not inside the workspace")
}
