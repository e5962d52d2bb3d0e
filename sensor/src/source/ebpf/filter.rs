//! Turns `[filter]` into the kernel side's ignore maps: executables to
//! inodes, cgroup paths to cgroup ids. A configured entry that does not
//! exist is an error naming it: a filter that silently matches nothing
//! would hide the mistake.

use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use aya::Ebpf;
use aya::maps::{Array, MapData};
use sensor_common::{ExeKey, IGNORE_PREFIX_CAP, InodeGeneration, PathPrefix, filter_flags, names};

use super::inode_key::{InodeKeys, metadata_and_generation};
use super::{LoadError, map_mut, present, replace_hash_entries};
use crate::config::filter::FilterConfig;

/// The resolved filter, ready to be written into the maps.
#[derive(Debug, Default)]
pub struct Resolved {
    uids: Vec<u32>,
    /// The ignored executables' map entries.
    exes: Vec<(ExeKey, InodeGeneration)>,
    cgroups: Vec<u64>,
    prefixes: Vec<PathPrefix>,
    /// The prefixes that are directories, walked (see [`walked_dir`]).
    walked_dirs: Vec<PathPrefix>,
    /// The ignored executables as configured, and what was found at each
    /// when `exes` was made (see [`Resolved::refresh_executables`]).
    exe_paths: Vec<PathBuf>,
    exe_seen: Vec<Option<Seen>>,
}

/// A file as found at an ignored executable's path: `stat`'s `(st_dev,
/// st_ino)` and the inode's generation, read from one open of the file.
/// What tells, without the mount table, that the path now names another
/// file, or the same inode number a new file (`rm` then `install`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Seen {
    dev: u64,
    ino: u64,
    generation: InodeGeneration,
}

/// The `IGNORE_EXES` entries for what was found at each of `paths`
/// (`found`, in their order): none for a path where nothing was.
fn exe_entries<'a>(
    paths: &[PathBuf],
    found: impl IntoIterator<Item = Option<&'a (std::fs::Metadata, Seen)>>,
) -> Vec<(ExeKey, InodeGeneration)> {
    let keys = InodeKeys::new();
    paths
        .iter()
        .zip(found)
        .filter_map(|(p, f)| {
            let (meta, seen) = f?;
            Some((keys.key(p, meta), seen.generation))
        })
        .collect()
}

/// Tells what is at `path` (following symlinks, as exec does); its
/// metadata too, for its key.
fn see(path: &Path) -> std::io::Result<(std::fs::Metadata, Seen)> {
    let (meta, generation) = metadata_and_generation(path)?;
    let seen = Seen {
        dev: meta.dev(),
        ino: meta.ino(),
        generation,
    };
    Ok((meta, seen))
}

impl Resolved {
    /// `filter_flags` bits of the non-empty lists.
    pub fn flags(&self) -> u32 {
        [
            (!self.uids.is_empty(), filter_flags::UIDS),
            (!self.cgroups.is_empty(), filter_flags::CGROUPS),
            (!self.exes.is_empty(), filter_flags::EXECUTABLES),
            (!self.prefixes.is_empty(), filter_flags::PATH_PREFIXES),
            (!self.walked_dirs.is_empty(), filter_flags::WALKED_DIRS),
        ]
        .into_iter()
        .filter(|(on, _)| *on)
        .fold(0, |acc, (_, bit)| acc | bit)
    }
}

