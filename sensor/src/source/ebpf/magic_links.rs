//! The symlinks the daemon saw made to lead through a magic link
//! (`/tmp/c -> /proc/self/cwd`), for the kernel's path check. Where
//! fentry is refused, the kernel decides a rename, unlink, link or
//! truncate by its path's bytes, and `/tmp/c/evil` names no watched path
//! whatever directory it leads to. Each such link's path, with a slash,
//! goes into `WATCHED_PATH_HASHES` as a prefix: paths below it are sent,
//! and the daemon follows them from where the link leads
//! (`enrich::path_resolve::KnownLink`). So are the link itself renamed
//! or linked, by its whole path or (its directory in `WATCHED_ABOVE_DIRS`)
//! by a relative name, and a link to it by a relative target (its
//! directory's whole path): the new name is followed too.
//!
//! Bounded ([`MAGIC_LINKS_MAX`]), the oldest left out first and counted;
//! a link is let go when a record removes it ([`MagicLinkChange`]), and
//! one made in the host's root once it is gone from there.
//! Kept across restarts in the state directory ([`STATE_FILE`]): a
//! restart must not be the way to make the sensor forget one. Links made
//! before the sensor first ran are not known.

use std::collections::VecDeque;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use sensor_common::{ExeKey, MAGIC_LINKS_MAX, PATH_HASH_SPAN, path_hash, path_hash_whole};
use serde::{Deserialize, Serialize};

use super::inode_key::InodeKeys;
use crate::enrich::path_resolve::KnownLink;

/// The links' file in the state directory: JSON, each path as its bytes.
pub const STATE_FILE: &str = "magic-links.json";

/// One such link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MagicLink {
    pub link: KnownLink,
    /// Made by a process outside any container, so in the daemon's root,
    /// where it is looked for on each refresh.
    pub in_host_root: bool,
    /// Its directory's inode, where it is in the daemon's root: looked
    /// up when it is added (and so after a load), not kept.
    #[serde(skip)]
    pub dir: Option<ExeKey>,
    /// Named by an io_uring request (made, renamed or linked), remembered
    /// at its submission: the link may not be there yet (a request linked
    /// behind a read that waits runs when that ends, long after), so it is
    /// not let go while its name holds nothing, only once it was seen
    /// holding its target.
    #[serde(default)]
    pub awaited: bool,
}

/// What a host link's name holds, looked at on a refresh.
#[derive(PartialEq, Eq)]
enum Found {
    /// The link, to its target as written.
    Link,
    Nothing,
    /// Another link, or a file that is not one.
    Other,
}

/// See [`MagicLink::on_refresh`].
#[derive(PartialEq, Eq)]
enum Refresh {
    Keep,
    /// Awaited, and there now: no longer awaited.
    Seen,
    LetGo,
}

impl MagicLink {
    /// The link's directory, with its slash (`/tmp/` for `/tmp/c`).
    fn dir_path(&self) -> &[u8] {
        let path = &self.link.path;
        &path[..=path.iter().rposition(|&b| b == b'/').unwrap_or(0)]
    }

    /// What a refresh does with it: a link made in a container's root is
    /// kept (the daemon cannot look there); one in the host's root is let
    /// go once its name holds something else, or nothing unless it is
    /// awaited.
    fn on_refresh(&self) -> Refresh {
        if !self.in_host_root {
            return Refresh::Keep;
        }
        match (self.found(), self.awaited) {
            (Found::Link, true) => Refresh::Seen,
            (Found::Link, false) | (Found::Nothing, true) => Refresh::Keep,
            _ => Refresh::LetGo,
        }
    }

    /// What its name holds in the daemon's root.
    fn found(&self) -> Found {
        match std::fs::read_link(std::ffi::OsStr::from_bytes(&self.link.path)) {
            Ok(t) if t.as_os_str().as_bytes() == self.link.written => Found::Link,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Found::Nothing,
            _ => Found::Other,
        }
    }
}

/// What a record did to the links, in the order of the records: made
/// (or given another name), or removed (unlinked, renamed away, or
/// replaced by a rename over it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MagicLinkChange {
    Made(MagicLink),
    Removed(Vec<u8>),
}

/// The links, the oldest first.
#[derive(Debug, Clone, Default)]
pub struct MagicLinks {
    links: VecDeque<MagicLink>,
    /// The last [`LET_GO_KEPT`] links let go as gone: a link renamed is
    /// gone from its old name before the daemon reads the rename's record
    /// (a refresh may come in between), which must still find it.
    let_go: VecDeque<MagicLink>,
    stats: MagicLinkStats,
}

