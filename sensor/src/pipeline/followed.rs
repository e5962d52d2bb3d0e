//! Path arguments that may lead elsewhere than their bytes say, followed
//! again for the events that show them (see `enrich::path_resolve`).

use sensor_common::TaskInfo;

use super::Pipeline;
use super::io_uring::Request;
use crate::enrich::path_resolve::{Caller, CwdAtCall, KnownLink, Unresolved, may_lead_elsewhere};
use crate::source::ebpf::decode::SysRecord;

/// A path argument as the caller passed it, and where the kernel says
/// it started from.
pub(super) struct Argument<'a> {
    pub path: &'a [u8],
    /// The directory a relative `path` starts from.
    pub base: &'a [u8],
    /// The calling thread's cwd at the call, where the kernel walked it
    /// (`WatchRecord::cwd_at_call`): where `/proc/thread-self/cwd` led.
    pub cwd: Option<CwdAtCall<'a>>,
}

impl<'a> Argument<'a> {
    /// A path argument and its base, with no cwd walked at the call.
    pub fn new(path: &'a [u8], base: &'a [u8]) -> Argument<'a> {
        Argument {
            path,
            base,
            cwd: None,
        }
    }
}

impl Pipeline {
    /// `lexical` (the path argument joined to `base` and made normal), or,
    /// where the argument may lead elsewhere than that, where it did lead
    /// (see `enrich::path_resolve`; its last component too where the call
    /// follows it, `follows_last`), or why that is unknown. Below a
    /// symlink seen made to lead through a magic link, it is followed from
    /// where the link leads.
    pub(super) fn followed(
        &mut self,
        task: &TaskInfo,
        ticks: u64,
        argument: Argument,
        lexical: Option<Vec<u8>>,
        follows_last: bool,
    ) -> (Option<Vec<u8>>, Option<Unresolved>) {
        let Some(normal) = lexical else {
            return (None, None);
        };
        let mut through: Option<KnownLink> = None;
        if !may_lead_elsewhere(argument.path, &normal) {
            match self.watched.magic_links.above(&normal) {
                Some(link) => through = Some(link.clone()),
                None => return (Some(normal), None),
            }
        }
        // Below such a link, `normal` is exact up to it.
        let path = if through.is_some() {
            normal.clone()
        } else if argument.path.first() == Some(&b'/') {
            argument.path.to_vec()
        } else {
            [argument.base, b"/", argument.path].concat()
        };
        let caller = self.caller(task, ticks);
        let found = self.resolver.resolve_with(
            caller,
            &path,
            &normal,
            follows_last,
            through.as_ref(),
            argument.cwd,
        );
        match found {
            Ok(path) => (Some(path), None),
            Err(why) => (Some(normal), Some(why)),
        }
    }

    /// Whose call it was, for a lookup in its root.
    pub(super) fn caller(&mut self, task: &TaskInfo, ticks: u64) -> Caller {
        self.known(task, ticks);
        let in_container = self
            .table
            .get_exact(task.tgid, ticks)
            .is_some_and(|p| p.container.is_some());
        Caller {
            tgid: task.tgid,
            tid: task.tid,
            start_ticks: ticks,
            in_container,
        }
    }

    /// An io_uring request's paths (submission record `x`), followed again
    /// where they may lead elsewhere than their bytes say, as the watch
    /// family's are; before they are reported and remembered for the
    /// completion. An fd's path is the file's own, and a relative one
    /// whose start is unknown is kept as given. `unresolved` tells of
    /// either.
    pub(super) fn follow_request(&mut self, x: &SysRecord, request: &mut Request) {
        let joined = request
            .path
            .as_ref()
            .is_some_and(|p| p.first() == Some(&b'/'));
        let on_fd = request.detail.fd.is_some() || request.detail.fixed_file.is_some();
        // As Request::of joined it (None where its directory is unknown);
        // not a hard link's fd's file, walked in the kernel: where it is.
        let second = request
            .second_path()
            .filter(|_| !x.second_is_file)
            .map(<[u8]>::to_vec);
        let first = joined && !on_fd && !x.path.is_empty();
        if !first && second.is_none() {
            return;
        }
        let ticks = self.table.ids.ticks(x.task.start_boottime);
        let mut unresolved = None;
        if first {
            // Shown at submission, as a name: its last component as given.
            let path;
            (path, unresolved) = self.followed(
                &x.task,
                ticks,
                Argument::new(&x.path, &x.base),
                request.path.take(),
                false,
            );
            request.detail.path_argument =
                super::watch::argument_if_changed(&x.path, path.as_deref());
            request.path = path;
        }
        if second.is_some() {
            // A rename's new name, a hard link's existing file: names too.
            let (second, unresolved2) = self.followed(
                &x.task,
                ticks,
                Argument::new(&x.name, &x.base),
                second,
                false,
            );
            if let Some(second) = second {
                request.set_second_path(x, second);
            }
            unresolved = unresolved.or(unresolved2);
        }
        request.detail.unresolved = unresolved.map(Unresolved::name);
    }
}
