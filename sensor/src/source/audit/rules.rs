//! auditd's `audit.rules` syntax, the subset users rely on, translated to
//! the kernel's `struct audit_rule_data` (include/uapi/linux/audit.h), and
//! back to text for `sensor audit-rules`.
//!
//! Supported: `-a`/`-A LIST,ACTION` with `-S` (names or numbers, `all`),
//! `-F` (ids, names of users, `arch`, `exit` with errno names, `success`,
//! `a0`..`a3`, `path`, `dir`, `perm`, `exe`, `msgtype`, `key`), `-k`;
//! `-w PATH [-p rwxa] [-k KEY]`; `-D`, `-b N`, `-e 0|1|2`, `-f 0|1|2`,
//! `--backlog_wait_time N` (accepted: the sensor as daemon always uses 0).
//! Anything else is an error naming the line, never silently ignored.

use std::path::Path;

use crate::config::audit::AuditConfig;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("audit rule {line}: {problem}: {text}")]
    Syntax {
        line: String,
        text: String,
        problem: String,
    },
    #[error("cannot read audit rules file {path}: {message}")]
    Read { path: String, message: String },
    #[error("the kernel refused audit rule `{rule}`: {message}")]
    Kernel { rule: String, message: String },
}

/// A rule ready for AUDIT_ADD_RULE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub text: String,
    pub data: Vec<u8>,
}

/// A rules file (or list) read: rules plus the control settings in it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Loaded {
    pub delete_all: bool,
    pub rules: Vec<Rule>,
    pub backlog_limit: Option<u32>,
    pub enabled: Option<u32>,
    pub failure: Option<u32>,
    pub backlog_wait_time: Option<u32>,
}

const AUDIT_BITMASK_SIZE: usize = 64;
const AUDIT_MAX_FIELDS: usize = 64;
/// flags, action, field_count, mask[64], fields[64], values[64], fieldflags[64], buflen.
const HEADER_LEN: usize = 4 * (3 + AUDIT_BITMASK_SIZE + 3 * AUDIT_MAX_FIELDS + 1);

const FILTER_USER: u32 = 0;
const FILTER_TASK: u32 = 1;
const FILTER_EXIT: u32 = 4;
const FILTER_EXCLUDE: u32 = 5;
const FILTER_FS: u32 = 6;
const FILTER_PREPEND: u32 = 0x10;

const NEVER: u32 = 0;
const ALWAYS: u32 = 2;

const OP_BITMASK: u32 = 0x0800_0000;
const OP_LT: u32 = 0x1000_0000;
const OP_GT: u32 = 0x2000_0000;
const OP_NE: u32 = 0x3000_0000;
const OP_EQ: u32 = 0x4000_0000;
const OP_LE: u32 = OP_LT | OP_EQ;
const OP_GE: u32 = OP_GT | OP_EQ;
const OP_BITTEST: u32 = OP_BITMASK | OP_EQ;
const OPS: &[(&str, u32)] = &[
    ("!=", OP_NE),
    ("<=", OP_LE),
    (">=", OP_GE),
    ("&=", OP_BITTEST),
    ("=", OP_EQ),
    ("<", OP_LT),
    (">", OP_GT),
    ("&", OP_BITMASK),
];

const F_ARCH: u32 = 11;
const F_MSGTYPE: u32 = 12;
const F_WATCH: u32 = 105;
const F_PERM: u32 = 106;
const F_DIR: u32 = 107;
const F_EXE: u32 = 112;
const F_FILTERKEY: u32 = 210;

/// How a field's value is written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Val {
    Uid,
    Gid,
    Num,
    Str,
    Arch,
    Perm,
    Exit,
    MsgType,
}

