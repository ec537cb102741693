//! The call from the edge to the counter object, as one URL, and the error of every internal
//! call ([`CallError`]).
//!
//! The edge validates a request completely and then asks the object to do one [`ObjectCall`].
//! A call sent alone travels in the URL of a plain internal request
//! (`https://counter/<call>?<args>`): no body to stream, no headers to read, so the object reads
//! one string, decodes it here and can answer synchronously. Every value in it is ASCII that
//! needs no escaping (operation names, integers, keys of the restricted idempotency alphabet, IP
//! addresses), and decoding checks each again, so a malformed call can never reach the counter's
//! logic.
//!
//! Why a URL and not JSON, when a batch of calls is typed JSON ([`super::batch`]): every version
//! of the object decodes this URL, so it is what reaches an object of another version during a
//! rollout (the edge falls back to plain requests when a batch fails as a whole, and an object
//! that predates the batch method answers nothing else), and the relays call the counter the
//! same way. It is also the cheapest call: the object's response to it passes through the edge
//! unread.

use std::fmt;

use super::audit::AuditQuery;
use super::command::{IfMatch, Mutation};
use super::idempotency::RequestKey;
use super::ledger::{AsOfQuery, ConsistencyQuery, ExportQuery, InclusionQuery};
use super::problem::Problem;
use super::query;
use super::vocab::Operation;

/// Why an internal call (a URL, a batch or its answer) could not be decoded. Only the edge and
/// the object make these, so any of them is a bug or a version skew: whoever meets one logs it
/// with its cause and answers [`Problem::Internal`] ([`CallError::problem`]).
#[derive(Debug)]
pub enum CallError {
    /// A URL that is not one of [`ObjectCall`]'s: what is wrong with it.
    Url(String),
    /// JSON that is not the expected type (a batch, or its replies).
    Json(serde_json::Error),
    /// Well-formed, but holding what the other side never sends: what.
    Invalid(String),
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Url(why) => write!(f, "malformed call URL: {why}"),
            CallError::Json(e) => write!(f, "malformed JSON: {e}"),
            CallError::Invalid(why) => write!(f, "invalid call: {why}"),
        }
    }
}

impl std::error::Error for CallError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CallError::Json(e) => Some(e),
            _ => None,
        }
    }
}

impl From<serde_json::Error> for CallError {
    fn from(e: serde_json::Error) -> Self {
        CallError::Json(e)
    }
}

impl CallError {
    /// What a client of the service sees of it: an internal error (the cause is for the log,
    /// not for the client).
    pub fn problem(&self) -> Problem {
        Problem::Internal
    }
}

/// The origin of internal URLs; the object ignores it.
pub const ORIGIN: &str = "https://counter";

/// The name of the one counter object: the edge and the relays address it by this name.
pub const OBJECT_NAME: &str = "global";

/// One thing the edge asks the counter object to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ObjectCall {
    /// Read the current value.
    Value,
    /// Apply one mutation exactly once. `client` identifies the caller for per-client limits.
    Mutate { mutation: Mutation, client: String },
    /// Read a page of the audit trail.
    Audit(AuditQuery),
    /// Accept a WebSocket (the request carries the upgrade), replaying changes after `since`.
    Connect { since: Option<u64>, client: String },
    /// Report health and storage facts.
    Health,
    /// Report the object's metrics (Prometheus text).
    Metrics,
    /// The ledger's tree head (size and root), which the edge makes the checkpoint of.
    Checkpoint,
    /// An inclusion proof.
    Inclusion(InclusionQuery),
    /// A consistency proof.
    Consistency(ConsistencyQuery),
    /// The value as of a past version or instant.
    ValueAsOf(AsOfQuery),
    /// One page of an export: the entries `after+1..=until` as NDJSON or CSV.
    ExportPage { csv: bool, after: u64, until: u64 },
    /// Accept a relay's upstream socket (tagged as a relay, not counted against any client),
    /// replaying changes after `since` like any socket.
    Upstream { since: Option<u64>, relay: String },
    /// List the relays connected upstream (admin).
    Relays,
    /// Test hook: reset the object (`ctx.abort`), as a deploy or a crash would.
    Restart,
}

