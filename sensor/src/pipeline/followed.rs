//! Path arguments that may lead elsewhere than their bytes say, followed
//! again for the events that show them (see `enrich::path_resolve`).

use sensor_common::TaskInfo;

use super::Pipeline;
use crate::enrich::path_resolve::{Caller, Unresolved, may_lead_elsewhere};

impl Pipeline {
    /// `lexical` (the path argument joined to `base` and made normal), or,
    /// where the argument may lead elsewhere than that, where it did lead
    /// (see `enrich::path_resolve`), or why that is unknown.
    pub(super) fn followed(
        &mut self,
        task: &TaskInfo,
        ticks: u64,
        argument: &[u8],
        base: &[u8],
        lexical: Option<Vec<u8>>,
    ) -> (Option<Vec<u8>>, Option<Unresolved>) {
        let Some(normal) = lexical else {
            return (None, None);
        };
        if !may_lead_elsewhere(argument, &normal) {
            return (Some(normal), None);
        }
        let joined = if argument.first() == Some(&b'/') {
            argument.to_vec()
        } else {
            [base, b"/", argument].concat()
        };
        self.known(task, ticks);
        let in_container = self
            .table
            .get_exact(task.tgid, ticks)
            .is_some_and(|p| p.container.is_some());
        let caller = Caller {
            tgid: task.tgid,
            tid: task.tid,
            start_ticks: ticks,
            in_container,
        };
        match self.resolver.resolve(caller, &joined, &normal) {
            Ok(path) => (Some(path), None),
            Err(why) => (Some(normal), Some(why)),
        }
    }
}
