//! The counter's state and the one rule that changes it.
//!
//! [`Snapshot::apply`] is the whole business logic of a mutation: check the precondition,
//! compute the new value without leaving the exactly representable range, and describe the
//! result as an [`AuditEntry`]. It is pure; the counter object calls it, writes the entry in a
//! transaction, and only then adopts [`Snapshot::after`] as its new state.

use super::audit::AuditEntry;
use super::command::Mutation;
use super::json::JsonWriter;
use super::problem::Problem;
use super::vocab::{Operation, MAX_VALUE};

/// The counter as of one version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The current value.
    pub value: i64,
    /// How many mutations have been applied; 0 before the first.
    pub version: u64,
    /// When the last mutation was applied (RFC 3339), `None` before the first.
    pub updated_at: Option<String>,
}

impl Snapshot {
    /// The counter before any change: value 0, version 0.
    pub fn initial() -> Self {
        Snapshot {
            value: 0,
            version: 0,
            updated_at: None,
        }
    }

    /// Validates and applies `m` at time `at`, returning the audit entry that describes the
    /// change. Nothing is changed here: an `Err` means the request must change nothing.
    pub fn apply(&self, m: &Mutation, at: String) -> Result<AuditEntry, Problem> {
        if let Some(cond) = &m.if_match {
            if !cond.matches(self.version) {
                return Err(Problem::PreconditionFailed {
                    current_version: self.version,
                });
            }
        }
        let delta = match m.op {
            Operation::Increment => m.operand,
            Operation::Decrement => -m.operand,
            Operation::Set => m.operand.checked_sub(self.value).ok_or(Problem::Internal)?,
            Operation::Reset => -self.value,
        };
        let value = self
            .value
            .checked_add(delta)
            .filter(|v| v.abs() <= MAX_VALUE)
            .ok_or(Problem::OutOfRange {
                value: self.value,
                delta,
            })?;
        Ok(AuditEntry {
            version: self.version + 1,
            operation: m.op,
            amount: m.operand,
            previous_value: self.value,
            value,
            request_id: m.key.as_str().to_owned(),
            at,
        })
    }

    /// The state after `entry` was committed.
    pub fn after(entry: &AuditEntry) -> Snapshot {
        Snapshot {
            value: entry.value,
            version: entry.version,
            updated_at: Some(entry.at.clone()),
        }
    }

    /// The body of `GET /api/value`: `{"value","version","updated_at"}`.
    pub fn value_json(&self) -> String {
        JsonWriter::object_with_capacity(96)
            .int("value", self.value)
            .uint("version", self.version)
            .opt_string("updated_at", self.updated_at.as_deref())
            .finish()
    }

    /// The first WebSocket message of a connection: `{"type":"snapshot","value","version"}`.
    pub fn snapshot_message(&self) -> String {
        JsonWriter::object_with_capacity(80)
            .string("type", "snapshot")
            .int("value", self.value)
            .uint("version", self.version)
            .finish()
    }

    /// The strong entity tag of this version: `"<version>"`.
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::command::{Amount, IfMatch};
    use crate::core::idempotency::RequestKey;

    fn step(op: Operation, n: i64, if_match: Option<IfMatch>) -> Mutation {
        Mutation::step(
            op,
            Amount::new(n).unwrap(),
            RequestKey::parse("k-1", "Idempotency-Key").unwrap(),
            if_match,
        )
    }

    fn at(value: i64, version: u64) -> Snapshot {
        Snapshot {
            value,
            version,
            updated_at: None,
        }
    }

    #[test]
    fn increment_and_decrement_describe_the_change() {
        let e = at(10, 4)
            .apply(&step(Operation::Increment, 5, None), "t".into())
            .unwrap();
        assert_eq!(
            (e.version, e.previous_value, e.value, e.amount),
            (5, 10, 15, 5)
        );
        assert_eq!(e.request_id, "k-1");
        let e = at(10, 4)
            .apply(&step(Operation::Decrement, 15, None), "t".into())
            .unwrap();
        assert_eq!((e.version, e.value, e.delta()), (5, -5, -15));
        let s = Snapshot::after(&e);
        assert_eq!(
            (s.value, s.version, s.updated_at.as_deref()),
            (-5, 5, Some("t"))
        );
    }

    #[test]
    fn range_is_enforced_on_both_sides() {
        let top = at(MAX_VALUE - 1, 1);
        assert!(top
            .apply(&step(Operation::Increment, 1, None), "t".into())
            .is_ok());
        let e = top
            .apply(&step(Operation::Increment, 2, None), "t".into())
            .unwrap_err();
        assert_eq!(e.status(), 409);
        let bottom = at(-MAX_VALUE, 1);
        assert_eq!(
            bottom
                .apply(&step(Operation::Decrement, 1, None), "t".into())
                .unwrap_err()
                .status(),
            409
        );
    }

    #[test]
    fn if_match_gates_the_change() {
        let s = at(0, 3);
        let ok = step(Operation::Increment, 1, Some(IfMatch::Versions(vec![3])));
        assert!(s.apply(&ok, "t".into()).is_ok());
        let stale = step(Operation::Increment, 1, Some(IfMatch::Versions(vec![2])));
        assert_eq!(
            s.apply(&stale, "t".into()).unwrap_err(),
            Problem::PreconditionFailed { current_version: 3 }
        );
        let any = step(Operation::Increment, 1, Some(IfMatch::Any));
        assert!(s.apply(&any, "t".into()).is_ok());
    }

    #[test]
    fn set_and_reset() {
        let key = RequestKey::parse("k", "Idempotency-Key").unwrap();
        let set = Mutation {
            op: Operation::Set,
            operand: -40,
            key: key.clone(),
            if_match: None,
        };
        let e = at(2, 1).apply(&set, "t".into()).unwrap();
        assert_eq!((e.value, e.delta(), e.amount), (-40, -42, -40));
        let reset = Mutation {
            op: Operation::Reset,
            operand: 0,
            key,
            if_match: None,
        };
        let e = at(-MAX_VALUE, 9).apply(&reset, "t".into()).unwrap();
        assert_eq!((e.value, e.delta(), e.version), (0, MAX_VALUE, 10));
    }

    #[test]
    fn value_json_shape() {
        assert_eq!(
            Snapshot::initial().value_json(),
            "{\"value\":0,\"version\":0,\"updated_at\":null}"
        );
        let s = Snapshot {
            value: -3,
            version: 2,
            updated_at: Some("2026-01-01T00:00:00.000Z".into()),
        };
        assert_eq!(
            s.value_json(),
            "{\"value\":-3,\"version\":2,\"updated_at\":\"2026-01-01T00:00:00.000Z\"}"
        );
        assert_eq!(s.etag(), "\"2\"");
        assert_eq!(
            s.snapshot_message(),
            "{\"type\":\"snapshot\",\"value\":-3,\"version\":2}"
        );
    }
}
