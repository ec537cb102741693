//! Request metrics: the one Workers Analytics Engine data point every API request becomes.
//!
//! The edge writes exactly one point per request, where it writes the request's log line (so a
//! request whose log line is sampled away still counts). The point's layout is the contract
//! with the checked-in queries in `ops/queries/` and the runbook (`docs/OPERATIONS.md`):
//!
//! | column | holds | example |
//! |---|---|---|
//! | `index1` | the route (the sampling key): a known API path or `other` | `/api/increment` |
//! | `blob1` | the route again (indexes cannot be grouped on everywhere) | `/api/increment` |
//! | `blob2` | the method (`GET`, `HEAD`, `POST`, `OPTIONS`, or `OTHER`) | `POST` |
//! | `blob3` | the status class | `2xx` |
//! | `blob4` | the outcome: `ok`, `rejected`, `failed` for reads; `applied`, `replayed`, `rejected`, `failed` for changes | `applied` |
//! | `blob5` | the deployed version id (`CF_VERSION_METADATA.id`) | `a5f4…` |
//! | `blob6` | the location that served it (`request.cf.colo`) | `FRA` |
//! | `blob7` | the problem type of a refusal (`rate-limited`, …), else empty | `` |
//! | `double1` | 1 (the request count; sum it weighted by `_sample_interval`) | `1` |
//! | `double2` | the latency in ms, from arrival to the response being ready | `4` |
//! | `double3` | the amount of a change (its operand; 0 for reads) | `1` |
//! | `double4` | the HTTP status | `200` |
//!
//! Every value is bounded: routes and methods come from fixed lists, so the dataset's
//! cardinality does not grow with what clients send.
//!
//! Like the log line, a point is made in two halves: [`Start`] when the request arrives
//! (encoded into one string that travels with the promise callback) and [`End`] when the
//! response is ready.

use super::json::JsonWriter;
use super::log::Outcome;
use super::routes;

/// The route label for paths that are not part of the API.
pub const OTHER_ROUTE: &str = "other";

/// What is known when a request arrives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Start<'a> {
    /// Arrival time, ms since the epoch.
    pub started_ms: i64,
    /// The URL path as requested.
    pub path: &'a str,
    /// The HTTP method as requested.
    pub method: &'a str,
    /// `request.cf.colo`, if the platform gave one.
    pub colo: Option<&'a str>,
    /// For a change: its operand (the amount, or the value an admin sets).
    pub amount: Option<i64>,
}

impl Start<'_> {
    /// `<started_ms>|<route>|<method>|<colo>|<amount or ->`: every part is from a fixed alphabet
    /// without `|`.
    pub fn encode(&self) -> String {
        let amount = self
            .amount
            .map_or_else(|| "-".to_string(), |n| n.to_string());
        format!(
            "{}|{}|{}|{}|{amount}",
            self.started_ms,
            route_label(self.path),
            method_label(self.method),
            self.colo.filter(|c| is_colo(c)).unwrap_or(""),
        )
    }
}

/// What is known when the response is ready.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct End<'a> {
    /// The response status.
    pub status: u16,
    /// When the response was ready, ms since the epoch.
    pub now_ms: i64,
    /// Whether the response is an idempotent replay.
    pub replayed: bool,
    /// The problem type slug of a refusal, if known.
    pub problem: Option<&'a str>,
    /// The deployed version id (empty when the binding is absent).
    pub version_id: &'a str,
}

/// One Analytics Engine data point.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    /// `indexes[0]`.
    pub index: String,
    /// `blobs[0..7]`, in the order of the table in the module doc.
    pub blobs: [String; 7],
    /// `doubles[0..4]`.
    pub doubles: [f64; 4],
}

impl Point {
    /// The argument of `writeDataPoint`, as JSON: `{"indexes":[…],"blobs":[…],"doubles":[…]}`.
    pub fn to_json(&self) -> String {
        let strings = |items: &[String]| {
            let mut out = String::from("[");
            for (i, s) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                super::json::push_string(&mut out, s);
            }
            out.push(']');
            out
        };
        let doubles = self
            .doubles
            .iter()
            .map(|d| format!("{d}"))
            .collect::<Vec<_>>()
            .join(",");
        JsonWriter::object_with_capacity(256)
            .raw("indexes", &strings(std::slice::from_ref(&self.index)))
            .raw("blobs", &strings(&self.blobs))
            .raw("doubles", &format!("[{doubles}]"))
            .finish()
    }
}

