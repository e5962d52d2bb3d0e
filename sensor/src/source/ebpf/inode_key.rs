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

/// What tells, without the mount table, that a file kept by its key was
/// replaced, created or removed since the key was made: `stat`'s
/// `(st_dev, st_ino)`, and the birth time where the filesystem keeps one
/// (ext4, xfs, btrfs): a file removed and made again at once takes the
/// same inode number on ext4, and another generation, which the kernel
/// compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatId {
    dev: u64,
    ino: u64,
    born: Option<std::time::SystemTime>,
}

/// `path`'s [`StatId`], None where it cannot be read. One `statx`, as a
/// plain `stat` (std asks for the birth time too).
pub fn stat_id(path: &Path) -> Option<StatId> {
    std::fs::metadata(path).ok().map(|m| StatId {
        dev: m.dev(),
        ino: m.ino(),
        born: m.created().ok(),
    })
}

/// What is at `path`, following symlinks: its metadata, and the
/// generation of that same inode ([`generation`]). Only a regular file or
/// a directory is opened for the ioctl, through the `O_PATH` descriptor
/// its metadata came from: opening anything else can act (a watchdog
/// device's open arms it, a FIFO's blocks), and a path swapped in between
/// cannot lead there. Anything else, or a file that cannot be opened, has
/// its generation unknown.
pub fn metadata_and_generation(
    path: &Path,
) -> std::io::Result<(std::fs::Metadata, InodeGeneration)> {
    use std::os::unix::fs::OpenOptionsExt;
    // O_PATH opens nothing: no device open, no FIFO wait.
    let handle = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH)
        .open(path)?;
    let meta = handle.metadata()?;
    if !(meta.is_file() || meta.is_dir()) {
        return Ok((meta, InodeGeneration::default()));
    }
    // The very inode `handle` holds, opened for reading. O_NONBLOCK and
    // O_NOCTTY as a second guard.
    use std::os::fd::AsRawFd;
    let reopened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(format!("/proc/self/fd/{}", handle.as_raw_fd()));
    let generation = reopened.map(|f| generation(&f)).unwrap_or_default();
    Ok((meta, generation))
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

    #[test]
    fn a_files_generation_is_read_through_the_inode_its_metadata_came_from() {
        let dir = std::env::temp_dir().join(format!("sensor-generation-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let file = dir.join("f");
        std::fs::write(&file, b"x").expect("write");
        let (meta, generation) = metadata_and_generation(&file).expect("found");
        assert_eq!(meta.ino(), std::fs::metadata(&file).expect("stat").ino());
        let opened = std::fs::File::open(&file).expect("open");
        assert_eq!(generation, super::generation(&opened));
        // A symlink is followed, to the same inode.
        let link = dir.join("l");
        std::os::unix::fs::symlink(&file, &link).expect("symlink");
        let (through, linked) = metadata_and_generation(&link).expect("found");
        assert_eq!((through.ino(), linked), (meta.ino(), generation));
        // A FIFO is not opened (an open for reading would wait for a
        // writer, hanging this test): its generation is unknown.
        let fifo = dir.join("p");
        let c = std::ffi::CString::new(fifo.as_os_str().as_bytes()).expect("no NUL");
        // SAFETY: a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
        let (m, g) = metadata_and_generation(&fifo).expect("found");
        assert!(std::os::unix::fs::FileTypeExt::is_fifo(&m.file_type()));
        assert_eq!(g, InodeGeneration::default());
        assert!(metadata_and_generation(&dir.join("missing")).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
