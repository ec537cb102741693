//! Bad input at scale on the live stream: while one well-behaved client receives every update
//! and changes arrive over HTTP, hostile clients send random text and binary frames, JSON that
//! looks like the server's own messages, frames right at and just over the 1 KiB limit, rapid
//! bursts, and connections that vanish or stall in the middle of a frame.
//!
//! Nothing a socket sends may change the counter or reach another socket; each hostile frame
//! gets an `error` reply, or its socket is closed with 1009 (too big) or 1008 (too many
//! messages) exactly where the rules say; the good client sees every version once, in order;
//! `/api/health` answers 200 throughout.
//!
//! The frames come from a seed that is printed; `WS_FUZZ_SEED=<n>` repeats a run's frames.

mod common;

use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{key, seed, try_request, Options, Server};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::Message;

/// The largest frame a client may send (bytes).
const MAX_FRAME: usize = 1024;
/// Messages a socket may send in its 10 s window before it is closed with 1008.
const BUDGET: usize = 20;
const HOSTILE_CLIENTS: u64 = 6;
/// Each hostile client runs at least this many sessions (connect, misbehave, go).
const MIN_SESSIONS: usize = 4;
const CHANGES: usize = 50;
/// No session, read or wait takes longer than this.
const WAIT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------------
// Frames.

#[derive(Clone, Debug)]
enum Frame {
    Text(String),
    Binary(Vec<u8>),
}

impl Frame {
    fn len(&self) -> usize {
        match self {
            Frame::Text(t) => t.len(),
            Frame::Binary(b) => b.len(),
        }
    }

    fn message(&self) -> Message {
        match self {
            Frame::Text(t) => Message::text(t.clone()),
            Frame::Binary(b) => Message::binary(b.clone()),
        }
    }
}

/// A random character: mostly ASCII, with control characters (C0, DEL, C1), characters of
/// two, three and four UTF-8 bytes, and a few specials (BOM, NUL, U+FFFF, the replacement
/// character).
fn random_char(rng: &mut StdRng) -> char {
    match rng.random_range(0..10) {
        0..=3 => rng.random_range(' '..='~'),
        4 => char::from_u32(rng.random_range(0..0x20)).unwrap(),
        5 => [
            '\u{7f}', '\u{85}', '\u{9b}', '\u{0}', '\u{feff}', '\u{ffff}', '\u{fffd}', '\u{2028}',
        ][rng.random_range(0..8)],
        6 => rng.random_range('\u{80}'..='\u{7ff}'),
        7 => rng.random_range('\u{800}'..='\u{fffd}'),
        _ => rng.random_range('\u{10000}'..='\u{10ffff}'),
    }
}

fn random_text(rng: &mut StdRng, chars: usize) -> String {
    let t: String = (0..chars).map(|_| random_char(rng)).collect();
    // Exactly "ping" is answered by the runtime with "pong"; everything else is a message.
    if t == "ping" {
        "pinG".into()
    } else {
        t
    }
}

/// Random text of exactly `bytes` UTF-8 bytes (multi-byte characters included).
fn text_of_bytes(rng: &mut StdRng, bytes: usize) -> String {
    let mut t = String::new();
    loop {
        let c = random_char(rng);
        if t.len() + c.len_utf8() > bytes {
            break;
        }
        t.push(c);
    }
    while t.len() < bytes {
        t.push(rng.random_range('a'..='z'));
    }
    t
}

/// Up to 2000 characters: mostly short, often long.
fn random_length(rng: &mut StdRng) -> usize {
    if rng.random_bool(0.6) {
        rng.random_range(0..=200)
    } else {
        rng.random_range(0..=2000)
    }
}

fn random_binary(rng: &mut StdRng, len: usize) -> Vec<u8> {
    (0..len).map(|_| rng.random()).collect()
}

