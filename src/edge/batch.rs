//! Group commit at the edge: at most K calls to the counter in flight per isolate.
//!
//! A read or change that finds fewer than K calls of this isolate in flight, and nobody
//! waiting, is sent at once, alone, exactly as without batching: at low load nothing ever
//! waits. (While members of a batch just answered have not yet woken, it lets them go first:
//! see "The woken go first" at [`submit`].) Otherwise it joins the *open batch* (no timer
//! decides when it leaves): the first request of an open batch is its *leader*, the others its
//! members. When a call in flight comes back, the leader sends the open batch as the next call:
//! itself alone, or up to [`batch::MAX_CALLS`] requests ([`batch::MAX_BYTES`]). So under load
//! batches grow by themselves, and a queued read only ever shares a call issued after it
//! arrived, which keeps reads linearizable.
//!
//! Reads share calls only while many requests wait ([`reads_share`], `BATCH_READS_FROM`): below
//! that, a read that finds no batch open is sent at once, alone, holding no place among the K.
//!
//! # Every wait is on another living request's promise
//!
//! The runtime ties every call (its stub, its trace span) to the request it is made for. A
//! continuation of a promise that a request made itself but that *another* request resolves is
//! meant to run in the maker's context; under sustained load it does not reliably do so (it
//! runs in the resolver's context, and the call made there fails with "Cannot perform I/O on
//! behalf of a different request (I/O type: SpanParent)"). Waiting on a promise that another,
//! still living request made is the runtime's other cross-request path: the waiter is woken
//! by the runtime in its own context. So here nobody's own promise is ever resolved by
//! someone else:
//!
//! - the leader of the front open batch waits for the first of the calls in flight to come
//!   back (`Promise.race` over their promises, made by their senders, who wait for them);
//! - a member waits for its leader's *outcome* promise (made by the leader, who lives until its
//!   batch is answered); the leader of a later open batch waits for the earlier leader's;
//! - a leader resolves its own outcome promise, in its own context, once its batch is
//!   answered (or failed), after storing every member's reply.
//!
//! Each woken request then reads what it should do from the shared state and does it in its
//! own context: build its response from its reply, send its own batch, or send itself alone.
//! Every waiter also races a timer of its own (the runtime cancels a request that waits on
//! nothing of its own), which wakes it every [`TICK_MS`] to look again. It decides nothing
//! unless a request waited [`KEEP_ALIVE_MS`]: then a member whose batch is in flight sends
//! itself alone (with its key: a change the batch applied is answered from its stored
//! response), and a call that has not come back by then (its sender was cancelled) no longer
//! holds a place in flight. The tick is also how a waiter learns that this Wasm instance
//! trapped (a panic): its wake, code of the dead instance, fails, and the request gets the
//! problem+json 500 of `src/entry.js` within a tick, its client retrying with its key. (A
//! promise settled at the trap would have to be made by a request that is still alive.)
//!
//! A request sent alone (nobody waiting, or a leader whose batch is itself) is its own call as a
//! plain request (its URL, [`ObjectCall::encode`]), whose response is passed through unread,
//! exactly as with batching off. A batch is a call of the counter's method `batch` (the
//! platform's RPC, [`forward::send_batch`]): its argument is the batch as JSON
//! ([`batch::Call`]s), its answer the replies as one JSON string ([`Reply`]s), so no response
//! body is read.
//!
//! Why the lone request keeps its URL while the batch is typed JSON: the URL is what every
//! version of the object answers, so it is also the fallback when a batch fails, and it is what
//! reaches an object that predates the method or this JSON (during a rollout, or a rollback); it
//! also stays the cheapest call. BENCHMARKS.md, "Typed batches", has the A/B of the change.
//!
//! A batch's answer is split into one response per request ([`http::reply_response`], the same function
//! that builds a single call's answer at the object). A batch call that fails as a whole (the
//! call rejects, or its answer is not a batch answer: logged with its cause) is sent again
//! request by request with the same keys, each with the usual retries; when the object is
//! overloaded, every request gets the overload answer instead.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use worker::Env;

use crate::core::batch::{self, Builder, Reply};
use crate::core::problem::Problem;
use crate::core::wire::ObjectCall;
use crate::error::{Error, Result};
use crate::ffi::{self, Callback, Thenable};
use crate::http;
use crate::log::log_event;

use super::config::Config;
use super::forward;

