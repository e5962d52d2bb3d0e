//! Turns `[watch]` into the kernel side's watch maps: existing paths by
//! inode (and the directories holding watched files), and every path (and
//! every directory above one) hashed for absolute path arguments. Also the
//! exact check the daemon makes on path arguments the kernel let through.

use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use aya::Ebpf;
use sensor_common::{
    ExeKey, InodeGeneration, PATH_HASH_SPAN, SHELL_RC_NAMES, WATCH_INODE_SHELL_RC_TARGET,
    WATCH_MATCHED_SHELL_RC, WATCH_MATCHED_SSH_DIR, WATCH_MATCHED_USER_UNITS, WATCH_PATHS_MAX,
    WATCHED_ABOVE_HASHES_MAX, WATCHED_BITS_WORDS, WATCHED_INODES_MAX, WatchedInode, names,
    path_hash, path_hash_whole, probe_features, watched_bit, watched_set,
};

use super::homes::{self, Account};
use super::inode_key::{InodeKeys, StatId, metadata_and_generation, stat_id};
use super::magic_links::MagicLinks;
use super::sshd_files;
use super::watch_sources::Sources;
use super::{LoadError, present, replace_hash_entries};
use crate::config::watch::WatchConfig;

/// The watched paths, resolved.
#[derive(Debug, Clone, Default)]
pub struct Watched {
    /// As configured, directories with a trailing `/`: what matches are
    /// reported against. Then those found (sshd's files, homes' `.ssh`).
    pub paths: Vec<Vec<u8>>,
    /// `[watch] user_ssh_dirs`: every directory named `.ssh` is watched
    /// by name too (see [`NameRule`]).
    pub ssh_dirs: bool,
    /// `[watch] user_unit_dirs`: every directory named `user` in one named
    /// `systemd` is watched by name too.
    pub unit_dirs: bool,
    /// `[watch] shell_rc_files`: every file named as a shell's startup
    /// file (`.bashrc`…) is watched by name too.
    pub shell_rc: bool,
    /// What these were found from, to find them again.
    config: WatchConfig,
    /// Where the found paths (sshd's files, homes' `.ssh`, `rc_paths`)
    /// come from: when one changes, a refresh finds them all again.
    sources: Sources,
    /// With `shell_rc`, each startup file's path in each home of
    /// /etc/passwd (`/home/x/.bashrc`…), existing or not: where symlinks
    /// are looked for when the inodes are found (a home is among the
    /// `sources`: a link made or removed in it is a change).
    rc_paths: Vec<PathBuf>,
    /// Those that are symlinks, to anything or nothing: what each leads
    /// to is looked at on each refresh (a dangling link's target made, a
    /// target replaced).
    rc_symlinks: Vec<PathBuf>,
    /// Those that are symlinks to a file, with the file's path. The
    /// kernel's name rule matches the name it resolved, the target's
    /// (`~/.bashrc -> dotfiles/bashrc`, as dotfile managers set up): the
    /// target is watched by inode instead, as
    /// `WATCH_INODE_SHELL_RC_TARGET`.
    rc_links: Vec<RcLink>,
    /// Each existing path's inode, with 1 + its index in `paths` (what
    /// the kernel reports as `WatchEvent::matched`) and its generation;
    /// and each of `rc_links`' targets.
    inodes: Vec<(ExeKey, WatchedInode)>,
    parents: Vec<ExeKey>,
    /// The inodes of the directories above the paths (those of
    /// [`Self::above_dirs`] that exist): a rename by a relative name in
    /// one of them is sent on by the kernel.
    above_inodes: Vec<ExeKey>,
    /// What `stat` said of each path and its directory when the keys were
    /// made: a refresh compares this first, and reads the mount table
    /// (which the keys need, and which can be long on a container host)
    /// only when something changed.
    seen: Vec<[Option<StatId>; 2]>,
    /// Symlinks seen made to lead through a magic link: paths below
    /// them are sent by the kernel's path check too, and followed from
    /// where the link leads. Kept across refreshes.
    pub magic_links: MagicLinks,
}

/// What finding the paths has to say, said once they are in use: a
/// refresh that finds the same paths again says nothing.
#[derive(Debug, Default)]
struct Notices(Vec<(tracing::Level, String)>);

impl Notices {
    fn info(&mut self, text: String) {
        self.0.push((tracing::Level::INFO, text));
    }

    fn warn(&mut self, text: String) {
        self.0.push((tracing::Level::WARN, text));
    }

    fn log(self) {
        for (level, text) in self.0 {
            if level == tracing::Level::WARN {
                tracing::warn!("{text}");
            } else {
                tracing::info!("{text}");
            }
        }
    }
}

impl Watched {
    pub fn resolve(config: &WatchConfig) -> Watched {
        let (w, notices) = Watched::find(config);
        notices.log();
        w
    }

