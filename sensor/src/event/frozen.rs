//! Parts of an event that many events share, serialized once.
//!
//! Half of a typical event's JSON is context that does not change from
//! one event to the next: the host, the agent, the parent process and the
//! ancestors. Serializing it again for every event was the largest single
//! cost of the daemon at 100k events/s (JSON string escaping and the small
//! copies around it), so such parts are held as [`Frozen`]: the value, for
//! the code that reads it, and its JSON, which is written as is.

use std::ops::Deref;
use std::sync::Arc;

use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

/// A value and its JSON, made once.
#[derive(Debug)]
pub struct Frozen<T> {
    value: T,
    /// None when longer than the cap it was made with: then the value is
    /// serialized each time.
    json: Option<Box<RawValue>>,
}

impl<T: Serialize> Frozen<T> {
    pub fn new(value: T) -> Frozen<T> {
        Frozen::capped(value, usize::MAX)
    }

    /// Keeps the JSON only if it is at most `max` bytes long.
    pub fn capped(value: T, max: usize) -> Frozen<T> {
        // The event types serialize without error (no maps with non-string
        // keys, no fallible impls); should one ever fail, the field is
        // written as null and the failure logged, never a panic.
        let json = match serde_json::value::to_raw_value(&value) {
            Ok(json) => (json.get().len() <= max).then_some(json),
            Err(e) => {
                tracing::error!("cannot serialize a shared event part: {e}");
                Some(RawValue::NULL.to_owned())
            }
        };
        Frozen { value, json }
    }
}

impl<T> Deref for Frozen<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: Serialize> Serialize for Frozen<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.json {
            Some(json) => json.serialize(s),
            None => self.value.serialize(s),
        }
    }
}

/// A [`Frozen`] value behind a shared pointer: the strings every event of
/// a process carries (its name, executable, arguments and working
/// directory) and the user and group names. The process table and the
/// names cache hold them; an event takes a reference, not a copy, and
/// writes the JSON made when the value was recorded (copying and escaping
/// them again for every event was a third of the daemon's time per event
/// at 100k events/s). Compares by value.
///
/// The JSON is kept only up to [`SHARED_JSON_MAX`] bytes: control bytes
/// escape to six times their size, so a long argv of them, which anyone
/// can exec, would otherwise cost up to seven times its size in the
/// process table. Longer values are serialized per event, as before.
#[derive(Debug)]
pub struct Shared<T>(Arc<Frozen<T>>);

/// The longest JSON a [`Shared`] keeps (typical argv fit many times over).
pub const SHARED_JSON_MAX: usize = 1024;

impl<T: Serialize> Shared<T> {
    pub fn new(value: T) -> Shared<T> {
        Shared(Arc::new(Frozen::capped(value, SHARED_JSON_MAX)))
    }
}

impl<T: Serialize> From<T> for Shared<T> {
    fn from(value: T) -> Shared<T> {
        Shared::new(value)
    }
}

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Shared<T> {
        Shared(Arc::clone(&self.0))
    }
}

impl<T> Deref for Shared<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0.value
    }
}

impl<T: Serialize> Serialize for Shared<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<T: PartialEq> PartialEq for Shared<T> {
    fn eq(&self, other: &Shared<T>) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || **self == **other
    }
}

impl<T: Eq> Eq for Shared<T> {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Text;

    #[derive(Serialize)]
    struct Part {
        name: Text,
        n: u32,
    }

    #[test]
    fn writes_the_same_json_as_the_value() {
        let part = Part {
            name: Text(b"a\"b\\c\xff".to_vec()),
            n: 7,
        };
        let direct = serde_json::to_string(&part).unwrap();
        let frozen = Frozen::new(part);
        assert_eq!(serde_json::to_string(&frozen).unwrap(), direct);
        assert_eq!(frozen.n, 7);
        // Inside another value, and through serde_json::Value.
        let outer = serde_json::json!({ "x": serde_json::to_value(&frozen).unwrap() });
        assert_eq!(outer["x"]["n"], 7);
        assert_eq!(outer["x"]["name"], "a\"b\\\\c\\xff");
    }

    #[test]
    fn shared_writes_the_value_json_and_compares_by_value() {
        let args = vec![Text::from("sh"), Text(b"-c\x01\xff".to_vec())];
        let direct = serde_json::to_string(&args).unwrap();
        let a = Shared::new(args.clone());
        let b = a.clone();
        assert_eq!(serde_json::to_string(&b).unwrap(), direct);
        assert_eq!(a.len(), 2);
        assert_eq!(a, Shared::new(args));
        assert_ne!(a, Shared::new(vec![Text::from("sh")]));
        // Past the cap the JSON is not kept, and the output is the same.
        let long = vec![Text(vec![1; SHARED_JSON_MAX])];
        let direct = serde_json::to_string(&long).unwrap();
        let shared = Shared::new(long);
        assert!(shared.0.json.is_none());
        assert_eq!(serde_json::to_string(&shared).unwrap(), direct);
    }
}
