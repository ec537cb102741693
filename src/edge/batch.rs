//! Group commit at the edge: at most K calls to the counter in flight per isolate.
//!
//! A read or change that finds fewer than K calls of this isolate in flight is sent at once,
//! alone, exactly as without batching: at low load nothing ever waits. One that finds K in
//! flight waits in a queue (no timer decides when it leaves). When a call comes back, the queue
//! leaves as the next call: one request alone, or a batch of up to [`batch::MAX_CALLS`]
//! requests ([`batch::MAX_URL_BYTES`]). So under load batches grow by themselves, and a queued
//! read only ever shares a call issued after it arrived, which keeps reads linearizable.
//!
//! The runtime ties every call to the request it was made for, and ends a request's calls when
//! that request is answered. So a batch is sent by one of its own requests, the *leader* (the
//! first in the queue), from its own handler: the request whose call just came back only
//! signals the leader. Every signal resolves a promise the waiting request made itself, so what
//! follows (sending the batch, building the response from the reply, sending itself alone)
//! runs in that request's own context. While a request waits it holds a keep-alive timer of
//! its own (the runtime cancels a request that waits on nothing of its own); the timer never
//! decides anything unless a request waited [`KEEP_ALIVE_MS`] — then it is sent alone.
//!
//! A batch's answer is split into one response per request ([`http::reply`], the same function
//! that builds a single call's answer at the object). A batch call that fails as a whole (the
//! call rejects, or its answer is not a batch answer) is sent again request by request with the
//! same keys, each with the usual retries; when the object is overloaded, every request gets
//! the overload answer instead.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::Response;

use crate::core::batch::{self, Builder, Reply};
use crate::core::problem::Problem;
use crate::ffi::{self, Callback, Thenable};
use crate::http::{self, log_event};

use super::forward;

/// How long a request waits in the queue or in a batch before it is sent alone: far beyond any
/// call's duration, only a guard.
const KEEP_ALIVE_MS: f64 = 30_000.0;

/// A request waiting for a call.
struct Waiter {
    id: u32,
    /// Its item in a batch URL.
    item: String,
    /// Its own call's URL, for sending it alone.
    url: String,
    /// Resolves (with `id`) the promise the request's handler waits on.
    resolve: js_sys::Function,
}

/// What a waiting request is told to do next.
enum Signal {
    /// Send the next call with these requests (the leader first).
    Lead(Vec<Waiter>),
    /// Here is the answer.
    Reply(Reply),
    /// Send yourself alone (the batch failed, or the wait was too long).
    Alone(String),
    /// Fail with this error (the object is overloaded).
    Fail(JsValue),
}

/// The isolate's calls in flight and the requests waiting for the next one.
#[derive(Default)]
struct Batcher {
    /// K (`BATCH_MAX_IN_FLIGHT`).
    limit: u32,
    in_flight: u32,
    queue: VecDeque<Waiter>,
    /// Batches sent and not answered yet: their requests, and whether the call was counted
    /// as finished.
    sent: HashMap<u32, (Vec<Waiter>, bool)>,
    /// Signals not yet picked up, by request.
    signals: HashMap<u32, Signal>,
    /// Keep-alive timers, by request.
    timers: HashMap<u32, JsValue>,
    next_id: u32,
}

thread_local! {
    static BATCHER: RefCell<Batcher> = RefCell::default();

    /// `finally` of a call sent with a place in flight: one call fewer in flight.
    static SINGLE_DONE: Closure<dyn FnMut()> = Closure::new(finished);

    /// `(id)`: a waiting request's signal arrived; runs in that request's context.
    static ON_SIGNAL: Closure<dyn Fn(f64) -> Result<JsValue, JsValue>> =
        Closure::new(|id: f64| on_signal(id as u32));

    /// `(id)`: a waiting request's keep-alive timer fired.
    static ON_TIMER: Closure<dyn Fn(f64)> = Closure::new(|id: f64| on_timer(id as u32));

    /// `(batch id, response)`: a batch call answered.
    static ANSWERED: Closure<dyn Fn(f64, JsValue) -> JsValue> =
        Closure::new(|id: f64, response: JsValue| answered(id as u32, response));

    /// `(batch id, text)`: a batch answer's body.
    static SPLIT: Closure<dyn Fn(f64, String)> =
        Closure::new(|id: f64, text: String| split(id as u32, &text));

    /// `(batch id, error)`: a batch call failed as a whole.
    static FAILED: Closure<dyn Fn(f64, JsValue)> =
        Closure::new(|id: f64, error: JsValue| failed(id as u32, error));
}

fn with<R>(f: impl FnOnce(&mut Batcher) -> R) -> R {
    BATCHER.with(|b| f(&mut b.borrow_mut()))
}

