//! The HTTP contract, line by line, against the real runtime (`wrangler dev`).
//!
//! Every error case also checks that nothing was applied, audited or remembered: the value,
//! version, audit length and number of stored keys are the same after it, and a key sent
//! with a refused request is still free afterwards.

mod common;

use common::{key, raw_request, shared, Options, Resp, Server};
use serde_json::Value;

const ADMIN: &str = "contract-admin-token-0123456789";

fn server() -> std::sync::MutexGuard<'static, Server> {
    shared(|| Options {
        vars: vec![
            ("ADMIN_TOKEN".into(), ADMIN.into()),
            ("RATE_LIMIT_PER_10S".into(), "0".into()),
        ],
        ..Options::default()
    })
}

/// Everything a refused request must leave alone. (A key is remembered by its audit entry, so
/// an unchanged audit trail means no key was remembered either; `refused` also checks that
/// the key is still free.)
#[derive(Debug, PartialEq)]
struct World {
    value: Value,
    version: Value,
    audit_entries: Value,
}

fn world(s: &Server) -> World {
    let h = s.health();
    World {
        value: h["value"].clone(),
        version: h["version"].clone(),
        audit_entries: h["audit_entries"].clone(),
    }
}

/// Runs `refused` (which must return a problem with `status`), checks the world is unchanged,
/// and that `key` (if any) was not remembered: it can still be used for a real change.
fn refused(
    s: &Server,
    status: u16,
    key: Option<&str>,
    request: impl FnOnce(&Server) -> Resp,
) -> Value {
    let before = world(s);
    let r = request(s);
    let problem = r.problem(status);
    assert_eq!(
        world(s),
        before,
        "a refused request changed something: {}",
        r.body
    );
    if let Some(k) = key {
        let ok = s.increment(k, 1);
        assert_eq!(ok.status, 200, "{}", ok.body);
        assert!(
            ok.header("idempotent-replayed").is_none(),
            "the refused key was remembered"
        );
    }
    problem
}

fn is_rfc3339(s: &str) -> bool {
    s.len() == 24 && s.ends_with('Z') && s.as_bytes()[10] == b'T' && s[..4].parse::<u32>().is_ok()
}

#[test]
fn value_has_its_shape_and_headers() {
    let s = server();
    let r = s.get("/api/value");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    let v = r.json();
    let obj = v.as_object().unwrap();
    assert_eq!(obj.len(), 3, "{v}");
    assert!(v["value"].is_i64());
    let version = v["version"].as_u64().unwrap();
    assert_eq!(r.header("etag"), Some(format!("\"{version}\"").as_str()));
    assert!(v["updated_at"].is_null() || is_rfc3339(v["updated_at"].as_str().unwrap()));

    let head = s.request("HEAD", "/api/value", &[], None);
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
}

#[test]
fn increment_and_decrement_answer_the_change() {
    let s = server();
    let before = s.value();
    let r = s.post("/api/increment", &[], "");
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v.as_object().unwrap().len(), 7, "{v}");
    assert_eq!(v["previous_value"], before["value"]);
    assert_eq!(
        v["value"].as_i64().unwrap(),
        before["value"].as_i64().unwrap() + 1
    );
    assert_eq!(
        v["version"].as_u64().unwrap(),
        before["version"].as_u64().unwrap() + 1
    );
    assert_eq!(v["operation"], "increment");
    assert_eq!(v["amount"], 1);
    let rid = v["request_id"].as_str().unwrap();
    assert_eq!(rid.len(), 36, "a server-made request id is a UUID: {rid}");
    assert!(is_rfc3339(v["applied_at"].as_str().unwrap()));
    assert_eq!(
        r.header("etag"),
        Some(format!("\"{}\"", v["version"]).as_str())
    );
    assert!(r.header("idempotent-replayed").is_none());

    let d = s
        .post_json("/api/decrement", &[], "{\"amount\": 250}")
        .json();
    assert_eq!(d["operation"], "decrement");
    assert_eq!(d["amount"], 250);
    assert_eq!(d["previous_value"], v["value"]);
    assert_eq!(
        d["value"].as_i64().unwrap(),
        v["value"].as_i64().unwrap() - 250
    );
    assert_eq!(
        d["version"].as_u64().unwrap(),
        v["version"].as_u64().unwrap() + 1
    );
    assert_eq!(s.value()["value"], d["value"]);

    // `{}` and a JSON media type with parameters are fine; so is an empty body with any type.
    assert_eq!(s.post_json("/api/increment", &[], "{}").json()["amount"], 1);
    let r = s.post(
        "/api/increment",
        &[("content-type", "application/json; charset=utf-8")],
        "{\"amount\":3}",
    );
    assert_eq!(r.json()["amount"], 3);
    assert_eq!(
        s.post("/api/increment", &[("content-type", "text/plain")], "")
            .status,
        200
    );
}

