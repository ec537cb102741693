//! `acidizer watch`: the counter live, over the WebSocket `GET /api/ws`, until interrupted.
//!
//! The first connection (without `--since`) starts with a snapshot, then one update per
//! applied change in version order. When the connection ends (the server restarts, a relay
//! recycles its sockets with 1012, the network fails, or no pong comes back), the client
//! connects again with `?since=<the last version it printed>`: the server first sends every
//! change after it (or a snapshot when more than 1,000 were missed), then live ones, so
//! nothing is missed or printed twice. Updates at or below the last printed version are
//! dropped all the same.

use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;
use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket};

use crate::client::{backoff, Client, RETRIES};
use crate::error::{emit, Error};
use crate::render;

/// With no message for this long, the client sends `ping`; with none for twice as long, it
/// takes the connection for dead and connects again.
const QUIET: Duration = Duration::from_secs(20);

/// Why a connection attempt failed.
enum Refusal {
    /// Worth another attempt: the network, a 5xx, a 429.
    Retry(String),
    /// Never going to work: a 4xx problem, a bad URL.
    Final(Error),
}

pub fn run(client: &Client, since: Option<u64>, json: bool) -> Result<(), Error> {
    let mut last = since;
    let mut failures: u32 = 0;
    let mut ever_connected = false;
    loop {
        let path = match last {
            Some(v) => format!("/api/ws?since={v}"),
            None => "/api/ws".to_owned(),
        };
        let url = client.ws_url(&path);
        let why = match connect(&url) {
            Ok(ws) => {
                ever_connected = true;
                let (why, got_any) = follow(ws, &mut last, json)?;
                if got_any {
                    failures = 0;
                }
                why
            }
            Err(Refusal::Final(e)) => return Err(e),
            Err(Refusal::Retry(why)) => {
                // Before the first connection, give up like any other request; once watching,
                // keep trying until interrupted.
                if !ever_connected && failures >= RETRIES {
                    return Err(Error::Unavailable(format!(
                        "{url}: {why} (after {} attempts)",
                        failures + 1
                    )));
                }
                why
            }
        };
        let wait = backoff(failures);
        failures = failures.saturating_add(1);
        eprintln!(
            "watch: {why}; connecting again in {:.1} s{}",
            wait.as_secs_f64(),
            match last {
                Some(v) => format!(" (from version {v})"),
                None => String::new(),
            }
        );
        std::thread::sleep(wait);
    }
}

fn connect(url: &str) -> Result<WebSocket<TcpStream>, Refusal> {
    let req = url
        .into_client_request()
        .map_err(|e| Refusal::Final(Error::Usage(format!("{url}: {e}"))))?;
    let authority = req
        .uri()
        .authority()
        .map(|a| a.to_string())
        .ok_or_else(|| Refusal::Final(Error::Usage(format!("{url}: no host"))))?;
    let host = if authority.contains(':') {
        authority
    } else {
        format!("{authority}:80")
    };
    let stream = TcpStream::connect(&host).map_err(|e| Refusal::Retry(format!("{host}: {e}")))?;
    stream
        .set_read_timeout(Some(QUIET))
        .and_then(|()| stream.set_write_timeout(Some(QUIET)))
        .map_err(|e| Refusal::Retry(e.to_string()))?;
    match tungstenite::client(req, stream) {
        Ok((ws, _)) => Ok(ws),
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(r))) => {
            let status = r.status().as_u16();
            let body = r
                .body()
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default()
                .into_owned();
            let answer = crate::client::Answer {
                status,
                headers: Vec::new(),
                body,
            };
            match answer.to_error() {
                Error::Unavailable(why) => Err(Refusal::Retry(why)),
                e => Err(Refusal::Final(e)),
            }
        }
        Err(e) => Err(Refusal::Retry(format!(
            "the WebSocket handshake failed: {e}"
        ))),
    }
}

/// Prints the connection's messages until it ends; returns why it ended and whether it
/// brought anything.
fn follow(
    mut ws: WebSocket<TcpStream>,
    last: &mut Option<u64>,
    json: bool,
) -> Result<(String, bool), Error> {
    let mut pinged = false;
    let mut got_any = false;
    loop {
        let msg = match ws.read() {
            Ok(m) => m,
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if pinged {
                    return Ok(("no answer to a ping".into(), got_any));
                }
                pinged = true;
                if let Err(e) = ws.send(Message::text("ping")) {
                    return Ok((format!("ping: {e}"), got_any));
                }
                continue;
            }
            Err(e) => return Ok((format!("the connection ended: {e}"), got_any)),
        };
        pinged = false;
        let text = match msg {
            Message::Text(t) => t.to_string(),
            Message::Close(frame) => {
                let why = match frame {
                    Some(f) => format!(
                        "the server closed the connection ({} {})",
                        u16::from(f.code),
                        f.reason
                    ),
                    None => "the server closed the connection".into(),
                };
                return Ok((why, got_any));
            }
            _ => continue,
        };
        got_any = true;
        let Ok(v) = serde_json::from_str::<Value>(&text) else {
            if text != "pong" {
                eprintln!("watch: a message that is not JSON: {text}");
            }
            continue;
        };
        let version = v["version"].as_u64();
        match v["type"].as_str() {
            Some("snapshot") => {
                if version.is_some() {
                    *last = version;
                }
            }
            Some("update") => {
                let Some(version) = version else {
                    eprintln!("watch: an update without a version: {v}");
                    continue;
                };
                if last.is_some_and(|l| version <= l) {
                    continue; // already printed
                }
                if let Some(l) = *last {
                    if version > l.saturating_add(1) {
                        eprintln!(
                            "watch: versions {}..{} were not received",
                            l.saturating_add(1),
                            version - 1
                        );
                    }
                }
                *last = Some(version);
            }
            Some("error") => {
                let p = &v["problem"];
                eprintln!(
                    "watch: the server says: {}: {}",
                    p["title"].as_str().unwrap_or("error"),
                    p["detail"].as_str().unwrap_or("")
                );
                continue;
            }
            _ if json => {}
            _ => continue,
        }
        if json {
            emit(&v.to_string())?;
        } else {
            emit(&render::live(&v))?;
        }
    }
}
