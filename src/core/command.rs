//! Commands: what a client asks the counter to do, parsed from the wire and validated.
//!
//! This is the explicit type between HTTP and the counter's logic: the edge turns a request into
//! a [`Mutation`] (or a read), and from then on nothing looks at HTTP again. Every constructor
//! here validates, so a `Mutation` that exists is a mutation the counter may try to apply.

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};

use super::idempotency::RequestKey;
use super::problem::Problem;
use super::vocab::{parse_version, truncate, Operation, MAX_VALUE};

/// The largest request body accepted anywhere, in bytes.
pub const MAX_BODY_BYTES: usize = 1024;

/// How much an increment or decrement moves the counter: an integer in `1..=1_000_000`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Amount(u32);

impl Amount {
    /// The smallest amount.
    pub const MIN: u32 = 1;
    /// The largest amount.
    pub const MAX: u32 = 1_000_000;
    /// The amount of an empty body.
    pub const ONE: Amount = Amount(1);

    /// Validates `n`.
    pub fn new(n: i64) -> Result<Self, Problem> {
        if (i64::from(Self::MIN)..=i64::from(Self::MAX)).contains(&n) {
            Ok(Amount(n as u32))
        } else {
            Err(Problem::InvalidBody(format!(
                "amount must be an integer from {} to {}; got {n}.",
                Self::MIN,
                Self::MAX
            )))
        }
    }

    /// The amount as a number.
    pub fn get(self) -> u32 {
        self.0
    }
}

/// A validated change request: the unit the counter object applies exactly once. In a batch it
/// travels as JSON (`core::batch`); the key is checked again as it is read.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mutation {
    /// What to do.
    pub op: Operation,
    /// The operand: the amount for increment/decrement, the new value for set, 0 for reset.
    pub operand: i64,
    /// The key that makes the mutation exactly-once: the client's, or one the edge made.
    pub key: RequestKey,
    /// Apply only if the current version is one of these (`If-Match`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub if_match: Option<IfMatch>,
}

impl Mutation {
    /// An increment or decrement.
    pub fn step(op: Operation, amount: Amount, key: RequestKey, if_match: Option<IfMatch>) -> Self {
        Mutation {
            op,
            operand: i64::from(amount.get()),
            key,
            if_match,
        }
    }

    /// What a replay with the same key must match: the operation and its operand. A key reused
    /// with a different fingerprint is refused (422) instead of replayed.
    pub fn fingerprint(&self) -> String {
        format!("{}:{}", self.op.as_str(), self.operand)
    }
}

/// Parses the body of `POST /api/increment` and `/api/decrement`: empty (amount 1) or a JSON
/// object whose only member is `amount`, an integer in `1..=1_000_000`.
///
/// Everything else is refused with a precise reason: not JSON, not an object, unknown or
/// repeated members, a non-integer, a number out of range. The caller has already enforced
/// [`MAX_BODY_BYTES`] and the media type.
pub fn parse_amount_body(body: &[u8]) -> Result<Amount, Problem> {
    if body.is_empty() {
        return Ok(Amount::ONE);
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed = de.deserialize_any(AmountBodyVisitor);
    let parsed = parsed.and_then(|a| de.end().map(|()| a));
    match parsed {
        Ok(Ok(amount)) => Ok(amount),
        Ok(Err(problem)) => Err(problem),
        Err(e) if e.is_syntax() || e.is_eof() => Err(Problem::MalformedJson(e.to_string())),
        Err(e) => Err(Problem::InvalidBody(e.to_string())),
    }
}

/// Parses the body of `POST /api/admin/set`: exactly `{"value": <integer>}` within ±(2^53 − 1).
pub fn parse_set_body(body: &[u8]) -> Result<i64, Problem> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| Problem::MalformedJson(e.to_string()))?;
    let obj = v.as_object().ok_or_else(|| {
        Problem::InvalidBody("The body must be a JSON object like {\"value\": 42}.".into())
    })?;
    if let Some(unknown) = obj.keys().find(|k| k.as_str() != "value") {
        return Err(Problem::InvalidBody(format!(
            "Unknown member {unknown:?}: the body may only contain \"value\"."
        )));
    }
    let value = obj
        .get("value")
        .ok_or_else(|| Problem::InvalidBody("The member \"value\" is required.".into()))?;
    match json_integer(value) {
        Some(n) if (-MAX_VALUE..=MAX_VALUE).contains(&n) => Ok(n),
        _ => Err(Problem::InvalidBody(format!(
            "value must be an integer within ±{}.",
            MAX_VALUE
        ))),
    }
}

