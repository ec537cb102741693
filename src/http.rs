//! Building HTTP responses, and the one place a [`Problem`] becomes one.
//!
//! Both halves of the service (the edge and the counter object) answer through these helpers,
//! so every response carries the same baseline headers: a JSON media type, `Cache-Control:
//! no-store` (the counter changes every moment; no cache may answer for it) and
//! `X-Content-Type-Options: nosniff`. The helpers talk to `web_sys` directly rather than through
//! `worker::Response`, which would copy the body and rebuild the headers once more on the way
//! out.

use wasm_bindgen::JsValue;
use web_sys::{Headers, Response, ResponseInit};

use crate::core::batch::{Media, Reply};
use crate::core::problem::{Problem, PROBLEM_CONTENT_TYPE};
use crate::error::{Context, Result};

/// `application/json` for successful bodies.
pub const JSON: &str = "application/json";
/// Plain text (checkpoints, keys).
pub const TEXT: &str = "text/plain; charset=utf-8";

/// A response with `body`, `status`, the baseline headers and `extra` headers.
pub fn respond(
    status: u16,
    content_type: &str,
    body: &str,
    extra: &[(&str, &str)],
) -> Result<Response> {
    let build = || {
        let headers = Headers::new()?;
        headers.set("content-type", content_type)?;
        headers.set("cache-control", "no-store")?;
        headers.set("x-content-type-options", "nosniff")?;
        for (name, value) in extra {
            headers.set(name, value)?;
        }
        let init = ResponseInit::new();
        init.set_status(status);
        init.set_headers(&headers);
        // 204 and 304 must not have a body at all, not even an empty one.
        let body = (!matches!(status, 204 | 304)).then_some(body);
        Response::new_with_opt_str_and_init(body, &init)
    };
    build().js("building a response")
}

thread_local! {
    /// `{status: 200, headers: {baseline JSON headers}}`, made once per isolate. The Response
    /// constructor copies what it needs from it, so one object serves every 200 answer.
    static JSON_OK: Result<ResponseInit, JsValue> = (|| {
        let headers = Headers::new()?;
        headers.set("content-type", JSON)?;
        headers.set("cache-control", "no-store")?;
        headers.set("x-content-type-options", "nosniff")?;
        let init = ResponseInit::new();
        init.set_status(200);
        init.set_headers(&headers);
        Ok(init)
    })();
}

/// A `200 application/json` response with the baseline headers and `extra` ones. This is the
/// answer to almost every request, so it is built from a prepared init: one crossing for the
/// response, two per extra header.
pub fn json(body: &str, extra: &[(&str, &str)]) -> Result<Response> {
    let build = || -> Result<Response, JsValue> {
        let response = JSON_OK.with(|init| match init {
            Ok(init) => Response::new_with_opt_str_and_init(Some(body), init),
            Err(e) => Err(e.clone()),
        })?;
        if !extra.is_empty() {
            let headers = response.headers();
            for (name, value) in extra {
                headers.set(name, value)?;
            }
        }
        Ok(response)
    };
    build().js("building a response")
}

/// The `application/problem+json` response for `p`, with the headers its status needs
/// (`Allow`, `Retry-After`, `WWW-Authenticate`, ...). An [`Error`](crate::error::Error)
/// becomes a problem first ([`Error::problem`](crate::error::Error::problem)).
pub fn problem_response(p: &Problem) -> Result<Response> {
    let extra = p.headers();
    let extra: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
    respond(p.status(), PROBLEM_CONTENT_TYPE, &p.to_json(), &extra)
}

/// The response for one request's [`Reply`]: the same bytes and headers whether the reply
/// came alone or split out of a batch answer.
pub fn reply_response(r: &Reply) -> Result<Response> {
    let extra: Vec<(&str, &str)> = r
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    if r.status == 200 && r.content_type == Media::Json {
        json(&r.body, &extra)
    } else {
        respond(r.status, r.content_type.as_str(), &r.body, &extra)
    }
}

/// Milliseconds since the epoch from the platform clock (which, by design, only advances
/// across I/O).
pub fn now_ms() -> i64 {
    js_sys::Date::now() as i64
}

/// A `200 text/event-stream` response reading `body`, with the event stream's headers
/// ([`crate::core::sse::HEADERS`]): the relays' streams and the edge's (relays off) alike.
pub fn event_stream(body: &web_sys::ReadableStream) -> Result<Response> {
    let build = || -> Result<Response, JsValue> {
        let headers = Headers::new()?;
        headers.set("content-type", crate::core::sse::CONTENT_TYPE)?;
        for (k, v) in crate::core::sse::HEADERS {
            headers.set(k, v)?;
        }
        let init = ResponseInit::new();
        init.set_status(200);
        init.set_headers(&headers);
        Response::new_with_opt_readable_stream_and_init(Some(body), &init)
    };
    build().js("building an event stream's response")
}
