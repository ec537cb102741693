//! The verifiable ledger against the real runtime: checkpoints and proofs checked with the pure
//! core, strict queries, the backfill of a database from before the Merkle tree, and the
//! offline verifier (`audit-verify`) catching each kind of tampering with the object's
//! SQLite file between two runs, or a rollback to an earlier copy of it.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{key, Options, Server};
use number_acidizer::core::checkpoint::{Checkpoint, SigningKey, VerifierKey};
use number_acidizer::core::ledger::{self, Auditor};
use number_acidizer::core::merkle::{self, MemoryTree};
use serde_json::Value;

/// A fixed test key (never a real one).
fn signing_key() -> SigningKey {
    SigningKey::from_seed("acidizer.test/log", [7; 32]).unwrap()
}

fn signed_server() -> Server {
    Server::start(Options {
        vars: vec![("AUDIT_SIGNING_KEY".into(), signing_key().to_text())],
        ..Options::default()
    })
}

/// `n` changes of mixed operations and amounts.
fn apply(s: &Server, n: u64, tag: &str) {
    for i in 0..n {
        let path = if i % 3 == 2 {
            "/api/decrement"
        } else {
            "/api/increment"
        };
        let k = key(&format!("{tag}-{i}"));
        let r = s.post_json(
            path,
            &[("idempotency-key", &k)],
            &format!("{{\"amount\":{}}}", i % 7 + 1),
        );
        assert_eq!(r.status, 200, "{}", r.body);
    }
}

/// The checkpoint, verified with the key the server publishes.
fn checkpoint(s: &Server) -> Checkpoint {
    let r = s.get("/api/audit/checkpoint");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(r.header("audit-checkpoint-signed"), Some("true"));
    let vkey = s.get("/api/audit/key");
    assert_eq!(vkey.status, 200);
    let verifier = VerifierKey::parse(&vkey.body).unwrap();
    assert_eq!(verifier, signing_key().verifier());
    let text = verifier.open(&r.body).expect("the signature verifies");
    Checkpoint::parse(text).unwrap()
}

fn tree_of(entries: &[Value]) -> MemoryTree {
    let mut t = MemoryTree::new();
    for (i, v) in entries.iter().enumerate() {
        let e = ledger::entry_from_json(v).unwrap();
        assert_eq!(e.version, i as u64 + 1);
        t.push(ledger::entry_hash(&e));
    }
    t
}

fn hashes(v: &Value) -> Vec<merkle::Hash> {
    ledger::parse_hashes(v).expect("hashes")
}

fn log2_ceil(n: u64) -> usize {
    (64 - (n.max(1) - 1).leading_zeros()) as usize
}

