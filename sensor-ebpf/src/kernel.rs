//! Reading kernel memory at BTF-resolved offsets.
//!
//! Kernel addresses are carried as plain `u64`s: they are never
//! dereferenced directly, only passed to bpf_probe_read_kernel, which the
//! verifier allows for any address and which fails cleanly on a bad one.
//!
//! A read yields no value for one of two reasons, kept apart so that only
//! real failures are counted in ERRORS: the field is [`Miss::Absent`] (this
//! kernel lacks it, or the pointer leading to it is NULL, like a task
//! without a tty), or the read [`Miss::Fault`]ed.

use aya_ebpf::helpers::{bpf_probe_read_kernel, bpf_probe_read_kernel_buf};
use sensor_common::OFFSET_MISSING;

/// Why a read produced no value.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Miss {
    /// The running kernel lacks the field, or the base pointer is NULL: by
    /// design, the output keeps its "unset" value and nothing is counted.
    Absent,
    /// bpf_probe_read_kernel failed: the caller counts it.
    Fault,
}

impl From<Miss> for i64 {
    fn from(m: Miss) -> i64 {
        match m {
            Miss::Absent => -2, // -ENOENT
            Miss::Fault => -14, // -EFAULT
        }
    }
}

/// Address of a field, or Absent when the base is NULL or the running
/// kernel lacks the field.
#[inline(always)]
pub fn field(base: u64, off: u32) -> Result<u64, Miss> {
    if base == 0 || off == OFFSET_MISSING {
        Err(Miss::Absent)
    } else {
        Ok(base + off as u64)
    }
}

#[inline(always)]
pub fn read_u32(base: u64, off: u32) -> Result<u32, Miss> {
    let addr = field(base, off)?;
    // SAFETY: probe read of kernel memory; failure is an error value.
    unsafe { bpf_probe_read_kernel(addr as *const u32) }.map_err(|_| Miss::Fault)
}

#[inline(always)]
pub fn read_u8(base: u64, off: u32) -> Result<u8, Miss> {
    let addr = field(base, off)?;
    // SAFETY: as above.
    unsafe { bpf_probe_read_kernel(addr as *const u8) }.map_err(|_| Miss::Fault)
}

#[inline(always)]
pub fn read_u16(base: u64, off: u32) -> Result<u16, Miss> {
    let addr = field(base, off)?;
    // SAFETY: as above.
    unsafe { bpf_probe_read_kernel(addr as *const u16) }.map_err(|_| Miss::Fault)
}

#[inline(always)]
pub fn read_u64(base: u64, off: u32) -> Result<u64, Miss> {
    let addr = field(base, off)?;
    // SAFETY: as above.
    unsafe { bpf_probe_read_kernel(addr as *const u64) }.map_err(|_| Miss::Fault)
}

/// A pointer field: the address it holds (0 for NULL, which makes every
/// read through it Absent).
#[inline(always)]
pub fn read_ptr(base: u64, off: u32) -> Result<u64, Miss> {
    read_u64(base, off)
}

/// `a + b` for offsets (a field's offset plus a member's, or plus a
/// field's second half), OFFSET_MISSING when either is.
#[inline(always)]
pub fn plus(a: u32, b: u32) -> u32 {
    if a == OFFSET_MISSING || b == OFFSET_MISSING {
        OFFSET_MISSING
    } else {
        a + b
    }
}

