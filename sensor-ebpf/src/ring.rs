//! Writing fixed-size records into the ring buffer.

use aya_ebpf::helpers::bpf_ktime_get_boot_ns;
use sensor_common::{EventHeader, EventKind};

use crate::maps::{EVENTS, count_loss};

/// Reserves a `T` in the ring buffer, writes its header, lets `fill` write
/// the rest, and submits it (or discards it if `fill` fails). A full ring
/// buffer is counted as a loss of `kind`, never waited on.
///
/// `T` must start with an [`EventHeader`] (every fixed-size record does).
#[inline(always)]
pub fn emit<T: 'static>(
    kind: EventKind,
    fill: impl FnOnce(*mut T) -> Result<(), i64>,
) -> Result<(), i64> {
    let Some(mut entry) = EVENTS.reserve::<T>(0) else {
        count_loss(kind);
        return Ok(());
    };
    let ev = entry.as_mut_ptr();
    let header = ev.cast::<EventHeader>();
    // SAFETY: ev is reserved ring-buffer space for one T, which starts with
    // an EventHeader; `fill` writes every other field before submit.
    let filled = unsafe {
        (*header).kind = kind as u32;
        (*header).size = core::mem::size_of::<T>() as u32;
        (*header).boot_ns = bpf_ktime_get_boot_ns();
        fill(ev)
    };
    match filled {
        Ok(()) => {
            entry.submit(0);
            Ok(())
        }
        Err(e) => {
            entry.discard(0);
            Err(e)
        }
    }
}

/// Sends `size` bytes assembled at `buf` (a variable-length record); a
/// full ring buffer is counted as a loss of `kind`. Whether it was sent.
///
/// # Safety
/// `buf..buf + size` must be readable (inside a map value).
#[inline(always)]
pub unsafe fn output(kind: EventKind, buf: *const u8, size: usize) -> bool {
    // SAFETY: the caller's contract.
    let record = unsafe { core::slice::from_raw_parts(buf, size) };
    if EVENTS.output::<[u8]>(record, 0).is_err() {
        count_loss(kind);
        return false;
    }
    true
}

/// Reserves a `T` in the ring buffer and writes its header; the caller
/// fills the rest and submits or discards. For code inlined into several
/// programs, where [`emit`]'s closure would be outlined into a BPF-to-BPF
/// call. A full ring buffer is counted as a loss of `kind`.
#[inline(always)]
pub fn reserve<T: 'static>(kind: EventKind) -> Option<aya_ebpf::maps::ring_buf::RingBufEntry<T>> {
    let Some(mut entry) = EVENTS.reserve::<T>(0) else {
        count_loss(kind);
        return None;
    };
    let header = entry.as_mut_ptr().cast::<EventHeader>();
    // SAFETY: reserved space for one T, which starts with an EventHeader.
    unsafe {
        (*header).kind = kind as u32;
        (*header).size = core::mem::size_of::<T>() as u32;
        (*header).boot_ns = bpf_ktime_get_boot_ns();
    }
    Some(entry)
}
