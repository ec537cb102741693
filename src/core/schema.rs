//! The counter's SQL schema, as an ordered list of migrations.
//!
//! The object records the schema version it has reached in its own `schema_meta` table and, on
//! every start, applies the migrations after it, each in its own transaction together with the
//! new version number. A release that needs another table or column appends a migration here;
//! existing data is never recreated. Migrations must only ever be appended, never edited.

/// One step of the schema.
#[derive(Debug)]
pub struct Migration {
    /// The schema version this step produces (1, 2, 3, … without gaps).
    pub version: u32,
    /// What it does, for the log.
    pub name: &'static str,
    /// The statements, run in order.
    pub statements: &'static [&'static str],
}

/// Where the schema version itself lives. Created before anything else, outside the list.
pub const META_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS schema_meta (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)";

/// Every migration, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "counter, audit trail, idempotency keys",
        statements: &[
            // The single counter row. `version` counts applied mutations.
            "CREATE TABLE counter (
               id INTEGER PRIMARY KEY CHECK (id = 1),
               value INTEGER NOT NULL CHECK (value BETWEEN -9007199254740991 AND 9007199254740991),
               version INTEGER NOT NULL CHECK (version >= 0),
               updated_at TEXT
             )",
            "INSERT INTO counter (id, value, version, updated_at) VALUES (1, 0, 0, NULL)",
            // One row per applied mutation; version is the counter's version after it.
            "CREATE TABLE audit (
               version INTEGER PRIMARY KEY,
               operation TEXT NOT NULL,
               amount INTEGER NOT NULL,
               previous_value INTEGER NOT NULL,
               value INTEGER NOT NULL,
               request_id TEXT NOT NULL,
               at TEXT NOT NULL
             )",
            // key -> what the request was and the exact response it got.
            "CREATE TABLE idempotency (
               key TEXT PRIMARY KEY,
               fingerprint TEXT NOT NULL,
               version INTEGER NOT NULL,
               response TEXT NOT NULL,
               created_at INTEGER NOT NULL
             ) WITHOUT ROWID",
        ],
    },
    Migration {
        version: 2,
        name: "index idempotency keys by age for expiry",
        statements: &["CREATE INDEX idempotency_created_at ON idempotency (created_at)"],
    },
    Migration {
        version: 3,
        name: "the audit trail is the idempotency record",
        // Every audit entry already carries its request's key, and its response is a pure
        // rendering of the entry, so a unique index on the key makes the separate table (and
        // its copy of every response) redundant: one write less per change, and keys are
        // remembered as long as the audit trail.
        statements: &[
            "CREATE UNIQUE INDEX audit_request_id ON audit (request_id)",
            "DROP TABLE idempotency",
        ],
    },
    Migration {
        version: 4,
        name: "the audit trail as a Merkle tree",
        // Row `version` holds the hashes of the complete subtrees that the entry of that
        // version completes (its leaf hash first, then one per level above it that became
        // complete): one row per entry, 64 bytes on average. Every proof and root is made of
        // these, so they are kept when old audit rows are archived and trimmed. Existing
        // entries are hashed afterwards in chunks (`counter/ledger.rs`), not here, so a large
        // trail does not hold the object in one long migration.
        statements: &[
            "CREATE TABLE IF NOT EXISTS merkle (version INTEGER PRIMARY KEY, hashes BLOB NOT NULL)",
        ],
    },
    Migration {
        version: 5,
        name: "idempotency keys kept for their retention; the audit archive's segments",
        // Old audit entries move to R2 (`core/archive.rs`), so the audit trail can no longer
        // be the record of every key. `idempotency_keys` holds, per key, what its response
        // says (a row per change, deleted by the alarm once older than
        // IDEMPOTENCY_RETENTION_SECONDS); every existing entry's key moves there, and the
        // unique index on the audit trail goes. `archive_segments` records each segment
        // before it is written (`archived = 0`) and marks it in the transaction that deletes
        // its entries (`archived = 1`); `archive_runs` is the last archival run's outcome.
        // Written to be run again over its own result (a database whose recorded version was
        // set back by hand) without harm.
        statements: &[
            "CREATE TABLE IF NOT EXISTS idempotency_keys (
               version INTEGER PRIMARY KEY,
               request_id TEXT NOT NULL UNIQUE,
               operation TEXT NOT NULL,
               amount INTEGER NOT NULL,
               previous_value INTEGER NOT NULL,
               value INTEGER NOT NULL,
               at TEXT NOT NULL
             )",
            "INSERT OR IGNORE INTO idempotency_keys (version, request_id, operation, amount, previous_value, value, at)
               SELECT version, request_id, operation, amount, previous_value, value, at FROM audit",
            "DROP INDEX IF EXISTS audit_request_id",
            "CREATE TABLE IF NOT EXISTS archive_segments (
               first INTEGER PRIMARY KEY,
               last INTEGER NOT NULL,
               bytes INTEGER NOT NULL,
               sha256 TEXT NOT NULL,
               archived INTEGER NOT NULL DEFAULT 0,
               at TEXT NOT NULL
             )",
            "CREATE TABLE IF NOT EXISTS archive_runs (
               id INTEGER PRIMARY KEY CHECK (id = 1),
               at TEXT NOT NULL,
               outcome TEXT NOT NULL,
               error TEXT,
               failures INTEGER NOT NULL
             )",
        ],
    },
    Migration {
        version: 6,
        name: "the instant of each archived segment's first entry",
        // Past values as of an instant in the archive (`GET /api/value?as_of=`): the object
        // finds the segment by the `at` of its first entry (the trail's `at` never decreases),
        // with the index, without reading R2. Written in the transaction that marks a segment
        // archived; a segment archived before this migration gets it from the alarm, which
        // reads it back from R2 (`counter/archive.rs`). A table of its own rather than a
        // column, so that the migration can run again over its own result, like 5.
        statements: &[
            "CREATE TABLE IF NOT EXISTS archive_segment_times (
               first INTEGER PRIMARY KEY,
               first_at TEXT NOT NULL
             )",
            "CREATE INDEX IF NOT EXISTS archive_segment_times_first_at ON archive_segment_times (first_at)",
        ],
    },
];

/// The newest schema version.
pub fn latest() -> u32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// The migrations a database at `current` still needs, in order. `None` when the database is
/// newer than this code (a rollback to an older release): the object must not touch it.
pub fn pending(current: u32) -> Option<&'static [Migration]> {
    if current > latest() {
        return None;
    }
    let start = MIGRATIONS
        .iter()
        .position(|m| m.version > current)
        .unwrap_or(MIGRATIONS.len());
    Some(&MIGRATIONS[start..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_contiguous_from_one() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version as usize, i + 1);
            assert!(!m.statements.is_empty());
        }
    }

    #[test]
    fn pending_steps() {
        assert_eq!(pending(0).unwrap().len(), MIGRATIONS.len());
        assert_eq!(pending(1).unwrap()[0].version, 2);
        assert_eq!(pending(2).unwrap().len(), MIGRATIONS.len() - 2);
        assert!(pending(latest()).unwrap().is_empty());
        assert!(pending(latest() + 1).is_none());
    }
}
