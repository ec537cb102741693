//! What a relay tells: its refusals to the counter, and its line in the admin view.

use super::feed::Feed;
use crate::core::json::JsonWriter;

/// The report a relay sends the counter on its upstream socket: browser sockets it refused
/// (429, the per-client cap) since its last report, so that the counter's
/// `acidizer_rate_limited_total{limit="sockets"}` counts every refusal, wherever it happened.
pub fn report_message(refused_sockets: u64) -> String {
    JsonWriter::object_with_capacity(48)
        .string("type", "report")
        .uint("refused_sockets", refused_sockets)
        .finish()
}

/// The most refusals one report may carry; a larger number is not a relay's report.
pub const MAX_REPORTED: u64 = 1 << 32;

/// Reads a relay's report ([`report_message`]): the refused sockets it carries. `None` for
/// anything else, including a report with another member or a number out of range.
///
/// Only the relays write reports, always in exactly [`report_message`]'s bytes, so this
/// matches those bytes: any other spelling of the same JSON is not a relay's report.
pub fn parse_report(text: &str) -> Option<u64> {
    let digits = text.strip_prefix(REPORT_PREFIX)?.strip_suffix('}')?;
    let canonical = !digits.is_empty()
        && digits.len() <= 10
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    let n: u64 = digits.parse().ok().filter(|_| canonical)?;
    (n <= MAX_REPORTED).then_some(n)
}

const REPORT_PREFIX: &str = r#"{"type":"report","refused_sockets":"#;

/// A relay's line in the admin view: `{"relay","sockets","streams","version","upstream","lag",
/// "memory","pending"}`; `sockets` counts every browser connection (WebSockets and event
/// streams, as the caps do), `streams` the event streams among them; `lag` is how many
/// versions it is behind `counter`.
pub fn stats_json(
    relay: &str,
    (sockets, streams): (usize, usize),
    feed: &Feed,
    upstream: bool,
    counter: u64,
) -> String {
    let version = feed.since();
    let (memory, pending) = feed.sizes();
    JsonWriter::object()
        .string("relay", relay)
        .uint("sockets", (sockets + streams) as u64)
        .uint("streams", streams as u64)
        .opt_uint("version", version)
        .bool("upstream", upstream)
        .opt_uint("lag", version.map(|v| counter.saturating_sub(v)))
        .uint("memory", memory as u64)
        .uint("pending", pending as u64)
        .finish()
}

/// A JSON array of strings that need no escaping (relay names).
pub fn name_list(names: &[String]) -> String {
    let mut out = String::from("[");
    for (i, n) in names.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        crate::core::json::push_string(&mut out, n);
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::k;
    use super::*;

    #[test]
    fn a_relay_report_is_read_back_and_nothing_else_is_one() {
        assert_eq!(
            report_message(3),
            r#"{"type":"report","refused_sockets":3}"#
        );
        assert_eq!(parse_report(&report_message(3)), Some(3));
        assert_eq!(parse_report(&report_message(0)), Some(0));
        assert_eq!(
            parse_report(&report_message(MAX_REPORTED)),
            Some(MAX_REPORTED)
        );
        for not in [
            "ping",
            "",
            r#"{"type":"report"}"#,
            r#"{"type":"report","refused_sockets":-1}"#,
            r#"{"type":"report","refused_sockets":1.5}"#,
            r#"{"type":"report","refused_sockets":"1"}"#,
            r#"{"type":"report","refused_sockets":4294967297}"#,
            r#"{"type":"report","refused_sockets":1,"x":2}"#,
            r#"{"type":"report","refused_sockets":1,"refused_sockets":2}"#,
            r#"{"type":"update","refused_sockets":1}"#,
            r#" {"type":"report","refused_sockets":1}"#,
            r#"{"type":"report","refused_sockets":1}trailing"#,
            r#"{"type":"report","refused_sockets":01}"#,
            r#"{"type":"report", "refused_sockets":1}"#,
            r#"{"refused_sockets":1,"type":"report"}"#,
        ] {
            assert_eq!(parse_report(not), None, "{not}");
        }
        let long = format!(
            r#"{{"type":"report","refused_sockets":1{}}}"#,
            " ".repeat(200)
        );
        assert_eq!(parse_report(&long), None);
    }

    #[test]
    fn admin_lines() {
        let mut f = Feed::new();
        let line = stats_json("enam-1", (3, 0), &f, false, 9);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["version"], serde_json::Value::Null);
        assert_eq!(v["lag"], serde_json::Value::Null);
        f.on_snapshot(k(7));
        let v: serde_json::Value =
            serde_json::from_str(&stats_json("enam-1", (3, 2), &f, true, 9)).unwrap();
        assert_eq!(v["lag"], 2);
        assert_eq!(v["sockets"], 5);
        assert_eq!(v["streams"], 2);
        assert_eq!(
            name_list(&["enam-0".into(), "oc-3".into()]),
            "[\"enam-0\",\"oc-3\"]"
        );
    }
}
