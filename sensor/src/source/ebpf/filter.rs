//! Turns `[filter]` into the kernel side's ignore maps: executables to
//! inodes, cgroup paths to cgroup ids. A configured entry that does not
//! exist is an error naming it: a filter that silently matches nothing
//! would hide the mistake.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use aya::Ebpf;
use aya::maps::{Array, HashMap, MapData};
use sensor_common::{ExeKey, IGNORE_PREFIX_CAP, PathPrefix, filter_flags, names};

use super::LoadError;
use super::inode_key::{InodeKeys, stat_id};
use crate::config::filter::FilterConfig;

/// The resolved filter, ready to be written into the maps.
#[derive(Debug, Default)]
pub struct Resolved {
    uids: Vec<u32>,
    exes: Vec<ExeKey>,
    cgroups: Vec<u64>,
    prefixes: Vec<PathPrefix>,
    /// The ignored executables as configured, and what `stat` said of each
    /// when `exes` was made (see [`Resolved::refresh_executables`]).
    exe_paths: Vec<PathBuf>,
    exe_seen: Vec<Option<(u64, u64)>>,
}

impl Resolved {
    /// `filter_flags` bits of the non-empty lists.
    pub fn flags(&self) -> u32 {
        [
            (!self.uids.is_empty(), filter_flags::UIDS),
            (!self.cgroups.is_empty(), filter_flags::CGROUPS),
            (!self.exes.is_empty(), filter_flags::EXECUTABLES),
            (!self.prefixes.is_empty(), filter_flags::PATH_PREFIXES),
        ]
        .into_iter()
        .filter(|(on, _)| *on)
        .fold(0, |acc, (_, bit)| acc | bit)
    }
}

pub fn resolve(config: &FilterConfig) -> Result<Resolved, LoadError> {
    let invalid = |key: &'static str, problem: String| LoadError::Filter { key, problem };
    let keys = InodeKeys::new();
    let exes = config
        .ignore_executables
        .iter()
        .map(|p| {
            let m = std::fs::metadata(p).map_err(|e| {
                invalid("filter.ignore_executables", format!("{}: {e}", p.display()))
            })?;
            Ok(keys.key(p, &m))
        })
        .collect::<Result<_, LoadError>>()?;
    let cgroups = if config.ignore_cgroups.is_empty() {
        Vec::new()
    } else {
        let root = cgroup2_mount().ok_or_else(|| {
            invalid(
                "filter.ignore_cgroups",
                "needs a cgroup v2 (unified) hierarchy, and none is mounted".to_owned(),
            )
        })?;
        config
            .ignore_cgroups
            .iter()
            .map(|cg| {
                let dir = root.join(cg.trim_start_matches('/'));
                // A cgroup v2 directory's inode number is its cgroup id,
                // what bpf_get_current_cgroup_id returns.
                std::fs::metadata(&dir).map(|m| m.ino()).map_err(|e| {
                    invalid(
                        "filter.ignore_cgroups",
                        format!("{cg} ({}): {e}", dir.display()),
                    )
                })
            })
            .collect::<Result<_, LoadError>>()?
    };
    let prefixes = config
        .ignore_path_prefixes
        .iter()
        .map(|p| {
            let mut bytes = [0u8; IGNORE_PREFIX_CAP];
            bytes[..p.len()].copy_from_slice(p.as_bytes());
            PathPrefix {
                len: p.len() as u32,
                _pad0: 0,
                bytes,
            }
        })
        .collect();
    Ok(Resolved {
        uids: config.ignore_uids.clone(),
        exes,
        cgroups,
        prefixes,
        exe_seen: stat_ids(&config.ignore_executables),
        exe_paths: config.ignore_executables.clone(),
    })
}

fn stat_ids(paths: &[PathBuf]) -> Vec<Option<(u64, u64)>> {
    paths.iter().map(|p| stat_id(p)).collect()
}

impl Resolved {
    /// Looks the ignored executables up again and, where one has another
    /// inode (a package upgrade writes a new file and renames it over the
    /// old one), replaces its key in the kernel's map. The old key must go:
    /// its inode number is reused by the next file made on the filesystem,
    /// which would then run unseen. An executable that is gone is ignored no
    /// longer. The paths that changed, for the log.
    pub fn refresh_executables(&mut self, ebpf: &mut Ebpf) -> Result<Vec<PathBuf>, LoadError> {
        let seen = stat_ids(&self.exe_paths);
        if seen == self.exe_seen {
            return Ok(Vec::new());
        }
        let keys = InodeKeys::new();
        let exes: Vec<ExeKey> = self
            .exe_paths
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok().map(|m| keys.key(p, &m)))
            .collect();
        let name = names::IGNORE_EXES_MAP;
        let map = ebpf
            .map_mut(name)
            .ok_or(LoadError::Missing { what: "map", name })?;
        let mut hash: HashMap<&mut MapData, ExeKey, u8> =
            HashMap::try_from(map).map_err(|source| LoadError::Map { name, source })?;
        for old in self.exes.iter().filter(|k| !exes.contains(k)) {
            // Absent already is fine: the goal is its absence.
            let _ = hash.remove(old);
        }
        for key in &exes {
            hash.insert(key, 1, 0)
                .map_err(|source| LoadError::Map { name, source })?;
        }
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
    fill_hash(ebpf, names::IGNORE_UIDS_MAP, &r.uids)?;
    fill_hash(ebpf, names::IGNORE_EXES_MAP, &r.exes)?;
    fill_hash(ebpf, names::IGNORE_CGROUPS_MAP, &r.cgroups)?;
    let name = names::IGNORE_PREFIXES_MAP;
    let map = ebpf
        .map_mut(name)
        .ok_or(LoadError::Missing { what: "map", name })?;
    let mut prefixes: Array<&mut MapData, PathPrefix> =
        Array::try_from(map).map_err(|source| LoadError::Map { name, source })?;
    for (i, p) in r.prefixes.iter().enumerate() {
        prefixes
            .set(i as u32, p, 0)
            .map_err(|source| LoadError::Map { name, source })?;
    }
    Ok(())
}

fn fill_hash<K: aya::Pod>(
    ebpf: &mut Ebpf,
    name: &'static str,
    keys: &[K],
) -> Result<(), LoadError> {
    let map = ebpf
        .map_mut(name)
        .ok_or(LoadError::Missing { what: "map", name })?;
    let mut hash: HashMap<&mut MapData, K, u8> =
        HashMap::try_from(map).map_err(|source| LoadError::Map { name, source })?;
    for key in keys {
        hash.insert(key, 1, 0)
            .map_err(|source| LoadError::Map { name, source })?;
    }
    Ok(())
}

/// Where the cgroup v2 hierarchy is mounted (/sys/fs/cgroup, or
/// /sys/fs/cgroup/unified on hybrid hosts).
fn cgroup2_mount() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    mounts.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        (right.split_whitespace().next() == Some("cgroup2"))
            .then(|| {
                left.split_whitespace()
                    .nth(4)
                    .map(|m| Path::new(m).to_owned())
            })
            .flatten()
    })
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

    #[test]
    fn an_executable_resolves_to_its_inode() {
        let config = FilterConfig {
            ignore_executables: vec!["/bin/sh".into()],
            ..FilterConfig::default()
        };
        let r = resolve(&config).expect("resolves");
        let m = std::fs::metadata("/bin/sh").expect("stat");
        assert_eq!(r.exes[0].ino, m.ino(), "follows the symlink to the file");
        assert_eq!(r.flags(), filter_flags::EXECUTABLES);
    }
}
