//! Where encoded events go: a local file, or a syslog collector.

pub mod file;
pub mod http;
pub mod syslog;
pub mod tls;
