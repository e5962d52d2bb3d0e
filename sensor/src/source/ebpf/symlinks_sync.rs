//! The daemon's half of `sensor_common::symlinks_sync`: how many of the
//! symlink records the kernel sent it has handled. Until it has, the
//! kernel sends every call with a path argument (a path through a
//! symlink to a magic link the daemon has not put in the path check yet
//! hashes as no watched path), so the count is written right after each
//! one, once its links are in the kernel's maps.

use aya::Ebpf;
use aya::maps::{Array, MapData};
use nix::time::{ClockId, clock_gettime};
use sensor_common::{names, symlinks_sync};

use super::decode::{KernelEvent, SysOp};
use super::{LoadError, take_map};

/// Is `ev` a record the kernel counted as a symlink sent: the watch
/// family's symlink and symlinkat, and io_uring's symlinkat, renameat and
/// linkat submissions (which the kernel sends whatever their paths)?
pub fn counted(ev: &KernelEvent) -> bool {
    use sensor_common::SyscallOp;
    match ev {
        KernelEvent::FileWrite(w) => matches!(w.op, SyscallOp::Symlink | SyscallOp::Symlinkat),
        KernelEvent::System(x) => {
            x.op == SysOp::IoUring && sensor_common::io_uring::names_links(x.args[0] as u8)
        }
        _ => false,
    }
}

pub struct SymlinksSync {
    map: Array<MapData, u64>,
    handled: u64,
}

impl SymlinksSync {
    pub fn new(ebpf: &mut Ebpf) -> Result<SymlinksSync, LoadError> {
        Ok(SymlinksSync {
            map: take_map(ebpf, names::SYMLINKS_SYNC_MAP)?,
            handled: 0,
        })
    }

    /// One more symlink record handled.
    pub fn handled_one(&mut self) -> Result<(), aya::maps::MapError> {
        self.handled += 1;
        self.map.set(symlinks_sync::HANDLED, self.handled, 0)
    }

    /// Catches up with the kernel's count where the last symlink it sent
    /// is older than `symlinks_sync::WINDOW_NS`: by then every record sent
    /// was handled, and one counted but never handled (the ring buffer
    /// full, a record undecodable) would otherwise have every later
    /// symlink hold the kernel for the whole window. The count is read
    /// before the time, which the kernel writes first.
    pub fn catch_up(&mut self) -> Result<(), aya::maps::MapError> {
        let sent = self.map.get(&symlinks_sync::SENT, 0)?;
        let last = self.map.get(&symlinks_sync::LAST_SENT_NS, 0)?;
        if sent == self.handled {
            return Ok(());
        }
        let Ok(now) = clock_gettime(ClockId::CLOCK_BOOTTIME) else {
            return Ok(());
        };
        let now = now.tv_sec() as u64 * 1_000_000_000 + now.tv_nsec() as u64;
        if now.saturating_sub(last) > symlinks_sync::WINDOW_NS {
            tracing::debug!(
                sent,
                handled = self.handled,
                "symlink records sent but never handled: caught up"
            );
            self.handled = sent;
            self.map.set(symlinks_sync::HANDLED, sent, 0)?;
        }
        Ok(())
    }
}
