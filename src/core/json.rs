//! A small JSON object builder for the bodies this service produces, over `serde_json`.
//!
//! Responses are built once as strings and then reused as they are: the same bytes are
//! returned, stored for idempotent replay and broadcast, so member order is the call order and
//! fixed. The builder keeps only the object shell; every member's value is written by
//! `serde_json` (its string escaping, `itoa` for integers). `cargo run --release --example
//! json_bench` measures it against `serde` derive on the hot path's bodies (same bytes): the
//! builder is as fast as derive or faster (BENCHMARKS.md), while its first, hand-written
//! version (integers through `core::fmt`, strings escaped char by char) was 2.5–2.8× slower
//! than derive. One builder serves the fixed-shape bodies and those whose members vary (log
//! lines, health, metrics) alike.

use serde::Serialize;

/// Writes one flat JSON object, member by member, in call order.
pub struct JsonWriter {
    out: Vec<u8>,
    first: bool,
}

impl JsonWriter {
    /// Starts `{`.
    pub fn object() -> Self {
        Self::object_with_capacity(128)
    }

    /// Starts `{` with room for `capacity` bytes.
    pub fn object_with_capacity(capacity: usize) -> Self {
        let mut out = Vec::with_capacity(capacity);
        out.push(b'{');
        JsonWriter { out, first: true }
    }

    fn key(&mut self, key: &str) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.put(key);
        self.out.push(b':');
    }

    /// Appends `value` as JSON. Writing a string, an integer or a bool into a `Vec` cannot
    /// fail, so the result is ignored.
    fn put<T: Serialize + ?Sized>(&mut self, value: &T) {
        let _ = serde_json::to_writer(&mut self.out, value);
    }

    /// `"key":"value"`, escaped.
    pub fn string(&mut self, key: &str, value: &str) -> &mut Self {
        self.key(key);
        self.put(value);
        self
    }

    /// `"key":"value"` or `"key":null`.
    pub fn opt_string(&mut self, key: &str, value: Option<&str>) -> &mut Self {
        self.key(key);
        self.put(&value);
        self
    }

    /// `"key":123`.
    pub fn uint(&mut self, key: &str, value: u64) -> &mut Self {
        self.key(key);
        self.put(&value);
        self
    }

    /// `"key":-123`.
    pub fn int(&mut self, key: &str, value: i64) -> &mut Self {
        self.key(key);
        self.put(&value);
        self
    }

    /// `"key":123` or `"key":null`.
    pub fn opt_uint(&mut self, key: &str, value: Option<u64>) -> &mut Self {
        self.key(key);
        self.put(&value);
        self
    }

    /// `"key":<json>`, where `json` is already valid JSON (a nested object or array this crate
    /// built itself).
    pub fn raw(&mut self, key: &str, json: &str) -> &mut Self {
        self.key(key);
        self.out.extend_from_slice(json.as_bytes());
        self
    }

    /// `"key":true|false`.
    pub fn bool(&mut self, key: &str, value: bool) -> &mut Self {
        self.key(key);
        self.put(&value);
        self
    }

    /// Closes the object and returns its text.
    pub fn finish(&mut self) -> String {
        self.out.push(b'}');
        // Only `serde_json` output and valid `&str`s were appended, so this is UTF-8.
        String::from_utf8(std::mem::take(&mut self.out)).unwrap_or_default()
    }
}

/// Appends `s` as a JSON string literal (RFC 8259 escaping, as `serde_json` writes it;
/// non-ASCII passes through as UTF-8).
pub fn push_string(out: &mut String, s: &str) {
    match serde_json::to_string(s) {
        Ok(quoted) => out.push_str(&quoted),
        Err(_) => out.push_str("\"\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_members_in_order_and_parses_back() {
        let s = JsonWriter::object()
            .uint("a", 1)
            .int("b", -2)
            .string("c", "x\"y\\z\n\u{1}é")
            .opt_string("d", None)
            .opt_uint("e", Some(5))
            .bool("f", true)
            .raw("g", "[1,2]")
            .finish();
        assert!(s.starts_with("{\"a\":1,\"b\":-2,"));
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["c"], "x\"y\\z\n\u{1}é");
        assert!(v["d"].is_null());
        assert_eq!(v["e"], 5);
        assert_eq!(v["f"], true);
        assert_eq!(v["g"][1], 2);
    }

    #[test]
    fn empty_object() {
        assert_eq!(JsonWriter::object().finish(), "{}");
    }
}
