//! The relay: a Durable Object near a group of browsers that carries their sockets.
//!
//! The counter serializes every change and sends each committed update to every socket it
//! holds. With relays on, the only sockets it holds are the relays' upstream sockets: one per
//! relay, so one message per relay per change whatever the number of browsers. Each relay
//! fans the update out to its own browsers, with exactly the browser protocol of the counter
//! (snapshot, ordered updates, `?since=` resume, ping/pong, 1009/1008).
//!
//! - **Upstream.** The relay opens one WebSocket to the counter (`/upstream?since=<last
//!   version>`); the counter accepts it with the hibernation API and a `relay` tag, so the
//!   counter can still hibernate. The relay's own end cannot hibernate, which is fine: it lives
//!   while it holds browsers. When the upstream drops (a counter deploy, restart or eviction)
//!   the relay reconnects with jittered backoff and resumes from its last version.
//! - **Order.** Every update goes through the pure [`Feed`]: version v is forwarded only after
//!   v − 1, duplicates are dropped, and a gap (a lost message, or a resume more than 1,000
//!   behind) is filled from the counter's audit trail before anything later is forwarded.
//! - **Memory.** The last [`RING`](crate::core::relay::RING) updates stay in memory, so a
//!   browser resuming with `since` is served by the relay. Older (after the relay's own
//!   restart) costs the relay one audit fetch, shared by every browser waiting for it.
//! - **Browsers** are accepted with the hibernation API (the runtime answers `ping`) and
//!   tagged with their client, which is how the per-client cap is counted. Accepting a socket
//!   and sending its catch-up happen in one synchronous step, so the next forwarded update
//!   continues exactly where the catch-up ended.
//!
//! - **Event streams** (`GET /api/events`, [`events`]) are browsers that follow with
//!   Server-Sent Events: they start like a socket, count like one against both caps, and get
//!   every forwarded update as an event, with a comment line every 15 s while they last.
//!
//! The rooms: `mod.rs` holds the class, its state and the dispatch of each call;
//! `upstream.rs` the socket to the counter, the gap fills and backfills, the reports;
//! `browsers.rs` admission (the caps and the marks) and the start of each socket or stream;
//! `nearby.rs` nearby reads; `watchdog.rs` the alarm; `events.rs` the event streams.
//!
//! Like the counter, a plain `#[wasm_bindgen]` class; the request handlers that must wait
//! (for the upstream, a backfill, a nearby read's `min_version`) return promises.

mod browsers;
pub(crate) mod events;
mod nearby;
mod upstream;
mod watchdog;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::future_to_promise;
use web_sys::{Request, WebSocket};
use worker::durable::State;
use worker::worker_sys::DurableObjectState;
use worker::worker_sys::WebSocketRequestResponsePair;
use worker::Env;

use crate::core::audit::AuditQuery;
use crate::core::problem::Problem;
use crate::core::relay::{self, Feed, Marks, Mode, RelayCall, SEVER_ALARM_MS};
use crate::error::{Context, Result};
use crate::http::{self, now_ms};
use crate::log::log_event;
use crate::sockets;
use browsers::{connect, Kind};
use nearby::nearby;

/// Close code for browsers of a relay that lost its memory, and for a socket at the end of
/// its life: reconnect (with `since`).
const CLOSE_RESTART: u16 = 1012;

/// The state of the upstream socket.
enum Link {
    /// Not connected, nothing under way.
    Down,
    /// A reconnect is scheduled or the socket is being opened.
    Connecting,
    /// Connected. The handle keeps the socket's JavaScript object referenced while current
    /// (and lets the watchdog ping it and the relay close it).
    Up(WebSocket),
}

/// The Durable Object class bound as `RELAY`.
#[wasm_bindgen]
pub struct Relay {
    inner: Rc<Inner>,
}

