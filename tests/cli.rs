//! The command-line client `acidizer` (src/bin/acidizer) against the real runtime: every
//! subcommand, `--json` output, exactly-once changes across replays, lost answers and 503s,
//! refusals and an unreachable server, and `watch` resuming after its socket is dropped. The
//! server signs its checkpoints with a key made by `acidizer keygen`.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use common::{key, shared, Options, Server};
use number_acidizer::core::checkpoint::{SigningKey, VerifierKey};
use serde_json::Value;

const ADMIN: &str = "cli-admin-token-0123456789abcdef";
const BIN: &str = env!("CARGO_BIN_EXE_acidizer");

/// A signing key pair made by `acidizer keygen`: (secret, verifier key).
fn log_keys() -> &'static (String, String) {
    static KEYS: OnceLock<(String, String)> = OnceLock::new();
    KEYS.get_or_init(|| {
        let out = Command::new(BIN)
            .args(["keygen", "acidizer.test/cli"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        let lines: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
        assert_eq!(lines.len(), 2, "{}", text(&out));
        (lines[0].clone(), lines[1].clone())
    })
}

fn server() -> MutexGuard<'static, Server> {
    shared(|| Options {
        vars: vec![
            ("AUDIT_SIGNING_KEY".into(), log_keys().0.clone()),
            ("ADMIN_TOKEN".into(), ADMIN.into()),
            ("ADMIN_TEST_HOOKS".into(), "1".into()),
            ("RATE_LIMIT_PER_10S".into(), "0".into()),
        ],
        ..Options::default()
    })
}

/// `acidizer --url <url> <args>`.
fn run_at(url: &str, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--url")
        .arg(url)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn run(s: &Server, args: &[&str]) -> Output {
    run_at(&s.base, args)
}

/// Runs and requires exit status 0.
fn ok(s: &Server, args: &[&str]) -> String {
    let out = run(s, args);
    assert!(out.status.success(), "{args:?}: {}", text(&out));
    stdout(&out)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        stdout(out),
        stderr(out)
    )
}

/// Every line of `--json` output, each parsed on its own.
fn json_lines(out: &str) -> Vec<Value> {
    out.lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not one JSON per line ({e}): {l:?}"))
        })
        .collect()
}

/// The one JSON body a `--json` command printed.
fn json_one(s: &Server, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let lines = json_lines(&ok(s, &all));
    assert_eq!(lines.len(), 1, "{lines:?}");
    lines.into_iter().next().unwrap()
}

fn version(s: &Server) -> u64 {
    s.value()["version"].as_u64().unwrap()
}

/// The audit entries made with `key`.
fn entries_with_key(s: &Server, key: &str) -> Vec<Value> {
    s.audit_all()
        .into_iter()
        .filter(|e| e["request_id"] == key)
        .collect()
}

#[test]
fn value_increment_and_decrement_print_what_happened() {
    let s = server();
    let before = s.value();
    let (v0, n0) = (
        before["value"].as_i64().unwrap(),
        before["version"].as_u64().unwrap(),
    );
    let shown = ok(&s, &["value"]);
    assert!(shown.starts_with(&format!("{v0} (version {n0}")), "{shown}");

    let k = key("cli-inc");
    let inc = ok(&s, &["increment", "--amount", "5", "--key", &k]);
    assert_eq!(
        inc.trim(),
        format!("{} (version {}): +5 from {v0}, key {k}", v0 + 5, n0 + 1)
    );
    // Without --key, a fresh UUID v4 is the key.
    let dec = ok(&s, &["decrement", "--amount", "2"]);
    assert!(
        dec.starts_with(&format!(
            "{} (version {}): -2 from {}",
            v0 + 3,
            n0 + 2,
            v0 + 5
        )),
        "{dec}"
    );
    let uuid = dec.trim().rsplit("key ").next().unwrap();
    assert_eq!(uuid.len(), 36, "{dec}");
    assert_eq!(uuid.as_bytes()[14], b'4', "not a v4 UUID: {uuid}");
    assert_eq!(entries_with_key(&s, uuid).len(), 1);
    assert_eq!(entries_with_key(&s, uuid)[0]["operation"], "decrement");
    // The default amount is 1.
    ok(&s, &["increment"]);

    let after = s.value();
    assert_eq!(after["value"], v0 + 4);
    assert_eq!(after["version"], n0 + 3);
    let shown = ok(&s, &["value"]);
    assert!(
        shown.starts_with(&format!("{} (version {}, updated ", v0 + 4, n0 + 3)),
        "{shown}"
    );
}

