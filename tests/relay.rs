//! The relay tier against the real runtime: browsers' sockets spread over many relays, each
//! relay holding one upstream socket to the counter.
//!
//! With 50 sockets per relay and 12 starting relays per region, 500 sockets land on at least 10
//! relays; every socket gets every update exactly once, in version order, while many clients
//! change the counter at once, and the counter holds relay connections only. Faults: a relay reset
//! mid-stream (its browsers resume with `since`: no gap, no duplicate), the counter restarted
//! under the relays (they resume; browsers keep their sockets and see no gap), an update
//! withheld from one relay (it fills the gap before forwarding anything later). Nearby reads:
//! `min_version` gives read-your-writes, and a nearby read never shows a version the counter
//! has not committed. The watchdog: a silent (half-open) upstream is noticed and resumed; a
//! relay rebuilt by the runtime without its memory closes its browsers with 1012 and they
//! resume. An idle relay closes its upstream, and its nearby reads stay correct after. The
//! per-client socket cap holds when a client's home relay fills up and empties again; a client
//! whose relays are all full gets 503. Growth past the starting relays: tests/relay_growth.rs.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::changes::{expected_updates, join_all as join, keyed_increments};
use common::{key, shared, try_request, Options, Server, Socket};
use serde_json::Value;

const ADMIN: &str = "relay-admin-token-0123456789abcdef";
const PER_RELAY: usize = 50;
const SHARDS: u32 = 12;
const PER_CLIENT: usize = 8;
/// Locally `request.cf` has no continent: every caller's region is `enam`.
const REGION: &str = "enam";

/// The suite's one server, shared by its tests one at a time.
fn server() -> std::sync::MutexGuard<'static, Server> {
    shared(options)
}

fn options() -> Options {
    Options {
        vars: vec![
            ("RELAY_SOCKETS_PER_RELAY".into(), PER_RELAY.to_string()),
            ("RELAY_SHARDS".into(), SHARDS.to_string()),
            ("ADMIN_TOKEN".into(), ADMIN.into()),
            ("ADMIN_TEST_HOOKS".into(), "1".into()),
            ("WS_CONNECTIONS_PER_CLIENT".into(), PER_CLIENT.to_string()),
            ("RELAY_WATCHDOG_SECONDS".into(), "1".into()),
            ("RELAY_IDLE_SECONDS".into(), "4".into()),
        ],
        ..Options::default()
    }
}

fn auth() -> String {
    format!("Bearer {ADMIN}")
}

