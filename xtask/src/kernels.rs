//! `cargo xtask kernels`: proof that the one eBPF object loads and reports
//! on other kernels than the build machine's. Each of Debian's cloud
//! kernels (bullseye 5.10, bookworm 6.1, bookworm-backports 6.12) boots in
//! QEMU with an initramfs holding only busybox and the sensor; the sensor
//! starts, an exec happens, and the exec event must come out with its
//! exact argv. Every kernel's result is reported, not only the first
//! failure. (The full attack-scenario harness builds on this.)

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::apt::{PrivateApt, SUITES, ensure_qemu};
use crate::cmd;
use sensor_common::verifier_log::is_refusal;

const BOOT_TIMEOUT: Duration = Duration::from_secs(300);

const MARKER: &str = "sensor-vm-marker";

struct Outcome {
    suite: &'static str,
    kernel: String,
    result: Result<String>,
}

pub fn run(sensor: &Path, only: Option<&str>) -> Result<()> {
    let apt = PrivateApt::new()?;
    apt.update()?;
    ensure_qemu(&apt)?;
    let busybox = apt.extract_file("busybox-static", None, "bin/busybox")?;
    let initrd = build_initramfs(sensor, &busybox)?;
    let mut outcomes = Vec::new();
    for suite in SUITES.iter().filter(|s| only.is_none_or(|o| o == **s)) {
        let kernel = apt.kernel(suite);
        let (label, result) = match kernel {
            Ok((label, vmlinuz)) => {
                println!("kernels: booting {label} ({suite})");
                let r = boot_and_check(&vmlinuz, &initrd, suite);
                (label, r)
            }
            Err(e) => (format!("linux-image-cloud-amd64/{suite}"), Err(e)),
        };
        outcomes.push(Outcome {
            suite,
            kernel: label,
            result,
        });
    }
    println!("\n| suite | kernel | result |\n|---|---|---|");
    for o in &outcomes {
        let r = match &o.result {
            Ok(s) => format!("ok: {s}"),
            Err(e) => format!(
                "FAILED: {}",
                format!("{e:#}").lines().next().unwrap_or_default()
            ),
        };
        println!("| {} | {} | {r} |", o.suite, o.kernel);
    }
    let failed: Vec<_> = outcomes
        .iter()
        .filter_map(|o| o.result.as_ref().err().map(|e| (o, e)))
        .collect();
    for (o, e) in &failed {
        eprintln!("\n--- {} ({}) ---\n{e:#}", o.kernel, o.suite);
    }
    if !failed.is_empty() {
        bail!(
            "the sensor failed on {} of {} kernels",
            failed.len(),
            outcomes.len()
        );
    }
    Ok(())
}

const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t tmpfs tmp /tmp
mount -t devtmpfs dev /dev
echo "SENSOR-VM kernel $(uname -r)"
/sensor probe
/sensor run --config /sensor.toml > /tmp/events.jsonl 2> /tmp/sensor.err &
SP=$!
i=0
while [ $i -lt 120 ] && ! grep -q 'sensor started' /tmp/sensor.err 2>/dev/null; do
    kill -0 $SP 2>/dev/null || break
    sleep 1
    i=$((i+1))
done
touch /tmp/sensor-vm-marker-file
/bin/sh -c 'exec /bin/echo sensor-vm-marker "a b"' > /dev/null
chmod 4755 /tmp/sensor-vm-marker-file
echo garbage > /tmp/sensor-vm-marker.ko
insmod /tmp/sensor-vm-marker.ko
sleep 2
kill $SP
wait $SP
echo "SENSOR-VM-STDERR-BEGIN"
cat /tmp/sensor.err
echo "SENSOR-VM-STDERR-END"
echo "SENSOR-VM-EVENTS-BEGIN"
grep -e sensor-vm-marker -e module_load /tmp/events.jsonl
echo "SENSOR-VM-EVENTS-END"
poweroff -f
"#;