/// How long a request waits before it stops waiting for a batch: far beyond any call's
/// duration, only a guard.
const KEEP_ALIVE_MS: f64 = 30_000.0;

/// After how long an entry of a request that never woke is forgotten ([`forget_the_cancelled`]).
const FORGET_AFTER_MS: f64 = 10.0 * KEEP_ALIVE_MS;

/// How often a waiting request wakes on its own timer to look again (waits are far shorter
/// under any load, so it rarely fires): after a trap, the longest a waiter of the dead
/// instance waits for its 500.
const TICK_MS: f64 = 1_000.0;

/// A request waiting in an open batch.
struct Waiter {
    id: u32,
    /// Its own call's URL, for sending it alone.
    url: String,
}

/// Requests gathering for the next call; the first is the leader.
struct Open {
    members: Vec<Waiter>,
    builder: Builder,
    /// The leader's outcome promise (made by the leader), and its resolver.
    outcome: js_sys::Promise,
    resolve: js_sys::Function,
}

/// A call in flight.
struct Call {
    id: u32,
    /// Settles when the object answered (made by the sender, who waits for it).
    done: js_sys::Promise,
    /// For a leader's call: its members and the leader's outcome resolver.
    batch: Option<(Vec<Waiter>, js_sys::Function)>,
    /// For a batch's call: the leader's outcome promise, which its members wait for.
    outcome: Option<js_sys::Promise>,
    /// When it was sent (`Date.now()`).
    sent_at: f64,
}

/// What a woken request does next.
enum Outcome {
    /// Here is the answer.
    Reply(Reply),
    /// Send yourself alone (the batch failed).
    Alone,
    /// Fail with this error (the object is overloaded).
    Fail(JsValue),
}

/// The isolate's calls in flight and the requests waiting for the next ones.
#[derive(Default)]
struct Batcher {
    /// K (`BATCH_MAX_IN_FLIGHT`).
    limit: u32,
    calls: Vec<Call>,
    open: VecDeque<Open>,
    /// Outcomes not yet picked up, by request, with when each was stored (`Date.now()`).
    outcomes: HashMap<u32, (Outcome, f64)>,
    /// Requests letting the woken pick up their outcomes first ([`submit`]): their URL, batch
    /// item, whether each is a read, and since when it waits (`Date.now()`).
    yielding: HashMap<u32, (String, String, bool, f64)>,
    /// `BATCH_READS_FROM`.
    reads_from: u32,
    /// Waiting requests' timers, the URL to send them alone, and since when they wait
    /// (`Date.now()`).
    waiting: HashMap<u32, (JsValue, String, f64)>,
    /// Reads sent alone while reads do not share calls (they hold no place among the K), by
    /// request, with when each was sent (`Date.now()`).
    reads_alone: HashMap<u32, f64>,
    /// Whether reads share calls now ([`batch::reads_share`]).
    reads_sharing: bool,
    next_id: u32,
}

thread_local! {
    static BATCHER: RefCell<Batcher> = RefCell::default();

    /// `(id)`: a waiting request was woken, in its own context.
    static ON_WAKE: Closure<dyn Fn(f64) -> Result<JsValue, JsValue>> =
        Closure::new(|id: f64| on_wake(id as u32));

    /// `(id)`: a request that let the woken go first decides again, in its own context.
    static RESUME: Closure<dyn Fn(f64) -> Result<JsValue, JsValue>> =
        Closure::new(|id: f64| resume(id as u32));

    /// `(call id, leader id, answer)`: a batch call answered (the leader's context).
    static ANSWERED: Closure<dyn Fn(f64, f64, JsValue) -> Result<JsValue, JsValue>> =
        Closure::new(|call: f64, leader: f64, answer: JsValue| {
            answered(call as u32, leader as u32, answer)
        });

    /// `(call id, leader id, error)`: a batch call failed as a whole (the leader's context).
    static FAILED: Closure<dyn Fn(f64, f64, JsValue) -> Result<JsValue, JsValue>> =
        Closure::new(|call: f64, leader: f64, error: JsValue| {
            failed(call as u32, leader as u32, error)
        });
}

#[wasm_bindgen]
extern "C" {
    /// `Promise.race(iterable)`.
    #[wasm_bindgen(js_namespace = Promise, js_name = race)]
    fn promise_race(promises: &js_sys::Array) -> js_sys::Promise;

    #[wasm_bindgen(method, js_name = bind)]
    fn bind_num_num(this: &Callback, this_arg: &JsValue, a: f64, b: f64) -> JsValue;
}

