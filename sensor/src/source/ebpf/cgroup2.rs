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
    Ok((
        open_own_mount()?,
        "a cgroup2 mount of its own, since none was mounted".to_owned(),
    ))
}

/// Mounts the hierarchy on a new directory, opens its root, and takes the
/// mount and the directory away again.
fn open_own_mount() -> Result<File, String> {
    // A new directory of its own, never one found there: in a shared /tmp
    // another user could have put a symlink at the name, and a mount
    // follows it. (mkdir fails on any existing name, a symlink's too.)
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let point = std::env::temp_dir().join(format!("sensor-cgroup2-{}-{nanos}", std::process::id()));
    std::fs::create_dir(&point).map_err(|e| format!("{}: {e}", point.display()))?;
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
    opened
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

    /// Where none is mounted: the root, through a mount that is gone once
    /// it is open (this machine has one mounted; a second mount of the
    /// same hierarchy is the same filesystem).
    #[test]
    fn a_mount_of_its_own_opens_the_root_and_leaves_nothing_behind() {
        use std::os::fd::AsRawFd;
        let dir = open_own_mount().expect("mounted and opened");
        // SAFETY: fstatfs into a zeroed struct of the right type, on an
        // open fd.
        let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
        assert_eq!(unsafe { libc::fstatfs(dir.as_raw_fd(), &mut fs) }, 0);
        assert_eq!(fs.f_type, libc::CGROUP2_SUPER_MAGIC);
        let listed: Vec<String> = std::fs::read_dir(format!("/proc/self/fd/{}", dir.as_raw_fd()))
            .expect("list the root")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        // The root has cgroup.procs and no cgroup.events (a child has both).
        assert!(listed.iter().any(|n| n == "cgroup.procs"), "{listed:?}");
        assert!(!listed.iter().any(|n| n == "cgroup.events"), "{listed:?}");
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
        assert!(
            !mounts.contains("sensor-cgroup2-"),
            "left mounted:\n{mounts}"
        );
        let left: Vec<_> = std::fs::read_dir(std::env::temp_dir())
            .expect("temp dir")
            .filter_map(|e| e.ok())
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(&format!("sensor-cgroup2-{}-", std::process::id()))
            })
            .map(|e| e.path())
            .collect();
        assert!(left.is_empty(), "left behind: {left:?}");
    }

    #[test]
    fn the_root_opens_on_this_machine() {
        let (dir, at) = open_root().expect("a cgroup v2 root");
        assert!(dir.metadata().expect("stat").is_dir(), "{at}");
    }
}
