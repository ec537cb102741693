//! The structured log line: one JSON object per request, written by the edge.
//!
//! Logs are the service's metrics too: every line has the request id, route, status and
//! duration, and mutations add their operation, amount, resulting version and outcome, so
//! rates, latencies and error ratios can be computed from the log stream alone (Workers Logs or
//! `wrangler tail`).

use super::json::JsonWriter;
use super::time::rfc3339_millis;

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

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::Replayed => "replayed",
            Outcome::Rejected => "rejected",
            Outcome::Failed => "failed",
        }
    }
}

/// What the edge knows when a request arrives. The rest of the line (status, version,
/// duration) is only known when the response is, which for a call to the counter object is
/// later, in a promise callback; so an arrival is encoded into one string that travels with
/// that callback and is completed by [`finish`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arrival<'a> {
    /// Arrival time, ms since the epoch.
    pub started_ms: i64,
    /// The request id: the idempotency key for mutations, `cf-ray` otherwise (`-` when absent).
    pub request_id: &'a str,
    /// HTTP method.
    pub method: &'a str,
    /// URL path (no query: it may carry client data).
    pub path: &'a str,
    /// The client identifier used for limits.
    pub client: &'a str,
    /// For mutations: the operation and its operand.
    pub mutation: Option<(&'a str, i64)>,
}

impl Arrival<'_> {
    /// `<started_ms>|<m or r>|<JSON members>`.
    pub fn encode(&self) -> String {
        let mut w = JsonWriter::object_with_capacity(192);
        w.string("request_id", self.request_id)
            .string("method", self.method)
            .string("path", self.path)
            .string("client", self.client);
        if let Some((op, amount)) = self.mutation {
            w.string("operation", op).int("amount", amount);
        }
        let members = w.finish();
        let kind = if self.mutation.is_some() { 'm' } else { 'r' };
        format!(
            "{}|{kind}|{}",
            self.started_ms,
            &members[1..members.len() - 1]
        )
    }
}

/// Whether an encoded arrival is a mutation's (whose line gets version and outcome).
pub fn is_mutation(arrival: &str) -> bool {
    arrival.split('|').nth(1) == Some("m")
}

/// What the response says, for the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Departure<'a> {
    /// Response status.
    pub status: u16,
    /// When the response was ready, ms since the epoch (the platform's clock advances across
    /// I/O only, so this measures waiting for the counter, not CPU time).
    pub now_ms: i64,
    /// The counter's version the response carries (its ETag), if any.
    pub version: Option<u64>,
    /// Whether it was an idempotent replay.
    pub replayed: bool,
    /// The problem type slug of a refusal (by the edge, or by the object as its status
    /// tells).
    pub problem: Option<&'a str>,
    /// The deployed version id (`CF_VERSION_METADATA.id`); empty when unknown.
    pub version_id: &'a str,
}

/// The complete log line for an encoded [`Arrival`] and its [`Departure`]: `ts`, `level`,
/// `msg`, the arrival's members, `status`, `duration_ms`, and for mutations `version` and
/// `outcome`. `None` if `arrival` is not an encoded arrival.
pub fn finish(arrival: &str, d: &Departure) -> Option<String> {
    let mut parts = arrival.splitn(3, '|');
    let started: i64 = parts.next()?.parse().ok()?;
    let mutation = match parts.next()? {
        "m" => true,
        "r" => false,
        _ => return None,
    };
    let members = parts.next()?;
    let mut w = JsonWriter::object_with_capacity(members.len() + 160);
    w.string("ts", &rfc3339_millis(started))
        .string("level", if d.status >= 500 { "error" } else { "info" })
        .string("msg", "request");
    let mut line = w.finish();
    line.pop();
    line.push(',');
    line.push_str(members);
    line.push('}');
    let mut rest = JsonWriter::object_with_capacity(96);
    rest.uint("status", u64::from(d.status))
        .uint("duration_ms", (d.now_ms - started).max(0) as u64);
    if mutation {
        let ok = (200..300).contains(&d.status);
        rest.opt_uint("version", d.version.filter(|_| ok))
            .string("outcome", Outcome::of(d.status, d.replayed).as_str());
    }
    if let Some(p) = d.problem {
        rest.string("problem", p);
    }
    if !d.version_id.is_empty() {
        rest.string("version_id", d.version_id);
    }
    let rest = rest.finish();
    line.pop();
    line.push(',');
    line.push_str(&rest[1..]);
    Some(line)
}