/// `GET /api/admin/relays`.
fn relays(s: &Server) -> Value {
    let a = auth();
    let r = s.request("GET", "/api/admin/relays", &[("authorization", &a)], None);
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

fn admin_post(s: &Server, path: &str) -> Value {
    let a = auth();
    let r = s.request("POST", path, &[("authorization", &a)], None);
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    r.json()
}

/// The first log line that satisfies `pred`, waiting for it (the runtime writes its log
/// asynchronously) up to 10 s.
fn log_line(s: &Server, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(l) = s.log_lines().into_iter().find(|l| pred(l)) {
            return l;
        }
        assert!(Instant::now() < deadline, "no log line: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A client address of its own per index, so sockets spread over the relays.
fn ip(i: usize) -> String {
    format!("10.{}.{}.{}", 20 + i / 65536, (i / 256) % 256, i % 256)
}

fn open(s: &Server, ip: &str, query: &str) -> Socket {
    let url = format!("ws://127.0.0.1:{}/api/ws{query}", s.port);
    let mut sock = Socket::connect(&url, &[("cf-connecting-ip", ip)]);
    sock.set_timeout(Duration::from_secs(20));
    sock
}

/// Changes from `threads` clients at once, `each` per client, from addresses of their own; a
/// change that meets the counter restarting is retried with the same key.
fn changes(base: &str, threads: usize, each: usize, tag: &str) -> Vec<std::thread::JoinHandle<()>> {
    keyed_increments(base, threads, each, tag, |t, i| {
        Some(format!("10.200.{t}.{}", i % 250))
    })
}

/// A browser that resumes with `since` whenever its socket drops, and checks that what it
/// receives is exactly the next version each time.
struct Browser {
    ip: String,
    sock: Option<Socket>,
    last: u64,
    reconnects: usize,
}

impl Browser {
    fn new(s: &Server, ip: String) -> Browser {
        let mut sock = open(s, &ip, "");
        let snap = sock.next_json();
        assert_eq!(snap["type"], "snapshot", "{snap}");
        Browser {
            ip,
            last: snap["version"].as_u64().unwrap(),
            sock: Some(sock),
            reconnects: 0,
        }
    }

    /// Reads until version `until`, reconnecting with `since` if `resume`; panics on a gap, a
    /// duplicate or a drop when `resume` is off.
    fn read_until(&mut self, s: &Server, until: u64, want: &BTreeMap<u64, Value>, resume: bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.last < until {
            assert!(
                Instant::now() < deadline,
                "{} stuck at {}",
                self.ip,
                self.last
            );
            let msg = self.sock.as_mut().and_then(|s| s.next_text());
            let Some(text) = msg else {
                assert!(resume, "{}: socket dropped at {}", self.ip, self.last);
                self.sock = None;
                std::thread::sleep(Duration::from_millis(50));
                let url = format!("ws://127.0.0.1:{}/api/ws?since={}", s.port, self.last);
                if let Ok(mut sock) = Socket::try_connect(&url, &[("cf-connecting-ip", &self.ip)]) {
                    sock.set_timeout(Duration::from_secs(20));
                    self.sock = Some(sock);
                    self.reconnects += 1;
                }
                continue;
            };
            let m: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
            assert_eq!(m["type"], "update", "{}: {m}", self.ip);
            let v = m["version"].as_u64().unwrap();
            assert_eq!(v, self.last + 1, "{}: gap or duplicate: {m}", self.ip);
            if let Some(e) = want.get(&v) {
                assert_eq!(&m, e, "{}: not the committed change", self.ip);
            }
            self.last = v;
        }
    }
}

#[test]
fn five_hundred_sockets_over_relays_get_every_update_once_in_order() {
    let s = server();
    const SOCKETS: usize = 500;
    // Open them from a few threads; each socket's first message is the snapshot.
    let base_port = s.port;
    let per = SOCKETS / 4;
    let opened: Vec<(String, Socket, u64)> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                (t * per..(t + 1) * per)
                    .map(|i| {
                        let ip = ip(i);
                        let url = format!("ws://127.0.0.1:{base_port}/api/ws");
                        let mut sock = Socket::connect(&url, &[("cf-connecting-ip", &ip)]);
                        sock.set_timeout(Duration::from_secs(30));
                        let snap = sock.next_json();
                        assert_eq!(snap["type"], "snapshot", "{snap}");
                        (ip, sock, snap["version"].as_u64().unwrap())
                    })
                    .collect::<Vec<_>>()
            })
        })
        .flat_map(|h| h.join().unwrap())
        .collect();
    assert_eq!(opened.len(), SOCKETS);
    let v0 = opened[0].2;
    assert!(opened.iter().all(|(_, _, v)| *v == v0));

    // Spread over at least 10 relays, none over its cap; the counter holds relays only.
    let list = relays(&s);
    let rows = list["relays"].as_array().unwrap();
    // (Other tests' relays may still be listed; their sockets are closed or closing.)
    let total: u64 = rows.iter().map(|r| r["sockets"].as_u64().unwrap()).sum();
    assert!(total >= SOCKETS as u64, "{list}");
    let holding = rows
        .iter()
        .filter(|r| r["sockets"].as_u64().unwrap() > 0)
        .count();
    assert!(holding >= 10, "{list}");
    for r in rows {
        assert!(r["sockets"].as_u64().unwrap() <= PER_RELAY as u64, "{r}");
        // (A relay without browsers may be closing its idle upstream.)
        if r["sockets"].as_u64().unwrap() > 0 {
            assert_eq!(r["upstream"], true, "{r}");
        }
    }
    let h = s.health();
    assert_eq!(h["sockets"], h["relays"], "{h}");
    assert!(h["relays"].as_u64().unwrap() >= holding as u64, "{h}");

    // 120 changes from 8 clients at once.
    join(changes(&s.base, 8, 15, "fan"));
    let want = expected_updates(&s);
    let last = *want.keys().last().unwrap();
    assert_eq!(last, v0 + 120);
    // A marker after everything: the next message on every socket must be exactly it.
    let marker = s.increment(&key("marker"), 7).json();
    let marker_v = marker["version"].as_u64().unwrap();
    for (ip, mut sock, _) in opened {
        for v in v0 + 1..=last {
            let m = sock.next_json();
            assert_eq!(m, want[&v], "{ip}: expected version {v}");
        }
        let m = sock.next_json();
        assert_eq!(m["version"], marker_v, "{ip}: something between: {m}");
        sock.close();
    }
    // Every relay is at the counter's version.
    std::thread::sleep(Duration::from_millis(200));
    for r in relays(&s)["relays"].as_array().unwrap() {
        assert_eq!(r["lag"], 0, "{r}");
    }
}