#[test]
fn checkpoints_and_proofs_verify_with_the_pure_core() {
    let s = signed_server();
    // An empty log: size 0, the empty root.
    let cp = checkpoint(&s);
    assert_eq!((cp.size, cp.root), (0, merkle::empty_root()));
    assert_eq!(cp.origin, "acidizer.test/log");

    apply(&s, 21, "proofs");
    let cp = checkpoint(&s);
    let entries = s.audit_all();
    assert_eq!(cp.size, 21);
    let tree = tree_of(&entries);
    assert_eq!(merkle::root(21, &tree.getter()), Some(cp.root));
    // The same note every time for the same size (one signature per size).
    assert_eq!(
        s.get("/api/audit/checkpoint").body,
        s.get("/api/audit/checkpoint").body
    );

    for size in [1, 2, 7, 8, 13, 21] {
        let root = merkle::root(size, &tree.getter()).unwrap();
        for version in 1..=size {
            let r = s.get(&format!(
                "/api/audit/proof/inclusion?version={version}&tree_size={size}"
            ));
            assert_eq!(r.status, 200, "{}", r.body);
            let v = r.json();
            let proof = hashes(&v);
            assert!(proof.len() <= 2 * log2_ceil(size));
            let leaf = ledger::entry_hash(
                &ledger::entry_from_json(&entries[version as usize - 1]).unwrap(),
            );
            assert_eq!(
                v["leaf_hash"],
                number_acidizer::core::checkpoint::encode_hash(&leaf)
            );
            merkle::verify_inclusion(version - 1, size, &leaf, &proof, &root)
                .unwrap_or_else(|e| panic!("{version}/{size}: {e}"));
        }
    }
    // Default tree size: the current one.
    let v = s.get("/api/audit/proof/inclusion?version=5").json();
    assert_eq!(v["tree_size"], 21);
    for from in 1..=21u64 {
        let v = s
            .get(&format!("/api/audit/proof/consistency?from={from}&to=21"))
            .json();
        let proof = hashes(&v);
        assert!(proof.len() <= 2 * log2_ceil(21));
        let old = merkle::root(from, &tree.getter()).unwrap();
        merkle::verify_consistency(from, 21, &old, &cp.root, &proof)
            .unwrap_or_else(|e| panic!("{from}->21: {e}"));
    }
    assert_eq!(
        s.get("/api/audit/proof/consistency?from=3").json()["to"],
        21
    );

    // Past values: as of every version, the value replaying entries 1..v gives.
    let mut replay = Auditor::new();
    let mut values = vec![0i64];
    for v in &entries {
        replay.push(&ledger::entry_from_json(v).unwrap()).unwrap();
        values.push(replay.value());
    }
    for v in 0..=21u64 {
        let r = s.get(&format!("/api/value?as_of_version={v}"));
        assert_eq!(r.status, 200, "{}", r.body);
        let got = r.json();
        assert_eq!(got["version"], v);
        assert_eq!(got["value"], values[v as usize], "as of {v}");
        if v > 0 {
            assert_eq!(got["updated_at"], entries[v as usize - 1]["at"]);
        }
        // As of the instant of entry v: the last change at or before it.
        if v > 0 {
            let at = entries[v as usize - 1]["at"].as_str().unwrap();
            let got = s.get(&format!("/api/value?as_of={at}")).json();
            let last = entries
                .iter()
                .rposition(|e| e["at"].as_str().unwrap() <= at)
                .unwrap()
                + 1;
            assert_eq!(got["version"], last as u64, "as of {at}");
            assert_eq!(got["value"], values[last]);
        }
    }
    let before = s.get("/api/value?as_of=2000-01-01T00:00:00Z").json();
    assert_eq!(
        (before["version"].as_u64(), before["value"].as_i64()),
        (Some(0), Some(0))
    );
    assert!(before["updated_at"].is_null());
    let later = s.get("/api/value?as_of=2999-01-01T01:00:00%2B01:00").json();
    assert_eq!(later["version"], 21);
    // With its inclusion proof in the current tree.
    let p = s.get("/api/value?as_of_version=9&proof=true").json();
    let inc = &p["inclusion"];
    assert_eq!(
        (inc["version"].as_u64(), inc["tree_size"].as_u64()),
        (Some(9), Some(21))
    );
    let leaf = ledger::entry_hash(&ledger::entry_from_json(&entries[8]).unwrap());
    merkle::verify_inclusion(8, 21, &leaf, &hashes(inc), &cp.root).unwrap();
    for bad in [
        "/api/value?as_of_version=22",
        "/api/value?as_of_version=1&as_of=2026-01-01T00:00:00Z",
        "/api/value?as_of=yesterday",
        "/api/value?as_of_version=3&proof=maybe",
        "/api/value?as_of_version=3&consistency=nearby",
    ] {
        let p = s.get(bad).problem(400);
        assert_eq!(p["type"], "/problems/invalid-query", "{bad}: {p}");
    }

    // Strict queries: every refusal is a 400 problem.
    for bad in [
        "/api/audit/proof/inclusion",
        "/api/audit/proof/inclusion?version=0",
        "/api/audit/proof/inclusion?version=22",
        "/api/audit/proof/inclusion?version=3&tree_size=2",
        "/api/audit/proof/inclusion?version=3&tree_size=99",
        "/api/audit/proof/inclusion?version=1&version=2",
        "/api/audit/proof/inclusion?version=01",
        "/api/audit/proof/inclusion?version=1&x=1",
        "/api/audit/proof/consistency?from=0",
        "/api/audit/proof/consistency?from=5&to=4",
        "/api/audit/proof/consistency?from=5&to=22",
        "/api/audit/proof/consistency?to=5",
        "/api/audit/checkpoint?x=1",
        "/api/audit/key?x=1",
    ] {
        let p = s.get(bad).problem(400);
        assert_eq!(p["type"], "/problems/invalid-query", "{bad}: {p}");
    }
    s.request("POST", "/api/audit/checkpoint", &[], None)
        .problem(405);
    // And the offline verifier agrees, with the published key.
    let out = verify(&s, &[]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn concurrent_changes_sharing_calls_keep_the_tree_whole() {
    // Concurrent changes share calls and transactions (one call in flight per isolate makes
    // them queue up), and each still writes its Merkle row; replays in between write none.
    let s = Server::start(Options {
        vars: vec![
            ("AUDIT_SIGNING_KEY".into(), signing_key().to_text()),
            ("BATCH_MAX_IN_FLIGHT".into(), "1".into()),
        ],
        ..Options::default()
    });
    std::thread::scope(|scope| {
        for t in 0..8 {
            let s = &s;
            scope.spawn(move || {
                for i in 0..15 {
                    let k = key(&format!("conc-{t}-{i}"));
                    assert_eq!(s.increment(&k, 1 + i % 3).status, 200);
                    // A replay in the same burst: answered, not applied, no row.
                    assert_eq!(s.increment(&k, 1 + i % 3).status, 200);
                }
            });
        }
    });
    let (_, batched) = s.calls_in_batches();
    assert!(batched > 0, "no call carried more than one request");
    let cp = checkpoint(&s);
    assert_eq!(cp.size, 120);
    assert_eq!(
        merkle::root(120, &tree_of(&s.audit_all()).getter()),
        Some(cp.root)
    );
    let out = verify(&s, &[]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn without_a_key_checkpoints_say_they_are_unsigned() {
    let s = Server::start(Options::default());
    apply(&s, 3, "unsigned");
    let r = s.get("/api/audit/checkpoint");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("audit-checkpoint-signed"), Some("false"));
    let cp = Checkpoint::parse(&r.body).unwrap();
    assert_eq!(cp.origin, "number-acidizer/unsigned");
    assert_eq!(cp.size, 3);
    assert_eq!(
        merkle::root(3, &tree_of(&s.audit_all()).getter()),
        Some(cp.root)
    );
    s.get("/api/audit/key").problem(404);
    let out = Command::new(env!("CARGO_BIN_EXE_audit-verify"))
        .args(["--server", &s.base, "--unsigned"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    // A verifier that expects a signature refuses an unsigned checkpoint.
    let out = verify(&s, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn a_key_whose_id_does_not_match_is_refused_and_never_logged() {
    let good = signing_key().to_text();
    // The same key under another key ID (the 8 hex digits after the name).
    let (head, rest) = good.split_at("PRIVATE+KEY+acidizer.test/log+".len());
    let wrong_id = if rest.starts_with('0') { "1" } else { "0" };
    let bad = format!("{head}{wrong_id}{}", &rest[1..]);
    let s = Server::start(Options {
        vars: vec![("AUDIT_SIGNING_KEY".into(), bad.clone())],
        ..Options::default()
    });
    apply(&s, 1, "badkey");
    s.get("/api/audit/checkpoint").problem(500);
    s.get("/api/audit/key").problem(500);
    // The runtime relays log lines a moment later.
    let mut log = s.log_text();
    for _ in 0..50 {
        if log.contains("invalid AUDIT_SIGNING_KEY") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        log = s.log_text();
    }
    assert!(log.contains("invalid AUDIT_SIGNING_KEY"), "{log}");
    let secret_part = &bad[bad.rfind('+').unwrap() + 1..];
    assert!(!log.contains(secret_part), "the key leaked into the log");
}

#[test]
fn entries_from_before_the_tree_are_hashed_in_chunks() {
    let mut s = signed_server();
    apply(&s, 4, "before");
    s.stop();
    // A database as schema 3 left it, with 2,500 more entries than the API would make quickly:
    // no Merkle table at all.
    s.sql(
        "DROP TABLE merkle;
         UPDATE schema_meta SET version = 3;
         WITH RECURSIVE n(v) AS (SELECT 5 UNION ALL SELECT v + 1 FROM n WHERE v < 2504)
         INSERT INTO audit (version, operation, amount, previous_value, value, request_id, at)
           SELECT v, 'increment', 2, (SELECT value FROM audit WHERE version = 4) + 2 * (v - 5),
                  (SELECT value FROM audit WHERE version = 4) + 2 * (v - 4), 'bulk-' || v,
                  '2026-11-29T20:00:00.000Z' FROM n;
         UPDATE counter SET version = 2504, value = (SELECT value FROM audit WHERE version = 2504)",
    );
    s.start_again();
    // The backfill runs from the alarm, 1,000 entries per transaction; meanwhile 503.
    let started = std::time::Instant::now();
    let cp = loop {
        let r = s.get("/api/audit/checkpoint");
        if r.status == 200 {
            break checkpoint(&s);
        }
        r.problem(503);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "the backfill did not finish"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert_eq!(cp.size, 2504);
    let chunks = s
        .log_lines()
        .iter()
        .filter(|l| l["msg"] == "merkle backfill")
        .count();
    assert!(chunks >= 3, "{chunks} chunks");
    // New changes extend the backfilled tree.
    apply(&s, 2, "after");
    let out = verify(&s, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(stdout.contains("2506 entries"), "{stdout}");
    exports_match_the_audit_pages(&s, 2506);
}

/// A long trail streams out whole: 100,000 entries from before the tree (hashed by the
/// backfill), each export read as a stream into a file: every NDJSON line is the next version's
/// leaf, `audit-verify` accepts the file against the export's own checkpoint header (signature,
/// chain, values, root), and the CSV has the header and every row in order. Its speed and the
/// runtime's memory meanwhile are `make bench`'s (bench/export.mjs, 1,000,000 entries).
#[test]
fn a_long_export_streams_whole_and_verifies() {
    const N: u64 = 100_000;
    let mut s = Server::start(Options {
        vars: vec![
            ("AUDIT_SIGNING_KEY".into(), signing_key().to_text()),
            // Every entry stays in the object: the archive's exports are the storage suite's.
            ("AUDIT_HOT_ENTRIES".into(), "0".into()),
        ],
        ..Options::default()
    });
    apply(&s, 1, "long");
    s.stop();
    // The trail as schema 3 left it, with mixed operations and amounts and a chained value.
    s.sql(&format!(
        "DROP TABLE IF EXISTS merkle;
         DROP TABLE IF EXISTS idempotency_keys;
         DROP TABLE IF EXISTS archive_segments;
         DROP TABLE IF EXISTS archive_runs;
         DELETE FROM audit;
         CREATE UNIQUE INDEX IF NOT EXISTS audit_request_id ON audit (request_id);
         WITH RECURSIVE n(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM n WHERE v < {N}),
           d AS (SELECT v, CASE WHEN v % 3 = 0 THEN 'decrement' ELSE 'increment' END AS op,
                        v % 7 + 1 AS amount,
                        CASE WHEN v % 3 = 0 THEN -(v % 7 + 1) ELSE v % 7 + 1 END AS delta FROM n),
           s AS (SELECT v, op, amount, delta,
                        SUM(delta) OVER (ORDER BY v ROWS UNBOUNDED PRECEDING) AS value FROM d)
         INSERT INTO audit (version, operation, amount, previous_value, value, request_id, at)
           SELECT v, op, amount, value - delta, value, 'long-' || v,
                  strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-3600 seconds', '+' || (v / 1000.0) || ' seconds')
             FROM s;
         UPDATE counter SET version = {N}, value = (SELECT value FROM audit WHERE version = {N}),
                            updated_at = (SELECT at FROM audit WHERE version = {N});
         UPDATE schema_meta SET version = 3"
    ));
    s.start_again();
    let started = std::time::Instant::now();
    while s.get("/api/audit/checkpoint").status != 200 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(180),
            "the backfill of {N} entries did not finish"
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    }

    let dir = common::temp_dir("long-export");
    let (file, note) = stream_export(&s, "ndjson", &dir.join("audit.ndjson"));
    let cp = Checkpoint::parse(signing_key().verifier().open(&note).unwrap()).unwrap();
    assert_eq!(cp.size, N);
    let body = std::fs::read_to_string(&file).unwrap();
    let mut lines = 0u64;
    for (i, line) in body.split_terminator('\n').enumerate() {
        let v: Value = serde_json::from_str(line).unwrap();
        let e = ledger::entry_from_json(&v).unwrap();
        assert_eq!(e.version, i as u64 + 1);
        assert_eq!(line.as_bytes(), ledger::leaf_bytes(&e).as_slice());
        lines += 1;
    }
    assert_eq!(lines, N);
    assert!(body.ends_with('\n'));
    let cp_file = dir.join("checkpoint");
    std::fs::write(&cp_file, &note).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_audit-verify"))
        .args(["--export", &file.display().to_string()])
        .args(["--checkpoint", &cp_file.display().to_string()])
        .args(["--key", &signing_key().verifier().to_text()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("{N} entries")),
        "{}",
        text(&out)
    );
    // The root the verifier recomputed is the one the log signed; the live checkpoint agrees.
    assert_eq!(checkpoint(&s).root, cp.root);

    let (csv, _) = stream_export(&s, "csv", &dir.join("audit.csv"));
    let csv = std::fs::read_to_string(csv).unwrap();
    let rows: Vec<&str> = csv.split_terminator("\r\n").collect();
    assert_eq!(rows.len() as u64, N + 1);
    assert_eq!(
        rows[0],
        "version,operation,amount,previous_value,value,request_id,at"
    );
    for (i, row) in rows[1..].iter().enumerate() {
        let version = row.split(',').next().unwrap();
        assert_eq!(version, (i + 1).to_string(), "CSV row {}", i + 1);
        assert!(row.contains(&format!(",long-{},", i + 1)), "{row}");
    }
}

/// `GET /api/audit/export?format=<format>` read as a stream into `path`, checking its headers;
/// returns the path and the checkpoint note it was pinned to.
fn stream_export(s: &Server, format: &str, path: &Path) -> (PathBuf, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(std::time::Duration::from_secs(300)))
        .build()
        .into();
    let mut r = agent
        .get(&format!("{}/api/audit/export?format={format}", s.base))
        .call()
        .unwrap();
    assert_eq!(r.status(), 200);
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let size = header("audit-tree-size").unwrap();
    let note = base64_decode(&header("audit-checkpoint").unwrap());
    assert!(
        header("content-disposition")
            .unwrap()
            .ends_with(&format!("-{size}.{format}\"")),
        "{:?}",
        header("content-disposition")
    );
    let mut f = std::fs::File::create(path).unwrap();
    std::io::copy(&mut r.body_mut().as_reader(), &mut f).unwrap();
    (path.to_path_buf(), note)
}

/// The streamed export of a log of `n` entries: pinned to the tree, its NDJSON lines exactly
/// the leaves of the audit pages, verifiable offline, and its CSV the same rows.
fn exports_match_the_audit_pages(s: &Server, n: u64) {
    let pages = s.audit_all();
    assert_eq!(pages.len() as u64, n);
    let r = s.get("/api/audit/export");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/x-ndjson"));
    assert_eq!(
        r.header("content-disposition"),
        Some(format!("attachment; filename=\"audit-1-{n}.ndjson\"").as_str())
    );
    assert_eq!(r.header("audit-tree-size"), Some(n.to_string().as_str()));
    let note = base64_decode(r.header("audit-checkpoint").unwrap());
    let cp = Checkpoint::parse(signing_key().verifier().open(&note).unwrap()).unwrap();
    assert_eq!(cp.size, n);
    let lines: Vec<&str> = r.body.split_terminator('\n').collect();
    assert_eq!(lines.len() as u64, n);
    for (line, v) in lines.iter().zip(&pages) {
        let e = ledger::entry_from_json(v).unwrap();
        assert_eq!(line.as_bytes(), ledger::leaf_bytes(&e).as_slice());
    }
    // The offline verifier, on the files.
    let dir = common::temp_dir("export");
    let (file, cp_file) = (dir.join("audit.ndjson"), dir.join("checkpoint"));
    std::fs::write(&file, &r.body).unwrap();
    std::fs::write(&cp_file, &note).unwrap();
    let vkey = signing_key().verifier().to_text();
    let run = |f: &Path| {
        Command::new(env!("CARGO_BIN_EXE_audit-verify"))
            .args(["--export", &f.display().to_string()])
            .args([
                "--checkpoint",
                &cp_file.display().to_string(),
                "--key",
                &vkey,
            ])
            .output()
            .unwrap()
    };
    let out = run(&file);
    assert!(out.status.success(), "{}", text(&out));
    // One byte of white space in one line: not canonical.
    let edited = dir.join("edited.ndjson");
    std::fs::write(
        &edited,
        r.body.replacen("\"amount\":2,", "\"amount\": 2,", 1),
    )
    .unwrap();
    let out = run(&edited);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    // A range, and CSV.
    let part = s.get("/api/audit/export?after=10&until=12").body;
    assert_eq!(
        part.split_terminator('\n').collect::<Vec<_>>(),
        lines[10..12]
    );
    let csv = s.get("/api/audit/export?format=csv&until=3");
    assert_eq!(
        csv.header("content-type"),
        Some("text/csv; charset=utf-8; header=present")
    );
    let rows: Vec<&str> = csv.body.split_terminator("\r\n").collect();
    assert_eq!(rows.len(), 4, "{}", csv.body);
    assert_eq!(
        rows[0],
        "version,operation,amount,previous_value,value,request_id,at"
    );
    let first = &pages[0];
    assert!(rows[1].starts_with(&format!(
        "1,{},{},{},{},",
        first["operation"].as_str().unwrap(),
        first["amount"],
        first["previous_value"],
        first["value"]
    )));
    s.get(&format!("/api/audit/export?until={}", n + 1))
        .problem(400);
    s.get("/api/audit/export?format=xml").problem(400);
    let head = s.request("HEAD", "/api/audit/export", &[], None);
    assert_eq!(head.status, 200);
    assert_eq!(head.header("audit-tree-size"), Some(n.to_string().as_str()));
}

fn base64_decode(s: &str) -> String {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD.decode(s).unwrap();
    String::from_utf8(bytes).unwrap()
}

fn verify(s: &Server, extra: &[&str]) -> std::process::Output {
    let vkey = signing_key().verifier().to_text();
    let mut args = vec!["--server", s.base.as_str(), "--key", vkey.as_str()];
    args.extend_from_slice(extra);
    Command::new(env!("CARGO_BIN_EXE_audit-verify"))
        .args(&args)
        .output()
        .unwrap()
}

fn text(out: &std::process::Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The folder with the counter object's SQLite file.
fn db_dir(s: &Server) -> PathBuf {
    s.state.join("v3/do/number-acidizer-Counter")
}

fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).unwrap();
    for f in std::fs::read_dir(from).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), to.join(f.file_name())).unwrap();
    }
}

/// Runs the verifier and expects `kind` with exit status `code`.
fn expect_tamper(s: &Server, state: &str, kind: &str, code: i32) {
    let out = verify(s, &["--state", state]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(code), "{kind}: {all}");
    assert!(all.contains(&format!("TAMPERED ({kind})")), "{all}");
}

#[test]
fn the_verifier_names_each_kind_of_tampering() {
    let mut s = signed_server();
    let state_file = common::temp_dir("verifier").join("state");
    let state = state_file.display().to_string();
    apply(&s, 6, "early");
    // A checkpoint at size 6 saved by an honest run.
    let out = verify(&s, &["--state", &state]);
    assert!(out.status.success(), "{}", text(&out));
    s.stop();
    let at_six = common::temp_dir("db-at-6");
    copy_dir(&db_dir(&s), &at_six);
    s.start_again();
    apply(&s, 6, "late");
    // The untouched history verifies and extends the saved checkpoint.
    let out = verify(&s, &["--state", &state]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("extends the saved checkpoint of size 6"),
        "{}",
        text(&out)
    );
    s.stop();
    let pristine = common::temp_dir("db-at-12");
    copy_dir(&db_dir(&s), &pristine);
    let saved = std::fs::read_to_string(&state_file).unwrap();

    let cases: &[(&str, &str, i32)] = &[
        // An edited amount: the value no longer follows from it.
        ("UPDATE audit SET amount = amount + 1 WHERE version = 4", "wrong-value", 6),
        // An edited value, chain kept at that row: the next entry's previous_value breaks.
        (
            "UPDATE audit SET value = value + 5, amount = amount + 5 WHERE version = 5 AND operation = 'increment'",
            "broken-chain",
            5,
        ),
        // A deleted row: a gap.
        ("DELETE FROM audit WHERE version = 7", "gap", 4),
        // Two rows swapped: the versions are still contiguous, the chain is not.
        (
            "UPDATE audit SET version = -1 WHERE version = 8;
             UPDATE audit SET version = 8 WHERE version = 9;
             UPDATE audit SET version = 9 WHERE version = -1",
            "broken-chain",
            5,
        ),
        // A rewrite that keeps every rule: only the hashes notice.
        ("UPDATE audit SET request_id = 'forged' WHERE version = 10", "root-mismatch", 8),
    ];
    for (sql, kind, code) in cases {
        copy_dir(&pristine, &db_dir(&s));
        std::fs::write(&state_file, &saved).unwrap();
        s.sql(sql);
        s.start_again();
        expect_tamper(&s, &state, kind, *code);
        s.stop();
    }

    // The database rolled back to the copy at size 6: smaller than the saved checkpoint.
    copy_dir(&at_six, &db_dir(&s));
    std::fs::write(&state_file, &saved).unwrap();
    s.start_again();
    expect_tamper(&s, &state, "rolled-back", 9);
    // And grown past it again with other changes: not an extension of the saved tree.
    apply(&s, 8, "rewritten");
    expect_tamper(&s, &state, "inconsistent", 10);
    // The state file was not replaced by a failed run.
    assert_eq!(std::fs::read_to_string(&state_file).unwrap(), saved);

    // The untouched history still verifies.
    s.stop();
    copy_dir(&pristine, &db_dir(&s));
    s.start_again();
    let out = verify(&s, &["--state", &state]);
    assert!(out.status.success(), "{}", text(&out));
    // The replay agrees with the pure core's own auditor.
    let mut a = Auditor::new();
    for v in s.audit_all() {
        a.push(&ledger::entry_from_json(&v).unwrap()).unwrap();
    }
    assert_eq!(a.size(), 12);
}