/// Parses `REQUEST_LOG_SAMPLE_RATE`: absent or empty is 1 (every request), otherwise a
/// number from 0 to 1.
pub fn parse_sample_rate(var: Option<&str>) -> Result<f64, String> {
    match var.map(str::trim) {
        None | Some("") => Ok(1.0),
        Some(s) => s
            .parse::<f64>()
            .ok()
            .filter(|r| (0.0..=1.0).contains(r))
            .ok_or_else(|| format!("expected a number from 0 to 1, got {s:?}")),
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

    fn arrival<'a>(mutation: Option<(&'a str, i64)>) -> Arrival<'a> {
        Arrival {
            started_ms: 1_795_631_512_000,
            request_id: "k|1",
            method: "POST",
            path: "/api/increment",
            client: "203.0.113.1",
            mutation,
        }
    }

    fn departure(status: u16, replayed: bool) -> Departure<'static> {
        Departure {
            status,
            now_ms: 1_795_631_512_003,
            version: Some(9),
            replayed,
            problem: None,
            version_id: "0f6d1c2e-v",
        }
    }

    #[test]
    fn a_mutation_line_has_every_field() {
        let line = finish(
            &arrival(Some(("increment", 2))).encode(),
            &departure(200, false),
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        for k in [
            "ts",
            "level",
            "msg",
            "request_id",
            "method",
            "path",
            "client",
            "status",
            "duration_ms",
            "operation",
            "amount",
            "version",
            "outcome",
        ] {
            assert!(!v[k].is_null(), "{k} missing in {line}");
        }
        assert_eq!(v["request_id"], "k|1");
        assert_eq!(v["duration_ms"], 3);
        assert_eq!(v["outcome"], "applied");
        assert_eq!(v["ts"], "2026-11-25T18:31:52.000Z");
        assert_eq!(v["version_id"], "0f6d1c2e-v");
        assert!(!line.contains('\n'));
        let replay = finish(
            &arrival(Some(("increment", 2))).encode(),
            &departure(200, true),
        )
        .unwrap();
        assert!(replay.contains("\"outcome\":\"replayed\""));
        let refused = finish(
            &arrival(Some(("increment", 2))).encode(),
            &departure(412, false),
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&refused).unwrap();
        assert!(
            v["version"].is_null(),
            "a refused change has no version of its own"
        );
        assert_eq!(v["outcome"], "rejected");
        assert_eq!(v["level"], "info");
    }

    #[test]
    fn a_read_line_and_an_error_line() {
        let mut d = departure(503, false);
        d.problem = Some("unavailable");
        let line = finish(&arrival(None).encode(), &d).unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["problem"], "unavailable");
        assert!(v.get("outcome").is_none() && v.get("operation").is_none());
    }

    #[test]
    fn the_kind_survives_encoding() {
        assert!(is_mutation(&arrival(Some(("set", 5))).encode()));
        assert!(!is_mutation(&arrival(None).encode()));
    }

    #[test]
    fn sample_rates() {
        assert_eq!(parse_sample_rate(None), Ok(1.0));
        assert_eq!(parse_sample_rate(Some(" ")), Ok(1.0));
        assert_eq!(parse_sample_rate(Some("0")), Ok(0.0));
        assert_eq!(parse_sample_rate(Some("0.25")), Ok(0.25));
        for bad in ["-0.1", "1.5", "all", "NaN"] {
            assert!(parse_sample_rate(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn garbage_is_not_an_arrival() {
        for bad in ["", "x|m|", "1|q|\"a\":1", "1|m"] {
            assert_eq!(finish(bad, &departure(200, false)), None, "{bad}");
        }
    }
}