#[test]
fn a_reset_relay_s_browsers_resume_without_gap_or_duplicate() {
    let s = server();
    let mut browsers: Vec<Browser> = (0..40).map(|i| Browser::new(&s, ip(1000 + i))).collect();
    let start = browsers[0].last;
    let running = changes(&s.base, 2, 30, "reset");
    std::thread::sleep(Duration::from_millis(300));
    // Reset the relay with the most sockets, mid-stream.
    let list = relays(&s);
    let busiest = list["relays"]
        .as_array()
        .unwrap()
        .iter()
        .max_by_key(|r| r["sockets"].as_u64().unwrap())
        .unwrap()["relay"]
        .as_str()
        .unwrap()
        .to_string();
    admin_post(&s, &format!("/api/admin/relays/reset?relay={busiest}"));
    join(running);
    // More changes after the reset: on a fast machine the first ones may all have been
    // delivered before it, and only these make the reset relay's browsers resume.
    join(changes(&s.base, 2, 5, "after-reset"));
    let want = expected_updates(&s);
    let last = *want.keys().last().unwrap();
    assert!(last >= start + 70);
    for b in &mut browsers {
        b.read_until(&s, last, &want, true);
    }
    let resumed = browsers.iter().filter(|b| b.reconnects > 0).count();
    assert!(resumed > 0, "no browser was on the reset relay");
    log_line(&s, "relay reset requested", |l| {
        l["msg"] == "relay reset requested" && l["relay"] == busiest.as_str()
    });
    for b in browsers {
        if let Some(sock) = b.sock {
            sock.close();
        }
    }
}

#[test]
fn relays_resume_after_the_counter_restarts_and_browsers_see_no_gap() {
    let s = server();
    let mut browsers: Vec<Browser> = (0..30).map(|i| Browser::new(&s, ip(2000 + i))).collect();
    let running = changes(&s.base, 2, 25, "restart");
    std::thread::sleep(Duration::from_millis(300));
    admin_post(&s, "/api/admin/counter/restart");
    join(running);
    let want = expected_updates(&s);
    let last = *want.keys().last().unwrap();
    // Browsers keep their sockets (resume off: a drop fails the test) and miss nothing.
    for b in &mut browsers {
        b.read_until(&s, last, &want, false);
    }
    log_line(&s, "counter restart requested", |l| {
        l["msg"] == "counter restart requested"
    });
    log_line(&s, "the relays noticed the restart", |l| {
        l["msg"] == "relay upstream lost"
    });
    // Every relay is connected upstream again, at the counter's version.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let list = relays(&s);
        let rows = list["relays"].as_array().unwrap().clone();
        if !rows.is_empty() && rows.iter().all(|r| r["upstream"] == true && r["lag"] == 0) {
            break;
        }
        assert!(Instant::now() < deadline, "relays did not resume: {list}");
        std::thread::sleep(Duration::from_millis(200));
    }
    for b in browsers {
        if let Some(sock) = b.sock {
            sock.close();
        }
    }
}

#[test]
fn a_withheld_update_is_fetched_before_anything_later_is_forwarded() {
    let s = server();
    let mut b = Browser::new(&s, ip(3000));
    // The browser's relay: the one that now holds its client.
    let list = relays(&s);
    let region = list["relays"][0]["relay"]
        .as_str()
        .unwrap()
        .rsplit_once('-')
        .unwrap()
        .0
        .to_string();
    let shard = number_acidizer::core::relay::home(&b.ip, SHARDS);
    let name = format!("{region}-{shard}");
    admin_post(&s, &format!("/api/admin/relays/withhold?relay={name}"));
    let before = b.last;
    for i in 0..3 {
        s.increment(&key("withheld"), i + 1);
    }
    let want = expected_updates(&s);
    b.read_until(&s, before + 3, &want, false);
    let withheld = log_line(&s, "the relay withheld an update", |l| {
        l["msg"] == "relay withheld an update" && l["relay"] == name.as_str()
    });
    assert_eq!(withheld["version"], before + 1);
    let filled = log_line(&s, "the relay filled the gap", |l| {
        l["msg"] == "relay filled a gap" && l["relay"] == name.as_str()
    });
    assert_eq!(filled["after"], before);
    b.sock.unwrap().close();
}

