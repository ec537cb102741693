//! `GET /api/audit/export?format=ndjson|csv&after=&until=`: the audit trail as one streamed
//! file.
//!
//! The export is pinned to the tree when it starts: the edge first makes the checkpoint
//! (`Audit-Tree-Size` and `Audit-Checkpoint` say which), caps `until` at its size, and then
//! asks the object for one page of [`EXPORT_PAGE`] entries at a time, writing each into the
//! response stream only when the reader wants more. So memory stays at one page whatever the
//! length, and the object is busy for one page read at a time, never for the whole export.
//! NDJSON lines are exactly the Merkle leaves' bytes; CSV follows RFC 4180.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{future_to_promise, spawn_local, JsFuture};
use web_sys::{
    Headers, Response, ResponseInit, TransformStream, WritableStreamDefaultWriter as StreamWriter,
};
use worker::Env;

use crate::core::ledger::{self, ExportQuery, CSV_HEADER, EXPORT_PAGE};
use crate::core::problem::Problem;
use crate::core::wire::ObjectCall;
use crate::error::{Context, Error, Result};
use crate::http;
use crate::log::log_event;

use super::{checkpoint, forward};

/// A promise of the export's response (never rejected). `head`: headers only.
pub fn export(env: Env, q: ExportQuery, head: bool) -> js_sys::Promise {
    future_to_promise(async move {
        let response = match start(env, q, head).await {
            Ok(r) => r,
            Err(p) => http::problem_response(&p)?,
        };
        Ok(response.into())
    })
}

async fn start(env: Env, q: ExportQuery, head: bool) -> Result<Response, Problem> {
    let (note, _, size) = checkpoint::note(&env).await?;
    let until = q.until.unwrap_or(size);
    if until > size {
        return Err(ledger::beyond("until", until, size));
    }
    let after = q.after.min(until);
    let (media, ext) = if q.csv {
        ("text/csv; charset=utf-8; header=present", "csv")
    } else {
        ("application/x-ndjson", "ndjson")
    };
    let fail = |_| Problem::Internal;
    let headers = Headers::new().map_err(fail)?;
    for (k, v) in [
        ("content-type", media.to_string()),
        ("cache-control", "no-store".into()),
        ("x-content-type-options", "nosniff".into()),
        (
            "content-disposition",
            format!("attachment; filename=\"audit-{}-{until}.{ext}\"", after + 1),
        ),
        ("audit-tree-size", size.to_string()),
        ("audit-checkpoint", B64.encode(note.as_bytes())),
    ] {
        headers.set(k, &v).map_err(fail)?;
    }
    let init = ResponseInit::new();
    init.set_status(200);
    init.set_headers(&headers);
    if head {
        return Response::new_with_opt_str_and_init(None, &init).map_err(fail);
    }
    let stream = TransformStream::new().map_err(fail)?;
    let writer = stream.writable().get_writer().map_err(fail)?;
    spawn_local(pump(env, writer, q.csv, after, until));
    Response::new_with_opt_readable_stream_and_init(Some(&stream.readable()), &init).map_err(fail)
}

/// Writes the pages `after+1..=until` into the stream, one page in memory at a time.
async fn pump(env: Env, writer: StreamWriter, csv: bool, mut after: u64, until: u64) {
    if csv && write(&writer, CSV_HEADER).await.is_err() {
        return;
    }
    while after < until {
        let to = (after + EXPORT_PAGE).min(until);
        let (page, to) = match page(&env, csv, after, to).await {
            Ok(p) => p,
            Err(why) => {
                log_event("error", "export page failed", |w| {
                    w.uint("after", after).string("error", &why.to_string());
                });
                // The reader sees a broken stream, never a silently short file.
                let _ = writer.abort_with_reason(&JsValue::from_str("export failed"));
                return;
            }
        };
        // An error here means the reader went away: stop reading pages.
        if write_bytes(&writer, &page).await.is_err() {
            return;
        }
        after = to;
    }
    let _ = JsFuture::from(writer.close()).await;
}

async fn write(writer: &StreamWriter, text: &str) -> Result<()> {
    write_bytes(writer, &js_sys::Uint8Array::from(text.as_bytes())).await
}

/// Waits until the stream wants more, then hands it `bytes`.
async fn write_bytes(writer: &StreamWriter, bytes: &js_sys::Uint8Array) -> Result<()> {
    JsFuture::from(writer.ready())
        .await
        .js("waiting for the reader")?;
    JsFuture::from(writer.write_with_chunk(bytes))
        .await
        .js("writing to the export")?;
    Ok(())
}

/// One page and the last version it holds: `until`, or less for a page read from an archived
/// segment (it ends with the segment; `edge/archive.rs`). A page from the object goes into the
/// stream as the bytes it arrived as: no decoding to a string and no copy through the Wasm
/// memory and back (each page is garbage once written, for the collector).
async fn page(env: &Env, csv: bool, after: u64, until: u64) -> Result<(js_sys::Uint8Array, u64)> {
    let call = ObjectCall::ExportPage { csv, after, until };
    let response = forward::answer(env, &call).await?;
    if response.status() != 200 {
        return Err(Error::Answer(format!(
            "the counter answered {}",
            response.status()
        )));
    }
    let archived = response
        .headers()
        .get(crate::core::archive::POINTER_HEADER)
        .ok()
        .flatten()
        .is_some();
    if !archived {
        let bytes = async { JsFuture::from(response.array_buffer()?).await };
        let bytes = bytes.await.js("reading a page")?;
        return Ok((js_sys::Uint8Array::new(&bytes), until));
    }
    let text = response.text().js("reading a page")?;
    let text = JsFuture::from(text)
        .await
        .ok()
        .and_then(|t| t.as_string())
        .ok_or_else(|| Error::Answer("unreadable page".into()))?;
    let entries: Vec<_> = super::archive::segment_entries(env, &text)
        .await?
        .into_iter()
        .filter(|e| e.version > after && e.version <= until)
        .collect();
    let last = entries.last().map(|e| e.version).ok_or_else(|| {
        Error::Archive(format!("the archived segment holds nothing after {after}"))
    })?;
    let page = ledger::export_page(&entries, csv);
    Ok((js_sys::Uint8Array::from(page.as_bytes()), last))
}