    /// The paths `config` names and those its rules find, resolved.
    fn find(config: &WatchConfig) -> (Watched, Notices) {
        let mut notices = Notices::default();
        let mut sources = Sources::default();
        let accounts = if config.sshd_key_files || config.user_ssh_dirs || config.shell_rc_files {
            homes::accounts(&mut sources)
        } else {
            Vec::new()
        };
        // In this order, up to WATCH_PATHS_MAX: what the config names,
        // sshd's files, then the homes' `.ssh` (which the name rule covers
        // beyond). The config's come first, so a refresh that finds other
        // paths leaves their indices as they were.
        let mut paths: Vec<PathBuf> = config.paths.clone();
        if config.sshd_key_files {
            paths.extend(sshd_key_files(
                config,
                &accounts,
                &mut sources,
                &mut notices,
            ));
        }
        let homes = homes::homes_by_uid(&accounts);
        if config.user_ssh_dirs {
            paths.extend(home_ssh_dirs(&homes));
        }
        let rc_paths = if config.shell_rc_files {
            home_rc_paths(homes, &mut sources, &mut notices)
        } else {
            Vec::new()
        };
        let mut w = Watched {
            ssh_dirs: config.user_ssh_dirs,
            unit_dirs: config.user_unit_dirs,
            shell_rc: config.shell_rc_files,
            config: config.clone(),
            sources,
            rc_paths,
            ..Watched::default()
        };
        let (mut watched, mut unwatched) = (Vec::new(), Vec::new());
        for p in paths {
            let is_dir = std::fs::metadata(&p)
                .map_or(p.as_os_str().as_bytes().ends_with(b"/"), |m| m.is_dir());
            // As the kernel and the daemon compare path arguments: a home
            // or an sshd_config line can spell one otherwise (`/home//u`).
            let mut text = p.as_os_str().as_bytes().to_vec();
            if text.starts_with(b"/") {
                text = super::decode::lexically_normal(&text);
            }
            if is_dir && !text.ends_with(b"/") {
                text.push(b'/');
            }
            if watched.contains(&text) {
                continue;
            }
            if watched.len() < WATCH_PATHS_MAX {
                watched.push(text);
            } else {
                unwatched.push(text);
            }
        }
        let list = |paths: &[Vec<u8>]| {
            paths
                .iter()
                .map(|p| String::from_utf8_lossy(p))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let long: Vec<Vec<u8>> = watched.iter().filter(|p| !hashable(p)).cloned().collect();
        if !long.is_empty() {
            notices.info(format!(
                "watched by inode only, longer than the {PATH_HASH_SPAN} bytes of a path \
                 argument the kernel compares: opens for writing are reported everywhere, a \
                 truncate, unlink, rename or link by its path where fentry loads: {}",
                list(&long)
            ));
        }
        if !unwatched.is_empty() {
            // Per-account key files can number in the thousands: the
            // first few name the kind.
            const SHOWN: usize = 16;
            notices.warn(format!(
                "{} paths not watched, beyond {WATCH_PATHS_MAX} watched paths (a `.ssh` is \
                 still watched by name): {}{}",
                unwatched.len(),
                list(&unwatched[..unwatched.len().min(SHOWN)]),
                if unwatched.len() > SHOWN { " …" } else { "" }
            ));
        }
        w.paths = watched;
        let (_, left_out) = w.above_dirs();
        if left_out > 0 {
            notices.warn(format!(
                "{left_out} directories above watched paths (the deepest) are not matched as a \
                 symlink's target or a renamed path: the kernel's map holds \
                 {WATCHED_ABOVE_HASHES_MAX} entries for them, two a directory; a symlink to one \
                 of them, or its rename, goes unseen where fentry is refused"
            ));
        }
        w.find_inodes();
        (w, notices)
    }

    /// The paths found again, if a source changed (an account added, a
    /// symlink made in a home, sshd_config edited; see [`Sources`]); else
    /// the same paths looked up again, if any now has another inode than
    /// when this was made (a file replaced by a rename over it, as passwd,
    /// useradd and visudo write; created; removed): the kernel's maps only
    /// know inodes. See [`Self::update`] for bringing the kernel's maps
    /// to it.
    ///
    /// The symlinks through magic links are carried over, without those
    /// gone (see [`MagicLinks::pruned`]): a set with only those let go is
    /// a change too.
    pub fn refreshed(&self) -> Option<Watched> {
        let links = self.magic_links.pruned();
        let mut w = match (self.refreshed_paths(), &links) {
            (Some(w), _) => w,
            (None, Some(_)) => self.clone(),
            (None, None) => return None,
        };
        w.magic_links = links.unwrap_or_else(|| self.magic_links.clone());
        Some(w)
    }

    /// The paths of [`Self::refreshed`].
    fn refreshed_paths(&self) -> Option<Watched> {
        if self.sources.changed() {
            let (w, notices) = Watched::find(&self.config);
            // Said again only for other paths: a home's new
            // `.bash_history` changes a source, and nothing else.
            if w.paths != self.paths {
                notices.log();
            }
            // Returned whatever it holds: its sources were noted anew.
            return Some(w);
        }
        if self.stat_paths() == self.seen {
            return None;
        }
        let mut w = Watched {
            paths: self.paths.clone(),
            ssh_dirs: self.ssh_dirs,
            unit_dirs: self.unit_dirs,
            shell_rc: self.shell_rc,
            config: self.config.clone(),
            sources: self.sources.clone(),
            rc_paths: self.rc_paths.clone(),
            ..Watched::default()
        };
        w.find_inodes();
        (w.inodes != self.inodes
            || w.parents != self.parents
            || w.above_inodes != self.above_inodes
            || w.rc_links != self.rc_links)
            .then_some(w)
    }

    /// The paths watched in both whose inode differs in `other`
    /// (replaced, created or removed), and the startup-file symlinks
    /// made, changed or gone, for the log.
    pub fn changed_paths(&self, other: &Watched) -> Vec<String> {
        let inode = |w: &Watched, path: &[u8]| {
            let i = w.paths.iter().position(|p| p == path)?;
            w.inodes
                .iter()
                .find(|(_, v)| v.matched as usize == i + 1)
                .map(|(k, v)| (*k, v.generation))
        };
        let links = |w: &Watched, v: &Watched| -> Vec<String> {
            w.rc_links
                .iter()
                .filter(|l| !v.rc_links.contains(l))
                .map(|l| String::from_utf8_lossy(&l.link).into_owned())
                .collect()
        };
        let mut changed: Vec<String> = self
            .paths
            .iter()
            .filter(|p| other.paths.contains(p) && inode(self, p) != inode(other, p))
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect();
        for link in links(self, other).into_iter().chain(links(other, self)) {
            if !changed.contains(&link) {
                changed.push(link);
            }
        }
        changed
    }

    /// The paths watched here and not in `other`, for the log.
    pub fn paths_not_in(&self, other: &Watched) -> Vec<String> {
        self.paths
            .iter()
            .filter(|p| !other.paths.contains(p))
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect()
    }

    /// `stat_id` of each path and, for a file path, of its directory: what
    /// [`Self::find_inodes`] makes keys of; then of what each startup-file
    /// symlink leads to (they run on each tick: a link made or removed
    /// changes its home, a source), and of each directory above the paths.
    fn stat_paths(&self) -> Vec<[Option<StatId>; 2]> {
        let above = (self.above_dirs().0)
            .into_iter()
            .map(|d| [stat_id(Path::new(std::ffi::OsStr::from_bytes(d))), None]);
        let rc = (self.rc_symlinks.iter())
            .map(|p| [stat_id(p), None])
            .chain(above);
        self.paths
            .iter()
            .map(|text| {
                let p = Path::new(std::ffi::OsStr::from_bytes(text));
                let dir = if text.ends_with(b"/") {
                    None
                } else {
                    p.parent()
                };
                [stat_id(p), dir.and_then(stat_id)]
            })
            .chain(rc)
            .collect()
    }

    /// Each existing path's inode, and the directory of each file path
    /// (existing or not: a watched file created later, or with a new
    /// inode, is in it); and each existing directory above the paths.
    fn find_inodes(&mut self) {
        self.rc_symlinks = self
            .rc_paths
            .iter()
            .filter(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink()))
            .cloned()
            .collect();
        self.seen = self.stat_paths();
        let keys = InodeKeys::new();
        for (i, text) in self.paths.iter().enumerate() {
            let p = Path::new(std::ffi::OsStr::from_bytes(text));
            let meta = metadata_and_generation(p).ok();
            if let Some((m, generation)) = &meta {
                let value = WatchedInode {
                    // WATCH_PATHS_MAX (checked in resolve) keeps it below
                    // WATCH_INODE_SHELL_RC_TARGET.
                    matched: (i + 1) as u32,
                    generation: *generation,
                };
                self.inodes.push((keys.key(p, m), value));
            }
            if meta.as_ref().is_some_and(|(m, _)| m.is_dir()) || text.ends_with(b"/") {
                continue;
            }
            if let Some(dir) = p.parent() {
                if let Ok(parent) = std::fs::metadata(dir) {
                    let key = keys.key(dir, &parent);
                    if !self.parents.contains(&key) {
                        self.parents.push(key);
                    }
                }
            }
        }
        let mut above_inodes: Vec<ExeKey> = Vec::new();
        for dir in self.above_dirs().0 {
            let dir = Path::new(std::ffi::OsStr::from_bytes(dir));
            if let Some(m) = std::fs::metadata(dir).ok().filter(|m| m.is_dir()) {
                let key = keys.key(dir, &m);
                if !above_inodes.contains(&key) {
                    above_inodes.push(key);
                }
            }
        }
        self.above_inodes = above_inodes;
        let mut no_room = 0;
        for path in &self.rc_symlinks {
            let Some((target, meta, generation)) = rc_link(path) else {
                continue;
            };
            let key = keys.key(&target, &meta);
            // A target watched already (`~/.profile -> /etc/profile`, or
            // two links to one file) keeps its first value.
            if !self.inodes.iter().any(|(k, _)| *k == key) {
                if self.inodes.len() >= WATCHED_INODES_MAX as usize {
                    no_room += 1;
                    continue;
                }
                let value = WatchedInode {
                    matched: WATCH_INODE_SHELL_RC_TARGET.into(),
                    generation,
                };
                self.inodes.push((key, value));
            }
            self.rc_links.push(RcLink {
                link: path.as_os_str().as_bytes().to_vec(),
                target: target.into_os_string().into_vec(),
            });
        }
        if no_room > 0 {
            tracing::warn!(
                "{no_room} startup files that are symlinks are not watched through their \
                 target: the kernel's map of watched inodes is full \
                 ({WATCHED_INODES_MAX} entries); writes through them go unseen"
            );
        }
    }

