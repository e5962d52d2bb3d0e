//! The accounts of /etc/passwd that have a home directory: where the
//! watch rules look for `~/.ssh`, startup files that are symlinks, and
//! the key files sshd_config names per account.
//!
//! Read from the file, not through getpwent(3): NSS modules (LDAP, sssd)
//! can list thousands of accounts, or hang, and the homes that matter
//! here are the host's own.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// An account of /etc/passwd with a home directory.
#[derive(Debug, Clone, Default)]
pub struct Account {
    pub name: Vec<u8>,
    pub uid: u32,
    pub home: PathBuf,
}

/// The accounts of /etc/passwd whose home exists (not `/`).
pub fn accounts() -> Vec<Account> {
    let Ok(passwd) = std::fs::read("/etc/passwd") else {
        return Vec::new();
    };
    passwd
        .split(|&b| b == b'\n')
        .filter_map(|line| {
            let fields: Vec<&[u8]> = line.split(|&b| b == b':').collect();
            let (name, uid, home) = (fields.first()?, fields.get(2)?, fields.get(5)?);
            let uid = std::str::from_utf8(uid).ok()?.parse().ok()?;
            let home = PathBuf::from(std::ffi::OsStr::from_bytes(home));
            (home.is_absolute() && home != Path::new("/") && home.is_dir()).then(|| Account {
                name: name.to_vec(),
                uid,
                home,
            })
        })
        .collect()
}

/// Their homes, each once.
pub fn homes() -> Vec<PathBuf> {
    homes_by_uid().into_iter().map(|(_, home)| home).collect()
}

/// Their homes, each once, with the uid of the first account that has
/// it.
pub fn homes_by_uid() -> Vec<(u32, PathBuf)> {
    let mut seen = std::collections::HashSet::new();
    let mut homes: Vec<(u32, PathBuf)> = Vec::new();
    for Account { uid, home, .. } in accounts() {
        if seen.insert(home.clone()) {
            homes.push((uid, home));
        }
    }
    homes
}
