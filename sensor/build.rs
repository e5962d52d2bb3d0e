//! Builds the eBPF object (sensor-ebpf, for bpfel-unknown-none with the
//! nightly toolchain and bpf-linker) into OUT_DIR, where the daemon embeds
//! it. With AYA_BUILD_SKIP=1 (cargo check, clippy without nightly) an empty
//! placeholder is written; such a binary refuses to run and says why.
//!
//! The built object is then checked for BPF-to-BPF calls (see
//! `check_no_subprogram_calls`) and for tail calls whose index is not a
//! constant (see `check_tail_calls_direct`).

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
        let elf =
            std::fs::read(&object).with_context(|| format!("reading {}", object.display()))?;
        let calls =
            Calls::find(&elf).with_context(|| format!("parsing {} as ELF", object.display()))?;
        check_no_subprogram_calls(&object, &calls)?;
        check_tail_calls_direct(&object, &calls)?;
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
fn check_no_subprogram_calls(path: &Path, calls: &Calls) -> anyhow::Result<()> {
    if !calls.subprogram.is_empty() {
        bail!(
            "{} has BPF-to-BPF calls, which kernels before 5.10 refuse next to a tail call: {}",
            path.display(),
            calls.subprogram.join(", ")
        );
    }
    Ok(())
}

/// Fails the build if a tail call's index is not set by a constant load
/// just before it: the JIT makes a direct jump only of a tail call whose
/// index the verifier knows as one constant, and an indirect one costs a
/// retpoline on every traced syscall. The fix is sensor-ebpf's
/// `tail_call!` (src/tail_call.rs), which writes the call with its index.
fn check_tail_calls_direct(path: &Path, calls: &Calls) -> anyhow::Result<()> {
    if !calls.variable_tail.is_empty() {
        bail!(
            "{} has tail calls whose index is not a constant set just before them \
             (use sensor-ebpf's tail_call!): {}",
            path.display(),
            calls.variable_tail.join(", ")
        );
    }
    Ok(())
}

/// The calls of the object's programs that the checks above refuse, each
/// as `section+byte offset`.
struct Calls {
    /// `call`s whose src_reg is BPF_PSEUDO_CALL.
    subprogram: Vec<String>,
    /// `call 12` (bpf_tail_call) not right after `r3 = imm`.
    variable_tail: Vec<String>,
}

impl Calls {
    /// Reads every executable section of the object.
    fn find(elf: &[u8]) -> anyhow::Result<Calls> {
        use object::{Object as _, ObjectSection as _, SectionFlags};
        const SHF_EXECINSTR: u64 = 0x4;
        const BPF_CALL: u8 = 0x85; // BPF_JMP | BPF_CALL
        const BPF_PSEUDO_CALL: u8 = 1;
        const BPF_FUNC_TAIL_CALL: i32 = 12;
        const MOV64_IMM: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
        let file = object::File::parse(elf)?;
        let mut calls = Calls {
            subprogram: Vec::new(),
            variable_tail: Vec::new(),
        };
        for section in file.sections() {
            let executable = matches!(section.flags(), SectionFlags::Elf { sh_flags } if sh_flags & SHF_EXECINSTR != 0);
            if !executable {
                continue;
            }
            let name = section.name().unwrap_or("?");
            let insns: Vec<&[u8]> = section.data()?.chunks_exact(8).collect();
            for (n, insn) in insns.iter().enumerate() {
                if insn[0] != BPF_CALL {
                    continue;
                }
                let at = || format!("{name}+{:#x}", n * 8);
                let src_reg = insn[1] >> 4;
                if src_reg == BPF_PSEUDO_CALL {
                    calls.subprogram.push(at());
                } else if i32::from_le_bytes([insn[4], insn[5], insn[6], insn[7]])
                    == BPF_FUNC_TAIL_CALL
                {
                    // The previous instruction: `r3 = imm` (dst_reg 3).
                    let index_set =
                        n > 0 && insns[n - 1][0] == MOV64_IMM && insns[n - 1][1] & 0xf == 3;
                    if !index_set {
                        calls.variable_tail.push(at());
                    }
                }
            }
        }
        Ok(calls)
    }
}
