//! A sink's on-disk spool: a write-ahead log of encoded records that the
//! sink's task sends from and acknowledges, so that events survive a
//! collector outage and a sensor crash (at-least-once delivery).
//!
//! Layout: `<dir>/<id:020>.seg` append-only segment files, and `<dir>/acked`
//! holding the position up to which records were delivered. Each record is
//! `len: u32 LE | crc32(seq ‖ payload): u32 LE | seq: u64 LE | payload`; a
//! record cut short by a crash, or whose checksum does not match, ends its
//! segment: the tail is truncated when the spool is opened.
//!
//! Durability policy: records are handed to the kernel (`write`) after every
//! batch, so a killed sensor loses nothing that reached the spool; segment
//! and ack files are `fsync`ed at most every [`SYNC_EVERY`] and at shutdown,
//! so a power loss can lose up to that long of spooled records. The ack
//! file is replaced atomically (write, rename); it can lag behind delivery,
//! which means records sent again after a restart, never records skipped.
//!
//! Hand-written rather than a crate: the disk buffers of the Rust ecosystem
//! live inside larger frameworks (vector), and what is needed here is small.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::config::sinks::WhenFull;

const HEADER: u64 = 16;

/// A spooled record: its sequence number and payload.
pub type Record = (u64, Vec<u8>);
/// The largest record accepted; a longer length in a file means corruption.
const MAX_RECORD: u32 = 16 << 20;
pub const SYNC_EVERY: Duration = Duration::from_secs(1);

/// A position in the spool: the next record is at `offset` of segment `id`,
/// and is its `index`-th record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub segment: u64,
    pub offset: u64,
    pub index: u64,
}

#[derive(Debug)]
struct Segment {
    id: u64,
    bytes: u64,
    records: u64,
}

pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    segment_bytes: u64,
    when_full: WhenFull,
    segments: VecDeque<Segment>,
    writer: Option<BufWriter<File>>,
    reader: Option<(u64, BufReader<File>, u64)>,
    /// Next record to send.
    sent: Cursor,
    /// Everything before this was delivered.
    acked: Cursor,
    acked_seq: u64,
    persisted_ack: Cursor,
    last_seq: u64,
    total_bytes: u64,
    /// Records that never made it out: refused or deleted when full.
    pub dropped: u64,
    /// Records found corrupt (torn tail after a crash) when opening.
    pub corrupt: u64,
    /// Records deleted (spool full) after they were sent but before they
    /// were acknowledged.
    unconfirmed: u64,
    last_sync: Instant,
    dirty: bool,
}

fn seg_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.seg"))
}

impl Spool {
    pub fn open(dir: &Path, max_bytes: u64, when_full: WhenFull) -> io::Result<Spool> {
        // Events are sensitive: only root reads the spool.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let mut ids: Vec<u64> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str()?.strip_suffix(".seg")?.parse().ok())
            .collect();
        ids.sort_unstable();
        let (acked, acked_seq) = read_ack(dir).unwrap_or((
            Cursor {
                segment: 0,
                offset: 0,
                index: 0,
            },
            0,
        ));
        let mut spool = Spool {
            dir: dir.to_owned(),
            max_bytes,
            // Small enough that dropping the oldest segment frees little.
            segment_bytes: (max_bytes / 16).clamp(1 << 16, 64 << 20),
            when_full,
            segments: VecDeque::new(),
            writer: None,
            reader: None,
            sent: acked,
            acked,
            acked_seq,
            persisted_ack: acked,
            last_seq: acked_seq,
            total_bytes: 0,
            dropped: 0,
            corrupt: 0,
            unconfirmed: 0,
            last_sync: Instant::now(),
            dirty: false,
        };
        for id in ids {
            let path = seg_path(dir, id);
            if id < acked.segment {
                std::fs::remove_file(&path)?;
                continue;
            }
            let (bytes, records, last_seq, corrupt) = scan(&path)?;
            if corrupt {
                tracing::warn!(path = %path.display(), valid_bytes = bytes, "spool segment has a torn or corrupt tail (crash?); truncated");
                spool.corrupt += 1;
                OpenOptions::new().write(true).open(&path)?.set_len(bytes)?;
            }
            spool.last_seq = spool.last_seq.max(last_seq);
            spool.total_bytes += bytes;
            spool.segments.push_back(Segment { id, bytes, records });
        }
        if spool.segments.front().is_some_and(|s| s.id > acked.segment) || spool.segments.is_empty()
        {
            let first = spool.segments.front().map_or(acked.segment, |s| s.id);
            spool.acked = Cursor {
                segment: first,
                offset: 0,
                index: 0,
            };
            spool.sent = spool.acked;
        }
        Ok(spool)
    }