#[test]
fn json_prints_the_api_bodies_one_per_line() {
    let s = server();
    let v = json_one(&s, &["value"]);
    assert_eq!(v, s.value());
    let n0 = v["version"].as_u64().unwrap();

    let k = key("cli-json");
    let c = json_one(&s, &["increment", "--amount", "3", "--key", &k]);
    assert_eq!(c["operation"], "increment");
    assert_eq!(c["amount"], 3);
    assert_eq!(c["request_id"], k.as_str());
    assert_eq!(c["version"], n0 + 1);
    assert_eq!(c["value"], v["value"].as_i64().unwrap() + 3);
    for field in ["previous_value", "applied_at"] {
        assert!(c.get(field).is_some(), "{field} in {c}");
    }
    let d = json_one(&s, &["decrement", "--amount", "1"]);
    assert_eq!(d["operation"], "decrement");
    assert_eq!(d["previous_value"], c["value"]);

    // An audit page is one line; with --all, one line per page.
    let page = json_one(&s, &["audit", "--after", &n0.to_string()]);
    assert_eq!(page["entries"].as_array().unwrap().len(), 2, "{page}");
    assert_eq!(page["next_after"], Value::Null);
    let pages = json_lines(&ok(
        &s,
        &[
            "--json",
            "audit",
            "--all",
            "--limit",
            "1",
            "--after",
            &n0.to_string(),
        ],
    ));
    assert_eq!(pages.len(), 2, "{pages:?}");
    assert_eq!(pages[0]["entries"][0], c_entry(&c));
    assert_eq!(pages[0]["next_after"], n0 + 1);
    assert_eq!(pages[1]["entries"][0]["request_id"], d["request_id"]);

    let keys = json_one(&s, &["keygen", "acidizer.test/json"]);
    let secret = keys["signing_key"].as_str().unwrap();
    let verifier = keys["verifier_key"].as_str().unwrap();
    assert_eq!(
        SigningKey::parse(secret).unwrap().verifier().to_text(),
        verifier
    );
}

/// The audit entry a change's answer stands for.
fn c_entry(c: &Value) -> Value {
    serde_json::json!({
        "version": c["version"],
        "operation": c["operation"],
        "amount": c["amount"],
        "previous_value": c["previous_value"],
        "value": c["value"],
        "request_id": c["request_id"],
        "at": c["applied_at"],
    })
}

#[test]
fn a_key_sent_twice_is_applied_once_and_the_second_answer_is_the_replay() {
    let s = server();
    let before = s.value();
    let k = key("cli-replay");
    let first = ok(&s, &["--json", "increment", "--amount", "4", "--key", &k]);
    let second = run(&s, &["--json", "increment", "--amount", "4", "--key", &k]);
    assert!(second.status.success(), "{}", text(&second));
    // The replay is the first answer, byte for byte, and says so on stderr.
    assert_eq!(stdout(&second), first);
    assert!(stderr(&second).contains("replayed"), "{}", text(&second));
    let third = ok(&s, &["increment", "--amount", "4", "--key", &k]);
    assert!(third.contains("(replayed:"), "{third}");

    let after = s.value();
    assert_eq!(after["value"], before["value"].as_i64().unwrap() + 4);
    assert_eq!(after["version"], before["version"].as_u64().unwrap() + 1);
    assert_eq!(entries_with_key(&s, &k).len(), 1);
}

