//! File attribute changes (chmod, chown, xattr) into `file.*` and
//! `sensor.file_change`.

use sensor_common::{SyscallOp, has_other_names};

use super::followed::Argument;
use super::{Kind, Pipeline, outcome};
use crate::enrich::path_resolve::Unresolved;
use crate::enrich::user::Accounts;
use crate::event::{Event, File, FileAttrs, FileChange, SensorFields, Text, Xattr, caps};
use crate::source::ebpf::decode::FileRecord;

const FILE: &[&str] = &["file"];
const CHANGE: &[&str] = &["change"];

/// `u32::MAX` (-1) as a chown argument: leave this id unchanged.
const UNCHANGED: u32 = u32::MAX;

impl Pipeline {
    /// None: a call the kernel side kept only for the path filter to be
    /// decided here (see [`ignored`]).
    pub(super) fn file_attr(&mut self, f: FileRecord) -> Option<Event> {
        if ignored(&f, &self.ignored_path_prefixes) {
            self.path_filter_drops += 1;
            return None;
        }
        let ticks = self.table.ids.ticks(f.task.start_boottime);
        self.known(&f.task, ticks);
        let (outcome, error) = outcome(f.ret);
        let action = match f.op {
            op if op.is_chmod() => "chmod",
            op if op.is_chown() => "chown",
            op if op.sets_xattr() => "set_xattr",
            _ => "remove_xattr",
        };
        let mut change = FileChange::default();
        let mut sensor = SensorFields {
            syscall: Some(f.op.name()),
            ..SensorFields::default()
        };
        // Where the kernel did not resolve the file, a path argument that
        // may lead elsewhere than its bytes say is followed again: else a
        // chmod of `/tmp/l/../shadow` (`/tmp/l -> /etc/x`) would name
        // `/tmp/shadow`.
        let (path, unresolved) = if f.base_is_file || f.kernel_path {
            (f.resolved_path(), None)
        } else {
            let follows_last = !matches!(
                f.op,
                SyscallOp::Lchown | SyscallOp::Lsetxattr | SyscallOp::Lremovexattr
            ) && f.at_flags & libc::AT_SYMLINK_NOFOLLOW as u32 == 0;
            self.followed(
                &f.task,
                ticks,
                Argument {
                    path: &f.path,
                    base: &f.base,
                    cwd: f.cwd_at_call(),
                },
                f.resolved_path(),
                follows_last,
            )
        };
        change.unresolved = unresolved.map(Unresolved::name);
        change.path_argument = super::watch::argument_if_changed(&f.path, path.as_deref());
        if f.path_cut() {
            sensor.truncated.push("file.path");
        }
        if f.path_unreadable {
            change.unavailable.push("path_argument");
        }

        // Names of owners come from the accounts the process sees.
        let container = self
            .table
            .get_exact(f.task.tgid, ticks)
            .and_then(|p| p.container.clone());
        let pids = [f.task.tgid, f.task.ppid];
        let accounts = match &container {
            Some(c) => Accounts::Container {
                id: &c.id,
                pids: &pids,
            },
            None => Accounts::Host,
        };
        let before = f.before.map(|b| FileAttrs {
            mode: octal(b.mode),
            uid: self.users.user(b.uid, &accounts),
            gid: self.users.group(b.gid, &accounts),
            links: b.nlink,
            special_bits: special_bits(b.mode),
        });
        if f.before.is_none() {
            change.unavailable.push("before");
        }

        let mut file = File {
            path: path.map(Text),
            ..File::default()
        };
        if let Some(b) = f.before {
            file.inode = Some(b.ino.to_string());
            file.device = Some(format!("{}:{}", b.dev >> 20, b.dev & 0xfffff));
        }
        match action {
            "chmod" => {
                change.requested.mode = Some(octal(f.mode));
                change.special_bits = special_bits(f.mode);
                if let Some(b) = f.before {
                    let (added, removed) = bits_diff(b.mode, f.mode);
                    if outcome == "success" {
                        change.special_bits_added = added;
                        change.special_bits_removed = removed;
                    }
                }
                // After a successful chmod the permission bits are the
                // requested ones; ownership is unchanged.
                if outcome == "success" {
                    file.mode = Some(octal(f.mode));
                }
                if let Some(b) = &before {
                    file.uid = Some(b.uid.id.clone());
                    file.owner = b.uid.name.clone();
                    file.gid = Some(b.gid.id.clone());
                    file.group = b.gid.name.clone();
                }
            }
            "chown" => {
                change.requested.uid =
                    (f.uid != UNCHANGED).then(|| self.users.user(f.uid, &accounts));
                change.requested.gid =
                    (f.gid != UNCHANGED).then(|| self.users.group(f.gid, &accounts));
                if outcome == "success" {
                    let uid = if f.uid != UNCHANGED {
                        Some(f.uid)
                    } else {
                        f.before.map(|b| b.uid)
                    };
                    let gid = if f.gid != UNCHANGED {
                        Some(f.gid)
                    } else {
                        f.before.map(|b| b.gid)
                    };
                    if let Some(uid) = uid {
                        let u = self.users.user(uid, &accounts);
                        file.uid = Some(u.id.clone());
                        file.owner = u.name.clone();
                    }
                    if let Some(gid) = gid {
                        let g = self.users.group(gid, &accounts);
                        file.gid = Some(g.id.clone());
                        file.group = g.name.clone();
                    }
                }
            }
            _ => {
                change.xattr = Some(Xattr {
                    rewritten: f.xattr_rewritten,
                    ..xattr(
                        f.xattr_name.clone().unwrap_or_default(),
                        f.xattr_value.as_deref(),
                        f.op.sets_xattr().then_some(f.xattr_value_size),
                    )
                });
                if f.xattr_value_truncated {
                    sensor.truncated.push("sensor.file_change.xattr.value_hex");
                }
                if f.xattr_name_unreadable {
                    change.unavailable.push("xattr.name");
                }
                if f.xattr_value_unreadable {
                    change.unavailable.push("xattr.value_hex");
                }
            }
        }
        change.before = before;
        for (field, text) in [
            ("file.path", file.path.as_ref()),
            (
                "sensor.file_change.path_argument",
                change.path_argument.as_ref(),
            ),
            (
                "sensor.file_change.xattr.name",
                change.xattr.as_ref().map(|x| &x.name),
            ),
        ] {
            if text.is_some_and(Text::is_escaped) {
                sensor.escaped.push(field.to_owned());
            }
        }
        sensor.file_change = Some(Box::new(change));
        let kind = Kind {
            category: FILE,
            type_: CHANGE,
            action,
            outcome,
        };
        let mut ev = self.process_event(f.boot_ns, &f.task, kind, sensor);
        ev.file = Some(file);
        ev.error = error;
        Some(ev)
    }
}