#[test]
fn nearby_reads_give_read_your_writes_and_only_committed_versions() {
    let s = server();
    // Read your writes: every nearby read with min_version = the version just written sees
    // at least it.
    for i in 0..20 {
        let who = ip(4000 + i);
        let r = s.post(
            "/api/increment",
            &[("cf-connecting-ip", &who), ("idempotency-key", &key("ryw"))],
            "",
        );
        let v = r.json()["version"].as_u64().unwrap();
        let n = s.request(
            "GET",
            &format!("/api/value?consistency=nearby&min_version={v}"),
            &[("cf-connecting-ip", &who)],
            None,
        );
        assert_eq!(n.status, 200, "{}", n.body);
        let body = n.json();
        assert!(body["version"].as_u64().unwrap() >= v, "{body} after {v}");
        assert!(
            body["source"] == "relay" || body["source"] == "counter",
            "{body}"
        );
        assert_eq!(
            n.header("etag"),
            Some(format!("\"{}\"", body["version"]).as_str())
        );
    }
    // Under concurrent changes, every nearby read is a committed state: its (version, value)
    // is in the audit trail.
    let done = Arc::new(AtomicBool::new(false));
    let base = s.base.clone();
    let flag = done.clone();
    let reader = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut i = 0;
        while !flag.load(Ordering::Relaxed) || seen.len() < 20 {
            let who = format!("10.99.0.{}", i % 200);
            i += 1;
            let r = try_request(
                &base,
                "GET",
                "/api/value?consistency=nearby",
                &[("cf-connecting-ip", &who)],
                None,
            )
            .unwrap();
            assert_eq!(r.status, 200, "{}", r.body);
            seen.push(r.json());
        }
        seen
    });
    join(changes(&s.base, 4, 20, "nearby"));
    done.store(true, Ordering::Relaxed);
    let seen = reader.join().unwrap();
    let audit = expected_updates(&s);
    let committed = *audit.keys().last().unwrap();
    let relayed = seen.iter().filter(|r| r["source"] == "relay").count();
    assert!(relayed > 0, "no read came from a relay: {seen:?}");
    for r in &seen {
        let v = r["version"].as_u64().unwrap();
        assert!(v <= committed, "uncommitted version: {r}");
        if v > 0 {
            assert_eq!(r["value"], audit[&v]["value"], "{r}");
        }
    }
    // Bad parameters change nothing and are refused.
    s.get("/api/value?consistency=strong").problem(400);
    // A linearizable read always includes every acknowledged change: min_version is moot.
    assert_eq!(s.get("/api/value?min_version=3").status, 200);
    s.get("/api/value?consistency=nearby&min_version=x")
        .problem(400);
}

#[test]
fn admin_views_and_hooks_need_the_token() {
    let s = server();
    s.get("/api/admin/relays").problem(401);
    s.post("/api/admin/relays/reset?relay=enam-0", &[], "")
        .problem(401);
    s.post("/api/admin/counter/restart", &[], "").problem(401);
    let a = auth();
    let r = s.request(
        "POST",
        "/api/admin/relays/reset?relay=nowhere-1",
        &[("authorization", &a)],
        None,
    );
    r.problem(400);
}

/// The relay a client's sockets and nearby reads start at.
fn home(ip: &str) -> String {
    let shard = number_acidizer::core::relay::home(ip, SHARDS);
    format!("{REGION}-{shard}")
}

/// A relay's row in the admin view, if it is connected upstream.
fn relay_row(s: &Server, name: &str) -> Option<Value> {
    relays(s)["relays"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["relay"] == name)
        .cloned()
}