/// Text that looks like the protocol: the server's own messages, commands that do not exist,
/// near-misses of `ping`, truncated and deeply nested JSON.
fn look_alike(rng: &mut StdRng) -> String {
    let v: i64 = rng.random_range(-1_000_000_000..1_000_000_000);
    let depth = rng.random_range(1..=700);
    match rng.random_range(0..12) {
        0 => format!(
            "{{\"type\":\"update\",\"value\":{v},\"version\":{},\"previous_value\":0,\"operation\":\"increment\",\"amount\":{v},\"at\":\"2020-01-01T00:00:00.000Z\"}}",
            rng.random_range(0..u32::MAX)
        ),
        1 => format!("{{\"type\":\"snapshot\",\"value\":{v},\"version\":1}}"),
        2 => format!("{{\"type\":\"increment\",\"amount\":{}}}", rng.random_range(1..=1_000_000)),
        3 => format!("{{\"op\":\"decrement\",\"idempotency_key\":\"{}\",\"amount\":5}}", key("ws")),
        4 => ["{\"type\":\"ping\"}", "\"ping\"", "PING", "ping ", " ping", "ping\n", "pong", "ping\u{0}"]
            [rng.random_range(0..8)]
            .to_string(),
        5 => "[".repeat(depth) + &"]".repeat(depth),
        6 => "{\"a\":".repeat(depth / 5 + 1) + "1" + &"}".repeat(depth / 5 + 1),
        7 => "[".repeat(depth),
        8 => "{\"type\":\"upd".to_string(),
        9 => "{\"amount\":1e400,\"type\":\"update\"}".to_string(),
        10 => format!("{{\"type\":\"update\",\"type\":\"reset\",\"value\":{v}}}"),
        _ => "null".to_string(),
    }
}

/// What the rules say a socket does with `frames` sent in one go within 10 s: the number of
/// `error` replies, and the close code that ends it (if any). The budget is checked before
/// the size.
fn expected(frames: &[Frame]) -> (usize, Option<u16>) {
    for (i, f) in frames.iter().enumerate() {
        if i >= BUDGET {
            return (i, Some(1008));
        }
        if f.len() > MAX_FRAME {
            return (i, Some(1009));
        }
    }
    (frames.len(), None)
}

// ---------------------------------------------------------------------------------------------
// A hostile client.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// A random mix of everything.
    Mixed,
    /// 21..=40 tiny frames as fast as possible.
    Burst,
    /// Frames of exactly 1024 bytes, then one of 1025.
    Edges,
    /// JSON and near-misses of the protocol.
    LookAlikes,
    /// A few frames, then a frame cut off and the connection dropped.
    AbortMidFrame,
    /// A frame cut off, the connection held a while, then dropped.
    Stall,
}

const KINDS: [Kind; 6] = [
    Kind::Mixed,
    Kind::Burst,
    Kind::Edges,
    Kind::LookAlikes,
    Kind::AbortMidFrame,
    Kind::Stall,
];

#[derive(Default, Debug)]
struct Tally {
    sessions: u64,
    frames: u64,
    errors: u64,
    closed_1008: u64,
    closed_1009: u64,
    client_closes: u64,
    dropped: u64,
    cut_mid_frame: u64,
    updates_seen: u64,
}

fn frames_for(kind: Kind, rng: &mut StdRng) -> Vec<Frame> {
    let mixed = |rng: &mut StdRng| match rng.random_range(0..6) {
        0 | 1 => {
            let n = random_length(rng);
            Frame::Text(random_text(rng, n))
        }
        2 => {
            let n = random_length(rng);
            Frame::Binary(random_binary(rng, n))
        }
        3 => Frame::Text(look_alike(rng)),
        4 => {
            let n = MAX_FRAME + rng.random_range(0..=1);
            Frame::Text(text_of_bytes(rng, n))
        }
        _ => {
            let n = MAX_FRAME + rng.random_range(0..=1);
            Frame::Binary(random_binary(rng, n))
        }
    };
    match kind {
        Kind::Mixed => (0..rng.random_range(1..=24)).map(|_| mixed(rng)).collect(),
        Kind::Burst => (0..rng.random_range(BUDGET + 1..=2 * BUDGET))
            .map(|i| {
                if i % 3 == 0 {
                    Frame::Binary(random_binary(rng, i % 7))
                } else {
                    Frame::Text(random_text(rng, i % 5))
                }
            })
            .collect(),
        Kind::Edges => {
            let mut v: Vec<Frame> = (0..rng.random_range(1..=4))
                .map(|_| {
                    if rng.random_bool(0.5) {
                        Frame::Text(text_of_bytes(rng, MAX_FRAME))
                    } else {
                        Frame::Binary(random_binary(rng, MAX_FRAME))
                    }
                })
                .collect();
            v.push(if rng.random_bool(0.5) {
                Frame::Text(text_of_bytes(rng, MAX_FRAME + 1))
            } else {
                Frame::Binary(random_binary(rng, MAX_FRAME + 1))
            });
            v
        }
        Kind::LookAlikes => (0..rng.random_range(1..=BUDGET))
            .map(|_| Frame::Text(look_alike(rng)))
            .collect(),
        Kind::AbortMidFrame | Kind::Stall => (0..rng.random_range(0..=3))
            .map(|_| {
                let n = rng.random_range(0..=100);
                Frame::Text(random_text(rng, n))
            })
            .collect(),
    }
}

