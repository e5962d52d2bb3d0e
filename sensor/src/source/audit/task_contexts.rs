//! `-a never,task` while the sensor alone uses the audit subsystem.
//!
//! Every task started while auditing is on gets a syscall audit context,
//! and from then on each of its syscalls goes through the kernel's audit
//! entry and exit work, even when no rule could ever match one. Measured
//! on Linux 6.18 with the sensor running, alternating with and without
//! the rule: ~20 ns more per getppid (with no rule the context is a
//! "dummy" one, so path lookups collect no names: a chmod pays the same
//! entry and exit work).
//! The sensor needs no rules for what it reads from audit (PAM's, sshd's
//! and the kernel's login records come without a context), so when it
//! turns auditing on itself and nobody has rules loaded, it adds the rule
//! Debian's auditd ships by default, which keeps new tasks from getting a
//! context.
//!
//! The rule must not outlive the sensor's being alone: when anyone else
//! adds or removes a rule, it is taken out, so that their rules see the
//! tasks started from then on (tasks started before keep no context; the
//! sensor says so in its log). It is taken out at exit too.

use super::netlink::AuditSocket;
use super::rules;
use super::tamper::OwnChanges;

/// The rule, as the sensor added it (and as the kernel lists it).
pub struct NoTaskContexts {
    rule: Vec<u8>,
}

impl NoTaskContexts {
    /// Adds the rule if the kernel has none. Called while auditing is
    /// still off, before the sensor turns it on: no task started in
    /// between gets a context, and the kernel logs no CONFIG_CHANGE for
    /// it (so there is nothing to claim in the ledger of own changes).
    pub fn install(control: &mut AuditSocket) -> Option<NoTaskContexts> {
        match control.list_rules() {
            Ok(existing) if existing.is_empty() => {}
            Ok(_) => return None,
            Err(e) => {
                tracing::warn!("audit: cannot list the kernel's rules: {e}");
                return None;
            }
        }
        let rule = rules::parse("-a never,task")
            .ok()?
            .rules
            .pop()
            .map(|r| r.data)?;
        match control.add_rule(&rule) {
            Ok(()) => {
                tracing::info!(
                    "audit: no rules loaded, so `-a never,task` keeps the tasks started from now on \
                     out of syscall auditing, which no rule asks for (it is taken out as soon as \
                     anyone else changes the rules, and at exit)"
                );
                Some(NoTaskContexts { rule })
            }
            Err(e) => {
                tracing::warn!("audit: cannot add `-a never,task`: {e}");
                None
            }
        }
    }

    /// Whether the rule is still the kernel's only one. If not, someone
    /// else changed the rules: it is taken out (if still there), and
    /// false says it is gone.
    pub fn still_alone(&self, control: &mut AuditSocket, own: &mut OwnChanges, now: u64) -> bool {
        let listed = match control.list_rules() {
            Ok(listed) => listed,
            Err(e) => {
                tracing::debug!("audit: cannot list the kernel's rules: {e}");
                return true;
            }
        };
        if listed.len() == 1 && listed[0] == self.rule {
            return true;
        }
        if listed.contains(&self.rule) {
            self.remove_from(control, own, now);
        }
        tracing::warn!(
            "audit rules were changed by someone else: `-a never,task` is out, so their rules see \
             the tasks started from now on; tasks started while it was in stay out of syscall \
             auditing"
        );
        false
    }

    /// At exit: the rule goes.
    pub fn remove(self, control: &mut AuditSocket, own: &mut OwnChanges, now: u64) {
        self.remove_from(control, own, now);
    }

    fn remove_from(&self, control: &mut AuditSocket, own: &mut OwnChanges, now: u64) {
        own.expect_rule("remove_rule", now);
        if let Err(e) = control.del_rule(&self.rule) {
            tracing::warn!("audit: cannot take out `-a never,task`: {e}");
        }
    }
}
