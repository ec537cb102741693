//! The counter: one SQLite-backed Durable Object that owns the value.
//!
//! All counter requests in the world reach this single object (named `global`). The runtime
//! runs one event at a time in it, and every handler here is *synchronous*: `fetch` reads its
//! call from the URL, runs its SQL and returns the response without ever yielding. So no two
//! requests can interleave, not even between the idempotency check and the commit, and the
//! order in which the object handles mutations is the order of their versions.
//!
//! Per mutation: apply the pure rule ([`Snapshot::apply`]) to the cached state, write the
//! counter row, the audit entry and the idempotency key's record in one `transactionSync`,
//! adopt the new state, broadcast the update, answer. The alarm moves audit entries beyond the
//! hot window to R2 and forgets keys past their retention (`archive.rs`). Reads answer from the
//! cached state, which only ever changes after a commit.
//!
//! This is a plain `#[wasm_bindgen]` class rather than `#[durable_object]`: the macro makes
//! every handler `async` and converts each request and response through `worker`'s wrapper
//! types, which costs a promise and a dozen JS↔Wasm crossings per call and would give up the
//! run-to-completion guarantee above.
//!
//! The rooms: this file (the class, its construction, the alarm, and the dispatch of each
//! call), `mutate.rs` (the mutation path, alone or batched), `history.rs` (audit pages,
//! archived proofs, past values), `connect.rs` (browser and relay sockets), `admin.rs`
//! (health, metrics, the relay list, the restart hook), `store.rs` (SQL), `ledger.rs` (the
//! Merkle tree), `archive.rs` (the alarm's move to R2). The socket fan-out it shares with the
//! relays is [`crate::sockets`].

mod admin;
mod archive;
mod connect;
mod history;
mod ledger;
mod mutate;
mod segments;
mod store;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{Request, Response};
use worker::durable::State;
use worker::worker_sys::{DurableObjectState, WebSocketRequestResponsePair};
use worker::Env;

use crate::core::archive::{backoff_ms, pointer_json, ProofQuery, Settings, POINTER_HEADER};
use crate::core::batch::SizeHistogram;
use crate::core::limits::{self, RateLimiter};
use crate::core::problem::Problem;
use crate::core::prometheus::Tally;
use crate::core::state::Snapshot;
use crate::core::wire::ObjectCall;
use crate::error::{Error, Result};
use crate::http::{self, now_ms};
use crate::log::log_event;
use crate::sockets;
use archive::{Archiver, Step as ArchiveStep};
use history::AsOf;
use ledger::Ledger;
use store::Store;

/// The Durable Object class bound as `COUNTER`.
#[wasm_bindgen]
pub struct Counter {
    state: State,
    store: Store,
    /// The committed state, or why the object cannot serve (a failed migration).
    current: RefCell<Result<Snapshot>>,
    schema_version: u32,
    /// Applied increments/decrements per client (`RATE_LIMIT_PER_10S`).
    limiter: RefCell<RateLimiter>,
    /// Open sockets allowed per client (`WS_CONNECTIONS_PER_CLIENT`); 0 = no cap.
    socket_cap: u32,
    /// Commits, replays and refusals since this instance started (`GET /api/metrics`).
    tally: Cell<Tally>,
    /// When this instance started, ms since the epoch.
    started_ms: i64,
    /// The audit trail's Merkle tree and the checkpoint signer.
    ledger: Ledger,
    /// How many requests each read or change call carried, since the object started.
    sizes: RefCell<SizeHistogram>,
    /// Moving old audit entries to R2, and expiring idempotency keys (the alarm).
    archive: Rc<Archiver>,
}