const FIELDS: &[(&str, u32, Val)] = &[
    ("pid", 0, Val::Num),
    ("uid", 1, Val::Uid),
    ("euid", 2, Val::Uid),
    ("suid", 3, Val::Uid),
    ("fsuid", 4, Val::Uid),
    ("gid", 5, Val::Gid),
    ("egid", 6, Val::Gid),
    ("sgid", 7, Val::Gid),
    ("fsgid", 8, Val::Gid),
    ("auid", 9, Val::Uid),
    ("loginuid", 9, Val::Uid),
    ("pers", 10, Val::Num),
    ("arch", F_ARCH, Val::Arch),
    ("msgtype", F_MSGTYPE, Val::MsgType),
    ("ppid", 18, Val::Num),
    ("loginuid_set", 24, Val::Num),
    ("sessionid", 25, Val::Num),
    ("devmajor", 100, Val::Num),
    ("devminor", 101, Val::Num),
    ("inode", 102, Val::Num),
    ("exit", 103, Val::Exit),
    ("success", 104, Val::Num),
    ("path", F_WATCH, Val::Str),
    ("perm", F_PERM, Val::Perm),
    ("dir", F_DIR, Val::Str),
    ("filetype", 108, Val::Num),
    ("obj_uid", 109, Val::Uid),
    ("obj_gid", 110, Val::Gid),
    ("exe", F_EXE, Val::Str),
    ("a0", 200, Val::Num),
    ("a1", 201, Val::Num),
    ("a2", 202, Val::Num),
    ("a3", 203, Val::Num),
    ("key", F_FILTERKEY, Val::Str),
];

const ARCH_B64: u32 = 0xc000_003e;
const ARCH_B32: u32 = 0x4000_0003;

macro_rules! syscalls {
    ($($name:ident),* $(,)?) => {
        /// x86_64 syscalls by name: those audit rules commonly name.
        const SYSCALLS: &[(&str, i64)] = &[$((stringify!($name), syscall_number!($name))),*];
    };
}

// libc names them SYS_<name>; a small macro maps the bare names.
macro_rules! syscall_number {
    (accept) => {
        libc::SYS_accept
    };
    (accept4) => {
        libc::SYS_accept4
    };
    (adjtimex) => {
        libc::SYS_adjtimex
    };
    (bind) => {
        libc::SYS_bind
    };
    (bpf) => {
        libc::SYS_bpf
    };
    (capset) => {
        libc::SYS_capset
    };
    (chmod) => {
        libc::SYS_chmod
    };
    (chown) => {
        libc::SYS_chown
    };
    (chroot) => {
        libc::SYS_chroot
    };
    (clock_settime) => {
        libc::SYS_clock_settime
    };
    (clone) => {
        libc::SYS_clone
    };
    (clone3) => {
        libc::SYS_clone3
    };
    (connect) => {
        libc::SYS_connect
    };
    (creat) => {
        libc::SYS_creat
    };
    (delete_module) => {
        libc::SYS_delete_module
    };
    (execve) => {
        libc::SYS_execve
    };
    (execveat) => {
        libc::SYS_execveat
    };
    (exit_group) => {
        libc::SYS_exit_group
    };
    (fchmod) => {
        libc::SYS_fchmod
    };
    (fchmodat) => {
        libc::SYS_fchmodat
    };
    (fchown) => {
        libc::SYS_fchown
    };
    (fchownat) => {
        libc::SYS_fchownat
    };
    (finit_module) => {
        libc::SYS_finit_module
    };
    (fork) => {
        libc::SYS_fork
    };
    (fremovexattr) => {
        libc::SYS_fremovexattr
    };
    (fsetxattr) => {
        libc::SYS_fsetxattr
    };
    (ftruncate) => {
        libc::SYS_ftruncate
    };
    (init_module) => {
        libc::SYS_init_module
    };
    (kexec_file_load) => {
        libc::SYS_kexec_file_load
    };
    (kexec_load) => {
        libc::SYS_kexec_load
    };
    (kill) => {
        libc::SYS_kill
    };
    (lchown) => {
        libc::SYS_lchown
    };
    (link) => {
        libc::SYS_link
    };
    (linkat) => {
        libc::SYS_linkat
    };
    (lremovexattr) => {
        libc::SYS_lremovexattr
    };
    (lsetxattr) => {
        libc::SYS_lsetxattr
    };
    (memfd_create) => {
        libc::SYS_memfd_create
    };
    (mkdir) => {
        libc::SYS_mkdir
    };
    (mkdirat) => {
        libc::SYS_mkdirat
    };
    (mknod) => {
        libc::SYS_mknod
    };
    (mknodat) => {
        libc::SYS_mknodat
    };
    (mount) => {
        libc::SYS_mount
    };
    (open) => {
        libc::SYS_open
    };
    (open_by_handle_at) => {
        libc::SYS_open_by_handle_at
    };
    (openat) => {
        libc::SYS_openat
    };
    (openat2) => {
        libc::SYS_openat2
    };
    (perf_event_open) => {
        libc::SYS_perf_event_open
    };
    (personality) => {
        libc::SYS_personality
    };
    (pivot_root) => {
        libc::SYS_pivot_root
    };
    (process_vm_readv) => {
        libc::SYS_process_vm_readv
    };
    (process_vm_writev) => {
        libc::SYS_process_vm_writev
    };
    (ptrace) => {
        libc::SYS_ptrace
    };
    (removexattr) => {
        libc::SYS_removexattr
    };
    (rename) => {
        libc::SYS_rename
    };
    (renameat) => {
        libc::SYS_renameat
    };
    (renameat2) => {
        libc::SYS_renameat2
    };
    (rmdir) => {
        libc::SYS_rmdir
    };
    (setdomainname) => {
        libc::SYS_setdomainname
    };
    (setfsgid) => {
        libc::SYS_setfsgid
    };
    (setfsuid) => {
        libc::SYS_setfsuid
    };
    (setgid) => {
        libc::SYS_setgid
    };
    (sethostname) => {
        libc::SYS_sethostname
    };
    (setns) => {
        libc::SYS_setns
    };
    (setregid) => {
        libc::SYS_setregid
    };
    (setresgid) => {
        libc::SYS_setresgid
    };
    (setresuid) => {
        libc::SYS_setresuid
    };
    (setreuid) => {
        libc::SYS_setreuid
    };
    (settimeofday) => {
        libc::SYS_settimeofday
    };
    (setuid) => {
        libc::SYS_setuid
    };
    (setxattr) => {
        libc::SYS_setxattr
    };
    (socket) => {
        libc::SYS_socket
    };
    (swapoff) => {
        libc::SYS_swapoff
    };
    (swapon) => {
        libc::SYS_swapon
    };
    (symlink) => {
        libc::SYS_symlink
    };
    (symlinkat) => {
        libc::SYS_symlinkat
    };
    (tgkill) => {
        libc::SYS_tgkill
    };
    (tkill) => {
        libc::SYS_tkill
    };
    (truncate) => {
        libc::SYS_truncate
    };
    (umount2) => {
        libc::SYS_umount2
    };
    (unlink) => {
        libc::SYS_unlink
    };
    (unlinkat) => {
        libc::SYS_unlinkat
    };
    (unshare) => {
        libc::SYS_unshare
    };
    (vfork) => {
        libc::SYS_vfork
    };
}