struct Inner {
    state: State,
    env: Env,
    /// `<region>-<shard>`, learnt from the first call (every call names its relay).
    name: RefCell<String>,
    feed: RefCell<Feed>,
    link: RefCell<Link>,
    /// Which upstream socket is current: events of an older one are ignored.
    generation: Cell<u32>,
    attempt: Cell<u32>,
    filling: Cell<bool>,
    backfill: Cell<Option<AuditQuery>>,
    backfilling: Cell<bool>,
    /// Test hook: drop the next update from the counter.
    withhold: Cell<bool>,
    watchdog: Cell<bool>,
    /// The current upstream has delivered the counter's state (its snapshot after the
    /// replay): until then a nearby read is not answered from memory.
    synced: Cell<bool>,
    /// The memory is from before the upstream was closed for idleness: no browser starts
    /// from it until the counter's state arrives again.
    stale: Cell<bool>,
    /// Something arrived on the upstream since the watchdog's last ping.
    heard: Cell<bool>,
    /// The watchdog pinged the current upstream and waits to hear from it.
    pinged: Cell<bool>,
    /// Test hook: the upstream generation whose messages the relay no longer hears.
    deaf: Cell<Option<u32>>,
    /// Test hook: nothing reconnects in this incarnation (see [`RelayCall::Sever`]).
    severed: Cell<bool>,
    /// When a browser last came or went or a nearby read was served (ms).
    last_used: Cell<f64>,
    /// The clients this relay passed on while full; `None` until loaded from storage.
    marks: RefCell<Option<Marks>>,
    /// `RELAY_WATCHDOG_SECONDS` in ms.
    watchdog_ms: f64,
    /// `RELAY_IDLE_SECONDS` in ms.
    idle_ms: f64,
    /// `RELAY_SOCKET_MAX_SECONDS`: the longest a browser socket lives here.
    socket_max_s: u32,
    /// Browser sockets refused (429) and not yet reported to the counter.
    refused: Cell<u64>,
    /// A report to the counter is scheduled.
    reporting: Cell<bool>,
    /// Promise resolvers of requests waiting for the feed to move.
    waiters: RefCell<Vec<js_sys::Function>>,
    /// `RELAY_SOCKETS_PER_RELAY` (0: no cap here).
    socket_cap: u32,
    /// `WS_CONNECTIONS_PER_CLIENT` (0: no cap).
    client_cap: u32,
    /// The browsers' event streams.
    streams: events::Streams,
    /// The streams' heartbeat is running.
    beating: Cell<bool>,
}

#[wasm_bindgen]
impl Relay {
    #[wasm_bindgen(constructor)]
    pub fn new(raw: DurableObjectState, env: Env) -> Relay {
        let state = State::from(raw);
        if let Ok(pair) = WebSocketRequestResponsePair::new("ping", "pong") {
            let _ = state.as_raw().set_websocket_auto_response(&pair);
        }
        // Sockets that outlived this relay's memory (it was evicted or reset while the runtime
        // kept them): nobody knows what they saw, so they reconnect with their own `since`.
        let orphans = state.as_raw().get_websockets().unwrap_or_default();
        for ws in &orphans {
            let _ = ws.close_with_code_and_reason(CLOSE_RESTART, "relay restarted; reconnect");
        }
        log_event("info", "relay started", |w| {
            w.uint("orphans_closed", orphans.len() as u64);
        });
        let socket_cap = setting(
            &env,
            "RELAY_SOCKETS_PER_RELAY",
            relay::DEFAULT_SOCKETS_PER_RELAY,
        );
        let client_cap = setting(&env, "WS_CONNECTIONS_PER_CLIENT", 0);
        let watchdog_s = setting(
            &env,
            "RELAY_WATCHDOG_SECONDS",
            relay::DEFAULT_WATCHDOG_SECONDS,
        )
        .max(1);
        let idle_s = setting(&env, "RELAY_IDLE_SECONDS", relay::DEFAULT_IDLE_SECONDS);
        let socket_max_s = setting_up_to(
            &env,
            "RELAY_SOCKET_MAX_SECONDS",
            relay::DEFAULT_SOCKET_MAX_SECONDS,
            relay::MAX_SOCKET_MAX_SECONDS,
        )
        .max(1);
        Relay {
            inner: Rc::new(Inner {
                state,
                env,
                name: RefCell::new(String::new()),
                feed: RefCell::new(Feed::new()),
                link: RefCell::new(Link::Down),
                generation: Cell::new(0),
                attempt: Cell::new(0),
                filling: Cell::new(false),
                backfill: Cell::new(None),
                backfilling: Cell::new(false),
                withhold: Cell::new(false),
                watchdog: Cell::new(false),
                synced: Cell::new(false),
                stale: Cell::new(false),
                heard: Cell::new(false),
                pinged: Cell::new(false),
                deaf: Cell::new(None),
                severed: Cell::new(false),
                last_used: Cell::new(js_sys::Date::now()),
                marks: RefCell::new(None),
                watchdog_ms: f64::from(watchdog_s) * 1000.0,
                idle_ms: f64::from(idle_s) * 1000.0,
                socket_max_s,
                refused: Cell::new(0),
                reporting: Cell::new(false),
                waiters: RefCell::new(Vec::new()),
                socket_cap,
                client_cap,
                streams: events::Streams::default(),
                beating: Cell::new(false),
            }),
        }
    }

    /// One call from the edge: a `Response`, or a `Promise` of one.
    pub fn fetch(&self, req: Request) -> Result<JsValue, JsValue> {
        self.answer(&req.url()).map_err(Into::into)
    }

