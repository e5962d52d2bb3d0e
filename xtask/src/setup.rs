//! `cargo xtask setup`: everything a fresh machine needs, installed by the
//! project itself. Every step checks first, says what it found, and skips
//! what is already there.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::cmd;

/// Debian packages the tests and the benchmark use. Later work adds here.
pub const DEBIAN_PACKAGES: &[&str] = &[
    // Inspecting loaded programs when a test fails; the benchmark reads the
    // programs' run time with it.
    "bpftool",
    // The benchmark compares against auditd. Installed stopped: see
    // `keep_services_stopped`.
    "auditd",
    // ps, pkill and friends for scripts.
    "procps",
    // Container tests: a real podman container (runc: crun refuses this
    // machine's hybrid cgroups), its image imported from a busybox rootfs.
    "podman",
    "runc",
    "busybox-static",
    // setcap/getcap: the file-capability tests set a real security.capability.
    "libcap2-bin",
    // setfattr: an unprivileged security.capability write (setcap refuses
    // to try without CAP_SETFCAP).
    "attr",
    // mkfs.btrfs: a watched file on a btrfs subvolume, whose stat device is
    // not its superblock's (the root filesystem of Fedora and openSUSE).
    "btrfs-progs",
    // mkfs.ext4: a fresh ext4, whose inode numbers are reused in a known
    // order, for the watched-inode generation test.
    "e2fsprogs",
    // Delivery tests: a real rsyslog receives the syslog sink over TCP and
    // TLS (gnutls driver); certificates are made at test time with openssl.
    "rsyslog",
    "rsyslog-gnutls",
    "openssl",
    // Audit tests: their own sshd on a loopback port, password logins typed
    // by sshpass. policy-rc.d keeps the package's service from starting;
    // it is not in SERVICES_KEPT_STOPPED, whose kill of every process named
    // sshd could cut a developer's own ssh session.
    "openssh-server",
    "sshpass",
    // vm-test: the guest's root filesystem is built with mmdebstrap; ssh
    // (openssh-client, with the server above) drives the scenario, whose
    // host-side listener is a python3 one-liner.
    "mmdebstrap",
    "python3",
    // The kernel's syscall numbers (asm/unistd_32.h, unistd_x32.h), which
    // the daemon's ia32 and x32 tables are checked against.
    "linux-libc-dev",
];

/// Services that packages above would start and that must not keep
/// running: a running auditd owns the audit netlink socket (unicast) that
/// the sensor and its tests use. (package, daemon's command name, commands
/// that undo what its start did once it is stopped.)
const SERVICES_KEPT_STOPPED: &[(&str, &str, &[&[&str]])] = &[
    (
        "auditd",
        "auditd",
        // Its start loads Debian's rules and enables auditing: delete the rules
        // and switch auditing off again, as the kernel had it.
        &[&["auditctl", "-D"], &["auditctl", "-e", "0"]],
    ),
    // The delivery tests start their own rsyslogd in the foreground with a
    // generated config; the system one would hold /dev/log.
    ("rsyslog", "rsyslogd", &[]),
];

/// bpf-linker release known to build against the nightly's LLVM here.
const BPF_LINKER_VERSION: &str = "0.13.0";

pub fn run() -> Result<()> {
    ensure_build_tools()?;
    ensure_debian_packages(DEBIAN_PACKAGES)?;
    println!("setup: done");
    Ok(())
}

/// What `cargo build -p sensor` needs: nightly rust-src and bpf-linker.
pub fn ensure_build_tools() -> Result<()> {
    ensure_rust_src().context("setup step 1/3 (nightly rust-src)")?;
    ensure_bpf_linker().context("setup step 2/3 (bpf-linker)")
}

fn ensure_rust_src() -> Result<()> {
    let installed = cmd::stdout(
        Command::new("rustup").args(["component", "list", "--toolchain", "nightly", "--installed"]),
        "listing the nightly toolchain's components (is the nightly toolchain installed?)",
    )?;
    if installed.lines().any(|l| l.starts_with("rust-src")) {
        println!("setup: nightly rust-src present, skipped");
        return Ok(());
    }
    println!("setup: installing rust-src for the nightly toolchain (build-std needs it)");
    cmd::run(
        Command::new("rustup").args(["component", "add", "rust-src", "--toolchain", "nightly"]),
        "rustup component add rust-src --toolchain nightly",
    )
}

fn cargo_home() -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cargo")
        })
}