/// Reads `{"amount": n}` straight from the parser, so duplicates, floats and unknown members
/// are caught with a clear message instead of being silently coerced or dropped.
struct AmountBodyVisitor;

impl<'de> Visitor<'de> for AmountBodyVisitor {
    type Value = Result<Amount, Problem>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object like {\"amount\": 5}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        // The whole object is read even after a problem is found, so that a later syntax
        // error is still reported as malformed JSON.
        let mut amount: Option<Result<Amount, Problem>> = None;
        let mut problem: Option<Problem> = None;
        while let Some(key) = map.next_key::<String>()? {
            if key != "amount" {
                map.next_value::<IgnoredAny>()?;
                problem.get_or_insert_with(|| {
                    Problem::InvalidBody(format!(
                        "Unknown member {:?}: the body may only contain \"amount\".",
                        truncate(&key, 40)
                    ))
                });
                continue;
            }
            let n: serde_json::Value = map.next_value()?;
            if amount.is_some() {
                problem.get_or_insert_with(|| {
                    Problem::InvalidBody("The member \"amount\" appears more than once.".into())
                });
                continue;
            }
            amount = Some(match json_integer(&n) {
                Some(n) => Amount::new(n),
                None => Err(Problem::InvalidBody(format!(
                    "amount must be an integer from {} to {}; got {}.",
                    Amount::MIN,
                    Amount::MAX,
                    describe(&n)
                ))),
            });
        }
        Ok(match problem {
            Some(p) => Err(p),
            None => amount.unwrap_or(Ok(Amount::ONE)),
        })
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Err(not_an_object("a boolean")))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Err(not_an_object("a number")))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Err(not_an_object("a number")))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Err(not_an_object("a number")))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Err(not_an_object("a string")))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Err(not_an_object("null")))
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Err(not_an_object("an array")))
    }
}

/// The integer a JSON number denotes, if it denotes one. As in JSON Schema, `2.0` and `2e0`
/// are the integer 2 (JSON does not tell them apart from `2`); `2.5` is not an integer.
fn json_integer(v: &serde_json::Value) -> Option<i64> {
    if let Some(n) = v.as_i64() {
        return Some(n);
    }
    let f = v.as_f64()?;
    // Beyond 2^53 a float is not exact; such numbers are out of every range here anyway.
    (f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0).then_some(f as i64)
}

fn not_an_object(what: &str) -> Problem {
    Problem::InvalidBody(format!(
        "The body must be empty or a JSON object like {{\"amount\": 5}}; got {what}."
    ))
}

fn describe(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "null".into(),
        serde_json::Value::Bool(_) => "a boolean".into(),
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::String(_) => "a string".into(),
        serde_json::Value::Array(_) => "an array".into(),
        serde_json::Value::Object(_) => "an object".into(),
    }
}

/// Checks the `Content-Type` of a non-empty body: `application/json` or any `+json` type, with
/// any parameters (`; charset=utf-8`). An empty body needs no media type.
pub fn check_json_media_type(content_type: Option<&str>, body_len: usize) -> Result<(), Problem> {
    if body_len == 0 {
        return Ok(());
    }
    let Some(ct) = content_type else {
        return Err(Problem::UnsupportedMediaType(
            "A request body needs Content-Type: application/json.".into(),
        ));
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let is_json = essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"));
    if is_json {
        Ok(())
    } else {
        Err(Problem::UnsupportedMediaType(format!(
            "The body must be application/json, not {:?}.",
            truncate(ct, 80)
        )))
    }
}

/// The parsed `If-Match` header: apply only if the current version is listed. As JSON (in a
/// batch): `"any"` or `{"versions":[…]}`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IfMatch {
    /// `*`: any current version.
    Any,
    /// A list of strong entity tags that are versions. Tags that can never name a version
    /// (weak tags, non-numeric tags) are dropped, so the list may be empty: then nothing
    /// matches and the request gets 412, as RFC 9110 says.
    Versions(Vec<u64>),
}

impl IfMatch {
    /// RFC 9110 §13.1.1 with strong comparison: does the current version satisfy it?
    pub fn matches(&self, version: u64) -> bool {
        match self {
            IfMatch::Any => true,
            IfMatch::Versions(vs) => vs.contains(&version),
        }
    }

