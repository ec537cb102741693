//! Calling the counter object, with retries only where the platform says they are safe.
//!
//! A call can fail before or after the object ran it (a dropped connection, the object being
//! restarted or moved). The platform marks an error `retryable` when trying again is
//! reasonable and `overloaded` when the object is shedding load. Mutations carry their
//! idempotency key from the first attempt, so a retry of a call that did run is answered
//! from the stored response and nothing is applied twice. Overload is never retried here: it
//! becomes 503 with `Retry-After`, so clients back off instead of piling on.
//!
//! This is transport only: whether a call waits to share a batch is decided above it, in
//! `batch.rs`.
//!
//! The first attempt costs no Rust future: the edge attaches its finishing step and [`retry`]
//! to the object's promise (`then(finish, retry)`), and only when the call fails does the
//! retry loop run as `async` code.

use std::cell::OnceCell;
use std::time::Duration;

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{future_to_promise, JsFuture};
use web_sys::{Request, RequestInit, Response};
use worker::worker_sys::{DurableObject, DurableObjectNamespace};
use worker::{Delay, Env};

use crate::bindings;
use crate::core::problem::Problem;
use crate::core::retry::{self, Next};
use crate::core::wire::ObjectCall;
use crate::error::{Context, Error, Result};
use crate::http;
use crate::log::log_event;

thread_local! {
    /// The `COUNTER` namespace. Bindings live as long as the isolate, so it is looked up once;
    /// stubs, which belong to one request, are made per call.
    static NAMESPACE: OnceCell<DurableObjectNamespace> = const { OnceCell::new() };
}

fn stub() -> Result<DurableObject> {
    NAMESPACE.with(|ns| bindings::counter_in(ns.get().ok_or(Error::Unbound("COUNTER"))?))
}

/// Looks the `COUNTER` namespace up once per isolate; every other function here needs it.
pub(super) fn load_namespace(env: &Env) -> Result<(), Problem> {
    NAMESPACE.with(|ns| {
        if ns.get().is_none() {
            let loaded = bindings::binding(env, "COUNTER").map_err(|e| fault("binding", &e))?;
            let _ = ns.set(loaded);
        }
        Ok(())
    })
}

/// Sends `call` to the counter object: the first attempt's promise, and the call's URL for
/// [`retry`] should it fail.
pub fn call(env: &Env, call: &ObjectCall) -> Result<(js_sys::Promise, String), Problem> {
    load_namespace(env)?;
    let url = call.encode();
    let first = send(&url).map_err(|e| fault("call", &e))?;
    Ok((first, url))
}

/// One call to the object at `url` (the namespace is loaded).
pub(super) fn send(url: &str) -> Result<js_sys::Promise> {
    stub()?.fetch_with_str(url).js("calling the counter")
}

/// `call`'s answer from the counter, retried where that is safe ([`retry`]): for the
/// edge's own uses of an answer (history, export, checkpoints, the badge), which read it.
pub async fn answer(env: &Env, call: &ObjectCall) -> Result<Response> {
    let (promise, url) = self::call(env, call)?;
    match JsFuture::from(promise).await {
        Ok(r) => r.dyn_into::<Response>().js("the counter's answer"),
        Err(error) => retry(url, error).await,
    }
}

#[wasm_bindgen]
extern "C" {
    /// The counter's stub seen as an RPC target (`src/entry.js`).
    type CounterRpc;

    /// `stub.batch(json)`: the batch's replies (a JSON string), or a rejection.
    #[wasm_bindgen(method, catch, js_name = batch)]
    fn batch(this: &CounterRpc, json: &str) -> Result<js_sys::Promise, JsValue>;
}

/// A batch call (the namespace is loaded): the object's method `batch` with the batch's JSON
/// (`core::batch`), whose answer is the replies as one JSON string, with no response body to
/// read. The call's own promise is a special RPC promise; other requests wait on the plain
/// promise made from it here, in the sender's context, exactly as on a `fetch` promise.
pub(super) fn send_batch(json: &str) -> Result<js_sys::Promise> {
    let rpc = stub()?
        .unchecked_into::<CounterRpc>()
        .batch(json)
        .js("calling the counter's batch")?;
    Ok(js_sys::Promise::resolve(&rpc))
}