#[wasm_bindgen]
impl Counter {
    /// Runs on every (re)construction, including after hibernation: brings the schema up to
    /// date and loads the counter row. SQL is synchronous, so the object
    /// is fully initialised before its first event.
    #[wasm_bindgen(constructor)]
    pub fn new(raw: DurableObjectState, env: Env) -> Counter {
        let state = State::from(raw);
        let store = Store::new(
            state
                .as_raw()
                .storage()
                .map_or_else(|e| e.unchecked_into(), |s| s.unchecked_into()),
        );
        let (current, schema_version) = match store.migrate() {
            Ok(v) => (store.load(), v),
            Err(e) => (Err(e), 0),
        };
        match &current {
            // One line per (re)start: after hibernation the object is rebuilt from storage
            // while its sockets stayed open; this line is how operators see that happen.
            Ok(s) => log_event("info", "counter started", |w| {
                w.uint("version", s.version)
                    .uint("schema_version", u64::from(schema_version))
                    .uint("sockets", sockets::count(&state) as u64);
            }),
            Err(e) => e.log("counter unavailable"),
        }
        if let Ok(pair) = WebSocketRequestResponsePair::new("ping", "pong") {
            let _ = state.as_raw().set_websocket_auto_response(&pair);
        }
        let ledger = match &current {
            Ok(s) => Ledger::load(&store, s.version),
            Err(_) => Ledger::load(&store, 0),
        };
        if ledger.building() {
            store.wake_soon();
        }
        let var = |name: &str| {
            js_sys::Reflect::get(&env, &JsValue::from_str(name))
                .ok()
                .and_then(|v| v.as_string())
        };
        let (settings, errors) = Settings::parse(
            var("AUDIT_HOT_ENTRIES").as_deref(),
            var("AUDIT_HOT_HOURS").as_deref(),
            var("IDEMPOTENCY_RETENTION_SECONDS").as_deref(),
        );
        for e in errors {
            log_event("error", "invalid archive setting; using its default", |w| {
                w.string("error", &e);
            });
        }
        let archive = Archiver::load(
            store.clone(),
            crate::r2::bucket(&env),
            settings,
            current.as_ref().map_or(0, |s| s.version),
            // A test hook, and only with the test hooks on: see `counter/archive.rs`.
            if var("ADMIN_TEST_HOOKS").as_deref() == Some("1") {
                var("ARCHIVE_TEST_PAUSE_MS")
                    .and_then(|v| v.trim().parse::<u32>().ok())
                    .unwrap_or(0)
                    .min(600_000)
            } else {
                0
            },
        );
        Counter {
            state,
            store,
            current: RefCell::new(current),
            schema_version,
            limiter: RefCell::new(RateLimiter::new(limit_var(&env, "RATE_LIMIT_PER_10S"))),
            socket_cap: limit_var(&env, "WS_CONNECTIONS_PER_CLIENT"),
            tally: Cell::new(Tally::default()),
            started_ms: now_ms(),
            ledger,
            sizes: RefCell::new(SizeHistogram::default()),
            archive,
        }
    }

    /// The object's alarm: the next chunk of the Merkle backfill, expired idempotency keys,
    /// and one archival step (`counter/archive.rs`). The archival step awaits R2, and the
    /// object serves other events meanwhile; the promise always resolves (a failure is logged
    /// and retried by the next alarm, with backoff), so the runtime never retries on its own.
    pub fn alarm(&self) -> js_sys::Promise {
        self.archive.alarm_fired();
        let version = match &*self.current.borrow() {
            Ok(s) => s.version,
            Err(_) => return js_sys::Promise::resolve(&JsValue::UNDEFINED),
        };
        let more_backfill = self.ledger.backfill(&self.store, version);
        let more_keys = self.archive.expire_keys();
        let archiver = Rc::clone(&self.archive);
        wasm_bindgen_futures::future_to_promise(async move {
            let result = if archiver.due(version) {
                match archiver.step(version).await {
                    Ok(ArchiveStep::Archived) => Ok(1),
                    Ok(ArchiveStep::Idle) => Ok(0),
                    Err(e) => Err(e),
                }
            } else {
                Ok(0)
            };
            let failures = archiver.finish_run(&result);
            let now = now_ms();
            let version = archiver.version().max(version);
            let next = if more_backfill || more_keys {
                Some(now)
            } else if result.is_err() {
                Some(now + backoff_ms(failures))
            } else if matches!(result, Ok(1)) && archiver.due(version) {
                Some(now)
            } else {
                archiver.idle_alarm(now)
            };
            if let Some(at) = next {
                archiver.set_alarm(at);
            }
            Ok(JsValue::UNDEFINED)
        })
    }

    /// A batch call from the edge as a method (the platform's RPC, through the class in
    /// `entry.js`): the batch as JSON ([`batch::Call`]s) in, the replies as one JSON string
    /// out, or an error that fails the whole call (the edge then sends each request alone, as
    /// a plain request). The answer is a string the edge reads at once: no response body to
    /// read, which costs the edge more than the call itself. A batch the object cannot decode
    /// (an edge of another version, say) is logged with its cause and refused as a whole.
    ///
    /// Like a response, the returned value leaves the object only once its writes are durable
    /// (the runtime holds every RPC reply behind the output gate).
    #[wasm_bindgen(js_name = batch)]
    pub fn batch_call(&self, json: String) -> Result<String, JsValue> {
        self.batch_replies(&json)
            .map_err(|p| js_sys::Error::new(&format!("batch refused: {}", p.status())).into())
    }

    /// One call from the edge, a relay or an edge of another version (plain requests, the
    /// URLs of [`ObjectCall`]). Never yields: see the module doc.
    pub fn fetch(&self, req: Request) -> Result<Response, JsValue> {
        self.answer(&req.url()).map_err(Into::into)
    }

