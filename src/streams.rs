//! Byte streams to browsers (`GET /api/events`), shared by the relays' streams
//! (`relay/events.rs`) and the edge's (`edge/events.rs`, relays off).
//!
//! A stream is the runtime's own identity stream (`IdentityTransformStream`, bound here: the
//! crates bind only the standard `TransformStream`): its writable side queues byte chunks and
//! its readable side, handed back as the response body, is pumped to the connection by the
//! runtime without a JavaScript read per chunk. Against the standard `TransformStream`, through
//! relays at 1,000 streams, it costs the server less per event (BENCHMARKS.md, "Event streams:
//! the runtime's identity stream, one chunk per update"); an event for many streams is encoded
//! once ([`Chunk`]) and the same bytes are queued on each (the runtime copies them into its
//! own queue).
//!
//! Writes are not awaited: one slow reader never holds up the others. A write to a stream
//! whose reader left fails quietly ([`swallow`]); the caller learns it from [`Writer::alive`]
//! on its next write or heartbeat.

use wasm_bindgen::prelude::*;
use web_sys::{ReadableStream, WritableStream, WritableStreamDefaultWriter};

use crate::error::{Context, Result};

#[wasm_bindgen]
extern "C" {
    type IdentityTransformStream;

    #[wasm_bindgen(constructor, catch)]
    fn new(strategy: &js_sys::Object) -> std::result::Result<IdentityTransformStream, JsValue>;

    #[wasm_bindgen(method, getter)]
    fn readable(this: &IdentityTransformStream) -> ReadableStream;

    #[wasm_bindgen(method, getter)]
    fn writable(this: &IdentityTransformStream) -> WritableStream;
}

thread_local! {
    /// Swallows the rejection of a write to a stream whose reader left.
    static IGNORE: Closure<dyn FnMut(JsValue)> = Closure::new(|_e: JsValue| {});
}

/// The most bytes a stream may have queued and unread before it counts as stuck (its reader
/// is gone or too slow; a few hundred events); the owner then ends it and the browser resumes
/// with `Last-Event-ID`. It is the stream's high-water mark: the runtime counts an identity
/// stream's queued bytes against it only when one is given.
pub const MAX_BACKLOG_BYTES: f64 = 64.0 * 1024.0;

/// Bytes ready to be queued on any number of streams.
pub struct Chunk(js_sys::Uint8Array);

impl Chunk {
    /// Copies `text` out of Wasm memory once.
    pub fn new(text: &str) -> Self {
        Chunk(js_sys::Uint8Array::from(text.as_bytes()))
    }
}

/// The writing end of one stream.
pub struct Writer(WritableStreamDefaultWriter);

/// Opens a stream: its writer, and the readable side for the response body.
pub fn open() -> Result<(Writer, ReadableStream)> {
    let strategy = js_sys::Object::new();
    js_sys::Reflect::set(
        &strategy,
        &JsValue::from_str("highWaterMark"),
        &JsValue::from_f64(MAX_BACKLOG_BYTES),
    )
    .js("opening an event stream")?;
    let stream = IdentityTransformStream::new(&strategy).js("opening an event stream")?;
    let writer = stream
        .writable()
        .get_writer()
        .js("opening an event stream")?;
    Ok((Writer(writer), stream.readable()))
}

impl Writer {
    /// Queues `chunk` without waiting.
    pub fn write(&self, chunk: &Chunk) {
        swallow(&self.0.write_with_chunk(&chunk.0));
    }

    /// Queues `text` without waiting (a chunk of its own).
    pub fn write_text(&self, text: &str) {
        self.write(&Chunk::new(text));
    }

    /// Whether the stream still takes writes: `Some(true)` while its reader keeps up (less
    /// than [`MAX_BACKLOG_BYTES`] queued), `Some(false)` when it is stuck, `None` when it is
    /// gone (errored or closed).
    pub fn alive(&self) -> Option<bool> {
        match self.0.desired_size() {
            Ok(Some(d)) => Some(d > 0.0),
            Ok(None) | Err(_) => None,
        }
    }

    /// Ends the stream normally.
    pub fn close(&self) {
        swallow(&self.0.close());
    }

    /// Ends the stream with an error (`why`), dropping what is queued.
    pub fn abort(&self, why: &str) {
        swallow(&self.0.abort_with_reason(&JsValue::from_str(why)));
    }
}

/// Lets `promise` reject quietly.
pub fn swallow(promise: &js_sys::Promise) {
    IGNORE.with(|f| {
        let _ = promise.catch(f);
    });
}
