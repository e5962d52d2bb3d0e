//! Symlinks through magic links made before the sensor started, looked
//! for where anyone can make one: the world-writable temporary
//! directories. One made while the sensor runs is seen made
//! (`pipeline::symlink_target`), and kept across restarts
//! (`magic_links::STATE_FILE`); one planted before it first ran, or while
//! it was down with its state directory lost, would otherwise lead a
//! rename into cron.d unseen where fentry is refused (see
//! `magic_links`).
//!
//! By hand, not `walkdir`: a few lines of `read_dir` with the file type
//! from the directory entry, and the walk's bound counted in entries.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::decode::lexically_normal;
use super::magic_links::MagicLink;
use crate::enrich::path_resolve::{KnownLink, target_through_magic_link};

/// The directories looked into: those anyone may write to on a Debian
/// host (sticky and world-writable, or each user's own: `/run/user/UID`).
pub const SCAN_ROOTS: &[&str] = &[
    "/tmp",
    "/var/tmp",
    "/dev/shm",
    "/run/lock",
    "/run/user",
    "/var/crash",
];

/// Levels of directories below a root looked into (`/tmp/a/b/c/d/link`).
const DEPTH: usize = 4;

/// Directory entries read at most, over all roots: a temporary directory
/// with millions of files costs the start a bounded time.
pub const ENTRIES_MAX: usize = 50_000;

/// What a scan found.
#[derive(Debug, Default)]
pub struct Found {
    pub links: Vec<MagicLink>,
    /// Stopped at [`ENTRIES_MAX`]: deeper or later entries were not read.
    pub cut: bool,
}

/// The symlinks through magic links in `roots` and the directories below
/// them, [`DEPTH`] levels deep (symlinked directories not followed).
pub fn scan(roots: &[&Path], entries_max: usize) -> Found {
    let mut found = Found::default();
    let mut entries = 0;
    let mut dirs: Vec<(PathBuf, usize)> = roots.iter().map(|r| (r.to_path_buf(), 0)).collect();
    while let Some((dir, depth)) = dirs.pop() {
        let Ok(read) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in read.flatten() {
            entries += 1;
            if entries > entries_max {
                found.cut = true;
                return found;
            }
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let path = entry.path();
            if kind.is_dir() && depth < DEPTH {
                dirs.push((path, depth + 1));
            } else if kind.is_symlink()
                && let Some(link) = through_magic_link(&path)
            {
                found.links.push(link);
            }
        }
    }
    found
}

/// The symlink at `path` (absolute), where its target (joined to its
/// directory, made normal) goes through a magic link.
fn through_magic_link(path: &Path) -> Option<MagicLink> {
    let written = std::fs::read_link(path).ok()?;
    let written = written.as_os_str().as_bytes().to_vec();
    let path = lexically_normal(path.as_os_str().as_bytes());
    let dir = &path[..path.iter().rposition(|&b| b == b'/')?];
    let leads_to = if written.first() == Some(&b'/') {
        lexically_normal(&written)
    } else {
        lexically_normal(&[dir, b"/", &written].concat())
    };
    target_through_magic_link(&leads_to).then_some(MagicLink {
        link: KnownLink {
            path,
            written,
            leads_to,
        },
        in_host_root: true,
        dir: None,
        awaited: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Links through magic links are found, by absolute or relative
    /// targets, below the depth's bound only; others are not, and the
    /// entries read are bounded.
    #[test]
    fn links_through_magic_links_are_found_within_the_bounds() {
        let root = std::env::temp_dir().join(format!("sensor-scan-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let deep = root.join("a/b/c/d/e");
        std::fs::create_dir_all(&deep).unwrap();
        let up = "../".repeat(root.components().count() - 1);
        for (link, target) in [
            ("a/cwd", "/proc/self/cwd".to_owned()),
            ("a/b/fd", "/dev/fd".to_owned()),
            ("a/b/relative", format!("../../{up}proc/self/root")),
            ("a/plain", "/etc".to_owned()),
            ("a/b/c/d/deepest", "/proc/self/cwd".to_owned()),
            ("a/b/c/d/e/too-deep", "/proc/self/cwd".to_owned()),
        ] {
            std::os::unix::fs::symlink(&target, root.join(link)).unwrap();
        }
        let r = root.to_str().unwrap();
        let found = scan(&[&root], ENTRIES_MAX);
        assert!(!found.cut);
        let mut paths: Vec<String> = found
            .links
            .iter()
            .map(|l| String::from_utf8(l.link.path.clone()).unwrap())
            .collect();
        paths.sort();
        assert_eq!(
            paths,
            [
                format!("{r}/a/b/c/d/deepest"),
                format!("{r}/a/b/fd"),
                format!("{r}/a/b/relative"),
                format!("{r}/a/cwd")
            ]
        );
        let relative = found
            .links
            .iter()
            .find(|l| l.link.path.ends_with(b"relative"));
        assert_eq!(
            relative.map(|l| l.link.leads_to.clone()),
            Some(b"/proc/self/root".to_vec())
        );
        assert!(found.links.iter().all(|l| l.in_host_root));
        let cut = scan(&[&root], 3);
        assert!(cut.cut);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
