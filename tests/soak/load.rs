//! The soak's load: clients that change the counter under their own keys until each change
//! is acknowledged, readers of both consistencies, the flooder, and the samplers of
//! checkpoints and health. Everything here only knows the server by its current address
//! (`Shared::base`), which changes when the runtime is killed and started again.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

use crate::check::{Kind, Op, Record};
use crate::common::{dev_proxy_lost, try_request};

/// A change not acknowledged this long after its first attempt fails the run. Generous: the
/// local dev server reloads the Worker whenever src/ changes under it, and a reload under this
/// load has held every request for over a minute on a busy machine. Kept under the idempotency
/// retention the server is given, so a retry never meets a forgotten key.
pub const ACK_LIMIT: Duration = Duration::from_secs(240);

/// What the threads share with the test.
pub struct Shared {
    base: RwLock<String>,
    /// Writers, readers and samplers stop.
    pub stop_load: AtomicBool,
    /// The version every socket must reach before it stops (0: not known yet).
    pub target: AtomicU64,
    /// Everything stops (the test is failing).
    pub abort: AtomicBool,
    /// Changes acknowledged (first acknowledgements; the nemesis waits on it after a fault).
    pub acked: AtomicU64,
    pub requests: AtomicU64,
    pub retries: AtomicU64,
    /// Why requests were retried, with counts.
    pub failures: Mutex<BTreeMap<String, u64>>,
    /// What a thread found wrong; the test fails with all of it.
    pub problems: Mutex<Vec<String>>,
}

impl Shared {
    pub fn new(base: String) -> Shared {
        Shared {
            base: RwLock::new(base),
            stop_load: AtomicBool::new(false),
            target: AtomicU64::new(0),
            abort: AtomicBool::new(false),
            acked: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            failures: Mutex::new(BTreeMap::new()),
            problems: Mutex::new(Vec::new()),
        }
    }

    pub fn base(&self) -> String {
        self.base.read().unwrap().clone()
    }

    pub fn set_base(&self, base: String) {
        *self.base.write().unwrap() = base;
    }

    pub fn port(&self) -> u16 {
        let base = self.base();
        base.rsplit(':').next().unwrap().parse().unwrap()
    }

    pub fn problem(&self, what: String) {
        eprintln!("soak problem: {what}");
        self.problems.lock().unwrap().push(what);
    }

    pub fn stopping(&self) -> bool {
        self.stop_load.load(Ordering::SeqCst) || self.abort.load(Ordering::SeqCst)
    }

    pub fn failed(&self, why: String) {
        *self.failures.lock().unwrap().entry(why).or_default() += 1;
        self.retries.fetch_add(1, Ordering::Relaxed);
    }
}

/// Sets `abort` when dropped: a failing test takes every thread down with it.
pub struct AbortOnDrop<'a>(pub &'a Shared);

impl Drop for AbortOnDrop<'_> {
    fn drop(&mut self) {
        self.0.abort.store(true, Ordering::SeqCst);
    }
}

/// A change acknowledged with 200: what it was and what it was told.
#[derive(Clone, Debug)]
pub struct Ack {
    pub key: String,
    pub record: Record,
    pub previous_value: i64,
    pub attempts: u32,
    /// Answered as a replay: an earlier attempt was applied, its answer lost.
    pub replayed: bool,
}

/// A nearby read (`consistency=nearby`), with the `min_version` it asked for.
#[derive(Clone, Debug)]
pub struct Nearby {
    pub ip: String,
    pub returned: Instant,
    pub min_version: Option<u64>,
    pub version: u64,
    pub value: i64,
    pub source: String,
}

/// How sending one change ended.
pub enum Outcome {
    Acked(Ack),
    /// 429 to the change's only attempt: refused, not applied (the flooder's).
    Refused,
    /// Something else than a retryable failure, or no acknowledgement within `ACK_LIMIT`:
    /// a problem is recorded, and the client stops (its key's fate is unknown).
    GaveUp,
}

pub struct Change<'a> {
    pub process: usize,
    pub key: &'a str,
    pub kind: Kind,
    /// `None`: no body, which means 1.
    pub amount: Option<u32>,
    pub ip: &'a str,
    /// The flooder's: a 429 is expected.
    pub flood: bool,
}

