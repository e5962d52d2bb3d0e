//! What says a file or directory changed since it was last read: the
//! account files the name cache reads, the sources of the watched
//! paths (`source::ebpf::watch_sources`), and the executables whose hash
//! is cached (`enrich::exehash`).

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// What `stat` says of a file or directory that changes when it is
/// written, replaced (useradd and vipw rename a new file over it) or (a
/// directory) gains or loses an entry. The change time is there too:
/// `cp -p`, `touch -r` and `touch -d` put an old modification time back,
/// and nothing but the kernel sets the change time. Before Linux 6.13
/// the kernel stamped times at its tick (a few ms): a rewrite in place,
/// to the same size, within a tick of the read went unnoticed. Since,
/// ext4, xfs, btrfs and tmpfs stamp a change made after a `stat` of the
/// file finely (multigrain timestamps): on this build machine's 6.18,
/// 200 such rewrites each right after a `stat` all had new stamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileStamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileStamp {
    /// Following symlinks, as readers do; None for a missing path (its
    /// creation is a change too).
    pub fn of(path: impl AsRef<Path>) -> Option<FileStamp> {
        std::fs::metadata(path).ok().map(|m| FileStamp::from(&m))
    }

    /// A stamp of no real file, told apart by `ino` (tests of caches).
    #[cfg(test)]
    pub fn fake(ino: u64) -> FileStamp {
        FileStamp {
            dev: 0,
            ino,
            size: 0,
            mtime: (0, 0),
            ctime: (0, 0),
        }
    }
}

impl From<&std::fs::Metadata> for FileStamp {
    fn from(m: &std::fs::Metadata) -> FileStamp {
        FileStamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A rewrite in place to the same size, its old modification time put
    /// back (`touch -r`): only the change time tells. (Before exehash's
    /// key was this stamp, such a swapped binary kept its old hash.)
    #[test]
    fn a_same_size_rewrite_with_its_old_mtime_put_back_is_a_change() {
        let path = std::env::temp_dir().join(format!("file-stamp-{}", std::process::id()));
        std::fs::write(&path, b"original").expect("write");
        let before = FileStamp::of(&path).expect("stamp");
        let modified = std::fs::metadata(&path).and_then(|m| m.modified());
        std::fs::write(&path, b"swapped!").expect("rewrite");
        let file = std::fs::File::options()
            .write(true)
            .open(&path)
            .expect("open");
        file.set_times(std::fs::FileTimes::new().set_modified(modified.expect("mtime")))
            .expect("touch -r");
        let after = FileStamp::of(&path).expect("stamp");
        std::fs::remove_file(&path).expect("rm");
        assert_eq!((before.size, before.mtime), (after.size, after.mtime));
        assert_ne!(before, after);
    }
}
