//! Answers that never change, served from the platform's Cache API at the edge: proofs for
//! fixed tree sizes, past values by version, audit pages read from the archive. Each carries
//! `Cache-Control: public, max-age=31536000, immutable` and a strong `ETag`, a cached answer is
//! byte for byte the fresh one, `If-None-Match` gets 304, and nothing mutable is kept: the
//! current tree's proofs, the present value, hot audit pages and refusals stay `no-store`.

mod common;

use std::time::{Duration, Instant};

use common::{Options, Resp, Server};

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// `n` keyed increments from 4 clients at once, each sent again with its key until applied (a
/// busy local runtime may drop an answer).
fn changes(s: &Server, n: u64, tag: &str) {
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let base = s.base.clone();
            let tag = tag.to_string();
            std::thread::spawn(move || {
                for i in (t..n).step_by(4) {
                    // A client each, so no rate limit is in the way.
                    let ip = format!("10.77.{}.{}", i / 256, i % 256);
                    let key = format!("{tag}-{i}");
                    let headers = [("idempotency-key", key.as_str()), ("cf-connecting-ip", &ip)];
                    let mut tries = 0;
                    loop {
                        tries += 1;
                        match common::try_request(&base, "POST", "/api/increment", &headers, None) {
                            Ok(r) if r.status == 200 => break,
                            Ok(r)
                                if tries < 5 && (r.status >= 500 || common::dev_proxy_lost(&r)) => {
                            }
                            Err(_) if tries < 5 => {}
                            other => panic!("{key}: {other:?}"),
                        }
                        std::thread::sleep(Duration::from_millis(200));
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a client failed");
    }
}

fn hit(r: &Resp) -> bool {
    r.header("cf-cache-status") == Some("HIT")
}

/// Asserts that `path` is answered as something that never changes, and that a second read is
/// the same bytes from the cache; returns the first answer.
fn kept(s: &Server, path: &str) -> Resp {
    let first = s.get(path);
    assert_eq!(first.status, 200, "{path}: {}", first.body);
    assert_eq!(first.header("cache-control"), Some(IMMUTABLE), "{path}");
    let etag = first.header("etag").expect("an ETag").to_string();
    assert!(etag.starts_with('"') && etag.len() == 66, "{etag}");
    let again = s.get(path);
    assert_eq!(again.status, 200);
    assert!(
        hit(&again),
        "{path}: the second read came from the cache: {again:?}"
    );
    assert_eq!(again.body, first.body, "{path}: byte for byte");
    assert_eq!(again.header("etag"), Some(etag.as_str()));
    let not_modified = s.request("GET", path, &[("if-none-match", &etag)], None);
    assert_eq!(not_modified.status, 304, "{path}: {not_modified:?}");
    assert!(not_modified.body.is_empty());
    first
}

/// Asserts that `path` is answered fresh every time and marked `no-store`.
fn not_kept(s: &Server, path: &str) {
    for _ in 0..2 {
        let r = s.get(path);
        assert_eq!(r.header("cache-control"), Some("no-store"), "{path}: {r:?}");
        assert!(!hit(&r), "{path} came from the cache: {r:?}");
    }
}

#[test]
fn proofs_for_fixed_sizes_and_past_versions_are_kept_and_nothing_mutable_is() {
    let s = Server::start(Options::default());
    changes(&s, 8, "fixed");

    kept(&s, "/api/audit/proof/inclusion?version=2&tree_size=5");
    // Another spelling of the same query is the same entry.
    let other = s.get("/api/audit/proof/inclusion?tree_size=5&version=2");
    assert!(hit(&other), "{other:?}");
    kept(&s, "/api/audit/proof/consistency?from=3&to=7");
    let past = kept(&s, "/api/value?as_of_version=4");
    assert_eq!(past.json()["version"], 4);

    // The current tree grows; the present changes; a proof's `inclusion` is in the current
    // tree; an instant may still be matched by a later entry: none of them is kept.
    not_kept(&s, "/api/audit/proof/inclusion?version=2");
    not_kept(&s, "/api/audit/proof/consistency?from=3");
    not_kept(&s, "/api/value?as_of_version=4&proof=true");
    not_kept(&s, "/api/value");
    not_kept(&s, "/api/audit?after=0&limit=3");

    // A refusal is not kept: a tree size beyond the log is 400 now, a proof once it exists.
    let beyond = "/api/audit/proof/inclusion?version=2&tree_size=12";
    let r = s.get(beyond);
    r.problem(400);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    changes(&s, 4, "grow");
    let later = kept(&s, beyond);
    assert_eq!(later.json()["tree_size"], 12);
}

#[test]
fn archived_pages_are_kept_and_answer_while_r2_fails() {
    const HOT: u64 = 16;
    let s = Server::start(Options {
        vars: vec![("AUDIT_HOT_ENTRIES".into(), HOT.to_string())],
        ..Options::default()
    });
    changes(&s, 1024 + HOT + 4, "archived");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let h = s.health();
        if h["archived_entries"] == 1024 && h["last_archival"]["outcome"] == "ok" {
            break;
        }
        assert!(Instant::now() < deadline, "archival did not run: {h}");
        std::thread::sleep(Duration::from_millis(250));
    }

    let page = kept(&s, "/api/audit?after=0&limit=5");
    assert_eq!(page.json()["entries"][0]["version"], 1);
    let proof = kept(&s, "/api/audit/proof/inclusion?version=3&tree_size=1030");
    // Hot pages are never kept.
    not_kept(&s, "/api/audit?after=1030&limit=5");

    // R2 fails: what is kept still answers, byte for byte; what is not answers 503.
    let blobs = s.r2_blobs();
    let aside = blobs.with_extension("aside");
    std::fs::rename(&blobs, &aside).unwrap();
    std::fs::write(&blobs, b"not a folder").unwrap();
    let again = s.get("/api/audit?after=0&limit=5");
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body, page.body);
    let again = s.get("/api/audit/proof/inclusion?version=3&tree_size=1030");
    assert_eq!(again.body, proof.body);
    let cold = s.get("/api/audit?after=100&limit=5");
    cold.problem(503);
    std::fs::remove_file(&blobs).unwrap();
    std::fs::rename(&aside, &blobs).unwrap();
    let warm = s.get("/api/audit?after=100&limit=5");
    assert_eq!(warm.status, 200, "{}", warm.body);
}
