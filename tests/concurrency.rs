//! Isolation: hundreds of concurrent mutations, some of them retried at the same moment from
//! another client, end at the exact sum with one version each and a contiguous audit trail.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Barrier};

use common::{key, Options, Server};

#[test]
fn concurrent_mutations_serialize_exactly() {
    let s = Server::start(Options::default());
    const THREADS: usize = 32;
    const PER_THREAD: usize = 12;

    // Every (key, op, amount) to send; every fifth key is also sent by a second thread.
    let mut plan: Vec<(String, &str, i64)> = Vec::new();
    for i in 0..THREADS * PER_THREAD {
        let op = if i % 3 == 0 { "decrement" } else { "increment" };
        plan.push((key("conc"), op, (i % 7 + 1) as i64));
    }
    let mut sends: Vec<Vec<(String, &str, i64)>> = vec![Vec::new(); THREADS];
    for (i, item) in plan.iter().enumerate() {
        sends[i % THREADS].push(item.clone());
        if i % 5 == 0 {
            sends[(i + 1) % THREADS].push(item.clone());
        }
    }

    let base = s.base.clone();
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = sends
        .into_iter()
        .map(|mine| {
            let base = base.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                mine.into_iter()
                    .map(|(k, op, amount)| {
                        let send = || {
                            common::try_request(
                                &base,
                                "POST",
                                &format!("/api/{op}"),
                                &[
                                    ("idempotency-key", &k),
                                    ("content-type", "application/json"),
                                ],
                                Some(format!("{{\"amount\":{amount}}}").as_bytes()),
                            )
                            .expect("request")
                        };
                        let mut r = send();
                        let mut resent = false;
                        for _ in 0..5 {
                            if !common::dev_proxy_lost(&r) {
                                break;
                            }
                            resent = true;
                            r = send();
                        }
                        assert_eq!(r.status, 200, "{}", r.body);
                        let replayed = r.header("idempotent-replayed").is_some();
                        (k, r.body, replayed, resent)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let results: Vec<(String, String, bool, bool)> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("thread"))
        .collect();

    // Each key: exactly one applied answer, and any retry got the very same bytes. A key
    // whose attempt the dev proxy lost may have been applied by that attempt; then every
    // answer it got is a replay.
    let mut by_key: BTreeMap<&str, Vec<(&str, bool)>> = BTreeMap::new();
    let mut resent_keys = BTreeSet::new();
    for (k, body, replayed, resent) in &results {
        by_key.entry(k).or_default().push((body, *replayed));
        if *resent {
            resent_keys.insert(k.as_str());
        }
    }
    assert_eq!(by_key.len(), plan.len());
    let mut versions = BTreeSet::new();
    for (k, answers) in &by_key {
        let applied = answers.iter().filter(|(_, r)| !r).count();
        assert!(
            applied == 1 || (applied == 0 && resent_keys.contains(k)),
            "key {k} applied {answers:?}"
        );
        assert!(
            answers.windows(2).all(|w| w[0].0 == w[1].0),
            "key {k} got different bodies"
        );
        let v: serde_json::Value = serde_json::from_str(answers[0].0).unwrap();
        assert!(
            versions.insert(v["version"].as_u64().unwrap()),
            "version reused"
        );
    }
    let n = plan.len() as u64;
    assert_eq!(
        versions,
        (1..=n).collect::<BTreeSet<_>>(),
        "versions are exactly 1..=n"
    );

    let expected: i64 = plan
        .iter()
        .map(|(_, op, a)| if *op == "increment" { *a } else { -a })
        .sum();
    let value = s.value();
    assert_eq!(value["value"], expected);
    assert_eq!(value["version"], n);

    let audit = s.audit_all();
    assert_eq!(audit.len() as u64, n);
    let mut running = 0i64;
    for (i, e) in audit.iter().enumerate() {
        assert_eq!(e["version"], i as u64 + 1);
        assert_eq!(e["previous_value"], running);
        running = e["value"].as_i64().unwrap();
    }
    assert_eq!(running, expected);
    let keys: BTreeSet<_> = audit
        .iter()
        .map(|e| e["request_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        keys.len() as u64,
        n,
        "each key appears in exactly one audit entry"
    );
    assert_eq!(s.health()["audit_entries"], n);
}
