//! normalize → enrich: kernel records in, finished [`Event`]s out.
//!
//! Owns the process table and every cache, so it runs on one task and needs
//! no locks. Assigns `event.sequence` (contiguous from 1) and `event.id`.

use std::sync::Arc;

use sensor_common::{ID_UNSET, TaskInfo};

use crate::enrich::clock::BootClock;
use crate::enrich::container;
use crate::enrich::exehash::{ExeHasher, HashConfig, Outcome};
use crate::enrich::process::{CredState, EntityIds, ProcessInfo, ProcessTable};
use crate::enrich::procfs::ProcSnapshot;
use crate::enrich::runtime::{Lookup, RuntimeCache};
use crate::enrich::user::{Accounts, UserNames};
use crate::event::{
    Agent, Cgroup, Container, ContainerImage, ContainerLookups, ErrorInfo, Event, EventMeta,
    ExecutableHashes, Frozen, Gain, Heartbeat, Host, Labels, Lost, Orchestrator,
    OrchestratorResource, PrivilegeGain, ProbeErrorCount, Process, ProcessHash, SensorFields,
    SequenceGap, Shared, Signal, Text, Thread, caps,
};
use crate::sink::sequence::SequenceLease;
use crate::source::ebpf::decode::{ExecRecord, ExitRecord, ForkRecord, KernelEvent};

mod audit;
pub mod bench;
mod cred;
mod file;
mod followed;
mod io_uring;
mod lineage;
mod net;
mod symlink_target;
mod system;
mod watch;

pub struct Pipeline {
    table: ProcessTable,
    users: UserNames,
    host: Arc<Frozen<Host>>,
    agent: Arc<Frozen<Agent>>,
    clock: BootClock,
    seq: u64,
    /// Prefix of `event.id`: random per sensor start, so ids never repeat
    /// even when sequence numbers restart.
    instance: String,
    ancestry_depth: usize,
    /// Non-blocking connects in progress: (pid, fd, process start, the
    /// record's `arg`: which socket, for a connect with no fd) to the
    /// connect's `event.id`, so that its end can name it. Bounded.
    connecting: std::collections::HashMap<(u32, i32, u64, u32), String>,
    /// io_uring requests reported at submission, until their completion.
    io_uring: io_uring::InFlight,
    /// The watched paths, to check path arguments exactly and to name the
    /// watch a write matched.
    watched: crate::source::ebpf::watch::Watched,
    /// `[filter] ignore_path_prefixes`, for the chmod and chown calls and
    /// io_uring opens the kernel side leaves to the daemon: where the
    /// prefix is not a directory (see `file::ignored`,
    /// `io_uring::held_open_ignored`).
    ignored_path_prefixes: Vec<Vec<u8>>,
    /// Records the kernel side sent up for that filter and this dropped,
    /// for the heartbeat.
    path_filter_drops: u64,
    /// Path arguments that may lead elsewhere than their bytes say,
    /// followed again (see `watch`).
    resolver: crate::enrich::path_resolve::PathResolver,
    /// Persists `seq` across restarts (see `sink::sequence`).
    lease: Option<SequenceLease>,
    /// Container names, images and pods by id (bounded; see `enrich::runtime`).
    runtimes: RuntimeCache,
    /// `process.hash`, when `[process] hash_executables` is on.
    hasher: Option<ExeHasher>,
    /// Which cgroup hierarchy to read from /proc (detected when first needed).
    cgroup_mode: Option<crate::source::ebpf::offsets::CgroupMode>,
    /// Processes read from /proc after start because an event named one the
    /// table did not know, and events whose process was gone by then.
    adopted: u64,
    unresolved: u64,
    lineages: lineage::LineageCache,
    /// The host's namespaces, to tell a setns into them.
    host_namespaces: crate::enrich::namespaces::HostNamespaces,
    /// Symlinks through magic links seen made or removed since the daemon
    /// last took them, for the kernel's path check (see `symlink_target`).
    magic_link_changes: Vec<crate::source::ebpf::magic_links::MagicLinkChange>,
}

/// What an event is, in ECS terms.
struct Kind {
    category: &'static [&'static str],
    type_: &'static [&'static str],
    action: &'static str,
    outcome: &'static str,
}

