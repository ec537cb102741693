//! A fault storm: the whole product under load while a nemesis breaks it at random moments,
//! for `SOAK_SECONDS` (60 by default, as part of `make test`; `make soak` runs 600 and writes
//! its summary to bench/results/soak.json).
//!
//! The load: 64 clients, each with its own address, send keyed increments and decrements of
//! random amounts (the API's whole range), each retried under its key until acknowledged;
//! 8 readers make linearizable reads and nearby reads, and the clients read their own writes
//! nearby with `min_version`; 208 browsers hold sockets through the relays (40 per relay, so
//! several relays carry them; each socket's life is short, so they also resume on their own)
//! and resume with `?since=` whenever they are dropped; checkpoints are taken every few
//! seconds.
//!
//! The nemesis, one fault at a time in a shuffled order until every kind ran and the time is
//! up: SIGKILL of the whole runtime (started again on the same state; the clients retry
//! through the downtime), a relay reset, a counter restart, an edge panic, R2 failing while an
//! archival run is due (the bucket's folder broken for a few seconds, with a small hot window
//! so archival really runs), and a flood from one address past `RATE_LIMIT_PER_10S` (which
//! the paced clients never reach, so only the flooder gets 429). After each fault the load
//! must resume.
//!
//! Afterwards: the versioned history is linearizable (checked directly, and chunk by chunk
//! with the WGL checker); every acknowledged change is in the audit trail exactly once, with
//! what its client was told, and nothing else is (the flooder's refused changes are not);
//! the trail is contiguous and chains; every socket saw every version from its first to the
//! last, in order, once; nearby reads showed committed states only and gave read-your-writes;
//! the checkpoints taken during the run verify with `audit-verify`, each through `--state`
//! against the one before, and the final server extends the last; the database stayed
//! bounded.
//!
//! The random choices come from a seed that is printed; `SOAK_SEED=<n>` repeats a run's
//! choices (not the machine's timing).

#[path = "soak/check.rs"]
mod check;
mod common;
#[path = "soak/load.rs"]
mod load;
#[path = "soak/sockets.rs"]
mod sockets;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use number_acidizer::core::checkpoint::{Checkpoint, SigningKey};
use number_acidizer::core::ledger::{self, Auditor};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use check::{Kind, Record};
use common::{seed, try_request, Options, Server};
use load::{AbortOnDrop, Ack, HealthSample, Nearby, Shared};

const ADMIN: &str = "soak-admin-token-0123456789abcdef";
const WRITERS: usize = 64;
const READERS: usize = 8;
const SOCKETS: usize = 208;
/// Browser sockets per relay, and relays per region: 208 sockets need at least 6 relays.
const PER_RELAY: usize = 40;
const SHARDS: u32 = 8;
/// The hot window: archival moves a segment of 1,024 entries to R2 whenever the database
/// holds more than `HOT` + 1,024, so it runs every ~1,000 changes.
const HOT: u64 = 128;
const SEGMENT: u64 = 1024;
/// Applied changes per client address per 10 s. A writer waits at least `PACE_MS.0` after each
/// acknowledgement before its next change, so it applies at most 10 s / 500 ms = 20 in any
/// 10 s: half the limit.
const RATE_LIMIT: u64 = 40;
const PACE_MS: (u64, u64) = (500, 1200);
/// Keys are kept longer than a client keeps retrying one (`load::ACK_LIMIT`).
const RETENTION_SECONDS: u64 = 300;
/// Versions per piece of the WGL check.
const WGL_CHUNK: u64 = 128;
/// Checkpoints run through the `audit-verify` chain (evenly chosen; all are checked against
/// the trail with the pure core).
const VERIFIER_CHAIN: usize = 24;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Fault {
    Kill,
    RelayReset,
    CounterRestart,
    EdgePanic,
    R2Failing,
    Flood,
}

const FAULTS: [Fault; 6] = [
    Fault::Kill,
    Fault::RelayReset,
    Fault::CounterRestart,
    Fault::EdgePanic,
    Fault::R2Failing,
    Fault::Flood,
];

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::Kill => "sigkill",
            Fault::RelayReset => "relay_reset",
            Fault::CounterRestart => "counter_restart",
            Fault::EdgePanic => "edge_panic",
            Fault::R2Failing => "r2_failing",
            Fault::Flood => "flood",
        }
    }
}

fn signing_key() -> SigningKey {
    SigningKey::from_seed("acidizer.test/soak", [11; 32]).unwrap()
}

fn auth() -> String {
    format!("Bearer {ADMIN}")
}