/// The bytes of a client frame (masked, as clients must) announcing `len` payload bytes, with
/// only the first `sent` of them.
fn cut_frame(rng: &mut StdRng, binary: bool, len: usize, sent: usize) -> Vec<u8> {
    let mut f = vec![if binary { 0x82 } else { 0x81 }];
    if len < 126 {
        f.push(0x80 | len as u8);
    } else if len <= 0xffff {
        f.push(0x80 | 126);
        f.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        f.push(0x80 | 127);
        f.extend_from_slice(&(len as u64).to_be_bytes());
    }
    let mask: [u8; 4] = rng.random();
    f.extend_from_slice(&mask);
    f.extend((0..sent).map(|i| b'x' ^ mask[i % 4]));
    f
}

fn connect(port: u16) -> tungstenite::WebSocket<TcpStream> {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.set_write_timeout(Some(WAIT)).unwrap();
    let (ws, _) = tungstenite::client(format!("ws://127.0.0.1:{port}/api/ws"), stream)
        .unwrap_or_else(|e| panic!("the upgrade failed: {e}"));
    ws
}

/// What came back on a hostile socket until the condition was met.
struct Replies {
    errors: usize,
    close: Option<u16>,
    updates: u64,
}

/// Reads until `errors` error replies came (`close` = None) or until the socket closes.
/// Anything but an `error`, an `update` in order, or a close frame fails the suite.
fn read_replies(
    ws: &mut tungstenite::WebSocket<TcpStream>,
    errors: usize,
    until_close: bool,
    ctx: &str,
) -> Replies {
    let deadline = Instant::now() + WAIT;
    let mut r = Replies {
        errors: 0,
        close: None,
        updates: 0,
    };
    let mut last_version = 0;
    while until_close || r.errors < errors {
        assert!(Instant::now() < deadline, "{ctx}: no end after {WAIT:?}");
        match ws.read() {
            Ok(Message::Text(t)) => {
                let m: Value = serde_json::from_str(&t)
                    .unwrap_or_else(|_| panic!("{ctx}: a reply that is not JSON: {t:?}"));
                match m["type"].as_str() {
                    Some("error") => {
                        assert_eq!(m["problem"]["status"], 400, "{ctx}: {m}");
                        assert!(m["problem"]["type"].is_string(), "{ctx}: {m}");
                        r.errors += 1;
                    }
                    Some("update") => {
                        let v = m["version"].as_u64().unwrap();
                        assert!(v > last_version, "{ctx}: updates out of order: {m}");
                        last_version = v;
                        r.updates += 1;
                    }
                    _ => panic!("{ctx}: unexpected message {m}"),
                }
            }
            Ok(Message::Close(frame)) => {
                r.close = Some(frame.map_or(1005, |f| u16::from(f.code)));
                return r;
            }
            Ok(Message::Ping(_) | Message::Pong(_)) => {}
            Ok(other) => panic!("{ctx}: unexpected message {other:?}"),
            Err(e) => panic!(
                "{ctx}: the socket ended without a close frame after {} error replies: {e}",
                r.errors
            ),
        }
    }
    r
}

