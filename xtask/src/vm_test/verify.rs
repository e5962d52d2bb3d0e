//! Whether the sensor in a guest reported every step of the scripted
//! intrusion (`scripts/attack-scenario.sh`), judged from what the host's
//! collector received. Pure: the harness reads the steps file and the
//! collector; this module only parses and matches.
//!
//! Each step expects one or more events, matched on the fields the real
//! sensor emits (the names come from its integration tests and from
//! captured output, see the fixtures). A step is found when all of its
//! expected events arrived after the step started.

use std::fmt::Write as _;

use anyhow::{Context as _, Result, bail};
use serde_json::Value;

/// One event as the collector got it: receipt time (host clock, ms since
/// the epoch) and the parsed JSON.
pub struct Received {
    pub at_ms: u64,
    pub event: Value,
}

/// A line of the steps file: the step's name and the host time, taken
/// right before its action.
pub struct StepTime {
    pub name: String,
    pub at_ms: u64,
}

/// Steps whose capability the sensor does not have yet: reported as such
/// rather than failing the run. One list, so that it is plain what is
/// missing; it should end up empty.
pub const EXPECTED_MISSING: &[&str] = &[];

/// An event received this much before its step's recorded time still
/// counts. Both times are the host's clock and the step's is taken before
/// its action, so the step's events cannot come earlier; this is a margin
/// for rounding and clock slew, small enough to keep the previous step's
/// events from counting for this one.
const SLACK_MS: u64 = 500;

// What the scenario script does, by name: keep in step with
// scripts/attack-scenario.sh.
const GUEST_USER: &str = "dev";
/// The host as the guest sees it (QEMU user networking): the ssh client's
/// address and the reverse shell's target.
const HOST_IP: &str = "10.0.2.2";
const BRUTE_FORCE_ATTEMPTS: usize = 4;
const BACKDOOR_USER: &str = "backdoor";
const AUTHORIZED_KEYS: &str = "/root/.ssh/authorized_keys";
/// The backdoor account's key, renamed into its new ~/.ssh through this
/// symlink to it.
const BACKDOOR_KEYS_LINKED: &str = "/tmp/.k/authorized_keys";
const BACKDOOR_SSH_DIR: &str = "/home/backdoor/.ssh/";
/// The weak user's own unit, and the drop-in renamed into place through
/// a symlink to its directory.
const USER_UNIT: &str = "/home/dev/.config/systemd/user/.update.service";
const USER_UNITS_DIR: &str = "/home/dev/.config/systemd/user/";
const USER_DROPIN_LINKED: &str = "/tmp/.u/override.conf";
/// The weak user's startup file, and the script root adds for every login
/// shell.
const SHELL_RC: &str = "/home/dev/.bashrc";
const PROFILE_SCRIPT: &str = "/etc/profile.d/zz-update.sh";
const MOTD_SCRIPT: &str = "/etc/update-motd.d/99-scenario";
const SETUID_COPY: &str = "/tmp/.sh";
const CAPABILITY_COPY: &str = "/tmp/.ping";
const HIDDEN_CAPABILITY_COPY: &str = "/tmp/.su";
const IA32_COPY: &str = "/tmp/.ia32sh";
const HIDDEN_SETUID_COPY: &str = "/tmp/.hidden-suid";
/// Under the guest config's ignored path prefix, a symlink to the file
/// outside it.
const IGNORED_LINK: &str = "/tmp/.ignored/tool";
const LINKED_FILE: &str = "/tmp/.linked-tool";
/// A plain file under the ignored prefix, reached through a symlink
/// outside it.
const IGNORED_FILE: &str = "/tmp/.ignored/plain";
/// A second name, under the ignored prefix, of a file outside it.
const IGNORED_HARD_LINK: &str = "/tmp/.ignored/hard";
/// A copy of a shell that root gives the weak user through a symlink.
const OWNED_FILE: &str = "/tmp/.owned-sh";
const OWNED_LINK: &str = "/tmp/.owned-link";
const MEMFD_MARKER: &str = "scenario-memfd-ran";
/// The kernel names the executable `/memfd:NAME`, possibly followed by
/// ` (deleted)`.
const MEMFD_NAME: &str = "memfd:scenario";
const ROOTKIT: &str = "/tmp/.rootkit.ko";
/// The module the `module_from_memory` step loads and unloads.
const MODULE: &str = "nlmon";
const KEXEC_IMAGE: &str = "/tmp/.vmlinuz";
const CRON_FILE: &str = "/etc/cron.d/scenario";
/// The same file through a symlink to /etc.
const CRON_FILE_LINKED: &str = "/tmp/.e/cron.d/scenario";
const CRON_DIR: &str = "/etc/cron.d/";
/// A cron file renamed into place through a symlink to the renamer's cwd.
const CRON_FILE_VIA_MAGIC_LINK: &str = "/tmp/.c/.magic";
/// Where it leads: `mv`'s cwd is the cron directory.
const CRON_FILE_MAGIC: &str = "/etc/cron.d/.magic";
/// The unit enabled by a symlink through a symlink to /etc/systemd/system,
/// what it points at, and the watched directory.
const UNIT_LINK_LINKED: &str = "/tmp/.s/multi-user.target.wants/scenario.service";
const UNIT_TARGET: &str = "/tmp/.scenario.service";
const SYSTEMD_DIR: &str = "/etc/systemd/system/";
/// A second name for /etc/shadow, made through the /tmp/.e symlink.
const SHADOW_COPY: &str = "/root/.shadow-copy";
const SHADOW_LINKED: &str = "/tmp/.e/shadow";
const SHADOW: &str = "/etc/shadow";
/// The cron file written through an io_uring ring.
const IO_URING_CRON: &str = "/etc/cron.d/.uring";
/// The cron file an io_uring open reaches through a symlink under the
/// ignored prefix.
const IO_URING_CRON_LINKED: &str = "/etc/cron.d/.uring-linked";
/// The cron entry staged in /tmp and moved in through an io_uring ring.
const IO_URING_CRON_MOVED: &str = "/etc/cron.d/.uring-moved";
/// The shell copy given a capability through an io_uring ring, under the
/// ignored prefix.
const IO_URING_CAPABLE: &str = "/tmp/.ignored/.uring-sh";
/// The first kernel whose io_uring has setxattr.
const IO_URING_XATTR_FROM: (u32, u32) = (5, 19);
const LOG_FILE: &str = "/var/log/dpkg.log";
const CONTAINER_NAME: &str = "scenario";
/// podman records the image with its tag (`localhost/busybox:latest`).
const CONTAINER_IMAGE: &str = "localhost/busybox";
const CONTAINER_MARKER: &str = "scenario-in-container";
const CONTAINER_FILE: &str = "scenario-suid";

/// Parses the steps file: one `NAME<TAB>EPOCH_MS` per line. A malformed
/// or repeated line is an error rather than skipped, since it means the
/// script and this verifier no longer agree.
pub fn parse_steps(text: &str) -> Result<Vec<StepTime>> {
    let mut steps: Vec<StepTime> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let step =
            parse_step(line).with_context(|| format!("steps file line {}: {line:?}", i + 1))?;
        if steps.iter().any(|s| s.name == step.name) {
            bail!(
                "steps file line {}: step {} appears twice",
                i + 1,
                step.name
            );
        }
        steps.push(step);
    }
    Ok(steps)
}

