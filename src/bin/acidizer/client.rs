//! The HTTP side of the command-line tools: one agent, bounded retries, problem+json answers
//! turned into [`Error::Refused`].
//!
//! Every request here may be sent again: reads are safe, and a change always carries its
//! idempotency key, the same on every attempt, so the server applies it once and answers the
//! retries with the stored response. A request is sent again after a network error, a 5xx
//! (the contract: nothing was changed, retry with the same key) or a 429, up to [`RETRIES`]
//! times, waiting `Retry-After` when the answer has one and an exponential backoff otherwise.

use std::io::Read;
use std::time::Duration;

use serde_json::Value;

use crate::error::Error;

/// How many times a request is sent again before giving up.
pub const RETRIES: u32 = 5;
/// The longest wait between two attempts, whatever `Retry-After` asks for.
const MAX_WAIT: Duration = Duration::from_secs(30);

/// A fully read answer.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON, or an error naming `what` was expected.
    pub fn json(&self, what: &str) -> Result<Value, Error> {
        serde_json::from_str(&self.body).map_err(|e| {
            Error::Io(format!(
                "{what}: the server's answer is not JSON ({e}): {}",
                clip(&self.body)
            ))
        })
    }

    /// `Retry-After` in seconds, if present and numeric (the server sends seconds).
    fn retry_after(&self) -> Option<Duration> {
        let secs: u64 = self.header("retry-after")?.trim().parse().ok()?;
        Some(Duration::from_secs(secs))
    }

    /// A refusal or failure as an error: the problem's title and detail when the body is a
    /// problem, the status and the start of the body otherwise.
    pub fn to_error(&self) -> Error {
        let problem: Option<Value> = serde_json::from_str(&self.body).ok();
        let field = |k: &str| {
            problem
                .as_ref()
                .and_then(|p| p.get(k))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let title = field("title").unwrap_or_else(|| format!("HTTP {}", self.status));
        let detail = field("detail").unwrap_or_else(|| clip(&self.body));
        if self.status >= 500 || self.status == 429 {
            Error::Unavailable(format!("{} ({}): {detail}", title, self.status))
        } else {
            Error::Refused {
                status: self.status,
                title,
                detail,
            }
        }
    }
}

/// At most 200 characters of a body, on one line.
fn clip(body: &str) -> String {
    let one_line = body.trim().replace(['\r', '\n'], " ");
    match one_line.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &one_line[..i]),
        None => one_line,
    }
}

pub struct Client {
    base: String,
    agent: ureq::Agent,
    /// Whether to say on stderr that a request is being sent again.
    pub quiet: bool,
}

/// One attempt's outcome: an answer, a network failure worth another attempt, or a request
/// that can never succeed.
enum Attempt<T> {
    Done(T),
    Retry(String),
}

impl Client {
    pub fn new(url: &str) -> Result<Client, Error> {
        let base = url.trim_end_matches('/').to_owned();
        if base.starts_with("https://") {
            return Err(Error::Usage(format!(
                "{base}: this build speaks plain HTTP only (no TLS)"
            )));
        }
        if !base.starts_with("http://") {
            return Err(Error::Usage(format!(
                "{base}: the URL must start with http://"
            )));
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Ok(Client {
            base,
            agent,
            quiet: false,
        })
    }

    /// The WebSocket URL of `path`.
    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{path}", &self.base["http://".len()..])
    }

    /// GET `path`; any 2xx answer, fully read.
    pub fn get(&self, path: &str) -> Result<Answer, Error> {
        let url = format!("{}{path}", self.base);
        self.with_retries(&format!("GET {url}"), |agent| {
            let r = agent.get(&url).call();
            read(r, |body| {
                body.with_config().limit(64 * 1024 * 1024).read_to_string()
            })
        })
    }