    /// The watched path whose inode the kernel matched: `matched` as in
    /// `WatchEvent::matched` (0: none). For a match by name, what the
    /// rule names in the first of `paths` (the event's, as joined) that
    /// it names, or the rule's pattern where none does (a symlink led
    /// there).
    pub fn by_kernel_match(&self, matched: u32, paths: [Option<&[u8]>; 2]) -> Option<Vec<u8>> {
        if matched == u32::from(WATCH_INODE_SHELL_RC_TARGET) {
            // The symlink whose target the event's path is; the pattern
            // where none is (the file was reached by another name).
            let link = paths.into_iter().flatten().find_map(|p| {
                self.rc_links
                    .iter()
                    .find(|l| l.target == p)
                    .map(|l| l.link.clone())
            });
            return Some(link.unwrap_or_else(|| SHELL_RC_PATTERN.clone()));
        }
        if let Some(rule) = NameRule::ALL.into_iter().find(|r| r.matched() == matched) {
            let named = paths.into_iter().flatten().find_map(|p| rule.label(p));
            return Some(named.unwrap_or_else(|| rule.pattern().to_vec()));
        }
        let i = (matched as usize).checked_sub(1)?;
        self.paths.get(i).cloned()
    }

    /// The name rules in use.
    pub fn rules(&self) -> impl Iterator<Item = NameRule> + '_ {
        NameRule::ALL.into_iter().filter(|r| match r {
            NameRule::SshDir => self.ssh_dirs,
            NameRule::UserUnits => self.unit_dirs,
            NameRule::ShellRc => self.shell_rc,
        })
    }

    /// The watched path that `path` is, or is under; else what a name
    /// rule in use names in it (the directory it is or is in, or itself).
    pub fn matching(&self, path: &[u8]) -> Option<Vec<u8>> {
        self.paths
            .iter()
            .find(|w| {
                if w.ends_with(b"/") {
                    path.starts_with(w) || path == &w[..w.len() - 1]
                } else {
                    path == w.as_slice()
                }
            })
            .cloned()
            .or_else(|| self.rules().find_map(|r| r.label(path)))
    }

    /// The first watched path below `path`, a directory above it (`/etc`
    /// or `/etc/` above `/etc/cron.d/`): a symlink to it leads there, a
    /// rename of it moves it.
    pub fn below(&self, path: &[u8]) -> Option<Vec<u8>> {
        let dir = path.strip_suffix(b"/").unwrap_or(path);
        self.paths
            .iter()
            .find(|w| w.len() > dir.len() + 1 && w.starts_with(dir) && w[dir.len()] == b'/')
            .cloned()
    }

    /// The directories above the watched paths the kernel compares (see
    /// [`hashable`]), each with its trailing slash and once: the shallowest
    /// first, as many as the kernel's map has room for
    /// (`WATCHED_ABOVE_HASHES_MAX` entries); and how many more there are.
    fn above_dirs(&self) -> (Vec<&[u8]>, usize) {
        // A set: read on every refresh tick, over up to WATCH_PATHS_MAX
        // paths of many directories each.
        let mut set = std::collections::BTreeSet::new();
        for p in self
            .paths
            .iter()
            .filter(|p| hashable(p) && p.starts_with(b"/"))
        {
            // Each slash but a directory's own last one ends a directory
            // above it.
            let inner = p.strip_suffix(b"/").unwrap_or(p);
            for (i, _) in inner.iter().enumerate().filter(|(_, b)| **b == b'/') {
                set.insert(&p[..=i]);
            }
        }
        let mut dirs: Vec<&[u8]> = set.into_iter().collect();
        dirs.sort_by_key(|d| d.iter().filter(|b| **b == b'/').count());
        let mut entries = 0;
        let fit = dirs
            .iter()
            .take_while(|d| {
                entries += if d.len() > 1 { 2 } else { 1 };
                entries <= WATCHED_ABOVE_HASHES_MAX as usize
            })
            .count();
        let left_out = dirs.len() - fit;
        dirs.truncate(fit);
        (dirs, left_out)
    }

    /// The `WATCHED_PATH_HASHES` keys of [`Self::above_dirs`]: each
    /// one's [`path_hash_whole`] with its slash and, but for the root,
    /// without. Never its prefix hash: a path below it is not watched.
    fn above_hashes(&self) -> Vec<u64> {
        let mut hashes = Vec::new();
        for dir in self.above_dirs().0 {
            hashes.push(path_hash_whole(dir));
            if dir.len() > 1 {
                hashes.push(path_hash_whole(&dir[..dir.len() - 1]));
            }
        }
        hashes
    }

    /// Writes the maps of the loaded object (borrowed: the programs loaded
    /// later refer to them).
    pub fn install(&self, ebpf: &mut Ebpf) -> Result<(), LoadError> {
        self.update(&Watched::default(), ebpf)
    }

    /// Brings the kernel's maps from `old`'s paths and inodes to these.
    /// Where the paths differ, those after the config's own have other
    /// indices: an event the kernel sent just before is named from the
    /// new ones (a window of the update's few syscalls, on a change of
    /// sshd_config or the accounts).
    pub fn update(&self, old: &Watched, ebpf: &mut Ebpf) -> Result<(), LoadError> {
        // The kernel skips a map's lookup where the key's bit is clear: the
        // bits of both sets' keys first, the new keys' alone once the old
        // are out of the maps.
        let [before, during, after] = bits_steps(old.key_bits(), self.key_bits());
        write_bits(ebpf, &before, &during)?;
        self.update_maps(old, ebpf)?;
        write_bits(ebpf, &during, &after)
    }

    /// The hash maps' part of [`Self::update`].
    fn update_maps(&self, old: &Watched, ebpf: &mut Ebpf) -> Result<(), LoadError> {
        if self.paths != old.paths || !self.magic_links.same_links(&old.magic_links) {
            replace_hash_entries(
                ebpf,
                names::WATCHED_PATH_HASHES_MAP,
                &present(&old.path_hashes()),
                &present(&self.path_hashes()),
            )?;
        }
        self.replace_inodes(old, ebpf)
    }

    /// `WATCHED_BITS`: each key's bit of the four maps it covers.
    fn key_bits(&self) -> Vec<u64> {
        let mut words = vec![0u64; WATCHED_BITS_WORDS as usize];
        for bit in self.key_bit_numbers() {
            words[(bit >> 6) as usize] |= 1 << (bit & 63);
        }
        words
    }

    /// The bit number of each key of the four maps `WATCHED_BITS` covers.
    fn key_bit_numbers(&self) -> impl Iterator<Item = u32> {
        let by_inode = [
            (
                watched_set::INODES,
                self.inodes.iter().map(|(k, _)| *k).collect(),
            ),
            (watched_set::PARENTS, self.parents.clone()),
            (watched_set::ABOVE_DIRS, self.above_dirs_by_inode()),
        ];
        by_inode
            .into_iter()
            .flat_map(|(set, keys): (u64, Vec<ExeKey>)| {
                keys.into_iter()
                    .map(move |k| watched_bit(set, k.ino, k.dev))
            })
            .chain(
                self.path_hashes()
                    .into_iter()
                    .map(|h| watched_bit(watched_set::PATH_HASHES, h, 0)),
            )
    }

    /// The `WATCHED_PATH_HASHES` keys: each path's [`path_hash`] (a
    /// prefix of the paths below it) and [`path_hash_whole`], and a
    /// directory's also without its slash (the directory itself renamed or
    /// removed); then [`Self::above_hashes`], and the symlinks' through
    /// magic links. One too long for the kernel to compare has none.
    fn path_hashes(&self) -> Vec<u64> {
        let mut hashes = Vec::new();
        for p in self.paths.iter().filter(|p| hashable(p)) {
            let dir = p.strip_suffix(b"/").filter(|d| !d.is_empty());
            for p in std::iter::once(&p[..]).chain(dir) {
                hashes.push(path_hash(p));
                hashes.push(path_hash_whole(p));
            }
        }
        for h in self
            .above_hashes()
            .into_iter()
            .chain(self.magic_links.hashes())
        {
            if !hashes.contains(&h) {
                hashes.push(h);
            }
        }
        hashes
    }
}

