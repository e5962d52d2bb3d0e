//! The host's namespaces (init's, `/proc/1/ns/*`) by inode number: a
//! `setns` into one of them from anywhere else is how a process in a
//! container reaches the host (`nsenter -t 1 -m -p`).

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt as _;

/// Each namespace type: its name under `/proc/PID/ns` and its `CLONE_NEW*`
/// flag (setns's `nstype`).
pub const TYPES: [(&str, u64); 8] = [
    ("mnt", libc::CLONE_NEWNS as u64),
    ("cgroup", libc::CLONE_NEWCGROUP as u64),
    ("uts", libc::CLONE_NEWUTS as u64),
    ("ipc", libc::CLONE_NEWIPC as u64),
    ("user", libc::CLONE_NEWUSER as u64),
    ("pid", libc::CLONE_NEWPID as u64),
    ("net", libc::CLONE_NEWNET as u64),
    // CLONE_NEWTIME: not in every libc's list.
    ("time", 0x80),
];

/// The types an `nstype` names (none for 0: "whatever the fd is").
pub fn types_of(nstype: u64) -> Vec<&'static str> {
    TYPES
        .iter()
        .filter(|(_, flag)| nstype & flag != 0)
        .map(|(name, _)| *name)
        .collect()
}

/// The inode number of process `pid`'s namespace of type `name`, read now.
pub fn of_process(pid: u32, name: &str) -> Option<u64> {
    std::fs::metadata(format!("/proc/{pid}/ns/{name}"))
        .ok()
        .map(|m| m.ino())
}

#[derive(Debug, Default)]
pub struct HostNamespaces {
    by_inode: HashMap<u64, &'static str>,
}

impl HostNamespaces {
    /// Init's namespaces, as the sensor (in the host's pid namespace)
    /// sees them; where init's cannot be read (a sandbox that hides its
    /// init from ptrace, which guards `/proc/PID/ns`), the sensor's own,
    /// which a host sensor shares. A type this kernel lacks is left out.
    pub fn read() -> Self {
        Self::from_pairs(TYPES.iter().filter_map(|(name, _)| {
            of_process(1, name)
                .or_else(|| of_process(std::process::id(), name))
                .map(|ino| (ino, *name))
        }))
    }

    pub fn from_pairs(pairs: impl IntoIterator<Item = (u64, &'static str)>) -> Self {
        HostNamespaces {
            by_inode: pairs.into_iter().collect(),
        }
    }

    /// The type of the host's namespace with this inode, if it is one.
    pub fn host_type(&self, inode: u64) -> Option<&'static str> {
        self.by_inode.get(&inode).copied()
    }

    /// The host's namespace of type `name`.
    pub fn inode_of(&self, name: &str) -> Option<u64> {
        self.by_inode
            .iter()
            .find(|(_, n)| **n == name)
            .map(|(ino, _)| *ino)
    }

    /// Whether every one of `types` of process `pid` is the host's: None
    /// when one cannot be read (the process is gone, or no such type).
    pub fn process_in_host(&self, pid: u32, types: &[&str]) -> Option<bool> {
        let mut all = true;
        for name in types {
            all &= of_process(pid, name)? == self.inode_of(name)?;
        }
        Some(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nstype_flags_name_their_types() {
        assert_eq!(types_of(0), Vec::<&str>::new());
        assert_eq!(
            types_of((libc::CLONE_NEWNS | libc::CLONE_NEWPID) as u64),
            ["mnt", "pid"]
        );
        assert_eq!(types_of(libc::CLONE_NEWNET as u64), ["net"]);
    }

    #[test]
    fn the_host_namespaces_are_ours_and_inits() {
        // The unit tests run as root in the host's namespaces.
        let host = HostNamespaces::read();
        let net = host.inode_of("net").expect("the host's net namespace");
        assert_eq!(host.host_type(net), Some("net"));
        assert_eq!(
            host.process_in_host(std::process::id(), &["net", "mnt"]),
            Some(true)
        );
        assert_eq!(host.host_type(1), None);
        assert_eq!(host.process_in_host(u32::MAX, &["net"]), None);
    }
}
