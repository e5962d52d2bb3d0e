//! `cargo xtask`: what cargo cannot do alone for this project — toolchain
//! setup, building the eBPF object, privileged tests, benchmarks.

mod apt;
mod bench;
mod bench_bursts;
mod bench_enrich;
mod bench_machine;
mod bench_sinks;
mod bench_syscalls;
mod cmd;
mod kernels;
mod setup;
mod vm_test;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "Build, run, test and benchmark the sensor (run as root on a Linux host with BTF)",
    after_help = "On a fresh machine, as root:\n  \
                  cargo xtask run     install the build tools, build and run the sensor (JSON lines on stdout)\n  \
                  cargo xtask test    install everything, build and run every test (what CI runs)"
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
        bpf_linker_root: Option<PathBuf>,
    },
    /// Build the sensor and its eBPF object (runs setup if something is missing).
    Build {
        /// Build with the release profile (target/release/sensor).
        #[arg(long)]
        release: bool,
    },
    /// Build, then run the sensor as root (default arguments: `run`; through
    /// sudo when not root).
    Run {
        /// Build and run the release profile.
        #[arg(long)]
        release: bool,
        /// Arguments for the sensor, e.g. `-- probe` or `-- run --config sensor.toml`.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Set up what is missing, build, then run every test: unit tests and the
    /// privileged integration tests against the running kernel. Needs root.
    /// This is what CI runs.
    Test,
    /// Boot Debian's 5.10, 6.1 and 6.12 kernels in QEMU with the sensor in an
    /// initramfs and check that it loads and reports an exec on each.
    Kernels {
        /// Only this suite (bullseye, bookworm, bookworm-backports).
        #[arg(long)]
        only: Option<String>,
    },
    /// The attack scenario on Debian guests in QEMU (5.10, 6.1, 6.12, and
    /// 6.12 without BPF-LSM), verified at a collector on the host. Needs root.
    VmTest {
        /// Only this run (5.10, 6.1, 6.12, 6.12-no-bpf-lsm).
        #[arg(long)]
        only: Option<String>,
        /// Tell the guest's sensor not to capture this kind (file_attr,
        /// file_write, cred, net, system): the run must then fail, naming
        /// the steps it no longer sees.
        #[arg(long, value_name = "KIND")]
        disable: Vec<String>,
    },
    /// Exec storm and traced syscalls (chmod, connect; getppid untraced): no
    /// monitoring vs the sensor vs auditd, in one run.
    /// Writes target/bench/report.md.
    Bench {
        /// Seconds of exec storm per scenario.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Measure this sensor binary instead of building target/release/sensor.
        /// Repeatable: the traced-syscall table then measures each binary in
        /// the same run (before/after comparisons on a noisy machine); the
        /// exec storm uses the first.
        #[arg(long, value_name = "PATH")]
        sensor: Vec<PathBuf>,
        /// Only this part: exec, syscalls, bursts, startup, sinks or enrich.
        #[arg(long, value_name = "PART")]
        only: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}`: the whole chain on one line, naming the step that failed,
            // without the backtrace RUST_BACKTRACE=1 would add.
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let root = workspace_root()?;
    std::env::set_current_dir(&root).with_context(|| format!("cd {}", root.display()))?;
    match cli.command {
        Command::Setup {
            bpf_linker_root: Some(dir),
        } => {
            let dir = std::path::absolute(&dir)
                .with_context(|| format!("resolving {}", dir.display()))?;
            setup::install_bpf_linker(Some(&dir))
        }
        Command::Setup {
            bpf_linker_root: None,
        } => setup::run(),
        Command::Build { release } => build(release).map(|_| ()),
        Command::Run { release, args } => {
            let bin = build(release)?;
            let args = if args.is_empty() {
                vec!["run".to_owned()]
            } else {
                args
            };
            run_as_root(&bin, &args)
        }
        Command::Test => test(),
        Command::Kernels { only } => {
            require_root("cargo xtask kernels")?;
            let bin = build(true)?;
            kernels::run(&bin, only.as_deref())
        }
        Command::VmTest { only, disable } => {
            require_root("cargo xtask vm-test")?;
            setup::run()?;
            let bin = build(true)?;
            vm_test::run(&bin, &vm_test::Options { only, disable })
        }
        Command::Bench {
            seconds,
            sensor,
            only,
        } => {
            require_root("cargo xtask bench")?;
            let parts = bench::Parts::from_only(only.as_deref())?;
            let bins = if sensor.is_empty() {
                vec![build(true)?]
            } else {
                sensor
            };
            bench::run(&bins, seconds, parts)
        }
    }
}

/// Builds the sensor (and, through sensor/build.rs, the eBPF object).
fn build(release: bool) -> Result<PathBuf> {
    setup::ensure_build_tools()?;
    let mut c = std::process::Command::new("cargo");
    // sensor/build.rs (aya-build) runs bpf-linker from PATH.
    c.args(["build", "--package", "sensor"])
        .env("PATH", setup::path_with_cargo_bin());
    if release {
        c.arg("--release");
    }
    cmd::run(
        &mut c,
        if release {
            "cargo build --release -p sensor"
        } else {
            "cargo build -p sensor"
        },
    )?;
    Ok(target_dir()
        .join(if release { "release" } else { "debug" })
        .join("sensor"))
}

/// Cargo's target directory: `CARGO_TARGET_DIR` if set, else `target`.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from)
}

/// The README's test command and CI's (`.ci/run`): everything, from a fresh
/// machine. Each tier runs in turn; the first that fails stops the run.
fn test() -> Result<()> {
    require_root("cargo xtask test")?;
    setup::run()?;
    let bin = build(false)?;
    let bin = std::fs::canonicalize(&bin)
        .with_context(|| format!("finding the built {}", bin.display()))?;

    // Tiers 1 and 2: unit tests and the privileged integration tests on this
    // kernel, for the workspace's default members. Not `--workspace`: that
    // would take every member, and sensor-ebpf (bpfel-unknown-none, no_std)
    // must never be compiled for the host; sensor/build.rs builds it.
    println!("xtask test: cargo test (default members: unit + privileged integration)");
    cmd::run(
        std::process::Command::new("cargo")
            .args(["test", "--no-fail-fast"])
            .env("PATH", setup::path_with_cargo_bin())
            .env("SENSOR_BIN", &bin),
        "cargo test",
    )?;

    // Tier 3: the attack scenario on Debian's 5.10, 6.1 and 6.12 under
    // QEMU, verified at a collector on this host.
    println!("xtask test: the attack scenario in QEMU guests (cargo xtask vm-test)");
    let release = build(true)?;
    vm_test::run(
        &release,
        &vm_test::Options {
            only: None,
            disable: Vec::new(),
        },
    )
}

/// Runs the sensor as root: directly when we are root, else through sudo.
fn run_as_root(bin: &std::path::Path, args: &[String]) -> Result<()> {
    if is_root() {
        return cmd::run(
            std::process::Command::new(bin).args(args),
            "running the sensor",
        );
    }
    let has_sudo = std::process::Command::new("sudo")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_sudo {
        bail!(
            "the sensor loads eBPF programs and must run as root, and sudo is not available: run `cargo xtask run` as root"
        );
    }
    println!("xtask run: not root, running the sensor through sudo");
    cmd::run(
        std::process::Command::new("sudo")
            .arg("--")
            .arg(bin)
            .args(args),
        "running the sensor through sudo",
    )
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn require_root(what: &str) -> Result<()> {
    if !is_root() {
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