/// Sends the call whose URL is `url` and batch item is `item`, now or with a later call: the
/// response's promise, and the URL for [`forward::retry`] should it fail.
pub fn submit(url: String, item: String, limit: u32) -> Result<(js_sys::Promise, String), Problem> {
    let (now, id) = with(|b| {
        b.limit = limit;
        let id = b.next_id;
        b.next_id = b.next_id.wrapping_add(1);
        if b.in_flight < limit {
            b.in_flight += 1;
            (true, id)
        } else {
            (false, id)
        }
    });
    if now {
        return match forward::send(&url) {
            Ok(p) => Ok((SINGLE_DONE.with(|f| p.finally(f)), url)),
            Err(e) => {
                finished();
                Err(forward::fault("call", &e))
            }
        };
    }
    let (signal, resolve) = waiting_promise();
    let resolve = resolve.ok_or(Problem::Internal)?;
    let timer = ON_TIMER.with(|f| ffi::set_timeout(&bind(f.as_ref(), id), KEEP_ALIVE_MS));
    with(|b| {
        b.timers.insert(id, timer);
        b.queue.push_back(Waiter {
            id,
            item,
            url: url.clone(),
            resolve,
        })
    });
    let promise = ON_SIGNAL.with(|f| signal.unchecked_ref::<Thenable>().then_call(f.as_ref()));
    Ok((promise, url))
}

/// A promise made in the current request's context, and its resolver.
fn waiting_promise() -> (js_sys::Promise, Option<js_sys::Function>) {
    let mut resolver = None;
    let promise = js_sys::Promise::new(&mut |resolve, _reject| resolver = Some(resolve));
    (promise, resolver)
}

/// Tells waiting request `w` what to do next (it runs in its own context).
fn signal(w: &Waiter, s: Signal) {
    with(|b| b.signals.insert(w.id, s));
    let _ = w.resolve.call1(&JsValue::NULL, &JsValue::from(w.id));
}

/// A call with a place in flight came back: one fewer in flight; the queue may leave.
fn finished() {
    with(|b| b.in_flight = b.in_flight.saturating_sub(1));
    dispatch();
}

/// While fewer than K calls are in flight and requests wait: takes the next call's requests
/// out of the queue, holds its place in flight and signals its leader.
fn dispatch() {
    loop {
        let next = with(|b| {
            if b.in_flight >= b.limit || b.queue.is_empty() {
                return None;
            }
            let mut builder = Builder::new();
            let mut members = Vec::new();
            while let Some(w) = b.queue.front() {
                if !builder.is_empty() && !builder.fits(&w.item) {
                    break;
                }
                builder.push(&w.item);
                members.extend(b.queue.pop_front());
            }
            b.in_flight += 1;
            Some(members)
        });
        let Some(members) = next else { return };
        let (id, resolve) = (members[0].id, members[0].resolve.clone());
        with(|b| b.signals.insert(id, Signal::Lead(members)));
        let _ = resolve.call1(&JsValue::NULL, &JsValue::from(id));
    }
}

/// A waiting request's signal, in its own context: the response, or a promise of it.
fn on_signal(id: u32) -> Result<JsValue, JsValue> {
    let (signal, timer) = with(|b| (b.signals.remove(&id), b.timers.remove(&id)));
    if let Some(t) = timer {
        ffi::clear_timeout(&t);
    }
    match signal {
        Some(Signal::Reply(r)) => http::reply(&r).map(Into::into),
        Some(Signal::Alone(url)) => forward::send(&url).map(Into::into),
        Some(Signal::Fail(e)) => Err(e),
        Some(Signal::Lead(members)) => Ok(lead(members).into()),
        None => Err(JsValue::from_str("a waiting request lost its signal")),
    }
}

/// The leader sends its call: itself alone, or the batch.
fn lead(mut members: Vec<Waiter>) -> js_sys::Promise {
    if members.len() == 1 {
        return match forward::send(&members[0].url) {
            Ok(p) => SINGLE_DONE.with(|f| p.finally(f)),
            Err(e) => {
                finished();
                js_sys::Promise::reject(&e)
            }
        };
    }
    // The leader waits for its own reply like every other member.
    let (mine, resolve) = waiting_promise();
    if let Some(resolve) = resolve {
        members[0].resolve = resolve;
    }
    let mine = ON_SIGNAL.with(|f| mine.unchecked_ref::<Thenable>().then_call(f.as_ref()));
    let mut builder = Builder::new();
    for m in &members {
        builder.push(&m.item);
    }
    match forward::send(&builder.url()) {
        Ok(promise) => {
            let id = with(|b| {
                let id = b.next_id;
                b.next_id = b.next_id.wrapping_add(1);
                b.sent.insert(id, (members, false));
                id
            });
            let on_answer = ANSWERED.with(|f| bind(f.as_ref(), id));
            let on_fail = FAILED.with(|f| bind(f.as_ref(), id));
            let _ = promise
                .unchecked_ref::<Thenable>()
                .then2(&on_answer, &on_fail);
        }
        Err(e) => {
            log_error("counter batch not sent", &e, members.len());
            for m in &members {
                signal(m, Signal::Alone(m.url.clone()));
            }
            finished();
        }
    }
    mine
}