/// One session: connect, read the snapshot, send this kind's frames, check every reply, and
/// leave the way the kind (or chance) says.
fn session(port: u16, kind: Kind, rng: &mut StdRng, tally: &Mutex<Tally>, ctx: &str) {
    let mut ws = connect(port);
    let first = ws.read().expect("snapshot");
    let first: Value = serde_json::from_str(first.to_text().unwrap()).unwrap();
    assert_eq!(first["type"], "snapshot", "{ctx}: {first}");

    let frames = frames_for(kind, rng);
    let (errors, close) = expected(&frames);
    let started = Instant::now();
    for f in &frames {
        // After the server has closed the socket, a send may fail: that is the point.
        if ws.send(f.message()).is_err() {
            assert!(close.is_some(), "{ctx}: a send failed on an open socket");
            break;
        }
    }
    if started.elapsed() > Duration::from_secs(8) {
        // The budget window is 10 s; a machine this slow may have started a new one.
        println!("{ctx}: sending took {:?}; not counting", started.elapsed());
        return;
    }
    let r = read_replies(&mut ws, errors, close.is_some(), ctx);
    assert_eq!(
        (r.errors, r.close),
        (errors, close),
        "{ctx}: {} frames of {:?} bytes",
        frames.len(),
        frames.iter().map(Frame::len).collect::<Vec<_>>()
    );
    let mut t = tally.lock().unwrap();
    t.sessions += 1;
    t.frames += frames.len() as u64;
    t.errors += r.errors as u64;
    t.updates_seen += r.updates;
    match close {
        Some(1008) => t.closed_1008 += 1,
        Some(_) => t.closed_1009 += 1,
        None => {}
    }
    if close.is_some() {
        return;
    }
    // Still open: leave.
    let how = match kind {
        Kind::AbortMidFrame => 2,
        Kind::Stall => 3,
        _ => rng.random_range(0..4),
    };
    match how {
        0 => {
            // A proper close; the server echoes the code (1000 for a close without one).
            let (frame, echo) = match rng.random_range(0..3) {
                0 => (None, 1000),
                1 => (
                    Some(CloseFrame {
                        code: CloseCode::Normal,
                        reason: "bye".into(),
                    }),
                    1000,
                ),
                _ => {
                    let code = rng.random_range(4000..=4999);
                    (
                        Some(CloseFrame {
                            code: CloseCode::from(code),
                            reason: "".into(),
                        }),
                        code,
                    )
                }
            };
            drop(t);
            ws.close(frame).expect("close");
            let r = read_replies(&mut ws, 0, true, ctx);
            assert_eq!(r.close, Some(echo), "{ctx}: the close was not echoed");
            tally.lock().unwrap().client_closes += 1;
        }
        1 => {
            // Gone without a word.
            let _ = ws.get_mut().shutdown(Shutdown::Both);
            t.dropped += 1;
        }
        _ => {
            // A frame cut off in the middle; held for a while if stalling, then gone.
            let len = rng.random_range(1..=3 * MAX_FRAME);
            let sent = rng.random_range(0..len);
            let binary = rng.random_bool(0.5);
            let bytes = cut_frame(rng, binary, len, sent);
            let cut = rng.random_range(1..=bytes.len());
            let stream = ws.get_mut();
            let _ = stream.write_all(&bytes[..cut]);
            let _ = stream.flush();
            t.cut_mid_frame += 1;
            drop(t);
            if how == 3 {
                std::thread::sleep(Duration::from_millis(rng.random_range(200..=1500)));
            }
            let _ = ws.get_mut().shutdown(Shutdown::Both);
        }
    }
}

// ---------------------------------------------------------------------------------------------

/// Raises the flags when the test ends, also when it fails half-way, so no thread runs on.
struct Finish(Vec<Arc<AtomicBool>>);

impl Drop for Finish {
    fn drop(&mut self) {
        for flag in &self.0 {
            flag.store(true, Ordering::SeqCst);
        }
    }
}

