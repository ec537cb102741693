//! The audit trail as a verifiable ledger: which bytes an audit entry is in the Merkle tree,
//! the proof queries, and the replay checks anyone can run over the whole history.
//!
//! - Leaf bytes: the entry's canonical JSON (RFC 8785 — members sorted by name, no white
//!   space). With integers within ±(2^53 − 1) and RFC 8785's string escapes (which
//!   `JsonWriter` and serde both write), the compact object with its members written in
//!   sorted order is exactly that, without an intermediate value; a test holds it to serde's
//!   output of the same struct and to a generic sort-and-print.
//! - Leaf `i` (0-based) is the entry of version `i + 1`, so the tree of size `N` is the
//!   history up to version `N`.
//! - [`Auditor`] replays a history line by line in O(log N) memory and says precisely what is
//!   wrong with it: a line that is not canonical, a gap, a broken `previous_value` chain, a
//!   value that does not follow its operation, a root that differs from a checkpoint's.
//!
//! The rooms: [`leaf`] (an entry's leaf bytes), [`tamper`] (what can be wrong with a history),
//! [`verify`] (the replay checks), [`proofs`] (the proof queries and bodies), [`export`] (the
//! export's query and pages), [`as_of`] (a past value), on top of [`merkle`] (RFC 6962 hashing,
//! roots and proofs) and [`checkpoint`] (C2SP checkpoints and signed notes). Their names are
//! re-exported here, so callers write `ledger::leaf_bytes` or `ledger::ExportQuery`.

pub mod as_of;
pub mod checkpoint;
pub mod export;
pub mod leaf;
pub mod merkle;
pub mod proofs;
pub mod tamper;
pub mod verify;

pub use as_of::{as_of_json, AsOf, AsOfQuery};
pub use export::{csv_row, export_page, ExportQuery, CSV_HEADER, EXPORT_PAGE};
pub use leaf::{entry_from_json, entry_hash, leaf_bytes, parse_line};
pub use proofs::{
    beyond, consistency_json, inclusion_json, parse_hashes, tree_head, ConsistencyQuery,
    InclusionQuery,
};
pub use tamper::Tamper;
pub use verify::{check_saved, follows, Auditor};

/// The largest version or tree size a query may name.
const MAX: u64 = crate::core::vocab::MAX_VALUE as u64;

/// Audit entries the tests of these rooms share.
#[cfg(test)]
mod fixtures {
    use crate::core::audit::AuditEntry;
    use crate::core::vocab::Operation;

    pub(super) fn entry(
        version: u64,
        op: Operation,
        amount: i64,
        prev: i64,
        value: i64,
    ) -> AuditEntry {
        AuditEntry {
            version,
            operation: op,
            amount,
            previous_value: prev,
            value,
            request_id: format!("key-{version}"),
            at: "2026-11-29T20:00:00.000Z".into(),
        }
    }

    pub(super) fn history() -> Vec<AuditEntry> {
        vec![
            entry(1, Operation::Increment, 5, 0, 5),
            entry(2, Operation::Decrement, 7, 5, -2),
            entry(3, Operation::Set, 100, -2, 100),
            entry(4, Operation::Reset, 0, 100, 0),
            entry(5, Operation::Increment, 1, 0, 1),
        ]
    }
}
