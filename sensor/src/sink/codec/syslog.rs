//! Syslog messages whose text is the event's JSON: RFC 5424 (with the
//! sequence number as structured data) and the older BSD format of
//! RFC 3164 for receivers that know nothing else. Framing for streams
//! (RFC 6587 octet counting) is the transport's business.
//!
//! Hand-written rather than a crate: the formats are a few lines each, and
//! the crates format their own timestamps and escape the message in ways
//! that would change the JSON.

use std::io::Write as _;

use super::Header;
use crate::config::sinks::SyslogFormat;

/// The RFC 5424 SD-ID for our parameters: `name@PEN` is the form for
/// private SD-IDs; 32473 is the documentation PEN of RFC 5612 until the
/// project registers its own.
pub const SD_ID: &str = "sensor@32473";

#[derive(Debug, Clone)]
pub struct SyslogCodec {
    pub format: SyslogFormat,
    pub facility: u8,
    pub app_name: String,
    pub pid: u32,
    /// Bytes a message may have (without framing); longer events are
    /// shortened to fit (see [`super::shrink`]).
    pub max_message_bytes: Option<usize>,
}

/// What [`SyslogCodec::encode`] made of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoded {
    Whole,
    /// Shortened to the message limit; `sensor.truncated` says what was cut.
    Truncated,
    /// Not even a shortened copy fits: nothing was written.
    TooLarge,
}

impl SyslogCodec {
    /// Appends one message (without framing) to `out`, shortening the
    /// event if the message would exceed `max_message_bytes`.
    pub fn encode(&self, out: &mut Vec<u8>, h: &Header<'_>, json: &[u8]) -> Encoded {
        let start = out.len();
        self.header(out, h);
        let head = out.len() - start;
        match self.max_message_bytes {
            Some(max) if head + json.len() > max => {
                match super::shrink::shrink(json, max.saturating_sub(head)) {
                    Some(short) => {
                        out.extend_from_slice(&short);
                        Encoded::Truncated
                    }
                    None => {
                        out.truncate(start);
                        Encoded::TooLarge
                    }
                }
            }
            _ => {
                out.extend_from_slice(json);
                Encoded::Whole
            }
        }
    }

    fn header(&self, out: &mut Vec<u8>, h: &Header<'_>) {
        let pri = u32::from(self.facility) * 8 + u32::from(h.severity);
        // Writing into a Vec cannot fail.
        match self.format {
            SyslogFormat::Rfc5424 => {
                let _ = write!(
                    out,
                    "<{pri}>1 {} {} {} {} {} [{SD_ID} sequence=\"{}\"] ",
                    rfc5424_time(h.timestamp),
                    field(h.host, 255),
                    self.app_name,
                    self.pid,
                    field(h.action, 32),
                    h.sequence,
                );
                // No BOM: RFC 5424 makes it optional, and rsyslog and most
                // collectors would keep it as part of the JSON text.
            }
            SyslogFormat::Rfc3164 => {
                let _ = write!(
                    out,
                    "<{pri}>{} {} {}[{}]: ",
                    rfc3164_time(h.timestamp),
                    field(h.host, 255),
                    self.app_name,
                    self.pid
                );
            }
        }
    }
}

/// A header field: printable ASCII without spaces, at most `max` bytes,
/// `-` (NILVALUE) when empty.
fn field(s: &str, max: usize) -> std::borrow::Cow<'_, str> {
    let ok = !s.is_empty() && s.len() <= max && s.bytes().all(|b| (33..=126).contains(&b));
    if ok {
        return s.into();
    }
    let cleaned: String = s
        .bytes()
        .filter(|b| (33..=126).contains(b))
        .take(max)
        .map(char::from)
        .collect();
    if cleaned.is_empty() {
        "-".into()
    } else {
        cleaned.into()
    }
}

