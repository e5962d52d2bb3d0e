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

/// Homes that do not exist noted as sources one by one, at the most
/// (each is a stat on every tick); beyond, the directory that would hold
/// each is noted instead (`/home`: a home made there changes it), which
/// changes more often for nothing. Hosts that make homes at the first
/// login (pam_mkhomedir) can list thousands.
const MISSING_HOMES_NOTED_MAX: usize = 64;

/// The accounts of /etc/passwd whose home exists (not `/`). /etc/passwd
/// and each home it names that does not exist are noted in `sources`: an
/// account added later changes the file, and useradd makes the home
/// after writing it.
pub fn accounts(sources: &mut Sources) -> Vec<Account> {
    accounts_in(Path::new(PASSWD), sources)
}

/// [`accounts`] of the passwd file at `passwd`.
fn accounts_in(passwd: &Path, sources: &mut Sources) -> Vec<Account> {
    sources.note(passwd);
    let Ok(passwd) = std::fs::read(passwd) else {
        return Vec::new();
    };
    let mut missing = std::collections::HashSet::new();
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
                missing.insert(home.clone());
                match home.parent() {
                    Some(dir) if missing.len() > MISSING_HOMES_NOTED_MAX => sources.note(dir),
                    _ => sources.note(&home),
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_with_a_home_and_the_missing_homes_as_sources_so_many_one_by_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        std::fs::create_dir(d.join("alice")).expect("mkdir");
        let mut passwd = format!(
            "root:x:0:0::/:/bin/sh\nalice:x:1000:1000::{}/alice:/bin/sh\nweird:x:1:1::rel:/bin/sh\n",
            d.display()
        );
        // Two accounts sharing a missing home count once.
        for i in 0..=MISSING_HOMES_NOTED_MAX {
            passwd.push_str(&format!(
                "u{i}:x:{}:1::{}/later/u{i}:/bin/sh\n",
                2000 + i,
                d.display()
            ));
        }
        passwd.push_str(&format!(
            "twin:x:3000:1::{}/later/u0:/bin/sh\n",
            d.display()
        ));
        let file = d.join("passwd");
        std::fs::write(&file, passwd).expect("write");
        let mut sources = Sources::default();
        let accounts = accounts_in(&file, &mut sources);
        assert_eq!(accounts.len(), 1, "{accounts:?}");
        assert_eq!(
            (accounts[0].name.as_slice(), accounts[0].uid),
            (&b"alice"[..], 1000)
        );
        let noted: Vec<PathBuf> = sources.paths().map(Path::to_path_buf).collect();
        let mut want = vec![file.clone()];
        want.extend((0..MISSING_HOMES_NOTED_MAX).map(|i| d.join(format!("later/u{i}"))));
        want.push(d.join("later"));
        assert_eq!(noted, want);
    }
}
