//! io_uring requests (`sensor.io_uring`) and their completions: the
//! requests reported at submission are remembered until their completion,
//! which then names the submission's event and repeats what it was (the
//! path, the destination), so one event says what was done and how it
//! ended.

use std::collections::BTreeMap;

use sensor_common::io_uring::CQE_F_MORE;

use super::net::Given;
use crate::event::{Endpoint, File, IoUringDetail, Network, Text};
use crate::source::ebpf::decode::{SockAddr, SysOp, SysRecord};

/// Submissions remembered at most. Beyond, the oldest are forgotten: a
/// request whose completion posts nothing (`IOSQE_CQE_SKIP_SUCCESS`) is
/// never claimed, and a completion whose submission was forgotten is still
/// reported, by its operation, without `completes`. The kernel's own map
/// of reported requests holds 8192.
const IN_FLIGHT_MAX: usize = 4096;

/// What a submission record asked for.
#[derive(Debug, Clone)]
pub(super) struct Request {
    pub detail: IoUringDetail,
    /// The path it names, joined to where a relative one starts.
    pub path: Option<Vec<u8>>,
    /// A link's: the file a hard link names, or what a symlink points at,
    /// as given (ECS `file.target_path`, as the watch family's links).
    pub target_path: Option<Vec<u8>>,
    /// A connect's address, as read from the caller's memory (empty for
    /// other requests).
    pub address: Vec<u8>,
}

impl Request {
    /// From a submission record (op `IoUring`).
    pub fn of(x: &SysRecord) -> Request {
        use sensor_common::io_uring::op;
        let (detail, path) = io_uring_detail(x);
        let opcode = x.args[0] as u8;
        let mut request = Request {
            detail,
            path,
            // A symlink's target: text the link will hold, as given.
            target_path: (opcode == op::SYMLINKAT && !x.name.is_empty()).then(|| x.name.clone()),
            // Only a connect's third string is an address (an xattr's is
            // its value).
            address: if opcode == op::CONNECT {
                x.fstype.clone()
            } else {
                Vec::new()
            },
        };
        // Joined to its directory where known, or the file at a hard
        // link's fd (see `SysRecord::io_uring_second_path`), else as given.
        let second = x.io_uring_second_path().or_else(|| {
            (sensor_common::io_uring::second_path_has_dir(opcode) && !x.name.is_empty())
                .then(|| x.name.clone())
        });
        if let Some(shown) = second {
            request.set_second_path(x, shown);
        }
        request
    }

    /// A rename's new name or a hard link's existing file as shown, where
    /// it is a path from the root (joined to its directory, or given so).
    pub fn second_path(&self) -> Option<&[u8]> {
        use sensor_common::io_uring::op;
        let shown = match self.detail.opcode {
            op::RENAMEAT => self.detail.target.as_ref().map(|t| &t.0[..]),
            op::LINKAT => self.target_path.as_deref(),
            _ => None,
        };
        shown.filter(|p| p.first() == Some(&b'/'))
    }

    /// Shows `path` as submission `x`'s rename's new name
    /// (`sensor.io_uring.target`) or hard link's existing file
    /// (`file.target_path`), with `x`'s argument where that differs.
    pub fn set_second_path(&mut self, x: &SysRecord, path: Vec<u8>) {
        self.detail.target_argument = super::watch::argument_if_changed(&x.name, Some(&path));
        if is_link(x) {
            self.target_path = Some(path);
        } else {
            self.detail.target = Some(Text(path));
        }
    }

    /// A connect's destination as the caller asked for it.
    pub fn destination(&self) -> Option<Endpoint> {
        SockAddr::parse(&self.address).map(|a| super::net::from_sockaddr(&a))
    }

    pub fn file(&self) -> Option<File> {
        self.path.clone().map(|path| File {
            path: Some(Text(path)),
            target_path: self.target_path.clone().map(Text),
            ..File::default()
        })
    }
}

/// Whether submission record `x` sets an xattr whose value is longer than
/// the kernel side copies (its size is args[2], the copy `fstype`).
pub(super) fn xattr_value_cut(x: &SysRecord) -> bool {
    sensor_common::io_uring::sets_xattr(x.args[0] as u8)
        && !x.name.is_empty()
        && (x.fstype.len() as u64) < x.args[2]
}

/// Whether io_uring record `x` is a link (linkat, symlinkat), whose second
/// path is `file.target_path`.
pub(super) fn is_link(x: &SysRecord) -> bool {
    use sensor_common::io_uring::op;
    matches!(x.args[0] as u8, op::LINKAT | op::SYMLINKAT)
}

/// Reported requests not completed yet, by (submission record's time,
/// process): what the kernel's completion record names them by.
#[derive(Default)]
pub(super) struct InFlight {
    requests: BTreeMap<(u64, u32), (String, Request)>,
    /// Submissions forgotten at the bound, and how many of them were
    /// already logged.
    forgotten: u64,
    logged: u64,
}

