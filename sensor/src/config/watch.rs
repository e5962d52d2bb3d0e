//! `[watch]`: paths whose writes, truncations, deletions and renames are
//! reported (file_write events). Everything else written on the host is
//! dropped in the kernel.

use std::path::PathBuf;

use sensor_common::{IGNORE_PREFIX_CAP, WATCH_PREFIXES_MAX};
use serde::Deserialize;

use super::ConfigError;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WatchConfig {
    /// Absolute paths of files and directories (a directory covers
    /// everything below it). Paths that do not exist yet are watched by
    /// name, so that their creation is seen.
    pub paths: Vec<PathBuf>,
    /// Also watch every directory named `.ssh` and the files directly in
    /// it (`authorized_keys`, `rc`, `environment`: how intruders persist
    /// through sshd), by name, whichever account's home holds it and
    /// whenever it was made; and the `~/.ssh/` of each account in
    /// /etc/passwd that exists at start by inode as well (reached through
    /// a symlink, and with everything below it).
    pub user_ssh_dirs: bool,
}

impl Default for WatchConfig {
    fn default() -> Self {
        WatchConfig {
            paths: [
                "/etc/passwd",
                "/etc/shadow",
                "/etc/group",
                "/etc/gshadow",
                "/etc/sudoers",
                "/etc/sudoers.d/",
                "/root/.ssh/",
                "/etc/ssh/sshd_config",
                "/etc/crontab",
                "/etc/cron.d/",
                "/etc/cron.hourly/",
                "/etc/cron.daily/",
                "/var/spool/cron/",
                "/etc/systemd/system/",
                "/usr/lib/systemd/system/",
                "/etc/ld.so.preload",
                "/var/log/",
            ]
            .into_iter()
            .map(PathBuf::from)
            .collect(),
            user_ssh_dirs: true,
        }
    }
}

impl WatchConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        // Home .ssh directories share the kernel's string slots; leave room.
        let max = WATCH_PREFIXES_MAX as usize * 3 / 4;
        if self.paths.len() > max {
            return Err(ConfigError::Invalid {
                key: "watch.paths",
                problem: format!(
                    "{} paths, at most {max} (each is compared in the kernel)",
                    self.paths.len()
                ),
            });
        }
        for (i, p) in self.paths.iter().enumerate() {
            let len = p.as_os_str().len();
            if !p.is_absolute() || len > IGNORE_PREFIX_CAP {
                return Err(ConfigError::Invalid {
                    key: "watch.paths",
                    problem: format!(
                        "entry {i} `{}` must be absolute and at most {IGNORE_PREFIX_CAP} bytes",
                        p.display()
                    ),
                });
            }
        }
        Ok(())
    }
}