#[test]
fn amount_limits() {
    let s = server();
    assert_eq!(
        s.post_json("/api/increment", &[], "{\"amount\":1000000}")
            .json()["amount"],
        1_000_000
    );
    assert_eq!(
        s.post_json("/api/decrement", &[], "{\"amount\":1000000}")
            .json()["amount"],
        1_000_000
    );
    // Integral numbers are integers however they are written, as in JSON Schema.
    assert_eq!(
        s.post_json("/api/increment", &[], "{\"amount\":2.0}")
            .json()["amount"],
        2
    );
    for body in [
        "{\"amount\":0}",
        "{\"amount\":1000001}",
        "{\"amount\":-1}",
        "{\"amount\":1.5}",
        "{\"amount\":2.5}",
        "{\"amount\":1e-2}",
        "{\"amount\":\"5\"}",
        "{\"amount\":null}",
        "{\"amount\":true}",
        "{\"amount\":[5]}",
        "{\"amount\":99999999999999999999999}",
        "{\"amount\":1,\"extra\":1}",
        "{\"amount\":1,\"amount\":2}",
        "[1]",
        "5",
        "null",
        "\"hello\"",
    ] {
        let k = key("bad-amount");
        let p = refused(&s, 400, Some(&k), |s| {
            s.post_json("/api/increment", &[("idempotency-key", &k)], body)
        });
        assert_eq!(p["type"], "/problems/invalid-body", "{body}: {p}");
    }
}

#[test]
fn malformed_json_is_400() {
    let s = server();
    for body in [
        "{",
        "{\"amount\":}",
        "{\"amount\":1",
        "amount=1",
        "{'amount':1}",
        "{\"amount\":1}}",
        "\u{1}",
    ] {
        let k = key("malformed");
        let p = refused(&s, 400, Some(&k), |s| {
            s.post_json("/api/decrement", &[("idempotency-key", &k)], body)
        });
        assert_eq!(p["type"], "/problems/malformed-json", "{body}");
    }
}

#[test]
fn non_json_bodies_are_415() {
    let s = server();
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/xml",
        "multipart/form-data",
    ] {
        let k = key("media");
        refused(&s, 415, Some(&k), |s| {
            s.post(
                "/api/increment",
                &[("content-type", ct), ("idempotency-key", &k)],
                "{\"amount\":1}",
            )
        });
    }
    // A body without any Content-Type.
    refused(&s, 415, None, |s| {
        s.request("POST", "/api/increment", &[], Some(b"{\"amount\":1}"))
    });
}

#[test]
fn bodies_over_one_kib_are_413() {
    let s = server();
    let big = format!("{{\"amount\":1,\"pad\":\"{}\"}}", "x".repeat(1100));
    let k = key("big");
    refused(&s, 413, Some(&k), |s| {
        s.post_json("/api/increment", &[("idempotency-key", &k)], &big)
    });
    // Exactly 1 KiB of valid JSON is still accepted.
    let exact = format!("{{\"amount\":2{}}}", " ".repeat(1024 - 12));
    assert_eq!(exact.len(), 1024);
    assert_eq!(s.post_json("/api/increment", &[], &exact).status, 200);

    // Chunked, without Content-Length: refused while streaming.
    let before = world(&s);
    let chunk = "x".repeat(700);
    let req = format!(
        "POST /api/increment HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{chunk}\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len(),
        chunk.len()
    );
    let (status, body) = raw_request(s.port, req.as_bytes());
    assert_eq!(status, 413, "{body}");
    assert_eq!(world(&s), before);
}