impl Watched {
    /// The `WATCHED_ABOVE_DIRS` keys: [`Self::above_inodes`], and the
    /// directories holding symlinks through magic links.
    fn above_dirs_by_inode(&self) -> Vec<ExeKey> {
        let mut keys = self.above_inodes.clone();
        for key in self.magic_links.dir_keys() {
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        keys
    }

    /// Brings the inode maps from `old`'s entries to these.
    fn replace_inodes(&self, old: &Watched, ebpf: &mut Ebpf) -> Result<(), LoadError> {
        replace_hash_entries(ebpf, names::WATCHED_INODES_MAP, &old.inodes, &self.inodes)?;
        replace_hash_entries(
            ebpf,
            names::WATCHED_PARENTS_MAP,
            &present(&old.parents),
            &present(&self.parents),
        )?;
        replace_hash_entries(
            ebpf,
            names::WATCHED_ABOVE_DIRS_MAP,
            &present(&old.above_dirs_by_inode()),
            &present(&self.above_dirs_by_inode()),
        )?;
        // The filesystems holding them: the kernel's first check. Never
        // removed (a filesystem left with no watched inode costs a climb).
        let devs: Vec<u32> = self
            .inodes
            .iter()
            .map(|(k, _)| k)
            .chain(&self.parents)
            .map(|k| k.dev)
            .collect();
        replace_hash_entries(ebpf, names::WATCHED_DEVS_MAP, &[], &present(&devs))
    }
}

/// `WATCHED_BITS` as it was, as it is while the maps change (both sets'
/// bits), and as it will be.
fn bits_steps(old: Vec<u64>, new: Vec<u64>) -> [Vec<u64>; 3] {
    let during = old.iter().zip(&new).map(|(o, n)| o | n).collect();
    [old, during, new]
}

/// Writes `WATCHED_BITS`' one value, unless it is `from` already.
fn write_bits(ebpf: &mut Ebpf, from: &[u64], to: &[u64]) -> Result<(), LoadError> {
    if from == to {
        return Ok(());
    }
    let name = names::WATCHED_BITS_MAP;
    type Bits = [u64; WATCHED_BITS_WORDS as usize];
    let value: Bits = to.try_into().expect("key_bits makes every word");
    let mut array: aya::maps::Array<&mut aya::maps::MapData, Bits> = super::map_mut(ebpf, name)?;
    array
        .set(0, value, 0)
        .map_err(|source| LoadError::Map { name, source })
}

/// Can the kernel compare a path argument with watched path `p` (see
/// `PATH_HASH_SPAN`)? Else `p` is watched by inode only.
fn hashable(p: &[u8]) -> bool {
    p.len() <= PATH_HASH_SPAN
}

/// The label of a file the kernel matched in a directory named `.ssh`
/// whose path the event does not show (a symlink led there).
pub const SSH_DIR_PATTERN: &[u8] = b"*/.ssh/";

/// The same for a directory named `user` in one named `systemd`.
pub const USER_UNITS_PATTERN: &[u8] = b"*/systemd/user/";

/// The same for a file named as a shell's startup file: a glob of
/// `SHELL_RC_NAMES` (`*/.{bashrc,bash_profile,…}`), made from that list.
pub static SHELL_RC_PATTERN: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| {
    let mut glob = b"*/.{".to_vec();
    for (i, name) in SHELL_RC_NAMES.iter().enumerate() {
        if i > 0 {
            glob.push(b',');
        }
        // Every name starts with the `.` the glob's prefix has.
        glob.extend_from_slice(&name[1..]);
    }
    glob.push(b'}');
    glob
});

/// The kernel side's name rules (`sensor-ebpf`'s `syscall::watch::named`):
/// directories and files watched by their names, wherever and whenever
/// made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// `.ssh`: where sshd reads a user's keys, `rc` and `environment`.
    SshDir,
    /// `systemd/user`: where systemd finds an account's own units.
    UserUnits,
    /// `.bashrc`, `.profile`… (`SHELL_RC_NAMES`): what a shell runs from
    /// a home.
    ShellRc,
}

impl NameRule {
    const ALL: [NameRule; 3] = [NameRule::SshDir, NameRule::UserUnits, NameRule::ShellRc];

    /// The `ProbeConfig::features` bit that turns this rule on in the
    /// kernel.
    pub fn feature(self) -> u32 {
        match self {
            NameRule::SshDir => probe_features::SSH_DIRS,
            NameRule::UserUnits => probe_features::USER_UNIT_DIRS,
            NameRule::ShellRc => probe_features::SHELL_RC_FILES,
        }
    }

    /// `WatchEvent::matched` of a match by this rule.
    fn matched(self) -> u32 {
        match self {
            NameRule::SshDir => WATCH_MATCHED_SSH_DIR,
            NameRule::UserUnits => WATCH_MATCHED_USER_UNITS,
            NameRule::ShellRc => WATCH_MATCHED_SHELL_RC,
        }
    }

    /// The label where the event's paths name no such directory.
    fn pattern(self) -> &'static [u8] {
        match self {
            NameRule::SshDir => SSH_DIR_PATTERN,
            NameRule::UserUnits => USER_UNITS_PATTERN,
            NameRule::ShellRc => &SHELL_RC_PATTERN,
        }
    }

    /// What this rule names in the absolute `path`, as the kernel side
    /// matches it: the directory that `path` is (`/home/x/.ssh`,
    /// `/home/x/.ssh/`) or is directly in (`/home/x/.ssh/authorized_keys`),
    /// or for user units in a directory directly in
    /// (`…/systemd/user/x.service.d/override.conf`), with its trailing
    /// `/`; for shell startup files, `path` itself.
    fn label(self, path: &[u8]) -> Option<Vec<u8>> {
        if !path.starts_with(b"/") {
            return None;
        }
        let (suffix, levels): (&[u8], _) = match self {
            NameRule::SshDir => (b"/.ssh", 2),
            NameRule::UserUnits => (b"/systemd/user", 3),
            NameRule::ShellRc => {
                let name = &path[path.iter().rposition(|&b| b == b'/')? + 1..];
                return SHELL_RC_NAMES.contains(&name).then(|| path.to_vec());
            }
        };
        let mut dir = path.strip_suffix(b"/").unwrap_or(path);
        for _ in 0..levels {
            if dir.ends_with(suffix) {
                let mut label = dir.to_vec();
                label.push(b'/');
                return Some(label);
            }
            dir = &dir[..dir.iter().rposition(|&b| b == b'/')?];
        }
        None
    }
}

/// A home's startup file that is a symlink to a file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RcLink {
    /// The symlink's path: the event's `watched` label.
    link: Vec<u8>,
    /// The file's path, as resolved when the link was found.
    target: Vec<u8>,
}

