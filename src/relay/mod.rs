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
//! Like the counter, a plain `#[wasm_bindgen]` class; the request handlers that must wait
//! (for the upstream, a backfill, a nearby read's `min_version`) return promises.

pub(crate) mod events;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{future_to_promise, spawn_local, JsFuture};
use web_sys::{Headers, Request, RequestInit, Response, WebSocket};
use worker::durable::State;
use worker::worker_sys::WebSocketRequestResponsePair;
use worker::worker_sys::{DurableObject, DurableObjectState};
use worker::{Delay, Env};

use crate::core::audit::{AuditEntry, AuditQuery};
use crate::core::problem::Problem;
use crate::core::relay::{
    self, backoff_ms, deadline_tag, mark_key, parse_audit_page, parse_deadline_tag, parse_upstream,
    report_message, socket_deadline, CatchUp, Feed, Known, Marks, Mode, RelayCall, Upstream,
    FULL_HEADER, MARK_PREFIX, ROOM_HEADER, SEVER_ALARM_MS,
};
use crate::core::wire::ObjectCall;
use crate::http::{self, log_event, now_ms};
use crate::sockets;

/// How long a browser's connect waits for the relay's state (its upstream connecting, or a
/// backfill) before it gets 503.
const READY_WAIT_MS: i64 = 5000;
/// How long a browser ahead of the relay waits for the relay to catch up before it is treated
/// as ahead of the counter (a snapshot).
const AHEAD_WAIT_MS: i64 = 1000;
/// How long a nearby read waits for `min_version` before it asks the counter.
const NEARBY_WAIT_MS: i64 = 500;
/// Close code for browsers of a relay that lost its memory, and for a socket at the end of
/// its life: reconnect (with `since`).
const CLOSE_RESTART: u16 = 1012;
/// How long a relay gathers its refusals before it reports them to the counter (ms).
const REPORT_DELAY_MS: u64 = 1000;

#[wasm_bindgen]
extern "C" {
    /// The relay's end of its upstream socket, seen through our own binding.
    type Upstreamed;

    #[wasm_bindgen(method, catch)]
    fn accept(this: &Upstreamed) -> Result<(), JsValue>;

    #[wasm_bindgen(method, js_name = addEventListener)]
    fn listen(this: &Upstreamed, kind: &str, f: &js_sys::Function);
}

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
        let call = match RelayCall::decode(&req.url()) {
            Ok(call) => call,
            Err(p) => return http::problem(&p).map(Into::into),
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
                Ok(future_to_promise(connect(inner, client, since, kind)).into())
            }
            RelayCall::Value { min_version, .. } => {
                Ok(future_to_promise(nearby(inner.clone(), min_version)).into())
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
                    .abort("reset requested")?;
                http::problem(&Problem::Internal).map(Into::into)
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

    /// The watchdog, every `RELAY_WATCHDOG_SECONDS` while the relay is in use:
    /// - a relay rebuilt after losing its memory has closed its orphaned sockets (1012) in
    ///   the constructor, which this alarm is the occasion for;
    /// - an upstream that is down with nothing reconnecting is connected;
    /// - an upstream that stayed silent since the last check's `ping` (a half-open
    ///   connection: the counter answers `ping` even while hibernating) is dropped and
    ///   resumed with `since`;
    /// - a relay with no browser and no nearby read for `RELAY_IDLE_SECONDS` closes its
    ///   upstream and stops the watchdog, so the runtime can evict it.
    pub fn alarm(&self) {
        let inner = &self.inner;
        inner.watchdog.set(false);
        // Rebuilt by this alarm: the constructor closed every socket, and the relay does not
        // know its name (the platform does not tell it) until a call names it. Nothing to
        // watch: let the runtime evict it.
        if inner.name.borrow().is_empty() {
            log_event(
                "info",
                "relay rebuilt by its watchdog; nothing to watch",
                |_| {},
            );
            return;
        }
        let browsers = inner.browsers();
        let idle = js_sys::Date::now() - inner.last_used.get();
        if browsers == 0 && idle >= inner.idle_ms {
            if !matches!(*inner.link.borrow(), Link::Connecting) {
                inner.send_report();
                let was_up = inner.drop_upstream("relay idle");
                log_event("info", "relay idle; upstream closed", |w| {
                    w.string("relay", &inner.name.borrow())
                        .bool("was_up", was_up)
                        .uint("idle_ms", idle as u64);
                });
                return;
            }
        } else if !inner.severed.get() {
            inner.close_expired();
            Inner::check_upstream(inner);
        }
        inner.arm_watchdog();
    }
}