fn parse_step(line: &str) -> Result<StepTime> {
    let Some((name, ms)) = line.split_once('\t') else {
        bail!("expected NAME<TAB>EPOCH_MS")
    };
    if name.is_empty() || name.contains(char::is_whitespace) {
        bail!("the step name must be one word");
    }
    let at_ms = ms
        .trim_end_matches('\r')
        .parse()
        .context("EPOCH_MS is not a whole number of milliseconds")?;
    Ok(StepTime {
        name: name.to_owned(),
        at_ms,
    })
}

/// One event a step must produce.
struct Expect {
    /// What the table shows as expected.
    what: &'static str,
    /// The `event.action` values it can have. Kept apart from the other
    /// fields so that a miss can say how many events of the right action
    /// came but differed, which points at a field rather than a hook.
    actions: &'static [&'static str],
    /// Matching events needed (the brute force needs one per attempt);
    /// 0: none may arrive (see [`none`]).
    count: usize,
    /// The fields beyond the action.
    matches: fn(&Value) -> bool,
    /// The guest kernels it holds on: what the sensor can see differs by
    /// kernel (which fentry hooks load).
    kernels: Kernels,
}

impl Expect {
    fn is_action(&self, v: &Value) -> bool {
        self.actions.iter().any(|a| action(v, a))
    }
}

/// Kernel versions, as `(major, minor)`.
#[derive(Clone, Copy)]
enum Kernels {
    All,
    From((u32, u32)),
    Before((u32, u32)),
}

impl Kernels {
    fn include(self, kernel: (u32, u32)) -> bool {
        match self {
            Kernels::All => true,
            Kernels::From(v) => kernel >= v,
            Kernels::Before(v) => kernel < v,
        }
    }
}

/// The first kernel that loads `fentry/security_path_chown` (5.10 refuses
/// its struct arguments): from it, a chown names the file the kernel
/// resolved.
pub const CHOWN_HOOK_FROM: (u32, u32) = (6, 1);

/// `expect`, only on the `kernels` given.
const fn on(kernels: Kernels, expect: Expect) -> Expect {
    Expect { kernels, ..expect }
}

struct Step {
    name: &'static str,
    expects: &'static [Expect],
}

const fn one(
    what: &'static str,
    actions: &'static [&'static str],
    matches: fn(&Value) -> bool,
) -> Expect {
    Expect {
        what,
        actions,
        count: 1,
        matches,
        kernels: Kernels::All,
    }
}

/// An event that must not arrive: what the sensor must leave out (what a
/// filter drops). Its step also expects an event that comes after it, so
/// that a sensor which saw nothing does not pass it.
const fn none(
    what: &'static str,
    actions: &'static [&'static str],
    matches: fn(&Value) -> bool,
) -> Expect {
    Expect {
        count: 0,
        ..one(what, actions, matches)
    }
}

