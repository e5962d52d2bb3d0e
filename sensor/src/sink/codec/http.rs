//! Record shapes for HTTP collectors. Each record is one event, complete
//! with its line ending, so a request body is the records concatenated.

use std::io::Write as _;

use super::Header;
use crate::config::sinks::HttpFormat;

pub fn encode(out: &mut Vec<u8>, format: HttpFormat, index: &str, h: &Header<'_>, json: &[u8]) {
    match format {
        HttpFormat::Ndjson => {}
        HttpFormat::Elasticsearch => {
            // `create` with the event's id: a record sent again after an
            // outage (at-least-once) is refused as a duplicate (409) instead
            // of indexed twice.
            let _ = writeln!(
                out,
                "{{\"create\":{{\"_index\":{},\"_id\":{}}}}}",
                quoted(index),
                quoted(h.id)
            );
        }
        HttpFormat::SplunkHec => {
            let time = humantime::parse_rfc3339(h.timestamp)
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0.0, |d| d.as_secs_f64());
            let _ = write!(
                out,
                "{{\"time\":{time:.6},\"host\":{},\"source\":\"sensor\",\"sourcetype\":\"_json\",\"event\":",
                quoted(h.host)
            );
            out.extend_from_slice(json);
            out.extend_from_slice(b"}\n");
            return;
        }
    }
    out.extend_from_slice(json);
    out.push(b'\n');
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header<'static> {
        Header {
            sequence: 3,
            timestamp: "2026-11-03T09:08:07.5Z",
            host: "web-1",
            action: "exec",
            severity: 6,
            id: "ab-3",
        }
    }

    #[test]
    fn shapes() {
        let mut out = Vec::new();
        encode(&mut out, HttpFormat::Ndjson, "i", &header(), b"{\"a\":1}");
        assert_eq!(out, b"{\"a\":1}\n");
        out.clear();
        encode(
            &mut out,
            HttpFormat::Elasticsearch,
            "sensor-x",
            &header(),
            b"{\"a\":1}",
        );
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            "{\"create\":{\"_index\":\"sensor-x\",\"_id\":\"ab-3\"}}\n{\"a\":1}\n"
        );
        out.clear();
        encode(
            &mut out,
            HttpFormat::SplunkHec,
            "i",
            &header(),
            b"{\"a\":1}",
        );
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["event"]["a"], 1);
        assert_eq!(v["host"], "web-1");
        assert!(
            (v["time"].as_f64().unwrap() - 1793696887.5).abs() < 1e-3,
            "{v}"
        );
    }
}
