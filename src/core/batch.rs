//! Many requests in one call to the counter object (group commit), and their answers.
//!
//! When the edge already has calls to the counter in flight, the reads and mutations that
//! arrive meanwhile wait and then travel together in one call. The object applies the
//! mutations of a batch in order, each exactly as if it had come alone, and answers every one
//! separately; the edge splits the answers so that each request gets its own response, byte
//! for byte the one it would have got alone.
//!
//! A batch is JSON, typed on both sides with serde: an array of [`Call`]s (only reads of the
//! value and mutations travel in batches, and the type says so), at most [`MAX_CALLS`] of them
//! in at most [`MAX_BYTES`]. The object decodes strictly: JSON of another shape, an unknown
//! member, a key outside the idempotency alphabet, a client that is not an address or an
//! operand beyond ±(2^53 − 1) refuses the whole call with a [`CallError`] that says which.
//!
//! The answer is a JSON array holding every request's [`Reply`], in order, checked as strictly
//! by the edge: the exact count, a status and media type the object sends, only the headers it
//! sends. Both travel as strings over the object's method `batch` (`edge/forward.rs`), so
//! neither side reads a body. Measured against the comma-separated URL and length-prefixed
//! framing this replaced: no slower within the noise in two A/B runs, changes at 64 connections
//! 2–9% faster, at 28 KB gzipped of module (BENCHMARKS.md, "Typed batches"). A call alone stays
//! a URL ([`super::wire`]).
//!
//! The file is past 600 lines only with its unit tests, which sit beside the code they check.

use serde::{Deserialize, Deserializer, Serialize};

use super::audit::AuditEntry;
use super::command::Mutation;
use super::problem::{Problem, PROBLEM_CONTENT_TYPE};
use super::state::Snapshot;
use super::vocab::MAX_VALUE;
use super::wire::{is_client_id, CallError, ObjectCall};

/// The most requests one call carries.
pub const MAX_CALLS: usize = 64;
/// The longest batch, in bytes of JSON (a long key makes a batch hold fewer requests).
pub const MAX_BYTES: usize = 8192;
/// `application/json`, the media type of every successful answer.
pub const JSON: &str = "application/json";

/// Calls to the counter one isolate keeps in flight by default when batching is on.
pub const DEFAULT_IN_FLIGHT: u32 = 2;
/// The most that `BATCH_MAX_IN_FLIGHT` may ask for.
pub const MAX_IN_FLIGHT: u32 = 64;

/// Parses `BATCH_MAX_IN_FLIGHT`: absent or empty is [`DEFAULT_IN_FLIGHT`]; `0` or `off` turns
/// batching off (every request is its own call, as without batching); otherwise 1 to
/// [`MAX_IN_FLIGHT`].
pub fn parse_in_flight(var: Option<&str>) -> Result<u32, String> {
    match var.map(str::trim) {
        None | Some("") => Ok(DEFAULT_IN_FLIGHT),
        Some(s) if s.eq_ignore_ascii_case("off") => Ok(0),
        Some(s) => s
            .parse::<u32>()
            .ok()
            .filter(|n| *n <= MAX_IN_FLIGHT)
            .ok_or_else(|| format!("expected off or an integer 0..={MAX_IN_FLIGHT}, got {s:?}")),
    }
}

/// Requests of one isolate waiting on the counter from which reads share calls, by default.
pub const DEFAULT_READS_FROM: u32 = 12;
/// The most that `BATCH_READS_FROM` may ask for.
pub const MAX_READS_FROM: u32 = 4096;

/// Parses `BATCH_READS_FROM`: absent or empty is [`DEFAULT_READS_FROM`]; `0`: reads always
/// share calls like changes; otherwise 1 to [`MAX_READS_FROM`].
pub fn parse_reads_from(var: Option<&str>) -> Result<u32, String> {
    super::setting::parse_setting(var, DEFAULT_READS_FROM, MAX_READS_FROM)
}

