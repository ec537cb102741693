//! Audit entries: the permanent record of every applied change, and how it is read back.
//!
//! One entry per applied mutation, written in the same transaction as the change. The entry is
//! also the change's description everywhere else: the mutation's HTTP response, the WebSocket
//! `update` message and the `/api/audit` page are three renderings of the same [`AuditEntry`].

use super::json::JsonWriter;
use super::problem::Problem;
use super::query;
use super::vocab::Operation;

/// Default page size of `GET /api/audit`.
pub const DEFAULT_LIMIT: u64 = 100;
/// Largest page size of `GET /api/audit`.
pub const MAX_LIMIT: u64 = 1000;

/// One applied change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    /// The counter's version after this change: 1, 2, 3, … without gaps.
    pub version: u64,
    /// What was done.
    pub operation: Operation,
    /// The operand: the amount for increment/decrement, the new value for set, 0 for reset.
    pub amount: i64,
    /// The value before.
    pub previous_value: i64,
    /// The value after.
    pub value: i64,
    /// The idempotency key (the client's, or the one the edge made).
    pub request_id: String,
    /// When it was applied (RFC 3339).
    pub at: String,
}

impl AuditEntry {
    /// How much the value moved.
    pub fn delta(&self) -> i64 {
        self.value - self.previous_value
    }

    /// What the request that made this entry was: `operation:amount`, as
    /// [`crate::core::command::Mutation::fingerprint`] writes it.
    pub fn fingerprint(&self) -> String {
        format!("{}:{}", self.operation.as_str(), self.amount)
    }

    /// The 200 body of a mutation, and of every replay of its key: a pure function of the
    /// entry, so the same bytes every time.
    pub fn response_json(&self) -> String {
        JsonWriter::object_with_capacity(192)
            .int("value", self.value)
            .uint("version", self.version)
            .int("previous_value", self.previous_value)
            .string("operation", self.operation.as_str())
            .int("amount", self.amount)
            .string("request_id", &self.request_id)
            .string("applied_at", &self.at)
            .finish()
    }

    /// One element of `entries` in `GET /api/audit`.
    pub fn entry_json(&self) -> String {
        JsonWriter::object_with_capacity(192)
            .uint("version", self.version)
            .string("operation", self.operation.as_str())
            .int("amount", self.amount)
            .int("previous_value", self.previous_value)
            .int("value", self.value)
            .string("request_id", &self.request_id)
            .string("at", &self.at)
            .finish()
    }

    /// The WebSocket message every client receives for this change.
    pub fn update_message(&self) -> String {
        JsonWriter::object_with_capacity(160)
            .string("type", "update")
            .int("value", self.value)
            .uint("version", self.version)
            .int("previous_value", self.previous_value)
            .string("operation", self.operation.as_str())
            .int("amount", self.amount)
            .string("at", &self.at)
            .finish()
    }
}

/// `GET /api/audit?after=<version>&limit=<n>`: the entries with versions after `after`,
/// ascending, at most `limit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditQuery {
    /// Entries with a version greater than this.
    pub after: u64,
    /// At most this many (1..=1000).
    pub limit: u64,
}

impl AuditQuery {
    /// Parses the query string (without `?`).
    pub fn parse(q: &str) -> Result<Self, Problem> {
        let pairs = query::parse(q, &["after", "limit"])?;
        let after = query::uint(&pairs, "after", 0, super::vocab::MAX_VALUE as u64, Some(0))?;
        let limit = query::uint(&pairs, "limit", 1, MAX_LIMIT, Some(DEFAULT_LIMIT))?;
        Ok(AuditQuery {
            after: after.unwrap_or(0),
            limit: limit.unwrap_or(DEFAULT_LIMIT),
        })
    }

    /// The wire form (edge → object).
    pub fn encode(&self) -> String {
        format!("after={}&limit={}", self.after, self.limit)
    }
}

/// The body of `GET /api/audit`. `entries` holds up to `limit + 1` rows read in ascending order:
/// one more than a page tells whether another page follows, in which case `next_after` is the
/// last version on this page.
pub fn page_json(entries: &[AuditEntry], limit: u64) -> String {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let page = &entries[..entries.len().min(limit)];
    let mut list = String::with_capacity(page.len() * 180 + 2);
    list.push('[');
    for (i, e) in page.iter().enumerate() {
        if i > 0 {
            list.push(',');
        }
        list.push_str(&e.entry_json());
    }
    list.push(']');
    let next = if entries.len() > limit {
        page.last().map(|e| e.version)
    } else {
        None
    };
    JsonWriter::object_with_capacity(list.len() + 40)
        .raw("entries", &list)
        .opt_uint("next_after", next)
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(version: u64) -> AuditEntry {
        AuditEntry {
            version,
            operation: Operation::Increment,
            amount: 1,
            previous_value: version as i64 - 1,
            value: version as i64,
            request_id: format!("r{version}"),
            at: "2026-01-01T00:00:00.000Z".into(),
        }
    }

    #[test]
    fn three_renderings_carry_the_same_facts() {
        let e = entry(3);
        let r: serde_json::Value = serde_json::from_str(&e.response_json()).unwrap();
        let a: serde_json::Value = serde_json::from_str(&e.entry_json()).unwrap();
        let u: serde_json::Value = serde_json::from_str(&e.update_message()).unwrap();
        for v in [&r, &a, &u] {
            assert_eq!(v["version"], 3);
            assert_eq!(v["value"], 3);
            assert_eq!(v["previous_value"], 2);
            assert_eq!(v["operation"], "increment");
            assert_eq!(v["amount"], 1);
        }
        assert_eq!(r["applied_at"], a["at"]);
        assert_eq!(e.fingerprint(), "increment:1");
        assert_eq!(u["type"], "update");
        assert_eq!(r.as_object().unwrap().len(), 7);
        assert_eq!(a.as_object().unwrap().len(), 7);
        assert_eq!(u.as_object().unwrap().len(), 7);
    }

    #[test]
    fn pages_say_whether_more_follow() {
        let rows: Vec<_> = (1..=3).map(entry).collect();
        let full: serde_json::Value = serde_json::from_str(&page_json(&rows, 2)).unwrap();
        assert_eq!(full["entries"].as_array().unwrap().len(), 2);
        assert_eq!(full["next_after"], 2);
        let last: serde_json::Value = serde_json::from_str(&page_json(&rows[2..], 2)).unwrap();
        assert_eq!(last["entries"][0]["version"], 3);
        assert!(last["next_after"].is_null());
        assert_eq!(page_json(&[], 5), "{\"entries\":[],\"next_after\":null}");
    }

    #[test]
    fn query_defaults_and_bounds() {
        assert_eq!(
            AuditQuery::parse("").unwrap(),
            AuditQuery {
                after: 0,
                limit: 100
            }
        );
        assert_eq!(AuditQuery::parse("after=7&limit=1000").unwrap().limit, 1000);
        for bad in [
            "limit=0",
            "limit=1001",
            "after=-1",
            "after=x",
            "page=2",
            "limit=5&limit=6",
        ] {
            assert_eq!(AuditQuery::parse(bad).unwrap_err().status(), 400, "{bad}");
        }
        let q = AuditQuery { after: 4, limit: 9 };
        assert_eq!(AuditQuery::parse(&q.encode()).unwrap(), q);
    }
}
