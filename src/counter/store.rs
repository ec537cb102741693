//! The counter's SQLite storage: schema migrations, the mutation transaction, reads. The
//! archive's records in the same database are in `segments.rs`.
//!
//! Platform guarantees this relies on:
//! - The object's SQLite database is private to the one object instance and every call here is
//!   synchronous, so no other request can run between two statements.
//! - `transactionSync` makes the statements inside it one atomic transaction: a statement that
//!   throws rolls back all earlier writes of the transaction.
//! - Writes are durable before any output leaves the object: the runtime's output gate holds
//!   the HTTP response and every WebSocket message sent after a write until that write is
//!   persisted. So nothing the object says can describe a change that could still be lost.

use wasm_bindgen::JsValue;

use crate::core::archive::Segment;
use crate::core::audit::{AuditEntry, AuditQuery};
use crate::core::ledger::merkle::{Hash, Node};
use crate::core::schema::{self, META_TABLE};
use crate::core::state::Snapshot;
use crate::core::vocab::Operation;
use crate::error::{Context, Error, Result};
use crate::ffi::{Sql, Storage};

const UPDATE_COUNTER: &str =
    "UPDATE counter SET value = ?, version = ?, updated_at = ? WHERE id = 1";
const INSERT_AUDIT: &str = "INSERT INTO audit (version, operation, amount, previous_value, value, request_id, at) VALUES (?, ?, ?, ?, ?, ?, ?)";
const SELECT_AUDIT: &str = "SELECT version, operation, amount, previous_value, value, request_id, at FROM audit WHERE version > ? ORDER BY version LIMIT ?";
const INSERT_MERKLE: &str = "INSERT INTO merkle (version, hashes) VALUES (?, ?)";
const INSERT_KEY: &str = "INSERT INTO idempotency_keys (version, operation, amount, previous_value, value, request_id, at) VALUES (?, ?, ?, ?, ?, ?, ?)";
const SELECT_KEY: &str = "SELECT version, operation, amount, previous_value, value, request_id, at FROM idempotency_keys WHERE request_id = ?";

/// The last archival run as recorded: `(at, outcome, error, consecutive failures)`.
pub type RunRecord = (String, String, Option<String>, u32);

/// The storage of the one counter object (two handles to the same storage may coexist).
#[derive(Clone)]
pub struct Store {
    pub(super) storage: Storage,
    pub(super) sql: Sql,
}

impl Store {
    /// Wraps the object's storage (`ctx.storage`).
    pub fn new(storage: Storage) -> Self {
        let sql = storage.sql();
        Store { storage, sql }
    }

    /// Brings the schema to the newest version and returns the version reached.
    ///
    /// Each migration runs in its own transaction together with the bump of the recorded
    /// version, so a crash mid-way leaves the database at the previous version, never between.
    pub fn migrate(&self) -> Result<u32> {
        self.sql.exec(META_TABLE).storage("creating schema_meta")?;
        let current = self.schema_version()?;
        let pending = schema::pending(current).ok_or(Error::NewerSchema {
            found: current,
            latest: schema::latest(),
        })?;
        for m in pending {
            self.atomically("migrating the schema", &mut |sql| {
                for stmt in m.statements {
                    sql.exec(stmt).storage("running a migration statement")?;
                }
                sql.exec_n(
                    "INSERT INTO schema_meta (id, version) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET version = excluded.version",
                    f64::from(m.version),
                )
                .storage("recording the schema version")?;
                Ok(())
            })
            .map_err(|e| Error::Migration {
                version: m.version,
                name: m.name,
                cause: Box::new(e),
            })?;
            crate::log::log_event("info", "schema migrated", |w| {
                w.uint("version", u64::from(m.version))
                    .string("name", m.name);
            });
        }
        self.schema_version()
    }

    /// The recorded schema version (0 for a new database).
    pub fn schema_version(&self) -> Result<u32> {
        let rows = self
            .sql
            .exec("SELECT version FROM schema_meta WHERE id = 1")
            .storage("reading the schema version")?
            .rows();
        Ok(row_at(&rows, 0)
            .and_then(|r| r.get(0).as_f64())
            .map_or(0, |v| v as u32))
    }

