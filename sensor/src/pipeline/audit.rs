//! Audit events into ECS events, joined to the process tree through the
//! pid of the process that sent or caused them.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use super::{Pipeline, to_process};
use crate::enrich::user::Accounts;
use crate::event::audit::Fields;
use crate::event::{
    AuditFields, AuditRecord, AuditStatus, Endpoint, Event, Frozen, Process, SensorFields, Text,
    User,
};
use crate::source::audit::coalesce::AuditEvent;
use crate::source::audit::login::Normalized;

impl Pipeline {
    pub fn audit(&mut self, ev: AuditEvent, n: Normalized) -> Event {
        let mut sensor = SensorFields::default();
        let process = n.pid.map(|pid| self.audit_process(pid, &n));
        if let Some(auid) = n.auid {
            sensor.login_user = Some(self.users.user(auid, &Accounts::Host));
        }
        sensor.session_id = n.session_id;
        let user = self.audit_user(&n);
        let port = match (n.pid, n.source_ip) {
            (Some(pid), Some(ip)) => {
                crate::enrich::peer::peer_port(std::path::Path::new("/proc"), pid, ip)
            }
            _ => None,
        };
        let source = (n.source_ip.is_some() || n.hostname.is_some()).then(|| Endpoint {
            address: n.source_ip.map(|ip| Text(ip.to_string().into_bytes())),
            ip: n.source_ip,
            port,
            domain: n.hostname.clone().map(Text),
        });
        let mut records = Vec::with_capacity(ev.records.len());
        for (i, r) in ev.records.iter().enumerate() {
            let mut fields = Vec::with_capacity(r.fields.len());
            for f in &r.fields {
                let (k, v) = (Text(f.key.clone()), Text(f.value.clone()));
                if k.is_escaped() || v.is_escaped() {
                    sensor.escaped.push(format!(
                        "sensor.audit.records[{i}].fields.{}",
                        k.to_json_string()
                    ));
                }
                fields.push((k, v));
            }
            records.push(AuditRecord {
                type_: r.type_name(),
                fields: Fields(fields),
                unparsed: (!r.unparsed.is_empty()).then(|| Text(r.unparsed.clone())),
            });
        }
        let audit = AuditFields {
            serial: ev.stamp.serial,
            service: n.service.map(Text),
            method: n.method.map(Text),
            terminal: n.terminal.map(Text),
            hostname: n.hostname.map(Text),
            command: n.command.map(Text),
            args: n.args.map(|a| a.into_iter().map(Text).collect()),
            tamper: n.tamper,
            records_dropped: (ev.records_dropped > 0).then_some(ev.records_dropped),
            records,
        };
        for (field, t) in [
            ("sensor.audit.service", &audit.service),
            ("sensor.audit.method", &audit.method),
            ("sensor.audit.terminal", &audit.terminal),
            ("sensor.audit.hostname", &audit.hostname),
            ("sensor.audit.command", &audit.command),
            ("user.name", &user.as_ref().and_then(|u| u.name.clone())),
        ] {
            if t.as_ref().is_some_and(Text::is_escaped) {
                sensor.escaped.push(field.to_owned());
            }
        }
        if let Some(args) = &audit.args {
            for (i, a) in args.iter().enumerate() {
                if a.is_escaped() {
                    sensor.escaped.push(format!("sensor.audit.args[{i}]"));
                }
            }
        }
        sensor.audit = Some(Box::new(audit));
        let meta = self.meta(n.kind, n.category, n.type_, n.action, n.outcome, "audit");
        let wall = UNIX_EPOCH
            + Duration::from_secs(ev.stamp.sec)
            + Duration::from_millis(u64::from(ev.stamp.msec));
        Event {
            process,
            user,
            source,
            sensor,
            ..Event::new(
                humantime::format_rfc3339_millis(wall).to_string(),
                meta,
                self.host.clone(),
                self.agent.clone(),
            )
        }
    }

    /// The kernel's audit counters as a metric event.
    pub fn audit_status(&mut self, status: AuditStatus) -> Event {
        let meta = self.meta(
            "metric",
            &["host"],
            &["info"],
            "audit_status",
            None,
            "sensor",
        );
        self.sensor_event(
            meta,
            SensorFields {
                audit_status: Some(status),
                ..SensorFields::default()
            },
        )
    }

