//! The accounts of /etc/passwd that have a home directory: where the
//! watch rules look for `~/.ssh`, startup files that are symlinks, and
//! the key files sshd_config names per account.
//!
//! Read from the file, not through getpwent(3): NSS modules (LDAP, sssd)
//! can list thousands of accounts, or hang, and the homes that matter
//! here are the host's own.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::watch_sources::Sources;

const PASSWD: &str = "/etc/passwd";

/// An account of /etc/passwd with a home directory.
#[derive(Debug, Clone, Default)]
pub struct Account {
    pub name: Vec<u8>,
    pub uid: u32,
    pub home: PathBuf,
}

/// The accounts of /etc/passwd whose home exists (not `/`). /etc/passwd
/// and each home it names that does not exist are noted in `sources`: an
/// account added later changes the file, and useradd makes the home
/// after writing it.
pub fn accounts(sources: &mut Sources) -> Vec<Account> {
    sources.note(Path::new(PASSWD));
    let Ok(passwd) = std::fs::read(PASSWD) else {
        return Vec::new();
    };
    passwd
        .split(|&b| b == b'\n')
        .filter_map(|line| {
            let fields: Vec<&[u8]> = line.split(|&b| b == b':').collect();
            let (name, uid, home) = (fields.first()?, fields.get(2)?, fields.get(5)?);
            let uid = std::str::from_utf8(uid).ok()?.parse().ok()?;
            let home = PathBuf::from(std::ffi::OsStr::from_bytes(home));
            if !home.is_absolute() || home == Path::new("/") {
                return None;
            }
            // Looked at again once noted: a home made in between is in.
            let exists = home.is_dir() || {
                sources.note(&home);
                home.is_dir()
            };
            exists.then(|| Account {
                name: name.to_vec(),
                uid,
                home,
            })
        })
        .collect()
}

/// Their homes, each once, with the uid of the first account that has
/// it.
pub fn homes_by_uid(accounts: &[Account]) -> Vec<(u32, PathBuf)> {
    let mut seen = std::collections::HashSet::new();
    let mut homes: Vec<(u32, PathBuf)> = Vec::new();
    for Account { uid, home, .. } in accounts {
        if seen.insert(home.clone()) {
            homes.push((*uid, home.clone()));
        }
    }
    homes
}
