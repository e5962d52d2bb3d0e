//! One audit record's text (`audit(1700000000.123:456): key=value ...`)
//! into typed fields.
//!
//! Values are untrusted bytes (user names, paths, argv) and stay
//! byte-exact: a quoted value is taken literally, and an unquoted value of
//! a field the kernel or libaudit hex-encodes when it holds anything odd
//! (spaces, quotes, control or non-ASCII bytes) is decoded from hex.
//! Nothing here panics on any input; what does not parse is an error the
//! caller counts.

use super::types;

const EXECVE: u16 = 1309;

/// `audit(SEC.MSEC:SERIAL)`: what makes records one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Stamp {
    pub sec: u64,
    pub msec: u32,
    pub serial: u64,
}

/// How a value was written in the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `key=value`
    Plain,
    /// `key="value"`
    Quoted,
    /// `key=68657820` decoded
    Hex,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub encoding: Encoding,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub kind: u16,
    pub stamp: Stamp,
    pub fields: Vec<Field>,
    /// Text that did not split into `key=value` pairs (e.g. an AVC's
    /// `avc:  denied  { read }`), kept so nothing is dropped.
    pub unparsed: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("record has no audit(sec.msec:serial) stamp")]
    NoStamp,
    #[error("record of {0} bytes is larger than the {1}-byte limit")]
    TooLarge(usize, usize),
    #[error("log line has no type=")]
    NoType,
}

/// Records longer than this are refused (and counted): the kernel's own
/// limit is 8970 bytes; a log line of auditd's can be a little longer.
pub const MAX_RECORD: usize = 64 * 1024;

impl Record {
    /// The first field named `key`.
    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|f| f.key == key.as_bytes())
            .map(|f| f.value.as_slice())
    }

    /// `key` as text, when it is valid UTF-8.
    pub fn str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// `key` as a number (decimal), if it is one.
    pub fn num(&self, key: &str) -> Option<u64> {
        self.str(key).and_then(|s| s.parse().ok())
    }

    /// A value that says "nothing here": `?`, `(none)`, `(null)`, or an
    /// id of -1.
    pub fn is_unset(v: &[u8]) -> bool {
        matches!(
            v,
            b"?" | b"(none)" | b"(null)" | b"" | b"4294967295" | b"-1"
        )
    }

    /// `key` unless it is unset (see [`Self::is_unset`]).
    pub fn known(&self, key: &str) -> Option<&[u8]> {
        self.get(key).filter(|v| !Self::is_unset(v))
    }

    pub fn type_name(&self) -> String {
        types::name(self.kind).map_or_else(
            || format!("UNKNOWN[{}]", self.kind),
            |n| n.to_ascii_uppercase(),
        )
    }
}

/// Parses a record as it comes over netlink: its type is the message's.
pub fn parse(kind: u16, body: &[u8]) -> Result<Record, ParseError> {
    if body.len() > MAX_RECORD {
        return Err(ParseError::TooLarge(body.len(), MAX_RECORD));
    }
    let (stamp, rest) = parse_stamp(body).ok_or(ParseError::NoStamp)?;
    let mut fields = Vec::new();
    let mut unparsed = Vec::new();
    parse_fields(kind, rest, &mut fields, &mut unparsed, 0);
    Ok(Record {
        kind,
        stamp,
        fields,
        unparsed,
    })
}

/// Parses a line of auditd's log (`[node=N ]type=NAME msg=audit(...): ...`),
/// the form of recorded streams and golden fixtures. auditd's enriched
/// format appends translated fields after a 0x1d byte: those are dropped.
pub fn parse_log_line(line: &[u8]) -> Result<Record, ParseError> {
    let line = line.split(|&b| b == 0x1d).next().unwrap_or_default();
    let line = trim(line);
    let mut rest = line;
    if let Some(r) = rest.strip_prefix(b"node=") {
        let sp = r
            .iter()
            .position(|&b| b == b' ')
            .ok_or(ParseError::NoType)?;
        rest = &r[sp + 1..];
    }
    let r = rest.strip_prefix(b"type=").ok_or(ParseError::NoType)?;
    let sp = r
        .iter()
        .position(|&b| b == b' ')
        .ok_or(ParseError::NoStamp)?;
    let name = std::str::from_utf8(&r[..sp]).map_err(|_| ParseError::NoType)?;
    let kind = types::number(name).ok_or(ParseError::NoType)?;
    let body = r[sp + 1..]
        .strip_prefix(b"msg=")
        .ok_or(ParseError::NoStamp)?;
    parse(kind, body)
}

fn trim(mut b: &[u8]) -> &[u8] {
    while let [rest @ .., b'\n' | b'\r' | 0 | b' '] = b {
        b = rest;
    }
    b
}