fn with<R>(f: impl FnOnce(&mut Batcher) -> R) -> R {
    BATCHER.with(|b| f(&mut b.borrow_mut()))
}

fn new_id(b: &mut Batcher) -> u32 {
    let id = b.next_id;
    b.next_id = b.next_id.wrapping_add(1);
    id
}

/// [`forward::call`] for a request's read or change: with batching on (a `BATCH_MAX_IN_FLIGHT`
/// above 0) a call that can share a batch goes through [`submit`], which may hold it for the
/// next call.
pub fn call(
    env: &Env,
    call: &ObjectCall,
    config: &Config,
) -> Result<(js_sys::Promise, String), Problem> {
    if config.batch_in_flight > 0 {
        if let Some(item) = batch::item(call) {
            forward::load_namespace(env)?;
            let read = matches!(call, ObjectCall::Value);
            return submit(call.encode(), item, read, config);
        }
    }
    forward::call(env, call)
}

/// Sends the call whose URL is `url` and batch item is `item` (a read if `read`), now or with a
/// later call: the response's promise, and the URL for [`forward::retry`] should it fail.
///
/// # The woken go first
///
/// Members of a batch that was answered wake in their own contexts. The runtime delivers such a
/// wake-up (like a timer) only when its event loop has nothing else to run. A request that
/// finds no batch open and a place among the K would be sent at once; while such requests keep
/// coming, their calls and their clients' next requests keep the loop busy, and those members
/// wait (0.1 to 0.7 s at 16 connections, BENCHMARKS.md, "Late wakes: the
/// runtime's event loop"). So while outcomes of the last [`TICK_MS`] wait to be picked up, such
/// a request (or a read that would go alone) first waits for a timer of its own of 0 ms (the
/// runtime's next look), then decides again, at most once.
fn submit(
    url: String,
    item: String,
    read: bool,
    config: &Config,
) -> Result<(js_sys::Promise, String), Problem> {
    with(|b| {
        b.limit = config.batch_in_flight;
        b.reads_from = config.batch_reads_from;
    });
    place(url, item, read, true)
}

/// [`submit`] after the settings are stored; `may_yield` is false once the request has let the
/// woken go first.
fn place(
    url: String,
    item: String,
    read: bool,
    may_yield: bool,
) -> Result<(js_sys::Promise, String), Problem> {
    enum Place {
        /// A read, alone while reads do not share calls.
        Read(u32),
        Now(u32),
        /// Lets the woken pick up their outcomes first.
        Yield(u32),
        /// Joined an open batch: wait for this promise (another request's).
        Member(u32, js_sys::Promise),
        /// Leads a new open batch, behind another one (wait for its outcome) or at the front
        /// (wait for a call in flight).
        Leader(u32, Option<js_sys::Promise>),
    }
    let place = with(|b| {
        let id = new_id(b);
        if b.open.is_empty() {
            let read_alone = read && !reads_share(b, b.reads_from);
            let at_once = read_alone || (b.calls.len() as u32) < b.limit;
            if at_once && may_yield && outcomes_waiting(b) {
                return Ok(Place::Yield(id));
            }
            if read_alone {
                b.reads_alone.insert(id, js_sys::Date::now());
                return Ok(Place::Read(id));
            }
            if at_once {
                return Ok(Place::Now(id));
            }
        }
        if let Some(back) = b.open.back_mut() {
            if back.builder.fits(&item) {
                back.builder.push(&item);
                back.members.push(Waiter {
                    id,
                    url: url.clone(),
                });
                return Ok(Place::Member(id, back.outcome.clone()));
            }
        }
        let ahead = b.open.back().map(|o| o.outcome.clone());
        let (outcome, resolve) = own_promise();
        let resolve = resolve.ok_or(Problem::Internal)?;
        let mut builder = Builder::new();
        builder.push(&item);
        b.open.push_back(Open {
            members: vec![Waiter {
                id,
                url: url.clone(),
            }],
            builder,
            outcome,
            resolve,
        });
        Ok(Place::Leader(id, ahead))
    })?;
    let promise = match place {
        Place::Read(id) => return send_read(id, &url).map(|p| (p, url)),
        Place::Now(id) => return send_single(id, &url, None).map(|p| (p, url)),
        Place::Yield(id) => {
            with(|b| {
                let now = js_sys::Date::now();
                forget_the_cancelled(b, now);
                b.yielding.insert(id, (url.clone(), item, read, now))
            });
            let next_look = js_sys::Promise::new(&mut |resolve, _| {
                ffi::set_timeout(&resolve, 0.0);
            });
            let resume = RESUME.with(|f| bind(f.as_ref(), id));
            next_look
                .unchecked_ref::<Thenable>()
                .then2(&resume, &resume)
        }
        Place::Member(id, outcome) => wait(id, &url, vec![outcome], js_sys::Date::now()),
        Place::Leader(id, Some(ahead)) => wait(id, &url, vec![ahead], js_sys::Date::now()),
        Place::Leader(id, None) => wait(id, &url, in_flight(), js_sys::Date::now()),
    };
    Ok((promise, url))
}

