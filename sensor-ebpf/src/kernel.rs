//! Reading kernel memory at BTF-resolved offsets.
//!
//! Kernel addresses are carried as plain `u64`s: they are never
//! dereferenced directly, only passed to bpf_probe_read_kernel, which the
//! verifier allows for any address and which fails cleanly on a bad one.

use aya_ebpf::helpers::{bpf_probe_read_kernel, bpf_probe_read_kernel_buf, bpf_probe_read_kernel_str_bytes};
use sensor_common::OFFSET_MISSING;

/// Address of a field, or None when the base is NULL or the running kernel
/// lacks the field.
#[inline(always)]
pub fn field(base: u64, off: u32) -> Option<u64> {
    if base == 0 || off == OFFSET_MISSING {
        None
    } else {
        Some(base + off as u64)
    }
}

#[inline(always)]
pub fn read_u32(base: u64, off: u32) -> Result<u32, i64> {
    let addr = field(base, off).ok_or(-1i64)?;
    // SAFETY: probe read of kernel memory; failure is an error value.
    unsafe { bpf_probe_read_kernel(addr as *const u32) }.map_err(|e| e as i64)
}

#[inline(always)]
pub fn read_u64(base: u64, off: u32) -> Result<u64, i64> {
    let addr = field(base, off).ok_or(-1i64)?;
    // SAFETY: as above.
    unsafe { bpf_probe_read_kernel(addr as *const u64) }.map_err(|e| e as i64)
}

/// A pointer field: the address it holds.
#[inline(always)]
pub fn read_ptr(base: u64, off: u32) -> Result<u64, i64> {
    read_u64(base, off)
}

/// Copies `dst.len()` bytes at the field into `dst`.
#[inline(always)]
pub fn read_bytes(base: u64, off: u32, dst: &mut [u8]) -> Result<(), i64> {
    let addr = field(base, off).ok_or(-1i64)?;
    // SAFETY: as above; dst is a valid buffer.
    unsafe { bpf_probe_read_kernel_buf(addr as *const u8, dst) }.map_err(|e| e as i64)
}

/// Copies a NUL-terminated string at the field into `dst`.
#[inline(always)]
pub fn read_str(base: u64, off: u32, dst: &mut [u8]) -> Result<(), i64> {
    let addr = field(base, off).ok_or(-1i64)?;
    // SAFETY: as above.
    unsafe { bpf_probe_read_kernel_str_bytes(addr as *const u8, dst) }
        .map(|_| ())
        .map_err(|e| e as i64)
}