    /// Parses the header value: `*` or a comma-separated list of entity tags (`"3"`,
    /// `W/"3"`; RFC 9110 §8.8.3, where a tag may itself contain commas). Anything that is not
    /// that syntax is a 400.
    pub fn parse(value: &str) -> Result<Self, Problem> {
        let bad = |why: &str| Problem::InvalidHeader {
            name: "If-Match",
            detail: format!("{why}; expected \"*\" or entity tags like \"\\\"12\\\"\"."),
        };
        let value = value.trim_matches([' ', '\t']);
        if value == "*" {
            return Ok(IfMatch::Any);
        }
        let bytes = value.as_bytes();
        let mut versions = Vec::new();
        let mut i = 0;
        let mut tags = 0;
        loop {
            // Elements are separated by commas with optional whitespace; empty ones are allowed.
            while i < bytes.len() && matches!(bytes[i], b' ' | b'\t' | b',') {
                i += 1;
            }
            if i == bytes.len() {
                break;
            }
            let weak = bytes[i..].starts_with(b"W/");
            if weak {
                i += 2;
            }
            if bytes.get(i) != Some(&b'"') {
                return Err(bad("not a quoted entity tag"));
            }
            let start = i + 1;
            let len = bytes[start..]
                .iter()
                .position(|b| *b == b'"')
                .ok_or_else(|| bad("an entity tag is not closed"))?;
            let inner = &value[start..start + len];
            if !inner.bytes().all(|b| b == 0x21 || (b >= 0x23 && b != 0x7f)) {
                return Err(bad("invalid character in entity tag"));
            }
            i = start + len + 1;
            if i < bytes.len() && !matches!(bytes[i], b' ' | b'\t' | b',') {
                return Err(bad("entity tags must be separated by commas"));
            }
            tags += 1;
            if !weak {
                if let Some(v) = parse_version(inner) {
                    versions.push(v);
                }
            }
        }
        if tags == 0 {
            return Err(bad("empty value"));
        }
        Ok(IfMatch::Versions(versions))
    }

    /// The wire form for the edge → object call: `*` or the versions joined by `.`.
    pub fn encode(&self) -> String {
        match self {
            IfMatch::Any => "*".into(),
            IfMatch::Versions(vs) => vs.iter().map(u64::to_string).collect::<Vec<_>>().join("."),
        }
    }