/// The scenario, in the script's order.
const SCENARIO: &[Step] = &[
    Step {
        name: "ssh_bruteforce",
        expects: &[Expect {
            what: "4 sshd authentication failures for dev from 10.0.2.2",
            actions: &["authenticated"],
            count: BRUTE_FORCE_ATTEMPTS,
            matches: is_ssh_auth_failure,
            kernels: Kernels::All,
        }],
    },
    Step {
        name: "ssh_login",
        expects: &[
            one(
                "sshd authentication success for dev from 10.0.2.2",
                &["authenticated"],
                is_ssh_auth_success,
            ),
            one(
                "session started for dev, with its session id",
                &["session_started"],
                is_ssh_session,
            ),
        ],
    },
    Step {
        name: "sudo_root",
        expects: &[
            one(
                "sudo ran_command `cat /etc/shadow` by dev",
                &["ran_command"],
                is_sudo_command,
            ),
            one(
                "exec of cat /etc/shadow as root, parent sudo, login user dev",
                &["exec"],
                is_sudo_exec,
            ),
        ],
    },
    Step {
        name: "backdoor_account",
        expects: &[
            one(
                "added_user_account backdoor",
                &["added_user_account"],
                is_backdoor_user,
            ),
            one(
                "open_write of /root/.ssh/authorized_keys (append)",
                &["open_write"],
                is_authorized_keys_write,
            ),
            one(
                "rename of a key into the new account's ~/.ssh, through a symlink",
                &["rename"],
                is_backdoor_keys_planted,
            ),
        ],
    },
    Step {
        name: "user_unit",
        expects: &[
            one(
                "open_write by dev of its own unit in ~/.config/systemd/user",
                &["open_write"],
                is_user_unit_write,
            ),
            one(
                "rename by dev of a drop-in into a unit's directory, through a symlink",
                &["rename"],
                is_user_dropin_planted,
            ),
        ],
    },
    Step {
        name: "shell_rc",
        expects: &[
            one(
                "open_write by dev of its ~/.bashrc (append)",
                &["open_write"],
                is_shell_rc_write,
            ),
            one(
                "open_write of a script in /etc/profile.d/",
                &["open_write"],
                is_profile_script_write,
            ),
        ],
    },
    Step {
        name: "motd_persistence",
        expects: &[one(
            "rename of a script into /etc/update-motd.d/, by its path argument",
            &["rename"],
            is_motd_script_planted,
        )],
    },
    Step {
        name: "setuid_shell",
        expects: &[one(
            "chmod of /tmp/.sh naming the setuid bit, mode before 0755",
            &["chmod"],
            is_setuid_chmod,
        )],
    },
    Step {
        name: "hidden_chmod",
        expects: &[one(
            "chmod u+s by dev of /tmp/.hidden-suid, its path unreadable at entry",
            &["chmod"],
            is_hidden_chmod,
        )],
    },
    Step {
        name: "ignored_symlink_chmod",
        expects: &[
            none(
                "no chmod of /tmp/.ignored/plain, under the ignored prefix",
                &["chmod"],
                is_ignored_chmod,
            ),
            one(
                "chmod 777 by dev of /tmp/.linked-tool through a symlink under an ignored prefix",
                &["chmod"],
                is_ignored_symlink_chmod,
            ),
            one(
                "chmod 666 by dev of /tmp/.ignored/hard, a second name of a file outside it",
                &["chmod"],
                is_ignored_hard_link_chmod,
            ),
        ],
    },
    Step {
        name: "symlink_chown",
        expects: &[
            on(
                Kernels::From(CHOWN_HOOK_FROM),
                one(
                    "chown to dev of /tmp/.owned-sh, root's before, through the symlink \
                     /tmp/.owned-link (from 6.1: the kernel's resolution)",
                    &["chown"],
                    is_resolved_chown,
                ),
            ),
            on(
                Kernels::Before(CHOWN_HOOK_FROM),
                one(
                    "chown to dev of /tmp/.owned-link, root's before (before 6.1: named by \
                     the argument)",
                    &["chown"],
                    is_argument_chown,
                ),
            ),
        ],
    },
    Step {
        name: "ia32_syscalls",
        expects: &[
            one(
                "ia32 chmod u+s of /tmp/.ia32sh by dev",
                &["chmod"],
                is_ia32_chmod,
            ),
            one(
                "ia32 setuid(0) refused to dev (EPERM)",
                &["credential_change"],
                is_ia32_setuid,
            ),
        ],
    },
    Step {
        name: "file_capability",
        expects: &[one(
            "set_xattr security.capability with CAP_NET_RAW on /tmp/.ping",
            &["set_xattr"],
            is_setcap,
        )],
    },
    Step {
        name: "hidden_capability",
        expects: &[one(
            "set_xattr of CAP_SETUID on /tmp/.su, rewritten under the call",
            &["set_xattr"],
            is_hidden_capability,
        )],
    },
    Step {
        name: "namespaced_capability",
        expects: &[one(
            "set_xattr of CAP_NET_RAW on /tmp/.nscap by dev in a user namespace, root uid 1000, not rewritten",
            &["set_xattr"],
            is_namespaced_capability,
        )],
    },
    Step {
        name: "hidden_capability_removal",
        expects: &[one(
            "remove_xattr of security.capability on /tmp/.su, its name unreadable at entry",
            &["remove_xattr"],
            is_hidden_capability_removal,
        )],
    },
    Step {
        name: "reverse_shell",
        expects: &[one(
            "successful connect by bash to 10.0.2.2",
            &["connect"],
            is_reverse_shell,
        )],
    },
    Step {
        name: "fast_open_shell",
        expects: &[
            one(
                "connect by dev to 10.0.2.2 with no connect call: a TCP Fast Open send",
                &["connect"],
                is_fast_open_shell,
            ),
            one(
                "its end: connected, naming it",
                &["connect_completed"],
                is_fast_open_shell_connected,
            ),
        ],
    },
    Step {
        name: "udp_exfiltration",
        expects: &[one(
            "udp_send by dev's perl to 10.0.2.2:53 with no connect: datagrams as DNS queries",
            &["udp_send"],
            is_udp_exfiltration,
        )],
    },
    Step {
        name: "udp_implant",
        expects: &[one(
            "udp_receive by dev's perl on 127.0.0.1:5300 from a local sender, no accept",
            &["udp_receive"],
            is_udp_implant,
        )],
    },
    Step {
        name: "packet_backdoor",
        expects: &[
            one(
                "socket refused (EPERM) to dev's perl: raw, ICMP",
                &["socket"],
                is_raw_socket_refused,
            ),
            one(
                "socket by root's perl: packet, every frame (ETH_P_ALL)",
                &["socket"],
                is_packet_backdoor,
            ),
        ],
    },
    Step {
        name: "memfd_exec",
        expects: &[one(
            "exec flagged fileless (memfd)",
            &["exec"],
            is_memfd_exec,
        )],
    },
    Step {
        name: "memory_theft",
        expects: &[one(
            "process_memory_open of sleep's memory for reading, by root's dd",
            &["process_memory_open"],
            is_memory_theft,
        )],
    },
    Step {
        name: "user_namespace",
        expects: &[one(
            "namespace_create of a user namespace by dev's unshare, with its inode",
            &["namespace_create"],
            is_user_namespace,
        )],
    },
    Step {
        name: "hidden_namespace",
        expects: &[one(
            "namespace_create, seen at the fork, of dev's clone3 with unreadable flags",
            &["namespace_create"],
            is_hidden_namespace,
        )],
    },
    Step {
        name: "hidden_connect",
        expects: &[one(
            "refused connect by dev to /run/systemd/private, its address unreadable at entry",
            &["connect"],
            is_hidden_connect,
        )],
    },
    Step {
        name: "hidden_bind",
        expects: &[one(
            "refused bind by dev to port 80, its address unreadable at entry",
            &["bind"],
            is_hidden_bind,
        )],
    },
    Step {
        name: "namespace_escape",
        expects: &[one(
            "namespace_enter of the host's network namespace by root's nsenter",
            &["namespace_enter"],
            is_namespace_escape,
        )],
    },
    Step {
        name: "kexec_attempt",
        expects: &[one(
            "refused kexec_load of /tmp/.vmlinuz",
            &["kexec_load"],
            is_refused_kexec,
        )],
    },
    Step {
        name: "module_load",
        expects: &[one(
            "refused module_load of /tmp/.rootkit.ko",
            &["module_load"],
            is_refused_module,
        )],
    },
    Step {
        name: "module_from_memory",
        expects: &[
            one(
                "init_module of nlmon from memory, named",
                &["module_load"],
                is_module_from_memory,
            ),
            one(
                "unload of nlmon, named",
                &["module_unload"],
                is_nlmon_unload,
            ),
        ],
    },
    Step {
        name: "cron_persistence",
        expects: &[
            one(
                "creation of /etc/cron.d/scenario",
                &["open_write"],
                is_cron_write,
            ),
            one(
                "rename of /tmp/.cron-moved into /etc/cron.d/, relative to two directory fds",
                &["rename"],
                is_cron_moved_in,
            ),
        ],
    },
    Step {
        name: "cron_removed_via_symlink",
        expects: &[
            one(
                "symlink /tmp/.e to /etc, a directory above watched paths",
                &["symlink"],
                is_etc_linked,
            ),
            one(
                "unlink of /tmp/.e/cron.d/scenario, matched by inode",
                &["unlink"],
                is_cron_removed_via_symlink,
            ),
        ],
    },
    Step {
        name: "cron_via_magic_link",
        expects: &[
            one(
                "symlink /tmp/.c to /proc/self/cwd, a magic link",
                &["symlink"],
                is_cwd_linked,
            ),
            one(
                "rename into /etc/cron.d through /tmp/.c, followed to mv's cwd",
                &["rename"],
                is_cron_renamed_via_magic_link,
            ),
        ],
    },
    Step {
        name: "link_persistence",
        expects: &[
            one(
                "symlink /tmp/.s to /etc/systemd/system, matched by its target",
                &["symlink"],
                is_systemd_dir_linked,
            ),
            one(
                "symlink enabling scenario.service through /tmp/.s, matched by inode",
                &["symlink"],
                is_unit_enabled_via_symlink,
            ),
            one(
                "symlink /tmp/.e to /etc, a directory above watched paths",
                &["symlink"],
                is_etc_linked,
            ),
            one(
                "hard link of /etc/shadow through /tmp/.e, matched by inode",
                &["link"],
                is_shadow_linked_via_symlink,
            ),
            one(
                "rename of /var/spool away, a directory above /var/spool/cron/",
                &["rename"],
                is_spool_moved,
            ),
        ],
    },
    Step {
        name: "io_uring_persistence",
        expects: &[
            one(
                "io_uring openat of /etc/cron.d/.uring by root (before 5.19: the openat alone)",
                &["io_uring_submit"],
                is_io_uring_cron,
            ),
            one(
                "its completion: success, the new fd, the path (before 5.19: none, the \
                 submission stands in)",
                &["io_uring_complete", "io_uring_submit"],
                is_io_uring_cron_completed,
            ),
            on(
                Kernels::From((5, 19)),
                one(
                    "io_uring openat of /etc/cron.d/.uring-linked through a symlink under the \
                     ignored prefix: its completion alone, the file opened (from 5.19)",
                    &["io_uring_complete"],
                    is_io_uring_cron_through_ignored_link,
                ),
            ),
            on(
                Kernels::From(IO_URING_XATTR_FROM),
                one(
                    "io_uring setxattr of cap_setuid+ep on /tmp/.ignored/.uring-sh, under the \
                     ignored prefix (from 5.19)",
                    &["io_uring_submit"],
                    is_io_uring_setcap,
                ),
            ),
            on(
                Kernels::From((5, 19)),
                one(
                    "io_uring renameat of /tmp/.uring-moved into /etc/cron.d, both names \
                     relative to a directory fd of their own: each joined to its fd's \
                     directory (from 5.19)",
                    &["io_uring_submit"],
                    is_io_uring_cron_moved_in,
                ),
            ),
        ],
    },
    Step {
        name: "log_truncation",
        expects: &[one(
            "truncate of /var/log/dpkg.log",
            &["truncate", "open_write"],
            is_log_truncation,
        )],
    },
    Step {
        name: "audit_rules_deleted",
        expects: &[one(
            "audit_config_changed remove_rule, tamper alert",
            &["audit_config_changed"],
            is_audit_rules_deleted,
        )],
    },
    Step {
        name: "container_activity",
        expects: &[
            one("exec in container scenario", &["exec"], is_container_exec),
            one(
                "connect to 10.0.2.2 from container scenario",
                &["connect"],
                is_container_connect,
            ),
            one(
                "chmod setuid in container scenario",
                &["chmod"],
                is_container_chmod,
            ),
        ],
    },
    Step {
        name: "sensor_kill",
        expects: &[one(
            "signal_sensor SIGTERM by root's bash",
            &["signal_sensor"],
            is_sensor_kill,
        )],
    },
];

