//! The JSON-lines file: the host's local copy. Written synchronously from
//! the router (a local write does not wait on any collector), mode 0600,
//! rotated by size and age (`events.jsonl` → `events.jsonl.1` …, the
//! oldest beyond `keep` deleted), reopened on SIGHUP for outside log
//! rotation.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::config::sinks::FileSink;

pub struct RotatingFile {
    path: PathBuf,
    out: BufWriter<File>,
    size: u64,
    opened: Instant,
    rotate_bytes: u64,
    rotate_age: Option<Duration>,
    keep: u32,
}

fn open(path: &Path) -> io::Result<(BufWriter<File>, u64)> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    // An existing file keeps its mode on open: events are sensitive.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    let size = f.metadata()?.len();
    Ok((BufWriter::with_capacity(256 << 10, f), size))
}

fn numbered(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

impl RotatingFile {
    pub fn open(cfg: &FileSink) -> io::Result<RotatingFile> {
        let (out, size) = open(&cfg.path)?;
        Ok(RotatingFile {
            path: cfg.path.clone(),
            out,
            size,
            opened: Instant::now(),
            rotate_bytes: cfg.rotate_bytes,
            rotate_age: (cfg.rotate_seconds > 0).then(|| Duration::from_secs(cfg.rotate_seconds)),
            keep: cfg.keep,
        })
    }

    pub fn write(&mut self, line: &[u8]) -> io::Result<()> {
        if self.rotate_bytes > 0
            && self.size > 0
            && self.size + line.len() as u64 > self.rotate_bytes
        {
            // A failed rotation must not cost the line: it goes to the file
            // still open, and the next write tries again.
            if let Err(e) = self.rotate() {
                tracing::warn!(path = %self.path.display(), "cannot rotate: {e}");
            }
        }
        self.out.write_all(line)?;
        self.size += line.len() as u64;
        Ok(())
    }

    /// After each batch: hand the lines to the kernel, rotate by age.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()?;
        if self
            .rotate_age
            .is_some_and(|age| self.opened.elapsed() >= age)
            && self.size > 0
        {
            self.rotate()?;
        }
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.out.flush()?;
        // The path may be gone: someone else rotated the file away and has
        // not sent SIGHUP yet. Then there is nothing to rename; the open file
        // (theirs now) keeps what was written, and a new one is started.
        let gone = |r: io::Result<()>| match r {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        };
        if self.keep == 0 {
            gone(std::fs::remove_file(&self.path))?;
        } else {
            let _ = std::fs::remove_file(numbered(&self.path, self.keep));
            for n in (1..self.keep).rev() {
                let from = numbered(&self.path, n);
                if from.exists() {
                    std::fs::rename(&from, numbered(&self.path, n + 1))?;
                }
            }
            gone(std::fs::rename(&self.path, numbered(&self.path, 1)))?;
        }
        self.reopen()
    }

    /// Opens the path anew (SIGHUP: someone else rotated the file).
    pub fn reopen(&mut self) -> io::Result<()> {
        self.out.flush()?;
        let (out, size) = open(&self.path)?;
        self.out = out;
        self.size = size;
        self.opened = Instant::now();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_moved_away_before_sighup_loses_no_line_when_it_rotates() {
        let t = tempfile::Builder::new()
            .prefix("rotate-moved-test-")
            .tempdir()
            .unwrap();
        // Made by the code under test.
        let dir = t.path().join("d");
        let cfg = FileSink {
            name: None,
            path: dir.join("events.jsonl"),
            rotate_bytes: 100,
            rotate_seconds: 0,
            keep: 2,
        };
        let mut f = RotatingFile::open(&cfg).unwrap();
        f.write(format!("{{\"n\":{:060}}}\n", 1).as_bytes())
            .unwrap();
        // An outside rotation, no SIGHUP yet; the next line rotates by size.
        let moved = dir.join("moved.jsonl");
        std::fs::rename(&cfg.path, &moved).unwrap();
        f.write(format!("{{\"n\":{:060}}}\n", 2).as_bytes())
            .unwrap();
        f.flush().unwrap();
        let all =
            std::fs::read_to_string(&moved).unwrap() + &std::fs::read_to_string(&cfg.path).unwrap();
        assert!(
            all.contains(&format!("{:060}", 1)) && all.contains(&format!("{:060}", 2)),
            "{all}"
        );
    }

    #[test]
    fn rotates_by_size_keeps_n_files_mode_0600() {
        let t = tempfile::Builder::new()
            .prefix("rotate-test-")
            .tempdir()
            .unwrap();
        // Made by the code under test.
        let dir = t.path().join("d");
        let cfg = FileSink {
            name: None,
            path: dir.join("events.jsonl"),
            rotate_bytes: 100,
            rotate_seconds: 0,
            keep: 2,
        };
        let mut f = RotatingFile::open(&cfg).unwrap();
        for i in 0..10 {
            f.write(format!("{{\"n\":{i:040}}}\n").as_bytes()).unwrap();
        }
        f.flush().unwrap();
        let read = |p: &Path| std::fs::read_to_string(p).unwrap();
        assert!(read(&cfg.path).contains(&format!("{:040}", 9)));
        assert!(read(&numbered(&cfg.path, 1)).contains(&format!("{:040}", 7)));
        assert!(numbered(&cfg.path, 2).exists());
        assert!(
            !numbered(&cfg.path, 3).exists(),
            "only `keep` rotated files"
        );
        let mode = std::fs::metadata(&cfg.path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
