//! Untrusted bytes (paths, argv, comm) as JSON strings, byte-exact.
//!
//! Valid UTF-8 is emitted unchanged. Anything else is escaped reversibly:
//! each byte of an invalid sequence becomes `\xNN` and each literal
//! backslash becomes `\\`, so the original bytes can always be recovered;
//! the event lists such fields in `sensor.escaped` so a consumer knows
//! which values to unescape. Nothing is ever dropped or replaced with U+FFFD.

use std::fmt::Write as _;

use serde::{Serialize, Serializer};

/// Bytes that came from an untrusted source.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Text(pub Vec<u8>);

impl Text {
    /// True when the JSON form is escaped rather than the bytes themselves.
    pub fn is_escaped(&self) -> bool {
        std::str::from_utf8(&self.0).is_err()
    }

    /// The JSON string form (see the module doc).
    pub fn to_json_string(&self) -> std::borrow::Cow<'_, str> {
        match std::str::from_utf8(&self.0) {
            Ok(s) => std::borrow::Cow::Borrowed(s),
            Err(_) => std::borrow::Cow::Owned(escape(&self.0)),
        }
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Self {
        Text(s.as_bytes().to_vec())
    }
}

impl Serialize for Text {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_json_string())
    }
}

fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 16);
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '\\' {
                out.push_str("\\\\");
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// Inverse of the escaping, for consumers and tests.
pub fn unescape(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut rest = s.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if b != b'\\' {
            out.push(b);
            rest = tail;
            continue;
        }
        match tail {
            [b'\\', t @ ..] => {
                out.push(b'\\');
                rest = t;
            }
            [b'x', h, l, t @ ..] => {
                let hex = std::str::from_utf8(&[*h, *l]).ok()?.to_owned();
                out.push(u8::from_str_radix(&hex, 16).ok()?);
                rest = t;
            }
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_utf8_is_unchanged_even_with_backslashes() {
        let t = Text::from("sed 's/\\./x/' é");
        assert!(!t.is_escaped());
        assert_eq!(t.to_json_string(), "sed 's/\\./x/' é");
    }

    #[test]
    fn invalid_utf8_is_escaped_reversibly() {
        let raw = b"a\\b\xff\xfe c\xc3".to_vec();
        let t = Text(raw.clone());
        assert!(t.is_escaped());
        let s = t.to_json_string();
        assert_eq!(s, "a\\\\b\\xff\\xfe c\\xc3");
        assert_eq!(unescape(&s).expect("unescapes"), raw);
    }

    #[test]
    fn every_byte_value_round_trips() {
        let raw: Vec<u8> = (0..=255u8).chain([0xff, b'\\', b'x', b'4']).collect();
        let s = Text(raw.clone()).to_json_string().into_owned();
        assert_eq!(unescape(&s).expect("unescapes"), raw);
    }
}
