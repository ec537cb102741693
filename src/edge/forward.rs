//! Calling the counter object, with retries only where the platform says they are safe.
//!
//! A call can fail before or after the object ran it (a dropped connection, the object being
//! restarted or moved). The platform marks an error `retryable` when trying again is
//! reasonable and `overloaded` when the object is shedding load. Mutations carry their
//! idempotency key from the first attempt, so a retry of a call that did run is answered
//! from the stored response and nothing is applied twice. Overload is never retried here: it
//! becomes 503 with `Retry-After`, so clients back off instead of piling on.

use std::time::Duration;

use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Request, RequestInit, Response};
use worker::worker_sys::DurableObject;
use worker::{Delay, Env};

use crate::core::problem::Problem;
use crate::core::wire::ObjectCall;
use crate::counter::OBJECT_NAME;
use crate::http::log_event;

use super::config;

/// Attempts per call, the first included.
const MAX_ATTEMPTS: u32 = 3;
/// Backoff before the second attempt; doubled for each further one, with full jitter.
const BASE_BACKOFF_MS: f64 = 25.0;

/// Sends `call` to the counter object and returns its response.
pub async fn call(env: &Env, call: &ObjectCall) -> Result<Response, Problem> {
    let url = call.encode();
    with_retries(env, |stub| stub.fetch_with_str(&url)).await
}

/// Opens a socket: the object needs the client's upgrade request itself, so its headers are
/// carried over to the internal URL.
pub async fn connect(env: &Env, req: &Request, call: &ObjectCall) -> Result<Response, Problem> {
    let url = call.encode();
    with_retries(env, |stub| {
        let init = RequestInit::new();
        init.set_headers(&req.headers());
        let internal = Request::new_with_str_and_init(&url, &init)?;
        stub.fetch_with_request(&internal)
    })
    .await
}

async fn with_retries(
    env: &Env,
    send: impl Fn(&DurableObject) -> Result<js_sys::Promise, JsValue>,
) -> Result<Response, Problem> {
    let namespace = config::counter_namespace(env).map_err(|e| fault("binding", &e))?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        // A fresh stub per attempt: after an error the old one may be broken.
        let stub = namespace
            .get_by_name(OBJECT_NAME)
            .map_err(|e| fault("stub", &e))?;
        let outcome = match send(&stub) {
            Ok(promise) => JsFuture::from(promise).await,
            Err(e) => Err(e),
        };
        let error = match outcome {
            Ok(r) => return r.dyn_into::<Response>().map_err(|e| fault("response", &e)),
            Err(e) => e,
        };
        let overloaded = flag(&error, "overloaded");
        if overloaded {
            log_error("counter overloaded", &error, attempt);
            return Err(Problem::Unavailable {
                retry_after_secs: 2,
            });
        }
        if !flag(&error, "retryable") || attempt >= MAX_ATTEMPTS {
            log_error("counter call failed", &error, attempt);
            return Err(Problem::Unavailable {
                retry_after_secs: 1,
            });
        }
        log_error("counter call retried", &error, attempt);
        let cap = BASE_BACKOFF_MS * f64::from(1u32 << (attempt - 1));
        Delay::from(Duration::from_millis((js_sys::Math::random() * cap) as u64)).await;
    }
}

/// Whether the platform set `error[name] === true`.
fn flag(error: &JsValue, name: &str) -> bool {
    js_sys::Reflect::get(error, &JsValue::from_str(name))
        .map(|v| v.as_bool() == Some(true))
        .unwrap_or(false)
}

fn fault(what: &str, e: &JsValue) -> Problem {
    log_error(what, e, 0);
    Problem::Internal
}

fn log_error(msg: &str, e: &JsValue, attempt: u32) {
    log_event("error", msg, |w| {
        w.uint("attempt", u64::from(attempt))
            .string("error", &crate::ffi::error_text(e));
    });
}
