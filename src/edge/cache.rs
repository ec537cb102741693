//! The platform's Cache API for answers that never change ([`crate::core::cache`] says which):
//! a proof for fixed tree sizes, a past value by version, an audit page read from an archived
//! segment. A hit costs neither the counter nor R2 anything. Every such answer, cached or fresh, carries the
//! same `Cache-Control` and `ETag`, and `If-None-Match` gets a 304.
//!
//! The cache is per location and best effort: a failed lookup or store is logged and the
//! answer is made fresh, never refused. (On a `workers.dev` host the platform keeps nothing;
//! the answers are still right, only not cached.)

use wasm_bindgen_futures::JsFuture;
use web_sys::{Response, ResponseInit};
use worker::Cache;

use crate::core::cache::{self, IMMUTABLE};
use crate::error::{Context, Result};
use crate::log::log_event;

/// The cached answer under `key`, as a 304 when `if_none_match` names it.
pub async fn lookup(key: &str, if_none_match: Option<&str>) -> Option<Response> {
    let hit = match Cache::default().get(key, false).await {
        Ok(hit) => hit?,
        Err(e) => {
            log_failure("cache lookup failed", &e);
            return None;
        }
    };
    let response: Response = hit.into();
    let etag = response.headers().get("etag").ok().flatten()?;
    if cache::not_modified(if_none_match, &etag) {
        return not_modified(&etag).ok();
    }
    Some(response)
}

/// `fresh` (a 200 of an answer that never changes) with its `Cache-Control` and `ETag`, kept
/// under `key`; a 304 instead when `if_none_match` names it. Anything but a 200 passes through.
pub async fn keep(key: &str, fresh: Response, if_none_match: Option<&str>) -> Response {
    if fresh.status() != 200 {
        return fresh;
    }
    let body = match fresh.array_buffer() {
        Ok(p) => match JsFuture::from(p).await.js("reading the answer") {
            Ok(b) => js_sys::Uint8Array::new(&b).to_vec(),
            Err(e) => {
                log_failure("reading an answer to cache failed", &e);
                return fresh;
            }
        },
        Err(_) => return fresh,
    };
    let etag = cache::etag(&body);
    let Ok(answer) = with_validators(&fresh, &body, &etag) else {
        return fresh;
    };
    match answer.clone().js("copying the answer") {
        Ok(copy) => {
            if let Err(e) = Cache::default().put(key, copy.into()).await {
                log_failure("cache store failed", &e);
            }
        }
        Err(e) => log_failure("cache store failed", &e),
    }
    if cache::not_modified(if_none_match, &etag) {
        if let Ok(r) = not_modified(&etag) {
            return r;
        }
    }
    answer
}

/// `fresh`'s status and headers with `body`, `Cache-Control: IMMUTABLE` and `etag`.
fn with_validators(fresh: &Response, body: &[u8], etag: &str) -> Result<Response> {
    let build = || {
        let headers = web_sys::Headers::new_with_headers(&fresh.headers())?;
        headers.set("cache-control", IMMUTABLE)?;
        headers.set("etag", etag)?;
        let init = ResponseInit::new();
        init.set_status(fresh.status());
        init.set_headers(&headers);
        Response::new_with_opt_u8_array_and_init(Some(&mut body.to_vec()), &init)
    };
    build().js("building the cached answer")
}

/// A 304 for `etag`.
fn not_modified(etag: &str) -> Result<Response> {
    let build = || {
        let headers = web_sys::Headers::new()?;
        headers.set("cache-control", IMMUTABLE)?;
        headers.set("etag", etag)?;
        headers.set("x-content-type-options", "nosniff")?;
        let init = ResponseInit::new();
        init.set_status(304);
        init.set_headers(&headers);
        Response::new_with_opt_str_and_init(None, &init)
    };
    build().js("building a 304")
}

/// A failure of the cache, which is best effort: a warning.
fn log_failure(msg: &str, error: &dyn std::fmt::Display) {
    log_event("warn", msg, |w| {
        w.string("error", &error.to_string());
    });
}
