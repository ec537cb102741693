//! `GET /api/events` (Server-Sent Events) against the real runtime: a snapshot first, then one
//! `update` per committed change in version order with `id: <version>` and the socket's JSON;
//! resumes with `Last-Event-ID` or `?since=` with no gap and no duplicate, across a relay reset
//! and a counter restart; a `retry:` hint and comment heartbeats; the per-client socket cap
//! counts streams; anyone may read it from any origin (changes still need ALLOWED_ORIGINS);
//! without relays the edge follows the counter for the stream, with the same guarantees.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use common::changes::{expected_updates, join_all as join, keyed_increments};
use common::{key, shared, Options, Resp, Server, Socket};
use serde_json::Value;

const ADMIN: &str = "events-admin-token-0123456789abcdef";
const PER_CLIENT: usize = 3;
const SHARDS: u32 = 3;

fn server() -> std::sync::MutexGuard<'static, Server> {
    shared(|| Options {
        vars: vec![
            ("RELAY_SHARDS".into(), SHARDS.to_string()),
            ("ADMIN_TOKEN".into(), ADMIN.into()),
            ("ADMIN_TEST_HOOKS".into(), "1".into()),
            ("WS_CONNECTIONS_PER_CLIENT".into(), PER_CLIENT.to_string()),
        ],
        ..Options::default()
    })
}

/// One thing read from a stream.
#[derive(Clone, Debug, PartialEq)]
enum Item {
    Event { kind: String, id: u64, data: Value },
    Comment(String),
    Retry(u64),
}

/// A blocking client of one event stream: a thread reads and parses it (HTTP/1.1 chunked,
/// then the event-stream format) and hands over what it reads.
struct Stream {
    items: Receiver<Item>,
    tcp: TcpStream,
    headers: Vec<(String, String)>,
}

impl Stream {
    /// Opens `/api/events` + `query` with `headers`; a refusal comes back as the response.
    fn open(port: u16, query: &str, headers: &[(&str, &str)]) -> Result<Stream, Resp> {
        let tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let mut req =
            format!("GET /api/events{query} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        (&tcp).write_all(req.as_bytes()).expect("write");
        tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut r = BufReader::new(tcp.try_clone().unwrap());
        let mut line = String::new();
        r.read_line(&mut line).expect("status line");
        let status: u16 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        let mut headers = Vec::new();
        loop {
            line.clear();
            r.read_line(&mut line).expect("header");
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let (k, v) = l.split_once(':').unwrap();
            headers.push((k.trim().to_lowercase(), v.trim().to_string()));
        }
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let chunked = header("transfer-encoding").is_some_and(|v| v == "chunked");
        if status != 200 {
            let mut body = Vec::new();
            if chunked {
                Chunked::new(r).read_to_end(&mut body).unwrap();
            } else {
                let n: usize = header("content-length").unwrap().parse().unwrap();
                body.resize(n, 0);
                r.read_exact(&mut body).unwrap();
            }
            let _ = tcp.shutdown(Shutdown::Both);
            return Err(Resp {
                status,
                headers,
                body: String::from_utf8_lossy(&body).into_owned(),
            });
        }
        assert!(chunked, "a stream is chunked: {headers:?}");
        tcp.set_read_timeout(None).unwrap();
        let (tx, items) = channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(Chunked::new(r));
            let (mut kind, mut id, mut data) = (None::<String>, None::<u64>, Vec::<String>::new());
            let mut line = String::new();
            loop {
                line.clear();
                match lines.read_line(&mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                let l = line.strip_suffix('\n').unwrap_or(&line);
                let item = if l.is_empty() {
                    if data.is_empty() {
                        continue;
                    }
                    let text = data.join("\n");
                    data.clear();
                    Item::Event {
                        kind: kind.take().unwrap_or_else(|| "message".into()),
                        id: id.take().expect("every event has an id"),
                        data: serde_json::from_str(&text).expect("data is JSON"),
                    }
                } else if let Some(c) = l.strip_prefix(':') {
                    Item::Comment(c.trim().to_string())
                } else {
                    let (field, value) = l.split_once(": ").unwrap_or((l, ""));
                    match field {
                        "event" => kind = Some(value.into()),
                        "id" => id = Some(value.parse().expect("a numeric id")),
                        "data" => data.push(value.into()),
                        "retry" => {
                            if tx.send(Item::Retry(value.parse().unwrap())).is_err() {
                                return;
                            }
                        }
                        other => panic!("unknown field {other:?}"),
                    }
                    continue;
                };
                if tx.send(item).is_err() {
                    return;
                }
            }
        });
        Ok(Stream {
            items,
            tcp,
            headers,
        })
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The next item within `within`; `None` when the stream ended or nothing came.
    fn next_within(&self, within: Duration) -> Option<Item> {
        self.items.recv_timeout(within).ok()
    }

    /// The next event (comments and hints skipped); `None` when the stream ended or nothing
    /// came for 20 s.
    fn next_event(&self) -> Option<(String, u64, Value)> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.items.recv_timeout(left) {
                Ok(Item::Event { kind, id, data }) => return Some((kind, id, data)),
                Ok(_) => continue,
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                    return None
                }
            }
        }
    }

    /// Whether the stream ended (the server closed it) within `within`.
    fn ended_within(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.items.recv_timeout(left) {
                Ok(_) => continue,
                Err(RecvTimeoutError::Disconnected) => return true,
                Err(RecvTimeoutError::Timeout) => return false,
            }
        }
    }

    fn close(self) {
        let _ = self.tcp.shutdown(Shutdown::Both);
    }
}

