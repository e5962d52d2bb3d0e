//! Where a new symlink leads: its target joined to the link's directory,
//! followed again where a `..` comes after a name; and whether it leads
//! through a magic link (`/tmp/c -> /proc/self/cwd`). Through such a
//! link, `mv x /tmp/c/evil` renames into whatever directory the mover's
//! cwd is, by a path whose bytes say nothing of it: where fentry is
//! refused the kernel decides by those bytes, so the link is reported
//! when it is made.

use sensor_common::io_uring::op as io_uring_op;
use sensor_common::{SyscallOp, TaskInfo};

use crate::enrich::path_resolve::{KnownLink, Unresolved, target_through_magic_link};
use crate::enrich::procfs::parse_stat;
use crate::event::{Event, File, SensorFields, Text};
use crate::source::ebpf::decode::{SysRecord, WatchRecord, lexically_normal, symlink_target_path};
use crate::source::ebpf::magic_links::{MagicLink, MagicLinkChange};

use super::followed::Argument;
use super::io_uring::Request;
use super::watch::RENAME_EXCHANGE;
use super::{INFO, Pipeline};

const FILE: &[&str] = &["file"];

/// The links to magic links a container runtime (runc, crun) or systemd
/// (`PrivateDevices=`) makes in each `/dev` it mounts, by (name, target),
/// in a directory named `dev`: not reported where a process of a mount
/// namespace of its own made them (see [`Pipeline::leads_through_magic_link`]).
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
    /// One through a magic link, or through a symlink seen made to lead
    /// through one, is left as written: it leads wherever the link's
    /// user's magic links do, not the maker's.
    pub(super) fn symlink_target(
        &mut self,
        task: &TaskInfo,
        ticks: u64,
        written: &[u8],
        link: Option<&[u8]>,
    ) -> (Option<Vec<u8>>, Option<Unresolved>) {
        let target = symlink_target_path(written, link);
        match (&target, link) {
            (Some(t), Some(link))
                if !target_through_magic_link(t)
                    && self.watched.magic_links.leading(t).is_none() =>
            {
                let dir = link_dir(link);
                self.followed(task, ticks, Argument::new(written, dir), target, false)
            }
            _ => (target, None),
        }
    }

    /// Does the symlink process `tgid` made at `link` (absolute, normal) lead through a
    /// magic link (`target`, as [`Self::symlink_target`] gives it), or
    /// through a symlink seen made to lead through one (`/tmp/d ->
    /// /tmp/c`), other than the ones systems make as a matter of course:
    /// links to [`PROC_FILES`], and [`DEV_LINKS`] made by a live process in
    /// a mount namespace of its own?
    ///
    /// The `/dev` links are told by their names and their maker: a
    /// runtime makes them before its `pivot_root`, in the container's new
    /// mount namespace, and a service's namespace before it moves the
    /// mount, so by the time the daemon could look, the directory they
    /// were made in is no longer where they are. A path through one where
    /// it is used says `/dev/fd/` or `/dev/std…`, which the daemon follows.
    /// One so named elsewhere (`/tmp/x/dev/fd`) is the way around this
    /// left, for a caller that unshares its mount namespace and outlives
    /// the call until the daemon has looked.
    pub(super) fn leads_through_magic_link(
        &self,
        tgid: u32,
        ticks: u64,
        link: &[u8],
        target: &[u8],
    ) -> bool {
        let leads_to = self.leads_to(target);
        if !target_through_magic_link(&leads_to) || PROC_FILES.contains(&&leads_to[..]) {
            return false;
        }
        let dir = link_dir(link);
        let name = link.get(dir.len() + 1..).unwrap_or_default();
        let named_so = DEV_LINKS.contains(&(name, target)) && dir.ends_with(b"/dev");
        !(named_so && self.in_mount_namespace_of_its_own(tgid, ticks))
    }

    /// Remembers the symlink `task` made at `link` (`written` its target
    /// as given) to lead through a magic link to `target`, for the daemon
    /// to put into the kernel's path check (see
    /// `source::ebpf::magic_links`): paths below it are then sent, and
    /// followed from where it leads. `awaited`: asked for, perhaps not
    /// made yet (see `MagicLink::awaited`).
    pub(super) fn remember_magic_link(
        &mut self,
        task: &TaskInfo,
        ticks: u64,
        (link, written): (&[u8], &[u8]),
        target: &[u8],
        awaited: bool,
    ) {
        let in_host_root = !self.caller(task, ticks).in_container;
        self.magic_link_changes
            .push(MagicLinkChange::Made(MagicLink {
                link: KnownLink {
                    path: link.to_vec(),
                    written: written.to_vec(),
                    leads_to: self.leads_to(target),
                },
                in_host_root,
                dir: None,
                awaited,
            }));
    }

    /// Follows the names an io_uring request `x` (`request`: its path
    /// joined and followed) gives a symlink through a magic link, as the
    /// watch family's calls do: a `symlinkat` that makes one (see
    /// [`Self::remember_magic_link`]), a `renameat` or `linkat` of one
    /// (see [`Self::track_moved_magic_link`]). At its submission, awaited:
    /// the request runs later, and its completion is not always reported
    /// (before 5.19, or with `IOSQE_CQE_SKIP_SUCCESS`), where the maker's
    /// next call may come right after. The old name of a rename is left
    /// for the refresh's look: the request may fail. The other path of a
    /// rename or link is as shown (see `Request::second_path`): unknown
    /// where both are relative, to different directory fds.
    pub(super) fn track_requested_magic_link(&mut self, x: &SysRecord, request: &Request) {
        let Some(path) = request.path.as_deref().filter(|p| p.first() == Some(&b'/')) else {
            return;
        };
        match x.args[0] as u8 {
            io_uring_op::SYMLINKAT => {
                if let Some(written) = request.target_path.as_deref() {
                    self.remember_requested_magic_link(x, path, written);
                }
            }
            io_uring_op::RENAMEAT => {
                if let Some(to) = request.second_path() {
                    self.track_moved_magic_link(path, to, true);
                    // An exchange moves what `to` was to `path` as well.
                    if x.args[2] as u32 & RENAME_EXCHANGE != 0 {
                        self.track_moved_magic_link(to, path, true);
                    }
                }
            }
            io_uring_op::LINKAT => {
                if let Some(from) = request.second_path() {
                    self.track_moved_magic_link(from, path, true);
                }
            }
            _ => {}
        }
    }

    /// See [`Self::track_requested_magic_link`]: a symlink to `written`
    /// asked for at `link`.
    fn remember_requested_magic_link(&mut self, x: &SysRecord, link: &[u8], written: &[u8]) {
        let ticks = self.table.ids.ticks(x.task.start_boottime);
        let (Some(target), _) = self.symlink_target(&x.task, ticks, written, Some(link)) else {
            return;
        };
        if self.leads_through_magic_link(x.task.tgid, ticks, link, &target) {
            self.remember_magic_link(&x.task, ticks, (link, written), &target, true);
        }
    }

    /// Follows a symlink through a magic link that a rename or a hard link
    /// gave another name, `to`: renamed from `from`, or linked to it (`ln`
    /// of a symlink links the symlink). Else `mv /tmp/c /tmp/x` would leave
    /// `/tmp/x/evil` unseen. A relative target is joined to the new name's
    /// directory again. `awaited`: asked for, perhaps not done yet (see
    /// `MagicLink::awaited`).
    pub(super) fn track_moved_magic_link(&mut self, from: &[u8], to: &[u8], awaited: bool) {
        let Some(old) = self.watched.magic_links.at(from) else {
            return;
        };
        let written = old.link.written.clone();
        let in_host_root = old.in_host_root;
        let leads_to = if written.first() == Some(&b'/') {
            old.link.leads_to.clone()
        } else {
            self.leads_to(&lexically_normal(&[link_dir(to), b"/", &written].concat()))
        };
        if !target_through_magic_link(&leads_to) {
            return;
        }
        self.magic_link_changes
            .push(MagicLinkChange::Made(MagicLink {
                link: KnownLink {
                    path: to.to_vec(),
                    written,
                    leads_to,
                },
                in_host_root,
                dir: None,
                awaited,
            }));
    }

    /// Lets go of a symlink through a magic link that `w` (an unlink or a
    /// rename that succeeded) removed: unlinked, renamed away from `path`
    /// (its new name, `path2`, is followed: [`Self::track_moved_magic_link`]),
    /// or replaced by a rename over it; or swapped by an exchange with a
    /// name that held no such link (which now holds it). In the records'
    /// order: a path through that name in a later record no longer leads
    /// where the link did.
    pub(super) fn track_removed_magic_link(
        &mut self,
        w: &WatchRecord,
        path: Option<&[u8]>,
        path2: Option<&[u8]>,
    ) {
        if w.ret != 0 {
            return;
        }
        let links = &self.watched.magic_links;
        let exchange = w.open_flags & RENAME_EXCHANGE != 0;
        let removed = match w.op {
            SyscallOp::Unlink | SyscallOp::Unlinkat => path.filter(|p| links.tracks(p)),
            SyscallOp::Rename | SyscallOp::Renameat | SyscallOp::Renameat2 => {
                match (path, path2) {
                    // Onto itself: nothing moved.
                    (Some(from), Some(to)) if from == to => None,
                    // Each name holds the other's link, if both had one.
                    (Some(from), Some(to))
                        if exchange && links.tracks(from) && links.tracks(to) =>
                    {
                        None
                    }
                    (Some(from), _) if links.tracks(from) => Some(from),
                    (_, Some(to)) if links.tracks(to) => Some(to),
                    _ => None,
                }
            }
            _ => None,
        };
        if let Some(removed) = removed {
            self.magic_link_changes
                .push(MagicLinkChange::Removed(removed.to_vec()));
        }
    }

    /// The event for a symlink through a magic link found at start (see
    /// `source::ebpf::magic_link_scan`): made before this run, by whom is
    /// not known, and set up for paths through it to land wherever their
    /// user's magic link leads (`mv x /tmp/c/evil` into the mover's cwd).
    /// A host has none as a matter of course: an intruder's plant, most
    /// likely, reported as the one made while the sensor runs is.
    pub fn magic_link_found(&mut self, link: &MagicLink) -> Event {
        let meta = self.meta("event", FILE, INFO, "magic_link_found", None, "sensor");
        let file = File {
            path: Some(Text(link.link.path.clone())),
            target_path: Some(Text(link.link.written.clone())),
            ..File::default()
        };
        let mut sensor = SensorFields::default();
        sensor.escaped = super::system::escaped_fields(&sensor, Some(&file), None);
        let mut ev = self.sensor_event(meta, sensor);
        ev.file = Some(file);
        ev
    }

    /// Where `target` leads: through a symlink seen made to lead through
    /// a magic link, if it is one or below one; else itself.
    fn leads_to(&self, target: &[u8]) -> Vec<u8> {
        (self.watched.magic_links.leading(target)).unwrap_or_else(|| target.to_vec())
    }

    /// Is process `tgid` (started at `ticks`), still alive, in a mount
    /// namespace other than the host's? Read before its start time, so
    /// that a pid reused in between is caught.
    fn in_mount_namespace_of_its_own(&self, tgid: u32, ticks: u64) -> bool {
        let in_host = self.host_namespaces.process_in_host(tgid, &["mnt"]);
        let same = std::fs::read(format!("/proc/{tgid}/stat"))
            .ok()
            .and_then(|s| parse_stat(&s))
            .is_some_and(|(_, _, start)| start == ticks);
        same && in_host == Some(false)
    }
}

/// The directory `link` (absolute, normal) is in: `/` as empty.
fn link_dir(link: &[u8]) -> &[u8] {
    &link[..link.iter().rposition(|&b| b == b'/').unwrap_or(0)]
}