    /// The answer to the call at `url`. An error here fails the call: [`Relay::fetch`] throws
    /// it, and a promise of an answer rejects with it.
    fn answer(&self, url: &str) -> Result<JsValue> {
        let call = match RelayCall::decode(url) {
            Ok(call) => call,
            Err(p) => return Ok(http::problem_response(&p)?.into()),
        };
        let inner = &self.inner;
        if inner.name.borrow().is_empty() {
            *inner.name.borrow_mut() = call.relay().to_owned();
        }
        match call {
            RelayCall::Connect {
                client,
                since,
                held,
                mode,
                events,
                ..
            } => {
                if mode == Mode::Count {
                    return inner.tally(&client).map(Into::into);
                }
                let inner = inner.clone();
                let kind = Kind {
                    held,
                    force: mode == Mode::Force,
                    events,
                };
                let answer = connect(inner, client, since, kind);
                Ok(future_to_promise(async move { Ok(answer.await?) }).into())
            }
            RelayCall::Value { min_version, .. } => {
                let answer = nearby(inner.clone(), min_version);
                Ok(future_to_promise(async move { Ok(answer.await?.into()) }).into())
            }
            RelayCall::Stats { counter, .. } => {
                let up = matches!(*inner.link.borrow(), Link::Up(_));
                let body = relay::stats_json(
                    &inner.name.borrow(),
                    (sockets::count(&inner.state), inner.streams.len()),
                    &inner.feed.borrow(),
                    up,
                    counter,
                );
                http::json(&body, &[]).map(Into::into)
            }
            RelayCall::Reset { .. } => {
                log_event("info", "relay reset requested", |w| {
                    w.string("relay", &inner.name.borrow());
                });
                inner
                    .state
                    .as_raw()
                    .unchecked_ref::<crate::ffi::ObjectContext>()
                    .abort("reset requested")
                    .js("resetting the object")?;
                http::problem_response(&Problem::Internal).map(Into::into)
            }
            RelayCall::Withhold { .. } => {
                inner.withhold.set(true);
                Inner::ensure_upstream(inner);
                http::json("{\"withholding\":true}", &[]).map(Into::into)
            }
            RelayCall::Silence { .. } => {
                let up = matches!(*inner.link.borrow(), Link::Up(_));
                if up {
                    inner.deaf.set(Some(inner.generation.get()));
                }
                log_event("info", "relay upstream silenced", |w| {
                    w.string("relay", &inner.name.borrow()).bool("up", up);
                });
                http::json(&format!("{{\"silenced\":{up}}}"), &[]).map(Into::into)
            }
            RelayCall::Unlink { .. } => {
                let up = matches!(*inner.link.borrow(), Link::Up(_));
                if up {
                    inner.drop_upstream("unlinked");
                }
                log_event("info", "relay upstream unlinked", |w| {
                    w.string("relay", &inner.name.borrow()).bool("up", up);
                });
                http::json(&format!("{{\"unlinked\":{up}}}"), &[]).map(Into::into)
            }
            RelayCall::Sever { .. } => {
                inner.severed.set(true);
                inner.drop_upstream("severed");
                inner.watchdog.set(true);
                inner.set_alarm(SEVER_ALARM_MS);
                log_event("info", "relay severed", |w| {
                    w.string("relay", &inner.name.borrow());
                });
                http::json("{\"severed\":true}", &[]).map(Into::into)
            }
        }
    }

    /// A message from a browser (never `ping`: the runtime answers that).
    #[wasm_bindgen(js_name = webSocketMessage)]
    pub fn websocket_message(&self, ws: WebSocket, message: JsValue) {
        let (len, binary) = match message.as_string() {
            Some(text) => (text.len(), false),
            None => (
                message
                    .dyn_ref::<js_sys::ArrayBuffer>()
                    .map_or(0, |b| b.byte_length() as usize),
                true,
            ),
        };
        sockets::on_message(&ws, len, binary, now_ms());
    }

    /// A browser closed its socket.
    #[wasm_bindgen(js_name = webSocketClose)]
    pub fn websocket_close(&self, ws: WebSocket, code: u16, reason: String, _clean: bool) {
        self.inner.last_used.set(js_sys::Date::now());
        sockets::on_close(&ws, code, &reason);
    }

    #[wasm_bindgen(js_name = webSocketError)]
    pub fn websocket_error(&self, _ws: WebSocket, _error: JsValue) {}
}

impl Inner {
    /// Browser sockets and event streams.
    fn browsers(&self) -> usize {
        sockets::count(&self.state) + self.streams.len()
    }
}

/// A relay setting (absent: `default`; malformed: logged, `default`).
fn setting(env: &Env, name: &str, default: u32) -> u32 {
    setting_up_to(env, name, default, 32_768)
}

/// [`setting`] with its own largest value (above it: logged, `default`).
fn setting_up_to(env: &Env, name: &str, default: u32, max: u32) -> u32 {
    crate::bindings::setting(
        env,
        name,
        |v| relay::parse_setting(v, default, max),
        default,
    )
}