/// Whether outcomes stored in the last [`TICK_MS`] wait to be picked up (an older one belongs to
/// a request the runtime cancelled, which never wakes). With none stored, as at low load, it
/// does not ask the runtime for the time.
fn outcomes_waiting(b: &Batcher) -> bool {
    if b.outcomes.is_empty() {
        return false;
    }
    let now = js_sys::Date::now();
    b.outcomes.values().any(|(_, at)| now - *at < TICK_MS)
}

/// Forgets what requests that the runtime cancelled (their clients went away) left behind, which
/// they never wake to take: their waiting entries, outcomes and places while yielding. A living
/// request goes alone after [`KEEP_ALIVE_MS`] and picks up its outcome or decides again within a
/// tick, so anything [`FORGET_AFTER_MS`] old at `now` is a cancelled request's.
fn forget_the_cancelled(b: &mut Batcher, now: f64) {
    let kept = |at: f64| now - at < FORGET_AFTER_MS;
    b.waiting.retain(|_, (_, _, since)| kept(*since));
    b.outcomes.retain(|_, (_, at)| kept(*at));
    b.yielding.retain(|_, (.., at)| kept(*at));
}

/// A request that let the woken go first decides again (its own context), without yielding.
fn resume(id: u32) -> Result<JsValue, JsValue> {
    let Some((url, item, read, _)) = with(|b| b.yielding.remove(&id)) else {
        return Err(Error::Invariant("a yielding request lost its place").into());
    };
    match place(url, item, read, false) {
        Ok((promise, _)) => Ok(promise.into()),
        Err(p) => Err(Error::from(p).into()),
    }
}

/// Whether reads share calls now: from `BATCH_READS_FROM` requests of this isolate waiting on
/// the counter (in calls, waiting for one, or reads alone) on, until fewer than half of that
/// wait. Below it a read's call costs the object little and a shared call costs the edge a
/// wait (BENCHMARKS.md, "Reads alone while few wait"), so a read is sent at once, alone; nobody
/// waiting is overtaken, as a read alone is only sent while no batch is open.
fn reads_share(b: &mut Batcher, from: u32) -> bool {
    let waiting = |b: &Batcher| (b.calls.len() + b.waiting.len() + b.reads_alone.len()) as u32;
    let mark = if b.reads_sharing { from / 2 } else { from };
    if !b.reads_alone.is_empty() && waiting(b) >= mark {
        // A read whose sender was cancelled (its client went away) never comes back; after the
        // keep-alive it no longer counts, so it cannot hold reads sharing calls.
        let now = js_sys::Date::now();
        b.reads_alone.retain(|_, sent| now - *sent < KEEP_ALIVE_MS);
    }
    b.reads_sharing = batch::reads_share(b.reads_sharing, waiting(b), from);
    b.reads_sharing
}

/// A promise made in the current request's context, and its resolver.
fn own_promise() -> (js_sys::Promise, Option<js_sys::Function>) {
    let mut resolver = None;
    let promise = js_sys::Promise::new(&mut |resolve, _reject| resolver = Some(resolve));
    (promise, resolver)
}

/// The promises of the calls in flight (each made by its sender).
fn in_flight() -> Vec<js_sys::Promise> {
    with(|b| b.calls.iter().map(|c| c.done.clone()).collect())
}

