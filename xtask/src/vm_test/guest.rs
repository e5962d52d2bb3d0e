//! One QEMU guest: booted from a throwaway overlay on the cached image,
//! driven over ssh as root, its serial console kept in a file so that a
//! hang or a panic fails the run with the console's tail instead of a
//! silent timeout.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use super::image::{Image, Kernel};
use crate::cmd;

/// How QEMU runs the guest's CPU.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Accel {
    Kvm,
    /// Emulation: slower, but boots wherever QEMU runs.
    Tcg,
}

impl Accel {
    fn args(self) -> [&'static str; 4] {
        match self {
            Accel::Kvm => ["-accel", "kvm", "-cpu", "host"],
            Accel::Tcg => ["-accel", "tcg,thread=multi", "-cpu", "max"],
        }
    }
}

pub struct Guest {
    qemu: Child,
    console: PathBuf,
    /// QEMU's own messages (a KVM failure among them).
    qemu_stderr: PathBuf,
    ssh_port: u16,
    key: PathBuf,
}

impl Guest {
    /// Boots `kernel` with the image's disk behind a copy-on-write overlay
    /// in `dir` (the cached image is never written). `append` adds kernel
    /// parameters.
    pub fn boot(
        image: &Image,
        kernel: &Kernel,
        append: &str,
        accel: Accel,
        dir: &Path,
    ) -> Result<Guest> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let overlay = dir.join("overlay.qcow2");
        let _ = std::fs::remove_file(&overlay);
        cmd::run(
            Command::new("qemu-img")
                .args(["create", "-q", "-f", "qcow2", "-F", "raw", "-b"])
                .arg(image.disk())
                .arg(&overlay),
            "qemu-img create (the guest's overlay)",
        )?;
        let console = dir.join("console.log");
        let qemu_stderr = dir.join("qemu.stderr");
        let ssh_port = super::free_port()?;
        let qemu = Command::new("qemu-system-x86_64")
            .args(accel.args())
            .args(["-smp", "2", "-m", "2048"])
            .args(["-nographic", "-no-reboot", "-nodefaults"])
            .arg("-serial")
            .arg(format!("file:{}", console.display()))
            .arg("-kernel")
            .arg(&kernel.vmlinuz)
            .arg("-initrd")
            .arg(&kernel.initrd)
            .arg("-append")
            .arg(format!("root=/dev/vda rw console=ttyS0 panic=-1 {append}"))
            .arg("-drive")
            .arg(format!("file={},if=virtio,format=qcow2", overlay.display()))
            .args([
                "-netdev",
                &format!("user,id=n0,hostfwd=tcp:127.0.0.1:{ssh_port}-:22"),
            ])
            .args(["-device", "virtio-net-pci,netdev=n0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&qemu_stderr)?)
            .spawn()
            .context("starting qemu-system-x86_64")?;
        Ok(Guest {
            qemu,
            console,
            qemu_stderr,
            ssh_port,
            key: image.key(),
        })
    }

    /// The private key that logs in as root.
    pub fn key(&self) -> &Path {
        &self.key
    }

    pub fn ssh_port(&self) -> u16 {
        self.ssh_port
    }

    /// Waits until root can log in over ssh.
    pub fn wait_for_ssh(&mut self, timeout: Duration) -> Result<Duration> {
        let started = Instant::now();
        loop {
            self.check_alive()?;
            let probe = self.ssh_command("true").output();
            if probe.is_ok_and(|o| o.status.success()) {
                return Ok(started.elapsed());
            }
            if started.elapsed() > timeout {
                bail!(
                    "the guest did not answer ssh within {timeout:?}; console tail:\n{}",
                    self.console_tail(40)
                );
            }
            std::thread::sleep(Duration::from_secs(2));
        }
    }

    /// Whether the guest kernel has printed its banner on the console.
    pub fn kernel_started(&self) -> bool {
        std::fs::read(&self.console).is_ok_and(|c| c.windows(13).any(|w| w == b"Linux version"))
    }

    /// Fails, with the console's tail, when QEMU has exited, KVM stopped
    /// the guest, or the guest kernel panicked (panic=-1 makes QEMU exit,
    /// but say why).
    pub fn check_alive(&mut self) -> Result<()> {
        // After a KVM internal error (an instruction it cannot emulate)
        // QEMU stops the guest and stays up: nothing will ever answer.
        let qemu_said = std::fs::read_to_string(&self.qemu_stderr).unwrap_or_default();
        if let Some(line) = kvm_stopped(&qemu_said) {
            bail!("{line} ({})", self.qemu_stderr.display());
        }
        let console = std::fs::read_to_string(&self.console).unwrap_or_default();
        if console.contains("Kernel panic") {
            bail!(
                "the guest kernel panicked; console tail:\n{}",
                self.console_tail(40)
            );
        }
        if let Some(status) = self.qemu.try_wait()? {
            bail!(
                "QEMU exited ({status}); console tail:\n{}",
                self.console_tail(40)
            );
        }
        Ok(())
    }

    pub fn console_tail(&self, n: usize) -> String {
        cmd::tail_of(&self.console, n)
    }

    /// ssh as root to the guest, running `script` with sh.
    pub fn ssh_command(&self, script: &str) -> Command {
        ssh_to(self.ssh_port, &self.key, script)
    }

    /// Runs `script` as root in the guest; its stdout, or an error naming
    /// `what` with its stderr.
    pub fn run(&mut self, script: &str, what: &str) -> Result<String> {
        let out = self
            .ssh_command(script)
            .output()
            .with_context(|| format!("{what}: cannot start ssh"))?;
        if !out.status.success() {
            self.check_alive()?;
            bail!(
                "{what} failed in the guest ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Copies a host file into the guest (`cat` over ssh: no scp needed).
    pub fn copy_in(&mut self, local: &Path, remote: &str, mode: &str) -> Result<()> {
        let file =
            std::fs::File::open(local).with_context(|| format!("opening {}", local.display()))?;
        let remote_dir = Path::new(remote)
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "/".into());
        let status = self
            .ssh_command(&format!("mkdir -p {remote_dir} && cat > {remote}.new && chmod {mode} {remote}.new && mv {remote}.new {remote}"))
            .stdin(file)
            .status()
            .context("ssh")?;
        if !status.success() {
            self.check_alive()?;
            bail!(
                "copying {} to the guest's {remote} failed ({status})",
                local.display()
            );
        }
        Ok(())
    }

    /// Powers the guest off; QEMU is killed if it does not exit in time.
    pub fn shutdown(mut self) {
        let _ = self.ssh_command("systemctl poweroff --no-block").output();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.qemu.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        let _ = self.qemu.kill();
        let _ = self.qemu.wait();
    }
}

/// QEMU's line saying KVM stopped the guest, if it did.
fn kvm_stopped(qemu_stderr: &str) -> Option<&str> {
    qemu_stderr
        .lines()
        .find(|l| l.contains("KVM internal error"))
}

/// ssh as root to the guest whose sshd is forwarded to local `port`,
/// with `key`, running `script` with sh. Every option goes before the
/// host: after it, ssh takes them as part of the remote command.
fn ssh_to(port: u16, key: &Path, script: &str) -> Command {
    let mut c = Command::new("ssh");
    c.args(ssh_options(port))
        .arg("-i")
        .arg(key)
        .arg("root@127.0.0.1")
        .arg(script)
        .stdin(Stdio::null());
    c
}

/// The guest's host key changes with every image: never record it.
fn ssh_options(port: u16) -> Vec<String> {
    [
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "LogLevel=ERROR",
        "-o",
        "BatchMode=yes",
        // Also bounds the wait for the server's banner: a stopped guest's
        // forwarded port accepts the connection and never answers.
        "-o",
        "ConnectTimeout=5",
        "-p",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([port.to_string()])
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a guest that KVM stopped looks like from the host: QEMU's
    /// forwarded port accepts the connection, and no banner ever comes.
    /// ssh must give up on its own (a vm-test once hung 14 minutes here).
    #[test]
    fn ssh_gives_up_on_a_guest_that_accepts_and_never_answers() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        // Accepts, then holds the connection open without a word.
        std::thread::spawn(move || {
            let held = listener.accept();
            std::thread::sleep(Duration::from_secs(60));
            drop(held);
        });
        let mut ssh = ssh_to(port, Path::new("/nonexistent/key"), "true")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ssh (openssh-client, installed by cargo xtask setup)");
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = ssh.try_wait().expect("wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = ssh.kill();
                panic!("ssh still waiting for the banner after 30 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        assert!(!status.success(), "{status}");
    }

    #[test]
    fn a_kvm_internal_error_is_found_in_qemus_stderr() {
        let said = "qemu-system-x86_64: terminating on signal 15\n\
                    KVM internal error. Suberror: 1\n\
                    emulation failure\n";
        assert_eq!(kvm_stopped(said), Some("KVM internal error. Suberror: 1"));
        assert_eq!(
            kvm_stopped("qemu-system-x86_64: warning: host doesn't support requested feature\n"),
            None
        );
    }
}
