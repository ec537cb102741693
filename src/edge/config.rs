//! The Worker's settings (wrangler vars and secrets), read once per isolate.

use std::rc::Rc;

use wasm_bindgen::JsValue;
use worker::worker_sys::Fetcher;
use worker::Env;

use crate::bindings::{binding, setting, string_var};
use crate::core::auth;
use crate::core::batch;
use crate::core::cors::Policy;
use crate::core::problem::Problem;
use crate::error::Result;

/// Everything the edge reads from its environment.
pub struct Config {
    /// `ALLOWED_ORIGINS`: origins whose pages may change the counter.
    pub cors: Policy,
    /// `ADMIN_TOKEN` (a secret): enables `/api/admin/*` when set and non-empty.
    admin_token: Option<String>,
    /// `REQUEST_LOG_SAMPLE_RATE`: the share of requests that get a log line, 0 to 1
    /// (default 1: every request).
    log_rate: f64,
    /// `METRICS`: the request metrics dataset, when bound.
    pub metrics: Option<worker::AnalyticsEngineDataset>,
    /// `CF_VERSION_METADATA.id`: the deployed version (empty when not bound).
    pub version_id: String,
    /// `BATCH_MAX_IN_FLIGHT`: calls to the counter this isolate keeps in flight before
    /// requests wait and share the next call; 0 (`off`): every request is its own call.
    pub batch_in_flight: u32,
    /// `BATCH_READS_FROM`: requests of this isolate waiting on the counter from which reads
    /// share calls too (below it a read is sent alone at once); 0: reads always share.
    pub batch_reads_from: u32,
    /// `RATE_LIMIT_PER_10S` > 0: the counter limits changes per client, so the edge's shield
    /// learns from its refusals ([`super::shield`]).
    pub changes_limited: bool,
    /// `HISTORY_READS_PER_10S`: audit pages, exports, proofs and past values per client and
    /// isolate (0: no limit).
    pub history_reads: u32,
}

thread_local! {
    static CONFIG: std::cell::OnceCell<Rc<Config>> = const { std::cell::OnceCell::new() };
}

impl Config {
    /// The settings of this isolate. Vars and secrets cannot change while an isolate lives (a
    /// new deployment starts new isolates), so they are parsed on the first request only.
    pub fn get(env: &Env) -> Rc<Config> {
        CONFIG.with(|c| {
            c.get_or_init(|| {
                Rc::new(Config {
                    cors: Policy::parse(&string_var(env, "ALLOWED_ORIGINS").unwrap_or_default()),
                    admin_token: string_var(env, "ADMIN_TOKEN").filter(|t| !t.trim().is_empty()),
                    log_rate: log_rate(string_var(env, "REQUEST_LOG_SAMPLE_RATE").as_deref()),
                    metrics: env.analytics_engine("METRICS").ok(),
                    version_id: binding::<JsValue>(env, "CF_VERSION_METADATA")
                        .ok()
                        .and_then(|m| js_sys::Reflect::get(&m, &JsValue::from_str("id")).ok())
                        .and_then(|id| id.as_string())
                        .unwrap_or_default(),
                    batch_in_flight: setting(
                        env,
                        "BATCH_MAX_IN_FLIGHT",
                        batch::parse_in_flight,
                        batch::DEFAULT_IN_FLIGHT,
                    ),
                    batch_reads_from: setting(
                        env,
                        "BATCH_READS_FROM",
                        batch::parse_reads_from,
                        batch::DEFAULT_READS_FROM,
                    ),
                    changes_limited: count_var(env, "RATE_LIMIT_PER_10S") > 0,
                    history_reads: count_var(env, "HISTORY_READS_PER_10S"),
                })
            })
            .clone()
        })
    }

    /// The settings, if a request has loaded them in this isolate (for the promise callbacks,
    /// which run after [`Config::get`]).
    pub fn loaded() -> Option<Rc<Config>> {
        CONFIG.with(|c| c.get().cloned())
    }

    /// Whether this request gets a log line.
    pub fn log_this_request(&self) -> bool {
        self.log_rate >= 1.0 || (self.log_rate > 0.0 && js_sys::Math::random() < self.log_rate)
    }

    /// Admin requests need the bearer token; without a configured token the admin API does not
    /// exist (404), so a deployment that never set one exposes nothing.
    pub fn authorize_admin(&self, authorization: Option<&str>) -> Result<(), Problem> {
        match &self.admin_token {
            None => Err(Problem::NotFound),
            Some(token) => auth::check_bearer(authorization, token),
        }
    }
}

/// Parses `REQUEST_LOG_SAMPLE_RATE`; a malformed value is reported and means "log all".
fn log_rate(var: Option<&str>) -> f64 {
    match crate::core::log::parse_sample_rate(var) {
        Ok(rate) => rate,
        Err(e) => {
            crate::log::log_event(
                "error",
                "invalid REQUEST_LOG_SAMPLE_RATE; logging every request",
                |w| {
                    w.string("error", &e);
                },
            );
            1.0
        }
    }
}

/// A per-client limit var, read as the counter reads its own ([`crate::core::limits::parse_limit`]):
/// absent or 0 is off, and a malformed one is logged and off.
fn count_var(env: &Env, name: &str) -> u32 {
    setting(env, name, crate::core::limits::parse_limit, 0)
}

/// The static assets binding (`ASSETS`).
pub fn assets(env: &Env) -> Result<Fetcher> {
    binding(env, "ASSETS")
}
