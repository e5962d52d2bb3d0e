//! The files sshd_config names for letting someone in, to watch: where
//! sshd reads each account's keys and principals (`AuthorizedKeysFile`,
//! `AuthorizedPrincipalsFile`), the user CA keys it trusts
//! (`TrustedUserCAKeys`: one line there and a certificate signed by that
//! key logs in as anyone), its revoked keys (`RevokedKeys`), and the
//! programs it runs to find keys (`AuthorizedKeysCommand`,
//! `AuthorizedPrincipalsCommand`). The default `~/.ssh/authorized_keys`
//! is covered by the `.ssh` rule; hardened hosts move keys elsewhere
//! (`/etc/ssh/authorized_keys/%u`), out of that rule's sight.
//!
//! Read at the start, and again when it or a file it includes changes (a
//! refresh, see [`Sources`]). The file itself is among the default
//! watched paths, so an edit that points sshd elsewhere is reported too.
//!
//! The parsing is ours: there is no maintained crate for sshd_config, and
//! only these keywords, `Include` and the line syntax matter here. Every
//! value counts whatever `Match` block holds it (a superset of what sshd
//! uses for any one login: more to watch, never less).

use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use super::homes::Account;
use super::watch_sources::Sources;

/// Where sshd resolves a relative `Include` (its SSHDIR).
const SSHD_DIR: &str = "/etc/ssh";

/// How deep `Include`s nest before sshd itself gives up.
const INCLUDE_DEPTH_MAX: u32 = 16;

/// What [`files`] found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SshdFiles {
    /// Files and directories (with a trailing `/`) to watch, each once.
    pub paths: Vec<PathBuf>,
    /// What could not be followed, for the log: an unreadable include, a
    /// token sshd does not expand either.
    pub problems: Vec<String>,
}

/// The files `config` (sshd_config) names for keys, principals, CAs and
/// key commands, for `accounts`. With `ssh_dirs_by_name`, a file directly
/// in a directory named `.ssh` is left out: the `.ssh` rule watches it.
/// Each file read, and the directory each `Include` looks in, is noted in
/// `sources`.
pub fn files(
    config: &Path,
    accounts: &[Account],
    ssh_dirs_by_name: bool,
    sources: &mut Sources,
) -> SshdFiles {
    let mut found = SshdFiles::default();
    let mut directives = Vec::new();
    let mut reader = Reader {
        directives: &mut directives,
        problems: &mut found.problems,
        sources,
    };
    reader.read(config, 0);
    let mut add = |p: PathBuf| {
        let p = single_slashes(p);
        let in_ssh_dir = p.parent().and_then(Path::file_name) == Some(".ssh".as_ref());
        let covered = ssh_dirs_by_name && in_ssh_dir;
        if !covered && !found.paths.contains(&p) {
            found.paths.push(p);
        }
    };
    for Directive { keyword, args } in directives {
        match keyword.as_str() {
            // Per account, relative to its home.
            "authorizedkeysfile" | "authorizedprincipalsfile" => {
                for arg in args.iter().filter(|a| a.as_slice() != b"none") {
                    match per_account(arg, accounts) {
                        Ok(paths) => paths.into_iter().for_each(&mut add),
                        Err(why) => found.problems.push(why),
                    }
                }
            }
            // A file sshd reads as root, for everyone; or the program it
            // runs, then that program's arguments (which name no file).
            "trustedusercakeys"
            | "revokedkeys"
            | "authorizedkeyscommand"
            | "authorizedprincipalscommand" => {
                if let Some(path) = args.first().and_then(|a| absolute(a)) {
                    add(path);
                }
            }
            _ => {}
        }
    }
    found
}

/// `path` with each run of slashes made one, as sshd (the kernel) reads
/// it: `/etc/ssh/keys//%u` holds `/etc/ssh/keys/bob`, whose path argument
/// is compared with the watched path as a string. A trailing one stays
/// (a directory).
fn single_slashes(path: PathBuf) -> PathBuf {
    let mut bytes = path.into_os_string().into_vec();
    bytes.dedup_by(|a, b| *a == b'/' && *b == b'/');
    PathBuf::from(std::ffi::OsString::from_vec(bytes))
}

/// `arg` as a literal absolute path; None for `none`, a relative path or
/// one with tokens.
fn absolute(arg: &[u8]) -> Option<PathBuf> {
    (arg.starts_with(b"/") && !arg.contains(&b'%'))
        .then(|| PathBuf::from(std::ffi::OsString::from_vec(arg.to_vec())))
}

/// One keyword and its arguments, the keyword in lower case.
struct Directive {
    keyword: String,
    args: Vec<Vec<u8>>,
}

/// Reads a config and what it includes, in sshd's order.
struct Reader<'a> {
    directives: &'a mut Vec<Directive>,
    problems: &'a mut Vec<String>,
    sources: &'a mut Sources,
}

