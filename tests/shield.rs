//! The edge shields the one counter: a client the counter refused for its rate is refused by
//! the edge itself until `Retry-After` passed, so a flood costs the counter almost nothing; a
//! retry of a change applied through the same edge still gets its stored answer; other clients
//! go on; history reads have their own per-client limit at the edge.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Options, Server};

const ADMIN: &str = "shield-admin-token";
const LIMIT: u64 = 5;
const FLOOD: u64 = 2_000;
const THREADS: u64 = 8;

fn server() -> Server {
    Server::start(Options {
        vars: vec![
            ("ADMIN_TOKEN".into(), ADMIN.into()),
            ("RATE_LIMIT_PER_10S".into(), LIMIT.to_string()),
            ("HISTORY_READS_PER_10S".into(), "5".into()),
        ],
        ..Options::default()
    })
}

/// A counter of the object's metrics (`GET /api/metrics`).
fn metric(s: &Server, line: &str) -> u64 {
    let auth = format!("Bearer {ADMIN}");
    let r = s.request("GET", "/api/metrics", &[("authorization", &auth)], None);
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
        .lines()
        .find_map(|l| l.strip_prefix(line)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {line} in:\n{}", r.body))
}

fn change(s: &Server, ip: &str, key: &str) -> common::Resp {
    s.post(
        "/api/increment",
        &[("idempotency-key", key), ("cf-connecting-ip", ip)],
        "",
    )
}

#[test]
fn a_flood_from_one_client_is_refused_at_the_edge_and_others_go_on() {
    let s = server();
    let refused_by_counter =
        |s: &Server| metric(s, "acidizer_rate_limited_total{limit=\"changes\"}");

    // The flooder's first change is applied; a retry of it must stay a replay throughout.
    let first = change(&s, "10.66.0.1", "flood-first");
    assert_eq!(first.status, 200, "{}", first.body);
    let before = refused_by_counter(&s);

    let next = Arc::new(AtomicU64::new(0));
    let applied = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let (base, next, applied, refused) = (
                s.base.clone(),
                next.clone(),
                applied.clone(),
                refused.clone(),
            );
            std::thread::spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= FLOOD {
                    return;
                }
                let key = format!("flood-{i}");
                let r = common::try_request(
                    &base,
                    "POST",
                    "/api/increment",
                    &[("idempotency-key", &key), ("cf-connecting-ip", "10.66.0.1")],
                    None,
                )
                .expect("a flood request");
                match r.status {
                    200 => applied.fetch_add(1, Ordering::Relaxed),
                    429 => {
                        assert!(r.header("retry-after").is_some(), "{r:?}");
                        refused.fetch_add(1, Ordering::Relaxed)
                    }
                    other => panic!("{key}: {other} {}", r.body),
                };
            })
        })
        .collect();
    // Meanwhile another client changes the counter at a polite pace, and the flooder retries
    // its applied change.
    for i in 0..LIMIT - 1 {
        let r = change(&s, "10.66.0.2", &format!("polite-{i}"));
        assert_eq!(r.status, 200, "another client is not refused: {}", r.body);
        let again = change(&s, "10.66.0.1", "flood-first");
        assert_eq!(
            again.status, 200,
            "a retry of an applied change: {}",
            again.body
        );
        assert_eq!(again.header("idempotent-replayed"), Some("true"));
        assert_eq!(again.body, first.body);
    }
    for t in threads {
        t.join().expect("a flood thread");
    }
    let elapsed = started.elapsed();
    let (applied, refused) = (
        applied.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed),
    );
    assert_eq!(applied + refused, FLOOD);
    // The counter's own rule held: at most LIMIT changes per window of 10 s.
    let windows = elapsed.as_secs() / 10 + 1;
    assert!(
        applied < LIMIT * (windows + 1),
        "{applied} applied in {elapsed:?}"
    );
    // Almost every refusal was the edge's: the counter saw a few per window (the requests in
    // flight when it first refused), not the flood.
    let counter = refused_by_counter(&s) - before;
    let bound = (FLOOD / 100).max(THREADS * 2 * windows);
    assert!(
        counter <= bound,
        "the counter refused {counter} of {refused} refusals (bound {bound}): the flood reached it"
    );
    let log = s.log_lines();
    assert!(
        log.iter()
            .any(|l| l["msg"] == "request" && l["status"] == 429 && l["client"] == "10.66.0.1"),
        "the edge's refusals are logged"
    );

    // Once the counter's Retry-After passed, the client may change again.
    std::thread::sleep(Duration::from_secs(11));
    let after = change(&s, "10.66.0.1", "flood-after");
    assert_eq!(after.status, 200, "{}", after.body);
}

