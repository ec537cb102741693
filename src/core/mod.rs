//! The pure core: every rule of the service, free of the platform.
//!
//! Nothing here touches JavaScript, the network, storage or a clock; time comes in as an
//! argument. That keeps the rules unit-tested natively in milliseconds (`cargo test --lib`),
//! and keeps the platform modules ([`crate::edge`], [`crate::counter`]) thin: they move bytes
//! between the runtime and these functions.
//!
//! - [`vocab`]: the shared vocabulary at the bottom — operations, the value bound, version
//!   syntax; it imports none of its siblings, so the modules below stack above it.
//! - [`routes`]: which paths and methods exist.
//! - [`command`]: mutations, amounts, body and `If-Match` parsing.
//! - [`idempotency`]: key syntax and the rule for a key seen before.
//! - [`state`]: the counter's state and the one transition rule.
//! - [`audit`]: the audit entry, its three JSON renderings, audit pages.
//! - [`archive`] (a folder): which entries move to R2 and when, with the archive and
//!   idempotency-retention settings (`policy`), the segments' form and checking what R2
//!   returns (`segment`), the answers that lie in the archive (`pointer`).
//! - [`ledger`] (a folder): the audit trail as a verifiable log. An entry's leaf bytes
//!   (`leaf`), the replay checks of the offline verifier (`verify`, `tamper`), the proof,
//!   export and as-of queries (`proofs`, `export`, `as_of`), on top of [`ledger::merkle`]
//!   (RFC 6962 hashing, roots, inclusion and consistency proofs; imports nothing from its
//!   siblings) and [`ledger::checkpoint`] (C2SP checkpoints and Ed25519 signed notes).
//! - [`realtime`]: how sockets start and what clients may send; [`sse`]: the same stream as
//!   Server-Sent Events.
//! - [`relay`]: the relay tier: regions and shards, the in-order feed with gap detection and
//!   the recent updates in memory, the edge → relay call, nearby reads.
//! - [`wire`]: the edge → object call, encoded in one URL; [`retry`]: when a failed call is
//!   tried again; [`batch`]: many requests in one call (group commit) and their answers.
//! - [`cache`]: which answers never change, their cache keys and ETags.
//! - [`cors`]: cross-origin rules; [`auth`]: the admin token check.
//! - [`problem`]: the one error type and its problem+json form.
//! - [`schema`]: the SQL schema as ordered migrations.
//! - [`limits`]: per-client rate limits and socket message budgets; [`shield`]: the refusals
//!   an edge isolate makes itself, learned from the counter's.
//! - [`metrics`]: the Analytics Engine data point each request becomes; [`prometheus`]: the
//!   object's own metrics as Prometheus text (`GET /api/metrics`).
//! - [`badge`]: `GET /api/badge.svg`, the value as an SVG badge.
//! - [`query`], [`json`], [`time`], [`log`], [`setting`]: small helpers.

pub mod archive;
pub mod audit;
pub mod auth;
pub mod badge;
pub mod batch;
pub mod cache;
pub mod command;
pub mod cors;
pub mod idempotency;
pub mod json;
pub mod ledger;
pub mod limits;
pub mod log;
pub mod metrics;
pub mod problem;
pub mod prometheus;
pub mod query;
pub mod realtime;
pub mod relay;
pub mod retry;
pub mod routes;
pub mod schema;
pub mod setting;
pub mod shield;
pub mod sse;
pub mod state;
pub mod time;
pub mod vocab;
pub mod wire;

// The command-line tools and the end-to-end tests name these `core::merkle` and
// `core::checkpoint`.
pub use ledger::{checkpoint, merkle};
