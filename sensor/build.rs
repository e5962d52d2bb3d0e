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
    let out_dir =
        PathBuf::from(std::env::var_os("OUT_DIR").ok_or_else(|| anyhow!("OUT_DIR not set"))?);
    let object = out_dir.join("sensor-ebpf");
    let skip =
        std::env::var("AYA_BUILD_SKIP").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    if skip {
        std::fs::write(&object, b"").context("writing the empty eBPF placeholder")?;
    }
    let root = std::env::var("CARGO_MANIFEST_DIR").context("CARGO_MANIFEST_DIR not set")?;
    let ebpf_dir = PathBuf::from(root).join("../sensor-ebpf");
    let ebpf_dir = ebpf_dir
        .to_str()
        .ok_or_else(|| anyhow!("non-UTF-8 path {}", ebpf_dir.display()))?;
    // Also rebuild when the shared wire types change.
    println!("cargo:rerun-if-changed=../sensor-common/src");
    // Honours AYA_BUILD_SKIP itself (only prints rerun-if lines then).
    aya_build::build_ebpf(
        [Package {
            name: "sensor-ebpf",
            root_dir: ebpf_dir,
            ..Default::default()
        }],
        Toolchain::Nightly,
    )
    .context(
        "building the eBPF object (needs `cargo xtask setup`: nightly rust-src and bpf-linker)",
    )?;
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
    let calls =
        subprogram_calls(&elf).with_context(|| format!("parsing {} as ELF", path.display()))?;
    if !calls.is_empty() {
        bail!(
            "{} has BPF-to-BPF calls, which kernels before 5.10 refuse next to a tail call: {}",
            path.display(),
            calls.join(", ")
        );
    }
    Ok(())
}

/// `section+byte offset` of every `call` whose src_reg is BPF_PSEUDO_CALL,
/// in every executable section.
fn subprogram_calls(elf: &[u8]) -> anyhow::Result<Vec<String>> {
    use object::{Object as _, ObjectSection as _, SectionFlags};
    const SHF_EXECINSTR: u64 = 0x4;
    const BPF_CALL: u8 = 0x85; // BPF_JMP | BPF_CALL
    const BPF_PSEUDO_CALL: u8 = 1;
    let file = object::File::parse(elf)?;
    let mut calls = Vec::new();
    for section in file.sections() {
        let executable = matches!(section.flags(), SectionFlags::Elf { sh_flags } if sh_flags & SHF_EXECINSTR != 0);
        if !executable {
            continue;
        }
        let name = section.name().unwrap_or("?");
        for (n, insn) in section.data()?.chunks_exact(8).enumerate() {
            if insn[0] == BPF_CALL && insn[1] >> 4 == BPF_PSEUDO_CALL {
                calls.push(format!("{name}+{:#x}", n * 8));
            }
        }
    }
    Ok(calls)
}
