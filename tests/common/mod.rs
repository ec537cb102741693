//! Shared harness of the end-to-end suites: starts the real local runtime (`wrangler dev`, i.e.
//! workerd with the project's one Worker script, exactly as `npx wrangler dev` runs it, with only
//! `--port`, `--persist-to`, `--var` and the inspector's port) on a free port with its own state
//! folder, and talks HTTP and WebSocket to it.
//!
//! Every server runs in its own process group. Dropping a [`Server`] stops the group; a
//! watchdog inside the group also stops it when the test process is gone (a panic, a kill),
//! so no test ever leaves a runtime behind.

#![allow(dead_code)]

pub mod changes;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The project root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh folder under the target directory, removed by nobody: test state is kept for
/// post-mortems and lives inside `target/`.
pub fn temp_dir(name: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = root().join("target").join("e2e").join(format!(
        "{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// How to start a server.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Vars (and secrets): `--var NAME:VALUE`, which reach the whole Worker.
    pub vars: Vec<(String, String)>,
    /// Reuse this state folder (for restarts); a fresh one otherwise.
    pub state: Option<PathBuf>,
    /// Another entry module than wrangler.toml's `main` (`build/entry.js`), passed as
    /// `wrangler dev`'s script argument; e.g. `build/index.js`, worker-build's own module, whose
    /// classes are not RPC targets (a counter object on a version from before the method).
    pub main: Option<String>,
}

/// A running `wrangler dev`.
pub struct Server {
    pub base: String,
    pub port: u16,
    pub state: PathBuf,
    pub log: PathBuf,
    child: Option<Child>,
    opts: Options,
}

impl Server {
    /// Starts a server and waits until `/api/health` answers. The port is one the system
    /// just called free; another server starting at the same moment can still take it first
    /// (the runtime then fails with "Address already in use"), so that case starts again on a
    /// new port, up to three times.
    pub fn start(opts: Options) -> Server {
        let mut attempt = 1;
        loop {
            let mut server = Server::spawn(opts.clone());
            match server.wait_ready(Duration::from_secs(90)) {
                Ok(()) => return server,
                Err(_) if attempt < 3 && server.log_text().contains("Address already in use") => {
                    eprintln!("port {} was taken; starting again on another", server.port);
                    server.stop();
                    attempt += 1;
                }
                Err(e) => panic!("{e}"),
            }
        }
    }

    fn spawn(opts: Options) -> Server {
        let state = opts.state.clone().unwrap_or_else(|| temp_dir("state"));
        let port = free_port();
        let log = state.with_extension(format!("{port}.log"));
        build_once();
        let mut cmd = wrangler_command(port, &state, opts.main.as_deref(), &opts.vars, &log);
        let child = cmd.spawn().expect("spawn wrangler dev");
        Server {
            base: format!("http://127.0.0.1:{port}"),
            port,
            state,
            log,
            child: Some(child),
            opts,
        }
    }

    fn wait_ready(&self, limit: Duration) -> Result<(), String> {
        let started = Instant::now();
        loop {
            let log = self.log_text();
            // 200, or 503 from an object that refuses to serve (a test may want exactly that),
            // from this server: one that says it listens on the port (another one may).
            let ours = log.contains(&format!("Ready on http://127.0.0.1:{}", self.port));
            if ours {
                if let Ok(r) = try_request(&self.base, "GET", "/api/health", &[], None) {
                    if r.status == 200 || r.status == 503 {
                        return Ok(());
                    }
                }
            }
            if started.elapsed() > limit || log.contains("Address already in use") {
                return Err(format!(
                    "the server on port {} did not become ready in {:?}; log:\n{log}",
                    self.port,
                    started.elapsed()
                ));
            }
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    /// Stops the whole process group with SIGTERM (SIGKILL after 5 s) and waits for it.
    pub fn stop(&mut self) {
        self.signal_group("TERM", Duration::from_secs(5));
    }

    /// Kills the whole process group with SIGKILL at once: a crash.
    pub fn crash(&mut self) {
        self.signal_group("KILL", Duration::from_secs(5));
    }

    fn signal_group(&mut self, sig: &str, grace: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pgid = child.id();
        let _ = Command::new("kill")
            .args([&format!("-{sig}"), "--", &format!("-{pgid}")])
            .status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if matches!(child.try_wait(), Ok(Some(_))) && !group_alive(pgid) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pgid}")])
            .status();
        let _ = child.wait();
        // The port is free once workerd is gone.
        let deadline = Instant::now() + Duration::from_secs(5);
        while group_alive(pgid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server and starts a new one on the same state folder and vars.
    pub fn restart(&mut self) {
        self.stop();
        self.start_again();
    }

    /// The folder where the local runtime keeps the archive bucket's object bodies under
    /// state folder `state`, once the first segment was written.
    pub fn r2_blobs_in(state: &Path) -> Option<PathBuf> {
        std::fs::read_dir(state.join("v3/r2"))
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.is_dir() && p.join("blobs").is_dir())
            .map(|b| b.join("blobs"))
    }

    /// [`Server::r2_blobs_in`] this server's state folder, which must hold them by now.
    pub fn r2_blobs(&self) -> PathBuf {
        Self::r2_blobs_in(&self.state)
            .unwrap_or_else(|| panic!("no bucket with blobs under {}", self.state.display()))
    }

    /// The server's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The JSON log lines the Worker wrote so far.
    pub fn log_lines(&self) -> Vec<Value> {
        self.log_text()
            .lines()
            .filter_map(|l| {
                let start = l.find('{')?;
                serde_json::from_str::<Value>(&l[start..]).ok()
            })
            .collect()
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Resp {
        try_request(&self.base, method, path, headers, body)
            .unwrap_or_else(|e| panic!("{method} {path} failed: {e}"))
    }

    pub fn get(&self, path: &str) -> Resp {
        self.request("GET", path, &[], None)
    }

    pub fn post(&self, path: &str, headers: &[(&str, &str)], body: &str) -> Resp {
        let body = (!body.is_empty()).then_some(body.as_bytes());
        self.request("POST", path, headers, body)
    }

    /// POST with a JSON body.
    pub fn post_json(&self, path: &str, headers: &[(&str, &str)], body: &str) -> Resp {
        let mut h = headers.to_vec();
        h.push(("content-type", "application/json"));
        self.post(path, &h, body)
    }

    /// Increments by `amount` with `key`.
    pub fn increment(&self, key: &str, amount: u32) -> Resp {
        self.post_json(
            "/api/increment",
            &[("idempotency-key", key)],
            &format!("{{\"amount\":{amount}}}"),
        )
    }

    /// `GET /api/value` as JSON.
    pub fn value(&self) -> Value {
        let r = self.get("/api/value");
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()
    }

    /// `GET /api/health` as JSON.
    pub fn health(&self) -> Value {
        let r = self.get("/api/health");
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()
    }

    /// The calls to the counter since it last started, from `/api/health`: how many carried one
    /// request, and how many more than one (batches).
    pub fn calls_in_batches(&self) -> (u64, u64) {
        calls_in_batches(&self.health())
    }

    /// The whole audit trail, page by page.
    pub fn audit_all(&self) -> Vec<Value> {
        let mut out = Vec::new();
        let mut after = 0u64;
        loop {
            let r = self.get(&format!("/api/audit?after={after}&limit=1000"));
            assert_eq!(r.status, 200, "{}", r.body);
            let v = r.json();
            out.extend(v["entries"].as_array().unwrap().iter().cloned());
            match v["next_after"].as_u64() {
                Some(n) => after = n,
                None => return out,
            }
        }
    }

    /// Runs SQL directly on the counter object's SQLite file (the server must be stopped) and
    /// returns the rows of the last statement. For tests that need a database in a state the
    /// API cannot produce: an older schema, a conflicting row.
    pub fn sql(&self, script: &str) -> Vec<Vec<Value>> {
        assert!(
            self.child.is_none(),
            "stop the server before touching its database"
        );
        let dir = self.state.join("v3/do/number-acidizer-Counter");
        let program = r#"
import json, sqlite3, sys, glob, os
files = [f for f in glob.glob(os.path.join(sys.argv[1], '*.sqlite')) if not f.endswith('metadata.sqlite')]
assert len(files) == 1, files
db = sqlite3.connect(files[0], isolation_level=None)
rows = []
for stmt in [s for s in sys.argv[2].split(';') if s.strip()]:
    rows = db.execute(stmt).fetchall()
print(json.dumps(rows))
db.close()
"#;
        let out = Command::new("python3")
            .args(["-c", program, &dir.display().to_string(), script])
            .output()
            .expect("python3");
        assert!(
            out.status.success(),
            "sql failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("rows as JSON")
    }

    /// Starts the server again on its state (after `stop`, `crash` or `sql`).
    pub fn start_again(&mut self) {
        assert!(self.child.is_none());
        let mut opts = self.opts.clone();
        opts.state = Some(self.state.clone());
        *self = Server::start(opts);
    }

    /// A WebSocket client to `/api/ws` + `query`.
    pub fn socket(&self, query: &str) -> Socket {
        Socket::connect(&format!("ws://127.0.0.1:{}/api/ws{query}", self.port), &[])
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One server per test binary, shared by its tests one at a time (each test holds the guard
/// for its whole run, so it sees only its own changes).
pub fn shared(opts: impl FnOnce() -> Options) -> MutexGuard<'static, Server> {
    static SHARED: OnceLock<Mutex<Server>> = OnceLock::new();
    SHARED
        .get_or_init(|| Mutex::new(Server::start(opts())))
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Builds the Worker once per test process (`scripts/build.sh` skips what is current, and
/// concurrent runs take turns).
pub fn build_once() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let out = Command::new("sh")
            .arg(root().join("scripts/build.sh"))
            .current_dir(root())
            .output()
            .expect("run scripts/build.sh");
        assert!(
            out.status.success(),
            "scripts/build.sh failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

fn wrangler_command(
    port: u16,
    state: &Path,
    main: Option<&str>,
    vars: &[(String, String)],
    log: &Path,
) -> Command {
    let wrangler = root().join("node_modules/.bin/wrangler");
    let mut args = vec!["dev".to_string()];
    args.extend(main.map(String::from));
    args.extend([
        "--ip".into(),
        "127.0.0.1".into(),
        "--port".into(),
        port.to_string(),
        "--persist-to".into(),
        state.display().to_string(),
        "--inspector-port".into(),
        free_port().to_string(),
        "--show-interactive-dev-session=false".into(),
    ]);
    for (k, v) in vars {
        args.push("--var".into());
        args.push(format!("{k}:{v}"));
    }
    let quoted: Vec<String> = args.iter().map(|a| shell_quote(a)).collect();
    // The watchdog: when this test process is gone, take the whole group down.
    let script = format!(
        "{} {} & while kill -0 {} 2>/dev/null; do sleep 0.5; done; kill -TERM -$$; sleep 3; kill -KILL -$$",
        shell_quote(&wrangler.display().to_string()),
        quoted.join(" "),
        std::process::id()
    );
    let log_file = std::fs::File::create(log).expect("create log");
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(script)
        .current_dir(root())
        .env("WRANGLER_SEND_METRICS", "false")
        .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
        .env("WRANGLER_HIDE_BANNER", "true")
        .env("WRANGLER_LOG", "log")
        .env("NO_COLOR", "1")
        .env("CI", "1")
        // Servers of concurrent tests share a script name; each keeps its own dev registry so
        // that none can find another's.
        .env("WRANGLER_REGISTRY_PATH", state.with_extension("registry"))
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().expect("log"))
        .stderr(log_file);
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    cmd
}

fn group_alive(pgid: u32) -> bool {
    Command::new("kill")
        .args(["-0", "--", &format!("-{pgid}")])
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// A port nobody listens on right now, and never handed out before in this process: between
/// this answer and a server binding the port, nothing listens on it, so the system may offer
/// it again, and a second server on it would have the first one's requests (and the first one
/// answer the second's health check).
pub fn free_port() -> u16 {
    static GIVEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        if GIVEN.lock().unwrap_or_else(|e| e.into_inner()).insert(port) {
            return port;
        }
    }
}

/// A response, fully read.
/// The local dev server's proxy's own answer for a request it lost on its way to the runtime
/// (plain text, not this service's problem+json); it happens on an overloaded machine. A keyed
/// change that gets it is sent again with the same key, as any client would.
pub fn dev_proxy_lost(r: &Resp) -> bool {
    r.status == 503 && r.body.starts_with("Your worker restarted mid-request")
}

#[derive(Clone, Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    /// Asserts this is an RFC 9457 problem with `status` and returns it.
    pub fn problem(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "body: {}", self.body);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "{self:?}"
        );
        let v = self.json();
        assert_eq!(v["status"], u64::from(status), "{v}");
        for k in ["type", "title", "detail"] {
            assert!(v[k].as_str().is_some_and(|s| !s.is_empty()), "{k} in {v}");
        }
        let text = self.body.to_lowercase();
        for leak in [
            "stack",
            "sqlite",
            "wasm",
            "panicked",
            "error:",
            "unreachable",
        ] {
            assert!(
                !text.contains(leak),
                "internal detail {leak:?} leaked: {}",
                self.body
            );
        }
        v
    }
}

fn agent() -> &'static ureq::Agent {
    static AGENT: OnceLock<ureq::Agent> = OnceLock::new();
    AGENT.get_or_init(|| {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .allow_non_standard_methods(true)
            .timeout_global(Some(Duration::from_secs(30)))
            .max_idle_connections_per_host(64)
            .build()
            .into()
    })
}

/// One HTTP request with ureq.
pub fn try_request(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<Resp, String> {
    let mut b = ureq::http::Request::builder()
        .method(method)
        .uri(format!("{base}{path}"));
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let result = match body {
        Some(bytes) => agent().run(b.body(bytes.to_vec()).map_err(|e| e.to_string())?),
        None => agent().run(b.body(()).map_err(|e| e.to_string())?),
    };
    let mut r = result.map_err(|e| e.to_string())?;
    let status = r.status().as_u16();
    let headers = r
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = r
        .body_mut()
        .with_config()
        .limit(16 * 1024 * 1024)
        .read_to_string()
        .map_err(|e| e.to_string())?;
    Ok(Resp {
        status,
        headers,
        body,
    })
}

/// A request written byte by byte on a raw TCP connection, for inputs HTTP clients refuse to
/// produce (chunked bodies of a chosen size, odd headers). Returns (status, body).
pub fn raw_request(port: u16, request: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(request).expect("write");
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// A blocking WebSocket client.
pub struct Socket {
    ws: tungstenite::WebSocket<TcpStream>,
}

impl Socket {
    pub fn connect(url: &str, headers: &[(&str, &str)]) -> Socket {
        Self::try_connect(url, headers).unwrap_or_else(|e| panic!("connect {url}: {e}"))
    }

    /// Connects, or returns the HTTP status the upgrade got instead.
    pub fn try_connect(url: &str, headers: &[(&str, &str)]) -> Result<Socket, String> {
        use tungstenite::client::IntoClientRequest;
        let mut req = url.into_client_request().map_err(|e| e.to_string())?;
        for (k, v) in headers {
            req.headers_mut().insert(
                tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        let host = req.uri().authority().unwrap().to_string();
        let stream = TcpStream::connect(host).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        match tungstenite::client(req, stream) {
            Ok((ws, _)) => Ok(Socket { ws }),
            Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(r))) => {
                Err(format!("status {}", r.status().as_u16()))
            }
            Err(e) => Err(e.to_string()),
        }
    }

    pub fn set_timeout(&mut self, d: Duration) {
        self.ws.get_mut().set_read_timeout(Some(d)).unwrap();
    }

    /// The next text message as JSON (pongs to our pings are returned as `"pong"`).
    pub fn next_json(&mut self) -> Value {
        let text = self.next_text().expect("socket closed or timed out");
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    }

    /// The next text message, or `None` on close/timeout.
    pub fn next_text(&mut self) -> Option<String> {
        loop {
            match self.ws.read() {
                Ok(tungstenite::Message::Text(t)) => return Some(t.to_string()),
                Ok(tungstenite::Message::Close(_)) | Err(_) => return None,
                Ok(_) => continue,
            }
        }
    }

    /// Reads until the connection closes; returns the close code (if a close frame came).
    pub fn close_code(&mut self) -> Option<u16> {
        loop {
            match self.ws.read() {
                Ok(tungstenite::Message::Close(frame)) => return frame.map(|f| u16::from(f.code)),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
    }

    pub fn send_text(&mut self, t: &str) {
        self.ws.send(tungstenite::Message::text(t)).expect("send");
    }

    pub fn send_binary(&mut self, b: Vec<u8>) {
        self.ws.send(tungstenite::Message::binary(b)).expect("send");
    }

    /// Writes raw bytes to the connection (frames a well-behaved client library refuses to
    /// produce).
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.ws.get_mut().write_all(bytes).expect("write");
    }

    pub fn close(mut self) {
        let _ = self.ws.close(None);
        let _ = self.ws.flush();
    }
}

/// A unique key for this test run.
pub fn key(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The seed of a randomized suite: `$var` if set, else the clock. Printed, so a failure can
/// be repeated exactly.
pub fn seed(var: &str) -> u64 {
    let seed = std::env::var(var)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    println!("seed: {seed} (repeat with {var}={seed})");
    seed
}

/// `calls_by_size` of a `/api/health` answer: the calls that carried one request, and those that
/// carried more than one (batches). The object counts them since it last started.
pub fn calls_in_batches(health: &Value) -> (u64, u64) {
    let sizes = health["calls_by_size"]
        .as_object()
        .unwrap_or_else(|| panic!("no calls_by_size in {health}"));
    let count = |v: &Value| v.as_u64().unwrap_or_else(|| panic!("a count in {health}"));
    let single = sizes.get("1").map_or(0, count);
    let batched = sizes
        .iter()
        .filter(|(k, _)| k.as_str() != "1")
        .map(|(_, v)| count(v))
        .sum();
    (single, batched)
}