syscalls!(
    accept,
    accept4,
    adjtimex,
    bind,
    bpf,
    capset,
    chmod,
    chown,
    chroot,
    clock_settime,
    clone,
    clone3,
    connect,
    creat,
    delete_module,
    execve,
    execveat,
    exit_group,
    fchmod,
    fchmodat,
    fchown,
    fchownat,
    finit_module,
    fork,
    fremovexattr,
    fsetxattr,
    ftruncate,
    init_module,
    kexec_file_load,
    kexec_load,
    kill,
    lchown,
    link,
    linkat,
    lremovexattr,
    lsetxattr,
    memfd_create,
    mkdir,
    mkdirat,
    mknod,
    mknodat,
    mount,
    open,
    open_by_handle_at,
    openat,
    openat2,
    perf_event_open,
    personality,
    pivot_root,
    process_vm_readv,
    process_vm_writev,
    ptrace,
    removexattr,
    rename,
    renameat,
    renameat2,
    rmdir,
    setdomainname,
    setfsgid,
    setfsuid,
    setgid,
    sethostname,
    setns,
    setregid,
    setresgid,
    setresuid,
    setreuid,
    settimeofday,
    setuid,
    setxattr,
    socket,
    swapoff,
    swapon,
    symlink,
    symlinkat,
    tgkill,
    tkill,
    truncate,
    umount2,
    unlink,
    unlinkat,
    unshare,
    vfork,
);

const ERRNOS: &[(&str, i32)] = &[
    ("EPERM", libc::EPERM),
    ("ENOENT", libc::ENOENT),
    ("EACCES", libc::EACCES),
    ("EEXIST", libc::EEXIST),
    ("EINVAL", libc::EINVAL),
    ("EROFS", libc::EROFS),
    ("ENOTDIR", libc::ENOTDIR),
    ("EISDIR", libc::EISDIR),
];