/// A waiting request's keep-alive timer fired: still queued after [`KEEP_ALIVE_MS`], it is
/// sent alone; inside a batch in flight, it keeps waiting for the batch.
fn on_timer(id: u32) {
    let queued = with(|b| {
        b.timers.remove(&id);
        let at = b.queue.iter().position(|w| w.id == id)?;
        b.queue.remove(at)
    });
    match queued {
        Some(w) => signal(&w, Signal::Alone(w.url.clone())),
        None => {
            let waiting = with(|b| b.sent.values().any(|(ws, _)| ws.iter().any(|w| w.id == id)));
            if waiting {
                let t = ON_TIMER.with(|f| ffi::set_timeout(&bind(f.as_ref(), id), KEEP_ALIVE_MS));
                with(|b| b.timers.insert(id, t));
            }
        }
    }
}

/// A batch call was answered: the object is done with it, so the queue may leave; then the
/// body is read and split.
fn answered(id: u32, response: JsValue) -> JsValue {
    count_finished(id);
    let is_batch = response.dyn_ref::<Response>().is_some_and(|r| {
        r.status() == 200
            && r.headers().get("content-type").ok().flatten().as_deref()
                == Some(batch::CONTENT_TYPE)
    });
    if !is_batch {
        let status = response.dyn_ref::<Response>().map_or(0, Response::status);
        fall_back(id, &JsValue::from_str(&format!("status {status}")));
        return JsValue::UNDEFINED;
    }
    match response.unchecked_into::<Response>().text() {
        Ok(text) => {
            let on_text = SPLIT.with(|f| bind(f.as_ref(), id));
            let on_fail = FAILED.with(|f| bind(f.as_ref(), id));
            text.unchecked_ref::<Thenable>()
                .then2(&on_text, &on_fail)
                .into()
        }
        Err(e) => {
            fall_back(id, &e);
            JsValue::UNDEFINED
        }
    }
}

/// The batch's body: one reply per request, in order.
fn split(id: u32, text: &str) {
    let Some(members) = take(id) else { return };
    match batch::decode_replies(text, members.len()) {
        Ok(replies) => {
            for (m, reply) in members.iter().zip(replies) {
                signal(m, Signal::Reply(reply));
            }
        }
        Err(_) => resend(members, &JsValue::from_str("malformed batch answer")),
    }
}

/// The batch call failed as a whole.
fn failed(id: u32, error: JsValue) {
    count_finished(id);
    fall_back(id, &error);
}

/// Marks batch `id`'s call as finished (once) and lets the queue leave.
fn count_finished(id: u32) {
    let first = with(|b| match b.sent.get_mut(&id) {
        Some(entry) if !entry.1 => {
            entry.1 = true;
            b.in_flight = b.in_flight.saturating_sub(1);
            true
        }
        _ => false,
    });
    if first {
        dispatch();
    }
}

fn take(id: u32) -> Option<Vec<Waiter>> {
    with(|b| b.sent.remove(&id).map(|(w, _)| w))
}

/// Every request of batch `id` again, one by one (or the overload answer for each).
fn fall_back(id: u32, error: &JsValue) {
    let Some(members) = take(id) else { return };
    if forward::flag(error, "overloaded") {
        log_error("counter batch refused: overloaded", error, members.len());
        // Each request's own failure path answers 503 without sending it again.
        for m in &members {
            signal(m, Signal::Fail(error.clone()));
        }
        return;
    }
    resend(members, error);
}

/// Each request sent again alone, with its key.
fn resend(members: Vec<Waiter>, error: &JsValue) {
    log_error(
        "counter batch failed; sending its requests one by one",
        error,
        members.len(),
    );
    for m in &members {
        signal(m, Signal::Alone(m.url.clone()));
    }
}

/// `f.bind(null, id)`.
fn bind(f: &JsValue, id: u32) -> JsValue {
    f.unchecked_ref::<Callback>()
        .bind_num(&JsValue::NULL, f64::from(id))
}

fn log_error(msg: &str, e: &JsValue, requests: usize) {
    log_event("error", msg, |w| {
        w.uint("requests", requests as u64)
            .string("error", &crate::ffi::error_text(e));
    });
}
