//! Linux capabilities by name, and `security.capability` (struct
//! vfs_cap_data) decoding.
//!
//! Written by hand: the `caps` crate has the names but not the on-disk
//! xattr format, and the table is short and fixed by the kernel ABI
//! (include/uapi/linux/capability.h).

use serde::Serialize;

/// Capability n is `NAMES[n]`; newer ones print as `CAP_<n>`.
const NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Every capability this table knows: root's usual full set.
const ALL_KNOWN: u64 = (1 << NAMES.len()) - 1;

/// The names of the capabilities set in `set` (bit n = capability n). A
/// set holding every known capability (root's) is `["ALL"]`, so that
/// ordinary root events do not carry a list of 41 names twice; any
/// capability beyond the table is still listed.
pub fn names(set: u64) -> Vec<&'static str> {
    if set & ALL_KNOWN == ALL_KNOWN {
        let mut v = vec!["ALL"];
        v.extend(names(set & !ALL_KNOWN));
        return v;
    }
    (0..64)
        .filter(|bit| set & (1 << bit) != 0)
        // A capability newer than this table still shows that it is set.
        .map(|bit| NAMES.get(bit).copied().unwrap_or("CAP_UNKNOWN"))
        .collect()
}

/// A task's capability sets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CapSets {
    pub inheritable: Vec<&'static str>,
    pub permitted: Vec<&'static str>,
    pub effective: Vec<&'static str>,
}

impl CapSets {
    pub fn from_sets([inheritable, permitted, effective]: [u64; 3]) -> CapSets {
        CapSets {
            inheritable: names(inheritable),
            permitted: names(permitted),
            effective: names(effective),
        }
    }
}

/// A file's capabilities (`security.capability`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileCaps {
    /// vfs_cap_data revision: 1, 2, or 3 (namespaced, with a root uid).
    pub revision: u8,
    pub permitted: Vec<&'static str>,
    pub inheritable: Vec<&'static str>,
    /// The `+e` flag: permitted capabilities become effective at exec.
    pub effective: bool,
    /// Revision 3: the uid that is root in the user namespace the
    /// capabilities apply to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_uid: Option<u32>,
}

const VFS_CAP_REVISION_MASK: u32 = 0xFF00_0000;
const VFS_CAP_FLAGS_EFFECTIVE: u32 = 0x0000_0001;

/// Decodes a `security.capability` value; None if it is not a valid one
/// (the kernel would refuse it too).
pub fn decode_file_caps(value: &[u8]) -> Option<FileCaps> {
    let word = |i: usize| -> Option<u32> {
        value
            .get(i * 4..i * 4 + 4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
    };
    let magic = word(0)?;
    let (revision, words, size) = match magic & VFS_CAP_REVISION_MASK {
        0x0100_0000 => (1, 1, 12),
        0x0200_0000 => (2, 2, 20),
        0x0300_0000 => (3, 2, 24),
        _ => return None,
    };
    if value.len() != size {
        return None;
    }
    let (mut permitted, mut inheritable) = (0u64, 0u64);
    for i in 0..words {
        permitted |= (word(1 + 2 * i)? as u64) << (32 * i);
        inheritable |= (word(2 + 2 * i)? as u64) << (32 * i);
    }
    Some(FileCaps {
        revision,
        permitted: names(permitted),
        inheritable: names(inheritable),
        effective: magic & VFS_CAP_FLAGS_EFFECTIVE != 0,
        root_uid: if revision == 3 { word(5) } else { None },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_names() {
        assert_eq!(names(0), Vec::<&str>::new());
        assert_eq!(names(1 << 7 | 1 << 21), vec!["CAP_SETUID", "CAP_SYS_ADMIN"]);
        assert_eq!(names(1 << 40), vec!["CAP_CHECKPOINT_RESTORE"]);
        assert_eq!(names(1 << 50), vec!["CAP_UNKNOWN"]);
        assert_eq!(names((1 << 41) - 1), vec!["ALL"]);
        assert_eq!(
            names(u64::MAX >> 1),
            [vec!["ALL"], vec!["CAP_UNKNOWN"; 22]].concat()
        );
    }

    #[test]
    fn setcap_net_raw_ep_as_written_by_libcap() {
        // `setcap cap_net_raw+ep`: revision 2, effective flag, bit 13.
        let mut v = Vec::new();
        for w in [0x0200_0001u32, 1 << 13, 0, 0, 0] {
            v.extend_from_slice(&w.to_le_bytes());
        }
        let caps = decode_file_caps(&v).expect("valid");
        assert_eq!(caps.revision, 2);
        assert!(caps.effective);
        assert_eq!(caps.permitted, vec!["CAP_NET_RAW"]);
        assert!(caps.inheritable.is_empty());
        assert_eq!(caps.root_uid, None);
    }

    #[test]
    fn revision_3_has_a_root_uid_and_high_caps() {
        let mut v = Vec::new();
        for w in [0x0300_0000u32, 0, 1 << 2, 1 << 7, 0, 100_000] {
            v.extend_from_slice(&w.to_le_bytes());
        }
        let caps = decode_file_caps(&v).expect("valid");
        assert_eq!(caps.permitted, vec!["CAP_BPF"]);
        assert_eq!(caps.inheritable, vec!["CAP_DAC_READ_SEARCH"]);
        assert!(!caps.effective);
        assert_eq!(caps.root_uid, Some(100_000));
    }

    #[test]
    fn invalid_values_are_not_decoded() {
        assert_eq!(decode_file_caps(b""), None);
        assert_eq!(decode_file_caps(&[0u8; 20]), None);
        let mut v = 0x0200_0000u32.to_le_bytes().to_vec();
        v.extend_from_slice(&[0; 8]); // 12 bytes: too short for revision 2
        assert_eq!(decode_file_caps(&v), None);
    }
}