impl Kind {
    fn process(action: &'static str, type_: &'static [&'static str]) -> Kind {
        Kind {
            category: PROCESS,
            type_,
            action,
            outcome: "success",
        }
    }
}

/// `event.action` of every credential syscall event: the syscall itself
/// is in `sensor.syscall`.
const CRED_ACTION: &str = "credential_change";

const PROCESS: &[&str] = &["process"];
const START: &[&str] = &["start"];
const END: &[&str] = &["end"];
const HOST: &[&str] = &["host"];
const INFO: &[&str] = &["info"];
const ERROR: &[&str] = &["error"];

impl Pipeline {
    pub fn new(
        host: Host,
        agent: Agent,
        table_size: usize,
        ancestry_depth: usize,
        ticks_per_second: u64,
    ) -> Self {
        let ids = EntityIds::new(host.boot_id.clone(), ticks_per_second);
        let mut instance = [0u8; 8];
        crate::enrich::host::random_bytes(&mut instance);
        Pipeline {
            table: ProcessTable::new(table_size, ids),
            users: UserNames::default(),
            host: Arc::new(Frozen::new(host)),
            agent: Arc::new(Frozen::new(agent)),
            clock: BootClock::default(),
            seq: 0,
            instance: instance.iter().map(|b| format!("{b:02x}")).collect(),
            ancestry_depth,
            connecting: std::collections::HashMap::new(),
            io_uring: Default::default(),
            watched: Default::default(),
            ignored_path_prefixes: Vec::new(),
            path_filter_drops: 0,
            resolver: Default::default(),
            lease: None,
            runtimes: RuntimeCache::new(Lookup::default()),
            hasher: None,
            cgroup_mode: None,
            adopted: 0,
            unresolved: 0,
            lineages: Default::default(),
            host_namespaces: crate::enrich::namespaces::HostNamespaces::read(),
            magic_link_changes: Vec::new(),
        }
    }

    /// Turns executable hashing on (before `seed`, so that processes found
    /// at start are hashed too).
    pub fn enable_hashing(&mut self, config: HashConfig) -> std::io::Result<()> {
        self.hasher = Some(ExeHasher::start(config)?);
        Ok(())
    }

    /// Continue numbering after `last` (from an earlier run), persisting
    /// the numbers used in `lease`.
    pub fn resume_sequence(&mut self, lease: SequenceLease, last: u64) {
        self.seq = last;
        self.lease = Some(lease);
    }

    /// Graceful stop: the next start continues right after the last number.
    pub fn close_sequence(&mut self) {
        if let Some(l) = self.lease.as_mut() {
            if let Err(e) = l.close(self.seq) {
                tracing::error!("cannot persist the sequence number: {e}");
            }
        }
    }

    /// Fills the table with processes that existed before the sensor, so
    /// their later events have parents and ancestry.
    pub fn seed(&mut self, snapshots: impl IntoIterator<Item = ProcSnapshot>) {
        for s in snapshots {
            self.insert_snapshot(s);
        }
    }

    fn insert_snapshot(&mut self, s: ProcSnapshot) {
        // Queued, never waited for: nothing is emitted yet. Kernel threads
        // have no executable to hash.
        let exe_hash = match (&mut self.hasher, &s.exe) {
            (Some(h), Some(_)) => Some(h.identify(s.pid, None, false).0.ok_or("exited")),
            _ => None,
        };
        let info = ProcessInfo {
            pid: s.pid,
            ppid: s.ppid,
            start_ticks: s.start_ticks,
            entity_id: self.table.ids.id(s.pid, s.start_ticks),
            name: Some(Text(s.comm).into()),
            executable: s.exe.map(|e| Text(e).into()),
            args: Some(Shared::new(s.args.into_iter().map(Text).collect())),
            working_directory: s.cwd.map(|c| Text(c).into()),
            container: s.cgroup.as_deref().and_then(container::from_cgroup_path),
            creds: None,
            exe_hash,
            exited: false,
        };
        self.table.upsert(info);
    }

    /// A live process the table does not know (its fork and exec records
    /// were lost, or it was evicted from a full table), read from /proc now
    /// so that its event is not emitted bare. Only the process that started
    /// at `ticks` is taken: a reused pid is someone else. Counted.
    fn adopt(&mut self, pid: u32, ticks: Option<u64>) -> bool {
        let mode = *self
            .cgroup_mode
            .get_or_insert_with(crate::source::ebpf::offsets::CgroupMode::detect);
        let snapshot =
            crate::enrich::procfs::read_process(std::path::Path::new("/proc"), pid, mode)
                .filter(|s| ticks.is_none_or(|t| t == s.start_ticks));
        match snapshot {
            Some(s) => {
                self.insert_snapshot(s);
                self.adopted += 1;
                true
            }
            None => {
                self.unresolved += 1;
                false
            }
        }
    }

