//! `cargo xtask vm-test`: the sensor on Debian guests in QEMU, watched
//! through a scripted intrusion (scripts/attack-scenario.sh) and verified
//! at a collector outside the guest. Each run boots one kernel from the
//! cached image, installs the sensor as a systemd service shipping to the
//! host's rsyslog (and to a local file), plays the scenario, and checks
//! that every step's events arrived with the right context. Every run's
//! result is reported, not only the first failure.

mod collector;
mod guest;
mod image;
pub mod verify;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::apt::{PrivateApt, ensure_qemu};
use collector::Collector;
use guest::{Accel, Guest};
use image::{GUEST_PASSWORD, GUEST_USER, Image};

/// One boot of the scenario: a kernel and the kernel parameters it gets.
struct RunSpec {
    name: &'static str,
    suite: &'static str,
    append: &'static str,
}

/// The kernels as Debian ships them, plus one run with BPF-LSM left out of
/// `lsm=` so that the fallbacks from LSM hooks are exercised too.
const RUNS: &[RunSpec] = &[
    RunSpec {
        name: "5.10",
        suite: "bullseye",
        append: "",
    },
    RunSpec {
        name: "6.1",
        suite: "bookworm",
        append: "",
    },
    RunSpec {
        name: "6.12",
        suite: "bookworm-backports",
        append: "",
    },
    RunSpec {
        name: "6.12-no-bpf-lsm",
        suite: "bookworm-backports",
        append: "lsm=landlock,lockdown,yama,integrity,apparmor",
    },
];

const SSH_TIMEOUT: Duration = Duration::from_secs(300);
const SENSOR_START_TIMEOUT: Duration = Duration::from_secs(180);
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(900);
/// How long events may take to reach the collector after the scenario
/// ends (the last step restarts the sensor, which then sends its spool).
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(120);

pub struct Options {
    /// Only runs whose name is this.
    pub only: Option<String>,
    /// Event kinds the guest's sensor is told not to capture: proof that
    /// the verifier names what is missing.
    pub disable: Vec<String>,
}

pub fn run(sensor: &Path, opts: &Options) -> Result<()> {
    let runs: Vec<&RunSpec> = RUNS
        .iter()
        .filter(|r| opts.only.as_deref().is_none_or(|o| o == r.name))
        .collect();
    if runs.is_empty() {
        bail!(
            "no run is named {:?} (runs: {})",
            opts.only,
            RUNS.iter().map(|r| r.name).collect::<Vec<_>>().join(", ")
        );
    }
    let apt = PrivateApt::new()?;
    apt.update()?;
    ensure_qemu(&apt)?;
    let mut kernels = Vec::new();
    for suite in crate::apt::SUITES {
        kernels.push((*suite, apt.kernel_package(suite)?));
    }
    let packages: Vec<String> = kernels.iter().map(|(_, p)| p.clone()).collect();
    let image = Image::ensure(&packages)?;
    // Absolute: rsyslogd and the scenario resolve paths from elsewhere.
    let out = std::path::absolute("target/vm-test")?;
    let first = &kernels
        .iter()
        .find(|(s, _)| *s == runs[0].suite)
        .context("kernel")?
        .1;
    let accel = choose_accel(&image, first, &out.join("kvm-probe"))?;
    let actor = build_actor()?;

    let mut outcomes = Vec::new();
    for spec in runs {
        let package = kernels
            .iter()
            .find(|(s, _)| *s == spec.suite)
            .map(|(_, p)| p.clone())
            .context("kernel")?;
        println!("\nvm-test: run {} ({package})", spec.name);
        let started = Instant::now();
        let result = play(
            &image,
            &package,
            spec,
            accel,
            Binaries {
                sensor,
                actor: &actor,
            },
            opts,
            &out.join(spec.name),
        );
        let elapsed = started.elapsed();
        if let Err(e) = &result {
            eprintln!("vm-test: run {} failed: {e:#}", spec.name);
        }
        outcomes.push((spec.name, package, elapsed, result));
    }

    println!("\n| run | kernel | result | time |\n|---|---|---|---|");
    let mut failed = Vec::new();
    for (name, package, elapsed, result) in &outcomes {
        let verdict = match result {
            Ok(report) if report.undetected().is_empty() => "every step detected".to_owned(),
            Ok(report) => {
                failed.push(format!(
                    "{name}: undetected: {}",
                    report.undetected().join(", ")
                ));
                format!("FAILED: undetected: {}", report.undetected().join(", "))
            }
            Err(e) => {
                let first = format!("{e:#}")
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                failed.push(format!("{name}: {first}"));
                format!("FAILED: {first}")
            }
        };
        println!(
            "| {name} | {package} | {verdict} | {:.0} s |",
            elapsed.as_secs_f64()
        );
    }
    if !failed.is_empty() {
        bail!(
            "vm-test failed on {} of {} runs:\n  {}",
            failed.len(),
            outcomes.len(),
            failed.join("\n  ")
        );
    }
    Ok(())
}