/// `sensor.*.xattr` of a change of xattr `name`: a removal has no
/// `value` or `size`; `security.capability`'s value is decoded.
pub(super) fn xattr(name: Vec<u8>, value: Option<&[u8]>, size: Option<u32>) -> Xattr {
    let capabilities = match (value, name.as_slice()) {
        (Some(v), b"security.capability") => caps::decode_file_caps(v),
        _ => None,
    };
    Xattr {
        name: Text(name),
        size,
        value_hex: value.map(|v| v.iter().map(|b| format!("{b:02x}")).collect()),
        capabilities,
        rewritten: false,
    }
}

/// Is this chmod or chown one `[filter] ignore_path_prefixes` drops? The
/// kernel side takes this same decision at the syscall's exit (its
/// `file::ignored_by_path`) wherever it can, so that what is dropped does
/// not cross to userspace: this one sees only what it could not match, a
/// resolved file against a prefix that is not a directory (`/var/lib/x`
/// matches `/var/lib/xyz/f`, which a walked path's components cannot
/// express). The decision, for calls the entry did not drop by their path
/// argument (those flagged `path_argument_ignored`, and those the kernel
/// resolved):
/// - where the kernel resolved the file (`kernel_path`), the file's path
///   decides, not the argument's text, which a symlink or a thread can
///   point elsewhere;
/// - otherwise the argument decides, as for a call whose hook never ran
///   (a failed lookup); unless the hook saw the file, gone from its name
///   by the exit, when the kernel side clears the mark (the argument may
///   have led there through a symlink).
///
/// A resolved file with other names is kept (`has_other_names`):
/// resolution stops at a hard link, which root, or a file's owner, can
/// make in a directory under an ignored prefix (`ln /etc/shadow /tmp/x/h;
/// chmod 666 /tmp/x/h`).
///
/// A chmod that sets the setuid or setgid bit is never dropped by a path,
/// and neither is an xattr change (`SyscallOp::path_filter_applies`): the
/// kernel keeps them, and they are reported.
fn ignored(f: &FileRecord, prefixes: &[Vec<u8>]) -> bool {
    if !f.op.path_filter_applies(f.mode) {
        return false;
    }
    if f.kernel_path {
        if f.before.is_some_and(|b| has_other_names(b.mode, b.nlink)) {
            return false;
        }
        // A walk cut short lacks its start: no prefix can be told.
        let path = (!f.base_truncated).then(|| f.resolved_path()).flatten();
        return path.is_some_and(|path| prefixes.iter().any(|p| path.starts_with(p)));
    }
    f.path_argument_ignored
}