impl Inner {
    /// Refuses a browser when this relay is full (503 with [`FULL_HEADER`]: the edge moves on
    /// to the client's relay on the next level) or its client is at its cap (429). `held`: the client's sockets on
    /// the relays the edge passed because they were full.
    ///
    /// A relay that is full marks the client (memory and storage), and passes a marked client
    /// on even when it has room again, with [`ROOM_HEADER`], unless `force`: the edge's walk
    /// then counts the client's sockets on every relay it could hold them on
    /// ([`relay::Walk`]). Marks must be loaded ([`Inner::load_marks`]).
    fn refuse(&self, client: &str, held: u32, force: bool) -> Result<Option<Response>, JsValue> {
        let here = sockets::count_for(&self.state, client) + self.streams.count_for(client);
        let now = js_sys::Date::now();
        let full = self.socket_cap > 0 && self.browsers() >= self.socket_cap as usize;
        let marked = !force
            && self
                .marks
                .borrow()
                .as_ref()
                .is_some_and(|m| m.passes(client, now));
        if full || marked {
            if full {
                self.mark(client, now);
            }
            return Ok(Some(passed_on(here, !full)?));
        }
        if self.client_cap > 0 && held as usize + here >= self.client_cap as usize {
            self.refused.set(self.refused.get() + 1);
            return Ok(Some(http::problem(&Problem::TooManyRequests {
                retry_after_secs: 10,
                detail: format!(
                    "This client already has {} open connections, the most allowed; close one first.",
                    self.client_cap
                ),
            })?));
        }
        Ok(None)
    }

    /// The answer to [`Mode::Count`]: the client's sockets here and whether there is room, as
    /// a relay that passes the socket on says them; nothing is taken or marked (the edge's
    /// walk places the socket on an earlier relay once it has counted this one).
    fn tally(&self, client: &str) -> Result<Response, JsValue> {
        let here = sockets::count_for(&self.state, client) + self.streams.count_for(client);
        let full = self.socket_cap > 0 && self.browsers() >= self.socket_cap as usize;
        passed_on(here, !full)
    }

    /// Browser sockets and event streams.
    fn browsers(&self) -> usize {
        sockets::count(&self.state) + self.streams.len()
    }

    /// Accepts a browser socket (or event stream) and sends its catch-up, in one synchronous
    /// step.
    fn accept(
        this: &Rc<Inner>,
        client: &str,
        kind: Kind,
        messages: &[String],
    ) -> Result<JsValue, JsValue> {
        if let Some(refusal) = this.refuse(client, kind.held, kind.force)? {
            return Ok(refusal.into());
        }
        this.last_used.set(js_sys::Date::now());
        // When it ends (the watchdog or the heartbeat closes it then).
        let until = socket_deadline(
            js_sys::Date::now(),
            this.socket_max_s,
            js_sys::Math::random(),
        );
        if kind.events {
            let response = this.streams.open(client, until, messages)?;
            this.arm_watchdog();
            Inner::start_heartbeat(this);
            return Ok(response.into());
        }
        let pair = worker::WebSocketPair::new().map_err(JsValue::from)?;
        let server: &WebSocket = pair.server.as_ref();
        this.state.as_raw().accept_websocket_with_tags(
            server,
            vec![
                JsValue::from_str(client),
                JsValue::from_str(&deadline_tag(until)),
            ],
        )?;
        for m in messages {
            let _ = server.send_with_str(m);
        }
        this.arm_watchdog();
        let response = worker::Response::from_websocket(pair.client).map_err(JsValue::from)?;
        Ok(web_sys::Response::from(response).into())
    }