impl InFlight {
    /// Remembers submission `x`, whose event is `id`.
    pub fn submitted(&mut self, x: &SysRecord, id: String, request: Request) {
        if self.requests.len() >= IN_FLIGHT_MAX {
            // The oldest first: the keys start with the time.
            self.requests.pop_first();
            self.forgotten += 1;
        }
        self.requests
            .insert((x.boot_ns, x.task.tgid), (id, request));
    }

    /// Logs the submissions forgotten since the last call (periodic, off
    /// the per-event path): their completions lack `completes`.
    pub fn tick(&mut self) {
        if self.forgotten > self.logged {
            tracing::warn!(
                forgotten = self.forgotten - self.logged,
                bound = IN_FLIGHT_MAX,
                "io_uring requests in flight beyond the bound: the oldest submissions were \
                 forgotten, their completions are reported without sensor.io_uring.completes"
            );
            self.logged = self.forgotten;
        }
    }

    /// What completion `x` reports (args = [opcode, the submission
    /// record's time, CQE flags, a held open's flags], `ret` the result,
    /// `path` an open's file, walked from the new fd): the request it
    /// completes where it is remembered, and an open's file as opened. A
    /// request that completes again (a multishot accept) stays
    /// remembered.
    pub fn complete(&mut self, x: &SysRecord) -> Completion {
        use sensor_common::io_uring::op;
        let key = (x.args[1], x.task.tgid);
        let more = x.args[2] & CQE_F_MORE != 0;
        let found = if x.argument_ignored {
            // Never submitted as far as userspace knows.
            None
        } else if more {
            self.requests.get(&key).cloned()
        } else {
            self.requests.remove(&key)
        };
        let (completes, request) = found.map_or((None, None), |(id, r)| (Some(id), Some(r)));
        let mut detail = request
            .as_ref()
            .map(|r| r.detail.clone())
            .unwrap_or_else(|| IoUringDetail::of_opcode(x.args[0] as u8));
        detail.completes = completes;
        detail.result = (x.ret >= 0).then_some(x.ret);
        detail.multishot = more;
        if x.argument_ignored {
            detail.path_argument_ignored = true;
            detail.open_flags = super::watch::open_flag_names(x.args[3] as u32);
        }
        let mut file = request.as_ref().and_then(Request::file);
        if !x.path.is_empty() {
            // The submission's path, where it led elsewhere.
            let submitted = request.as_ref().and_then(|r| r.path.as_deref());
            if submitted.is_some_and(|p| p != x.path) {
                detail.path_argument = submitted.map(|p| Text(p.to_vec()));
            }
            file = Some(File {
                path: Some(Text(x.path.clone())),
                ..file.unwrap_or_default()
            });
        }
        let mut server = None;
        let (source, destination) = match x.args[0] as u8 {
            op::CONNECT => {
                // The socket's peer and own end where it connected: the
                // kernel's state, where the submission read the address
                // from the caller's memory, which a thread can rewrite
                // after the kernel copied it (or, before 6.10, before the
                // kernel copies it, when the request runs in a worker).
                let asked = request.as_ref().map_or(&[][..], |r| &r.address[..]);
                let socket = x.socket.as_ref();
                let remote = socket.and_then(|s| s.remote);
                let local = socket.and_then(|s| s.local);
                let ends = super::net::connect_ends(&Given::of(asked, None), remote, remote, local);
                detail.argument_address = ends.argument_address;
                (ends.source, ends.destination)
            }
            op::ACCEPT => x
                .socket
                .as_ref()
                .map_or((None, None), |s| super::net::accept_ends(s.local, s.remote)),
            // The socket's own end once bound (with the port the kernel
            // picked for port 0), or listening.
            op::BIND | op::LISTEN => {
                server = x
                    .socket
                    .as_ref()
                    .and_then(|s| s.local)
                    .map(super::net::from_ip);
                (None, None)
            }
            _ => (None, None),
        };
        // The socket's kind, and which way a connection goes.
        let network = x.socket.as_ref().map(|s| Network {
            direction: match x.args[0] as u8 {
                op::CONNECT => Some("egress"),
                op::ACCEPT => Some("ingress"),
                _ => None,
            },
            ..super::net::network_of(s.family, s.protocol)
        });
        Completion {
            detail,
            file,
            source,
            destination,
            server,
            network,
        }
    }
}

/// Is `x` an open the kernel held for its path argument (see
/// `sys_flags::ARGUMENT_IGNORED`) whose file opened is under one of
/// `prefixes` too? The kernel side drops those under a prefix that is a
/// directory; one that is not (`/var/lib/x`) is matched here, as
/// `file::ignored` does for chmod. Not for a file with other names (hard
/// links), nor one whose walk was cut short (its start is missing).
pub(super) fn held_open_ignored(x: &SysRecord, prefixes: &[Vec<u8>]) -> bool {
    // A submission with the mark names its argument, not the file opened:
    // the kernel reported it because nothing after could decide.
    x.op == SysOp::IoUringComplete
        && x.argument_ignored
        && !x.other_names
        && !x.truncated
        && !x.path.is_empty()
        && prefixes.iter().any(|p| x.path.starts_with(p))
}