    /// The inverse of [`IfMatch::encode`].
    pub fn decode(s: &str) -> Option<Self> {
        if s == "*" {
            return Some(IfMatch::Any);
        }
        if s.is_empty() {
            return Some(IfMatch::Versions(Vec::new()));
        }
        s.split('.')
            .map(parse_version)
            .collect::<Option<Vec<_>>>()
            .map(IfMatch::Versions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amount(body: &str) -> Result<u32, Problem> {
        parse_amount_body(body.as_bytes()).map(Amount::get)
    }

    #[test]
    fn empty_body_and_empty_object_mean_one() {
        assert_eq!(amount(""), Ok(1));
        assert_eq!(amount("{}"), Ok(1));
        assert_eq!(amount(" { } "), Ok(1));
    }

    #[test]
    fn valid_amounts() {
        assert_eq!(amount("{\"amount\":1}"), Ok(1));
        assert_eq!(amount("{\"amount\": 1000000}"), Ok(1_000_000));
        assert_eq!(amount("\n{\"amount\":42}\n"), Ok(42));
        // Integral numbers are integers however they are written (as in JSON Schema).
        assert_eq!(amount("{\"amount\":2.0}"), Ok(2));
        assert_eq!(amount("{\"amount\":1e3}"), Ok(1000));
    }

    #[test]
    fn out_of_range_amounts_are_invalid_body() {
        for b in [
            "{\"amount\":0}",
            "{\"amount\":-1}",
            "{\"amount\":1000001}",
            "{\"amount\":18446744073709551615}",
            "{\"amount\":-9223372036854775808}",
        ] {
            assert!(matches!(amount(b), Err(Problem::InvalidBody(_))), "{b}");
        }
    }

    #[test]
    fn wrong_types_are_invalid_body() {
        for b in [
            "{\"amount\":1.5}",
            "{\"amount\":1.000001}",
            "{\"amount\":1e-3}",
            "{\"amount\":1e300}",
            "{\"amount\":\"5\"}",
            "{\"amount\":null}",
            "{\"amount\":true}",
            "{\"amount\":[1]}",
            "{\"amount\":{\"n\":1}}",
            "[]",
            "[1,2]",
            "5",
            "\"5\"",
            "null",
            "true",
        ] {
            assert!(
                matches!(amount(b), Err(Problem::InvalidBody(_))),
                "{b}: {:?}",
                amount(b)
            );
        }
    }

    #[test]
    fn unknown_and_duplicate_members_are_refused() {
        let e = amount("{\"amount\":1,\"extra\":2}").unwrap_err();
        assert!(e.detail().contains("extra"));
        let e = amount("{\"amount\":1,\"amount\":2}").unwrap_err();
        assert!(e.detail().contains("more than once"));
        assert!(matches!(
            amount("{\"Amount\":1}"),
            Err(Problem::InvalidBody(_))
        ));
    }

    #[test]
    fn malformed_json_is_its_own_problem() {
        for b in [
            "{",
            "{\"amount\":}",
            "{\"amount\":1",
            "amount=1",
            "{\"amount\":1}}",
            "\u{0}",
            "{'amount':1}",
        ] {
            assert!(
                matches!(amount(b), Err(Problem::MalformedJson(_))),
                "{b}: {:?}",
                amount(b)
            );
        }
    }

    #[test]
    fn deep_nesting_does_not_overflow() {
        let deep = format!("{{\"amount\":{}{}}}", "[".repeat(500), "]".repeat(500));
        assert!(amount(&deep).is_err());
    }

    #[test]
    fn media_types() {
        assert!(check_json_media_type(None, 0).is_ok());
        assert!(check_json_media_type(Some("text/plain"), 0).is_ok());
        assert!(check_json_media_type(Some("application/json"), 3).is_ok());
        assert!(check_json_media_type(Some("Application/JSON; charset=utf-8"), 3).is_ok());
        assert!(check_json_media_type(Some("application/merge-patch+json"), 3).is_ok());
        for bad in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "json",
            "",
            "application/jsonx",
        ] {
            assert_eq!(
                check_json_media_type(Some(bad), 3).unwrap_err().status(),
                415,
                "{bad}"
            );
        }
        assert_eq!(check_json_media_type(None, 3).unwrap_err().status(), 415);
    }

    #[test]
    fn set_body() {
        assert_eq!(parse_set_body(b"{\"value\":-5}"), Ok(-5));
        assert_eq!(
            parse_set_body(b"{\"value\":9007199254740991}"),
            Ok(9_007_199_254_740_991)
        );
        for bad in [
            "{}",
            "{\"value\":1.5}",
            "{\"value\":9007199254740992}",
            "{\"value\":1,\"x\":1}",
            "[1]",
        ] {
            assert_eq!(
                parse_set_body(bad.as_bytes()).unwrap_err().status(),
                400,
                "{bad}"
            );
        }
    }

    #[test]
    fn if_match_parsing() {
        assert_eq!(IfMatch::parse("*"), Ok(IfMatch::Any));
        assert_eq!(IfMatch::parse("\"3\""), Ok(IfMatch::Versions(vec![3])));
        assert_eq!(
            IfMatch::parse(" \"3\" , \"5\""),
            Ok(IfMatch::Versions(vec![3, 5]))
        );
        assert_eq!(IfMatch::parse("W/\"3\""), Ok(IfMatch::Versions(vec![])));
        assert_eq!(IfMatch::parse("\"abc\""), Ok(IfMatch::Versions(vec![])));
        assert_eq!(IfMatch::parse("\"007\""), Ok(IfMatch::Versions(vec![])));
        assert_eq!(
            IfMatch::parse("\"a,b\", \"4\""),
            Ok(IfMatch::Versions(vec![4])),
            "commas inside tags"
        );
        assert_eq!(
            IfMatch::parse("\"1\" ,W/\"2\" , \"3\","),
            Ok(IfMatch::Versions(vec![1, 3]))
        );
        assert_eq!(IfMatch::parse("W/\"\""), Ok(IfMatch::Versions(vec![])));
        for bad in [
            "",
            ",",
            "3",
            "\"3",
            "\"a\"b\"",
            "'3'",
            "\"a b\"",
            "\"1\"\"2\"",
            "W/3",
            "*, \"1\"",
        ] {
            assert!(IfMatch::parse(bad).is_err(), "{bad}");
        }
        assert!(IfMatch::Any.matches(9));
        assert!(IfMatch::Versions(vec![1, 9]).matches(9));
        assert!(!IfMatch::Versions(vec![]).matches(0));
    }

    #[test]
    fn if_match_wire_roundtrip() {
        for m in [
            IfMatch::Any,
            IfMatch::Versions(vec![]),
            IfMatch::Versions(vec![0, 7, 123]),
        ] {
            assert_eq!(IfMatch::decode(&m.encode()), Some(m));
        }
        assert_eq!(IfMatch::decode("1.x"), None);
    }

    #[test]
    fn versions_are_canonical() {
        assert_eq!(parse_version("0"), Some(0));
        assert_eq!(
            parse_version("9007199254740991"),
            Some(9_007_199_254_740_991)
        );
        for bad in [
            "",
            "-1",
            "+1",
            "01",
            "1.0",
            "9007199254740992",
            "99999999999999999999",
            " 1",
        ] {
            assert_eq!(parse_version(bad), None, "{bad}");
        }
    }
}
