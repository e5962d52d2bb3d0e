//! The UDP send hooks (see the eBPF side's `udp_send.rs`): the first
//! datagram a socket sends to each destination it is not connected to.
//!
//! cgroup `sendmsg4`/`sendmsg6` programs attached at the root of the
//! cgroup v2 hierarchy, as links, which run beside any other programs of
//! the cgroups below, so every socket runs them. They go with the sensor:
//! a link is closed when it exits.

use aya::Ebpf;
use aya::programs::{CgroupAttachMode, CgroupSockAddr};
use sensor_common::{EventKind, names};

/// What `sensor probe` and the start log say about the hook.
pub const WHY: &str = "a UDP datagram sent to an address (sendto, sendmsg, sendmmsg, an io_uring \
    send) by a socket not connected to it makes no connect call and changes no socket state: a \
    script's DNS exfiltration or a UDP beacon is seen nowhere else; the kernel runs these \
    programs only for such sends, in the sending task, with the address it copied";

/// The hook as `sensor probe` names it.
pub const HOOK: &str = "cgroup/sendmsg4 + cgroup/sendmsg6 at the root of the cgroup v2 hierarchy";

/// Loads and attaches the hooks if the network family is `enabled`. None:
/// the family is off; else where they were attached, or why they are not.
pub fn attach(ebpf: &mut Ebpf, enabled: &[EventKind]) -> Option<Result<String, String>> {
    if !enabled.contains(&EventKind::Net) {
        return None;
    }
    Some(attach_at_root(ebpf))
}

fn attach_at_root(ebpf: &mut Ebpf) -> Result<String, String> {
    let programs = [names::PROG_UDP_SEND4, names::PROG_UDP_SEND6];
    // Both loaded before either is attached: never one family of
    // addresses reported while the start log says neither is.
    for name in programs {
        program(ebpf, name)?.load().map_err(|e| {
            super::report_if_too_complex(name, &e);
            format!("{name} refused: {e}")
        })?;
    }
    let (root, at) = super::cgroup2::open_root()?;
    for name in programs {
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
    Ok(at)
}

fn program<'a>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut CgroupSockAddr, String> {
    ebpf.program_mut(name)
        .ok_or_else(|| format!("program {name} missing"))?
        .try_into()
        .map_err(|e| format!("{name}: {e}"))
}
