//! Writes to watched paths into `file.*` and `sensor.file_write`: opens
//! for writing, truncates, unlinks, renames, links and symlinks.

use sensor_common::{AT_EMPTY_PATH, AT_SYMLINK_FOLLOW, SyscallOp, watch_matched_by_name};

use super::followed::Argument;
use super::{Kind, Pipeline, outcome};
use crate::enrich::path_resolve::Unresolved;
use crate::event::{Event, File, FileWrite, SensorFields, Text};
use crate::source::ebpf::decode::WatchRecord;

const FILE: &[&str] = &["file"];
const CHANGE: &[&str] = &["change"];
const CREATION: &[&str] = &["creation"];
const DELETION: &[&str] = &["deletion"];

const O_CREAT: u32 = 0o100;
/// `__O_TMPFILE`, the bit `O_TMPFILE` adds to `O_DIRECTORY`: an unnamed
/// file made in the directory opened, which linkat can name later.
const O_TMPFILE_BIT: u32 = 0o20000000;
/// renameat2's flag: the two names swap what they hold.
pub(super) const RENAME_EXCHANGE: u32 = 2;

impl Pipeline {
    pub(super) fn file_write(&mut self, w: WatchRecord) -> Option<Event> {
        let ticks = self.table.ids.ticks(w.task.start_boottime);
        // A path argument that may lead elsewhere than its bytes say is
        // followed again (the file itself, `base_is_file`, is where it led).
        let (path, unresolved) = if w.base_is_file {
            (w.resolved_path(), None)
        } else {
            // truncate follows a symlink at the end; the others act on
            // the name itself.
            let follows_last = w.op == SyscallOp::Truncate;
            self.followed(
                &w.task,
                ticks,
                Argument {
                    path: &w.path,
                    base: &w.base,
                    cwd: w.cwd_at_call(),
                },
                w.resolved_path(),
                follows_last,
            )
        };
        let symlink = matches!(w.op, SyscallOp::Symlink | SyscallOp::Symlinkat);
        // A symlink's target is text the kernel stores, not a file the call
        // touches: shown as written. It is matched, joined to the link's
        // directory (and followed: `symlink_target`), for the link it sets
        // up (the kernel sent one that may name a watched path or a
        // directory above one, or go through a magic link).
        let (target, target_unresolved) = if symlink {
            self.symlink_target(&w.task, ticks, &w.path2, path.as_deref())
        } else {
            (None, None)
        };
        let (path2, unresolved2) = if symlink {
            (None, target_unresolved)
        } else if w.second_is_file {
            // The file open at linkat's fd, walked in the kernel: where
            // it is, as for an open.
            (w.resolved_path2(), None)
        } else {
            self.followed(
                &w.task,
                ticks,
                Argument {
                    path: &w.path2,
                    base: w.base2_of(),
                    cwd: w.cwd_at_call(),
                },
                w.resolved_path2(),
                // As given with AT_SYMLINK_FOLLOW too (`link_flags` says
                // so): `/proc/self/fd/N` is then named by the caller's pid,
                // where the file open there (an O_TMPFILE one) may have
                // no name to follow to.
                false,
            )
        };
        // Nor where the second's own directory could not be walked: its
        // dirfd was closed since (the kernel kept the call for it).
        let unresolved2 = unresolved2.or(w.base2_lost().then_some(Unresolved::Gone));
        // Where one could not be followed, the call is reported: it may
        // have touched a watched path, by a symlink removed since or a magic
        // link. Unless it found nothing either.
        let unresolved = unresolved.or(unresolved2);
        let found_nothing = [libc::ENOENT, libc::ENOTDIR]
            .map(|e| -i64::from(e))
            .contains(&w.ret);
        let unresolved_reported = unresolved.is_some() && !found_nothing;
        // Opens and ftruncates were matched by inode in the kernel: exact,
        // and so are path arguments the fentry hooks resolved (`matched`);
        // or by the names the kernel resolved (a `.ssh` or `systemd/user`
        // directory).
        // Other path arguments were matched loosely there, and so were
        // files the kernel sent because their directory holds a watched file
        // (base_is_file, matched 0: a watched file with a new inode);
        // check them here.
        let by_kernel = self
            .watched
            .by_kernel_match(w.matched, [path.as_deref(), path2.as_deref()]);
        let watched = path.as_deref().and_then(|p| self.watched.matching(p));
        let watched2 = path2.as_deref().and_then(|p| self.watched.matching(p));
        let rename = matches!(
            w.op,
            SyscallOp::Rename | SyscallOp::Renameat | SyscallOp::Renameat2
        );
        // What the call sets up or moves, where neither of its paths is
        // watched: a symlink whose target is a watched path, or a
        // directory above one (`/tmp/e -> /etc`, through which
        // `/tmp/e/cron.d/x` is a path the kernel cannot match without
        // fentry), or a magic link (`/tmp/c -> /proc/self/cwd`, through
        // which `/tmp/c/x` leads wherever its user's cwd is: no watched
        // path names it); a rename of such a directory, or over one,
        // which moves the watched path or puts another tree in its place.
        let indirect = if let Some(t) = target.as_deref() {
            (self.watched.matching(t).map(|l| (Some(l), "target")))
                .or_else(|| self.watched.below(t).map(|l| (Some(l), "target_above")))
                .or_else(|| {
                    let link = path.as_deref()?;
                    (self.leads_through_magic_link(w.task.tgid, ticks, link, t))
                        .then_some((None, "target_magic_link"))
                })
        } else if rename && watched.is_none() && watched2.is_none() {
            [path.as_deref(), path2.as_deref()]
                .into_iter()
                .flatten()
                .find_map(|p| self.watched.below(p))
                .map(|l| (Some(l), "above"))
        } else {
            None
        };
        // A symlink through a magic link given another name is followed
        // under it too (reported or not), and one removed no longer is.
        match (w.op, path.as_deref(), path2.as_deref()) {
            _ if w.ret != 0 => {}
            (SyscallOp::Link | SyscallOp::Linkat, Some(to), Some(from)) => {
                self.track_moved_magic_link(from, to, false)
            }
            (_, Some(from), Some(to)) if rename => {
                self.track_moved_magic_link(from, to, false);
                // An exchange moves what `to` was to `from` as well.
                if w.open_flags & RENAME_EXCHANGE != 0 {
                    self.track_moved_magic_link(to, from, false);
                }
            }
            _ => {}
        }
        self.track_removed_magic_link(&w, path.as_deref(), path2.as_deref());
        let by_path = !w.base_is_file && (watched.is_some() || watched2.is_some());
        if !by_path
            && by_kernel.is_none()
            && watched.is_none()
            && indirect.is_none()
            && !unresolved_reported
        {
            return None;
        }
        // The label: the watched path the file's own path names, else the
        // one the kernel matched by inode, else the one the call sets up or
        // moves. Path first because an inode the kernel matched may be a
        // watched file's old one, reused by the next file made on that
        // filesystem until the daemon's maps catch up.
        if let (Some((_, "target_magic_link")), Some(link), Some(t), 0) =
            (&indirect, path.as_deref(), target.as_deref(), w.ret)
        {
            self.remember_magic_link(&w.task, ticks, (link, &w.path2), t, false);
        }
        let (indirect, how) = indirect.unzip();
        let label = watched
            .or(watched2)
            .or(by_kernel.clone())
            .or(indirect.flatten());
        let matched_by = match how {
            // A link through a magic link has no watched path to name.
            Some(how) if !by_path && by_kernel.is_none() => how,
            _ if label.is_none() => "unresolved",
            _ if !by_path && by_kernel.is_some() && by_kernel == label => {
                if watch_matched_by_name(w.matched) {
                    "name"
                } else {
                    "inode"
                }
            }
            _ => "path",
        };
        self.known(&w.task, ticks);
        let (outcome, error) = outcome(w.ret);
        let (action, type_) = match w.op {
            SyscallOp::Open | SyscallOp::Openat | SyscallOp::Openat2 | SyscallOp::Creat => (
                "open_write",
                if open_creates(w.open_flags) {
                    CREATION
                } else {
                    CHANGE
                },
            ),
            SyscallOp::Truncate | SyscallOp::Ftruncate => ("truncate", CHANGE),
            SyscallOp::Unlink | SyscallOp::Unlinkat => ("unlink", DELETION),
            SyscallOp::Link | SyscallOp::Linkat => ("link", CREATION),
            _ if symlink => ("symlink", CREATION),
            _ => ("rename", CHANGE),
        };
        let link = matches!(action, "link" | "symlink");
        // A symlink's target is shown as written; another second path as
        // passed where it could not be joined.
        let second_argument = if symlink {
            None
        } else {
            argument_if_changed(&w.path2, Some(path2.as_deref().unwrap_or(&w.path2)))
        };
        // Rename's second path is where the file goes; link's is the file
        // the new name is given to, symlink's what the new name points at
        // (ECS `file.target_path`), as written.
        let second = path2
            .map(Text)
            .or_else(|| (!w.path2.is_empty()).then(|| Text(w.path2.clone())));
        let (new_path, target_path) = if link { (None, second) } else { (second, None) };
        let mut sensor = SensorFields {
            syscall: Some(w.op.name()),
            ..SensorFields::default()
        };
        // The cwd walked for an absolute path is not part of it; the
        // directory walked may be the second path's.
        if w.path_truncated || (w.base_truncated && w.base_shown() && !w.base_is_seconds()) {
            sensor.truncated.push("file.path");
        }
        if (w.base_truncated && w.base_is_seconds()) || w.base2_truncated {
            sensor.truncated.push(if link {
                "file.target_path"
            } else {
                "sensor.file_write.new_path"
            });
        }
        let write = FileWrite {
            watched: label.map(Text),
            matched_by,
            open_flags: if action == "open_write" {
                open_flag_names(w.open_flags)
            } else {
                Vec::new()
            },
            new_path,
            rename_flags: if rename {
                rename_flag_names(w.open_flags)
            } else {
                Vec::new()
            },
            link_flags: if w.op == SyscallOp::Linkat {
                link_flag_names(w.open_flags)
            } else {
                Vec::new()
            },
            path_argument: argument_if_changed(&w.path, path.as_deref()),
            second_path_argument: second_argument,
            unresolved: unresolved.map(Unresolved::name),
        };
        // Every field made of the event's bytes (a watched label too: the
        // `.ssh` directory a path names).
        let file_path = path.map(Text).or_else(|| Some(Text(w.path.clone())));
        for (field, text) in [
            ("file.path", file_path.as_ref()),
            ("file.target_path", target_path.as_ref()),
            ("sensor.file_write.new_path", write.new_path.as_ref()),
            (
                "sensor.file_write.path_argument",
                write.path_argument.as_ref(),
            ),
            (
                "sensor.file_write.second_path_argument",
                write.second_path_argument.as_ref(),
            ),
            ("sensor.file_write.watched", write.watched.as_ref()),
        ] {
            if text.is_some_and(Text::is_escaped) {
                sensor.escaped.push(field.to_owned());
            }
        }
        sensor.file_write = Some(Box::new(write));
        let kind = Kind {
            category: FILE,
            type_,
            action,
            outcome,
        };
        let mut ev = self.process_event(w.boot_ns, &w.task, kind, sensor);
        ev.file = Some(File {
            path: file_path,
            target_path,
            ..File::default()
        });
        ev.error = error;
        Some(ev)
    }
}

