//! Which audit configuration changes the sensor made itself.
//!
//! A CONFIG_CHANGE record has no pid of its own; it is followed by a
//! SYSCALL record (with the pid) only when the changing task has an audit
//! context, which depends on whether audit was ever enabled before the task
//! started. So besides the pid, the sensor keeps a ledger of the changes it
//! just asked for; a record matching an open entry is the sensor's, any
//! other change is tamper. Entries expire so that a lost record cannot
//! hide a later change by someone else.

use super::record::Record;

const EXPIRY_MS: u64 = 30_000;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Expected {
    /// `op=set FIELD=VALUE`
    Set(&'static str, String),
    /// `op=add_rule` / `op=remove_rule`
    Rule(&'static str),
}

#[derive(Debug, Default)]
pub struct OwnChanges {
    open: Vec<(Expected, u64)>,
}

impl OwnChanges {
    pub fn expect_set(&mut self, field: &'static str, value: u32, now_ms: u64) {
        self.open
            .push((Expected::Set(field, value.to_string()), now_ms));
    }

    pub fn expect_rule(&mut self, op: &'static str, now_ms: u64) {
        self.open.push((Expected::Rule(op), now_ms));
    }

    /// Whether `r` (a CONFIG_CHANGE) is one of the sensor's own changes;
    /// consumes the matching entry.
    pub fn claims(&mut self, r: &Record, now_ms: u64) -> bool {
        self.open
            .retain(|(_, t)| now_ms.saturating_sub(*t) < EXPIRY_MS);
        let op = r.get("op").unwrap_or_default();
        let pos = self.open.iter().position(|(e, _)| match e {
            Expected::Set(field, value) => op == b"set" && r.get(field) == Some(value.as_bytes()),
            Expected::Rule(o) => op == o.as_bytes(),
        });
        pos.map(|i| self.open.remove(i)).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::audit::record::parse;

    fn rec(text: &str) -> Record {
        parse(1305, format!("audit(1.0:1): {text}").as_bytes()).expect("parses")
    }

    #[test]
    fn own_changes_are_claimed_once_and_expire() {
        let mut o = OwnChanges::default();
        o.expect_set("audit_backlog_limit", 8192, 0);
        o.expect_rule("add_rule", 0);
        let own = rec("op=set audit_backlog_limit=8192 old=64 auid=0 ses=1 res=1");
        assert!(o.claims(&own, 10));
        assert!(
            !o.claims(&own, 10),
            "the same change a second time is someone else's"
        );
        assert!(!o.claims(
            &rec("op=set audit_backlog_limit=99 old=8192 auid=0 ses=1 res=1"),
            10
        ));
        assert!(!o.claims(&rec("op=remove_rule key=\"x\" list=4 res=1"), 10));
        assert!(
            !o.claims(&rec("op=add_rule key=\"x\" list=4 res=1"), EXPIRY_MS + 1),
            "expired"
        );
    }
}