impl Reader<'_> {
    /// Appends `path`'s directives, with those of the files it includes
    /// in their place.
    fn read(&mut self, path: &Path, depth: u32) {
        self.sources.note(path);
        let text = match std::fs::read(path) {
            Ok(text) => text,
            // No sshd_config: no sshd to let anyone in (said only for
            // includes).
            Err(e) if depth == 0 && e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) => {
                self.problems.push(format!("{}: {e}", path.display()));
                return;
            }
        };
        for (n, line) in text.split(|&b| b == b'\n').enumerate() {
            let words = match words(line) {
                Ok(words) => words,
                Err(why) => {
                    self.problems
                        .push(format!("{}:{}: {why}", path.display(), n + 1));
                    continue;
                }
            };
            let Some((keyword, args)) = words.split_first() else {
                continue;
            };
            let keyword = String::from_utf8_lossy(keyword).to_ascii_lowercase();
            if keyword != "include" {
                self.directives.push(Directive {
                    keyword,
                    args: args.to_vec(),
                });
                continue;
            }
            if depth + 1 >= INCLUDE_DEPTH_MAX {
                self.problems
                    .push(format!("{}: includes nested too deep", path.display()));
                continue;
            }
            for pattern in args {
                for file in self.included(pattern) {
                    self.read(&file, depth + 1);
                }
            }
        }
    }

    /// The files an `Include` argument names, in the order sshd reads
    /// them (glob(3)'s: sorted). The directory it looks in is noted as a
    /// source: a file added there (`sshd_config.d/50-keys.conf`) is a
    /// change.
    fn included(&mut self, pattern: &[u8]) -> Vec<PathBuf> {
        let text = String::from_utf8_lossy(pattern);
        let pattern = if pattern.starts_with(b"/") {
            text.into_owned()
        } else {
            format!("{SSHD_DIR}/{text}")
        };
        self.sources.note(&glob_dir(&pattern));
        match glob::glob(&pattern) {
            Ok(paths) => paths
                .filter_map(|p| {
                    p.map_err(|e| self.problems.push(format!("Include {pattern}: {e}")))
                        .ok()
                })
                .collect(),
            Err(e) => {
                self.problems.push(format!("Include {pattern}: {e}"));
                Vec::new()
            }
        }
    }
}

/// The directory an absolute glob pattern looks in: above its first
/// component with a wildcard, or its last (`/etc/ssh/sshd_config.d` for
/// `/etc/ssh/sshd_config.d/*.conf`). Wildcards in a directory's name
/// (`/etc/ssh/*/x.conf`) make that the directory above them, whose
/// subdirectories' entries are not looked at.
fn glob_dir(pattern: &str) -> PathBuf {
    let mut dir = PathBuf::from("/");
    let mut components = Path::new(pattern).components().skip(1).peekable();
    while let Some(c) = components.next() {
        let wild = c.as_os_str().as_bytes().iter().any(|b| b"*?[".contains(b));
        if wild || components.peek().is_none() {
            break;
        }
        dir.push(c);
    }
    dir
}

/// A line's words as sshd splits them: by spaces and tabs, the keyword
/// also by one `=`; `"…"` holds spaces; a word starting with `#` starts a
/// comment.
fn words(line: &[u8]) -> Result<Vec<Vec<u8>>, &'static str> {
    let mut words = Vec::new();
    let mut i = 0;
    let blank = |b: u8| b == b' ' || b == b'\t' || b == b'\r';
    loop {
        while i < line.len() && blank(line[i]) {
            i += 1;
        }
        // `Keyword = value`: one `=` between the keyword and its value.
        if words.len() == 1 && line.get(i) == Some(&b'=') {
            i += 1;
            while i < line.len() && blank(line[i]) {
                i += 1;
            }
        }
        if i >= line.len() || line[i] == b'#' {
            return Ok(words);
        }
        let mut word = Vec::new();
        if line[i] == b'"' {
            let end = line[i + 1..]
                .iter()
                .position(|&b| b == b'"')
                .ok_or("a quote is not closed")?;
            word.extend_from_slice(&line[i + 1..i + 1 + end]);
            i += end + 2;
        } else {
            let keyword = words.is_empty();
            while i < line.len() && !blank(line[i]) && !(keyword && line[i] == b'=') {
                word.push(line[i]);
                i += 1;
            }
        }
        words.push(word);
    }
}

