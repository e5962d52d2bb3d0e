//! The cgroup v2 hierarchy's root directory: where the programs attached
//! to every cgroup go, and what the filter's cgroup paths start from.

use std::fs::File;
use std::path::{Path, PathBuf};

/// Where the root of the cgroup v2 hierarchy is mounted (/sys/fs/cgroup,
/// or /sys/fs/cgroup/unified on hybrid hosts). A mount of a subtree (its
/// root field is not `/`) is not the hierarchy's root.
fn mount_point() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    root_mount_in(&mounts)
}

/// The first cgroup2 mount of the hierarchy's root in `mountinfo` text:
/// its root field is `/` (in a cgroup namespace of the reader's own, the
/// namespace's root: see [`open_root`]).
fn root_mount_in(mountinfo: &str) -> Option<PathBuf> {
    cgroup2_mounts_in(mountinfo).find_map(|(root, point)| (root == "/").then_some(point))
}

/// The cgroup2 mounts in `mountinfo` text (`ID PARENT MAJOR:MINOR ROOT
/// POINT … - FSTYPE …`): each one's root field and mount point.
fn cgroup2_mounts_in(mountinfo: &str) -> impl Iterator<Item = (&str, PathBuf)> {
    mountinfo.lines().filter_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        if right.split_whitespace().next() != Some("cgroup2") {
            return None;
        }
        let mut fields = left.split_whitespace().skip(3);
        Some((fields.next()?, Path::new(fields.next()?).to_owned()))
    })
}

/// A cgroup v2 directory, opened, for the programs attached to every
/// cgroup below it.
pub struct Root {
    pub dir: File,
    /// Where it was found, for the logs.
    pub at: String,
    /// Whether it is the hierarchy's root, whose programs every socket on
    /// the host runs; else only a subtree's sockets do (see [`open_root`]).
    pub whole: bool,
}

/// The hierarchy's root directory, opened.
///
/// In a cgroup namespace of its own (a container's, by default where
/// Docker or Podman run on cgroup v2), each cgroup2 mount the sensor sees
/// or makes shows the namespace's root, which is a subtree: programs
/// attached there run for its processes' sockets only. Where the sensor
/// shares the host's pid namespace, pid 1's mount namespace (reached
/// through `/proc/1/root`; or another process's) has the hierarchy's root
/// mounted, which is taken. Where nothing reaches it, the subtree is
/// returned, with `whole` false, for the caller to say so.
///
/// Where none is mounted (a host with cgroup v1 only), it mounts one of
/// its own for as long as it takes to open it: the open directory is all
/// an attach needs, and nothing is left mounted.
pub fn open_root() -> Result<Root, String> {
    let (dir, at) = match mount_point() {
        Some(point) => (
            File::open(&point).map_err(|e| format!("{}: {e}", point.display()))?,
            point.display().to_string(),
        ),
        None => (
            open_own_mount()?,
            "a cgroup2 mount of its own, since none was mounted".to_owned(),
        ),
    };
    if is_hierarchy_root(&dir) {
        return Ok(Root {
            dir,
            at,
            whole: true,
        });
    }
    Ok(root_elsewhere().unwrap_or(Root {
        dir,
        at,
        whole: false,
    }))
}

/// Processes [`root_elsewhere`] tries at most.
const PROCESSES_TRIED: usize = 64;

/// The hierarchy's root as another mount namespace has it mounted, where
/// this process can reach it (through `/proc/PID/root`) and it is the
/// root: pid 1's first, the host's init where the sensor shares the host's
/// pid namespace; then other processes', for a pid 1 this process may not
/// look into (of another user namespace, or not dumpable). A namespace
/// whose mounts were read is not tried again through another process;
/// one that could not be looked into is. Found only where one is the
/// root: a cgroup2 mount of a subtree cannot pass for it.
fn root_elsewhere() -> Option<Root> {
    let own = std::fs::read_link("/proc/self/ns/mnt").ok()?;
    let others = std::fs::read_dir("/proc").ok()?.filter_map(|e| {
        let name = e.ok()?.file_name();
        name.to_str()?.parse::<u32>().ok().filter(|&pid| pid != 1)
    });
    let mut looked_into = std::collections::HashSet::new();
    let mut tried = 0;
    for pid in std::iter::once(1).chain(others) {
        let Ok(ns) = std::fs::read_link(format!("/proc/{pid}/ns/mnt")) else {
            continue;
        };
        if ns == own || looked_into.contains(&ns) {
            continue;
        }
        if tried == PROCESSES_TRIED {
            return None;
        }
        tried += 1;
        let Ok(mounts) = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")) else {
            continue;
        };
        if let Some(root) = root_in_namespace_of(pid, &mounts) {
            return Some(root);
        }
        looked_into.insert(ns);
    }
    None
}

