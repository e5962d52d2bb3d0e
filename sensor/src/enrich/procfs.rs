//! Reading a process from /proc, for processes that existed before the
//! sensor started (the kernel never sent us their exec).
//!
//! Written by hand rather than with the `procfs` crate because that crate
//! returns argv and paths as lossily-converted `String`s, and attacker-
//! controlled bytes must stay byte-exact here.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::source::ebpf::decode::split_argv;
use crate::source::ebpf::offsets::{CgroupMode, V1_HIERARCHIES};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcSnapshot {
    pub pid: u32,
    pub ppid: u32,
    /// Start time in clock ticks since boot (stat field 22).
    pub start_ticks: u64,
    pub comm: Vec<u8>,
    pub exe: Option<Vec<u8>>,
    pub args: Vec<Vec<u8>>,
    pub cwd: Option<Vec<u8>>,
    /// cgroup path in the hierarchy the kernel side reports (see
    /// `cgroup_path`).
    pub cgroup: Option<Vec<u8>>,
}

/// Every process (thread-group leaders only) currently in /proc.
pub fn all_processes(proc_root: &Path, mode: CgroupMode) -> Vec<ProcSnapshot> {
    let Ok(dir) = std::fs::read_dir(proc_root) else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
        .filter_map(|pid| read_process(proc_root, pid, mode))
        .collect()
}

/// One process; None if it vanished meanwhile.
pub fn read_process(proc_root: &Path, pid: u32, mode: CgroupMode) -> Option<ProcSnapshot> {
    let dir = proc_root.join(pid.to_string());
    let stat = std::fs::read(dir.join("stat")).ok()?;
    let (comm, ppid, start_ticks) = parse_stat(&stat)?;
    let args = std::fs::read(dir.join("cmdline"))
        .map(|raw| split_argv(&raw))
        .unwrap_or_default();
    let link = |name: &str| {
        std::fs::read_link(dir.join(name))
            .ok()
            .map(|p| p.as_os_str().as_bytes().to_vec())
    };
    Some(ProcSnapshot {
        pid,
        ppid,
        start_ticks,
        comm,
        exe: link("exe"),
        args,
        cwd: link("cwd"),
        cgroup: std::fs::read(dir.join("cgroup"))
            .ok()
            .and_then(|c| cgroup_path(&c, mode)),
    })
}

/// The path in `/proc/PID/cgroup` (`ID:CONTROLLERS:PATH` lines) of the
/// hierarchy the eBPF side reads: the unified one on a cgroup v2 host,
/// else the first v1 controller of the kernel side's preference order.
pub fn cgroup_path(proc_cgroup: &[u8], mode: CgroupMode) -> Option<Vec<u8>> {
    let lines: Vec<(&[u8], &[u8])> = proc_cgroup
        .split(|&b| b == b'\n')
        .filter_map(|l| {
            let mut parts = l.splitn(3, |&b| b == b':');
            let _id = parts.next()?;
            Some((parts.next()?, parts.next()?))
        })
        .collect();
    match mode {
        CgroupMode::Unified => lines
            .iter()
            .find(|(c, _)| c.is_empty())
            .map(|(_, p)| p.to_vec()),
        CgroupMode::Legacy => V1_HIERARCHIES.iter().find_map(|h| {
            let want = h.trim_end_matches("_cgrp_id").as_bytes();
            lines
                .iter()
                .find(|(c, _)| c.split(|&b| b == b',').any(|x| x == want))
                .map(|(_, p)| p.to_vec())
        }),
    }
}

/// `pid (comm) state ppid … starttime(22) …`. comm may hold spaces and
/// parentheses, so it is everything between the first `(` and the last `)`.
pub fn parse_stat(stat: &[u8]) -> Option<(Vec<u8>, u32, u64)> {
    let open = stat.iter().position(|&b| b == b'(')?;
    let close = stat.iter().rposition(|&b| b == b')')?;
    let comm = stat.get(open + 1..close)?.to_vec();
    let rest = std::str::from_utf8(stat.get(close + 1..)?).ok()?;
    // Fields after comm start at field 3 (state).
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    let ppid = fields.get(1)?.parse().ok()?;
    let start_ticks = fields.get(19)?.parse().ok()?;
    Some((comm, ppid, start_ticks))
}

pub fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if n > 0 { n as u64 } else { 100 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_hostile_comm_parses() {
        let stat =
            b"1234 (a) b (c) S 77 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 5555 1000 10";
        let (comm, ppid, start) = parse_stat(stat).expect("parses");
        assert_eq!(comm, b"a) b (c");
        assert_eq!(ppid, 77);
        assert_eq!(start, 5555);
    }

    #[test]
    fn reads_our_own_process() {
        let me = std::process::id();
        let p =
            read_process(Path::new("/proc"), me, CgroupMode::detect()).expect("self is readable");
        assert_eq!(p.pid, me);
        assert_eq!(p.ppid, std::os::unix::process::parent_id());
        assert!(p.exe.is_some());
        assert!(!p.args.is_empty());
        assert!(p.cgroup.is_some_and(|c| c.starts_with(b"/")));
    }

    #[test]
    fn the_cgroup_line_matches_the_kernel_sides_hierarchy() {
        let text =
            b"12:pids:/a\n4:cpu,cpuacct:/c\n3:memory:/libpod_parent/libpod-x\n0::/user.slice\n";
        assert_eq!(
            cgroup_path(text, CgroupMode::Legacy).as_deref(),
            Some(&b"/libpod_parent/libpod-x"[..])
        );
        assert_eq!(
            cgroup_path(text, CgroupMode::Unified).as_deref(),
            Some(&b"/user.slice"[..])
        );
        let no_memory = b"12:pids:/a\n4:cpu,cpuacct:/c\n";
        assert_eq!(
            cgroup_path(no_memory, CgroupMode::Legacy).as_deref(),
            Some(&b"/a"[..])
        );
        assert_eq!(cgroup_path(b"garbage", CgroupMode::Unified), None);
    }
}