/// What is copied into each guest: the sensor, and the integration
/// tests' actor for the scenario's steps no guest tool can make (a
/// write through an io_uring ring).
struct Binaries<'a> {
    sensor: &'a Path,
    actor: &'a Path,
}

/// Builds the actor (release; the guests run the host's Debian release,
/// so its glibc matches).
fn build_actor() -> Result<std::path::PathBuf> {
    crate::cmd::run(
        Command::new("cargo")
            .args(["build", "--release", "-p", "sensor-tests", "--bin", "actor"])
            .env("PATH", crate::setup::path_with_cargo_bin()),
        "cargo build --release -p sensor-tests --bin actor",
    )?;
    Ok(crate::target_dir().join("release").join("actor"))
}

/// Boots made at most for one run: an emulated boot can stall before any
/// sensor runs (an RCU stall in the initramfs under TCG, seen once in
/// dozens of CI runs), which says nothing of the sensor.
const BOOT_ATTEMPTS: u32 = 2;

/// Boots the guest until it answers ssh, afresh once more where it did
/// not (the console of the boot that failed kept as `console-N.log`);
/// how long the last boot took to answer.
fn boot_answering(
    image: &Image,
    package: &str,
    append: &str,
    accel: Accel,
    dir: &Path,
) -> Result<(Guest, Duration)> {
    let kernel = image.kernel(package)?;
    let mut attempt = 1;
    loop {
        let mut guest = Guest::boot(image, &kernel, append, accel, dir)?;
        match guest.wait_for_ssh(SSH_TIMEOUT) {
            Ok(booted) => return Ok((guest, booted)),
            Err(e) if attempt < BOOT_ATTEMPTS => {
                drop(guest);
                let kept = dir.join(format!("console-{attempt}.log"));
                let _ = std::fs::rename(dir.join("console.log"), &kept);
                let why = format!("{e:#}");
                println!(
                    "vm-test: boot {attempt} failed ({}); booting again (its console: {})",
                    why.lines().next().unwrap_or_default(),
                    kept.display()
                );
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// One run: boot, install the sensor, play the scenario, verify.
fn play(
    image: &Image,
    package: &str,
    spec: &RunSpec,
    accel: Accel,
    Binaries { sensor, actor }: Binaries,
    opts: &Options,
    dir: &Path,
) -> Result<verify::Report> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir)?;
    let collector = Collector::start(&dir.join("collector"))?;
    let (mut guest, booted) = boot_answering(image, package, spec.append, accel, dir)?;
    println!(
        "vm-test: {} answers ssh after {:.0} s",
        spec.name,
        booted.as_secs_f64()
    );

    let config = dir.join("sensor.toml");
    std::fs::write(&config, guest_config(collector.port(), &opts.disable))?;
    guest.copy_in(sensor, "/usr/local/sbin/sensor", "755")?;
    guest.copy_in(actor, "/usr/local/bin/scenario-actor", "755")?;
    guest.copy_in(&config, "/etc/sensor/sensor.toml", "600")?;
    guest.run("systemctl start sensor", "starting the sensor")?;
    let log = wait_for_sensor(&mut guest)?;
    let release = guest.run("uname -r", "reading the kernel release")?;
    check_task_reads(release.trim(), &log)?;
    check_path_hooks(release.trim(), &log)?;
    check_verified(release.trim(), &log)?;
    let kernel = kernel_version(release.trim())?;
    println!(
        "vm-test: {}: {}",
        spec.name,
        guest
            .run(
                "uname -r; sensor probe 2>&1 | grep -i -e lsm -e fentry | head -5",
                "probe"
            )?
            .trim()
    );
    guest.run(
        "/opt/vm-test/import-busybox.sh",
        "importing the container image",
    )?;

    let steps_file = dir.join("steps.tsv");
    if let Err(e) = play_scenario(&mut guest, &steps_file, dir) {
        // What the guest kept, for whoever reads the failure.
        let _ = save(
            &mut guest,
            "cat /var/log/sensor/events.jsonl*",
            &dir.join("guest-events.jsonl"),
        );
        let _ = save(
            &mut guest,
            "journalctl -u sensor --no-pager -o cat",
            &dir.join("sensor.log"),
        );
        return Err(e);
    }

    let steps = verify::parse_steps(
        &std::fs::read_to_string(&steps_file).context("reading the scenario's steps")?,
    )?;
    // Events keep arriving after the scenario: poll until every step is
    // found or the delivery timeout passes (latency is measured from the
    // collector's receipt times, not from this loop).
    let deadline = Instant::now() + DELIVERY_TIMEOUT;
    let report = loop {
        let report = verify::verify(&steps, &collector.received()?, kernel);
        if report.undetected().is_empty() || Instant::now() > deadline {
            break report;
        }
        guest.check_alive()?;
        std::thread::sleep(Duration::from_secs(2));
    };
    println!(
        "vm-test: {}: the collector's events are in {}",
        spec.name,
        collector.output().display()
    );
    println!("{}", report.table());
    // The guest's own copy, taken after the collector's events settled and
    // after reading them, so that it holds at least what the collector
    // got: the copy itself (ssh, cat) makes events, which reach the
    // collector after the copy was taken (84 of them on a TCG guest).
    let received = collector.received()?;
    let local = save(
        &mut guest,
        "cat /var/log/sensor/events.jsonl*",
        &dir.join("guest-events.jsonl"),
    )?;
    save(
        &mut guest,
        "journalctl -u sensor --no-pager -o cat",
        &dir.join("sensor.log"),
    )?;
    let problems = verify::completeness(&received, &local);
    if !problems.is_empty() {
        bail!(
            "events were lost between the guest and the collector: {}",
            problems.join("; ")
        );
    }
    let problems = verify::path_filter_stayed_in_kernel(&steps, &received);
    if !problems.is_empty() {
        bail!(
            "the path filter's drops did not all stay in the kernel: {}",
            problems.join("; ")
        );
    }
    guest.shutdown();
    Ok(report)
}

/// KVM where it really boots the guest, TCG otherwise, decided by trying:
/// on some hosts /dev/kvm exists and a guest kernel hangs or aborts under
/// it (this build machine's, whose KVM is a paravirtual variant: the
/// kernel never prints its banner). A KVM guest prints its banner within
/// seconds and answers ssh within a minute; anything else means TCG.
fn choose_accel(image: &Image, package: &str, dir: &Path) -> Result<Accel> {
    const BANNER_WITHIN: Duration = Duration::from_secs(20);
    const SSH_WITHIN: Duration = Duration::from_secs(90);
    if !Path::new("/dev/kvm").exists() {
        println!("vm-test: accelerator TCG (no /dev/kvm)");
        return Ok(Accel::Tcg);
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    let mut guest = Guest::boot(image, &image.kernel(package)?, "", Accel::Kvm, dir)?;
    let started = Instant::now();
    let verdict = loop {
        if let Err(e) = guest.check_alive() {
            break Err(format!("{:#}", e)
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned());
        }
        if !guest.kernel_started() && started.elapsed() > BANNER_WITHIN {
            break Err(format!(
                "the guest kernel printed nothing within {BANNER_WITHIN:?}"
            ));
        }
        if guest
            .ssh_command("true")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            break Ok(started.elapsed());
        }
        if started.elapsed() > SSH_WITHIN {
            break Err(format!("no ssh within {SSH_WITHIN:?}"));
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    drop(guest);
    match verdict {
        Ok(t) => {
            println!(
                "vm-test: accelerator KVM (a guest answered ssh after {:.0} s)",
                t.as_secs_f64()
            );
            Ok(Accel::Kvm)
        }
        Err(why) => {
            println!(
                "vm-test: accelerator TCG (KVM tried: {why}; console in {})",
                dir.display()
            );
            Ok(Accel::Tcg)
        }
    }
}

/// The guest's sensor: syslog over TCP to the collector (the host is
/// 10.0.2.2 from inside QEMU's user network) and a local copy, audit as
/// the daemon (the guest's auditd is masked) with one rule, so that the
/// scenario's rule deletion has something to delete, and one ignored path
/// prefix, which the scenario reaches through a symlink.
fn guest_config(collector_port: u16, disable: &[String]) -> String {
    let disable = disable
        .iter()
        .map(|k| format!("{k:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "[ebpf]\ndisable = [{disable}]\n\n\
         [filter]\nignore_path_prefixes = [\"/tmp/.ignored/\"]\n\n\
         [telemetry]\nheartbeat_interval_s = 10\n\n\
         [audit]\nmode = \"daemon\"\nrules = [\"-w /etc/shadow -p wa -k shadow\"]\n\n\
         [[sinks]]\nkind = \"syslog\"\naddress = \"tcp://10.0.2.2:{collector_port}\"\nformat = \"rfc5424\"\n\n\
         [[sinks]]\nkind = \"file\"\npath = \"/var/log/sensor/events.jsonl\"\n"
    )
}

/// Each kernel must get the task reads it can take: plain loads through
/// bpf_get_current_task_btf from 5.11 (Debian's 6.1 and 6.12), probe
/// reads before (5.10), where that helper does not exist. A fallback to
/// probe reads on a newer kernel means its verifier refused the plain
/// loads: a regression to look at, though every event still comes.
fn check_task_reads(release: &str, log: &str) -> Result<()> {
    let expected = if kernel_version(release)? >= (5, 11) {
        "the current task is read with plain loads"
    } else {
        "the current task is read with bpf_probe_read_kernel"
    };
    check_logged(release, log, "the current task is read with", expected)
}

/// Each kernel must resolve the file of every chmod and chown its
/// trampolines allow: both from 6.1, chmod only on 5.10 (which refuses
/// `security_path_chown`'s struct arguments). The scenario's steps only
/// show chmod's hook at work; chown's shares its code but not its
/// program, which this sees load.
fn check_path_hooks(release: &str, log: &str) -> Result<()> {
    let expected = if kernel_version(release)? >= verify::CHOWN_HOOK_FROM {
        "chmod events name the file the kernel resolved (fentry), and so do chown events"
    } else {
        "chmod events name the file the kernel resolved (fentry); chown events name the path \
         argument"
    };
    check_logged(release, log, "chown events", expected)
}

/// Every program the sensor expected to load must have been accepted by
/// the guest's verifier (why: `kernels::verifier_refusal`).
fn check_verified(release: &str, log: &str) -> Result<()> {
    if let Some(refused) = crate::kernels::verifier_refusal(log) {
        bail!(
            "on {release} the verifier refused a program of the sensor: {}",
            refused.chars().take(600).collect::<String>()
        );
    }
    Ok(())
}

/// The guest's `major.minor`.
fn kernel_version(release: &str) -> Result<(u32, u32)> {
    let mut numbers = release.split(['.', '-']).map(str::parse::<u32>);
    match (numbers.next(), numbers.next()) {
        (Some(Ok(major)), Some(Ok(minor))) => Ok((major, minor)),
        _ => bail!("cannot parse the guest's kernel release {release:?}"),
    }
}

/// The sensor's log line about `topic` must say `expected`.
fn check_logged(release: &str, log: &str, topic: &str, expected: &str) -> Result<()> {
    let said = log.lines().find(|l| l.contains(topic)).unwrap_or("nothing");
    if !said.contains(expected) {
        bail!("on {release} the sensor should log `{expected}`; it said: {said}");
    }
    Ok(())
}

/// Waits until the service's log says the sensor is capturing; returns
/// the log so far. Only the running invocation's: the unit restarts a
/// sensor that exits (`Restart=always`), and an earlier one's "sensor
/// started" said nothing of the one running now.
fn wait_for_sensor(guest: &mut Guest) -> Result<String> {
    let started = Instant::now();
    loop {
        let log = guest.run(
            "journalctl --no-pager -o cat \
             _SYSTEMD_INVOCATION_ID=\"$(systemctl show -p InvocationID --value sensor)\"",
            "reading the sensor's log",
        )?;
        if log.contains("sensor started") {
            return Ok(log);
        }
        if started.elapsed() > SENSOR_START_TIMEOUT {
            bail!("the sensor did not start within {SENSOR_START_TIMEOUT:?}; its log:\n{log}");
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// Runs scripts/attack-scenario.sh on the host against the guest, with a
/// listener port for the reverse shell; its output goes to scenario.log.
fn play_scenario(guest: &mut Guest, steps: &Path, dir: &Path) -> Result<()> {
    let log_path = dir.join("scenario.log");
    let log = std::fs::File::create(&log_path)?;
    let key = std::fs::canonicalize(guest.key())?;
    let mut child = Command::new("bash")
        .arg("scripts/attack-scenario.sh")
        .env("SSH_PORT", guest.ssh_port().to_string())
        .env("SSH_KEY", key)
        .env("GUEST_USER", GUEST_USER)
        .env("GUEST_PASSWORD", GUEST_PASSWORD)
        .env("LISTEN_PORT", free_port()?.to_string())
        .env("STEPS", std::path::absolute(steps)?)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting scripts/attack-scenario.sh")?;
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if let Err(e) = guest.check_alive() {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e.context("during the scenario"));
        }
        if started.elapsed() > SCENARIO_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "the scenario did not finish within {SCENARIO_TIMEOUT:?}; console tail:\n{}",
                guest.console_tail(30)
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    if !status.success() {
        bail!(
            "the scenario failed ({status}); {} ends:\n{}",
            log_path.display(),
            crate::cmd::tail_of(&log_path, 30)
        );
    }
    Ok(())
}

/// Writes what `script` prints in the guest to `to`, and returns it.
fn save(guest: &mut Guest, script: &str, to: &Path) -> Result<String> {
    let text = guest.run(script, "saving the guest's files")?;
    std::fs::write(to, &text).with_context(|| format!("writing {}", to.display()))?;
    Ok(text)
}

/// A local TCP port nobody listens on now: bound once, then released.
fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    use super::{check_path_hooks, check_task_reads, check_verified};

    const PLAIN: &str = "INFO sensor::source::ebpf: the current task is read with plain loads \
                         (bpf_get_current_task_btf)";
    const PROBE: &str = "INFO sensor::source::ebpf: the current task is read with \
                         bpf_probe_read_kernel: the kernel has no bpf_get_current_task_btf";

    #[test]
    fn each_kernel_must_get_the_task_reads_it_can_take() {
        assert!(check_task_reads("6.1.0-50-cloud-amd64", PLAIN).is_ok());
        assert!(check_task_reads("6.12.95+deb12-cloud-amd64", PLAIN).is_ok());
        assert!(check_task_reads("5.10.0-32-cloud-amd64", PROBE).is_ok());
        // A fallback on a kernel that has the helper is a regression.
        assert!(check_task_reads("6.1.0-50-cloud-amd64", PROBE).is_err());
        assert!(check_task_reads("5.10.0-32-cloud-amd64", PLAIN).is_err());
        assert!(check_task_reads("6.1.0", "nothing said").is_err());
        assert!(check_task_reads("garbage", PLAIN).is_err());
    }

    const BOTH: &str = "INFO sensor::source::ebpf: chmod events name the file the kernel \
                        resolved (fentry), and so do chown events";
    const CHMOD: &str = "INFO sensor::source::ebpf: chmod events name the file the kernel \
                         resolved (fentry); chown events name the path argument read from the \
                         caller's memory at entry: security_path_chown: fentry refused";
    const NEITHER: &str = "INFO sensor::source::ebpf: chmod and chown events name the path \
                           argument read from the caller's memory at entry: fentry refused";

    #[test]
    fn each_kernel_must_resolve_the_chmods_and_chowns_it_can() {
        assert!(check_path_hooks("6.1.0-50-cloud-amd64", BOTH).is_ok());
        assert!(check_path_hooks("6.12.95+deb12-cloud-amd64", BOTH).is_ok());
        assert!(check_path_hooks("5.10.0-32-cloud-amd64", CHMOD).is_ok());
        assert!(check_path_hooks("6.12.95+deb12-cloud-amd64", CHMOD).is_err());
        assert!(check_path_hooks("5.10.0-32-cloud-amd64", NEITHER).is_err());
        assert!(check_path_hooks("6.1.0-50-cloud-amd64", "nothing said").is_err());
    }

    #[test]
    fn a_program_the_verifier_refused_fails_the_guest() {
        // Expected refusals, at info level, pass.
        let fallbacks = format!("{CHMOD}\n{PLAIN}\nINFO sensor::daemon: sensor started");
        assert!(check_verified("5.10.0-32-cloud-amd64", &fallbacks).is_ok());
        // An optional hook the sensor expected, refused: a warning.
        let warned = format!(
            "{fallbacks}\nWARN sensor::source::ebpf: ia32 syscalls are not traced: a 32-bit \
             program's syscalls (int 0x80) go unseen: the BPF_PROG_LOAD syscall returned \
             Permission denied (os error 13). Verifier output: R1 invalid mem access"
        );
        assert!(check_verified("6.12.95+deb12-cloud-amd64", &warned).is_err());
        // Too complex, at whatever level the fallback is then logged.
        let too_complex = format!(
            "ERROR sensor::source::ebpf: program watch_compat_enter is {} (BPF_PROG_LOAD \
             returned E2BIG): a sensor bug\n{fallbacks}",
            sensor_common::verifier_log::TOO_COMPLEX
        );
        assert!(check_verified("6.1.0-50-cloud-amd64", &too_complex).is_err());
    }
}