/// Whether reads share calls, given whether they did and `waiting`, the requests of the
/// isolate waiting on the counter: from `from` on, until fewer than half of it wait (so a
/// load near the mark does not switch at every request). `from` 0: always.
pub fn reads_share(sharing: bool, waiting: u32, from: u32) -> bool {
    if sharing {
        waiting >= from / 2
    } else {
        waiting >= from
    }
}

/// One request in a batch: a read of the value or a mutation, as JSON `"value"` or
/// `{"mutate":{"mutation":{"op":…,"operand":…,"key":…[,"if_match":…]},"client":…}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Call {
    /// Read the current value.
    Value,
    /// Apply one mutation exactly once; `client` identifies the caller for per-client limits.
    Mutate {
        mutation: Mutation,
        #[serde(deserialize_with = "client_id")]
        client: String,
    },
}

/// A client identifier, refused unless [`is_client_id`].
fn client_id<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    if is_client_id(&s) {
        Ok(s)
    } else {
        Err(serde::de::Error::custom(format!(
            "client {s:?} is not an address"
        )))
    }
}

impl Call {
    /// `call` as a batch's request, or `None` for calls that never travel in a batch (audit
    /// pages, sockets, health).
    pub fn of(call: &ObjectCall) -> Option<Call> {
        match call {
            ObjectCall::Value => Some(Call::Value),
            ObjectCall::Mutate { mutation, client } => Some(Call::Mutate {
                mutation: mutation.clone(),
                client: client.clone(),
            }),
            _ => None,
        }
    }

    /// What the type cannot say: an operand the edge could not have sent.
    fn check(&self) -> Result<(), CallError> {
        match self {
            Call::Value => Ok(()),
            Call::Mutate { mutation: m, .. } => {
                let versions_ok = match &m.if_match {
                    Some(super::command::IfMatch::Versions(vs)) => {
                        vs.iter().all(|v| *v <= MAX_VALUE as u64)
                    }
                    _ => true,
                };
                if m.operand.abs() > MAX_VALUE {
                    Err(CallError::Invalid(format!(
                        "operand {} beyond 2^53 - 1",
                        m.operand
                    )))
                } else if !versions_ok {
                    Err(CallError::Invalid("a version beyond 2^53 - 1".into()))
                } else {
                    Ok(())
                }
            }
        }
    }
}

/// The JSON of `call` in a batch, or `None` for calls that never travel in a batch (audit
/// pages, sockets, health).
pub fn item(call: &ObjectCall) -> Option<String> {
    // Serializing these types (strings, integers, unit variants) cannot fail.
    Call::of(call).and_then(|c| serde_json::to_string(&c).ok())
}

/// Builds a batch (a JSON array of [`item`]s), within [`MAX_CALLS`] and [`MAX_BYTES`].
#[derive(Debug)]
pub struct Builder {
    json: String,
    count: usize,
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

impl Builder {
    /// An empty batch.
    pub fn new() -> Self {
        let mut json = String::with_capacity(1024);
        json.push('[');
        Builder { json, count: 0 }
    }

    /// Whether `item` still fits.
    pub fn fits(&self, item: &str) -> bool {
        // The array so far, a comma and the item, then the closing bracket.
        self.count < MAX_CALLS && self.json.len() + 1 + item.len() < MAX_BYTES
    }

    /// Adds `item`; the caller checked [`Builder::fits`].
    pub fn push(&mut self, item: &str) {
        if self.count > 0 {
            self.json.push(',');
        }
        self.json.push_str(item);
        self.count += 1;
    }