#[test]
fn a_key_applies_once_and_replays_byte_for_byte() {
    let s = server();
    let k = key("replay");
    let first = s.increment(&k, 7);
    assert_eq!(first.status, 200);
    assert!(first.header("idempotent-replayed").is_none());
    assert_eq!(first.json()["request_id"], k.as_str());
    let after_first = world(&s);
    for _ in 0..3 {
        let again = s.increment(&k, 7);
        assert_eq!(again.status, 200);
        assert_eq!(again.header("idempotent-replayed"), Some("true"));
        assert_eq!(
            again.body, first.body,
            "replay must be byte-for-byte the same"
        );
        assert_eq!(again.header("etag"), first.header("etag"));
    }
    assert_eq!(world(&s), after_first, "a replay applied something");

    // X-Request-ID is the same thing when Idempotency-Key is absent.
    let rid = key("xrid");
    let a = s.post("/api/decrement", &[("x-request-id", &rid)], "");
    let b = s.post("/api/decrement", &[("x-request-id", &rid)], "");
    assert_eq!(a.json()["request_id"], rid.as_str());
    assert_eq!(b.header("idempotent-replayed"), Some("true"));
    assert_eq!(a.body, b.body);
    // ...and the same key through the other header is the same key.
    let c = s.post("/api/decrement", &[("idempotency-key", &rid)], "");
    assert_eq!(c.header("idempotent-replayed"), Some("true"));
    // Idempotency-Key wins over X-Request-ID.
    let k2 = key("wins");
    let d = s.post(
        "/api/increment",
        &[("idempotency-key", &k2), ("x-request-id", &rid)],
        "",
    );
    assert_eq!(d.json()["request_id"], k2.as_str());
}

#[test]
fn a_key_reused_for_something_else_is_422() {
    let s = server();
    let k = key("reuse");
    let first = s.increment(&k, 2);
    assert_eq!(first.status, 200);
    refused(&s, 422, None, |s| s.increment(&k, 3));
    refused(&s, 422, None, |s| {
        s.post_json(
            "/api/decrement",
            &[("idempotency-key", &k)],
            "{\"amount\":2}",
        )
    });
    // The original still replays.
    assert_eq!(s.increment(&k, 2).body, first.body);
}

#[test]
fn bad_keys_are_400() {
    let s = server();
    let long = "k".repeat(256);
    for bad in [
        long.as_str(),
        "has space",
        "slash/key",
        "quote\"key",
        "percent%20",
        "comma,key",
    ] {
        let p = refused(&s, 400, None, |s| {
            s.post("/api/increment", &[("idempotency-key", bad)], "")
        });
        assert_eq!(p["type"], "/problems/invalid-header", "{bad}");
        refused(&s, 400, None, |s| {
            s.post("/api/increment", &[("x-request-id", bad)], "")
        });
    }
    refused(&s, 400, None, |s| {
        s.request("POST", "/api/increment", &[("idempotency-key", "")], None)
    });
    // Non-ASCII bytes in the header.
    let req = b"POST /api/increment HTTP/1.1\r\nHost: x\r\nIdempotency-Key: k\xc3\xa9y\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    let before = world(&s);
    let (status, _) = raw_request(s.port, req);
    assert_eq!(status, 400);
    assert_eq!(world(&s), before);
    // The longest valid key works.
    let max = format!("{}{}", key("m"), "k".repeat(250));
    let max = &max[..255];
    assert_eq!(
        s.post("/api/increment", &[("idempotency-key", max)], "")
            .status,
        200
    );
}

#[test]
fn if_match_guards_the_version() {
    let s = server();
    let current = s.value()["version"].as_u64().unwrap();
    let etag = format!("\"{current}\"");
    let ok = s.post("/api/increment", &[("if-match", &etag)], "");
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.json()["version"], current + 1);

    // The same tag is stale now.
    let k = key("stale");
    let p = refused(&s, 412, Some(&k), |s| {
        s.post(
            "/api/increment",
            &[("if-match", &etag), ("idempotency-key", &k)],
            "",
        )
    });
    assert_eq!(p["current_version"], current + 1, "{p}");

    let now = s.value()["version"].as_u64().unwrap();
    for (header, status) in [
        (format!("\"{}\", \"{now}\"", now + 5), 200),
        ("*".to_string(), 200),
        (format!("W/\"{}\"", now + 2), 412),
        ("\"not-a-version\"".to_string(), 412),
    ] {
        let r = s.post("/api/increment", &[("if-match", &header)], "");
        assert_eq!(r.status, status, "If-Match: {header} -> {}", r.body);
    }
    for bad in ["5", "\"5", "'5'", "\"a b\""] {
        refused(&s, 400, None, |s| {
            s.post("/api/increment", &[("if-match", bad)], "")
        });
    }

    // A retry of a change that was applied under a then-valid If-Match replays; it is not
    // judged again against the version it moved the counter to.
    let k = key("ifmatch-retry");
    let v = s.value()["version"].as_u64().unwrap();
    let tag = format!("\"{v}\"");
    let first = s.post(
        "/api/decrement",
        &[("if-match", &tag), ("idempotency-key", &k)],
        "",
    );
    assert_eq!(first.status, 200);
    let again = s.post(
        "/api/decrement",
        &[("if-match", &tag), ("idempotency-key", &k)],
        "",
    );
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, first.body);
}