// ---- field access ----

/// The value at a dotted path (`process.parent.name`), or null.
fn at<'a>(v: &'a Value, path: &str) -> &'a Value {
    path.split('.')
        .try_fold(v, |v, key| v.get(key))
        .unwrap_or(&Value::Null)
}

fn is(v: &Value, path: &str, want: &str) -> bool {
    at(v, path).as_str() == Some(want)
}

fn action(v: &Value, want: &str) -> bool {
    is(v, "event.action", want)
}

fn succeeded(v: &Value) -> bool {
    is(v, "event.outcome", "success")
}

/// Whether the array at `path` holds the string `want`.
fn lists(v: &Value, path: &str, want: &str) -> bool {
    at(v, path)
        .as_array()
        .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(want)))
}

fn by_root(v: &Value) -> bool {
    is(v, "process.user.name", "root")
}

// ---- the steps' events: the fields beyond `event.action` ----

/// PAM's authentication through sshd (audit), for the guest user, from
/// the host.
fn is_ssh_auth(v: &Value, outcome: &str) -> bool {
    is(v, "event.outcome", outcome)
        && is(v, "user.name", GUEST_USER)
        && is(v, "sensor.audit.service", "sshd")
        && is(v, "source.ip", HOST_IP)
}

fn is_ssh_auth_failure(v: &Value) -> bool {
    is_ssh_auth(v, "failure")
}

fn is_ssh_auth_success(v: &Value) -> bool {
    is_ssh_auth(v, "success")
}

fn is_ssh_session(v: &Value) -> bool {
    succeeded(v)
        && is(v, "user.name", GUEST_USER)
        && is(v, "sensor.audit.service", "sshd")
        && at(v, "sensor.session_id").as_u64().is_some()
}

/// sudo's own audit record (USER_CMD): who ran what.
fn is_sudo_command(v: &Value) -> bool {
    succeeded(v)
        && is(v, "user.name", GUEST_USER)
        && at(v, "sensor.audit.command")
            .as_str()
            .is_some_and(|c| c.contains("/etc/shadow"))
}

/// The command sudo started: root, a child of sudo, and still tied to the
/// user's login (the login uid survives sudo).
fn is_sudo_exec(v: &Value) -> bool {
    is(v, "process.name", "cat")
        && lists(v, "process.args", "/etc/shadow")
        && by_root(v)
        && is(v, "process.parent.name", "sudo")
        && is(v, "sensor.login_user.name", GUEST_USER)
}

fn is_backdoor_user(v: &Value) -> bool {
    is(v, "user.name", BACKDOOR_USER)
}

fn is_authorized_keys_write(v: &Value) -> bool {
    succeeded(v)
        && is(v, "file.path", AUTHORIZED_KEYS)
        && lists(v, "sensor.file_write.open_flags", "O_APPEND")
}

/// Decided by fentry/security_inode_rename, by the names the kernel
/// resolved: the path names no `.ssh`, so the directory is the pattern.
/// Or by its inode, once a refresh has found the new account's ~/.ssh
/// (its home changed), which names it.
fn is_backdoor_keys_planted(v: &Value) -> bool {
    let by_name = is(v, "sensor.file_write.watched", "*/.ssh/")
        && is(v, "sensor.file_write.matched_by", "name");
    let by_inode = is(v, "sensor.file_write.watched", BACKDOOR_SSH_DIR)
        && is(v, "sensor.file_write.matched_by", "inode");
    succeeded(v)
        && is(v, "sensor.file_write.new_path", BACKDOOR_KEYS_LINKED)
        && (by_name || by_inode)
}

/// Matched by the directory's names (`user_unit_dirs`): a directory made
/// after the sensor started, in an account's home.
fn is_user_unit_write(v: &Value) -> bool {
    succeeded(v)
        && is(v, "process.user.name", GUEST_USER)
        && is(v, "file.path", USER_UNIT)
        && is(v, "sensor.file_write.watched", USER_UNITS_DIR)
        && is(v, "sensor.file_write.matched_by", "name")
}

/// Matched by the file's own name (`shell_rc_files`): the label is the
/// file itself.
fn is_shell_rc_write(v: &Value) -> bool {
    succeeded(v)
        && is(v, "process.user.name", GUEST_USER)
        && is(v, "file.path", SHELL_RC)
        && is(v, "sensor.file_write.watched", SHELL_RC)
        && is(v, "sensor.file_write.matched_by", "name")
}

/// In a default watched directory, matched by its inode.
fn is_profile_script_write(v: &Value) -> bool {
    succeeded(v)
        && is(v, "file.path", PROFILE_SCRIPT)
        && is(v, "sensor.file_write.watched", "/etc/profile.d/")
        && is(v, "sensor.file_write.matched_by", "inode")
}

/// A default path beyond the 32 string slots the kernel once had, which
/// left it to fentry/security_inode_rename, by the directory's inode; now
/// the path argument's hashed prefix finds it on every kernel. The daemon
/// labels it by the path, which names the directory.
fn is_motd_script_planted(v: &Value) -> bool {
    succeeded(v)
        && is(v, "sensor.file_write.new_path", MOTD_SCRIPT)
        && is(v, "sensor.file_write.watched", "/etc/update-motd.d/")
        && is(v, "sensor.file_write.matched_by", "path")
}

/// Decided by fentry/security_inode_rename, by the names the kernel
/// resolved one directory below `systemd/user`: the path names neither,
/// so the directory is the pattern.
fn is_user_dropin_planted(v: &Value) -> bool {
    succeeded(v)
        && is(v, "process.user.name", GUEST_USER)
        && is(v, "sensor.file_write.new_path", USER_DROPIN_LINKED)
        && is(v, "sensor.file_write.watched", "*/systemd/user/")
        && is(v, "sensor.file_write.matched_by", "name")
}

/// With the mode from before the call (cp makes 0755): it comes from
/// fentry/security_inode_setattr, which every guest kernel loads, so the
/// fentry variant is what this checks there.
fn is_setuid_chmod(v: &Value) -> bool {
    succeeded(v)
        && by_root(v)
        && is(v, "file.path", SETUID_COPY)
        && lists(v, "sensor.file_change.special_bits", "setuid")
        && is(v, "sensor.file_change.before.mode", "0755")
}

fn is_ia32_chmod(v: &Value) -> bool {
    succeeded(v)
        && is(v, "sensor.syscall_abi", "ia32")
        && is(v, "file.path", IA32_COPY)
        && lists(v, "sensor.file_change.special_bits", "setuid")
        && is(v, "process.user.name", GUEST_USER)
}

fn is_ia32_setuid(v: &Value) -> bool {
    is(v, "sensor.syscall_abi", "ia32")
        && is(v, "sensor.syscall", "setuid")
        && is(v, "event.outcome", "failure")
        && is(v, "error.code", "EPERM")
        && is(v, "process.user.name", GUEST_USER)
}

