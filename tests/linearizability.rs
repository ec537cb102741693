//! Linearizability: a concurrent history of increments, decrements and reads, recorded against
//! the real runtime, is checked with a Wing & Gong / Lowe checker (`todc_utils::WGLChecker`)
//! against two sequential models: a plain counter (the value) and the counter with its version
//! (value and version together, each mutation moving the version by exactly one).
//!
//! The checker is shown not to be vacuous: it accepts and rejects small hand-written histories
//! as it must, and it rejects corrupted copies of the recorded history (an impossible read, a
//! stale read, two mutations' results swapped, a lost update).
//!
//! The random choices come from a seed that is printed; `LINEARIZABILITY_SEED=<n>` repeats a
//! run's workload.

mod common;

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::{key, seed, try_request, Options, Server};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use todc_utils::linearizability::history::{Action, History};
use todc_utils::{Specification, WGLChecker};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Increment,
    Decrement,
    Read,
}

/// One operation with its outcome: for a mutation, the value and version it returned; for a
/// read, the value and version it saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Op {
    kind: Kind,
    amount: i64,
    value: i64,
    version: u64,
}

impl Op {
    fn delta(&self) -> i64 {
        match self.kind {
            Kind::Increment => self.amount,
            Kind::Decrement => -self.amount,
            Kind::Read => 0,
        }
    }
}

/// A counter: a mutation is valid where it takes the state to the value it returned, a read
/// where it saw the state.
struct Counter;

impl Specification for Counter {
    type State = i64;
    type Operation = Op;

    fn init() -> i64 {
        0
    }

    fn apply(op: &Op, state: &i64) -> (bool, i64) {
        match op.kind {
            Kind::Read => (op.value == *state, *state),
            _ if state + op.delta() == op.value => (true, op.value),
            _ => (false, *state),
        }
    }
}

/// The counter with its version: every mutation also moves the version by one, and a read saw
/// both. Stricter than [`Counter`]: a value that recurs is still a different state.
struct VersionedCounter;

impl Specification for VersionedCounter {
    type State = (i64, u64);
    type Operation = Op;

    fn init() -> (i64, u64) {
        (0, 0)
    }

    fn apply(op: &Op, &(value, version): &(i64, u64)) -> (bool, (i64, u64)) {
        match op.kind {
            Kind::Read => ((op.value, op.version) == (value, version), (value, version)),
            _ if value + op.delta() == op.value && version + 1 == op.version => {
                (true, (op.value, op.version))
            }
            _ => (false, (value, version)),
        }
    }
}

/// One operation as recorded: which client ran it, when it was invoked and when its response
/// was complete (on one monotonic clock), and its outcome.
#[derive(Clone, Debug)]
struct Record {
    client: usize,
    invoked: Instant,
    returned: Instant,
    op: Op,
}

/// The history the checker reads: every invocation and response in time order. At equal
/// instants invocations come first, which only ever makes operations overlap (more lenient).
fn history(records: &[Record]) -> History<Op> {
    let mut events: Vec<(Instant, u8, usize, Op)> = Vec::new();
    for r in records {
        events.push((r.invoked, 0, r.client, r.op));
        events.push((r.returned, 1, r.client, r.op));
    }
    events.sort_by_key(|e| (e.0, e.1));
    History::from_actions(
        events
            .into_iter()
            .map(|(_, kind, client, op)| {
                let action = if kind == 0 {
                    Action::Call(op)
                } else {
                    Action::Response(op)
                };
                (client, action)
            })
            .collect(),
    )
}

fn linearizable(records: &[Record]) -> (bool, bool) {
    (
        WGLChecker::<Counter>::is_linearizable(history(records)),
        WGLChecker::<VersionedCounter>::is_linearizable(history(records)),
    )
}