impl ObjectCall {
    /// The internal URL for this call.
    pub fn encode(&self) -> String {
        match self {
            ObjectCall::Value => format!("{ORIGIN}/value"),
            ObjectCall::Health => format!("{ORIGIN}/health"),
            ObjectCall::Metrics => format!("{ORIGIN}/metrics"),
            ObjectCall::Relays => format!("{ORIGIN}/relays"),
            ObjectCall::Restart => format!("{ORIGIN}/restart"),
            ObjectCall::Upstream { since, relay } => match since {
                Some(v) => format!("{ORIGIN}/upstream?relay={relay}&since={v}"),
                None => format!("{ORIGIN}/upstream?relay={relay}"),
            },
            ObjectCall::Audit(q) => format!("{ORIGIN}/audit?{}", q.encode()),
            ObjectCall::Checkpoint => format!("{ORIGIN}/checkpoint"),
            ObjectCall::Inclusion(q) => format!("{ORIGIN}/inclusion?{}", q.encode()),
            ObjectCall::Consistency(q) => format!("{ORIGIN}/consistency?{}", q.encode()),
            ObjectCall::ValueAsOf(q) => format!("{ORIGIN}/as_of?{}", q.encode()),
            ObjectCall::ExportPage { csv, after, until } => format!(
                "{ORIGIN}/export?{}",
                ExportQuery::encode_page(*csv, *after, *until)
            ),
            ObjectCall::Connect { since, client } => match since {
                Some(v) => format!("{ORIGIN}/connect?client={client}&since={v}"),
                None => format!("{ORIGIN}/connect?client={client}"),
            },
            ObjectCall::Mutate {
                mutation: m,
                client,
            } => {
                let mut url = format!(
                    "{ORIGIN}/mutate?op={}&n={}&key={}&client={client}",
                    m.op.as_str(),
                    m.operand,
                    m.key.as_str()
                );
                if let Some(cond) = &m.if_match {
                    url.push_str("&if=");
                    url.push_str(&cond.encode());
                }
                url
            }
        }
    }

    /// Decodes an internal URL. Any deviation is a [`CallError::Url`] naming it: only the edge
    /// and the relays make these.
    pub fn decode(url: &str) -> Result<Self, CallError> {
        let rest = url
            .strip_prefix(ORIGIN)
            .ok_or_else(|| CallError::Url("not the counter's origin".into()))?;
        let (path, q) = rest.split_once('?').unwrap_or((rest, ""));
        let bad = |p: Problem| CallError::Url(format!("{path}: {}", p.detail()));
        let missing = |what: &str| CallError::Url(format!("{path}: {what}"));
        match path {
            "/value" if q.is_empty() => Ok(ObjectCall::Value),
            "/health" if q.is_empty() => Ok(ObjectCall::Health),
            "/metrics" if q.is_empty() => Ok(ObjectCall::Metrics),
            "/relays" if q.is_empty() => Ok(ObjectCall::Relays),
            "/restart" if q.is_empty() => Ok(ObjectCall::Restart),
            "/upstream" => {
                let pairs = query::parse(q, &["relay", "since"]).map_err(bad)?;
                let since = query::uint(&pairs, "since", 0, super::vocab::MAX_VALUE as u64, None)
                    .map_err(bad)?;
                // A relay name (`<region>-<shard>`, see `core::relay`): it becomes a socket tag.
                let relay = pairs
                    .iter()
                    .find(|(n, _)| *n == "relay")
                    .map(|(_, v)| v.clone())
                    .filter(|r| {
                        (3..=16).contains(&r.len())
                            && r.bytes()
                                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    })
                    .ok_or_else(|| missing("no relay name, or not one"))?;
                Ok(ObjectCall::Upstream { since, relay })
            }
            "/audit" => AuditQuery::parse(q).map(ObjectCall::Audit).map_err(bad),
            "/checkpoint" if q.is_empty() => Ok(ObjectCall::Checkpoint),
            "/inclusion" => InclusionQuery::parse(q)
                .map(ObjectCall::Inclusion)
                .map_err(bad),
            "/consistency" => ConsistencyQuery::parse(q)
                .map(ObjectCall::Consistency)
                .map_err(bad),
            "/as_of" => AsOfQuery::parse(q).map(ObjectCall::ValueAsOf).map_err(bad),
            "/export" => match ExportQuery::parse(q).map_err(bad)? {
                ExportQuery {
                    csv,
                    after,
                    until: Some(until),
                } => Ok(ObjectCall::ExportPage { csv, after, until }),
                _ => Err(missing("no end of the page")),
            },
            "/connect" => {
                let pairs = query::parse(q, &["client", "since"]).map_err(bad)?;
                let since = query::uint(&pairs, "since", 0, super::vocab::MAX_VALUE as u64, None)
                    .map_err(bad)?;
                Ok(ObjectCall::Connect {
                    since,
                    client: client(&pairs).map_err(missing)?,
                })
            }
            "/mutate" => {
                let pairs = query::parse(q, &["op", "n", "key", "client", "if"]).map_err(bad)?;
                let get = |name: &str| {
                    pairs
                        .iter()
                        .find(|(n, _)| *n == name)
                        .map(|(_, v)| v.as_str())
                };
                let op = get("op")
                    .and_then(Operation::parse)
                    .ok_or_else(|| missing("no operation, or not one"))?;
                let operand = get("n")
                    .and_then(|n| n.parse::<i64>().ok())
                    .ok_or_else(|| missing("no operand, or not an integer"))?;
                let key =
                    RequestKey::parse(get("key").unwrap_or(""), "Idempotency-Key").map_err(bad)?;
                let if_match = match get("if") {
                    Some(s) => Some(IfMatch::decode(s).ok_or_else(|| missing("a malformed if"))?),
                    None => None,
                };
                Ok(ObjectCall::Mutate {
                    mutation: Mutation {
                        op,
                        operand,
                        key,
                        if_match,
                    },
                    client: client(&pairs).map_err(missing)?,
                })
            }
            _ => Err(missing("an unknown call, or arguments it does not take")),
        }
    }
}

