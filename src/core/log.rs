//! The structured log line: one JSON object per request, written by the edge.
//!
//! Logs are the service's metrics too: every line has the request id, route, status and
//! duration, and mutations add their operation, amount, resulting version and outcome, so
//! rates, latencies and error ratios can be computed from the log stream alone (Workers Logs or
//! `wrangler tail`).

use super::json::JsonWriter;

/// What became of a mutation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Applied now.
    Applied,
    /// A retry of a key already applied: answered from the stored response.
    Replayed,
    /// Refused (4xx): nothing changed.
    Rejected,
    /// Failed (5xx): nothing changed; safe to retry with the same key.
    Failed,
}

impl Outcome {
    /// Classifies a mutation's response.
    pub fn of(status: u16, replayed: bool) -> Self {
        match (status, replayed) {
            (200..=299, true) => Outcome::Replayed,
            (200..=299, false) => Outcome::Applied,
            (500..=599, _) => Outcome::Failed,
            _ => Outcome::Rejected,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::Replayed => "replayed",
            Outcome::Rejected => "rejected",
            Outcome::Failed => "failed",
        }
    }
}

/// The mutation part of a log line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MutationLog<'a> {
    /// `increment`, `decrement`, `set`, `reset`.
    pub operation: &'a str,
    /// The operand.
    pub amount: i64,
    /// The version after the change (or the replayed one), when known.
    pub version: Option<u64>,
    /// What happened.
    pub outcome: Outcome,
}

/// One request's log line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestLog<'a> {
    /// Wall-clock time of the request start (RFC 3339).
    pub ts: &'a str,
    /// The request id: the idempotency key for mutations, `cf-ray` or a UUID otherwise.
    pub request_id: &'a str,
    /// HTTP method.
    pub method: &'a str,
    /// URL path (no query: it may carry client data).
    pub path: &'a str,
    /// Response status.
    pub status: u16,
    /// Milliseconds from arrival to response (the platform's clock advances across I/O only).
    pub duration_ms: u64,
    /// The client identifier used for limits.
    pub client: &'a str,
    /// Present for mutations.
    pub mutation: Option<MutationLog<'a>>,
    /// The problem type slug for errors.
    pub problem: Option<&'a str>,
}

impl RequestLog<'_> {
    /// The JSON line.
    pub fn to_json(&self) -> String {
        let mut w = JsonWriter::object_with_capacity(256);
        w.string("ts", self.ts)
            .string("level", if self.status >= 500 { "error" } else { "info" })
            .string("msg", "request")
            .string("request_id", self.request_id)
            .string("method", self.method)
            .string("path", self.path)
            .uint("status", u64::from(self.status))
            .uint("duration_ms", self.duration_ms)
            .string("client", self.client);
        if let Some(m) = &self.mutation {
            w.string("operation", m.operation)
                .int("amount", m.amount)
                .opt_uint("version", m.version)
                .string("outcome", m.outcome.as_str());
        }
        if let Some(p) = self.problem {
            w.string("problem", p);
        }
        w.finish()
    }
}

/// Any other log line: `{"level","msg",...}` with the members `fields` writes.
pub fn event(level: &str, msg: &str, fields: impl FnOnce(&mut JsonWriter)) -> String {
    let mut w = JsonWriter::object();
    w.string("level", level).string("msg", msg);
    fields(&mut w);
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_json() {
        let line = event("error", "commit failed", |w| {
            w.string("error", "UNIQUE \"x\"\u{1b}").uint("attempt", 2);
        });
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["attempt"], 2);
    }

    #[test]
    fn outcomes() {
        assert_eq!(Outcome::of(200, false), Outcome::Applied);
        assert_eq!(Outcome::of(200, true), Outcome::Replayed);
        assert_eq!(Outcome::of(412, false), Outcome::Rejected);
        assert_eq!(Outcome::of(503, false), Outcome::Failed);
    }

    #[test]
    fn a_mutation_line_has_every_field() {
        let line = RequestLog {
            ts: "2026-01-01T00:00:00.000Z",
            request_id: "k1",
            method: "POST",
            path: "/api/increment",
            status: 200,
            duration_ms: 3,
            client: "203.0.113.1",
            mutation: Some(MutationLog {
                operation: "increment",
                amount: 2,
                version: Some(9),
                outcome: Outcome::Applied,
            }),
            problem: None,
        }
        .to_json();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        for k in [
            "ts",
            "level",
            "request_id",
            "method",
            "path",
            "status",
            "duration_ms",
            "operation",
            "amount",
            "version",
            "outcome",
        ] {
            assert!(!v[k].is_null(), "{k} missing in {line}");
        }
        assert_eq!(v["outcome"], "applied");
        assert!(!line.contains('\n'));
    }
}