    /// Highest sequence number that reached this spool (delivered or not).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    pub fn bytes(&self) -> u64 {
        self.total_bytes
    }

    /// Records not yet delivered.
    pub fn pending(&self) -> u64 {
        let mut n = 0;
        for s in &self.segments {
            if s.id > self.acked.segment {
                n += s.records;
            } else if s.id == self.acked.segment {
                n += s.records.saturating_sub(self.acked.index);
            }
        }
        n
    }

    /// Whether there are records not sent yet.
    pub fn has_unsent(&self) -> bool {
        self.segments.iter().any(|s| {
            s.id > self.sent.segment || (s.id == self.sent.segment && s.records > self.sent.index)
        })
    }

    /// Appends one record; false if it was dropped (spool full, `drop_newest`).
    pub fn append(&mut self, seq: u64, payload: &[u8]) -> io::Result<bool> {
        let len = HEADER + payload.len() as u64;
        while self.total_bytes + len > self.max_bytes {
            match self.when_full {
                WhenFull::DropNewest => {
                    self.dropped += 1;
                    return Ok(false);
                }
                WhenFull::DropOldest => {
                    if self.segments.len() <= 1 {
                        // Only the segment being written: start a new one so
                        // the old one can go.
                        if self.segments.front().is_some_and(|s| s.records > 0) {
                            self.roll()?;
                            continue;
                        }
                        self.dropped += 1;
                        return Ok(false);
                    }
                    self.drop_oldest()?;
                }
            }
        }
        let needs_new = match self.segments.back() {
            None => true,
            Some(s) => s.bytes > 0 && s.bytes + len > self.segment_bytes,
        };
        if needs_new || self.writer.is_none() {
            if needs_new {
                self.roll()?;
            } else {
                let id = self.segments.back().map(|s| s.id).unwrap_or(0);
                let f = OpenOptions::new()
                    .append(true)
                    .open(seg_path(&self.dir, id))?;
                self.writer = Some(BufWriter::with_capacity(256 << 10, f));
            }
        }
        let w = self.writer.as_mut().expect("writer opened above");
        let mut crc = crc32fast::Hasher::new();
        crc.update(&seq.to_le_bytes());
        crc.update(payload);
        w.write_all(&(payload.len() as u32).to_le_bytes())?;
        w.write_all(&crc.finalize().to_le_bytes())?;
        w.write_all(&seq.to_le_bytes())?;
        w.write_all(payload)?;
        let s = self.segments.back_mut().expect("a segment exists");
        s.bytes += len;
        s.records += 1;
        self.total_bytes += len;
        self.last_seq = self.last_seq.max(seq);
        self.dirty = true;
        Ok(true)
    }

    fn roll(&mut self) -> io::Result<()> {
        if let Some(mut w) = self.writer.take() {
            w.flush()?;
            w.get_ref().sync_data()?;
        }
        let id = self
            .segments
            .back()
            .map_or(self.acked.segment, |s| s.id + 1);
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(seg_path(&self.dir, id))?;
        self.writer = Some(BufWriter::with_capacity(256 << 10, f));
        self.segments.push_back(Segment {
            id,
            bytes: 0,
            records: 0,
        });
        Ok(())
    }

    fn drop_oldest(&mut self) -> io::Result<()> {
        let Some(old) = self.segments.pop_front() else {
            return Ok(());
        };
        // Records already sent (waiting out the replay window) are not
        // counted as dropped: only a failure of their connection would have
        // sent them again.
        let unsent = match old.id.cmp(&self.sent.segment) {
            std::cmp::Ordering::Less => 0,
            std::cmp::Ordering::Equal => old.records.saturating_sub(self.sent.index),
            std::cmp::Ordering::Greater => old.records,
        };
        let acked_before = match old.id.cmp(&self.acked.segment) {
            std::cmp::Ordering::Less => old.records,
            std::cmp::Ordering::Equal => self.acked.index.min(old.records),
            std::cmp::Ordering::Greater => 0,
        };
        // Sent but not yet acknowledged: lost only if their connection
        // fails before a later record is acknowledged (see `rewind`).
        let sent = old.records - unsent;
        self.unconfirmed += sent - acked_before.min(sent);
        let undelivered = unsent;
        self.dropped += undelivered;
        self.total_bytes -= old.bytes;
        if self.reader.as_ref().is_some_and(|r| r.0 == old.id) {
            self.reader = None;
        }
        std::fs::remove_file(seg_path(&self.dir, old.id))?;
        let next = self.segments.front().map_or(old.id + 1, |s| s.id);
        let start = Cursor {
            segment: next,
            offset: 0,
            index: 0,
        };
        if self.acked.segment <= old.id {
            self.acked = start;
        }
        if self.sent.segment <= old.id {
            self.sent = start;
        }
        tracing::warn!(dir = %self.dir.display(), undelivered, "spool full: oldest segment dropped");
        Ok(())
    }

    /// Hands written records to the kernel: they survive the sensor being
    /// killed, and the reader sees them.
    pub fn flush(&mut self) -> io::Result<()> {
        if let Some(w) = self.writer.as_mut() {
            w.flush()?;
        }
        Ok(())
    }

    /// Reads unsent records (up to about `max_bytes` or `max_records`) and
    /// moves the send cursor past them. Returns them with the cursor after.
    pub fn next_batch(
        &mut self,
        max_bytes: usize,
        max_records: usize,
    ) -> io::Result<(Vec<Record>, Cursor)> {
        self.flush()?;
        let mut out = Vec::new();
        let mut size = 0usize;
        while size < max_bytes && out.len() < max_records {
            let Some(seg) = self.segments.iter().find(|s| s.id >= self.sent.segment) else {
                break;
            };
            let (seg_id, seg_records) = (seg.id, seg.records);
            if seg_id > self.sent.segment {
                self.sent = Cursor {
                    segment: seg_id,
                    offset: 0,
                    index: 0,
                };
            }
            if self.sent.index >= seg_records {
                let is_last = self.segments.back().is_some_and(|s| s.id == seg_id);
                if is_last {
                    break;
                }
                self.sent = Cursor {
                    segment: seg_id + 1,
                    offset: 0,
                    index: 0,
                };
                continue;
            }
            let reader = match &mut self.reader {
                Some((id, r, pos)) if *id == seg_id && *pos == self.sent.offset => r,
                _ => {
                    let mut f = File::open(seg_path(&self.dir, seg_id))?;
                    f.seek(SeekFrom::Start(self.sent.offset))?;
                    self.reader = Some((
                        seg_id,
                        BufReader::with_capacity(256 << 10, f),
                        self.sent.offset,
                    ));
                    &mut self.reader.as_mut().expect("just set").1
                }
            };
            let (seq, payload) = read_record(reader)?.ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    "spool record missing or corrupt",
                )
            })?;
            let len = HEADER + payload.len() as u64;
            self.sent.offset += len;
            self.sent.index += 1;
            if let Some(r) = self.reader.as_mut() {
                r.2 = self.sent.offset;
            }
            size += payload.len();
            out.push((seq, payload));
        }
        Ok((out, self.sent))
    }

    /// The send cursor, to be acknowledged later.
    pub fn sent(&self) -> Cursor {
        self.sent
    }

    /// Everything before `to` was delivered; `seq` is the last record's.
    pub fn ack(&mut self, to: Cursor, seq: u64) -> io::Result<()> {
        if (to.segment, to.offset) <= (self.acked.segment, self.acked.offset) {
            return Ok(());
        }
        self.acked = to;
        self.acked_seq = seq;
        // A later record was acknowledged: the older, deleted ones were too.
        self.unconfirmed = 0;
        // Delete segments wholly delivered, except the one being written.
        while self.segments.len() > 1 && self.segments.front().is_some_and(|s| s.id < to.segment) {
            let old = self.segments.pop_front().expect("checked");
            self.total_bytes -= old.bytes;
            if self.reader.as_ref().is_some_and(|r| r.0 == old.id) {
                self.reader = None;
            }
            std::fs::remove_file(seg_path(&self.dir, old.id))?;
        }
        Ok(())
    }

    /// Sends start again at the last acknowledged record (after a failure).
    pub fn rewind(&mut self) {
        // Deleted records whose delivery the failed connection leaves in
        // doubt cannot be sent again: count them as dropped.
        self.dropped += std::mem::take(&mut self.unconfirmed);
        if self.sent != self.acked {
            self.sent = self.acked;
            self.reader = None;
        }
    }

    /// Persists the ack position and fsyncs, at most every [`SYNC_EVERY`]
    /// unless `now` is set (shutdown).
    pub fn sync(&mut self, force: bool) -> io::Result<()> {
        if !force && self.last_sync.elapsed() < SYNC_EVERY {
            return Ok(());
        }
        self.last_sync = Instant::now();
        if self.dirty {
            self.flush()?;
            if let Some(w) = &self.writer {
                w.get_ref().sync_data()?;
            }
            self.dirty = false;
        }
        if self.persisted_ack != self.acked {
            write_ack(&self.dir, self.acked, self.acked_seq)?;
            self.persisted_ack = self.acked;
        }
        Ok(())
    }
}

