//! Builds the eBPF object (sensor-ebpf, for bpfel-unknown-none with the
//! nightly toolchain and bpf-linker) into OUT_DIR, where the daemon embeds
//! it. With AYA_BUILD_SKIP=1 (cargo check, clippy without nightly) an empty
//! placeholder is written; such a binary refuses to run and says why.
//!
//! The built object is then checked for BPF-to-BPF calls (see
//! `check_no_subprogram_calls`).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow, bail};
use aya_build::{Package, Toolchain};

fn main() -> anyhow::Result<()> {
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").ok_or_else(|| anyhow!("OUT_DIR not set"))?);
    let object = out_dir.join("sensor-ebpf");
    let skip = std::env::var("AYA_BUILD_SKIP").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    if skip {
        std::fs::write(&object, b"").context("writing the empty eBPF placeholder")?;
    }
    let root = std::env::var("CARGO_MANIFEST_DIR").context("CARGO_MANIFEST_DIR not set")?;
    let ebpf_dir = PathBuf::from(root).join("../sensor-ebpf");
    let ebpf_dir = ebpf_dir.to_str().ok_or_else(|| anyhow!("non-UTF-8 path {}", ebpf_dir.display()))?;
    // Also rebuild when the shared wire types change.
    println!("cargo:rerun-if-changed=../sensor-common/src");
    // Honours AYA_BUILD_SKIP itself (only prints rerun-if lines then).
    aya_build::build_ebpf(
        [Package { name: "sensor-ebpf", root_dir: ebpf_dir, ..Default::default() }],
        Toolchain::Nightly,
    )
    .context("building the eBPF object (needs `cargo xtask setup`: nightly rust-src and bpf-linker)")?;
    if !skip {
        check_no_subprogram_calls(&object)?;
    }
    Ok(())
}

/// Fails the build if any program calls a BPF subprogram (a BPF-to-BPF
/// call, e.g. to the `memset` that LLVM forms from a run of stores).
/// process_exec and exec_cwd tail-call, and kernels before 5.10 (and
/// non-x86 JITs for longer) refuse a program with both; the other programs
/// are held to the same rule so that the shared code stays usable there.
/// A fix is usually `#[inline(always)]` or a volatile store (see
/// sensor-ebpf/src/task.rs `put!`).
fn check_no_subprogram_calls(path: &Path) -> anyhow::Result<()> {
    let elf = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let calls = subprogram_calls(&elf).with_context(|| format!("parsing {} as ELF", path.display()))?;
    if !calls.is_empty() {
        bail!(
            "{} has BPF-to-BPF calls, which kernels before 5.10 refuse next to a tail call: {}",
            path.display(),
            calls.join(", ")
        );
    }
    Ok(())
}

/// `section+byte offset -> callee` for every `call` whose src_reg is
/// BPF_PSEUDO_CALL, in every executable section of a little-endian ELF64.
fn subprogram_calls(elf: &[u8]) -> anyhow::Result<Vec<String>> {
    const SHF_EXECINSTR: u64 = 0x4;
    const BPF_CALL: u8 = 0x85; // BPF_JMP | BPF_CALL
    const BPF_PSEUDO_CALL: u8 = 1;
    let u16_at = |o: usize| elf.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u32_at = |o: usize| elf.get(o..o + 4).map(|b| u32::from_le_bytes(b.try_into().unwrap()));
    let u64_at = |o: usize| elf.get(o..o + 8).map(|b| u64::from_le_bytes(b.try_into().unwrap()));
    if elf.get(..6) != Some(b"\x7fELF\x02\x01".as_slice()) {
        bail!("not a little-endian ELF64 file");
    }
    let short = || anyhow!("truncated");
    let shoff = u64_at(0x28).ok_or_else(short)? as usize;
    let shentsize = u16_at(0x3a).ok_or_else(short)? as usize;
    let shnum = u16_at(0x3c).ok_or_else(short)? as usize;
    let shstrndx = u16_at(0x3e).ok_or_else(short)? as usize;
    let section = |i: usize| -> anyhow::Result<(u32, u64, usize, usize)> {
        let h = shoff + i * shentsize;
        let name = u32_at(h).ok_or_else(short)?;
        let flags = u64_at(h + 8).ok_or_else(short)?;
        let offset = u64_at(h + 0x18).ok_or_else(short)? as usize;
        let size = u64_at(h + 0x20).ok_or_else(short)? as usize;
        Ok((name, flags, offset, size))
    };
    let (_, _, strtab, strsize) = section(shstrndx)?;
    let name_of = |n: u32| -> String {
        let start = strtab + n as usize;
        let bytes = elf.get(start..strtab + strsize).unwrap_or_default();
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        String::from_utf8_lossy(&bytes[..end]).into_owned()
    };
    let mut calls = Vec::new();
    for i in 0..shnum {
        let (name, flags, offset, size) = section(i)?;
        if flags & SHF_EXECINSTR == 0 {
            continue;
        }
        let code = elf.get(offset..offset + size).ok_or_else(short)?;
        for (n, insn) in code.chunks_exact(8).enumerate() {
            if insn[0] == BPF_CALL && insn[1] >> 4 == BPF_PSEUDO_CALL {
                calls.push(format!("{}+{:#x}", name_of(name), n * 8));
            }
        }
    }
    Ok(calls)
}
