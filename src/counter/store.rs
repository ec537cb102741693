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
use crate::ffi::{error_text, Sql, Storage};

const UPDATE_COUNTER: &str =
    "UPDATE counter SET value = ?, version = ?, updated_at = ? WHERE id = 1";
const INSERT_AUDIT: &str = "INSERT INTO audit (version, operation, amount, previous_value, value, request_id, at) VALUES (?, ?, ?, ?, ?, ?, ?)";
const SELECT_AUDIT: &str = "SELECT version, operation, amount, previous_value, value, request_id, at FROM audit WHERE version > ? ORDER BY version LIMIT ?";
const INSERT_MERKLE: &str = "INSERT INTO merkle (version, hashes) VALUES (?, ?)";
const INSERT_KEY: &str = "INSERT INTO idempotency_keys (version, operation, amount, previous_value, value, request_id, at) VALUES (?, ?, ?, ?, ?, ?, ?)";
const SELECT_KEY: &str = "SELECT version, operation, amount, previous_value, value, request_id, at FROM idempotency_keys WHERE request_id = ?";

/// Why a commit did not happen. In both cases the transaction was rolled back entirely.
#[derive(Debug)]
pub enum CommitError {
    /// A statement failed; the text is for the log only.
    Storage(String),
}

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
    pub fn migrate(&self) -> Result<u32, String> {
        self.sql.exec(META_TABLE).map_err(|e| error_text(&e))?;
        let current = self.schema_version()?;
        let pending = schema::pending(current).ok_or_else(|| {
            format!(
                "the database is at schema {current}, newer than this release ({}); refusing to touch it",
                schema::latest()
            )
        })?;
        for m in pending {
            let sql = &self.sql;
            self.storage
                .transaction_sync(&mut || {
                    for stmt in m.statements {
                        sql.exec(stmt)?;
                    }
                    sql.exec_n(
                        "INSERT INTO schema_meta (id, version) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET version = excluded.version",
                        f64::from(m.version),
                    )?;
                    Ok(JsValue::UNDEFINED)
                })
                .map_err(|e| format!("migration {} ({}) failed: {}", m.version, m.name, error_text(&e)))?;
            crate::http::log_event("info", "schema migrated", |w| {
                w.uint("version", u64::from(m.version))
                    .string("name", m.name);
            });
        }
        self.schema_version()
    }

    /// The recorded schema version (0 for a new database).
    pub fn schema_version(&self) -> Result<u32, String> {
        let rows = self
            .sql
            .exec("SELECT version FROM schema_meta WHERE id = 1")
            .map_err(|e| error_text(&e))?
            .rows();
        Ok(row_at(&rows, 0)
            .and_then(|r| r.get(0).as_f64())
            .map_or(0, |v| v as u32))
    }

    /// Reads the counter row.
    pub fn load(&self) -> Result<Snapshot, String> {
        let rows = self
            .sql
            .exec("SELECT value, version, updated_at FROM counter WHERE id = 1")
            .map_err(|e| error_text(&e))?
            .rows();
        let row = row_at(&rows, 0).ok_or_else(|| "the counter row is missing".to_string())?;
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
    pub fn commit(&self, entry: &AuditEntry, merkle: Option<&[Hash]>) -> Result<(), CommitError> {
        let sql = &self.sql;
        let version = entry.version as f64;
        self.storage
            .transaction_sync(&mut || {
                sql.exec_nns(UPDATE_COUNTER, entry.value as f64, version, &entry.at)?;
                sql.exec_nsnnnss(
                    INSERT_AUDIT,
                    version,
                    entry.operation.as_str(),
                    entry.amount as f64,
                    entry.previous_value as f64,
                    entry.value as f64,
                    &entry.request_id,
                    &entry.at,
                )?;
                // The key's record, last: a key seen within its retention fails this insert
                // (UNIQUE) and rolls back everything above.
                sql.exec_nsnnnss(
                    INSERT_KEY,
                    version,
                    entry.operation.as_str(),
                    entry.amount as f64,
                    entry.previous_value as f64,
                    entry.value as f64,
                    &entry.request_id,
                    &entry.at,
                )?;
                if let Some(hashes) = merkle {
                    write_merkle_row(sql, entry.version, hashes)?;
                }
                Ok(JsValue::UNDEFINED)
            })
            .map(|_| ())
            .map_err(|e| CommitError::Storage(error_text(&e)))
    }

    /// The Merkle rows of many entries in one transaction (the chunked backfill).
    pub fn write_merkle_rows(&self, rows: &[(u64, Vec<Hash>)]) -> Result<(), String> {
        let sql = &self.sql;
        self.storage
            .transaction_sync(&mut || {
                for (version, hashes) in rows {
                    write_merkle_row(sql, *version, hashes)?;
                }
                Ok(JsValue::UNDEFINED)
            })
            .map(|_| ())
            .map_err(|e| error_text(&e))
    }

    /// Runs `f` in one transaction: a batch's outer transaction, inside which every
    /// [`Store::commit`] is a nested one (a savepoint) that commits or rolls back on its own.
    /// `Err` when the transaction as a whole failed and was rolled back.
    pub fn transaction(&self, f: &mut dyn FnMut()) -> Result<(), String> {
        self.storage
            .transaction_sync(&mut || {
                f();
                Ok(JsValue::UNDEFINED)
            })
            .map(|_| ())
            .map_err(|e| error_text(&e))
    }

    /// The newest version that has its Merkle row (0 when none has).
    pub fn merkle_size(&self) -> Result<u64, String> {
        let rows = self
            .sql
            .exec("SELECT coalesce(max(version), 0) FROM merkle")
            .map_err(|e| error_text(&e))?
            .rows();
        let row = row_at(&rows, 0).ok_or_else(|| "max query returned nothing".to_string())?;
        Ok(int(&row.get(0))? as u64)
    }

    /// The hashes of complete subtrees, read in one statement. Node `(level, index)` lives in
    /// the row of the entry that completed it, at position `level`. Missing ones are absent.
    pub fn merkle_nodes(&self, nodes: &[Node]) -> Result<Vec<(Node, Hash)>, String> {
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
        let rows = self.sql.exec(&query).map_err(|e| error_text(&e))?.rows();
        let mut by_version: Vec<(u64, Vec<u8>)> = Vec::with_capacity(nodes.len());
        for i in 0..rows.length() {
            let row = row_at(&rows, i).ok_or_else(|| "a merkle row is not an array".to_string())?;
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
    pub fn lookup(&self, key: &str) -> Result<Option<AuditEntry>, String> {
        let rows = self
            .sql
            .exec_s(SELECT_KEY, key)
            .map_err(|e| error_text(&e))?
            .rows();
        entries(&rows).map(|mut found| found.pop())
    }

    /// Audit entries after `after`, ascending, at most `limit` of them.
    pub fn audit(&self, after: u64, limit: u64) -> Result<Vec<AuditEntry>, String> {
        let rows = self
            .sql
            .exec_nn(SELECT_AUDIT, after as f64, limit as f64)
            .map_err(|e| error_text(&e))?
            .rows();
        entries(&rows)
    }

    /// A page of the audit trail for `GET /api/audit`: one row more than asked, so the page
    /// knows whether another follows.
    pub fn audit_page(&self, q: &AuditQuery) -> Result<String, String> {
        let rows = self.audit(q.after, q.limit + 1)?;
        Ok(crate::core::audit::page_json(&rows, q.limit))
    }

    /// The last version whose entry was applied at or before `at` (RFC 3339 in the audit
    /// trail's own form, which orders as text), among versions `from+1..=max`; `from` if none
    /// (the caller passes the last archived version: only hot entries are searched). A binary
    /// search over versions: `at` never decreases along them, and it costs O(log N) reads.
    pub fn version_at(&self, at: &str, from: u64, max: u64) -> Result<u64, String> {
        let (mut lo, mut hi) = (from, max);
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            let rows = self
                .sql
                .exec_n("SELECT at FROM audit WHERE version = ?", mid as f64)
                .map_err(|e| error_text(&e))?
                .rows();
            let mid_at = row_at(&rows, 0)
                .and_then(|r| r.get(0).as_string())
                .ok_or_else(|| format!("audit entry {mid} is missing"))?;
            if mid_at.as_str() <= at {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        Ok(lo)
    }

    /// Number of audit entries, for the health report.
    pub fn audit_count(&self) -> Result<u64, String> {
        let rows = self
            .sql
            .exec("SELECT count(*) FROM audit")
            .map_err(|e| error_text(&e))?
            .rows();
        let row = row_at(&rows, 0).ok_or_else(|| "count query returned nothing".to_string())?;
        Ok(int(&row.get(0))? as u64)
    }

    /// Sets the object's alarm for `at_ms` (ms since the epoch), replacing any earlier one.
    pub fn set_alarm(&self, at_ms: i64) -> Result<(), String> {
        self.storage
            .set_alarm(at_ms as f64)
            .map(|_| ())
            .map_err(|e| error_text(&e))
    }

    /// Asks the runtime to run the object's `alarm()` right away (the next backfill chunk).
    pub fn wake_soon(&self) {
        if let Err(e) = self.storage.set_alarm(crate::http::now_ms() as f64) {
            crate::http::log_event("error", "set alarm failed", |w| {
                w.string("error", &error_text(&e));
            });
        }
    }

    /// Forgets one key whose retention has passed (`at` before `cutoff`), so that it is new
    /// again. Returns whether a row went.
    pub fn forget_key(&self, key: &str, cutoff: &str) -> Result<bool, String> {
        let c = self
            .sql
            .exec_ss(
                "DELETE FROM idempotency_keys WHERE request_id = ? AND at < ?",
                key,
                cutoff,
            )
            .map_err(|e| error_text(&e))?;
        Ok(c.rows_written() > 0.0)
    }

    /// Deletes up to `chunk` of the oldest keys recorded before `cutoff`. Keys are recorded in
    /// version order, so the oldest are the lowest versions; the scan never reads more than
    /// `chunk` rows. Returns how many went.
    pub fn expire_keys(&self, cutoff: &str, chunk: u64) -> Result<u64, String> {
        let c = self
            .sql
            .exec_sn(
                "DELETE FROM idempotency_keys WHERE version IN (SELECT version FROM idempotency_keys ORDER BY version LIMIT ?2) AND at < ?1",
                cutoff,
                chunk as f64,
            )
            .map_err(|e| error_text(&e))?;
        Ok(c.rows_written() as u64)
    }

    /// When the oldest key kept was recorded (its change's `at`); `None` when no key is kept.
    /// One index step, however many keys there are.
    pub fn oldest_key_at(&self) -> Result<Option<String>, String> {
        let rows = self
            .sql
            .exec("SELECT at FROM idempotency_keys ORDER BY version LIMIT 1")
            .map_err(|e| error_text(&e))?
            .rows();
        Ok(row_at(&rows, 0).and_then(|r| r.get(0).as_string()))
    }

    /// A one-integer query.
    pub(super) fn count(&self, query: &str) -> Result<u64, String> {
        let rows = self.sql.exec(query).map_err(|e| error_text(&e))?.rows();
        let row = row_at(&rows, 0).ok_or_else(|| "count query returned nothing".to_string())?;
        Ok(int(&row.get(0))? as u64)
    }

    /// Size of the database file in bytes.
    pub fn size_bytes(&self) -> u64 {
        self.sql.database_size() as u64
    }
}

/// The one statement that writes Merkle hashes: the row of entry `version`, holding the
/// hashes of the subtrees it completed (32 bytes each, lowest level first) as one BLOB.
fn write_merkle_row(sql: &Sql, version: u64, hashes: &[Hash]) -> Result<(), JsValue> {
    let bytes: Vec<u8> = hashes.concat();
    let blob = js_sys::Uint8Array::from(bytes.as_slice());
    sql.exec_nb(INSERT_MERKLE, version as f64, &blob.buffer())?;
    Ok(())
}

/// Audit rows (`version, operation, amount, previous_value, value, request_id, at`) as entries.
pub(super) fn entries(rows: &js_sys::Array) -> Result<Vec<AuditEntry>, String> {
    (0..rows.length())
        .map(|i| {
            let row = row_at(rows, i).ok_or_else(|| "an audit row is not an array".to_string())?;
            Ok(AuditEntry {
                version: int(&row.get(0))? as u64,
                operation: row
                    .get(1)
                    .as_string()
                    .as_deref()
                    .and_then(Operation::parse)
                    .ok_or_else(|| "an audit row has an unknown operation".to_string())?,
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
pub(super) fn segment_row(row: &js_sys::Array) -> Result<Segment, String> {
    Ok(Segment {
        first: int(&row.get(0))? as u64,
        last: int(&row.get(1))? as u64,
        bytes: int(&row.get(2))? as u64,
        sha256: row.get(3).as_string().unwrap_or_default(),
    })
}

/// An SQL integer column (a JavaScript number) as `i64`.
pub(super) fn int(v: &JsValue) -> Result<i64, String> {
    v.as_f64()
        .filter(|f| f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_991.0)
        .map(|f| f as i64)
        .ok_or_else(|| format!("expected an integer column, got {v:?}"))
}

/// Row `i` of a `raw()` result (an array of column values).
pub(super) fn row_at(rows: &js_sys::Array, i: u32) -> Option<js_sys::Array> {
    wasm_bindgen::JsCast::dyn_into::<js_sys::Array>(rows.get(i)).ok()
}