    /// Reads the counter row.
    pub fn load(&self) -> Result<Snapshot> {
        let rows = self
            .sql
            .exec("SELECT value, version, updated_at FROM counter WHERE id = 1")
            .storage("reading the counter row")?
            .rows();
        let row = row_at(&rows, 0).ok_or_else(|| corrupt("the counter row is missing"))?;
        Ok(Snapshot {
            value: int(&row.get(0))?,
            version: int(&row.get(1))? as u64,
            updated_at: row.get(2).as_string(),
        })
    }

    /// Writes one applied change, the counter row and its audit entry, in one transaction,
    /// and with them the entry's Merkle row (`merkle`: the subtree hashes the entry completes,
    /// see [`write_merkle_row`]) when the tree is live, and the record of the request's
    /// idempotency key (`idempotency_keys`, unique key): when the key is already there (a
    /// retry), that insert fails and everything before and after it rolls back with it. The
    /// common case, a new key, costs no lookup at all.
    ///
    /// `Err` when the change was rolled back: a replayed key's failed insert, or a storage
    /// fault.
    pub fn commit(&self, entry: &AuditEntry, merkle: Option<&[Hash]>) -> Result<()> {
        let version = entry.version as f64;
        self.atomically("committing a change", &mut |sql| {
            sql.exec_nns(UPDATE_COUNTER, entry.value as f64, version, &entry.at)
                .storage("updating the counter row")?;
            insert_entry(sql, INSERT_AUDIT, entry).storage("inserting the audit entry")?;
            // The key's record, last: a key seen within its retention fails this insert
            // (UNIQUE) and rolls back everything above.
            insert_entry(sql, INSERT_KEY, entry).storage("recording the idempotency key")?;
            if let Some(hashes) = merkle {
                write_merkle_row(sql, entry.version, hashes)?;
            }
            Ok(())
        })
    }

    /// The Merkle rows of many entries in one transaction (the chunked backfill).
    pub fn write_merkle_rows(&self, rows: &[(u64, Vec<Hash>)]) -> Result<()> {
        self.atomically("writing Merkle rows", &mut |sql| {
            for (version, hashes) in rows {
                write_merkle_row(sql, *version, hashes)?;
            }
            Ok(())
        })
    }

    /// Runs `f` in one transaction: a batch's outer transaction, inside which every
    /// [`Store::commit`] is a nested one (a savepoint) that commits or rolls back on its own.
    /// `Err` when the transaction as a whole failed and was rolled back.
    pub fn transaction(&self, f: &mut dyn FnMut()) -> Result<()> {
        self.atomically("committing a batch", &mut |_| {
            f();
            Ok(())
        })
    }

    /// Runs `f` in one transaction (`transactionSync`), which commits when `f` returns `Ok`.
    /// When `f` fails, or the commit does, every write inside it rolls back (nested in another
    /// transaction, only its own: a savepoint). The one place a transaction's error crosses
    /// to JavaScript and back: `f`'s error is thrown to make the runtime roll back and comes
    /// back as it was; a failure of the transaction itself is an [`Error::Storage`] of `what`.
    pub(super) fn atomically(
        &self,
        what: &'static str,
        f: &mut dyn FnMut(&Sql) -> Result<()>,
    ) -> Result<()> {
        let mut failed = None;
        let outcome = self.storage.transaction_sync(&mut || match f(&self.sql) {
            Ok(()) => Ok(JsValue::UNDEFINED),
            Err(e) => {
                let thrown = e.to_js();
                failed = Some(e);
                Err(thrown)
            }
        });
        match (outcome, failed) {
            (_, Some(e)) => Err(e),
            (Ok(_), None) => Ok(()),
            (Err(cause), None) => Err(Error::Storage {
                what,
                cause: crate::error::Thrown(cause),
            }),
        }
    }

    /// The newest version that has its Merkle row (0 when none has).
    pub fn merkle_size(&self) -> Result<u64> {
        self.count("SELECT coalesce(max(version), 0) FROM merkle")
    }

