//! The collector outside the guest: a real rsyslog (Debian's, started in
//! the foreground with a generated config) receiving the guest's syslog
//! sink over TCP through QEMU's user network (the guest dials 10.0.2.2,
//! which is the host's loopback). Each message is written with the time
//! rsyslog received it, which is what the verifier's latency column uses.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use super::verify::Received;

pub struct Collector {
    child: Child,
    port: u16,
    output: PathBuf,
    dir: PathBuf,
}

impl Collector {
    pub fn start(dir: &Path) -> Result<Collector> {
        if !Path::new("/usr/sbin/rsyslogd").exists() {
            bail!("rsyslogd is missing: `cargo xtask setup` installs Debian's rsyslog");
        }
        std::fs::create_dir_all(dir.join("work"))
            .with_context(|| format!("creating {}", dir.display()))?;
        let port = super::free_port()?;
        let output = dir.join("received.log");
        let _ = std::fs::remove_file(&output);
        let conf = dir.join("rsyslog.conf");
        // The receipt time, a tab, the message (the event's JSON, which has
        // no raw tabs or newlines): one line per event.
        std::fs::write(
            &conf,
            format!(
                "global(workDirectory=\"{d}/work\" maxMessageSize=\"256k\")\n\
                 module(load=\"imtcp\" maxSessions=\"20\")\n\
                 input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\")\n\
                 template(name=\"received\" type=\"string\" string=\"%timegenerated:::date-rfc3339%\\t%msg%\\n\")\n\
                 action(type=\"omfile\" file=\"{out}\" template=\"received\")\n",
                d = dir.display(),
                out = output.display()
            ),
        )?;
        let child = Command::new("/usr/sbin/rsyslogd")
            .args(["-n", "-f"])
            .arg(&conf)
            .arg("-i")
            .arg(dir.join("rsyslogd.pid"))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.join("rsyslogd.out"))?)
            .stderr(std::fs::File::create(dir.join("rsyslogd.err"))?)
            .spawn()
            .context("starting rsyslogd (the collector)")?;
        let mut c = Collector {
            child,
            port,
            output,
            dir: dir.to_owned(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = c.child.try_wait()? {
                bail!("the collector's rsyslogd exited ({status}): {}", c.stderr());
            }
            if Instant::now() > deadline {
                bail!(
                    "the collector's rsyslogd did not listen on {port} within 30 s: {}",
                    c.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(c)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn output(&self) -> &Path {
        &self.output
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("rsyslogd.err")).unwrap_or_default()
    }

    /// Every event received so far. A line that is not `TIME\tJSON` is an
    /// error: the collector's own output is not attacker-controlled, and a
    /// broken line means the sensor sent something rsyslog could not frame.
    pub fn received(&self) -> Result<Vec<Received>> {
        let text = match std::fs::read(&self.output) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("reading {}", self.output.display())),
        };
        let mut events = Vec::new();
        // The last line may be half-written: only complete lines count.
        let complete = text.rfind('\n').map_or("", |end| &text[..end]);
        for (n, line) in complete.lines().enumerate() {
            let (time, msg) = line
                .split_once('\t')
                .with_context(|| format!("collector line {}: no tab: {line}", n + 1))?;
            let at_ms = rfc3339_ms(time)
                .with_context(|| format!("collector line {}: bad time {time:?}", n + 1))?;
            let msg = msg.trim_start_matches('\u{feff}').trim();
            let event = serde_json::from_str(msg)
                .with_context(|| format!("collector line {}: not JSON: {msg}", n + 1))?;
            events.push(Received { at_ms, event });
        }
        Ok(events)
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Milliseconds since the epoch of rsyslog's `date-rfc3339`, e.g.
/// `2026-12-01T14:10:00.123456+00:00`. By hand: xtask has no date crate
/// and this is the one timestamp it reads.
pub(super) fn rfc3339_ms(s: &str) -> Option<u64> {
    let num = |a: usize, b: usize| s.get(a..b)?.parse::<i64>().ok();
    let (y, mo, d, h, mi, sec) = (
        num(0, 4)?,
        num(5, 7)?,
        num(8, 10)?,
        num(11, 13)?,
        num(14, 16)?,
        num(17, 19)?,
    );
    let rest = s.get(19..)?;
    let (frac, zone) = match rest.strip_prefix('.') {
        Some(r) => {
            let end = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
            (&r[..end], &r[end..])
        }
        None => ("", rest),
    };
    let ms = format!("{frac:0<3}").get(..3)?.parse::<i64>().ok()?;
    let offset_min = match zone {
        "Z" => 0,
        z if z.len() == 6 => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            sign * (z.get(1..3)?.parse::<i64>().ok()? * 60 + z.get(4..6)?.parse::<i64>().ok()?)
        }
        _ => return None,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let yy = if mo <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * ((mo + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    u64::try_from(secs * 1000 + ms).ok()
}

#[cfg(test)]
mod tests {
    use super::rfc3339_ms;

    #[test]
    fn rsyslog_times_become_epoch_milliseconds() {
        // date -d 2026-12-01T14:10:00Z +%s = 1796134200
        assert_eq!(
            rfc3339_ms("2026-12-01T14:10:00.123456+00:00"),
            Some(1_796_134_200_123)
        );
        assert_eq!(
            rfc3339_ms("2026-12-01T15:10:00.5+01:00"),
            Some(1_796_134_200_500)
        );
        assert_eq!(rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(rfc3339_ms("2024-02-29T00:00:00Z"), Some(1_709_164_800_000));
        assert_eq!(rfc3339_ms("yesterday"), None);
        assert_eq!(rfc3339_ms("2026-12-01T14:10:00.1+0000"), None);
    }
}