    /// Records that `client` was passed on while this relay was full (in storage too, so a
    /// reset or an eviction keeps it).
    fn mark(&self, client: &str, now: f64) {
        let write = self
            .marks
            .borrow_mut()
            .get_or_insert_with(Marks::default)
            .record(client, now);
        if write {
            let storage = self.state.storage();
            let key = mark_key(client);
            spawn_local(async move {
                if let Err(e) = storage.put_raw(&key, JsValue::from_f64(now)).await {
                    log_event("error", "relay mark write failed", |w| {
                        w.string("error", &e.to_string());
                    });
                }
            });
        }
    }

    /// Loads the marks from storage once per incarnation (forgetting expired ones).
    async fn load_marks(this: &Rc<Inner>) -> Result<(), JsValue> {
        if this.marks.borrow().is_some() {
            return Ok(());
        }
        let storage = this.state.storage();
        let map = storage
            .list_with_options(worker::ListOptions::new().prefix(MARK_PREFIX))
            .await
            .map_err(JsValue::from)?;
        let mut rows = Vec::new();
        map.for_each(&mut |v, k| {
            if let (Some(k), Some(at)) = (k.as_string(), v.as_f64()) {
                if let Some(client) = k.strip_prefix(MARK_PREFIX) {
                    rows.push((client.to_owned(), at));
                }
            }
        });
        // Another request may have loaded them meanwhile (and added marks): keep that.
        if this.marks.borrow().is_some() {
            return Ok(());
        }
        let mut marks = Marks::from_stored(rows);
        let expired = marks.expire(js_sys::Date::now());
        *this.marks.borrow_mut() = Some(marks);
        if !expired.is_empty() {
            let keys: Vec<String> = expired.iter().map(|c| mark_key(c)).collect();
            let _ = storage.delete_multiple(keys).await;
        }
        Ok(())
    }

    fn arm_watchdog(&self) {
        if self.watchdog.replace(true) {
            return;
        }
        self.set_alarm(self.watchdog_ms);
    }

    fn set_alarm(&self, in_ms: f64) {
        if let Ok(storage) = self.state.as_raw().storage() {
            let at = js_sys::Date::new(&JsValue::from_f64(js_sys::Date::now() + in_ms));
            let _ = storage.set_alarm(at, js_sys::Object::new());
        }
    }

    /// Closes the browser sockets whose life ended ([`relay::socket_deadline`]) with 1012:
    /// each browser reconnects with `since` and misses nothing. Every socket's life ends
    /// before a mark that placed it could expire ([`relay::MAX_SOCKET_MAX_SECONDS`]).
    fn close_expired(&self) {
        let raw = self.state.as_raw();
        let now = js_sys::Date::now();
        let mut closed = 0u64;
        for ws in raw.get_websockets().unwrap_or_default() {
            let ended = raw.get_tags(&ws).is_ok_and(|tags| {
                tags.iter()
                    .filter_map(|t| parse_deadline_tag(t))
                    .any(|until| now >= until)
            });
            if ended
                && ws
                    .close_with_code_and_reason(CLOSE_RESTART, "socket lifetime reached; reconnect")
                    .is_ok()
            {
                closed += 1;
            }
        }
        if closed > 0 {
            self.last_used.set(now);
            log_event(
                "info",
                "relay closed sockets at the end of their life",
                |w| {
                    w.string("relay", &self.name.borrow())
                        .uint("closed", closed);
                },
            );
        }
    }

    /// Reports the refusals gathered so far to the counter on the upstream socket, unless it
    /// is down (they wait for the next report).
    fn send_report(&self) {
        let refused = self.refused.get();
        if refused == 0 {
            return;
        }
        if let Link::Up(ws) = &*self.link.borrow() {
            if ws.send_with_str(&report_message(refused)).is_ok() {
                self.refused.set(0);
            }
        }
    }

    /// Sends a report [`REPORT_DELAY_MS`] from now if there is anything to report, so the
    /// counter hears of refusals at most once a second per relay.
    fn schedule_report(this: &Rc<Inner>) {
        if this.refused.get() == 0 || this.reporting.replace(true) {
            return;
        }
        let this = this.clone();
        spawn_local(async move {
            Delay::from(Duration::from_millis(REPORT_DELAY_MS)).await;
            this.reporting.set(false);
            this.send_report();
        });
    }

