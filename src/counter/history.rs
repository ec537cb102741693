//! Reads of the past: audit pages, proofs that need archived segments, and the value after a
//! past version or instant. What lies in the archive is answered with a pointer the Worker
//! completes from R2 (`edge/archive.rs`).

use web_sys::Response;

use crate::core::archive::{pointer_json, ProofQuery, POINTER_HEADER, SEGMENT_ENTRIES};
use crate::core::audit::AuditQuery;
use crate::core::problem::Problem;
use crate::core::state::Snapshot;
use crate::error::{Error, Result};
use crate::http;

use super::Counter;

/// A past value: its body, or (when it lies in the archive) the pointer the Worker completes
/// from R2 (`edge/archive.rs`).
pub(super) enum AsOf {
    Body(String),
    Pointer(crate::core::archive::AsOfPointer),
}

impl Counter {
    /// A proof that needs hashes of archived segments: the pointer the Worker completes from
    /// R2 (`edge/archive.rs`). `None` when the object can answer alone (or the query is
    /// invalid, or the tree is not live: the ledger answers those).
    pub(super) fn archived_proof(&self, q: Option<ProofQuery>) -> Option<Result<Response>> {
        if self.ledger.building() {
            return None;
        }
        match self.archive.proof_pointer(q?) {
            Ok(None) => None,
            Ok(Some(p)) => Some(http::json(&p.to_json(), &[(POINTER_HEADER, "proof")])),
            Err(e) => Some(http::problem_response(&e.logged("archived proof failed"))),
        }
    }

    /// An audit page. When it starts in the archive, the answer is instead a pointer to the
    /// segment (marked by [`POINTER_HEADER`]), which the Worker reads from R2 itself.
    pub(super) fn audit(&self, q: &AuditQuery) -> Result<Response> {
        match self.archive.segment_of(q.after + 1) {
            Ok(Some(seg)) => {
                let version = self.archive.version();
                return http::json(&pointer_json(&seg, version), &[(POINTER_HEADER, "segment")]);
            }
            Ok(None) => {}
            Err(e) => return http::problem_response(&e.logged("audit read failed")),
        }
        match self.store.audit_page(q) {
            Ok(body) => http::json(&body, &[]),
            Err(e) => http::problem_response(&e.logged("audit read failed")),
        }
    }

    /// `GET /api/value?as_of_version=|as_of=`: the value after a past version, from its audit
    /// entry (found by binary search over versions for an instant: `at` never decreases). An
    /// entry in the archive is the Worker's to read: the object answers with the segment that
    /// holds it ([`crate::core::archive::AsOfPointer`]), found by version, or for an instant
    /// before the oldest hot entry by the `first_at` index of the segments.
    pub(super) fn value_as_of(
        &self,
        current: &Snapshot,
        q: &crate::core::ledger::AsOfQuery,
    ) -> Result<AsOf, Problem> {
        use crate::core::archive::{AsOfPointer, AsOfTarget};
        use crate::core::ledger::{self, AsOf as At, InclusionQuery};
        let internal = |e: Error| e.logged("as-of read failed");
        let archived = self.archive.archived_through();
        let (version, target) = match &q.at {
            At::Version(v) if *v > current.version => {
                return Err(ledger::beyond("as_of_version", *v, current.version))
            }
            At::Version(v) => (*v, AsOfTarget::Version(*v)),
            At::Time(t) => {
                let v = self
                    .store
                    .version_at(t, archived, current.version)
                    .map_err(internal)?;
                if v == archived && archived > 0 {
                    // Every hot entry (if any) is after the instant: the answer is in the
                    // archive, in the last segment that starts at or before it, or before the
                    // first change.
                    match self.archive.segment_at(t) {
                        Ok(Some(seg)) => (seg.first, AsOfTarget::Time(t.clone())),
                        Ok(None) => (0, AsOfTarget::Version(0)),
                        Err(None) => {
                            return Err(Problem::Unavailable {
                                retry_after_secs: 5,
                            })
                        }
                        Err(Some(e)) => return Err(internal(e)),
                    }
                } else {
                    (v, AsOfTarget::Version(v))
                }
            }
        };
        if version == 0 {
            return Ok(AsOf::Body(ledger::as_of_json(None, None)));
        }
        if version <= archived {
            // The segment root and every hash above it, for the segment's first version: the
            // same for each entry of the segment (`AsOfPointer`).
            let pointer = self
                .archive
                .proof_pointer(ProofQuery::Inclusion {
                    version: (version - 1) / SEGMENT_ENTRIES * SEGMENT_ENTRIES + 1,
                    tree_size: current.version,
                })
                .map_err(internal)?
                .filter(|p| p.segments.len() == 1)
                .ok_or_else(|| {
                    internal(Error::Corrupt(format!(
                        "no archived segment holds {version}"
                    )))
                })?;
            return Ok(AsOf::Pointer(AsOfPointer {
                target,
                proof: q.proof,
                pointer,
            }));
        }
        let entry = self
            .store
            .audit(version - 1, 1)
            .map_err(internal)?
            .pop()
            .filter(|e| e.version == version)
            .ok_or_else(|| internal(Error::Corrupt(format!("audit entry {version} is missing"))))?;
        let proof = if q.proof {
            Some(self.ledger.inclusion(
                &self.store,
                &InclusionQuery {
                    version,
                    tree_size: None,
                },
            )?)
        } else {
            None
        };
        Ok(AsOf::Body(ledger::as_of_json(
            Some(&entry),
            proof.as_deref(),
        )))
    }
}
