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
    Ok(Host {
        name,
        id: read_trimmed("/etc/machine-id").unwrap_or_default(),
        boot_id: boot_id()?,
        os: HostOs {
            kernel: uname
                .map(|u| u.release().to_string_lossy().into_owned())
                .unwrap_or_default(),
            type_: "linux",
        },
    })
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
        assert_eq!(h.boot_id.len(), 36, "boot id looks like a uuid: {}", h.boot_id);
        assert!(!h.os.kernel.is_empty());
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
