//! The sensor daemon as a library: the `sensor` binary is a thin CLI over
//! it, and the integration tests use its schema helpers (e.g.
//! [`event::text::unescape`]) rather than re-implementing them.

pub mod config;
pub mod daemon;
pub mod enrich;
pub mod event;
pub mod file_stamp;
pub mod pipeline;
pub mod probe;
pub mod sink;
pub mod source;
pub mod telemetry;
