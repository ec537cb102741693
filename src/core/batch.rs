//! Many requests in one call to the counter object (group commit), and their answers.
//!
//! When the edge already has calls to the counter in flight, the reads and mutations that
//! arrive meanwhile wait and then travel together in one call. The object applies the
//! mutations of a batch in order, each exactly as if it had come alone, and answers every one
//! separately; the edge splits the answers so that each request gets its own response, byte
//! for byte the one it would have got alone.
//!
//! The call is one URL, like every other edge → object call ([`super::wire`]), so the object
//! can still answer synchronously without reading a body:
//!
//! `https://counter/batch?<item>&<item>…` where an item is `v` (read the value) or
//! `m,<op>,<n>,<key>,<client>[,<if>]` (a mutation). None of the fields can contain `,` or `&`
//! (operation names, integers, keys of the idempotency alphabet, client identifiers, `If-Match`
//! in its wire form), and the object decodes strictly: any deviation refuses the whole call.
//!
//! The answer is one body that holds every request's [`Reply`], in order:
//! `<status> <content-type> <header count> <body bytes>\n`, then each header as
//! `<name>: <value>\n`, then exactly that many body bytes.

use super::audit::AuditEntry;
use super::command::{IfMatch, Mutation};
use super::idempotency::RequestKey;
use super::problem::{Problem, PROBLEM_CONTENT_TYPE};
use super::state::Snapshot;
use super::vocab::{Operation, MAX_VALUE};
use super::wire::{is_client_id, ObjectCall};

/// The most requests one call carries.
pub const MAX_CALLS: usize = 64;
/// The longest batch URL, in bytes (a long key makes a batch hold fewer requests).
pub const MAX_URL_BYTES: usize = 8192;
/// The media type of a batch answer (internal: only the edge reads it).
pub const CONTENT_TYPE: &str = "application/x-counter-batch";
/// `application/json`, the media type of every successful answer.
pub const JSON: &str = "application/json";

const PREFIX: &str = "https://counter/batch?";

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

/// The item for `call` in a batch URL, or `None` for calls that never travel in a batch
/// (audit pages, sockets, health).
pub fn item(call: &ObjectCall) -> Option<String> {
    match call {
        ObjectCall::Value => Some("v".to_owned()),
        ObjectCall::Mutate {
            mutation: m,
            client,
        } => {
            let mut s = format!(
                "m,{},{},{},{client}",
                m.op.as_str(),
                m.operand,
                m.key.as_str()
            );
            if let Some(cond) = &m.if_match {
                s.push(',');
                s.push_str(&cond.encode());
            }
            Some(s)
        }
        _ => None,
    }
}

/// Builds a batch URL from items, within [`MAX_CALLS`] and [`MAX_URL_BYTES`].
#[derive(Debug)]
pub struct Builder {
    url: String,
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
        Builder {
            url: String::with_capacity(1024),
            count: 0,
        }
    }

    /// Whether `item` still fits.
    pub fn fits(&self, item: &str) -> bool {
        self.count < MAX_CALLS && PREFIX.len() + self.url.len() + 1 + item.len() <= MAX_URL_BYTES
    }

    /// Adds `item`; the caller checked [`Builder::fits`].
    pub fn push(&mut self, item: &str) {
        if self.count > 0 {
            self.url.push('&');
        }
        self.url.push_str(item);
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

    /// The URL of the call.
    pub fn url(&self) -> String {
        format!("{PREFIX}{}", self.url)
    }
}

/// Whether `url` is a batch call (as opposed to one of [`ObjectCall`]'s).
pub fn is_batch(url: &str) -> bool {
    url.starts_with(PREFIX)
}

