//! Fitting an event into a size-limited message.
//!
//! UDP carries at most 65,507 bytes, and many collectors accept less
//! (rsyslog: 8 KiB unless `maxMessageSize` says otherwise), while one exec
//! whose argv holds 32 KiB of control bytes serializes to about 190 KiB.
//! Sent whole, such a message fails at every retry and holds up every event
//! behind it, so an intruder could silence a sink with one command line.
//! Sinks with a message limit get a shortened copy instead: the longest
//! strings, then arrays and objects, are cut until the event fits, and
//! `sensor.truncated` says how big it was and which fields were cut. The
//! JSON-lines file keeps every event whole.

use serde_json::{Map, Value};

/// Strings are never cut below this many bytes: timestamps, ids and
/// hashes stay whole.
const STRING_FLOOR: usize = 64;
/// Objects keep at least this many members (ECS objects have fewer), so
/// only maps filled from outside (container labels) are cut.
const OBJECT_FLOOR: usize = 24;
/// Cut field names listed in `sensor.truncated.fields` at most.
const FIELDS_LISTED: usize = 16;

/// A copy of `json` (one JSON object) of at most `budget` bytes, with
/// `sensor.truncated` added; `None` when even the tightest cut does not fit
/// or `json` is not an object.
pub fn shrink(json: &[u8], budget: usize) -> Option<Vec<u8>> {
    let original: Value = serde_json::from_slice(json).ok()?;
    if !original.is_object() {
        return None;
    }
    let (longest_string, longest_list) = extremes(&original);
    let mut caps = Caps {
        string: longest_string,
        list: longest_list.max(1),
    };
    loop {
        // Tighten strings first (every argument keeps its start), then lists.
        if caps.string > STRING_FLOOR {
            caps.string = (caps.string / 2).max(STRING_FLOOR);
        } else if caps.list > 1 {
            caps.list /= 2;
        } else {
            return None;
        }
        let mut v = original.clone();
        let mut cut = Vec::new();
        caps.apply(&mut v, &mut String::new(), &mut cut);
        if cut.is_empty() {
            continue;
        }
        mark(&mut v, json.len(), cut);
        let out = serde_json::to_vec(&v).ok()?;
        if out.len() <= budget {
            return Some(out);
        }
    }
}

struct Caps {
    /// Bytes a string keeps at most.
    string: usize,
    /// Elements an array keeps at most (objects: at least `OBJECT_FLOOR`).
    list: usize,
}

impl Caps {
    /// Cuts `v` in place; `path` is its dotted name, `cut` collects the
    /// names of what was cut (each once).
    fn apply(&self, v: &mut Value, path: &mut String, cut: &mut Vec<String>) {
        let mut note = |path: &str| {
            if !cut.iter().any(|c| c == path) {
                cut.push(path.to_owned());
            }
        };
        match v {
            Value::String(s) if s.len() > self.string => {
                let mut end = self.string;
                while !s.is_char_boundary(end) {
                    end -= 1;
                }
                s.truncate(end);
                note(path);
            }
            Value::Array(items) => {
                if items.len() > self.list {
                    items.truncate(self.list);
                    note(path);
                }
                // Elements share their array's name.
                for item in items {
                    self.apply(item, path, cut);
                }
            }
            Value::Object(members) => {
                let keep = self.list.max(OBJECT_FLOOR);
                if members.len() > keep {
                    let kept: Map<String, Value> =
                        std::mem::take(members).into_iter().take(keep).collect();
                    *members = kept;
                    note(path);
                }
                for (key, member) in members.iter_mut() {
                    let len = path.len();
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(key);
                    self.apply(member, path, cut);
                    path.truncate(len);
                }
            }
            _ => {}
        }
    }
}

/// The longest string (bytes) and the longest array or object (members).
fn extremes(v: &Value) -> (usize, usize) {
    match v {
        Value::String(s) => (s.len(), 0),
        Value::Array(items) => items
            .iter()
            .map(extremes)
            .fold((0, items.len()), |a, b| (a.0.max(b.0), a.1.max(b.1))),
        Value::Object(m) => m
            .values()
            .map(extremes)
            .fold((0, m.len()), |a, b| (a.0.max(b.0), a.1.max(b.1))),
        _ => (0, 0),
    }
}

