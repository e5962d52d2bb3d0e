//! Builds the eBPF object (sensor-ebpf, for bpfel-unknown-none with the
//! nightly toolchain and bpf-linker) into OUT_DIR, where the daemon embeds
//! it. With AYA_BUILD_SKIP=1 (cargo check, clippy without nightly) an empty
//! placeholder is written; such a binary refuses to run and says why.

use std::path::PathBuf;

use anyhow::{Context as _, anyhow};
use aya_build::{Package, Toolchain};

fn main() -> anyhow::Result<()> {
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").ok_or_else(|| anyhow!("OUT_DIR not set"))?);
    let skip = std::env::var("AYA_BUILD_SKIP").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    if skip {
        std::fs::write(out_dir.join("sensor-ebpf"), b"").context("writing the empty eBPF placeholder")?;
    }
    let root = std::env::var("CARGO_MANIFEST_DIR").context("CARGO_MANIFEST_DIR not set")?;
    let ebpf_dir = PathBuf::from(root).join("../sensor-ebpf");
    let ebpf_dir = ebpf_dir.to_str().ok_or_else(|| anyhow!("non-UTF-8 path {}", ebpf_dir.display()))?;
    // Also rebuild when the shared wire types change.
    println!("cargo:rerun-if-changed=../sensor-common/src");
    aya_build::build_ebpf(
        [Package { name: "sensor-ebpf", root_dir: ebpf_dir, ..Default::default() }],
        Toolchain::Nightly,
    )
    .context("building the eBPF object (needs `cargo xtask setup`: nightly rust-src and bpf-linker)")
}
