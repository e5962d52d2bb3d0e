//! `event.sequence` across restarts: a lease on sequence numbers kept in
//! `<state_dir>/sequence`.
//!
//! Writing the counter for every event would cost a write per event, so
//! the file holds the end of a block of numbers taken ahead ([`BLOCK`]):
//! before a number past the block is used, the next block is written (and
//! fsynced). A crash therefore never reuses a number; the next start
//! continues after the block, and the numbers between the last event that
//! reached a spool and that point are reported as a gap (a `lost` event
//! with `sensor.gap`). A graceful stop writes the exact last number, so a
//! normal restart continues without a gap.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub const BLOCK: u64 = 10_000;

#[derive(Debug)]
pub struct SequenceLease {
    path: PathBuf,
    leased_to: u64,
}

impl SequenceLease {
    /// Opens the lease; returns it and the last number an earlier run may
    /// have used (0 on a first start).
    pub fn open(state_dir: &Path) -> io::Result<(SequenceLease, u64)> {
        std::fs::create_dir_all(state_dir)?;
        let path = state_dir.join("sequence");
        let last = match std::fs::read_to_string(&path) {
            Ok(s) => s.trim().parse::<u64>().map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: {e}", path.display()),
                )
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        Ok((
            SequenceLease {
                path,
                leased_to: last,
            },
            last,
        ))
    }

    /// Makes sure `seq` is covered by the persisted lease. On a write
    /// error the block is taken in memory anyway, so that a broken state
    /// directory costs one error per block rather than one per event; the
    /// caller logs it (numbers could then repeat after a crash).
    pub fn cover(&mut self, seq: u64) -> io::Result<()> {
        if seq > self.leased_to {
            let to = seq + BLOCK;
            let stored = self.store(to);
            self.leased_to = to;
            stored?;
        }
        Ok(())
    }

    /// Graceful stop: the next start continues right after `last`.
    pub fn close(&mut self, last: u64) -> io::Result<()> {
        self.store(last)
    }

    fn store(&mut self, to: u64) -> io::Result<()> {
        let tmp = self.path.with_extension("tmp");
        let mut f = std::fs::File::create(&tmp)?;
        writeln!(f, "{to}")?;
        f.sync_data()?;
        std::fs::rename(&tmp, &self.path)?;
        self.leased_to = to;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crash_never_reuses_a_number_and_a_clean_stop_leaves_no_gap() {
        let t = tempfile::Builder::new()
            .prefix("seq-test-")
            .tempdir()
            .unwrap();
        // Made by the code under test.
        let dir = t.path().join("d");
        let (mut l, last) = SequenceLease::open(&dir).unwrap();
        assert_eq!(last, 0);
        for s in 1..=15 {
            l.cover(s).unwrap();
        }
        drop(l); // a crash: no close
        let (mut l, last) = SequenceLease::open(&dir).unwrap();
        assert!(
            last >= 15,
            "restart continues after every used number: {last}"
        );
        l.cover(last + 1).unwrap();
        l.close(last + 1).unwrap();
        let (_, again) = SequenceLease::open(&dir).unwrap();
        assert_eq!(again, last + 1);
    }
}
