//! The UDP flow hooks (see the eBPF side's `udp_flows.rs`): the first
//! datagram a socket exchanges with each peer it is not connected to,
//! sent to it or received from it.
//!
//! cgroup `sendmsg4`/`sendmsg6`/`recvmsg4`/`recvmsg6` programs attached at
//! the root of the cgroup v2 hierarchy, as links, which run beside any
//! other programs of the cgroups below, so every socket runs them. They go
//! with the sensor: a link is closed when it exits.

use aya::Ebpf;
use aya::programs::{CgroupAttachMode, CgroupSockAddr};
use sensor_common::{EventKind, names};

/// What `sensor probe` and the start log say about the hooks.
pub const WHY: &str = "a UDP datagram sent to an address (sendto, sendmsg, sendmmsg, an io_uring \
    send) by a socket not connected to it, or received with its sender's address (recvfrom, \
    recvmsg), makes no connect or accept call and changes no socket state: a script's DNS \
    exfiltration, a UDP beacon or an implant listening on a UDP port is seen nowhere else; the \
    kernel runs these programs only for such datagrams, in the task, with the address it copied";

/// The hooks as `sensor probe` names them.
pub const HOOK: &str = "cgroup/{sendmsg,recvmsg}{4,6} at the root of the cgroup v2 hierarchy";

const PROGRAMS: [&str; 4] = [
    names::PROG_UDP_SEND4,
    names::PROG_UDP_SEND6,
    names::PROG_UDP_RECEIVE4,
    names::PROG_UDP_RECEIVE6,
];

/// Where the hooks were attached.
pub struct Attached {
    pub at: String,
    /// At the hierarchy's root; else at a cgroup namespace's root, and only
    /// its subtree's sockets run them (see `cgroup2::open_root`).
    pub whole: bool,
}

/// Loads and attaches the hooks if the network family is `enabled`. None:
/// the family is off; else where they were attached, or why they are not.
pub fn attach(ebpf: &mut Ebpf, enabled: &[EventKind]) -> Option<Result<Attached, String>> {
    if !enabled.contains(&EventKind::Net) {
        return None;
    }
    Some(attach_at_root(ebpf))
}

fn attach_at_root(ebpf: &mut Ebpf) -> Result<Attached, String> {
    // All loaded before any is attached: never some of the flows reported
    // while the start log says none is.
    for name in PROGRAMS {
        program(ebpf, name)?.load().map_err(|e| {
            super::report_if_too_complex(name, &e);
            format!("{name} refused: {e}")
        })?;
    }
    let super::cgroup2::Root {
        dir: root,
        at,
        whole,
    } = super::cgroup2::open_root()?;
    for name in PROGRAMS {
        program(ebpf, name)?
            // A link (aya makes one from 5.7; the sensor needs 5.8), which
            // the kernel always adds beside the cgroup's other programs: a
            // link's flags must be 0 (`Single`'s), ALLOW_MULTI is EINVAL.
            .attach(&root, CgroupAttachMode::Single)
            .map_err(|e| match std::error::Error::source(&e) {
                Some(cause) => format!("{name}: attaching at {at}: {e}: {cause}"),
                None => format!("{name}: attaching at {at}: {e}"),
            })?;
    }
    Ok(Attached { at, whole })
}

fn program<'a>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut CgroupSockAddr, String> {
    super::program_as(ebpf, name, "cgroup").map_err(|e| e.to_string())
}