/// Links let go that a rename's record can still find (see
/// [`MagicLinks::let_go`]): more than a refresh tick's worth of renames.
const LET_GO_KEPT: usize = 64;

/// Links followed in the kernel's path check (the heartbeat's
/// `magic_links`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MagicLinkStats {
    /// Followed now.
    pub tracked: usize,
    /// Left out, the oldest first, when a new one came beyond
    /// `MAGIC_LINKS_MAX`: paths through them are no longer sent.
    pub evicted: u64,
    /// Let go because they were removed or replaced.
    pub expired: u64,
}

impl MagicLinks {
    /// Adds `new`, in place of one at the same path; the one left out to
    /// make room, if any.
    pub fn add(&mut self, new: MagicLink) -> Option<MagicLink> {
        self.add_all([new]).pop()
    }

    /// Adds each of `new` (see [`Self::add`]); those left out to make
    /// room. The mount table, which a host link's directory key needs,
    /// is read once for them all, and only if one is a host link.
    pub fn add_all(&mut self, new: impl IntoIterator<Item = MagicLink>) -> Vec<MagicLink> {
        let mut keys: Option<InodeKeys> = None;
        let mut out = Vec::new();
        for mut link in new {
            self.links.retain(|l| l.link.path != link.link.path);
            if link.in_host_root {
                let dir = Path::new(std::ffi::OsStr::from_bytes(link.dir_path()));
                link.dir = (std::fs::metadata(dir).ok())
                    .filter(|m| m.is_dir())
                    .map(|m| keys.get_or_insert_with(InodeKeys::new).key(dir, &m));
            }
            self.links.push_back(link);
            if self.links.len() > MAGIC_LINKS_MAX {
                self.stats.evicted += 1;
                out.extend(self.links.pop_front());
            }
        }
        out
    }

    /// Applies `changes` in their order; the links left out to make room.
    pub fn apply(&mut self, changes: Vec<MagicLinkChange>) -> Vec<MagicLink> {
        let mut out = Vec::new();
        for change in changes {
            match change {
                MagicLinkChange::Made(link) => out.extend(self.add_all([link])),
                MagicLinkChange::Removed(path) => self.let_go_of(&path),
            }
        }
        out
    }

    /// Lets the link at `path` go (one of the records said it was
    /// removed), if it is tracked: paths through that name no longer lead
    /// where it did. Kept among those let go, for a record of its rename
    /// still to find.
    fn let_go_of(&mut self, path: &[u8]) {
        let Some(i) = self.links.iter().position(|l| l.link.path == path) else {
            return;
        };
        let gone = self.links.remove(i).expect("found above");
        self.stats.expired += 1;
        self.let_go.push_back(gone);
        if self.let_go.len() > LET_GO_KEPT {
            self.let_go.pop_front();
        }
    }

    /// Is a link tracked at `path` (absolute, normal), exactly?
    pub fn tracks(&self, path: &[u8]) -> bool {
        self.links.iter().any(|l| l.link.path == path)
    }

    /// The deepest link `path` (absolute, normal) is below.
    pub fn above(&self, path: &[u8]) -> Option<&KnownLink> {
        self.deepest(|l| l.above(path))
    }

    /// Where `path` (absolute, normal) leads through the deepest link it
    /// is, or is below, if any: a new link to `/tmp/c` or into it leads
    /// where `/tmp/c` does.
    pub fn leading(&self, path: &[u8]) -> Option<Vec<u8>> {
        self.deepest(|l| l.path == path || l.above(path))?
            .leads(path)
    }

    fn deepest(&self, on_the_way: impl Fn(&KnownLink) -> bool) -> Option<&KnownLink> {
        self.links
            .iter()
            .map(|l| &l.link)
            .filter(|l| on_the_way(l))
            .max_by_key(|l| l.path.len())
    }

    /// The link at `path`, exactly, or let go lately.
    pub fn at(&self, path: &[u8]) -> Option<&MagicLink> {
        (self.links.iter().rev())
            .chain(self.let_go.iter().rev())
            .find(|l| l.link.path == path)
    }

