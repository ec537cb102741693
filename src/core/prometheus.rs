//! The counter object's own metrics, in the Prometheus text exposition format (version 0.0.4),
//! served to operators at `GET /api/metrics` (admin token).
//!
//! Request rates, errors and latency come from the edge's data points ([`super::metrics`]);
//! these are what only the object knows: its state (gauges) and what it did since it started
//! (counters). The counters live in the object's memory, so they start again at 0 whenever the
//! object does (a deploy, an eviction after idling); Prometheus's `rate()` and `increase()`
//! treat that as a counter reset, and `acidizer_start_time_seconds` says when it happened.

use std::fmt::Write;

/// The media type of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What the object counted since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Changes committed (each one a new version).
    pub commits: u64,
    /// Changes answered from their stored entry (`Idempotent-Replayed: true`).
    pub replays: u64,
    /// Changes refused by the per-client rate limit (429).
    pub rate_limited_changes: u64,
    /// Sockets refused by the per-client connection cap (429), by the counter itself or by a
    /// relay (each relay reports its refusals on its upstream socket).
    pub rate_limited_sockets: u64,
}

/// What the object is now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gauges {
    /// The counter's value.
    pub value: i64,
    /// The counter's version (applied changes).
    pub version: u64,
    /// WebSockets open on the object (browsers' and relays' upstream sockets).
    pub sockets: u64,
    /// Relays connected upstream.
    pub relays: u64,
    /// The size of the object's SQLite database.
    pub database_bytes: u64,
    /// Entries in the audit trail, in the object and in the archive.
    pub audit_entries: u64,
    /// Of those, entries in the object's database (the hot window).
    pub hot_entries: u64,
    /// Of those, entries in the R2 archive.
    pub archived_entries: u64,
    /// Segments in the R2 archive.
    pub archive_segments: u64,
    /// The schema version the database is at.
    pub schema_version: u32,
    /// When this instance of the object started, ms since the epoch.
    pub started_ms: i64,
}

/// The exposition text: `# HELP` and `# TYPE` for every family, then its samples.
pub fn render(g: &Gauges, t: &Tally) -> String {
    let mut out = String::with_capacity(1536);
    let mut family = |name: &str, kind: &str, help: &str, samples: &[(&str, String)]| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let one = |v: String| [("", v)];
    family(
        "acidizer_value",
        "gauge",
        "The counter's current value.",
        &one(g.value.to_string()),
    );
    family(
        "acidizer_version",
        "gauge",
        "The counter's version: changes applied since the beginning.",
        &one(g.version.to_string()),
    );
    family(
        "acidizer_sockets",
        "gauge",
        "WebSockets open on the counter object (browsers' and relays' upstream sockets).",
        &one(g.sockets.to_string()),
    );
    family(
        "acidizer_relays",
        "gauge",
        "Relays connected upstream to the counter object.",
        &one(g.relays.to_string()),
    );
    family(
        "acidizer_database_bytes",
        "gauge",
        "Size of the counter's SQLite database in bytes.",
        &one(g.database_bytes.to_string()),
    );
    family(
        "acidizer_audit_entries",
        "gauge",
        "Entries in the audit trail, in the object and in the archive.",
        &one(g.audit_entries.to_string()),
    );
    family(
        "acidizer_hot_entries",
        "gauge",
        "Audit entries kept in the object's database (the hot window).",
        &one(g.hot_entries.to_string()),
    );
    family(
        "acidizer_archived_entries",
        "gauge",
        "Audit entries moved to the R2 archive.",
        &one(g.archived_entries.to_string()),
    );
    family(
        "acidizer_archive_segments",
        "gauge",
        "Segments in the R2 archive.",
        &one(g.archive_segments.to_string()),
    );
    family(
        "acidizer_schema_version",
        "gauge",
        "The database schema version.",
        &one(g.schema_version.to_string()),
    );
    family(
        "acidizer_start_time_seconds",
        "gauge",
        "When this instance of the counter object started (the counters below count from then).",
        &one(seconds(g.started_ms)),
    );
    family(
        "acidizer_commits_total",
        "counter",
        "Changes committed since the object started.",
        &one(t.commits.to_string()),
    );
    family(
        "acidizer_replays_total",
        "counter",
        "Changes answered as idempotent replays since the object started.",
        &one(t.replays.to_string()),
    );
    family(
        "acidizer_rate_limited_total",
        "counter",
        "Requests refused by a per-client limit since the object started (sockets: refused by the counter or reported by the relays).",
        &[
            ("{limit=\"changes\"}", t.rate_limited_changes.to_string()),
            ("{limit=\"sockets\"}", t.rate_limited_sockets.to_string()),
        ],
    );
    out
}