/// Adds `sensor.truncated = {original_bytes, fields}`.
fn mark(v: &mut Value, original_bytes: usize, mut cut: Vec<String>) {
    let Value::Object(root) = v else { return };
    cut.truncate(FIELDS_LISTED);
    let sensor = root
        .entry("sensor")
        .or_insert_with(|| Value::Object(Map::new()));
    if !sensor.is_object() {
        *sensor = Value::Object(Map::new());
    }
    if let Value::Object(s) = sensor {
        s.insert(
            "truncated".into(),
            serde_json::json!({ "original_bytes": original_bytes, "fields": cut }),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn exec_with_args(args: Vec<String>) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "@timestamp": "2026-12-01T16:46:01.154490123Z",
            "event": { "action": "exec", "sequence": 7, "id": "0123456789abcdef0123456789abcdef" },
            "process": { "pid": 42, "executable": "/usr/bin/true", "args": args },
            "sensor": { "kind": "ebpf" }
        }))
        .unwrap()
    }

    #[test]
    fn an_event_of_control_bytes_is_cut_to_fit_and_says_so() {
        let json = exec_with_args(vec!["/bin/true".into(), "\u{1}".repeat(30_000)]);
        assert!(json.len() > 150_000, "escaped: {}", json.len());
        let out = shrink(&json, 8192).expect("fits");
        assert!(out.len() <= 8192, "{}", out.len());
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["event"]["sequence"], 7);
        assert_eq!(v["event"]["id"], "0123456789abcdef0123456789abcdef");
        assert_eq!(v["@timestamp"], "2026-12-01T16:46:01.154490123Z");
        assert_eq!(v["process"]["executable"], "/usr/bin/true");
        assert_eq!(v["process"]["args"][0], "/bin/true");
        let kept = v["process"]["args"][1].as_str().unwrap();
        assert!(
            !kept.is_empty() && kept.bytes().all(|b| b == 1),
            "the argument's start is kept"
        );
        assert_eq!(v["sensor"]["kind"], "ebpf", "existing sensor fields stay");
        assert_eq!(v["sensor"]["truncated"]["original_bytes"], json.len());
        assert_eq!(v["sensor"]["truncated"]["fields"], json!(["process.args"]));
    }

    #[test]
    fn many_short_arguments_are_cut_by_count() {
        let json = exec_with_args((0..20_000).map(|i| format!("a{i}")).collect());
        let out = shrink(&json, 4096).expect("fits");
        assert!(out.len() <= 4096);
        let v: Value = serde_json::from_slice(&out).unwrap();
        let args = v["process"]["args"].as_array().unwrap();
        assert!(!args.is_empty() && args.len() < 20_000);
        assert_eq!(args[0], "a0", "arguments keep their order");
    }

    #[test]
    fn a_map_with_many_labels_is_cut_but_ecs_objects_are_not() {
        let labels: Map<String, Value> = (0..5_000)
            .map(|i| (format!("label{i:05}"), json!("v")))
            .collect();
        let json = serde_json::to_vec(&json!({
            "event": { "sequence": 1 },
            "container": { "id": "c1", "labels": labels },
        }))
        .unwrap();
        let out = shrink(&json, 4096).expect("fits");
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["container"]["id"], "c1");
        let kept = v["container"]["labels"].as_object().unwrap();
        assert!(
            (OBJECT_FLOOR..5_000).contains(&kept.len()),
            "{}",
            kept.len()
        );
        assert!(kept.contains_key("label00000"), "the first labels are kept");
        assert_eq!(
            v["sensor"]["truncated"]["fields"],
            json!(["container.labels"])
        );
    }

    #[test]
    fn utf8_is_cut_on_a_character_boundary() {
        let json = exec_with_args(vec!["é".repeat(50_000)]);
        let out = shrink(&json, 2048).expect("fits");
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert!(
            v["process"]["args"][0]
                .as_str()
                .unwrap()
                .chars()
                .all(|c| c == 'é')
        );
    }

    #[test]
    fn what_cannot_fit_is_refused() {
        let json = exec_with_args(vec!["x".repeat(10_000)]);
        assert_eq!(shrink(&json, 100), None);
        assert_eq!(shrink(b"[1,2,3]", 2), None, "not an object");
        assert_eq!(shrink(b"{not json", 10_000), None);
    }
}
