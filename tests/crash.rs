//! Crashes under load: many clients change the counter with fresh idempotency keys while the
//! runtime is killed with SIGKILL at random moments and started again on the same state, or
//! (the second test) while the edge panics at random moments (`POST /api/admin/edge/panic`,
//! a Wasm trap: every request the edge's instance holds is lost with it, and the next request
//! finds a fresh instance). Every client retries each unacknowledged change with the same key
//! until it is acknowledged.
//!
//! 64 clients run at once, so with batching on (the default) their changes share calls to the
//! object, and a crash can hit a batch half-way.
//!
//! Afterwards nothing acknowledged is lost, nothing is applied twice, the audit trail is a
//! gapless chain, the value is the sum of every change sent, and a key acknowledged more than
//! once got the very same bytes each time.
//!
//! The random choices (operations, amounts, crash moments) come from a seed that is printed;
//! `CRASH_SEED=<n>` repeats a run.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex, RwLock};
use std::time::{Duration, Instant};

use common::{calls_in_batches, key, seed, try_request, Options, Server};

const ADMIN: &str = "crash-admin-token-0123456789abcdef";
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

/// Clients at once; with batching on (the default) their changes share calls to the object.
const CLIENTS: usize = 64;
const CRASHES: usize = 3;
/// A change not acknowledged this long after it was first sent fails the suite.
const ACK_LIMIT: Duration = Duration::from_secs(60);
/// Load keeps running this long after the last restart, so changes and replays happen on the
/// state that survived every crash.
const TAIL: Duration = Duration::from_millis(1500);

/// One change a client wants applied.
#[derive(Clone, Debug)]
struct Change {
    key: String,
    op: &'static str,
    /// `None`: an empty body, which means 1.
    amount: Option<u32>,
}

impl Change {
    fn amount(&self) -> i64 {
        i64::from(self.amount.unwrap_or(1))
    }

    fn delta(&self) -> i64 {
        if self.op == "increment" {
            self.amount()
        } else {
            -self.amount()
        }
    }
}

/// One 200 answer a client got for a change.
#[derive(Clone, Debug)]
struct Ack {
    change: Change,
    body: String,
    replayed: bool,
    /// How many restarts the client had seen when it sent the request.
    epoch: u64,
}

/// What the clients share with the test: where the server is now, and when to stop.
struct Shared {
    base: RwLock<String>,
    epoch: AtomicU64,
    stop: AtomicBool,
    requests: AtomicU64,
    retries: AtomicU64,
    /// Changes applied and acknowledged (not counting replays).
    applied: AtomicU64,
    /// Why requests were retried: "connection error" or the status, with counts.
    failures: Mutex<BTreeMap<String, u64>>,
}

/// Stops the clients when the test ends, also when it fails half-way.
struct StopOnDrop(Arc<Shared>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stop.store(true, Ordering::SeqCst);
    }
}

/// Sends `change` until a 200 answers it: a connection error or a 5xx is retried with the same
/// key after a short backoff; any other answer fails the suite.
fn send_until_acked(shared: &Shared, change: &Change, rng: &mut StdRng) -> Ack {
    let path = format!("/api/{}", change.op);
    let body = change.amount.map(|a| format!("{{\"amount\":{a}}}"));
    let mut headers = vec![("idempotency-key", change.key.as_str())];
    if body.is_some() {
        headers.push(("content-type", "application/json"));
    }
    let first = Instant::now();
    let mut backoff = Duration::from_millis(10);
    let mut last: String;
    loop {
        let base = shared.base.read().unwrap().clone();
        let epoch = shared.epoch.load(Ordering::SeqCst);
        shared.requests.fetch_add(1, Ordering::Relaxed);
        let why = match try_request(
            &base,
            "POST",
            &path,
            &headers,
            body.as_deref().map(str::as_bytes),
        ) {
            Ok(r) if r.status == 200 => {
                return Ack {
                    change: change.clone(),
                    replayed: r.header("idempotent-replayed") == Some("true"),
                    body: r.body,
                    epoch,
                }
            }
            Ok(r) if r.status >= 500 => {
                last = format!("{} {}", r.status, r.body);
                format!(
                    "status {} {}",
                    r.status,
                    r.header("content-type").unwrap_or("-")
                )
            }
            Ok(r) => panic!(
                "{} with key {} got {} (only 200 or a retryable failure may answer it): {}",
                change.op, change.key, r.status, r.body
            ),
            Err(e) => {
                last = e;
                "connection error".to_string()
            }
        };
        *shared.failures.lock().unwrap().entry(why).or_default() += 1;
        shared.retries.fetch_add(1, Ordering::Relaxed);
        assert!(
            first.elapsed() < ACK_LIMIT,
            "{} with key {} was not acknowledged within {ACK_LIMIT:?}; last failure: {last}",
            change.op,
            change.key
        );
        // Full jitter, so the clients do not come back all at once.
        std::thread::sleep(backoff.mul_f64(rng.random_range(0.5..1.0)));
        backoff = (backoff * 2).min(Duration::from_millis(250));
    }
}

