//! The CLI's contract: clear errors, non-zero exits, a probe that answers.

use std::os::unix::process::CommandExt;
use std::process::Command;

use sensor_tests::{require_root, sensor_bin};

fn dir(name: &str) -> sensor_tests::Scratch {
    sensor_tests::scratch_dir(&format!("sensor-cli-{name}"))
}

#[test]
fn a_bad_config_exits_non_zero_naming_the_key() {
    let d = dir("badcfg");
    let cfg = d.join("bad.toml");
    std::fs::write(&cfg, "[process]\ntable_sise = 100\n").expect("write");
    let out = Command::new(sensor_bin())
        .args(["run", "--config"])
        .arg(&cfg)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("table_sise"), "names the key: {err}");
    assert!(
        err.contains(&cfg.display().to_string()),
        "names the file: {err}"
    );

    std::fs::write(&cfg, "[ebpf]\nring_buffer_bytes = 12345\n").expect("write");
    let out = Command::new(sensor_bin())
        .args(["run", "--config"])
        .arg(&cfg)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ebpf.ring_buffer_bytes") && err.contains("power of two"),
        "{err}"
    );
}

#[test]
fn without_root_run_fails_and_says_why() {
    require_root();
    // A copy nobody can reach, wherever the checkout lives.
    let d = dir("nobody");
    std::fs::set_permissions(&d, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod dir");
    let bin = d.join("sensor");
    sensor_tests::copy_executable(sensor_bin(), &bin);
    let out = Command::new(&bin)
        .arg("run")
        .current_dir(&d)
        .uid(65534)
        .gid(65534)
        .output()
        .expect("run as nobody");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("must run as root"), "{err}");
}