/// Request `id`, waiting since `since`, waits in its own context for the first of `others`
/// (other requests' promises) or its own timer ([`TICK_MS`]); then [`on_wake`] runs in its
/// context.
fn wait(id: u32, url: &str, others: Vec<js_sys::Promise>, since: f64) -> js_sys::Promise {
    let race = js_sys::Array::new();
    for p in others {
        race.push(&p);
    }
    let mut timer = JsValue::UNDEFINED;
    let alarm = js_sys::Promise::new(&mut |resolve, _| {
        timer = ffi::set_timeout(&resolve, TICK_MS);
    });
    race.push(&alarm);
    with(|b| b.waiting.insert(id, (timer, url.to_owned(), since)));
    let woken = promise_race(&race);
    // A settled or failed call wakes the waiter alike: what to do is read from the state.
    ON_WAKE.with(|f| {
        let wake = bind(f.as_ref(), id);
        woken.unchecked_ref::<Thenable>().then2(&wake, &wake)
    })
}

thread_local! {
    /// `(call id, answer)`: a single call's reply (its sender's context).
    static ALONE: Closure<dyn Fn(f64, JsValue) -> Result<JsValue, JsValue>> =
        Closure::new(|id: f64, answer: JsValue| alone_answered(id as u32, answer));

    /// `(call id, error)`: a single call failed (its sender's context).
    static ALONE_FAILED: Closure<dyn Fn(f64, JsValue) -> Result<JsValue, JsValue>> =
        Closure::new(|id: f64, error: JsValue| alone_failed(id as u32, error));

    /// `(request id, answer)`: a read sent alone was answered (its context).
    static READ_BACK: Closure<dyn Fn(f64, JsValue) -> Result<JsValue, JsValue>> =
        Closure::new(|id: f64, answer: JsValue| {
            with(|b| b.reads_alone.remove(&(id as u32)));
            Ok(answer)
        });

    /// `(request id, error)`: a read sent alone failed (its context).
    static READ_FAILED: Closure<dyn Fn(f64, JsValue) -> Result<JsValue, JsValue>> =
        Closure::new(|id: f64, error: JsValue| {
            with(|b| b.reads_alone.remove(&(id as u32)));
            Err(error)
        });

}

/// Sends read `id` alone, holding no place among the K calls: its response is passed through
/// unread, as with batching off, and a failure is the caller's to retry or answer.
fn send_read(id: u32, url: &str) -> Result<js_sys::Promise, Problem> {
    let p = forward::send(url).map_err(|e| {
        with(|b| b.reads_alone.remove(&id));
        forward::fault("call", &e)
    })?;
    let on_answer = READ_BACK.with(|f| bind(f.as_ref(), id));
    let on_fail = READ_FAILED.with(|f| bind(f.as_ref(), id));
    Ok(p.unchecked_ref::<Thenable>().then2(&on_answer, &on_fail))
}

/// Sends request `id` alone as a call in flight: its own call as a plain request (`url`),
/// whose response is its response, passed through unread (no body to split, no response to
/// build: a request alone costs the edge what it costs with batching off). `resolve`, a
/// leader's outcome resolver (its batch was itself alone). A failure is the caller's to
/// retry or answer, as with batching off ([`forward::retry`]).
fn send_single(
    id: u32,
    url: &str,
    resolve: Option<js_sys::Function>,
) -> Result<js_sys::Promise, Problem> {
    let p = match forward::send(url) {
        Ok(p) => p,
        Err(e) => {
            if let Some(r) = resolve {
                let _ = r.call0(&JsValue::NULL);
            }
            return Err(forward::fault("call", &e));
        }
    };
    with(|b| {
        b.calls.push(Call {
            id,
            done: p.clone(),
            batch: resolve.map(|r| (Vec::new(), r)),
            outcome: None,
            sent_at: js_sys::Date::now(),
        })
    });
    let on_answer = ALONE.with(|f| bind(f.as_ref(), id));
    let on_fail = ALONE_FAILED.with(|f| bind(f.as_ref(), id));
    Ok(p.unchecked_ref::<Thenable>().then2(&on_answer, &on_fail))
}

/// A request sent alone was answered (its context): the object's response is its response.
fn alone_answered(id: u32, response: JsValue) -> Result<JsValue, JsValue> {
    single_done(id);
    Ok(response)
}

/// A request sent alone failed (its context): the caller retries or answers it.
fn alone_failed(id: u32, error: JsValue) -> Result<JsValue, JsValue> {
    single_done(id);
    Err(error)
}

