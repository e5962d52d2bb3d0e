//! uid/gid → name, cached. Names come from the host's NSS (getpwuid_r via
//! nix), so LDAP/SSSD users resolve too. The cache is dropped when
//! /etc/passwd or /etc/group change, and is bounded.

use std::collections::HashMap;
use std::time::SystemTime;

use crate::event::Id;

const MAX_ENTRIES: usize = 4096;

#[derive(Default)]
pub struct UserNames {
    users: HashMap<u32, Option<String>>,
    groups: HashMap<u32, Option<String>>,
    stamp: Option<(Option<SystemTime>, Option<SystemTime>)>,
}

impl UserNames {
    pub fn user(&mut self, uid: u32) -> Id {
        if self.users.len() >= MAX_ENTRIES {
            self.users.clear();
        }
        let name = self
            .users
            .entry(uid)
            .or_insert_with(|| {
                nix::unistd::User::from_uid(uid.into())
                    .ok()
                    .flatten()
                    .map(|u| u.name)
            })
            .clone();
        Id { id: uid.to_string(), name }
    }

    pub fn group(&mut self, gid: u32) -> Id {
        if self.groups.len() >= MAX_ENTRIES {
            self.groups.clear();
        }
        let name = self
            .groups
            .entry(gid)
            .or_insert_with(|| {
                nix::unistd::Group::from_gid(gid.into())
                    .ok()
                    .flatten()
                    .map(|g| g.name)
            })
            .clone();
        Id { id: gid.to_string(), name }
    }

    /// Called periodically (not per event): forgets names if the account
    /// files changed, so a renamed or new user shows up.
    pub fn invalidate_if_changed(&mut self) {
        let mtime = |p: &str| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        let now = (mtime("/etc/passwd"), mtime("/etc/group"));
        if self.stamp != Some(now) {
            self.users.clear();
            self.groups.clear();
            self.stamp = Some(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_resolves_and_unknown_ids_stay_numeric() {
        let mut n = UserNames::default();
        assert_eq!(n.user(0).name.as_deref(), Some("root"));
        assert_eq!(n.group(0).name.as_deref(), Some("root"));
        let nobody = n.user(3_999_999_999);
        assert_eq!(nobody.id, "3999999999");
        assert_eq!(nobody.name, None);
    }
}