/// A client identifier: an IP address (v4 or v6) or `unknown`.
fn client(pairs: &[(&str, String)]) -> Result<String, &'static str> {
    let c = pairs
        .iter()
        .find(|(n, _)| *n == "client")
        .map(|(_, v)| v.clone())
        .ok_or("no client")?;
    if is_client_id(&c) {
        Ok(c)
    } else {
        Err("a client that is not an address")
    }
}

/// Whether `s` can be a client identifier on the wire: 1–64 characters of hex digits, `.` and
/// `:` (IPv4/IPv6), or the word `unknown`.
pub fn is_client_id(s: &str) -> bool {
    s == "unknown"
        || (!s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b'.' || b == b':'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::command::Amount;

    fn key(s: &str) -> RequestKey {
        RequestKey::parse(s, "Idempotency-Key").unwrap()
    }

    #[test]
    fn every_call_roundtrips() {
        let calls = vec![
            ObjectCall::Value,
            ObjectCall::Health,
            ObjectCall::Metrics,
            ObjectCall::Checkpoint,
            ObjectCall::Inclusion(InclusionQuery {
                version: 3,
                tree_size: Some(8),
            }),
            ObjectCall::Inclusion(InclusionQuery {
                version: 3,
                tree_size: None,
            }),
            ObjectCall::Consistency(ConsistencyQuery {
                from: 2,
                to: Some(9),
            }),
            ObjectCall::ExportPage {
                csv: true,
                after: 0,
                until: 1000,
            },
            ObjectCall::ValueAsOf(AsOfQuery {
                at: crate::core::ledger::AsOf::Time("2026-11-29T20:00:00.000Z".into()),
                proof: true,
            }),
            ObjectCall::Relays,
            ObjectCall::Restart,
            ObjectCall::Upstream {
                since: Some(12),
                relay: "weur-2".into(),
            },
            ObjectCall::Upstream {
                since: None,
                relay: "enam-0".into(),
            },
            ObjectCall::Audit(AuditQuery {
                after: 3,
                limit: 50,
            }),
            ObjectCall::Connect {
                since: None,
                client: "unknown".into(),
            },
            ObjectCall::Connect {
                since: Some(17),
                client: "2001:db8::1".into(),
            },
            ObjectCall::Mutate {
                mutation: Mutation::step(
                    Operation::Decrement,
                    Amount::new(7).unwrap(),
                    key("a.b_c:d-e"),
                    Some(IfMatch::Versions(vec![4, 5])),
                ),
                client: "203.0.113.9".into(),
            },
            ObjectCall::Mutate {
                mutation: Mutation {
                    op: Operation::Set,
                    operand: -9_007_199_254_740_991,
                    key: key("k"),
                    if_match: None,
                },
                client: "unknown".into(),
            },
        ];
        for c in calls {
            assert_eq!(
                ObjectCall::decode(&c.encode()).ok(),
                Some(c.clone()),
                "{}",
                c.encode()
            );
        }
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "https://other/value",
            "https://counter/nope",
            "https://counter/value?x=1",
            "https://counter/metrics?x=1",
            "https://counter/checkpoint?x=1",
            "https://counter/inclusion?version=0",
            "https://counter/consistency?from=3&to=2",
            "https://counter/export?format=csv&after=3",
            "https://counter/mutate?op=explode&n=1&key=k&client=unknown",
            "https://counter/mutate?op=increment&n=1&key=bad%20key&client=unknown",
            "https://counter/mutate?op=increment&n=x&key=k&client=unknown",
            "https://counter/mutate?op=increment&n=1&key=k",
            "https://counter/mutate?op=increment&n=1&key=k&client=<script>",
            "https://counter/connect?client=unknown&since=-1",
            "https://counter/upstream?relay=Mars:1",
            "https://counter/upstream?since=1",
            "https://counter/restart?x=1",
        ] {
            let e = ObjectCall::decode(bad).unwrap_err();
            assert!(matches!(e, CallError::Url(_)), "{bad}: {e}");
            assert_eq!(e.problem(), Problem::Internal, "{bad}");
        }
    }

    #[test]
    fn client_ids() {
        assert!(is_client_id("198.51.100.7"));
        assert!(is_client_id("2001:db8::ff"));
        assert!(is_client_id("unknown"));
        assert!(!is_client_id(""));
        assert!(!is_client_id("a b"));
        assert!(!is_client_id(&"1".repeat(65)));
    }
}