    /// The hashes of complete subtrees, read in one statement. Node `(level, index)` lives in
    /// the row of the entry that completed it, at position `level`. Missing ones are absent.
    pub fn merkle_nodes(&self, nodes: &[Node]) -> Result<Vec<(Node, Hash)>> {
        let mut out = Vec::with_capacity(nodes.len());
        if nodes.is_empty() {
            return Ok(out);
        }
        // The list is made of integers computed here, never of request text.
        let list: Vec<String> = nodes
            .iter()
            .map(|n| (n.last_leaf() + 1).to_string())
            .collect();
        let query = format!(
            "SELECT version, hashes FROM merkle WHERE version IN ({})",
            list.join(",")
        );
        let rows = self.sql.exec(&query).storage("reading Merkle rows")?.rows();
        let mut by_version: Vec<(u64, Vec<u8>)> = Vec::with_capacity(nodes.len());
        for i in 0..rows.length() {
            let row = row_at(&rows, i).ok_or_else(|| corrupt("a merkle row is not an array"))?;
            let version = int(&row.get(0))? as u64;
            let bytes = js_sys::Uint8Array::new(&row.get(1)).to_vec();
            by_version.push((version, bytes));
        }
        for n in nodes {
            let at = n.level as usize * 32;
            if let Some(h) = by_version
                .iter()
                .find(|(v, _)| *v == n.last_leaf() + 1)
                .and_then(|(_, b)| b.get(at..at + 32))
                .and_then(|b| Hash::try_from(b).ok())
            {
                out.push((*n, h));
            }
        }
        Ok(out)
    }

    /// The record of a key used before (what its change was), if it is still kept.
    pub fn lookup(&self, key: &str) -> Result<Option<AuditEntry>> {
        let rows = self
            .sql
            .exec_s(SELECT_KEY, key)
            .storage("looking up an idempotency key")?
            .rows();
        entries(&rows).map(|mut found| found.pop())
    }

    /// Audit entries after `after`, ascending, at most `limit` of them.
    pub fn audit(&self, after: u64, limit: u64) -> Result<Vec<AuditEntry>> {
        let rows = self
            .sql
            .exec_nn(SELECT_AUDIT, after as f64, limit as f64)
            .storage("reading audit entries")?
            .rows();
        entries(&rows)
    }

    /// A page of the audit trail for `GET /api/audit`: one row more than asked, so the page
    /// knows whether another follows.
    pub fn audit_page(&self, q: &AuditQuery) -> Result<String> {
        let rows = self.audit(q.after, q.limit + 1)?;
        Ok(crate::core::audit::page_json(&rows, q.limit))
    }