/// `argument`, the path as the caller passed it, where the path the event
/// shows for it differs (joined to a directory, or made normal).
pub(super) fn argument_if_changed(argument: &[u8], shown: Option<&[u8]>) -> Option<Text> {
    (!argument.is_empty() && shown != Some(argument)).then(|| Text(argument.to_vec()))
}

/// renameat2's `RENAME_*` flags (linux/fs.h) by name.
pub(super) fn rename_flag_names(flags: u32) -> Vec<&'static str> {
    names_of(
        flags,
        &[
            (1, "RENAME_NOREPLACE"),
            (RENAME_EXCHANGE, "RENAME_EXCHANGE"),
            (4, "RENAME_WHITEOUT"),
        ],
    )
}

/// linkat's `AT_*` flags by name (`AT_EMPTY_PATH`: the existing file is
/// the one open at its fd; `AT_SYMLINK_FOLLOW`: where a symlink given as
/// the existing file leads, `/proc/self/fd/N` among them).
pub(super) fn link_flag_names(flags: u32) -> Vec<&'static str> {
    names_of(
        flags,
        &[
            (AT_SYMLINK_FOLLOW, "AT_SYMLINK_FOLLOW"),
            (AT_EMPTY_PATH, "AT_EMPTY_PATH"),
        ],
    )
}