/// What an `io_uring_complete` event reports.
pub(super) struct Completion {
    pub detail: IoUringDetail,
    pub file: Option<File>,
    /// A connect's own end; an accept's client.
    pub source: Option<Endpoint>,
    /// A connect's peer; an accept's end, on this host.
    pub destination: Option<Endpoint>,
    /// A bind's or a listen's socket end.
    pub server: Option<Endpoint>,
    /// ECS `network`, where the completion carried its socket.
    pub network: Option<Network>,
}

/// `sensor.io_uring`, and the path the request names (joined to where a
/// relative one starts), from an io_uring record: args are `[opcode,
/// dirfd, open flags, mode]` (an xattr's: `[opcode, dirfd or fd, value
/// size, XATTR_* flags]`; an ftruncate's `[opcode, fd, length, 1 if the
/// length was read]`; a rename's `[opcode, old dirfd, RENAME_* flags, new
/// dirfd]`; a hard link's `[opcode, new dirfd, 0, old dirfd]`), `path`
/// and `name` its two paths (an xattr's: its
/// path and name, and `fstype` its value; an fd-based request's path is its
/// file's, walked).
fn io_uring_detail(x: &SysRecord) -> (IoUringDetail, Option<Vec<u8>>) {
    use sensor_common::io_uring::op;
    let opcode = x.args[0] as u8;
    let path = (!x.path.is_empty()).then(|| x.io_uring_path());
    let dirfd = x.args[1] as u32 as i32;
    // An fd-based request's fd, where the hook read it.
    let on_fd = sensor_common::io_uring::acts_on_fd(opcode) && dirfd >= 0;
    // A rename's or hard link's second path, and its directory fd.
    let two_dirs = sensor_common::io_uring::second_path_has_dir(opcode) && !x.name.is_empty();
    let dirfd2 = x.args[3] as u32 as i32;
    let open = sensor_common::io_uring::opens(opcode);
    let flags = x.args[2] as u32;
    let creates = (open && super::watch::open_creates(flags)) || opcode == op::MKDIRAT;
    let detail = IoUringDetail {
        path_argument: path
            .as_deref()
            .is_some_and(|p| p != x.path.as_slice())
            .then(|| Text(x.path.clone())),
        dirfd: (!on_fd && !x.path.is_empty() && dirfd != sensor_common::AT_FDCWD).then_some(dirfd),
        fd: (on_fd && !x.fixed_file).then_some(dirfd),
        fixed_file: (on_fd && x.fixed_file).then_some(dirfd as u32),
        length: (opcode == op::FTRUNCATE && x.args[3] == 1).then_some(x.args[2] as i64),
        // `target` and `target_argument`: see Request::of.
        target_dirfd: ((two_dirs
            && crate::source::ebpf::decode::relative(&x.name)
            && dirfd2 != sensor_common::AT_FDCWD)
            // A hard link of the file open at its fd (AT_EMPTY_PATH).
            || x.second_is_file)
            .then_some(dirfd2),
        rename_flags: if opcode == op::RENAMEAT {
            super::watch::rename_flag_names(x.args[2] as u32)
        } else {
            Vec::new()
        },
        link_flags: if opcode == op::LINKAT {
            super::watch::link_flag_names(x.args[2] as u32)
        } else {
            Vec::new()
        },
        open_flags: if open {
            super::watch::open_flag_names(x.args[2] as u32)
        } else {
            Vec::new()
        },
        mode: creates.then(|| format!("{:04o}", x.args[3] & 0o7777)),
        xattr: (sensor_common::io_uring::sets_xattr(opcode) && !x.name.is_empty()).then(|| {
            let size = u32::try_from(x.args[2]).unwrap_or(u32::MAX);
            super::file::xattr(x.name.clone(), Some(&x.fstype), Some(size))
        }),
        path_argument_ignored: x.argument_ignored,
        ..IoUringDetail::of_opcode(opcode)
    };
    (detail, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io_uring_record(opcode: u8, args: [u64; 3], path: &[u8], name: &[u8]) -> SysRecord {
        SysRecord {
            boot_ns: 0,
            // SAFETY: TaskInfo is plain integers and byte arrays.
            task: unsafe { std::mem::zeroed() },
            op: SysOp::IoUring,
            ret: 0,
            args: [opcode as u64, args[0], args[1], args[2]],
            path: path.to_vec(),
            name: name.to_vec(),
            fstype: Vec::new(),
            base: Vec::new(),
            truncated: false,
            unreadable: false,
            namespaces_made: None,
            target_unknown: false,
            fixed_file: false,
            argument_ignored: false,
            other_names: false,
            base2_unknown: false,
            second_is_file: false,
            base2: Vec::new(),
            socket: None,
            module_name: None,
        }
    }

    /// The completion record of a request submitted at `submitted`.
    fn completion(opcode: u8, submitted: u64, ret: i64, cqe_flags: u64) -> SysRecord {
        SysRecord {
            op: SysOp::IoUringComplete,
            ret,
            args: [opcode as u64, submitted, cqe_flags, 0],
            ..io_uring_record(opcode, [0; 3], b"", b"")
        }
    }

    #[test]
    fn a_completion_names_its_submission_until_the_last_one() {
        use sensor_common::io_uring::op;
        let mut in_flight = InFlight::default();
        let mut accept = io_uring_record(op::ACCEPT, [0; 3], b"", b"");
        accept.boot_ns = 10;
        in_flight.submitted(&accept, "a".into(), Request::of(&accept));
        let mut open = io_uring_record(op::OPENAT, [0; 3], b"/etc/shadow", b"");
        open.boot_ns = 11;
        in_flight.submitted(&open, "o".into(), Request::of(&open));

        // A multishot accept completes twice and stays remembered.
        for fd in [5, 6] {
            let d = in_flight
                .complete(&completion(op::ACCEPT, 10, fd, CQE_F_MORE))
                .detail;
            assert_eq!(
                (d.completes.as_deref(), d.result, d.multishot),
                (Some("a"), Some(fd), true)
            );
        }
        // Its last completion (a failure) ends it.
        let d = in_flight
            .complete(&completion(op::ACCEPT, 10, -125, 0))
            .detail;
        assert_eq!(
            (d.completes.as_deref(), d.result, d.multishot),
            (Some("a"), None, false)
        );
        let d = in_flight.complete(&completion(op::ACCEPT, 10, 7, 0)).detail;
        assert!(d.completes.is_none(), "forgotten");
        assert_eq!(d.operation, "accept", "still named by its opcode");

        // Another process's completion with the same time is not this one.
        let mut other = completion(op::OPENAT, 11, 3, 0);
        other.task.tgid = 99;
        assert!(in_flight.complete(&other).detail.completes.is_none());
        // The open's completion names the file opened, walked from its
        // fd: here the one the submission named.
        let mut done = completion(op::OPENAT, 11, 3, 0);
        done.path = b"/etc/shadow".to_vec();
        let Completion {
            detail: d, file, ..
        } = in_flight.complete(&done);
        assert_eq!((d.completes.as_deref(), d.result), (Some("o"), Some(3)));
        assert_eq!(
            file.and_then(|f| f.path).map(|p| p.0),
            Some(b"/etc/shadow".to_vec())
        );
        assert!(d.path_argument.is_none(), "the same path");
    }

    #[test]
    fn a_held_open_under_a_prefix_that_is_no_directory_is_dropped_here() {
        let prefixes = [b"/var/lib/x".to_vec()];
        let mut held = completion(sensor_common::io_uring::op::OPENAT, 0, 4, 0);
        (held.argument_ignored, held.path) = (true, b"/var/lib/xyz/f".to_vec());
        assert!(held_open_ignored(&held, &prefixes));
        // Not: another place, a hard link's name, a walk cut short, or a
        // completion of a reported open.
        let mut other = held.clone();
        other.path = b"/etc/shadow".to_vec();
        let mut linked = held.clone();
        linked.other_names = true;
        let mut cut = held.clone();
        cut.truncated = true;
        let mut reported = held.clone();
        reported.argument_ignored = false;
        for x in [other, linked, cut, reported] {
            assert!(!held_open_ignored(&x, &prefixes), "{:?}", x.path);
        }
        // A submission the kernel reported with the mark (nothing tells
        // where it lands): kept, and it says why it is here.
        let mut skipped = io_uring_record(sensor_common::io_uring::op::OPENAT, [0; 3], b"", b"");
        (skipped.argument_ignored, skipped.path) = (true, b"/var/lib/xyz/l".to_vec());
        assert!(!held_open_ignored(&skipped, &prefixes));
        assert!(Request::of(&skipped).detail.path_argument_ignored);
        skipped.argument_ignored = false;
        assert!(!Request::of(&skipped).detail.path_argument_ignored);
    }

    #[test]
    fn an_opens_completion_names_the_file_a_symlink_led_to() {
        use sensor_common::io_uring::op;
        let mut in_flight = InFlight::default();
        let mut open = io_uring_record(op::OPENAT, [0; 3], b"/tmp/l", b"");
        open.boot_ns = 11;
        in_flight.submitted(&open, "o".into(), Request::of(&open));
        let mut done = completion(op::OPENAT, 11, 3, 0);
        done.path = b"/etc/shadow".to_vec();
        let Completion {
            detail: d, file, ..
        } = in_flight.complete(&done);
        assert_eq!(
            file.and_then(|f| f.path).map(|p| p.0),
            Some(b"/etc/shadow".to_vec())
        );
        assert_eq!(d.path_argument.map(|p| p.0), Some(b"/tmp/l".to_vec()));
        assert!(!d.path_argument_ignored);

        // Held by the kernel (its argument under an ignored prefix): the
        // completion alone, with the open's flags, naming no submission.
        let mut held = completion(op::OPENAT, 0, 4, 0);
        held.args[3] = libc::O_WRONLY as u64;
        (held.argument_ignored, held.path) = (true, b"/etc/shadow".to_vec());
        let Completion {
            detail: d, file, ..
        } = in_flight.complete(&held);
        assert!(d.path_argument_ignored && d.completes.is_none());
        assert_eq!((d.operation, d.result), ("openat", Some(4)));
        assert_eq!(d.open_flags, ["O_WRONLY"]);
        assert_eq!(
            file.and_then(|f| f.path).map(|p| p.0),
            Some(b"/etc/shadow".to_vec())
        );
    }

    #[test]
    fn the_oldest_submissions_are_forgotten_at_the_bound() {
        let mut in_flight = InFlight::default();
        for t in 0..=IN_FLIGHT_MAX as u64 {
            let mut x = io_uring_record(sensor_common::io_uring::op::CONNECT, [0; 3], b"", b"");
            x.boot_ns = t;
            in_flight.submitted(&x, t.to_string(), Request::of(&x));
        }
        assert_eq!(in_flight.requests.len(), IN_FLIGHT_MAX);
        assert_eq!(in_flight.forgotten, 1);
        let op = sensor_common::io_uring::op::CONNECT;
        assert!(
            in_flight
                .complete(&completion(op, 0, 0, 0))
                .detail
                .completes
                .is_none()
        );
        let last = IN_FLIGHT_MAX as u64;
        let d = in_flight.complete(&completion(op, last, 0, 0)).detail;
        assert_eq!(d.completes, Some(last.to_string()));
    }

    /// A rename's new name and a hard link's existing file are joined to
    /// their own directory fd's directory (args[3]): the one walked where
    /// the first path is absolute, the first's where both are relative to
    /// one fd, its own (`base2`) where they are relative to two; as given
    /// where that was not walked.
    #[test]
    fn a_second_path_is_joined_to_its_own_directory() {
        use sensor_common::io_uring::op;
        let cwd = sensor_common::AT_FDCWD as u32 as u64;
        let with_base = |opcode, args, path: &[u8], name: &[u8], base: &[u8]| SysRecord {
            base: base.to_vec(),
            ..io_uring_record(opcode, args, path, name)
        };
        // Absolute, then relative to fd 7 (`mv /tmp/x` into /etc/cron.d):
        // the directory walked is fd 7's.
        let x = with_base(
            op::RENAMEAT,
            [cwd, 0, 7],
            b"/tmp/x",
            b"evil",
            b"/etc/cron.d",
        );
        let Request {
            detail: d, path, ..
        } = Request::of(&x);
        assert_eq!(path.as_deref(), Some(&b"/tmp/x"[..]));
        assert!(d.path_argument.is_none() && d.dirfd.is_none());
        assert_eq!(d.target.map(|t| t.0), Some(b"/etc/cron.d/evil".to_vec()));
        assert_eq!(d.target_argument.map(|t| t.0), Some(b"evil".to_vec()));
        assert_eq!(d.target_dirfd, Some(7));
        assert!(d.rename_flags.is_empty());
        // Both relative to the cwd: both joined to it.
        let x = with_base(op::RENAMEAT, [cwd, 2, cwd], b"a", b"b", b"/root");
        let Request {
            detail: d, path, ..
        } = Request::of(&x);
        assert_eq!(path.as_deref(), Some(&b"/root/a"[..]));
        assert_eq!(d.target.map(|t| t.0), Some(b"/root/b".to_vec()));
        assert!(d.target_dirfd.is_none());
        assert_eq!(d.rename_flags, ["RENAME_EXCHANGE"]);
        // Relative to two fds: each joined to its own fd's directory.
        let mut x = with_base(op::RENAMEAT, [3, 5, 4], b"a", b"b", b"/root");
        (x.base2_unknown, x.base2) = (true, b"/etc/cron.d".to_vec());
        let Request {
            detail: d, path, ..
        } = Request::of(&x);
        assert_eq!(path.as_deref(), Some(&b"/root/a"[..]));
        assert_eq!(d.target.map(|t| t.0), Some(b"/etc/cron.d/b".to_vec()));
        assert_eq!(d.target_argument.map(|t| t.0), Some(b"b".to_vec()));
        assert_eq!(d.target_dirfd, Some(4));
        assert_eq!(d.rename_flags, ["RENAME_NOREPLACE", "RENAME_WHITEOUT"]);
        // The second's not walked (no stage): as given, with its fd.
        x.base2.clear();
        let d = Request::of(&x).detail;
        assert_eq!(d.target.map(|t| t.0), Some(b"b".to_vec()));
        assert!(d.target_argument.is_none());
        assert_eq!(d.target_dirfd, Some(4));
        // An absolute second path is made normal, whatever was walked.
        let x = with_base(op::RENAMEAT, [3, 0, 4], b"a", b"/etc//x", b"/root");
        let d = Request::of(&x).detail;
        assert_eq!(d.target.map(|t| t.0), Some(b"/etc/x".to_vec()));
        assert_eq!(d.target_argument.map(|t| t.0), Some(b"/etc//x".to_vec()));
        assert!(d.target_dirfd.is_none(), "an absolute path starts nowhere");

        // A hard link's existing file, relative to fd 5, the new name
        // absolute: file.target_path joined.
        let x = with_base(op::LINKAT, [cwd, 0, 5], b"/etc/cron.d/l", b"f", b"/tmp");
        let request = Request::of(&x);
        let file = request.file().expect("a path");
        assert_eq!(file.path.map(|t| t.0), Some(b"/etc/cron.d/l".to_vec()));
        assert_eq!(file.target_path.map(|t| t.0), Some(b"/tmp/f".to_vec()));
        assert!(request.detail.target.is_none());
        assert_eq!(
            request.detail.target_argument.map(|t| t.0),
            Some(b"f".to_vec())
        );
        assert_eq!(request.detail.target_dirfd, Some(5));
        // A symlink's target is text: never joined, whatever args[3] holds.
        let x = with_base(op::SYMLINKAT, [7, 0, 9], b"l", b"t", b"/tmp");
        let request = Request::of(&x);
        let file = request.file().expect("a path");
        assert_eq!(file.path.map(|t| t.0), Some(b"/tmp/l".to_vec()));
        assert_eq!(file.target_path.map(|t| t.0), Some(b"t".to_vec()));
        assert!(request.detail.target_argument.is_none());
        assert!(request.detail.target_dirfd.is_none());
        assert!(
            request.detail.link_flags.is_empty(),
            "a symlink's flags are stale"
        );

        // A hard link of the file open at fd 6 (AT_EMPTY_PATH), walked
        // (an O_TMPFILE file), at an absolute name.
        let mut x = with_base(
            op::LINKAT,
            [cwd, 0x1000, 6],
            b"/etc/cron.d/l",
            b"",
            b"/tmp/#12",
        );
        x.second_is_file = true;
        let request = Request::of(&x);
        let file = request.file().expect("a path");
        assert_eq!(file.path.map(|t| t.0), Some(b"/etc/cron.d/l".to_vec()));
        assert_eq!(file.target_path.map(|t| t.0), Some(b"/tmp/#12".to_vec()));
        assert!(request.detail.target_argument.is_none());
        assert_eq!(request.detail.target_dirfd, Some(6));
        assert_eq!(request.detail.link_flags, ["AT_EMPTY_PATH"]);
        // At a name relative to another fd: the fd's file walked too.
        let mut x = with_base(op::LINKAT, [7, 0x1400, 6], b"l", b"", b"/etc/cron.d");
        (x.base2_unknown, x.second_is_file) = (true, true);
        x.base2 = b"/tmp/#13".to_vec();
        let request = Request::of(&x);
        let file = request.file().expect("a path");
        assert_eq!(file.path.map(|t| t.0), Some(b"/etc/cron.d/l".to_vec()));
        assert_eq!(file.target_path.map(|t| t.0), Some(b"/tmp/#13".to_vec()));
        // Not walked: no file.
        x.base2.clear();
        assert!(
            Request::of(&x)
                .file()
                .expect("a path")
                .target_path
                .is_none()
        );
        assert_eq!(request.detail.target_dirfd, Some(6));
        assert_eq!(
            request.detail.link_flags,
            ["AT_SYMLINK_FOLLOW", "AT_EMPTY_PATH"]
        );
    }

    #[test]
    fn an_io_uring_request_names_what_it_creates_and_keeps_an_unjoined_path() {
        use sensor_common::io_uring::op;
        let at_fdcwd = sensor_common::AT_FDCWD as u32 as u64;
        // A symlink: the link's path, its target second (file.target_path,
        // as the watch family's links); the walk to the dirfd's directory
        // failed, so the path stays as given.
        let x = io_uring_record(op::SYMLINKAT, [7, 0, 0], b"link", b"/etc/shadow");
        let (d, path) = io_uring_detail(&x);
        assert_eq!(d.operation, "symlinkat");
        assert_eq!(path.as_deref(), Some(&b"link"[..]));
        assert_eq!(d.dirfd, Some(7));
        assert!(d.path_argument.is_none(), "nothing was joined");
        assert!(d.target.is_none(), "a link's second path is the file's");
        let file = Request::of(&x).file().expect("a path");
        assert_eq!(file.target_path.map(|t| t.0), Some(b"/etc/shadow".to_vec()));
        assert!(d.mode.is_none() && d.open_flags.is_empty());
        // A rename's new name stays in sensor.io_uring.target.
        let x = io_uring_record(op::RENAMEAT, [7, 0, 0], b"a", b"b");
        assert_eq!(
            Request::of(&x).detail.target.map(|t| t.0),
            Some(b"b".to_vec())
        );
        assert!(
            Request::of(&x)
                .file()
                .expect("a path")
                .target_path
                .is_none()
        );

        // O_TMPFILE creates; O_DIRECTORY alone (half of its bits) does not.
        let tmpfile = (libc::O_TMPFILE | libc::O_RDWR) as u64;
        let (d, _) = io_uring_detail(&io_uring_record(
            op::OPENAT,
            [at_fdcwd, tmpfile, 0o600],
            b"/tmp",
            b"",
        ));
        assert_eq!(d.mode.as_deref(), Some("0600"));
        assert_eq!(d.open_flags, ["O_RDWR", "O_TMPFILE"]);
        assert!(d.dirfd.is_none());
        let directory = libc::O_DIRECTORY as u64;
        let (d, _) = io_uring_detail(&io_uring_record(
            op::OPENAT2,
            [at_fdcwd, directory, 0],
            b"/tmp",
            b"",
        ));
        assert!(d.mode.is_none());

        // Joined to the cwd the kernel walked.
        let mut x = io_uring_record(op::MKDIRAT, [at_fdcwd, 0, 0o1777], b"d", b"");
        x.base = b"/root".to_vec();
        let (d, path) = io_uring_detail(&x);
        assert_eq!(path.as_deref(), Some(&b"/root/d"[..]));
        assert_eq!(d.path_argument.as_ref().map(|t| &t.0[..]), Some(&b"d"[..]));
        assert_eq!(d.mode.as_deref(), Some("1777"));
        // Made normal, relative or absolute; the argument kept as given.
        let mut x = io_uring_record(op::MKDIRAT, [at_fdcwd, 0, 0o700], b"../etc//d", b"");
        x.base = b"/root".to_vec();
        let (d, path) = io_uring_detail(&x);
        assert_eq!(path.as_deref(), Some(&b"/etc/d"[..]));
        assert_eq!(
            d.path_argument.as_ref().map(|t| &t.0[..]),
            Some(&b"../etc//d"[..])
        );
        let x = io_uring_record(op::UNLINKAT, [at_fdcwd, 0, 0], b"/tmp/../etc/x", b"");
        let (d, path) = io_uring_detail(&x);
        assert_eq!(path.as_deref(), Some(&b"/etc/x"[..]));
        assert_eq!(
            d.path_argument.as_ref().map(|t| &t.0[..]),
            Some(&b"/tmp/../etc/x"[..])
        );

        // An xattr: its name and value as the kernel copied them, a
        // capability set decoded; the value is not an address.
        let mut cap = 0x0200_0001u32.to_le_bytes().to_vec();
        for word in [1u32 << 7, 0, 0, 0] {
            cap.extend(word.to_le_bytes());
        }
        let mut x = io_uring_record(op::SETXATTR, [at_fdcwd, 20, 0], b"/tmp/f", b"");
        (x.name, x.fstype) = (b"security.capability".to_vec(), cap.clone());
        let request = Request::of(&x);
        let xattr = request.detail.xattr.as_ref().expect("an xattr");
        assert_eq!(xattr.name.0, b"security.capability");
        assert_eq!(xattr.size, Some(20));
        assert_eq!(
            xattr.value_hex.as_deref(),
            Some("0100000280000000000000000000000000000000")
        );
        let caps = xattr.capabilities.as_ref().expect("decoded");
        assert_eq!(
            (caps.permitted.as_slice(), caps.effective),
            (&["CAP_SETUID"][..], true)
        );
        assert!(request.destination().is_none() && !xattr_value_cut(&x));
        assert_eq!(request.path.as_deref(), Some(&b"/tmp/f"[..]));
        // A longer value than was copied is told; an fsetxattr has no path.
        let mut x = io_uring_record(op::FSETXATTR, [5, 4096, 0], b"", b"");
        (x.name, x.fstype) = (b"user.big".to_vec(), vec![0; 64]);
        let request = Request::of(&x);
        assert!(xattr_value_cut(&x) && request.path.is_none());
        assert!(
            request
                .detail
                .xattr
                .expect("an xattr")
                .capabilities
                .is_none()
        );

        // An ftruncate names its fd, the file's path as the kernel
        // walked it, and the length; a registered file only its index.
        let x = io_uring_record(op::FTRUNCATE, [5, 0, 1], b"/var/log/auth.log", b"");
        let (d, path) = io_uring_detail(&x);
        assert_eq!((d.fd, d.fixed_file, d.length), (Some(5), None, Some(0)));
        assert!(d.dirfd.is_none() && d.path_argument.is_none());
        assert_eq!(path.as_deref(), Some(&b"/var/log/auth.log"[..]));
        let mut x = io_uring_record(op::FTRUNCATE, [2, 4096, 1], b"", b"");
        x.fixed_file = true;
        let (d, path) = io_uring_detail(&x);
        assert_eq!((d.fd, d.fixed_file, d.length), (None, Some(2), Some(4096)));
        assert!(path.is_none());
        // The fd unread (-1), the length unread: neither is made up.
        let (d, _) = io_uring_detail(&io_uring_record(
            op::FTRUNCATE,
            [u32::MAX as u64, 0, 0],
            b"",
            b"",
        ));
        assert_eq!((d.fd, d.fixed_file, d.length), (None, None, None));

        // Before 5.19: the opcode alone.
        let (d, path) = io_uring_detail(&io_uring_record(op::CONNECT, [at_fdcwd, 0, 0], b"", b""));
        assert_eq!((d.operation, path), ("connect", None));
        assert!(d.dirfd.is_none() && d.target.is_none());
    }

    fn sockaddr_in(addr: &str) -> Vec<u8> {
        let a: std::net::SocketAddrV4 = addr.parse().expect("an IPv4 address");
        let mut b = libc::AF_INET.to_ne_bytes()[..2].to_vec();
        b.extend(a.port().to_be_bytes());
        b.extend(a.ip().octets());
        b.extend([0; 8]);
        b
    }

    fn ip_port(e: Option<&Endpoint>) -> Option<String> {
        e.map(|e| format!("{}:{}", e.ip.expect("an ip"), e.port.expect("a port")))
    }

    #[test]
    fn a_connects_completion_names_the_peer_its_socket_got_and_a_rewritten_argument() {
        use crate::source::ebpf::decode::SocketView;
        use sensor_common::io_uring::op;
        let mut in_flight = InFlight::default();
        let mut submission = io_uring_record(op::CONNECT, [3, 0, 0], b"", b"");
        submission.fstype = sockaddr_in("127.0.0.1:40001");
        let socket = |peer: &str| SocketView {
            family: libc::AF_INET as u16,
            protocol: libc::IPPROTO_UDP as u16,
            local: Some("127.0.0.1:5555".parse().expect("addr")),
            remote: Some(peer.parse().expect("addr")),
        };
        // Another peer than the submission read: a thread rewrote it.
        // The same: nothing to say. No socket (a failed connect): the
        // submission's address, as it was.
        for (at, peer, named, argument, source) in [
            (
                1,
                Some("127.0.0.2:40002"),
                "127.0.0.2:40002",
                Some("127.0.0.1:40001"),
                Some("127.0.0.1:5555"),
            ),
            (
                2,
                Some("127.0.0.1:40001"),
                "127.0.0.1:40001",
                None,
                Some("127.0.0.1:5555"),
            ),
            (3, None, "127.0.0.1:40001", None, None),
        ] {
            submission.boot_ns = at;
            in_flight.submitted(&submission, format!("c{at}"), Request::of(&submission));
            let mut done = completion(op::CONNECT, at, if peer.is_some() { 0 } else { -111 }, 0);
            done.socket = peer.map(socket);
            let c = in_flight.complete(&done);
            assert_eq!(
                c.detail.completes.as_deref(),
                Some(format!("c{at}").as_str())
            );
            assert_eq!(
                ip_port(c.destination.as_ref()).as_deref(),
                Some(named),
                "{at}"
            );
            assert_eq!(
                ip_port(c.detail.argument_address.as_ref()).as_deref(),
                argument,
                "{at}"
            );
            assert_eq!(ip_port(c.source.as_ref()).as_deref(), source, "{at}");
            let network = c.network.map(|n| (n.transport, n.direction));
            let udp_out = (Some("udp".to_owned()), Some("egress"));
            assert_eq!(network, peer.map(|_| udp_out), "{at}");
        }
    }

    #[test]
    fn an_accepts_completion_names_the_client_and_this_hosts_end() {
        use crate::source::ebpf::decode::SocketView;
        use sensor_common::io_uring::op;
        let mut done = completion(op::ACCEPT, 1, 7, CQE_F_MORE);
        done.socket = Some(SocketView {
            family: libc::AF_INET6 as u16,
            protocol: libc::IPPROTO_TCP as u16,
            local: Some("[::1]:22".parse().expect("addr")),
            remote: Some("[::1]:50000".parse().expect("addr")),
        });
        let c = InFlight::default().complete(&done);
        assert_eq!(ip_port(c.source.as_ref()).as_deref(), Some("::1:50000"));
        assert_eq!(ip_port(c.destination.as_ref()).as_deref(), Some("::1:22"));
        assert!(c.detail.argument_address.is_none());
        let network = c.network.expect("network");
        assert_eq!(
            (
                network.transport.as_deref(),
                network.type_,
                network.direction
            ),
            (Some("tcp"), Some("ipv6"), Some("ingress"))
        );
        // Without its socket (a registered file's slot), no ends.
        done.socket = None;
        let c = InFlight::default().complete(&done);
        assert!(c.source.is_none() && c.destination.is_none());
    }

    #[test]
    fn a_binds_and_a_listens_completion_name_the_sockets_own_end() {
        use crate::source::ebpf::decode::SocketView;
        use sensor_common::io_uring::op;
        for opcode in [op::BIND, op::LISTEN] {
            let mut done = completion(opcode, 1, 0, 0);
            done.socket = Some(SocketView {
                family: libc::AF_INET as u16,
                protocol: libc::IPPROTO_TCP as u16,
                local: Some("0.0.0.0:41234".parse().expect("addr")),
                remote: Some("0.0.0.0:0".parse().expect("addr")),
            });
            let c = InFlight::default().complete(&done);
            assert_eq!(ip_port(c.server.as_ref()).as_deref(), Some("0.0.0.0:41234"));
            assert!(c.source.is_none() && c.destination.is_none());
        }
    }
}
