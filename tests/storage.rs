//! Storage that lasts: the audit archive in R2 and idempotency-key retention, against the real
//! local runtime (its R2 emulation persists under the server's state folder).
//!
//! - A soak with a small hot window: the object's database stays flat while the whole history
//!   still pages (across R2 segments and hot rows) and replays.
//! - Keys past their retention are new again; within it they replay byte for byte, even when
//!   their audit entry is archived.
//! - SIGKILL during archival, several times: archive + hot hold every entry exactly once.
//! - R2 failing during archival: mutations unaffected, archived reads 503 + Retry-After,
//!   archival resumes once R2 works again.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{key, Options, Server};
use number_acidizer::core::checkpoint::Checkpoint;
use number_acidizer::core::ledger;
use number_acidizer::core::merkle::{self, MemoryTree};
use serde_json::Value;

fn server(hot: u64, retention: u64) -> Server {
    Server::start(Options {
        vars: vec![
            ("AUDIT_HOT_ENTRIES".into(), hot.to_string()),
            (
                "IDEMPOTENCY_RETENTION_SECONDS".into(),
                retention.to_string(),
            ),
        ],
        state: None,
        ..Options::default()
    })
}

/// `n` keyed increments from `threads` clients at once; every one must be applied (200).
/// Returns the keys in no particular order.
fn load(s: &Server, n: u64, threads: u64, prefix: &str) -> Vec<String> {
    let next = Arc::new(AtomicU64::new(0));
    let base = s.base.clone();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let next = Arc::clone(&next);
            let base = base.clone();
            let prefix = prefix.to_string();
            std::thread::spawn(move || {
                let mut keys = Vec::new();
                while next.fetch_add(1, Ordering::Relaxed) < n {
                    let k = key(&prefix);
                    // The dev server's proxy's own 503 for a request it lost: sent again with
                    // the same key, as a client would.
                    let r = loop {
                        let r = common::try_request(
                            &base,
                            "POST",
                            "/api/increment",
                            &[("idempotency-key", k.as_str())],
                            None,
                        )
                        .expect("increment");
                        if !common::dev_proxy_lost(&r) {
                            break r;
                        }
                        std::thread::sleep(Duration::from_millis(200));
                    };
                    assert_eq!(r.status, 200, "{}", r.body);
                    keys.push(k);
                }
                keys
            })
        })
        .collect();
    handles
        .into_iter()
        .flat_map(|h| h.join().expect("load thread"))
        .collect()
}

/// Entries archived once archival caught up with `version`: every whole segment of 1,024
/// that lies entirely beyond the newest `hot`.
fn archived_for(version: u64, hot: u64) -> u64 {
    version.saturating_sub(hot) / 1024 * 1024
}

