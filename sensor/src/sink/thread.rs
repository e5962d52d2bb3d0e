//! The sink thread: serializing and writing events off the thread that
//! reads the kernel.
//!
//! Serializing an event and writing it (the JSON, the copy into the page
//! cache) costs more than decoding and enriching it. On one thread, the
//! two together came close to the time between events at 100k traced
//! syscalls/s, so any contention let the ring buffer fill. Here the daemon
//! hands finished events over in batches and the sink thread serializes
//! and writes them while the daemon reads on.
//!
//! Finished batches come back to the daemon's thread to be dropped there:
//! glibc's malloc is slow when one thread frees what another allocated
//! (each free takes the other arena's lock and the allocating thread's
//! cache runs dry), which cost more than the serializing saved.
//!
//! Order is kept (one channel, one consumer). A flush waits until the sink
//! thread has written everything handed over before it, so that after
//! [`SinkThread::flush`] returns the events are in the files, as they were
//! when everything ran on one thread. The channel is bounded: when the
//! sink thread falls behind, the daemon waits for it and the ring buffer,
//! whose overflow is counted, absorbs the difference.

use std::io;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use super::outputs::Outputs;
use crate::event::Event;

/// Events per hand-over: enough that the channel costs little per event,
/// few enough that written batches come back to be dropped while the
/// daemon is still allocating the next events. With 256, the drops came
/// in bursts that emptied malloc's per-thread cache and the daemon's
/// thread spent a fifth of its time in malloc.
const BATCH: usize = 32;
/// Batches in flight at most (2048 events).
const DEPTH: usize = 64;

enum Msg {
    Events(Vec<Event>),
    /// Write out everything before this, then answer.
    Flush,
    Reopen,
}

pub(super) struct SinkThread {
    pending: Vec<Event>,
    tx: Option<SyncSender<Msg>>,
    acks: Receiver<io::Result<()>>,
    /// Written batches, to drop here (see the module doc); emptied, they
    /// are reused for the next ones.
    done: Receiver<Vec<Event>>,
    handle: Option<JoinHandle<()>>,
}

impl SinkThread {
    pub fn start(outputs: Outputs) -> io::Result<SinkThread> {
        let (tx, rx) = sync_channel(DEPTH);
        let (ack_tx, acks) = sync_channel(1);
        // Never full: at most DEPTH batches plus the one being written
        // are out at a time.
        let (done_tx, done) = sync_channel(DEPTH + 2);
        let handle = std::thread::Builder::new()
            .name("sensor-sinks".into())
            .spawn(move || run(outputs, rx, ack_tx, done_tx))?;
        Ok(SinkThread {
            pending: Vec::with_capacity(BATCH),
            tx: Some(tx),
            acks,
            done,
            handle: Some(handle),
        })
    }

    pub fn emit(&mut self, event: Event) -> io::Result<()> {
        self.pending.push(event);
        if self.pending.len() >= BATCH {
            self.hand_over()?;
        }
        Ok(())
    }

    /// Returns once every event emitted so far is written, with the first
    /// write error since the last flush, if any.
    pub fn flush(&mut self) -> io::Result<()> {
        self.hand_over()?;
        self.send(Msg::Flush)?;
        let result = self.acks.recv().map_err(|_| stopped())?;
        // Everything handed over is written: drop it now rather than
        // holding it until the next batch.
        while let Ok(written) = self.done.try_recv() {
            drop(written);
        }
        result
    }

    pub fn reopen(&mut self) -> io::Result<()> {
        self.send(Msg::Reopen)
    }

    /// Writes out what is pending and waits for the thread to end.
    pub fn stop(&mut self) -> io::Result<()> {
        let flushed = self.flush();
        self.tx = None;
        if let Some(h) = self.handle.take() {
            h.join().map_err(|_| stopped())?;
        }
        flushed
    }

    fn hand_over(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut next = None;
        while let Ok(mut written) = self.done.try_recv() {
            written.clear();
            next = Some(written);
        }
        let next = next.unwrap_or_else(|| Vec::with_capacity(BATCH));
        let batch = std::mem::replace(&mut self.pending, next);
        self.send(Msg::Events(batch))
    }

    fn send(&self, msg: Msg) -> io::Result<()> {
        let tx = self.tx.as_ref().ok_or_else(stopped)?;
        tx.send(msg).map_err(|_| stopped())
    }
}

impl Drop for SinkThread {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

fn stopped() -> io::Error {
    io::Error::other("the sink thread stopped")
}

fn run(
    mut outputs: Outputs,
    rx: Receiver<Msg>,
    acks: SyncSender<io::Result<()>>,
    done: SyncSender<Vec<Event>>,
) {
    let mut failed: Option<io::Error> = None;
    while let Ok(msg) = rx.recv() {
        match msg {
            Msg::Events(batch) => {
                for event in &batch {
                    if failed.is_none() {
                        failed = outputs.emit(event).err();
                    }
                }
                // Never blocks (see its capacity); dropped here only if
                // the daemon is gone.
                let _ = done.try_send(batch);
            }
            Msg::Flush => {
                let result = match failed.take() {
                    Some(e) => Err(e),
                    None => outputs.flush(),
                };
                if acks.send(result).is_err() {
                    break;
                }
            }
            Msg::Reopen => outputs.reopen(),
        }
    }
    let _ = outputs.flush();
}
