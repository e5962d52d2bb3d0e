//! `[watch]`: paths whose writes, truncations, deletions and renames are
//! reported (file_write events). Everything else written on the host is
//! dropped in the kernel.

use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use sensor_common::{PATH_HASH_SPAN, WATCH_PATHS_MAX};
use serde::Deserialize;

use super::ConfigError;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WatchConfig {
    /// Absolute paths of files and directories (a directory covers
    /// everything below it), at most 254, each at most 255 bytes and
    /// written without `.`, `..` or empty components. Each is watched by
    /// its path, in the kernel: a path argument that is, or is under, one
    /// (a rename, unlink, truncate or link) is seen on every kernel,
    /// whether or not the path exists yet; and one that exists also by
    /// inode: opens for writing everywhere, calls by path through another
    /// name (a symlink, a bind mount) where fentry loads.
    pub paths: Vec<PathBuf>,
    /// Also watch every directory named `.ssh` and the files directly in
    /// it (`authorized_keys`, `rc`, `environment`: how intruders persist
    /// through sshd), by name, whichever account's home holds it and
    /// whenever it was made; and the `~/.ssh/` of each account in
    /// /etc/passwd by inode as well (reached through a symlink, and with
    /// everything below it): those there at the start, and those found on
    /// the refresh after /etc/passwd or (with `shell_rc_files`) their home
    /// changed.
    pub user_ssh_dirs: bool,
    /// Also watch every directory named `user` in one named `systemd`,
    /// the files in it and those in the directories directly in it (a
    /// unit's drop-ins, `x.service.d/`, and dependencies, `x.wants/`), by
    /// name: `~/.config/systemd/user/`, where systemd starts an account's
    /// own units (persistence that needs no root), whichever account's
    /// home holds it and whenever it was made.
    pub user_unit_dirs: bool,
    /// Also watch every file named as a startup file that bash, sh or zsh
    /// runs from a home (`.bashrc`, `.bash_profile`, `.bash_login`,
    /// `.bash_logout`, `.bash_aliases`, `.profile`, `.zshrc`, `.zshenv`,
    /// `.zprofile`, `.zlogin`, `.zlogout`), by name: code the account runs
    /// at each login or shell (persistence that needs no root), whichever
    /// directory holds it and whenever it was made. One that is a symlink
    /// in a home of /etc/passwd (`~/.bashrc -> dotfiles/bashrc`) is watched
    /// through its target's inode, looked for at the start and on the
    /// refresh after its home or /etc/passwd changed (in 256 homes at
    /// most, root's and uid 1000 and up first). The system-wide ones are
    /// among the default `paths`.
    pub shell_rc_files: bool,
    /// Also watch the files `sshd_config` names for letting someone in:
    /// `AuthorizedKeysFile` and `AuthorizedPrincipalsFile` of each
    /// account in /etc/passwd (or the directory that holds everyone's,
    /// `/etc/ssh/authorized_keys/` for `/etc/ssh/authorized_keys/%u`),
    /// `TrustedUserCAKeys`, `RevokedKeys`, and the programs of
    /// `AuthorizedKeysCommand` and `AuthorizedPrincipalsCommand`, in every
    /// `Match` block and included file. Read at the start, and again on
    /// the counters tick after it, or a file it includes, or /etc/passwd
    /// changed.
    pub sshd_key_files: bool,
    /// The sshd_config to read for `sshd_key_files`.
    pub sshd_config: PathBuf,
}

/// Where Debian puts PAM's modules for this architecture (merged /usr:
/// `/lib/…` is the same directory, and inodes are what is watched).
const PAM_MODULES: &str = if cfg!(target_arch = "aarch64") {
    "/usr/lib/aarch64-linux-gnu/security/"
} else {
    "/usr/lib/x86_64-linux-gnu/security/"
};