/// Waits until archival has caught up: every due segment in R2, the rest in the object, the
/// last run ok. Returns the health report.
fn settled(s: &Server, hot: u64, limit: Duration) -> Value {
    let started = Instant::now();
    loop {
        let h = s.health();
        let version = h["version"].as_u64().unwrap();
        let archived = archived_for(version, hot);
        if h["archived_entries"] == archived
            && h["hot_entries"] == version - archived
            && (archived == 0 || h["last_archival"]["outcome"] == "ok")
        {
            return h;
        }
        assert!(
            started.elapsed() < limit,
            "archival did not catch up within {limit:?}: {h}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The whole trail through the API: versions 1..=n exactly once each, a contiguous chain.
fn check_trail(s: &Server, n: u64) -> Vec<Value> {
    let all = s.audit_all();
    assert_eq!(all.len() as u64, n, "entries in the trail");
    let mut previous = 0i64;
    for (i, e) in all.iter().enumerate() {
        assert_eq!(e["version"], i as u64 + 1, "{e}");
        assert_eq!(e["previous_value"], previous, "{e}");
        previous = e["value"].as_i64().unwrap();
    }
    all
}

/// The archive's segment records, from the stopped server's database:
/// `(first, last, bytes, sha256, archived)`.
fn segments(s: &Server) -> Vec<(u64, u64, u64, String, u64)> {
    s.sql("SELECT first, last, bytes, sha256, archived FROM archive_segments ORDER BY first")
        .into_iter()
        .map(|r| {
            (
                r[0].as_u64().unwrap(),
                r[1].as_u64().unwrap(),
                r[2].as_u64().unwrap(),
                r[3].as_str().unwrap().to_string(),
                r[4].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Segments cover 1..=through without gap or overlap, all archived; hot rows start right after.
fn check_segments(s: &Server, through: u64) {
    let segs = segments(s);
    let mut next = 1;
    for (first, last, _, _, archived) in &segs {
        assert_eq!(*archived, 1, "{segs:?}");
        assert_eq!(*first, next, "gap or overlap in {segs:?}");
        next = last + 1;
    }
    assert_eq!(next, through + 1, "{segs:?}");
    let hot = s.sql("SELECT coalesce(min(version), 0) FROM audit");
    if let Some(min) = hot[0][0].as_u64().filter(|m| *m > 0) {
        assert_eq!(
            min,
            through + 1,
            "the hot rows start where the archive ends"
        );
    }
}

#[test]
fn a_small_hot_window_keeps_the_database_flat_while_the_whole_history_reads_back() {
    // One segment's worth per round: after each round the object holds the same number of
    // entries (1,024), so its size can be compared round to round.
    const HOT: u64 = 100;
    const ROUNDS: u64 = 5;
    const PER_ROUND: u64 = 1_024;
    // Keys are kept 5 s here, so that their table is bounded within the test's few minutes
    // (in production it is bounded by a day's changes).
    let s = server(HOT, 5);
    let mut keys = Vec::new();
    let mut sizes = Vec::new();
    for round in 0..ROUNDS {
        let started = Instant::now();
        keys.extend(load(&s, PER_ROUND, 8, "soak"));
        let secs = started.elapsed().as_secs_f64();
        println!(
            "round {round}: {PER_ROUND} changes in {secs:.1} s ({:.0}/s)",
            PER_ROUND as f64 / secs
        );
        settled(&s, HOT, Duration::from_secs(120));
        // And the keys' retention: every round is then measured in the same state (1,024 hot
        // entries, no key), so the sizes compare.
        let started = Instant::now();
        let h = loop {
            let h = s.health();
            if h["oldest_key_at"].is_null() {
                break h;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "keys kept: {h}"
            );
            std::thread::sleep(Duration::from_millis(500));
        };
        println!(
            "round {round}: version {} database_bytes {} hot {} archived {} segments {}",
            h["version"],
            h["database_bytes"],
            h["hot_entries"],
            h["archived_entries"],
            h["archive_segments"]
        );
        sizes.push(h["database_bytes"].as_u64().unwrap());
    }
    let n = ROUNDS * PER_ROUND;
    let archived = archived_for(n, HOT);
    let h = s.health();
    assert_eq!(h["version"], n);
    assert_eq!(h["audit_entries"], n);
    assert_eq!(h["oldest_hot_version"], archived + 1);
    assert_eq!(h["archive_segments"], archived / 1024);
    assert!(h["last_archival"]["at"].is_string(), "{h}");
    // Flat once warmed up (after the first two rounds): within ±10% of the warmed size.
    let warmed = sizes[2] as f64;
    for (round, size) in sizes.iter().enumerate().skip(2) {
        let ratio = *size as f64 / warmed;
        assert!(
            (0.9..=1.1).contains(&ratio),
            "database_bytes {size} in round {round} vs {warmed} warmed: {sizes:?}"
        );
    }

    // Every entry pages back, archive and hot alike, and the keys are exactly ours.
    let all = check_trail(&s, n);
    let mut seen: Vec<String> = all
        .iter()
        .map(|e| e["request_id"].as_str().unwrap().to_string())
        .collect();
    seen.sort();
    keys.sort();
    assert_eq!(seen, keys);
    // Pages of any size starting anywhere in the archive agree with the full read.
    for (after, limit) in [
        (0u64, 7u64),
        (1020, 3),
        (1024, 1000),
        (4321, 250),
        (archived - 5, 20),
    ] {
        let r = s.get(&format!("/api/audit?after={after}&limit={limit}"));
        assert_eq!(r.status, 200, "{}", r.body);
        let v = r.json();
        let entries = v["entries"].as_array().unwrap();
        assert!(!entries.is_empty() && entries.len() as u64 <= limit, "{v}");
        for (i, e) in entries.iter().enumerate() {
            assert_eq!(e, &all[(after + i as u64) as usize], "after={after}");
        }
        let last = entries.last().unwrap()["version"].as_u64().unwrap();
        assert_eq!(v["next_after"], last, "another page follows {last}");
    }

    // Proofs reach into the archive: the Worker rebuilds the hashes the object gave up from
    // the segments, and every proof verifies against the checkpoint with the pure core.
    let mut tree = MemoryTree::new();
    for e in &all {
        tree.push(ledger::entry_hash(&ledger::entry_from_json(e).unwrap()));
    }
    let cp = s.get("/api/audit/checkpoint");
    assert_eq!(cp.status, 200, "{}", cp.body);
    let cp = Checkpoint::parse(&cp.body).unwrap();
    assert_eq!(cp.size, n);
    assert_eq!(Some(cp.root), merkle::root(n, &tree.getter()));
    for version in [1, 2, 1000, 1024, 1025, 2500, archived, archived + 1, n] {
        for size in [n, archived, version.max(1500)] {
            if version > size {
                continue;
            }
            let r = s.get(&format!(
                "/api/audit/proof/inclusion?version={version}&tree_size={size}"
            ));
            assert_eq!(r.status, 200, "{version}/{size}: {}", r.body);
            let proof = ledger::parse_hashes(&r.json()).unwrap();
            let leaf = tree
                .node(merkle::Node {
                    level: 0,
                    index: version - 1,
                })
                .unwrap();
            let root = merkle::root(size, &tree.getter()).unwrap();
            merkle::verify_inclusion(version - 1, size, &leaf, &proof, &root)
                .unwrap_or_else(|e| panic!("inclusion {version}/{size}: {e}"));
        }
    }
    for from in [1, 7, 1024, 1500, archived - 1, archived + 3] {
        let r = s.get(&format!("/api/audit/proof/consistency?from={from}"));
        assert_eq!(r.status, 200, "{from}: {}", r.body);
        let proof = ledger::parse_hashes(&r.json()).unwrap();
        let old = merkle::root(from, &tree.getter()).unwrap();
        merkle::verify_consistency(from, n, &old, &cp.root, &proof)
            .unwrap_or_else(|e| panic!("consistency {from}->{n}: {e}"));
    }

    // Consistency proofs between two sizes inside the archive (the old and the new root both
    // made of hashes the object gave up).
    for (from, to) in [
        (7u64, 1500u64),
        (1024, archived),
        (1500, 2048),
        (archived - 1, n),
    ] {
        let r = s.get(&format!("/api/audit/proof/consistency?from={from}&to={to}"));
        assert_eq!(r.status, 200, "{from}->{to}: {}", r.body);
        let proof = ledger::parse_hashes(&r.json()).unwrap();
        let old = merkle::root(from, &tree.getter()).unwrap();
        let new = merkle::root(to, &tree.getter()).unwrap();
        merkle::verify_consistency(from, to, &old, &new, &proof)
            .unwrap_or_else(|e| panic!("consistency {from}->{to}: {e}"));
    }

    // Past values span the archive and the hot entries: as of version v is what replaying
    // entries 1..=v gives, for random archived and hot versions and the boundaries.
    check_past_values(&s, &all, archived, &tree, &cp.root);

    // The export streams the whole history, archive and hot alike: exactly the leaf bytes.
    let export = s.get("/api/audit/export");
    assert_eq!(export.status, 200);
    assert_eq!(
        export.header("audit-tree-size"),
        Some(n.to_string().as_str())
    );
    let lines: Vec<&str> = export.body.lines().collect();
    assert_eq!(lines.len() as u64, n, "export lines");
    for (line, e) in lines.iter().zip(&all) {
        let entry = ledger::entry_from_json(e).unwrap();
        assert_eq!(line.as_bytes(), ledger::leaf_bytes(&entry).as_slice());
    }
    let part = s.get(&format!(
        "/api/audit/export?after=1000&until={}",
        archived + 10
    ));
    assert_eq!(part.status, 200);
    assert_eq!(part.body.lines().count() as u64, archived + 10 - 1000);

    // A socket resuming from inside the archive gets a snapshot, as when too far behind.
    let mut ws = s.socket(&format!("?since={}", archived - 10));
    let m = ws.next_json();
    assert_eq!(m["type"], "snapshot", "{m}");
    assert_eq!(m["version"], n);
    ws.close();

    // The records: contiguous segments up to the hot window, each object's bytes in R2.
    let mut s = s;
    s.stop();
    check_segments(&s, archived);
    // Of the archived entries' Merkle rows only each segment's last (its root) stays.
    let rows = s.sql(&format!(
        "SELECT count(*) FROM merkle WHERE version <= {archived}"
    ));
    assert_eq!(rows[0][0], archived / 1024);
    let rows = s.sql(&format!(
        "SELECT count(*) FROM merkle WHERE version > {archived}"
    ));
    assert_eq!(rows[0][0], n - archived);
    // Each segment's record holds the instant of its first entry (for past values by time).
    let firsts = s.sql("SELECT first, first_at FROM archive_segment_times ORDER BY first");
    assert_eq!(firsts.len() as u64, archived / 1024);
    for row in &firsts {
        let first = row[0].as_u64().unwrap();
        assert_eq!(row[1], all[first as usize - 1]["at"], "first_at of {first}");
    }

    // A database whose segments were archived before that column existed (schema 5): the
    // alarm reads each segment back from R2 and fills it in; meanwhile a read by time that
    // needs it is 503 with Retry-After, never a wrong answer.
    s.sql("DELETE FROM archive_segment_times");
    s.start_again();
    let at = all[1500]["at"].as_str().unwrap().to_string();
    let want = all
        .iter()
        .rposition(|e| e["at"].as_str().unwrap() <= at.as_str())
        .unwrap()
        + 1;
    let started = Instant::now();
    loop {
        let r = s.get(&format!("/api/value?as_of={at}"));
        if r.status == 200 {
            assert_eq!(r.json()["version"], want as u64, "{}", r.body);
            break;
        }
        r.problem(503);
        assert!(r.header("retry-after").is_some(), "{r:?}");
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "segments not indexed by time: {}",
            r.body
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let indexed = s
        .log_lines()
        .iter()
        .filter(|l| l["msg"] == "archive segment indexed by time")
        .count();
    assert_eq!(
        indexed as u64,
        archived / 1024,
        "each segment read back once to index it"
    );
    s.stop();
    let again = s.sql("SELECT first, first_at FROM archive_segment_times ORDER BY first");
    assert_eq!(again, firsts, "the alarm filled in the same instants");
}

/// `GET /api/value?as_of_version=` and `?as_of=` across archive and hot entries, against a
/// replay of `all` (the whole trail), with inclusion proofs checked against `root`.
fn check_past_values(s: &Server, all: &[Value], archived: u64, tree: &MemoryTree, root: &[u8; 32]) {
    let n = all.len() as u64;
    let seed = common::seed("STORAGE_SEED");
    let mut rng = seed | 1;
    let mut next = |bound: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % bound
    };
    let mut versions = vec![
        0,
        1,
        2,
        1023,
        1024,
        1025,
        archived - 1,
        archived,
        archived + 1,
        n,
    ];
    for _ in 0..12 {
        versions.push(1 + next(archived));
        versions.push(archived + 1 + next(n - archived));
    }
    // Replaying entries 1..=v: the value after v (0 before the first).
    let replay = |v: u64| -> i64 {
        let mut value = 0i64;
        for e in &all[..v as usize] {
            let amount = e["amount"].as_i64().unwrap();
            value = match e["operation"].as_str().unwrap() {
                "increment" => value + amount,
                "decrement" => value - amount,
                other => panic!("unexpected operation {other}"),
            };
        }
        value
    };
    for &v in &versions {
        let r = s.get(&format!("/api/value?as_of_version={v}"));
        assert_eq!(r.status, 200, "as of {v}: {}", r.body);
        let got = r.json();
        assert_eq!(got["version"], v, "{got}");
        assert_eq!(got["value"], replay(v), "as of {v}: {got}");
        if v > 0 {
            assert_eq!(got["updated_at"], all[v as usize - 1]["at"], "{got}");
        } else {
            assert!(got["updated_at"].is_null(), "{got}");
        }
        // As of the instant of entry v: the last change at or before it, across the boundary.
        if v > 0 {
            let at = all[v as usize - 1]["at"].as_str().unwrap();
            let want = all
                .iter()
                .rposition(|e| e["at"].as_str().unwrap() <= at)
                .unwrap() as u64
                + 1;
            let r = s.get(&format!("/api/value?as_of={at}"));
            assert_eq!(r.status, 200, "as of {at}: {}", r.body);
            let got = r.json();
            assert_eq!(got["version"], want, "as of {at}: {got}");
            assert_eq!(got["value"], replay(want), "as of {at}: {got}");
        }
    }
    // Before the first change; long after the last.
    let before = s.get("/api/value?as_of=2000-01-01T00:00:00Z").json();
    assert_eq!(
        (before["version"].as_u64(), before["value"].as_i64()),
        (Some(0), Some(0))
    );
    let later = s.get("/api/value?as_of=2999-01-01T00:00:00Z").json();
    assert_eq!(later["version"], n);
    // With the inclusion proof in the current tree, for archived and hot versions, by version
    // and by time: each verifies against the checkpoint's root.
    for &v in versions.iter().filter(|v| **v > 0).take(14) {
        let at = all[v as usize - 1]["at"].as_str().unwrap();
        for query in [format!("as_of_version={v}"), format!("as_of={at}")] {
            let r = s.get(&format!("/api/value?{query}&proof=true"));
            assert_eq!(r.status, 200, "{query}: {}", r.body);
            let got = r.json();
            let version = got["version"].as_u64().unwrap();
            let inc = &got["inclusion"];
            assert_eq!(inc["version"], version, "{got}");
            assert_eq!(inc["tree_size"], n, "{got}");
            let proof = ledger::parse_hashes(inc).unwrap();
            let leaf = tree
                .node(merkle::Node {
                    level: 0,
                    index: version - 1,
                })
                .unwrap();
            merkle::verify_inclusion(version - 1, n, &leaf, &proof, root)
                .unwrap_or_else(|e| panic!("{query}: {e}"));
        }
    }
}

#[test]
fn a_key_past_its_retention_is_new_again() {
    let mut s = server(0, 2);
    let k = key("retention");
    let first = s.post("/api/increment", &[("idempotency-key", &k)], "");
    assert_eq!(first.status, 200);
    let again = s.post("/api/increment", &[("idempotency-key", &k)], "");
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, first.body);
    // Used for something else within the retention: still 422.
    let other = s.post("/api/decrement", &[("idempotency-key", &k)], "");
    other.problem(422);
    std::thread::sleep(Duration::from_millis(2_300));
    // Past the retention: the same key is a new change.
    let later = s.post("/api/increment", &[("idempotency-key", &k)], "");
    assert_eq!(later.status, 200, "{}", later.body);
    assert_eq!(later.header("idempotent-replayed"), None);
    assert_eq!(later.json()["version"], 2);
    // And replays as the new one.
    let replay = s.post("/api/increment", &[("idempotency-key", &k)], "");
    assert_eq!(replay.body, later.body);
    // The alarm removes expired key records by itself, with no further traffic.
    for _ in 0..3 {
        let r = s.post("/api/increment", &[("idempotency-key", &key("filler"))], "");
        assert_eq!(r.status, 200);
    }
    assert!(s.health()["oldest_key_at"].is_string());
    let started = Instant::now();
    loop {
        let h = s.health();
        if h["oldest_key_at"].is_null() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "expired key records still kept: {h}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    s.stop();
    let kept = s.sql("SELECT count(*) FROM idempotency_keys")[0][0]
        .as_u64()
        .unwrap();
    assert_eq!(kept, 0);
    // The audit trail keeps everything regardless (AUDIT_HOT_ENTRIES=0: no archival).
    let audited = s.sql("SELECT count(*) FROM audit")[0][0].as_u64().unwrap();
    assert_eq!(audited, 5);
}

#[test]
fn sigkill_during_archival_loses_and_duplicates_nothing() {
    const HOT: u64 = 50;
    let mut s = server(HOT, 86_400);
    let seed = common::seed("STORAGE_SEED");
    let mut total = 0;
    for round in 0..4u64 {
        // Load until the next segment is just due, so that its archival starts about a second
        // (archive::DELAY_MS) after the load ends; then kill somewhere around it.
        let target = (round + 1) * 1024 + HOT + 5;
        load(&s, target - total, 8, "crash");
        total = target;
        let wait = 700 + (seed.wrapping_mul(round + 7) >> 7) % 1_200;
        std::thread::sleep(Duration::from_millis(wait));
        println!("round {round}: killing {wait} ms after version {total}");
        s.crash();
        s.start_again();
    }
    let h = settled(&s, HOT, Duration::from_secs(180));
    assert_eq!(h["version"], total);
    assert_eq!(h["value"], total as i64);
    check_trail(&s, total);
    let adopted = s
        .log_lines()
        .iter()
        .filter(|l| l["msg"] == "archive segment adopted")
        .count();
    println!("segments adopted after a crash in the last run: {adopted}");
    s.stop();
    check_segments(&s, archived_for(total, HOT));
}

#[test]
fn r2_failing_during_archival_leaves_mutations_alone_and_archival_resumes() {
    const HOT: u64 = 100;
    let mut s = server(HOT, 86_400);
    load(&s, 1_500, 4, "before");
    settled(&s, HOT, Duration::from_secs(60));
    // A key whose entry is archived replays byte for byte within its retention: its record is
    // independent of the audit trail.
    let page = s.get("/api/audit?after=4&limit=1");
    assert_eq!(page.status, 200, "{}", page.body);
    let archived = &page.json()["entries"][0];
    assert_eq!(s.health()["oldest_hot_version"], 1025);
    let k = archived["request_id"].as_str().unwrap();
    let r = s.post("/api/increment", &[("idempotency-key", k)], "");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("idempotent-replayed"), Some("true"), "{}", r.body);
    let v = r.json();
    for (field, in_entry) in [
        ("version", "version"),
        ("value", "value"),
        ("previous_value", "previous_value"),
        ("request_id", "request_id"),
        ("applied_at", "at"),
    ] {
        assert_eq!(v[field], archived[in_entry], "{field}");
    }
    assert_eq!(s.value()["version"], 1_500, "nothing applied");
    // Break the bucket: its object bodies' folder becomes a file, so every R2 read and write
    // of a body fails inside the runtime, as a storage fault would.
    let blobs = s.r2_blobs();
    let aside = blobs.with_extension("aside");
    std::fs::rename(&blobs, &aside).unwrap();
    std::fs::write(&blobs, b"not a folder").unwrap();

    // Mutations are unaffected: every one applied while archival fails.
    load(&s, 1_500, 4, "during");
    let started = Instant::now();
    let failing = loop {
        let h = s.health();
        if h["last_archival"]["outcome"] == "failed"
            && h["last_archival"]["consecutive_failures"].as_u64() >= Some(2)
        {
            break h;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no failed run: {h}"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(failing["version"], 3_000);
    assert!(failing["hot_entries"].as_u64().unwrap() > HOT, "{failing}");
    assert!(failing["last_archival"]["error"].is_string(), "{failing}");
    let errors = s
        .log_lines()
        .iter()
        .filter(|l| l["msg"] == "archival failed" && l["level"] == "error")
        .count();
    assert!(errors >= 2, "an error line per failed run; saw {errors}");
    // Reads that need the archive say so, and when to come back; hot reads still work.
    let r = s.get("/api/audit?after=10&limit=5");
    r.problem(503);
    assert!(r.header("retry-after").is_some(), "{r:?}");
    for past in [
        "/api/value?as_of_version=10".to_string(),
        "/api/value?as_of_version=10&proof=true".to_string(),
        format!("/api/value?as_of={}", archived["at"].as_str().unwrap()),
        "/api/audit/proof/inclusion?version=10".to_string(),
    ] {
        let r = s.get(&past);
        r.problem(503);
        assert!(r.header("retry-after").is_some(), "{past}: {r:?}");
    }
    let r = s.get("/api/value?as_of_version=2990");
    assert_eq!(r.status, 200, "a hot past value: {}", r.body);
    assert_eq!(r.json()["version"], 2990);
    let hot = s.get("/api/audit?after=2990&limit=5");
    assert_eq!(hot.status, 200, "{}", hot.body);
    assert_eq!(hot.json()["entries"].as_array().unwrap().len(), 5);
    let more = s.post("/api/increment", &[("idempotency-key", &key("still"))], "");
    assert_eq!(more.status, 200);

    // R2 works again: archival resumes by itself (backoff) and catches up.
    std::fs::remove_file(&blobs).unwrap();
    std::fs::rename(&aside, &blobs).unwrap();
    let h = settled(&s, HOT, Duration::from_secs(120));
    assert_eq!(h["last_archival"]["consecutive_failures"], 0);
    check_trail(&s, 3_001);
    let r = s.get("/api/value?as_of_version=10");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["value"], 10);
    s.stop();
    check_segments(&s, archived_for(3_001, HOT));
}

#[test]
fn a_crash_after_the_r2_write_before_its_record_resumes_without_loss_or_duplicate() {
    // The test hook makes the archival run wait right after writing a segment to R2, before
    // reading it back and recording it in the object: the runtime is killed in exactly that
    // window (the segment is in R2, the object still holds its entries and a pending record).
    const HOT: u64 = 50;
    let vars = |pause: bool| {
        let mut v = vec![
            ("AUDIT_HOT_ENTRIES".to_string(), HOT.to_string()),
            ("IDEMPOTENCY_RETENTION_SECONDS".into(), "86400".into()),
        ];
        if pause {
            v.push(("ADMIN_TEST_HOOKS".into(), "1".into()));
            v.push(("ARCHIVE_TEST_PAUSE_MS".into(), "120000".into()));
        }
        v
    };
    let mut s = Server::start(Options {
        vars: vars(true),
        state: None,
        ..Options::default()
    });
    let total = 1024 + HOT + 5;
    let mut keys = load(&s, total, 8, "window");
    let started = Instant::now();
    let paused = loop {
        if let Some(l) = s
            .log_lines()
            .into_iter()
            .find(|l| l["msg"] == "archive segment written; pausing (test hook)")
        {
            break l;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the archival run never reached the write"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let name = "audit/00000000000000000001-00000000000000001024.ndjson";
    assert_eq!(paused["segment"], name, "{paused}");
    // In the window: written, not recorded. Changes still apply meanwhile.
    let h = s.health();
    assert_eq!(
        (h["archived_entries"].as_u64(), h["hot_entries"].as_u64()),
        (Some(0), Some(total)),
        "{h}"
    );
    keys.extend(load(&s, 3, 1, "window-during"));
    let in_r2 = std::fs::read_dir(s.r2_blobs()).unwrap().count();
    assert!(in_r2 >= 1, "the segment is in R2");
    s.crash();
    let rows = segments(&s);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (rows[0].0, rows[0].1, rows[0].4),
        (1, 1024, 0),
        "recorded as pending: {rows:?}"
    );
    let hot = s.sql("SELECT count(*) FROM audit")[0][0].as_u64().unwrap();
    assert_eq!(hot, total + 3, "every entry still in the object");

    // Restarted without the hook: the next run finds the pending record and the object R2
    // already holds, checks it is exactly these bytes and adopts it instead of writing again.
    s = Server::start(Options {
        vars: vars(false),
        state: Some(s.state.clone()),
        ..Options::default()
    });
    keys.extend(load(&s, 2, 1, "window-after"));
    let total = total + 5;
    let h = settled(&s, HOT, Duration::from_secs(60));
    assert_eq!(h["version"], total);
    assert_eq!(h["archive_segments"], 1);
    let lines = s.log_lines();
    let adopted: Vec<_> = lines
        .iter()
        .filter(|l| l["msg"] == "archive segment adopted")
        .collect();
    assert_eq!(adopted.len(), 1, "adopted once: {adopted:?}");
    assert_eq!(adopted[0]["segment"], name);
    let written: Vec<_> = lines
        .iter()
        .filter(|l| l["msg"] == "archive segment written")
        .collect();
    assert_eq!(written.len(), 1, "{written:?}");
    assert_eq!(written[0]["adopted"], "true", "{written:?}");
    // No loss, no duplicate: versions 1..=total exactly once, the keys exactly ours, and the
    // archived ones read back from R2 and checked against the record.
    let all = check_trail(&s, total);
    let mut seen: Vec<String> = all
        .iter()
        .map(|e| e["request_id"].as_str().unwrap().to_string())
        .collect();
    seen.sort();
    keys.sort();
    assert_eq!(seen, keys);
    s.stop();
    check_segments(&s, 1024);
    let hot = s.sql("SELECT count(*) FROM audit")[0][0].as_u64().unwrap();
    assert_eq!(hot, total - 1024);
}
