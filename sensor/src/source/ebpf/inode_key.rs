//! Files by inode as the eBPF programs see them: `(i_ino, i_sb->s_dev)`.
//!
//! `stat`'s `st_dev` is not always the superblock's device: btrfs reports
//! each subvolume's own anonymous device (the root filesystem of Fedora and
//! openSUSE is a subvolume), while the programs read `inode->i_sb->s_dev`.
//! Keyed by `st_dev`, a watched or ignored file there would never match.
//! `/proc/self/mountinfo` shows each mount's superblock device, and
//! `statx(STATX_MNT_ID)` names the mount a file is on (Linux 5.8+; before
//! that, and for a mount not found, `st_dev` is the best there is).

use std::collections::HashMap;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use sensor_common::{ExeKey, InodeGeneration};

/// The superblock device of every mount, by mount id.
#[derive(Debug, Default)]
pub struct InodeKeys {
    devs: HashMap<u64, u32>,
}

impl InodeKeys {
    /// Reads this process's mount table (once: the keys are made at start).
    pub fn new() -> InodeKeys {
        let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        InodeKeys {
            devs: parse_mountinfo(&text),
        }
    }

    /// The key of the file at `path`, whose metadata is `meta`.
    pub fn key(&self, path: &Path, meta: &std::fs::Metadata) -> ExeKey {
        let dev = mount_id(path)
            .and_then(|id| self.devs.get(&id).copied())
            .unwrap_or_else(|| kernel_dev(meta.dev()));
        ExeKey {
            ino: meta.ino(),
            dev,
            _pad0: 0,
        }
    }
}

/// `stat`'s `(st_dev, st_ino)` of `path`, None where it cannot be read:
/// what tells, without the mount table, that a file kept by its key was
/// replaced, created or removed since the key was made.
pub fn stat_id(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// The inode generation (`i_generation`) of the open `file`, as
/// `FS_IOC_GETVERSION` tells it: ext4, xfs, btrfs and f2fs answer, and
/// give a new file another generation than the one that had its inode
/// number before; filesystems that do not (tmpfs, overlayfs) give it
/// unknown. Neither std nor nix wraps this ioctl.
pub fn generation(file: &std::fs::File) -> InodeGeneration {
    use std::os::fd::AsRawFd;
    // The filesystems write an int at the address (`put_user(
    // inode->i_generation, (int __user *)arg)`), though the ioctl's number
    // says a long: a long's room, whose first int is the generation.
    let mut value = [0u32; 2];
    // SAFETY: the fd is open for the call, and `value` is writable and
    // as large as what the ioctl's number says.
    let r = unsafe {
        libc::ioctl(
            file.as_raw_fd(),
            libc::FS_IOC_GETVERSION,
            value.as_mut_ptr(),
        )
    };
    if r != 0 {
        return InodeGeneration::default();
    }
    InodeGeneration {
        generation: value[0],
        known: 1,
    }
}

/// Mount id → the kernel's `MKDEV(major, minor)` of its superblock, from
/// `/proc/PID/mountinfo` lines (`ID PARENT MAJOR:MINOR ROOT POINT …`).
/// Malformed lines are skipped.
fn parse_mountinfo(text: &str) -> HashMap<u64, u32> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split(' ');
            let id = fields.next()?.parse().ok()?;
            let (major, minor) = fields.nth(1)?.split_once(':')?;
            Some((
                id,
                (major.parse::<u32>().ok()? << 20) | minor.parse::<u32>().ok()?,
            ))
        })
        .collect()
}

/// The id of the mount `path` is on (following symlinks, as `metadata`).
fn mount_id(path: &Path) -> Option<u64> {
    let c = CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: an all-zero statx is a valid value of this plain C struct.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: c is NUL-terminated and stx is writable; both outlive the call.
    let r = unsafe { libc::statx(libc::AT_FDCWD, c.as_ptr(), 0, libc::STATX_MNT_ID, &mut stx) };
    (r == 0 && stx.stx_mask & libc::STATX_MNT_ID != 0).then_some(stx.stx_mnt_id)
}

/// Userspace dev_t (glibc's encoding) to the kernel's `MKDEV(major, minor)`.
pub(crate) fn kernel_dev(dev: u64) -> u32 {
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    (major << 20) | (minor & 0xfffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_dev_encoding() {
        assert_eq!(kernel_dev(libc::makedev(254, 0)), 254 << 20);
        assert_eq!(kernel_dev(libc::makedev(8, 17)), (8 << 20) | 17);
    }

    #[test]
    fn mountinfo_lines_give_each_mount_s_superblock_device() {
        let text = "22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n\
                    45 22 0:39 /sub /mnt/b rw - btrfs /dev/loop0 rw,subvol=/sub\n\
                    garbage\n\
                    46 22 x:1 / /bad rw - tmpfs tmpfs rw\n";
        let devs = parse_mountinfo(text);
        assert_eq!(devs.get(&22), Some(&((254 << 20) | 1)));
        assert_eq!(devs.get(&45), Some(&39));
        assert_eq!(devs.len(), 2, "malformed lines skipped: {devs:?}");
    }

    #[test]
    fn a_file_on_the_root_mount_gets_its_superblock_device() {
        let keys = InodeKeys::new();
        let meta = std::fs::metadata("/proc/self/mountinfo").expect("stat");
        let key = keys.key(Path::new("/proc/self/mountinfo"), &meta);
        // procfs is not btrfs: its st_dev is the superblock's.
        assert_eq!(key.dev, kernel_dev(meta.dev()));
        assert_eq!(key.ino, meta.ino());
    }
}
