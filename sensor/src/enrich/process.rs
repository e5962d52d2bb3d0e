//! The process table: what we know about every live process, so that each
//! event can name its executable, its parent and its ancestors.
//!
//! Keyed by pid, validated by start time (a reused pid is a new process).
//! Bounded: past `capacity`, exited processes go first, then the oldest;
//! every eviction is counted.

use std::collections::{HashMap, VecDeque};

use sha2::{Digest, Sha256};

use crate::enrich::container::ContainerRef;
use crate::enrich::exehash::FileKey;
use crate::event::{Ancestor, Shared, Text};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    pub pid: u32,
    pub ppid: u32,
    /// Start in clock ticks since boot: the unit /proc uses, so processes
    /// seen at start and processes seen by the kernel get the same id.
    pub start_ticks: u64,
    pub entity_id: String,
    pub name: Option<Shared<Text>>,
    pub executable: Option<Shared<Text>>,
    pub args: Option<Shared<Vec<Text>>>,
    pub working_directory: Option<Shared<Text>>,
    /// From the cgroup path at exec (or in /proc at start); a fork inherits
    /// its parent's.
    pub container: Option<ContainerRef>,
    /// Credentials at the last event seen from it: a later event showing
    /// more privilege than this, with no credential syscall or exec in
    /// between, is an unexplained gain.
    pub creds: Option<CredState>,
    /// The executable's identity for `process.hash` (a fork inherits its
    /// parent's), or why there is none; None when hashing is off or the
    /// process was never seen to exec.
    pub exe_hash: Option<Result<FileKey, &'static str>>,
    pub exited: bool,
}

/// `process.entity_id`: unique across pid reuse (start time) and reboots
/// (boot id), stable for the life of the process (exec keeps it).
#[derive(Debug, Clone)]
pub struct EntityIds {
    boot_id: String,
    ns_per_tick: u64,
}

impl EntityIds {
    pub fn new(boot_id: String, ticks_per_second: u64) -> Self {
        EntityIds {
            boot_id,
            ns_per_tick: 1_000_000_000 / ticks_per_second.max(1),
        }
    }

    /// The kernel's start_boottime (ns) in /proc's clock ticks (the kernel's
    /// own `nsec_to_clock_t` also floors).
    pub fn ticks(&self, start_boottime_ns: u64) -> u64 {
        start_boottime_ns / self.ns_per_tick
    }

    pub fn id(&self, pid: u32, start_ticks: u64) -> String {
        let mut h = Sha256::new();
        h.update(self.boot_id.as_bytes());
        h.update(pid.to_le_bytes());
        h.update(start_ticks.to_le_bytes());
        let digest = h.finalize();
        digest[..16].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The part of a process's credentials that says how privileged it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CredState {
    pub uid: u32,
    pub euid: u32,
    pub cap_permitted: u64,
    pub cap_effective: u64,
}

impl CredState {
    /// Does `self` hold anything `before` did not: root, or a capability?
    pub fn gains_over(&self, before: &CredState) -> bool {
        let became_root =
            (self.uid == 0 && before.uid != 0) || (self.euid == 0 && before.euid != 0);
        became_root
            || self.cap_permitted & !before.cap_permitted != 0
            || self.cap_effective & !before.cap_effective != 0
    }
}

pub struct ProcessTable {
    by_pid: HashMap<u32, ProcessInfo>,
    /// Insertion order, for eviction; entries may be stale (pid reused or
    /// removed) and are skipped when popped.
    order: VecDeque<(u32, u64)>,
    /// Exited processes kept a little longer so that late events and
    /// children can still name them.
    exited: VecDeque<(u32, u64)>,
    capacity: usize,
    exited_capacity: usize,
    evicted: u64,
    /// Changes whenever a process's identity may have: an entry added,
    /// replaced, updated through [`ProcessTable::entry`], marked exited or
    /// removed. What is derived from the table (a parent's description,
    /// an ancestry) stays valid while it does not change.
    generation: u64,
    pub ids: EntityIds,
}

impl ProcessTable {
    pub fn new(capacity: usize, ids: EntityIds) -> Self {
        ProcessTable {
            by_pid: HashMap::with_capacity(capacity.min(8192)),
            order: VecDeque::new(),
            exited: VecDeque::new(),
            capacity,
            exited_capacity: (capacity / 16).max(64),
            evicted: 0,
            generation: 0,
            ids,
        }
    }

    pub fn process_count(&self) -> usize {
        self.by_pid.len()
    }

    /// Processes dropped because the table was full.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    pub fn get(&self, pid: u32) -> Option<&ProcessInfo> {
        self.by_pid.get(&pid)
    }