/// HTTP/1.1 chunked transfer decoding over a reader.
struct Chunked<R> {
    inner: R,
    left: usize,
    done: bool,
}

impl<R: BufRead> Chunked<R> {
    fn new(inner: R) -> Self {
        Chunked {
            inner,
            left: 0,
            done: false,
        }
    }
}

impl<R: BufRead> Read for Chunked<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.done {
            return Ok(0);
        }
        if self.left == 0 {
            let mut line = String::new();
            if self.inner.read_line(&mut line)? == 0 {
                return Ok(0);
            }
            if line.trim().is_empty() {
                // The CRLF after the previous chunk.
                line.clear();
                if self.inner.read_line(&mut line)? == 0 {
                    return Ok(0);
                }
            }
            let size = line.trim().split(';').next().unwrap_or("");
            self.left = usize::from_str_radix(size, 16)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
            if self.left == 0 {
                self.done = true;
                return Ok(0);
            }
        }
        let n = buf.len().min(self.left);
        let n = self.inner.read(&mut buf[..n])?;
        if n == 0 {
            return Ok(0);
        }
        self.left -= n;
        Ok(n)
    }
}

fn auth() -> String {
    format!("Bearer {ADMIN}")
}

fn admin_post(s: &Server, path: &str) -> Value {
    let a = auth();
    let r = s.request("POST", path, &[("authorization", &a)], None);
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    r.json()
}