#[test]
fn probe_reports_features_and_hooks() {
    require_root();
    let out = Command::new(sensor_bin())
        .args(["probe", "--json"])
        .output()
        .expect("probe");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(r["btf"]["available"], true, "{r}");
    assert_eq!(r["ring_buffer"]["available"], true, "{r}");
    assert_eq!(r["audit"]["available"], true, "{r}");
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").expect("osrelease");
    assert_eq!(r["kernel"], release.trim());
    // Linux 6.18 verifies plain loads through bpf_get_current_task_btf.
    assert_eq!(r["task_btf"]["available"], true, "{r}");
    // fentry and BPF-LSM: whatever the answer, it must say why.
    for k in ["fentry", "bpf_lsm"] {
        assert!(
            r[k]["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{k}: {r}"
        );
    }
    let kinds: Vec<&str> = r["hooks"]
        .as_array()
        .expect("hooks")
        .iter()
        .filter_map(|h| h["kind"].as_str())
        .collect();
    assert_eq!(
        kinds,
        [
            "exec",
            "fork",
            "exit",
            "file_attr",
            "file_write",
            "cred",
            "net",
            "system",
            "ia32",
            "io_uring",
            "proc_mem",
            "udp_flows"
        ]
    );
    let hook = |kind: &str| {
        r["hooks"]
            .as_array()
            .expect("hooks")
            .iter()
            .find(|h| h["kind"] == kind)
            .cloned()
    };
    // Linux 6.18's io_uring submit tracepoint passes the request.
    let io_uring = hook("io_uring").expect("io_uring hook");
    assert_eq!(
        io_uring["hook"], "raw_tracepoint/io_uring_submit_req + raw_tracepoint/io_uring_complete",
        "{io_uring}"
    );
    // Where the hierarchy's root is mounted: a cgroup2 filesystem, at its
    // root (a child cgroup has `cgroup.events`, the root has none).
    let udp_flows = hook("udp_flows").expect("udp_flows hook");
    let text = udp_flows["hook"].as_str().unwrap_or_default();
    let at = text
        .strip_prefix("cgroup/{sendmsg,recvmsg}{4,6} at the root of the cgroup v2 hierarchy (at ")
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{udp_flows}"));
    let path = std::ffi::CString::new(at).expect("a path");
    // SAFETY: statfs into a zeroed struct of the right type.
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    assert_eq!(
        unsafe { libc::statfs(path.as_ptr(), &mut fs) },
        0,
        "statfs {at}"
    );
    assert_eq!(fs.f_type, libc::CGROUP2_SUPER_MAGIC, "{at} is not cgroup2");
    assert!(
        std::path::Path::new(at).join("cgroup.procs").exists(),
        "{at}"
    );
    assert!(
        !std::path::Path::new(at).join("cgroup.events").exists(),
        "{at} is a child"
    );
    // /proc/PID/mem: fexit on mem_open where tracing programs load, else
    // the open syscalls' exit, which says what it misses.
    let proc_mem = hook("proc_mem").expect("proc_mem hook");
    let proc_mem_hook = proc_mem["hook"].as_str().unwrap_or_default();
    if r["fentry"]["available"] == true {
        assert_eq!(proc_mem_hook, "fexit/mem_open", "{proc_mem}");
    } else {
        assert!(
            proc_mem_hook.starts_with("tp_btf/sys_exit")
                && proc_mem_hook.contains("opens for writing only"),
            "{proc_mem}"
        );
    }
    // This machine has ia32 emulation: the hooks for it are chosen.
    let ia32 = hook("ia32").expect("ia32 hook");
    assert!(
        ia32["hook"]
            .as_str()
            .is_some_and(|h| h.starts_with("tp_btf/sys_")),
        "{ia32}"
    );
    // Every syscall family names its hook and syscalls, and the better hook it
    // stands in for where there is one.
    let file = hook("file_attr").expect("file_attr hook");
    assert!(
        file["hook"]
            .as_str()
            .is_some_and(|h| h.contains("fchmodat") && h.starts_with("tp_btf/sys_")),
        "{file}"
    );
    assert!(
        file["preferred"]
            .as_str()
            .is_some_and(|p| p.contains("fentry/security_inode_setattr")),
        "{file}"
    );
    // Where fentry is refused (this machine), the line says what that
    // costs; where it loads, it names the hooks added.
    let write = hook("file_write").expect("file_write hook");
    let fentry_loads = r["fentry"]["available"] == true;
    let wanted = if fentry_loads {
        "+ fentry/security_inode_{unlink,rmdir,rename,setattr,link,symlink}"
    } else {
        "decided by their path argument only"
    };
    assert!(
        write["hook"].as_str().is_some_and(|h| h.contains(wanted)),
        "{write}"
    );
    assert!(
        write["preferred"].as_str().is_some_and(
            |p| p.contains("fentry/security_inode_{unlink,rmdir,rename,setattr,link,symlink}")
        ),
        "{write}"
    );
    let net = hook("net").expect("net hook");
    let wanted = if fentry_loads {
        "+ fentry/security_socket_{connect,bind}"
    } else {
        "the address as read from the caller's memory at entry"
    };
    assert!(
        net["hook"]
            .as_str()
            .is_some_and(|h| h.contains("connect") && h.contains(wanted)),
        "{net}"
    );
    assert!(
        net["preferred"]
            .as_str()
            .is_some_and(|p| p.contains("fentry/security_socket_{connect,bind}")),
        "{net}"
    );
    for h in r["hooks"].as_array().expect("hooks") {
        assert!(h["why"].as_str().is_some_and(|w| w.len() > 20), "{h}");
    }
    let text = Command::new(sensor_bin())
        .arg("probe")
        .output()
        .expect("probe text");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("raw_tracepoint/sched_process_exec"), "{text}");
}

#[test]
fn help_explains_the_commands() {
    let out = Command::new(sensor_bin())
        .arg("--help")
        .output()
        .expect("help");
    let text = String::from_utf8_lossy(&out.stdout);
    for s in ["run", "probe", "check-config", "JSON"] {
        assert!(text.contains(s), "--help mentions {s}: {text}");
    }
}