/// Sends a change until a 200 acknowledges it: a connection error or a 5xx is retried with
/// the same key after a jittered backoff, through restarts and panics.
pub fn send(shared: &Shared, c: &Change, rng: &mut StdRng) -> Outcome {
    let op = if c.kind == Kind::Increment {
        "increment"
    } else {
        "decrement"
    };
    let path = format!("/api/{op}");
    let body = c.amount.map(|a| format!("{{\"amount\":{a}}}"));
    let mut headers = vec![("idempotency-key", c.key), ("cf-connecting-ip", c.ip)];
    if body.is_some() {
        headers.push(("content-type", "application/json"));
    }
    let amount = i64::from(c.amount.unwrap_or(1));
    let invoked = Instant::now();
    let mut backoff = Duration::from_millis(20);
    let mut attempts = 0;
    let mut last;
    loop {
        if shared.abort.load(Ordering::SeqCst) {
            return Outcome::GaveUp;
        }
        attempts += 1;
        shared.requests.fetch_add(1, Ordering::Relaxed);
        let base = shared.base();
        let result = try_request(
            &base,
            "POST",
            &path,
            &headers,
            body.as_deref().map(str::as_bytes),
        );
        let mut wait = None;
        match result {
            Ok(r) if r.status == 200 => {
                let returned = Instant::now();
                let v: Value = match serde_json::from_str(&r.body) {
                    Ok(v) => v,
                    Err(e) => {
                        shared.problem(format!(
                            "{} got a 200 that is not JSON ({e}): {:?}",
                            c.key, r.body
                        ));
                        return Outcome::GaveUp;
                    }
                };
                let (Some(version), Some(value), Some(previous)) = (
                    v["version"].as_u64(),
                    v["value"].as_i64(),
                    v["previous_value"].as_i64(),
                ) else {
                    shared.problem(format!(
                        "{} got a 200 without version and values: {v}",
                        c.key
                    ));
                    return Outcome::GaveUp;
                };
                if v["request_id"] != c.key || v["operation"] != op || v["amount"] != amount {
                    shared.problem(format!(
                        "{} ({op} {amount}) was answered for another change: {v}",
                        c.key
                    ));
                    return Outcome::GaveUp;
                }
                return Outcome::Acked(Ack {
                    key: c.key.to_string(),
                    record: Record {
                        process: c.process,
                        invoked,
                        returned,
                        op: Op {
                            kind: c.kind,
                            amount,
                            value,
                            version,
                        },
                    },
                    previous_value: previous,
                    attempts,
                    replayed: r.header("idempotent-replayed") == Some("true"),
                });
            }
            Ok(r) if r.status == 429 && c.flood => {
                if r.header("retry-after").is_none() {
                    shared.problem(format!("a 429 without Retry-After: {r:?}"));
                }
                if attempts == 1 {
                    return Outcome::Refused;
                }
                // An earlier attempt's fate is unknown: it may still be applied. Keep asking
                // under the same key once the window has room again.
                last = format!("429 after an unanswered attempt: {}", r.body);
                shared.failed("429 (flooder, after an unanswered attempt)".into());
                let secs: u64 = r
                    .header("retry-after")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(1);
                wait = Some(Duration::from_secs(secs.clamp(1, 10)));
            }
            Ok(r) if r.status >= 500 || dev_proxy_lost(&r) => {
                last = format!("{} {}", r.status, r.body);
                shared.failed(format!("status {}", r.status));
            }
            Ok(r) => {
                shared.problem(format!(
                    "{op} with key {} from {} got {} (only 200 or a retryable failure may answer it): {}",
                    c.key, c.ip, r.status, r.body
                ));
                return Outcome::GaveUp;
            }
            Err(e) => {
                last = e;
                shared.failed("connection error".into());
            }
        }
        if invoked.elapsed() > ACK_LIMIT {
            shared.problem(format!(
                "{op} with key {} was not acknowledged within {ACK_LIMIT:?} ({attempts} attempts); last failure: {last}",
                c.key
            ));
            return Outcome::GaveUp;
        }
        let pause = wait.unwrap_or_else(|| backoff.mul_f64(rng.random_range(0.5..1.0)));
        std::thread::sleep(pause);
        backoff = (backoff * 2).min(Duration::from_millis(500));
    }
}

/// A random change: 40% decrements; amounts over the whole range the API accepts.
pub fn random_change(rng: &mut StdRng) -> (Kind, Option<u32>) {
    let kind = if rng.random_bool(0.4) {
        Kind::Decrement
    } else {
        Kind::Increment
    };
    let amount = match rng.random_range(0..10) {
        0 => None,
        1 => Some(rng.random_range(1..=1_000_000)),
        2 => Some(1_000_000),
        _ => Some(rng.random_range(1..=1000)),
    };
    (kind, amount)
}

