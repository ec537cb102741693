//! A past value (`GET /api/value?as_of_version=` or `?as_of=`): its query and its body.

use super::MAX;
use crate::core::audit::AuditEntry;
use crate::core::json::JsonWriter;
use crate::core::problem::Problem;
use crate::core::query;

/// Which past state `GET /api/value?as_of_version=` or `?as_of=` asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AsOf {
    /// The value after this version.
    Version(u64),
    /// The value after the last change at or before this instant (RFC 3339, as the audit
    /// trail writes it: UTC, milliseconds).
    Time(String),
}

/// `GET /api/value?as_of_version=<v>|as_of=<RFC 3339>[&proof=true]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AsOfQuery {
    pub at: AsOf,
    /// Include the inclusion proof of that version's entry in the current tree.
    pub proof: bool,
}

impl AsOfQuery {
    /// Whether a `/api/value` query asks for a past state.
    pub fn wanted(q: &str) -> bool {
        q.split('&')
            .any(|p| matches!(p.split('=').next(), Some("as_of" | "as_of_version")))
    }

    /// Parses the query string (without `?`).
    pub fn parse(q: &str) -> Result<Self, Problem> {
        let pairs = query::parse(q, &["as_of", "as_of_version", "proof"])?;
        let get = |n: &str| pairs.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str());
        let at = match (get("as_of_version"), get("as_of")) {
            (Some(_), None) => AsOf::Version(
                query::uint(&pairs, "as_of_version", 0, MAX, None)?.unwrap_or(0),
            ),
            (None, Some(t)) => AsOf::Time(
                crate::core::time::parse_rfc3339(t)
                    .map(crate::core::time::rfc3339_millis)
                    .ok_or_else(|| {
                        Problem::InvalidQuery(format!(
                            "as_of must be an RFC 3339 date-time such as 2026-11-29T20:00:00Z; got {:?}.",
                            crate::core::vocab::truncate(t, 40)
                        ))
                    })?,
            ),
            _ => {
                return Err(Problem::InvalidQuery(
                    "give either as_of_version or as_of.".into(),
                ))
            }
        };
        let proof = match get("proof") {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => return Err(Problem::InvalidQuery("proof must be true or false.".into())),
        };
        Ok(AsOfQuery { at, proof })
    }

    /// The wire form (edge → object).
    pub fn encode(&self) -> String {
        let at = match &self.at {
            AsOf::Version(v) => format!("as_of_version={v}"),
            AsOf::Time(t) => format!("as_of={t}"),
        };
        if self.proof {
            format!("{at}&proof=true")
        } else {
            at
        }
    }
}

/// The body of a past value: `{"value","version","updated_at"}` after `entry` (`None`: before
/// the first change), with `"inclusion"` (an inclusion proof body) when asked for.
pub fn as_of_json(entry: Option<&AuditEntry>, inclusion: Option<&str>) -> String {
    let mut w = JsonWriter::object_with_capacity(128);
    w.int("value", entry.map_or(0, |e| e.value))
        .uint("version", entry.map_or(0, |e| e.version))
        .opt_string("updated_at", entry.map(|e| e.at.as_str()));
    if let Some(p) = inclusion {
        w.raw("inclusion", p);
    }
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ledger::fixtures::history;

    #[test]
    fn as_of_queries() {
        assert!(AsOfQuery::wanted("as_of_version=3"));
        assert!(AsOfQuery::wanted("proof=true&as_of=x"));
        assert!(!AsOfQuery::wanted("consistency=nearby&min_version=2"));
        assert_eq!(
            AsOfQuery::parse("as_of_version=3&proof=true").unwrap(),
            AsOfQuery {
                at: AsOf::Version(3),
                proof: true
            }
        );
        assert_eq!(
            AsOfQuery::parse("as_of=2026-11-29T21:00:00.5+01:00")
                .unwrap()
                .at,
            AsOf::Time("2026-11-29T20:00:00.500Z".into())
        );
        for bad in [
            "as_of_version=1&as_of=2026-11-29T20:00:00Z",
            "as_of_version=-1",
            "as_of=yesterday",
            "as_of_version=1&proof=yes",
            "as_of_version=1&consistency=nearby",
            "proof=true",
        ] {
            assert_eq!(AsOfQuery::parse(bad).unwrap_err().status(), 400, "{bad}");
        }
        for q in [
            AsOfQuery {
                at: AsOf::Version(0),
                proof: false,
            },
            AsOfQuery {
                at: AsOf::Time("2026-11-29T20:00:00.000Z".into()),
                proof: true,
            },
        ] {
            assert_eq!(AsOfQuery::parse(&q.encode()), Ok(q));
        }
        assert_eq!(
            as_of_json(None, None),
            "{\"value\":0,\"version\":0,\"updated_at\":null}"
        );
        let h = history();
        let v: serde_json::Value =
            serde_json::from_str(&as_of_json(Some(&h[1]), Some("{\"a\":1}"))).unwrap();
        assert_eq!(
            (v["value"].as_i64(), v["version"].as_u64()),
            (Some(-2), Some(2))
        );
        assert_eq!(v["inclusion"]["a"], 1);
    }
}