fn parse_stamp(body: &[u8]) -> Option<(Stamp, &[u8])> {
    let rest = body.strip_prefix(b"audit(")?;
    let close = rest.iter().position(|&b| b == b')')?;
    let inner = std::str::from_utf8(&rest[..close]).ok()?;
    let (time, serial) = inner.split_once(':')?;
    let (sec, msec) = time.split_once('.')?;
    let stamp = Stamp {
        sec: sec.parse().ok()?,
        msec: msec.parse().ok()?,
        serial: serial.parse().ok()?,
    };
    let after = &rest[close + 1..];
    Some((stamp, after.strip_prefix(b":").unwrap_or(after)))
}

/// Fields whose unquoted values are hex: the kernel's
/// `audit_log_untrustedstring` users and libaudit's `audit_encode_nv_string`
/// callers (PAM, shadow's useradd, sudo).
fn hex_capable(kind: u16, key: &[u8]) -> bool {
    const KEYS: &[&[u8]] = &[
        b"acct",
        b"cmd",
        b"comm",
        b"cwd",
        b"data",
        b"dir",
        b"exe",
        b"file",
        b"grp",
        b"key",
        b"name",
        b"new-user",
        b"new_group",
        b"new-group",
        b"ocomm",
        b"old-user",
        b"path",
        b"proctitle",
        b"root_dir",
        b"watch",
        b"vm",
        b"user",
    ];
    if KEYS.contains(&key) {
        return true;
    }
    if kind != EXECVE {
        // SYSCALL's a0..a3 are numbers in hex, not encoded strings.
        return false;
    }
    // EXECVE's a0, a1, ... and their chunks a1[0], a1[1], ...
    match key {
        [b'a', rest @ ..] if !rest.is_empty() => {
            let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
            let tail = &rest[digits..];
            digits > 0
                && (tail.is_empty()
                    || (tail.first() == Some(&b'[')
                        && tail.last() == Some(&b']')
                        && tail.len() > 2
                        && tail[1..tail.len() - 1].iter().all(u8::is_ascii_digit)))
        }
        _ => false,
    }
}

fn decode_hex(v: &[u8]) -> Option<Vec<u8>> {
    if v.is_empty()
        || !v.len().is_multiple_of(2)
        || !v.iter().all(|b| matches!(b, b'0'..=b'9' | b'A'..=b'F'))
    {
        return None;
    }
    let nib = |b: u8| if b <= b'9' { b - b'0' } else { b - b'A' + 10 };
    Some(v.chunks(2).map(|p| nib(p[0]) << 4 | nib(p[1])).collect())
}