    /// Closes the upstream socket (if up) and forgets it: nothing reconnects until a browser
    /// or a nearby read needs it. Returns whether it was up.
    fn drop_upstream(&self, why: &str) -> bool {
        self.generation.set(self.generation.get().wrapping_add(1));
        self.synced.set(false);
        self.stale.set(true);
        self.pinged.set(false);
        let old = std::mem::replace(&mut *self.link.borrow_mut(), Link::Down);
        match old {
            Link::Up(ws) => {
                let _ = ws.close_with_code_and_reason(1000, why);
                true
            }
            _ => false,
        }
    }

    /// The watchdog's look at the upstream (see [`Relay::alarm`]).
    fn check_upstream(this: &Rc<Inner>) {
        let ping = match &*this.link.borrow() {
            Link::Down => None,
            Link::Connecting => return,
            Link::Up(ws) => Some(ws.clone()),
        };
        let Some(ws) = ping else {
            log_event("warn", "relay watchdog found no upstream", |w| {
                w.string("relay", &this.name.borrow());
            });
            Inner::ensure_upstream(this);
            return;
        };
        if this.pinged.get() && !this.heard.get() {
            Inner::upstream_lost(this, this.generation.get(), "silent");
            return;
        }
        this.heard.set(false);
        this.pinged.set(true);
        let _ = ws.send_with_str("ping");
    }

    /// Starts connecting upstream unless connected or under way.
    fn ensure_upstream(this: &Rc<Inner>) {
        if !matches!(*this.link.borrow(), Link::Down)
            || this.severed.get()
            || this.name.borrow().is_empty()
        {
            return;
        }
        *this.link.borrow_mut() = Link::Connecting;
        spawn_local(open_upstream(this.clone()));
    }

    fn counter(&self) -> Result<DurableObject, JsValue> {
        crate::bindings::counter_stub(&self.env)
    }

    /// A message from the counter.
    fn on_upstream(this: &Rc<Inner>, text: &str) {
        this.heard.set(true);
        let out = match parse_upstream(text) {
            Some(Upstream::Snapshot(k)) => {
                this.feed.borrow_mut().on_snapshot(k);
                this.synced.set(true);
                this.stale.set(false);
                Vec::new()
            }
            Some(Upstream::Update(k, m)) => {
                if this.withhold.replace(false) {
                    log_event("info", "relay withheld an update", |w| {
                        w.string("relay", &this.name.borrow())
                            .uint("version", k.version);
                    });
                    return;
                }
                this.feed.borrow_mut().on_update(k, m)
            }
            None => return,
        };
        this.forward(&out);
        this.wake();
        if this.feed.borrow().gap().is_some() {
            Inner::start_fill(this);
        }
    }

    fn forward(&self, messages: &[String]) {
        for m in messages {
            sockets::broadcast(&self.state, m);
        }
        if self.streams.send(messages) > 0 {
            self.last_used.set(js_sys::Date::now());
        }
    }

    /// Every [`sse::HEARTBEAT_MS`](crate::core::sse::HEARTBEAT_MS) while streams are open: a
    /// comment line to each (which also finds the streams whose reader left), and the end of
    /// the streams whose life is over, as for sockets.
    fn start_heartbeat(this: &Rc<Inner>) {
        if this.beating.replace(true) {
            return;
        }
        let this = this.clone();
        spawn_local(async move {
            while !this.streams.is_empty() {
                let ms = u64::from(crate::core::sse::HEARTBEAT_MS);
                Delay::from(Duration::from_millis(ms)).await;
                let ended = this.streams.close_expired(js_sys::Date::now());
                let gone = this.streams.heartbeat();
                if ended + gone > 0 {
                    this.last_used.set(js_sys::Date::now());
                }
            }
            this.beating.set(false);
        });
    }

    /// Resolves every waiting request's promise: the feed moved.
    fn wake(&self) {
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        for resolve in waiters {
            let _ = resolve.call0(&JsValue::NULL);
        }
    }

    /// Waits until the feed moves or `ms` pass.
    async fn changed(this: &Rc<Inner>, ms: i32) {
        let promise = js_sys::Promise::new(&mut |resolve, _reject| {
            crate::ffi::set_timeout(&resolve, f64::from(ms));
            this.waiters.borrow_mut().push(resolve);
        });
        let _ = JsFuture::from(promise).await;
    }

