//! What a client is told when a request fails, and its `application/problem+json` form
//! (RFC 9457).
//!
//! Each layer has one error type. This is the one clients see: every refusal (edge validation,
//! the object's checks) is a [`Problem`], and so is every failure, as told to the client. The
//! core's other error is for internal calls that do not decode
//! ([`CallError`](super::wire::CallError)); its pure parsers of settings and checks of stored
//! data return a message (`String`), which is the whole cause. The platform code has its own
//! error (`error::Error`: what failed, with its cause), which becomes a `Problem` in one place
//! (`Error::problem`: a problem a step decided, otherwise [`Problem::Internal`]) while its cause
//! goes to the log. The platform glue turns a `Problem` into an HTTP response in exactly one
//! place (`http::problem_response`), so every error has the same shape: `type`, `title`,
//! `status` (always equal to the HTTP status) and `detail`, plus the extension members listed
//! on each variant. Nothing internal (stack traces, SQL, JavaScript error text) ever reaches
//! `detail`: internal causes are logged, not returned.

use super::json::JsonWriter;

/// The media type of every error body.
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// Everything that can go wrong with a request, by what the client should do about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// 400: the body is not JSON at all.
    MalformedJson(String),
    /// 400: the body is JSON but not a valid command (wrong type, unknown field, amount out of
    /// range).
    InvalidBody(String),
    /// 400: a header has the wrong syntax (`Idempotency-Key`, `If-Match`, ...).
    InvalidHeader { name: &'static str, detail: String },
    /// 400: a query parameter is missing its value, unknown, repeated or out of range.
    InvalidQuery(String),
    /// 400: a WebSocket message the server cannot use (sent as an `error` message, not HTTP).
    InvalidMessage(String),
    /// 401: an admin operation without the right bearer token.
    Unauthorized,
    /// 403: the request's `Origin` is not allowed to change anything or to connect.
    ForbiddenOrigin(String),
    /// 404: no such resource.
    NotFound,
    /// 405: the path exists, the method does not.
    MethodNotAllowed { allow: &'static str },
    /// 409: the change would take the counter outside the exactly representable range.
    OutOfRange { value: i64, delta: i64 },
    /// 412: `If-Match` did not name the current version.
    PreconditionFailed { current_version: u64 },
    /// 413: the body is larger than the limit.
    PayloadTooLarge { limit: usize },
    /// 414: a URL longer than the limit.
    UriTooLong { limit: usize },
    /// 415: a body whose media type is not JSON.
    UnsupportedMediaType(String),
    /// 422: an idempotency key reused for a different operation or amount.
    KeyReused { key: String },
    /// 426: `/api/ws` without `Upgrade: websocket`.
    UpgradeRequired,
    /// 429: too many mutations (or connections) from one client.
    TooManyRequests {
        retry_after_secs: u32,
        detail: String,
    },
    /// 503: the counter cannot take the request now; safe to retry after the delay.
    Unavailable { retry_after_secs: u32 },
    /// 500: a fault of ours. The cause is logged; the client learns only that it may retry
    /// with the same idempotency key.
    Internal,
}

impl Problem {
    /// The HTTP status code, also the `status` member of the body.
    pub fn status(&self) -> u16 {
        match self {
            Problem::MalformedJson(_)
            | Problem::InvalidBody(_)
            | Problem::InvalidHeader { .. }
            | Problem::InvalidQuery(_)
            | Problem::InvalidMessage(_) => 400,
            Problem::Unauthorized => 401,
            Problem::ForbiddenOrigin(_) => 403,
            Problem::NotFound => 404,
            Problem::MethodNotAllowed { .. } => 405,
            Problem::OutOfRange { .. } => 409,
            Problem::PreconditionFailed { .. } => 412,
            Problem::PayloadTooLarge { .. } => 413,
            Problem::UriTooLong { .. } => 414,
            Problem::UnsupportedMediaType(_) => 415,
            Problem::KeyReused { .. } => 422,
            Problem::UpgradeRequired => 426,
            Problem::TooManyRequests { .. } => 429,
            Problem::Internal => 500,
            Problem::Unavailable { .. } => 503,
        }
    }

    /// The last segment of the `type` URI; stable, documented in the README and the OpenAPI
    /// description, and what clients should branch on.
    pub fn slug(&self) -> &'static str {
        match self {
            Problem::MalformedJson(_) => "malformed-json",
            Problem::InvalidBody(_) => "invalid-body",
            Problem::InvalidHeader { .. } => "invalid-header",
            Problem::InvalidQuery(_) => "invalid-query",
            Problem::InvalidMessage(_) => "invalid-message",
            Problem::Unauthorized => "unauthorized",
            Problem::ForbiddenOrigin(_) => "forbidden-origin",
            Problem::NotFound => "not-found",
            Problem::MethodNotAllowed { .. } => "method-not-allowed",
            Problem::OutOfRange { .. } => "out-of-range",
            Problem::PreconditionFailed { .. } => "precondition-failed",
            Problem::PayloadTooLarge { .. } => "payload-too-large",
            Problem::UriTooLong { .. } => "uri-too-long",
            Problem::UnsupportedMediaType(_) => "unsupported-media-type",
            Problem::KeyReused { .. } => "idempotency-key-reused",
            Problem::UpgradeRequired => "upgrade-required",
            Problem::TooManyRequests { .. } => "rate-limited",
            Problem::Unavailable { .. } => "unavailable",
            Problem::Internal => "internal",
        }
    }

    /// The problem type of an error response known only by its status, where that status has
    /// exactly one problem type (true of every status the counter object refuses with: 409,
    /// 412, 422, 429, 500, 503); `None` for 400 and for statuses that are not problems. The log
    /// line and the request metric of a refusal by the object use it, without reading the body.
    pub fn slug_of_status(status: u16) -> Option<&'static str> {
        Some(match status {
            401 => "unauthorized",
            403 => "forbidden-origin",
            404 => "not-found",
            405 => "method-not-allowed",
            409 => "out-of-range",
            412 => "precondition-failed",
            413 => "payload-too-large",
            414 => "uri-too-long",
            415 => "unsupported-media-type",
            422 => "idempotency-key-reused",
            426 => "upgrade-required",
            429 => "rate-limited",
            500 => "internal",
            503 => "unavailable",
            _ => return None,
        })
    }

    /// A short, fixed summary of the problem type.
    pub fn title(&self) -> &'static str {
        match self {
            Problem::MalformedJson(_) => "Malformed JSON",
            Problem::InvalidBody(_) => "Invalid request body",
            Problem::InvalidHeader { .. } => "Invalid header",
            Problem::InvalidQuery(_) => "Invalid query parameter",
            Problem::InvalidMessage(_) => "Invalid message",
            Problem::Unauthorized => "Unauthorized",
            Problem::ForbiddenOrigin(_) => "Origin not allowed",
            Problem::NotFound => "Not found",
            Problem::MethodNotAllowed { .. } => "Method not allowed",
            Problem::OutOfRange { .. } => "Counter out of range",
            Problem::PreconditionFailed { .. } => "Version mismatch",
            Problem::PayloadTooLarge { .. } => "Payload too large",
            Problem::UriTooLong { .. } => "URI too long",
            Problem::UnsupportedMediaType(_) => "Unsupported media type",
            Problem::KeyReused { .. } => "Idempotency key reused",
            Problem::UpgradeRequired => "Upgrade required",
            Problem::TooManyRequests { .. } => "Too many requests",
            Problem::Unavailable { .. } => "Service unavailable",
            Problem::Internal => "Internal error",
        }
    }

    /// The human explanation of this occurrence.
    pub fn detail(&self) -> String {
        match self {
            Problem::MalformedJson(why) => format!("The body is not valid JSON: {why}."),
            Problem::InvalidBody(why) | Problem::InvalidQuery(why) | Problem::InvalidMessage(why) => {
                why.clone()
            }
            Problem::InvalidHeader { name, detail } => format!("{name}: {detail}"),
            Problem::Unauthorized => {
                "This operation needs the header Authorization: Bearer <admin token>.".into()
            }
            Problem::ForbiddenOrigin(origin) => {
                format!("Requests from the origin {origin} may read but not change the counter or connect to it.")
            }
            Problem::NotFound => "There is nothing at this path.".into(),
            Problem::MethodNotAllowed { allow } => {
                format!("This path accepts only: {allow}.")
            }
            Problem::OutOfRange { value, delta } => format!(
                "Applying {delta:+} to {value} would leave the range ±{} that every client can represent exactly; nothing was changed.",
                super::vocab::MAX_VALUE
            ),
            Problem::PreconditionFailed { current_version } => format!(
                "If-Match did not name the current version, which is {current_version}; nothing was changed."
            ),
            Problem::PayloadTooLarge { limit } => {
                format!("The body is larger than {limit} bytes.")
            }
            Problem::UriTooLong { limit } => format!("The URL is longer than {limit} bytes."),
            Problem::UnsupportedMediaType(why) => why.clone(),
            Problem::KeyReused { key } => format!(
                "The idempotency key {key:?} was already used for a different operation or amount; use a new key for a new change."
            ),
            Problem::UpgradeRequired => {
                "This endpoint speaks WebSocket only: send Upgrade: websocket.".into()
            }
            Problem::TooManyRequests { detail, .. } => detail.clone(),
            Problem::Unavailable { retry_after_secs } => format!(
                "The counter is busy or restarting; retry with the same idempotency key after {retry_after_secs} s."
            ),
            Problem::Internal => {
                "Something failed on our side and nothing was changed; retry with the same idempotency key.".into()
            }
        }
    }

    /// Response headers this problem needs besides `Content-Type`.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        match self {
            Problem::MethodNotAllowed { allow } => vec![("allow", (*allow).to_string())],
            Problem::TooManyRequests {
                retry_after_secs, ..
            }
            | Problem::Unavailable { retry_after_secs } => {
                vec![("retry-after", retry_after_secs.to_string())]
            }
            Problem::Unauthorized => vec![(
                "www-authenticate",
                "Bearer realm=\"number-acidizer admin\"".to_string(),
            )],
            Problem::PreconditionFailed { current_version } => {
                vec![("etag", format!("\"{current_version}\""))]
            }
            _ => Vec::new(),
        }
    }

    /// The `application/problem+json` body.
    pub fn to_json(&self) -> String {
        let mut w = JsonWriter::object();
        w.string("type", &format!("/problems/{}", self.slug()));
        w.string("title", self.title());
        w.uint("status", u64::from(self.status()));
        w.string("detail", &self.detail());
        match self {
            Problem::PreconditionFailed { current_version } => {
                w.uint("current_version", *current_version);
            }
            Problem::TooManyRequests {
                retry_after_secs, ..
            }
            | Problem::Unavailable { retry_after_secs } => {
                w.uint("retry_after", u64::from(*retry_after_secs));
            }
            Problem::InvalidHeader { name, .. } => {
                w.string("header", name);
            }
            _ => {}
        }
        w.finish()
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status(), self.title(), self.detail())
    }
}

