//! `process.parent` and `sensor.ancestors` of an event, built once per
//! parent and reused while the process table does not change.
//!
//! A process that makes 100k traced calls per second has the same parent
//! and ancestors on every one of them: describing and serializing them
//! again each time was a third of the daemon's work per event. The cache
//! is keyed by the parent as the kernel named it (pid and start time) and
//! emptied whenever the table's generation moves (any exec, fork, exit or
//! eviction), so a description is never older than the table it came from.

use std::collections::HashMap;
use std::sync::Arc;

use sensor_common::TaskInfo;

use super::{Pipeline, to_process};
use crate::enrich::exehash::Outcome;
use crate::event::{Ancestor, Frozen, Process, ProcessHash};

/// Parents remembered at most; past it the cache starts over.
const CAPACITY: usize = 4096;

#[derive(Clone)]
pub(super) struct Lineage {
    pub parent: Arc<Frozen<Process>>,
    pub ancestors: Option<Arc<Frozen<Vec<Ancestor>>>>,
}

#[derive(Default)]
pub(super) struct LineageCache {
    generation: u64,
    by_parent: HashMap<(u32, u64), Lineage>,
}

impl Pipeline {
    /// The parent and ancestors of the process `task` describes.
    pub(super) fn lineage(&mut self, task: &TaskInfo) -> Lineage {
        let key = (task.ppid, task.parent_start_boottime);
        let generation = self.table.generation();
        let cache = &mut self.lineages;
        if cache.generation != generation || cache.by_parent.len() >= CAPACITY {
            cache.by_parent.clear();
            cache.generation = generation;
        }
        if let Some(l) = cache.by_parent.get(&key) {
            return l.clone();
        }
        let (lineage, settled) = self.describe_lineage(task);
        if settled {
            self.lineages.by_parent.insert(key, lineage.clone());
        }
        lineage
    }

    /// Builds the lineage from the table; `settled` is false while the
    /// parent's executable hash is still being computed, so that a later
    /// event can carry it.
    fn describe_lineage(&mut self, task: &TaskInfo) -> (Lineage, bool) {
        let ancestors = self.table.ancestors(task.ppid, self.ancestry_depth);
        let parent_ticks = self.table.ids.ticks(task.parent_start_boottime);
        let parent = self.table.get_exact(task.ppid, parent_ticks).or_else(|| {
            self.table
                .get(task.ppid)
                .filter(|_| task.parent_start_boottime == 0)
        });
        let mut settled = true;
        let parent = match parent {
            Some(p) => {
                let mut out = to_process(p);
                // ECS `process.parent.hash`: a lookup, never a wait.
                if let (Some(h), Some(Ok(key))) = (self.hasher.as_mut(), p.exe_hash) {
                    match h.resolve(key) {
                        Outcome::Sha256(sha256) => out.hash = Some(ProcessHash { sha256 }),
                        Outcome::Unavailable("pending") => settled = false,
                        Outcome::Unavailable(_) => {}
                    }
                }
                out
            }
            // Not in the table (evicted, or died before we started): the
            // kernel still told us who it was.
            None => Process {
                pid: task.ppid,
                entity_id: self.table.ids.id(task.ppid, parent_ticks),
                ..Process::default()
            },
        };
        let lineage = Lineage {
            parent: Arc::new(Frozen::new(parent)),
            ancestors: (!ancestors.is_empty()).then(|| Arc::new(Frozen::new(ancestors))),
        };
        (lineage, settled)
    }
}

#[cfg(test)]
mod tests {
    use sensor_common::{ID_UNSET, TaskInfo};

    use super::*;
    use crate::event::{Agent, Event, Host};
    use crate::source::ebpf::decode::{ExecRecord, KernelEvent};

    // Pids no process on the build machine has (above the kernel's limit),
    // so that nothing is read back from /proc for them.
    const GRANDPARENT: u32 = 4_200_001;
    const PARENT: u32 = 4_200_002;
    const CHILD: u32 = 4_200_003;
    const START: u64 = 1_000_000_000;

    fn pipeline() -> Pipeline {
        Pipeline::new(Host::named("test"), Agent::named("test"), 1024, 4, 100)
    }

    fn task(pid: u32, ppid: u32) -> TaskInfo {
        TaskInfo {
            tgid: pid,
            tid: pid,
            ppid,
            uid: 0,
            gid: 0,
            euid: 0,
            egid: 0,
            suid: 0,
            sgid: 0,
            fsuid: 0,
            fsgid: 0,
            loginuid: ID_UNSET,
            sessionid: ID_UNSET,
            flags: 0,
            start_boottime: START,
            parent_start_boottime: START,
            cgroup_id: 0,
            cap_permitted: 0,
            cap_effective: 0,
            comm: [0; 16],
            tty: [0; 32],
        }
    }

    fn exec(p: &mut Pipeline, pid: u32, ppid: u32, exe: &[u8]) {
        p.handle(KernelEvent::Exec(ExecRecord {
            boot_ns: START + 1,
            task: task(pid, ppid),
            argv: vec![exe.to_vec()],
            argv_truncated: false,
            argv_unreadable: false,
            argv_total: exe.len() as u32 + 1,
            exe: exe.to_vec(),
            exe_truncated: false,
            exe_unlinked: false,
            cwd: b"/".to_vec(),
            cwd_truncated: false,
            cgroup: b"/".to_vec(),
            cgroup_truncated: false,
        }));
    }

    fn connect(p: &mut Pipeline) -> Event {
        p.handle(crate::pipeline::bench::connect(task(CHILD, PARENT)))
            .expect("a connect event")
    }

    fn parent_exe(e: &Event) -> &[u8] {
        let parent = e.process.as_ref().and_then(|p| p.parent.as_ref());
        let exe = parent.and_then(|p| p.executable.as_ref());
        &exe.expect("the parent's executable").0
    }

    #[test]
    fn reused_while_the_table_holds_still_and_rebuilt_when_it_moves() {
        let mut p = pipeline();
        exec(&mut p, GRANDPARENT, 1, b"/bin/init-like");
        exec(&mut p, PARENT, GRANDPARENT, b"/bin/old");
        exec(&mut p, CHILD, PARENT, b"/bin/child");
        let first = connect(&mut p);
        assert_eq!(parent_exe(&first), b"/bin/old");
        let ancestors = first.sensor.ancestors.as_ref().expect("ancestors");
        assert_eq!(ancestors[0].pid, GRANDPARENT);
        // Nothing changed: the very same shared parts.
        let second = connect(&mut p);
        let shared = |e: &Event| e.process.as_ref().and_then(|p| p.parent.clone());
        assert!(Arc::ptr_eq(
            &shared(&first).expect("parent"),
            &shared(&second).expect("parent")
        ));
        // The parent execs something else: the next event says so.
        exec(&mut p, PARENT, GRANDPARENT, b"/bin/new");
        let third = connect(&mut p);
        assert_eq!(parent_exe(&third), b"/bin/new");
        // And the JSON written is the new one too.
        let json = serde_json::to_value(&third).expect("json");
        assert_eq!(json["process"]["parent"]["executable"], "/bin/new");
        assert_eq!(
            json["sensor"]["ancestors"][0]["executable"],
            "/bin/init-like"
        );
    }
}