#[test]
fn a_refused_change_exits_65_with_the_problem_title_and_changes_nothing() {
    let s = server();
    let before = s.value();
    // An amount out of range: the server's 400, word for word.
    let k = key("cli-range");
    let direct = s
        .post_json(
            "/api/increment",
            &[("idempotency-key", &k)],
            "{\"amount\":1000001}",
        )
        .problem(400);
    let out = run(&s, &["increment", "--amount", "1000001", "--key", &k]);
    assert_eq!(out.status.code(), Some(65), "{}", text(&out));
    let err = stderr(&out);
    assert!(err.contains(direct["title"].as_str().unwrap()), "{err}");
    assert!(err.contains(direct["detail"].as_str().unwrap()), "{err}");
    assert!(stdout(&out).is_empty(), "{}", text(&out));
    let out = run(&s, &["decrement", "--amount", "0"]);
    assert_eq!(out.status.code(), Some(65), "{}", text(&out));

    // A key already used for another amount: 422.
    let k = key("cli-reuse");
    ok(&s, &["increment", "--amount", "1", "--key", &k]);
    let out = run(&s, &["--json", "increment", "--amount", "2", "--key", &k]);
    assert_eq!(out.status.code(), Some(65), "{}", text(&out));
    let direct = s
        .post_json(
            "/api/increment",
            &[("idempotency-key", &k)],
            "{\"amount\":2}",
        )
        .problem(422);
    assert!(
        stderr(&out).contains(direct["title"].as_str().unwrap()),
        "{}",
        text(&out)
    );
    assert!(stdout(&out).is_empty(), "{}", text(&out));
    // Only the one accepted change happened.
    let after = s.value();
    assert_eq!(after["value"], before["value"].as_i64().unwrap() + 1);
    assert_eq!(after["version"], before["version"].as_u64().unwrap() + 1);
}

#[test]
fn usage_errors_exit_64() {
    for args in [
        &["increment", "--amount"][..],
        &["increment", "--amount", "many"],
        &["frobnicate"],
        &["keygen"],
        &["verify"],
        &["--url", "ftp://example.test", "value"],
    ] {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(64), "{args:?}: {}", text(&out));
    }
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    assert!(stdout(&out).contains("watch"));
}

/// What the fault-injecting proxy does with each request it gets, in order.
#[derive(Clone, Copy, Debug)]
enum Act {
    /// Forward it, then close the connection without answering: the answer is lost.
    ForwardAndDrop,
    /// Answer 503 with `Retry-After: 1` without forwarding it.
    Unavailable,
}

/// A proxy in front of the real server that applies `script` to the first requests and
/// forwards the rest; returns its URL and the idempotency keys of every request it got.
fn proxy(base: &str, script: Vec<Act>) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (base, log) = (base.to_owned(), seen.clone());
    std::thread::spawn(move || {
        let mut script = script.into_iter();
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let act = script.next();
            let Some((method, path, headers, body)) = read_request(&stream) else {
                continue;
            };
            let key = headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("idempotency-key"))
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            log.lock().unwrap().push(key);
            let mut stream = stream;
            if let Some(Act::Unavailable) = act {
                let body = r#"{"type":"/problems/unavailable","title":"Service Unavailable","status":503,"detail":"injected by the test proxy"}"#;
                let _ = write!(
                    stream,
                    "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/problem+json\r\nretry-after: 1\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                continue;
            }
            let h: Vec<(&str, &str)> = headers
                .iter()
                .filter(|(k, _)| {
                    !["host", "content-length", "connection"]
                        .contains(&k.to_ascii_lowercase().as_str())
                })
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let body = (!body.is_empty()).then_some(body.as_slice());
            let Ok(r) = common::try_request(&base, &method, &path, &h, body) else {
                continue;
            };
            if let Some(Act::ForwardAndDrop) = act {
                let _ = stream.shutdown(std::net::Shutdown::Both);
                continue;
            }
            let mut head = format!("HTTP/1.1 {} X\r\n", r.status);
            for (k, v) in &r.headers {
                if !["content-length", "transfer-encoding", "connection"].contains(&k.as_str()) {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
            }
            head.push_str(&format!(
                "content-length: {}\r\nconnection: close\r\n\r\n",
                r.body.len()
            ));
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(r.body.as_bytes());
        }
    });
    (url, seen)
}

type Request = (String, String, Vec<(String, String)>, Vec<u8>);

fn read_request(stream: &TcpStream) -> Option<Request> {
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some((method, path, headers, body))
}

