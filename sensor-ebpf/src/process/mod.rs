//! Process lifecycle: exec, fork, exit.

mod exec;
mod exit;
mod fork;
pub mod namespaces;
