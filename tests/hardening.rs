//! Edge hardening: per-client rate limits and socket caps, the CORS allowlist, the admin API
//! behind its bearer token, security headers and request limits.
//!
//! Clients are told apart by `CF-Connecting-IP`, which the platform sets in production and the
//! local runtime passes through, so each test acts as clients of its own.

mod common;

use std::sync::{Arc, Barrier};
use std::time::Duration;

use common::{key, shared, Options, Server, Socket};
use serde_json::Value;

const ADMIN: &str = "hardening-admin-token-abcdefghijklmnop";
const FRIEND: &str = "https://friend.example";
const EVIL: &str = "https://evil.example";

fn server() -> std::sync::MutexGuard<'static, Server> {
    shared(|| Options {
        vars: vec![
            ("RATE_LIMIT_PER_10S".into(), "5".into()),
            ("WS_CONNECTIONS_PER_CLIENT".into(), "3".into()),
            (
                "ALLOWED_ORIGINS".into(),
                format!("{FRIEND}, http://localhost:5173"),
            ),
            ("ADMIN_TOKEN".into(), ADMIN.into()),
        ],
        ..Options::default()
    })
}

/// A client address unique to this call.
fn client() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(1);
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!("198.51.{}.{}", n / 250, n % 250 + 1)
}

fn counter_state(s: &Server) -> (Value, Value) {
    let h = s.health();
    (h["version"].clone(), h["audit_entries"].clone())
}