impl Default for WatchConfig {
    fn default() -> Self {
        WatchConfig {
            // Where an intruder who got root stays: accounts and their
            // keys, sshd's and PAM's configuration (an authorized_keys
            // elsewhere, a PAM module that lets anyone in), every cron and
            // anacron table, systemd units (system and user, runtime ones
            // too: /run/systemd/system wins over /etc), the dynamic
            // linker's preload, what every login shell runs (bash, sh and
            // Debian's zsh) and the environment pam_env gives every login
            // (LD_PRELOAD), and the logs that would tell.
            //
            // Then what runs as root, or in every session, on a later
            // event: each ssh login's motd scripts
            // and sshrc, boot scripts and systemd's generators, APT's
            // hooks (`DPkg::Pre-Invoke`), udev's `RUN+=` rules, modules
            // loaded at boot and their options (`install` runs a command),
            // the dynamic linker's search path, sudo's plugins, PAM's
            // settings and its modules, polkit's rules, NSS modules,
            // bash completions (sourced by every interactive bash) and
            // desktop autostart entries.
            paths: [
                "/etc/passwd",
                "/etc/shadow",
                "/etc/group",
                "/etc/gshadow",
                "/etc/sudoers",
                "/etc/sudoers.d/",
                "/root/.ssh/",
                "/etc/ssh/sshd_config",
                "/etc/ssh/sshd_config.d/",
                "/etc/pam.d/",
                "/etc/crontab",
                "/etc/anacrontab",
                "/etc/cron.d/",
                "/etc/cron.hourly/",
                "/etc/cron.daily/",
                "/etc/cron.weekly/",
                "/etc/cron.monthly/",
                "/var/spool/cron/",
                "/etc/systemd/system/",
                "/run/systemd/system/",
                "/usr/lib/systemd/system/",
                "/etc/systemd/user/",
                "/usr/lib/systemd/user/",
                "/etc/ld.so.preload",
                "/etc/profile",
                "/etc/profile.d/",
                "/etc/bash.bashrc",
                "/etc/zsh/",
                "/etc/environment",
                "/var/log/",
                "/etc/update-motd.d/",
                "/etc/ssh/sshrc",
                "/etc/rc.local",
                "/etc/init.d/",
                "/etc/systemd/system-generators/",
                "/usr/lib/systemd/system-generators/",
                "/etc/apt/apt.conf.d/",
                "/etc/udev/rules.d/",
                "/etc/modprobe.d/",
                "/etc/modules-load.d/",
                "/etc/modules",
                "/etc/ld.so.conf",
                "/etc/ld.so.conf.d/",
                "/etc/sudo.conf",
                "/etc/security/",
                PAM_MODULES,
                "/etc/polkit-1/rules.d/",
                "/etc/nsswitch.conf",
                "/etc/bash_completion.d/",
                "/etc/xdg/autostart/",
            ]
            .into_iter()
            .map(PathBuf::from)
            .collect(),
            user_ssh_dirs: true,
            user_unit_dirs: true,
            shell_rc_files: true,
            sshd_key_files: true,
            sshd_config: PathBuf::from("/etc/ssh/sshd_config"),
        }
    }
}

impl WatchConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        // With sshd's key files and the homes' .ssh, up to WATCH_PATHS_MAX
        // in all; each short enough for the kernel to compare a path
        // argument's bytes with it (a directory's with its slash).
        if self.paths.len() > WATCH_PATHS_MAX {
            return Err(ConfigError::Invalid {
                key: "watch.paths",
                problem: format!("{} paths, at most {WATCH_PATHS_MAX}", self.paths.len()),
            });
        }
        for (i, p) in self.paths.iter().enumerate() {
            let len = p.as_os_str().len();
            if !p.is_absolute() || len >= PATH_HASH_SPAN {
                return Err(ConfigError::Invalid {
                    key: "watch.paths",
                    problem: format!(
                        "entry {i} `{}` must be absolute and at most {} bytes",
                        p.display(),
                        PATH_HASH_SPAN - 1
                    ),
                });
            }
            if let Some(problem) = super::not_normal(p.as_os_str().as_bytes()) {
                return Err(ConfigError::Invalid {
                    key: "watch.paths",
                    problem: format!("entry {i} `{}` {problem}", p.display()),
                });
            }
        }
        if !self.sshd_config.is_absolute() {
            return Err(ConfigError::Invalid {
                key: "watch.sshd_config",
                problem: format!("`{}` must be absolute", self.sshd_config.display()),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_one_more_path_than_the_kernel_can_hold_is_not() {
        let defaults = WatchConfig::default();
        defaults.validate().expect("the defaults are valid");
        let mut most = defaults.clone();
        most.paths = (0..WATCH_PATHS_MAX)
            .map(|i| PathBuf::from(format!("/etc/x{i}")))
            .collect();
        most.validate().expect("as many as the kernel holds");
        let mut too_many = most.clone();
        too_many.paths.push(PathBuf::from("/etc/one-more"));
        match too_many.validate() {
            Err(ConfigError::Invalid { key, problem }) => {
                assert_eq!(key, "watch.paths");
                assert!(problem.contains("at most 254"), "{problem}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_path_spelled_otherwise_than_where_it_leads_is_refused() {
        let mut config = WatchConfig::default();
        for (path, normal) in [
            ("/etc//cron.d/", "/etc/cron.d/"),
            ("/etc/./passwd", "/etc/passwd"),
            ("/etc/x/../shadow", "/etc/shadow"),
        ] {
            config.paths = vec![PathBuf::from(path)];
            match config.validate() {
                Err(ConfigError::Invalid { key, problem }) => {
                    assert_eq!(key, "watch.paths");
                    assert!(problem.contains(&format!("as `{normal}`")), "{problem}");
                }
                other => panic!("{path}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_path_the_kernel_cannot_compare_whole_is_refused() {
        let mut config = WatchConfig::default();
        let longest = format!("/{}", "a".repeat(PATH_HASH_SPAN - 2));
        config.paths = vec![PathBuf::from(&longest)];
        config
            .validate()
            .expect("255 bytes, 256 with a directory's slash");
        config.paths = vec![PathBuf::from(format!("{longest}b"))];
        match config.validate() {
            Err(ConfigError::Invalid { key, problem }) => {
                assert_eq!(key, "watch.paths");
                assert!(problem.contains("at most 255 bytes"), "{problem}");
            }
            other => panic!("{other:?}"),
        }
    }
}
