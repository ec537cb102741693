//! The audit archive's records in the counter's database (`counter/store.rs` holds the rest of
//! its SQL): the hot entries archival reads, the segments and their state, the last run.

use wasm_bindgen::JsValue;

use crate::core::archive::Segment;
use crate::core::audit::AuditEntry;
use crate::error::{Context, Error, Result};

use super::store::{corrupt, entries, int, row_at, segment_row, RunRecord, Store};

const SELECT_RANGE: &str = "SELECT version, operation, amount, previous_value, value, request_id, at FROM audit WHERE version BETWEEN ? AND ? ORDER BY version";

impl Store {
    /// Audit entries `first..=last` that are still in the object, ascending.
    pub fn audit_range(&self, first: u64, last: u64) -> Result<Vec<AuditEntry>> {
        let rows = self
            .sql
            .exec_nn(SELECT_RANGE, first as f64, last as f64)
            .storage("reading audit entries to archive")?
            .rows();
        entries(&rows)
    }

    /// The newest version whose `at` is before `cutoff`, among the oldest `chunk` hot entries
    /// (0 if none): how far `AUDIT_HOT_HOURS` lets archival go in one step.
    pub fn aged_through(&self, cutoff: &str, chunk: u64) -> Result<u64> {
        let rows = self
            .sql
            .exec_sn(
                "SELECT coalesce(max(version), 0) FROM (SELECT version, at FROM audit ORDER BY version LIMIT ?2) WHERE at < ?1",
                cutoff,
                chunk as f64,
            )
            .storage("finding the entries past the hot window")?
            .rows();
        let row = row_at(&rows, 0).ok_or_else(|| corrupt("a max query returned nothing"))?;
        Ok(int(&row.get(0))? as u64)
    }

    /// The oldest version still in the object (0 when the audit table is empty).
    pub fn oldest_hot(&self) -> Result<u64> {
        self.count("SELECT coalesce(min(version), 0) FROM audit")
    }

    /// Every segment record, ascending: `(segment, archived)`.
    pub fn segments(&self) -> Result<Vec<(Segment, bool)>> {
        let rows = self
            .sql
            .exec(
                "SELECT first, last, bytes, sha256, archived FROM archive_segments ORDER BY first",
            )
            .storage("reading the segment records")?
            .rows();
        (0..rows.length())
            .map(|i| {
                let row =
                    row_at(&rows, i).ok_or_else(|| corrupt("a segment row is not an array"))?;
                Ok((
                    Segment {
                        first: int(&row.get(0))? as u64,
                        last: int(&row.get(1))? as u64,
                        bytes: int(&row.get(2))? as u64,
                        sha256: row.get(3).as_string().unwrap_or_default(),
                    },
                    int(&row.get(4))? == 1,
                ))
            })
            .collect()
    }

    /// The last archived segment whose first entry is at or before `at`, by the index on
    /// `archive_segment_times.first_at`. Meaningful only while every archived segment has one
    /// ([`Store::segment_without_first_at`]).
    pub fn segment_at(&self, at: &str) -> Result<Option<Segment>> {
        let rows = self
            .sql
            .exec_s(
                "SELECT s.first, s.last, s.bytes, s.sha256 FROM archive_segment_times t JOIN archive_segments s ON s.first = t.first WHERE s.archived = 1 AND t.first_at <= ? ORDER BY t.first_at DESC, t.first DESC LIMIT 1",
                at,
            )
            .storage("finding a segment by time")?
            .rows();
        row_at(&rows, 0).map(|r| segment_row(&r)).transpose()
    }

    /// An archived segment that has no `first_at` yet (archived before schema 6), if any.
    pub fn segment_without_first_at(&self) -> Result<Option<Segment>> {
        let rows = self
            .sql
            .exec(
                "SELECT s.first, s.last, s.bytes, s.sha256 FROM archive_segments s LEFT JOIN archive_segment_times t ON t.first = s.first WHERE s.archived = 1 AND t.first IS NULL ORDER BY s.first LIMIT 1",
            )
            .storage("finding a segment without its instant")?
            .rows();
        row_at(&rows, 0).map(|r| segment_row(&r)).transpose()
    }

