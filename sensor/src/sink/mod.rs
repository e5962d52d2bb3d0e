//! Sinks only see finished events and encode them. Today: JSON lines on
//! stdout; syslog, files and collectors come with the delivery work.

use std::io::{self, BufWriter, Write};

use crate::event::Event;

pub trait Sink {
    fn emit(&mut self, event: &Event) -> io::Result<()>;
    /// Called after each batch (one ring-buffer drain), not per event.
    fn flush(&mut self) -> io::Result<()>;
}

/// One ECS JSON object per line on stdout.
pub struct JsonLines<W: Write> {
    out: BufWriter<W>,
}

impl<W: Write> JsonLines<W> {
    pub fn new(w: W) -> Self {
        JsonLines { out: BufWriter::with_capacity(256 * 1024, w) }
    }
}

impl<W: Write> Sink for JsonLines<W> {
    fn emit(&mut self, event: &Event) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, event)?;
        self.out.write_all(b"\n")
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