/// A single call came back: one call fewer in flight (its waiters are woken by the runtime).
fn single_done(id: u32) {
    let Some(call) = take_call(id) else {
        return;
    };
    if let Some((members, resolve)) = call.batch {
        // A leader that went alone: whoever waits for its outcome may go on.
        debug_assert!(members.is_empty());
        let _ = resolve.call0(&JsValue::NULL);
    }
}

fn take_call(id: u32) -> Option<Call> {
    with(|b| {
        let at = b.calls.iter().position(|c| c.id == id)?;
        Some(b.calls.remove(at))
    })
}

/// A waiting request, woken in its own context: its answer, or a promise of it.
fn on_wake(id: u32) -> Result<JsValue, JsValue> {
    let (url, since) = stop_waiting(id);
    let outcome = with(|b| b.outcomes.remove(&id));
    if let Some((o, _)) = outcome {
        return match o {
            Outcome::Reply(r) => out(http::reply_response(&r)),
            Outcome::Alone => out(forward::send(&url)),
            Outcome::Fail(e) => Err(e),
        };
    }
    enum Next {
        Send,
        Wait(Vec<js_sys::Promise>),
        Alone,
    }
    let next = with(|b| {
        let front = b.open.front().is_some_and(|o| o.members[0].id == id);
        if front {
            // A call whose sender was cancelled (its client went away) never comes back; after
            // the keep-alive it no longer holds a place in flight.
            let now = js_sys::Date::now();
            b.calls.retain(|c| now - c.sent_at < KEEP_ALIVE_MS);
            if (b.calls.len() as u32) < b.limit {
                return Next::Send;
            }
            return Next::Wait(b.calls.iter().map(|c| c.done.clone()).collect());
        }
        // A later leader, or a member whose batch is not sent yet: keep waiting for the same.
        for (i, o) in b.open.iter().enumerate() {
            if o.members[0].id == id {
                let ahead = b.open.get(i - 1).map(|a| a.outcome.clone());
                return Next::Wait(ahead.into_iter().collect());
            }
            if o.members.iter().any(|m| m.id == id) {
                return Next::Wait(vec![o.outcome.clone()]);
            }
        }
        // In a batch in flight: keep waiting for its leader's outcome, and after the
        // keep-alive go alone.
        if js_sys::Date::now() - since < KEEP_ALIVE_MS {
            let mine = |c: &&Call| {
                c.batch
                    .as_ref()
                    .is_some_and(|(m, _)| m.iter().any(|w| w.id == id))
            };
            if let Some(outcome) = b.calls.iter().find(mine).and_then(|c| c.outcome.clone()) {
                return Next::Wait(vec![outcome]);
            }
        }
        Next::Alone
    });
    match next {
        Next::Send => out(lead(id)),
        Next::Wait(others) => Ok(wait(id, &url, others, since).into()),
        Next::Alone => {
            log_event(
                "error",
                "counter batch too slow; sending a request alone",
                |_| {},
            );
            out(forward::send(&url))
        }
    }
}

/// Clears request `id`'s timer; its URL and since when it waits.
fn stop_waiting(id: u32) -> (String, f64) {
    match with(|b| b.waiting.remove(&id)) {
        Some((timer, url, since)) => {
            ffi::clear_timeout(&timer);
            (url, since)
        }
        None => (String::new(), js_sys::Date::now()),
    }
}

/// The front open batch's leader sends it: alone, or as a batch. Runs in the leader's context.
fn lead(leader: u32) -> Result<js_sys::Promise> {
    let Some(open) = with(|b| b.open.pop_front()) else {
        return Err(Error::Invariant("a leader lost its batch"));
    };
    let Open {
        members,
        builder,
        resolve,
        outcome,
    } = open;
    if members.len() == 1 {
        return Ok(send_single(leader, &members[0].url, Some(resolve))?);
    }
    let call = with(new_id);
    match forward::send_batch(&builder.json()) {
        Ok(p) => {
            with(|b| {
                b.calls.push(Call {
                    id: call,
                    done: p.clone(),
                    batch: Some((members, resolve)),
                    outcome: Some(outcome),
                    sent_at: js_sys::Date::now(),
                })
            });
            let on_answer = ANSWERED.with(|f| bind2(f.as_ref(), call, leader));
            let on_fail = FAILED.with(|f| bind2(f.as_ref(), call, leader));
            Ok(p.unchecked_ref::<Thenable>().then2(&on_answer, &on_fail))
        }
        Err(e) => {
            log_error("counter batch not sent", &e.to_string(), members.len());
            let url = members[0].url.clone();
            finish_batch(members, resolve, |_| Outcome::Alone);
            forward::send(&url)
        }
    }
}

