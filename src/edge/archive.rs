//! Reading the audit archive from the Worker, sparing the counter object.
//!
//! An audit page that starts before the object's hot window gets, from the object, a pointer
//! instead of a page: the segment's record (name, range, size, SHA-256), marked by
//! [`archive::POINTER_HEADER`]. The Worker reads that segment from the `AUDIT_ARCHIVE` bucket
//! and believes it only if it matches the record exactly ([`archive::read_segment`]); then it
//! renders the page. A proof that needs hashes of archived segments gets a
//! [`ProofPointer`] (the hashes the object holds, and the segments): the Worker reads and
//! checks each segment the same way, rebuilds its hashes, checks them against the segment root
//! the object holds, and makes the proof ([`ProofPointer::prove`]). A past value
//! (`GET /api/value?as_of_version=|as_of=`) in the archive gets an [`AsOfPointer`]: one segment,
//! checked the same way and against its segment root, in which the Worker finds the entry (by
//! version, or the last at or before the instant) and, when asked, proves it. R2 unreachable, a segment
//! missing, or bytes that fail a check: 503 with `Retry-After` (and an error log line).
//! Nothing on this path can change anything.

use web_sys::Response;
use worker::Env;

use crate::core::archive::{self, AsOfPointer, ProofPointer, Segment, SegmentPointer};
use crate::core::audit::AuditEntry;
use crate::core::problem::Problem;
use crate::core::wire::ObjectCall;
use crate::error::{Error, Result};
use crate::http;
use crate::log::log_event;

/// How long a client should wait before asking again when the archive cannot be read.
const RETRY_AFTER_SECS: u32 = 5;

/// Whether the object answered with an archive pointer (the answer then comes from R2).
pub fn is_pointer(response: &Response) -> bool {
    response.status() == 200
        && response
            .headers()
            .get(archive::POINTER_HEADER)
            .ok()
            .flatten()
            .is_some()
}

/// The object's answer to a read of history, with an archive pointer replaced by the page or
/// the proof.
pub async fn resolve(
    env: &Env,
    call: &ObjectCall,
    response: Response,
) -> Result<Response, Problem> {
    let pointer = response
        .headers()
        .get(archive::POINTER_HEADER)
        .ok()
        .flatten();
    let Some(kind) = pointer.filter(|_| response.status() == 200) else {
        return Ok(response);
    };
    let text = match response.text() {
        Ok(p) => wasm_bindgen_futures::JsFuture::from(p)
            .await
            .ok()
            .and_then(|t| t.as_string()),
        Err(_) => None,
    };
    if kind == "proof" {
        return prove(env, text.as_deref()).await;
    }
    if kind == "as_of" {
        return as_of(env, text.as_deref()).await;
    }
    let ObjectCall::Audit(q) = call else {
        log_event(
            "error",
            "an archive pointer for a call that is not a page",
            |_| {},
        );
        return Err(Problem::Internal);
    };
    let SegmentPointer {
        segment: seg,
        version,
    } = read_pointer(text.as_deref(), SegmentPointer::from_json, "archive")?;
    let entries = read(env, &seg).await.map_err(|e| {
        log_event("error", "archive read failed", |w| {
            w.string("segment", &seg.name())
                .string("error", &e.to_string());
        });
        Problem::Unavailable {
            retry_after_secs: RETRY_AFTER_SECS,
        }
    })?;
    let body = archive::page_from_segment(&entries, q.after, q.limit, version);
    http::json(&body, &[]).map_err(|e| e.problem())
}

/// The checked entries of the segment an object pointer (a [`archive::pointer_json`]) names.
pub async fn segment_entries(env: &Env, pointer: &str) -> Result<Vec<AuditEntry>> {
    let seg = SegmentPointer::from_json(pointer)
        .map_err(|e| Error::Answer(format!("the counter's archive pointer is malformed: {e}")))?
        .segment;
    read(env, &seg).await
}

/// The pointer the object answered with (`text`, its body), or, logged with its cause, an
/// internal error.
fn read_pointer<P>(
    text: Option<&str>,
    parse: impl Fn(&str) -> Result<P, serde_json::Error>,
    what: &str,
) -> Result<P, Problem> {
    let parsed = match text {
        Some(t) => parse(t).map_err(|e| e.to_string()),
        None => Err("no body".to_owned()),
    };
    parsed.map_err(|e| {
        log_event(
            "error",
            &format!("the counter's {what} pointer is malformed"),
            |w| {
                w.string("error", &e);
            },
        );
        Problem::Internal
    })
}

/// A proof from its pointer and the segments it names.
async fn prove(env: &Env, text: Option<&str>) -> Result<Response, Problem> {
    let pointer = read_pointer(text, ProofPointer::from_json, "proof")?;
    let mut blocks = Vec::with_capacity(pointer.segments.len());
    let failed = |e: Error| {
        log_event("error", "archive read failed", |w| {
            w.string("error", &e.to_string());
        });
        Problem::Unavailable {
            retry_after_secs: RETRY_AFTER_SECS,
        }
    };
    for seg in &pointer.segments {
        blocks.push(read(env, seg).await.map_err(failed)?);
    }
    let body = pointer
        .prove(&blocks)
        .map_err(|e| failed(Error::Archive(e)))?;
    http::json(&body, &[]).map_err(|e| e.problem())
}

/// A past value from an archived segment: the segment read and checked against the record,
/// its entries against the segment root the counter holds, then the entry (and its proof).
async fn as_of(env: &Env, text: Option<&str>) -> Result<Response, Problem> {
    let pointer = read_pointer(text, AsOfPointer::from_json, "as-of")?;
    let failed = |e: Error| {
        log_event("error", "archive read failed", |w| {
            w.string("segment", &pointer.segment().name())
                .string("error", &e.to_string());
        });
        Problem::Unavailable {
            retry_after_secs: RETRY_AFTER_SECS,
        }
    };
    let entries = read(env, pointer.segment()).await.map_err(failed)?;
    let body = pointer
        .answer(&entries)
        .map_err(|e| failed(Error::Archive(e)))?;
    http::json(&body, &[]).map_err(|e| e.problem())
}

/// Reads and checks one segment.
async fn read(env: &Env, seg: &Segment) -> Result<Vec<AuditEntry>> {
    let bucket = crate::r2::bucket(env).ok_or(Error::Unbound(crate::r2::BINDING))?;
    let name = seg.name();
    let bytes = crate::r2::read(&bucket, &name)
        .await?
        .ok_or_else(|| Error::Archive(format!("{name} is missing from R2")))?;
    archive::read_segment(seg, &bytes).map_err(Error::Archive)
}
