//! The cgroup v2 hierarchy: where it is mounted (for the filter's cgroup
//! paths) and its root directory (for the programs attached to every
//! cgroup).

use std::fs::File;
use std::path::{Path, PathBuf};

/// Where the root of the cgroup v2 hierarchy is mounted (/sys/fs/cgroup,
/// or /sys/fs/cgroup/unified on hybrid hosts). A mount of a subtree (its
/// root field is not `/`) is not the hierarchy's root.
pub fn mount_point() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    root_mount_in(&mounts)
}

/// The first cgroup2 mount of the hierarchy's root in `mountinfo` text
/// (`ID PARENT MAJOR:MINOR ROOT POINT … - FSTYPE …`).
fn root_mount_in(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        if right.split_whitespace().next() != Some("cgroup2") {
            return None;
        }
        let mut fields = left.split_whitespace().skip(3);
        let (root, point) = (fields.next()?, fields.next()?);
        (root == "/").then(|| Path::new(point).to_owned())
    })
}

/// The hierarchy's root directory, opened, and where it was found. Where
/// none is mounted (a host with cgroup v1 only), mounts one of its own for
/// as long as it takes to open it: the open directory is all an attach
/// needs, and nothing is left mounted.
pub fn open_root() -> Result<(File, String), String> {
    if let Some(point) = mount_point() {
        let dir = File::open(&point).map_err(|e| format!("{}: {e}", point.display()))?;
        return Ok((dir, point.display().to_string()));
    }
    let point = std::env::temp_dir().join(format!("sensor-cgroup2-{}", std::process::id()));
    std::fs::create_dir_all(&point).map_err(|e| format!("{}: {e}", point.display()))?;
    let mounted = nix::mount::mount(
        Some("cgroup2"),
        &point,
        Some("cgroup2"),
        nix::mount::MsFlags::MS_NOSUID
            | nix::mount::MsFlags::MS_NODEV
            | nix::mount::MsFlags::MS_NOEXEC,
        None::<&str>,
    );
    let opened = mounted
        .map_err(|e| format!("no cgroup v2 hierarchy is mounted, and mounting one failed: {e}"))
        .and_then(|()| {
            let dir = File::open(&point).map_err(|e| format!("{}: {e}", point.display()));
            let _ = nix::mount::umount2(&point, nix::mount::MntFlags::MNT_DETACH);
            dir
        });
    let _ = std::fs::remove_dir(&point);
    Ok((
        opened?,
        "a cgroup2 mount of its own, since none was mounted".to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hierarchy_s_root_mount_is_found_and_a_subtree_s_is_not() {
        let hybrid = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
        assert_eq!(
            root_mount_in(hybrid),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        let subtree_first = "\
50 23 0:38 /system.slice /mnt/slice rw - cgroup2 cgroup2 rw
51 23 0:38 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw
";
        assert_eq!(
            root_mount_in(subtree_first),
            Some(PathBuf::from("/sys/fs/cgroup"))
        );
        assert_eq!(
            root_mount_in("31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n"),
            None
        );
    }

    #[test]
    fn the_root_opens_on_this_machine() {
        let (dir, at) = open_root().expect("a cgroup v2 root");
        assert!(dir.metadata().expect("stat").is_dir(), "{at}");
    }
}