#[test]
fn hostile_sockets_change_nothing_and_reach_nobody() {
    let started = Instant::now();
    let seed = seed("WS_FUZZ_SEED");
    let server = Server::start(Options::default());
    let port = server.port;
    let base = server.base.clone();
    let v0 = server.value();
    let (value0, version0) = (
        v0["value"].as_i64().unwrap(),
        v0["version"].as_u64().unwrap(),
    );

    // The good client: a snapshot, then every version, once, in order.
    let mut good = server.socket("");
    good.set_timeout(WAIT);
    let snap = good.next_json();
    assert_eq!(snap["type"], "snapshot");
    assert_eq!(snap["version"], version0);
    let good = std::thread::spawn(move || {
        let mut got = Vec::new();
        while got.len() < CHANGES {
            let m = good.next_json();
            assert_eq!(m["type"], "update", "the good client got {m}");
            let v = m["version"].as_u64().unwrap();
            assert_eq!(
                v,
                version0 + got.len() as u64 + 1,
                "gap or duplicate at {m}"
            );
            got.push(m);
        }
        (good, got)
    });

    // `changes_done` ends the hostile clients, `done` the health checks after them.
    let changes_done = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicBool::new(false));
    let _finish = Finish(vec![changes_done.clone(), done.clone()]);

    // /api/health, all along.
    let polls = Arc::new(AtomicU64::new(0));
    let health = {
        let (done, polls, base) = (done.clone(), polls.clone(), base.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                let r = try_request(&base, "GET", "/api/health", &[], None).expect("health");
                assert_eq!(r.status, 200, "health: {}", r.body);
                assert_eq!(r.json()["status"], "ok");
                polls.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };

    // The hostile clients: session after session, each kind in turn, until the changes are
    // all applied and each has run its share.
    let tally = Arc::new(Mutex::new(Tally::default()));
    let hostile: Vec<_> = (0..HOSTILE_CLIENTS)
        .map(|h| {
            let (done, tally) = (changes_done.clone(), tally.clone());
            let seed = seed.wrapping_add(h + 1);
            std::thread::spawn(move || {
                let mut rng = StdRng::seed_from_u64(seed);
                let mut n = 0;
                while n < MIN_SESSIONS || !done.load(Ordering::SeqCst) {
                    let kind = KINDS[(h as usize + n) % KINDS.len()];
                    let ctx = format!("hostile client {h}, session {n} ({kind:?})");
                    session(port, kind, &mut rng, &tally, &ctx);
                    n += 1;
                }
            })
        })
        .collect();

    // The changes, over HTTP.
    let mut rng = StdRng::seed_from_u64(seed);
    let mut answers = Vec::new();
    for _ in 0..CHANGES {
        let amount = rng.random_range(1..=9);
        let r = server.increment(&key("ws-fuzz"), amount);
        assert_eq!(r.status, 200, "{}", r.body);
        answers.push(r.json());
        std::thread::sleep(Duration::from_millis(rng.random_range(20..=120)));
    }
    changes_done.store(true, Ordering::SeqCst);
    let hostile_result: Vec<_> = hostile.into_iter().map(|h| h.join()).collect();
    done.store(true, Ordering::SeqCst);
    health
        .join()
        .expect("/api/health failed during the fuzzing");
    for h in hostile_result {
        h.expect("a hostile client saw something it must not");
    }
    let (good_socket, got) = good.join().expect("the good client missed something");

    // Exactly the HTTP changes, nothing from the sockets.
    let sum: i64 = answers.iter().map(|a| a["amount"].as_i64().unwrap()).sum();
    let now = server.value();
    assert_eq!(now["version"], version0 + CHANGES as u64);
    assert_eq!(now["value"], value0 + sum);
    let audit = server.audit_all();
    assert_eq!(audit.len() as u64, version0 + CHANGES as u64);
    for (u, a) in got.iter().zip(&answers) {
        for k in ["value", "version", "previous_value", "operation", "amount"] {
            assert_eq!(u[k], a[k], "{k}: update {u} vs answer {a}");
        }
        assert_eq!(
            audit[a["version"].as_u64().unwrap() as usize - 1]["request_id"],
            a["request_id"]
        );
    }

    // Every hostile socket is gone; only the good one is left.
    let deadline = Instant::now() + WAIT;
    let sockets = loop {
        let n = server.health()["sockets"].as_u64().unwrap();
        if n == 1 || Instant::now() > deadline {
            break n;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(sockets, 1, "hostile sockets linger on the server");
    drop(good_socket);

    let t = tally.lock().unwrap();
    println!(
        "{t:?}; {} health polls; {CHANGES} changes; {:?}",
        polls.load(Ordering::Relaxed),
        started.elapsed()
    );
    assert!(
        t.errors > 0 && t.closed_1008 > 0 && t.closed_1009 > 0,
        "{t:?}"
    );
    assert!(t.dropped + t.cut_mid_frame > 0, "{t:?}");
}
