//! Packages from other Debian releases than the host's (kernels, busybox,
//! QEMU from bookworm-backports) through apt with a private configuration,
//! so the host's sources and caches are never touched. Shared by
//! `cargo xtask kernels` and `cargo xtask vm-test`.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail};

use crate::cmd;

/// Everything downloaded is kept here between runs.
pub const CACHE: &str = "/var/cache/sensor-kernels";
/// Suites whose `linux-image-cloud-amd64` we boot, oldest first.
pub const SUITES: &[&str] = &["bullseye", "bookworm", "bookworm-backports"];

/// apt with its own source list and caches, so that fetching other
/// releases' packages never touches the host's apt configuration.
pub struct PrivateApt {
    dir: PathBuf,
}

impl PrivateApt {
    pub fn new() -> Result<Self> {
        let dir = PathBuf::from(CACHE).join("apt");
        for sub in ["lists/partial", "archives/partial"] {
            std::fs::create_dir_all(dir.join(sub))
                .with_context(|| format!("creating {}", dir.join(sub).display()))?;
        }
        let sources: String = SUITES
            .iter()
            .map(|s| format!("deb http://deb.debian.org/debian {s} main\n"))
            .collect();
        std::fs::write(dir.join("sources.list"), sources)
            .context("writing the private sources.list")?;
        Ok(PrivateApt { dir })
    }

    fn options(&self) -> Vec<String> {
        let d = self.dir.display();
        vec![
            format!("-oDir::Etc::SourceList={d}/sources.list"),
            "-oDir::Etc::SourceParts=/nonexistent".into(),
            format!("-oDir::State::Lists={d}/lists"),
            format!("-oDir::Cache::Archives={d}/archives"),
            "-oDir::Cache::pkgcache=".into(),
            "-oDir::Cache::srcpkgcache=".into(),
            "-oAPT::Sandbox::User=root".into(),
        ]
    }

    pub fn update(&self) -> Result<()> {
        cmd::run(
            Command::new("apt-get")
                .args(self.options())
                .arg("update")
                .arg("-qq"),
            "apt-get update (kernels)",
        )
    }

    fn cache(&self, args: &[&str]) -> Result<String> {
        cmd::stdout(
            Command::new("apt-cache").args(self.options()).args(args),
            "apt-cache",
        )
    }

    /// Downloads `package` (optionally `=version`) into the cache, once.
    fn download(&self, package: &str, version: Option<&str>) -> Result<PathBuf> {
        let pkgs = PathBuf::from(CACHE).join("debs");
        std::fs::create_dir_all(&pkgs)?;
        let prefix = format!("{package}_");
        let find = || -> Option<PathBuf> {
            std::fs::read_dir(&pkgs)
                .ok()?
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .find(|p| {
                    p.file_name().is_some_and(|n| {
                        let n = n.to_string_lossy();
                        n.starts_with(&prefix) && n.ends_with(".deb")
                    })
                })
        };
        if let Some(p) = find() {
            return Ok(p);
        }
        let spec = match version {
            Some(v) => format!("{package}={v}"),
            None => package.to_owned(),
        };
        cmd::run(
            Command::new("apt-get")
                .args(self.options())
                .args(["download", "-qq", &spec])
                .current_dir(&pkgs),
            "apt-get download",
        )?;
        find().with_context(|| format!("{spec} was not downloaded"))
    }

    /// Extracts one file of a package, once; returns its path.
    pub fn extract_file(
        &self,
        package: &str,
        version: Option<&str>,
        path_in_deb: &str,
    ) -> Result<PathBuf> {
        let deb = self.download(package, version)?;
        let dir = PathBuf::from(CACHE)
            .join("x")
            .join(deb.file_stem().context("deb name")?);
        if !dir.exists() {
            // dpkg-deb creates the target directory but not its parents.
            if let Some(parent) = dir.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            cmd::run(
                Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&dir),
                "dpkg-deb -x",
            )?;
        }
        let file = dir.join(path_in_deb);
        if !file.exists() {
            bail!("{} has no {path_in_deb}", deb.display());
        }
        Ok(file)
    }

    /// The kernel package behind `suite`'s linux-image-cloud-amd64, e.g.
    /// linux-image-6.1.0-50-cloud-amd64.
    pub fn kernel_package(&self, suite: &str) -> Result<String> {
        // "linux-image-cloud-amd64 | 6.1.176-1 | http://… bookworm/main amd64 Packages"
        let madison = self.cache(&["madison", "linux-image-cloud-amd64"])?;
        let version = madison
            .lines()
            .find(|l| {
                l.split('|').nth(2).is_some_and(|src| {
                    src.split_whitespace().nth(1) == Some(&format!("{suite}/main"))
                })
            })
            .and_then(|l| l.split('|').nth(1))
            .map(str::trim)
            .with_context(|| format!("no linux-image-cloud-amd64 in {suite}"))?
            .to_owned();
        let depends = self.cache(&["depends", &format!("linux-image-cloud-amd64={version}")])?;
        let image = depends
            .lines()
            .find_map(|l| l.trim().strip_prefix("Depends: "))
            .filter(|p| p.starts_with("linux-image-"))
            .with_context(|| {
                format!("cannot find the kernel package behind linux-image-cloud-amd64={version}")
            })?
            .trim()
            .to_owned();
        Ok(image)
    }

    /// The cloud kernel of `suite`: (package name, vmlinuz path).
    pub fn kernel(&self, suite: &str) -> Result<(String, PathBuf)> {
        let image = self.kernel_package(suite)?;
        let release = image.trim_start_matches("linux-image-").to_owned();
        let inside = format!("boot/vmlinuz-{release}");
        let mut vmlinuz = self.extract_file(&image, None, &inside)?;
        if !is_bzimage(&vmlinuz) {
            // A damaged cache (an interrupted extraction, a stray write):
            // extract again rather than boot garbage.
            let dir = vmlinuz
                .ancestors()
                .nth(2)
                .context("extraction dir")?
                .to_owned();
            std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
            vmlinuz = self.extract_file(&image, None, &inside)?;
            if !is_bzimage(&vmlinuz) {
                bail!("{} from {image} is not a bzImage kernel", vmlinuz.display());
            }
        }
        Ok((image, vmlinuz))
    }
}

/// An x86 boot image carries "HdrS" at offset 0x202.
fn is_bzimage(path: &Path) -> bool {
    let mut head = [0u8; 0x206];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && &head[0x202..0x206] == b"HdrS"
}

/// qemu-system-x86 must match the preinstalled qemu-utils, which comes from
/// bookworm-backports.
pub fn ensure_qemu(apt: &PrivateApt) -> Result<()> {
    if Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return Ok(());
    }
    println!("kernels: installing qemu-system-x86 from bookworm-backports");
    cmd::run(
        Command::new("apt-get")
            .args(apt.options())
            .args([
                "install",
                "-y",
                "-qq",
                "--no-install-recommends",
                "-t",
                "bookworm-backports",
                "qemu-system-x86",
            ])
            .env("DEBIAN_FRONTEND", "noninteractive"),
        "apt-get install qemu-system-x86",
    )
}