/// PATH with cargo's bin directory in front, so that a bpf-linker installed
/// by `setup` is found by aya-build even when the caller's PATH lacks it.
pub fn path_with_cargo_bin() -> OsString {
    let mut dirs = vec![cargo_home().join("bin")];
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    std::env::join_paths(dirs).unwrap_or_else(|_| std::env::var_os("PATH").unwrap_or_default())
}

/// Whether `bpf-linker --version` works: the binary exists *and* finds the
/// libLLVM it was linked against (a nightly update removes the old one).
fn bpf_linker_works(bin: &Path) -> bool {
    Command::new(bin)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn ensure_bpf_linker() -> Result<()> {
    let on_path = Command::new("bpf-linker")
        .arg("--version")
        .env("PATH", path_with_cargo_bin())
        .output()
        .ok()
        .filter(|o| o.status.success());
    if let Some(out) = on_path {
        println!(
            "setup: {} present, skipped",
            String::from_utf8_lossy(&out.stdout).trim()
        );
        return Ok(());
    }
    install_bpf_linker(None)
}

/// Builds bpf-linker against the nightly toolchain's own libLLVM: neither
/// the LLVM it defaults to nor a system libLLVM is available here (see
/// shared/TOOLCHAIN.md). Without `root` it installs into ~/.cargo/bin with
/// its LLVM prefix in ~/.cargo/bpf-linker-llvm; with `root` (the hidden
/// `setup --bpf-linker-root DIR`, to check this path from scratch without
/// touching a working install) both go under `root`.
pub fn install_bpf_linker(root: Option<&Path>) -> Result<()> {
    let sysroot = cmd::stdout(
        Command::new("rustc").args(["+nightly", "--print", "sysroot"]),
        "finding the nightly sysroot",
    )?;
    let lib = PathBuf::from(sysroot.trim()).join("lib");
    let version = cmd::stdout(
        Command::new("rustc").args(["+nightly", "-vV"]),
        "reading nightly's LLVM version",
    )?;
    let major =
        llvm_major(&version).context("`rustc +nightly -vV` printed no `LLVM version:` line")?;
    let so = std::fs::read_dir(&lib)
        .with_context(|| format!("reading {}", lib.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| is_libllvm(n))
        .with_context(|| format!("no libLLVM shared library in {}", lib.display()))?;
    // bpf-linker keeps an rpath to this prefix: it must stay where it is.
    let prefix = root
        .map(Path::to_path_buf)
        .unwrap_or_else(cargo_home)
        .join("bpf-linker-llvm");
    let prefix_lib = prefix.join("lib");
    std::fs::create_dir_all(&prefix_lib)
        .with_context(|| format!("creating {}", prefix_lib.display()))?;
    let target = lib.join(&so);
    for name in ["libLLVM.so", so.as_str()] {
        let link = prefix_lib.join(name);
        if std::fs::read_link(&link).is_ok_and(|t| t == target) {
            continue;
        }
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&target, &link)
            .with_context(|| format!("linking {} to {}", link.display(), target.display()))?;
    }
    println!(
        "setup: building bpf-linker {BPF_LINKER_VERSION} against nightly's LLVM {major} ({so}, prefix {}); \
         about a minute on 2 cores",
        prefix.display()
    );
    let mut c = Command::new("cargo");
    // --force: an install of the same version whose libLLVM went away with a
    // nightly update must be rebuilt, not skipped as "already installed".
    c.args([
        "install",
        "bpf-linker",
        "--locked",
        "--force",
        "--version",
        BPF_LINKER_VERSION,
    ])
    .args([
        "--no-default-features",
        "--features",
        &format!("llvm-{major}"),
    ])
    .env("LLVM_PREFIX", &prefix);
    if let Some(root) = root {
        c.arg("--root").arg(root);
    }
    cmd::run(&mut c, "cargo install bpf-linker")?;
    let bin = root
        .map(Path::to_path_buf)
        .unwrap_or_else(cargo_home)
        .join("bin/bpf-linker");
    if !bpf_linker_works(&bin) {
        bail!(
            "{} was installed but `{} --version` fails",
            bin.display(),
            bin.display()
        );
    }
    println!("setup: installed {}", bin.display());
    Ok(())
}

/// `libLLVM.so.22.1-rust-1.97.0-nightly` (current) or `libLLVM-22-rust-….so` (older toolchains).
fn is_libllvm(name: &str) -> bool {
    name.starts_with("libLLVM.so.") || (name.starts_with("libLLVM-") && name.ends_with(".so"))
}

/// "LLVM version: 22.1.4" → 22.
fn llvm_major(rustc_vv: &str) -> Option<u32> {
    rustc_vv
        .lines()
        .find_map(|l| l.strip_prefix("LLVM version: "))
        .and_then(|v| v.split('.').next())
        .and_then(|m| m.trim().parse().ok())
}

fn ensure_debian_packages(packages: &[&str]) -> Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| !dpkg_installed(p))
        .collect();
    if missing.is_empty() {
        println!(
            "setup: Debian packages present ({}), skipped",
            packages.join(", ")
        );
        return Ok(());
    }
    install_debian_packages(&missing).context("setup step 3/3 (Debian packages)")?;
    keep_services_stopped(&missing)
}