/// Decodes a batch URL into its calls (only [`ObjectCall::Value`] and
/// [`ObjectCall::Mutate`]). Strict: an empty or oversized batch, an unknown item or any field
/// that the edge could not have sent refuses the whole call ([`Problem::Internal`]).
pub fn decode(url: &str) -> Result<Vec<ObjectCall>, Problem> {
    if url.len() > MAX_URL_BYTES {
        return Err(Problem::Internal);
    }
    let items = url.strip_prefix(PREFIX).ok_or(Problem::Internal)?;
    let calls = items
        .split('&')
        .map(decode_item)
        .collect::<Result<Vec<_>, _>>()?;
    if calls.is_empty() || calls.len() > MAX_CALLS {
        return Err(Problem::Internal);
    }
    Ok(calls)
}

fn decode_item(item: &str) -> Result<ObjectCall, Problem> {
    if item == "v" {
        return Ok(ObjectCall::Value);
    }
    let mut fields = item.split(',');
    if fields.next() != Some("m") {
        return Err(Problem::Internal);
    }
    let (Some(op), Some(n), Some(key), Some(client)) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(Problem::Internal);
    };
    let if_match = match fields.next() {
        Some(s) => Some(IfMatch::decode(s).ok_or(Problem::Internal)?),
        None => None,
    };
    if fields.next().is_some() {
        return Err(Problem::Internal);
    }
    let op = Operation::parse(op).ok_or(Problem::Internal)?;
    let operand = canonical_int(n).ok_or(Problem::Internal)?;
    let key = RequestKey::parse(key, "Idempotency-Key").map_err(|_| Problem::Internal)?;
    if !is_client_id(client) {
        return Err(Problem::Internal);
    }
    Ok(ObjectCall::Mutate {
        mutation: Mutation {
            op,
            operand,
            key,
            if_match,
        },
        client: client.to_owned(),
    })
}

/// An integer as `i64::to_string` writes it (no `+`, no leading zeros), within ±(2^53 − 1).
fn canonical_int(s: &str) -> Option<i64> {
    let n = s.parse::<i64>().ok()?;
    (n.to_string() == s && n.abs() <= MAX_VALUE).then_some(n)
}

/// What the object answers to one request: everything of the HTTP response that is not the
/// baseline every answer carries (`Cache-Control: no-store`, `X-Content-Type-Options`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    /// `application/json` or `application/problem+json`.
    pub content_type: &'static str,
    /// The other headers that matter: `etag`, `idempotent-replayed`, `retry-after`, …
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    /// `200 application/json` with `extra` headers.
    pub fn json(body: String, extra: &[(&str, &str)]) -> Reply {
        Reply {
            status: 200,
            content_type: JSON,
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
            content_type: PROBLEM_CONTENT_TYPE,
            headers: p
                .headers()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
            body: p.to_json(),
        }
    }
}

/// The body of a batch answer: every reply, in order.
pub fn encode_replies(replies: &[Reply]) -> String {
    let size: usize = replies.iter().map(|r| r.body.len() + 64).sum();
    let mut out = String::with_capacity(size);
    for r in replies {
        out.push_str(&format!(
            "{} {} {} {}\n",
            r.status,
            r.content_type,
            r.headers.len(),
            r.body.len()
        ));
        for (k, v) in &r.headers {
            out.push_str(k);
            out.push_str(": ");
            out.push_str(v);
            out.push('\n');
        }
        out.push_str(&r.body);
    }
    out
}