#[test]
fn results_outside_the_safe_range_are_409() {
    let s = server();
    const MAX: i64 = 9_007_199_254_740_991;
    let auth = format!("Bearer {ADMIN}");
    let set = |v: i64| {
        let r = s.post_json(
            "/api/admin/set",
            &[("authorization", &auth)],
            &format!("{{\"value\":{v}}}"),
        );
        assert_eq!(r.status, 200, "{}", r.body);
    };
    set(MAX - 5);
    let ok = s.increment(&key("edge"), 5);
    assert_eq!(ok.json()["value"], MAX);
    let k = key("over");
    let p = refused(&s, 409, None, |s| s.increment(&k, 1));
    assert_eq!(p["type"], "/problems/out-of-range");
    // The refused key is still free.
    set(0);
    assert_eq!(s.increment(&k, 1).header("idempotent-replayed"), None);

    set(-MAX + 2);
    refused(&s, 409, None, |s| {
        s.post_json("/api/decrement", &[], "{\"amount\":3}")
    });
    assert_eq!(
        s.post_json("/api/decrement", &[], "{\"amount\":2}").json()["value"],
        -MAX
    );
    set(0);
}

#[test]
fn audit_pages_are_ascending_and_contiguous() {
    let s = server();
    for i in 0..5 {
        s.increment(&key("audit"), i + 1);
    }
    let all = s.audit_all();
    let last = s.value()["version"].as_u64().unwrap();
    assert_eq!(all.len() as u64, last, "one entry per version");
    let mut prev_value = 0i64;
    for (i, e) in all.iter().enumerate() {
        assert_eq!(e["version"], i as u64 + 1);
        assert_eq!(e.as_object().unwrap().len(), 7, "{e}");
        assert_eq!(e["previous_value"], prev_value, "{e}");
        prev_value = e["value"].as_i64().unwrap();
        assert!(is_rfc3339(e["at"].as_str().unwrap()));
    }
    assert_eq!(prev_value, s.value()["value"].as_i64().unwrap());

    // Paging: limit 2 from after=1.
    let p = s.get("/api/audit?after=1&limit=2").json();
    let e = p["entries"].as_array().unwrap();
    assert_eq!(
        (e[0]["version"].as_u64(), e[1]["version"].as_u64()),
        (Some(2), Some(3))
    );
    assert_eq!(p["next_after"], 3);
    let end = s.get(&format!("/api/audit?after={last}")).json();
    assert!(end["entries"].as_array().unwrap().is_empty());
    assert!(end["next_after"].is_null());
    // Defaults: after=0, limit=100.
    let d = s.get("/api/audit").json();
    assert_eq!(d["entries"][0]["version"], 1);
    assert!(d["entries"].as_array().unwrap().len() <= 100);

    for bad in [
        "limit=0",
        "limit=1001",
        "limit=abc",
        "after=-1",
        "after=1.5",
        "page=2",
        "limit=1&limit=2",
        "after=%zz",
    ] {
        let p = s.get(&format!("/api/audit?{bad}")).problem(400);
        assert_eq!(p["type"], "/problems/invalid-query", "{bad}");
    }
    assert_eq!(s.get("/api/audit?limit=1000").status, 200);
}

#[test]
fn health_reports_ok() {
    let s = server();
    let h = s.health();
    assert_eq!(h["status"], "ok");
    assert_eq!(h["schema_version"], h["latest_schema_version"]);
    assert_eq!(h["audit_entries"], h["version"]);
}

