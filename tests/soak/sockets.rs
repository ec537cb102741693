//! The soak's browsers: WebSocket clients through the relays, each with its own address. Each
//! checks its stream as it comes (every update is exactly the next version, its
//! `previous_value` the value before it) and keeps a digest of it, so the whole stream can be
//! compared with the audit trail afterwards without keeping every message. A dropped socket
//! resumes with `?since=<last version>`, on whatever port the runtime listens now.

use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket};

use crate::check::term;
use crate::load::Shared;

/// A socket that cannot connect again for this long fails the run.
const RECONNECT_LIMIT: Duration = Duration::from_secs(240);
/// After the last change, every socket must have caught up within this long.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(180);

/// What one browser saw.
#[derive(Debug, Default)]
pub struct Report {
    pub ip: String,
    /// The version of its first snapshot.
    pub first: u64,
    /// The last version it saw.
    pub last: u64,
    pub updates: u64,
    pub reconnects: u64,
    /// The wrapping sum of `term(version, value)` over the updates after `first`.
    pub digest: u64,
    /// Gaps, duplicates, updates that do not chain, snapshots that skip ahead.
    pub gaps: u64,
    pub problems: Vec<String>,
    /// How its connections ended: the close code, or "dropped" without a close frame.
    pub closes: std::collections::BTreeMap<String, u64>,
}

fn connect(port: u16, ip: &str, since: Option<u64>) -> Result<WebSocket<TcpStream>, String> {
    let url = match since {
        Some(v) => format!("ws://127.0.0.1:{port}/api/ws?since={v}"),
        None => format!("ws://127.0.0.1:{port}/api/ws"),
    };
    let mut req = url.into_client_request().map_err(|e| e.to_string())?;
    req.headers_mut()
        .insert("cf-connecting-ip", ip.parse().unwrap());
    let stream = TcpStream::connect_timeout(
        &format!("127.0.0.1:{port}").parse().unwrap(),
        Duration::from_secs(5),
    )
    .map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    match tungstenite::client(req, stream) {
        Ok((ws, _)) => {
            ws.get_ref()
                .set_read_timeout(Some(Duration::from_millis(500)))
                .map_err(|e| e.to_string())?;
            Ok(ws)
        }
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(r))) => {
            Err(format!("status {}", r.status().as_u16()))
        }
        Err(e) => Err(e.to_string()),
    }
}

enum Read {
    Text(String),
    Idle,
    Closed(String),
}

fn read(ws: &mut WebSocket<TcpStream>) -> Read {
    match ws.read() {
        Ok(Message::Text(t)) => Read::Text(t.to_string()),
        Ok(Message::Close(frame)) => {
            Read::Closed(frame.map_or("no code".to_string(), |f| u16::from(f.code).to_string()))
        }
        Ok(_) => Read::Idle,
        Err(tungstenite::Error::Io(e))
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            Read::Idle
        }
        Err(_) => Read::Closed("dropped".to_string()),
    }
}

/// One browser, until it has seen the version in `shared.target` (or the run aborts).
/// `opened` counts browsers that got their first snapshot.
pub fn browser(shared: &Shared, ip: String, seed: u64, opened: &AtomicU64) -> Report {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut rep = Report {
        ip,
        ..Report::default()
    };
    // `None` until the first snapshot: then the last version and its value.
    let mut at: Option<(u64, i64)> = None;
    let mut sock: Option<WebSocket<TcpStream>> = None;
    let mut down_since = Some(Instant::now());
    let mut backoff = Duration::from_millis(50);
    let mut target_known: Option<Instant> = None;
    loop {
        if shared.abort.load(Ordering::SeqCst) {
            break;
        }
        let target = shared.target.load(Ordering::SeqCst);
        if target > 0 {
            let since = *target_known.get_or_insert_with(Instant::now);
            if at.is_some_and(|(v, _)| v >= target) {
                break;
            }
            if since.elapsed() > CATCH_UP_LIMIT {
                rep.problems.push(format!(
                    "{}: stuck at {:?} while the last version is {target}",
                    rep.ip,
                    at.map(|a| a.0)
                ));
                break;
            }
        }
        let Some(ws) = sock.as_mut() else {
            let started = *down_since.get_or_insert_with(Instant::now);
            if started.elapsed() > RECONNECT_LIMIT {
                rep.problems.push(format!(
                    "{}: could not connect for {RECONNECT_LIMIT:?} (at {:?})",
                    rep.ip,
                    at.map(|a| a.0)
                ));
                break;
            }
            match connect(shared.port(), &rep.ip, at.map(|a| a.0)) {
                Ok(ws) => {
                    if at.is_some() {
                        rep.reconnects += 1;
                    }
                    sock = Some(ws);
                    down_since = None;
                    backoff = Duration::from_millis(50);
                }
                Err(_) => {
                    std::thread::sleep(backoff.mul_f64(rng.random_range(0.5..1.0)));
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
            continue;
        };
        let text = match read(ws) {
            Read::Text(t) => t,
            Read::Idle => continue,
            Read::Closed(how) => {
                *rep.closes.entry(how).or_default() += 1;
                sock = None;
                continue;
            }
        };
        let m: Value = match serde_json::from_str(&text) {
            Ok(m) => m,
            Err(_) => {
                rep.problems.push(format!("{}: not JSON: {text:?}", rep.ip));
                continue;
            }
        };
        let (Some(version), Some(value)) = (m["version"].as_u64(), m["value"].as_i64()) else {
            rep.problems
                .push(format!("{}: unexpected message {m}", rep.ip));
            continue;
        };
        match (m["type"].as_str(), at) {
            (Some("snapshot"), None) => {
                rep.first = version;
                at = Some((version, value));
                opened.fetch_add(1, Ordering::SeqCst);
            }
            // A snapshot on a resume: fine only if it is where the browser already was.
            (Some("snapshot"), Some((last, last_value))) => {
                if (version, value) != (last, last_value) {
                    rep.gaps += 1;
                    rep.problems.push(format!(
                        "{}: resumed after {last} with a snapshot of {version}: {m}",
                        rep.ip
                    ));
                    // Go on from there, so one fault is reported once.
                    at = Some((version, value));
                }
            }
            (Some("update"), Some((last, last_value))) => {
                if version != last + 1 {
                    rep.gaps += 1;
                    rep.problems.push(format!(
                        "{}: {} after version {last}: {m}",
                        rep.ip,
                        if version <= last {
                            "a duplicate or an older version"
                        } else {
                            "a gap"
                        }
                    ));
                    if version <= last {
                        continue;
                    }
                }
                let amount = m["amount"].as_i64().unwrap_or(i64::MIN);
                let delta = match m["operation"].as_str() {
                    Some("increment") => amount,
                    Some("decrement") => -amount,
                    _ => i64::MIN,
                };
                if m["previous_value"] != last_value
                    || delta == i64::MIN
                    || last_value + delta != value
                {
                    rep.gaps += 1;
                    rep.problems.push(format!(
                        "{}: an update that does not follow from {last}'s value {last_value}: {m}",
                        rep.ip
                    ));
                }
                rep.updates += 1;
                rep.digest = rep.digest.wrapping_add(term(version, value));
                at = Some((version, value));
            }
            _ => rep
                .problems
                .push(format!("{}: unexpected message {m}", rep.ip)),
        }
    }
    if let Some(mut ws) = sock {
        let _ = ws.close(None);
        let _ = ws.flush();
    }
    if let Some((v, _)) = at {
        rep.last = v;
    }
    rep
}
