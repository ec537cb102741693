//! A tiny JSON object writer for the bodies this service produces.
//!
//! Responses are built once as strings and then reused as they are: the same bytes are
//! returned, stored for idempotent replay and broadcast. Writing them directly (instead of
//! building a `serde_json::Value` and serializing it) keeps the hot path free of intermediate
//! allocations and makes the member order fixed, which the byte-for-byte replay relies on.

use std::fmt::Write;

/// Writes one flat JSON object, member by member, in call order.
pub struct JsonWriter {
    out: String,
    first: bool,
}

impl JsonWriter {
    /// Starts `{`.
    pub fn object() -> Self {
        Self::object_with_capacity(128)
    }

    /// Starts `{` with room for `capacity` bytes.
    pub fn object_with_capacity(capacity: usize) -> Self {
        let mut out = String::with_capacity(capacity);
        out.push('{');
        JsonWriter { out, first: true }
    }

    fn key(&mut self, key: &str) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        push_string(&mut self.out, key);
        self.out.push(':');
    }

    /// `"key":"value"`, escaped.
    pub fn string(&mut self, key: &str, value: &str) -> &mut Self {
        self.key(key);
        push_string(&mut self.out, value);
        self
    }

    /// `"key":"value"` or `"key":null`.
    pub fn opt_string(&mut self, key: &str, value: Option<&str>) -> &mut Self {
        match value {
            Some(v) => self.string(key, v),
            None => self.raw(key, "null"),
        }
    }

    /// `"key":123`.
    pub fn uint(&mut self, key: &str, value: u64) -> &mut Self {
        self.key(key);
        let _ = write!(self.out, "{value}");
        self
    }

    /// `"key":-123`.
    pub fn int(&mut self, key: &str, value: i64) -> &mut Self {
        self.key(key);
        let _ = write!(self.out, "{value}");
        self
    }

    /// `"key":123` or `"key":null`.
    pub fn opt_uint(&mut self, key: &str, value: Option<u64>) -> &mut Self {
        match value {
            Some(v) => self.uint(key, v),
            None => self.raw(key, "null"),
        }
    }

    /// `"key":<json>`, where `json` is already valid JSON (a nested object or array this crate
    /// built itself).
    pub fn raw(&mut self, key: &str, json: &str) -> &mut Self {
        self.key(key);
        self.out.push_str(json);
        self
    }

    /// `"key":true|false`.
    pub fn bool(&mut self, key: &str, value: bool) -> &mut Self {
        self.raw(key, if value { "true" } else { "false" })
    }

    /// Closes the object and returns its text.
    pub fn finish(&mut self) -> String {
        self.out.push('}');
        std::mem::take(&mut self.out)
    }
}

/// Appends `s` as a JSON string literal (RFC 8259 escaping; non-ASCII passes through as UTF-8).
pub fn push_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
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