impl std::error::Error for Problem {}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<Problem> {
        vec![
            Problem::MalformedJson("x".into()),
            Problem::InvalidBody("x".into()),
            Problem::InvalidHeader {
                name: "If-Match",
                detail: "x".into(),
            },
            Problem::InvalidQuery("x".into()),
            Problem::InvalidMessage("x".into()),
            Problem::Unauthorized,
            Problem::ForbiddenOrigin("https://evil.example".into()),
            Problem::NotFound,
            Problem::MethodNotAllowed { allow: "GET" },
            Problem::OutOfRange { value: 1, delta: 2 },
            Problem::PreconditionFailed { current_version: 7 },
            Problem::PayloadTooLarge { limit: 1024 },
            Problem::UriTooLong { limit: 2048 },
            Problem::UnsupportedMediaType("x".into()),
            Problem::KeyReused { key: "k".into() },
            Problem::UpgradeRequired,
            Problem::TooManyRequests {
                retry_after_secs: 3,
                detail: "x".into(),
            },
            Problem::Unavailable {
                retry_after_secs: 1,
            },
            Problem::Internal,
        ]
    }

    #[test]
    fn body_status_equals_http_status_and_has_the_four_members() {
        for p in all() {
            let v: serde_json::Value = serde_json::from_str(&p.to_json()).unwrap();
            assert_eq!(v["status"], u64::from(p.status()), "{p:?}");
            assert_eq!(v["type"], format!("/problems/{}", p.slug()));
            assert_eq!(v["title"], p.title());
            assert!(!v["detail"].as_str().unwrap().is_empty());
            assert!((400..600).contains(&p.status()));
        }
    }

    #[test]
    fn slugs_are_unique() {
        let mut slugs: Vec<_> = all().iter().map(Problem::slug).collect();
        slugs.sort_unstable();
        let n = slugs.len();
        slugs.dedup();
        assert_eq!(slugs.len(), n);
    }

    #[test]
    fn a_status_names_its_problem_type_only_when_it_has_one() {
        let problems = all();
        for p in &problems {
            let shared = problems.iter().filter(|q| q.status() == p.status()).count() > 1;
            let expected = (!shared).then_some(p.slug());
            assert_eq!(Problem::slug_of_status(p.status()), expected, "{p:?}");
        }
        for status in [200, 101, 304, 400, 418, 502] {
            assert_eq!(Problem::slug_of_status(status), None, "{status}");
        }
    }

    #[test]
    fn status_specific_headers() {
        assert_eq!(
            Problem::MethodNotAllowed { allow: "GET, HEAD" }.headers(),
            vec![("allow", "GET, HEAD".to_string())]
        );
        let limited = Problem::TooManyRequests {
            retry_after_secs: 4,
            detail: "slow down".into(),
        };
        assert_eq!(limited.headers(), vec![("retry-after", "4".to_string())]);
        assert!(Problem::Unauthorized.headers()[0].1.starts_with("Bearer"));
    }

    #[test]
    fn details_escape_hostile_text() {
        let p = Problem::KeyReused {
            key: "a\"b\\c\n".into(),
        };
        let v: serde_json::Value = serde_json::from_str(&p.to_json()).unwrap();
        assert!(v["detail"].as_str().unwrap().contains("a\\\"b"));
    }
}