    /// Makes sure a syscall event's process is in the table: read back
    /// from /proc if it is not, else an entry with what the record holds.
    fn known(&mut self, task: &TaskInfo, ticks: u64) {
        if self.table.get_exact(task.tgid, ticks).is_none() {
            self.adopt(task.tgid, Some(ticks));
        }
        self.table.ensure(task.tgid, task.ppid, ticks);
    }

    /// Periodic housekeeping, off the per-event path.
    pub fn tick(&mut self) {
        self.clock.resync();
        self.users.invalidate_if_changed();
        self.io_uring.tick();
    }

    pub fn set_watched(&mut self, watched: crate::source::ebpf::watch::Watched) {
        self.watched = watched;
    }

    pub fn set_ignored_path_prefixes(&mut self, prefixes: &[String]) {
        self.ignored_path_prefixes = prefixes.iter().map(|p| p.as_bytes().to_vec()).collect();
    }

    pub fn watched(&self) -> &crate::source::ebpf::watch::Watched {
        &self.watched
    }

    /// The symlinks through magic links seen made or removed since the
    /// last call, in the records' order, to apply to [`Self::watched`]
    /// and the kernel's maps.
    pub fn take_magic_link_changes(
        &mut self,
    ) -> Vec<crate::source::ebpf::magic_links::MagicLinkChange> {
        std::mem::take(&mut self.magic_link_changes)
    }

    pub fn table(&self) -> &ProcessTable {
        &self.table
    }

    /// The event for a kernel record; None when the record is one the
    /// kernel side let through only because it could not decide exactly
    /// (a path argument near, but not in, a watched path).
    pub fn handle(&mut self, ev: KernelEvent) -> Option<Event> {
        Some(match ev {
            KernelEvent::Exec(e) => self.exec(e),
            KernelEvent::Fork(f) => self.fork(f),
            KernelEvent::Exit(x) => self.exit(x),
            KernelEvent::FileAttr(f) => return self.file_attr(f),
            KernelEvent::Cred(c) => self.cred(c),
            KernelEvent::Net(n) => self.net(n),
            KernelEvent::System(x) => {
                if io_uring::held_open_ignored(&x, &self.ignored_path_prefixes) {
                    self.path_filter_drops += 1;
                    return None;
                }
                self.system(x)
            }
            KernelEvent::FileWrite(w) => return self.file_write(w),
        })
    }

    fn exec(&mut self, e: ExecRecord) -> Event {
        let ticks = self.table.ids.ticks(e.task.start_boottime);
        let args: Vec<Text> = e.argv.into_iter().map(Text).collect();
        // The kernel names a memfd's file `memfd:<name>`, a pseudo file with
        // no parent: its whole path is that one component.
        let fileless = e.exe_unlinked.then(|| {
            if e.exe.starts_with(b"/memfd:") {
                "memfd"
            } else {
                "deleted"
            }
        });
        // Before the entry is borrowed; may wait a bounded moment.
        // A cut path cannot be checked against the running program.
        let exec_path: &[u8] = if e.exe_truncated { b"" } else { &e.exe };
        let exe_hash =
            self.hasher
                .as_mut()
                .map(|h| match h.identify(e.task.tgid, Some(exec_path), true) {
                    (Some(key), _) => Ok(key),
                    (None, Outcome::Unavailable(why)) => Err(why),
                    (None, Outcome::Sha256(_)) => Err("unknown"),
                });
        let entry = self.table.entry(e.task.tgid, e.task.ppid, ticks);
        entry.exe_hash = exe_hash;
        entry.name = Some(comm(&e.task).into());
        entry.executable = non_empty(e.exe).map(Shared::new);
        entry.args = Some(Shared::new(args));
        entry.working_directory = non_empty(e.cwd).map(Shared::new);
        // An exec'd process can have been moved into a container's cgroup
        // (`podman exec`): the cgroup at exec is the truth. An unreadable
        // cgroup keeps what was known.
        if !e.cgroup.is_empty() {
            entry.container = container::from_cgroup_path(&e.cgroup);
        }
        entry.exited = false;
        let mut sensor = SensorFields::default();
        if e.argv_truncated {
            sensor.truncated.push("process.args");
            sensor.args_bytes = Some(e.argv_total);
        }
        if e.argv_unreadable {
            sensor.truncated.push("process.args");
        }
        sensor.fileless = fileless;
        if e.exe_truncated {
            sensor.truncated.push("process.executable");
        }
        if e.cwd_truncated {
            sensor.truncated.push("process.working_directory");
        }
        if e.cgroup_truncated {
            sensor.truncated.push("sensor.cgroup.path");
        }
        if !e.cgroup.is_empty() {
            sensor.cgroup = Some(Cgroup {
                path: Text(e.cgroup),
                id: (e.task.cgroup_id != 0).then_some(e.task.cgroup_id),
            });
        }
        self.process_event(e.boot_ns, &e.task, Kind::process("exec", START), sensor)
    }

