//! What says a file or directory changed since it was last read: the
//! account files the name cache reads, and the sources of the watched
//! paths (`source::ebpf::watch_sources`).

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// What `stat` says of a file or directory that changes when it is
/// written, replaced (useradd and vipw rename a new file over it) or (a
/// directory) gains or loses an entry. The change time is there too:
/// `cp -p`, `touch -r` and `touch -d` put an old modification time back,
/// and nothing but the kernel sets the change time. The kernel stamps
/// times at its tick (a few ms): a rewrite in place, to the same size,
/// within a tick of the read goes unnoticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
        let m = std::fs::metadata(path).ok()?;
        Some(FileStamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })
    }
}
