#![no_std]
// Empty on purpose: see the [lib] comment in Cargo.toml.
