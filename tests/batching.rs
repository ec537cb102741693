//! Batching (group commit) against the real runtime: requests that share a call to the counter
//! each get exactly the answer they get alone.
//!
//! 64 clients at once send a mix: valid changes, malformed requests, replays of keys applied
//! earlier, keys reused for something else, `If-Match` failures, changes that would leave the
//! range, and groups of clients over their rate limit. Before that, one request of each kind
//! is sent alone as the reference. With `BATCH_MAX_IN_FLIGHT=1` everything that arrives while
//! one call is in flight shares the next one; the object's `calls_by_size` in `/api/health`
//! shows that batches really formed (the test fails otherwise, so it cannot pass vacuously).
//!
//! Then every answer is checked against the reference of its kind: the same status, the same
//! headers and the same body bytes (for answers that name the state they saw, such as 412's
//! `current_version`, the body rendered for that state, and that state must be one the
//! counter really held). Every applied change, sent again alone, is replayed byte for byte;
//! the audit trail is gapless and adds up; each rate-limited group got exactly its allowance.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Barrier};

use common::{seed, try_request, Options, Resp, Server};
use number_acidizer::core::problem::Problem;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde_json::Value;

const CLIENTS: usize = 64;
const LIMIT: usize = 3;
const GROUP: usize = 8;
const MAX: i64 = 9_007_199_254_740_991;
/// The value the phase starts from: any increment by 1,000,000 leaves the range, and the
/// valid changes (at most a few hundred) never do.
const START: i64 = MAX - 999_000;
const ADMIN: &str = "batching-admin-token-0123456789";

/// The kinds of request in the mix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Valid,
    Replay,
    Conflict,
    Malformed(u8),
    IfMatchFails,
    OutOfRange,
    Grouped,
}

#[derive(Clone, Debug)]
struct Req {
    kind: Kind,
    path: &'static str,
    key: Option<String>,
    client: String,
    if_match: Option<&'static str>,
    body: String,
    delta: i64,
}

impl Req {
    fn send(&self, base: &str) -> Resp {
        let mut h: Vec<(&str, &str)> = vec![
            ("content-type", "application/json"),
            ("cf-connecting-ip", &self.client),
        ];
        if let Some(k) = &self.key {
            h.push(("idempotency-key", k));
        }
        if let Some(m) = self.if_match {
            h.push(("if-match", m));
        }
        let send = || {
            try_request(base, "POST", self.path, &h, Some(self.body.as_bytes()))
                .unwrap_or_else(|e| panic!("{self:?}: {e}"))
        };
        let mut r = send();
        // The local dev server's proxy answers this itself when it lost a request on its way
        // to the runtime (on an overloaded machine). Every request here has a key, so it is
        // sent again; a change that did apply is then answered from its stored response,
        // marked as a replay, which is dropped here: the body is the first answer's.
        let mut retried = false;
        for _ in 0..5 {
            if !common::dev_proxy_lost(&r) {
                break;
            }
            retried = true;
            r = send();
        }
        if retried && self.kind != Kind::Replay {
            r.headers
                .retain(|(k, _)| !k.eq_ignore_ascii_case("idempotent-replayed"));
        }
        r
    }
}

fn change(kind: Kind, path: &'static str, key: &str, client: &str, amount: i64) -> Req {
    Req {
        kind,
        path,
        key: Some(key.to_owned()),
        client: client.to_owned(),
        if_match: None,
        body: format!("{{\"amount\":{amount}}}"),
        delta: if path.ends_with("decrement") {
            -amount
        } else {
            amount
        },
    }
}

fn malformed(i: u8, key: &str) -> Req {
    let mut r = change(Kind::Malformed(i), "/api/increment", key, "10.8.0.1", 1);
    match i {
        0 => r.body = "{\"amount\":".into(),
        1 => r.key = Some("not a valid key!".into()),
        _ => r.body = "{\"amount\":0}".into(),
    }
    r
}

/// The headers that make up an answer besides its body.
const MATTER: [&str; 8] = [
    "content-type",
    "cache-control",
    "x-content-type-options",
    "etag",
    "idempotent-replayed",
    "retry-after",
    "allow",
    "www-authenticate",
];

