//! `GET /api/badge.svg` against the real runtime: a well-formed SVG of the current value for
//! every label, hostile ones included (each parsed by a real XML parser, Python's expat, and
//! its text read back exactly); colors only from the safe set, anything else a 400 problem;
//! `ETag` and `If-None-Match` → 304 until the counter changes; short public caching; without
//! relays the counter's value.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{key, shared, Options, Resp, Server};
use serde_json::Value;

fn server() -> std::sync::MutexGuard<'static, Server> {
    shared(Options::default)
}

/// Parses `svg` with Python's XML parser (expat): the root's tag, its `aria-label`, the
/// `<title>` text, the texts of the `<text>` elements and every `fill`, or the parser's error.
fn parse_xml(svg: &str) -> Result<Value, String> {
    let program = r#"
import json, sys
import xml.etree.ElementTree as ET
root = ET.fromstring(sys.stdin.buffer.read())
ns = '{http://www.w3.org/2000/svg}'
print(json.dumps({
    'tag': root.tag,
    'aria': root.get('aria-label'),
    'title': root.find(ns + 'title').text,
    'texts': [t.text for t in root.iter(ns + 'text')],
    'fills': sorted({e.get('fill') for e in root.iter() if e.get('fill')}),
    'elements': sorted({e.tag.replace(ns, '') for e in root.iter()}),
}))
"#;
    let mut child = Command::new("python3")
        .args(["-c", program])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(svg.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(serde_json::from_slice(&out.stdout).unwrap())
}

fn badge(s: &Server, query: &str) -> Resp {
    s.get(&format!("/api/badge.svg{query}"))
}

/// `-1234567` as `-1,234,567`, as the badge writes it.
fn grouped(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::from(if n < 0 { "-" } else { "" });
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A well-formed badge whose label reads back as `label` and whose value is the counter's.
fn check(s: &Server, query: &str, label: &str) -> Value {
    let r = badge(s, query);
    assert_eq!(r.status, 200, "{query}: {}", r.body);
    assert_eq!(
        r.header("content-type"),
        Some("image/svg+xml; charset=utf-8")
    );
    let x = parse_xml(&r.body).unwrap_or_else(|e| panic!("{query}: not XML: {e}\n{}", r.body));
    assert_eq!(x["tag"], "{http://www.w3.org/2000/svg}svg");
    let value = grouped(s.value()["value"].as_i64().unwrap());
    assert_eq!(
        x["texts"],
        serde_json::json!([label, label, value, value]),
        "{query}"
    );
    assert_eq!(x["title"], format!("{label}: {value}"));
    assert_eq!(x["aria"], format!("{label}: {value}"));
    // Nothing but drawing: no script, no foreign object, no link.
    for e in x["elements"].as_array().unwrap() {
        let e = e.as_str().unwrap();
        assert!(
            [
                "svg",
                "title",
                "linearGradient",
                "stop",
                "clipPath",
                "rect",
                "g",
                "text"
            ]
            .contains(&e),
            "{query}: element {e}"
        );
    }
    x
}

#[test]
fn the_badge_shows_the_current_value_with_its_headers() {
    let s = server();
    let x = check(&s, "", "acidizer");
    assert!(x["fills"]
        .as_array()
        .unwrap()
        .contains(&Value::from("#007ec6")));
    let r = badge(&s, "");
    assert_eq!(r.header("cache-control"), Some("public, max-age=10"));
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(
        r.header("content-security-policy"),
        Some("default-src 'none'")
    );
    let etag = r.header("etag").unwrap().to_string();
    let version = s.value()["version"].as_u64().unwrap();
    assert!(etag.starts_with(&format!("\"{version}-")), "{etag}");
    // It follows the counter.
    let r = s.increment(&key("badge"), 1234);
    assert_eq!(r.status, 200, "{}", r.body);
    check(&s, "?label=after", "after");
    let head = s.request("HEAD", "/api/badge.svg", &[], None);
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert!(head.header("etag").is_some());
}

#[test]
fn hostile_labels_make_well_formed_svg_with_the_exact_text() {
    let s = server();
    let long = "ab".repeat(100);
    let cut: String = long.chars().take(39).collect::<String>() + "…";
    for (query, label) in [
        (
            "?label=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
            "<script>alert(1)</script>",
        ),
        ("?label=a%26b%26amp%3B", "a&b&amp;"),
        (
            "?label=%22quoted%22%20and%20'single'",
            "\"quoted\" and 'single'",
        ),
        (
            "?label=%5D%5D%3E%3C!%5BCDATA%5Bx%5D%5D%3E",
            "]]><![CDATA[x]]>",
        ),
        ("?label=%3C!--%20comment%20--%3E", "<!-- comment -->"),
        ("?label=%3C%3Fxml%20x%3F%3E%26%23x0%3B", "<?xml x?>&#x0;"),
        ("?label=%22%20onload%3D%22alert(1)", "\" onload=\"alert(1)"),
        ("?label=caf%C3%A9%20%E2%9C%93%20%F0%9F%98%80", "café ✓ 😀"),
        // Characters XML cannot carry are dropped; whitespace runs become one space.
        ("?label=a%00b%01c%1Fd%0A%0D%09e%EF%BF%BEf", "abcd ef"),
        (&format!("?label={long}"), &cut),
        // Nothing left to show: the default label.
        ("?label=", "acidizer"),
        ("?label=%20%00%20", "acidizer"),
    ] {
        check(&s, query, label);
    }
    // Not UTF-8 or not percent-encoding at all: a problem, not a badge.
    for query in [
        "?label=%FF%FE",
        "?label=%C3%28",
        "?label=%E2%82",
        "?label=%zz",
        "?label=%",
    ] {
        badge(&s, query).problem(400);
    }
    let too_long = format!("?label={}", "x".repeat(600));
    badge(&s, &too_long).problem(400);
}

#[test]
fn colors_come_only_from_the_safe_set() {
    let s = server();
    for (query, fill) in [
        ("?color=red", "#e05d44"),
        ("?color=BrightGreen", "#44cc11"),
        ("?color=4c1", "#44cc11"),
        ("?color=%23AbCdEf", "#abcdef"),
    ] {
        let x = check(&s, query, "acidizer");
        assert!(
            x["fills"].as_array().unwrap().contains(&Value::from(fill)),
            "{query}: {x}"
        );
    }
    for bad in [
        "?color=",
        "?color=reddish",
        "?color=%22%3E%3Cscript%3E",
        "?color=url(%23x)",
        "?color=javascript%3Aalert(1)",
        "?color=%23abcd",
        "?color=rgb(0%2C0%2C0)",
        "?color=red&color=blue",
        "?colour=red",
    ] {
        let p = badge(&s, bad).problem(400);
        assert_eq!(p["type"], "/problems/invalid-query", "{bad}");
    }
}

#[test]
fn if_none_match_answers_304_until_the_counter_changes() {
    let s = server();
    let first = badge(&s, "?label=x");
    let etag = first.header("etag").unwrap().to_string();
    let again = s.request(
        "GET",
        "/api/badge.svg?label=x",
        &[("if-none-match", &etag)],
        None,
    );
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    assert_eq!(again.header("etag"), Some(etag.as_str()));
    assert_eq!(again.header("cache-control"), Some("public, max-age=10"));
    let weak = format!("\"other\", W/{etag}");
    let r = s.request(
        "GET",
        "/api/badge.svg?label=x",
        &[("if-none-match", &weak)],
        None,
    );
    assert_eq!(r.status, 304);
    // Another label or color is another badge.
    let other = s.request(
        "GET",
        "/api/badge.svg?label=y",
        &[("if-none-match", &etag)],
        None,
    );
    assert_eq!(other.status, 200);
    assert_ne!(other.header("etag"), Some(etag.as_str()));
    // The counter changes: the old tag gets the new badge.
    assert_eq!(s.increment(&key("badge-etag"), 1).status, 200);
    let changed = s.request(
        "GET",
        "/api/badge.svg?label=x",
        &[("if-none-match", &etag)],
        None,
    );
    assert_eq!(changed.status, 200);
    assert_ne!(changed.header("etag"), Some(etag.as_str()));
    parse_xml(&changed.body).unwrap();
    // A change that was refused changes nothing, so the badge stays.
    let now = changed.header("etag").unwrap().to_string();
    s.post_json("/api/increment", &[], "{\"amount\":0}")
        .problem(400);
    let same = s.request(
        "GET",
        "/api/badge.svg?label=x",
        &[("if-none-match", &now)],
        None,
    );
    assert_eq!(same.status, 304);
}

#[test]
fn without_relays_the_badge_is_the_counter_s_value() {
    let s = Server::start(Options {
        vars: vec![("RELAY_SOCKETS_PER_RELAY".into(), "0".into())],
        ..Options::default()
    });
    check(&s, "?label=direct", "direct");
    let r = s.post_json("/api/admin/set", &[], "{\"value\":1}");
    assert!(r.status == 404, "no admin token: {}", r.body);
    assert_eq!(s.increment(&key("badge-direct"), 41).status, 200);
    let x = check(&s, "?label=direct", "direct");
    assert_eq!(x["texts"][2], "41");
}