fn relays(s: &Server) -> Value {
    let a = auth();
    let r = s.request("GET", "/api/admin/relays", &[("authorization", &a)], None);
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

fn ip(i: usize) -> String {
    format!("10.77.{}.{}", (i / 256) % 256, i % 256)
}

fn open(s: &Server, ip: &str, query: &str, extra: &[(&str, &str)]) -> Stream {
    let mut h = vec![("cf-connecting-ip", ip)];
    h.extend_from_slice(extra);
    Stream::open(s.port, query, &h).unwrap_or_else(|r| panic!("refused: {} {}", r.status, r.body))
}

/// `n` increments, applied one after another; returns the last version.
fn increments(s: &Server, n: usize, tag: &str) -> u64 {
    let mut last = 0;
    for i in 0..n {
        let k = key(&format!("{tag}-{i}"));
        let r = s.increment(&k, 1);
        assert_eq!(r.status, 200, "{}", r.body);
        last = r.json()["version"].as_u64().unwrap();
    }
    last
}

/// A reader that resumes with `Last-Event-ID` whenever its stream ends, as `EventSource`
/// does, and checks that every event is exactly the next version.
struct Reader {
    ip: String,
    stream: Option<Stream>,
    last: u64,
    resumes: usize,
}

impl Reader {
    fn new(s: &Server, ip: String) -> Reader {
        let stream = open(s, &ip, "", &[]);
        let (kind, id, data) = stream.next_event().expect("a snapshot");
        assert_eq!(kind, "snapshot");
        assert_eq!(data["version"], id);
        Reader {
            ip,
            stream: Some(stream),
            last: id,
            resumes: 0,
        }
    }

    fn read_until(&mut self, s: &Server, until: u64, want: &BTreeMap<u64, Value>, resume: bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.last < until {
            assert!(
                Instant::now() < deadline,
                "{} stuck at {}",
                self.ip,
                self.last
            );
            let Some((kind, id, data)) = self.stream.as_ref().and_then(|st| st.next_event()) else {
                assert!(resume, "{}: stream ended at {}", self.ip, self.last);
                if let Some(old) = self.stream.take() {
                    old.close();
                }
                std::thread::sleep(Duration::from_millis(100));
                let last = self.last.to_string();
                if let Ok(st) = Stream::open(
                    s.port,
                    "",
                    &[("cf-connecting-ip", &self.ip), ("last-event-id", &last)],
                ) {
                    self.stream = Some(st);
                    self.resumes += 1;
                }
                continue;
            };
            assert_eq!(kind, "update", "{}: {data}", self.ip);
            assert_eq!(id, self.last + 1, "{}: gap or duplicate: {data}", self.ip);
            assert_eq!(data["version"], id);
            if let Some(e) = want.get(&id) {
                assert_eq!(&data, e, "{}: not the committed change", self.ip);
            }
            self.last = id;
        }
    }

    fn close(self) {
        if let Some(st) = self.stream {
            st.close();
        }
    }
}

#[test]
fn a_snapshot_then_every_update_in_order_with_its_version_as_id() {
    let s = server();
    let st = open(&s, &ip(1), "", &[]);
    assert_eq!(
        st.header("content-type"),
        Some("text/event-stream; charset=utf-8")
    );
    assert_eq!(st.header("cache-control"), Some("no-store"));
    assert_eq!(st.header("access-control-allow-origin"), Some("*"));
    // The reconnect hint comes first.
    assert_eq!(
        st.next_within(Duration::from_secs(10)),
        Some(Item::Retry(2000))
    );
    let (kind, id, snap) = st.next_event().unwrap();
    assert_eq!(kind, "snapshot");
    assert_eq!(snap["type"], "snapshot");
    assert_eq!(snap["version"], id);
    assert_eq!(snap["value"], s.value()["value"]);
    let last = increments(&s, 5, "order");
    let want = expected_updates(&s);
    for v in id + 1..=last {
        let (kind, got, data) = st.next_event().expect("an update");
        assert_eq!((kind.as_str(), got), ("update", v));
        assert_eq!(&data, &want[&v], "the socket's message, byte for byte");
    }
    // The same messages a socket gets.
    let mut sock = Socket::connect(
        &format!("ws://127.0.0.1:{}/api/ws?since={id}", s.port),
        &[("cf-connecting-ip", &ip(2))],
    );
    for v in id + 1..=last {
        assert_eq!(sock.next_json(), want[&v]);
    }
    sock.close();
    st.close();
}

#[test]
fn a_stream_resumes_with_last_event_id_or_since_without_gap_or_duplicate() {
    let s = server();
    let who = ip(10);
    let st = open(&s, &who, "", &[]);
    let (_, start, _) = st.next_event().unwrap();
    let seen = increments(&s, 2, "resume-a");
    assert_eq!(st.next_event().unwrap().1, start + 1);
    st.close();
    // Missed while away: exactly these come first, then the live ones.
    let missed = increments(&s, 3, "resume-b");
    let id = (start + 1).to_string();
    // Each stream from its own client: a closed stream counts against its client's cap until
    // the relay learns that it is gone (its next writes fail).
    for (n, (query, headers)) in [
        ("".to_string(), vec![("last-event-id", id.as_str())]),
        (format!("?since={}", start + 1), vec![]),
        // EventSource reconnects to the same URL: Last-Event-ID is the newer word.
        ("?since=0".to_string(), vec![("last-event-id", id.as_str())]),
    ]
    .into_iter()
    .enumerate()
    {
        let now = s.value()["version"].as_u64().unwrap();
        let want = expected_updates(&s);
        let st = open(&s, &ip(11 + n), &query, &headers);
        for v in start + 2..=now {
            let (kind, got, data) = st.next_event().unwrap();
            assert_eq!((kind.as_str(), got), ("update", v), "{query} {headers:?}");
            assert_eq!(data, want[&v]);
        }
        let live = increments(&s, 1, "resume-live");
        let (kind, got, _) = st.next_event().unwrap();
        assert_eq!((kind.as_str(), got), ("update", live));
        // No duplicate and nothing else before it.
        st.close();
        assert!(seen < missed && missed < live);
    }
    // Up to date: nothing is replayed; the next change is the next event.
    let now = s.value()["version"].as_u64().unwrap();
    let st = open(&s, &ip(14), &format!("?since={now}"), &[]);
    let live = increments(&s, 1, "resume-now");
    assert_eq!(st.next_event().unwrap().1, live);
    st.close();
    // Ahead of the counter (a reset service): a snapshot, as the socket does.
    let st = open(&s, &ip(15), "", &[("last-event-id", "9007199254740991")]);
    let (kind, id, data) = st.next_event().unwrap();
    assert_eq!(kind, "snapshot");
    assert_eq!(id, s.value()["version"].as_u64().unwrap());
    assert_eq!(data["version"], id);
    st.close();
}

#[test]
fn streams_resume_across_a_relay_reset_and_a_counter_restart() {
    let s = server();
    let mut readers: Vec<Reader> = (0..12).map(|i| Reader::new(&s, ip(100 + i))).collect();
    let running = changes(&s.base, 2, 20, "reset");
    std::thread::sleep(Duration::from_millis(300));
    // Reset the relay with the most streams mid-stream: its readers resume.
    let list = relays(&s);
    let busiest = list["relays"]
        .as_array()
        .unwrap()
        .iter()
        .max_by_key(|r| r["streams"].as_u64().unwrap())
        .unwrap()
        .clone();
    assert!(busiest["streams"].as_u64().unwrap() > 0, "{list}");
    let name = busiest["relay"].as_str().unwrap().to_string();
    admin_post(&s, &format!("/api/admin/relays/reset?relay={name}"));
    join(running);
    join(changes(&s.base, 2, 5, "after-reset"));
    let want = expected_updates(&s);
    let last = *want.keys().last().unwrap();
    for r in &mut readers {
        r.read_until(&s, last, &want, true);
    }
    assert!(
        readers.iter().any(|r| r.resumes > 0),
        "no reader was on the reset relay"
    );
    // The counter restarts under the relays: the streams stay open and miss nothing.
    let running = changes(&s.base, 2, 15, "restart");
    std::thread::sleep(Duration::from_millis(300));
    admin_post(&s, "/api/admin/counter/restart");
    join(running);
    let want = expected_updates(&s);
    let last = *want.keys().last().unwrap();
    for r in &mut readers {
        r.read_until(&s, last, &want, false);
    }
    for r in readers {
        r.close();
    }
}

#[test]
fn a_quiet_stream_gets_comment_heartbeats() {
    let s = server();
    let st = open(&s, &ip(20), "", &[]);
    st.next_event().unwrap();
    let started = Instant::now();
    loop {
        match st.next_within(Duration::from_secs(25)) {
            Some(Item::Comment(c)) if c == "heartbeat" => break,
            Some(Item::Event { .. }) | Some(Item::Comment(_)) | Some(Item::Retry(_)) => continue,
            None => panic!("no heartbeat within 25 s"),
        }
    }
    assert!(started.elapsed() < Duration::from_secs(30));
    st.close();
}

#[test]
fn the_per_client_socket_cap_counts_event_streams() {
    let s = server();
    let who = ip(30);
    let mut streams: Vec<Stream> = (0..PER_CLIENT - 1)
        .map(|_| {
            let st = open(&s, &who, "", &[]);
            st.next_event().unwrap();
            st
        })
        .collect();
    let url = format!("ws://127.0.0.1:{}/api/ws", s.port);
    let mut sock = Socket::connect(&url, &[("cf-connecting-ip", &who)]);
    assert_eq!(sock.next_json()["type"], "snapshot");
    // At the cap: neither another stream nor another socket.
    let refused = match Stream::open(s.port, "", &[("cf-connecting-ip", &who)]) {
        Err(r) => r,
        Ok(_) => panic!("a stream over the cap"),
    };
    refused.problem(429);
    assert!(refused.header("retry-after").is_some());
    let refused = Socket::try_connect(&url, &[("cf-connecting-ip", &who)]);
    assert_eq!(refused.err().as_deref(), Some("status 429"));
    // Another client is not affected.
    let other = open(&s, &ip(31), "", &[]);
    other.next_event().unwrap();
    other.close();
    // A stream closed frees its place once the relay learns that it is gone: when writes to
    // it fail (an update or a heartbeat, the second or third after it closed).
    streams.pop().unwrap().close();
    increments(&s, 2, "cap-free");
    let deadline = Instant::now() + Duration::from_secs(60);
    let again = loop {
        match Stream::open(s.port, "", &[("cf-connecting-ip", &who)]) {
            Ok(st) => break st,
            Err(r) => {
                assert_eq!(r.status, 429, "{}", r.body);
                assert!(Instant::now() < deadline, "the closed stream still counts");
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    };
    again.next_event().unwrap();
    again.close();
    sock.close();
    for st in streams {
        st.close();
    }
}

#[test]
fn anyone_may_read_from_any_origin_but_changes_keep_their_origin_rule() {
    let s = server();
    let origin = "https://elsewhere.example";
    let st = open(&s, &ip(40), "", &[("origin", origin)]);
    assert_eq!(st.header("access-control-allow-origin"), Some("*"));
    st.next_event().unwrap();
    st.close();
    let pre = s.request(
        "OPTIONS",
        "/api/events",
        &[
            ("origin", origin),
            ("access-control-request-method", "GET"),
            ("access-control-request-headers", "last-event-id"),
        ],
        None,
    );
    assert_eq!(pre.status, 204, "{}", pre.body);
    assert_eq!(pre.header("access-control-allow-origin"), Some("*"));
    assert!(pre
        .header("access-control-allow-headers")
        .unwrap()
        .contains("Last-Event-ID"));
    // Changes and sockets from that origin are still refused.
    s.request("POST", "/api/increment", &[("origin", origin)], None)
        .problem(403);
    let sock = Socket::try_connect(
        &format!("ws://127.0.0.1:{}/api/ws", s.port),
        &[("origin", origin)],
    );
    assert_eq!(sock.err().as_deref(), Some("status 403"));
}

#[test]
fn bad_input_is_a_problem_and_opens_nothing() {
    let s = server();
    for (query, headers) in [
        ("?since=abc", vec![]),
        ("?since=-1", vec![]),
        ("?since=9007199254740992", vec![]),
        ("?x=1", vec![]),
        ("?since=1&since=2", vec![]),
        ("", vec![("last-event-id", "x")]),
        ("", vec![("last-event-id", "1.5")]),
        ("", vec![("last-event-id", "-3")]),
    ] {
        let mut h = headers.clone();
        h.push(("cf-connecting-ip", "10.77.200.1"));
        match Stream::open(s.port, query, &h) {
            Err(r) => {
                r.problem(400);
            }
            Ok(_) => panic!("{query} {headers:?} opened a stream"),
        }
    }
    let r = s.request("HEAD", "/api/events", &[], None);
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, OPTIONS"));
    s.request("POST", "/api/events", &[], None).problem(405);
}

/// `RELAY_SOCKETS_PER_RELAY=0`: the edge follows the counter for the stream: the same start,
/// the counter's cap, and a stream that ends when the counter restarts and resumes with
/// `Last-Event-ID` with no gap.
#[test]
fn without_relays_the_edge_follows_the_counter_for_the_stream() {
    let s = Server::start(Options {
        vars: vec![
            ("RELAY_SOCKETS_PER_RELAY".into(), "0".into()),
            ("ADMIN_TOKEN".into(), ADMIN.into()),
            ("ADMIN_TEST_HOOKS".into(), "1".into()),
            ("WS_CONNECTIONS_PER_CLIENT".into(), "2".into()),
        ],
        ..Options::default()
    });
    let who = ip(50);
    let mut reader = Reader::new(&s, who.clone());
    let second = open(&s, &who, "", &[]);
    second.next_event().unwrap();
    let health = s.health();
    assert_eq!(health["sockets"], 2, "the counter holds them: {health}");
    match Stream::open(s.port, "", &[("cf-connecting-ip", &who)]) {
        Err(r) => {
            r.problem(429);
        }
        Ok(_) => panic!("a stream over the cap"),
    }
    second.close();
    let last = increments(&s, 3, "no-relays");
    let want = expected_updates(&s);
    reader.read_until(&s, last, &want, false);
    // The counter restarts: the stream ends, and resumes where it left off.
    admin_post(&s, "/api/admin/counter/restart");
    assert!(reader
        .stream
        .as_ref()
        .unwrap()
        .ended_within(Duration::from_secs(10)));
    let last = increments(&s, 3, "no-relays-after");
    let want = expected_updates(&s);
    reader.read_until(&s, last, &want, true);
    assert!(reader.resumes > 0);
    reader.close();
}

/// `threads` clients applying `each` keyed changes each, from the test's own address.
fn changes(base: &str, threads: usize, each: usize, tag: &str) -> Vec<std::thread::JoinHandle<()>> {
    keyed_increments(base, threads, each, tag, |_, _| None)
}