fn headers(r: &Resp) -> BTreeMap<&'static str, String> {
    MATTER
        .iter()
        .filter_map(|name| r.header(name).map(|v| (*name, v.to_owned())))
        .collect()
}

/// The same status and headers as `alone`, except the values of `vary` (state-dependent).
fn same_head(got: &Resp, alone: &Resp, vary: &[&str], what: &str) {
    assert_eq!(
        got.status, alone.status,
        "{what}: {got:?} vs alone {alone:?}"
    );
    let (mut g, mut a) = (headers(got), headers(alone));
    for v in vary {
        if let (Some(x), Some(y)) = (g.get_mut(v), a.get_mut(v)) {
            *x = String::new();
            *y = String::new();
        }
    }
    assert_eq!(g, a, "{what}: headers differ from the request sent alone");
}

fn version_tag(r: &Resp) -> u64 {
    r.header("etag")
        .and_then(|e| e.trim_matches('"').parse().ok())
        .unwrap_or_else(|| panic!("no version etag: {r:?}"))
}

#[test]
fn requests_that_share_calls_get_exactly_what_they_get_alone() {
    let seed = seed("BATCHING_SEED");
    let s = Server::start(Options {
        vars: vec![
            ("RATE_LIMIT_PER_10S".into(), LIMIT.to_string()),
            ("ADMIN_TOKEN".into(), ADMIN.into()),
            ("BATCH_MAX_IN_FLIGHT".into(), "1".into()),
        ],
        ..Options::default()
    });
    let base = s.base.clone();

    // 1. The state and the references, one request at a time.
    let auth = format!("Bearer {ADMIN}");
    let set = s.post_json(
        "/api/admin/set",
        &[("authorization", &auth), ("idempotency-key", "setup")],
        &format!("{{\"value\":{START}}}"),
    );
    assert_eq!(set.status, 200, "{}", set.body);
    let pre: Vec<(Req, Resp)> = (0..16)
        .map(|j| {
            let r = change(
                Kind::Replay,
                "/api/increment",
                &format!("pre-{j}"),
                &format!("10.1.0.{j}"),
                1,
            );
            let resp = r.send(&base);
            assert_eq!(resp.status, 200, "{}", resp.body);
            (r, resp)
        })
        .collect();
    let alone_conflict =
        change(Kind::Conflict, "/api/increment", "pre-0", "10.1.1.1", 2).send(&base);
    assert_eq!(
        alone_conflict.body,
        Problem::KeyReused {
            key: "pre-0".into()
        }
        .to_json()
    );
    let alone_malformed: Vec<Resp> = (0..3)
        .map(|i| {
            let r = malformed(i, "alone-m").send(&base);
            assert_eq!(r.status, 400, "{}", r.body);
            r
        })
        .collect();
    let mut fails = change(
        Kind::IfMatchFails,
        "/api/increment",
        "alone-412",
        "10.1.1.2",
        1,
    );
    fails.if_match = Some("\"0\"");
    let alone_412 = fails.send(&base);
    assert_eq!(
        alone_412.body,
        Problem::PreconditionFailed {
            current_version: version_tag(&alone_412)
        }
        .to_json()
    );
    let alone_409 = change(
        Kind::OutOfRange,
        "/api/increment",
        "alone-409",
        "10.1.1.3",
        1_000_000,
    )
    .send(&base);
    let before = s.value();
    assert_eq!(
        alone_409.body,
        Problem::OutOfRange {
            value: before["value"].as_i64().unwrap(),
            delta: 1_000_000
        }
        .to_json()
    );
    for j in 0..LIMIT {
        let r = change(
            Kind::Valid,
            "/api/increment",
            &format!("alone-l{j}"),
            "10.9.9.9",
            1,
        )
        .send(&base);
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let alone_429 = change(Kind::Grouped, "/api/increment", "alone-429", "10.9.9.9", 1).send(&base);
    assert_eq!(alone_429.status, 429, "{}", alone_429.body);
    let alone_valid = change(Kind::Valid, "/api/increment", "alone-ok", "10.1.1.4", 1).send(&base);
    assert_eq!(alone_valid.status, 200, "{}", alone_valid.body);
    let alone_replay = pre[0].0.send(&base);
    assert_eq!(alone_replay.body, pre[0].1.body);
    let start = s.value();
    let (v0, value0) = (
        start["version"].as_u64().unwrap(),
        start["value"].as_i64().unwrap(),
    );
    let (single_before, batched_before) = s.calls_in_batches();

    // 2. The mix, from 64 clients at once.
    let plans: Vec<Vec<Req>> = (0..CLIENTS)
        .map(|i| {
            let client = format!("10.2.{}.{}", i / 256, i % 256);
            let (pre_req, _) = &pre[i % pre.len()];
            let mut conflict = pre_req.clone();
            conflict.kind = Kind::Conflict;
            conflict.body = "{\"amount\":2}".into();
            conflict.client = client.clone();
            let mut replay = pre_req.clone();
            replay.client = client.clone();
            let mut fails = change(
                Kind::IfMatchFails,
                "/api/increment",
                &format!("b{i}-c"),
                &client,
                1,
            );
            fails.if_match = Some("\"0\"");
            let mut b = change(
                Kind::Valid,
                "/api/decrement",
                &format!("b{i}-b"),
                &client,
                1 + (i as i64 % 5),
            );
            if i % 4 == 0 {
                b.if_match = Some("*");
            }
            let mut plan = vec![
                change(
                    Kind::Valid,
                    "/api/increment",
                    &format!("b{i}-a"),
                    &client,
                    1 + (i as i64 % 3),
                ),
                b,
                replay,
                conflict,
                malformed((i % 3) as u8, &format!("b{i}-m")),
                fails,
                change(
                    Kind::OutOfRange,
                    "/api/increment",
                    &format!("b{i}-d"),
                    &client,
                    1_000_000,
                ),
                change(
                    Kind::Grouped,
                    "/api/increment",
                    &format!("b{i}-g"),
                    &format!("10.4.0.{}", i / GROUP),
                    1,
                ),
            ];
            plan.shuffle(&mut StdRng::seed_from_u64(seed.wrapping_add(i as u64)));
            // The rate-limited groups go first, so that each group's requests fall into one
            // 10-second window however slow the machine is.
            plan.sort_by_key(|r| r.kind != Kind::Grouped);
            plan
        })
        .collect();
    let barrier = Arc::new(Barrier::new(CLIENTS));
    let phase = std::time::Instant::now();
    let threads: Vec<_> = plans
        .into_iter()
        .map(|plan| {
            let base = base.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                plan.into_iter()
                    .map(|r| {
                        let resp = r.send(&base);
                        (r, resp)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let answers: Vec<(Req, Resp)> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("a client failed"))
        .collect();

    println!("the mix took {:?}", phase.elapsed());

    // 3. Batches really formed while the mix was sent.
    let end = s.value();
    let (single, batched) = s.calls_in_batches();
    let health = s.health();
    println!(
        "calls during the mix: {} alone, {} batches; sizes since start {}",
        single - single_before,
        batched - batched_before,
        health["calls_by_size"]
    );
    assert!(
        batched - batched_before >= 5,
        "too few calls carried more than one request: {}",
        health["calls_by_size"]
    );

    // 4. Every answer against the request of its kind sent alone.
    let v_end = end["version"].as_u64().unwrap();
    let audit = s.audit_all();
    assert_eq!(audit.len() as u64, v_end, "the audit trail has a gap");
    let mut held: BTreeSet<i64> = BTreeSet::from([value0]);
    for (i, e) in audit.iter().enumerate() {
        assert_eq!(e["version"], i as u64 + 1);
        if i as u64 >= v0 {
            held.insert(e["value"].as_i64().unwrap());
        }
    }
    let mut applied: Vec<&(Req, Resp)> = Vec::new();
    let mut grouped: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut kinds: BTreeMap<Kind, usize> = BTreeMap::new();
    for pair in &answers {
        let (req, got) = pair;
        *kinds.entry(req.kind).or_default() += 1;
        let what = format!("{req:?}");
        match req.kind {
            Kind::Valid => {
                same_head(got, &alone_valid, &["etag"], &what);
                applied.push(pair);
            }
            Kind::Replay => {
                let (_, first) = pre.iter().find(|(p, _)| p.key == req.key).unwrap();
                same_head(got, &alone_replay, &["etag"], &what);
                assert_eq!(got.header("etag"), first.header("etag"), "{what}");
                assert_eq!(got.body, first.body, "{what}: a replay's bytes changed");
            }
            Kind::Conflict => {
                same_head(got, &alone_conflict, &[], &what);
                let key = req.key.clone().unwrap();
                assert_eq!(got.body, Problem::KeyReused { key }.to_json(), "{what}");
            }
            Kind::Malformed(i) => {
                let alone = &alone_malformed[i as usize];
                same_head(got, alone, &[], &what);
                assert_eq!(got.body, alone.body, "{what}");
            }
            Kind::IfMatchFails => {
                same_head(got, &alone_412, &["etag"], &what);
                let v = version_tag(got);
                assert!((v0..=v_end).contains(&v), "{what}: version {v} never held");
                assert_eq!(
                    got.body,
                    Problem::PreconditionFailed { current_version: v }.to_json(),
                    "{what}"
                );
            }
            Kind::OutOfRange => {
                same_head(got, &alone_409, &[], &what);
                let v = held
                    .iter()
                    .find(|v| {
                        got.body
                            == Problem::OutOfRange {
                                value: **v,
                                delta: 1_000_000,
                            }
                            .to_json()
                    })
                    .unwrap_or_else(|| {
                        panic!("{what}: {} names no value the counter held", got.body)
                    });
                let _ = v;
            }
            Kind::Grouped => {
                let entry = grouped.entry(req.client.clone()).or_default();
                if got.status == 200 {
                    same_head(got, &alone_valid, &["etag"], &what);
                    entry.0 += 1;
                    applied.push(pair);
                } else {
                    same_head(got, &alone_429, &["retry-after"], &what);
                    let r0 = alone_429.header("retry-after").unwrap();
                    let r = got.header("retry-after").unwrap();
                    let expected = alone_429
                        .body
                        .replace(
                            &format!("\"retry_after\":{r0}"),
                            &format!("\"retry_after\":{r}"),
                        )
                        .replace(
                            &format!("Retry after {r0} s."),
                            &format!("Retry after {r} s."),
                        );
                    assert_eq!(got.body, expected, "{what}");
                    entry.1 += 1;
                }
            }
        }
    }
    println!("answers by kind: {kinds:?}");
    for (client, (ok, limited)) in &grouped {
        assert_eq!(
            (*ok, *limited),
            (LIMIT, GROUP - LIMIT),
            "client {client}: {ok} applied, {limited} limited"
        );
    }

    // 5. Applied changes: what the audit trail says, and replayed alone byte for byte.
    let entries: BTreeMap<&str, &Value> = audit
        .iter()
        .map(|e| (e["request_id"].as_str().unwrap(), e))
        .collect();
    let mut sum = 0;
    for (req, got) in &applied {
        let key = req.key.as_deref().unwrap();
        let told = got.json();
        let e = entries
            .get(key)
            .unwrap_or_else(|| panic!("{key} acknowledged but not audited"));
        for field in ["version", "value", "previous_value", "amount", "operation"] {
            assert_eq!(told[field], e[field], "{key}: {field}");
        }
        assert_eq!(version_tag(got), told["version"].as_u64().unwrap());
        assert!(got.header("idempotent-replayed").is_none());
        let again = req.send(&base);
        assert_eq!(again.status, 200, "{}", again.body);
        assert_eq!(again.header("idempotent-replayed"), Some("true"));
        assert_eq!(again.header("etag"), got.header("etag"));
        assert_eq!(
            again.body, got.body,
            "{key}: the replay differs from the first answer"
        );
        sum += req.delta;
    }
    assert_eq!(
        applied.len() as u64,
        v_end - v0,
        "applied changes vs versions"
    );
    assert_eq!(end["value"].as_i64().unwrap(), value0 + sum);
    assert_eq!(
        s.value()["version"].as_u64().unwrap(),
        v_end,
        "replays applied something"
    );
}

#[test]
fn with_batching_off_every_request_is_its_own_call() {
    let s = Server::start(Options {
        vars: vec![("BATCH_MAX_IN_FLIGHT".into(), "off".into())],
        ..Options::default()
    });
    let (single, batched) = at_once(&s, 32, |base, i| {
        for j in 0..4 {
            let key = format!("off-{i}-{j}");
            let r = change(Kind::Valid, "/api/increment", &key, "10.5.0.1", 1).send(base);
            assert_eq!(r.status, 200, "{}", r.body);
            let r = try_request(base, "GET", "/api/value", &[], None).unwrap();
            assert_eq!(r.status, 200, "{}", r.body);
        }
    });
    assert_eq!(batched, 0, "a batch was sent with batching off");
    assert_eq!(single, 32 * 4 * 2, "one call per read and change");
    assert_eq!(s.value()["version"], 128);
}

/// `clients` clients at once (client `i` runs `client(base, i)`): the calls to the object
/// alone and in batches they took.
fn at_once(
    s: &Server,
    clients: usize,
    client: impl Fn(&str, usize) + Send + Sync + 'static,
) -> (u64, u64) {
    let (single0, batched0) = s.calls_in_batches();
    let barrier = Arc::new(Barrier::new(clients));
    let client = Arc::new(client);
    let threads: Vec<_> = (0..clients)
        .map(|i| {
            let base = s.base.clone();
            let barrier = barrier.clone();
            let client = client.clone();
            std::thread::spawn(move || {
                barrier.wait();
                client(&base, i);
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a client failed");
    }
    let (single, batched) = s.calls_in_batches();
    (single - single0, batched - batched0)
}

/// `clients` clients at once, each reading the value `reads` times one after the other: the
/// calls to the object alone and in batches it took.
fn concurrent_reads(s: &Server, clients: usize, reads: usize) -> (u64, u64) {
    at_once(s, clients, move |base, _| {
        for _ in 0..reads {
            let r = try_request(base, "GET", "/api/value", &[], None).unwrap();
            assert_eq!(r.status, 200, "{}", r.body);
        }
    })
}

/// Reads share calls only while many requests of the isolate wait on the object
/// (`BATCH_READS_FROM`): fewer readers than that are each sent alone, even with a call in
/// flight (K = 1), and more readers than that share calls.
#[test]
fn reads_share_calls_only_while_many_wait() {
    let s = Server::start(Options {
        vars: vec![
            ("BATCH_MAX_IN_FLIGHT".into(), "1".into()),
            ("BATCH_READS_FROM".into(), "8".into()),
        ],
        ..Options::default()
    });
    // At most 4 requests ever wait: below the mark, every read is its own call.
    let (single, batched) = concurrent_reads(&s, 4, 25);
    assert_eq!(
        (single, batched),
        (100, 0),
        "reads below the mark shared a call"
    );
    // 64 readers at once: from the mark on, reads share calls.
    let (single, batched) = concurrent_reads(&s, 64, 10);
    assert!(
        batched > 0,
        "64 readers never shared a call ({single} alone)"
    );
}

/// A keyed change as a client sends it: again with the same key when the local dev server
/// itself lost it (its proxy's "restarted mid-request" answer, or the connection reset while
/// the dev server restarts). Every answer that does come from the Worker is returned as is.
fn send_keyed(base: &str, path: &str, key: &str, amount: i64) -> Resp {
    let body = format!("{{\"amount\":{amount}}}");
    let headers = [
        ("content-type", "application/json"),
        ("cf-connecting-ip", "10.6.0.1"),
        ("idempotency-key", key),
    ];
    let mut last = String::new();
    for _ in 0..5 {
        match try_request(base, "POST", path, &headers, Some(body.as_bytes())) {
            Ok(r) if common::dev_proxy_lost(&r) => last = r.body,
            Ok(r) => return r,
            // A hang is the Worker's fault, never resent.
            Err(e) if e.contains("timeout") => panic!("change {key}: {e}"),
            Err(e) => last = e,
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    panic!("change {key} never reached the Worker: {last}");
}

/// Sustained load with batching on (the default K): 64 clients keep sending keyed changes
/// until a few thousand are in, mixed with reads. The Worker must never refuse one (a 503 from
/// the Worker itself, e.g. because a call was sent on behalf of the wrong request, fails the
/// test; only the dev proxy's own "restarted mid-request" answer is sent again with its key),
/// every change is applied exactly once and the value is exact. Batches of more than one
/// request must really have formed, or the test proves nothing.
#[test]
fn sustained_concurrent_changes_are_all_answered() {
    const CLIENTS: usize = 64;
    const PER_CLIENT: usize = 40;
    let s = Server::start(Options::default());
    let (_, batched0) = s.calls_in_batches();
    let barrier = Arc::new(Barrier::new(CLIENTS));
    let threads: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let base = s.base.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                let mut sum = 0i64;
                let mut versions = Vec::new();
                for j in 0..PER_CLIENT {
                    let key = format!("sustained-{i}-{j}");
                    let (path, amount) = if j % 4 == 3 {
                        ("/api/decrement", 2)
                    } else {
                        ("/api/increment", 3)
                    };
                    let r = send_keyed(&base, path, &key, amount);
                    assert_eq!(r.status, 200, "change {key}: {} {}", r.status, r.body);
                    let body: Value = serde_json::from_str(&r.body).expect("json");
                    versions.push(body["version"].as_u64().expect("version"));
                    sum += if path == "/api/increment" {
                        amount
                    } else {
                        -amount
                    };
                    if j % 8 == 0 {
                        let g = try_request(&base, "GET", "/api/value", &[], None).expect("get");
                        assert_eq!(g.status, 200, "read: {}", g.body);
                    }
                }
                (sum, versions)
            })
        })
        .collect();
    let mut sum = 0i64;
    let mut versions = BTreeSet::new();
    for t in threads {
        let (s_i, v_i) = t.join().expect("a client failed");
        sum += s_i;
        for v in v_i {
            assert!(versions.insert(v), "version {v} answered to two changes");
        }
    }
    let n = (CLIENTS * PER_CLIENT) as u64;
    assert_eq!(
        versions,
        (1..=n).collect::<BTreeSet<_>>(),
        "every change has its own version"
    );
    let value = s.value();
    assert_eq!(value["version"], n, "every change applied exactly once");
    assert_eq!(value["value"], sum, "the value is exact");
    let (_, batched) = s.calls_in_batches();
    assert!(
        batched > batched0,
        "no call carried more than one request: the test proved nothing"
    );
    let refused = s
        .log_lines()
        .iter()
        .filter(|l| l["msg"] == "counter batch failed; sending its requests one by one")
        .count();
    assert_eq!(refused, 0, "batches failed as a whole under load");
}

/// An edge whose counter object predates the method `batch` (the object follows one version,
/// and in a gradual rollout or a rollback that can be a version whose classes were not RPC
/// targets yet; here worker-build's module as the entry, which exports the plain classes):
/// every batch's method call fails, and its requests are sent again one by one as plain requests (a request alone
/// is one already), which those objects answer. Under concurrent load every change is applied
/// exactly once and every read answered.
#[test]
fn an_edge_whose_objects_predate_the_method_sends_plain_requests() {
    let s = Server::start(Options {
        main: Some("build/index.js".into()),
        ..Options::default()
    });
    let barrier = Arc::new(Barrier::new(32));
    let threads: Vec<_> = (0..32)
        .map(|i| {
            let base = s.base.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                for j in 0..4 {
                    let key = format!("old-objects-{i}-{j}");
                    let r = send_keyed(&base, "/api/increment", &key, 1);
                    assert_eq!(r.status, 200, "{}", r.body);
                    let again = send_keyed(&base, "/api/increment", &key, 1);
                    assert_eq!(again.body, r.body, "a replay of {key}");
                    let r = try_request(&base, "GET", "/api/value", &[], None).unwrap();
                    assert_eq!(r.status, 200, "{}", r.body);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a client failed");
    }
    assert_eq!(s.value()["version"], 128);
    assert_eq!(s.audit_all().len(), 128);
    let fell_back = s
        .log_lines()
        .iter()
        .filter(|l| l["msg"] == "counter batch failed; sending its requests one by one")
        .count();
    assert!(fell_back > 0, "no batch fell back to plain requests");
}
