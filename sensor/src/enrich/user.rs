//! uid/gid → name, cached.
//!
//! Host processes: the host's NSS (getpwuid_r via nix), so LDAP/SSSD users
//! resolve too. Container processes: the container's own /etc/passwd and
//! /etc/group, read through /proc/PID/root — a uid inside a container means
//! whoever the image says, not whoever the host has under that number.
//! Caches are bounded and dropped when the account files may have changed.

use std::collections::HashMap;

use crate::event::{Id, Shared};
use crate::file_stamp::FileStamp;

const MAX_ENTRIES: usize = 4096;
const MAX_CONTAINERS: usize = 256;

/// Whose account database names a process's ids.
pub enum Accounts<'a> {
    Host,
    /// A container, and processes likely to be in it (the event's own, its
    /// parent…): the first still alive lends its root to read the files.
    Container {
        id: &'a str,
        pids: &'a [u32],
    },
}

#[derive(Default)]
pub struct UserNames {
    /// Shared by every event that names them, their JSON made once.
    users: HashMap<u32, Shared<Id>>,
    groups: HashMap<u32, Shared<Id>>,
    /// The host's account files as last seen.
    stamp: Option<[Option<FileStamp>; 2]>,
    /// By container id; None when its files could not be read.
    containers: HashMap<String, Option<ContainerAccounts>>,
}

#[derive(Default)]
struct ContainerAccounts {
    users: HashMap<u32, String>,
    groups: HashMap<u32, String>,
    /// Ids already looked for again after a miss, this interval.
    retried: std::collections::HashSet<(Kind, u32)>,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    User,
    Group,
}

impl UserNames {
    pub fn user(&mut self, uid: u32, accounts: &Accounts) -> Shared<Id> {
        self.name(Kind::User, uid, accounts)
    }

    pub fn group(&mut self, gid: u32, accounts: &Accounts) -> Shared<Id> {
        self.name(Kind::Group, gid, accounts)
    }

    fn name(&mut self, kind: Kind, id: u32, accounts: &Accounts) -> Shared<Id> {
        match accounts {
            Accounts::Host => {
                let cache = match kind {
                    Kind::User => &mut self.users,
                    Kind::Group => &mut self.groups,
                };
                if cache.len() >= MAX_ENTRIES {
                    cache.clear();
                }
                cache
                    .entry(id)
                    .or_insert_with(|| {
                        Shared::new(Id {
                            id: id.to_string().into(),
                            name: host_lookup(kind, id).map(Into::into),
                        })
                    })
                    .clone()
            }
            Accounts::Container {
                id: container,
                pids,
            } => Shared::new(Id {
                id: id.to_string().into(),
                name: self.in_container(container, pids, kind, id).map(Into::into),
            }),
        }
    }

    /// The name of `id` in a container. A miss re-reads the container's
    /// files once per id and interval: the first read can come from a
    /// process caught while its runtime was still setting /etc up.
    fn in_container(
        &mut self,
        container: &str,
        pids: &[u32],
        kind: Kind,
        id: u32,
    ) -> Option<String> {
        let lookup = |c: &ContainerAccounts| match kind {
            Kind::User => c.users.get(&id).cloned(),
            Kind::Group => c.groups.get(&id).cloned(),
        };
        if let Some(name) = lookup(self.container(container, pids)?) {
            return Some(name);
        }
        let first_miss = self
            .containers
            .get_mut(container)
            .and_then(Option::as_mut)
            .is_some_and(|c| c.retried.insert((kind, id)));
        if !first_miss {
            return None;
        }
        let retried = self
            .containers
            .remove(container)
            .flatten()
            .map(|c| c.retried)
            .unwrap_or_default();
        let name = lookup(self.container(container, pids)?);
        if let Some(Some(c)) = self.containers.get_mut(container) {
            c.retried = retried;
        }
        name
    }

    fn container(&mut self, id: &str, pids: &[u32]) -> Option<&ContainerAccounts> {
        if !self.containers.contains_key(id) {
            if self.containers.len() >= MAX_CONTAINERS {
                self.containers.clear();
            }
            // Events are handled a little after they happen: the process
            // itself may be gone, so try the others. Only a success is
            // cached, so a miss now does not hide the names later.
            let host_root = root_identity("/");
            let accounts = pids.iter().find_map(|pid| {
                // A process still on the host's root (runc's init before
                // pivot_root is already in the container's cgroup) would
                // show the host's files under the container's name.
                let root = format!("/proc/{pid}/root");
                if root_identity(&root).is_none_or(|r| Some(r) == host_root) {
                    return None;
                }
                let read = |f: &str| std::fs::read(format!("{root}/etc/{f}")).ok();
                match (read("passwd"), read("group")) {
                    (None, None) => None,
                    (passwd, group) => Some(ContainerAccounts {
                        users: passwd.map(|p| parse_accounts(&p)).unwrap_or_default(),
                        groups: group.map(|g| parse_accounts(&g)).unwrap_or_default(),
                        retried: Default::default(),
                    }),
                }
            })?;
            self.containers.insert(id.to_owned(), Some(accounts));
        }
        self.containers.get(id).and_then(Option::as_ref)
    }

    /// Called periodically (not per event): forgets names if the host's
    /// account files changed, and re-reads containers' on next use (a
    /// container's files cannot be watched cheaply; a re-read is two small
    /// files per container per interval, only when it has events).
    pub fn invalidate_if_changed(&mut self) {
        self.invalidate_if_changed_at(HOST_FILES);
    }

