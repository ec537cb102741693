//! The audit archive: which entries leave the object's database, the form they take in R2,
//! and how anything read back from R2 is checked before it is believed.
//!
//! - The object keeps the newest `AUDIT_HOT_ENTRIES` entries (the *hot window*; `0` keeps
//!   everything and archives nothing); with `AUDIT_HOT_HOURS` above 0, entries older than that
//!   leave too, even inside the window. Older entries are written to the `AUDIT_ARCHIVE` bucket
//!   as immutable *segments* of exactly [`SEGMENT_ENTRIES`] (1,024) consecutive entries, aligned:
//!   segment `j` holds versions `1024·j + 1 ..= 1024·(j + 1)`, which are the leaves of one
//!   complete subtree of the Merkle tree (level [`SEGMENT_LEVEL`]). So the object holds at most
//!   the window plus one segment's worth of entries that are due, and a segment's entries hash
//!   to a tree node the object keeps.
//! - A segment is NDJSON: one line per entry, exactly its canonical leaf bytes
//!   ([`leaf_bytes`](crate::core::ledger::leaf_bytes), the bytes the Merkle tree hashes and
//!   the export's lines), each followed by `\n`. Its name, `audit/<first>-<last>.ndjson`
//!   with both versions zero-padded to 20 digits, sorts by version.
//! - The object records each segment (first, last, byte size, SHA-256) before it writes it and
//!   deletes the entries from SQLite only after reading the segment back and checking it.
//!   Whatever reads a segment later (the Worker, for audit pages) checks it against that record
//!   with [`read_segment`]: R2's content is never trusted, only its agreement with the record.
//!
//! Nothing here touches R2 or SQLite; the platform rooms are `counter/archive.rs` (the object's
//! alarm) and `edge/archive.rs` (reads).

//! The rooms: [`policy`] (settings, the next segment, the alarm's delays), [`segment`] (a
//! segment's form and checking it), [`pointer`] (answers that lie in the archive). Their names
//! are re-exported here.

/// The Merkle level of a segment: a segment is one complete subtree of 2^10 leaves.
pub const SEGMENT_LEVEL: u32 = 10;
/// Entries in one segment (and so in one archival step of the alarm).
pub const SEGMENT_ENTRIES: u64 = 1 << SEGMENT_LEVEL;

pub mod pointer;
pub mod policy;
pub mod segment;

pub use pointer::{
    archived_blocks, block_root, pointer_json, AsOfPointer, AsOfTarget, ProofPointer, ProofQuery,
    SegmentPointer, POINTER_HEADER,
};
pub use policy::{
    backoff_ms, next_segment, Settings, BACKOFF_MS, DEFAULT_RETENTION_SECS, DELAY_MS, EXPIRE_CHUNK,
};
pub use segment::{
    page_from_segment, read_segment, segment_bytes, segment_name, sha256_hex, Segment,
};

/// Entries the tests of these rooms share.
#[cfg(test)]
mod fixtures {
    use super::segment::{segment_bytes, Segment};
    use crate::core::audit::AuditEntry;
    use crate::core::vocab::Operation;

    pub(super) fn entry(version: u64) -> AuditEntry {
        AuditEntry {
            version,
            operation: Operation::Increment,
            amount: 1,
            previous_value: version as i64 - 1,
            value: version as i64,
            request_id: format!("k-{version}"),
            at: "2026-11-29T21:00:00.000Z".into(),
        }
    }

    pub(super) fn segment(first: u64, last: u64) -> (Segment, Vec<u8>) {
        let entries: Vec<_> = (first..=last).map(entry).collect();
        let bytes = segment_bytes(&entries);
        (Segment::of(first, last, &bytes), bytes)
    }
}