/// Validates a segment: (valid bytes, records, last seq, had a bad tail).
fn scan(path: &Path) -> io::Result<(u64, u64, u64, bool)> {
    let file_len = std::fs::metadata(path)?.len();
    let mut r = BufReader::with_capacity(256 << 10, File::open(path)?);
    let (mut bytes, mut records, mut last) = (0u64, 0u64, 0u64);
    // A torn or corrupt record ends the valid part.
    while let Ok(Some((seq, payload))) = read_record(&mut r) {
        bytes += HEADER + payload.len() as u64;
        records += 1;
        last = seq;
    }
    Ok((bytes, records, last, bytes != file_len))
}

/// One record, or None at a clean end of file; a torn or corrupt record
/// is an error.
fn read_record(r: &mut impl Read) -> io::Result<Option<(u64, Vec<u8>)>> {
    let mut head = [0u8; HEADER as usize];
    let mut got = 0;
    while got < head.len() {
        match r.read(&mut head[got..])? {
            0 if got == 0 => return Ok(None),
            0 => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "torn record header",
                ));
            }
            n => got += n,
        }
    }
    let len = u32::from_le_bytes(head[0..4].try_into().expect("4 bytes"));
    let crc = u32::from_le_bytes(head[4..8].try_into().expect("4 bytes"));
    let seq = u64::from_le_bytes(head[8..16].try_into().expect("8 bytes"));
    if len > MAX_RECORD {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "record length out of range",
        ));
    }
    let mut payload = vec![0u8; len as usize];
    r.read_exact(&mut payload)?;
    let mut h = crc32fast::Hasher::new();
    h.update(&seq.to_le_bytes());
    h.update(&payload);
    if h.finalize() != crc {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "record checksum mismatch",
        ));
    }
    Ok(Some((seq, payload)))
}