/// The rules the config asks for: `rules_file` first, then `rules`.
pub fn load_config(cfg: &AuditConfig) -> Result<Loaded, RuleError> {
    let mut loaded = Loaded::default();
    if let Some(path) = &cfg.rules_file {
        let text = std::fs::read_to_string(path).map_err(|e| RuleError::Read {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        parse_into(&text, &path.display().to_string(), &mut loaded)?;
    }
    for (i, line) in cfg.rules.iter().enumerate() {
        parse_line(line, &format!("audit.rules[{i}]"), &mut loaded)?;
    }
    Ok(loaded)
}

/// Parses an audit.rules text.
pub fn parse(text: &str) -> Result<Loaded, RuleError> {
    let mut loaded = Loaded::default();
    parse_into(text, "rules", &mut loaded)?;
    Ok(loaded)
}

fn parse_into(text: &str, origin: &str, loaded: &mut Loaded) -> Result<(), RuleError> {
    for (n, line) in text.lines().enumerate() {
        parse_line(line, &format!("{origin}:{}", n + 1), loaded)?;
    }
    Ok(())
}

struct Builder {
    flags: u32,
    action: u32,
    mask: [u32; AUDIT_BITMASK_SIZE],
    fields: Vec<(u32, u32, u32)>,
    buf: Vec<u8>,
    keys: Vec<String>,
    has_syscall: bool,
}

impl Builder {
    fn new(flags: u32, action: u32) -> Builder {
        Builder {
            flags,
            action,
            mask: [0; AUDIT_BITMASK_SIZE],
            fields: Vec::new(),
            buf: Vec::new(),
            keys: Vec::new(),
            has_syscall: false,
        }
    }

    fn field_str(&mut self, field: u32, op: u32, s: &str) {
        self.fields.push((field, s.len() as u32, op));
        self.buf.extend_from_slice(s.as_bytes());
    }

    fn encode(mut self) -> Result<Vec<u8>, String> {
        if !self.keys.is_empty() {
            let key = self.keys.join("\x01");
            self.field_str(F_FILTERKEY, OP_EQ, &key);
        }
        if self.fields.len() > AUDIT_MAX_FIELDS {
            return Err(format!("more than {AUDIT_MAX_FIELDS} fields"));
        }
        if self.flags & !FILTER_PREPEND == FILTER_EXIT && !self.has_syscall {
            // auditctl: an exit rule without -S applies to every syscall.
            self.mask = [!0; AUDIT_BITMASK_SIZE];
        }
        let mut v = Vec::with_capacity(HEADER_LEN + self.buf.len());
        let put = |v: &mut Vec<u8>, x: u32| v.extend_from_slice(&x.to_ne_bytes());
        put(&mut v, self.flags);
        put(&mut v, self.action);
        put(&mut v, self.fields.len() as u32);
        for m in self.mask {
            put(&mut v, m);
        }
        for i in 0..AUDIT_MAX_FIELDS {
            put(&mut v, self.fields.get(i).map_or(0, |f| f.0));
        }
        for i in 0..AUDIT_MAX_FIELDS {
            put(&mut v, self.fields.get(i).map_or(0, |f| f.1));
        }
        for i in 0..AUDIT_MAX_FIELDS {
            put(&mut v, self.fields.get(i).map_or(0, |f| f.2));
        }
        put(&mut v, self.buf.len() as u32);
        v.extend_from_slice(&self.buf);
        Ok(v)
    }
}

fn parse_line(line: &str, origin: &str, loaded: &mut Loaded) -> Result<(), RuleError> {
    let text = line.trim();
    if text.is_empty() || text.starts_with('#') {
        return Ok(());
    }
    let err = |problem: String| RuleError::Syntax {
        line: origin.to_owned(),
        text: text.to_owned(),
        problem,
    };
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut it = words.iter().copied().peekable();
    let mut builder: Option<Builder> = None;
    let mut watch: Option<(String, u32)> = None;
    let mut perm: Option<u32> = None;
    let mut keys: Vec<String> = Vec::new();
    let mut arch_seen = false;
    let mut pending_syscalls: Vec<String> = Vec::new();
    while let Some(w) = it.next() {
        let mut arg = |name: &str| {
            it.next()
                .ok_or_else(|| err(format!("{name} needs an argument")))
        };
        match w {
            "-D" => loaded.delete_all = true,
            "-b" => loaded.backlog_limit = Some(num(arg("-b")?).map_err(err)?),
            "-e" => {
                let e = num(arg("-e")?).map_err(err)?;
                if e > 2 {
                    return Err(err(format!("-e {e}: must be 0, 1 or 2")));
                }
                loaded.enabled = Some(e);
            }
            "-f" => {
                let f = num(arg("-f")?).map_err(err)?;
                if f > 2 {
                    return Err(err(format!("-f {f}: must be 0, 1 or 2")));
                }
                loaded.failure = Some(f);
            }
            "--backlog_wait_time" => {
                loaded.backlog_wait_time = Some(num(arg("--backlog_wait_time")?).map_err(err)?)
            }
            "-a" | "-A" => {
                let spec = arg(w)?;
                let (list, action) = parse_list_action(spec).map_err(err)?;
                builder = Some(Builder::new(
                    list | if w == "-A" { FILTER_PREPEND } else { 0 },
                    action,
                ));
            }
            "-w" => {
                let path = arg("-w")?;
                if !path.starts_with('/') {
                    return Err(err(format!("watch path {path} is not absolute")));
                }
                let field = if Path::new(path).is_dir() {
                    F_DIR
                } else {
                    F_WATCH
                };
                watch = Some((path.to_owned(), field));
            }
            "-p" => perm = Some(parse_perm(arg("-p")?).map_err(err)?),
            "-k" => keys.push(arg("-k")?.to_owned()),
            "-S" => pending_syscalls.extend(arg("-S")?.split(',').map(str::to_owned)),
            "-F" => {
                let f = arg("-F")?;
                let b = builder
                    .as_mut()
                    .ok_or_else(|| err("-F without -a".into()))?;
                let (name, op, value) = split_field(f).map_err(err)?;
                if name == "key" {
                    keys.push(value.to_owned());
                    continue;
                }
                let &(_, code, kind) = FIELDS
                    .iter()
                    .find(|(n, _, _)| *n == name)
                    .ok_or_else(|| err(format!("unsupported field {name}")))?;
                if code == F_ARCH {
                    arch_seen = true;
                }
                match kind {
                    Val::Str => b.field_str(code, op, value),
                    _ => {
                        let v = field_value(kind, value).map_err(err)?;
                        b.fields.push((code, v, op));
                    }
                }
            }
            other => return Err(err(format!("unsupported option {other}"))),
        }
    }
    if !pending_syscalls.is_empty() {
        let b = builder
            .as_mut()
            .ok_or_else(|| err("-S without -a".into()))?;
        if b.flags & !FILTER_PREPEND != FILTER_EXIT {
            return Err(err("-S is only valid on the exit list".into()));
        }
        if !arch_seen {
            // auditctl requires the arch before -S so that numbers mean
            // the right table; this sensor knows only x86_64's.
            b.fields.insert(0, (F_ARCH, ARCH_B64, OP_EQ));
        }
        for s in &pending_syscalls {
            if s == "all" {
                b.mask = [!0; AUDIT_BITMASK_SIZE];
            } else {
                let nr = syscall_number(s).ok_or_else(|| err(format!("unknown syscall {s}")))?;
                b.mask[nr / 32] |= 1 << (nr % 32);
            }
        }
        b.has_syscall = true;
    }
    match (builder, watch) {
        (Some(_), Some(_)) => Err(err("-w and -a in one rule".into())),
        (Some(mut b), None) => {
            if perm.is_some() {
                return Err(err("-p belongs to -w".into()));
            }
            b.keys = keys;
            let data = b.encode().map_err(err)?;
            loaded.rules.push(Rule {
                text: text.to_owned(),
                data,
            });
            Ok(())
        }
        (None, Some((path, field))) => {
            let mut b = Builder::new(FILTER_EXIT, ALWAYS);
            b.field_str(field, OP_EQ, &path);
            b.fields.push((F_PERM, perm.unwrap_or(0xf), OP_EQ));
            b.keys = keys;
            let data = b.encode().map_err(err)?;
            loaded.rules.push(Rule {
                text: text.to_owned(),
                data,
            });
            Ok(())
        }
        (None, None) if !keys.is_empty() || perm.is_some() => {
            Err(err("-k/-p without a rule".into()))
        }
        (None, None) => Ok(()),
    }
}

fn num(s: &str) -> Result<u32, String> {
    s.parse().map_err(|_| format!("{s} is not a number"))
}

fn parse_list_action(spec: &str) -> Result<(u32, u32), String> {
    let (a, b) = spec
        .split_once(',')
        .ok_or_else(|| format!("{spec}: expected LIST,ACTION"))?;
    let list = |s: &str| match s {
        "exit" => Some(FILTER_EXIT),
        "task" => Some(FILTER_TASK),
        "user" => Some(FILTER_USER),
        "exclude" => Some(FILTER_EXCLUDE),
        "filesystem" => Some(FILTER_FS),
        _ => None,
    };
    let action = |s: &str| match s {
        "always" => Some(ALWAYS),
        "never" => Some(NEVER),
        _ => None,
    };
    // auditctl accepts both orders.
    match (list(a), action(b), list(b), action(a)) {
        (Some(l), Some(x), _, _) | (_, _, Some(l), Some(x)) => Ok((l, x)),
        _ => Err(format!("{spec}: unknown list or action")),
    }
}

fn parse_perm(s: &str) -> Result<u32, String> {
    let mut p = 0;
    for c in s.chars() {
        p |= match c {
            'x' => 1,
            'w' => 2,
            'r' => 4,
            'a' => 8,
            _ => return Err(format!("permission {c} is not one of r, w, x, a")),
        };
    }
    Ok(p)
}

fn split_field(f: &str) -> Result<(&str, u32, &str), String> {
    for &(text, op) in OPS {
        if let Some(i) = f.find(text) {
            // The first operator in the string, longest match first.
            let earlier = OPS.iter().any(|(t, _)| f.find(t).is_some_and(|j| j < i));
            if earlier {
                continue;
            }
            let (name, value) = (&f[..i], &f[i + text.len()..]);
            if name.is_empty() || value.is_empty() {
                return Err(format!("field {f} needs a name and a value"));
            }
            return Ok((name, op, value));
        }
    }
    Err(format!("field {f} has no operator"))
}

fn field_value(kind: Val, v: &str) -> Result<u32, String> {
    let number = |v: &str| -> Result<u32, String> {
        if let Some(h) = v.strip_prefix("0x") {
            return u32::from_str_radix(h, 16).map_err(|_| format!("{v} is not a number"));
        }
        v.parse::<u32>()
            .or_else(|_| v.parse::<i32>().map(|i| i as u32))
            .map_err(|_| format!("{v} is not a number"))
    };
    match kind {
        Val::Num | Val::Str => number(v),
        Val::Uid => match v {
            "unset" | "-1" => Ok(u32::MAX),
            _ => number(v).or_else(|_| {
                nix::unistd::User::from_name(v)
                    .ok()
                    .flatten()
                    .map(|u| u.uid.as_raw())
                    .ok_or_else(|| format!("unknown user {v}"))
            }),
        },
        Val::Gid => match v {
            "unset" | "-1" => Ok(u32::MAX),
            _ => number(v).or_else(|_| {
                nix::unistd::Group::from_name(v)
                    .ok()
                    .flatten()
                    .map(|g| g.gid.as_raw())
                    .ok_or_else(|| format!("unknown group {v}"))
            }),
        },
        Val::Arch => match v {
            "b64" | "x86_64" => Ok(ARCH_B64),
            "b32" | "i386" => Ok(ARCH_B32),
            _ => number(v),
        },
        Val::Perm => parse_perm(v),
        Val::Exit => {
            let (neg, name) = v.strip_prefix('-').map_or((false, v), |n| (true, n));
            match ERRNOS.iter().find(|(n, _)| *n == name) {
                Some(&(_, e)) => Ok((if neg { -e } else { e }) as u32),
                None => number(v),
            }
        }
        Val::MsgType => super::types::number(v)
            .map(u32::from)
            .map_or_else(|| number(v), Ok),
    }
}

fn syscall_number(s: &str) -> Option<usize> {
    if let Ok(n) = s.parse::<usize>() {
        return (n < AUDIT_BITMASK_SIZE * 32).then_some(n);
    }
    SYSCALLS
        .iter()
        .find(|(n, _)| *n == s)
        .map(|&(_, nr)| nr as usize)
}

/// `struct audit_rule_data` back to auditctl syntax (for `sensor audit-rules`).
pub fn describe(data: &[u8]) -> Option<String> {
    if data.len() < HEADER_LEN {
        return None;
    }
    let u = |i: usize| u32::from_ne_bytes(data[i * 4..i * 4 + 4].try_into().unwrap_or([0; 4]));
    let flags = u(0);
    let action = u(1);
    let count = (u(2) as usize).min(AUDIT_MAX_FIELDS);
    let mask: Vec<u32> = (0..AUDIT_BITMASK_SIZE).map(|i| u(3 + i)).collect();
    let base = 3 + AUDIT_BITMASK_SIZE;
    let buf = &data[HEADER_LEN..];
    let mut off = 0usize;
    let mut parts = Vec::new();
    let mut keys = Vec::new();
    let list = match flags & !FILTER_PREPEND {
        FILTER_EXIT => "exit",
        FILTER_TASK => "task",
        FILTER_USER => "user",
        FILTER_EXCLUDE => "exclude",
        FILTER_FS => "filesystem",
        _ => "unknown",
    };
    let mut watch = None;
    let mut perm = None;
    for i in 0..count {
        let (field, value, op) = (
            u(base + i),
            u(base + AUDIT_MAX_FIELDS + i),
            u(base + 2 * AUDIT_MAX_FIELDS + i),
        );
        let name = FIELDS
            .iter()
            .find(|(_, c, _)| *c == field)
            .map_or_else(|| field.to_string(), |(n, _, _)| (*n).to_owned());
        let op_text = OPS.iter().find(|(_, o)| *o == op).map_or("=", |(t, _)| t);
        let is_str = matches!(field, F_WATCH | F_DIR | F_EXE | F_FILTERKEY);
        let shown = if is_str {
            let end = off.saturating_add(value as usize).min(buf.len());
            let s = String::from_utf8_lossy(&buf[off.min(end)..end]).into_owned();
            off = end;
            s
        } else if field == F_ARCH {
            match value {
                ARCH_B64 => "b64".into(),
                ARCH_B32 => "b32".into(),
                v => format!("0x{v:x}"),
            }
        } else if field == F_PERM {
            ["r", "w", "x", "a"]
                .iter()
                .zip([4, 2, 1, 8])
                .filter(|(_, bit)| value & bit != 0)
                .map(|(c, _)| *c)
                .collect()
        } else if matches!(field, 1..=9 | 109 | 110) && value == u32::MAX {
            "unset".into()
        } else if field == 103 {
            (value as i32).to_string()
        } else {
            value.to_string()
        };
        match field {
            F_FILTERKEY => keys.extend(shown.split('\x01').map(str::to_owned)),
            F_WATCH | F_DIR if flags == FILTER_EXIT && action == ALWAYS => {
                watch = Some((name, shown))
            }
            F_PERM => perm = Some(shown),
            _ => parts.push(format!("-F {name}{op_text}{shown}")),
        }
    }
    // As auditctl: the kernel may clear bits of the last word (syscall
    // numbers past its table), so "all" looks at the others.
    let all = mask[..AUDIT_BITMASK_SIZE - 1].iter().all(|&m| m == !0);
    let mut out = String::new();
    if let Some((_, path)) = watch.as_ref().filter(|_| all && parts.is_empty()) {
        out.push_str(&format!("-w {path}"));
        if let Some(p) = &perm {
            out.push_str(&format!(" -p {p}"));
        }
    } else {
        let flag = if flags & FILTER_PREPEND != 0 {
            "-A"
        } else {
            "-a"
        };
        out.push_str(&format!(
            "{flag} {},{list}",
            if action == ALWAYS { "always" } else { "never" }
        ));
        if let Some((name, path)) = &watch {
            parts.push(format!("-F {name}={path}"));
        }
        if let Some(p) = &perm {
            parts.push(format!("-F perm={p}"));
        }
        // arch first, as auditctl prints it.
        parts.sort_by_key(|p| !p.starts_with("-F arch"));
        for p in &parts {
            out.push(' ');
            out.push_str(p);
        }
        if flags & !FILTER_PREPEND == FILTER_EXIT {
            if all {
                out.push_str(" -S all");
            } else {
                let names: Vec<String> = (0..AUDIT_BITMASK_SIZE * 32)
                    .filter(|n| mask[n / 32] & (1 << (n % 32)) != 0)
                    .map(|n| {
                        SYSCALLS
                            .iter()
                            .find(|(_, nr)| *nr as usize == n)
                            .map_or_else(|| n.to_string(), |(s, _)| (*s).to_owned())
                    })
                    .collect();
                if !names.is_empty() {
                    out.push_str(&format!(" -S {}", names.join(",")));
                }
            }
        }
    }
    for k in keys {
        out.push_str(&format!(" -k {k}"));
    }
    Some(out)
}

#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error(transparent)]
    Rule(#[from] RuleError),
    #[error(transparent)]
    Netlink(#[from] super::netlink::NetlinkError),
}

/// `sensor audit-rules`: the kernel's rules, or a file's translation.
pub fn print(check: Option<&Path>) -> Result<(), ListError> {
    let rules: Vec<Vec<u8>> = match check {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| RuleError::Read {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
            let loaded = parse(&text)?;
            loaded.rules.into_iter().map(|r| r.data).collect()
        }
        None => super::netlink::AuditSocket::open()?.list_rules()?,
    };
    for r in rules {
        match describe(&r) {
            Some(text) => println!("{text}"),
            None => println!("# a rule of {} bytes that this sensor cannot show", r.len()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_at(data: &[u8], table: usize, i: usize) -> u32 {
        let off = 4 * (3 + AUDIT_BITMASK_SIZE + table * AUDIT_MAX_FIELDS + i);
        u32::from_ne_bytes(data[off..off + 4].try_into().expect("4 bytes"))
    }

    #[test]
    fn syscall_rule_encodes_fields_mask_and_key() {
        let l = parse(
            "-a always,exit -F arch=b64 -S execve,execveat -F auid>=1000 -F auid!=unset -k exec\n",
        )
        .expect("parses");
        let d = &l.rules[0].data;
        assert_eq!(
            u32::from_ne_bytes(d[0..4].try_into().expect("4")),
            FILTER_EXIT
        );
        assert_eq!(u32::from_ne_bytes(d[4..8].try_into().expect("4")), ALWAYS);
        assert_eq!(
            u32::from_ne_bytes(d[8..12].try_into().expect("4")),
            4,
            "arch, auid, auid, key"
        );
        assert_eq!(
            (field_at(d, 0, 0), field_at(d, 1, 0), field_at(d, 2, 0)),
            (F_ARCH, ARCH_B64, OP_EQ)
        );
        assert_eq!(
            (field_at(d, 0, 1), field_at(d, 1, 1), field_at(d, 2, 1)),
            (9, 1000, OP_GE)
        );
        assert_eq!(
            (field_at(d, 0, 2), field_at(d, 1, 2), field_at(d, 2, 2)),
            (9, u32::MAX, OP_NE)
        );
        assert_eq!((field_at(d, 0, 3), field_at(d, 1, 3)), (F_FILTERKEY, 4));
        assert!(d.ends_with(b"exec"));
        let execve = libc::SYS_execve as usize;
        let word = u32::from_ne_bytes(
            d[12 + 4 * (execve / 32)..16 + 4 * (execve / 32)]
                .try_into()
                .expect("4"),
        );
        assert_ne!(word & (1 << (execve % 32)), 0);
        assert_eq!(
            describe(d).as_deref(),
            Some(
                "-a always,exit -F arch=b64 -F auid>=1000 -F auid!=unset -S execve,execveat -k exec"
            )
        );
    }

    #[test]
    fn watches_and_control_lines() {
        let l = parse(
            "# comment\n-D\n-b 8192\n-f 1\n-e 1\n--backlog_wait_time 0\n\n-w /etc/shadow -p wa -k shadow\n-A never,exit -S all\n",
        )
        .expect("parses");
        assert!(l.delete_all);
        assert_eq!(
            (l.backlog_limit, l.failure, l.enabled, l.backlog_wait_time),
            (Some(8192), Some(1), Some(1), Some(0))
        );
        assert_eq!(
            describe(&l.rules[0].data).as_deref(),
            Some("-w /etc/shadow -p wa -k shadow")
        );
        assert_eq!(
            describe(&l.rules[1].data).as_deref(),
            Some("-A never,exit -F arch=b64 -S all")
        );
    }

    #[test]
    fn mistakes_name_the_line_and_problem() {
        for (text, needle) in [
            ("-a always,exit -S nosuchcall", "unknown syscall"),
            ("-a sometimes,exit", "unknown list or action"),
            ("-w relative/path", "not absolute"),
            ("-a always,exit -F colour=blue", "unsupported field colour"),
            ("-e 7", "must be 0, 1 or 2"),
            ("-x", "unsupported option"),
            ("-a always,exit -F uid=nosuchuser_xyz", "unknown user"),
        ] {
            let e = parse(&format!("\n{text}")).unwrap_err().to_string();
            assert!(e.contains("rules:2") && e.contains(needle), "{text}: {e}");
        }
        assert!(describe(&[0; 10]).is_none());
    }
}
