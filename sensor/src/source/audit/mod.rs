//! The kernel audit subsystem over NETLINK_AUDIT: PAM's authentication,
//! login and account records, sudo's commands, and the kernel's own
//! records, as the audit daemon or read-only beside auditd.
//!
//! netlink (bytes) → record (fields) → coalesce (events) → login (meaning);
//! `client` drives the socket and the kernel's settings.

pub mod client;
pub mod coalesce;
pub mod login;
pub mod netlink;
pub mod record;
pub mod rules;
pub mod tamper;
pub mod task_contexts;
pub mod types;