#[test]
fn a_lost_answer_and_a_503_are_retried_with_the_same_key_and_applied_once() {
    let s = server();
    let before = s.value();
    let (url, seen) = proxy(&s.base, vec![Act::ForwardAndDrop, Act::Unavailable]);
    let started = Instant::now();
    let out = run_at(&url, &["--json", "increment", "--amount", "7"]);
    assert!(out.status.success(), "{}", text(&out));
    // The first attempt was applied and its answer lost; the second met a 503 and waited its
    // Retry-After; the third got the stored answer of the first.
    let keys = seen.lock().unwrap().clone();
    assert_eq!(keys.len(), 3, "{keys:?}");
    assert!(
        keys.iter().all(|k| k == &keys[0] && !k.is_empty()),
        "{keys:?}"
    );
    assert!(started.elapsed() >= Duration::from_secs(1));
    let err = stderr(&out);
    assert_eq!(err.matches("trying again").count(), 2, "{err}");
    assert!(err.contains("answered 503"), "{err}");
    assert!(err.contains("replayed"), "{err}");
    let c = &json_lines(&stdout(&out))[0];
    assert_eq!(c["request_id"], keys[0].as_str());
    let after = s.value();
    assert_eq!(after["value"], before["value"].as_i64().unwrap() + 7);
    assert_eq!(after["version"], before["version"].as_u64().unwrap() + 1);
    assert_eq!(entries_with_key(&s, &keys[0]).len(), 1);
}

#[test]
fn an_unreachable_server_exits_69_and_names_the_key_to_retry_with() {
    let port = common::free_port();
    let url = format!("http://127.0.0.1:{port}");
    let out = run_at(&url, &["increment", "--key", "cli-unreachable-1"]);
    assert_eq!(out.status.code(), Some(69), "{}", text(&out));
    let err = stderr(&out);
    assert!(err.contains("--key cli-unreachable-1"), "{err}");
    assert_eq!(err.matches("trying again").count(), 5, "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let out = run_at(&url, &["value"]);
    assert_eq!(out.status.code(), Some(69), "{}", text(&out));
}

#[test]
fn audit_prints_one_page_or_all_of_them() {
    let s = server();
    let n0 = version(&s);
    for i in 1..=5 {
        s.increment(&key("cli-audit"), i);
    }
    let after = n0.to_string();
    let out = run(&s, &["audit", "--after", &after, "--limit", "2"]);
    assert!(out.status.success(), "{}", text(&out));
    let lines: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 2, "{}", text(&out));
    let first: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(first[0], (n0 + 1).to_string());
    assert_eq!(first[1], "increment");
    assert_eq!(first[2], "1");
    assert!(
        stderr(&out).contains(&format!("--after {}", n0 + 2)),
        "{}",
        text(&out)
    );
    let all = ok(&s, &["audit", "--after", &after, "--limit", "2", "--all"]);
    let versions: Vec<u64> = all
        .lines()
        .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(versions, (n0 + 1..=n0 + 5).collect::<Vec<_>>());
    let amounts: Vec<&str> = all
        .lines()
        .map(|l| l.split_whitespace().nth(2).unwrap())
        .collect();
    assert_eq!(amounts, ["1", "2", "3", "4", "5"]);
    // From the start, everything the server has.
    let everything = ok(&s, &["audit", "--all", "--limit", "1000"]);
    assert_eq!(everything.lines().count(), s.audit_all().len());
}