    /// The entry for `pid` if it is the process that started at `start_ticks`.
    pub fn get_exact(&self, pid: u32, start_ticks: u64) -> Option<&ProcessInfo> {
        self.by_pid
            .get(&pid)
            .filter(|p| p.start_ticks == start_ticks)
    }

    /// See the field: compare two values to know whether anything derived
    /// from the table in between is stale.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Records the credentials seen at an event, returning the ones seen
    /// before; None when the process is not in the table. The only change
    /// that leaves the generation alone: credentials are not part of any
    /// description derived from the table.
    pub fn replace_creds(
        &mut self,
        pid: u32,
        start_ticks: u64,
        now: CredState,
    ) -> Option<Option<CredState>> {
        let p = self
            .by_pid
            .get_mut(&pid)
            .filter(|p| p.start_ticks == start_ticks)?;
        Some(p.creds.replace(now))
    }

    /// Inserts or replaces; a different start time under the same pid is pid
    /// reuse and replaces the old process.
    pub fn upsert(&mut self, info: ProcessInfo) -> &ProcessInfo {
        self.generation += 1;
        let key = (info.pid, info.start_ticks);
        let is_new = self.get_exact(info.pid, info.start_ticks).is_none();
        if is_new {
            self.make_room();
            self.order.push_back(key);
        }
        self.by_pid.insert(info.pid, info);
        self.by_pid.get(&key.0).expect("just inserted")
    }

    /// A new entry for a process the kernel saw start, or the existing one.
    pub fn entry(&mut self, pid: u32, ppid: u32, start_ticks: u64) -> &mut ProcessInfo {
        if self.get_exact(pid, start_ticks).is_none() {
            let info = ProcessInfo {
                pid,
                ppid,
                start_ticks,
                entity_id: self.ids.id(pid, start_ticks),
                name: None,
                executable: None,
                args: None,
                working_directory: None,
                container: None,
                creds: None,
                exe_hash: None,
                exited: false,
            };
            self.upsert(info);
        }
        // The caller may change anything in the entry.
        self.generation += 1;
        let p = self.by_pid.get_mut(&pid).expect("present");
        // Reparenting (the parent died): the kernel's value is the truth.
        p.ppid = ppid;
        p
    }

    /// [`ProcessTable::entry`] for callers that change nothing in it: the
    /// generation moves only if the entry is new or was reparented, so
    /// that a syscall event does not throw away what was derived.
    pub fn ensure(&mut self, pid: u32, ppid: u32, start_ticks: u64) {
        match self
            .by_pid
            .get_mut(&pid)
            .filter(|p| p.start_ticks == start_ticks)
        {
            Some(p) if p.ppid == ppid => {}
            Some(p) => {
                p.ppid = ppid;
                self.generation += 1;
            }
            None => {
                self.entry(pid, ppid, start_ticks);
            }
        }
    }

    pub fn mark_exited(&mut self, pid: u32, start_ticks: u64) {
        self.generation += 1;
        if let Some(p) = self
            .by_pid
            .get_mut(&pid)
            .filter(|p| p.start_ticks == start_ticks)
        {
            p.exited = true;
            self.exited.push_back((pid, start_ticks));
        }
        while self.exited.len() > self.exited_capacity {
            if let Some((pid, start)) = self.exited.pop_front() {
                if self.get_exact(pid, start).is_some_and(|p| p.exited) {
                    self.by_pid.remove(&pid);
                }
            }
        }
    }

    /// Ancestors of `pid` beyond its parent, nearest first, at most `depth`.
    pub fn ancestors(&self, parent_pid: u32, depth: usize) -> Vec<Ancestor> {
        let mut out = Vec::new();
        let mut next = self.by_pid.get(&parent_pid).map(|p| p.ppid);
        while let Some(pid) = next {
            if out.len() >= depth || pid == 0 {
                break;
            }
            let Some(p) = self.by_pid.get(&pid) else {
                break;
            };
            out.push(Ancestor {
                pid: p.pid,
                entity_id: p.entity_id.clone(),
                executable: p.executable.as_deref().cloned(),
                name: p.name.as_deref().cloned(),
            });
            // pid 1's parent is 0; a loop can only come from a stale entry.
            if p.ppid == p.pid || out.iter().any(|a| a.pid == p.ppid) {
                break;
            }
            next = Some(p.ppid);
        }
        out
    }

