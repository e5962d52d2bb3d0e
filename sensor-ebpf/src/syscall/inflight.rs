//! Per-thread records of what a syscall's entry saw, for its exit.
//!
//! Each family keeps them in a hash map keyed by thread. In the
//! preallocated maps of the frequent calls (file attributes with a short
//! path, network, credentials, opens for writing), a record is not
//! removed when its call ends: the exit marks it
//! [`CONSUMED`] and the thread's next entry overwrites it in place, because
//! a map update (an element from the free list, the old one given back)
//! plus a delete per call were half of an entry's time and a fifth of an
//! exit's (perf, chmod at 100k/s). Records go when their thread exits
//! (`syscall::thread_exited`, from sched_process_exit).

use aya_ebpf::maps::HashMap;

use crate::kernel::copy_struct;

/// `op` of a record whose call has ended (no `SyscallOp` has this value).
pub const CONSUMED: u32 = u32::MAX;

/// A record whose first field is its `op: u32`.
///
/// # Safety
/// The type is `repr(C)` and starts with a `u32` that is never
/// [`CONSUMED`] while its call is in flight.
pub unsafe trait Record {}

/// Stores `value` as thread `key`'s record: over the previous one in
/// place, or as a new entry. False if neither worked (the map is full).
#[inline(always)]
pub fn store<T: Record>(map: &HashMap<u64, T>, key: &u64, value: &T) -> bool {
    match map.get_ptr_mut(key) {
        // SAFETY: this thread's record, which no other thread touches (the
        // key is the thread), and `value` is a T.
        Some(slot) => unsafe { copy_struct(slot, value) },
        None => map.insert(key, value, 0).is_ok(),
    }
}

/// Thread `key`'s record, if its call is in flight.
#[inline(always)]
pub fn find<T: Record>(map: &HashMap<u64, T>, key: &u64) -> Option<*mut T> {
    let p = map.get_ptr_mut(key)?;
    // SAFETY: a live map value starting with its op (Record).
    let op = unsafe { core::ptr::read_volatile(p.cast::<u32>()) };
    (op != CONSUMED).then_some(p)
}

/// Ends the call of record `p` (from [`find`]).
#[inline(always)]
pub fn consume<T: Record>(p: *mut T) {
    // SAFETY: a live map value starting with its op (Record).
    unsafe { core::ptr::write_volatile(p.cast::<u32>(), CONSUMED) };
}
