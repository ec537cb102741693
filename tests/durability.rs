//! Durability, atomicity and schema: stop or crash the runtime and start it again on the same
//! state; make a statement fail inside the mutation's transaction; migrate an older database.

mod common;

use common::{key, Options, Server};
use serde_json::Value;

fn fresh() -> Server {
    Server::start(Options::default())
}

/// Everything that must survive: the counter, the whole audit trail, and for each key its
/// replayed response.
fn snapshot(s: &Server, keys: &[(String, u32, String)]) -> (Value, Vec<Value>) {
    let v = s.value();
    let audit = s.audit_all();
    for (k, amount, body) in keys {
        let r = s.increment(k, *amount);
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(
            r.header("idempotent-replayed"),
            Some("true"),
            "key {k} was forgotten"
        );
        assert_eq!(&r.body, body, "key {k} replays other bytes");
    }
    (v, audit)
}

fn apply(s: &Server, n: u32) -> Vec<(String, u32, String)> {
    (1..=n)
        .map(|i| {
            let k = key("durable");
            let r = s.increment(&k, i);
            assert_eq!(r.status, 200, "{}", r.body);
            (k, i, r.body)
        })
        .collect()
}

#[test]
fn a_new_counter_starts_at_zero() {
    let s = fresh();
    let v = s.value();
    assert_eq!(
        v,
        serde_json::json!({"value": 0, "version": 0, "updated_at": null})
    );
    assert!(s.audit_all().is_empty());
    assert_eq!(s.health()["audit_entries"], 0);
}

#[test]
fn everything_survives_a_clean_restart() {
    let mut s = fresh();
    let keys = apply(&s, 20);
    let before = snapshot(&s, &keys);
    s.restart();
    assert_eq!(snapshot(&s, &keys), before);
    assert_eq!(before.0["value"], 210);
    assert_eq!(before.0["version"], 20);
    assert_eq!(before.1.len(), 20);
}

#[test]
fn acknowledged_changes_survive_a_crash() {
    let mut s = fresh();
    let keys = apply(&s, 15);
    let before = snapshot(&s, &keys);
    s.crash();
    s.start_again();
    assert_eq!(snapshot(&s, &keys), before);
    // The counter keeps counting from where it was.
    let next = s.increment(&key("after-crash"), 1).json();
    assert_eq!(next["version"], 16);
    assert_eq!(next["previous_value"], before.0["value"]);
}

#[test]
fn a_failing_statement_rolls_back_the_whole_transaction() {
    let mut s = fresh();
    let keys = apply(&s, 3);

    // 1. The audit insert, which also records the key, is the last statement of the
    //    transaction. For a replay it fails on the key's unique index *after* the counter
    //    UPDATE ran. Had that not been rolled back, the version would have moved.
    let before = (s.value(), s.audit_all());
    for (k, amount, body) in &keys {
        assert_eq!(&s.increment(k, *amount).body, body);
    }
    assert_eq!((s.value(), s.audit_all()), before);

    // 2. A failure of another kind: plant an audit row where the next change's entry must
    //    go. The counter UPDATE succeeds, the audit INSERT hits the version's primary key. The
    //    whole change must roll back, and the key must stay free.
    s.stop();
    s.sql("INSERT INTO audit (version, operation, amount, previous_value, value, request_id, at) VALUES (4, 'increment', 1, 0, 0, 'planted', 'x')");
    s.start_again();
    let k = key("rolled-back");
    let r = s.increment(&k, 5);
    r.problem(500);
    assert_eq!(
        s.value(),
        before.0,
        "the counter moved although its audit entry failed"
    );
    assert_eq!(
        s.audit_all().len(),
        before.1.len() + 1,
        "only the planted row is new"
    );
    s.stop();
    let remembered = s.sql(&format!(
        "SELECT count(*) FROM audit WHERE request_id = '{k}'"
    ));
    assert_eq!(remembered, vec![vec![Value::from(0)]]);
    let counter = s.sql("SELECT value, version FROM counter");
    assert_eq!(
        counter,
        vec![vec![before.0["value"].clone(), before.0["version"].clone()]]
    );
    s.sql("DELETE FROM audit WHERE request_id = 'planted'");
    s.start_again();
    // The same key now applies, once.
    let ok = s.increment(&k, 5);
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert!(ok.header("idempotent-replayed").is_none());
    assert_eq!(ok.json()["version"], 4);
    assert_eq!(
        s.increment(&k, 5).header("idempotent-replayed"),
        Some("true")
    );
}