    fn fork(&mut self, f: ForkRecord) -> Event {
        let ticks = self.table.ids.ticks(f.task.start_boottime);
        let parent_ticks = self.table.ids.ticks(f.task.parent_start_boottime);
        // A child runs its parent's image, in its parent's container, until
        // it execs.
        let inherited = self
            .table
            .get_exact(f.task.ppid, parent_ticks)
            .or_else(|| self.table.get(f.task.ppid))
            .cloned();
        let entry = self.table.entry(f.task.tgid, f.task.ppid, ticks);
        entry.name = Some(comm(&f.task).into());
        if let Some(parent) = inherited {
            entry.executable = parent.executable;
            entry.args = parent.args;
            entry.working_directory = parent.working_directory;
            entry.container = parent.container;
            entry.exe_hash = parent.exe_hash;
        }
        self.process_event(
            f.boot_ns,
            &f.task,
            Kind::process("fork", START),
            SensorFields::default(),
        )
    }

    fn exit(&mut self, x: ExitRecord) -> Event {
        let ticks = self.table.ids.ticks(x.task.start_boottime);
        let mut sensor = SensorFields::default();
        let sig = x.status & 0x7f;
        if sig != 0 {
            sensor.signal = Some(Signal {
                number: sig,
                name: signal_name(sig),
            });
            sensor.core_dumped = Some(x.status & 0x80 != 0);
        }
        // Make sure the process is known even if we never saw it start.
        self.table.ensure(x.task.tgid, x.task.ppid, ticks);
        let mut ev = self.process_event(x.boot_ns, &x.task, Kind::process("exit", END), sensor);
        if let Some(p) = ev.process.as_mut() {
            // A signal death has no exit code of its own; ECS convention
            // (and the shell's) is 128 + signal.
            p.exit_code = Some(if sig != 0 {
                128 + sig as i32
            } else {
                ((x.status >> 8) & 0xff) as i32
            });
        }
        self.table.mark_exited(x.task.tgid, ticks);
        ev
    }