    /// How many items it holds.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The batch's JSON.
    pub fn json(&self) -> String {
        let mut out = String::with_capacity(self.json.len() + 1);
        out.push_str(&self.json);
        out.push(']');
        out
    }
}

/// Decodes a batch into its calls. Strict: an empty or oversized batch, JSON of another shape
/// or any field that the edge could not have sent refuses the whole call, with its cause.
pub fn decode(json: &str) -> Result<Vec<Call>, CallError> {
    if json.len() > MAX_BYTES {
        return Err(CallError::Invalid(format!(
            "a batch of {} bytes, more than {MAX_BYTES}",
            json.len()
        )));
    }
    let calls: Vec<Call> = serde_json::from_str(json)?;
    if calls.is_empty() || calls.len() > MAX_CALLS {
        return Err(CallError::Invalid(format!(
            "a batch of {} calls, not 1 to {MAX_CALLS}",
            calls.len()
        )));
    }
    calls.iter().try_for_each(Call::check)?;
    Ok(calls)
}

/// What the object answers to one request: everything of the HTTP response that is not the
/// baseline every answer carries (`Cache-Control: no-store`, `X-Content-Type-Options`). As JSON:
/// `{"status":…,"content_type":…,"headers":[[name,value],…],"body":…}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reply {
    pub status: u16,
    pub content_type: Media,
    /// The other headers that matter: `etag`, `idempotent-replayed`, `retry-after`, …
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    /// `200 application/json` with `extra` headers.
    pub fn json(body: String, extra: &[(&str, &str)]) -> Reply {
        Reply {
            status: 200,
            content_type: Media::Json,
            headers: extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            body,
        }
    }

    /// The answer of a read: the value and its entity tag.
    pub fn value(s: &Snapshot) -> Reply {
        Reply::json(s.value_json(), &[("etag", &s.etag())])
    }

    /// The answer of a change that was just applied (`entry` committed).
    pub fn applied(entry: &AuditEntry) -> Reply {
        Reply::json(
            entry.response_json(),
            &[("etag", &format!("\"{}\"", entry.version))],
        )
    }

    /// The problem+json answer for `p`, with the headers its status needs.
    pub fn problem(p: &Problem) -> Reply {
        Reply {
            status: p.status(),
            content_type: Media::Problem,
            headers: p
                .headers()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
            body: p.to_json(),
        }
    }
}

/// The media type of a [`Reply`]: one of the two the object answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Media {
    /// `application/json`
    #[serde(rename = "application/json")]
    Json,
    /// `application/problem+json`
    #[serde(rename = "application/problem+json")]
    Problem,
}

impl Media {
    /// The media type's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Media::Json => JSON,
            Media::Problem => PROBLEM_CONTENT_TYPE,
        }
    }
}

impl Reply {
    /// What the type cannot say: a status, or a header, that the object never sends.
    fn check(&self) -> Result<(), CallError> {
        if !(200..=599).contains(&self.status) {
            return Err(CallError::Invalid(format!("status {}", self.status)));
        }
        if self.headers.len() > 8 {
            return Err(CallError::Invalid(format!(
                "{} headers in one reply",
                self.headers.len()
            )));
        }
        for (name, value) in &self.headers {
            if !matches!(
                name.as_str(),
                "etag" | "idempotent-replayed" | "retry-after" | "allow" | "www-authenticate"
            ) {
                return Err(CallError::Invalid(format!("header {name:?}")));
            }
            if value.bytes().any(|b| b.is_ascii_control()) {
                return Err(CallError::Invalid(format!("a control byte in {name}")));
            }
        }
        Ok(())
    }
}

/// The answer to a batch: every reply, in order, as JSON.
pub fn encode_replies(replies: &[Reply]) -> String {
    // Serializing strings and integers cannot fail.
    serde_json::to_string(replies).unwrap_or_default()
}

/// Reads a batch answer as exactly `expected` replies. Strict: anything else (a short or long
/// answer, a header the object never sends, JSON of another shape) is an error with its cause,
/// and the edge then sends the batch's requests one by one.
pub fn decode_replies(text: &str, expected: usize) -> Result<Vec<Reply>, CallError> {
    let replies: Vec<Reply> = serde_json::from_str(text)?;
    if replies.len() != expected {
        return Err(CallError::Invalid(format!(
            "{} replies to {expected} calls",
            replies.len()
        )));
    }
    replies.iter().try_for_each(Reply::check)?;
    Ok(replies)
}

/// Batch sizes in power-of-two buckets (`1`, `2-3`, `4-7`, … `64`), for `/api/health`: how
/// many calls the object received of each size since it started. Single calls count as 1.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SizeHistogram {
    counts: [u64; 7],
}

