//! The product as a Workers user runs it: `npx wrangler dev` with no `-c` (the project's one
//! `wrangler.toml`), only `--port`, `--persist-to` and `--var`. Everything works through the one
//! script: keyed changes and their replays, a socket fed through a relay, a nearby read, a var
//! set with `--var` taking effect inside the counter object, and archival into the local R2
//! bucket.

mod common;

use std::time::{Duration, Instant};

use common::{Options, Server, Socket};
use serde_json::Value;

const ADMIN: &str = "one-worker-admin-token";
/// A small hot window: archival moves every whole segment of 1,024 beyond it to R2.
const HOT: u64 = 16;

fn server() -> Server {
    Server::start(Options {
        vars: vec![
            ("ADMIN_TOKEN".into(), ADMIN.into()),
            // Read by the counter object.
            ("RATE_LIMIT_PER_10S".into(), "3".into()),
            ("AUDIT_HOT_ENTRIES".into(), HOT.to_string()),
            // Read by the edge and by the relays.
            ("RELAY_SOCKETS_PER_RELAY".into(), "50".into()),
            ("RELAY_SHARDS".into(), "2".into()),
        ],
        ..Options::default()
    })
}

fn keyed(s: &Server, ip: &str, key: &str) -> common::Resp {
    s.post_json(
        "/api/increment",
        &[("idempotency-key", key), ("cf-connecting-ip", ip)],
        "{\"amount\":1}",
    )
}

fn relays(s: &Server) -> Value {
    let auth = format!("Bearer {ADMIN}");
    let r = s.request(
        "GET",
        "/api/admin/relays",
        &[("authorization", &auth)],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

#[test]
fn plain_wrangler_dev_runs_the_whole_product() {
    let s = server();
    // A socket, placed on a relay by the edge.
    let mut sock = Socket::connect(
        &format!("ws://127.0.0.1:{}/api/ws", s.port),
        &[("cf-connecting-ip", "10.9.0.1")],
    );
    sock.set_timeout(Duration::from_secs(20));
    let snapshot = sock.next_json();
    assert_eq!(snapshot["type"], "snapshot", "{snapshot}");
    let holding: u64 = relays(&s)["relays"]
        .as_array()
        .expect("a list of relays")
        .iter()
        .map(|r| r["sockets"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(holding, 1, "the socket is on a relay: {}", relays(&s));

    // A keyed increment, and its replay: applied once.
    let first = keyed(&s, "10.9.0.2", "one-worker-a");
    assert_eq!(first.status, 200, "{}", first.body);
    let again = keyed(&s, "10.9.0.2", "one-worker-a");
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body, first.body, "a replay answers the same bytes");
    assert_eq!(s.value()["version"], 1, "the replay applied nothing");

    // The socket got the change, through its relay.
    let update = sock.next_json();
    assert_eq!(update["type"], "update", "{update}");
    assert_eq!(update["version"], 1, "{update}");

    // A nearby read (a relay's), with read-your-writes.
    let near = s.get("/api/value?consistency=nearby&min_version=1");
    assert_eq!(near.status, 200, "{}", near.body);
    let near = near.json();
    assert_eq!(near["version"], 1, "{near}");
    assert!(
        near["source"] == "relay" || near["source"] == "counter",
        "{near}"
    );

    // RATE_LIMIT_PER_10S=3, set with --var, is the counter object's: a fourth change from the
    // same client within 10 s is refused with 429 and applies nothing.
    for i in 0..2 {
        let r = keyed(&s, "10.9.0.2", &format!("one-worker-b{i}"));
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let refused = keyed(&s, "10.9.0.2", "one-worker-c");
    refused.problem(429);
    assert_eq!(s.value()["version"], 3, "a refused change applied nothing");

    // Archival into the local R2 bucket: with AUDIT_HOT_ENTRIES=16 (set with --var), a whole
    // segment of 1,024 entries moves out of the object, and the trail still reads whole.
    let mut n = 3u64;
    while n < 1024 + HOT {
        // A client each, so the rate limit stays out of the way.
        let ip = format!("10.10.{}.{}", n / 256, n % 256);
        let r = keyed(&s, &ip, &format!("one-worker-fill-{n}"));
        assert_eq!(r.status, 200, "{}", r.body);
        n += 1;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let h = loop {
        let h = s.health();
        if h["archived_entries"] == 1024 && h["last_archival"]["outcome"] == "ok" {
            break h;
        }
        assert!(Instant::now() < deadline, "archival did not run: {h}");
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(h["hot_entries"], n - 1024, "{h}");
    let archived = s.get("/api/audit?after=0&limit=10");
    assert_eq!(archived.status, 200, "{}", archived.body);
    let page = archived.json();
    assert_eq!(
        page["entries"][0]["version"], 1,
        "read back from R2: {page}"
    );
    assert_eq!(s.audit_all().len() as u64, n, "the whole trail");
}