    /// A process event for `task`, whose table entry is already up to date.
    fn process_event(
        &mut self,
        boot_ns: u64,
        task: &TaskInfo,
        kind: Kind,
        mut sensor: SensorFields,
    ) -> Event {
        let ticks = self.table.ids.ticks(task.start_boottime);
        use sensor_common::compat::{TASK_IA32, TASK_X32};
        match task.flags & (TASK_IA32 | TASK_X32) {
            TASK_IA32 => sensor.syscall_abi = Some("ia32"),
            TASK_X32 => sensor.syscall_abi = Some("x32"),
            _ => {}
        }
        sensor.privilege_gain = self.track_privilege(task, ticks, kind.action);
        let mut process = self.describe(task.tgid, ticks);
        if task.tid != task.tgid {
            process.thread = Some(Thread { id: task.tid });
        }
        process.start = Some(self.clock.rfc3339(task.start_boottime));
        self.hash_fields(task.tgid, ticks, &mut process, &mut sensor);
        let container = self
            .table
            .get_exact(task.tgid, ticks)
            .and_then(|p| p.container.clone());
        let lineage = self.lineage(task);
        // Processes whose root shows the container's files, nearest first.
        let candidates: Vec<u32> = [task.tgid, task.ppid]
            .into_iter()
            .chain(
                lineage
                    .ancestors
                    .iter()
                    .flat_map(|a| a.iter().map(|a| a.pid)),
            )
            .collect();
        let accounts = match &container {
            Some(c) => Accounts::Container {
                id: &c.id,
                pids: &candidates,
            },
            None => Accounts::Host,
        };
        process.user = Some(self.users.user(task.euid, &accounts));
        process.real_user = Some(self.users.user(task.uid, &accounts));
        process.saved_user = Some(self.users.user(task.suid, &accounts));
        process.group = Some(self.users.group(task.egid, &accounts));
        process.real_group = Some(self.users.group(task.gid, &accounts));
        process.saved_group = Some(self.users.group(task.sgid, &accounts));
        if task.fsuid != task.euid {
            sensor.fs_user = Some(self.users.user(task.fsuid, &accounts));
        }
        if task.fsgid != task.egid {
            sensor.fs_group = Some(self.users.group(task.fsgid, &accounts));
        }
        if task.loginuid != ID_UNSET {
            // The login uid is set by the host's login machinery (pam_loginuid).
            sensor.login_user = Some(self.users.user(task.loginuid, &Accounts::Host));
        }
        if task.sessionid != ID_UNSET {
            sensor.session_id = Some(task.sessionid);
        }
        sensor.tty = tty_path(&task.tty);
        process.parent = Some(lineage.parent);
        sensor.ancestors = lineage.ancestors;
        for (field, text) in [
            ("process.executable", process.executable.as_deref()),
            (
                "process.working_directory",
                process.working_directory.as_deref(),
            ),
            ("process.name", process.name.as_deref()),
        ] {
            if text.is_some_and(Text::is_escaped) {
                sensor.escaped.push(field.to_owned());
            }
        }
        if let Some(args) = &process.args {
            for (i, a) in args.iter().enumerate() {
                if a.is_escaped() {
                    sensor.escaped.push(format!("process.args[{i}]"));
                }
            }
        }
        if sensor.cgroup.as_ref().is_some_and(|c| c.path.is_escaped()) {
            sensor.escaped.push("sensor.cgroup.path".to_owned());
        }
        let (container, orchestrator) = match container {
            Some(c) => self.describe_container(c, &mut sensor),
            None => (None, None),
        };
        let meta = self.meta(
            "event",
            kind.category,
            kind.type_,
            kind.action,
            Some(kind.outcome),
            "ebpf",
        );
        Event {
            process: Some(process),
            container,
            orchestrator,
            sensor,
            ..Event::new(
                self.clock.rfc3339(boot_ns),
                meta,
                self.host.clone(),
                self.agent.clone(),
            )
        }
    }

    /// Compares the task's privileges with those last seen from its
    /// process and remembers the new ones. A gain is reported unless a
    /// credential syscall made it (its own event says so).
    fn track_privilege(
        &mut self,
        task: &TaskInfo,
        ticks: u64,
        action: &'static str,
    ) -> Option<PrivilegeGain> {
        // Capabilities held in a user namespace of the process's own
        // (`unshare -U`, a rootless container) are no privilege on the
        // host: counted as none, so that entering one is no gain, and
        // holding them again in the host's namespace is.
        let nested = task.flags & sensor_common::TASK_NESTED_USER_NS != 0;
        let host_caps = |caps: u64| if nested { 0 } else { caps };
        let now = CredState {
            uid: task.uid,
            euid: task.euid,
            cap_permitted: host_caps(task.cap_permitted),
            cap_effective: host_caps(task.cap_effective),
        };
        let before = self.table.replace_creds(task.tgid, ticks, now)??;
        if !now.gains_over(&before) || action == CRED_ACTION {
            return None;
        }
        let gain = |c: &CredState| Gain {
            uid: c.uid,
            euid: c.euid,
            capabilities: caps::names(c.cap_permitted),
        };
        Some(PrivilegeGain {
            via: if action == "exec" {
                "exec"
            } else {
                "unexplained"
            },
            before: gain(&before),
            after: gain(&now),
        })
    }