    fn invalidate_if_changed_at(&mut self, files: [&str; 2]) {
        let now = files.map(FileStamp::of);
        if self.stamp != Some(now) {
            self.users.clear();
            self.groups.clear();
            self.stamp = Some(now);
        }
        self.containers.clear();
    }
}

const HOST_FILES: [&str; 2] = ["/etc/passwd", "/etc/group"];

/// The host's NSS answer for a uid or gid.
fn host_lookup(kind: Kind, id: u32) -> Option<String> {
    match kind {
        Kind::User => nix::unistd::User::from_uid(id.into())
            .ok()
            .flatten()
            .map(|u| u.name),
        Kind::Group => nix::unistd::Group::from_gid(id.into())
            .ok()
            .flatten()
            .map(|g| g.name),
    }
}

/// (device, inode) of a directory, to tell two roots apart.
fn root_identity(path: &str) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// `name:password:id:…` lines (passwd and group share the first three
/// fields) to id → name. Written by hand: NSS only reads the host's own
/// files, and these belong to a container's root. Malformed lines are
/// skipped; the first entry for an id wins, as with getpwuid.
fn parse_accounts(file: &[u8]) -> HashMap<u32, String> {
    let mut out = HashMap::new();
    for line in file.split(|&b| b == b'\n') {
        let mut fields = line.split(|&b| b == b':');
        let (Some(name), Some(_), Some(id)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        let (Ok(name), Some(id)) = (
            std::str::from_utf8(name),
            std::str::from_utf8(id).ok().and_then(|i| i.parse().ok()),
        ) else {
            continue;
        };
        if !name.is_empty() && !name.starts_with('#') {
            out.entry(id).or_insert_with(|| name.to_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_resolves_and_unknown_ids_stay_numeric() {
        let mut n = UserNames::default();
        assert_eq!(n.user(0, &Accounts::Host).name.as_deref(), Some("root"));
        assert_eq!(n.group(0, &Accounts::Host).name.as_deref(), Some("root"));
        let nobody = n.user(3_999_999_999, &Accounts::Host);
        assert_eq!(&*nobody.id, "3999999999");
        assert_eq!(nobody.name, None);
    }

    #[test]
    fn account_files_parse_and_garbage_is_skipped() {
        let f = b"root:x:0:0:root:/root:/bin/sh\n\
                  ctruser:x:4242:4243::/:/bin/sh\n\
                  dup:x:4242:1::/:/bin/sh\n\
                  broken line\n\
                  bad:x:notanumber:0\n\
                  \xff\xfe:x:7:7\n\
                  ctrgroup:x:4243:\n";
        let m = parse_accounts(f);
        assert_eq!(m.get(&0).map(String::as_str), Some("root"));
        assert_eq!(
            m.get(&4242).map(String::as_str),
            Some("ctruser"),
            "first entry wins"
        );
        assert_eq!(m.get(&4243).map(String::as_str), Some("ctrgroup"));
        assert_eq!(m.get(&7), None);
        assert_eq!(m.len(), 3);
    }

    #[test]
    fn any_change_to_the_account_files_forgets_the_cached_names() {
        let dir = std::env::temp_dir().join(format!("sensor-user-stamp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let (passwd, group) = (dir.join("passwd"), dir.join("group"));
        std::fs::write(&passwd, "a:x:1:1\n").expect("write");
        std::fs::write(&group, "a:x:1:\n").expect("write");
        let files = [
            passwd.to_str().expect("utf-8"),
            group.to_str().expect("utf-8"),
        ];
        let mut n = UserNames::default();
        n.invalidate_if_changed_at(files);
        let cached = |n: &mut UserNames| {
            n.users.insert(
                1,
                Shared::new(Id {
                    id: "1".into(),
                    name: None,
                }),
            );
            n.invalidate_if_changed_at(files);
            !n.users.is_empty()
        };
        assert!(cached(&mut n), "no change: the cache stays");
        // Same size, and the old mtime put back: only ctime tells. (Past
        // the coarse clock tick timestamps may come from on older kernels.)
        std::thread::sleep(std::time::Duration::from_millis(50));
        let before = std::fs::metadata(&passwd)
            .expect("stat")
            .modified()
            .expect("mtime");
        std::fs::write(&passwd, "b:x:1:1\n").expect("rewrite");
        std::fs::File::options()
            .write(true)
            .open(&passwd)
            .expect("open")
            .set_modified(before)
            .expect("touch");
        assert!(
            !cached(&mut n),
            "an in-place rewrite with the old mtime is seen"
        );
        // Replaced by rename, as useradd does.
        let new = dir.join("group.new");
        std::fs::write(&new, "a:x:1:\n").expect("write");
        std::fs::rename(&new, &group).expect("rename");
        assert!(!cached(&mut n), "a replaced file is seen");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_process_on_the_host_root_does_not_lend_it_to_a_container() {
        // This test process shares the host's root: it must not be taken for
        // the container's, and a vanished pid gives no name either (not the
        // host's). The real container case is in tests/tests/containers.rs.
        let mut n = UserNames::default();
        let pids = [u32::MAX, std::process::id()];
        let c = Accounts::Container {
            id: "test",
            pids: &pids,
        };
        assert_eq!(n.user(0, &c).name, None);
    }
}
