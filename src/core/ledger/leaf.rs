//! An audit entry as a leaf of the Merkle tree: its canonical JSON bytes (RFC 8785 — members
//! sorted by name, no white space), which are also its NDJSON export line, and reading such a
//! line back.
//!
//! With integers within ±(2^53 − 1) and RFC 8785's string escapes (which [`JsonWriter`] and
//! serde both write), the compact object with its members written in sorted order is exactly
//! that, without an intermediate value; a test holds it to serde's output of the same struct
//! and to a generic sort-and-print.

use serde::Deserialize;

use super::merkle::{self, Hash};
use super::tamper::Tamper;
use crate::core::audit::AuditEntry;
use crate::core::json::JsonWriter;
use crate::core::vocab::Operation;

/// The leaf form of an audit entry: the same seven facts, members in sorted order.
#[derive(Deserialize, Debug, PartialEq, Eq)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
struct Leaf<'a> {
    amount: i64,
    at: &'a str,
    operation: &'a str,
    previous_value: i64,
    request_id: &'a str,
    value: i64,
    version: u64,
}

/// The canonical JSON bytes of `e`: its Merkle leaf and its NDJSON export line.
pub fn leaf_bytes(e: &AuditEntry) -> Vec<u8> {
    JsonWriter::object_with_capacity(192)
        .int("amount", e.amount)
        .string("at", &e.at)
        .string("operation", e.operation.as_str())
        .int("previous_value", e.previous_value)
        .string("request_id", &e.request_id)
        .int("value", e.value)
        .uint("version", e.version)
        .finish()
        .into_bytes()
}

/// The leaf hash of `e`.
pub fn entry_hash(e: &AuditEntry) -> Hash {
    merkle::leaf_hash(&leaf_bytes(e))
}

/// Parses one export line (without its newline) into an entry, refusing anything but the
/// canonical bytes of an entry.
pub fn parse_line(line: &str, line_no: u64) -> Result<AuditEntry, Tamper> {
    let bad = |why: String| Tamper::NotCanonical { line: line_no, why };
    let leaf: Leaf = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
    let operation = Operation::parse(leaf.operation)
        .ok_or_else(|| bad(format!("unknown operation {:?}", leaf.operation)))?;
    let entry = AuditEntry {
        version: leaf.version,
        operation,
        amount: leaf.amount,
        previous_value: leaf.previous_value,
        value: leaf.value,
        request_id: leaf.request_id.to_owned(),
        at: leaf.at.to_owned(),
    };
    if leaf_bytes(&entry) != line.as_bytes() {
        return Err(bad(
            "members out of order, extra white space or escapes".into()
        ));
    }
    Ok(entry)
}

/// An entry as `GET /api/audit` renders it.
pub fn entry_from_json(v: &serde_json::Value) -> Option<AuditEntry> {
    Some(AuditEntry {
        version: v.get("version")?.as_u64()?,
        operation: Operation::parse(v.get("operation")?.as_str()?)?,
        amount: v.get("amount")?.as_i64()?,
        previous_value: v.get("previous_value")?.as_i64()?,
        value: v.get("value")?.as_i64()?,
        request_id: v.get("request_id")?.as_str()?.to_owned(),
        at: v.get("at")?.as_str()?.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ledger::fixtures::entry;

    #[test]
    fn leaf_bytes_are_sorted_compact_json() {
        let e = entry(3, Operation::Decrement, 2, -1, -3);
        let bytes = String::from_utf8(leaf_bytes(&e)).unwrap();
        assert_eq!(
            bytes,
            r#"{"amount":2,"at":"2026-11-29T20:00:00.000Z","operation":"decrement","previous_value":-1,"request_id":"key-3","value":-3,"version":3}"#
        );
        // The same as a generic canonicalization: parse, sort members, print compactly.
        let v: serde_json::Value = serde_json::from_str(&e.entry_json()).unwrap();
        let sorted: std::collections::BTreeMap<String, serde_json::Value> =
            serde_json::from_value(v).unwrap();
        assert_eq!(serde_json::to_string(&sorted).unwrap(), bytes);
        assert_eq!(parse_line(&bytes, 1), Ok(e));
    }

    #[test]
    fn non_canonical_lines_are_refused() {
        let good = String::from_utf8(leaf_bytes(&entry(1, Operation::Increment, 1, 0, 1))).unwrap();
        for bad in [
            good.replace(",\"at\"", ", \"at\""),
            good.replace(
                "{\"amount\":1,\"at\":\"2026-11-29T20:00:00.000Z\"",
                "{\"at\":\"2026-11-29T20:00:00.000Z\",\"amount\":1",
            ),
            good.replace("}", ",\"extra\":1}"),
            good.replace("\"amount\":1", "\"amount\":1.0"),
            good.replace("key-1", "key\\u002d1"),
            good.replace("increment", "explode"),
            format!("{good} "),
            "not json".into(),
        ] {
            assert!(
                matches!(
                    parse_line(&bad, 7),
                    Err(Tamper::NotCanonical { line: 7, .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn leaf_bytes_equal_serdes_output_for_any_text() {
        for text in [
            "plain",
            "q\"uote\\",
            "\u{8}\u{c}\n\r\t\u{1}\u{1f}",
            "é/ü€",
            "",
        ] {
            let mut e = entry(9, Operation::Set, -5, 7, -5);
            e.request_id = text.into();
            e.at = format!("{text}!");
            let leaf = Leaf {
                amount: e.amount,
                at: &e.at,
                operation: e.operation.as_str(),
                previous_value: e.previous_value,
                request_id: &e.request_id,
                value: e.value,
                version: e.version,
            };
            assert_eq!(
                String::from_utf8(leaf_bytes(&e)).unwrap(),
                serde_json::to_string(&leaf).unwrap(),
                "{text:?}"
            );
        }
    }
}
