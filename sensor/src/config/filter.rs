//! `[filter]`: what the kernel side drops before it reaches userspace.
//!
//! Applies to the syscall event kinds (file_attr, cred, net, system).
//! Process lifecycle events (exec, fork, exit) are always captured: every
//! other event's process context and ancestry is built from them.

use std::path::PathBuf;

use sensor_common::{IGNORE_PREFIX_CAP, IGNORE_PREFIXES_MAX};
use serde::Deserialize;

use super::ConfigError;

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilterConfig {
    /// Real uids whose actions are not reported.
    pub ignore_uids: Vec<u32>,
    /// Programs (by path; matched by inode, so hard links and bind mounts
    /// of the same file match too) whose actions are not reported.
    pub ignore_executables: Vec<PathBuf>,
    /// cgroup v2 paths (as in /proc/PID/cgroup, e.g.
    /// `/system.slice/backup.service`) whose processes are not reported.
    pub ignore_cgroups: Vec<String>,
    /// Absolute path prefixes of file events not to report (matched on
    /// the path as the caller passed it).
    pub ignore_path_prefixes: Vec<String>,
}

/// Largest number of entries in each list (the kernel maps' size).
pub const LIST_MAX: usize = 1024;

impl FilterConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for (key, len) in [
            ("filter.ignore_uids", self.ignore_uids.len()),
            ("filter.ignore_executables", self.ignore_executables.len()),
            ("filter.ignore_cgroups", self.ignore_cgroups.len()),
        ] {
            if len > LIST_MAX {
                return Err(ConfigError::Invalid {
                    key,
                    problem: format!("{len} entries, at most {LIST_MAX}"),
                });
            }
        }
        for (i, exe) in self.ignore_executables.iter().enumerate() {
            if !exe.is_absolute() {
                return Err(ConfigError::Invalid {
                    key: "filter.ignore_executables",
                    problem: format!("entry {i} `{}` is not an absolute path", exe.display()),
                });
            }
        }
        for (i, cg) in self.ignore_cgroups.iter().enumerate() {
            if !cg.starts_with('/') {
                return Err(ConfigError::Invalid {
                    key: "filter.ignore_cgroups",
                    problem: format!(
                        "entry {i} `{cg}` must start with `/` (as in /proc/PID/cgroup)"
                    ),
                });
            }
        }
        if self.ignore_path_prefixes.len() > IGNORE_PREFIXES_MAX as usize {
            return Err(ConfigError::Invalid {
                key: "filter.ignore_path_prefixes",
                problem: format!(
                    "{} entries, at most {IGNORE_PREFIXES_MAX} (each one is compared in the kernel)",
                    self.ignore_path_prefixes.len()
                ),
            });
        }
        for (i, p) in self.ignore_path_prefixes.iter().enumerate() {
            if !p.starts_with('/') || p.len() > IGNORE_PREFIX_CAP {
                return Err(ConfigError::Invalid {
                    key: "filter.ignore_path_prefixes",
                    problem: format!(
                        "entry {i} `{p}` must be absolute and at most {IGNORE_PREFIX_CAP} bytes"
                    ),
                });
            }
            if let Some(problem) = super::not_normal(p.as_bytes()) {
                return Err(ConfigError::Invalid {
                    key: "filter.ignore_path_prefixes",
                    problem: format!("entry {i} `{p}` {problem}"),
                });
            }
        }
        Ok(())
    }
}