/// One nearby read; `None` when it failed on the way (a fault), which is not an answer.
pub fn nearby(shared: &Shared, ip: &str, min_version: Option<u64>) -> Option<Nearby> {
    let path = match min_version {
        Some(v) => format!("/api/value?consistency=nearby&min_version={v}"),
        None => "/api/value?consistency=nearby".to_string(),
    };
    shared.requests.fetch_add(1, Ordering::Relaxed);
    let r = match try_request(
        &shared.base(),
        "GET",
        &path,
        &[("cf-connecting-ip", ip)],
        None,
    ) {
        Ok(r) => r,
        Err(_) => {
            shared.failed("nearby read: connection error".into());
            return None;
        }
    };
    let returned = Instant::now();
    if r.status >= 500 || dev_proxy_lost(&r) {
        shared.failed(format!("nearby read: status {}", r.status));
        return None;
    }
    if r.status != 200 {
        shared.problem(format!("{path} got {}: {}", r.status, r.body));
        return None;
    }
    let v: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
    let (Some(version), Some(value)) = (v["version"].as_u64(), v["value"].as_i64()) else {
        shared.problem(format!("{path}: no version and value: {}", r.body));
        return None;
    };
    Some(Nearby {
        ip: ip.to_string(),
        returned,
        min_version,
        version,
        value,
        source: v["source"].as_str().unwrap_or("").to_string(),
    })
}

/// One linearizable read as a record of the history; `None` when it failed on the way.
pub fn linearizable_read(shared: &Shared, process: usize, ip: &str) -> Option<Record> {
    let invoked = Instant::now();
    shared.requests.fetch_add(1, Ordering::Relaxed);
    let r = match try_request(
        &shared.base(),
        "GET",
        "/api/value",
        &[("cf-connecting-ip", ip)],
        None,
    ) {
        Ok(r) => r,
        Err(_) => {
            shared.failed("read: connection error".into());
            return None;
        }
    };
    let returned = Instant::now();
    if r.status >= 500 || dev_proxy_lost(&r) {
        shared.failed(format!("read: status {}", r.status));
        return None;
    }
    if r.status != 200 {
        shared.problem(format!("GET /api/value got {}: {}", r.status, r.body));
        return None;
    }
    let v: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
    let (Some(version), Some(value)) = (v["version"].as_u64(), v["value"].as_i64()) else {
        shared.problem(format!("GET /api/value: no version and value: {}", r.body));
        return None;
    };
    Some(Record {
        process,
        invoked,
        returned,
        op: Op {
            kind: Kind::Read,
            amount: 0,
            value,
            version,
        },
    })
}

/// What a writer leaves behind.
#[derive(Default)]
pub struct WriterLog {
    pub acks: Vec<Ack>,
    pub nearby: Vec<Nearby>,
}

/// A client with its own address: one change at a time, each retried under its key until
/// acknowledged, then a pause that keeps it well under the rate limit (at most one applied
/// change per `pace.0` ms: the limit counts applied changes, and an applied change's answer
/// comes before the next is sent). Now and then a nearby read of its own last write.
pub fn writer(shared: &Shared, process: usize, seed: u64, pace: (u64, u64)) -> WriterLog {
    let mut rng = StdRng::seed_from_u64(seed);
    let ip = format!("10.77.{}.{}", process / 256, process % 256);
    let mut log = WriterLog::default();
    let mut n = 0;
    while !shared.stopping() {
        let (kind, amount) = random_change(&mut rng);
        let key = format!("soak-{seed}-{n}");
        n += 1;
        let change = Change {
            process,
            key: &key,
            kind,
            amount,
            ip: &ip,
            flood: false,
        };
        match send(shared, &change, &mut rng) {
            Outcome::Acked(ack) => {
                shared.acked.fetch_add(1, Ordering::SeqCst);
                let version = ack.record.op.version;
                log.acks.push(ack);
                if rng.random_bool(0.15) {
                    log.nearby.extend(nearby(shared, &ip, Some(version)));
                }
            }
            Outcome::Refused | Outcome::GaveUp => break,
        }
        std::thread::sleep(Duration::from_millis(rng.random_range(pace.0..=pace.1)));
    }
    log
}

