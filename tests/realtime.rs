//! Real time: every applied change reaches every open socket, in version order, after commit;
//! `?since=` resumes without gap or duplicate; hostile clients affect nobody; sockets survive
//! the object's hibernation.

mod common;

use std::time::{Duration, Instant};

use common::{key, shared, Options, Server, Socket};
use serde_json::Value;

fn server() -> std::sync::MutexGuard<'static, Server> {
    shared(Options::default)
}

/// Reads `n` updates and checks they are consecutive versions starting at `from`.
fn updates(sock: &mut Socket, from: u64, n: u64) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let m = sock.next_json();
            assert_eq!(m["type"], "update", "{m}");
            assert_eq!(m["version"], from + i, "out of order or gap: {m}");
            m
        })
        .collect()
}

#[test]
fn every_socket_gets_a_snapshot_then_every_update_in_order() {
    let s = server();
    let mut socks: Vec<Socket> = (0..4).map(|_| s.socket("")).collect();
    let start = s.value();
    let v0 = start["version"].as_u64().unwrap();
    for sock in &mut socks {
        let snap = sock.next_json();
        assert_eq!(
            snap,
            serde_json::json!({"type": "snapshot", "value": start["value"], "version": v0})
        );
    }
    let mut answers = Vec::new();
    for i in 0..12u32 {
        let r = if i % 3 == 0 {
            s.post_json("/api/decrement", &[], &format!("{{\"amount\":{}}}", i + 1))
        } else {
            s.increment(&key("rt"), i + 1)
        };
        answers.push(r.json());
    }
    for sock in &mut socks {
        let got = updates(sock, v0 + 1, 12);
        for (u, a) in got.iter().zip(&answers) {
            assert_eq!(u.as_object().unwrap().len(), 7, "{u}");
            for k in ["value", "version", "previous_value", "operation", "amount"] {
                assert_eq!(u[k], a[k], "{k}");
            }
            assert_eq!(u["at"], a["applied_at"]);
        }
    }
    // A replay and a refused request broadcast nothing.
    let k = key("quiet");
    s.increment(&k, 1);
    s.increment(&k, 1);
    s.post_json("/api/increment", &[], "{\"amount\":0}");
    s.increment(&key("marker"), 2);
    for sock in &mut socks {
        let a = sock.next_json();
        let b = sock.next_json();
        assert_eq!(b["version"].as_u64(), a["version"].as_u64().map(|v| v + 1));
        assert_eq!(b["amount"], 2, "something was broadcast between: {a} {b}");
    }
}

#[test]
fn since_resumes_without_gap_or_duplicate() {
    let s = server();
    s.increment(&key("pre"), 1);
    let mut a = s.socket("");
    let last = a.next_json()["version"].as_u64().unwrap();
    a.close();
    // Changes while the client is away.
    let missed: Vec<Value> = (0..5)
        .map(|i| s.increment(&key("away"), i + 1).json())
        .collect();
    let mut b = s.socket(&format!("?since={last}"));
    let replayed = updates(&mut b, last + 1, 5);
    for (u, m) in replayed.iter().zip(&missed) {
        assert_eq!(u["value"], m["value"]);
    }
    // ...then live, continuing exactly after.
    s.increment(&key("live"), 9);
    let live = b.next_json();
    assert_eq!(live["version"], last + 6);
    assert_eq!(live["amount"], 9);

    // Up to date: nothing to replay, the next message is the next change.
    let now = s.value()["version"].as_u64().unwrap();
    let mut c = s.socket(&format!("?since={now}"));
    s.increment(&key("next"), 1);
    assert_eq!(c.next_json()["version"], now + 1);

    // Ahead of the counter (a client from another life): a snapshot.
    let mut d = s.socket(&format!("?since={}", now + 100));
    let snap = d.next_json();
    assert_eq!(snap["type"], "snapshot");
    assert_eq!(snap["version"], now + 1);
}