    /// `container.*` and `orchestrator.*` of `c`, with what its runtime's
    /// files say (cached); the id alone when they say nothing.
    fn describe_container(
        &mut self,
        c: container::ContainerRef,
        sensor: &mut SensorFields,
    ) -> (Option<Container>, Option<Orchestrator>) {
        let info = self.runtimes.get(&c);
        let mut out = Container {
            id: c.id,
            runtime: c.runtime,
            name: None,
            image: None,
            labels: Labels::default(),
        };
        let Some(info) = info else {
            return (Some(out), None);
        };
        out.name = info.name.clone();
        out.image = info.image.clone().map(|name| ContainerImage { name });
        out.labels = info.labels.clone();
        if info.labels_truncated {
            sensor.truncated.push("container.labels");
        }
        if info.api_missed {
            sensor.unavailable.push("container.labels");
        }
        for (field, text) in [
            ("container.name", out.name.as_ref()),
            ("container.image.name", info.image.as_ref()),
        ] {
            if text.is_some_and(Text::is_escaped) {
                sensor.escaped.push(field.to_owned());
            }
        }
        let orchestrator = info.pod.as_ref().map(|p| Orchestrator {
            type_: "kubernetes",
            namespace: p.namespace.clone(),
            resource: OrchestratorResource {
                type_: "pod",
                name: p.name.clone(),
                id: p.uid.clone(),
            },
        });
        (Some(out), orchestrator)
    }

    /// `process.hash`, or `sensor.hash_unavailable` saying why not.
    fn hash_fields(
        &mut self,
        pid: u32,
        ticks: u64,
        process: &mut Process,
        sensor: &mut SensorFields,
    ) {
        let Some(hasher) = self.hasher.as_mut() else {
            return;
        };
        let known = self.table.get_exact(pid, ticks).and_then(|p| p.exe_hash);
        let outcome = match known {
            Some(Ok(key)) => hasher.resolve(key),
            Some(Err(why)) => Outcome::Unavailable(why),
            // Never seen to exec, nor found at start (its fork came first
            // and its parent was unknown).
            None => Outcome::Unavailable("unknown"),
        };
        match outcome {
            Outcome::Sha256(sha256) => process.hash = Some(ProcessHash { sha256 }),
            Outcome::Unavailable(why) => sensor.hash_unavailable = Some(why),
        }
    }

    fn describe(&self, pid: u32, ticks: u64) -> Process {
        match self.table.get_exact(pid, ticks) {
            Some(p) => to_process(p),
            None => Process {
                pid,
                entity_id: self.table.ids.id(pid, ticks),
                ..Process::default()
            },
        }
    }

    /// `count` events of `kind` were dropped at `source` since the last report.
    pub fn lost(&mut self, source: &'static str, kind: &'static str, count: u64) -> Event {
        let meta = self.meta(
            "pipeline_error",
            HOST,
            INFO,
            "lost",
            Some("failure"),
            "sensor",
        );
        self.sensor_event(
            meta,
            SensorFields {
                lost: Some(Lost {
                    source,
                    kind,
                    count,
                }),
                ..SensorFields::default()
            },
        )
    }

    /// The kernel side failed `count` reads of `kind` since the last report.
    pub fn probe_error(&mut self, kind: &'static str, count: u64) -> Event {
        let meta = self.meta(
            "pipeline_error",
            HOST,
            ERROR,
            "probe_error",
            Some("failure"),
            "sensor",
        );
        self.sensor_event(
            meta,
            SensorFields {
                probe_error: Some(ProbeErrorCount { kind, count }),
                ..SensorFields::default()
            },
        )
    }

    /// Sequence numbers `first..=last` never reached `sink`'s spool (the
    /// sensor was killed while they were in memory).
    pub fn sequence_gap(&mut self, sink: &'static str, first: u64, last: u64) -> Event {
        let meta = self.meta(
            "pipeline_error",
            HOST,
            INFO,
            "lost",
            Some("failure"),
            "sensor",
        );
        self.sensor_event(
            meta,
            SensorFields {
                lost: Some(Lost {
                    source: "restart",
                    kind: sink,
                    count: last + 1 - first,
                }),
                gap: Some(SequenceGap { first, last }),
                ..SensorFields::default()
            },
        )
    }