/// A reader: linearizable reads (into the history) and nearby reads without `min_version`.
pub fn reader(shared: &Shared, process: usize, seed: u64) -> (Vec<Record>, Vec<Nearby>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let ip = format!("10.78.0.{process}");
    let (mut reads, mut near) = (Vec::new(), Vec::new());
    while !shared.stopping() {
        if rng.random_bool(0.6) {
            reads.extend(linearizable_read(shared, process, &ip));
        } else {
            near.extend(nearby(shared, &ip, None));
        }
        std::thread::sleep(Duration::from_millis(rng.random_range(40..=160)));
    }
    (reads, near)
}

/// What one flood left behind.
#[derive(Default)]
pub struct FloodLog {
    pub acks: Vec<Ack>,
    pub refused: Vec<String>,
    pub sent: u64,
}

/// One client address sends keyed changes from `threads` connections as fast as it can, past
/// the rate limit, until `want_refused` of them were refused (bounded in count and time).
pub fn flood(
    shared: &Shared,
    first_process: usize,
    threads: usize,
    seed: u64,
    want_refused: u64,
) -> FloodLog {
    let refused = AtomicU64::new(0);
    let sent = AtomicU64::new(0);
    let started = Instant::now();
    let logs: Vec<FloodLog> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (refused, sent) = (&refused, &sent);
                s.spawn(move || {
                    let mut rng = StdRng::seed_from_u64(seed.wrapping_add(t as u64));
                    let mut log = FloodLog::default();
                    let mut i = 0;
                    while refused.load(Ordering::SeqCst) < want_refused
                        && sent.fetch_add(1, Ordering::SeqCst) < 3_000
                        && started.elapsed() < Duration::from_secs(60)
                        && !shared.abort.load(Ordering::SeqCst)
                    {
                        let key = format!("flood-{seed}-{t}-{i}");
                        i += 1;
                        let (kind, amount) = random_change(&mut rng);
                        let change = Change {
                            process: first_process + t,
                            key: &key,
                            kind,
                            amount,
                            ip: "10.66.0.1",
                            flood: true,
                        };
                        log.sent += 1;
                        match send(shared, &change, &mut rng) {
                            Outcome::Acked(ack) => {
                                shared.acked.fetch_add(1, Ordering::SeqCst);
                                log.acks.push(ack);
                            }
                            Outcome::Refused => {
                                refused.fetch_add(1, Ordering::SeqCst);
                                log.refused.push(key);
                            }
                            Outcome::GaveUp => break,
                        }
                    }
                    log
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a flood thread failed"))
            .collect()
    });
    let mut all = FloodLog::default();
    for l in logs {
        all.acks.extend(l.acks);
        all.refused.extend(l.refused);
        all.sent += l.sent;
    }
    all
}

/// Checkpoints (`GET /api/audit/checkpoint`) every 1.5–3.5 s, in the order they were taken.
pub fn checkpoints(shared: &Shared, seed: u64) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut notes = Vec::new();
    while !shared.stopping() {
        if let Ok(r) = try_request(&shared.base(), "GET", "/api/audit/checkpoint", &[], None) {
            if r.status == 200 {
                notes.push(r.body);
            } else if r.status < 500 {
                shared.problem(format!(
                    "GET /api/audit/checkpoint got {}: {}",
                    r.status, r.body
                ));
            }
        }
        sleep_unless_stopping(shared, Duration::from_millis(rng.random_range(1500..=3500)));
    }
    notes
}

/// One `GET /api/health` sample.
#[derive(Clone, Debug)]
pub struct HealthSample {
    pub hot_entries: u64,
    pub database_bytes: u64,
}

/// `/api/health` about once a second.
pub fn health_samples(shared: &Shared) -> Vec<HealthSample> {
    let mut out = Vec::new();
    while !shared.stopping() {
        if let Ok(r) = try_request(&shared.base(), "GET", "/api/health", &[], None) {
            if r.status == 200 {
                let h: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
                if let (Some(hot), Some(bytes)) =
                    (h["hot_entries"].as_u64(), h["database_bytes"].as_u64())
                {
                    out.push(HealthSample {
                        hot_entries: hot,
                        database_bytes: bytes,
                    });
                }
            }
        }
        sleep_unless_stopping(shared, Duration::from_secs(1));
    }
    out
}

fn sleep_unless_stopping(shared: &Shared, d: Duration) {
    let until = Instant::now() + d;
    while Instant::now() < until && !shared.stopping() {
        std::thread::sleep(Duration::from_millis(50));
    }
}