#[test]
fn a_burst_over_the_limit_gets_exact_429s_and_changes_nothing() {
    let s = server();
    let ip = client();
    let before = s.value();
    // Eight at once from one client: the object serializes them, so exactly five pass.
    let barrier = Arc::new(Barrier::new(8));
    let base = s.base.clone();
    let results: Vec<(u16, Option<String>, String, String)> = (0..8)
        .map(|_| {
            let (barrier, base, ip) = (barrier.clone(), base.clone(), ip.clone());
            std::thread::spawn(move || {
                let k = key("burst");
                barrier.wait();
                let r = common::try_request(
                    &base,
                    "POST",
                    "/api/increment",
                    &[("cf-connecting-ip", &ip), ("idempotency-key", &k)],
                    None,
                )
                .unwrap();
                (
                    r.status,
                    r.header("retry-after").map(String::from),
                    r.body,
                    k,
                )
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    let ok: Vec<_> = results.iter().filter(|r| r.0 == 200).collect();
    let limited: Vec<_> = results.iter().filter(|r| r.0 == 429).collect();
    assert_eq!((ok.len(), limited.len()), (5, 3), "{results:?}");
    for (_, retry_after, body, _) in &limited {
        let secs: u32 = retry_after
            .as_deref()
            .expect("Retry-After")
            .parse()
            .unwrap();
        assert!((1..=10).contains(&secs));
        let p: Value = serde_json::from_str(body).unwrap();
        assert_eq!(p["type"], "/problems/rate-limited");
        assert_eq!(p["status"], 429);
    }
    let after = s.value();
    assert_eq!(
        after["value"].as_i64().unwrap(),
        before["value"].as_i64().unwrap() + 5
    );
    assert_eq!(
        after["version"].as_u64().unwrap(),
        before["version"].as_u64().unwrap() + 5
    );

    // Still limited: a sixth change is refused and nothing is applied or remembered...
    let state = counter_state(&s);
    let k = key("sixth");
    let r = s.post(
        "/api/decrement",
        &[("cf-connecting-ip", &ip), ("idempotency-key", &k)],
        "",
    );
    r.problem(429);
    assert_eq!(counter_state(&s), state);
    // ...but a retry of a change that was applied is answered (replays are free)...
    let applied_key = &ok[0].3;
    let replay = s.post(
        "/api/increment",
        &[("cf-connecting-ip", &ip), ("idempotency-key", applied_key)],
        "",
    );
    assert_eq!(replay.status, 200);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    // ...reads are not limited...
    for _ in 0..10 {
        assert_eq!(
            s.request("GET", "/api/value", &[("cf-connecting-ip", &ip)], None)
                .status,
            200
        );
    }
    // ...other clients are not affected, and admins are not limited.
    assert_eq!(
        s.post("/api/increment", &[("cf-connecting-ip", &client())], "")
            .status,
        200
    );
    let auth = format!("Bearer {ADMIN}");
    let set = s.post_json(
        "/api/admin/set",
        &[("cf-connecting-ip", &ip), ("authorization", &auth)],
        "{\"value\":7}",
    );
    assert_eq!(set.status, 200, "{}", set.body);

    // After the window the client may change the counter again, and the refused key is free.
    std::thread::sleep(Duration::from_millis(10_200));
    let r = s.post(
        "/api/decrement",
        &[("cf-connecting-ip", &ip), ("idempotency-key", &k)],
        "",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.header("idempotent-replayed").is_none());
}

#[test]
fn sockets_per_client_are_capped() {
    let s = server();
    let ip = client();
    let url = format!("ws://127.0.0.1:{}/api/ws", s.port);
    let h = [("cf-connecting-ip", ip.as_str())];
    let mut open: Vec<Socket> = (0..3).map(|_| Socket::connect(&url, &h)).collect();
    assert_eq!(
        Socket::try_connect(&url, &h).err().as_deref(),
        Some("status 429")
    );
    // Another client is not affected.
    let other = client();
    let mut theirs = Socket::connect(&url, &[("cf-connecting-ip", &other)]);
    assert_eq!(theirs.next_json()["type"], "snapshot");
    // Closing one frees a place.
    open.pop().unwrap().close();
    let mut ok = None;
    for _ in 0..50 {
        if let Ok(sock) = Socket::try_connect(&url, &h) {
            ok = Some(sock);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        ok.expect("a place after closing one").next_json()["type"],
        "snapshot"
    );
}

#[test]
fn a_socket_that_floods_is_closed() {
    let s = server();
    let mut flood = s.socket("");
    flood.next_json();
    let mut good = s.socket("");
    good.next_json();
    let mut errors = 0;
    for i in 0..40 {
        flood.send_text(&format!("junk {i}"));
    }
    let code = loop {
        match flood.next_text() {
            Some(t) if t.contains("\"error\"") => errors += 1,
            Some(_) => {}
            None => break flood.close_code(),
        }
    };
    assert!(errors <= 20, "answered {errors} messages");
    assert!(matches!(code, Some(1008) | None), "{code:?}");
    let r = s
        .post("/api/increment", &[("cf-connecting-ip", &client())], "")
        .json();
    assert_eq!(good.next_json()["version"], r["version"]);
}

#[test]
fn cors_allows_listed_origins_only() {
    let s = server();
    // Preflight from an allowed origin.
    let pre = s.request(
        "OPTIONS",
        "/api/increment",
        &[
            ("origin", FRIEND),
            ("access-control-request-method", "POST"),
            (
                "access-control-request-headers",
                "content-type, idempotency-key, if-match",
            ),
        ],
        None,
    );
    assert_eq!(pre.status, 204, "{}", pre.body);
    assert_eq!(pre.header("access-control-allow-origin"), Some(FRIEND));
    assert!(pre
        .header("access-control-allow-methods")
        .unwrap()
        .contains("POST"));
    let allowed = pre
        .header("access-control-allow-headers")
        .unwrap()
        .to_lowercase();
    for h in ["idempotency-key", "if-match", "content-type"] {
        assert!(allowed.contains(h), "{allowed}");
    }
    assert!(pre.header("vary").unwrap().contains("Origin"));
    assert!(pre.header("access-control-max-age").is_some());

    // The actual request from it: applied, with CORS headers exposing what the app reads.
    let r = s.post(
        "/api/increment",
        &[
            ("origin", FRIEND),
            ("idempotency-key", &key("cors")),
            ("cf-connecting-ip", &client()),
        ],
        "",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), Some(FRIEND));
    let exposed = r
        .header("access-control-expose-headers")
        .unwrap()
        .to_lowercase();
    assert!(
        exposed.contains("etag") && exposed.contains("idempotent-replayed"),
        "{exposed}"
    );
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));

    // Another origin: its preflight gets no CORS headers, and it cannot change anything.
    let pre = s.request(
        "OPTIONS",
        "/api/increment",
        &[("origin", EVIL), ("access-control-request-method", "POST")],
        None,
    );
    assert_eq!(pre.status, 403);
    assert!(pre.header("access-control-allow-origin").is_none());
    let before = counter_state(&s);
    let k = key("evil");
    for path in ["/api/increment", "/api/decrement"] {
        let r = s.post(path, &[("origin", EVIL), ("idempotency-key", &k)], "");
        let p = r.problem(403);
        assert_eq!(p["type"], "/problems/forbidden-origin");
        assert!(r.header("access-control-allow-origin").is_none());
    }
    let auth = format!("Bearer {ADMIN}");
    s.post_json(
        "/api/admin/reset",
        &[("origin", EVIL), ("authorization", &auth)],
        "",
    )
    .problem(403);
    assert_eq!(counter_state(&s), before);
    // Nor connect.
    let url = format!("ws://127.0.0.1:{}/api/ws", s.port);
    assert_eq!(
        Socket::try_connect(&url, &[("origin", EVIL)])
            .err()
            .as_deref(),
        Some("status 403")
    );
    assert!(Socket::try_connect(&url, &[("origin", FRIEND)]).is_ok());
    // It may read, but without CORS headers its page cannot see the answer.
    let r = s.request("GET", "/api/value", &[("origin", EVIL)], None);
    assert_eq!(r.status, 200);
    assert!(r.header("access-control-allow-origin").is_none());
    // Lookalikes are other origins.
    for o in [
        "https://friend.example.evil",
        "http://friend.example",
        "null",
        "https://friend.example:444",
    ] {
        s.post("/api/increment", &[("origin", o)], "").problem(403);
    }

    // No Origin, or the service's own origin: always allowed.
    assert_eq!(
        s.post("/api/increment", &[("cf-connecting-ip", &client())], "")
            .status,
        200
    );
    let own = s.base.clone();
    let r = s.post(
        "/api/increment",
        &[("origin", &own), ("cf-connecting-ip", &client())],
        "",
    );
    assert_eq!(r.status, 200);
    assert!(r.header("access-control-allow-origin").is_none());
    assert!(Socket::try_connect(&url, &[("origin", &own)]).is_ok());
    let pre = s.request("OPTIONS", "/api/value", &[], None);
    assert_eq!(pre.status, 204);
    assert_eq!(pre.header("allow"), Some("GET, HEAD, OPTIONS"));
}

#[test]
fn admin_needs_the_token() {
    let s = server();
    let before = counter_state(&s);
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("Basic aGFyZGVuaW5nOg=="),
        Some(ADMIN),
        Some("Bearer "),
    ] {
        let mut h = vec![];
        if let Some(a) = auth {
            h.push(("authorization", a));
        }
        for (path, body) in [
            ("/api/admin/set", "{\"value\":5}"),
            ("/api/admin/reset", ""),
        ] {
            let r = s.post_json(path, &h, body);
            let p = r.problem(401);
            assert_eq!(p["type"], "/problems/unauthorized");
            assert!(
                r.header("www-authenticate").unwrap().starts_with("Bearer"),
                "{auth:?}"
            );
        }
    }
    // A wrong token of the right length as well.
    let wrong = format!("Bearer {}", "x".repeat(ADMIN.len()));
    s.post_json(
        "/api/admin/set",
        &[("authorization", &wrong)],
        "{\"value\":5}",
    )
    .problem(401);
    assert_eq!(counter_state(&s), before);
}

#[test]
fn admin_changes_are_audited_idempotent_and_broadcast() {
    let s = server();
    let auth = format!("Bearer {ADMIN}");
    let mut sock = s.socket("");
    sock.next_json();
    let k = key("admin-set");
    let set = s.post_json(
        "/api/admin/set",
        &[("authorization", &auth), ("idempotency-key", &k)],
        "{\"value\":-42}",
    );
    assert_eq!(set.status, 200, "{}", set.body);
    let v = set.json();
    assert_eq!(
        (
            v["operation"].as_str(),
            v["value"].as_i64(),
            v["amount"].as_i64()
        ),
        (Some("set"), Some(-42), Some(-42))
    );
    let u = sock.next_json();
    assert_eq!(
        (
            u["operation"].as_str(),
            u["value"].as_i64(),
            u["version"].clone()
        ),
        (Some("set"), Some(-42), v["version"].clone())
    );
    // Idempotent like every mutation.
    let again = s.post_json(
        "/api/admin/set",
        &[("authorization", &auth), ("idempotency-key", &k)],
        "{\"value\":-42}",
    );
    assert_eq!(again.body, set.body);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    s.post_json(
        "/api/admin/set",
        &[("authorization", &auth), ("idempotency-key", &k)],
        "{\"value\":1}",
    )
    .problem(422);

    let reset = s
        .post("/api/admin/reset", &[("authorization", &auth)], "")
        .json();
    assert_eq!(
        (
            reset["operation"].as_str(),
            reset["value"].as_i64(),
            reset["previous_value"].as_i64()
        ),
        (Some("reset"), Some(0), Some(-42))
    );
    assert_eq!(sock.next_json()["operation"], "reset");
    let audit = s.audit_all();
    let tail: Vec<_> = audit.iter().rev().take(2).collect();
    assert_eq!(tail[1]["operation"], "set");
    assert_eq!(tail[1]["request_id"], k.as_str());
    assert_eq!(tail[0]["operation"], "reset");
    assert_eq!(tail[0]["value"], 0);

    // Bad admin bodies change nothing.
    let before = counter_state(&s);
    for body in [
        "{}",
        "{\"value\":1.5}",
        "{\"value\":9007199254740992}",
        "{\"value\":\"1\"}",
        "{\"value\":1,\"x\":2}",
        "[1]",
    ] {
        s.post_json("/api/admin/set", &[("authorization", &auth)], body)
            .problem(400);
    }
    s.post_json(
        "/api/admin/reset",
        &[("authorization", &auth)],
        "{\"value\":1}",
    )
    .problem(400);
    assert_eq!(counter_state(&s), before);
}

#[test]
fn without_a_token_there_is_no_admin_api() {
    let s = Server::start(Options::default());
    for path in ["/api/admin/set", "/api/admin/reset"] {
        let r = s.post_json(
            path,
            &[("authorization", "Bearer anything")],
            "{\"value\":1}",
        );
        r.problem(404);
    }
    assert_eq!(s.value()["version"], 0);
}

#[test]
fn every_api_response_has_security_headers() {
    let s = server();
    let ip = client();
    let responses = vec![
        s.get("/api/value"),
        s.get("/api/audit?limit=1"),
        s.get("/api/health"),
        s.post("/api/increment", &[("cf-connecting-ip", &ip)], ""),
        s.get("/api/nope"),
        s.request("DELETE", "/api/value", &[], None),
        s.post_json("/api/increment", &[], "{\"amount\":0}"),
        s.get("/api/ws"),
    ];
    for r in responses {
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"), "{r:?}");
        assert_eq!(r.header("cache-control"), Some("no-store"), "{r:?}");
    }
}

#[test]
fn the_app_is_served_with_a_strict_content_security_policy() {
    let s = server();
    let r = s.get("/");
    assert_eq!(r.status, 200);
    let csp = r
        .header("content-security-policy")
        .expect("CSP on the HTML");
    assert!(
        csp.contains("default-src 'none'") || csp.contains("default-src 'self'"),
        "{csp}"
    );
    assert!(csp.contains("connect-src 'self'"), "{csp}");
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert!(r.header("referrer-policy").is_some());
}

#[test]
fn oversized_urls_queries_and_headers_are_refused() {
    let s = server();
    let before = counter_state(&s);
    s.get(&format!("/api/audit?after=1&{}", "x".repeat(2100)))
        .problem(414);
    s.get(&format!("/api/audit?limit={}", "1".repeat(600)))
        .problem(400);
    let long_tag = format!("\"{}\"", "1".repeat(600));
    s.post("/api/increment", &[("if-match", &long_tag)], "")
        .problem(400);
    let many_tags = vec!["\"1\""; 200].join(", ");
    s.post("/api/increment", &[("if-match", &many_tags)], "")
        .problem(400);
    assert_eq!(counter_state(&s), before);
}