/// The data point for an encoded [`Start`] and its [`End`]; `None` if `start` is not one.
pub fn point(start: &str, end: &End) -> Option<Point> {
    let mut parts = start.splitn(5, '|');
    let started: i64 = parts.next()?.parse().ok()?;
    let route = parts.next()?;
    let method = parts.next()?;
    let colo = parts.next()?;
    let amount = match parts.next()? {
        "-" => None,
        n => Some(n.parse::<i64>().ok()?),
    };
    let outcome = match amount {
        Some(_) => Outcome::of(end.status, end.replayed).as_str(),
        None => match end.status {
            500..=599 => "failed",
            400..=499 => "rejected",
            _ => "ok",
        },
    };
    Some(Point {
        index: route.to_string(),
        blobs: [
            route.to_string(),
            method.to_string(),
            status_class(end.status).to_string(),
            outcome.to_string(),
            end.version_id.to_string(),
            colo.to_string(),
            end.problem.unwrap_or("").to_string(),
        ],
        doubles: [
            1.0,
            (end.now_ms - started).max(0) as f64,
            amount.unwrap_or(0) as f64,
            f64::from(end.status),
        ],
    })
}

/// The route label of a path: the path itself when the API has it, otherwise [`OTHER_ROUTE`].
pub fn route_label(path: &str) -> &str {
    if routes::allowed(path).is_some() {
        path
    } else {
        OTHER_ROUTE
    }
}

/// The method label: the methods the API knows, or `OTHER`.
pub fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "OPTIONS" => "OPTIONS",
        _ => "OTHER",
    }
}

/// `1xx` … `5xx`.
pub fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// Whether `s` looks like a location code (`FRA`, `SJC`): 1–8 ASCII letters or digits.
fn is_colo(s: &str) -> bool {
    !s.is_empty() && s.len() <= 8 && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end(status: u16) -> End<'static> {
        End {
            status,
            now_ms: 1_000_007,
            replayed: false,
            problem: None,
            version_id: "v-1",
        }
    }

    fn start(path: &str, method: &str, amount: Option<i64>) -> String {
        Start {
            started_ms: 1_000_000,
            path,
            method,
            colo: Some("FRA"),
            amount,
        }
        .encode()
    }

    #[test]
    fn a_change_becomes_one_point_with_every_field() {
        let p = point(&start("/api/increment", "POST", Some(5)), &end(200)).unwrap();
        assert_eq!(p.index, "/api/increment");
        assert_eq!(
            p.blobs,
            ["/api/increment", "POST", "2xx", "applied", "v-1", "FRA", ""].map(String::from)
        );
        assert_eq!(p.doubles, [1.0, 7.0, 5.0, 200.0]);
        let replay = point(
            &start("/api/increment", "POST", Some(5)),
            &End {
                replayed: true,
                ..end(200)
            },
        )
        .unwrap();
        assert_eq!(replay.blobs[3], "replayed");
    }

    #[test]
    fn refusals_carry_their_problem_type() {
        let p = point(
            &start("/api/decrement", "POST", Some(1)),
            &End {
                problem: Some("rate-limited"),
                ..end(429)
            },
        )
        .unwrap();
        assert_eq!(p.blobs[2], "4xx");
        assert_eq!(p.blobs[3], "rejected");
        assert_eq!(p.blobs[6], "rate-limited");
        let read = point(&start("/api/value", "HEAD", None), &end(503)).unwrap();
        assert_eq!(read.blobs[1], "HEAD");
        assert_eq!(read.blobs[3], "failed");
        assert_eq!(read.doubles[2], 0.0);
        let socket = point(&start("/api/ws", "GET", None), &end(101)).unwrap();
        assert_eq!(
            (socket.blobs[2].as_str(), socket.blobs[3].as_str()),
            ("1xx", "ok")
        );
    }

    #[test]
    fn client_controlled_values_stay_bounded() {
        let p = point(
            &Start {
                started_ms: 1_000_000,
                path: "/api/whatever|x",
                method: "BREW",
                colo: Some("a|b"),
                amount: None,
            }
            .encode(),
            &end(404),
        )
        .unwrap();
        assert_eq!(p.index, OTHER_ROUTE);
        assert_eq!(p.blobs[1], "OTHER");
        assert_eq!(p.blobs[5], "");
    }

    #[test]
    fn the_argument_is_json_in_the_platform_shape() {
        let p = point(&start("/api/value", "GET", None), &end(200)).unwrap();
        let v: serde_json::Value = serde_json::from_str(&p.to_json()).unwrap();
        assert_eq!(v["indexes"], serde_json::json!(["/api/value"]));
        assert_eq!(v["blobs"].as_array().unwrap().len(), 7);
        assert_eq!(v["doubles"], serde_json::json!([1, 7, 0, 200]));
    }

    #[test]
    fn garbage_is_not_a_start() {
        for bad in ["", "x|/api/value|GET||-", "1|/api/value|GET|", "1|r|GET||q"] {
            assert_eq!(point(bad, &end(200)), None, "{bad}");
        }
    }
}