    /// The last version whose entry was applied at or before `at` (RFC 3339 in the audit
    /// trail's own form, which orders as text), among versions `from+1..=max`; `from` if none
    /// (the caller passes the last archived version: only hot entries are searched). A binary
    /// search over versions: `at` never decreases along them, and it costs O(log N) reads.
    pub fn version_at(&self, at: &str, from: u64, max: u64) -> Result<u64> {
        let (mut lo, mut hi) = (from, max);
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            let rows = self
                .sql
                .exec_n("SELECT at FROM audit WHERE version = ?", mid as f64)
                .storage("reading an audit entry's instant")?
                .rows();
            let mid_at = row_at(&rows, 0)
                .and_then(|r| r.get(0).as_string())
                .ok_or_else(|| Error::Corrupt(format!("audit entry {mid} is missing")))?;
            if mid_at.as_str() <= at {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        Ok(lo)
    }

    /// Number of audit entries, for the health report.
    pub fn audit_count(&self) -> Result<u64> {
        self.count("SELECT count(*) FROM audit")
    }

    /// Sets the object's alarm for `at_ms` (ms since the epoch), replacing any earlier one.
    pub fn set_alarm(&self, at_ms: i64) -> Result<()> {
        self.storage
            .set_alarm(at_ms as f64)
            .map(|_| ())
            .storage("setting the alarm")
    }

    /// Asks the runtime to run the object's `alarm()` right away (the next backfill chunk).
    pub fn wake_soon(&self) {
        if let Err(e) = self.set_alarm(crate::http::now_ms()) {
            e.log("set alarm failed");
        }
    }

    /// Forgets one key whose retention has passed (`at` before `cutoff`), so that it is new
    /// again. Returns whether a row went.
    pub fn forget_key(&self, key: &str, cutoff: &str) -> Result<bool> {
        let c = self
            .sql
            .exec_ss(
                "DELETE FROM idempotency_keys WHERE request_id = ? AND at < ?",
                key,
                cutoff,
            )
            .storage("forgetting an expired key")?;
        Ok(c.rows_written() > 0.0)
    }

    /// Deletes up to `chunk` of the oldest keys recorded before `cutoff`. Keys are recorded in
    /// version order, so the oldest are the lowest versions; the scan never reads more than
    /// `chunk` rows. Returns how many went.
    pub fn expire_keys(&self, cutoff: &str, chunk: u64) -> Result<u64> {
        let c = self
            .sql
            .exec_sn(
                "DELETE FROM idempotency_keys WHERE version IN (SELECT version FROM idempotency_keys ORDER BY version LIMIT ?2) AND at < ?1",
                cutoff,
                chunk as f64,
            )
            .storage("expiring idempotency keys")?;
        Ok(c.rows_written() as u64)
    }

    /// When the oldest key kept was recorded (its change's `at`); `None` when no key is kept.
    /// One index step, however many keys there are.
    pub fn oldest_key_at(&self) -> Result<Option<String>> {
        let rows = self
            .sql
            .exec("SELECT at FROM idempotency_keys ORDER BY version LIMIT 1")
            .storage("reading the oldest key")?
            .rows();
        Ok(row_at(&rows, 0).and_then(|r| r.get(0).as_string()))
    }

    /// A one-integer query (a count, a maximum, a minimum).
    pub(super) fn count(&self, query: &str) -> Result<u64> {
        let rows = self.sql.exec(query).storage("counting rows")?.rows();
        let row = row_at(&rows, 0).ok_or_else(|| corrupt("a count query returned nothing"))?;
        Ok(int(&row.get(0))? as u64)
    }

    /// Size of the database file in bytes.
    pub fn size_bytes(&self) -> u64 {
        self.sql.database_size() as u64
    }
}

/// Inserts `entry` with `statement`: the audit entry and the key's record have the same
/// columns.
fn insert_entry(
    sql: &Sql,
    statement: &str,
    entry: &AuditEntry,
) -> std::result::Result<(), wasm_bindgen::JsValue> {
    sql.exec_nsnnnss(
        statement,
        entry.version as f64,
        entry.operation.as_str(),
        entry.amount as f64,
        entry.previous_value as f64,
        entry.value as f64,
        &entry.request_id,
        &entry.at,
    )
    .map(drop)
}

/// The one statement that writes Merkle hashes: the row of entry `version`, holding the
/// hashes of the subtrees it completed (32 bytes each, lowest level first) as one BLOB.
fn write_merkle_row(sql: &Sql, version: u64, hashes: &[Hash]) -> Result<()> {
    let bytes: Vec<u8> = hashes.concat();
    let blob = js_sys::Uint8Array::from(bytes.as_slice());
    sql.exec_nb(INSERT_MERKLE, version as f64, &blob.buffer())
        .storage("inserting a Merkle row")?;
    Ok(())
}

/// Audit rows (`version, operation, amount, previous_value, value, request_id, at`) as entries.
pub(super) fn entries(rows: &js_sys::Array) -> Result<Vec<AuditEntry>> {
    (0..rows.length())
        .map(|i| {
            let row = row_at(rows, i).ok_or_else(|| corrupt("an audit row is not an array"))?;
            Ok(AuditEntry {
                version: int(&row.get(0))? as u64,
                operation: row
                    .get(1)
                    .as_string()
                    .as_deref()
                    .and_then(Operation::parse)
                    .ok_or_else(|| corrupt("an audit row has an unknown operation"))?,
                amount: int(&row.get(2))?,
                previous_value: int(&row.get(3))?,
                value: int(&row.get(4))?,
                request_id: row.get(5).as_string().unwrap_or_default(),
                at: row.get(6).as_string().unwrap_or_default(),
            })
        })
        .collect()
}

/// A `first, last, bytes, sha256` row of `archive_segments`.
pub(super) fn segment_row(row: &js_sys::Array) -> Result<Segment> {
    Ok(Segment {
        first: int(&row.get(0))? as u64,
        last: int(&row.get(1))? as u64,
        bytes: int(&row.get(2))? as u64,
        sha256: row.get(3).as_string().unwrap_or_default(),
    })
}

/// An SQL integer column (a JavaScript number) as `i64`.
pub(super) fn int(v: &JsValue) -> Result<i64> {
    v.as_f64()
        .filter(|f| f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_991.0)
        .map(|f| f as i64)
        .ok_or_else(|| Error::Corrupt(format!("expected an integer column, got {v:?}")))
}

/// Stored rows that are not what this release writes.
pub(super) fn corrupt(why: &str) -> Error {
    Error::Corrupt(why.to_owned())
}

/// Row `i` of a `raw()` result (an array of column values).
pub(super) fn row_at(rows: &js_sys::Array, i: u32) -> Option<js_sys::Array> {
    wasm_bindgen::JsCast::dyn_into::<js_sys::Array>(rows.get(i)).ok()
}
