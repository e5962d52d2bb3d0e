//! Follows wtmp and btmp: new records since the last look, from the end of
//! the file at start (history is not replayed). A file that shrank was
//! rotated or truncated: it is read again from its start.

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

use super::utmp::{self, Utmp};

/// Records read per look, at most: a burst of failed logins is reported
/// over several ticks rather than in one unbounded read.
const MAX_PER_LOOK: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// wtmp: logins and logouts.
    Wtmp,
    /// btmp: failed logins.
    Btmp,
}

pub struct Followed {
    pub kind: Kind,
    path: PathBuf,
    offset: u64,
}

impl Followed {
    pub fn new(kind: Kind, path: PathBuf) -> Followed {
        let offset = std::fs::metadata(&path)
            .map(|m| m.len() - m.len() % utmp::RECORD as u64)
            .unwrap_or(0);
        Followed { kind, path, offset }
    }

    /// Complete records appended since the last call.
    pub fn read_new(&mut self) -> Vec<Utmp> {
        let Ok(mut f) = std::fs::File::open(&self.path) else {
            return Vec::new();
        };
        let Ok(len) = f.metadata().map(|m| m.len()) else {
            return Vec::new();
        };
        if len < self.offset {
            self.offset = 0;
        }
        let avail = ((len - self.offset) / utmp::RECORD as u64).min(MAX_PER_LOOK as u64) as usize;
        if avail == 0 || f.seek(SeekFrom::Start(self.offset)).is_err() {
            return Vec::new();
        }
        let mut buf = vec![0u8; avail * utmp::RECORD];
        if f.read_exact(&mut buf).is_err() {
            return Vec::new();
        }
        self.offset += buf.len() as u64;
        buf.chunks_exact(utmp::RECORD)
            .filter_map(utmp::parse)
            .collect()
    }
}

/// wtmp and btmp where Debian keeps them.
pub fn default_files() -> Vec<Followed> {
    vec![
        Followed::new(Kind::Wtmp, PathBuf::from("/var/log/wtmp")),
        Followed::new(Kind::Btmp, PathBuf::from("/var/log/btmp")),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::logins::utmp::{USER_PROCESS, encode};

    fn rec(user: &str) -> Vec<u8> {
        encode(&Utmp {
            kind: USER_PROCESS,
            pid: 1,
            line: b"pts/1".to_vec(),
            user: user.as_bytes().to_vec(),
            host: Vec::new(),
            session: 0,
            sec: 0,
            usec: 0,
            addr: None,
        })
    }

    #[test]
    fn follows_appends_partial_records_and_rotation() {
        let path = std::env::temp_dir().join(format!("sensor-wtmp-test-{}", std::process::id()));
        std::fs::write(&path, rec("old")).expect("write");
        let mut f = Followed::new(Kind::Wtmp, path.clone());
        assert!(f.read_new().is_empty(), "history is not replayed");
        let mut data = rec("old");
        data.extend(rec("new"));
        data.extend(&rec("partial")[..100]);
        std::fs::write(&path, &data).expect("append");
        let got = f.read_new();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].user, b"new");
        data.truncate(utmp::RECORD * 2);
        data.extend(rec("partial"));
        std::fs::write(&path, &data).expect("complete");
        assert_eq!(f.read_new()[0].user, b"partial");
        std::fs::write(&path, rec("rotated")).expect("rotate");
        assert_eq!(f.read_new()[0].user, b"rotated");
        let _ = std::fs::remove_file(&path);
    }
}
