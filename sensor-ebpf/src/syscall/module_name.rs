//! The module a load or unload acted on, named as the kernel has it
//! (`struct module`'s `name`): for init_module from memory there is no
//! other name at all, and delete_module's argument is the caller's memory,
//! which a thread can rewrite after the kernel copied it.
//!
//! `module_load` fires in load_module once the module is formed (before
//! its init runs), `module_free` when it is freed (an unload, or a load
//! whose init failed), both in the calling thread. The parameters are not
//! taken from here: by `module_load`, parse_args has cut the kernel's copy
//! (`module.args`) into NUL-separated names and values in place, and `=`
//! and spaces can no longer be told apart (tried: `sensor_test=1` read
//! back as `sensor_test`). Each keeps the name by
//! thread for the syscall's exit (`sys.rs`), which takes it; the entry
//! clears what a call the sensor did not trace left behind.

use aya_ebpf::helpers::bpf_probe_read_kernel;
use aya_ebpf::macros::{map, raw_tracepoint};
use aya_ebpf::maps::LruHashMap;
use aya_ebpf::programs::RawTracePointContext;
use sensor_common::{MODULE_NAME_CAP, OFFSET_MISSING, ProbeError};

use crate::kernel::copy_struct;
use crate::maps::{count_error, off};
use crate::task::Current;

/// Names by thread, between the tracepoint and the syscall's exit. LRU
/// (preallocated: a raw tracepoint may not use a map allocated at run
/// time before 6.1): an entry whose exit never comes ages out.
#[map]
static MODULE_NAMES: LruHashMap<u64, [u8; MODULE_NAME_CAP]> = LruHashMap::with_max_entries(256, 0);

#[raw_tracepoint(tracepoint = "module_load")]
pub fn module_loaded(ctx: RawTracePointContext) -> u32 {
    remember(ctx.arg(0))
}

#[raw_tracepoint(tracepoint = "module_free")]
pub fn module_freed(ctx: RawTracePointContext) -> u32 {
    remember(ctx.arg(0))
}

/// Keeps `module`'s name for this thread's syscall exit.
#[inline(always)]
fn remember(module: u64) -> u32 {
    let at = off!(module_name);
    if at == OFFSET_MISSING {
        return 0;
    }
    // SAFETY: a probe read of the fixed-size array, which initialises
    // every byte of the value.
    match unsafe { bpf_probe_read_kernel((module + at as u64) as *const [u8; MODULE_NAME_CAP]) } {
        Ok(name) => {
            if MODULE_NAMES
                .insert(&Current::get().thread_key(), &name, 0)
                .is_err()
            {
                count_error(ProbeError::Inflight);
            }
        }
        Err(_) => count_error(ProbeError::ReadArg),
    }
    0
}

/// Forgets a name left by a call the sensor did not trace (at a module
/// syscall's entry, by thread `key`).
#[inline(always)]
pub(super) fn forget(key: &u64) {
    let _ = MODULE_NAMES.remove(key);
}

/// Moves the name kept for thread `key`, if any, into `out` (its whole
/// array, NUL-padded). Whether there was one.
#[inline(always)]
pub(super) fn take(key: &u64, out: *mut [u8; MODULE_NAME_CAP]) -> bool {
    // SAFETY: a lookup; the value is copied out before the remove.
    let found = match unsafe { MODULE_NAMES.get(key) } {
        // SAFETY: `out` is a map value's bytes (the caller's), `name` a
        // map value.
        Some(name) => unsafe { copy_struct(out, name) },
        None => false,
    };
    if found {
        let _ = MODULE_NAMES.remove(key);
    }
    found
}