/// RFC 5424 allows at most six fractional digits: cut the nanoseconds.
fn rfc5424_time(ts: &str) -> std::borrow::Cow<'_, str> {
    match ts.find('.') {
        Some(dot) if ts.len() > dot + 8 && ts.ends_with('Z') => {
            format!("{}Z", &ts[..dot + 7]).into()
        }
        _ => ts.into(),
    }
}

/// `Mmm dd hh:mm:ss` from RFC 3339 (`2026-11-23T11:19:03.123Z`).
fn rfc3164_time(ts: &str) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = ts
        .get(5..7)
        .and_then(|m| m.parse::<usize>().ok())
        .filter(|m| (1..=12).contains(m));
    let day = ts.get(8..10).and_then(|d| d.parse::<u32>().ok());
    match (month, day, ts.get(11..19)) {
        (Some(m), Some(d), Some(time)) => format!("{} {d:>2} {time}", MONTHS[m - 1]),
        _ => "Jan  1 00:00:00".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header<'static> {
        Header {
            sequence: 42,
            timestamp: "2026-11-03T09:08:07.123456789Z",
            host: "web-1",
            action: "exec",
            severity: 6,
            id: "x-42",
        }
    }

    #[test]
    fn rfc5424_carries_sequence_as_structured_data_and_json_as_message() {
        let c = SyslogCodec {
            format: SyslogFormat::Rfc5424,
            facility: 10,
            app_name: "sensor".into(),
            pid: 7,
            max_message_bytes: None,
        };
        let mut out = Vec::new();
        c.encode(&mut out, &header(), br#"{"a":1}"#);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"<86>1 2026-11-03T09:08:07.123456Z web-1 sensor 7 exec [sensor@32473 sequence="42"] {"a":1}"#
        );
    }

    #[test]
    fn rfc3164_has_the_bsd_header() {
        let c = SyslogCodec {
            format: SyslogFormat::Rfc3164,
            facility: 4,
            app_name: "sensor".into(),
            pid: 7,
            max_message_bytes: None,
        };
        let mut out = Vec::new();
        c.encode(&mut out, &header(), b"{}");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "<38>Nov  3 09:08:07 web-1 sensor[7]: {}"
        );
    }

    #[test]
    fn a_message_over_the_limit_is_shortened_or_refused() {
        let c = SyslogCodec {
            format: SyslogFormat::Rfc5424,
            facility: 10,
            app_name: "sensor".into(),
            pid: 7,
            max_message_bytes: Some(2048),
        };
        let small = br#"{"a":1}"#;
        let mut out = Vec::new();
        assert_eq!(c.encode(&mut out, &header(), small), Encoded::Whole);
        assert!(out.ends_with(small));

        let big = format!(
            r#"{{"event":{{"sequence":42}},"process":{{"args":["{}"]}}}}"#,
            "\\u0001".repeat(5000)
        );
        let mut out = b"kept".to_vec();
        assert_eq!(
            c.encode(&mut out, &header(), big.as_bytes()),
            Encoded::Truncated
        );
        assert!(out.len() - 4 <= 2048, "{}", out.len());
        let text = String::from_utf8(out).unwrap();
        let json = text.split_once("] ").unwrap().1;
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(v["sensor"]["truncated"]["fields"][0], "process.args");
        assert!(
            text.starts_with("kept<86>1 "),
            "appends after what `out` held: {text:.20}"
        );

        let tight = SyslogCodec {
            max_message_bytes: Some(80),
            ..c
        };
        let mut out = b"kept".to_vec();
        assert_eq!(
            tight.encode(&mut out, &header(), big.as_bytes()),
            Encoded::TooLarge
        );
        assert_eq!(out, b"kept", "nothing written");
    }

    #[test]
    fn header_fields_are_made_printable() {
        assert_eq!(field("", 32), "-");
        assert_eq!(field("a b", 32), "ab");
        assert_eq!(field(&"x".repeat(40), 32).len(), 32);
    }
}
