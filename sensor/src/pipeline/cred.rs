//! Credential changes (setuid family, capset) into `sensor.cred_change`.

use sensor_common::SyscallOp;

use super::{CRED_ACTION, Kind, Pipeline, outcome};
use crate::event::{CredChange, CredIds, Event, SensorFields, caps};
use crate::source::ebpf::decode::CredRecord;

const IAM_PROCESS: &[&str] = &["process", "iam"];
const CHANGE: &[&str] = &["change"];

/// `(uid_t)-1` as an argument: leave this id unchanged.
const UNCHANGED: u32 = u32::MAX;

impl Pipeline {
    pub(super) fn cred(&mut self, c: CredRecord) -> Event {
        let ticks = self.table.ids.ticks(c.task.start_boottime);
        self.known(&c.task, ticks);
        let (outcome, error) = outcome(c.ret);
        let [uid, gid, suid, sgid, euid, egid, fsuid, fsgid] = c.old_ids;
        let before = CredIds {
            uid,
            euid,
            suid,
            fsuid,
            gid,
            egid,
            sgid,
            fsgid,
        };
        let t = &c.task;
        let after = CredIds {
            uid: t.uid,
            euid: t.euid,
            suid: t.suid,
            fsuid: t.fsuid,
            gid: t.gid,
            egid: t.egid,
            sgid: t.sgid,
            fsgid: t.fsgid,
        };
        let changed: Vec<&'static str> = [
            ("uid", before.uid, after.uid),
            ("euid", before.euid, after.euid),
            ("suid", before.suid, after.suid),
            ("fsuid", before.fsuid, after.fsuid),
            ("gid", before.gid, after.gid),
            ("egid", before.egid, after.egid),
            ("sgid", before.sgid, after.sgid),
            ("fsgid", before.fsgid, after.fsgid),
        ]
        .into_iter()
        .filter(|(_, b, a)| b != a)
        .map(|(name, _, _)| name)
        .collect();
        let root = |ids: &CredIds| [ids.uid, ids.euid, ids.suid, ids.fsuid].contains(&0);
        let requested = arg_names(c.op)
            .iter()
            .zip(c.args)
            .filter(|(_, v)| *v != UNCHANGED)
            .map(|(name, v)| (*name, v))
            .collect();
        let caps_changed = c.old_caps != c.new_caps;
        let change = CredChange {
            requested,
            gained_root: root(&after) && !root(&before),
            before,
            after,
            changed,
            // Capabilities are shown when they changed, or for capset itself.
            capabilities_before: (caps_changed || c.op == SyscallOp::Capset)
                .then(|| caps::CapSets::from_sets(c.old_caps)),
            capabilities_after: (caps_changed || c.op == SyscallOp::Capset)
                .then(|| caps::CapSets::from_sets(c.new_caps)),
        };
        let sensor = SensorFields {
            syscall: Some(c.op.name()),
            cred_change: Some(Box::new(change)),
            ..SensorFields::default()
        };
        let kind = Kind {
            category: IAM_PROCESS,
            type_: CHANGE,
            action: CRED_ACTION,
            outcome,
        };
        let mut ev = self.process_event(c.boot_ns, &c.task, kind, sensor);
        ev.error = error;
        ev
    }
}

/// What each id argument of `op` is.
fn arg_names(op: SyscallOp) -> &'static [&'static str] {
    match op {
        SyscallOp::Setuid => &["uid"],
        SyscallOp::Setgid => &["gid"],
        SyscallOp::Setreuid => &["ruid", "euid"],
        SyscallOp::Setregid => &["rgid", "egid"],
        SyscallOp::Setresuid => &["ruid", "euid", "suid"],
        SyscallOp::Setresgid => &["rgid", "egid", "sgid"],
        SyscallOp::Setfsuid => &["fsuid"],
        SyscallOp::Setfsgid => &["fsgid"],
        _ => &[],
    }
}
