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

mod archive;
pub(crate) mod broadcast;
mod ledger;
mod store;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{Request, Response};
use worker::durable::State;
use worker::worker_sys::{DurableObjectState, WebSocketRequestResponsePair};
use worker::Env;

use crate::core::archive::{
    backoff_ms, pointer_json, ProofQuery, Settings, POINTER_HEADER, SEGMENT_ENTRIES,
};
use crate::core::audit::{AuditEntry, AuditQuery};
use crate::core::batch::{self, Reply, SizeHistogram};
use crate::core::command::Mutation;
use crate::core::idempotency::{self, Seen};
use crate::core::json::JsonWriter;
use crate::core::limits::{self, RateLimiter};
use crate::core::problem::Problem;
use crate::core::prometheus::{self, Tally};
use crate::core::relay::UPSTREAM_TAG;
use crate::core::schema;
use crate::core::state::Snapshot;
use crate::core::time::rfc3339_millis;
use crate::core::vocab::Operation;
use crate::core::wire::ObjectCall;
use crate::http::{self, log_event, now_ms};
use archive::{Archiver, Step as ArchiveStep};
use ledger::Ledger;
use store::{CommitError, Store};

/// What one mutation's [`Counter::step`] came to.
enum Step {
    /// Committed: the caller adopts the state after it and broadcasts it.
    Applied(AuditEntry),
    /// Nothing changed: a replay, or a refusal.
    Answered(Reply),
}