    /// Records the instant of an archived segment's first entry.
    pub fn set_first_at(&self, first: u64, at: &str) -> Result<()> {
        self.sql
            .exec_sn(
                "INSERT OR REPLACE INTO archive_segment_times (first_at, first) VALUES (?, ?)",
                at,
                first as f64,
            )
            .map(|_| ())
            .storage("recording a segment's instant")
    }

    /// Records a segment before it is written to R2 (not archived yet).
    pub fn record_segment(&self, seg: &Segment, at: &str) -> Result<()> {
        self.sql
            .exec_nnnss(
                "INSERT INTO archive_segments (first, last, bytes, sha256, archived, at) VALUES (?, ?, ?, ?, 0, ?)",
                seg.first as f64,
                seg.last as f64,
                seg.bytes as f64,
                &seg.sha256,
                at,
            )
            .map(|_| ())
            .storage("recording a segment")
    }

    /// Forgets a recorded segment that was never archived (its entries are all still here).
    pub fn drop_pending_segment(&self, first: u64) -> Result<()> {
        self.sql
            .exec_n(
                "DELETE FROM archive_segments WHERE first = ? AND archived = 0",
                first as f64,
            )
            .map(|_| ())
            .storage("dropping a pending segment record")
    }

    /// After the segment was read back and checked: marks it archived and deletes its entries
    /// and their Merkle rows below the segment's root, in one transaction. Fails (and changes nothing) unless every entry of the range is
    /// still here exactly once and the record is still pending.
    pub fn complete_segment(&self, seg: &Segment, first_at: &str) -> Result<()> {
        let expected = seg.entries() as f64;
        self.atomically("completing a segment", &mut |sql| {
            let marked = sql
                .exec_n(
                    "UPDATE archive_segments SET archived = 1 WHERE first = ? AND archived = 0",
                    seg.first as f64,
                )
                .storage("marking the segment archived")?;
            sql.exec_sn(
                "INSERT OR REPLACE INTO archive_segment_times (first_at, first) VALUES (?, ?)",
                first_at,
                seg.first as f64,
            )
            .storage("recording the segment's instant")?;
            let deleted = sql
                .exec_nn(
                    "DELETE FROM audit WHERE version BETWEEN ? AND ?",
                    seg.first as f64,
                    seg.last as f64,
                )
                .storage("deleting the segment's entries")?;
            // The segment's Merkle rows go too, but for its last, which holds the segment
            // root (level 10) and every higher node: the lower hashes are rebuilt from
            // the segment itself when a proof needs them (`core::archive::ProofPointer`).
            sql.exec_nn(
                "DELETE FROM merkle WHERE version BETWEEN ? AND ?",
                seg.first as f64,
                (seg.last - 1) as f64,
            )
            .storage("deleting the segment's Merkle rows")?;
            if marked.rows_written() != 1.0 || deleted.rows_written() != expected {
                return Err(Error::Corrupt(format!(
                    "segment {}: {} record(s) pending, {} of {} entries present; nothing deleted",
                    seg.name(),
                    marked.rows_written(),
                    deleted.rows_written(),
                    expected
                )));
            }
            Ok(())
        })
    }

    /// The last archival run: `(at, outcome, error, consecutive failures)`.
    pub fn last_run(&self) -> Result<Option<RunRecord>> {
        let rows = self
            .sql
            .exec("SELECT at, outcome, error, failures FROM archive_runs WHERE id = 1")
            .storage("reading the last archival run")?
            .rows();
        Ok(match row_at(&rows, 0) {
            None => None,
            Some(r) => Some((
                r.get(0).as_string().unwrap_or_default(),
                r.get(1).as_string().unwrap_or_default(),
                r.get(2).as_string(),
                int(&r.get(3))? as u32,
            )),
        })
    }

    /// Records the outcome of an archival run.
    pub fn record_run(&self, at: &str, outcome: &str, error: Option<&str>, failures: u32) {
        let result = self.sql.exec_sssn(
            "INSERT INTO archive_runs (id, at, outcome, error, failures) VALUES (1, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET at = excluded.at, outcome = excluded.outcome, error = excluded.error, failures = excluded.failures",
            at,
            outcome,
            error.map_or(JsValue::NULL, JsValue::from_str),
            f64::from(failures),
        );
        if let Err(e) = result.storage("recording the archival run") {
            e.log("recording the archival run failed");
        }
    }
}
