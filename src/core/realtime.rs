//! Rules of the live stream: how a (re)connecting client catches up, and what clients may send.
//!
//! The counter object pushes one `update` message per applied change to every socket, in
//! version order. A client that reconnects with `?since=<last version it saw>` first receives
//! the changes it missed from the audit trail, then the live stream, with no gap and no
//! duplicate: the object does both in one synchronous step, so no change can fall between
//! them. A client too far behind gets a fresh snapshot instead of a flood.

use super::json::JsonWriter;
use super::problem::Problem;

/// The most missed changes a reconnecting client is sent one by one.
pub const MAX_REPLAY: u64 = 1000;

/// The largest message a client may send; a larger one closes its socket with 1009.
pub const MAX_CLIENT_FRAME_BYTES: usize = 1024;

/// Close code for a frame over [`MAX_CLIENT_FRAME_BYTES`] (RFC 6455 "message too big").
pub const CLOSE_TOO_BIG: u16 = 1009;

/// Close code for a client that floods the socket (RFC 6455 "policy violation").
pub const CLOSE_POLICY: u16 = 1008;

/// How a new socket starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// Send the current snapshot.
    Snapshot,
    /// Send every change with a version in `after+1..=current`, then go live.
    Replay { after: u64 },
}

/// Decides how a socket connecting with `since` starts when the counter is at `current`.
pub fn start(since: Option<u64>, current: u64) -> Start {
    match since {
        Some(after) if after <= current && current - after <= MAX_REPLAY => Start::Replay { after },
        _ => Start::Snapshot,
    }
}

/// What the object does with a message from a client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Incoming {
    /// Over the size limit: close the socket with 1009.
    TooBig,
    /// Anything else: answer this `error` message, change nothing. (`ping` never gets here:
    /// the runtime answers it with `pong` without waking the object.)
    Unsupported(String),
}

/// Classifies a client message of `len` bytes; `binary` for binary frames.
pub fn incoming(len: usize, binary: bool) -> Incoming {
    if len > MAX_CLIENT_FRAME_BYTES {
        return Incoming::TooBig;
    }
    let why = if binary {
        "Binary messages are not supported."
    } else {
        "Unknown message. This stream is read-only: send \"ping\" to check the connection; change the counter over HTTP."
    };
    Incoming::Unsupported(error_message(&Problem::InvalidMessage(why.into())))
}

/// The `error` message for a problem on a socket: `{"type":"error","problem":{...}}`, the
/// problem nested because both use the member `type`.
pub fn error_message(p: &Problem) -> String {
    JsonWriter::object()
        .string("type", "error")
        .raw("problem", &p.to_json())
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_rules() {
        assert_eq!(start(None, 5), Start::Snapshot);
        assert_eq!(start(Some(5), 5), Start::Replay { after: 5 });
        assert_eq!(start(Some(0), 1000), Start::Replay { after: 0 });
        assert_eq!(start(Some(0), 1001), Start::Snapshot);
        assert_eq!(
            start(Some(9), 5),
            Start::Snapshot,
            "a client ahead of the counter resyncs"
        );
    }

    #[test]
    fn incoming_rules() {
        assert_eq!(incoming(1025, false), Incoming::TooBig);
        assert_eq!(incoming(5000, true), Incoming::TooBig);
        let Incoming::Unsupported(m) = incoming(3, true) else {
            panic!()
        };
        let v: serde_json::Value = serde_json::from_str(&m).unwrap();
        assert_eq!(v["type"], "error");
        assert_eq!(v["problem"]["status"], 400);
    }
}