    /// A login from utmp/wtmp/btmp (`event.module = "utmp"`).
    pub fn utmp(&mut self, n: Normalized, sec: u32, usec: u32) -> Event {
        let mut sensor = SensorFields::default();
        let process = n.pid.map(|pid| self.audit_process(pid, &n));
        sensor.session_id = n.session_id;
        sensor.tty = n.terminal.as_ref().map(|t| {
            let t = String::from_utf8_lossy(t);
            if t.starts_with("pts/") || t.starts_with("tty") {
                format!("/dev/{t}")
            } else {
                t.into_owned()
            }
        });
        let user = self.audit_user(&n);
        if user
            .as_ref()
            .and_then(|u| u.name.as_ref())
            .is_some_and(Text::is_escaped)
        {
            sensor.escaped.push("user.name".to_owned());
        }
        let source = (n.source_ip.is_some() || n.hostname.is_some()).then(|| Endpoint {
            address: n.source_ip.map(|ip| Text(ip.to_string().into_bytes())),
            ip: n.source_ip,
            port: None,
            domain: n.hostname.clone().map(Text),
        });
        let meta = self.meta(n.kind, n.category, n.type_, n.action, n.outcome, "utmp");
        let wall = UNIX_EPOCH
            + Duration::from_secs(u64::from(sec))
            + Duration::from_micros(u64::from(usec));
        Event {
            process,
            user,
            source,
            sensor,
            ..Event::new(
                humantime::format_rfc3339_micros(wall).to_string(),
                meta,
                self.host.clone(),
                self.agent.clone(),
            )
        }
    }

    /// The process from the table (seen by eBPF or seeded from /proc), or
    /// read from /proc now; its ids as the audit record gives them.
    fn audit_process(&mut self, pid: u32, n: &Normalized) -> Process {
        if self.table.get(pid).is_none() {
            self.adopt(pid, None);
        }
        let mut p = match self.table.get(pid) {
            Some(info) => {
                let parent = self
                    .table
                    .get(info.ppid)
                    .map(|pp| Arc::new(Frozen::new(to_process(pp))));
                Process {
                    parent,
                    ..to_process(info)
                }
            }
            None => {
                let stat = std::fs::read(format!("/proc/{pid}/stat")).ok();
                match stat.as_deref().and_then(crate::enrich::procfs::parse_stat) {
                    Some((comm, _ppid, ticks)) => Process {
                        pid,
                        entity_id: self.table.ids.id(pid, ticks),
                        name: Some(Text(comm).into()),
                        ..Process::default()
                    },
                    // Gone already: the pid is all there is.
                    None => Process {
                        pid,
                        entity_id: String::new(),
                        ..Process::default()
                    },
                }
            }
        };
        if let Some(uid) = n.uid {
            p.real_user = Some(self.users.user(uid, &Accounts::Host));
        }
        if let Some(euid) = n.euid.or(n.uid) {
            p.user = Some(self.users.user(euid, &Accounts::Host));
        }
        p
    }

    /// `user.*`: the name the record gives, and the id it gives or the
    /// host's accounts know for that name (a failed login may name a user
    /// that does not exist: then no id).
    fn audit_user(&mut self, n: &Normalized) -> Option<User> {
        match (&n.user_name, n.user_id) {
            (None, None) => None,
            (Some(name), id) => {
                let id = id.or_else(|| {
                    let s = std::str::from_utf8(name).ok()?;
                    nix::unistd::User::from_name(s)
                        .ok()
                        .flatten()
                        .map(|u| u.uid.as_raw())
                });
                Some(User {
                    id: id.map(|i| i.to_string()),
                    name: Some(Text(name.clone())),
                })
            }
            (None, Some(id)) => {
                // The cache is refreshed on ticks; an account created a
                // moment ago (ADD_USER names it by id only) is looked up.
                let name = self
                    .users
                    .user(id, &Accounts::Host)
                    .name
                    .clone()
                    .or_else(|| {
                        nix::unistd::User::from_uid(id.into())
                            .ok()
                            .flatten()
                            .map(|u| u.name.into())
                    })
                    .map(|s| Text(s.as_bytes().to_vec()));
                Some(User {
                    id: Some(id.to_string()),
                    name,
                })
            }
        }
    }
}