/// Permission bits in octal, ECS style: `"4755"`, `"0644"`.
fn octal(mode: u32) -> String {
    format!("{:04o}", mode & 0o7777)
}

fn special_bits(mode: u32) -> Vec<&'static str> {
    [(0o4000, "setuid"), (0o2000, "setgid"), (0o1000, "sticky")]
        .into_iter()
        .filter(|(bit, _)| mode & bit != 0)
        .map(|(_, name)| name)
        .collect()
}

/// Special bits added and removed going from `before` to `after`.
fn bits_diff(before: u32, after: u32) -> (Vec<&'static str>, Vec<&'static str>) {
    (special_bits(after & !before), special_bits(before & !after))
}

#[cfg(test)]
mod tests {
    use sensor_common::SyscallOp;

    use super::*;
    use crate::source::ebpf::decode::InodeAttrs;

    #[test]
    fn modes_and_bits() {
        assert_eq!(octal(0o104755), "4755");
        assert_eq!(octal(0o644), "0644");
        assert_eq!(special_bits(0o6755), vec!["setuid", "setgid"]);
        assert_eq!(special_bits(0o1777), vec!["sticky"]);
        assert_eq!(bits_diff(0o100755, 0o4755), (vec!["setuid"], vec![]));
        assert_eq!(bits_diff(0o102755, 0o755), (vec![], vec!["setgid"]));
    }

    fn record(op: SyscallOp, mode: u32) -> FileRecord {
        FileRecord {
            boot_ns: 0,
            // SAFETY: plain integers and byte arrays, for which zero is valid.
            task: unsafe { std::mem::zeroed() },
            op,
            ret: 0,
            fd: sensor_common::AT_FDCWD,
            at_flags: 0,
            mode,
            uid: u32::MAX,
            gid: u32::MAX,
            before: None,
            path: b"/tmp/ignored/link".to_vec(),
            path_unreadable: false,
            path_truncated: false,
            base: Vec::new(),
            base_is_file: false,
            base_truncated: false,
            base_is_cwd: false,
            cwd_is_leaders: false,
            kernel_path: false,
            path_argument_ignored: false,
            xattr_name: None,
            xattr_value: None,
            xattr_value_size: 0,
            xattr_value_truncated: false,
            xattr_name_unreadable: false,
            xattr_value_unreadable: false,
            xattr_rewritten: false,
        }
    }

    /// The file as the kernel resolved it: `base`, the file itself, a
    /// regular file with one name.
    fn resolved_to(mut f: FileRecord, path: &[u8]) -> FileRecord {
        f.kernel_path = true;
        f.base_is_file = true;
        f.base = path.to_vec();
        f.before = Some(InodeAttrs {
            mode: 0o100644,
            uid: 0,
            gid: 0,
            nlink: 1,
            ino: 12,
            dev: 8 << 20,
        });
        f
    }