#[test]
fn export_streams_the_ledger_and_verify_accepts_it_and_catches_an_edit() {
    let s = server();
    for i in 1..=3 {
        s.increment(&key("cli-export"), i);
    }
    let (secret, vkey) = log_keys();
    // The key `acidizer keygen` made is the one the server signs with.
    let served = s.get("/api/audit/key");
    assert_eq!(served.status, 200, "{}", served.body);
    assert_eq!(served.body.trim(), vkey);
    assert_eq!(
        SigningKey::parse(secret).unwrap().verifier().to_text(),
        *vkey
    );

    let dir = common::temp_dir("cli-export");
    let (file, cp) = (dir.join("audit.ndjson"), dir.join("checkpoint"));
    let cp_arg = cp.display().to_string();
    let out = run(&s, &["export", "--checkpoint", &cp_arg]);
    assert!(out.status.success(), "{}", text(&out));
    std::fs::write(&file, &out.stdout).unwrap();
    let size = s.audit_all().len();
    assert_eq!(stdout(&out).lines().count(), size);
    let note = std::fs::read_to_string(&cp).unwrap();
    // The note verifies with the key, and the export has as many lines as it says.
    let signed = VerifierKey::parse(vkey)
        .unwrap()
        .open(&note)
        .unwrap()
        .to_owned();
    assert!(
        signed.lines().nth(1) == Some(size.to_string().as_str()),
        "{signed}"
    );
    let file_arg = file.display().to_string();
    let out = run(
        &s,
        &[
            "verify",
            "--export",
            &file_arg,
            "--checkpoint",
            &cp_arg,
            "--key",
            vkey,
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        stdout(&out).starts_with(&format!("ok: {size} entries")),
        "{}",
        text(&out)
    );
    assert!(
        stdout(&out).contains("signature verified"),
        "{}",
        text(&out)
    );

    // A range and CSV.
    let part = ok(&s, &["export", "--after", "1", "--until", "3"]);
    let whole = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = whole.lines().collect();
    assert_eq!(part.lines().collect::<Vec<_>>(), lines[1..3]);
    let csv = ok(&s, &["export", "--format", "csv", "--until", "2"]);
    assert_eq!(csv.split_terminator("\r\n").count(), 3, "{csv}");
    let out = run(&s, &["export", "--until", &(size + 1000).to_string()]);
    assert_eq!(out.status.code(), Some(65), "{}", text(&out));

    // One edited byte: not canonical (3), and the file is refused.
    let edited = dir.join("edited.ndjson");
    std::fs::write(&edited, whole.replacen("\"amount\":", "\"amount\": ", 1)).unwrap();
    let out = run(
        &s,
        &[
            "verify",
            "--export",
            &edited.display().to_string(),
            "--checkpoint",
            &cp_arg,
            "--key",
            vkey,
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(stderr(&out).contains("TAMPERED"), "{}", text(&out));

    // Against the live server (the default: --url), with a state file, twice.
    let state = dir.join("state").display().to_string();
    let out = run(&s, &["--json", "verify", "--key", vkey, "--state", &state]);
    assert!(out.status.success(), "{}", text(&out));
    let v = &json_lines(&stdout(&out))[0];
    assert_eq!(v["ok"], true);
    assert_eq!(v["entries"], size);
    assert_eq!(v["value"], s.value()["value"]);
    assert_eq!(v["signature_verified"], true);
    s.increment(&key("cli-export-more"), 1);
    let out = run(&s, &["verify", "--key", vkey, "--state", &state]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        stdout(&out).contains(&format!("extends the saved checkpoint of size {size}")),
        "{}",
        text(&out)
    );
    // Another log's key: a bad signature (2).
    let other = SigningKey::from_seed("acidizer.test/cli", [7; 32]).unwrap();
    let out = run(&s, &["verify", "--key", &other.verifier().to_text()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));

    // The old name still works, taking the server with --server.
    let out = Command::new(env!("CARGO_BIN_EXE_audit-verify"))
        .args(["--server", &s.base, "--key", vkey])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(stdout(&out).starts_with(&format!("ok: {} entries", size + 1)));
}

#[test]
fn keygen_prints_a_signing_key_and_its_verifier_key() {
    for bin in [BIN, env!("CARGO_BIN_EXE_audit-keygen")] {
        let mut cmd = Command::new(bin);
        if bin == BIN {
            cmd.arg("keygen");
        }
        let out = cmd.arg("acidizer.test/shape").output().unwrap();
        assert!(out.status.success(), "{bin}: {}", text(&out));
        let text_out = stdout(&out);
        let lines: Vec<&str> = text_out.lines().collect();
        assert_eq!(lines.len(), 2, "{text_out}");
        // PRIVATE+KEY+<name>+<8 hex key ID>+<base64>, then <name>+<key ID>+<base64>.
        let secret: Vec<&str> = lines[0].split('+').collect();
        assert_eq!(
            &secret[..3],
            ["PRIVATE", "KEY", "acidizer.test/shape"],
            "{}",
            lines[0]
        );
        let id = secret[3];
        assert!(
            id.len() == 8 && id.chars().all(|c| c.is_ascii_hexdigit()),
            "{id}"
        );
        let verifier: Vec<&str> = lines[1].split('+').collect();
        assert_eq!(verifier[..2], ["acidizer.test/shape", id], "{}", lines[1]);
        let key = SigningKey::parse(lines[0]).unwrap();
        assert_eq!(key.verifier().to_text(), lines[1]);
        assert!(stderr(&out).contains("AUDIT_SIGNING_KEY"));
    }
    // Two runs, two keys.
    let a = stdout(
        &Command::new(BIN)
            .args(["keygen", "n/log"])
            .output()
            .unwrap(),
    );
    let b = stdout(
        &Command::new(BIN)
            .args(["keygen", "n/log"])
            .output()
            .unwrap(),
    );
    assert_ne!(a, b);
    let bad = Command::new(BIN)
        .args(["keygen", "a name"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(64), "{}", text(&bad));
}

/// A running `acidizer watch`: its stdout lines as they come, its stderr so far. Killed when
/// dropped.
struct Watch {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: Arc<Mutex<String>>,
}

impl Watch {
    /// `acidizer --url <server> <global> watch <options>`.
    fn start(s: &Server, global: &[&str], options: &[&str]) -> Watch {
        let mut child = Command::new(BIN)
            .arg("--url")
            .arg(&s.base)
            .args(global)
            .arg("watch")
            .args(options)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let (err, sink) = (child.stderr.take().unwrap(), stderr.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { return };
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        Watch {
            child,
            lines,
            stderr,
        }
    }

    fn next(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("no line from watch ({e}); stderr: {}", self.stderr()))
    }

    fn next_json(&self) -> Value {
        let line = self.next();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    }

    /// Nothing more on stdout for `d`.
    fn quiet_for(&self, d: Duration) -> Option<String> {
        self.lines.recv_timeout(d).ok()
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        // Ends the watch (it runs until interrupted) by its own process id.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn admin(s: &Server, method: &str, path: &str) -> Value {
    let auth = format!("Bearer {ADMIN}");
    let r = s.request(method, path, &[("authorization", &auth)], None);
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    r.json()
}

#[test]
fn watch_prints_live_changes_and_resumes_after_its_socket_is_dropped() {
    let s = server();
    // Text: the snapshot, then a change made while it runs.
    let w = Watch::start(&s, &[], &[]);
    let now = s.value();
    let (v0, n0) = (
        now["value"].as_i64().unwrap(),
        now["version"].as_u64().unwrap(),
    );
    assert_eq!(w.next(), format!("{v0} (version {n0})"));
    s.increment(&key("cli-watch"), 6);
    let line = w.next();
    assert!(
        line.starts_with(&format!(
            "{} (version {}): +6 from {v0} at ",
            v0 + 6,
            n0 + 1
        )),
        "{line}"
    );
    drop(w);

    // JSON, resuming after a version: first what came after it (no snapshot), then live.
    let w = Watch::start(&s, &["--json"], &["--since", &n0.to_string()]);
    let replayed = w.next_json();
    assert_eq!(replayed["type"], "update", "{replayed}");
    assert_eq!(replayed["version"], n0 + 1);
    assert_eq!(replayed["amount"], 6);
    assert_eq!(replayed["value"], v0 + 6);
    let mut want = n0 + 1;
    s.increment(&key("cli-watch-live"), 1);
    want += 1;
    assert_eq!(w.next_json()["version"], want);

    // Drop every relay's sockets (as a deploy does) while changes go on: the watch connects
    // again with `since` and prints each change once, in order.
    let relays = admin(&s, "GET", "/api/admin/relays")["relays"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(!relays.is_empty(), "no relay holds the watch's socket");
    for relay in relays {
        let name = relay["relay"].as_str().unwrap();
        admin(&s, "POST", &format!("/api/admin/relays/reset?relay={name}"));
    }
    for i in 0..4 {
        s.increment(&key("cli-watch-after"), i + 1);
    }
    for i in 0..4 {
        want += 1;
        let u = w.next_json();
        assert_eq!(u["type"], "update", "{u}");
        assert_eq!(u["version"], want, "{u}; stderr: {}", w.stderr());
        assert_eq!(u["amount"], i + 1, "{u}");
    }
    assert!(
        w.stderr().contains("connecting again"),
        "the socket was not dropped: {}",
        w.stderr()
    );
    // No duplicate after the resume: the next line is the next change.
    assert_eq!(w.quiet_for(Duration::from_millis(500)), None);
    s.increment(&key("cli-watch-last"), 9);
    let u = w.next_json();
    assert_eq!(u["version"], want + 1, "{u}");
    assert_eq!(u["amount"], 9);
}