pub fn resolve(config: &FilterConfig) -> Result<Resolved, LoadError> {
    let invalid = |key: &'static str, problem: String| LoadError::Filter { key, problem };
    let found = config
        .ignore_executables
        .iter()
        .map(|p| {
            see(p)
                .map_err(|e| invalid("filter.ignore_executables", format!("{}: {e}", p.display())))
        })
        .collect::<Result<Vec<_>, LoadError>>()?;
    let exes = exe_entries(&config.ignore_executables, found.iter().map(Some));
    let exe_seen = found.iter().map(|f| Some(f.1)).collect();
    let cgroups = if config.ignore_cgroups.is_empty() {
        Vec::new()
    } else {
        // The hierarchy's root, as the UDP hooks find it: from a cgroup
        // namespace of the sensor's own too, where the paths a host shows
        // in /proc/PID/cgroup start above the namespace's root.
        let root = super::cgroup2::open_root().map_err(|why| {
            invalid(
                "filter.ignore_cgroups",
                format!("needs a cgroup v2 (unified) hierarchy: {why}"),
            )
        })?;
        config
            .ignore_cgroups
            .iter()
            .map(|cg| {
                let relative = match cg.trim_start_matches('/') {
                    "" => ".",
                    below => below,
                };
                // A cgroup v2 directory's inode number is its cgroup id,
                // what bpf_get_current_cgroup_id returns.
                nix::sys::stat::fstatat(
                    Some(root.dir.as_raw_fd()),
                    relative,
                    nix::fcntl::AtFlags::empty(),
                )
                .map(|st| st.st_ino)
                .map_err(|e| {
                    invalid(
                        "filter.ignore_cgroups",
                        format!("{cg} (under {}): {e}", root.at),
                    )
                })
            })
            .collect::<Result<_, LoadError>>()?
    };
    let prefixes = config
        .ignore_path_prefixes
        .iter()
        .map(|p| path_prefix(p.as_bytes()))
        .collect();
    let walked_dirs = config
        .ignore_path_prefixes
        .iter()
        .filter_map(|p| walked_dir(p).map(|w| path_prefix(&w)))
        .collect();
    Ok(Resolved {
        uids: config.ignore_uids.clone(),
        exes,
        cgroups,
        prefixes,
        walked_dirs,
        exe_seen,
        exe_paths: config.ignore_executables.clone(),
    })
}

/// `bytes` (at most `IGNORE_PREFIX_CAP`: the config checks) as a map entry.
fn path_prefix(bytes: &[u8]) -> PathPrefix {
    let mut entry = [0u8; IGNORE_PREFIX_CAP];
    entry[..bytes.len()].copy_from_slice(bytes);
    PathPrefix {
        len: bytes.len() as u32,
        _pad0: 0,
        bytes: entry,
    }
}

/// A prefix that names a directory (`/tmp/x/`), as the kernel side walks a
/// path below it: components leaf first, each ending in NUL (`x\0tmp\0`).
/// The kernel matches the end of a walked path against it (see
/// `sensor-ebpf`'s `filter::walked_path_ignored`), which decides as the
/// string prefix would on the walked path joined, since that path has no
/// empty, `.` or `..` component. None for a prefix that a walked path's
/// components cannot express: one that does not end in `/` (it matches
/// part of a name), or whose text is not a plain path (`//`, `/./`); the
/// daemon decides those (`pipeline::file::ignored`), on the path the
/// kernel sends up.
fn walked_dir(prefix: &str) -> Option<Vec<u8>> {
    let inner = prefix.strip_prefix('/')?.strip_suffix('/')?;
    if inner.is_empty() {
        // `/`: every path. Rare enough to leave to the daemon.
        return None;
    }
    let components: Vec<&str> = inner.split('/').collect();
    if components
        .iter()
        .any(|c| c.is_empty() || *c == "." || *c == "..")
    {
        return None;
    }
    let mut walked = Vec::with_capacity(prefix.len());
    for c in components.iter().rev() {
        walked.extend_from_slice(c.as_bytes());
        walked.push(0);
    }
    Some(walked)
}

impl Resolved {
    /// Looks the ignored executables up again and, where one is another
    /// file (a package upgrade writes a new file and renames it over the
    /// old one, or removes the old one and makes a new one, which may get
    /// its inode number back), replaces its entry in the kernel's map. The
    /// old key must go: its inode number is reused by the next file made on
    /// the filesystem, which would run unseen where the filesystem tells no
    /// generation. An executable that is gone is ignored no longer. The
    /// paths that changed, for the log.
    pub fn refresh_executables(&mut self, ebpf: &mut Ebpf) -> Result<Vec<PathBuf>, LoadError> {
        let found: Vec<_> = self.exe_paths.iter().map(|p| see(p).ok()).collect();
        let seen: Vec<Option<Seen>> = found.iter().map(|f| f.as_ref().map(|f| f.1)).collect();
        if seen == self.exe_seen {
            return Ok(Vec::new());
        }
        let exes = exe_entries(&self.exe_paths, found.iter().map(Option::as_ref));
        replace_hash_entries(ebpf, names::IGNORE_EXES_MAP, &self.exes, &exes)?;
        let changed = self
            .exe_paths
            .iter()
            .zip(seen.iter().zip(&self.exe_seen))
            .filter(|(_, (now, then))| now != then)
            .map(|(p, _)| p.clone())
            .collect();
        self.exes = exes;
        self.exe_seen = seen;
        Ok(changed)
    }
}

