//! # Number Acidizer
//!
//! One global counter that anyone can increment, decrement and watch change live. Every change
//! is applied exactly once, in one order, written together with its audit entry in one
//! transaction, kept durably, and pushed to every open browser.
//!
//! ## Layout
//!
//! Follow one mutation through these files:
//!
//! | step | file | platform? |
//! |---|---|---|
//! | the Worker's entry | `lib.rs` (this file); `entry.js`: the `fetch` handler as a plain module worker (no class or proxy per request) and the classes `Counter` (an RPC target: the edge calls its method `batch`) and `Relay` | thin |
//! | route, validate, key | [`edge`] (`edge/mod.rs`: `handle`; `edge/plan.rs`: routing and validation; `body.rs`, `config.rs`) | yes |
//! | the request as a typed call | [`core::wire`], [`core::command`] | **no** |
//! | under load, many requests in one call (group commit): the decision | `edge/batch.rs`, [`core::batch`] | yes / **no** |
//! | the call to the counter, with its retries (transport only) | `edge/forward.rs`, [`bindings`] (the stub), [`core::retry`] | yes / **no** |
//! | the one counter object: its class and the dispatch of each call | [`counter`] (`counter/mod.rs`) | yes |
//! | the mutation path: one change or a batch, a key seen before | `counter/mutate.rs`, [`core::idempotency`] | yes / **no** |
//! | the rule: precondition, range, new version | [`core::state`] | **no** |
//! | counter + audit entry + the key's record + its Merkle row in one transaction | `counter/store.rs`, `counter/ledger.rs`, [`ffi`] (`transactionSync`), [`core::ledger`] (`leaf.rs`, `merkle/`) | yes / **no** |
//! | push to every socket (with relays: to every relay, which pushes to its browsers) | [`sockets`] (fan-out, shared by both objects), `counter/connect.rs` (accept, catch up), [`relay`] (`relay/mod.rs`: the class and dispatch; `upstream.rs`, `browsers.rs`, `nearby.rs`, `watchdog.rs`, `events.rs`), [`streams`] (event streams' bytes, shared by the relays and the edge), [`core::realtime`], [`core::relay`] (`region.rs`, `walk.rs`, `life.rs`, `feed.rs`, `call.rs`, `report.rs`, `nearby.rs`, `settings.rs`) | yes / **no** |
//! | the response, or problem+json (the platform's errors: [`error`]) | [`http`], [`error`], [`core::problem`] | yes / **no** |
//! | the answer's way out: one log line and one metrics data point per request, CORS, the shield's learning | `edge/settle.rs` (chained onto the counter's promise), `edge/finish.rs`, `edge/metrics.rs`, [`log`] (the platform log), [`core::log`], [`core::metrics`] | yes / **no** |
//! | reads of the past: audit pages, `value_as_of`, the export | `counter/history.rs`, `edge/history.rs` (with this location's cache), `edge/export.rs`, [`core::audit`], [`core::ledger`] (`as_of.rs`, `export.rs`) | yes / **no** |
//! | old audit entries to R2 (the alarm), and reading them back | `counter/archive.rs`, `edge/archive.rs`, [`r2`], [`core::archive`] (`policy.rs`, `segment.rs`, `pointer.rs`) | yes / **no** |
//! | the ledger: checkpoints signed by the Worker, proofs from the object | `edge/checkpoint.rs`, `counter/ledger.rs`, [`core::ledger`] (`checkpoint.rs`, `proofs.rs`, `merkle/`) | yes / **no** |
//! | the object's health and metrics (`GET /api/metrics`, Prometheus text), admin hooks | `counter/admin.rs`, [`core::prometheus`] | yes / **no** |
//! | the command-line client and the offline verifier and key generator (native only) | `bin/acidizer/`, `bin/audit-verify.rs`, `bin/audit-keygen.rs`, [`core::ledger`] (`verify.rs`, `tamper.rs`) | **no** |
//!
//! [`core`] holds every rule and compiles natively, so `cargo test --lib` checks it in
//! milliseconds; the platform modules only exist in the `wasm32` build and stay thin.
//!
//! ## One Worker script
//!
//! The Wasm build is one Worker script (`wrangler.toml`): the `fetch` handler and the Durable
//! Object classes `Counter` and `Relay` in one module, so `wrangler dev`, `wrangler deploy` and
//! gradual rollouts treat the whole product as one. Its measured size and cold start are in
//! BENCHMARKS.md; the platform checks 64 MiB uncompressed and a start-up within 1 s.
//!
//! ## The major components
//!
//! - **The edge** ([`edge`]) is the stateless Worker that runs wherever a request lands. It
//!   refuses bad input before it costs the counter anything, and gives every mutation an
//!   idempotency key before its first attempt.
//! - **The counter** ([`counter`]) is one SQLite-backed Durable Object. The platform runs one
//!   event at a time in it; its handlers never yield, so mutations are serialized without
//!   locks, and its output gate holds every response and broadcast until the write behind it
//!   is durable.
//! - **The relays** ([`relay`]) are Durable Objects near the browsers, a few per region. Each
//!   holds one upstream socket to the counter and carries the browsers' sockets and nearby
//!   reads, so the counter sends each update once per relay, never once per browser. The edge
//!   picks a caller's relay ([`edge`]'s `relays.rs`).
//! - **The web app** (`web/`) is static files served by the assets binding; the Worker only
//!   sees `/api/*`.

pub mod core;

#[cfg(target_arch = "wasm32")]
pub mod bindings;
#[cfg(target_arch = "wasm32")]
pub mod counter;
#[cfg(target_arch = "wasm32")]
pub mod edge;
#[cfg(target_arch = "wasm32")]
pub mod error;
#[cfg(target_arch = "wasm32")]
pub mod ffi;
#[cfg(target_arch = "wasm32")]
pub mod http;
#[cfg(target_arch = "wasm32")]
pub mod log;
#[cfg(target_arch = "wasm32")]
pub mod r2;
#[cfg(target_arch = "wasm32")]
pub mod relay;
#[cfg(target_arch = "wasm32")]
pub mod sockets;
#[cfg(target_arch = "wasm32")]
pub mod streams;

#[cfg(target_arch = "wasm32")]
pub use counter::Counter;
#[cfg(target_arch = "wasm32")]
pub use relay::Relay;

/// Runs once per isolate: panics (which would be bugs) are logged with their message.
#[cfg(target_arch = "wasm32")]
#[worker::event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

/// The Worker's `fetch` handler: every request that is not a static file. It returns a
/// `Response` or a `Promise` of one, which the runtime accepts alike; see [`edge`] for why it
/// is not an `async fn` (and so not `#[event(fetch)]`).
#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn fetch(
    req: web_sys::Request,
    env: worker::Env,
    _ctx: wasm_bindgen::JsValue,
) -> Result<wasm_bindgen::JsValue, wasm_bindgen::JsValue> {
    edge::handle(req, env).map_err(Into::into)
}