/// Splits a batch answer into exactly `expected` replies. Strict: anything else (a short or
/// long answer, a header the object never sends, a malformed line) is an error, and the edge
/// then retries the batch's requests one by one.
pub fn decode_replies(text: &str, expected: usize) -> Result<Vec<Reply>, Problem> {
    let bad = || Problem::Internal;
    let mut rest = text;
    let mut out = Vec::with_capacity(expected);
    while !rest.is_empty() {
        if out.len() == expected {
            return Err(bad());
        }
        let (line, after) = rest.split_once('\n').ok_or_else(bad)?;
        let mut parts = line.split(' ');
        let (Some(status), Some(ct), Some(count), Some(len), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(bad());
        };
        let status = status
            .parse::<u16>()
            .ok()
            .filter(|s| (200..=599).contains(s))
            .ok_or_else(bad)?;
        let content_type = match ct {
            JSON => JSON,
            PROBLEM_CONTENT_TYPE => PROBLEM_CONTENT_TYPE,
            _ => return Err(bad()),
        };
        let count = count
            .parse::<usize>()
            .ok()
            .filter(|c| *c <= 8)
            .ok_or_else(bad)?;
        let len = len.parse::<usize>().map_err(|_| bad())?;
        rest = after;
        let mut headers = Vec::with_capacity(count);
        for _ in 0..count {
            let (line, after) = rest.split_once('\n').ok_or_else(bad)?;
            let (name, value) = line.split_once(": ").ok_or_else(bad)?;
            if !matches!(
                name,
                "etag" | "idempotent-replayed" | "retry-after" | "allow" | "www-authenticate"
            ) || value.bytes().any(|b| b.is_ascii_control())
            {
                return Err(bad());
            }
            headers.push((name.to_owned(), value.to_owned()));
            rest = after;
        }
        if rest.len() < len || !rest.is_char_boundary(len) {
            return Err(bad());
        }
        let (body, after) = rest.split_at(len);
        out.push(Reply {
            status,
            content_type,
            headers,
            body: body.to_owned(),
        });
        rest = after;
    }
    if out.len() == expected {
        Ok(out)
    } else {
        Err(bad())
    }
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
    use crate::core::command::Amount;

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
        assert!(is_batch(&b.url()));
        assert_eq!(decode(&b.url()), Ok(calls()));
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
        assert_eq!(decode(&b.url()).map(|c| c.len()), Ok(MAX_CALLS));
        assert_eq!(decode(&format!("{}&v", b.url())), Err(Problem::Internal));

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
        assert!(b.url().len() <= MAX_URL_BYTES);
        assert_eq!(decode(&b.url()).map(|c| c.len()), Ok(b.len()));
    }

    #[test]
    fn anything_else_refuses_the_whole_batch() {
        for bad in [
            "https://counter/batch?",
            "https://counter/batch?v&",
            "https://counter/batch?&v",
            "https://counter/batch?x",
            "https://counter/batch?V",
            "https://counter/batch?v&m,increment,1,k",
            "https://counter/batch?m,increment,1,k,unknown,3,4",
            "https://counter/batch?m,explode,1,k,unknown",
            "https://counter/batch?m,increment,01,k,unknown",
            "https://counter/batch?m,increment,+1,k,unknown",
            "https://counter/batch?m,increment,9007199254740992,k,unknown",
            "https://counter/batch?m,increment,1,bad key,unknown",
            "https://counter/batch?m,increment,1,,unknown",
            "https://counter/batch?m,increment,1,k,<script>",
            "https://counter/batch?m,increment,1,k,unknown,x",
            "https://counter/batchv",
            "https://other/batch?v",
        ] {
            assert_eq!(decode(bad), Err(Problem::Internal), "{bad}");
        }
        let huge = format!("https://counter/batch?{}", ["v"; 5000].join("&"));
        assert_eq!(decode(&huge), Err(Problem::Internal));
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
        assert_eq!(decode_replies(&text, r.len()), Ok(r.clone()));
        assert_eq!(decode_replies(&text, r.len() - 1), Err(Problem::Internal));
        assert_eq!(decode_replies(&text, r.len() + 1), Err(Problem::Internal));
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
        for bad in [
            "200 text/html 0 0\n",
            "200 application/json 1 0\nset-cookie: a=b\n",
            "200 application/json 1 0\netag \"1\"\n",
            "99 application/json 0 0\n",
            "200 application/json 0 5\nabc",
            "200 application/json 0 0 extra\n",
            "200 application/json 9 0\n",
        ] {
            assert_eq!(decode_replies(bad, 1), Err(Problem::Internal), "{bad:?}");
        }
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