/// One client: fresh changes one after the other; after each restart it also re-sends a few
/// changes it already had acknowledged, which must be answered from the stored responses.
fn client(shared: Arc<Shared>, barrier: Arc<Barrier>, seed: u64) -> (Vec<Change>, Vec<Ack>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut sent = Vec::new();
    let mut acks: Vec<Ack> = Vec::new();
    let mut seen_epoch = 0;
    barrier.wait();
    while !shared.stop.load(Ordering::SeqCst) {
        let epoch = shared.epoch.load(Ordering::SeqCst);
        if epoch != seen_epoch {
            seen_epoch = epoch;
            // The newest acknowledged change (likely applied just before the crash) and two
            // older ones.
            let mut again: Vec<Change> =
                acks.last().map(|a| a.change.clone()).into_iter().collect();
            for _ in 0..2 {
                if !acks.is_empty() {
                    again.push(acks[rng.random_range(0..acks.len())].change.clone());
                }
            }
            for change in again {
                let ack = send_until_acked(&shared, &change, &mut rng);
                acks.push(ack);
            }
        }
        let change = Change {
            key: key("crash"),
            op: if rng.random_bool(0.4) {
                "decrement"
            } else {
                "increment"
            },
            amount: match rng.random_range(0..10) {
                0 => None,
                1 => Some(rng.random_range(1..=1_000_000)),
                _ => Some(rng.random_range(1..=1000)),
            },
        };
        sent.push(change.clone());
        let ack = send_until_acked(&shared, &change, &mut rng);
        if !ack.replayed {
            shared.applied.fetch_add(1, Ordering::SeqCst);
        }
        acks.push(ack);
    }
    (sent, acks)
}