fn read_ack(dir: &Path) -> Option<(Cursor, u64)> {
    let text = std::fs::read_to_string(dir.join("acked")).ok()?;
    let mut it = text.split_whitespace().map(|w| w.parse::<u64>().ok());
    let c = Cursor {
        segment: it.next()??,
        offset: it.next()??,
        index: it.next()??,
    };
    Some((c, it.next()??))
}

fn write_ack(dir: &Path, c: Cursor, seq: u64) -> io::Result<()> {
    let tmp = dir.join("acked.tmp");
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    writeln!(f, "{} {} {} {}", c.segment, c.offset, c.index, seq)?;
    f.sync_data()?;
    std::fs::rename(&tmp, dir.join("acked"))
}

/// Whether `dir` holds a spool from an earlier run.
pub fn exists(dir: &Path) -> bool {
    dir.join("acked").exists()
        || std::fs::read_dir(dir).is_ok_and(|mut d| {
            d.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".seg")))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory for the spool (which makes it), removed with the guard.
    fn tmp(name: &str) -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix(&format!("spool-test-{name}-"))
            .tempdir()
            .unwrap()
    }

    fn drain(s: &mut Spool) -> Vec<u64> {
        let mut seqs = Vec::new();
        loop {
            let (batch, cur) = s.next_batch(1000, usize::MAX).unwrap();
            if batch.is_empty() {
                return seqs;
            }
            let last = batch.last().unwrap().0;
            seqs.extend(batch.iter().map(|r| r.0));
            s.ack(cur, last).unwrap();
        }
    }

    #[test]
    fn records_come_back_in_order_and_acked_ones_not_again_after_reopen() {
        let t = tmp("order");
        let d = t.path().join("spool");
        let mut s = Spool::open(&d, 1 << 20, WhenFull::DropNewest).unwrap();
        for i in 1..=100 {
            assert!(s.append(i, format!("record {i}").as_bytes()).unwrap());
        }
        let (batch, cur) = s.next_batch(200, usize::MAX).unwrap();
        assert_eq!(batch[0], (1, b"record 1".to_vec()));
        let last = batch.last().unwrap().0;
        s.ack(cur, last).unwrap();
        s.sync(true).unwrap();
        drop(s);
        let mut s = Spool::open(&d, 1 << 20, WhenFull::DropNewest).unwrap();
        assert_eq!(s.last_seq(), 100);
        assert_eq!(s.pending(), 100 - last);
        assert_eq!(drain(&mut s), ((last + 1)..=100).collect::<Vec<_>>());
    }

    #[test]
    fn rewind_sends_unacked_records_again() {
        let t = tmp("rewind");
        let d = t.path().join("spool");
        let mut s = Spool::open(&d, 1 << 20, WhenFull::DropNewest).unwrap();
        for i in 1..=10 {
            s.append(i, b"x").unwrap();
        }
        let (b1, _) = s.next_batch(3, usize::MAX).unwrap();
        assert_eq!(b1.len(), 3);
        s.rewind();
        assert_eq!(drain(&mut s), (1..=10).collect::<Vec<_>>());
    }

    #[test]
    fn a_torn_tail_is_truncated_and_earlier_records_survive() {
        let t = tmp("torn");
        let d = t.path().join("spool");
        let mut s = Spool::open(&d, 1 << 20, WhenFull::DropNewest).unwrap();
        for i in 1..=5 {
            s.append(i, b"payload").unwrap();
        }
        s.flush().unwrap();
        drop(s);
        let seg = seg_path(&d, 0);
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(&[20, 0, 0, 0, 1, 2]).unwrap();
        drop(f);
        let mut s = Spool::open(&d, 1 << 20, WhenFull::DropNewest).unwrap();
        assert_eq!(s.corrupt, 1);
        s.append(6, b"after").unwrap();
        assert_eq!(drain(&mut s), vec![1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn records_deleted_while_unacknowledged_count_as_dropped_if_their_connection_fails() {
        let t = tmp("unconfirmed");
        let d = t.path().join("spool");
        let mut s = Spool::open(&d, 1 << 16, WhenFull::DropOldest).unwrap();
        let payload = vec![b'x'; 1000];
        for i in 1..=40 {
            s.append(i, &payload).unwrap();
        }
        // Sent, not acknowledged (replay window), then the spool overflows.
        let (sent, _) = s.next_batch(usize::MAX, usize::MAX).unwrap();
        assert_eq!(sent.len(), 40);
        for i in 41..=200 {
            s.append(i, &payload).unwrap();
        }
        let deleted_unsent = s.dropped;
        s.rewind();
        assert!(
            s.dropped > deleted_unsent,
            "the sent but unconfirmed deleted records are now counted"
        );
        let got = drain(&mut s);
        assert_eq!(
            s.dropped + got.len() as u64,
            200,
            "every record delivered or counted"
        );
    }

    #[test]
    fn full_spool_drops_by_policy_and_counts() {
        let t = tmp("newest");
        let d = t.path().join("spool");
        let mut s = Spool::open(&d, 1 << 16, WhenFull::DropNewest).unwrap();
        let payload = vec![b'x'; 1000];
        let mut accepted = 0;
        for i in 1..=200 {
            accepted += u64::from(s.append(i, &payload).unwrap());
        }
        assert!(accepted < 200 && accepted > 0);
        assert_eq!(s.dropped, 200 - accepted);
        assert_eq!(drain(&mut s), (1..=accepted).collect::<Vec<_>>());

        let t = tmp("oldest");
        let d = t.path().join("spool");
        let mut s = Spool::open(&d, 1 << 16, WhenFull::DropOldest).unwrap();
        for i in 1..=200 {
            assert!(s.append(i, &payload).unwrap());
        }
        assert!(s.bytes() <= 1 << 16);
        let got = drain(&mut s);
        assert_eq!(*got.last().unwrap(), 200, "newest kept");
        assert_eq!(
            s.dropped + got.len() as u64,
            200,
            "every record delivered or counted"
        );
    }
}