    /// POST a JSON `body` to `path` with `headers`; any 2xx answer, fully read.
    pub fn post_json(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Result<Answer, Error> {
        let url = format!("{}{path}", self.base);
        self.with_retries(&format!("POST {url}"), |agent| {
            let mut req = agent
                .post(&url)
                .header("content-type", "application/json")
                .header("accept", "application/json");
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            read(req.send(body), |b| b.read_to_string())
        })
    }

    /// GET `path` and hand its 2xx answer's headers and body, as a stream, to `sink`. Only
    /// the request is retried: once the body has started, a failure is final (the caller
    /// has already written part of it).
    pub fn stream<T>(
        &self,
        path: &str,
        sink: impl FnOnce(&[(String, String)], &mut dyn Read) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let url = format!("{}{path}", self.base);
        let mut sink = Some(sink);
        self.with_retries(&format!("GET {url}"), |agent| {
            let mut r = match agent.get(&url).call() {
                Ok(r) => r,
                Err(e) => return network(e),
            };
            let status = r.status().as_u16();
            let headers = headers_of(&r);
            if !(200..300).contains(&status) {
                let body = r.body_mut().read_to_string().unwrap_or_default();
                return Ok(Attempt::Done(Err(Answer {
                    status,
                    headers,
                    body,
                })));
            }
            let sink = sink.take().expect("the body is streamed once");
            let mut reader = r.body_mut().as_reader();
            Ok(Attempt::Done(Ok(sink(&headers, &mut reader)?)))
        })
    }

    /// Runs `attempt` until it gives a 2xx answer, a final refusal, or the retries run out.
    fn with_retries<T>(
        &self,
        what: &str,
        mut attempt: impl FnMut(&ureq::Agent) -> Result<Attempt<Result<T, Answer>>, Error>,
    ) -> Result<T, Error> {
        let mut tries = 0;
        loop {
            let (why, wait) = match attempt(&self.agent)? {
                Attempt::Done(Ok(t)) => return Ok(t),
                Attempt::Done(Err(answer)) => {
                    let retryable = answer.status >= 500 || answer.status == 429;
                    if !retryable || tries == RETRIES {
                        return Err(answer.to_error());
                    }
                    (
                        format!("{} answered {}", what, answer.status),
                        answer.retry_after(),
                    )
                }
                Attempt::Retry(why) => {
                    if tries == RETRIES {
                        return Err(Error::Unavailable(format!(
                            "{what}: {why} (after {} attempts)",
                            tries + 1
                        )));
                    }
                    (format!("{what}: {why}"), None)
                }
            };
            let wait = wait.unwrap_or_else(|| backoff(tries)).min(MAX_WAIT);
            tries += 1;
            if !self.quiet {
                eprintln!(
                    "{why}; trying again in {:.1} s ({tries}/{RETRIES})",
                    wait.as_secs_f64()
                );
            }
            std::thread::sleep(wait);
        }
    }
}

/// The wait before attempt `n + 1`: 250 ms doubling, at most 8 s, with jitter (half to all
/// of it) so that many clients refused at once do not come back at once.
pub fn backoff(n: u32) -> Duration {
    let ceiling = Duration::from_millis(250)
        .saturating_mul(1 << n.min(5))
        .min(Duration::from_secs(8));
    let fraction = (uuid::Uuid::new_v4().as_u128() % 1000) as f64 / 1000.0;
    ceiling.mul_f64(0.5 + fraction / 2.0)
}

fn headers_of(r: &ureq::http::Response<ureq::Body>) -> Vec<(String, String)> {
    r.headers()
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// A network error: worth another attempt, unless the request itself is wrong.
fn network<T>(e: ureq::Error) -> Result<Attempt<T>, Error> {
    match e {
        ureq::Error::BadUri(_) | ureq::Error::Http(_) | ureq::Error::InvalidProxyUrl => {
            Err(Error::Usage(e.to_string()))
        }
        e => Ok(Attempt::Retry(e.to_string())),
    }
}

/// An answer, fully read: 2xx as `Ok`, anything else as `Err` for the retry loop to judge. A
/// body cut off on its way is a network error like any other.
fn read(
    r: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    body: impl FnOnce(&mut ureq::Body) -> Result<String, ureq::Error>,
) -> Result<Attempt<Result<Answer, Answer>>, Error> {
    let mut r = match r {
        Ok(r) => r,
        Err(e) => return network(e),
    };
    let status = r.status().as_u16();
    let headers = headers_of(&r);
    let body = match body(r.body_mut()) {
        Ok(b) => b,
        Err(e) => return network(e),
    };
    let answer = Answer {
        status,
        headers,
        body,
    };
    Ok(Attempt::Done(if (200..300).contains(&status) {
        Ok(answer)
    } else {
        Err(answer)
    }))
}