/// An open for reading: only fexit/mem_open reports those, which every
/// guest kernel loads, so the fexit variant is what this checks there.
fn is_memory_theft(v: &Value) -> bool {
    succeeded(v)
        && by_root(v)
        && is(v, "process.name", "dd")
        && is(v, "sensor.process_access.mode", "read")
        && at(v, "sensor.ptrace_target.executable")
            .as_str()
            .is_some_and(|e| e.ends_with("/sleep"))
}

fn is_user_namespace(v: &Value) -> bool {
    succeeded(v)
        && is(v, "process.user.name", GUEST_USER)
        && is(v, "process.name", "unshare")
        && is(v, "sensor.syscall", "unshare")
        && lists(v, "sensor.namespace.types", "user")
        && at(v, "sensor.namespace.inodes.user").as_u64().is_some()
}

fn is_hidden_namespace(v: &Value) -> bool {
    succeeded(v)
        && is(v, "process.user.name", GUEST_USER)
        && is(v, "process.name", "scenario-actor")
        && at(v, "sensor.syscall").is_null()
        && lists(v, "sensor.namespace.types", "user")
        && lists(v, "sensor.namespace.types", "uts")
        && at(v, "sensor.namespace.requested")
            .as_array()
            .is_some_and(Vec::is_empty)
}

/// Named by the file the kernel resolved: the sensor's own read of the
/// path failed.
fn is_hidden_chmod(v: &Value) -> bool {
    succeeded(v)
        && is(v, "process.user.name", GUEST_USER)
        && is(v, "process.name", "scenario-actor")
        && is(v, "file.path", HIDDEN_SETUID_COPY)
        && lists(v, "sensor.file_change.special_bits_added", "setuid")
        && lists(v, "sensor.file_change.unavailable", "path_argument")
}

/// A file under the ignored prefix, which the filter drops.
fn is_ignored_chmod(v: &Value) -> bool {
    is(v, "file.path", IGNORED_FILE)
}

/// The file outside the ignored prefix, with the symlink as the argument.
fn is_ignored_symlink_chmod(v: &Value) -> bool {
    succeeded(v)
        && is(v, "process.user.name", GUEST_USER)
        && is(v, "file.path", LINKED_FILE)
        && is(v, "sensor.file_change.path_argument", IGNORED_LINK)
        && is(v, "file.mode", "0777")
}

/// Resolution stops at a hard link: its name is under the prefix, its
/// link count says the file has another.
fn is_ignored_hard_link_chmod(v: &Value) -> bool {
    succeeded(v)
        && is(v, "process.user.name", GUEST_USER)
        && is(v, "file.path", IGNORED_HARD_LINK)
        && is(v, "file.mode", "0666")
        && at(v, "sensor.file_change.before.links") == &Value::from(2)
}

/// root gives dev the file: named as the kernel resolved it.
fn is_resolved_chown(v: &Value) -> bool {
    is_chown_to_guest_user(v)
        && is(v, "file.path", OWNED_FILE)
        && is(v, "sensor.file_change.path_argument", OWNED_LINK)
}

/// Without `security_path_chown` (5.10 refuses its struct arguments):
/// named by the argument, the attributes from `security_inode_setattr`.
fn is_argument_chown(v: &Value) -> bool {
    is_chown_to_guest_user(v)
        && is(v, "file.path", OWNED_LINK)
        && at(v, "sensor.file_change.path_argument").is_null()
}

fn is_chown_to_guest_user(v: &Value) -> bool {
    succeeded(v)
        && by_root(v)
        && is(v, "file.owner", GUEST_USER)
        && is(v, "sensor.file_change.requested.uid.name", GUEST_USER)
        && is(v, "sensor.file_change.before.uid.name", "root")
}

/// Named from the kernel's copy of the address: the sensor's own read
/// failed, so there is no argument to tell apart from it.
fn is_hidden_connect(v: &Value) -> bool {
    is(v, "event.outcome", "failure")
        && is(v, "error.code", "EACCES")
        && is(v, "process.user.name", GUEST_USER)
        && is(v, "process.name", "scenario-actor")
        && is(v, "destination.address", "/run/systemd/private")
        && at(v, "sensor.network.argument_address").is_null()
}

/// Refused, so the socket has no end of its own to name: the port comes
/// from the kernel's copy of the address.
fn is_hidden_bind(v: &Value) -> bool {
    is(v, "event.outcome", "failure")
        && is(v, "error.code", "EACCES")
        && is(v, "process.user.name", GUEST_USER)
        && is(v, "process.name", "scenario-actor")
        && at(v, "server.port") == &Value::from(80)
        && at(v, "sensor.network.argument_address").is_null()
}

fn is_namespace_escape(v: &Value) -> bool {
    succeeded(v)
        && by_root(v)
        && is(v, "process.name", "nsenter")
        && lists(v, "sensor.namespace.types", "net")
        && at(v, "sensor.namespace.host") == &Value::Bool(true)
}

fn is_refused_kexec(v: &Value) -> bool {
    is(v, "event.outcome", "failure")
        && is(v, "file.path", KEXEC_IMAGE)
        && is(v, "sensor.syscall", "kexec_file_load")
        && by_root(v)
}

fn is_refused_module(v: &Value) -> bool {
    is(v, "event.outcome", "failure") && is(v, "file.path", ROOTKIT) && by_root(v)
}

/// Named as the kernel had the module: the image was in memory, so
/// nothing else could name it.
fn is_module_from_memory(v: &Value) -> bool {
    succeeded(v)
        && by_root(v)
        && is(v, "process.name", "scenario-actor")
        && is(v, "sensor.syscall", "init_module")
        && is(v, "sensor.module.name", MODULE)
        && at(v, "file.path").is_null()
}

fn is_nlmon_unload(v: &Value) -> bool {
    succeeded(v)
        && by_root(v)
        && is(v, "sensor.module.name", MODULE)
        && at(v, "sensor.module.name_argument").is_null()
}

fn is_setcap(v: &Value) -> bool {
    succeeded(v)
        && is(v, "file.path", CAPABILITY_COPY)
        && is(v, "sensor.file_change.xattr.name", "security.capability")
        && lists(
            v,
            "sensor.file_change.xattr.capabilities.permitted",
            "CAP_NET_RAW",
        )
}

/// Named with what the kernel copied (CAP_SETUID), not the capability the
/// caller's memory held at the entry (CAP_NET_BIND_SERVICE), on the file
/// the kernel resolved (its mode before, which the path argument alone
/// cannot give).
fn is_hidden_capability(v: &Value) -> bool {
    succeeded(v)
        && is(v, "file.path", HIDDEN_CAPABILITY_COPY)
        && is(v, "sensor.file_change.before.mode", "0755")
        && at(v, "file.inode").is_string()
        && is(v, "sensor.file_change.xattr.name", "security.capability")
        && lists(
            v,
            "sensor.file_change.xattr.capabilities.permitted",
            "CAP_SETUID",
        )
        && !lists(
            v,
            "sensor.file_change.xattr.capabilities.permitted",
            "CAP_NET_BIND_SERVICE",
        )
        && at(v, "sensor.file_change.xattr.rewritten") == &Value::Bool(true)
}

/// The name is the kernel's copy: the sensor's own read of it failed.
fn is_hidden_capability_removal(v: &Value) -> bool {
    succeeded(v)
        && by_root(v)
        && is(v, "file.path", HIDDEN_CAPABILITY_COPY)
        && is(v, "sensor.file_change.xattr.name", "security.capability")
        && !lists(v, "sensor.file_change.unavailable", "xattr.name")
}