/// How a chain of reads reaches kernel memory. Code that reads the same
/// fields either way is generic over it, and the daemon picks one at load
/// (`ProbeConfig::features`).
pub trait Reader {
    fn u32(base: u64, off: u32) -> Result<u32, Miss>;
    /// A u64 or pointer field.
    fn u64(base: u64, off: u32) -> Result<u64, Miss>;
    /// `N` u32 fields, all or none.
    fn u32s<const N: usize>(base: u64, offs: [u32; N]) -> Result<[u32; N], Miss>;
    /// Two u64 or pointer fields, both or neither.
    fn u64_pair(base: u64, a: u32, b: u32) -> Result<(u64, u64), Miss> {
        Ok((Self::u64(base, a)?, Self::u64(base, b)?))
    }
    /// Whether each read is a plain load (a few ns), not a helper call:
    /// where a probe read could take two fields at once, plain loads take
    /// them one by one (the verifier allows a load within one field only).
    const PLAIN_LOADS: bool;
    /// The first `8 * N` bytes of the byte-array field (a `char[]` at
    /// least that long) into `dst`, zeroed on a fault.
    ///
    /// # Safety
    /// `dst` must be 8-aligned and valid for writes of `8 * N` bytes.
    unsafe fn words<const N: usize>(base: u64, off: u32, dst: *mut u8) -> Result<(), Miss>;
    /// A NUL-terminated string in a `char[]` field of at least `8 * N`
    /// bytes, into `dst`: through its NUL (the rest of `dst` as it was)
    /// for [`Probe`], the array's first `8 * N` bytes for [`Direct`]
    /// (which cannot stop at the NUL). Either way the string is `dst` up
    /// to its first NUL, or all of `dst` if it has none.
    ///
    /// # Safety
    /// As for [`Reader::words`].
    unsafe fn str_words<const N: usize>(base: u64, off: u32, dst: *mut u8) -> Result<(), Miss>;
}

/// bpf_probe_read_kernel: any address, every kernel, ~25 ns per call
/// (a helper call plus the kernel's fault-tolerant copy).
pub struct Probe;

/// The most bytes apart two fields [`Reader::u64_pair`] reads at once can
/// start.
const PAIR_SPAN: u32 = 64;

impl Reader for Probe {
    const PLAIN_LOADS: bool = false;

    #[inline(always)]
    fn u32(base: u64, off: u32) -> Result<u32, Miss> {
        read_u32(base, off)
    }

    #[inline(always)]
    fn u64(base: u64, off: u32) -> Result<u64, Miss> {
        read_u64(base, off)
    }

    /// One read when the fields are adjacent (the layouts this is used for
    /// are, in every kernel; the offsets are checked all the same).
    #[inline(always)]
    fn u32s<const N: usize>(base: u64, offs: [u32; N]) -> Result<[u32; N], Miss> {
        let first = offs[0];
        let mut adjacent = first != OFFSET_MISSING;
        for (i, o) in offs.iter().enumerate() {
            adjacent &= *o == first.wrapping_add(4 * i as u32);
        }
        if adjacent {
            let addr = field(base, first)?;
            // SAFETY: probe read of 4 * N bytes; failure is an error value.
            return unsafe { bpf_probe_read_kernel(addr as *const [u32; N]) }
                .map_err(|_| Miss::Fault);
        }
        let mut v = [0; N];
        for (i, o) in offs.iter().enumerate() {
            v[i] = read_u32(base, *o)?;
        }
        Ok(v)
    }

    /// One read where both fields lie within [`PAIR_SPAN`] bytes, 8-aligned
    /// (a dentry's `d_parent` and `d_inode`, 24 bytes apart: a climb reads
    /// both at each directory). The offsets are the frozen OFFSETS'
    /// constants, so the verifier knows the read's length and where each
    /// field is in the buffer.
    #[inline(always)]
    fn u64_pair(base: u64, a: u32, b: u32) -> Result<(u64, u64), Miss> {
        let low = if a < b { a } else { b };
        let (at_a, at_b) = (a.wrapping_sub(low), b.wrapping_sub(low));
        let last = if at_a > at_b { at_a } else { at_b };
        if a == OFFSET_MISSING || b == OFFSET_MISSING || (a | b) & 7 != 0 || last >= PAIR_SPAN {
            return Ok((read_u64(base, a)?, read_u64(base, b)?));
        }
        let addr = field(base, low)?;
        let mut buf = core::mem::MaybeUninit::<[u64; PAIR_SPAN as usize / 8]>::uninit();
        // SAFETY: `last + 8` bytes into a buffer of PAIR_SPAN.
        let r = unsafe {
            aya_ebpf::helpers::generated::bpf_probe_read_kernel(
                buf.as_mut_ptr().cast(),
                last + 8,
                addr as *const _,
            )
        };
        if r < 0 {
            return Err(Miss::Fault);
        }
        let words = buf.as_ptr().cast::<u64>();
        // SAFETY: both words are within the `last + 8` bytes the read wrote.
        Ok(unsafe { (*words.add(at_a as usize / 8), *words.add(at_b as usize / 8)) })
    }

