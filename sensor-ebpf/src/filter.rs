//! Kernel-side filters, configured by the daemon through maps: what they
//! match is dropped at the syscall's entry and never reaches userspace.
//! Each map is only consulted when the daemon put entries in it (the
//! `filters` bits of CONFIG), so an unused filter costs nothing.

use aya_ebpf::helpers::{bpf_get_current_cgroup_id, bpf_get_current_uid_gid};
use aya_ebpf::macros::map;
use aya_ebpf::maps::{Array, HashMap};
use sensor_common::{
    ExeKey, IGNORE_PREFIX_CAP, IGNORE_PREFIXES_MAX, InodeGeneration, PathPrefix, filter_flags,
};

use crate::kernel::{read_ptr, read_u32, read_u64};
use crate::maps::{DATA_MASK, filters, off};
use crate::task::Current;

#[map]
static IGNORE_UIDS: HashMap<u32, u8> = HashMap::with_max_entries(1024, 0);

#[map]
static IGNORE_CGROUPS: HashMap<u64, u8> = HashMap::with_max_entries(1024, 0);

/// By inode; the value's generation, where known, must match too (see
/// [`InodeGeneration`]).
#[map]
static IGNORE_EXES: HashMap<ExeKey, InodeGeneration> = HashMap::with_max_entries(1024, 0);

#[map]
static IGNORE_PREFIXES: Array<PathPrefix> = Array::with_max_entries(IGNORE_PREFIXES_MAX, 0);

/// The prefixes that name directories, as a walked path below one ends
/// (see `sensor_common::names::IGNORE_DIRS_WALKED_MAP`). Packed like
/// `IGNORE_PREFIXES`.
#[map]
static IGNORE_DIRS_WALKED: Array<PathPrefix> = Array::with_max_entries(IGNORE_PREFIXES_MAX, 0);

/// Is the current task (`current`) ignored by uid, cgroup or executable?
#[inline(always)]
pub fn task_ignored(current: Current) -> bool {
    let f = filters();
    if f == 0 {
        return false;
    }
    // SAFETY: the helpers have no preconditions.
    if f & filter_flags::UIDS != 0 {
        let uid = bpf_get_current_uid_gid() as u32;
        // SAFETY: a lookup; the value is not kept.
        if unsafe { IGNORE_UIDS.get(&uid) }.is_some() {
            return true;
        }
    }
    if f & filter_flags::CGROUPS != 0 {
        // SAFETY: the helper has no preconditions.
        let id = unsafe { bpf_get_current_cgroup_id() };
        // SAFETY: as above.
        if unsafe { IGNORE_CGROUPS.get(&id) }.is_some() {
            return true;
        }
    }
    if f & filter_flags::EXECUTABLES != 0 {
        let inode = read_ptr(current.addr(), off!(task_mm))
            .and_then(|mm| read_ptr(mm, off!(mm_exe_file)))
            .and_then(|file| read_ptr(file, off!(file_inode)));
        if let Ok(inode) = inode {
            let ino = read_u64(inode, off!(inode_ino)).unwrap_or(0);
            let dev = read_ptr(inode, off!(inode_sb))
                .and_then(|sb| read_u32(sb, off!(sb_dev)))
                .unwrap_or(0);
            let key = ExeKey { ino, dev, _pad0: 0 };
            // SAFETY: as above.
            if let Some(want) = unsafe { IGNORE_EXES.get(&key) } {
                // A generation unread is not the one ignored.
                let same = want.known == 0
                    || read_u32(inode, off!(inode_generation)) == Ok(want.generation);
                if same {
                    return true;
                }
            }
        }
    }
    false
}

/// Does the path argument `path[..len]` start with an ignored prefix?
/// Only absolute arguments can match (prefixes are absolute).
#[inline(always)]
pub fn path_ignored<const N: usize>(path: &[u8; N], len: u32) -> bool {
    filters() & filter_flags::PATH_PREFIXES != 0
        && starts_with_any(&IGNORE_PREFIXES, IGNORE_PREFIXES_MAX, path, len)
}

/// Is the walked path at `data[at..at + len]` (components leaf first,
/// each ending in NUL: `crate::path`) below an ignored directory? That is
/// where the walk ends with the directory's own walked form, right after
/// the end of a component: `f\0x\0tmp\0` is below `x\0tmp\0`
/// (`/tmp/x/`), `fx\0tmp\0` is not. Matched at the end, so the path need
/// not be turned around first, which the kernel side cannot afford.
///
/// `data` is a scratch slot's data area: every read is masked into it.
#[inline(always)]
pub fn walked_path_ignored(data: *const u8, at: usize, len: usize) -> bool {
    if filters() & filter_flags::WALKED_DIRS == 0 {
        return false;
    }
    for i in 0..IGNORE_PREFIXES_MAX {
        let Some(dir) = IGNORE_DIRS_WALKED.get(i) else {
            return false;
        };
        let n = dir.len as usize;
        if n == 0 || n > IGNORE_PREFIX_CAP {
            return false;
        }
        // At least one component below the directory, then the directory.
        if n >= len {
            continue;
        }
        let start = at + len - n;
        // SAFETY: masked into the data area (see `crate::maps::DATA_MASK`).
        if unsafe { *data.add((start - 1) & DATA_MASK) } != 0 {
            continue;
        }
        // Eight bytes at a time, unrolled: a loop over the bytes, whatever
        // its shape, is one whose bound 5.10's and 6.1's verifiers lose
        // (LLVM walks a pointer through the entry), or explore at length.
        let mut diff = 0u64;
        for from in (0..IGNORE_PREFIX_CAP).step_by(8) {
            if from >= n {
                break;
            }
            let left = n - from;
            // Little-endian: the word's first `left` bytes are its low ones.
            let mask = if left >= 8 {
                u64::MAX
            } else {
                (1u64 << (left * 8)) - 1
            };
            // SAFETY: eight bytes from a masked position of the data area,
            // inside the scratch value (see `crate::maps::DATA_MASK`); and
            // eight of the entry's bytes, `from` + 8 <= IGNORE_PREFIX_CAP.
            let (walked, entry) = unsafe {
                (
                    core::ptr::read_unaligned(data.add((start + from) & DATA_MASK).cast::<u64>()),
                    core::ptr::read_unaligned(dir.bytes.as_ptr().add(from).cast::<u64>()),
                )
            };
            diff |= (walked ^ entry) & mask;
        }
        if diff == 0 {
            return true;
        }
    }
    false
}

/// Does `path[..len]` start with one of the first `max` entries of
/// `prefixes`? Entries are packed: the first unused one (len 0) ends them.
#[inline(always)]
fn starts_with_any<const N: usize>(
    prefixes: &Array<PathPrefix>,
    max: u32,
    path: &[u8; N],
    len: u32,
) -> bool {
    // No bounds check on path[j] below, whose loop 5.10's verifier follows
    // only in the shape it has: j < IGNORE_PREFIX_CAP <= N.
    const { assert!(N >= IGNORE_PREFIX_CAP) };
    for i in 0..max {
        let Some(prefix) = prefixes.get(i) else {
            return false;
        };
        let n = prefix.len as usize;
        if n == 0 || n > IGNORE_PREFIX_CAP {
            return false;
        }
        if n as u32 > len {
            continue;
        }
        let mut same = true;
        for j in 0..IGNORE_PREFIX_CAP {
            if j >= n {
                break;
            }
            if path[j] != prefix.bytes[j] {
                same = false;
                break;
            }
        }
        if same {
            return true;
        }
    }
    false
}
