//! The kernel audit subsystem over NETLINK_AUDIT. Today only the status
//! query that `sensor probe` uses; the audit client grows here.

pub mod status;