/// Waits until the clients have had another `CLIENTS` changes applied.
fn wait_for_load(shared: &Shared) {
    let from = shared.applied.load(Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(30);
    while shared.applied.load(Ordering::SeqCst) < from + CLIENTS as u64 {
        assert!(
            Instant::now() < deadline,
            "the load did not resume; failures so far: {:?}",
            shared.failures.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What goes wrong, `CRASHES` times, under load.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    /// The whole runtime is killed with SIGKILL and started again on the same state.
    Kill,
    /// The edge panics (a Wasm trap) while the runtime keeps running.
    EdgePanic,
}

#[test]
fn nothing_acknowledged_is_lost_and_nothing_is_applied_twice_across_crashes() {
    survives(Fault::Kill);
}

#[test]
fn nothing_acknowledged_is_lost_and_nothing_is_applied_twice_across_edge_panics() {
    survives(Fault::EdgePanic);
}

/// Makes the edge panic; its own request gets a problem+json 500 (written by `src/entry.js`,
/// since the instance that would have answered is gone).
fn edge_panic(server: &Server) {
    let auth = format!("Bearer {ADMIN}");
    let r = try_request(
        &server.base,
        "POST",
        "/api/admin/edge/panic",
        &[("authorization", &auth)],
        None,
    )
    .expect("the panic hook answers");
    assert_eq!(r.status, 500, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    let p: Value = serde_json::from_str(&r.body).expect("a problem+json body");
    assert_eq!(p["type"], "/problems/internal", "{p}");
    assert_eq!(p["status"], 500, "{p}");
}

fn survives(fault: Fault) {
    let started = Instant::now();
    let seed = seed("CRASH_SEED");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut server = Server::start(Options {
        vars: vec![
            ("ADMIN_TOKEN".into(), ADMIN.into()),
            ("ADMIN_TEST_HOOKS".into(), "1".into()),
        ],
        ..Options::default()
    });
    let shared = Arc::new(Shared {
        base: RwLock::new(server.base.clone()),
        epoch: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        requests: AtomicU64::new(0),
        retries: AtomicU64::new(0),
        applied: AtomicU64::new(0),
        failures: Mutex::new(BTreeMap::new()),
    });
    let stop = StopOnDrop(shared.clone());
    let barrier = Arc::new(Barrier::new(CLIENTS + 1));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let shared = shared.clone();
            let barrier = barrier.clone();
            let seed = seed.wrapping_add(1 + i as u64);
            std::thread::spawn(move || client(shared, barrier, seed))
        })
        .collect();
    barrier.wait();

    let mut crash_versions = Vec::new();
    // Calls that carried more than one request, summed over the object's lives (each restart
    // of it starts its `calls_by_size` again).
    let mut batches = 0;
    for n in 1..=CRASHES {
        // Crash at a random moment once the load is flowing again.
        wait_for_load(&shared);
        let load = Duration::from_millis(rng.random_range(300..=1500));
        std::thread::sleep(load);
        batches += server.calls_in_batches().1;
        let down = Instant::now();
        match fault {
            Fault::Kill => {
                server.crash();
                server.start_again();
                *shared.base.write().unwrap() = server.base.clone();
            }
            Fault::EdgePanic => edge_panic(&server),
        }
        shared.epoch.fetch_add(1, Ordering::SeqCst);
        let v = server.value()["version"].as_u64().unwrap();
        println!(
            "{fault:?} {n}: after {load:?} of load; back after {:?} at version {v}",
            down.elapsed()
        );
        crash_versions.push(v);
    }
    wait_for_load(&shared);
    std::thread::sleep(TAIL);
    drop(stop);
    let mut sent: Vec<Change> = Vec::new();
    let mut acks: Vec<Ack> = Vec::new();
    for c in clients {
        let (s, a) = c.join().expect("a client failed");
        sent.extend(s);
        acks.extend(a);
    }
    assert!(
        acks.iter()
            .any(|a| a.epoch == CRASHES as u64 && !a.replayed),
        "nothing was applied after the last restart"
    );

    // Every change sent was acknowledged; a change acknowledged more than once got the same
    // bytes each time, and at most one of its answers was not a replay.
    let mut by_key: BTreeMap<&str, Vec<&Ack>> = BTreeMap::new();
    for a in &acks {
        by_key.entry(&a.change.key).or_default().push(a);
    }
    assert_eq!(by_key.len(), sent.len(), "a change was never acknowledged");
    let mut acked_twice = 0;
    let mut across_a_crash = 0;
    let mut recovered = 0;
    for (k, answers) in &by_key {
        let first = answers[0];
        for a in answers {
            assert_eq!(
                a.body, first.body,
                "key {k} was answered with different bytes"
            );
        }
        assert!(
            answers.iter().filter(|a| !a.replayed).count() <= 1,
            "key {k} was applied more than once: {answers:?}"
        );
        if answers.len() > 1 {
            acked_twice += 1;
            assert!(
                answers[1..].iter().all(|a| a.replayed),
                "key {k}: {answers:?}"
            );
            if answers.iter().any(|a| a.epoch != first.epoch) {
                across_a_crash += 1;
            }
        }
        if first.replayed {
            // Applied before a crash, its answer lost, answered from storage on the retry.
            recovered += 1;
        }
    }
    assert!(
        across_a_crash > 0,
        "no key was acknowledged both before and after a crash"
    );

    // The audit trail: versions 1..=N, a gapless chain, one entry per key.
    let audit = server.audit_all();
    let n = audit.len();
    let mut running = 0i64;
    let mut ids = BTreeSet::new();
    for (i, e) in audit.iter().enumerate() {
        assert_eq!(e["version"], i as u64 + 1, "versions are not 1..=N: {e}");
        assert_eq!(e["previous_value"], running, "broken chain at {e}");
        let amount = e["amount"].as_i64().unwrap();
        let delta = match e["operation"].as_str() {
            Some("increment") => amount,
            Some("decrement") => -amount,
            other => panic!("unexpected operation {other:?} in {e}"),
        };
        assert_eq!(e["value"], running + delta, "{e}");
        running += delta;
        assert!(
            ids.insert(e["request_id"].as_str().unwrap().to_string()),
            "a key was applied twice: {e}"
        );
    }

    // Exactly the changes sent, each with what its client was told.
    let sent_keys: BTreeSet<String> = sent.iter().map(|c| c.key.clone()).collect();
    assert_eq!(sent_keys.len(), sent.len(), "keys are unique");
    assert_eq!(
        ids, sent_keys,
        "the audit trail holds other changes than the ones acknowledged"
    );
    let entries: BTreeMap<&str, &Value> = audit
        .iter()
        .map(|e| (e["request_id"].as_str().unwrap(), e))
        .collect();
    for (k, answers) in &by_key {
        let told: Value = serde_json::from_str(&answers[0].body).unwrap();
        let change = &answers[0].change;
        let e = entries[k];
        assert_eq!(told["request_id"], *k);
        assert_eq!(told["operation"], change.op);
        assert_eq!(told["amount"], change.amount());
        for field in ["version", "value", "previous_value", "operation", "amount"] {
            assert_eq!(
                told[field], e[field],
                "{field} of {k}: told {told}, audited {e}"
            );
        }
        assert_eq!(told["applied_at"], e["at"], "{k}");
    }

    let expected: i64 = sent.iter().map(Change::delta).sum();
    assert_eq!(
        running, expected,
        "the audit trail does not add up to the changes sent"
    );
    let value = server.value();
    assert_eq!(value["value"], expected);
    assert_eq!(value["version"], n as u64);
    let health = server.health();
    assert_eq!(health["audit_entries"], n as u64, "{health}");
    // Changes shared calls to the object (batching is on by default). The object's in-memory
    // state can start again without a fault of the test's: after an edge panic it did, as
    // requests of the old instance failed in its code (the object shares the Worker's Wasm
    // instance); so the count is the whole run's.
    batches += calls_in_batches(&health).1;
    println!(
        "calls by size since the last restart: {}; calls carrying more than one request in the \
         whole run: {batches}",
        health["calls_by_size"]
    );
    assert!(batches > 0, "no batch formed in the whole run: {health}");

    // Every key is still remembered: sending each change once more applies nothing and gets
    // the bytes its client was first told.
    let firsts: Vec<(Change, String)> = by_key
        .values()
        .map(|a| (a[0].change.clone(), a[0].body.clone()))
        .collect();
    let checkers: Vec<_> = firsts
        .chunks(firsts.len().div_ceil(8))
        .map(|chunk| {
            let chunk = chunk.to_vec();
            let base = server.base.clone();
            std::thread::spawn(move || {
                for (change, body) in chunk {
                    let payload = change.amount.map(|a| format!("{{\"amount\":{a}}}"));
                    let mut headers = vec![("idempotency-key", change.key.as_str())];
                    if payload.is_some() {
                        headers.push(("content-type", "application/json"));
                    }
                    let r = try_request(
                        &base,
                        "POST",
                        &format!("/api/{}", change.op),
                        &headers,
                        payload.as_deref().map(str::as_bytes),
                    )
                    .expect("request");
                    assert_eq!(r.status, 200, "{}", r.body);
                    assert_eq!(
                        r.header("idempotent-replayed"),
                        Some("true"),
                        "{}",
                        change.key
                    );
                    assert_eq!(r.body, body, "key {} replays other bytes", change.key);
                }
            })
        })
        .collect();
    for c in checkers {
        c.join().expect("a replay check failed");
    }
    assert_eq!(server.value(), value, "a replay changed the counter");

    if fault == Fault::EdgePanic {
        // No request hung: one waiting in a batch of the instance that trapped wakes on its
        // own timer within a second and fails into src/entry.js's 500 (src/edge/batch.rs,
        // `TICK_MS`), instead of holding its client until the client's 30 s timeout.
        let failures = shared.failures.lock().unwrap();
        assert!(
            !failures.contains_key("connection error"),
            "requests went unanswered for 30 s after an edge panic: {failures:?}"
        );
        drop(failures);
        // Each panic was a real trap, and each was followed by a fresh instance.
        let log = server.log_text();
        let panics = log.matches("the edge panics on purpose").count();
        let resets = log.matches("Reinitializing Wasm application").count();
        assert!(panics >= CRASHES, "{panics} panics in the log");
        assert!(resets >= CRASHES, "{resets} resets in the log");
    }

    println!(
        "{} requests ({} retries: {:?}), {} crashes ({fault:?}; back at versions {crash_versions:?}), {} changes, \
         {recovered} answered only by a replay after a crash, {acked_twice} acknowledged more than once ({across_a_crash} across a crash); \
         final version {n}, value {expected}; {:?}",
        shared.requests.load(Ordering::Relaxed),
        shared.retries.load(Ordering::Relaxed),
        shared.failures.lock().unwrap(),
        CRASHES,
        sent.len(),
        started.elapsed()
    );
}