/// The kernel's conversion to revision 3 is not a rewrite.
fn is_namespaced_capability(v: &Value) -> bool {
    succeeded(v)
        && is(v, "process.user.name", GUEST_USER)
        && is(v, "file.path", "/tmp/.nscap")
        && is(v, "sensor.file_change.xattr.name", "security.capability")
        && lists(
            v,
            "sensor.file_change.xattr.capabilities.permitted",
            "CAP_NET_RAW",
        )
        && at(v, "sensor.file_change.xattr.capabilities.root_uid") == &Value::from(1000)
        && at(v, "sensor.file_change.xattr.rewritten").is_null()
}

/// The listener's port is the harness's choice, unknown here; a connect
/// by bash to the host is the reverse shell (the sensor's own connections
/// to the collector are filtered in the kernel, and are not bash's).
fn is_reverse_shell(v: &Value) -> bool {
    succeeded(v)
        && is(v, "process.name", "bash")
        && is(v, "destination.ip", HOST_IP)
        && is(v, "network.transport", "tcp")
}

/// Seen from the socket's state change: no fd, no syscall.
fn is_fast_open_shell(v: &Value) -> bool {
    is(v, "event.outcome", "unknown")
        && is(v, "process.name", "scenario-actor")
        && is(v, "process.user.name", GUEST_USER)
        && is(v, "destination.ip", HOST_IP)
        && is(v, "network.transport", "tcp")
        && at(v, "sensor.network.without_connect") == &Value::Bool(true)
        && at(v, "sensor.network.fast_open") == &Value::Bool(true)
        && at(v, "sensor.syscall").is_null()
}

fn is_fast_open_shell_connected(v: &Value) -> bool {
    succeeded(v)
        && is(v, "process.name", "scenario-actor")
        && is(v, "process.user.name", GUEST_USER)
        && is(v, "destination.ip", HOST_IP)
        && at(v, "sensor.network.completes").is_string()
}

/// Seen by the cgroup sendmsg hook: no fd, no syscall, no result.
fn is_udp_exfiltration(v: &Value) -> bool {
    is(v, "event.outcome", "unknown")
        && is(v, "process.name", "perl")
        && is(v, "process.user.name", GUEST_USER)
        && is(v, "destination.ip", HOST_IP)
        && at(v, "destination.port") == &Value::from(53)
        && is(v, "network.transport", "udp")
        && is(v, "network.direction", "egress")
        && at(v, "sensor.syscall").is_null()
}

/// Seen by the cgroup recvmsg hook: the sender as `source`.
fn is_udp_implant(v: &Value) -> bool {
    succeeded(v)
        && is(v, "process.name", "perl")
        && is(v, "process.user.name", GUEST_USER)
        && is(v, "source.ip", "127.0.0.1")
        && at(v, "destination.port") == &Value::from(5300)
        && is(v, "network.transport", "udp")
        && is(v, "network.direction", "ingress")
}

fn is_raw_socket_refused(v: &Value) -> bool {
    is(v, "event.outcome", "failure")
        && is(v, "error.code", "EPERM")
        && is(v, "process.name", "perl")
        && is(v, "process.user.name", GUEST_USER)
        && is(v, "network.type", "ipv4")
        && is(v, "network.transport", "icmp")
        && is(v, "sensor.network.socket_type", "raw")
}

fn is_packet_backdoor(v: &Value) -> bool {
    succeeded(v)
        && is(v, "process.name", "perl")
        && is(v, "process.user.name", "root")
        && is(v, "network.type", "packet")
        && is(v, "sensor.network.socket_type", "raw")
        && at(v, "sensor.network.ethertype") == &Value::from(3)
}

fn is_memfd_exec(v: &Value) -> bool {
    is(v, "sensor.fileless", "memfd")
        && lists(v, "process.args", MEMFD_MARKER)
        && at(v, "process.executable")
            .as_str()
            .is_some_and(|e| e.contains(MEMFD_NAME))
}

fn is_cron_write(v: &Value) -> bool {
    succeeded(v) && is(v, "file.path", CRON_FILE) && lists(v, "event.type", "creation")
}

/// `mv .cron-moved /etc/cron.d/` from /tmp: renameat2(AT_FDCWD,
/// ".cron-moved", <fd of /etc/cron.d>, ".cron-moved"), whose second
/// path's directory the watch exit's second stage walks.
fn is_cron_moved_in(v: &Value) -> bool {
    succeeded(v)
        && is(v, "file.path", "/tmp/.cron-moved")
        && is(v, "sensor.file_write.new_path", "/etc/cron.d/.cron-moved")
        && is(v, "sensor.file_write.watched", CRON_DIR)
}

/// The ring's rename into cron: the new name joined to its own fd's
/// directory, not the first name's.
fn is_io_uring_cron_moved_in(v: &Value) -> bool {
    is(v, "sensor.io_uring.operation", "renameat")
        && by_root(v)
        && is(v, "file.path", "/tmp/.uring-moved")
        && is(v, "sensor.io_uring.target", IO_URING_CRON_MOVED)
        && is(v, "sensor.io_uring.target_argument", ".uring-moved")
}

/// Its path where the kernel's submit tracepoint passes the request
/// (5.19+); before, only that an openat went through a ring.
fn is_io_uring_cron(v: &Value) -> bool {
    let path_known = !kernel_before(v, (5, 19));
    is(v, "sensor.io_uring.operation", "openat")
        && by_root(v)
        && if path_known {
            is(v, "file.path", IO_URING_CRON)
        } else {
            at(v, "file.path").is_null()
        }
}

/// The cron file opened through the ring by a symlink under the ignored
/// prefix: the kernel held the open and reported its completion alone.
fn is_io_uring_cron_through_ignored_link(v: &Value) -> bool {
    action(v, "io_uring_complete")
        && succeeded(v)
        && by_root(v)
        && is(v, "file.path", IO_URING_CRON_LINKED)
        && at(v, "sensor.io_uring.path_argument_ignored") == &Value::Bool(true)
        && at(v, "sensor.io_uring.completes").is_null()
}

/// The capability set through the ring, as the kernel copied it.
fn is_io_uring_setcap(v: &Value) -> bool {
    is(v, "sensor.io_uring.operation", "setxattr")
        && by_root(v)
        && is(v, "file.path", IO_URING_CAPABLE)
        && is(v, "sensor.io_uring.xattr.name", "security.capability")
        && lists(
            v,
            "sensor.io_uring.xattr.capabilities.permitted",
            "CAP_SETUID",
        )
        && at(v, "sensor.io_uring.xattr.capabilities.effective") == &Value::Bool(true)
}

/// The openat's completion, naming its submission, where the completion
/// tracepoint passes the request (5.19+); before, there is none and the
/// submission itself is what can be asked for.
fn is_io_uring_cron_completed(v: &Value) -> bool {
    if kernel_before(v, (5, 19)) {
        return action(v, "io_uring_submit") && is_io_uring_cron(v);
    }
    action(v, "io_uring_complete")
        && succeeded(v)
        && by_root(v)
        && is(v, "file.path", IO_URING_CRON)
        && is(v, "sensor.io_uring.operation", "openat")
        && at(v, "sensor.io_uring.result")
            .as_i64()
            .is_some_and(|fd| fd >= 0)
        && at(v, "sensor.io_uring.completes").is_string()
}