    pub fn heartbeat(&mut self, mut heartbeat: Heartbeat) -> Event {
        heartbeat.processes_adopted = Some(self.adopted);
        heartbeat.processes_unresolved = Some(self.unresolved);
        heartbeat.path_filter_userspace_drops = Some(self.path_filter_drops);
        heartbeat.path_resolution = Some(self.resolver.stats());
        heartbeat.magic_links = Some(self.watched.magic_links.stats());
        let s = self.runtimes.stats;
        heartbeat.container_lookups = Some(ContainerLookups {
            found: s.found,
            failed: s.failed,
            evicted: s.evicted,
            cached: self.runtimes.cached(),
        });
        if let Some(h) = &self.hasher {
            heartbeat.executable_hashes = Some(ExecutableHashes {
                counts: h.stats,
                cached: h.cached(),
            });
        }
        let meta = self.meta("metric", HOST, INFO, "heartbeat", None, "sensor");
        self.sensor_event(
            meta,
            SensorFields {
                heartbeat: Some(Box::new(heartbeat)),
                ..SensorFields::default()
            },
        )
    }

    fn sensor_event(&mut self, meta: EventMeta, sensor: SensorFields) -> Event {
        Event {
            sensor,
            ..Event::new(
                self.clock.rfc3339(BootClock::now_boot_ns()),
                meta,
                self.host.clone(),
                self.agent.clone(),
            )
        }
    }

    fn meta(
        &mut self,
        kind: &'static str,
        category: &'static [&'static str],
        type_: &'static [&'static str],
        action: &'static str,
        outcome: Option<&'static str>,
        module: &'static str,
    ) -> EventMeta {
        self.seq += 1;
        if let Some(l) = self.lease.as_mut() {
            if let Err(e) = l.cover(self.seq) {
                tracing::error!("cannot persist the sequence number: {e}");
            }
        }
        EventMeta {
            kind,
            category,
            type_,
            action,
            outcome,
            sequence: self.seq,
            id: format!("{}-{}", self.instance, self.seq),
            module,
        }
    }
}

/// `event.outcome` and `error.*` of a syscall's return value.
fn outcome(ret: i64) -> (&'static str, Option<ErrorInfo>) {
    if ret >= 0 {
        return ("success", None);
    }
    // The kernel's errors are -4095..=-1 (MAX_ERRNO). Anything below is no
    // errno (and i64::MIN must not overflow the negation): said as it is.
    let (code, message) = match ret.checked_neg().and_then(|e| i32::try_from(e).ok()) {
        Some(e @ 1..=4095) => match nix::errno::Errno::from_raw(e) {
            nix::errno::Errno::UnknownErrno => (format!("errno {e}"), "Unknown errno"),
            errno => (format!("{errno:?}"), errno.desc()),
        },
        _ => (format!("return value {ret}"), "not an error number"),
    };
    (
        "failure",
        Some(ErrorInfo {
            code,
            message: message.to_owned(),
        }),
    )
}

fn to_process(p: &ProcessInfo) -> Process {
    Process {
        pid: p.pid,
        entity_id: p.entity_id.clone(),
        name: p.name.clone(),
        executable: p.executable.clone(),
        args_count: p.args.as_ref().map(|a| a.len()),
        args: p.args.clone(),
        working_directory: p.working_directory.clone(),
        ..Process::default()
    }
}

fn comm(task: &TaskInfo) -> Text {
    Text(nul_terminated(&task.comm).to_vec())
}

fn nul_terminated(b: &[u8]) -> &[u8] {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    &b[..end]
}

fn non_empty(b: Vec<u8>) -> Option<Text> {
    (!b.is_empty()).then_some(Text(b))
}

/// The kernel names pseudo-terminals `pts3`; users know them as `/dev/pts/3`.
fn tty_path(raw: &[u8]) -> Option<String> {
    let name = String::from_utf8_lossy(nul_terminated(raw)).into_owned();
    if name.is_empty() {
        return None;
    }
    match name.strip_prefix("pts") {
        Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
            Some(format!("/dev/pts/{n}"))
        }
        _ => Some(format!("/dev/{name}")),
    }
}