fn build_initramfs(sensor: &Path, busybox: &Path) -> Result<PathBuf> {
    let mut cpio = Cpio::default();
    for dir in [
        "bin",
        "dev",
        "etc",
        "lib",
        "lib64",
        "lib/x86_64-linux-gnu",
        "proc",
        "sys",
        "tmp",
        "var",
        "var/lib",
    ] {
        cpio.dir(dir);
    }
    // The kernel opens /dev/console for init before anything is mounted.
    cpio.char_device("dev/console", 5, 1);
    cpio.file("init", INIT.as_bytes(), 0o755);
    cpio.file("bin/busybox", &std::fs::read(busybox)?, 0o755);
    cpio.file(
        "sensor",
        &std::fs::read(sensor).context("reading the sensor binary")?,
        0o755,
    );
    // With every filter the initramfs can hold (no cgroup filesystem):
    // the verifier drops the code of a filter the daemon left off (a
    // load-time constant), so only a configured one shows that each kernel
    // accepts it, and within its instruction limit with room to spare. An
    // ignored executable must exist: /etc/passwd, never run.
    cpio.file(
        "sensor.toml",
        b"[agent]\nstate_dir = \"/var/lib/sensor\"\n\n\
          [filter]\nignore_uids = [65534]\nignore_executables = [\"/etc/passwd\"]\n\
          ignore_path_prefixes = [\"/tmp/ignored/\"]\n",
        0o644,
    );
    cpio.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n", 0o644);
    cpio.file("etc/group", b"root:x:0:\n", 0o644);
    for lib in shared_libraries(sensor)? {
        let inside = lib.to_string_lossy().trim_start_matches('/').to_owned();
        cpio.file(
            &inside,
            &std::fs::read(&lib).with_context(|| format!("reading {}", lib.display()))?,
            0o755,
        );
    }
    let out = PathBuf::from("target/kernels/initramfs.cpio");
    std::fs::create_dir_all("target/kernels")?;
    std::fs::write(&out, cpio.finish()).context("writing the initramfs")?;
    Ok(out)
}

/// The shared objects the binary loads, from ldd.
fn shared_libraries(bin: &Path) -> Result<Vec<PathBuf>> {
    let out = cmd::stdout(Command::new("ldd").arg(bin), "ldd")?;
    Ok(out
        .lines()
        .filter_map(|l| l.split_whitespace().find(|w| w.starts_with('/')))
        .map(PathBuf::from)
        .collect())
}

/// A cpio archive in the "newc" format the kernel unpacks as initramfs.
/// Written by hand: the format is 20 lines, and Debian's cpio is not on a
/// fresh machine.
#[derive(Default)]
struct Cpio {
    out: Vec<u8>,
    ino: u32,
}

impl Cpio {
    fn entry(&mut self, name: &str, mode: u32, data: &[u8], rdev: (u32, u32)) {
        self.ino += 1;
        let namesize = name.len() + 1;
        let fields = [
            self.ino,
            mode,
            0,
            0,
            1,
            0,
            data.len() as u32,
            0,
            0,
            rdev.0,
            rdev.1,
            namesize as u32,
            0,
        ];
        self.out.extend_from_slice(b"070701");
        for f in fields {
            self.out.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.out.len().is_multiple_of(4) {
            self.out.push(0);
        }
    }

    fn dir(&mut self, name: &str) {
        self.entry(name, 0o040755, &[], (0, 0));
    }

    fn file(&mut self, name: &str, data: &[u8], perm: u32) {
        self.entry(name, 0o100000 | perm, data, (0, 0));
    }

    fn char_device(&mut self, name: &str, major: u32, minor: u32) {
        self.entry(name, 0o020600, &[], (major, minor));
    }

    fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, &[], (0, 0));
        self.out
    }
}