/// Splits `key=value` pairs. A `msg='...'` value (user-space messages
/// relayed by the kernel) holds pairs of its own, which are flattened into
/// the record as auparse does.
fn parse_fields(kind: u16, mut s: &[u8], out: &mut Vec<Field>, unparsed: &mut Vec<u8>, depth: u8) {
    loop {
        while let [b' ' | b'\n' | b'\t', rest @ ..] = s {
            s = rest;
        }
        if s.is_empty() {
            return;
        }
        let word_end = s.iter().position(|&b| b == b' ').unwrap_or(s.len());
        let Some(eq) = s[..word_end]
            .iter()
            .position(|&b| b == b'=')
            .filter(|&i| i > 0)
        else {
            // Not a pair: keep it verbatim.
            if !unparsed.is_empty() {
                unparsed.push(b' ');
            }
            unparsed.extend_from_slice(&s[..word_end]);
            s = &s[word_end..];
            continue;
        };
        let key = s[..eq].to_vec();
        let v = &s[eq + 1..];
        match v.first() {
            Some(&q @ (b'"' | b'\'')) => {
                let inner = &v[1..];
                let (value, rest) = match inner.iter().position(|&b| b == q) {
                    Some(end) => (&inner[..end], &inner[end + 1..]),
                    None => (inner, &inner[inner.len()..]),
                };
                if q == b'\'' && depth == 0 && key == b"msg" && value.contains(&b'=') {
                    parse_fields(kind, value, out, unparsed, depth + 1);
                } else {
                    out.push(Field {
                        key,
                        value: value.to_vec(),
                        encoding: Encoding::Quoted,
                    });
                }
                s = rest;
            }
            _ => {
                let end = v.iter().position(|&b| b == b' ').unwrap_or(v.len());
                let raw = &v[..end];
                let field = match hex_capable(kind, &key).then(|| decode_hex(raw)).flatten() {
                    Some(decoded) => Field {
                        key,
                        value: decoded,
                        encoding: Encoding::Hex,
                    },
                    None => Field {
                        key,
                        value: raw.to_vec(),
                        encoding: Encoding::Plain,
                    },
                };
                out.push(field);
                s = &v[end..];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f<'a>(r: &'a Record, k: &str) -> &'a [u8] {
        r.get(k).unwrap_or_else(|| panic!("no {k} in {r:?}"))
    }

    #[test]
    fn pam_user_message_is_flattened_and_unquoted() {
        let r = parse(
            1100,
            b"audit(1700000000.123:456): pid=812 uid=0 auid=4294967295 ses=4294967295 \
              subj=unconfined msg='op=PAM:authentication grantors=? acct=\"alice\" \
              exe=\"/usr/sbin/sshd\" hostname=127.0.0.1 addr=127.0.0.1 terminal=ssh res=failed'",
        )
        .expect("parses");
        assert_eq!(
            r.stamp,
            Stamp {
                sec: 1_700_000_000,
                msec: 123,
                serial: 456
            }
        );
        assert_eq!(r.num("pid"), Some(812));
        assert_eq!(f(&r, "op"), b"PAM:authentication");
        assert_eq!(f(&r, "acct"), b"alice");
        assert_eq!(f(&r, "exe"), b"/usr/sbin/sshd");
        assert_eq!(f(&r, "addr"), b"127.0.0.1");
        assert_eq!(f(&r, "res"), b"failed");
        assert!(r.known("grantors").is_none());
        assert!(r.unparsed.is_empty());
    }

    #[test]
    fn hex_values_are_decoded_only_where_the_kernel_encodes() {
        let r = parse(
            1302,
            b"audit(1.002:3): item=0 name=2F746D702F6120622F0A inode=123 dev=08:01 mode=0100644 \
              ouid=0 nametype=NORMAL cap_fp=0",
        )
        .expect("parses");
        assert_eq!(f(&r, "name"), b"/tmp/a b/\n");
        assert_eq!(r.fields[1].encoding, Encoding::Hex);
        // Not a hex-encoding field: kept as written even if it looks like hex.
        assert_eq!(f(&r, "inode"), b"123");
        assert_eq!(f(&r, "cap_fp"), b"0");
    }

    #[test]
    fn execve_chunks_and_odd_values() {
        let r = parse(
            1309,
            b"audit(1.002:3): argc=3 a0=\"ls\" a1_len=4 a1[0]=41FF a1[1]=\"cd\" a2=(null)",
        )
        .expect("parses");
        assert_eq!(f(&r, "a0"), b"ls");
        assert_eq!(f(&r, "a1[0]"), b"A\xff");
        assert_eq!(f(&r, "a1[1]"), b"cd");
        assert_eq!(f(&r, "a1_len"), b"4");
        assert_eq!(f(&r, "a2"), b"(null)");
        let r = parse(
            1300,
            b"audit(1.002:3): arch=c000003e syscall=321 a0=5 a1=7ffd1a180b98 a2=98",
        )
        .expect("parses");
        assert_eq!(
            f(&r, "a2"),
            b"98",
            "SYSCALL arguments are numbers, not hex strings"
        );
        let r = parse(
            1305,
            b"audit(1.002:3): op=set audit_backlog_limit=8192 old=64",
        )
        .expect("parses");
        assert_eq!(f(&r, "old"), b"64");
    }

    #[test]
    fn log_lines_with_node_and_enrichment() {
        let r = parse_log_line(
            b"node=web1 type=USER_LOGIN msg=audit(1700000001.5:9): pid=1 uid=0 msg='op=login id=1000 res=success'\x1dUID=\"root\"\n",
        )
        .expect("parses");
        assert_eq!(r.kind, 1112);
        assert_eq!(r.stamp.msec, 5);
        assert_eq!(f(&r, "id"), b"1000");
        assert_eq!(f(&r, "res"), b"success");
        assert!(r.get("UID").is_none());
        let r = parse_log_line(b"type=UNKNOWN[1999] msg=audit(1.0:2): x=y")
            .expect("unknown type by number");
        assert_eq!(r.kind, 1999);
        assert_eq!(r.type_name(), "UNKNOWN[1999]");
    }

    #[test]
    fn words_without_equals_are_kept() {
        let r = parse(
            1400,
            b"audit(1.0:2): avc:  denied  { read } for  pid=3 comm=\"cat\"",
        )
        .expect("parses");
        assert_eq!(r.unparsed, b"avc: denied { read } for");
        assert_eq!(f(&r, "comm"), b"cat");
    }

    #[test]
    fn malformed_input_is_an_error_or_a_record_never_a_panic() {
        assert_eq!(parse(1100, b"no stamp").unwrap_err(), ParseError::NoStamp);
        assert_eq!(
            parse(1100, b"audit(1.x:2): a=b").unwrap_err(),
            ParseError::NoStamp
        );
        assert!(matches!(
            parse(1100, &vec![b'a'; MAX_RECORD + 1]),
            Err(ParseError::TooLarge(..))
        ));
        let nasty: &[&[u8]] = &[
            b"audit(1.0:2): msg='unterminated",
            b"audit(1.0:2): a=\"unterminated",
            b"audit(1.0:2): =x ==y a= b==",
            b"audit(1.0:2): name=ABC name=abcd a0=0 a1[=41 a1[]=41",
            b"audit(1.0:2): msg='msg='msg='a=b'''",
            b"audit(18446744073709551615.4294967295:18446744073709551615):",
            b"audit(1.0:2)\xff\xfe: k=\xff",
        ];
        for n in nasty {
            let _ = parse(1100, n);
            let _ = parse_log_line(n);
        }
        let r = parse(1302, b"audit(1.0:2): name=ABC").expect("odd-length hex stays as is");
        assert_eq!(f(&r, "name"), b"ABC");
    }
}