pub(crate) fn signal_name(sig: u32) -> Option<&'static str> {
    nix::sys::signal::Signal::try_from(sig as i32)
        .ok()
        .map(|s| s.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Agent, Host};

    #[test]
    fn tty_names() {
        let mut raw = [0u8; 32];
        raw[..4].copy_from_slice(b"pts3");
        assert_eq!(tty_path(&raw).as_deref(), Some("/dev/pts/3"));
        let mut raw = [0u8; 32];
        raw[..4].copy_from_slice(b"tty1");
        assert_eq!(tty_path(&raw).as_deref(), Some("/dev/tty1"));
        assert_eq!(tty_path(&[0u8; 32]), None);
    }

    /// A non-root process's connects, as `flags` and `caps` mark its task.
    fn connect_as(p: &mut Pipeline, flags: u32, caps: u64) -> Event {
        // A pid no process on the build machine has: nothing from /proc.
        const PID: u32 = 4_200_101;
        // SAFETY: TaskInfo is plain integers and byte arrays.
        let mut task: TaskInfo = unsafe { std::mem::zeroed() };
        (task.tgid, task.tid, task.ppid) = (PID, PID, 1);
        (task.uid, task.euid) = (1000, 1000);
        task.start_boottime = 1_000_000_000;
        (task.flags, task.cap_permitted, task.cap_effective) = (flags, caps, caps);
        p.handle(bench::connect(task)).expect("a connect event")
    }

    #[test]
    fn a_return_value_below_the_errno_range_is_said_as_it_is() {
        let code = |ret| outcome(ret).1.map(|e| (e.code, e.message));
        assert_eq!(outcome(0).0, "success");
        assert_eq!(
            code(-1),
            Some(("EPERM".into(), "Operation not permitted".into()))
        );
        assert_eq!(
            code(-600),
            Some(("errno 600".into(), "Unknown errno".into()))
        );
        for ret in [-4096, -70_000, i64::from(i32::MIN) - 1, i64::MIN] {
            assert_eq!(
                code(ret),
                Some((format!("return value {ret}"), "not an error number".into()))
            );
        }
    }

    /// Kernel records carry attacker-controlled bytes and lengths: random
    /// records of every kind, with headers that pass (the kind, a size the
    /// kind can have), through decoding, the pipeline and JSON. None may
    /// panic. (`fuzz/`'s `kernel_record` target runs the same, guided.)
    #[test]
    fn random_records_of_every_kind_never_panic_the_pipeline() {
        use crate::source::ebpf::decode::decode;
        use sensor_common::EventKind;
        let mut p = Pipeline::new(Host::named("t"), Agent::named("t"), 64, 4, 100);
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for kind in EventKind::ALL {
            let mut decoded = 0;
            for round in 0..300 {
                let span = kind.max_size() - kind.fixed_size();
                let size = kind.fixed_size() + (next() as usize % (span + 1));
                let mut record: Vec<u8> = (0..size).map(|_| next() as u8).collect();
                // In half the records, small numbers in every word of the
                // fixed part: lengths, ops and flags that lead past the
                // first checks.
                if round % 2 == 0 {
                    for at in (8..kind.fixed_size() - 3).step_by(4) {
                        let small = (next() % [16, 300][next() as usize % 2]) as u32;
                        record[at..at + 4].copy_from_slice(&small.to_ne_bytes());
                    }
                }
                record[0..4].copy_from_slice(&(kind as u32).to_ne_bytes());
                record[4..8].copy_from_slice(&(size as u32).to_ne_bytes());
                let Ok(event) = decode(&record) else {
                    continue;
                };
                decoded += 1;
                if let Some(event) = p.handle(event) {
                    serde_json::to_vec(&event).expect("an event always encodes");
                }
            }
            // Not only the decoder's refusals were exercised (each kind
            // decodes 59 to 300 of them with this seed).
            assert!(decoded >= 30, "{kind:?}: {decoded} of 300 decoded");
        }
    }

    #[test]
    fn capabilities_in_a_nested_user_namespace_are_no_gain_and_keep_the_abi() {
        use sensor_common::TASK_NESTED_USER_NS;
        use sensor_common::compat::TASK_IA32;
        let mut p = Pipeline::new(Host::named("t"), Agent::named("t"), 64, 4, 100);
        assert!(connect_as(&mut p, 0, 0).sensor.privilege_gain.is_none());
        // Every capability, in its own user namespace, through int 0x80.
        let inside = connect_as(&mut p, TASK_NESTED_USER_NS | TASK_IA32, u64::MAX);
        assert!(inside.sensor.privilege_gain.is_none());
        assert_eq!(inside.sensor.syscall_abi, Some("ia32"));
        // The same capabilities in the host's namespace are a gain.
        let gain = connect_as(&mut p, 0, u64::MAX).sensor.privilege_gain;
        assert_eq!(gain.map(|g| g.via), Some("unexplained"));
    }

    #[test]
    fn signal_names() {
        assert_eq!(signal_name(9), Some("SIGKILL"));
        assert_eq!(signal_name(15), Some("SIGTERM"));
    }
}
