//! Audit record type numbers and their names (include/uapi/linux/audit.h
//! for the kernel's, libaudit.h for user space's). Names are lower case
//! here because they double as `event.action` of passed-through records;
//! [`super::record::Record::type_name`] gives auditd's upper-case form.

/// (number, name), sorted by number.
const TYPES: &[(u16, &str)] = &[
    (1005, "user"),
    (1006, "login"),
    (1100, "user_auth"),
    (1101, "user_acct"),
    (1102, "user_mgmt"),
    (1103, "cred_acq"),
    (1104, "cred_disp"),
    (1105, "user_start"),
    (1106, "user_end"),
    (1107, "user_avc"),
    (1108, "user_chauthtok"),
    (1109, "user_err"),
    (1110, "cred_refr"),
    (1111, "usys_config"),
    (1112, "user_login"),
    (1113, "user_logout"),
    (1114, "add_user"),
    (1115, "del_user"),
    (1116, "add_group"),
    (1117, "del_group"),
    (1118, "dac_check"),
    (1119, "chgrp_id"),
    (1120, "test"),
    (1121, "trusted_app"),
    (1122, "user_selinux_err"),
    (1123, "user_cmd"),
    (1124, "user_tty"),
    (1125, "chuser_id"),
    (1126, "grp_auth"),
    (1127, "system_boot"),
    (1128, "system_shutdown"),
    (1129, "system_runlevel"),
    (1130, "service_start"),
    (1131, "service_stop"),
    (1132, "grp_mgmt"),
    (1133, "grp_chauthtok"),
    (1134, "mac_check"),
    (1135, "acct_lock"),
    (1136, "acct_unlock"),
    (1137, "user_device"),
    (1138, "software_update"),
    (1200, "daemon_start"),
    (1201, "daemon_end"),
    (1202, "daemon_abort"),
    (1203, "daemon_config"),
    (1204, "daemon_reconfig"),
    (1205, "daemon_rotate"),
    (1206, "daemon_resume"),
    (1207, "daemon_accept"),
    (1208, "daemon_close"),
    (1209, "daemon_err"),
    (1300, "syscall"),
    (1302, "path"),
    (1303, "ipc"),
    (1304, "socketcall"),
    (1305, "config_change"),
    (1306, "sockaddr"),
    (1307, "cwd"),
    (1309, "execve"),
    (1311, "ipc_set_perm"),
    (1312, "mq_open"),
    (1313, "mq_sendrecv"),
    (1314, "mq_notify"),
    (1315, "mq_getsetattr"),
    (1316, "kernel_other"),
    (1317, "fd_pair"),
    (1318, "obj_pid"),
    (1319, "tty"),
    (1320, "eoe"),
    (1321, "bprm_fcaps"),
    (1322, "capset"),
    (1323, "mmap"),
    (1324, "netfilter_pkt"),
    (1325, "netfilter_cfg"),
    (1326, "seccomp"),
    (1327, "proctitle"),
    (1328, "feature_change"),
    (1329, "replace"),
    (1330, "kern_module"),
    (1331, "fanotify"),
    (1332, "time_injoffset"),
    (1333, "time_adjntpval"),
    (1334, "bpf"),
    (1335, "event_listener"),
    (1336, "uringop"),
    (1337, "openat2"),
    (1338, "dm_ctrl"),
    (1339, "dm_event"),
    (1400, "avc"),
    (1401, "selinux_err"),
    (1402, "avc_path"),
    (1403, "mac_policy_load"),
    (1404, "mac_status"),
    (1405, "mac_config_change"),
    (1420, "mac_unlbl_stcadd"),
    (1500, "aa"),
    (1501, "apparmor_audit"),
    (1502, "apparmor_allowed"),
    (1503, "apparmor_denied"),
    (1504, "apparmor_hint"),
    (1505, "apparmor_status"),
    (1506, "apparmor_error"),
    (1700, "anom_promiscuous"),
    (1701, "anom_abend"),
    (1702, "anom_link"),
    (1703, "anom_creat"),
    (1800, "integrity_data"),
    (1801, "integrity_metadata"),
    (1802, "integrity_status"),
    (1803, "integrity_hash"),
    (1804, "integrity_pcr"),
    (1805, "integrity_rule"),
    (1806, "integrity_evm_xattr"),
    (1807, "integrity_policy_rule"),
    (2100, "anom_login_failures"),
    (2101, "anom_login_time"),
    (2102, "anom_login_sessions"),
    (2103, "anom_login_acct"),
    (2104, "anom_login_location"),
    (2105, "anom_max_dac"),
    (2106, "anom_max_mac"),
    (2107, "anom_amtu_fail"),
    (2108, "anom_rbac_fail"),
    (2109, "anom_rbac_integrity_fail"),
    (2110, "anom_crypto_fail"),
    (2111, "anom_access_fs"),
    (2112, "anom_exec"),
    (2113, "anom_mk_exec"),
    (2114, "anom_add_acct"),
    (2115, "anom_del_acct"),
    (2116, "anom_mod_acct"),
    (2117, "anom_root_trans"),
    (2118, "anom_login_service"),
    (2119, "anom_login_root"),
    (2120, "anom_origin_failures"),
    (2121, "anom_session"),
    (2200, "resp_anomaly"),
    (2300, "user_role_change"),
    (2400, "crypto_test_user"),
    (2401, "crypto_param_change_user"),
    (2402, "crypto_login"),
    (2403, "crypto_logout"),
    (2404, "crypto_key_user"),
    (2405, "crypto_failure_user"),
    (2406, "crypto_replay_user"),
    (2407, "crypto_session"),
    (2408, "crypto_ike_sa"),
    (2409, "crypto_ipsec_sa"),
    (2500, "virt_control"),
    (2501, "virt_resource"),
    (2502, "virt_machine_id"),
    (2503, "virt_integrity_check"),
    (2504, "virt_create"),
    (2505, "virt_destroy"),
    (2506, "virt_migrate_in"),
    (2507, "virt_migrate_out"),
];

pub const EOE: u16 = 1320;
pub const CONFIG_CHANGE: u16 = 1305;
pub const SYSCALL: u16 = 1300;

/// Lower-case name of a type number.
pub fn name(kind: u16) -> Option<&'static str> {
    TYPES
        .binary_search_by_key(&kind, |&(n, _)| n)
        .ok()
        .map(|i| TYPES[i].1)
}

/// Number of a type name as auditd writes it (`USER_AUTH`, `UNKNOWN[1999]`).
pub fn number(name: &str) -> Option<u16> {
    if let Some(n) = name
        .strip_prefix("UNKNOWN[")
        .and_then(|r| r.strip_suffix(']'))
    {
        return n.parse().ok();
    }
    TYPES
        .iter()
        .find(|(_, n)| n.eq_ignore_ascii_case(name))
        .map(|&(k, _)| k)
}

/// Records sent by user space (PAM, sshd, sudo, auditd itself): each is an
/// event of its own, with no EOE after it. Kernel records wait for EOE.
pub fn is_user_space(kind: u16) -> bool {
    matches!(kind, 1005 | 1100..=1299 | 2100..=2999)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_unique_and_names_round_trip() {
        assert!(
            TYPES.windows(2).all(|w| w[0].0 < w[1].0),
            "sorted by number, no duplicates"
        );
        for &(n, name) in TYPES {
            assert_eq!(super::name(n), Some(name));
            assert_eq!(number(&name.to_ascii_uppercase()), Some(n));
        }
        assert_eq!(number("UNKNOWN[1234]"), Some(1234));
        assert_eq!(name(1999), None);
    }
}
