//! What the object says about itself and the operator's hooks: health, the Prometheus
//! metrics, the relays connected upstream, and the restart test hook.

use wasm_bindgen::JsCast;
use web_sys::Response;

use crate::core::json::JsonWriter;
use crate::core::problem::Problem;
use crate::core::prometheus::{self, Tally};
use crate::core::relay::UPSTREAM_TAG;
use crate::core::schema;
use crate::core::state::Snapshot;
use crate::error::{Context, Result};
use crate::http;
use crate::log::log_event;
use crate::sockets;

use super::{connect, Counter};

impl Counter {
    /// The relays connected upstream now, by name, and the counter's version (admin).
    pub(super) fn relays(&self, current: &Snapshot) -> Result<Response> {
        let names = connect::relay_names(&self.state);
        let body = JsonWriter::object()
            .uint("version", current.version)
            .raw("relays", &crate::core::relay::name_list(&names))
            .finish();
        http::json(&body, &[])
    }

    /// Test hook: resets the object the way a deploy does (every socket is dropped; the next
    /// request builds it again from storage). The call itself fails with the reason.
    pub(super) fn restart(&self) -> Result<Response> {
        log_event("info", "counter restart requested", |_| {});
        self.state
            .as_raw()
            .unchecked_ref::<crate::ffi::ObjectContext>()
            .abort("restart requested")
            .js("resetting the object")?;
        http::problem_response(&Problem::Internal)
    }

    pub(super) fn health(&self, current: &Snapshot) -> Result<Response> {
        let hot = self.store.audit_count()?;
        let mut sizes = JsonWriter::object();
        for (label, calls) in self.sizes.borrow().buckets() {
            sizes.uint(label, calls);
        }
        let sizes = sizes.finish();
        let oldest_hot = self.store.oldest_hot()?;
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
            .uint("sockets", sockets::count(&self.state) as u64)
            .uint(
                "relays",
                sockets::count_for(&self.state, UPSTREAM_TAG) as u64,
            )
            .uint("database_bytes", self.store.size_bytes())
            .raw("calls_by_size", &sizes)
            .uint("hot_entries", hot)
            .opt_string("oldest_key_at", self.store.oldest_key_at()?.as_deref())
            .uint("archived_entries", archived)
            .uint("archive_segments", segments)
            .opt_uint("oldest_hot_version", (oldest_hot > 0).then_some(oldest_hot))
            .raw("last_archival", &last_archival)
            .finish();
        http::json(&body, &[])
    }

    /// Counts something in the metrics tally.
    pub(super) fn count(&self, f: impl FnOnce(&mut Tally)) {
        let mut t = self.tally.get();
        f(&mut t);
        self.tally.set(t);
    }

    /// `GET /api/metrics`: the object's gauges and counters as Prometheus text.
    pub(super) fn metrics(&self, current: &Snapshot) -> Result<Response> {
        let hot_entries = self.store.audit_count()?;
        let (archived_entries, archive_segments) = self.archive.totals();
        let gauges = prometheus::Gauges {
            value: current.value,
            version: current.version,
            sockets: sockets::count(&self.state) as u64,
            relays: sockets::count_for(&self.state, UPSTREAM_TAG) as u64,
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