    fn with_links(mut f: FileRecord, mode: u32, nlink: u32) -> FileRecord {
        let before = f.before.as_mut().expect("a resolved file's attributes");
        before.mode = mode;
        before.nlink = nlink;
        f
    }

    #[test]
    fn a_hard_link_under_an_ignored_prefix_does_not_hide_its_file() {
        let prefixes = vec![b"/tmp/ignored/".to_vec()];
        let linked = resolved_to(record(SyscallOp::Chmod, 0o666), b"/tmp/ignored/h");
        assert!(ignored(&linked, &prefixes));
        let linked = with_links(linked, 0o100640, 2);
        assert!(!ignored(&linked, &prefixes));
        let owned = resolved_to(record(SyscallOp::Fchownat, 0), b"/tmp/ignored/h");
        assert!(!ignored(&with_links(owned, 0o100640, 3), &prefixes));
        // A directory's count is its subdirectories: decided by its path.
        let dir = resolved_to(record(SyscallOp::Chmod, 0o777), b"/tmp/ignored/d");
        assert!(ignored(&with_links(dir, 0o040755, 3), &prefixes));
    }

    #[test]
    fn the_resolved_file_decides_the_path_filter() {
        let prefixes = vec![b"/tmp/ignored/".to_vec()];
        // Through a symlink under the prefix to a file outside it: kept.
        let out = resolved_to(record(SyscallOp::Chmod, 0o600), b"/etc/shadow");
        assert!(!ignored(&out, &prefixes));
        // A symlink outside the prefix to a file under it: dropped.
        let mut inside = resolved_to(record(SyscallOp::Fchownat, 0), b"/tmp/ignored/x");
        inside.path = b"/home/u/link".to_vec();
        assert!(ignored(&inside, &prefixes));
        // A walk cut short cannot be matched: kept.
        let mut cut = resolved_to(record(SyscallOp::Chmod, 0o600), b"ignored/x");
        cut.base_truncated = true;
        assert!(!ignored(&cut, &prefixes));
    }

    /// A cwd walked only to follow an absolute path through `/proc` is
    /// not part of the path shown: cut short, it cuts no path (and is not
    /// followed from); a base a relative path is joined to does.
    #[test]
    fn a_cwd_walked_for_an_absolute_path_cuts_no_path() {
        let mut f = record(SyscallOp::Chmod, 0o4755);
        f.path = b"/proc/self/cwd/x".to_vec();
        f.base = b"/home/u".to_vec();
        f.base_is_cwd = true;
        assert!(f.cwd_at_call().is_some_and(|c| c.path == b"/home/u"));
        f.base_truncated = true;
        assert!(!f.path_cut());
        assert!(f.cwd_at_call().is_none());
        f.base_is_cwd = false;
        assert!(f.path_cut());
    }

    #[test]
    fn without_a_resolved_file_the_kernels_mark_decides() {
        let prefixes = vec![b"/tmp/ignored/".to_vec()];
        let mut f = record(SyscallOp::Lchown, 0);
        assert!(!ignored(&f, &prefixes));
        f.path_argument_ignored = true;
        assert!(ignored(&f, &prefixes));
    }

    #[test]
    fn setuid_setgid_chmods_and_xattr_changes_are_never_dropped_by_a_path() {
        let prefixes = vec![b"/tmp/ignored/".to_vec()];
        for mode in [0o4755, 0o2755, 0o6700] {
            let mut f = record(SyscallOp::Fchmodat, mode);
            f.path_argument_ignored = true;
            assert!(!ignored(&f, &prefixes), "{mode:o}");
            let f = resolved_to(record(SyscallOp::Chmod, mode), b"/tmp/ignored/x");
            assert!(!ignored(&f, &prefixes), "{mode:o}");
        }
        let mut f = record(SyscallOp::Setxattr, 0);
        f.path_argument_ignored = true;
        assert!(!ignored(&f, &prefixes));
        // The sticky bit grants nothing: decided by the path.
        let mut f = record(SyscallOp::Chmod, 0o1777);
        f.path_argument_ignored = true;
        assert!(ignored(&f, &prefixes));
    }
}
