//! `cargo xtask setup`: everything a fresh machine needs, installed by the
//! project itself. Every step checks first and skips what is already there.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context as _, Result, bail};

use crate::cmd;

/// Debian packages the tests and the benchmark use. Later work adds here.
pub const DEBIAN_PACKAGES: &[&str] = &[
    // Inspecting loaded programs when a test fails.
    "bpftool",
    // The benchmark compares against auditd.
    "auditd",
    // ps, pkill and friends for scripts.
    "procps",
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
    ensure_rust_src()?;
    ensure_bpf_linker()
}

fn ensure_rust_src() -> Result<()> {
    let installed = cmd::stdout(
        Command::new("rustup").args(["component", "list", "--toolchain", "nightly", "--installed"]),
        "listing the nightly toolchain's components",
    )?;
    if installed.lines().any(|l| l.starts_with("rust-src")) {
        println!("setup: nightly rust-src present");
        return Ok(());
    }
    println!("setup: installing rust-src for the nightly toolchain (build-std needs it)");
    cmd::run(
        Command::new("rustup").args(["component", "add", "rust-src", "--toolchain", "nightly"]),
        "rustup component add rust-src",
    )
}

fn cargo_home() -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cargo"))
}

fn ensure_bpf_linker() -> Result<()> {
    let works = Command::new("bpf-linker")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if works {
        println!("setup: bpf-linker present");
        return Ok(());
    }
    install_bpf_linker(None)
}

/// Builds bpf-linker against the nightly toolchain's own libLLVM: neither
/// the LLVM it defaults to nor a system libLLVM is available here (see
/// shared/TOOLCHAIN.md). `root` installs elsewhere than ~/.cargo/bin.
pub fn install_bpf_linker(root: Option<&str>) -> Result<()> {
    let sysroot = cmd::stdout(
        Command::new("rustc").args(["+nightly", "--print", "sysroot"]),
        "finding the nightly sysroot",
    )?;
    let lib = PathBuf::from(sysroot.trim()).join("lib");
    let version = cmd::stdout(Command::new("rustc").args(["+nightly", "-vV"]), "reading nightly's LLVM version")?;
    let major = llvm_major(&version).context("`rustc +nightly -vV` printed no LLVM version")?;
    let so = std::fs::read_dir(&lib)
        .with_context(|| format!("reading {}", lib.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("libLLVM.so.") || (n.starts_with("libLLVM-") && n.ends_with(".so")))
        .with_context(|| format!("no libLLVM shared library in {}", lib.display()))?;
    // bpf-linker keeps an rpath to this prefix: it must stay where it is.
    let prefix = cargo_home().join("bpf-linker-llvm");
    let prefix_lib = prefix.join("lib");
    std::fs::create_dir_all(&prefix_lib).with_context(|| format!("creating {}", prefix_lib.display()))?;
    for name in ["libLLVM.so", so.as_str()] {
        let link = prefix_lib.join(name);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(lib.join(&so), &link)
            .with_context(|| format!("linking {} to {}", link.display(), lib.join(&so).display()))?;
    }
    println!("setup: building bpf-linker {BPF_LINKER_VERSION} against nightly's LLVM {major} ({so})");
    let mut c = Command::new("cargo");
    c.args(["install", "bpf-linker", "--locked", "--version", BPF_LINKER_VERSION, "--no-default-features"])
        .args(["--features", &format!("llvm-{major}")])
        .env("LLVM_PREFIX", &prefix);
    if let Some(root) = root {
        c.args(["--root", root]);
    }
    cmd::run(&mut c, "cargo install bpf-linker")
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
    let missing: Vec<&str> = packages.iter().copied().filter(|p| !dpkg_installed(p)).collect();
    if missing.is_empty() {
        println!("setup: Debian packages present ({})", packages.join(", "));
        return Ok(());
    }
    println!("setup: installing Debian packages: {}", missing.join(" "));
    cmd::run(
        Command::new("apt-get").arg("update").env("DEBIAN_FRONTEND", "noninteractive"),
        "apt-get update",
    )?;
    // Packages with daemons (auditd) must not start them: a running auditd
    // would own the audit netlink socket the sensor and its tests use.
    // policy-rc.d exit 101 is Debian's standard "do not start services".
    let policy = PathBuf::from("/usr/sbin/policy-rc.d");
    let had_policy = policy.exists();
    if !had_policy {
        std::fs::write(&policy, "#!/bin/sh\nexit 101\n").context("writing /usr/sbin/policy-rc.d")?;
        set_executable(&policy)?;
    }
    let installed = cmd::run(
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
        "apt-get install",
    );
    if !had_policy {
        std::fs::remove_file(&policy).context("removing /usr/sbin/policy-rc.d")?;
    }
    installed?;
    let still: Vec<&str> = missing.into_iter().filter(|p| !dpkg_installed(p)).collect();
    if !still.is_empty() {
        bail!("apt-get reported success but these packages are not installed: {}", still.join(", "));
    }
    Ok(())
}

fn dpkg_installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
}

fn set_executable(path: &std::path::Path) -> Result<()> {
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
}
