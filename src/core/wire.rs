//! The call from the edge to the counter object, as one URL.
//!
//! The edge validates a request completely and then asks the object to do one [`ObjectCall`].
//! The whole call travels in the URL of the internal request (`https://counter/<call>?<args>`):
//! no body to stream, no headers to read, so the object reads one string, decodes it here and
//! can answer synchronously. Every value in it is ASCII that needs no escaping (operation names,
//! integers, keys of the restricted idempotency alphabet, IP addresses), and decoding checks
//! each again, so a malformed call can never reach the counter's logic.

use super::audit::AuditQuery;
use super::command::{IfMatch, Mutation};
use super::idempotency::RequestKey;
use super::ledger::{AsOfQuery, ConsistencyQuery, ExportQuery, InclusionQuery};
use super::problem::Problem;
use super::query;
use super::vocab::Operation;

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

    /// Decodes an internal URL. Any deviation is an internal error: only the edge makes these.
    pub fn decode(url: &str) -> Result<Self, Problem> {
        let rest = url.strip_prefix(ORIGIN).ok_or(Problem::Internal)?;
        let (path, q) = rest.split_once('?').unwrap_or((rest, ""));
        let bad = |_| Problem::Internal;
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
                    .ok_or(Problem::Internal)?;
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
            "/export" => match ExportQuery::parse(q) {
                Ok(ExportQuery {
                    csv,
                    after,
                    until: Some(until),
                }) => Ok(ObjectCall::ExportPage { csv, after, until }),
                _ => Err(Problem::Internal),
            },
            "/connect" => {
                let pairs = query::parse(q, &["client", "since"]).map_err(bad)?;
                let since = query::uint(&pairs, "since", 0, super::vocab::MAX_VALUE as u64, None)
                    .map_err(bad)?;
                Ok(ObjectCall::Connect {
                    since,
                    client: client(&pairs)?,
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
                    .ok_or(Problem::Internal)?;
                let operand = get("n")
                    .and_then(|n| n.parse::<i64>().ok())
                    .ok_or(Problem::Internal)?;
                let key =
                    RequestKey::parse(get("key").unwrap_or(""), "Idempotency-Key").map_err(bad)?;
                let if_match = match get("if") {
                    Some(s) => Some(IfMatch::decode(s).ok_or(Problem::Internal)?),
                    None => None,
                };
                Ok(ObjectCall::Mutate {
                    mutation: Mutation {
                        op,
                        operand,
                        key,
                        if_match,
                    },
                    client: client(&pairs)?,
                })
            }
            _ => Err(Problem::Internal),
        }
    }
}

/// A client identifier: an IP address (v4 or v6) or `unknown`.
fn client(pairs: &[(&str, String)]) -> Result<String, Problem> {
    let c = pairs
        .iter()
        .find(|(n, _)| *n == "client")
        .map(|(_, v)| v.clone())
        .ok_or(Problem::Internal)?;
    if is_client_id(&c) {
        Ok(c)
    } else {
        Err(Problem::Internal)
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
                ObjectCall::decode(&c.encode()),
                Ok(c.clone()),
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
            assert_eq!(ObjectCall::decode(bad), Err(Problem::Internal), "{bad}");
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
