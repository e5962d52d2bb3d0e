//! The guest image: a Debian bookworm root filesystem built by mmdebstrap
//! with every kernel the runs boot (bullseye's 5.10, bookworm's 6.1,
//! bookworm-backports' 6.12) installed in it, so each kernel has its own
//! modules and the initrd its package generated (virtio_blk is a module
//! in Debian's kernels). Built once and cached: the cache key covers
//! everything that goes into the image, so a change to the package list or
//! to scripts/vm-guest-setup.sh builds a new one.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context as _, Result, bail};

use crate::cmd;

/// Images live here between runs; one directory per cache key.
const CACHE: &str = "/var/cache/sensor-vm";
const SETUP_SCRIPT: &str = "scripts/vm-guest-setup.sh";
/// Debian's packages in the guest, besides the kernels. openssh-server,
/// sudo and podman are what the scenario attacks and uses; auditd only
/// for auditctl (its daemon is masked); busybox-static fills the
/// container image; perl runs the memfd step; iptables is what podman's
/// netavark needs; dbus lets podman talk to systemd.
const PACKAGES: &[&str] = &[
    "systemd-sysv",
    "dbus",
    "udev",
    "openssh-server",
    "sudo",
    "podman",
    "iptables",
    "libcap2-bin",
    "auditd",
    "busybox-static",
    "cron",
    "procps",
    "iproute2",
    "kmod",
    "initramfs-tools",
    "perl",
];
/// The non-root user the scenario brute-forces, and its weak password.
pub const GUEST_USER: &str = "dev";
pub const GUEST_PASSWORD: &str = "sunshine1";
const DISK_SIZE: &str = "4G";

pub struct Image {
    dir: PathBuf,
}

/// A kernel to boot with `-kernel`/`-initrd`.
pub struct Kernel {
    pub vmlinuz: PathBuf,
    pub initrd: PathBuf,
}

impl Image {
    /// The cached image for `kernels` (package names), built if missing.
    pub fn ensure(kernels: &[String]) -> Result<Image> {
        let script =
            std::fs::read(SETUP_SCRIPT).with_context(|| format!("reading {SETUP_SCRIPT}"))?;
        let mut spec = script;
        for p in PACKAGES
            .iter()
            .map(|s| s.to_string())
            .chain(kernels.iter().cloned())
        {
            spec.extend_from_slice(p.as_bytes());
            spec.push(0);
        }
        spec.extend_from_slice(format!("{GUEST_USER}:{GUEST_PASSWORD}:{DISK_SIZE}").as_bytes());
        let dir = PathBuf::from(CACHE).join(format!("bookworm-{:016x}", fnv1a(&spec)));
        let image = Image { dir };
        if image.disk().exists() {
            println!("vm-test: guest image cached at {}", image.dir.display());
            return Ok(image);
        }
        image.build(kernels)?;
        Ok(image)
    }

    pub fn disk(&self) -> PathBuf {
        self.dir.join("disk.raw")
    }

    /// The private key that logs in as the guest's root.
    pub fn key(&self) -> PathBuf {
        self.dir.join("root-key")
    }

    pub fn kernel(&self, package: &str) -> Result<Kernel> {
        let release = package.trim_start_matches("linux-image-");
        let k = Kernel {
            vmlinuz: self.dir.join(format!("boot/vmlinuz-{release}")),
            initrd: self.dir.join(format!("boot/initrd.img-{release}")),
        };
        if !k.vmlinuz.exists() || !k.initrd.exists() {
            bail!(
                "the guest image {} has no kernel {release}",
                self.dir.display()
            );
        }
        Ok(k)
    }

    /// Builds into a scratch directory and renames it into place last, so
    /// an interrupted build never leaves a cache entry that looks whole.
    fn build(&self, kernels: &[String]) -> Result<()> {
        let started = std::time::Instant::now();
        let scratch = self.dir.with_extension("building");
        if scratch.exists() {
            std::fs::remove_dir_all(&scratch)
                .with_context(|| format!("removing {}", scratch.display()))?;
        }
        std::fs::create_dir_all(&scratch)
            .with_context(|| format!("creating {}", scratch.display()))?;
        let key = scratch.join("root-key");
        cmd::run(
            Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", "vm-test", "-f"])
                .arg(&key),
            "ssh-keygen for the guest's root",
        )?;
        let rootfs = scratch.join("rootfs");
        let setup = std::fs::canonicalize(SETUP_SCRIPT)?;
        let hook = format!(
            "bash {} \"$1\" {} {GUEST_USER} {GUEST_PASSWORD}",
            setup.display(),
            key.with_extension("pub").display()
        );
        let include = PACKAGES
            .iter()
            .map(|s| s.to_string())
            .chain(kernels.iter().cloned())
            .collect::<Vec<_>>()
            .join(",");
        let log_path = scratch.join("mmdebstrap.log");
        println!(
            "vm-test: building the guest image (mmdebstrap, a few minutes; cached afterwards; log in {})",
            log_path.display()
        );
        let log = std::fs::File::create(&log_path)?;
        cmd::run(
            Command::new("mmdebstrap")
                .stdout(log.try_clone()?)
                .stderr(log)
                .args([
                    "--variant=apt",
                    "--mode=root",
                    "--aptopt=Acquire::Languages \"none\"",
                ])
                .arg(format!("--include={include}"))
                .arg(format!("--customize-hook={hook}"))
                .args(["bookworm"])
                .arg(&rootfs)
                // bullseye and bookworm-backports only for their kernels:
                // apt takes bookworm's versions of everything else.
                .args(
                    crate::apt::SUITES
                        .iter()
                        .map(|s| format!("deb http://deb.debian.org/debian {s} main")),
                ),
            "mmdebstrap (the guest's root filesystem)",
        )
        .with_context(|| format!("its log ends:\n{}", cmd::tail_of(&log_path, 30)))?;
        // The kernels boot from outside the disk (-kernel/-initrd).
        let boot = scratch.join("boot");
        std::fs::create_dir_all(&boot)?;
        for entry in std::fs::read_dir(rootfs.join("boot"))? {
            let path = entry?.path();
            let name = path
                .file_name()
                .context("boot file name")?
                .to_string_lossy()
                .into_owned();
            if name.starts_with("vmlinuz-") || name.starts_with("initrd.img-") {
                std::fs::copy(&path, boot.join(&name))
                    .with_context(|| format!("copying {}", path.display()))?;
            }
        }
        // mkfs.ext4 -d fills the filesystem from the directory: no loop
        // device or mount needed.
        cmd::run(
            Command::new("mkfs.ext4")
                .args(["-q", "-F", "-L", "root", "-d"])
                .arg(&rootfs)
                .arg(scratch.join("disk.raw"))
                .arg(DISK_SIZE),
            "mkfs.ext4 (the guest's disk)",
        )?;
        std::fs::remove_dir_all(&rootfs)
            .with_context(|| format!("removing {}", rootfs.display()))?;
        std::fs::rename(&scratch, &self.dir)
            .with_context(|| format!("moving the image to {}", self.dir.display()))?;
        println!(
            "vm-test: guest image built in {:.0} s",
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }
}

/// FNV-1a, 64 bits: a cache key that is stable across Rust versions
/// (std's hashers are not), for a handful of kilobytes.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn fnv1a_matches_the_reference_vectors() {
        assert_eq!(super::fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(super::fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