    fn upstream_lost(this: &Rc<Inner>, generation: u32, why: &str) {
        if generation != this.generation.get() || !matches!(*this.link.borrow(), Link::Up(_)) {
            return;
        }
        log_event("warn", "relay upstream lost", |w| {
            w.string("relay", &this.name.borrow()).string("why", why);
        });
        let old = std::mem::replace(&mut *this.link.borrow_mut(), Link::Connecting);
        this.synced.set(false);
        this.pinged.set(false);
        if let Link::Up(ws) = old {
            // Already closed, unless it went silent: then close it at the counter too.
            let _ = ws.close_with_code_and_reason(1000, why);
        }
        Inner::reconnect_later(this);
    }

    fn reconnect_later(this: &Rc<Inner>) {
        let attempt = this.attempt.get() + 1;
        this.attempt.set(attempt);
        let ms = backoff_ms(attempt, js_sys::Math::random());
        let this = this.clone();
        spawn_local(async move {
            Delay::from(Duration::from_millis(ms)).await;
            open_upstream(this).await;
        });
    }

    /// Fetches missing versions from the counter until the feed has no gap.
    fn start_fill(this: &Rc<Inner>) {
        if this.filling.replace(true) {
            return;
        }
        let this = this.clone();
        spawn_local(async move {
            let mut failures = 0;
            loop {
                let Some(q) = this.feed.borrow().gap() else {
                    break;
                };
                match audit(&this, q).await {
                    Ok(entries) if entries.is_empty() => break,
                    Ok(entries) => {
                        let out = this.feed.borrow_mut().fill(&entries);
                        log_event("info", "relay filled a gap", |w| {
                            w.string("relay", &this.name.borrow())
                                .uint("after", q.after)
                                .uint("forwarded", out.len() as u64);
                        });
                        this.forward(&out);
                        this.wake();
                        failures = 0;
                    }
                    Err(e) => {
                        failures += 1;
                        log_event("error", "relay gap fetch failed", |w| {
                            w.string("error", &e);
                        });
                        let ms = backoff_ms(failures, js_sys::Math::random());
                        Delay::from(Duration::from_millis(ms)).await;
                    }
                }
            }
            this.filling.set(false);
        });
    }

    /// Asks for older updates for browsers resuming from before the relay's memory: one fetch
    /// at a time, for the oldest `since` waiting.
    fn request_backfill(this: &Rc<Inner>, q: AuditQuery) {
        match this.backfill.get() {
            Some(w) if w.after <= q.after => {}
            _ => this.backfill.set(Some(q)),
        }
        if this.backfilling.replace(true) {
            return;
        }
        let this = this.clone();
        spawn_local(async move {
            while let Some(wanted) = this.backfill.take() {
                let q = match this.feed.borrow().catch_up(Some(wanted.after)) {
                    CatchUp::Backfill(q) => q,
                    _ => continue,
                };
                match audit(&this, q).await {
                    Ok(entries) => this.feed.borrow_mut().backfill(&entries),
                    Err(e) => {
                        log_event("error", "relay backfill failed", |w| {
                            w.string("error", &e);
                        });
                        Delay::from(Duration::from_millis(200)).await;
                    }
                }
                this.wake();
            }
            this.backfilling.set(false);
        });
    }
}