    #[inline(always)]
    unsafe fn words<const N: usize>(base: u64, off: u32, dst: *mut u8) -> Result<(), Miss> {
        let addr = field(base, off)?;
        // SAFETY: the caller's contract; the helper zeroes dst on a fault.
        let r = unsafe {
            aya_ebpf::helpers::generated::bpf_probe_read_kernel(
                dst.cast(),
                8 * N as u32,
                addr as *const _,
            )
        };
        if r < 0 { Err(Miss::Fault) } else { Ok(()) }
    }

    #[inline(always)]
    unsafe fn str_words<const N: usize>(base: u64, off: u32, dst: *mut u8) -> Result<(), Miss> {
        let addr = field(base, off)?;
        // SAFETY: the caller's contract.
        let r = unsafe {
            aya_ebpf::helpers::generated::bpf_probe_read_kernel_str(
                dst.cast(),
                8 * N as u32,
                addr as *const _,
            )
        };
        if r < 0 { Err(Miss::Fault) } else { Ok(()) }
    }
}

/// Plain loads through a pointer the verifier knows the BTF type of: the
/// task from bpf_get_current_task_btf (5.11+), and every pointer loaded
/// from it. The verifier checks each load against the kernel's types at
/// load time (so `base` must come from such a chain, and each load must
/// stay inside one field: no wider loads across two; an array of
/// integers counts as one field, so a `char[16]` can be loaded as two
/// u64s), and the JIT emits one
/// instruction with an exception-table entry, which reads 0 on a fault:
/// a few ns where a probe read costs ~25. (So a fault here is not counted
/// as a [`Miss::Fault`]: it reads as a 0. Through pointers the kernel
/// keeps valid while the task runs, none is expected.)
///
/// Offsets come from the frozen OFFSETS global, which the verifier reads
/// as constants: the field each load hits is known at load.
pub struct Direct;

impl Direct {
    #[inline(always)]
    fn load<T: Copy>(base: u64, off: u32) -> Result<T, Miss> {
        let addr = field(base, off)?;
        // SAFETY: a load through a BTF-typed pointer: the verifier checked it
        // against the field's type, and the JIT guards it against faults.
        // Volatile, so LLVM never widens or merges loads (the verifier
        // allows only loads within one field).
        Ok(unsafe { core::ptr::read_volatile(addr as *const T) })
    }
}

impl Reader for Direct {
    const PLAIN_LOADS: bool = true;

    #[inline(always)]
    fn u32(base: u64, off: u32) -> Result<u32, Miss> {
        Self::load(base, off)
    }

    #[inline(always)]
    fn u64(base: u64, off: u32) -> Result<u64, Miss> {
        Self::load(base, off)
    }

    #[inline(always)]
    fn u32s<const N: usize>(base: u64, offs: [u32; N]) -> Result<[u32; N], Miss> {
        let mut v = [0; N];
        for (i, o) in offs.iter().enumerate() {
            v[i] = Self::load(base, *o)?;
        }
        Ok(v)
    }

    /// `N` u64 loads where a probe read is a helper call: btf_struct_walk
    /// lets a load span an integer array's elements as long as it ends
    /// inside the array (since 5.6, before any kernel with
    /// bpf_get_current_task_btf).
    #[inline(always)]
    unsafe fn words<const N: usize>(base: u64, off: u32, dst: *mut u8) -> Result<(), Miss> {
        let addr = field(base, off)?;
        let dst = dst.cast::<u64>();
        // Unrolled (N is a small constant): each load's offset is a
        // constant, which the verifier needs on a typed pointer.
        for i in 0..N {
            // SAFETY: a load the verifier checks (see above) and a store
            // inside dst (the caller's contract).
            unsafe {
                let w = core::ptr::read_volatile((addr as *const u64).add(i));
                core::ptr::write_volatile(dst.add(i), w);
            }
        }
        Ok(())
    }

