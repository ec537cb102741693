//! The counter's SQLite storage: schema migrations, the mutation transaction, reads.
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

use crate::core::audit::{AuditEntry, AuditQuery};
use crate::core::command::Operation;
use crate::core::idempotency::RETENTION_MS;
use crate::core::schema::{self, META_TABLE};
use crate::core::state::Snapshot;
use crate::ffi::{error_text, Sql, Storage};

const UPDATE_COUNTER: &str =
    "UPDATE counter SET value = ?, version = ?, updated_at = ? WHERE id = 1";
const INSERT_AUDIT: &str = "INSERT INTO audit (version, operation, amount, previous_value, value, request_id, at) VALUES (?, ?, ?, ?, ?, ?, ?)";
const INSERT_KEY: &str = "INSERT INTO idempotency (key, fingerprint, version, response, created_at) VALUES (?, ?, ?, ?, ?)";
const SELECT_KEY: &str = "SELECT fingerprint, response, version FROM idempotency WHERE key = ?";
const SELECT_AUDIT: &str = "SELECT version, operation, amount, previous_value, value, request_id, at FROM audit WHERE version > ? ORDER BY version LIMIT ?";

/// Why a commit did not happen. In both cases the transaction was rolled back entirely.
#[derive(Debug)]
pub enum CommitError {
    /// A statement failed; the text is for the log only.
    Storage(String),
}

/// A stored idempotency record.
pub struct StoredKey {
    /// What the original request was (`operation:operand`).
    pub fingerprint: String,
    /// The exact response body it got.
    pub response: String,
    /// The version the change produced.
    pub version: u64,
}

/// The storage of the one counter object.
pub struct Store {
    storage: Storage,
    sql: Sql,
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

    /// Writes one applied change: the counter row, its audit entry and its idempotency record,
    /// in one transaction. The idempotency insert comes last: when the key is already stored
    /// (a retry), its primary key makes that statement fail and the counter and audit writes
    /// before it roll back with it. The common case, a new key, costs no lookup at all.
    pub fn commit(
        &self,
        entry: &AuditEntry,
        fingerprint: &str,
        response: &str,
        now_ms: i64,
    ) -> Result<(), CommitError> {
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
                sql.exec_ssnsn(
                    INSERT_KEY,
                    &entry.request_id,
                    fingerprint,
                    version,
                    response,
                    now_ms as f64,
                )?;
                Ok(JsValue::UNDEFINED)
            })
            .map(|_| ())
            .map_err(|e| CommitError::Storage(error_text(&e)))
    }

    /// The stored record of `key`, if it was used within the retention period.
    pub fn lookup(&self, key: &str) -> Result<Option<StoredKey>, String> {
        let rows = self
            .sql
            .exec_s(SELECT_KEY, key)
            .map_err(|e| error_text(&e))?
            .rows();
        let Some(row) = row_at(&rows, 0) else {
            return Ok(None);
        };
        match (row.get(0).as_string(), row.get(1).as_string()) {
            (Some(fingerprint), Some(response)) => Ok(Some(StoredKey {
                fingerprint,
                response,
                version: int(&row.get(2))? as u64,
            })),
            _ => Err("an idempotency record has the wrong column types".into()),
        }
    }

    /// Audit entries after `q.after`, ascending, at most `limit` of them.
    pub fn audit(&self, after: u64, limit: u64) -> Result<Vec<AuditEntry>, String> {
        let rows = self
            .sql
            .exec_nn(SELECT_AUDIT, after as f64, limit as f64)
            .map_err(|e| error_text(&e))?
            .rows();
        (0..rows.length())
            .map(|i| {
                let row =
                    row_at(&rows, i).ok_or_else(|| "an audit row is not an array".to_string())?;
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

    /// A page of the audit trail for `GET /api/audit`: one row more than asked, so the page
    /// knows whether another follows.
    pub fn audit_page(&self, q: &AuditQuery) -> Result<String, String> {
        let rows = self.audit(q.after, q.limit + 1)?;
        Ok(crate::core::audit::page_json(&rows, q.limit))
    }

    /// Counts for the health report: (audit rows, idempotency keys).
    pub fn counts(&self) -> Result<(u64, u64), String> {
        let rows = self
            .sql
            .exec("SELECT (SELECT count(*) FROM audit), (SELECT count(*) FROM idempotency)")
            .map_err(|e| error_text(&e))?
            .rows();
        let row = row_at(&rows, 0).ok_or_else(|| "count query returned nothing".to_string())?;
        Ok((int(&row.get(0))? as u64, int(&row.get(1))? as u64))
    }

    /// Size of the database file in bytes.
    pub fn size_bytes(&self) -> u64 {
        self.sql.database_size() as u64
    }

    /// Removes idempotency records older than the retention period, at most `batch` of them;
    /// returns how many were removed.
    pub fn expire_keys(&self, now_ms: i64, batch: u32) -> Result<u64, String> {
        let cutoff = (now_ms - RETENTION_MS) as f64;
        let cursor = self
            .sql
            .exec_nn(
                "DELETE FROM idempotency WHERE key IN (SELECT key FROM idempotency WHERE created_at < ? ORDER BY created_at LIMIT ?)",
                cutoff,
                f64::from(batch),
            )
            .map_err(|e| error_text(&e))?;
        cursor.rows();
        Ok(cursor.rows_written() as u64)
    }

    /// The raw storage, for alarms.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }
}

/// An SQL integer column (a JavaScript number) as `i64`.
fn int(v: &JsValue) -> Result<i64, String> {
    v.as_f64()
        .filter(|f| f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_991.0)
        .map(|f| f as i64)
        .ok_or_else(|| format!("expected an integer column, got {v:?}"))
}

/// Row `i` of a `raw()` result (an array of column values).
fn row_at(rows: &js_sys::Array, i: u32) -> Option<js_sys::Array> {
    wasm_bindgen::JsCast::dyn_into::<js_sys::Array>(rows.get(i)).ok()
}