/// An `AuthorizedKeysFile` (or principals) argument for every account:
/// its tokens (`%%`, `%h`, `%u`, `%U`) expanded, relative to the home.
/// An absolute one whose tokens come below a directory that holds no
/// home (`/etc/ssh/authorized_keys/%u`) is that directory instead: an
/// account made later has its file there too.
fn per_account(arg: &[u8], accounts: &[Account]) -> Result<Vec<PathBuf>, String> {
    let shown = String::from_utf8_lossy(arg);
    if arg.starts_with(b"/") && first_token(arg).is_none() {
        // The same file for everyone (with no token, expanding only turns
        // `%%` into `%`, and cannot fail).
        let path = expand(arg, &Account::default()).unwrap_or_else(|| arg.to_vec());
        return Ok(vec![PathBuf::from(std::ffi::OsString::from_vec(path))]);
    }
    if arg.starts_with(b"/") {
        if let Some(dir) = static_dir(arg) {
            let holds_a_home = accounts.iter().any(|a| a.home.starts_with(&dir));
            if !holds_a_home && dir != Path::new("/") {
                let mut dir = dir.into_os_string().into_vec();
                dir.push(b'/');
                return Ok(vec![PathBuf::from(std::ffi::OsString::from_vec(dir))]);
            }
        }
    }
    accounts
        .iter()
        .map(|a| {
            let path =
                expand(arg, a).ok_or_else(|| format!("`{shown}`: a token sshd does not expand"))?;
            let path = PathBuf::from(std::ffi::OsString::from_vec(path));
            Ok(if path.is_absolute() {
                path
            } else {
                a.home.join(path)
            })
        })
        .collect()
}

/// The directory above `arg`'s first component with a token, if it has
/// one.
fn static_dir(arg: &[u8]) -> Option<PathBuf> {
    let token = first_token(arg)?;
    let slash = arg[..token].iter().rposition(|&b| b == b'/')?;
    let dir = if slash == 0 { &b"/"[..] } else { &arg[..slash] };
    Some(PathBuf::from(std::ffi::OsStr::from_bytes(dir)))
}

