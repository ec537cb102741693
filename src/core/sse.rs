//! Server-Sent Events (`GET /api/events`): the live stream as `text/event-stream`.
//!
//! The events carry exactly the socket's messages: an event `snapshot` first (or the missed
//! updates, on a resume), then one event `update` per committed change in version order. Each
//! event's `id` is its version and its `data` the socket message's JSON, byte for byte, so a
//! browser's `EventSource` resumes by itself: it reconnects with `Last-Event-ID: <the last
//! version it saw>`, and the stream starts exactly as a socket with `?since=` does (the missed
//! updates, or a snapshot when more than [`MAX_REPLAY`](super::realtime::MAX_REPLAY) were
//! missed). A `retry:` field first tells the browser how soon to reconnect, and a comment line
//! every [`HEARTBEAT_MS`] keeps proxies from closing a quiet stream (and finds dead ones).

use super::problem::Problem;
use super::vocab::{parse_version, truncate, MAX_VALUE};

/// The media type of the stream.
pub const CONTENT_TYPE: &str = "text/event-stream; charset=utf-8";

/// How long a browser waits before reconnecting (ms), sent as the stream's first field.
pub const RETRY_MS: u32 = 2000;

/// How often a quiet stream gets a comment line (ms): well under the 30 s after which idle
/// connections are commonly cut.
pub const HEARTBEAT_MS: u32 = 15_000;

/// The comment line sent every [`HEARTBEAT_MS`].
pub const HEARTBEAT: &str = ": heartbeat\n\n";

/// What a stream starts with: the reconnect delay and a comment (which also makes every
/// proxy on the way send the response headers at once).
pub fn preamble() -> String {
    format!("retry: {RETRY_MS}\n: live\n\n")
}

/// The event for one socket message (`snapshot` or `update`, as the counter and the relays
/// write them): `event: <type>\nid: <version>\ndata: <message>\n\n`. `None` for anything else
/// (an `error`, a `pong`).
pub fn event(message: &str) -> Option<String> {
    let kind = if message.starts_with(r#"{"type":"update","#) {
        "update"
    } else if message.starts_with(r#"{"type":"snapshot","#) {
        "snapshot"
    } else {
        return None;
    };
    let at = message.find(r#","version":"#)? + r#","version":"#.len();
    let digits: &str = &message[at..];
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    let version = parse_version(&digits[..end])?;
    let mut out = String::with_capacity(message.len() + 40);
    out.push_str("event: ");
    out.push_str(kind);
    out.push_str("\nid: ");
    out.push_str(&version.to_string());
    // The messages are one line of JSON; a line break would start a new field, so each line
    // gets its own `data:` (the browser joins them with `\n` again).
    for line in message.split(['\n', '\r']) {
        out.push_str("\ndata: ");
        out.push_str(line);
    }
    out.push_str("\n\n");
    Some(out)
}

/// Where a stream resumes: `Last-Event-ID` (what an `EventSource` sends when it reconnects,
/// to the same URL, so it wins over the URL's `since`), else `?since=`. An empty
/// `Last-Event-ID` counts as absent; anything but a version is a 400 problem.
pub fn resume(last_event_id: Option<&str>, since: Option<u64>) -> Result<Option<u64>, Problem> {
    match last_event_id.map(str::trim) {
        None | Some("") => Ok(since),
        Some(id) => match parse_version(id) {
            Some(v) if v <= MAX_VALUE as u64 => Ok(Some(v)),
            _ => Err(Problem::InvalidHeader {
                name: "Last-Event-ID",
                detail: format!(
                    "must be a version (an integer from 0 to {MAX_VALUE}); got {:?}.",
                    truncate(id, 40)
                ),
            }),
        },
    }
}

/// The headers of a stream's response, besides its media type. Anyone may read the stream
/// (`Access-Control-Allow-Origin: *`, no credentials): it shows what every visitor sees.
pub const HEADERS: [(&str, &str); 4] = [
    ("cache-control", "no-store"),
    ("x-content-type-options", "nosniff"),
    ("access-control-allow-origin", "*"),
    // Keeps intermediaries (nginx and the like) from buffering the stream.
    ("x-accel-buffering", "no"),
];

/// The answer to a CORS preflight for the stream, from any origin: an `EventSource` may send
/// `Last-Event-ID` when it reconnects.
pub const PREFLIGHT: [(&str, &str); 5] = [
    ("access-control-allow-origin", "*"),
    ("access-control-allow-methods", "GET"),
    (
        "access-control-allow-headers",
        "Last-Event-ID, Cache-Control",
    ),
    ("access-control-max-age", "600"),
    ("allow", "GET, OPTIONS"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_carry_the_socket_messages_with_their_versions() {
        let u = r#"{"type":"update","value":-3,"version":12,"previous_value":-2,"operation":"decrement","amount":1,"at":"2025-01-01T00:00:00.000Z"}"#;
        assert_eq!(
            event(u).unwrap(),
            format!("event: update\nid: 12\ndata: {u}\n\n")
        );
        let s = r#"{"type":"snapshot","value":7,"version":0}"#;
        assert_eq!(
            event(s).unwrap(),
            format!("event: snapshot\nid: 0\ndata: {s}\n\n")
        );
        for not in [
            "pong",
            r#"{"type":"error","problem":{}}"#,
            r#"{"type":"update","value":1}"#,
            r#"{"type":"update","value":1,"version":x}"#,
            "",
        ] {
            assert_eq!(event(not), None, "{not}");
        }
        // A line break cannot end the event early.
        let odd = "{\"type\":\"update\",\"value\":1,\"version\":3,\n\"x\":1}";
        assert_eq!(
            event(odd).unwrap(),
            "event: update\nid: 3\ndata: {\"type\":\"update\",\"value\":1,\"version\":3,\ndata: \"x\":1}\n\n"
        );
    }

    #[test]
    fn last_event_id_wins_over_since_and_is_checked() {
        assert_eq!(resume(None, None), Ok(None));
        assert_eq!(resume(None, Some(4)), Ok(Some(4)));
        assert_eq!(resume(Some("9"), Some(4)), Ok(Some(9)));
        assert_eq!(resume(Some(""), Some(4)), Ok(Some(4)));
        assert_eq!(resume(Some(" 0 "), None), Ok(Some(0)));
        for bad in ["-1", "x", "1.5", "99999999999999999999", "9007199254740992"] {
            let e = resume(Some(bad), None).unwrap_err();
            assert_eq!(e.status(), 400, "{bad}");
        }
    }

    #[test]
    fn the_stream_starts_with_its_retry_hint_and_heartbeats_are_comments() {
        assert!(preamble().starts_with("retry: 2000\n"));
        assert!(preamble().ends_with("\n\n"));
        assert!(HEARTBEAT.starts_with(':') && HEARTBEAT.ends_with("\n\n"));
        const { assert!(HEARTBEAT_MS < 30_000) };
    }
}