/// Milliseconds as decimal seconds (`1795631512.25`).
fn seconds(ms: i64) -> String {
    let s = ms.div_euclid(1000);
    match ms.rem_euclid(1000) {
        0 => s.to_string(),
        frac => format!("{s}.{}", format!("{frac:03}").trim_end_matches('0')),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gauges() -> Gauges {
        Gauges {
            value: -12,
            version: 40,
            sockets: 3,
            relays: 2,
            database_bytes: 16384,
            audit_entries: 40,
            hot_entries: 15,
            archived_entries: 25,
            archive_segments: 2,
            schema_version: 3,
            started_ms: 1_795_631_512_250,
        }
    }

    #[test]
    fn every_family_has_help_type_and_a_sample() {
        let t = Tally {
            commits: 7,
            replays: 2,
            rate_limited_changes: 5,
            rate_limited_sockets: 1,
        };
        let text = render(&gauges(), &t);
        assert!(text.ends_with('\n'));
        for (name, kind, sample) in [
            ("acidizer_value", "gauge", "acidizer_value -12"),
            ("acidizer_version", "gauge", "acidizer_version 40"),
            ("acidizer_sockets", "gauge", "acidizer_sockets 3"),
            ("acidizer_relays", "gauge", "acidizer_relays 2"),
            (
                "acidizer_database_bytes",
                "gauge",
                "acidizer_database_bytes 16384",
            ),
            (
                "acidizer_audit_entries",
                "gauge",
                "acidizer_audit_entries 40",
            ),
            ("acidizer_hot_entries", "gauge", "acidizer_hot_entries 15"),
            (
                "acidizer_archived_entries",
                "gauge",
                "acidizer_archived_entries 25",
            ),
            (
                "acidizer_archive_segments",
                "gauge",
                "acidizer_archive_segments 2",
            ),
            (
                "acidizer_schema_version",
                "gauge",
                "acidizer_schema_version 3",
            ),
            (
                "acidizer_start_time_seconds",
                "gauge",
                "acidizer_start_time_seconds 1795631512.25",
            ),
            (
                "acidizer_commits_total",
                "counter",
                "acidizer_commits_total 7",
            ),
            (
                "acidizer_replays_total",
                "counter",
                "acidizer_replays_total 2",
            ),
            (
                "acidizer_rate_limited_total",
                "counter",
                "acidizer_rate_limited_total{limit=\"changes\"} 5",
            ),
        ] {
            assert!(text.contains(&format!("# TYPE {name} {kind}\n")), "{name}");
            assert!(text.contains(&format!("# HELP {name} ")), "{name}");
            assert!(text.contains(&format!("\n{sample}\n")), "{sample}");
        }
        assert!(text.contains("acidizer_rate_limited_total{limit=\"sockets\"} 1\n"));
    }

    #[test]
    fn seconds_are_decimal() {
        assert_eq!(seconds(1_000), "1");
        assert_eq!(seconds(1_500), "1.5");
        assert_eq!(seconds(1_005), "1.005");
        assert_eq!(seconds(0), "0");
    }
}