/// Whether the event's kernel (`host.os.kernel`, e.g. `5.10.0-32-cloud-amd64`)
/// is older than `version`; false when it does not say.
fn kernel_before(v: &Value, version: (u32, u32)) -> bool {
    let Some(release) = at(v, "host.os.kernel").as_str() else {
        return false;
    };
    let mut parts = release.split(['.', '-']).map(|p| p.parse::<u32>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor) < version,
        _ => false,
    }
}

/// Decided by fentry/security_inode_unlink, which every guest kernel
/// loads: the path argument names no watched path.
fn is_cron_removed_via_symlink(v: &Value) -> bool {
    succeeded(v)
        && is(v, "file.path", CRON_FILE_LINKED)
        && is(v, "sensor.file_write.watched", CRON_DIR)
        && is(v, "sensor.file_write.matched_by", "inode")
}

/// A link through which a path leads wherever its user's cwd is, decided
/// by its target's text on every kernel.
fn is_cwd_linked(v: &Value) -> bool {
    succeeded(v)
        && is(v, "file.path", "/tmp/.c")
        && is(v, "file.target_path", "/proc/self/cwd")
        && at(v, "sensor.file_write.watched").is_null()
        && is(v, "sensor.file_write.matched_by", "target_magic_link")
}

/// Sent by the fentry hooks, which every guest kernel loads, and by the
/// path's prefix, the link's, which the daemon tracks from the step's
/// `ln` (read before the rename's record); followed from the link to
/// mv's cwd at the call, which the kernel sent: mv has exited by the
/// time the daemon looks.
fn is_cron_renamed_via_magic_link(v: &Value) -> bool {
    succeeded(v)
        && is(v, "sensor.file_write.watched", CRON_DIR)
        && is(v, "sensor.file_write.new_path", CRON_FILE_MAGIC)
        && is(
            v,
            "sensor.file_write.second_path_argument",
            CRON_FILE_VIA_MAGIC_LINK,
        )
        && is(v, "sensor.file_write.matched_by", "path")
        && at(v, "sensor.file_write.unresolved").is_null()
}

/// The link the next two steps write through, decided by its target's
/// text on every kernel.
fn is_systemd_dir_linked(v: &Value) -> bool {
    succeeded(v)
        && is(v, "file.path", "/tmp/.s")
        && is(v, "file.target_path", "/etc/systemd/system")
        && is(v, "sensor.file_write.watched", SYSTEMD_DIR)
        && is(v, "sensor.file_write.matched_by", "target")
}

/// A link to a directory above watched paths, decided by its target's
/// text on every kernel (`/etc/passwd` is the first watched path below).
fn is_etc_linked(v: &Value) -> bool {
    succeeded(v)
        && is(v, "file.path", "/tmp/.e")
        && is(v, "file.target_path", "/etc")
        && is(v, "sensor.file_write.watched", "/etc/passwd")
        && is(v, "sensor.file_write.matched_by", "target_above")
}

/// The crontabs' spool moved away, decided by its path on every kernel:
/// a directory above a watched one.
fn is_spool_moved(v: &Value) -> bool {
    succeeded(v)
        && is(v, "file.path", "/var/spool")
        && is(v, "sensor.file_write.new_path", "/var/.spool-moved")
        && is(v, "sensor.file_write.watched", "/var/spool/cron/")
        && is(v, "sensor.file_write.matched_by", "above")
}

/// Decided by fentry/security_inode_symlink: the path argument names no
/// watched path.
fn is_unit_enabled_via_symlink(v: &Value) -> bool {
    succeeded(v)
        && is(v, "file.path", UNIT_LINK_LINKED)
        && is(v, "file.target_path", UNIT_TARGET)
        && is(v, "sensor.file_write.watched", SYSTEMD_DIR)
        && is(v, "sensor.file_write.matched_by", "inode")
}

/// Decided by fentry/security_inode_link, by the file linked.
fn is_shadow_linked_via_symlink(v: &Value) -> bool {
    succeeded(v)
        && is(v, "file.path", SHADOW_COPY)
        && is(v, "file.target_path", SHADOW_LINKED)
        && is(v, "sensor.file_write.watched", SHADOW)
        && is(v, "sensor.file_write.matched_by", "inode")
}

/// `truncate` opens then ftruncates; a shell's `: > f` opens with O_TRUNC.
fn is_log_truncation(v: &Value) -> bool {
    let truncating = action(v, "truncate")
        || (action(v, "open_write") && lists(v, "sensor.file_write.open_flags", "O_TRUNC"));
    truncating && succeeded(v) && is(v, "file.path", LOG_FILE)
}

fn is_audit_rules_deleted(v: &Value) -> bool {
    let removes_a_rule = at(v, "sensor.audit.records")
        .as_array()
        .is_some_and(|rs| rs.iter().any(|r| r["fields"]["op"] == "remove_rule"));
    is(v, "event.kind", "alert")
        && at(v, "sensor.audit.tamper") == &Value::Bool(true)
        && removes_a_rule
}

/// The container named as podman has it, with its id and image.
fn in_scenario_container(v: &Value) -> bool {
    at(v, "container.id")
        .as_str()
        .is_some_and(|id| !id.is_empty())
        && is(v, "container.name", CONTAINER_NAME)
        && at(v, "container.image.name")
            .as_str()
            .is_some_and(|i| i.starts_with(CONTAINER_IMAGE))
}

fn is_container_exec(v: &Value) -> bool {
    let marked = at(v, "process.args").as_array().is_some_and(|a| {
        a.iter()
            .any(|x| x.as_str().is_some_and(|s| s.contains(CONTAINER_MARKER)))
    });
    in_scenario_container(v) && marked
}

fn is_container_connect(v: &Value) -> bool {
    succeeded(v) && in_scenario_container(v) && is(v, "destination.ip", HOST_IP)
}

/// The path is the container's view or the host's: only its name is sure.
fn is_container_chmod(v: &Value) -> bool {
    succeeded(v)
        && in_scenario_container(v)
        && at(v, "file.path")
            .as_str()
            .is_some_and(|p| p.ends_with(CONTAINER_FILE))
        && lists(v, "sensor.file_change.special_bits", "setuid")
}

/// By the script's shell (its `kill` builtin): systemd's own SIGTERM when
/// the service stops is not the attack.
fn is_sensor_kill(v: &Value) -> bool {
    is(v, "sensor.signal.name", "SIGTERM") && by_root(v) && is(v, "process.name", "bash")
}

// ---- the report ----

/// What became of one expected event.
struct Check {
    what: &'static str,
    actions: &'static [&'static str],
    needed: usize,
    seen: usize,
    /// Events of the expected action since the step (later steps'
    /// included) that differed in other fields: a miss with some of these
    /// may be a field, not a missing hook.
    other_fields: usize,
    /// From the step's time to the receipt of the event that completed
    /// the check (the `needed`-th match); negative within the slack.
    latency_ms: Option<i64>,
}

impl Check {
    fn found(&self) -> bool {
        if self.needed == 0 {
            self.seen == 0
        } else {
            self.seen >= self.needed
        }
    }
}

enum Outcome {
    /// The step ran; its checks say what was seen.
    Ran(Vec<Check>),
    /// In the scenario, but absent from the steps file: the script stopped
    /// before it.
    NotRun,
    /// In the steps file, but this verifier has no expectations for it.
    Unknown,
}

struct StepResult {
    name: String,
    expected_missing: bool,
    outcome: Outcome,
}

impl StepResult {
    fn found(&self) -> bool {
        matches!(&self.outcome, Outcome::Ran(checks) if checks.iter().all(Check::found))
    }
}

