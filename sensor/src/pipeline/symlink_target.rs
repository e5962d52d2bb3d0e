//! Where a new symlink leads: its target joined to the link's directory,
//! followed again where a `..` comes after a name; and whether it leads
//! through a magic link (`/tmp/c -> /proc/self/cwd`). Through such a
//! link, `mv x /tmp/c/evil` renames into whatever directory the mover's
//! cwd is, by a path whose bytes say nothing of it: where fentry is
//! refused the kernel decides by those bytes, so the link is reported
//! when it is made.

use crate::enrich::path_resolve::{Unresolved, target_through_magic_link};
use crate::source::ebpf::decode::WatchRecord;

use super::Pipeline;

/// The links to magic links a container runtime (runc, crun) or systemd
/// (`PrivateDevices=`) makes in each `/dev` it mounts, by (name, target),
/// in a directory named `dev`: not reported (see [`leads_through_magic_link`]).
const DEV_LINKS: &[(&[u8], &[u8])] = &[
    (b"fd", b"/proc/self/fd"),
    (b"stdin", b"/proc/self/fd/0"),
    (b"stdout", b"/proc/self/fd/1"),
    (b"stderr", b"/proc/self/fd/2"),
];

/// Files of `/proc`, never directories: a path through a link to one
/// leads nowhere (`/etc/mtab -> /proc/self/mounts`, a runtime's
/// `/dev/core -> /proc/kcore`).
const PROC_FILES: &[&[u8]] = &[b"/proc/kcore", b"/proc/mounts", b"/proc/self/mounts"];

impl Pipeline {
    /// The symlink `w`'s target, joined to the directory of the link
    /// (`link`, its path) and made normal; followed again in the caller's
    /// root where a `..` in it comes after a name (`/tmp/l/../proc/self`,
    /// which `/tmp/l -> /etc` takes to `/proc`), or why it could not be.
    /// One through a magic link is left as written: it leads wherever the
    /// link's user's magic links do, not the maker's.
    pub(super) fn symlink_target(
        &mut self,
        w: &WatchRecord,
        ticks: u64,
        link: Option<&[u8]>,
    ) -> (Option<Vec<u8>>, Option<Unresolved>) {
        let target = w.symlink_target_path(link);
        match (&target, link) {
            (Some(t), Some(link)) if !target_through_magic_link(t) => {
                let dir = link_dir(link);
                self.followed(&w.task, ticks, (&w.path2, dir), target, false)
            }
            _ => (target, None),
        }
    }
}

/// Does the symlink at `link` (absolute, normal) lead through a magic link
/// (`target`, as [`Pipeline::symlink_target`] gives it), other than the
/// ones systems make as a matter of course ([`PROC_FILES`], [`DEV_LINKS`])?
///
/// The `/dev` links are told by their names alone: a runtime makes them
/// before its `pivot_root` and a service's namespace before it moves
/// the mount, so by the time the daemon could look, the directory they
/// were made in is no longer where they are. A path through one where it
/// is used says `/dev/fd/` or `/dev/std…`, which the daemon follows; one
/// elsewhere (`/tmp/x/dev/fd`) is the evasion this leaves, for a caller
/// who names its link so.
pub(super) fn leads_through_magic_link(link: &[u8], target: &[u8]) -> bool {
    if !target_through_magic_link(target) || PROC_FILES.contains(&target) {
        return false;
    }
    let dir = link_dir(link);
    let name = link.get(dir.len() + 1..).unwrap_or_default();
    !(DEV_LINKS.contains(&(name, target)) && dir.ends_with(b"/dev"))
}

/// The directory `link` (absolute, normal) is in: `/` as empty.
fn link_dir(link: &[u8]) -> &[u8] {
    &link[..link.iter().rposition(|&b| b == b'/').unwrap_or(0)]
}