/// Waits up to 30 s for `pred` over the admin view of relay `name`.
fn wait_relay(s: &Server, name: &str, what: &str, pred: impl Fn(Option<&Value>) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let row = relay_row(s, name);
        if pred(row.as_ref()) {
            return;
        }
        assert!(Instant::now() < deadline, "{name}: {what}: {row:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_watchdog_resumes_a_silent_upstream_and_browsers_see_no_gap() {
    let s = server();
    let mut b = Browser::new(&s, ip(7000));
    let name = home(&b.ip);
    let silenced = admin_post(&s, &format!("/api/admin/relays/silence?relay={name}"));
    assert_eq!(silenced["silenced"], name.as_str(), "{silenced}");
    let before = b.last;
    for i in 0..5 {
        s.increment(&key("silent"), i + 1);
    }
    let want = expected_updates(&s);
    // The browser keeps its socket (a drop fails the test) and gets every change, in order:
    // without the watchdog the relay would never hear of them.
    b.read_until(&s, before + 5, &want, false);
    log_line(&s, "the relay was deaf", |l| {
        l["msg"] == "relay upstream silenced" && l["relay"] == name.as_str() && l["up"] == true
    });
    log_line(&s, "the watchdog noticed the silence", |l| {
        l["msg"] == "relay upstream lost" && l["relay"] == name.as_str() && l["why"] == "silent"
    });
    b.sock.unwrap().close();
}

#[test]
fn a_relay_rebuilt_without_its_memory_closes_its_browsers_with_1012_and_they_resume() {
    // A server of its own: the relay it severs stays without an upstream until the runtime
    // evicts it, which no other test's clients should meet.
    let s = Server::start(options());
    let who = ip(7100);
    let name = home(&who);
    let mut socks: Vec<(Socket, u64)> = (0..3)
        .map(|_| {
            let mut sock = open(&s, &who, "");
            let snap = sock.next_json();
            assert_eq!(snap["type"], "snapshot", "{snap}");
            (sock, snap["version"].as_u64().unwrap())
        })
        .collect();
    // The relay loses its upstream and runs nothing more; the runtime evicts it while it
    // keeps the browsers' (hibernatable) sockets, and the watchdog's alarm rebuilds it.
    admin_post(&s, &format!("/api/admin/relays/sever?relay={name}"));
    for i in 0..3 {
        s.increment(&key("severed"), i + 1);
    }
    for (sock, _) in &mut socks {
        sock.set_timeout(Duration::from_secs(60));
        assert_eq!(sock.close_code(), Some(1012));
    }
    let started = log_line(&s, "the rebuilt relay closed its orphans", |l| {
        l["msg"] == "relay started" && l["orphans_closed"].as_u64().unwrap_or(0) >= 3
    });
    assert!(started["orphans_closed"].as_u64().unwrap() <= PER_CLIENT as u64);
    // The rebuilt relay (it does not know its name) dials nothing and lets itself go.
    log_line(&s, "the rebuilt relay stopped its watchdog", |l| {
        l["msg"] == "relay rebuilt by its watchdog; nothing to watch"
    });
    // Each browser resumes with `since`: every change it missed, in order, once.
    let want = expected_updates(&s);
    let last = *want.keys().last().unwrap();
    for (_, since) in socks {
        let mut again = open(&s, &who, &format!("?since={since}"));
        for v in since + 1..=last {
            assert_eq!(again.next_json(), want[&v], "version {v}");
        }
        again.close();
    }
}

#[test]
fn an_idle_relay_closes_its_upstream_and_its_nearby_reads_stay_correct() {
    let s = server();
    let who = ip(7200);
    let name = home(&who);
    let nearby = |min: Option<u64>| {
        let q = min.map_or(String::new(), |v| format!("&min_version={v}"));
        let r = s.request(
            "GET",
            &format!("/api/value?consistency=nearby{q}"),
            &[("cf-connecting-ip", &who)],
            None,
        );
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()
    };
    // A nearby read and a browser make the relay connect upstream.
    let mut sock = open(&s, &who, "");
    let snap = sock.next_json();
    let first = nearby(None);
    assert!(first["version"].as_u64().unwrap() >= snap["version"].as_u64().unwrap());
    wait_relay(&s, &name, "connected", |r| {
        r.is_some_and(|r| r["upstream"] == true)
    });
    // While the browser stays, so does the upstream (well past the idle time).
    std::thread::sleep(Duration::from_secs(6));
    wait_relay(&s, &name, "still connected", |r| {
        r.is_some_and(|r| r["sockets"] == 1)
    });
    sock.close();
    // Without browsers or reads it closes its upstream: the counter no longer sends to it.
    wait_relay(&s, &name, "gone from the counter", |r| r.is_none());
    log_line(&s, "the relay went idle", |l| {
        l["msg"] == "relay idle; upstream closed" && l["relay"] == name.as_str()
    });
    let relays_now = s.health()["relays"].as_u64().unwrap();
    // Changes while it has no upstream.
    let mut v = 0;
    for i in 0..3 {
        v = s.increment(&key("idle"), i + 1).json()["version"]
            .as_u64()
            .unwrap();
    }
    // Read-your-writes on the relay that has to reconnect first.
    let r = nearby(Some(v));
    assert!(r["version"].as_u64().unwrap() >= v, "{r} after {v}");
    // A plain nearby read is never behind what the relay resumed to, and never ahead of
    // the counter: with nothing else changing, exactly the latest version.
    let r = nearby(None);
    assert_eq!(r["version"], v, "{r}");
    assert_eq!(r["value"], s.value()["value"], "{r}");
    wait_relay(&s, &name, "reconnected", |r| {
        r.is_some_and(|r| r["upstream"] == true && r["lag"] == 0)
    });
    assert!(s.health()["relays"].as_u64().unwrap() > relays_now);
}

#[test]
fn the_per_client_cap_holds_when_a_client_s_home_relay_fills_up_and_empties() {
    let s = server();
    let client = ip(8000);
    let name = home(&client);
    // Other clients whose sockets start at the same relay fill it.
    let fillers: Vec<String> = (8001..20_000)
        .map(ip)
        .filter(|i| home(i) == name)
        .take(PER_RELAY)
        .collect();
    assert_eq!(fillers.len(), PER_RELAY);
    let mut filler_socks: Vec<Socket> = fillers
        .iter()
        .map(|f| {
            let mut sock = open(&s, f, "");
            sock.next_json();
            sock
        })
        .collect();
    wait_relay(&s, &name, "full", |r| {
        r.is_some_and(|r| r["sockets"] == PER_RELAY as u64)
    });
    // The client's first sockets go past its full home relay (to its relay on the next level).
    let mut mine: Vec<Socket> = (0..5)
        .map(|_| {
            let mut sock = open(&s, &client, "");
            sock.next_json();
            sock
        })
        .collect();
    // The home relay empties partly: it has room again.
    for sock in filler_socks.drain(..10) {
        sock.close();
    }
    wait_relay(&s, &name, "has room", |r| {
        r.is_some_and(|r| r["sockets"].as_u64().unwrap() <= (PER_RELAY - 10) as u64)
    });
    // The client may open exactly PER_CLIENT sockets in all, wherever they land.
    let url = format!("ws://127.0.0.1:{}/api/ws", s.port);
    while mine.len() < PER_CLIENT {
        let mut sock = Socket::connect(&url, &[("cf-connecting-ip", &client)]);
        sock.next_json();
        mine.push(sock);
    }
    let refused = Socket::try_connect(&url, &[("cf-connecting-ip", &client)]);
    assert_eq!(refused.err().as_deref(), Some("status 429"));
    // The home relay passed the client on (it marked it), the edge counted the client's other
    // relays, and the home relay, the earliest with room, took the rest with that count.
    let row = relay_row(&s, &name).unwrap();
    assert_eq!(
        row["sockets"].as_u64().unwrap(),
        (PER_RELAY - 10 + PER_CLIENT - 5) as u64,
        "{row}"
    );
    for sock in mine.into_iter().chain(filler_socks) {
        sock.close();
    }
}

/// A region that starts with one relay and grows to at most four: levels `enam-0` and
/// `enam-1..=3`, so every client's walk is `enam-0` then one of the three. A server of its own.
#[test]
fn a_client_whose_relays_are_all_full_is_refused_and_its_home_takes_it_when_only_it_has_room() {
    const PER: usize = 10;
    let s = Server::start(Options {
        vars: vec![
            ("RELAY_SOCKETS_PER_RELAY".into(), PER.to_string()),
            ("RELAY_SHARDS".into(), "1".into()),
            ("RELAY_MAX_SHARDS".into(), "4".into()),
            ("ADMIN_TOKEN".into(), ADMIN.into()),
            ("RELAY_WATCHDOG_SECONDS".into(), "1".into()),
        ],
        ..Options::default()
    });
    let url = format!("ws://127.0.0.1:{}/api/ws", s.port);
    let walk_of =
        |who: &str| -> Vec<u32> { number_acidizer::core::relay::shard_order(who, 1, 4).collect() };
    let client = ip(40_000);
    let walk = walk_of(&client);
    assert_eq!(walk.len(), 2);
    assert_eq!(walk[0], 0);
    let second = format!("{REGION}-{}", walk[1]);
    // Clients with the same walk fill both of its relays: the home first, then the second.
    let same: Vec<String> = (30_000..40_000)
        .map(ip)
        .filter(|w| walk_of(w) == walk)
        .take(2 * PER + 1)
        .collect();
    assert_eq!(same.len(), 2 * PER + 1);
    let mut fillers: Vec<Socket> = same[..2 * PER]
        .iter()
        .map(|who| {
            let mut sock = Socket::connect(&url, &[("cf-connecting-ip", who)]);
            assert_eq!(sock.next_json()["type"], "snapshot");
            sock
        })
        .collect();
    wait_relay(&s, "enam-0", "full", |r| {
        r.is_some_and(|r| r["sockets"] == PER as u64)
    });
    wait_relay(&s, &second, "full", |r| {
        r.is_some_and(|r| r["sockets"] == PER as u64)
    });
    // Both relays of the walk are full: 503 (whatever room the region's other relays have),
    // and every relay the client passed marked it.
    let refused = Socket::try_connect(&url, &[("cf-connecting-ip", &same[2 * PER])]);
    assert_eq!(refused.err().as_deref(), Some("status 503"));
    let refused = Socket::try_connect(&url, &[("cf-connecting-ip", &client)]);
    assert_eq!(refused.err().as_deref(), Some("status 503"));
    // One socket leaves the home relay: it has room, the other relay of the walk is full.
    fillers.remove(0).close();
    wait_relay(&s, "enam-0", "one free place", |r| {
        r.is_some_and(|r| r["sockets"] == (PER - 1) as u64)
    });
    // The home relay passes the client on (it marked it), the other is full, so the edge comes
    // back to the home relay with the client's count from the other.
    let mut sock = Socket::connect(&url, &[("cf-connecting-ip", &client)]);
    assert_eq!(sock.next_json()["type"], "snapshot");
    wait_relay(&s, "enam-0", "full again", |r| {
        r.is_some_and(|r| r["sockets"] == PER as u64)
    });
    sock.close();
    for f in fillers {
        f.close();
    }
}

/// `acidizer_rate_limited_total{limit="sockets"}` from `GET /api/metrics`.
fn refused_sockets_metric(s: &Server) -> u64 {
    let a = auth();
    let r = s.request("GET", "/api/metrics", &[("authorization", &a)], None);
    assert_eq!(r.status, 200, "{}", r.body);
    let line = r
        .body
        .lines()
        .find_map(|l| l.strip_prefix("acidizer_rate_limited_total{limit=\"sockets\"} "))
        .unwrap_or_else(|| panic!("no refused sockets in the metrics:\n{}", r.body));
    line.parse().unwrap()
}

/// Waits until the metric has not moved for 2.5 s (a relay reports within about a second);
/// returns it.
fn settled_refusals(s: &Server) -> u64 {
    let mut last = refused_sockets_metric(s);
    loop {
        std::thread::sleep(Duration::from_millis(2500));
        let now = refused_sockets_metric(s);
        if now == last {
            return now;
        }
        last = now;
    }
}

#[test]
fn the_watchdog_reconnects_an_upstream_that_nothing_else_would_and_browsers_see_no_gap() {
    let s = server();
    let mut b = Browser::new(&s, ip(7300));
    let name = home(&b.ip);
    wait_relay(&s, &name, "connected", |r| {
        r.is_some_and(|r| r["upstream"] == true)
    });
    // The upstream closes and no reconnect is scheduled (as if that task were lost).
    let unlinked = admin_post(&s, &format!("/api/admin/relays/unlink?relay={name}"));
    assert_eq!(unlinked["unlinked"], name.as_str(), "{unlinked}");
    log_line(&s, "the relay's upstream was unlinked while up", |l| {
        l["msg"] == "relay upstream unlinked" && l["relay"] == name.as_str() && l["up"] == true
    });
    let before = b.last;
    for i in 0..5 {
        s.increment(&key("unlinked"), i + 1);
    }
    let want = expected_updates(&s);
    // The browser keeps its socket (a drop fails the test) and gets every change in order:
    // only the watchdog, finding no upstream, connects it again.
    b.read_until(&s, before + 5, &want, false);
    log_line(&s, "the watchdog found no upstream", |l| {
        l["msg"] == "relay watchdog found no upstream" && l["relay"] == name.as_str()
    });
    b.sock.unwrap().close();
}

#[test]
fn sockets_refused_by_a_relay_are_counted_in_the_counter_s_metrics_once() {
    let s = server();
    let client = ip(9000);
    let url = format!("ws://127.0.0.1:{}/api/ws", s.port);
    let before = settled_refusals(&s);
    let mut mine: Vec<Socket> = (0..PER_CLIENT)
        .map(|_| {
            let mut sock = Socket::connect(&url, &[("cf-connecting-ip", &client)]);
            assert_eq!(sock.next_json()["type"], "snapshot");
            sock
        })
        .collect();
    // Three refusals by the client's relay (the counter never sees these sockets). The edge
    // holds a refused client off for 2 s by itself; each of these connects comes after that.
    for i in 0..3 {
        if i > 0 {
            std::thread::sleep(Duration::from_millis(2_200));
        }
        let refused = Socket::try_connect(&url, &[("cf-connecting-ip", &client)]);
        assert_eq!(refused.err().as_deref(), Some("status 429"));
    }
    // A browser cannot report refusals itself: its relay answers its frame as unsupported.
    let forged = number_acidizer::core::relay::report_message(1000);
    mine[0].send_text(&forged);
    let reply = mine[0].next_json();
    assert_eq!(reply["type"], "error", "{reply}");
    let deadline = Instant::now() + Duration::from_secs(15);
    while refused_sockets_metric(&s) < before + 3 {
        assert!(
            Instant::now() < deadline,
            "the relay's refusals never reached the counter"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Counted once: nothing more arrives.
    assert_eq!(settled_refusals(&s), before + 3);
    for sock in mine {
        sock.close();
    }
}

/// Browser sockets on relays end after `RELAY_SOCKET_MAX_SECONDS` (here 2 s: each between
/// 1.5 and 2 s, closed at the watchdog's next check, 1 s here), with 1012; browsers resume
/// with `since` and miss nothing. A server of its own: the shared one keeps sockets open for
/// longer than that on purpose.
#[test]
fn sockets_on_relays_end_with_1012_after_their_life_and_resume_without_gap() {
    let s = Server::start(Options {
        vars: vec![
            ("RELAY_SOCKETS_PER_RELAY".into(), PER_RELAY.to_string()),
            ("RELAY_SHARDS".into(), SHARDS.to_string()),
            ("RELAY_WATCHDOG_SECONDS".into(), "1".into()),
            ("RELAY_SOCKET_MAX_SECONDS".into(), "2".into()),
        ],
        ..Options::default()
    });
    // One socket: closed with 1012, no sooner than three quarters of its life.
    let who = ip(100);
    let mut sock = open(&s, &who, "");
    let opened = Instant::now();
    let snap = sock.next_json();
    assert_eq!(snap["type"], "snapshot");
    sock.set_timeout(Duration::from_secs(20));
    assert_eq!(sock.close_code(), Some(1012));
    let lived = opened.elapsed();
    assert!(
        lived >= Duration::from_millis(1400),
        "closed after {lived:?}"
    );
    assert!(lived < Duration::from_secs(15), "closed after {lived:?}");
    // Browsers on several relays, changes meanwhile: every socket is ended at least once,
    // and every browser gets every change exactly once, in order.
    let mut browsers: Vec<Browser> = (200..206).map(|i| Browser::new(&s, ip(i))).collect();
    let start = browsers.iter().map(|b| b.last).min().unwrap();
    let writers = changes(&s.base, 2, 20, "lifetime");
    let paced = std::thread::spawn({
        let base = s.base.clone();
        move || {
            for i in 0..10 {
                std::thread::sleep(Duration::from_millis(500));
                let k = key(&format!("lifetime-paced-{i}"));
                let r = try_request(
                    &base,
                    "POST",
                    "/api/increment",
                    &[("idempotency-key", &k)],
                    None,
                );
                assert!(matches!(&r, Ok(r) if r.status == 200), "{r:?}");
            }
        }
    });
    join(writers);
    paced.join().expect("the paced writer failed");
    let want = expected_updates(&s);
    let last = *want.keys().last().unwrap();
    assert_eq!(last, start + 50, "every change applied once");
    for b in &mut browsers {
        b.read_until(&s, last, &want, true);
        assert!(b.reconnects >= 1, "{}: its socket never ended", b.ip);
    }
    let ended = s
        .log_lines()
        .iter()
        .filter(|l| l["msg"] == "relay closed sockets at the end of their life")
        .map(|l| l["closed"].as_u64().unwrap())
        .sum::<u64>();
    assert!(ended > browsers.len() as u64, "{ended} sockets ended");
}

/// `RELAY_SOCKETS_PER_RELAY=0`: no relays. Sockets and nearby reads go to the counter exactly
/// as before relays existed; the counter's own socket refusals are counted, and a browser's
/// socket to the counter cannot pass for a relay's report.
#[test]
fn without_relays_sockets_and_nearby_reads_are_the_counter_s_own() {
    let s = Server::start(Options {
        vars: vec![
            ("RELAY_SOCKETS_PER_RELAY".into(), "0".into()),
            ("ADMIN_TOKEN".into(), ADMIN.into()),
            ("WS_CONNECTIONS_PER_CLIENT".into(), "2".into()),
        ],
        ..Options::default()
    });
    let who = ip(300);
    let mut a = open(&s, &who, "");
    let mut b = open(&s, &who, "");
    for sock in [&mut a, &mut b] {
        assert_eq!(sock.next_json()["type"], "snapshot");
    }
    let health = s.health();
    assert_eq!(health["sockets"], 2, "{health}");
    assert_eq!(health["relays"], 0, "{health}");
    assert_eq!(relays(&s)["count"], 0);
    let url = format!("ws://127.0.0.1:{}/api/ws", s.port);
    let refused = Socket::try_connect(&url, &[("cf-connecting-ip", &who)]);
    assert_eq!(refused.err().as_deref(), Some("status 429"));
    // A browser's frame shaped like a relay's report is just an unsupported message.
    a.send_text(&number_acidizer::core::relay::report_message(1000));
    assert_eq!(a.next_json()["type"], "error");
    assert_eq!(refused_sockets_metric(&s), 1);
    // Updates come straight from the counter; a nearby read is the counter's answer.
    let v = s.increment(&key("no-relays"), 1).json()["version"]
        .as_u64()
        .unwrap();
    for sock in [&mut a, &mut b] {
        let u = sock.next_json();
        assert_eq!(
            (u["type"].as_str(), u["version"].as_u64()),
            (Some("update"), Some(v))
        );
    }
    let r = s.request(
        "GET",
        &format!("/api/value?consistency=nearby&min_version={v}"),
        &[("cf-connecting-ip", &who)],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["version"], v, "{}", r.body);
    assert_eq!(refused_sockets_metric(&s), 1);
    a.close();
    b.close();
}