#[test]
fn a_fault_storm_loses_nothing_doubles_nothing_and_leaves_no_gap() {
    let started = Instant::now();
    let seconds: u64 = std::env::var("SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let seed = seed("SOAK_SEED");
    println!("soak: {seconds} s, seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut server = Server::start(Options {
        vars: vec![
            ("ADMIN_TOKEN".into(), ADMIN.into()),
            ("ADMIN_TEST_HOOKS".into(), "1".into()),
            ("AUDIT_SIGNING_KEY".into(), signing_key().to_text()),
            ("AUDIT_HOT_ENTRIES".into(), HOT.to_string()),
            (
                "IDEMPOTENCY_RETENTION_SECONDS".into(),
                RETENTION_SECONDS.to_string(),
            ),
            ("RATE_LIMIT_PER_10S".into(), RATE_LIMIT.to_string()),
            ("RELAY_SOCKETS_PER_RELAY".into(), PER_RELAY.to_string()),
            ("RELAY_SHARDS".into(), SHARDS.to_string()),
            ("RELAY_WATCHDOG_SECONDS".into(), "2".into()),
            ("RELAY_SOCKET_MAX_SECONDS".into(), "40".into()),
        ],
        ..Options::default()
    });
    let shared = Shared::new(server.base.clone());
    let shared = &shared;
    let opened = AtomicU64::new(0);

    let outcome = std::thread::scope(|s| {
        let _abort = AbortOnDrop(shared);
        // The browsers first: every one has its snapshot before the storm begins.
        let browsers: Vec<_> = (0..SOCKETS)
            .map(|i| {
                let ip = format!("10.88.{}.{}", i / 256, i % 256);
                let seed = seed.wrapping_add(10_000 + i as u64);
                let opened = &opened;
                s.spawn(move || sockets::browser(shared, ip, seed, opened))
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(120);
        while opened.load(Ordering::SeqCst) < SOCKETS as u64 {
            assert!(
                Instant::now() < deadline,
                "only {} of {SOCKETS} sockets opened in 120 s; problems: {:?}",
                opened.load(Ordering::SeqCst),
                shared.problems.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let relays = relay_list(shared);
        let holding = relays.iter().filter(|r| r["sockets"].as_u64() > Some(0));
        let holding = holding.count();
        println!("{SOCKETS} sockets open on {holding} relays");
        assert!(holding >= 5, "sockets on too few relays: {relays:?}");

        let writers: Vec<_> = (0..WRITERS)
            .map(|i| {
                let seed = seed.wrapping_add(1 + i as u64);
                s.spawn(move || load::writer(shared, i, seed, PACE_MS))
            })
            .collect();
        let readers: Vec<_> = (0..READERS)
            .map(|i| {
                let seed = seed.wrapping_add(20_000 + i as u64);
                s.spawn(move || load::reader(shared, WRITERS + i, seed))
            })
            .collect();
        let checkpoints = s.spawn(move || load::checkpoints(shared, seed.wrapping_add(30_000)));
        let health = s.spawn(move || load::health_samples(shared));

        let storm = nemesis(&mut server, shared, &mut rng, seed, seconds);
        println!("the storm is over after {:?}", started.elapsed());

        // Stop the load: each writer finishes the change it is sending (until acknowledged).
        shared.stop_load.store(true, Ordering::SeqCst);
        let mut acks: Vec<Ack> = Vec::new();
        let mut nearby: Vec<Nearby> = Vec::new();
        for w in writers {
            let log = w.join().expect("a writer panicked");
            acks.extend(log.acks);
            nearby.extend(log.nearby);
        }
        let mut reads: Vec<Record> = Vec::new();
        for r in readers {
            let (l, n) = r.join().expect("a reader panicked");
            reads.extend(l);
            nearby.extend(n);
        }
        let notes = checkpoints.join().expect("the checkpoint thread panicked");
        let samples = health.join().expect("the health thread panicked");
        // Every socket must now reach the last version.
        let last = final_value(shared)["version"].as_u64().unwrap();
        println!(
            "the load stopped at version {last} after {:?}",
            started.elapsed()
        );
        shared.target.store(last, Ordering::SeqCst);
        let reports: Vec<sockets::Report> = browsers
            .into_iter()
            .map(|b| b.join().expect("a browser panicked"))
            .collect();
        println!("the sockets caught up after {:?}", started.elapsed());
        Outcome {
            storm,
            acks,
            reads,
            nearby,
            notes,
            samples,
            reports,
            last,
        }
    });
    let problems = shared.problems.lock().unwrap().clone();
    assert!(
        problems.is_empty(),
        "the run went wrong ({} problems; seed {seed}):\n{}",
        problems.len(),
        problems.join("\n")
    );
    let load_done = started.elapsed();
    verify_everything(&server, shared, outcome, seed, seconds, started, load_done);
}

/// What the run left to check.
struct Outcome {
    storm: Storm,
    acks: Vec<Ack>,
    reads: Vec<Record>,
    nearby: Vec<Nearby>,
    notes: Vec<String>,
    samples: Vec<HealthSample>,
    reports: Vec<sockets::Report>,
    last: u64,
}

/// What the nemesis did.
#[derive(Default)]
struct Storm {
    injected: BTreeMap<Fault, u64>,
    survived: u64,
    /// Failed archival runs seen while R2 was broken.
    r2_failed_runs: u64,
    flood: load::FloodLog,
    kill_downtimes: Vec<Duration>,
}

/// The linearizable value, asked until it answers (bounded).
fn final_value(shared: &Shared) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = try_request(&shared.base(), "GET", "/api/value", &[], None) {
            if r.status == 200 {
                return r.json();
            }
        }
        assert!(Instant::now() < deadline, "GET /api/value never answered");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn relay_list(shared: &Shared) -> Vec<Value> {
    let a = auth();
    match try_request(
        &shared.base(),
        "GET",
        "/api/admin/relays",
        &[("authorization", &a)],
        None,
    ) {
        Ok(r) if r.status == 200 => r.json()["relays"].as_array().cloned().unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// An admin hook, until `done` holds for its answer: a connection error or a 5xx on the way
/// (the local dev server's own 503 for a request it lost while the Worker was being reloaded,
/// the edge's 500 after a trap) is sent again, for up to a minute; any other answer is
/// returned as the failure.
fn admin_post(
    shared: &Shared,
    path: &str,
    done: impl Fn(&common::Resp) -> bool,
) -> Result<common::Resp, String> {
    let a = auth();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let last = match try_request(&shared.base(), "POST", path, &[("authorization", &a)], None) {
            Ok(r) if done(&r) => return Ok(r),
            Ok(r) if r.status >= 500 => format!("{r:?}"),
            Ok(r) => return Err(format!("{r:?}")),
            Err(e) => e,
        };
        if Instant::now() > deadline {
            return Err(format!("no answer within a minute; last: {last}"));
        }
        shared.failed(format!("admin {path}: retried"));
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn health(shared: &Shared) -> Option<Value> {
    let r = try_request(&shared.base(), "GET", "/api/health", &[], None).ok()?;
    (r.status == 200).then(|| r.json())
}

/// Waits until `n` more changes were acknowledged: the load resumed after a fault.
fn load_resumed(shared: &Shared, n: u64, limit: Duration) -> bool {
    let from = shared.acked.load(Ordering::SeqCst);
    let deadline = Instant::now() + limit;
    while shared.acked.load(Ordering::SeqCst) < from + n {
        if Instant::now() > deadline || shared.abort.load(Ordering::SeqCst) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// Breaks R2 while an archival run is due, until a run failed (or 25 s), then repairs it.
/// Returns whether a failed run was seen.
fn r2_failing(shared: &Shared, blobs: &Path) -> bool {
    // Wait (up to 30 s) until the window is nearly a segment over: a run is due soon.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut before = Value::Null;
    while Instant::now() < deadline {
        if let Some(h) = health(shared) {
            before = h["last_archival"].clone();
            if h["hot_entries"].as_u64().unwrap_or(0) + 64 >= HOT + SEGMENT {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let aside = blobs.with_extension("aside");
    std::fs::rename(blobs, &aside).expect("move the bucket's blobs aside");
    std::fs::write(blobs, b"not a folder").expect("break the bucket");
    let broken = Instant::now();
    let mut failed = false;
    while broken.elapsed() < Duration::from_secs(25) && !shared.abort.load(Ordering::SeqCst) {
        if let Some(h) = health(shared) {
            let run = &h["last_archival"];
            if run["outcome"] == "failed" && run["at"] != before["at"] {
                failed = true;
                if broken.elapsed() > Duration::from_secs(3) {
                    break;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    std::fs::remove_file(blobs).expect("remove the broken bucket file");
    std::fs::rename(&aside, blobs).expect("put the bucket's blobs back");
    failed
}

/// The faults, one at a time, in shuffled rounds, until the time is up and every kind ran
/// at least once (bounded: 3 minutes past the time).
fn nemesis(
    server: &mut Server,
    shared: &Shared,
    rng: &mut StdRng,
    seed: u64,
    seconds: u64,
) -> Storm {
    let mut storm = Storm::default();
    let start = Instant::now();
    let end = start + Duration::from_secs(seconds);
    let hard_end = end + Duration::from_secs(180);
    let mut queue: VecDeque<Fault> = VecDeque::new();
    let mut floods = 0u64;
    loop {
        let now = Instant::now();
        let all_ran = FAULTS.iter().all(|f| storm.injected.contains_key(f));
        if (now >= end && all_ran) || now >= hard_end {
            break;
        }
        if !shared.problems.lock().unwrap().is_empty() {
            eprintln!("nemesis: stopping early, the run already went wrong");
            break;
        }
        if queue.is_empty() {
            let mut round = FAULTS.to_vec();
            round.shuffle(rng);
            queue.extend(round);
        }
        std::thread::sleep(Duration::from_millis(rng.random_range(1000..=3500)));
        let fault = queue.pop_front().unwrap();
        let at = start.elapsed();
        let version = health(shared).map(|h| h["version"].clone());
        let what = match fault {
            Fault::Kill => {
                let down = Instant::now();
                server.crash();
                server.start_again();
                shared.set_base(server.base.clone());
                storm.kill_downtimes.push(down.elapsed());
                format!("back after {:?} on port {}", down.elapsed(), server.port)
            }
            Fault::RelayReset => {
                let relays = relay_list(shared);
                let busy: Vec<&Value> = relays
                    .iter()
                    .filter(|r| r["sockets"].as_u64() > Some(0))
                    .collect();
                let Some(relay) = busy.get(rng.random_range(0..busy.len().max(1))) else {
                    queue.push_back(fault);
                    continue;
                };
                let name = relay["relay"].as_str().unwrap().to_string();
                let path = format!("/api/admin/relays/reset?relay={name}");
                match admin_post(shared, &path, |r| r.status == 200) {
                    Ok(_) => format!("{name} with {} sockets", relay["sockets"]),
                    Err(other) => {
                        shared.problem(format!("resetting relay {name}: {other}"));
                        break;
                    }
                }
            }
            Fault::CounterRestart => {
                match admin_post(shared, "/api/admin/counter/restart", |r| r.status == 200) {
                    Ok(_) => String::new(),
                    Err(other) => {
                        shared.problem(format!("restarting the counter: {other}"));
                        break;
                    }
                }
            }
            Fault::EdgePanic => {
                // The panicking request's own answer: the problem+json 500 of src/entry.js.
                let panicked = |r: &common::Resp| {
                    r.status == 500 && r.header("content-type") == Some("application/problem+json")
                };
                match admin_post(shared, "/api/admin/edge/panic", panicked) {
                    Ok(_) => String::new(),
                    Err(other) => {
                        shared.problem(format!("the edge panic's answer: {other}"));
                        break;
                    }
                }
            }
            Fault::R2Failing => {
                // Ready once something was archived (the bucket exists) and the next run is
                // near (within ~300 changes); until then the other faults go first.
                let hot = health(shared).and_then(|h| h["hot_entries"].as_u64());
                let near = hot.is_some_and(|h| h + 300 >= HOT + SEGMENT);
                let only = queue.iter().all(|f| *f == Fault::R2Failing);
                let b = match Server::r2_blobs_in(&server.state) {
                    Some(b) if near || only => b,
                    _ => {
                        queue.push_back(fault);
                        if only {
                            // The others of a new round meanwhile.
                            let mut round: Vec<Fault> =
                                FAULTS.into_iter().filter(|f| *f != fault).collect();
                            round.shuffle(rng);
                            queue.extend(round);
                        }
                        continue;
                    }
                };
                let failed = r2_failing(shared, &b);
                storm.r2_failed_runs += u64::from(failed);
                if failed {
                    "an archival run failed meanwhile".into()
                } else {
                    "no archival run was due meanwhile".into()
                }
            }
            Fault::Flood => {
                let first = 1_000 + 16 * floods as usize;
                let log = load::flood(
                    shared,
                    first,
                    8,
                    seed.wrapping_add(40_000 + 100 * floods),
                    20,
                );
                floods += 1;
                if log.refused.is_empty() {
                    shared.problem(format!(
                        "a flood of {} changes from one address past the limit of {RATE_LIMIT} per 10 s got no 429",
                        log.sent
                    ));
                }
                let what = format!(
                    "{} sent, {} applied, {} refused",
                    log.sent,
                    log.acks.len(),
                    log.refused.len()
                );
                storm.flood.sent += log.sent;
                storm.flood.acks.extend(log.acks);
                storm.flood.refused.extend(log.refused);
                what
            }
        };
        *storm.injected.entry(fault).or_default() += 1;
        // Survived: the load resumes (32 more changes acknowledged).
        let resumed = load_resumed(shared, 32, Duration::from_secs(180));
        println!(
            "{:>6.1} s {:<16} at version {} {what}; load {}",
            at.as_secs_f64(),
            fault.name(),
            version.unwrap_or(Value::Null),
            if resumed { "resumed" } else { "DID NOT RESUME" }
        );
        if resumed {
            storm.survived += 1;
        } else {
            shared.problem(format!(
                "the load did not resume within 180 s after {fault:?}; retries so far: {:?}",
                shared.failures.lock().unwrap()
            ));
            break;
        }
    }
    storm
}

/// Waits until archival has caught up (every due segment in R2, the last run ok): bounded.
fn settled(server: &Server) -> Value {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let h = server.health();
        let version = h["version"].as_u64().unwrap();
        let archived = version.saturating_sub(HOT) / SEGMENT * SEGMENT;
        if h["archived_entries"] == archived
            && h["hot_entries"] == version - archived
            && (archived == 0 || h["last_archival"]["outcome"] == "ok")
        {
            return h;
        }
        assert!(
            Instant::now() < deadline,
            "archival did not catch up within 180 s after the storm: {h}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn text(out: &std::process::Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[allow(clippy::too_many_lines)]
fn verify_everything(
    server: &Server,
    shared: &Shared,
    o: Outcome,
    seed: u64,
    seconds: u64,
    started: Instant,
    load_done: Duration,
) {
    let checking = Instant::now();
    let final_health = settled(server);
    let final_health_at = Instant::now();
    println!("archival caught up after {:?}", started.elapsed());
    let audit = server.audit_all();
    let n = audit.len() as u64;
    assert_eq!(n, o.last, "the trail's length is not the last version");

    // The trail: versions 1..=n, each previous_value the value before, each value following
    // from its operation; one entry per key.
    let mut gaps = 0u64;
    let mut running = 0i64;
    let mut by_key: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
    let mut values = Vec::with_capacity(audit.len() + 1);
    values.push(0i64);
    for (i, e) in audit.iter().enumerate() {
        let version = e["version"].as_u64().unwrap();
        let amount = e["amount"].as_i64().unwrap();
        let delta = match e["operation"].as_str() {
            Some("increment") => amount,
            Some("decrement") => -amount,
            other => panic!("unexpected operation {other:?} in {e}"),
        };
        if version != i as u64 + 1
            || e["previous_value"] != running
            || e["value"] != running + delta
        {
            gaps += 1;
            eprintln!(
                "the trail breaks at {e} (expected version {}, previous value {running})",
                i + 1
            );
        }
        running = e["value"].as_i64().unwrap();
        values.push(running);
        by_key
            .entry(e["request_id"].as_str().unwrap())
            .or_default()
            .push(e);
    }

    // Every acknowledged change: in the trail exactly once, as its client was told.
    let mut acks: Vec<&Ack> = o.acks.iter().chain(&o.storm.flood.acks).collect();
    acks.sort_by_key(|a| a.record.op.version);
    let mut lost = 0u64;
    let mut doubled = 0u64;
    let mut mismatched = Vec::new();
    let acked: BTreeSet<&str> = acks.iter().map(|a| a.key.as_str()).collect();
    assert_eq!(
        acked.len(),
        acks.len(),
        "a key was acknowledged twice in the records"
    );
    for a in &acks {
        match by_key.get(a.key.as_str()).map(Vec::as_slice) {
            None | Some([]) => {
                lost += 1;
                eprintln!("lost: {a:?}");
            }
            Some([e]) => {
                let op = &a.record.op;
                let kind = if op.kind == Kind::Increment {
                    "increment"
                } else {
                    "decrement"
                };
                if e["version"] != op.version
                    || e["value"] != op.value
                    || e["previous_value"] != a.previous_value
                    || e["amount"] != op.amount
                    || e["operation"] != kind
                {
                    mismatched.push(format!("{a:?} vs {e}"));
                }
            }
            Some(many) => {
                doubled += 1;
                eprintln!("applied {} times: {many:?}", many.len());
            }
        }
    }
    // And nothing else: no refused change, no key twice.
    let refused: BTreeSet<&str> = o.storm.flood.refused.iter().map(String::as_str).collect();
    for (k, entries) in &by_key {
        if entries.len() > 1 && !acked.contains(k) {
            doubled += 1;
            eprintln!(
                "an unacknowledged key applied {} times: {entries:?}",
                entries.len()
            );
        }
        if !acked.contains(k) {
            mismatched.push(format!(
                "{} in the trail but never acknowledged{}",
                k,
                if refused.contains(k) {
                    " (its only answer was 429)"
                } else {
                    ""
                }
            ));
        }
    }

    // The history: every acknowledged change (invoked at its first attempt, returned at its
    // acknowledgement) and every linearizable read.
    let mut history: Vec<Record> = acks.iter().map(|a| a.record.clone()).collect();
    history.extend(o.reads.iter().cloned());
    let changes = acks.len();
    let t = Instant::now();
    let order = check::versioned_order(&history);
    let direct = t.elapsed();
    let t = Instant::now();
    let wgl = check::wgl_in_chunks(&history, WGL_CHUNK);
    let wgl_time = t.elapsed();
    // The checkers are not vacuous on this very history: two changes in sequence with their
    // answers swapped, and a read that claims the state before a change that had returned
    // before it began, are both refused.
    let (a, b) = (0..acks.len().saturating_sub(1))
        .map(|i| (i, i + 1))
        .find(|&(i, j)| acks[i].record.returned < acks[j].record.invoked)
        .expect("two changes one after the other");
    let mut swapped = history.clone();
    let (oa, ob) = (swapped[a].op, swapped[b].op);
    (swapped[a].op.value, swapped[a].op.version) = (ob.value, ob.version);
    (swapped[b].op.value, swapped[b].op.version) = (oa.value, oa.version);
    assert!(
        check::versioned_order(&swapped).is_some(),
        "swapped answers were accepted"
    );
    if let Some(r) = (changes..history.len()).find(|&r| history[r].op.version > 0) {
        let mut stale = history.clone();
        let v = stale[r].op.version;
        if let Some(m) = acks
            .iter()
            .find(|a| a.record.op.version == v && a.record.returned < stale[r].invoked)
        {
            stale[r].op.version = v - 1;
            stale[r].op.value = m.record.op.value - m.record.op.delta();
            assert!(
                check::versioned_order(&stale).is_some(),
                "a stale read was accepted"
            );
            assert!(
                check::wgl_in_chunks(&stale, WGL_CHUNK).is_err(),
                "WGL accepted a stale read"
            );
        }
    }

    // Nearby reads: committed states only (the version's value in the trail, and its change
    // invoked before the read returned), read-your-writes with min_version.
    let invoked_at: BTreeMap<u64, Instant> = acks
        .iter()
        .map(|a| (a.record.op.version, a.record.invoked))
        .collect();
    let mut nearby_bad = Vec::new();
    for r in &o.nearby {
        let v = r.version;
        let committed = v <= n && values[v as usize] == r.value;
        let not_early = v == 0 || invoked_at.get(&v).is_some_and(|t| *t < r.returned);
        let own = r.min_version.is_none_or(|m| v >= m);
        if !(committed && not_early && own) {
            nearby_bad.push(format!("from {}: {r:?}", r.ip));
        }
    }
    let from_relays = o.nearby.iter().filter(|r| r.source == "relay").count();

    // Sockets: from its first snapshot to the last version, every update once, in order,
    // matching the trail (the digest over its range).
    let mut prefix = vec![0u64; values.len()];
    for v in 1..values.len() {
        prefix[v] = prefix[v - 1].wrapping_add(check::term(v as u64, values[v]));
    }
    let mut socket_problems: Vec<String> = Vec::new();
    let mut updates = 0u64;
    let mut reconnects = 0u64;
    let mut closes: BTreeMap<String, u64> = BTreeMap::new();
    for rep in &o.reports {
        for (how, k) in &rep.closes {
            *closes.entry(how.clone()).or_default() += k;
        }
        gaps += rep.gaps;
        updates += rep.updates;
        reconnects += rep.reconnects;
        socket_problems.extend(rep.problems.iter().cloned());
        if rep.last != n {
            socket_problems.push(format!("{} ended at {} of {n}", rep.ip, rep.last));
        } else if rep.first <= n
            && rep.gaps == 0
            && (rep.updates != n - rep.first
                || rep.digest != prefix[n as usize].wrapping_sub(prefix[rep.first as usize]))
        {
            gaps += 1;
            socket_problems.push(format!(
                "{}: its stream from {} to {n} is not the trail's ({} updates)",
                rep.ip, rep.first, rep.updates
            ));
        }
    }

    // Checkpoints: in order, each signed, each the root of the trail's prefix of its size.
    let verifier = signing_key().verifier();
    let mut cps: Vec<(Checkpoint, &String)> = Vec::new();
    for note in &o.notes {
        let text = verifier
            .open(note)
            .expect("a checkpoint's signature verifies");
        cps.push((Checkpoint::parse(text).expect("a checkpoint"), note));
    }
    for w in cps.windows(2) {
        assert!(
            w[0].0.size <= w[1].0.size,
            "a checkpoint went back: {} after {}",
            w[1].0.size,
            w[0].0.size
        );
    }
    let mut auditor = Auditor::new();
    let mut lines: Vec<Vec<u8>> = Vec::with_capacity(audit.len());
    let mut roots: BTreeMap<u64, number_acidizer::core::merkle::Hash> = BTreeMap::new();
    roots.insert(0, auditor.root());
    for e in &audit {
        let entry = ledger::entry_from_json(e).expect("an audit entry");
        auditor.push(&entry).expect("the trail replays");
        roots.insert(auditor.size(), auditor.root());
        lines.push(ledger::leaf_bytes(&entry));
    }
    for (cp, _) in &cps {
        assert_eq!(
            roots.get(&cp.size),
            Some(&cp.root),
            "the checkpoint of size {} is not the root of the trail's prefix",
            cp.size
        );
    }
    // audit-verify through --state: each chosen checkpoint against its prefix of the export
    // lines (the one file grows as the chain goes), each extending the one before; then the
    // final server extends the last.
    let mut chain: Vec<&(Checkpoint, &String)> = cps.iter().filter(|(c, _)| c.size > 0).collect();
    chain.dedup_by_key(|(c, _)| c.size);
    if chain.len() > VERIFIER_CHAIN {
        let k = chain.len();
        chain = (0..VERIFIER_CHAIN)
            .map(|i| chain[i * (k - 1) / (VERIFIER_CHAIN - 1)])
            .collect();
    }
    let dir = common::temp_dir("soak-verify");
    let state = dir.join("state");
    let export = dir.join("audit.ndjson");
    let vkey = verifier.to_text();
    let mut file = std::fs::File::create(&export).unwrap();
    let mut written = 0u64;
    let mut previous: Option<u64> = None;
    for (cp, note) in &chain {
        use std::io::Write;
        while written < cp.size {
            file.write_all(&lines[written as usize]).unwrap();
            file.write_all(b"\n").unwrap();
            written += 1;
        }
        file.flush().unwrap();
        let cp_file = dir.join(format!("checkpoint-{}", cp.size));
        std::fs::write(&cp_file, note).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_audit-verify"))
            .args(["--export", &export.display().to_string()])
            .args(["--checkpoint", &cp_file.display().to_string()])
            .args(["--key", &vkey, "--state", &state.display().to_string()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "checkpoint of size {}: {}",
            cp.size,
            text(&out)
        );
        if let Some(p) = previous {
            assert!(
                String::from_utf8_lossy(&out.stdout)
                    .contains(&format!("extends the saved checkpoint of size {p}")),
                "{}",
                text(&out)
            );
        }
        previous = Some(cp.size);
    }
    let out = Command::new(env!("CARGO_BIN_EXE_audit-verify"))
        .args(["--server", &server.base, "--key", &vkey])
        .args(["--state", &state.display().to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "the final server: {}", text(&out));
    if let Some(p) = previous {
        assert!(
            String::from_utf8_lossy(&out.stdout)
                .contains(&format!("extends the saved checkpoint of size {p}")),
            "{}",
            text(&out)
        );
    }

    // The database stayed bounded. The hot window holds at most HOT + one segment once
    // archival caught up, and while it runs behind (R2 broken, the runtime down, an archival
    // run backing off) at most the changes of a minute more. Keys are kept RETENTION_SECONDS
    // and expired by the alarm, so at most the changes of RETENTION_SECONDS plus a minute are
    // remembered at once (checked below where the run is long enough: the oldest key left is
    // younger than that). docs/CONFIGURATION.md puts an entry with its key and Merkle row at
    // about 250 bytes (25 MB per 100,000); the byte bound gives 512 bytes to each hot entry
    // and to each remembered key, plus 2 MiB for the schema, the small tables and free pages.
    let per_minute = max_in_window(&acks, Duration::from_secs(60));
    let keys_bound = max_in_window(&acks, Duration::from_secs(RETENTION_SECONDS + 60));
    let hot_bound = HOT + SEGMENT + per_minute;
    let bytes_bound = 2 * 1024 * 1024 + 512 * (hot_bound + keys_bound);
    let max_hot = o.samples.iter().map(|s| s.hot_entries).max().unwrap_or(0);
    // The newest change acknowledged more than RETENTION_SECONDS + 2 minutes before archival
    // settled: its key, and every older one, must be gone.
    let expired_by = final_health_at.checked_sub(Duration::from_secs(RETENTION_SECONDS + 120));
    let must_be_expired = expired_by.and_then(|t| {
        acks.iter()
            .filter(|a| a.record.returned < t)
            .max_by_key(|a| a.record.op.version)
            .map(|a| audit[a.record.op.version as usize - 1]["at"].clone())
    });
    let oldest_key_at = final_health["oldest_key_at"].clone();
    let max_bytes = o
        .samples
        .iter()
        .map(|s| s.database_bytes)
        .chain(final_health["database_bytes"].as_u64())
        .max()
        .unwrap_or(0);

    let ops = history.len();
    // Changes whose only answer came from a replay (applied, the answer lost to a fault),
    // and the most attempts one change needed.
    let replayed = acks.iter().filter(|a| a.replayed).count();
    let max_attempts = acks.iter().map(|a| a.attempts).max().unwrap_or(0);
    let faults: BTreeMap<&str, u64> = o
        .storm
        .injected
        .iter()
        .map(|(f, n)| (f.name(), *n))
        .collect();
    let injected: u64 = faults.values().sum();
    let summary = json!({
        "seconds": seconds,
        "seed": seed,
        "operations": ops,
        "changes": changes,
        "linearizable_reads": o.reads.len(),
        "nearby_reads": o.nearby.len(),
        "nearby_from_relays": from_relays,
        "sockets": o.reports.len(),
        "socket_updates": updates,
        "socket_reconnects": reconnects,
        "socket_closes": closes,
        "checkpoints": cps.len(),
        "checkpoints_through_audit_verify": chain.len(),
        "final_version": n,
        "faults": faults,
        "faults_injected": injected,
        "faults_survived": o.storm.survived,
        "r2_failed_archival_runs": o.storm.r2_failed_runs,
        "kill_downtime_ms": o.storm.kill_downtimes.iter().map(|d| d.as_millis() as u64).collect::<Vec<_>>(),
        "flood": {"sent": o.storm.flood.sent, "applied": o.storm.flood.acks.len(), "refused": o.storm.flood.refused.len()},
        "requests": shared.requests.load(Ordering::Relaxed),
        "retries": shared.retries.load(Ordering::Relaxed),
        "answered_by_replay": replayed,
        "max_attempts": max_attempts,
        "max_hot_entries": max_hot,
        "hot_entries_bound": hot_bound,
        "max_database_bytes": max_bytes,
        "oldest_key_at": oldest_key_at,
        "keys_expired_up_to": must_be_expired,
        "database_bytes_bound": bytes_bound,
        "lost": lost,
        "doubled": doubled,
        "gaps": gaps,
        "check_ms": {"direct": direct.as_millis() as u64, "wgl": wgl_time.as_millis() as u64},
        "load_seconds": load_done.as_secs(),
        "total_seconds": started.elapsed().as_secs(),
    });
    println!(
        "soak summary: {ops} operations ({changes} changes, {} linearizable reads; {} nearby reads, {updates} socket updates over {} sockets with {reconnects} resumes); \
         faults injected {faults:?} = {injected}, survived {}/{injected} ({} failed archival runs while R2 was broken); \
         {} checkpoints ({} through audit-verify); version {n}; max hot entries {max_hot} (bound {hot_bound}), max database bytes {max_bytes} (bound {bytes_bound}); \
         lost={lost} doubled={doubled} gaps={gaps}; history checked in {direct:?} directly and {wgl_time:?} by WGL; {:?} in all",
        o.reads.len(),
        o.nearby.len(),
        o.reports.len(),
        o.storm.survived,
        o.storm.r2_failed_runs,
        cps.len(),
        chain.len(),
        started.elapsed()
    );
    println!("socket closes by code: {closes:?}");
    println!(
        "retries: {:?}; {replayed} changes answered by a replay; at most {max_attempts} attempts for one change",
        shared.failures.lock().unwrap()
    );
    if let Ok(path) = std::env::var("SOAK_RESULTS") {
        let path = common::root().join(path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&summary).unwrap() + "\n",
        )
        .unwrap();
        println!("summary written to {}", path.display());
    }
    println!("checked in {:?}", checking.elapsed());

    assert_eq!(
        lost, 0,
        "acknowledged changes are missing from the trail (seed {seed})"
    );
    assert_eq!(
        doubled, 0,
        "changes were applied more than once (seed {seed})"
    );
    assert!(
        mismatched.is_empty(),
        "the trail disagrees with the answers (seed {seed}):\n{}",
        mismatched.join("\n")
    );
    assert!(
        socket_problems.is_empty() && gaps == 0,
        "streams with gaps (seed {seed}):\n{}",
        socket_problems.join("\n")
    );
    assert_eq!(order, None, "the history is not linearizable (seed {seed})");
    let pieces =
        wgl.unwrap_or_else(|e| panic!("the WGL checker refused the history (seed {seed}): {e}"));
    assert!(
        pieces as u64 >= n / WGL_CHUNK,
        "{pieces} pieces for {n} versions"
    );
    assert!(
        nearby_bad.is_empty(),
        "nearby reads of states not committed or older than asked (seed {seed}):\n{}",
        nearby_bad.join("\n")
    );
    assert!(from_relays > 0, "no nearby read came from a relay");
    assert_eq!(o.storm.survived, injected, "not every fault was survived");
    for f in FAULTS {
        assert!(
            o.storm.injected.contains_key(&f),
            "{f:?} was never injected"
        );
    }
    assert!(
        max_hot <= hot_bound,
        "hot entries {max_hot} over the bound {hot_bound}"
    );
    assert!(
        max_bytes <= bytes_bound,
        "database bytes {max_bytes} over the bound {bytes_bound}"
    );
    if let (Some(gone), Some(oldest)) = (must_be_expired.as_ref(), oldest_key_at.as_str()) {
        assert!(
            oldest > gone.as_str().unwrap(),
            "keys are not expired: the oldest is from {oldest}, yet every key up to {gone} is older than the retention"
        );
    }
    if seconds >= 600 {
        assert!(ops >= 20_000, "the long run checked only {ops} operations");
    }
}

/// The most acknowledgements within any window of `d`.
fn max_in_window(acks: &[&Ack], d: Duration) -> u64 {
    let mut times: Vec<Instant> = acks.iter().map(|a| a.record.returned).collect();
    times.sort();
    let mut best = 0;
    let mut lo = 0;
    for hi in 0..times.len() {
        while times[hi].duration_since(times[lo]) > d {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    best as u64
}