#[test]
fn an_older_schema_is_migrated_in_place() {
    let mut s = fresh();
    let keys = apply(&s, 4);
    let latest = s.health()["latest_schema_version"].as_u64().unwrap();
    let before = snapshot(&s, &keys);
    assert!(latest >= 3);
    // Take the database back to schema 2, as an earlier release left it: a separate
    // idempotency table with a stored response per key, no unique index on audit keys, no
    // Merkle rows, no key table of schema 5, no archive.
    s.stop();
    s.sql(
        "DROP TABLE merkle;
         DROP TABLE idempotency_keys;
         DROP TABLE archive_segments;
         DROP TABLE archive_runs;
         CREATE TABLE idempotency (key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, version INTEGER NOT NULL, response TEXT NOT NULL, created_at INTEGER NOT NULL) WITHOUT ROWID;
         CREATE INDEX idempotency_created_at ON idempotency (created_at);
         INSERT INTO idempotency SELECT request_id, operation || ':' || amount, version, '{}', 0 FROM audit;
         UPDATE schema_meta SET version = 2",
    );
    s.start_again();
    let h = s.health();
    assert_eq!(h["schema_version"], latest, "{h}");
    // Every key still replays byte for byte, every entry is still there.
    assert_eq!(
        snapshot(&s, &keys),
        before,
        "data changed across the migration"
    );
    s.stop();
    // Migration 3 made the audit trail the key record; migration 5 moved the keys to their
    // own table and dropped that index again.
    let idx = s.sql("SELECT name FROM sqlite_master WHERE name = 'audit_request_id'");
    assert!(idx.is_empty(), "migration 5 did not run");
    let keys_kept = s.sql("SELECT count(*) FROM idempotency_keys");
    assert_eq!(keys_kept, vec![vec![Value::from(keys.len())]]);
    let gone = s.sql("SELECT name FROM sqlite_master WHERE name = 'idempotency'");
    assert!(gone.is_empty(), "the old table is still there");
    let v = s.sql("SELECT version FROM schema_meta");
    assert_eq!(v, vec![vec![Value::from(latest)]]);
    // And from the very first schema too: version 1 had no expiry index yet.
    s.stop();
    s.sql(
        "DROP TABLE merkle;
         DROP TABLE idempotency_keys;
         DROP TABLE archive_segments;
         DROP TABLE archive_runs;
         CREATE TABLE idempotency (key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, version INTEGER NOT NULL, response TEXT NOT NULL, created_at INTEGER NOT NULL) WITHOUT ROWID;
         UPDATE schema_meta SET version = 1",
    );
    s.start_again();
    assert_eq!(s.health()["schema_version"], latest);
    assert_eq!(snapshot(&s, &keys), before);
}

#[test]
fn a_newer_schema_is_left_alone() {
    let mut s = fresh();
    apply(&s, 2);
    s.stop();
    s.sql("UPDATE schema_meta SET version = 999");
    s.start_again();
    // The object refuses to serve rather than touch a database it does not understand.
    let r = s.get("/api/value");
    r.problem(503);
    assert!(r.header("retry-after").is_some());
    s.post("/api/increment", &[], "").problem(503);
    s.stop();
    assert_eq!(
        s.sql("SELECT value, version FROM counter"),
        vec![vec![Value::from(3), Value::from(2)]]
    );
    s.sql("UPDATE schema_meta SET version = 3");
    s.start_again();
    assert_eq!(s.value()["version"], 2);
}