/// Where `arg`'s first token is (`%%` is none: a `%`).
fn first_token(arg: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < arg.len() {
        match (arg[i], arg.get(i + 1)) {
            (b'%', Some(b'%')) => i += 2,
            (b'%', _) => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// `arg` with `account`'s values for its tokens; None for a token sshd
/// refuses there.
fn expand(arg: &[u8], account: &Account) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(arg.len());
    let mut bytes = arg.iter();
    while let Some(&b) = bytes.next() {
        if b != b'%' {
            out.push(b);
            continue;
        }
        match bytes.next()? {
            b'%' => out.push(b'%'),
            b'h' => out.extend_from_slice(account.home.as_os_str().as_bytes()),
            b'u' => out.extend_from_slice(&account.name),
            b'U' => out.extend_from_slice(account.uid.to_string().as_bytes()),
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(name: &str, uid: u32, home: &str) -> Account {
        Account {
            name: name.as_bytes().to_vec(),
            uid,
            home: PathBuf::from(home),
        }
    }

    fn w(words: &[&str]) -> Vec<Vec<u8>> {
        words.iter().map(|w| w.as_bytes().to_vec()).collect()
    }

    #[test]
    fn a_line_is_split_as_sshd_splits_it() {
        assert_eq!(
            words(b"  AuthorizedKeysFile .ssh/k /etc/k/%u # old").unwrap(),
            w(&["AuthorizedKeysFile", ".ssh/k", "/etc/k/%u"])
        );
        assert_eq!(
            words(b"TrustedUserCAKeys=/etc/ssh/ca.pub").unwrap(),
            w(&["TrustedUserCAKeys", "/etc/ssh/ca.pub"])
        );
        assert_eq!(
            words(b"RevokedKeys = \"/etc/ssh/revoked keys\"\r").unwrap(),
            w(&["RevokedKeys", "/etc/ssh/revoked keys"])
        );
        assert_eq!(words(b"# AuthorizedKeysFile /x").unwrap(), w(&[]));
        assert_eq!(words(b"\t").unwrap(), w(&[]));
        assert!(words(b"AuthorizedKeysFile \"/x").is_err());
    }

    #[test]
    fn tokens_are_expanded_for_each_account_and_a_keys_directory_is_watched_whole() {
        let accounts = [
            account("bob", 1000, "/home/bob"),
            account("root", 0, "/root"),
        ];
        let paths = |arg: &str| {
            per_account(arg.as_bytes(), &accounts)
                .unwrap()
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            paths(".config/keys"),
            ["/home/bob/.config/keys", "/root/.config/keys"]
        );
        assert_eq!(paths("%h/k_%U"), ["/home/bob/k_1000", "/root/k_0"]);
        assert_eq!(
            paths("/etc/ssh/authorized_keys/%u"),
            ["/etc/ssh/authorized_keys/"]
        );
        assert_eq!(
            paths("/etc/ssh/keys/%u/authorized_keys"),
            ["/etc/ssh/keys/"]
        );
        // A directory holding homes: each account's file, not all of /home.
        assert_eq!(
            paths("/home/%u/keys"),
            ["/home/bob/keys", "/home/root/keys"]
        );
        assert_eq!(paths("/%u.keys"), ["/bob.keys", "/root.keys"]);
        assert_eq!(paths("/etc/ssh/100%%_keys"), ["/etc/ssh/100%_keys"]);
        let once = |arg: &str| {
            per_account(arg.as_bytes(), &accounts)
                .unwrap()
                .into_iter()
                .map(|p| single_slashes(p).display().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            once("/etc/ssh//keys//%u"),
            ["/etc/ssh/keys/"],
            "slashes doubled, as sshd reads them"
        );
        assert_eq!(
            once("%h//.config//keys"),
            ["/home/bob/.config/keys", "/root/.config/keys"]
        );
        assert!(per_account(b"%d/keys", &accounts).is_err());
    }

    #[test]
    fn every_keyword_and_include_is_followed_whatever_match_block_holds_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().display();
        std::fs::create_dir_all(dir.path().join("conf.d")).expect("mkdir");
        std::fs::write(
            dir.path().join("sshd_config"),
            format!(
                "Include {d}/conf.d/*.conf\n\
                 AuthorizedKeysFile .ssh/authorized_keys {d}/keys/%u\n\
                 RevokedKeys none\n\
                 Match Group admins\n\
                 \tAuthorizedPrincipalsFile {d}/principals/%u\n\
                 Include {d}/missing.conf\n\
                 AuthorizedKeysFile \"{d}/unclosed\n"
            ),
        )
        .expect("write");
        std::fs::write(
            dir.path().join("conf.d/20-cmd.conf"),
            "authorizedkeyscommand /usr/local/bin/keys %u %f\n",
        )
        .expect("write");
        std::fs::write(
            dir.path().join("conf.d/10-ca.conf"),
            "TrustedUserCAKeys \"/etc/ssh/user ca.pub\"\n",
        )
        .expect("write");
        std::fs::write(dir.path().join("conf.d/ignored.txt"), "RevokedKeys /x\n").expect("write");
        let accounts = [account("bob", 1000, "/home/bob")];
        let mut sources = Sources::default();
        let found = files(
            &dir.path().join("sshd_config"),
            &accounts,
            true,
            &mut sources,
        );
        let shown: Vec<String> = found
            .paths
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        assert_eq!(
            shown,
            [
                "/etc/ssh/user ca.pub".to_owned(),
                "/usr/local/bin/keys".to_owned(),
                format!("{d}/keys/"),
                format!("{d}/principals/"),
            ]
        );
        assert_eq!(found.problems.len(), 1, "{:?}", found.problems);
        assert!(found.problems[0].contains("quote"), "{:?}", found.problems);
        // What a refresh looks at: each file read, where each `Include`
        // looks (the missing one's directory too: its creation counts).
        assert_eq!(
            sources
                .paths()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>(),
            [
                format!("{d}/sshd_config"),
                format!("{d}/conf.d"),
                format!("{d}/conf.d/10-ca.conf"),
                format!("{d}/conf.d/20-cmd.conf"),
                format!("{d}"),
            ]
        );
        // Without the `.ssh` rule, the default file is watched per account.
        let found = files(
            &dir.path().join("sshd_config"),
            &accounts,
            false,
            &mut Sources::default(),
        );
        assert!(
            found
                .paths
                .contains(&PathBuf::from("/home/bob/.ssh/authorized_keys"))
        );
        // No sshd_config: nothing, and nothing to say.
        assert_eq!(
            files(
                &dir.path().join("none"),
                &accounts,
                true,
                &mut Sources::default()
            ),
            SshdFiles::default()
        );
    }

    #[test]
    fn includes_that_loop_stop() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("sshd_config");
        std::fs::write(
            &config,
            format!("Include {}\nRevokedKeys /k\n", config.display()),
        )
        .expect("write");
        let found = files(&config, &[], true, &mut Sources::default());
        assert_eq!(found.paths, [PathBuf::from("/k")]);
        assert!(found.problems.iter().any(|p| p.contains("nested too deep")));
    }

    #[test]
    fn an_include_looks_in_the_directory_above_its_first_wildcard() {
        assert_eq!(
            glob_dir("/etc/ssh/sshd_config.d/*.conf"),
            Path::new("/etc/ssh/sshd_config.d")
        );
        assert_eq!(glob_dir("/etc/ssh/extra.conf"), Path::new("/etc/ssh"));
        assert_eq!(glob_dir("/etc/ssh/*/x.conf"), Path::new("/etc/ssh"));
        assert_eq!(glob_dir("/etc/ssh/conf[0-9].d/x"), Path::new("/etc/ssh"));
        assert_eq!(glob_dir("/x"), Path::new("/"));
    }
}
