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
    /// The ancestors' pids, nearest first.
    pub ancestor_pids: Arc<[u32]>,
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
        let ancestor_pids = ancestors.iter().map(|a| a.pid).collect();
        let lineage = Lineage {
            parent: Arc::new(Frozen::new(parent)),
            ancestors: (!ancestors.is_empty()).then(|| Arc::new(Frozen::new(ancestors))),
            ancestor_pids,
        };
        (lineage, settled)
    }
}