    /// The `WATCHED_PATH_HASHES` keys: each link's path with a slash, as
    /// a prefix (paths through it); whole (the link itself renamed or
    /// linked, to be followed under its new name too); and its directory
    /// with its slash, whole (what the kernel looks up for a symlink made
    /// there with a relative target: `ln -s c /tmp/d`). One too long for
    /// the kernel's scan has none (its paths are left to the hooks that
    /// decide by inode).
    pub fn hashes(&self) -> impl Iterator<Item = u64> + '_ {
        self.links
            .iter()
            .filter(|l| l.link.path.len() < PATH_HASH_SPAN)
            .flat_map(|l| {
                let p = &l.link.path;
                [
                    path_hash(&[p.as_slice(), b"/"].concat()),
                    path_hash_whole(p),
                    path_hash_whole(l.dir_path()),
                ]
            })
    }

    /// The `WATCHED_ABOVE_DIRS` keys: the inodes of the directories the
    /// links are in, where known, each once. A rename by a relative name
    /// there (`cd /tmp && mv c x`) is sent.
    pub fn dir_keys(&self) -> Vec<ExeKey> {
        let mut keys: Vec<ExeKey> = Vec::new();
        for key in self.links.iter().filter_map(|l| l.dir) {
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        keys
    }

    /// Do both hold the same links?
    pub fn same_links(&self, other: &MagicLinks) -> bool {
        self.links == other.links
    }

    /// Without the links made in the host's root that no longer hold
    /// their target there (removed, or replaced), and with the awaited
    /// ones seen there no longer awaited; None if neither changes a link.
    pub fn pruned(&self) -> Option<MagicLinks> {
        let verdicts: Vec<Refresh> = self.links.iter().map(MagicLink::on_refresh).collect();
        if verdicts.iter().all(|v| *v == Refresh::Keep) {
            return None;
        }
        let mut kept = self.clone();
        let mut gone = Vec::new();
        for (mut l, verdict) in std::mem::take(&mut kept.links).into_iter().zip(verdicts) {
            match verdict {
                Refresh::Keep => {}
                Refresh::Seen => l.awaited = false,
                Refresh::LetGo => {
                    gone.push(l);
                    continue;
                }
            }
            kept.links.push_back(l);
        }
        kept.stats.expired += gone.len() as u64;
        kept.let_go.extend(gone);
        let over = kept.let_go.len().saturating_sub(LET_GO_KEPT);
        kept.let_go.drain(..over);
        Some(kept)
    }

    /// The links an earlier run kept in `state_dir`, without those gone
    /// since (see [`Self::pruned`]); none where there is no file. One that
    /// cannot be read is said, and left for the next save to replace.
    pub fn load(state_dir: &Path) -> MagicLinks {
        let path = state_dir.join(STATE_FILE);
        let links: VecDeque<MagicLink> = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(
                    "{}: not the symlinks through magic links an earlier run kept ({e}): \
                     starting with none",
                    path.display()
                );
                VecDeque::new()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => VecDeque::new(),
            Err(e) => {
                tracing::warn!(
                    "{}: {e}: starting with no symlinks through magic links",
                    path.display()
                );
                VecDeque::new()
            }
        };
        let mut loaded = MagicLinks::default();
        loaded.add_all(links);
        loaded.pruned().unwrap_or(loaded)
    }

    /// Keeps the links in `state_dir` for the next run: written aside and
    /// renamed over the old file, so that a crash leaves one or the other.
    pub fn save(&self, state_dir: &Path) -> std::io::Result<()> {
        let path = state_dir.join(STATE_FILE);
        let aside = path.with_extension("tmp");
        let mut f = std::fs::File::create(&aside)?;
        f.write_all(&serde_json::to_vec(&self.links)?)?;
        f.sync_data()?;
        std::fs::rename(&aside, &path)
    }

    pub fn stats(&self) -> MagicLinkStats {
        MagicLinkStats {
            tracked: self.links.len(),
            ..self.stats
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(path: &str, written: &str, in_host_root: bool) -> MagicLink {
        MagicLink {
            link: KnownLink {
                path: path.into(),
                written: written.into(),
                leads_to: written.into(),
            },
            in_host_root,
            dir: None,
            awaited: false,
        }
    }

    #[test]
    fn the_oldest_link_is_left_out_beyond_the_bound_and_a_remade_one_replaced() {
        let mut links = MagicLinks::default();
        for i in 0..MAGIC_LINKS_MAX {
            assert_eq!(
                links.add(link(&format!("/tmp/l{i}"), "/proc/self/cwd", false)),
                None
            );
        }
        // Made again, elsewhere: one entry, the newest.
        assert_eq!(links.add(link("/tmp/l0", "/dev/fd/3", false)), None);
        let out = links.add(link("/tmp/new", "/proc", false));
        assert_eq!(out.map(|l| l.link.path), Some(b"/tmp/l1".to_vec()));
        assert_eq!(
            links.stats(),
            MagicLinkStats {
                tracked: MAGIC_LINKS_MAX,
                evicted: 1,
                expired: 0
            }
        );
        assert_eq!(
            links.above(b"/tmp/l0/x").map(|l| l.written.clone()),
            Some(b"/dev/fd/3".to_vec())
        );
        assert_eq!(links.above(b"/tmp/l1/x"), None);
    }

    /// The records' changes, in their order: a link made, given another
    /// name, removed; one removed that was never tracked changes nothing.
    #[test]
    fn links_made_and_removed_are_applied_in_the_records_order() {
        use MagicLinkChange::{Made, Removed};
        let mut links = MagicLinks::default();
        let out = links.apply(vec![
            Made(link("/tmp/c", "/proc/self/cwd", false)),
            Made(link("/tmp/x", "/proc/self/cwd", false)),
            Removed(b"/tmp/c".to_vec()),
            Removed(b"/tmp/never".to_vec()),
        ]);
        assert!(out.is_empty());
        assert!(!links.tracks(b"/tmp/c") && links.tracks(b"/tmp/x"));
        assert_eq!(links.above(b"/tmp/c/evil"), None);
        assert!(links.at(b"/tmp/c").is_some(), "let go, still found by name");
        assert_eq!(
            links.stats(),
            MagicLinkStats {
                tracked: 1,
                evicted: 0,
                expired: 1
            }
        );
        // Made again after its removal: tracked again.
        links.apply(vec![Made(link("/tmp/c", "/dev/fd/3", false))]);
        assert_eq!(
            links.above(b"/tmp/c/evil").map(|l| l.written.clone()),
            Some(b"/dev/fd/3".to_vec())
        );
    }

    #[test]
    fn a_path_is_below_its_deepest_link_and_each_link_is_a_prefix_hash() {
        let mut links = MagicLinks::default();
        links.add(link("/tmp/c", "/proc/self/cwd", true));
        links.add(link("/tmp/c/d", "/proc/self/fd/3", true));
        let deepest = |p: &[u8]| links.above(p).map(|l| l.path.clone());
        assert_eq!(deepest(b"/tmp/c/x"), Some(b"/tmp/c".to_vec()));
        assert_eq!(deepest(b"/tmp/c/d/x"), Some(b"/tmp/c/d".to_vec()));
        for not_below in [&b"/tmp/c"[..], b"/tmp/c/", b"/tmp/cx/y", b"/tmp"] {
            assert_eq!(deepest(not_below), None, "{}", not_below.escape_ascii());
        }
        let hashes: Vec<u64> = links.hashes().collect();
        assert_eq!(
            hashes,
            [
                path_hash(b"/tmp/c/"),
                path_hash_whole(b"/tmp/c"),
                path_hash_whole(b"/tmp/"),
                path_hash(b"/tmp/c/d/"),
                path_hash_whole(b"/tmp/c/d"),
                path_hash_whole(b"/tmp/c/"),
            ]
        );
        // Where a path at or below one leads: through the deepest.
        assert_eq!(links.leading(b"/tmp/c"), Some(b"/proc/self/cwd".to_vec()));
        assert_eq!(
            links.leading(b"/tmp/c/d/x"),
            Some(b"/proc/self/fd/3/x".to_vec())
        );
        assert_eq!(links.leading(b"/tmp/cd"), None);
        assert!(links.at(b"/tmp/c/d").is_some() && links.at(b"/tmp/c/x").is_none());
        // Too long for the kernel's scan to reach its slash.
        links.add(link(
            &format!("/{}", "a".repeat(PATH_HASH_SPAN - 1)),
            "/proc",
            false,
        ));
        assert_eq!(links.hashes().count(), 6);
    }

    /// The directories of links in the host's root, by inode, each once:
    /// `/tmp` for `/tmp/a` and `/tmp/b`; none for a container's link, or
    /// one whose directory is not there.
    #[test]
    fn the_directories_of_host_links_are_keyed_by_inode_once() {
        let mut links = MagicLinks::default();
        for (path, host) in [
            ("/tmp/a", true),
            ("/tmp/b", true),
            ("/in/a/container/c", false),
            ("/no/such/dir/d", true),
        ] {
            links.add(link(path, "/proc/self/cwd", host));
        }
        let tmp = std::fs::metadata("/tmp").unwrap();
        assert_eq!(
            links.dir_keys(),
            [InodeKeys::new().key(Path::new("/tmp"), &tmp)]
        );
    }

    /// Kept across runs, byte for byte; a host link gone since is let go
    /// at the load; a file of something else is no links.
    #[test]
    fn links_are_kept_in_the_state_directory_for_the_next_run() {
        let dir = std::env::temp_dir().join(format!("sensor-magic-state-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(MagicLinks::load(&dir).stats().tracked, 0, "no file");
        let kept = dir.join("kept");
        std::os::unix::fs::symlink("/proc/self/cwd", &kept).unwrap();
        let mut links = MagicLinks::default();
        links.add(link(kept.to_str().unwrap(), "/proc/self/cwd", true));
        links.add(MagicLink {
            link: KnownLink {
                path: b"/in/a/container/\xff\n".to_vec(),
                written: b"../proc/self/fd/3".to_vec(),
                leads_to: b"/in/a/proc/self/fd/3".to_vec(),
            },
            in_host_root: false,
            dir: None,
            awaited: false,
        });
        links.add(link(
            dir.join("gone").to_str().unwrap(),
            "/proc/self/cwd",
            true,
        ));
        links.save(&dir).unwrap();
        let loaded = MagicLinks::load(&dir);
        let mut want = links.clone();
        want.links.remove(2);
        assert!(loaded.same_links(&want), "{loaded:?}");
        std::fs::write(dir.join(STATE_FILE), b"{not json").unwrap();
        assert_eq!(MagicLinks::load(&dir).stats().tracked, 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A link asked for through a ring may not be made yet: kept while
    /// its name holds nothing, no longer awaited once seen there, and let
    /// go once gone after that; one whose name holds something else (the
    /// request failed) is let go at once.
    #[test]
    fn an_awaited_link_is_kept_until_it_is_seen() {
        let dir = std::env::temp_dir().join(format!("sensor-magic-awaited-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("taken")).unwrap();
        let path = |name: &str| dir.join(name).to_str().unwrap().to_owned();
        let mut links = MagicLinks::default();
        for name in ["late", "taken"] {
            links.add(MagicLink {
                awaited: true,
                ..link(&path(name), "/proc/self/cwd", true)
            });
        }
        let waiting = links.pruned().expect("the name taken let go");
        let left: Vec<(&[u8], bool)> = (waiting.links.iter())
            .map(|l| (&l.link.path[..], l.awaited))
            .collect();
        assert_eq!(left, [(path("late").as_bytes(), true)]);
        assert!(waiting.pruned().is_none(), "not there yet: no change");
        std::os::unix::fs::symlink("/proc/self/cwd", path("late")).unwrap();
        let seen = waiting.pruned().expect("seen");
        assert!(seen.tracks(path("late").as_bytes()));
        assert!(!seen.links[0].awaited);
        assert!(seen.pruned().is_none(), "holds");
        std::fs::remove_file(path("late")).unwrap();
        assert_eq!(seen.pruned().expect("gone").stats().tracked, 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A host link removed or pointed elsewhere is let go; one made in a
    /// container's root, which the daemon cannot look in, is kept.
    #[test]
    fn host_links_no_longer_holding_their_target_are_let_go() {
        let dir = std::env::temp_dir().join(format!("sensor-magic-links-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = |name: &str| dir.join(name).to_str().unwrap().to_owned();
        for name in ["kept", "removed", "replaced"] {
            std::os::unix::fs::symlink("/proc/self/cwd", path(name)).unwrap();
        }
        let mut links = MagicLinks::default();
        for name in ["kept", "removed", "replaced"] {
            links.add(link(&path(name), "/proc/self/cwd", true));
        }
        links.add(link("/in/a/container", "/proc/self/cwd", false));
        assert!(links.pruned().is_none());
        std::fs::remove_file(path("removed")).unwrap();
        std::fs::remove_file(path("replaced")).unwrap();
        std::os::unix::fs::symlink("/tmp", path("replaced")).unwrap();
        let pruned = links.pruned().expect("two gone");
        let left: Vec<&[u8]> = pruned.links.iter().map(|l| &l.link.path[..]).collect();
        assert_eq!(left, [path("kept").as_bytes(), b"/in/a/container"]);
        assert_eq!(pruned.stats().expired, 2);
        assert!(!pruned.same_links(&links));
        // Still found by a rename's record read after the refresh.
        assert!(pruned.at(path("removed").as_bytes()).is_some());
        assert!(
            pruned
                .above(format!("{}/x", path("removed")).as_bytes())
                .is_none()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