#[test]
fn history_reads_are_limited_per_client_at_the_edge() {
    let s = server();
    assert_eq!(change(&s, "10.67.0.9", "history-1").status, 200);
    let a = [("cf-connecting-ip", "10.67.0.1")];
    for path in [
        "/api/audit?limit=1",
        "/api/audit/proof/inclusion?version=1",
        "/api/value?as_of_version=1",
        "/api/audit/export",
        "/api/audit?after=0&limit=3",
    ] {
        let r = s.request("GET", path, &a, None);
        assert!(r.status != 429, "{path}: {r:?}");
    }
    let r = s.request("GET", "/api/audit?limit=2", &a, None);
    let p = r.problem(429);
    assert!(r.header("retry-after").is_some(), "{r:?}");
    assert!(p["detail"].as_str().unwrap().contains("history"), "{p}");
    // Another client, and the present, are not limited.
    let b = [("cf-connecting-ip", "10.67.0.2")];
    assert_eq!(s.request("GET", "/api/audit?limit=1", &b, None).status, 200);
    assert_eq!(s.request("GET", "/api/value", &a, None).status, 200);
}

#[test]
fn a_client_refused_a_socket_for_its_cap_is_held_off_at_the_edge() {
    let s = Server::start(Options {
        vars: vec![
            ("ADMIN_TOKEN".into(), ADMIN.into()),
            ("WS_CONNECTIONS_PER_CLIENT".into(), "2".into()),
        ],
        ..Options::default()
    });
    let url = format!("ws://127.0.0.1:{}/api/ws", s.port);
    let ip = [("cf-connecting-ip", "10.68.0.1")];
    let mut held: Vec<common::Socket> =
        (0..2).map(|_| common::Socket::connect(&url, &ip)).collect();
    for sock in &mut held {
        assert_eq!(sock.next_json()["type"], "snapshot");
    }
    let refused_by_relays =
        |s: &Server| metric(s, "acidizer_rate_limited_total{limit=\"sockets\"}");
    let before = refused_by_relays(&s);
    // A burst of connects over the cap: the first is the relay's refusal, the rest the edge's.
    for i in 0..20 {
        let r = common::Socket::try_connect(&url, &ip);
        assert_eq!(
            r.err().as_deref(),
            Some("status 429"),
            "connect {i} over the cap"
        );
    }
    // The relays report their refusals to the counter once a second.
    std::thread::sleep(Duration::from_secs(3));
    let relays = refused_by_relays(&s) - before;
    assert!(
        (1..=3).contains(&relays),
        "the relays refused {relays} of 20 connects: the edge did not hold the client off"
    );
    // Other clients connect; and once the client closed one socket and the hold passed, so does it.
    let mut other = common::Socket::connect(&url, &[("cf-connecting-ip", "10.68.0.2")]);
    assert_eq!(other.next_json()["type"], "snapshot");
    held.pop().unwrap().close();
    std::thread::sleep(Duration::from_secs(3));
    let mut again = common::Socket::connect(&url, &ip);
    assert_eq!(again.next_json()["type"], "snapshot");
}