/// Writes the resolved lists into the loaded object's maps. The maps stay
/// in the object (borrowed, not taken): programs loaded later refer to them.
pub fn install(ebpf: &mut Ebpf, r: &Resolved) -> Result<(), LoadError> {
    replace_hash_entries(ebpf, names::IGNORE_UIDS_MAP, &[], &present(&r.uids))?;
    replace_hash_entries(ebpf, names::IGNORE_EXES_MAP, &[], &r.exes)?;
    replace_hash_entries(ebpf, names::IGNORE_CGROUPS_MAP, &[], &present(&r.cgroups))?;
    fill_array(ebpf, names::IGNORE_PREFIXES_MAP, &r.prefixes)?;
    fill_array(ebpf, names::IGNORE_DIRS_WALKED_MAP, &r.walked_dirs)
}

fn fill_array(
    ebpf: &mut Ebpf,
    name: &'static str,
    entries: &[PathPrefix],
) -> Result<(), LoadError> {
    let mut array: Array<&mut MapData, PathPrefix> = map_mut(ebpf, name)?;
    for (i, p) in entries.iter().enumerate() {
        array
            .set(i as u32, p, 0)
            .map_err(|source| LoadError::Map { name, source })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_entries_are_errors_naming_the_key() {
        let config = FilterConfig {
            ignore_executables: vec!["/nonexistent/tool".into()],
            ..FilterConfig::default()
        };
        let err = resolve(&config).unwrap_err().to_string();
        assert!(
            err.contains("filter.ignore_executables") && err.contains("/nonexistent/tool"),
            "{err}"
        );
    }

    /// What the kernel side decides with a walked directory: the walked
    /// path (leaf first) ends with it, right after a component's end.
    fn walked_below(walked_path: &[u8], dir: &[u8]) -> bool {
        walked_path.len() > dir.len()
            && walked_path.ends_with(dir)
            && walked_path[walked_path.len() - dir.len() - 1] == 0
    }

    /// `/a/b/c` walked: `c\0b\0a\0`.
    fn walk(path: &str) -> Vec<u8> {
        path.trim_start_matches('/')
            .split('/')
            .rev()
            .flat_map(|c| c.bytes().chain([0]))
            .collect()
    }

    #[test]
    fn directory_prefixes_are_matched_as_a_walked_path_ends() {
        let dir = walked_dir("/tmp/x/").expect("a directory");
        assert_eq!(dir, b"x\0tmp\0");
        for (path, under) in [
            ("/tmp/x/f", true),
            ("/tmp/x/d/f", true),
            // The directory itself does not start with `/tmp/x/`.
            ("/tmp/x", false),
            ("/tmp/xy/f", false),
            ("/tmp/ax/f", false),
            ("/var/tmp/x/f", false),
            ("/x/tmp/f", false),
        ] {
            let prefix_says = path.starts_with("/tmp/x/");
            assert_eq!(prefix_says, under, "{path}");
            assert_eq!(walked_below(&walk(path), &dir), under, "{path}");
        }
        assert_eq!(
            walked_dir("/var/lib/docker/overlay2/").expect("dir").len(),
            24
        );
    }

    #[test]
    fn prefixes_a_walk_cannot_express_are_left_to_the_daemon() {
        for prefix in [
            "/var/lib/docker",
            "/",
            "/tmp//x/",
            "/tmp/./x/",
            "/tmp/../x/",
        ] {
            assert_eq!(walked_dir(prefix), None, "{prefix}");
        }
        let config = FilterConfig {
            ignore_path_prefixes: vec!["/tmp/x/".into(), "/var/lib/docker".into()],
            ..FilterConfig::default()
        };
        let r = resolve(&config).expect("resolves");
        assert_eq!(r.prefixes.len(), 2);
        assert_eq!(r.walked_dirs.len(), 1);
        assert_eq!(&r.walked_dirs[0].bytes[..6], b"x\0tmp\0");
        assert_eq!(
            r.flags(),
            filter_flags::PATH_PREFIXES | filter_flags::WALKED_DIRS
        );
    }

    #[test]
    fn an_executable_resolves_to_its_inode() {
        let config = FilterConfig {
            ignore_executables: vec!["/bin/sh".into()],
            ..FilterConfig::default()
        };
        let r = resolve(&config).expect("resolves");
        let m = std::fs::metadata("/bin/sh").expect("stat");
        assert_eq!(r.exes[0].0.ino, m.ino(), "follows the symlink to the file");
        let file = std::fs::File::open("/bin/sh").expect("open");
        assert_eq!(r.exes[0].1, super::super::inode_key::generation(&file));
        assert_eq!(r.flags(), filter_flags::EXECUTABLES);
    }
}