/// After the first attempt at `url` failed with `error` (the value the call rejected with):
/// retries while the platform says that is sensible, and otherwise answers the problem. Fails
/// only if no response can be built: the result is the object's response or a 503 problem.
pub async fn retry(url: String, error: JsValue) -> Result<Response> {
    // A fresh stub each time: after an error the old one may be broken.
    match retrying(error, || send(&url)).await {
        Ok(r) => r.dyn_into::<Response>().js("the counter's answer"),
        Err(p) => http::problem_response(&p),
    }
}

/// The one retry loop: after attempt 1 failed with `error`, waits a random delay below the
/// cap [`retry::after_failure`] gives and sends again, until an attempt succeeds (its value)
/// or the platform's flags say to give up (the problem to answer).
async fn retrying(
    mut error: JsValue,
    send: impl Fn() -> Result<js_sys::Promise>,
) -> Result<JsValue, Problem> {
    let mut attempt = 1;
    loop {
        let cap = match decide(&error, attempt) {
            Next::Retry { cap_ms } => cap_ms,
            Next::GiveUp(p) => return Err(p),
        };
        Delay::from(Duration::from_millis((js_sys::Math::random() * cap) as u64)).await;
        attempt += 1;
        let outcome = match send() {
            Ok(promise) => JsFuture::from(promise).await,
            // Not sent (no stub): what the platform threw, if it threw anything.
            Err(e) => Err(e.to_js()),
        };
        match outcome {
            Ok(v) => return Ok(v),
            Err(e) => error = e,
        }
    }
}

/// [`retry::after_failure`] for a platform error, logged.
fn decide(error: &JsValue, attempt: u32) -> Next {
    let next = retry::after_failure(flag(error, "retryable"), flag(error, "overloaded"), attempt);
    let msg = match &next {
        Next::Retry { .. } => "counter call retried",
        Next::GiveUp(_) => "counter call failed",
    };
    log_error(msg, &crate::ffi::error_text(error), attempt);
    next
}

/// Opens a socket: the object needs the client's upgrade request itself, so its headers are
/// carried over to the internal URL. Not on the hot path, so plain `async` with retries.
pub fn connect(env: Env, req: Request, call: ObjectCall) -> js_sys::Promise {
    future_to_promise(async move {
        if let Err(p) = load_namespace(&env) {
            return Ok(http::problem_response(&p)?.into());
        }
        let url = call.encode();
        let send = || -> Result<js_sys::Promise> {
            let init = RequestInit::new();
            init.set_headers(&req.headers());
            let internal =
                Request::new_with_str_and_init(&url, &init).js("building a socket's call")?;
            stub()?
                .fetch_with_request(&internal)
                .js("calling the counter")
        };
        let first = match send() {
            Ok(promise) => JsFuture::from(promise).await,
            Err(e) => Err(e.to_js()),
        };
        match first {
            Ok(r) => Ok(r),
            Err(error) => match retrying(error, send).await {
                Ok(r) => Ok(r),
                Err(p) => Ok(http::problem_response(&p)?.into()),
            },
        }
    })
}

/// Whether the platform set `error[name] === true`.
pub(super) fn flag(error: &JsValue, name: &str) -> bool {
    js_sys::Reflect::get(error, &JsValue::from_str(name))
        .map(|v| v.as_bool() == Some(true))
        .unwrap_or(false)
}

/// A call that could not be made: logged with its cause; the client gets the problem.
pub(super) fn fault(what: &str, e: &Error) -> Problem {
    log_error(what, &e.to_string(), 0);
    e.problem()
}

fn log_error(msg: &str, error: &str, attempt: u32) {
    log_event("error", msg, |w| {
        w.uint("attempt", u64::from(attempt)).string("error", error);
    });
}
