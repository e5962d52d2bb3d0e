//! Sources only produce raw records; `decode` turns them into typed events.

pub mod audit;
pub mod ebpf;
pub mod logins;