/// The file `path` is a symlink to: its resolved path, metadata and
/// generation. None
/// for anything else (a plain file is matched by its name already).
fn rc_link(path: &Path) -> Option<(PathBuf, std::fs::Metadata, InodeGeneration)> {
    if !std::fs::symlink_metadata(path)
        .ok()?
        .file_type()
        .is_symlink()
    {
        return None;
    }
    let target = std::fs::canonicalize(path).ok()?;
    let (meta, generation) = metadata_and_generation(&target).ok()?;
    meta.is_file().then_some((target, meta, generation))
}

/// The files sshd_config names for keys (see [`sshd_files`]), said.
fn sshd_key_files(
    config: &WatchConfig,
    accounts: &[Account],
    sources: &mut Sources,
    notices: &mut Notices,
) -> Vec<PathBuf> {
    let found = sshd_files::files(&config.sshd_config, accounts, config.user_ssh_dirs, sources);
    for problem in &found.problems {
        notices.warn(format!(
            "{}: {problem}: what it names for sshd is not watched",
            config.sshd_config.display()
        ));
    }
    if !found.paths.is_empty() {
        notices.info(format!(
            "sshd's key files watched, as {} names them: {}",
            config.sshd_config.display(),
            found
                .paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    found.paths
}

/// `~/.ssh/` of every home that has one. One made later is found on a
/// refresh only if its home is a source (see [`home_rc_paths`]); the
/// `.ssh` rule watches it by name meanwhile.
fn home_ssh_dirs(homes: &[(u32, PathBuf)]) -> Vec<PathBuf> {
    homes
        .iter()
        .map(|(_, home)| home.join(".ssh"))
        .filter(|d| d.is_dir())
        .collect()
}

/// Homes whose startup files are looked at for symlinks, at the most:
/// each costs a stat on every refresh tick, and an lstat per name when
/// it changed.
const RC_HOMES_MAX: usize = 256;

/// Every startup file's path (`SHELL_RC_NAMES`) in the homes of
/// /etc/passwd: where [`rc_link`] looks for symlinks. Each home is noted
/// in `sources`: a link made, replaced or removed in it is a change, and
/// the paths are found again. Beyond [`RC_HOMES_MAX`] homes, root's and
/// people's (uid 1000 and up) come first, and the others are left out,
/// said in the log.
fn home_rc_paths(
    homes: Vec<(u32, PathBuf)>,
    sources: &mut Sources,
    notices: &mut Notices,
) -> Vec<PathBuf> {
    let found = homes.len();
    let homes = rc_homes(homes);
    if homes.len() < found {
        notices.warn(format!(
            "startup files that are symlinks are looked for in {} of {found} homes (root's \
             and uid 1000 and up first): links in the others are matched by the target's \
             name only",
            homes.len()
        ));
    }
    for home in &homes {
        sources.note(home);
    }
    homes
        .into_iter()
        .flat_map(|home| {
            SHELL_RC_NAMES
                .iter()
                .map(move |name| home.join(std::ffi::OsStr::from_bytes(name)))
        })
        .collect()
}

/// The homes [`home_rc_paths`] looks in: root's and people's first, in
/// /etc/passwd's order, then the others, [`RC_HOMES_MAX`] at the most.
fn rc_homes(mut homes: Vec<(u32, PathBuf)>) -> Vec<PathBuf> {
    // Stable: /etc/passwd's order within each group.
    homes.sort_by_key(|(uid, _)| !(*uid == 0 || *uid >= 1000));
    homes.truncate(RC_HOMES_MAX);
    homes.into_iter().map(|(_, home)| home).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn startup_files_are_looked_for_in_peoples_homes_first_and_in_so_many_homes() {
        let home = |uid: u32, name: &str| (uid, PathBuf::from(name));
        assert_eq!(
            rc_homes(vec![
                home(0, "/root"),
                home(1, "/usr/sbin"),
                home(1000, "/home/a"),
                home(33, "/var/www"),
                home(1001, "/home/b"),
            ]),
            ["/root", "/home/a", "/home/b", "/usr/sbin", "/var/www"].map(PathBuf::from)
        );
        let many: Vec<(u32, PathBuf)> = (0..RC_HOMES_MAX as u32 + 10)
            .map(|i| (i + 1, PathBuf::from(format!("/srv/{i}"))))
            .chain([home(1000, "/home/late")])
            .collect();
        let kept = rc_homes(many);
        assert_eq!(kept.len(), RC_HOMES_MAX);
        assert_eq!(
            kept[0],
            PathBuf::from("/home/late"),
            "a person's home is kept"
        );
    }

    #[test]
    fn every_key_has_its_bit_for_as_long_as_it_is_in_a_map() {
        let key = |ino: u64| ExeKey {
            ino,
            dev: 0x0080_0001,
            _pad0: 0,
        };
        let watched = |path: &[u8], ino: u64| Watched {
            paths: vec![path.to_vec()],
            inodes: vec![(key(ino), WatchedInode::default())],
            parents: vec![key(ino + 1)],
            above_inodes: vec![key(2)],
            ..Watched::default()
        };
        let old = watched(b"/etc/passwd", 10);
        let new = watched(b"/etc/cron.d/", 20);
        let [before, during, after] = bits_steps(old.key_bits(), new.key_bits());
        let set = |words: &[u64], bit: u32| words[(bit >> 6) as usize] >> (bit & 63) & 1 == 1;
        let bits = |w: &Watched| -> Vec<u32> {
            let mut bits: Vec<u32> = w.key_bit_numbers().collect();
            bits.sort_unstable();
            bits.dedup();
            bits
        };
        let (old_bits, new_bits) = (bits(&old), bits(&new));
        assert!(old_bits.len() >= 6, "path hashes and three inodes");
        for &bit in &old_bits {
            assert!(
                set(&before, bit) && set(&during, bit),
                "old key's bit {bit}"
            );
        }
        for &bit in &new_bits {
            assert!(set(&during, bit) && set(&after, bit), "new key's bit {bit}");
        }
        let count = |words: &[u64]| words.iter().map(|w| w.count_ones()).sum::<u32>() as usize;
        assert_eq!(count(&before), old_bits.len(), "no bit but the old keys'");
        assert_eq!(count(&after), new_bits.len(), "the old keys' bits cleared");
        assert_ne!(
            watched_bit(watched_set::INODES, 10, 1),
            watched_bit(watched_set::PARENTS, 10, 1),
            "each map's keys have bits of their own"
        );
    }

    #[test]
    fn matching_is_exact_for_files_and_prefix_for_directories() {
        let w = Watched {
            paths: vec![b"/etc/passwd".to_vec(), b"/etc/cron.d/".to_vec()],
            ..Watched::default()
        };
        let matching = |p: &[u8]| w.matching(p).map(|m| String::from_utf8(m).expect("utf-8"));
        assert_eq!(matching(b"/etc/passwd").as_deref(), Some("/etc/passwd"));
        assert_eq!(matching(b"/etc/passwd-"), None, "a backup is another file");
        assert_eq!(
            matching(b"/etc/cron.d/evil").as_deref(),
            Some("/etc/cron.d/")
        );
        assert_eq!(
            matching(b"/etc/cron.d").as_deref(),
            Some("/etc/cron.d/"),
            "the directory itself"
        );
        assert_eq!(matching(b"/etc/cron.daily/x"), None);
        assert_eq!(
            matching(b"/home/bob/.ssh/authorized_keys"),
            None,
            "no name rule without user_ssh_dirs"
        );
    }

    #[test]
    fn a_directory_above_watched_paths_names_the_first_below_it() {
        let w = Watched {
            paths: vec![b"/etc/passwd".to_vec(), b"/etc/cron.d/".to_vec()],
            ..Watched::default()
        };
        let below = |p: &[u8]| w.below(p).map(|m| String::from_utf8(m).expect("utf-8"));
        assert_eq!(below(b"/").as_deref(), Some("/etc/passwd"));
        assert_eq!(below(b"/etc").as_deref(), Some("/etc/passwd"));
        assert_eq!(below(b"/etc/").as_deref(), Some("/etc/passwd"));
        assert_eq!(below(b"/etc/cron.d"), None, "watched itself, not above");
        assert_eq!(below(b"/etc/cron.d/"), None);
        assert_eq!(below(b"/etc/cron.d/x"), None);
        assert_eq!(below(b"/et"), None, "a prefix of a name is no directory");
        assert_eq!(below(b"/etc/pass"), None);
        assert_eq!(below(b"/var"), None);
    }

    #[test]
    fn the_directories_above_watched_paths_are_hashed_with_and_without_their_slash() {
        let w = Watched {
            paths: vec![
                b"/etc/passwd".to_vec(),
                b"/etc/cron.d/".to_vec(),
                b"/home/u/.ssh/".to_vec(),
            ],
            ..Watched::default()
        };
        let (dirs, left_out) = w.above_dirs();
        assert_eq!(
            dirs,
            [&b"/"[..], b"/etc/", b"/home/", b"/home/u/"],
            "each once, the shallowest first; no watched directory itself"
        );
        assert_eq!(left_out, 0);
        let hashes = w.above_hashes();
        for dir in [
            "/", "/etc", "/etc/", "/home", "/home/", "/home/u", "/home/u/",
        ] {
            assert!(hashes.contains(&path_hash_whole(dir.as_bytes())), "{dir}");
        }
        assert_eq!(hashes.len(), 7, "the root once");
        let keys = w.path_hashes();
        for path in ["/etc/cron.d/", "/etc/cron.d", "/etc/passwd"] {
            assert!(keys.contains(&path_hash(path.as_bytes())), "{path}");
            assert!(keys.contains(&path_hash_whole(path.as_bytes())), "{path}");
        }
        for dir in ["/", "/etc", "/etc/", "/home/u/"] {
            assert!(keys.contains(&path_hash_whole(dir.as_bytes())), "{dir}");
            assert!(
                !keys.contains(&path_hash(dir.as_bytes())),
                "a path below {dir} is not watched"
            );
        }
        // Three watched paths (two of them directories, hashed twice) and
        // seven directories above them.
        assert_eq!(keys.len(), 2 * (1 + 2 + 2) + 7);
    }

    #[test]
    fn directories_above_watched_paths_beyond_the_map_are_counted_the_deepest_first() {
        // Paths deep enough to have more directories above them than the
        // kernel's map holds.
        let paths: Vec<Vec<u8>> = (0..WATCH_PATHS_MAX)
            .map(|i| format!("/d{i}/a/b/c/d/e/f/g/h/i/x").into_bytes())
            .collect();
        let w = Watched {
            paths,
            ..Watched::default()
        };
        let (dirs, left_out) = w.above_dirs();
        let all = 1 + WATCH_PATHS_MAX * 10;
        assert_eq!(dirs.len() + left_out, all);
        assert!(left_out > 0);
        assert_eq!(
            w.above_hashes().len(),
            2 * dirs.len() - 1,
            "the root once, the rest twice"
        );
        assert!(w.above_hashes().len() <= WATCHED_ABOVE_HASHES_MAX as usize);
        assert!(
            dirs.iter()
                .all(|d| d.iter().filter(|b| **b == b'/').count() <= 10),
            "the deepest left out"
        );
        assert_eq!(dirs[0], b"/");
    }

    #[test]
    fn with_user_ssh_dirs_any_directory_named_ssh_is_watched_by_name() {
        let w = Watched {
            paths: vec![b"/etc/passwd".to_vec()],
            ssh_dirs: true,
            ..Watched::default()
        };
        let matching = |p: &str| {
            w.matching(p.as_bytes())
                .map(|m| String::from_utf8(m).expect("utf-8"))
        };
        assert_eq!(
            w.matching(b"/home/bob/.config/systemd/user/x.service"),
            None,
            "no user units rule without user_unit_dirs"
        );
        for (path, dir) in [
            ("/home/bob/.ssh/authorized_keys", Some("/home/bob/.ssh/")),
            ("/home/bob/.ssh/rc", Some("/home/bob/.ssh/")),
            ("/home/bob/.ssh", Some("/home/bob/.ssh/")),
            ("/home/bob/.ssh/", Some("/home/bob/.ssh/")),
            ("/.ssh/authorized_keys", Some("/.ssh/")),
            ("/var/lib/x/.ssh/k", Some("/var/lib/x/.ssh/")),
            // The configured paths come first.
            ("/etc/passwd", Some("/etc/passwd")),
            // Only a component named exactly `.ssh`, and only directly in it.
            ("/home/bob/.ssh/keys/old", None),
            ("/home/bob/x.ssh/authorized_keys", None),
            ("/home/bob/.sshd/authorized_keys", None),
            ("/home/bob/.ssh2", None),
            ("/home/bob/authorized_keys", None),
            (".ssh/authorized_keys", None),
        ] {
            assert_eq!(matching(path).as_deref(), dir, "{path}");
        }
    }

    #[test]
    fn with_user_unit_dirs_any_systemd_user_directory_is_watched_by_name() {
        let w = Watched {
            unit_dirs: true,
            ..Watched::default()
        };
        let matching = |p: &str| {
            w.matching(p.as_bytes())
                .map(|m| String::from_utf8(m).expect("utf-8"))
        };
        let home = "/home/bob/.config/systemd/user/";
        for (path, dir) in [
            ("/home/bob/.config/systemd/user/x.service", Some(home)),
            ("/home/bob/.config/systemd/user", Some(home)),
            ("/etc/systemd/user/y.timer", Some("/etc/systemd/user/")),
            // The .ssh rule is off here.
            ("/home/bob/.ssh/authorized_keys", None),
            // A unit's drop-in and dependency directories, one level down.
            (
                "/home/bob/.config/systemd/user/x.service.d/override.conf",
                Some(home),
            ),
            (
                "/home/bob/.config/systemd/user/default.target.wants/x.service",
                Some(home),
            ),
            ("/home/bob/.config/systemd/user/x.service.d", Some(home)),
            // Only `user` directly in `systemd`, and no deeper.
            ("/home/bob/.config/systemd/user/a/b/x", None),
            ("/home/bob/.config/systemd/users/x.service", None),
            ("/home/bob/.config/mysystemd/user/x.service", None),
            ("/home/bob/user/x.service", None),
        ] {
            assert_eq!(matching(path).as_deref(), dir, "{path}");
        }
        assert_eq!(
            w.by_kernel_match(WATCH_MATCHED_USER_UNITS, [Some(b"/tmp/u/x.service"), None]),
            Some(USER_UNITS_PATTERN.to_vec()),
            "by name through a symlink: the pattern"
        );
        assert_eq!(
            w.by_kernel_match(
                WATCH_MATCHED_USER_UNITS,
                [Some(b"/root/.config/systemd/user/x.service"), None]
            ),
            Some(b"/root/.config/systemd/user/".to_vec())
        );
    }

    #[test]
    fn with_shell_rc_files_startup_files_are_watched_by_their_own_name() {
        let w = Watched {
            shell_rc: true,
            ..Watched::default()
        };
        let matching = |p: &str| {
            w.matching(p.as_bytes())
                .map(|m| String::from_utf8(m).expect("utf-8"))
        };
        for name in SHELL_RC_NAMES {
            let path = format!("/home/bob/{}", String::from_utf8_lossy(name));
            assert_eq!(matching(&path).as_deref(), Some(path.as_str()));
        }
        assert_eq!(
            String::from_utf8_lossy(&SHELL_RC_PATTERN),
            "*/.{bashrc,bash_profile,bash_login,bash_logout,bash_aliases,profile,zshrc,zshenv,\
             zprofile,zlogin,zlogout}"
        );
        for (path, label) in [
            ("/root/.profile", Some("/root/.profile")),
            ("/etc/skel/.bashrc", Some("/etc/skel/.bashrc")),
            ("/.zshrc", Some("/.zshrc")),
            // Only the file's own name, exactly.
            ("/home/bob/.bashrc.bak", None),
            ("/home/bob/bashrc", None),
            ("/home/bob/x.profile", None),
            ("/home/bob/.bashrc/x", None),
            ("/home/bob/.bashrc/", None),
            (".bashrc", None),
        ] {
            assert_eq!(matching(path).as_deref(), label, "{path}");
        }
        assert_eq!(
            w.by_kernel_match(WATCH_MATCHED_SHELL_RC, [Some(b"/tmp/x"), None]),
            Some(SHELL_RC_PATTERN.clone()),
            "no path names one: the pattern"
        );
        assert_eq!(
            w.by_kernel_match(
                WATCH_MATCHED_SHELL_RC,
                [Some(b"/tmp/x"), Some(b"/home/bob/.zlogin")]
            ),
            Some(b"/home/bob/.zlogin".to_vec()),
            "a rename's new name"
        );
        let off = Watched {
            ssh_dirs: true,
            unit_dirs: true,
            ..Watched::default()
        };
        assert_eq!(off.matching(b"/home/bob/.bashrc"), None, "rule off");
        assert!(!off.rules().any(|r| r == NameRule::ShellRc));
    }

    #[test]
    fn existing_paths_resolve_to_inodes_and_missing_ones_stay_by_name() {
        let dir = std::env::temp_dir().join(format!("sensor-watch-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let file = dir.join("keys");
        std::fs::write(&file, b"").expect("write");
        let config = WatchConfig {
            paths: vec![file.clone(), dir.join("not-yet/")],
            user_ssh_dirs: false,
            user_unit_dirs: false,
            shell_rc_files: false,
            sshd_key_files: false,
            ..WatchConfig::default()
        };
        let w = Watched::resolve(&config);
        assert_eq!(w.paths.len(), 2);
        assert_eq!(w.inodes.len(), 1, "only the existing file");
        assert_eq!(w.parents.len(), 1, "the directory holding it");
        assert!(w.paths[1].ends_with(b"not-yet/"));
        // What the kernel reports for the file's inode names it back.
        let matched = w.inodes[0].1.matched;
        // With the generation the kernel compares (see `WatchedInode`).
        let opened = std::fs::File::open(&file).expect("open");
        assert_eq!(
            w.inodes[0].1.generation,
            super::super::inode_key::generation(&opened)
        );
        assert_eq!(
            w.by_kernel_match(matched, [None, None]),
            Some(w.paths[0].clone())
        );
        assert_eq!(
            w.by_kernel_match(0, [None, None]),
            None,
            "0: matched by no inode"
        );
        assert_eq!(w.by_kernel_match(99, [None, None]), None, "out of range");
        let keys = b"/home/bob/.ssh/authorized_keys";
        assert_eq!(
            w.by_kernel_match(WATCH_MATCHED_SSH_DIR, [Some(b"/tmp/k"), Some(keys)]),
            Some(b"/home/bob/.ssh/".to_vec()),
            "by name: the directory a path names (a rename's new one)"
        );
        assert_eq!(
            w.by_kernel_match(
                WATCH_MATCHED_SSH_DIR,
                [Some(b"/tmp/link/authorized_keys"), None]
            ),
            Some(SSH_DIR_PATTERN.to_vec()),
            "by name through a symlink: the pattern"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_startup_file_symlinked_elsewhere_is_watched_by_its_target_inode() {
        let dir = std::env::temp_dir().join(format!("sensor-watch-rc-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("dotfiles/zsh")).expect("mkdir");
        let dir = std::fs::canonicalize(&dir).expect("canonicalize");
        let bytes = |p: &Path| p.as_os_str().as_bytes().to_vec();
        let (bashrc, target) = (dir.join(".bashrc"), dir.join("dotfiles/bashrc"));
        std::fs::write(&target, b"# bashrc").expect("write");
        std::os::unix::fs::symlink("dotfiles/bashrc", &bashrc).expect("symlink");
        std::fs::write(dir.join(".profile"), b"").expect("write");
        // Not watched by inode: a dangling link, a link to a directory.
        std::os::unix::fs::symlink("dotfiles/zshrc", dir.join(".zshrc")).expect("symlink");
        std::os::unix::fs::symlink("dotfiles/zsh", dir.join(".zlogin")).expect("symlink");
        let mut w = Watched {
            shell_rc: true,
            rc_paths: [".bashrc", ".profile", ".zshrc", ".zlogin", ".zlogout"]
                .map(|n| dir.join(n))
                .to_vec(),
            ..Watched::default()
        };
        w.find_inodes();
        assert_eq!(
            w.rc_links,
            vec![RcLink {
                link: bytes(&bashrc),
                target: bytes(&target)
            }]
        );
        let (meta, generation) = metadata_and_generation(&target).expect("stat");
        let key = InodeKeys::new().key(&target, &meta);
        let value = WatchedInode {
            matched: WATCH_INODE_SHELL_RC_TARGET.into(),
            generation,
        };
        assert_eq!(w.inodes, vec![(key, value)]);
        let matched = u32::from(WATCH_INODE_SHELL_RC_TARGET);
        assert_eq!(
            w.by_kernel_match(matched, [Some(&bytes(&target)), None]),
            Some(bytes(&bashrc)),
            "labelled with the link"
        );
        assert_eq!(
            w.by_kernel_match(matched, [Some(b"/tmp/hard-link"), None]),
            Some(SHELL_RC_PATTERN.clone()),
            "reached by another name: the pattern"
        );
        assert!(w.refreshed().is_none(), "nothing changed");

        // The dangling link's target made: watched from the next refresh.
        let zshrc = dir.join("dotfiles/zshrc");
        std::fs::write(&zshrc, b"").expect("write");
        let w2 = w.refreshed().expect("a link to a file now");
        assert_eq!(
            w2.changed_paths(&w),
            vec![dir.join(".zshrc").display().to_string()]
        );
        assert_eq!(w2.rc_links.len(), 2);
        // A link replaced by a plain file (the name rule covers it).
        std::fs::remove_file(&bashrc).expect("rm");
        std::fs::write(&bashrc, b"").expect("write");
        let w3 = w2.refreshed().expect("a link gone");
        assert_eq!(w3.changed_paths(&w2), vec![bashrc.display().to_string()]);
        assert_eq!(
            w3.rc_links.iter().map(|l| &l.target).collect::<Vec<_>>(),
            [&bytes(&zshrc)]
        );
        // A link pointed elsewhere.
        std::fs::remove_file(dir.join(".zshrc")).expect("rm");
        std::os::unix::fs::symlink("dotfiles/bashrc", dir.join(".zshrc")).expect("symlink");
        let w4 = w3.refreshed().expect("a link retargeted");
        assert_eq!(w4.rc_links[0].target, bytes(&target));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn startup_file_links_fill_the_kernels_inode_map_and_no_more() {
        let dir = tempfile::tempdir().expect("tempdir");
        let max = WATCHED_INODES_MAX as usize;
        let rc_paths: Vec<PathBuf> = (0..max + 3)
            .map(|i| {
                let (file, link) = (
                    dir.path().join(format!("f{i}")),
                    dir.path().join(format!("l{i}")),
                );
                std::fs::write(&file, b"").expect("write");
                std::os::unix::fs::symlink(&file, &link).expect("symlink");
                link
            })
            .collect();
        let mut w = Watched {
            shell_rc: true,
            rc_paths,
            ..Watched::default()
        };
        w.find_inodes();
        assert_eq!(w.inodes.len(), max, "as many as the map holds");
        assert_eq!(
            w.rc_links.len(),
            max,
            "the others are not said to be watched"
        );
    }

    #[test]
    fn every_path_is_hashed_for_path_arguments_and_found_paths_follow_the_configs() {
        let dir = tempfile::tempdir().expect("tempdir");
        // More than the 32 string slots the kernel once had.
        let configured = 40;
        let mut paths: Vec<PathBuf> = (0..configured)
            .map(|i| dir.path().join(format!("d{i}/")))
            .collect();
        // The same directory, once.
        std::fs::create_dir(dir.path().join("d0")).expect("mkdir");
        paths.push(dir.path().join("d0"));
        let (keys, ca) = (dir.path().join("keys"), dir.path().join("user_ca.pub"));
        std::fs::create_dir_all(&keys).expect("mkdir");
        std::fs::write(&ca, b"ssh-ed25519 AAAA ca").expect("write");
        let sshd_config = dir.path().join("sshd_config");
        std::fs::write(
            &sshd_config,
            format!(
                "AuthorizedKeysFile {}/%u\nTrustedUserCAKeys {}\n",
                keys.display(),
                ca.display()
            ),
        )
        .expect("write");
        let w = Watched::resolve(&WatchConfig {
            paths,
            user_ssh_dirs: false,
            user_unit_dirs: false,
            shell_rc_files: false,
            sshd_key_files: true,
            sshd_config,
        });
        let bytes = |p: &Path| p.as_os_str().as_bytes().to_vec();
        let mut keys_dir = bytes(&keys);
        keys_dir.push(b'/');
        assert_eq!(w.paths[configured..], [keys_dir.clone(), bytes(&ca)]);
        // What the kernel looks up for a path argument: each path, and a
        // directory also without its slash.
        let hashes = w.path_hashes();
        for p in [
            &keys_dir,
            &bytes(&ca),
            &keys_dir[..keys_dir.len() - 1].to_vec(),
        ] {
            assert!(
                hashes.contains(&path_hash(p)),
                "{}",
                String::from_utf8_lossy(p)
            );
        }
        // Each as a prefix and whole, and the directories above them.
        assert_eq!(
            hashes.len(),
            2 * (2 * (configured + 1) + 1) + w.above_hashes().len()
        );
        // Both exist: matched by inode, and named back from it.
        for want in [&keys_dir, &bytes(&ca)] {
            let (_, matched) = w
                .inodes
                .iter()
                .find(|(_, v)| w.paths[v.matched as usize - 1] == *want)
                .expect("an inode");
            assert_eq!(
                w.by_kernel_match(matched.matched, [None, None]).as_ref(),
                Some(want)
            );
        }
        assert_eq!(
            w.matching(&[keys_dir.as_slice(), b"bob"].concat()),
            Some(keys_dir),
            "a path argument into it is checked against it too"
        );
    }

    #[test]
    fn a_replaced_or_created_file_is_found_again_and_named() {
        let dir = std::env::temp_dir().join(format!("sensor-watch-refresh-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let (file, later) = (dir.join("passwd"), dir.join("ld.so.preload"));
        std::fs::write(&file, b"a").expect("write");
        let w = Watched::resolve(&WatchConfig {
            paths: vec![file.clone(), later.clone()],
            user_ssh_dirs: false,
            user_unit_dirs: false,
            shell_rc_files: false,
            sshd_key_files: false,
            ..WatchConfig::default()
        });
        assert_eq!(w.inodes.len(), 1);
        assert_eq!(
            w.parents.len(),
            1,
            "one directory, holding the existing file and the one to come"
        );
        assert!(w.refreshed().is_none(), "nothing changed");
        // As passwd(1) writes: a new file renamed over the old one.
        let tmp = dir.join("passwd+");
        std::fs::write(&tmp, b"b").expect("write");
        std::fs::rename(&tmp, &file).expect("rename");
        let w2 = w.refreshed().expect("a new inode");
        assert_eq!(w2.changed_paths(&w), vec![file.display().to_string()]);
        assert_eq!(w2.paths, w.paths, "same paths, same indices");
        std::fs::write(&later, b"x").expect("write");
        let w3 = w2.refreshed().expect("a file created");
        assert_eq!(w3.changed_paths(&w2), vec![later.display().to_string()]);
        assert_eq!(w3.inodes.len(), 2);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_edit_of_sshd_config_or_a_file_it_includes_finds_the_paths_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        std::fs::create_dir(d.join("conf.d")).expect("mkdir");
        let (config, ca, revoked) = (
            d.join("sshd_config"),
            d.join("user_ca.pub"),
            d.join("revoked"),
        );
        std::fs::write(&config, format!("Include {}/conf.d/*.conf\n", d.display())).expect("write");
        let w = Watched::resolve(&WatchConfig {
            paths: vec![d.join("passwd")],
            user_ssh_dirs: false,
            user_unit_dirs: false,
            shell_rc_files: false,
            sshd_key_files: true,
            sshd_config: config.clone(),
        });
        assert!(w.refreshed().is_none(), "nothing changed");
        let text = |p: &Path| p.display().to_string();

        // A CA trusted from now on, appended to the config itself.
        std::fs::write(
            &config,
            format!(
                "Include {}/conf.d/*.conf\nTrustedUserCAKeys {}\n",
                d.display(),
                ca.display()
            ),
        )
        .expect("write");
        let w2 = w.refreshed().expect("the config changed");
        assert_eq!(w2.paths_not_in(&w), [text(&ca)]);
        assert!(w.paths_not_in(&w2).is_empty());
        assert_eq!(w2.paths[0], w.paths[0], "the config's own path first still");
        assert!(w2.refreshed().is_none(), "its sources noted anew");

        // A file made in the directory an `Include` looks in.
        std::fs::write(
            d.join("conf.d/50-revoked.conf"),
            format!("RevokedKeys {}\n", revoked.display()),
        )
        .expect("write");
        let w3 = w2.refreshed().expect("an included file added");
        assert_eq!(w3.paths_not_in(&w2), [text(&revoked)]);

        // The CA line gone: no longer watched.
        std::fs::write(&config, format!("Include {}/conf.d/*.conf\n", d.display())).expect("write");
        let w4 = w3.refreshed().expect("the config changed");
        assert_eq!(w3.paths_not_in(&w4), [text(&ca)]);
        assert!(w4.paths_not_in(&w3).is_empty());
    }

    #[test]
    fn a_source_that_changed_with_the_paths_the_same_is_quiet_in_the_log_and_the_diff() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("sshd_config");
        std::fs::write(&config, "PermitRootLogin no\n").expect("write");
        let w = Watched::resolve(&WatchConfig {
            paths: vec![dir.path().join("passwd")],
            user_ssh_dirs: false,
            user_unit_dirs: false,
            shell_rc_files: false,
            sshd_key_files: true,
            sshd_config: config.clone(),
        });
        std::fs::write(&config, "PermitRootLogin prohibit-password\n").expect("write");
        let w2 = w.refreshed().expect("returned, to note the sources anew");
        assert_eq!(w2.paths, w.paths);
        assert!(w2.changed_paths(&w).is_empty());
        assert!(w2.paths_not_in(&w).is_empty() && w.paths_not_in(&w2).is_empty());
        assert!(w2.refreshed().is_none());
    }
}