    /// The answer to the call at `url`. An error here (a response that could not be built)
    /// fails the call: [`Counter::fetch`] throws it.
    fn answer(&self, url: &str) -> Result<Response> {
        let call = match ObjectCall::decode(url) {
            Ok(call) => call,
            Err(e) => {
                return http::problem_response(&Error::from(e).logged("counter call refused"))
            }
        };
        let current = match &*self.current.borrow() {
            Ok(s) => s.clone(),
            Err(_) => {
                return http::problem_response(&Problem::Unavailable {
                    retry_after_secs: 5,
                })
            }
        };
        match call {
            ObjectCall::Value => {
                self.sizes.borrow_mut().record(1);
                http::json(&current.value_json(), &[("etag", &current.etag())])
            }
            ObjectCall::Mutate { mutation, client } => self.mutate(&current, &mutation, &client),
            ObjectCall::Audit(q) => self.audit(&q),
            ObjectCall::Connect { since, client } => self.connect(&current, since, &client),
            ObjectCall::Health => self.health(&current),
            ObjectCall::Metrics => self.metrics(&current),
            ObjectCall::Checkpoint => reply(self.ledger.tree_head()),
            ObjectCall::Inclusion(q) => {
                let tree_size = q.tree_size.unwrap_or(current.version);
                let valid = tree_size <= current.version && (1..=tree_size).contains(&q.version);
                let pq = valid.then_some(ProofQuery::Inclusion {
                    version: q.version,
                    tree_size,
                });
                self.archived_proof(pq)
                    .unwrap_or_else(|| reply(self.ledger.inclusion(&self.store, &q)))
            }
            ObjectCall::Consistency(q) => {
                let to = q.to.unwrap_or(current.version);
                let valid = to <= current.version && q.from <= to;
                let pq = valid.then_some(ProofQuery::Consistency { from: q.from, to });
                self.archived_proof(pq)
                    .unwrap_or_else(|| reply(self.ledger.consistency(&self.store, &q)))
            }
            ObjectCall::ValueAsOf(q) => match self.value_as_of(&current, &q) {
                Ok(AsOf::Body(b)) => http::json(&b, &[]),
                Ok(AsOf::Pointer(p)) => http::json(&p.to_json(), &[(POINTER_HEADER, "as_of")]),
                Err(p) => http::problem_response(&p),
            },
            ObjectCall::ExportPage { csv, after, until } => {
                // A page that starts in the archive: the segment's record, which the Worker
                // reads from R2 itself (`edge/export.rs`).
                match self.archive.segment_of(after + 1) {
                    Ok(Some(seg)) => {
                        return http::json(
                            &pointer_json(&seg, current.version),
                            &[(POINTER_HEADER, "segment")],
                        )
                    }
                    Ok(None) => {}
                    Err(e) => return http::problem_response(&e.logged("export read failed")),
                }
                match self.store.audit(
                    after,
                    until
                        .saturating_sub(after)
                        .min(crate::core::ledger::EXPORT_PAGE),
                ) {
                    Ok(rows) => http::respond(
                        200,
                        http::TEXT,
                        &crate::core::ledger::export_page(&rows, csv),
                        &[],
                    ),
                    Err(e) => http::problem_response(&e.logged("export read failed")),
                }
            }
            ObjectCall::Upstream { since, relay } => self.upstream(&current, since, &relay),
            ObjectCall::Relays => self.relays(&current),
            ObjectCall::Restart => self.restart(),
        }
    }

    /// A message from a client socket (never `ping`: the runtime answers that).
    #[wasm_bindgen(js_name = webSocketMessage)]
    pub fn websocket_message(&self, ws: web_sys::WebSocket, message: JsValue) {
        let (len, binary) = match message.as_string() {
            Some(text) => {
                // A relay's report of the sockets it refused: counted with the counter's own.
                // From any other socket it is just an unsupported message.
                if let Some(refused) = crate::core::relay::parse_report(&text) {
                    if connect::is_relay(&self.state, &ws) {
                        self.count(|t| t.rate_limited_sockets += refused);
                        return;
                    }
                }
                (text.len(), false)
            }
            None => (
                message
                    .dyn_ref::<js_sys::ArrayBuffer>()
                    .map_or(0, |b| b.byte_length() as usize),
                true,
            ),
        };
        sockets::on_message(&ws, len, binary, now_ms());
    }

    /// A client closed its socket.
    #[wasm_bindgen(js_name = webSocketClose)]
    pub fn websocket_close(&self, ws: web_sys::WebSocket, code: u16, reason: String, _clean: bool) {
        sockets::on_close(&ws, code, &reason);
    }

    /// A socket failed; the runtime has already closed it.
    #[wasm_bindgen(js_name = webSocketError)]
    pub fn websocket_error(&self, _ws: web_sys::WebSocket, _error: JsValue) {}
}

/// A JSON body, or the problem.
fn reply(body: Result<String, Problem>) -> Result<Response> {
    match body {
        Ok(b) => http::json(&b, &[]),
        Err(p) => http::problem_response(&p),
    }
}

/// A numeric limit var (absent or `0` = off). A malformed value is logged and treated as off.
fn limit_var(env: &Env, name: &str) -> u32 {
    crate::bindings::setting(env, name, limits::parse_limit, 0)
}