/// The Durable Object class bound as `COUNTER`.
#[wasm_bindgen]
pub struct Counter {
    state: State,
    store: Store,
    /// The committed state, or why the object cannot serve (a failed migration).
    current: RefCell<Result<Snapshot, String>>,
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
                    .uint("sockets", broadcast::count(&state) as u64);
            }),
            Err(e) => log_event("error", "counter unavailable", |w| {
                w.string("error", e);
            }),
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
            } else if result == Ok(1) && archiver.due(version) {
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
    /// `entry.js`): the encoded replies, or an error that fails the whole call (the edge
    /// then sends each request alone). The answer is a string the edge splits at once: no
    /// response body to read, which costs the edge more than the call itself.
    ///
    /// Like a response, the returned value leaves the object only once its writes are durable
    /// (the runtime holds every RPC reply behind the output gate).
    #[wasm_bindgen(js_name = batch)]
    pub fn batch_call(&self, url: String) -> Result<String, JsValue> {
        self.batch_replies(&url)
            .map_err(|p| js_sys::Error::new(&format!("batch refused: {}", p.status())).into())
    }

    /// One call from the edge. Never yields: see the module doc.
    pub fn fetch(&self, req: Request) -> Result<Response, JsValue> {
        let url = req.url();
        if batch::is_batch(&url) {
            // The batch call as a request (an edge from before batches were a method).
            return match self.batch_replies(&url) {
                Ok(text) => http::respond(200, batch::CONTENT_TYPE, &text, &[]),
                Err(p) => http::problem(&p),
            };
        }
        let call = match ObjectCall::decode(&url) {
            Ok(call) => call,
            Err(p) => return http::problem(&p),
        };
        let current = match &*self.current.borrow() {
            Ok(s) => s.clone(),
            Err(_) => {
                return http::problem(&Problem::Unavailable {
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
                Err(p) => http::problem(&p),
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
                    Err(e) => {
                        log_event("error", "export read failed", |w| {
                            w.string("error", &e);
                        });
                        return http::problem(&Problem::Internal);
                    }
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
                    Err(e) => {
                        log_event("error", "export read failed", |w| {
                            w.string("error", &e);
                        });
                        http::problem(&Problem::Internal)
                    }
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
                    if broadcast::is_relay(&self.state, &ws) {
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
        broadcast::on_message(&ws, len, binary, now_ms());
    }

    /// A client closed its socket.
    #[wasm_bindgen(js_name = webSocketClose)]
    pub fn websocket_close(&self, ws: web_sys::WebSocket, code: u16, reason: String, _clean: bool) {
        broadcast::on_close(&ws, code, &reason);
    }

    /// A socket failed; the runtime has already closed it.
    #[wasm_bindgen(js_name = webSocketError)]
    pub fn websocket_error(&self, _ws: web_sys::WebSocket, _error: JsValue) {}
}

impl Counter {
    /// One mutation sent alone: [`Counter::step`], then adopt, broadcast and answer.
    fn mutate(&self, current: &Snapshot, m: &Mutation, client: &str) -> Result<Response, JsValue> {
        self.sizes.borrow_mut().record(1);
        http::reply(&self.mutate_alone(current, m, client))
    }

    /// [`Counter::mutate`]'s answer as a [`Reply`] (the same bytes whichever way it leaves).
    fn mutate_alone(&self, current: &Snapshot, m: &Mutation, client: &str) -> Reply {
        match self.step(current, m, client, now_ms()) {
            Step::Applied(entry) => {
                *self.current.borrow_mut() = Ok(Snapshot::after(&entry));
                broadcast::broadcast(&self.state, &entry.update_message());
                Reply::applied(&entry)
            }
            Step::Answered(reply) => reply,
        }
    }

    /// One mutation, the same whether it came alone or in a batch: its rate-limit decision,
    /// the rule (precondition, range, new version) against `current`, and the commit of the
    /// counter row and its audit entry (the key's record) in one `transactionSync`, which is
    /// a savepoint when a batch's transaction is open. A commit that fails rolls back this
    /// mutation's writes only. On success the entry is committed (or, in a batch, released
    /// into the batch's transaction) and the client's change is counted; the caller adopts
    /// the new state and broadcasts.
    fn step(&self, current: &Snapshot, m: &Mutation, client: &str, now: i64) -> Step {
        // Admin changes are authenticated operator actions and not limited.
        let limited = matches!(m.op, Operation::Increment | Operation::Decrement);
        if limited {
            if let Err(retry_after_secs) = self.limiter.borrow_mut().check(client, now) {
                // A retry of a change applied earlier is still answered: replays are free.
                return Step::Answered(self.seen_before(m).unwrap_or_else(|| {
                    self.count(|t| t.rate_limited_changes += 1);
                    Reply::problem(&Problem::TooManyRequests {
                        retry_after_secs,
                        detail: format!(
                            "This client made more changes than allowed in 10 seconds; nothing was changed. Retry after {retry_after_secs} s."
                        ),
                    })
                }));
            }
        }
        let entry = match current.apply(m, rfc3339_millis(now)) {
            Ok(entry) => entry,
            // A retry of a change that was applied when it was still valid must get its
            // original answer, not this refusal: the key decides before the rule does.
            Err(problem) => {
                return Step::Answered(
                    self.seen_before(m)
                        .unwrap_or_else(|| Reply::problem(&problem)),
                )
            }
        };
        let appended = self.ledger.prepare(&entry);
        let merkle_row = appended.as_ref().map(|(_, row)| row.as_slice());
        let mut committed = self.store.commit(&entry, merkle_row);
        // A key past its retention is new again: its old record goes and the change commits.
        if committed.is_err() && self.forget_expired_key(m) {
            committed = self.store.commit(&entry, merkle_row);
        }
        match committed {
            Ok(()) => {
                if let Some((frontier, _)) = appended {
                    self.ledger.adopt(frontier);
                }
                self.archive.after_commit(entry.version);
                if limited {
                    self.limiter.borrow_mut().record(client, now);
                }
                self.count(|t| t.commits += 1);
                Step::Applied(entry)
            }
            // Rolled back. The usual cause is that the key is already stored (a replay);
            // anything else is a storage fault, and the client may retry the same key.
            Err(CommitError::Storage(why)) => {
                Step::Answered(self.seen_before(m).unwrap_or_else(|| {
                    log_event("error", "commit failed", |w| {
                        w.string("request_id", m.key.as_str()).string("error", &why);
                    });
                    Reply::problem(&Problem::Internal)
                }))
            }
        }
    }

    /// Many requests in one call (group commit, see [`crate::core::batch`]): one outer
    /// `transactionSync` around every mutation's own [`Counter::step`], reads answered at
    /// their place in the order. One mutation's refusal or rolled-back commit never touches
    /// another. Only after the outer transaction committed is the new state adopted and each
    /// change broadcast, in version order. If the outer transaction fails, nothing of the
    /// batch happened: its rate-limit counts, metric counts and the Merkle tree's right edge are
    /// put back and the whole call gets 500, which
    /// the edge answers by sending each request again alone, with the same key.
    fn batch_replies(&self, url: &str) -> Result<String, Problem> {
        let calls = batch::decode(url)?;
        let current = match &*self.current.borrow() {
            Ok(s) => s.clone(),
            Err(_) => {
                return Err(Problem::Unavailable {
                    retry_after_secs: 5,
                })
            }
        };
        self.sizes.borrow_mut().record(calls.len());
        // Reads alone change nothing: no transaction to open and commit.
        if calls.iter().all(|c| matches!(c, ObjectCall::Value)) {
            let reply = Reply::value(&current);
            return Ok(batch::encode_replies(&vec![reply; calls.len()]));
        }
        // A change alone: exactly the single call's step, in its own transaction.
        if let [ObjectCall::Mutate { mutation, client }] = calls.as_slice() {
            let reply = self.mutate_alone(&current, mutation, client);
            return Ok(batch::encode_replies(std::slice::from_ref(&reply)));
        }
        self.batch(&current, &calls)
    }

    fn batch(&self, current: &Snapshot, calls: &[ObjectCall]) -> Result<String, Problem> {
        let now = now_ms();
        let mut working = current.clone();
        // What to put back should the whole transaction fail.
        let (tally, tree) = (self.tally.get(), self.ledger.saved());
        let mut applied: Vec<(AuditEntry, &str)> = Vec::new();
        let mut replies: Vec<Reply> = Vec::with_capacity(calls.len());
        let outcome = self.store.transaction(&mut || {
            for call in calls {
                let reply = match call {
                    ObjectCall::Mutate { mutation, client } => {
                        match self.step(&working, mutation, client, now) {
                            Step::Applied(entry) => {
                                working = Snapshot::after(&entry);
                                let reply = Reply::applied(&entry);
                                applied.push((entry, client));
                                reply
                            }
                            Step::Answered(reply) => reply,
                        }
                    }
                    ObjectCall::Value => Reply::value(&working),
                    // `batch::decode` only yields values and mutations.
                    _ => Reply::problem(&Problem::Internal),
                };
                replies.push(reply);
            }
        });
        if let Err(why) = outcome {
            self.tally.set(tally);
            if let Some(tree) = tree {
                self.ledger.adopt(tree);
            }
            let mut limiter = self.limiter.borrow_mut();
            for (entry, client) in &applied {
                if matches!(entry.operation, Operation::Increment | Operation::Decrement) {
                    limiter.forget(client, now);
                }
            }
            log_event("error", "batch commit failed", |w| {
                w.uint("calls", calls.len() as u64).string("error", &why);
            });
            return Err(Problem::Internal);
        }
        *self.current.borrow_mut() = Ok(working);
        for (entry, _) in &applied {
            broadcast::broadcast(&self.state, &entry.update_message());
        }
        Ok(batch::encode_replies(&replies))
    }

    /// The answer for a key that is already stored: its original response (replay), or 422
    /// when it was used for something else. `None` if the key is new.
    fn seen_before(&self, m: &Mutation) -> Option<Reply> {
        let stored = match self.store.lookup(m.key.as_str()) {
            Ok(stored) => stored?,
            Err(e) => {
                log_event("error", "key lookup failed", |w| {
                    w.string("error", &e);
                });
                return Some(Reply::problem(&Problem::Internal));
            }
        };
        // Past its retention a key is new again, even before the alarm removed its record.
        if stored.at < self.archive.settings.key_cutoff(now_ms()) {
            return None;
        }
        let fingerprint = stored.fingerprint();
        let response = stored.response_json();
        Some(
            match idempotency::judge(&m.fingerprint(), &fingerprint, &response) {
                Seen::Replay(body) => {
                    self.count(|t| t.replays += 1);
                    Reply::json(
                        body.to_owned(),
                        &[
                            ("idempotent-replayed", "true"),
                            ("etag", &format!("\"{}\"", stored.version)),
                        ],
                    )
                }
                Seen::Conflict => Reply::problem(&Problem::KeyReused {
                    key: m.key.as_str().to_owned(),
                }),
            },
        )
    }

    /// A proof that needs hashes of archived segments: the pointer the Worker completes from
    /// R2 (`edge/archive.rs`). `None` when the object can answer alone (or the query is
    /// invalid, or the tree is not live: the ledger answers those).
    fn archived_proof(&self, q: Option<ProofQuery>) -> Option<Result<Response, JsValue>> {
        if self.ledger.building() {
            return None;
        }
        match self.archive.proof_pointer(q?) {
            Ok(None) => None,
            Ok(Some(p)) => Some(http::json(&p.to_json(), &[(POINTER_HEADER, "proof")])),
            Err(e) => {
                log_event("error", "archived proof failed", |w| {
                    w.string("error", &e);
                });
                Some(http::problem(&Problem::Internal))
            }
        }
    }

    /// Removes the record of `m`'s key if its retention has passed; whether it did.
    fn forget_expired_key(&self, m: &Mutation) -> bool {
        let cutoff = self.archive.settings.key_cutoff(now_ms());
        match self.store.forget_key(m.key.as_str(), &cutoff) {
            Ok(forgotten) => forgotten,
            Err(e) => {
                log_event("error", "forgetting an expired key failed", |w| {
                    w.string("error", &e);
                });
                false
            }
        }
    }

    /// An audit page. When it starts in the archive, the answer is instead a pointer to the
    /// segment (marked by [`POINTER_HEADER`]), which the Worker reads from R2 itself.
    fn audit(&self, q: &AuditQuery) -> Result<Response, JsValue> {
        match self.archive.segment_of(q.after + 1) {
            Ok(Some(seg)) => {
                let version = self.archive.version();
                return http::json(&pointer_json(&seg, version), &[(POINTER_HEADER, "segment")]);
            }
            Ok(None) => {}
            Err(e) => {
                log_event("error", "audit read failed", |w| {
                    w.string("error", &e);
                });
                return http::problem(&Problem::Internal);
            }
        }
        match self.store.audit_page(q) {
            Ok(body) => http::json(&body, &[]),
            Err(e) => {
                log_event("error", "audit read failed", |w| {
                    w.string("error", &e);
                });
                http::problem(&Problem::Internal)
            }
        }
    }

    fn connect(
        &self,
        current: &Snapshot,
        since: Option<u64>,
        client: &str,
    ) -> Result<Response, JsValue> {
        if self.socket_cap > 0
            && broadcast::count_for(&self.state, client) >= self.socket_cap as usize
        {
            self.count(|t| t.rate_limited_sockets += 1);
            return http::problem(&Problem::TooManyRequests {
                retry_after_secs: 10,
                detail: format!(
                    "This client already has {} open connections, the most allowed; close one first.",
                    self.socket_cap
                ),
            });
        }
        let pair = worker::WebSocketPair::new().map_err(JsValue::from)?;
        let server: &web_sys::WebSocket = pair.server.as_ref();
        if let Err(e) = broadcast::accept(&self.state, &self.store, server, client, since, current)
        {
            log_event("error", "socket accept failed", |w| {
                w.string("error", &e);
            });
            return http::problem(&Problem::Internal);
        }
        let response = worker::Response::from_websocket(pair.client).map_err(JsValue::from)?;
        Ok(response.into())
    }

    /// A relay's upstream socket: a socket like any other, tagged as a relay (and with the
    /// relay's name), so the broadcast sends it every update once and no client cap counts it.
    /// Unlike a browser's, a resumed one also gets the snapshot after its replay.
    fn upstream(
        &self,
        current: &Snapshot,
        since: Option<u64>,
        relay: &str,
    ) -> Result<Response, JsValue> {
        let pair = worker::WebSocketPair::new().map_err(JsValue::from)?;
        let server: &web_sys::WebSocket = pair.server.as_ref();
        let tags = [UPSTREAM_TAG, &format!("{UPSTREAM_TAG}:{relay}")];
        if let Err(e) =
            broadcast::accept_tagged(&self.state, &self.store, server, &tags, since, current)
        {
            log_event("error", "relay accept failed", |w| {
                w.string("error", &e);
            });
            return http::problem(&Problem::Internal);
        }
        // A resume ends with the counter's state, so the relay knows it is caught up (its
        // nearby reads wait for that); a fresh upstream already started with it.
        if since.is_some() {
            let _ = server.send_with_str(&current.snapshot_message());
        }
        let response = worker::Response::from_websocket(pair.client).map_err(JsValue::from)?;
        Ok(response.into())
    }

    /// The relays connected upstream now, by name, and the counter's version (admin).
    fn relays(&self, current: &Snapshot) -> Result<Response, JsValue> {
        let names = broadcast::relay_names(&self.state);
        let body = JsonWriter::object()
            .uint("version", current.version)
            .raw("relays", &crate::core::relay::name_list(&names))
            .finish();
        http::json(&body, &[])
    }

    /// Test hook: resets the object the way a deploy does (every socket is dropped; the next
    /// request builds it again from storage). The call itself fails with the reason.
    fn restart(&self) -> Result<Response, JsValue> {
        log_event("info", "counter restart requested", |_| {});
        self.state
            .as_raw()
            .unchecked_ref::<crate::ffi::ObjectContext>()
            .abort("restart requested")?;
        http::problem(&Problem::Internal)
    }

    fn health(&self, current: &Snapshot) -> Result<Response, JsValue> {
        let hot = self
            .store
            .audit_count()
            .map_err(|e| JsValue::from_str(&e))?;
        let mut sizes = JsonWriter::object();
        for (label, calls) in self.sizes.borrow().buckets() {
            sizes.uint(label, calls);
        }
        let sizes = sizes.finish();
        let oldest_hot = self.store.oldest_hot().map_err(|e| JsValue::from_str(&e))?;
        let (archived, segments) = self.archive.totals();
        let audit_rows = hot + archived;
        let last_archival = match self.archive.last_run() {
            None => "null".to_string(),
            Some(run) => JsonWriter::object()
                .string("at", &run.at)
                .string("outcome", &run.outcome)
                .opt_string("error", run.error.as_deref())
                .uint("consecutive_failures", u64::from(run.failures))
                .finish(),
        };
        let body = JsonWriter::object()
            .string("status", "ok")
            .uint("schema_version", u64::from(self.schema_version))
            .uint("latest_schema_version", u64::from(schema::latest()))
            .int("value", current.value)
            .uint("version", current.version)
            .uint("audit_entries", audit_rows)
            .uint("sockets", broadcast::count(&self.state) as u64)
            .uint(
                "relays",
                broadcast::count_for(&self.state, UPSTREAM_TAG) as u64,
            )
            .uint("database_bytes", self.store.size_bytes())
            .raw("calls_by_size", &sizes)
            .uint("hot_entries", hot)
            .opt_string(
                "oldest_key_at",
                self.store
                    .oldest_key_at()
                    .map_err(|e| JsValue::from_str(&e))?
                    .as_deref(),
            )
            .uint("archived_entries", archived)
            .uint("archive_segments", segments)
            .opt_uint("oldest_hot_version", (oldest_hot > 0).then_some(oldest_hot))
            .raw("last_archival", &last_archival)
            .finish();
        http::json(&body, &[])
    }
}

impl Counter {
    /// Counts something in the metrics tally.
    fn count(&self, f: impl FnOnce(&mut Tally)) {
        let mut t = self.tally.get();
        f(&mut t);
        self.tally.set(t);
    }

    /// `GET /api/metrics`: the object's gauges and counters as Prometheus text.
    fn metrics(&self, current: &Snapshot) -> Result<Response, JsValue> {
        let hot_entries = self
            .store
            .audit_count()
            .map_err(|e| JsValue::from_str(&e))?;
        let (archived_entries, archive_segments) = self.archive.totals();
        let gauges = prometheus::Gauges {
            value: current.value,
            version: current.version,
            sockets: broadcast::count(&self.state) as u64,
            relays: broadcast::count_for(&self.state, UPSTREAM_TAG) as u64,
            database_bytes: self.store.size_bytes(),
            audit_entries: hot_entries + archived_entries,
            hot_entries,
            archived_entries,
            archive_segments,
            schema_version: self.schema_version,
            started_ms: self.started_ms,
        };
        let body = prometheus::render(&gauges, &self.tally.get());
        http::respond(200, prometheus::CONTENT_TYPE, &body, &[])
    }
}

/// A past value: its body, or (when it lies in the archive) the pointer the Worker completes
/// from R2 (`edge/archive.rs`).
enum AsOf {
    Body(String),
    Pointer(crate::core::archive::AsOfPointer),
}

impl Counter {
    /// `GET /api/value?as_of_version=|as_of=`: the value after a past version, from its audit
    /// entry (found by binary search over versions for an instant: `at` never decreases). An
    /// entry in the archive is the Worker's to read: the object answers with the segment that
    /// holds it ([`crate::core::archive::AsOfPointer`]), found by version, or for an instant
    /// before the oldest hot entry by the `first_at` index of the segments.
    fn value_as_of(
        &self,
        current: &Snapshot,
        q: &crate::core::ledger::AsOfQuery,
    ) -> Result<AsOf, Problem> {
        use crate::core::archive::{AsOfPointer, AsOfTarget};
        use crate::core::ledger::{self, AsOf as At, InclusionQuery};
        let internal = |e: String| {
            log_event("error", "as-of read failed", |w| {
                w.string("error", &e);
            });
            Problem::Internal
        };
        let archived = self.archive.archived_through();
        let (version, target) = match &q.at {
            At::Version(v) if *v > current.version => {
                return Err(ledger::beyond("as_of_version", *v, current.version))
            }
            At::Version(v) => (*v, AsOfTarget::Version(*v)),
            At::Time(t) => {
                let v = self
                    .store
                    .version_at(t, archived, current.version)
                    .map_err(internal)?;
                if v == archived && archived > 0 {
                    // Every hot entry (if any) is after the instant: the answer is in the
                    // archive, in the last segment that starts at or before it, or before the
                    // first change.
                    match self.archive.segment_at(t) {
                        Ok(Some(seg)) => (seg.first, AsOfTarget::Time(t.clone())),
                        Ok(None) => (0, AsOfTarget::Version(0)),
                        Err(None) => {
                            return Err(Problem::Unavailable {
                                retry_after_secs: 5,
                            })
                        }
                        Err(Some(e)) => return Err(internal(e)),
                    }
                } else {
                    (v, AsOfTarget::Version(v))
                }
            }
        };
        if version == 0 {
            return Ok(AsOf::Body(ledger::as_of_json(None, None)));
        }
        if version <= archived {
            // The segment root and every hash above it, for the segment's first version: the
            // same for each entry of the segment (`AsOfPointer`).
            let pointer = self
                .archive
                .proof_pointer(ProofQuery::Inclusion {
                    version: (version - 1) / SEGMENT_ENTRIES * SEGMENT_ENTRIES + 1,
                    tree_size: current.version,
                })
                .map_err(internal)?
                .filter(|p| p.segments.len() == 1)
                .ok_or_else(|| internal(format!("no archived segment holds {version}")))?;
            return Ok(AsOf::Pointer(AsOfPointer {
                target,
                proof: q.proof,
                pointer,
            }));
        }
        let entry = self
            .store
            .audit(version - 1, 1)
            .map_err(internal)?
            .pop()
            .filter(|e| e.version == version)
            .ok_or_else(|| internal(format!("audit entry {version} is missing")))?;
        let proof = if q.proof {
            Some(self.ledger.inclusion(
                &self.store,
                &InclusionQuery {
                    version,
                    tree_size: None,
                },
            )?)
        } else {
            None
        };
        Ok(AsOf::Body(ledger::as_of_json(
            Some(&entry),
            proof.as_deref(),
        )))
    }
}

/// A JSON body, or the problem.
fn reply(body: Result<String, Problem>) -> Result<Response, JsValue> {
    match body {
        Ok(b) => http::json(&b, &[]),
        Err(p) => http::problem(&p),
    }
}

/// A numeric limit var (absent or `0` = off). A malformed value is logged and treated as off.
fn limit_var(env: &Env, name: &str) -> u32 {
    let raw = js_sys::Reflect::get(env, &JsValue::from_str(name))
        .ok()
        .and_then(|v| v.as_string());
    limits::parse_limit(raw.as_deref()).unwrap_or_else(|e| {
        log_event("error", "invalid limit setting; limit is off", |w| {
            w.string("var", name).string("error", &e);
        });
        0
    })
}
