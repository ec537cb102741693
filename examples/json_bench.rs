//! `cargo run --release --example json_bench` (run by `make bench`): the JSON object builder
//! (`core::json::JsonWriter`) against `serde` derive + `serde_json::to_string` for the bodies
//! on the hot path: a change's 200 response (also stored for replay), the update every socket
//! receives, and an audit page entry. Both produce the same bytes (checked before timing); the figure is ns per body.

use std::hint::black_box;
use std::time::Instant;

use number_acidizer::core::audit::AuditEntry;
use number_acidizer::core::vocab::Operation;
use serde::Serialize;

#[derive(Serialize)]
struct Response<'a> {
    value: i64,
    version: u64,
    previous_value: i64,
    operation: &'a str,
    amount: i64,
    request_id: &'a str,
    applied_at: &'a str,
}

#[derive(Serialize)]
struct Update<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    value: i64,
    version: u64,
    previous_value: i64,
    operation: &'a str,
    amount: i64,
    at: &'a str,
}

#[derive(Serialize)]
struct Entry<'a> {
    version: u64,
    operation: &'a str,
    amount: i64,
    previous_value: i64,
    value: i64,
    request_id: &'a str,
    at: &'a str,
}

fn response(e: &AuditEntry) -> String {
    serde_json::to_string(&Response {
        value: e.value,
        version: e.version,
        previous_value: e.previous_value,
        operation: e.operation.as_str(),
        amount: e.amount,
        request_id: &e.request_id,
        applied_at: &e.at,
    })
    .unwrap_or_default()
}

fn update(e: &AuditEntry) -> String {
    serde_json::to_string(&Update {
        kind: "update",
        value: e.value,
        version: e.version,
        previous_value: e.previous_value,
        operation: e.operation.as_str(),
        amount: e.amount,
        at: &e.at,
    })
    .unwrap_or_default()
}

fn entry(e: &AuditEntry) -> String {
    serde_json::to_string(&Entry {
        version: e.version,
        operation: e.operation.as_str(),
        amount: e.amount,
        previous_value: e.previous_value,
        value: e.value,
        request_id: &e.request_id,
        at: &e.at,
    })
    .unwrap_or_default()
}

/// Median ns per call over several rounds.
fn time(f: &dyn Fn(&AuditEntry) -> String, e: &AuditEntry) -> f64 {
    const N: u32 = 200_000;
    let mut rounds: Vec<f64> = (0..7)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..N {
                black_box(f(black_box(e)));
            }
            t.elapsed().as_nanos() as f64 / f64::from(N)
        })
        .collect();
    rounds.sort_by(f64::total_cmp);
    rounds[rounds.len() / 2]
}

fn main() {
    let e = AuditEntry {
        version: 1_234_567,
        operation: Operation::Increment,
        amount: 5,
        previous_value: 987_654,
        value: 987_659,
        request_id: "0b6f1c2e-9a4d-4c1b-8e2f-3d5a7b9c1e0f".into(),
        at: "2026-11-29T23:59:59.123Z".into(),
    };
    type Pair = (
        &'static str,
        fn(&AuditEntry) -> String,
        fn(&AuditEntry) -> String,
    );
    let pairs: [Pair; 3] = [
        ("change response", |e| e.response_json(), response),
        ("socket update", |e| e.update_message(), update),
        ("audit page entry", |e| e.entry_json(), entry),
    ];
    println!("body                    builder ns  serde derive ns  derive/builder");
    for (name, hand, serde) in pairs {
        assert_eq!(
            hand(&e),
            serde(&e),
            "{name}: both must write the same bytes"
        );
        let (h, s) = (time(&hand, &e), time(&serde, &e));
        println!("{name:<18} {h:>15.1}  {s:>15.1}  {:>14.2}", s / h);
    }
}
