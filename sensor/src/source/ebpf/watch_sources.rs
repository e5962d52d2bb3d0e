//! The files and directories the found watched paths come from
//! (/etc/passwd, the homes, sshd_config and what it includes), and what
//! `stat` said of each just before it was read: a refresh finds the
//! paths again when one of them changed since, so that an account, a
//! symlinked startup file or an `AuthorizedKeysFile` added after the
//! start is watched too.

use std::path::{Path, PathBuf};

use crate::file_stamp::FileStamp;

/// The sources noted while the paths were found, each once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sources(Vec<(PathBuf, Option<FileStamp>)>);

impl Sources {
    /// Notes `path` as a source: to be called before it is read, so that
    /// a change made while it is read shows on the next look.
    pub fn note(&mut self, path: &Path) {
        if !self.0.iter().any(|(p, _)| p == path) {
            self.0.push((path.to_path_buf(), FileStamp::of(path)));
        }
    }

    /// Has any source changed (written, replaced, made or removed) since
    /// it was noted? One `stat` each.
    pub fn changed(&self) -> bool {
        self.0.iter().any(|(p, seen)| FileStamp::of(p) != *seen)
    }

    /// The paths noted, in order (for tests: the daemon needs only
    /// [`Self::changed`]).
    #[cfg(test)]
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.0.iter().map(|(p, _)| p.as_path())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_a_replacement_a_new_entry_or_a_creation_is_a_change() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("passwd");
        let missing = dir.path().join("sshd_config");
        std::fs::write(&file, b"root:x:0:0::/root:/bin/sh\n").unwrap();
        let noted = |paths: &[&Path]| {
            let mut s = Sources::default();
            for p in paths {
                s.note(p);
            }
            s
        };

        let s = noted(&[&file, dir.path(), &file]);
        assert_eq!(s.paths().count(), 2, "each once");
        assert!(!s.changed(), "nothing changed yet");

        // Appended to, in place.
        let s = noted(&[&file]);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&file)
            .and_then(|mut f| {
                std::io::Write::write_all(&mut f, b"bob:x:1000:1000::/home/bob:/bin/sh\n")
            })
            .unwrap();
        assert!(s.changed(), "an append");

        // Replaced by a rename over it, as useradd and editors write.
        let s = noted(&[&file]);
        let new = dir.path().join("passwd+");
        std::fs::write(&new, b"root:x:0:0::/root:/bin/sh\n").unwrap();
        std::fs::rename(&new, &file).unwrap();
        assert!(s.changed(), "a replacement");

        // A directory that gains an entry.
        let s = noted(&[dir.path()]);
        std::fs::write(dir.path().join("10-keys.conf"), b"").unwrap();
        assert!(s.changed(), "a new entry");

        // A file made where there was none.
        let s = noted(&[&missing]);
        assert!(!s.changed());
        std::fs::write(&missing, b"").unwrap();
        assert!(s.changed(), "a creation");
        assert_eq!(s.paths().collect::<Vec<_>>(), [missing.as_path()]);
    }
}