/// The names of the `names` bits set in `flags`, in their order.
fn names_of(flags: u32, names: &[(u32, &'static str)]) -> Vec<&'static str> {
    names
        .iter()
        .filter(|(bit, _)| flags & bit != 0)
        .map(|&(_, name)| name)
        .collect()
}

/// Does an open with `flags` make a file: `O_CREAT`, or `O_TMPFILE` (an
/// unnamed one)?
pub(super) fn open_creates(flags: u32) -> bool {
    flags & (O_CREAT | O_TMPFILE_BIT) != 0
}

/// The access mode and the flags that matter for a write, by name.
pub(super) fn open_flag_names(flags: u32) -> Vec<&'static str> {
    let mut names = vec![match flags & 0o3 {
        0o1 => "O_WRONLY",
        0o2 => "O_RDWR",
        _ => "O_RDONLY",
    }];
    names.extend(names_of(
        flags,
        &[
            (0o100, "O_CREAT"),
            (0o200, "O_EXCL"),
            (0o1000, "O_TRUNC"),
            (0o2000, "O_APPEND"),
            (O_TMPFILE_BIT, "O_TMPFILE"),
        ],
    ));
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rename_flags_by_name() {
        assert!(rename_flag_names(0).is_empty());
        assert_eq!(rename_flag_names(2), ["RENAME_EXCHANGE"]);
        assert_eq!(
            rename_flag_names(1 | 4 | 8),
            ["RENAME_NOREPLACE", "RENAME_WHITEOUT"]
        );
    }

    #[test]
    fn open_flags_by_name() {
        assert_eq!(
            open_flag_names(0o1101),
            vec!["O_WRONLY", "O_CREAT", "O_TRUNC"]
        );
        assert_eq!(open_flag_names(0o2002), vec!["O_RDWR", "O_APPEND"]);
        // O_TMPFILE is __O_TMPFILE | O_DIRECTORY; O_DIRECTORY alone is not.
        let tmpfile = libc::O_TMPFILE as u32 | libc::O_WRONLY as u32;
        assert_eq!(open_flag_names(tmpfile), vec!["O_WRONLY", "O_TMPFILE"]);
        assert!(open_creates(tmpfile));
        assert!(!open_creates(libc::O_DIRECTORY as u32 | 1));
        assert!(open_creates(0o101));
    }

    #[test]
    fn link_flags_by_name() {
        assert!(link_flag_names(0).is_empty());
        assert_eq!(
            link_flag_names(0x1000 | 0x400 | 0x100),
            ["AT_SYMLINK_FOLLOW", "AT_EMPTY_PATH"]
        );
    }
}