/// The labels of [`SizeHistogram`]'s buckets.
pub const BUCKETS: [&str; 7] = ["1", "2-3", "4-7", "8-15", "16-31", "32-63", "64"];

impl SizeHistogram {
    /// Counts one call that carried `n` requests.
    pub fn record(&mut self, n: usize) {
        let i = (usize::BITS - n.max(1).leading_zeros() - 1).min(6) as usize;
        self.counts[i] += 1;
    }

    /// `(label, calls)` per bucket.
    pub fn buckets(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        BUCKETS.iter().copied().zip(self.counts.iter().copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::command::{Amount, IfMatch};
    use crate::core::idempotency::RequestKey;
    use crate::core::vocab::Operation;

    /// Decodes and keeps only what a client would see of an error: [`Problem::Internal`].
    fn decoded(json: &str) -> Result<Vec<ObjectCall>, Problem> {
        decode(json)
            .map(|calls| {
                calls
                    .into_iter()
                    .map(|c| match c {
                        Call::Value => ObjectCall::Value,
                        Call::Mutate { mutation, client } => {
                            ObjectCall::Mutate { mutation, client }
                        }
                    })
                    .collect()
            })
            .map_err(|e| e.problem())
    }

    fn key(s: &str) -> RequestKey {
        RequestKey::parse(s, "Idempotency-Key").unwrap()
    }

    fn calls() -> Vec<ObjectCall> {
        vec![
            ObjectCall::Value,
            ObjectCall::Mutate {
                mutation: Mutation::step(
                    Operation::Increment,
                    Amount::new(3).unwrap(),
                    key("a.b_c:d-e"),
                    None,
                ),
                client: "2001:db8::1".into(),
            },
            ObjectCall::Mutate {
                mutation: Mutation::step(
                    Operation::Decrement,
                    Amount::new(1_000_000).unwrap(),
                    key("k"),
                    Some(IfMatch::Versions(vec![4, 5])),
                ),
                client: "unknown".into(),
            },
            ObjectCall::Mutate {
                mutation: Mutation {
                    op: Operation::Set,
                    operand: -9_007_199_254_740_991,
                    key: key("s"),
                    if_match: Some(IfMatch::Any),
                },
                client: "198.51.100.7".into(),
            },
            ObjectCall::Mutate {
                mutation: Mutation {
                    op: Operation::Reset,
                    operand: 0,
                    key: key("r"),
                    if_match: Some(IfMatch::Versions(vec![])),
                },
                client: "unknown".into(),
            },
            ObjectCall::Value,
        ]
    }

    #[test]
    fn a_batch_roundtrips() {
        let mut b = Builder::new();
        for c in calls() {
            let i = item(&c).unwrap();
            assert!(b.fits(&i));
            b.push(&i);
        }
        assert_eq!(b.len(), 6);
        assert_eq!(decoded(&b.json()), Ok(calls()));
    }

    #[test]
    fn only_values_and_mutations_travel_in_batches() {
        assert_eq!(item(&ObjectCall::Health), None);
        assert_eq!(
            item(&ObjectCall::Connect {
                since: None,
                client: "unknown".into()
            }),
            None
        );
    }

    #[test]
    fn limits_hold() {
        let mut b = Builder::new();
        let i = item(&calls()[1]).unwrap();
        while b.fits(&i) {
            b.push(&i);
        }
        assert_eq!(b.len(), MAX_CALLS);
        assert_eq!(decoded(&b.json()).map(|c| c.len()), Ok(MAX_CALLS));
        let one_more = format!("{},\"value\"]", b.json().trim_end_matches(']'));
        assert_eq!(decoded(&one_more), Err(Problem::Internal));

        let long = item(&ObjectCall::Mutate {
            mutation: Mutation::step(
                Operation::Increment,
                Amount::new(1).unwrap(),
                key(&"k".repeat(255)),
                None,
            ),
            client: "unknown".into(),
        })
        .unwrap();
        let mut b = Builder::new();
        while b.fits(&long) {
            b.push(&long);
        }
        assert!(b.len() < MAX_CALLS && b.len() > 20, "{}", b.len());
        assert!(b.json().len() <= MAX_BYTES);
        assert_eq!(decoded(&b.json()).map(|c| c.len()), Ok(b.len()));
    }

    #[test]
    fn anything_else_refuses_the_whole_batch() {
        let m = |fields: &str| format!(r#"[{{"mutate":{{{fields}}}}}]"#);
        let ok = r#""mutation":{"op":"increment","operand":1,"key":"k"},"client":"unknown""#;
        assert!(decode(&m(ok)).is_ok());
        for bad in [
            "".to_owned(),
            "[]".into(),
            "[\"value\",]".into(),
            "[\"value\"".into(),
            "[\"x\"]".into(),
            "[\"Value\"]".into(),
            "{\"value\":null}".into(),
            "v".into(),
            m(r#""mutation":{"op":"increment","operand":1,"key":"k"}"#),
            m(r#""mutation":{"op":"increment","operand":1,"key":"k"},"client":"unknown","x":1"#),
            m(r#""mutation":{"op":"increment","operand":1,"key":"k","x":1},"client":"unknown""#),
            m(r#""mutation":{"op":"explode","operand":1,"key":"k"},"client":"unknown""#),
            m(r#""mutation":{"op":"increment","operand":"1","key":"k"},"client":"unknown""#),
            m(r#""mutation":{"op":"increment","operand":1.5,"key":"k"},"client":"unknown""#),
            m(
                r#""mutation":{"op":"increment","operand":9007199254740992,"key":"k"},"client":"unknown""#,
            ),
            m(r#""mutation":{"op":"increment","operand":1,"key":"bad key"},"client":"unknown""#),
            m(r#""mutation":{"op":"increment","operand":1,"key":""},"client":"unknown""#),
            m(r#""mutation":{"op":"increment","operand":1,"key":"k"},"client":"<script>""#),
            m(
                r#""mutation":{"op":"increment","operand":1,"key":"k","if_match":"x"},"client":"unknown""#,
            ),
            m(
                r#""mutation":{"op":"increment","operand":1,"key":"k","if_match":{"versions":[-1]}},"client":"unknown""#,
            ),
            m(
                r#""mutation":{"op":"increment","operand":1,"key":"k","if_match":{"versions":[9007199254740992]}},"client":"unknown""#,
            ),
            "https://counter/batch?v".into(),
        ] {
            assert_eq!(decoded(&bad), Err(Problem::Internal), "{bad}");
        }
        let huge = format!("[{}]", ["\"value\""; 5000].join(","));
        assert_eq!(decoded(&huge), Err(Problem::Internal));
        // The cause is kept for the log.
        let e = decode(&m(
            r#""mutation":{"op":"explode","operand":1,"key":"k"},"client":"unknown""#,
        ))
        .unwrap_err();
        assert!(
            matches!(e, CallError::Json(_)) && e.to_string().contains("explode"),
            "{e}"
        );
        let e = decode(&huge).unwrap_err();
        assert!(e.to_string().contains("bytes"), "{e}");
    }

    fn replies() -> Vec<Reply> {
        vec![
            Reply::json(
                "{\"value\":1,\"version\":1,\"updated_at\":\"2026-01-01T00:00:00.000Z\"}".into(),
                &[("etag", "\"1\"")],
            ),
            Reply::json(
                "{\"x\":\"multi\\nline ✓\"}".into(),
                &[("idempotent-replayed", "true"), ("etag", "\"7\"")],
            ),
            Reply::problem(&Problem::TooManyRequests {
                retry_after_secs: 3,
                detail: "slow down".into(),
            }),
            Reply::problem(&Problem::PreconditionFailed { current_version: 9 }),
            Reply::problem(&Problem::Internal),
            Reply::json(String::new(), &[]),
        ]
    }

    #[test]
    fn replies_roundtrip_byte_for_byte() {
        let r = replies();
        let text = encode_replies(&r);
        let read = |text: &str, n: usize| decode_replies(text, n).map_err(|e| e.problem());
        assert_eq!(read(&text, r.len()), Ok(r.clone()));
        assert_eq!(read(&text, r.len() - 1), Err(Problem::Internal));
        assert_eq!(read(&text, r.len() + 1), Err(Problem::Internal));
        // Truncated anywhere: refused, never a short or altered reply.
        for cut in 0..text.len() {
            if text.is_char_boundary(cut) {
                assert!(
                    decode_replies(&text[..cut], r.len()).is_err(),
                    "cut at {cut}"
                );
            }
        }
    }

    #[test]
    fn replies_with_foreign_parts_are_refused() {
        let r = |fields: &str| format!("[{{{fields}}}]");
        let ok = r#""status":200,"content_type":"application/json","headers":[],"body":"""#;
        assert!(decode_replies(&r(ok), 1).is_ok());
        for bad in [
            r(r#""status":200,"content_type":"text/html","headers":[],"body":"""#),
            r(
                r#""status":200,"content_type":"application/json","headers":[["set-cookie","a=b"]],"body":"""#,
            ),
            r(
                r#""status":200,"content_type":"application/json","headers":[["etag","\"1\"\n"]],"body":"""#,
            ),
            r(r#""status":200,"content_type":"application/json","headers":[["etag"]],"body":"""#),
            r(r#""status":99,"content_type":"application/json","headers":[],"body":"""#),
            r(r#""status":200,"content_type":"application/json","headers":[]"#),
            r(r#""status":200,"content_type":"application/json","headers":[],"body":"","extra":1"#),
            r(&format!(
                r#""status":200,"content_type":"application/json","headers":[{}],"body":"""#,
                [r#"["etag","1"]"#; 9].join(",")
            )),
            "200 application/json 0 0\n".to_owned(),
        ] {
            assert_eq!(
                decode_replies(&bad, 1).map_err(|e| e.problem()),
                Err(Problem::Internal),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_reads_from_setting() {
        assert_eq!(parse_reads_from(None), Ok(DEFAULT_READS_FROM));
        assert_eq!(parse_reads_from(Some("")), Ok(DEFAULT_READS_FROM));
        assert_eq!(parse_reads_from(Some("0")), Ok(0));
        assert_eq!(parse_reads_from(Some(" 8 ")), Ok(8));
        for bad in ["off", "-1", "4097", "1.5", "x"] {
            assert!(parse_reads_from(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn reads_share_from_the_mark_until_half_of_it() {
        assert!(!reads_share(false, 31, 32));
        assert!(reads_share(false, 32, 32));
        assert!(reads_share(true, 16, 32));
        assert!(!reads_share(true, 15, 32));
        // 0: reads always share calls, as changes do.
        assert!(reads_share(false, 0, 0));
        assert!(reads_share(true, 0, 0));
    }

    #[test]
    fn the_in_flight_setting() {
        assert_eq!(parse_in_flight(None), Ok(DEFAULT_IN_FLIGHT));
        assert_eq!(parse_in_flight(Some(" ")), Ok(DEFAULT_IN_FLIGHT));
        assert_eq!(parse_in_flight(Some("off")), Ok(0));
        assert_eq!(parse_in_flight(Some("OFF")), Ok(0));
        assert_eq!(parse_in_flight(Some("0")), Ok(0));
        assert_eq!(parse_in_flight(Some("4")), Ok(4));
        for bad in ["-1", "65", "two", "1.5"] {
            assert!(parse_in_flight(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn histogram_buckets() {
        let mut h = SizeHistogram::default();
        for n in [1, 2, 3, 4, 7, 8, 16, 31, 32, 63, 64] {
            h.record(n);
        }
        let b: Vec<_> = h.buckets().collect();
        assert_eq!(
            b,
            vec![
                ("1", 1),
                ("2-3", 2),
                ("4-7", 2),
                ("8-15", 1),
                ("16-31", 2),
                ("32-63", 2),
                ("64", 1)
            ]
        );
    }
}