/// The verdict on a run, step by step.
pub struct Report {
    steps: Vec<StepResult>,
}

/// Matches the received events against every step of the scenario, and
/// names any step in the steps file that the scenario does not know.
/// `kernel`: the guest's `(major, minor)`, which decides the expectations
/// that hold (see [`Kernels`]).
pub fn verify(steps: &[StepTime], events: &[Received], kernel: (u32, u32)) -> Report {
    let mut results: Vec<StepResult> = SCENARIO
        .iter()
        .map(|spec| StepResult {
            name: spec.name.to_owned(),
            expected_missing: EXPECTED_MISSING.contains(&spec.name),
            outcome: match steps.iter().find(|s| s.name == spec.name) {
                Some(step) => Outcome::Ran(
                    spec.expects
                        .iter()
                        .filter(|e| e.kernels.include(kernel))
                        .map(|e| check(e, step.at_ms, events))
                        .collect(),
                ),
                None => Outcome::NotRun,
            },
        })
        .collect();
    for step in steps
        .iter()
        .filter(|s| !SCENARIO.iter().any(|spec| spec.name == s.name))
    {
        results.push(StepResult {
            name: step.name.clone(),
            expected_missing: false,
            outcome: Outcome::Unknown,
        });
    }
    Report { steps: results }
}

fn check(expect: &Expect, step_ms: u64, events: &[Received]) -> Check {
    let since = step_ms.saturating_sub(SLACK_MS);
    let candidates: Vec<&Received> = events
        .iter()
        .filter(|r| r.at_ms >= since && expect.is_action(&r.event))
        .collect();
    let mut times: Vec<u64> = candidates
        .iter()
        .filter(|r| (expect.matches)(&r.event))
        .map(|r| r.at_ms)
        .collect();
    times.sort_unstable();
    let completed = expect.count.checked_sub(1).and_then(|i| times.get(i));
    Check {
        what: expect.what,
        actions: expect.actions,
        needed: expect.count,
        seen: times.len(),
        other_fields: candidates.len() - times.len(),
        latency_ms: completed.map(|&t| t as i64 - step_ms as i64),
    }
}

impl Report {
    /// A markdown table: one row per expected event.
    pub fn table(&self) -> String {
        let mut out =
            String::from("| step | expected | found | latency (ms) |\n|---|---|---|---|\n");
        for step in &self.steps {
            for (what, found, latency) in step.rows() {
                let _ = writeln!(out, "| {} | {what} | {found} | {latency} |", step.name);
            }
        }
        out
    }

    /// Steps not found, except those listed as expected missing: the
    /// harness fails naming them.
    pub fn undetected(&self) -> Vec<String> {
        self.steps
            .iter()
            .filter(|s| !s.expected_missing && !s.found())
            .map(|s| s.name.clone())
            .collect()
    }
}

impl StepResult {
    /// (expected, found, latency) cells of this step's rows.
    fn rows(&self) -> Vec<(String, String, String)> {
        match &self.outcome {
            Outcome::NotRun => vec![(
                "(step not in the steps file)".into(),
                self.verdict("not run"),
                "-".into(),
            )],
            Outcome::Unknown => vec![(
                "(no expectations in verify.rs)".into(),
                "unknown step".into(),
                "-".into(),
            )],
            Outcome::Ran(checks) => checks
                .iter()
                .map(|c| {
                    let found = if c.needed == 0 {
                        if c.found() {
                            "none, as expected".to_owned()
                        } else {
                            format!("no: {} arrived", c.seen)
                        }
                    } else if c.found() {
                        format!("yes ({})", c.seen)
                    } else {
                        format!(
                            "no ({} of {}; {} other `{}` since)",
                            c.seen,
                            c.needed,
                            c.other_fields,
                            c.actions.join("`/`")
                        )
                    };
                    let latency = c.latency_ms.map_or_else(|| "-".into(), |ms| ms.to_string());
                    (c.what.to_owned(), self.verdict(&found), latency)
                })
                .collect(),
        }
    }

    /// A cell of the found column, saying when the step is listed as
    /// expected missing (and when such a step turns out to be found, so
    /// that the list gets shortened).
    fn verdict(&self, found: &str) -> String {
        match (self.expected_missing, self.found()) {
            (false, _) => found.to_owned(),
            (true, false) => format!("expected missing: {found}"),
            (true, true) => format!("{found}, but listed in EXPECTED_MISSING: remove it"),
        }
    }
}

/// The step whose ignored chmod the path filter drops: the kernel side
/// must drop it, since the guest's prefix is a directory (see
/// `[filter]` in the README). The heartbeats count the records dropped
/// in userspace instead: none may, and one must come after the step so
/// that this can fail. Returns the problems found.
pub fn path_filter_stayed_in_kernel(steps: &[StepTime], events: &[Received]) -> Vec<String> {
    const STEP: &str = "ignored_symlink_chmod";
    let Some(step) = steps.iter().find(|s| s.name == STEP) else {
        return vec![format!("step {STEP} did not run")];
    };
    let heartbeats: Vec<(u64, Option<u64>)> = events
        .iter()
        .filter(|r| action(&r.event, "heartbeat"))
        .map(|r| {
            let drops = at(&r.event, "sensor.heartbeat.path_filter_userspace_drops");
            (r.at_ms, drops.as_u64())
        })
        .collect();
    let mut problems: Vec<String> = heartbeats
        .iter()
        .filter(|(_, drops)| *drops != Some(0))
        .map(|(at_ms, drops)| match drops {
            Some(n) => {
                format!("a heartbeat (received at {at_ms}) counts {n} userspace path-filter drops")
            }
            None => format!("a heartbeat (received at {at_ms}) has no path_filter_userspace_drops"),
        })
        .collect();
    if !heartbeats.iter().any(|(at_ms, _)| *at_ms > step.at_ms) {
        problems.push(format!("no heartbeat came after step {STEP}"));
    }
    problems
}

/// What the collector got, checked as a whole rather than step by step:
/// `event.sequence` must run from 1 without a gap (the sensor persists it
/// across its restart by the scenario's kill, so a gap is an event lost on
/// the way; a repeat is not a loss, delivery being at-least-once), and
/// every event must also be in the guest's own copy (`local`: the file
/// sink's lines). Returns the problems found.
pub fn completeness(events: &[Received], local: &str) -> Vec<String> {
    use std::collections::HashSet;
    let mut problems = Vec::new();
    let mut seqs = HashSet::new();
    for r in events {
        match at(&r.event, "event.sequence").as_u64() {
            Some(n) => drop(seqs.insert(n)),
            None => problems.push(format!("an event without event.sequence: {}", r.event)),
        }
    }
    let last = seqs.iter().copied().max().unwrap_or(0);
    let missing: Vec<u64> = (1..=last).filter(|n| !seqs.contains(n)).collect();
    if !missing.is_empty() {
        let shown: Vec<String> = missing.iter().take(10).map(u64::to_string).collect();
        problems.push(format!(
            "{} sequence numbers below {last} never reached the collector: {}",
            missing.len(),
            shown.join(", ")
        ));
    }
    let local_ids: HashSet<String> = local
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| at(&v, "event.id").as_str().map(str::to_owned))
        .collect();
    let absent = events
        .iter()
        .filter(|r| {
            at(&r.event, "event.id")
                .as_str()
                .is_none_or(|id| !local_ids.contains(id))
        })
        .count();
    if absent > 0 {
        problems.push(format!(
            "{absent} events the collector got are not in the guest's own copy"
        ));
    }
    problems
}

#[cfg(test)]
mod tests;