/// A batch call was answered (the leader's context): the replies, one per request, in order;
/// the leader's own response.
fn answered(call: u32, leader: u32, answer: JsValue) -> Result<JsValue, JsValue> {
    let Some(text) = answer.as_string() else {
        return failed(
            call,
            leader,
            JsValue::from_str("a batch answer that is not text"),
        );
    };
    let Some((members, resolve)) = take_batch(call) else {
        return Err(JsValue::from_str("a batch answer without its call"));
    };
    match batch::decode_replies(&text, members.len()) {
        Ok(replies) => {
            let mut replies = replies.into_iter();
            let mine = replies.next();
            let mut rest = replies;
            finish_batch(members, resolve, |_| {
                rest.next().map_or(Outcome::Alone, Outcome::Reply)
            });
            match mine {
                Some(r) => out(http::reply_response(&r)),
                None => Err(JsValue::from_str("an empty batch answer")),
            }
        }
        Err(e) => {
            log_event(
                "error",
                "counter batch failed; sending its requests one by one",
                |w| {
                    w.uint("requests", members.len() as u64)
                        .string("error", &format!("the batch answer: {e}"));
                },
            );
            let url = members[0].url.clone();
            finish_batch(members, resolve, |_| Outcome::Alone);
            out(forward::send(&url))
        }
    }
}

/// Batch `call`'s members and outcome resolver.
fn take_batch(call: u32) -> Option<(Vec<Waiter>, js_sys::Function)> {
    take_call(call).and_then(|c| c.batch)
}

/// The batch call failed as a whole (the leader's context).
fn failed(call: u32, leader: u32, error: JsValue) -> Result<JsValue, JsValue> {
    let Some((members, resolve)) = take_batch(call) else {
        return Err(error);
    };
    let _ = leader;
    if forward::flag(&error, "overloaded") {
        log_error(
            "counter batch refused: overloaded",
            &ffi::error_text(&error),
            members.len(),
        );
        // Each request's own failure path answers 503 without sending it again.
        finish_batch(members, resolve, |_| Outcome::Fail(error.clone()));
        return Err(error);
    }
    log_error(
        "counter batch failed; sending its requests one by one",
        &ffi::error_text(&error),
        members.len(),
    );
    let url = members[0].url.clone();
    finish_batch(members, resolve, |_| Outcome::Alone);
    out(forward::send(&url))
}

/// Stores every member's outcome (the leader, first, handles its own) and resolves the
/// leader's outcome promise, which wakes the members in their own contexts.
fn finish_batch(
    members: Vec<Waiter>,
    resolve: js_sys::Function,
    mut each: impl FnMut(&Waiter) -> Outcome,
) {
    with(|b| {
        let now = js_sys::Date::now();
        forget_the_cancelled(b, now);
        for m in members.iter().skip(1) {
            let outcome = each(m);
            // A member that gave up waiting (keep-alive) was sent alone already.
            if b.waiting.contains_key(&m.id) {
                b.outcomes.insert(m.id, (outcome, now));
            }
        }
    });
    let _ = resolve.call0(&JsValue::NULL);
}

/// `f.bind(null, id)`.
fn bind(f: &JsValue, id: u32) -> JsValue {
    f.unchecked_ref::<Callback>()
        .bind_num(&JsValue::NULL, f64::from(id))
}

/// `f.bind(null, a, b)`.
fn bind2(f: &JsValue, a: u32, b: u32) -> JsValue {
    f.unchecked_ref::<Callback>()
        .bind_num_num(&JsValue::NULL, f64::from(a), f64::from(b))
}

fn log_error(msg: &str, error: &str, requests: usize) {
    log_event("error", msg, |w| {
        w.uint("requests", requests as u64).string("error", error);
    });
}

/// A result handed back to the runtime from a callback: its value, or its error thrown.
fn out<T: Into<JsValue>>(r: Result<T>) -> std::result::Result<JsValue, JsValue> {
    r.map(Into::into).map_err(Into::into)
}