/// The hierarchy's root as process `pid`'s mount namespace has it mounted
/// (`mounts`: its mountinfo).
fn root_in_namespace_of(pid: u32, mounts: &str) -> Option<Root> {
    // Any cgroup2 mount: the root fields read here are relative to this
    // process's cgroup namespace, so a mount of the hierarchy's root can
    // show as `/..`; the directory itself says whether it is the root.
    cgroup2_mounts_in(mounts).find_map(|(_, point)| {
        let inside = point.strip_prefix("/").unwrap_or(&point);
        let at = Path::new("/proc")
            .join(pid.to_string())
            .join("root")
            .join(inside);
        let dir = File::open(&at).ok()?;
        is_hierarchy_root(&dir).then(|| Root {
            dir,
            at: format!("{} (pid {pid}'s mount namespace)", at.display()),
            whole: true,
        })
    })
}

/// Whether `dir` is a cgroup v2 directory and the hierarchy's root: every
/// cgroup but the root has `cgroup.events` (the kernel's cgroup-v2.rst), a
/// cgroup namespace's root included.
fn is_hierarchy_root(dir: &File) -> bool {
    use nix::sys::statfs::{CGROUP2_SUPER_MAGIC, fstatfs};
    use std::os::fd::AsRawFd;
    let cgroup2 = fstatfs(dir).is_ok_and(|fs| fs.filesystem_type() == CGROUP2_SUPER_MAGIC);
    let events = nix::sys::stat::fstatat(
        Some(dir.as_raw_fd()),
        "cgroup.events",
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    );
    cgroup2 && events == Err(nix::errno::Errno::ENOENT)
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
        let root = open_root().expect("a cgroup v2 root");
        assert!(root.whole, "{}", root.at);
        assert!(root.dir.metadata().expect("stat").is_dir(), "{}", root.at);
    }

    /// The root, not a child cgroup (a cgroup namespace's root is one), nor
    /// a directory elsewhere that looks like the root.
    #[test]
    fn the_hierarchy_s_root_is_told_from_a_child_and_from_other_directories() {
        let point = mount_point().expect("cgroup2 mounted on this machine");
        assert!(is_hierarchy_root(&File::open(&point).expect("open root")));
        let child = point.join(format!("sensor-lib-test-{}", std::process::id()));
        std::fs::create_dir(&child).expect("mkdir a child cgroup");
        // Checked while the child lives: a removed one's files are gone.
        let told = File::open(&child).map(|dir| is_hierarchy_root(&dir));
        let _ = std::fs::remove_dir(&child);
        assert!(!told.expect("open child"));
        let lookalike = std::env::temp_dir().join(format!("sensor-cg-{}", std::process::id()));
        std::fs::create_dir_all(&lookalike).expect("mkdir");
        std::fs::write(lookalike.join("cgroup.procs"), b"").expect("write");
        let opened = File::open(&lookalike);
        let _ = std::fs::remove_dir_all(&lookalike);
        assert!(!is_hierarchy_root(&opened.expect("open lookalike")));
    }

    /// Read from inside a cgroup namespace, a mount of the hierarchy's root
    /// shows a root field above the namespace's: listed all the same.
    #[test]
    fn every_cgroup2_mount_is_listed_whatever_its_root_field() {
        let in_namespace = "\
41 31 0:38 /.. /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
42 31 0:28 / /run rw - tmpfs tmpfs rw
90 80 0:38 / /sys/fs/cgroup rw - cgroup2 cgns rw
";
        let listed: Vec<(&str, PathBuf)> = cgroup2_mounts_in(in_namespace).collect();
        assert_eq!(
            listed,
            [
                ("/..", PathBuf::from("/sys/fs/cgroup/unified")),
                ("/", PathBuf::from("/sys/fs/cgroup")),
            ]
        );
        assert_eq!(
            root_mount_in(in_namespace),
            Some(PathBuf::from("/sys/fs/cgroup"))
        );
    }
}
