//! The response's way out: one log line and one metrics point per request, CORS headers for
//! an allowed cross-origin caller, and what the shield learns from a change's answer.

use web_sys::{Headers, Response};

use crate::core::cors;
use crate::core::log::{self, Arrival, Departure};
use crate::core::metrics::{End, Start};
use crate::core::problem::Problem;
use crate::core::vocab::Operation;
use crate::core::wire;
use crate::error::{Context, Result};
use crate::http::now_ms;
use crate::log::log_line;

use super::config::Config;
use super::{metrics, shield};

/// What the edge knows about a request, for its log line.
pub(super) struct Facts<'a> {
    pub(super) started: i64,
    pub(super) method: &'a str,
    pub(super) path: &'a str,
    pub(super) request_id: String,
    /// The client identifier; read only when a limit or the log needs it.
    pub(super) client: String,
    pub(super) mutation: Option<(Operation, i64)>,
    /// Whether this request gets a log line (`REQUEST_LOG_SAMPLE_RATE`).
    pub(super) logged: bool,
    /// Whether this request gets a metrics point (the `METRICS` binding exists).
    pub(super) metered: bool,
    /// `request.cf.colo`, for the metrics point.
    pub(super) colo: Option<String>,
    /// A change the shield learns from: its client and key ([`shield::tag`]).
    pub(super) shield: Option<String>,
}

impl Facts<'_> {
    /// The encoded arrival for the log line, or `None` when this request is not logged.
    pub(super) fn arrival(&self) -> Option<String> {
        if !self.logged {
            return None;
        }
        Some(
            Arrival {
                started_ms: self.started,
                request_id: if self.request_id.is_empty() {
                    "-"
                } else {
                    &self.request_id
                },
                method: self.method,
                path: self.path,
                client: &self.client,
                mutation: self.mutation.map(|(op, n)| (op.as_str(), n)),
            }
            .encode(),
        )
    }

    /// The encoded start of the metrics point, or `None` when there is no dataset.
    pub(super) fn start(&self) -> Option<String> {
        self.metered.then(|| {
            Start {
                started_ms: self.started,
                path: self.path,
                method: self.method,
                colo: self.colo.as_deref(),
                amount: self.mutation.map(|(_, n)| n),
            }
            .encode()
        })
    }

    /// Reads the client identifier (`CF-Connecting-IP`) if it is not known yet; a missing or
    /// malformed one is `unknown`.
    pub(super) fn read_client(&mut self, headers: &Headers) {
        if self.client.is_empty() {
            self.client = headers
                .get("cf-connecting-ip")
                .ok()
                .flatten()
                .filter(|ip| wire::is_client_id(ip))
                .unwrap_or_else(|| "unknown".to_string());
        }
    }
}

/// Logs the request (when `arrival` is given), writes its metrics point (when `start` is
/// given) and adds CORS headers for an allowed cross-origin caller. `problem` is the problem
/// type when the edge refused the request; a refusal by the object is known by its status.
pub(super) fn finish(
    arrival: Option<&str>,
    start: Option<&str>,
    origin: Option<&str>,
    response: Response,
    problem: Option<&str>,
) -> Result<Response> {
    finish_change(arrival, start, None, origin, response, problem)
}

/// [`finish`] for a change the shield learns from (`shield`: [`shield::tag`]'s).
pub(super) fn finish_change(
    arrival: Option<&str>,
    start: Option<&str>,
    shield: Option<&str>,
    origin: Option<&str>,
    response: Response,
    problem: Option<&str>,
) -> Result<Response> {
    let status = response.status();
    if let Some(tag) = shield {
        let retry_after = (status == 429)
            .then(|| response.headers().get("retry-after").ok().flatten())
            .flatten();
        shield::learn_change(tag, status, retry_after.as_deref());
    }
    let problem = problem.or_else(|| {
        (status >= 400)
            .then(|| Problem::slug_of_status(status))
            .flatten()
    });
    let config = if arrival.is_some() || start.is_some() {
        Config::loaded()
    } else {
        None
    };
    let version_id = config.as_ref().map_or("", |c| c.version_id.as_str());
    let change = arrival.is_some_and(log::is_mutation) || start.is_some_and(is_change);
    let (version, replayed) = if change {
        let h = response.headers();
        let version = h
            .get("etag")
            .js("reading the answer's headers")?
            .and_then(|e| e.trim_matches('"').parse::<u64>().ok());
        let replayed = h
            .get("idempotent-replayed")
            .js("reading the answer's headers")?;
        (version, replayed.as_deref() == Some("true"))
    } else {
        (None, false)
    };
    let now = now_ms();
    if let Some(arrival) = arrival {
        let departure = Departure {
            status,
            now_ms: now,
            version,
            replayed,
            problem,
            version_id,
        };
        if let Some(line) = log::finish(arrival, &departure) {
            log_line(&line);
        }
    }
    if let (Some(start), Some(dataset)) = (start, config.as_ref().and_then(|c| c.metrics.as_ref()))
    {
        let end = End {
            status,
            now_ms: now,
            replayed,
            problem,
            version_id,
        };
        metrics::write(dataset, start, &end);
    }
    match origin {
        Some(o) => with_headers(response, &cors::response_headers(o)),
        None => Ok(response),
    }
}

/// Whether an encoded metrics start is a change's (it carries an amount).
fn is_change(start: &str) -> bool {
    !start.ends_with("|-")
}

/// A copy of `response` with `extra` headers set. Responses that came from the object have
/// immutable headers, so this re-wraps the body stream; used only for cross-origin requests.
fn with_headers(response: Response, extra: &[(&'static str, String)]) -> Result<Response> {
    if response.status() == 101 {
        return Ok(response);
    }
    let build = || {
        let headers = web_sys::Headers::new_with_headers(&response.headers())?;
        for (k, v) in extra {
            headers.set(k, v)?;
        }
        let init = web_sys::ResponseInit::new();
        init.set_status(response.status());
        init.set_headers(&headers);
        Response::new_with_opt_readable_stream_and_init(response.body().as_ref(), &init)
    };
    build().js("adding CORS headers")
}
