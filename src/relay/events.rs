//! A relay's event streams (`GET /api/events`): browsers that follow the counter with
//! Server-Sent Events instead of a socket.
//!
//! A stream ([`crate::streams`]) is handed back as the response body; the relay keeps its
//! writer and writes into it exactly what it forwards to its sockets, as events
//! ([`sse::event`]). It starts the same way a socket does, in the same synchronous step as its
//! catch-up, so the next forwarded update continues where the catch-up ended, and it counts
//! against the relay's cap and the client's cap like a socket. Each update is encoded once
//! for all the streams. Writes are not awaited: one slow reader never holds up the others; a
//! stream with more than [`streams::MAX_BACKLOG_BYTES`] waiting is closed (its browser
//! reconnects with `Last-Event-ID` and misses nothing). A stream whose reader left is dropped
//! once a write to it fails: the runtime learns that the connection is gone only by writing
//! to it, so this takes one or two heartbeats after the browser left.

use std::cell::RefCell;

use web_sys::Response;

use crate::core::sse;
use crate::error::Result;
use crate::streams::{self, Chunk, Writer};

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
    pub fn open(&self, client: &str, until: f64, messages: &[String]) -> Result<Response> {
        let (writer, body) = streams::open()?;
        let mut text = sse::preamble();
        for m in messages {
            if let Some(e) = sse::event(m) {
                text.push_str(&e);
            }
        }
        writer.write_text(&text);
        self.list.borrow_mut().push(Stream {
            writer,
            client: client.to_owned(),
            until,
        });
        crate::http::event_stream(&body)
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
        self.write_all(&Chunk::new(&text))
    }

    /// A comment line to every stream; returns how many were dropped.
    pub fn heartbeat(&self) -> usize {
        self.write_all(&Chunk::new(sse::HEARTBEAT))
    }

    /// Ends the streams whose life is over (their browsers reconnect with `Last-Event-ID`);
    /// returns how many.
    pub fn close_expired(&self, now: f64) -> usize {
        let mut closed = 0;
        self.list.borrow_mut().retain(|s| {
            if now < s.until {
                return true;
            }
            s.writer.close();
            closed += 1;
            false
        });
        closed
    }

    fn write_all(&self, chunk: &Chunk) -> usize {
        let before = self.len();
        self.list.borrow_mut().retain(|s| match s.writer.alive() {
            // The reader keeps up (or nearly): queue the event.
            Some(true) => {
                s.writer.write(chunk);
                true
            }
            // Stuck: end it; the browser reconnects from its last event.
            Some(false) => {
                s.writer.abort("too slow");
                false
            }
            // The reader is gone (the stream errored or closed).
            None => false,
        });
        before - self.len()
    }
}