fn install_debian_packages(missing: &[&str]) -> Result<()> {
    println!("setup: installing Debian packages: {}", missing.join(" "));
    cmd::run(
        Command::new("apt-get")
            .args(["update", "-q"])
            .env("DEBIAN_FRONTEND", "noninteractive"),
        "apt-get update",
    )?;
    // Packages with daemons (auditd) must not start them. policy-rc.d exit
    // 101 is Debian's standard "do not start services"; the machine image
    // may already have one, otherwise ours is there for the install only.
    let policy = PathBuf::from("/usr/sbin/policy-rc.d");
    let had_policy = policy.exists();
    if !had_policy {
        std::fs::write(
            &policy,
            "#!/bin/sh\n# cargo xtask setup: no service starts during install\nexit 101\n",
        )
        .context("writing /usr/sbin/policy-rc.d")?;
        set_executable(&policy)?;
    }
    let installed = cmd::run(
        Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(missing)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(std::process::Stdio::null()),
        "apt-get install",
    );
    if !had_policy {
        std::fs::remove_file(&policy).context("removing /usr/sbin/policy-rc.d")?;
    }
    installed?;
    let still: Vec<&str> = missing
        .iter()
        .copied()
        .filter(|p| !dpkg_installed(p))
        .collect();
    if !still.is_empty() {
        bail!(
            "apt-get reported success but these packages are not installed: {}",
            still.join(", ")
        );
    }
    Ok(())
}

/// After installing a package with a daemon, make sure the daemon is not
/// running and (under systemd) not enabled, whatever policy-rc.d said.
/// Only for packages this run installed: a daemon the user runs on
/// purpose is left alone.
fn keep_services_stopped(just_installed: &[&str]) -> Result<()> {
    let systemd = Path::new("/run/systemd/system").is_dir();
    for &(package, daemon, undo) in SERVICES_KEPT_STOPPED {
        if !just_installed.contains(&package) {
            continue;
        }
        if systemd {
            // Not fatal: a unit may be missing or already disabled.
            let _ = Command::new("systemctl")
                .args(["disable", "--now", daemon])
                .status();
        }
        let pids = pids_named(daemon);
        if pids.is_empty() {
            println!("setup: {daemon} installed and not running (kept stopped)");
            continue;
        }
        println!("setup: stopping {daemon} (pids {pids:?}) started by its package");
        for &pid in &pids {
            // SAFETY: kill has no memory-safety preconditions; pid is a process named `daemon`.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while !pids_named(daemon).is_empty() {
            if Instant::now() > deadline {
                bail!("setup: {daemon} is still running 10 s after SIGTERM; stop it by hand");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        for argv in undo {
            println!("setup: {}", argv.join(" "));
            cmd::stdout(
                Command::new(argv[0]).args(&argv[1..]),
                &format!("undoing {daemon}'s start: {}", argv.join(" ")),
            )?;
        }
    }
    Ok(())
}

/// Pids of processes whose command name is exactly `name`.
pub fn pids_named(name: &str) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()))
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim_end() == name)
        })
        .collect()
}

fn dpkg_installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
}

fn set_executable(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("chmod {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llvm_major_is_read_from_rustc_output() {
        let vv = "rustc 1.97.0-nightly\nbinary: rustc\nLLVM version: 22.1.4\n";
        assert_eq!(llvm_major(vv), Some(22));
        assert_eq!(llvm_major("rustc 1.0\n"), None);
    }

    #[test]
    fn libllvm_names_of_both_toolchain_layouts_are_recognised() {
        assert!(is_libllvm("libLLVM.so.22.1-rust-1.97.0-nightly"));
        assert!(is_libllvm("libLLVM-19-rust-1.84.0-nightly.so"));
        assert!(!is_libllvm("librustc_driver-1234.so"));
    }
}