    fn make_room(&mut self) {
        while self.by_pid.len() >= self.capacity {
            // Exited processes first, then the oldest live one.
            let victim = self.exited.pop_front().or_else(|| self.order.pop_front());
            let Some((pid, start)) = victim else { break };
            if self.get_exact(pid, start).is_some() {
                self.by_pid.remove(&pid);
                self.evicted += 1;
            }
        }
        // Keep the order queue from growing without bound with stale keys.
        if self.order.len() > self.capacity * 2 {
            let by_pid = &self.by_pid;
            self.order
                .retain(|(pid, start)| by_pid.get(pid).is_some_and(|p| p.start_ticks == *start));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> EntityIds {
        EntityIds::new("boot".into(), 100)
    }

    fn proc_info(t: &ProcessTable, pid: u32, ppid: u32, start: u64) -> ProcessInfo {
        ProcessInfo {
            pid,
            ppid,
            start_ticks: start,
            entity_id: t.ids.id(pid, start),
            name: Some(Text::from(format!("p{pid}").as_str()).into()),
            executable: Some(Text::from(format!("/bin/p{pid}").as_str()).into()),
            args: None,
            working_directory: None,
            container: None,
            creds: None,
            exe_hash: None,
            exited: false,
        }
    }

    #[test]
    fn entity_id_depends_on_pid_start_and_boot() {
        let a = ids();
        let b = EntityIds::new("other-boot".into(), 100);
        assert_eq!(a.id(10, 5), a.id(10, 5));
        assert_ne!(a.id(10, 5), a.id(10, 6));
        assert_ne!(a.id(10, 5), a.id(11, 5));
        assert_ne!(a.id(10, 5), b.id(10, 5));
        assert_eq!(a.ticks(1_234_567_890), 123);
    }

    #[test]
    fn pid_reuse_replaces_the_old_process() {
        let mut t = ProcessTable::new(1024, ids());
        let old = proc_info(&t, 50, 1, 100);
        t.upsert(old.clone());
        let new = proc_info(&t, 50, 1, 200);
        t.upsert(new.clone());
        assert_eq!(t.get(50).map(|p| p.start_ticks), Some(200));
        assert_ne!(old.entity_id, new.entity_id);
        assert!(t.get_exact(50, 100).is_none());
    }

    #[test]
    fn ancestry_walks_parents_nearest_first_and_is_bounded() {
        let mut t = ProcessTable::new(1024, ids());
        for (pid, ppid) in [(1, 0), (10, 1), (20, 10), (30, 20), (40, 30)] {
            let p = proc_info(&t, pid, ppid, pid as u64);
            t.upsert(p);
        }
        // Event from 40: parent is 30, ancestors start at 20.
        let a: Vec<u32> = t.ancestors(30, 8).iter().map(|a| a.pid).collect();
        assert_eq!(a, vec![20, 10, 1]);
        let a: Vec<u32> = t.ancestors(30, 2).iter().map(|a| a.pid).collect();
        assert_eq!(a, vec![20, 10]);
    }

    #[test]
    fn a_parent_loop_terminates() {
        let mut t = ProcessTable::new(1024, ids());
        let a = proc_info(&t, 5, 6, 1);
        let b = proc_info(&t, 6, 5, 1);
        t.upsert(a);
        t.upsert(b);
        assert!(t.ancestors(5, 64).len() <= 2);
    }

    #[test]
    fn generation_moves_with_identity_changes_only() {
        let mut t = ProcessTable::new(16, ids());
        t.upsert(proc_info(&t, 10, 1, 5));
        let g = t.generation();
        // A syscall event of a known process with the same parent.
        t.ensure(10, 1, 5);
        let creds = CredState {
            uid: 0,
            euid: 0,
            cap_permitted: 0,
            cap_effective: 0,
        };
        assert_eq!(t.replace_creds(10, 5, creds), Some(None));
        assert_eq!(t.generation(), g, "nothing derived changed");
        t.ensure(10, 2, 5);
        assert!(t.generation() > g, "reparented");
        let g = t.generation();
        t.entry(10, 2, 5);
        assert!(t.generation() > g, "entry() lets the caller change it");
        let g = t.generation();
        t.ensure(11, 10, 7);
        assert!(t.generation() > g, "a new process");
        let g = t.generation();
        t.mark_exited(11, 7);
        assert!(t.generation() > g, "an exit");
    }

    #[test]
    fn full_table_evicts_exited_first_and_counts() {
        let mut t = ProcessTable::new(4, ids());
        for pid in 1..=4 {
            let p = proc_info(&t, pid, 0, 1);
            t.upsert(p);
        }
        t.mark_exited(3, 1);
        let p = proc_info(&t, 5, 0, 1);
        t.upsert(p);
        assert!(t.get(3).is_none(), "the exited process went first");
        assert!(t.get(1).is_some());
        assert_eq!(t.evicted(), 1);
        let p = proc_info(&t, 6, 0, 1);
        t.upsert(p);
        assert!(t.get(1).is_none(), "then the oldest");
        assert_eq!(t.process_count(), 4);
        assert_eq!(t.evicted(), 2);
    }
}