/// The versioned model, checked directly: with 64 clients at once the WGL search over
/// orders of concurrent reads grows too large to finish, but a versioned history needs no
/// search. Every mutation names its version, so the order of the mutations is known; a read
/// names the version it saw, so it belongs right after that mutation. The history is
/// linearizable exactly when the mutations are versions 1..=n, each taking the value before it
/// to its own, every read saw the value of its version, and that order respects real time:
/// whatever returned before another operation was invoked comes no later in it.
fn linearizable_versioned(records: &[Record]) -> (bool, bool) {
    let mut by_version: Vec<Option<&Op>> = vec![None; records.len() + 1];
    let mut n = 0;
    for r in records.iter().filter(|r| is_mutation(r)) {
        let v = r.op.version as usize;
        if v == 0 || v >= by_version.len() || by_version[v].is_some() {
            return (false, false);
        }
        by_version[v] = Some(&r.op);
        n += 1;
    }
    let mut values = vec![0i64; n + 1];
    for v in 1..=n {
        let Some(op) = by_version[v] else {
            return (false, false);
        };
        if values[v - 1] + op.delta() != op.value {
            return (false, false);
        }
        values[v] = op.value;
    }
    // A mutation of version v sits at 2v, a read of version u at 2u + 1.
    let mut place = Vec::with_capacity(records.len());
    for r in records {
        let v = r.op.version as usize;
        if r.op.kind == Kind::Read {
            if v > n || values[v] != r.op.value {
                return (false, false);
            }
            place.push(2 * v + 1);
        } else {
            place.push(2 * v);
        }
    }
    let ok = records.iter().zip(&place).all(|(a, pa)| {
        records
            .iter()
            .zip(&place)
            .all(|(b, pb)| a.returned >= b.invoked || pa <= pb)
    });
    (ok, ok)
}

