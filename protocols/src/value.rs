//! [`Value`]: a key's value, shared rather than copied.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

/// A value: an immutable string shared by every copy (a message, a replica, a log entry,
/// the history), so that a copy costs a counter increment, not an allocation. It compares,
/// orders, hashes, prints and serialises exactly as the `String` it holds, so digests,
/// fingerprints and files are those of a `String`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Value(Arc<str>);

impl Value {
    /// The value's text.
    #[inline]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// This value with `tail` appended (append's meaning): a new value.
    pub fn appended(&self, tail: &str) -> Value {
        let mut s = String::with_capacity(self.0.len() + tail.len());
        s.push_str(&self.0);
        s.push_str(tail);
        Value::from(s)
    }
}

impl Default for Value {
    fn default() -> Self {
        Value::from("")
    }
}

impl Deref for Value {
    type Target = str;
    #[inline]
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Value {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Value {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// As `String` hashes: the text's bytes, then `0xff` (`str`'s `Hash`).
impl Hash for Value {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value(Arc::from(s))
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value(Arc::from(s))
    }
}

impl From<&String> for Value {
    fn from(s: &String) -> Value {
        Value(Arc::from(s.as_str()))
    }
}

impl From<Value> for String {
    fn from(v: Value) -> String {
        v.as_str().to_string()
    }
}

impl PartialEq<str> for Value {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Value {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Value {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq<Value> for str {
    fn eq(&self, other: &Value) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<Value> for &str {
    fn eq(&self, other: &Value) -> bool {
        *self == other.as_str()
    }
}

impl PartialEq<Value> for String {
    fn eq(&self, other: &Value) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
        String::deserialize(deserializer).map(Value::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::StableHasher;

    /// A value is a `String` to every reader: digests and fingerprints hash it alike, and
    /// it prints, serialises and orders alike, so runs, traces and files do not move.
    #[test]
    fn a_value_hashes_prints_serialises_and_orders_as_its_string() {
        for text in ["", "c1.2", "a;b;", "quote \" and \u{e9}"] {
            let v = Value::from(text);
            let s = text.to_string();
            assert_eq!(StableHasher::hash_of(&v), StableHasher::hash_of(&s));
            assert_eq!(format!("{v:?}"), format!("{s:?}"));
            assert_eq!(v.to_string(), s);
            let json = serde_json::to_string(&v).unwrap();
            assert_eq!(json, serde_json::to_string(&s).unwrap());
            assert_eq!(serde_json::from_str::<Value>(&json).unwrap(), v);
            assert_eq!(v, s);
        }
        let mut sorted: Vec<Value> = ["b", "ab", "a"].map(Value::from).into();
        sorted.sort();
        assert_eq!(sorted, ["a", "ab", "b"]);
        assert_ne!(
            StableHasher::hash_of(&(Value::from("ab"), Value::from("c"))),
            StableHasher::hash_of(&(Value::from("a"), Value::from("bc")))
        );
    }

    #[test]
    fn appending_makes_a_new_value_and_leaves_the_old_one() {
        let a = Value::from("x;");
        let copy = a.clone();
        let b = a.appended("y;");
        assert_eq!(
            (a.as_str(), copy.as_str(), b.as_str()),
            ("x;", "x;", "x;y;")
        );
    }
}