/// Opens the upstream socket with `since` = the last forwarded version.
async fn open_upstream(this: Rc<Inner>) {
    if this.severed.get() {
        *this.link.borrow_mut() = Link::Down;
        return;
    }
    let generation = this.generation.get().wrapping_add(1);
    this.generation.set(generation);
    let since = this.feed.borrow().since();
    match dial(&this, since).await {
        Ok(ws) => {
            let listen = |kind: &str, why: &'static str| {
                let inner = this.clone();
                let f = Closure::<dyn FnMut(JsValue)>::new(move |_e: JsValue| {
                    Inner::upstream_lost(&inner, generation, why);
                });
                ws.listen(kind, f.as_ref().unchecked_ref());
                // One pair of listeners per connection, kept for the relay's life.
                f.forget();
            };
            listen("close", "closed");
            listen("error", "error");
            let inner = this.clone();
            let on_message = Closure::<dyn FnMut(JsValue)>::new(move |e: JsValue| {
                if generation != inner.generation.get() || inner.deaf.get() == Some(generation) {
                    return;
                }
                if let Some(text) = js_sys::Reflect::get(&e, &JsValue::from_str("data"))
                    .ok()
                    .and_then(|d| d.as_string())
                {
                    Inner::on_upstream(&inner, &text);
                }
            });
            ws.listen("message", on_message.as_ref().unchecked_ref());
            on_message.forget();
            this.attempt.set(0);
            this.synced.set(false);
            this.heard.set(false);
            this.pinged.set(false);
            log_event("info", "relay connected upstream", |w| {
                w.string("relay", &this.name.borrow())
                    .opt_uint("since", since);
            });
            *this.link.borrow_mut() = Link::Up(ws.unchecked_into());
            this.send_report();
        }
        Err(e) => {
            log_event("error", "relay upstream connect failed", |w| {
                w.string("relay", &this.name.borrow())
                    .string("error", &crate::ffi::error_text(&e));
            });
            Inner::reconnect_later(&this);
        }
    }
}

async fn dial(this: &Rc<Inner>, since: Option<u64>) -> Result<Upstreamed, JsValue> {
    let url = ObjectCall::Upstream {
        since,
        relay: this.name.borrow().clone(),
    }
    .encode();
    let headers = Headers::new()?;
    headers.set("upgrade", "websocket")?;
    let init = RequestInit::new();
    init.set_headers(&headers);
    let req = Request::new_with_str_and_init(&url, &init)?;
    let resp: Response = JsFuture::from(this.counter()?.fetch_with_request(&req)?)
        .await?
        .dyn_into()?;
    let ws = js_sys::Reflect::get(&resp, &JsValue::from_str("webSocket"))?;
    if ws.is_null() || ws.is_undefined() {
        return Err(JsValue::from_str(&format!(
            "the counter answered {} without a socket",
            resp.status()
        )));
    }
    let ws: Upstreamed = ws.unchecked_into();
    ws.accept()?;
    Ok(ws)
}

/// One audit page from the counter.
async fn audit(this: &Rc<Inner>, q: AuditQuery) -> Result<Vec<AuditEntry>, String> {
    let text = text_of(this, &ObjectCall::Audit(q).encode()).await?;
    parse_audit_page(&text)
}

async fn text_of(this: &Rc<Inner>, url: &str) -> Result<String, String> {
    let fetch = async {
        let resp: Response = JsFuture::from(this.counter()?.fetch_with_str(url)?)
            .await?
            .dyn_into()?;
        if resp.status() != 200 {
            return Err(JsValue::from_str(&format!("status {}", resp.status())));
        }
        JsFuture::from(resp.text()?).await
    };
    fetch
        .await
        .map_err(|e| crate::ffi::error_text(&e))?
        .as_string()
        .ok_or_else(|| "not text".to_string())
}

/// A browser's socket: waits until the relay can start it exactly as the counter would,
/// then accepts it and sends the catch-up in one step.
/// How a browser connects: `held` and `force` as in [`RelayCall::Connect`]; `events`: an
/// event stream instead of a socket.
#[derive(Clone, Copy)]
struct Kind {
    held: u32,
    force: bool,
    events: bool,
}

async fn connect(
    this: Rc<Inner>,
    client: String,
    since: Option<u64>,
    kind: Kind,
) -> Result<JsValue, JsValue> {
    let answer = start_browser(&this, client, since, kind).await;
    // A refusal is reported to the counter (its metrics count every socket refused).
    Inner::schedule_report(&this);
    answer
}