/// Boots `vmlinuz` with the initramfs and checks what the sensor printed.
fn boot_and_check(vmlinuz: &Path, initrd: &Path, suite: &str) -> Result<String> {
    let started = Instant::now();
    let mut child = Command::new("qemu-system-x86_64")
        .args([
            "-accel",
            "tcg,thread=multi",
            "-cpu",
            "max",
            "-smp",
            "2",
            "-m",
            "1024",
        ])
        .args([
            "-nographic",
            "-no-reboot",
            "-nodefaults",
            "-serial",
            "stdio",
        ])
        .arg("-kernel")
        .arg(vmlinuz)
        .arg("-initrd")
        .arg(initrd)
        .args(["-append", "console=ttyS0 panic=-1 rdinit=/init"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting qemu-system-x86_64")?;
    let mut stdout = child.stdout.take().context("qemu stdout")?;
    let reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stdout.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    loop {
        if child.try_wait()?.is_some() {
            break;
        }
        if started.elapsed() > BOOT_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            let console = reader.join().unwrap_or_default();
            bail!(
                "the guest did not finish within {BOOT_TIMEOUT:?}; console tail:\n{}",
                cmd::tail(&console, 40)
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let console = reader.join().unwrap_or_default();
    let saved = PathBuf::from(format!("target/kernels/{suite}.console"));
    let _ = std::fs::write(&saved, &console);
    if console.contains("Kernel panic") {
        bail!(
            "the guest kernel panicked; console tail:\n{}",
            cmd::tail(&console, 40)
        );
    }
    let section = |name: &str| -> Option<String> {
        let begin = format!("SENSOR-VM-{name}-BEGIN");
        let end = format!("SENSOR-VM-{name}-END");
        let start = console.find(&begin)? + begin.len();
        let stop = console[start..].find(&end)? + start;
        Some(console[start..stop].replace('\r', ""))
    };
    let stderr = section("STDERR").with_context(|| {
        format!(
            "the guest printed no sensor output; console tail:\n{}",
            cmd::tail(&console, 40)
        )
    })?;
    let events = section("EVENTS").unwrap_or_default();
    // The echo's exec and its exit (exit code 0), both with the exact argv.
    let marked = |action: &str| {
        events
            .lines()
            .filter(|l| l.contains(&format!(r#""action":"{action}""#)))
            .any(|l| serde_json_lite_args(l).is_some_and(|a| a == ["/bin/echo", MARKER, "a b"]))
    };
    let missing: Vec<&str> = ["exec", "exit"]
        .into_iter()
        .filter(|a| !marked(a))
        .collect();
    if !missing.is_empty() {
        bail!(
            "no {} event with argv [/bin/echo, {MARKER}, \"a b\"]\nsensor stderr:\n{}\nevents:\n{}",
            missing.join(" or "),
            stderr.trim(),
            events.trim()
        );
    }
    // The chmod, through the syscall dispatchers.
    let chmod = events.lines().any(|l| {
        l.contains(r#""action":"chmod""#)
            && l.contains(r#""path":"/tmp/sensor-vm-marker-file""#)
            && l.contains(r#""mode":"4755""#)
            && l.contains(r#""special_bits":["setuid"]"#)
    });
    // Debian's kernels allow fentry: the mode before the chmod (busybox
    // touch makes 0644) comes from fentry/security_path_chmod (or
    // security_inode_setattr, where that is refused).
    let before = events
        .lines()
        .any(|l| l.contains(r#""action":"chmod""#) && l.contains(r#""before":{"mode":"0644""#));
    if chmod && !before {
        bail!(
            "the chmod event lacks the mode from before the call (fentry/security_path_chmod)\nsensor stderr:\n{}\nevents:\n{}",
            stderr.trim(),
            events.trim()
        );
    }
    if !chmod {
        bail!(
            "no chmod event for /tmp/sensor-vm-marker-file with mode 4755 and the setuid bit\nsensor stderr:\n{}\nevents:\n{}",
            stderr.trim(),
            events.trim()
        );
    }
    if let Some(refused) = verifier_refusal(&stderr) {
        bail!(
            "the verifier refused a program: {}\nsensor stderr:\n{}",
            refused.chars().take(400).collect::<String>(),
            stderr.trim()
        );
    }
    // The hooks on the kernel's own copies of a call's arguments are
    // optional (the sensor logs why one did not load), but Debian's
    // kernels allow them all: their verifiers differ in what a fentry
    // program may read from its context, so each must load on each.
    for hook in [
        "connect and bind events name the address as the kernel copied it (fentry)",
        "xattr changes name the name and value as the kernel copied them (fentry)",
        // chown's hook too from 6.1 (5.10 refuses its struct arguments).
        "chmod events name the file the kernel resolved (fentry)",
        // cgroup programs, whose helpers and context the kernels differ
        // on; the initramfs mounts no cgroup2, so the sensor mounts its own.
        sensor_common::names::UDP_FLOWS_ON,
    ] {
        if !stderr.contains(hook) {
            bail!(
                "the sensor did not log \"{hook}\"\nsensor stderr:\n{}",
                stderr.trim()
            );
        }
    }
    // With no cgroup namespace in the guest, the mount the sensor makes is
    // the hierarchy's root: every socket's flows, not a subtree's.
    if stderr.contains(sensor_common::names::UDP_FLOWS_SUBTREE_ONLY) {
        bail!(
            "the UDP hooks went on a subtree, not the cgroup v2 root\nsensor stderr:\n{}",
            stderr.trim()
        );
    }
    // The module load attempt (busybox insmod, a garbage image): refused,
    // and reported with its outcome.
    let module = events
        .lines()
        .any(|l| l.contains(r#""action":"module_load""#) && l.contains(r#""outcome":"failure""#));
    if !module {
        bail!(
            "no failed module_load event for insmod of a garbage file\nsensor stderr:\n{}\nevents:\n{}",
            stderr.trim(),
            events.trim()
        );
    }
    Ok(format!(
        "exec, exit, chmod (with its mode before, by fentry) and module load seen, {:.0} s{}",
        started.elapsed().as_secs_f64(),
        verifier_headroom(&stderr)
            .map(|h| format!("; verifier: {h}"))
            .unwrap_or_default()
    ))
}

/// What the sensor logged of its largest program's verification (Linux
/// 5.16+): `N of the 1000000 instructions … (program)`, shortened to `N of
/// 1000000 (program)`, for the table.
fn verifier_headroom(log: &str) -> Option<String> {
    let line = log
        .lines()
        .find(|l| l.contains("the verifier walked at most "))?;
    let rest = &line[line.find("at most ")? + 8..];
    let mut words = rest.split_whitespace();
    let walked = words.next()?;
    let limit = words.nth(2)?;
    let program = rest[rest.rfind('(')?..].trim_end();
    Some(format!("{walked} of {limit} {program}"))
}

/// `process.args` of one event line. xtask avoids a JSON dependency; the
/// sensor prints args as a flat array of simple strings here.
fn serde_json_lite_args(line: &str) -> Option<Vec<String>> {
    let start = line.find(r#""args":["#)? + 8;
    let end = line[start..].find(']')? + start;
    Some(
        line[start..end]
            .split("\",\"")
            .map(|s| s.trim_matches('"').to_owned())
            .collect(),
    )
}

/// The sensor's log line saying the verifier refused a program it
/// expected to load, if there is one (see
/// `sensor_common::verifier_log::is_refusal`).
pub(crate) fn verifier_refusal(log: &str) -> Option<&str> {
    log.lines().find(|l| is_refusal(l))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_verifier_s_headroom_is_read_from_the_log() {
        let log = "INFO x: the verifier walked at most 465303 of the 1000000 instructions it \
                   allows in one program (io_uring_submit)\nINFO y: other";
        assert_eq!(
            super::verifier_headroom(log).as_deref(),
            Some("465303 of 1000000 (io_uring_submit)")
        );
        assert_eq!(super::verifier_headroom("INFO y: other"), None);
    }
}