    #[inline(always)]
    unsafe fn str_words<const N: usize>(base: u64, off: u32, dst: *mut u8) -> Result<(), Miss> {
        // SAFETY: the caller's contract.
        unsafe { Self::words::<N>(base, off, dst) }
    }
}

/// Copies `dst.len()` bytes at the field into `dst` (zeroed on a fault).
#[inline(always)]
pub fn read_bytes(base: u64, off: u32, dst: &mut [u8]) -> Result<(), Miss> {
    let addr = field(base, off)?;
    // SAFETY: as above; dst is a valid buffer.
    unsafe { bpf_probe_read_kernel_buf(addr as *const u8, dst) }.map_err(|_| Miss::Fault)
}

/// How many bytes of a value of `len` bytes to copy into a buffer of
/// `CAP` bytes (a power of two): `len` up to `CAP`, 0 for none.
///
/// A copy's size must be provably 1..=CAP in the very register passed to
/// the helper, and LLVM does not keep it so: it has passed a spilled copy
/// of the clamped value whose bound the verifier lost (6.1, on the ia32
/// connect and on io_uring's xattr value), and the unclamped size wherever
/// it could prove the two equal (the file family's xattr value). So the
/// clamped value goes through the stack (a volatile read, which LLVM
/// cannot see through) and is masked into 1..=CAP again: the same value,
/// and the bound the verifier sees.
#[inline(always)]
pub fn copy_len<const CAP: usize>(len: u64) -> u32 {
    const { assert!(CAP.is_power_of_two() && CAP <= u32::MAX as usize) };
    let len = if len > CAP as u64 {
        CAP as u32
    } else {
        len as u32
    };
    // SAFETY: a read of a local.
    let len = unsafe { core::ptr::read_volatile(&len) };
    if len == 0 {
        return 0;
    }
    ((len - 1) & (CAP as u32 - 1)) + 1
}

/// Zeroes an 8-aligned buffer of `8 * N` bytes with plain 8-byte stores.
/// `buf = [0; _]` would compile to a call to memset, a BPF-to-BPF call,
/// which kernels before 5.10 refuse in a program that also tail-calls.
///
/// # Safety
/// `dst` must be valid for writes of `8 * N` bytes and 8-aligned.
#[inline(always)]
pub unsafe fn zero_u64s<const N: usize>(dst: *mut u8) {
    let p = dst.cast::<u64>();
    for i in 0..N {
        // SAFETY: inside the buffer, aligned (the caller's contract).
        // Volatile so that LLVM cannot merge the stores back into a memset.
        unsafe { core::ptr::write_volatile(p.add(i), 0) };
    }
}

/// A volatile store: LLVM merges runs of plain constant stores into a
/// memset call, a BPF-to-BPF call that the build refuses (sensor/build.rs).
#[inline(always)]
pub fn put<T>(dst: &mut T, v: T) {
    // SAFETY: a valid, aligned &mut.
    unsafe { core::ptr::write_volatile(dst, v) }
}

/// Copies `*src` to `*dst` with one probe read; false if it failed, which
/// leaves `dst` as it was. A plain struct or array assignment this large
/// becomes a memcpy/memmove call, a BPF-to-BPF call that the build refuses
/// (sensor/build.rs).
///
/// # Safety
/// Both must point to valid `T`s in memory the program may access (stack
/// or map values).
#[inline(always)]
pub unsafe fn copy_struct<T>(dst: *mut T, src: *const T) -> bool {
    // SAFETY: the caller's contract.
    unsafe {
        aya_ebpf::helpers::generated::bpf_probe_read_kernel(
            dst.cast(),
            core::mem::size_of::<T>() as u32,
            src.cast(),
        ) == 0
    }
}
