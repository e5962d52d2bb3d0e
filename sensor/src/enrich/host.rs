//! Who and where: the host and the agent, read once at start.

use std::path::Path;

use crate::event::{Agent, Host, HostOs};

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create the state directory {path}: {source}")]
    StateDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

pub fn host() -> Result<Host, HostError> {
    let uname = nix::sys::utsname::uname().ok();
    let name = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default();
    // os-release(5): /etc first, the vendor's copy when /etc has none.
    let release = std::fs::read_to_string("/etc/os-release")
        .or_else(|_| std::fs::read_to_string("/usr/lib/os-release"))
        .unwrap_or_default();
    let field = |key: &str| os_release_field(&release, key);
    Ok(Host {
        name,
        id: read_trimmed("/etc/machine-id").unwrap_or_default(),
        boot_id: boot_id()?,
        os: HostOs {
            kernel: uname
                .map(|u| u.release().to_string_lossy().into_owned())
                .unwrap_or_default(),
            type_: "linux",
            name: field("NAME"),
            version: field("VERSION").or_else(|| field("VERSION_ID")),
            platform: field("ID"),
            full: field("PRETTY_NAME"),
        },
    })
}

/// One `KEY=value` of os-release, unquoted. By hand: the format is a line
/// per key with optional shell quoting, and only four keys are read (the
/// crates for it are unmaintained one-offs).
fn os_release_field(text: &str, key: &str) -> Option<String> {
    let value = text
        .lines()
        .find_map(|l| l.trim().strip_prefix(key)?.strip_prefix('='))?;
    let unquoted = match value.as_bytes() {
        [q @ (b'"' | b'\''), .., last] if last == q => &value[1..value.len() - 1],
        _ => value,
    };
    // Inside double quotes, a backslash escapes the next character.
    let mut out = String::with_capacity(unquoted.len());
    let mut chars = unquoted.chars();
    while let Some(c) = chars.next() {
        out.push(if c == '\\' {
            chars.next().unwrap_or(c)
        } else {
            c
        });
    }
    (!out.is_empty()).then_some(out)
}

pub fn boot_id() -> Result<String, HostError> {
    const PATH: &str = "/proc/sys/kernel/random/boot_id";
    read_trimmed(PATH).map_err(|source| HostError::Read { path: PATH, source })
}

/// The agent's id persists in `state_dir/agent-id` so a host's events keep
/// one `agent.id` across restarts.
pub fn agent(state_dir: &Path) -> Result<Agent, HostError> {
    let file = state_dir.join("agent-id");
    let id = match std::fs::read_to_string(&file) {
        Ok(s) if !s.trim().is_empty() => s.trim().to_owned(),
        _ => {
            std::fs::create_dir_all(state_dir).map_err(|source| HostError::StateDir {
                path: state_dir.display().to_string(),
                source,
            })?;
            let id = random_uuid();
            std::fs::write(&file, format!("{id}\n")).map_err(|source| HostError::StateDir {
                path: file.display().to_string(),
                source,
            })?;
            id
        }
    };
    Ok(Agent {
        name: "sensor",
        type_: "sensor",
        version: env!("CARGO_PKG_VERSION"),
        id,
    })
}

/// A random (version 4) UUID. Written by hand: the kernel's own
/// `/proc/sys/kernel/random/uuid` is exactly this, no crate needed.
pub fn random_uuid() -> String {
    read_trimmed("/proc/sys/kernel/random/uuid").unwrap_or_else(|_| {
        let mut b = [0u8; 16];
        random_bytes(&mut b);
        b.iter().map(|x| format!("{x:02x}")).collect()
    })
}

pub fn random_bytes(buf: &mut [u8]) {
    // SAFETY: getrandom writes at most buf.len() bytes into buf.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n != buf.len() as isize {
        // getrandom cannot fail on Linux ≥3.17 once the pool is initialised;
        // fall back to something unique-enough rather than abort.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
            ^ u128::from(std::process::id());
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (t >> ((i % 16) * 8)) as u8;
        }
    }
}

fn read_trimmed(path: &str) -> std::io::Result<String> {
    Ok(std::fs::read_to_string(path)?.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_fields_are_read_from_this_machine() {
        let h = host().expect("host info");
        assert_eq!(
            h.boot_id.len(),
            36,
            "boot id looks like a uuid: {}",
            h.boot_id
        );
        assert!(!h.os.kernel.is_empty());
    }

    #[test]
    fn os_release_values_are_unquoted() {
        let text = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME='Debian GNU/Linux'\nVERSION_ID=\"12\"\nID=debian\nVARIANT=\"a \\\"q\\\" b\"\nEMPTY=\n";
        assert_eq!(
            os_release_field(text, "PRETTY_NAME").as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
        assert_eq!(
            os_release_field(text, "NAME").as_deref(),
            Some("Debian GNU/Linux")
        );
        assert_eq!(os_release_field(text, "ID").as_deref(), Some("debian"));
        assert_eq!(os_release_field(text, "VERSION_ID").as_deref(), Some("12"));
        assert_eq!(
            os_release_field(text, "VARIANT").as_deref(),
            Some("a \"q\" b")
        );
        assert_eq!(os_release_field(text, "EMPTY"), None);
        assert_eq!(
            os_release_field(text, "VERSION"),
            None,
            "not a prefix match of VERSION_ID"
        );
    }

    #[test]
    fn agent_id_persists_across_calls() {
        let dir = std::env::temp_dir().join(format!("sensor-agent-test-{}", std::process::id()));
        let a = agent(&dir).expect("first");
        let b = agent(&dir).expect("second");
        assert_eq!(a.id, b.id);
        assert_eq!(a.id.len(), 36);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
