//! Enrichers: add context to events (process tree, names, host, time).
//! Each is a plain struct owned by the pipeline; none reaches back into a
//! source.

pub mod clock;
pub mod container;
pub mod exehash;
pub mod host;
pub mod namespaces;
pub mod path_resolve;
pub mod peer;
pub mod process;
pub mod procfs;
pub mod runtime;
pub mod user;
pub mod wait_budget;