#[test]
fn the_direct_versioned_check_agrees_with_the_checker_on_small_histories() {
    let cases = [
        hand(&[
            (0, 0, 2, inc(1, 1, 1)),
            (1, 1, 3, read(1, 1)),
            (0, 4, 5, dec(2, -1, 2)),
        ]),
        hand(&[(0, 0, 1, inc(1, 1, 1)), (1, 2, 3, read(0, 0))]),
        hand(&[
            (0, 0, 1, inc(1, 1, 1)),
            (1, 2, 3, inc(2, 3, 2)),
            (2, 0, 3, read(3, 2)),
        ]),
        hand(&[(0, 0, 1, inc(1, 1, 2))]),
        hand(&[
            (0, 0, 5, inc(1, 1, 1)),
            (1, 1, 2, read(1, 1)),
            (2, 3, 4, read(0, 0)),
        ]),
    ];
    for h in &cases {
        assert_eq!(linearizable_versioned(h).1, linearizable(h).1, "{h:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// The checker on small hand-written histories.

/// Builds records from `(client, start, end, op)` with times in milliseconds.
fn hand(ops: &[(usize, u64, u64, Op)]) -> Vec<Record> {
    let t0 = Instant::now();
    ops.iter()
        .map(|&(client, start, end, op)| Record {
            client,
            invoked: t0 + Duration::from_millis(start),
            returned: t0 + Duration::from_millis(end),
            op,
        })
        .collect()
}

fn inc(amount: i64, value: i64, version: u64) -> Op {
    Op {
        kind: Kind::Increment,
        amount,
        value,
        version,
    }
}

fn dec(amount: i64, value: i64, version: u64) -> Op {
    Op {
        kind: Kind::Decrement,
        amount,
        value,
        version,
    }
}

fn read(value: i64, version: u64) -> Op {
    Op {
        kind: Kind::Read,
        amount: 0,
        value,
        version,
    }
}

#[test]
fn the_checker_accepts_linearizable_histories() {
    // Sequential.
    let h = hand(&[
        (0, 0, 1, inc(2, 2, 1)),
        (0, 2, 3, dec(1, 1, 2)),
        (1, 4, 5, read(1, 2)),
    ]);
    assert_eq!(linearizable(&h), (true, true));
    // Overlapping increments that took effect in the other order than they were invoked.
    let h = hand(&[
        (0, 0, 10, inc(2, 3, 2)),
        (1, 1, 9, inc(1, 1, 1)),
        (2, 11, 12, read(3, 2)),
    ]);
    assert_eq!(linearizable(&h), (true, true));
    // A read overlapping a change may see either side of it.
    let h = hand(&[
        (0, 0, 10, inc(5, 5, 1)),
        (1, 1, 2, read(0, 0)),
        (2, 3, 4, read(5, 1)),
        (1, 5, 6, read(5, 1)),
    ]);
    assert_eq!(linearizable(&h), (true, true));
    // The value comes back to where it was; only the version tells the states apart.
    let h = hand(&[
        (0, 0, 1, inc(1, 1, 1)),
        (0, 2, 3, dec(1, 0, 2)),
        (1, 4, 5, read(0, 2)),
    ]);
    assert_eq!(linearizable(&h), (true, true));
}

#[test]
fn the_checker_rejects_histories_that_are_not_linearizable() {
    // A read of a value the counter never had.
    let h = hand(&[(0, 0, 1, inc(2, 2, 1)), (1, 2, 3, read(3, 1))]);
    assert_eq!(linearizable(&h), (false, false));
    // A stale read: the increment had finished before the read began.
    let h = hand(&[(0, 0, 1, inc(2, 2, 1)), (1, 2, 3, read(0, 0))]);
    assert_eq!(linearizable(&h), (false, false));
    // A read from the future: the increment began after the read had ended.
    let h = hand(&[(1, 0, 1, read(2, 1)), (0, 2, 3, inc(2, 2, 1))]);
    assert_eq!(linearizable(&h), (false, false));
    // Both reads overlap the change, but once one saw it, a later one cannot miss it.
    let h = hand(&[
        (0, 0, 10, inc(1, 1, 1)),
        (1, 1, 2, read(1, 1)),
        (2, 3, 4, read(0, 0)),
    ]);
    assert_eq!(linearizable(&h), (false, false));
    // Two increments one after the other with their results swapped.
    let h = hand(&[(0, 0, 1, inc(2, 3, 2)), (1, 2, 3, inc(1, 1, 1))]);
    assert_eq!(linearizable(&h), (false, false));
    // A lost update: two increments both claim to have started from 0.
    let h = hand(&[(0, 0, 10, inc(1, 1, 1)), (1, 1, 9, inc(1, 1, 1))]);
    assert_eq!(linearizable(&h), (false, false));
    // The value adds up but a version was skipped: only the versioned model sees it.
    let h = hand(&[
        (0, 0, 1, inc(1, 1, 1)),
        (0, 2, 3, dec(1, 0, 3)),
        (1, 4, 5, read(0, 3)),
    ]);
    assert_eq!(linearizable(&h), (true, false));
}

// ---------------------------------------------------------------------------------------------
// A recorded history.

/// One client: `ops` operations one after the other, each timed on the shared clock.
fn client(
    base: &str,
    id: usize,
    ops: usize,
    all_keyed: bool,
    seed: u64,
    barrier: &Barrier,
) -> Vec<Record> {
    let mut rng = StdRng::seed_from_u64(seed);
    barrier.wait();
    (0..ops)
        .map(|i| {
            let kind = match rng.random_range(0..3) {
                0 => Kind::Increment,
                1 => Kind::Decrement,
                _ => Kind::Read,
            };
            let amount = if kind == Kind::Read {
                0
            } else {
                rng.random_range(1..=5)
            };
            let k = key("lin");
            let body = format!("{{\"amount\":{amount}}}");
            // Half of the mutations carry a key, the others get one from the edge (or all carry
            // one, with `all_keyed`).
            let mut headers = vec![("content-type", "application/json")];
            let keyed = all_keyed || i % 2 == 0;
            if keyed {
                headers.push(("idempotency-key", k.as_str()));
            }
            let invoked = Instant::now();
            let send = || match kind {
                Kind::Read => try_request(base, "GET", "/api/value", &[], None),
                Kind::Increment => try_request(
                    base,
                    "POST",
                    "/api/increment",
                    &headers,
                    Some(body.as_bytes()),
                ),
                Kind::Decrement => try_request(
                    base,
                    "POST",
                    "/api/decrement",
                    &headers,
                    Some(body.as_bytes()),
                ),
            };
            let mut r = send().expect("request");
            // The local dev server's proxy answers this itself when it lost a request on its
            // way to the runtime (it happens on an overloaded machine); a keyed change is safe
            // to send again, and is then answered from its stored response if it applied.
            let mut retried = false;
            for _ in 0..5 {
                if !(keyed && common::dev_proxy_lost(&r)) {
                    break;
                }
                retried = true;
                r = send().expect("request");
            }
            let returned = Instant::now();
            assert_eq!(r.status, 200, "{kind:?}: {}", r.body);
            let v = r.json();
            if kind != Kind::Read {
                assert!(
                    retried || r.header("idempotent-replayed").is_none(),
                    "{}",
                    r.body
                );
                assert_eq!(v["amount"], amount, "{v}");
                let moved = v["value"].as_i64().unwrap() - v["previous_value"].as_i64().unwrap();
                let op = if kind == Kind::Increment {
                    "increment"
                } else {
                    "decrement"
                };
                assert_eq!(v["operation"], op, "{v}");
                assert_eq!(moved.abs(), amount, "{v}");
                assert_eq!(moved > 0, kind == Kind::Increment, "{v}");
            }
            Record {
                client: id,
                invoked,
                returned,
                op: Op {
                    kind,
                    amount,
                    value: v["value"].as_i64().expect("value"),
                    version: v["version"].as_u64().expect("version"),
                },
            }
        })
        .collect()
}

fn is_mutation(r: &Record) -> bool {
    r.op.kind != Kind::Read
}

/// Without batching (`BATCH_MAX_IN_FLIGHT=off`): every request is its own call.
#[test]
fn a_recorded_concurrent_history_is_linearizable_and_corruptions_are_not() {
    let server = Server::start(Options {
        vars: vec![("BATCH_MAX_IN_FLIGHT".into(), "off".into())],
        ..Options::default()
    });
    record_and_check(&server, 8, 40, linearizable, false);
}

/// With batching on (the default) and 64 clients: reads and changes share calls to the
/// object, which `calls_by_size` in `/api/health` must show, and the history is still
/// linearizable.
#[test]
fn a_history_of_64_clients_sharing_calls_is_linearizable() {
    let server = Server::start(Options::default());
    record_and_check(&server, 64, 6, linearizable_versioned, true);
    let health = server.health();
    let (_, batches) = common::calls_in_batches(&health);
    println!("calls by size: {}", health["calls_by_size"]);
    assert!(
        batches >= 5,
        "too few batches formed: {}",
        health["calls_by_size"]
    );
}

fn record_and_check(
    server: &Server,
    clients: usize,
    ops: usize,
    linearizable: fn(&[Record]) -> (bool, bool),
    all_keyed: bool,
) {
    let seed = seed("LINEARIZABILITY_SEED");
    let barrier = Arc::new(Barrier::new(clients));
    let threads: Vec<_> = (0..clients)
        .map(|id| {
            let base = server.base.clone();
            let barrier = barrier.clone();
            let seed = seed.wrapping_add(id as u64);
            std::thread::spawn(move || client(&base, id, ops, all_keyed, seed, &barrier))
        })
        .collect();
    let records: Vec<Record> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("a client failed"))
        .collect();
    let mutations: Vec<&Record> = records.iter().filter(|r| is_mutation(r)).collect();
    let n = mutations.len() as u64;

    // The operations really overlapped: otherwise the check would be trivial.
    let mut by_start: Vec<&Record> = records.iter().collect();
    by_start.sort_by_key(|r| r.invoked);
    let overlapping = by_start
        .windows(2)
        .filter(|w| w[1].invoked < w[0].returned)
        .count();
    println!(
        "{} operations ({n} mutations) from {clients} clients; {overlapping} start before the previous one ended",
        records.len()
    );
    assert!(
        overlapping > records.len() / 4,
        "too little concurrency: {overlapping}"
    );

    // The final state is what the mutations add up to, and the audit trail agrees with what
    // each mutation returned.
    let expected: i64 = records.iter().map(|r| r.op.delta()).sum();
    let value = server.value();
    assert_eq!(value["value"], expected);
    assert_eq!(value["version"], n);
    let audit = server.audit_all();
    assert_eq!(audit.len() as u64, n);
    for m in &mutations {
        let e = &audit[m.op.version as usize - 1];
        assert_eq!(e["value"], m.op.value, "{e} vs {:?}", m.op);
        assert_eq!(e["amount"], m.op.amount, "{e} vs {:?}", m.op);
        assert_eq!(
            e["value"].as_i64().unwrap() - e["previous_value"].as_i64().unwrap(),
            m.op.delta(),
            "{e} vs {:?}",
            m.op
        );
    }

    let t = Instant::now();
    assert_eq!(
        linearizable(&records),
        (true, true),
        "the recorded history is not linearizable: {records:?}"
    );
    println!("checked the recorded history in {:?}", t.elapsed());

    // 1. An impossible read: a value no prefix of the changes reaches.
    let r = records
        .iter()
        .position(|r| r.op.kind == Kind::Read)
        .unwrap();
    let mut bad = records.clone();
    bad[r].op.value = 1_000_000_000;
    assert_eq!(
        linearizable(&bad),
        (false, false),
        "an impossible read was accepted"
    );

    // 2. A stale read: a read that began after a mutation had returned claims the state from
    //    before that mutation.
    let (r, m) = records
        .iter()
        .enumerate()
        .filter(|(_, r)| r.op.kind == Kind::Read)
        .find_map(|(i, read)| {
            let before = records
                .iter()
                .filter(|m| is_mutation(m) && m.returned < read.invoked)
                .max_by_key(|m| m.op.version)?;
            Some((i, before.clone()))
        })
        .expect("a read after a mutation");
    let mut bad = records.clone();
    bad[r].op.value = m.op.value - m.op.delta();
    bad[r].op.version = m.op.version - 1;
    assert!(
        !linearizable(&bad).1,
        "a stale read was accepted: {:?} after {:?}",
        bad[r],
        m
    );

    // 3. Two mutations, one over before the other began, with their results swapped.
    let (a, b) = (0..records.len())
        .flat_map(|a| (0..records.len()).map(move |b| (a, b)))
        .find(|&(a, b)| {
            is_mutation(&records[a])
                && is_mutation(&records[b])
                && records[a].returned < records[b].invoked
        })
        .expect("two mutations in sequence");
    let mut bad = records.clone();
    let (va, vb) = (
        (bad[a].op.value, bad[a].op.version),
        (bad[b].op.value, bad[b].op.version),
    );
    (bad[a].op.value, bad[a].op.version) = vb;
    (bad[b].op.value, bad[b].op.version) = va;
    assert!(
        !linearizable(&bad).1,
        "swapped results were accepted: {:?} and {:?}",
        bad[a],
        bad[b]
    );

    // 4. A lost update: one mutation from the middle of the history vanishes.
    let lost = records
        .iter()
        .position(|r| is_mutation(r) && r.op.version == n / 2)
        .unwrap();
    let mut bad = records.clone();
    bad.remove(lost);
    assert!(
        !linearizable(&bad).1,
        "a history without version {} was accepted",
        n / 2
    );
    println!(
        "checked the recorded history and four corruptions in {:?}",
        t.elapsed()
    );
}