async fn start_browser(
    this: &Rc<Inner>,
    client: String,
    since: Option<u64>,
    kind: Kind,
) -> Result<JsValue, JsValue> {
    Inner::load_marks(this).await?;
    if let Some(refusal) = this.refuse(&client, kind.held, kind.force)? {
        return Ok(refusal.into());
    }
    Inner::ensure_upstream(this);
    let started = now_ms();
    loop {
        let waited = now_ms() - started;
        let step = if this.stale.get() {
            CatchUp::NotReady
        } else {
            this.feed.borrow().catch_up(since)
        };
        match step {
            CatchUp::Send(messages) => return Inner::accept(this, &client, kind, &messages),
            CatchUp::Ahead if waited >= AHEAD_WAIT_MS => {
                let snapshot = this.feed.borrow().known().map(Known::snapshot_message);
                let messages: Vec<String> = snapshot.into_iter().collect();
                return Inner::accept(this, &client, kind, &messages);
            }
            CatchUp::Backfill(q) => Inner::request_backfill(this, q),
            CatchUp::NotReady => Inner::ensure_upstream(this),
            CatchUp::Ahead => {}
        }
        if waited >= READY_WAIT_MS {
            return http::problem(&Problem::Unavailable {
                retry_after_secs: 2,
            })
            .map(Into::into);
        }
        Inner::changed(this, 250).await;
    }
}

/// A nearby read: the relay's state once it has `min_version` and its upstream has delivered
/// the counter's state (a relay that had closed its idle upstream reconnects first);
/// otherwise, after a short wait, the counter's.
async fn nearby(this: Rc<Inner>, min_version: Option<u64>) -> Result<JsValue, JsValue> {
    this.last_used.set(js_sys::Date::now());
    this.arm_watchdog();
    Inner::ensure_upstream(&this);
    let started = now_ms();
    loop {
        let up = matches!(*this.link.borrow(), Link::Up(_)) && this.synced.get();
        let known = this.feed.borrow().known().cloned();
        if let Some(k) = known.filter(|k| up && min_version.is_none_or(|m| k.version >= m)) {
            let etag = format!("\"{}\"", k.version);
            return http::json(&k.nearby_json("relay"), &[("etag", &etag)]).map(Into::into);
        }
        if now_ms() - started >= NEARBY_WAIT_MS {
            break;
        }
        Inner::changed(&this, 100).await;
    }
    let answer = text_of(&this, &ObjectCall::Value.encode())
        .await
        .and_then(|t| {
            // JSON.parse: the runtime's parser, no code in the module.
            let v = js_sys::JSON::parse(&t).map_err(|e| crate::ffi::error_text(&e))?;
            let num = |k: &str| {
                js_sys::Reflect::get(&v, &JsValue::from_str(k))
                    .ok()
                    .and_then(|n| n.as_f64())
                    .ok_or_else(|| format!("no {k}"))
            };
            Ok(Known {
                value: num("value")? as i64,
                version: num("version")? as u64,
            })
        });
    match answer {
        Ok(k) => {
            let etag = format!("\"{}\"", k.version);
            http::json(&k.nearby_json("counter"), &[("etag", &etag)]).map(Into::into)
        }
        Err(e) => {
            log_event("error", "relay value read failed", |w| {
                w.string("error", &e);
            });
            http::problem(&Problem::Unavailable {
                retry_after_secs: 2,
            })
            .map(Into::into)
        }
    }
}

/// A relay's 503 that passes a socket on: [`FULL_HEADER`] with the client's sockets here, and
/// [`ROOM_HEADER`] when it has room.
fn passed_on(here: usize, room: bool) -> Result<Response, JsValue> {
    let r = http::problem(&Problem::Unavailable {
        retry_after_secs: 5,
    })?;
    r.headers().set(FULL_HEADER, &here.to_string())?;
    if room {
        r.headers().set(ROOM_HEADER, "1")?;
    }
    Ok(r)
}

/// A relay setting (absent: `default`; malformed: logged, `default`).
fn setting(env: &Env, name: &str, default: u32) -> u32 {
    setting_up_to(env, name, default, 32_768)
}

/// [`setting`] with its own largest value (above it: logged, `default`).
fn setting_up_to(env: &Env, name: &str, default: u32, max: u32) -> u32 {
    let raw = js_sys::Reflect::get(env, &JsValue::from_str(name))
        .ok()
        .and_then(|v| v.as_string());
    relay::parse_setting(raw.as_deref(), default, max).unwrap_or_else(|e| {
        log_event("error", "invalid relay setting; default used", |w| {
            w.string("var", name).string("error", &e);
        });
        default
    })
}
