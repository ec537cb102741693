//! Rules of the relay tier: which relay a caller reaches, how a relay keeps the stream in
//! order, and what it can serve from memory.
//!
//! A relay is a Durable Object near a group of browsers. It holds one upstream WebSocket to
//! the counter (which sends it every committed update once), keeps the recent updates in a
//! [`Feed`], and fans them out to its own browser sockets. Nothing here touches the platform:
//! the relay object ([`crate::relay`]) feeds upstream messages and audit pages in and sends
//! what comes out.
//!
//! - [`region()`]: a caller's `request.cf` (continent, longitude) → a location hint.
//! - [`shard_order`]: the relays of a region a caller may use, in the order it tries them: one
//!   per [`levels`] of the region, chosen by its address (so one client's sockets stay
//!   together, and a region grows into more relays only where its relays are full).
//! - [`Feed`]: forward version v only after v − 1; on a gap, say which versions to fetch from
//!   the audit trail; drop duplicates; serve `since` from the last updates in memory.
//! - [`RelayCall`]: the edge → relay call, encoded in one URL like [`super::wire`].
//! - [`ValueRead`]: `GET /api/value?consistency=…&min_version=…`.
//!
//! The rooms, each with its tests; their names are re-exported here. `region`: the regions,
//! the relays' names, a region's levels and a client's shard order. `walk`: the marks and the
//! edge's [`Walk`], which keep the per-client count exact across relays. `life`: a browser
//! socket's deadline, which comes before its mark can expire. `feed`: the counter's messages,
//! the [`Feed`] and its memory, the reconnect backoff. `call`: [`RelayCall`]. `report`: the
//! refusals a relay reports, its line in the admin view. `nearby`: [`ValueRead`]. `settings`:
//! the defaults and [`parse_setting`].

mod call;
mod feed;
mod life;
mod nearby;
mod region;
mod report;
mod settings;
mod walk;

pub use crate::core::setting::parse_setting;
pub use call::{RelayCall, RELAY_ORIGIN, SEVER_ALARM_MS};
pub use feed::{
    backoff_ms, parse_audit_page, parse_upstream, CatchUp, Feed, Known, Upstream, MAX_PENDING, RING,
};
pub use life::{
    deadline_tag, parse_deadline_tag, socket_deadline, DEFAULT_SOCKET_MAX_SECONDS,
    MAX_SOCKET_MAX_SECONDS,
};
pub use nearby::ValueRead;
pub use region::{
    home, levels, parse_relay_name, region, relay_name, shard_order, GROWTH, MAX_RELAYS,
    MAX_SHARDS, REGIONS,
};
pub use report::{name_list, parse_report, report_message, stats_json, MAX_REPORTED};
pub use settings::{
    DEFAULT_IDLE_SECONDS, DEFAULT_SHARDS, DEFAULT_SOCKETS_PER_RELAY, DEFAULT_WATCHDOG_SECONDS,
};
pub use walk::{mark_key, Marks, Mode, Walk, FULL_HEADER, MARK_PREFIX, MARK_TTL_MS, ROOM_HEADER};

/// The tag of every relay's upstream socket at the counter.
pub const UPSTREAM_TAG: &str = "relay";

/// Updates and audit entries the tests of these rooms share.
#[cfg(test)]
mod fixtures {
    use super::Known;
    use crate::core::audit::AuditEntry;
    use crate::core::vocab::Operation;

    pub(super) fn k(version: u64) -> Known {
        Known {
            value: version as i64 * 10,
            version,
        }
    }

    pub(super) fn entry(version: u64) -> AuditEntry {
        AuditEntry {
            version,
            operation: Operation::Increment,
            amount: 10,
            previous_value: (version as i64 - 1) * 10,
            value: version as i64 * 10,
            request_id: format!("k{version}"),
            at: "2026-01-01T00:00:00.000Z".into(),
        }
    }

    pub(super) fn msg(version: u64) -> String {
        entry(version).update_message()
    }
}