#[test]
fn unknown_paths_and_methods() {
    let s = server();
    for path in [
        "/api/nope",
        "/api/",
        "/api/value/",
        "/api/VALUE",
        "/api/admin",
    ] {
        let p = s.get(path).problem(404);
        assert_eq!(p["type"], "/problems/not-found");
    }
    for (method, path, allow) in [
        ("DELETE", "/api/value", "GET, HEAD, OPTIONS"),
        ("POST", "/api/value", "GET, HEAD, OPTIONS"),
        ("GET", "/api/increment", "POST, OPTIONS"),
        ("PUT", "/api/decrement", "POST, OPTIONS"),
        ("PATCH", "/api/audit", "GET, HEAD, OPTIONS"),
    ] {
        let before = world(&s);
        let r = s.request(method, path, &[], None);
        r.problem(405);
        assert_eq!(r.header("allow"), Some(allow), "{method} {path}");
        assert_eq!(world(&s), before);
    }
    // Query strings where none is expected.
    s.get("/api/value?x=1").problem(400);
    s.post("/api/increment?amount=5", &[], "").problem(400);
}

#[test]
fn static_files_and_spa_fallback() {
    let s = server();
    let index = s.get("/");
    assert_eq!(index.status, 200);
    assert!(index
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    let deep = s.get("/some/app/route");
    assert_eq!(deep.status, 200);
    assert_eq!(deep.body, index.body, "unknown non-API paths get the app");
    // API paths never fall back to HTML.
    assert!(s
        .get("/api/missing")
        .header("content-type")
        .unwrap()
        .contains("problem+json"));
}

#[test]
fn every_request_writes_one_structured_log_line() {
    let s = server();
    let k = key("logged");
    s.increment(&k, 4);
    s.increment(&k, 4);
    s.get("/api/value?bad=1");
    // Refused by the object, not the edge: the line still names the problem type.
    let stale = key("logged-stale");
    assert_eq!(
        s.post(
            "/api/decrement",
            &[("idempotency-key", &stale), ("if-match", "\"999999\"")],
            ""
        )
        .status,
        412
    );
    assert_eq!(s.request("HEAD", "/api/audit", &[], None).status, 200);
    // Logs are written asynchronously by the runtime.
    let mut lines = Vec::new();
    let mut bad = None;
    let mut refused = None;
    let mut head = None;
    for _ in 0..50 {
        let all = s.log_lines();
        lines = all
            .iter()
            .filter(|l| l["msg"] == "request" && l["request_id"] == k.as_str())
            .cloned()
            .collect();
        refused = all
            .iter()
            .find(|l| l["msg"] == "request" && l["request_id"] == stale.as_str())
            .cloned();
        head = all
            .iter()
            .find(|l| l["msg"] == "request" && l["path"] == "/api/audit" && l["method"] == "HEAD")
            .cloned();
        bad = all
            .into_iter()
            .rev()
            .find(|l| l["msg"] == "request" && l["path"] == "/api/value" && l["status"] == 400);
        if lines.len() >= 2 && bad.is_some() && refused.is_some() && head.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let refused = refused.expect("a line for the change the object refused");
    assert_eq!(refused["status"], 412);
    assert_eq!(refused["outcome"], "rejected");
    assert_eq!(refused["problem"], "precondition-failed");
    assert_eq!(
        head.expect("a HEAD request's line says HEAD")["status"],
        200
    );
    assert_eq!(lines.len(), 2, "one line per request: {lines:?}");
    for (l, outcome) in lines.iter().zip(["applied", "replayed"]) {
        assert_eq!(l["method"], "POST");
        assert_eq!(l["path"], "/api/increment");
        assert_eq!(l["status"], 200);
        assert!(l["duration_ms"].is_u64());
        assert_eq!(l["operation"], "increment");
        assert_eq!(l["amount"], 4);
        assert!(l["version"].is_u64());
        assert_eq!(l["outcome"], outcome);
        assert!(l["ts"].is_string());
        // The local runtime's version metadata: a fresh id per start, on every line.
        assert!(
            l["version_id"].as_str().is_some_and(|v| v.len() >= 8),
            "{l}"
        );
    }
    assert_eq!(lines[0]["version"], lines[1]["version"]);
    assert_eq!(
        bad.expect("a line for the refused read")["problem"],
        "invalid-query"
    );
}