#[test]
fn more_than_a_thousand_missed_gets_a_snapshot() {
    let s = server();
    let since = s.value()["version"].as_u64().unwrap();
    // 1001 changes, from a few threads.
    let base = s.base.clone();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let base = base.clone();
            std::thread::spawn(move || {
                for i in 0..(if t == 0 { 126 } else { 125 }) {
                    let k = format!("bulk-{t}-{i}-{}", std::process::id());
                    // The dev proxy's own 503 (a request it lost) is resent with the key.
                    let r = loop {
                        let r = common::try_request(
                            &base,
                            "POST",
                            "/api/increment",
                            &[("idempotency-key", &k)],
                            None,
                        )
                        .unwrap();
                        if !common::dev_proxy_lost(&r) {
                            break r;
                        }
                    };
                    assert_eq!(r.status, 200, "{}", r.body);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let now = s.value();
    assert_eq!(now["version"], since + 1001);
    let mut far = s.socket(&format!("?since={since}"));
    let m = far.next_json();
    assert_eq!(
        m,
        serde_json::json!({"type": "snapshot", "value": now["value"], "version": since + 1001})
    );
    // Exactly 1000 behind is still replayed one by one.
    let mut near = s.socket(&format!("?since={}", since + 1));
    let got = updates(&mut near, since + 2, 1000);
    assert_eq!(got.last().unwrap()["value"], now["value"]);
}

#[test]
fn bad_since_and_missing_upgrade_are_refused() {
    let s = server();
    for q in [
        "?since=abc",
        "?since=-1",
        "?since=1.5",
        "?since=",
        "?other=1",
        "?since=1&since=2",
    ] {
        let url = format!("ws://127.0.0.1:{}/api/ws{q}", s.port);
        assert_eq!(
            Socket::try_connect(&url, &[]).err().as_deref(),
            Some("status 400"),
            "{q}"
        );
        s.get(&format!("/api/ws{q}")).problem(400);
    }
    let p = s.get("/api/ws").problem(426);
    assert_eq!(p["type"], "/problems/upgrade-required");
}

#[test]
fn ping_gets_pong() {
    let s = server();
    let mut sock = s.socket("");
    sock.next_json();
    for _ in 0..3 {
        sock.send_text("ping");
        assert_eq!(sock.next_text().as_deref(), Some("pong"));
    }
}

#[test]
fn hostile_clients_affect_nobody() {
    let s = server();
    let mut good = s.socket("");
    good.next_json();
    let mut bad = s.socket("");
    bad.next_json();
    let before = s.value();

    for junk in [
        "hello",
        "{\"type\":\"update\",\"value\":999}",
        "{}",
        "null",
        "\u{0}\u{1}",
        "increment",
    ] {
        bad.send_text(junk);
        let reply = bad.next_json();
        assert_eq!(reply["type"], "error", "{reply}");
        assert_eq!(reply["problem"]["status"], 400);
    }
    bad.send_binary(vec![0xff, 0x00, 0x13]);
    assert_eq!(bad.next_json()["type"], "error");
    assert_eq!(s.value(), before, "client messages changed the counter");

    // The good client still receives every change.
    let r = s.increment(&key("amid-junk"), 3).json();
    assert_eq!(good.next_json()["version"], r["version"]);
    assert_eq!(bad.next_json()["version"], r["version"]);

    // A frame over 1 KiB closes that socket with 1009, and only that one.
    bad.send_text(&"x".repeat(1025));
    assert_eq!(bad.close_code(), Some(1009));
    let r = s.increment(&key("after-close"), 1).json();
    assert_eq!(good.next_json()["version"], r["version"]);
    // Exactly 1 KiB is fine.
    let mut edge = s.socket("");
    edge.next_json();
    edge.send_text(&"y".repeat(1024));
    assert_eq!(edge.next_json()["type"], "error");
}

#[test]
fn every_close_is_answered() {
    let s = server();
    // Close codes a server may echo, reserved ones, and numbers that are no close code at all.
    for (code, answer) in [
        (1000u16, 1000u16),
        (1001, 1001),
        (3000, 3000),
        (4999, 4999),
        (999, 1000),
        (1004, 1000),
        (1015, 1000),
        (5000, 1000),
        (65535, 1000),
    ] {
        let mut sock = s.socket("");
        sock.set_timeout(Duration::from_secs(10));
        sock.next_json();
        let [hi, lo] = code.to_be_bytes();
        // A masked close frame (mask 0) with a two-byte code.
        sock.send_raw(&[0x88, 0x82, 0, 0, 0, 0, hi, lo]);
        assert_eq!(sock.close_code(), Some(answer), "close {code}");
    }
}

#[test]
fn dead_sockets_never_fail_a_broadcast() {
    let s = server();
    let mut good = s.socket("");
    good.next_json();
    // Sockets that vanish without a close handshake, and ones that close properly.
    for _ in 0..5 {
        let sock = s.socket("");
        drop(sock);
    }
    for _ in 0..5 {
        let sock = s.socket("");
        sock.close();
    }
    std::thread::sleep(Duration::from_millis(300));
    for i in 0..3 {
        let r = s.increment(&key("dead"), i + 1);
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(good.next_json()["version"], r.json()["version"]);
    }
}

#[test]
fn an_update_after_hibernation_reaches_a_socket_opened_before() {
    let s = server();
    let mut sock = s.socket("");
    sock.set_timeout(Duration::from_secs(40));
    let v = sock.next_json()["version"].as_u64().unwrap();
    let starts_before = started_lines(&s);
    // Idle: no requests and no messages, long enough for the runtime to evict the object.
    std::thread::sleep(Duration::from_secs(16));
    let r = s.increment(&key("wake"), 4);
    assert_eq!(r.status, 200);
    let u = sock.next_json();
    assert_eq!(u["version"], v + 1);
    assert_eq!(u["amount"], 4);
    // The object really was rebuilt in between (its start line was logged again), with the
    // socket still attached.
    let deadline = Instant::now() + Duration::from_secs(5);
    while started_lines(&s) <= starts_before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let lines: Vec<Value> = s
        .log_lines()
        .into_iter()
        .filter(|l| l["msg"] == "counter started")
        .collect();
    assert!(
        lines.len() > starts_before,
        "the object was never evicted: {lines:?}"
    );
    assert!(
        lines.last().unwrap()["sockets"].as_u64().unwrap() >= 1,
        "{lines:?}"
    );
    // ping still works after waking.
    sock.send_text("ping");
    assert_eq!(sock.next_text().as_deref(), Some("pong"));
}

fn started_lines(s: &Server) -> usize {
    s.log_lines()
        .iter()
        .filter(|l| l["msg"] == "counter started")
        .count()
}
