//! A relay's event streams (`GET /api/events`): browsers that follow the counter with
//! Server-Sent Events instead of a socket.
//!
//! A stream is the readable side of a `TransformStream` handed back as the response body; the
//! relay keeps the writable side and writes into it exactly what it forwards to its sockets,
//! as events ([`sse::event`]). It starts the same way a socket does, in the same synchronous
//! step as its catch-up, so the next forwarded update continues where the catch-up ended, and
//! it counts against the relay's cap and the client's cap like a socket. Writes are not
//! awaited: one slow reader never holds up the others; a stream with more than
//! [`sse::MAX_BACKLOG_CHUNKS`] events waiting is closed (its browser reconnects with
//! `Last-Event-ID` and misses nothing). A stream whose reader left is dropped once a write
//! to it fails: the runtime learns that the connection is gone only by writing to it, so this
//! takes one or two heartbeats after the browser left.

use std::cell::RefCell;

use wasm_bindgen::prelude::*;
use web_sys::{Response, TransformStream, WritableStreamDefaultWriter as Writer};

use crate::core::sse;

/// One browser's stream.
struct Stream {
    writer: Writer,
    client: String,
    /// When it ends (ms since the epoch), like a socket's deadline.
    until: f64,
}

/// Every open stream of a relay.
#[derive(Default)]
pub struct Streams {
    list: RefCell<Vec<Stream>>,
}

thread_local! {
    /// Swallows the rejection of a write to a stream whose reader left (the next write or
    /// heartbeat finds the stream errored and drops it).
    static IGNORE: Closure<dyn FnMut(JsValue)> = Closure::new(|_e: JsValue| {});
}

impl Streams {
    /// Open streams.
    pub fn len(&self) -> usize {
        self.list.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.borrow().is_empty()
    }

    /// Open streams of `client`.
    pub fn count_for(&self, client: &str) -> usize {
        self.list
            .borrow()
            .iter()
            .filter(|s| s.client == client)
            .count()
    }

    /// Opens a stream for `client` that ends at `until`, with the preamble and `messages` (its
    /// catch-up, socket messages) already written; returns its response.
    pub fn open(&self, client: &str, until: f64, messages: &[String]) -> Result<Response, JsValue> {
        let stream = TransformStream::new()?;
        let writer = stream.writable().get_writer()?;
        let mut text = sse::preamble();
        for m in messages {
            if let Some(e) = sse::event(m) {
                text.push_str(&e);
            }
        }
        write(&writer, &text);
        self.list.borrow_mut().push(Stream {
            writer,
            client: client.to_owned(),
            until,
        });
        crate::http::event_stream(&stream.readable())
    }

    /// Writes `messages` (socket messages, in order) to every stream as events; returns how
    /// many streams were dropped (gone or stuck).
    pub fn send(&self, messages: &[String]) -> usize {
        if self.is_empty() {
            return 0;
        }
        let text: String = messages.iter().filter_map(|m| sse::event(m)).collect();
        if text.is_empty() {
            return 0;
        }
        self.write_all(&text)
    }

    /// A comment line to every stream; returns how many were dropped.
    pub fn heartbeat(&self) -> usize {
        self.write_all(sse::HEARTBEAT)
    }

    /// Ends the streams whose life is over (their browsers reconnect with `Last-Event-ID`);
    /// returns how many.
    pub fn close_expired(&self, now: f64) -> usize {
        let mut closed = 0;
        self.list.borrow_mut().retain(|s| {
            if now < s.until {
                return true;
            }
            swallow(&s.writer.close());
            closed += 1;
            false
        });
        closed
    }

    fn write_all(&self, text: &str) -> usize {
        let before = self.len();
        self.list.borrow_mut().retain(|s| {
            match s.writer.desired_size() {
                // The reader keeps up (or nearly): queue the event.
                Ok(Some(d)) if d > -sse::MAX_BACKLOG_CHUNKS => {
                    write(&s.writer, text);
                    true
                }
                // The reader is gone (the stream errored or closed).
                Ok(None) | Err(_) => false,
                // Stuck: end it; the browser reconnects from its last event.
                Ok(Some(_)) => {
                    swallow(&s.writer.abort_with_reason(&JsValue::from_str("too slow")));
                    false
                }
            }
        });
        before - self.len()
    }
}

/// Lets `promise` reject quietly.
pub fn swallow(promise: &js_sys::Promise) {
    IGNORE.with(|f| {
        let _ = promise.catch(f);
    });
}

/// Queues `text` on `writer` without waiting (the bytes are copied out of Wasm memory once
/// per stream: each body owns its chunks); a write that fails (the reader left) fails quietly.
pub fn write(writer: &Writer, text: &str) {
    let chunk = js_sys::Uint8Array::from(text.as_bytes());
    swallow(&writer.write_with_chunk(&chunk));
}
