//! The edge: the stateless Worker in front of the counter.
//!
//! It runs in whichever location a request arrives at and holds no state of its own. For each
//! `/api/*` request [`handle`]:
//! 1. finds the route (404/405 otherwise), applies the cross-origin rules and validates
//!    everything about the request (body size, media type, JSON, amount, key, `If-Match`,
//!    query) into a [`Plan`], most often one [`ObjectCall`](crate::core::wire::ObjectCall)
//!    (`plan.rs`);
//! 2. gives every mutation its idempotency key *before* the first attempt (the client's, or a
//!    new UUID), so that retrying the call to the object can never apply a change twice;
//! 3. refuses a change from a client the counter refused lately, and history reads past their
//!    per-client limit, without asking the counter ([`shield`]);
//! 4. sends the call to the one counter object (retrying only errors the platform marks
//!    retryable, see [`forward`]); with batching on, a change (or, while many wait, a read)
//!    that finds `BATCH_MAX_IN_FLIGHT` calls of this isolate in flight waits and shares the
//!    next call with the others waiting (`batch.rs`); a read of history may be answered from this
//!    location's cache or completed from the archive (`history.rs`);
//! 5. on the way out writes one structured log line and one metrics data point, adds CORS
//!    headers when needed and lets the shield learn from a change's answer (`finish.rs`,
//!    chained onto the counter's promise by `settle.rs`).
//!
//! The handler is synchronous: it returns the counter's promise instead of awaiting it, with
//! the way out chained onto it. A read of the value or a change without a body runs no `async`
//! block; only a change with a body to read, a read of history and the rarer routes (sockets,
//! streams, the badge, checkpoints, the export) do. An `async` handler would cost a promise,
//! several closures and task wake-ups per request, which on the hot path is more than all the
//! validation together.
//!
//! Everything else (the web app) is served by the static assets binding before the Worker
//! runs (`run_worker_first = ["/api/*"]` in wrangler.toml).

mod archive;
mod badge;
mod batch;
mod body;
mod cache;
mod checkpoint;
mod config;
mod events;
mod export;
mod finish;
mod forward;
mod history;
mod metrics;
mod plan;
mod relays;
mod settle;
mod shield;

use wasm_bindgen::prelude::*;
use web_sys::Request;
use worker::Env;

use crate::core::command::MAX_BODY_BYTES;
use crate::core::cors::{self, Access};
use crate::core::problem::Problem;
use crate::core::routes::Route;
use crate::core::vocab::Operation;
use crate::error::{Context, Result};
use crate::http::{self, now_ms};
use config::Config;
use finish::{finish, Facts};
use plan::{mutation, plan, Incoming, Pending, Plan};
use settle::settle;

/// Handles one request to the Worker; returns a `Response` or a `Promise` of one. An error
/// fails the request (the Worker's `fetch` throws it, and the entry answers with a problem).
pub fn handle(req: Request, env: Env) -> Result<JsValue> {
    let started = now_ms();
    let url = req.url();
    let (path, query) = split_url(&url);
    if !path.starts_with("/api/") && path != "/api" {
        // Only reached when the assets router sends a non-API path here, which the
        // configuration does not do; answer from the assets anyway.
        let assets = config::assets(&env)?;
        return Ok(assets.fetch(&req).js("fetching a static file")?.into());
    }
    let method = req.method();
    let headers = req.headers();
    let config = Config::get(&env);
    let logged = config.log_this_request();
    let metered = config.metrics.is_some();
    let mut facts = Facts {
        started,
        method: &method,
        path,
        request_id: if logged {
            headers
                .get("cf-ray")
                .js("reading the request's headers")?
                .unwrap_or_default()
        } else {
            String::new()
        },
        client: String::new(),
        mutation: None,
        logged,
        metered,
        colo: if metered { metrics::colo(&req) } else { None },
        shield: None,
    };
    let access = config.cors.check(
        headers
            .get("origin")
            .js("reading the request's headers")?
            .as_deref(),
        cors::origin_of(&url),
    );
    let origin = match &access {
        Access::Allowed(o) => Some(o.as_str()),
        _ => None,
    };

    let plan = plan(&mut Incoming {
        req: &req,
        headers: &headers,
        url: &url,
        query,
        access: &access,
        config: &config,
        relays: relays::settings(&env),
        facts: &mut facts,
    });
    if logged {
        facts.read_client(&headers);
    }
    // History reads (audit pages, exports, proofs, past values) have their own per-client limit.
    let history = match &plan {
        Ok(Plan::Call(call)) => history::is_read(call),
        Ok(Plan::Export(..)) => true,
        _ => false,
    };
    let plan = if history && config.history_reads > 0 {
        facts.read_client(&headers);
        shield::history_read(&facts.client).and(plan)
    } else {
        plan
    };
    let reply: Result<(js_sys::Promise, Option<String>), Problem> = match plan {
        Ok(Plan::Answer(r)) => {
            let finished = finish(
                facts.arrival().as_deref(),
                facts.start().as_deref(),
                origin,
                r,
                None,
            )?;
            return Ok(finished.into());
        }
        Ok(Plan::Call(call)) if history::is_read(&call) => {
            let if_none_match = headers
                .get("if-none-match")
                .js("reading the request's headers")?;
            let origin = origin.map(String::from);
            return Ok(history::read(env, call, facts, origin, if_none_match).into());
        }
        Ok(Plan::Call(call)) => batch::call(&env, &call, &config).map(|(p, url)| (p, Some(url))),
        Ok(Plan::Connect(call)) => Ok((forward::connect(env, req, call), None)),
        Ok(Plan::Events(call)) => Ok((events::follow(env, call), None)),
        Ok(Plan::Badge(ask)) => Ok((badge::badge(env, req, ask), None)),
        Ok(Plan::Relay(call)) => Ok((relays::run(env, req, call), None)),
        Ok(Plan::Static(file)) => static_file(&env, &file).map(|p| (p, None)),
        Ok(Plan::Checkpoint) => Ok((checkpoint::checkpoint(env), None)),
        Ok(Plan::CheckpointKey) => Ok((checkpoint::key(env), None)),
        Ok(Plan::Export(q, head)) => Ok((export::export(env, q, head), None)),
        Ok(Plan::ReadBody(pending)) => {
            return Ok(with_body(req, env, pending, facts, origin.map(String::from)).into())
        }
        Err(p) => Err(p),
    };
    match reply {
        Ok((promise, retry_url)) => Ok(settle(
            promise,
            retry_url,
            facts.arrival().as_deref(),
            facts.start().as_deref(),
            facts.shield.as_deref(),
            origin,
        )
        .into()),
        Err(p) => {
            let r = http::problem_response(&p)?;
            let finished = finish(
                facts.arrival().as_deref(),
                facts.start().as_deref(),
                origin,
                r,
                Some(p.slug()),
            )?;
            Ok(finished.into())
        }
    }
}

/// The path of a mutation that has a body: read it (bounded), then as any other call.
fn with_body(
    req: Request,
    env: Env,
    pending: Pending,
    facts: Facts,
    origin: Option<String>,
) -> js_sys::Promise {
    let mut facts = Facts {
        started: facts.started,
        method: "POST",
        path: routes_path(pending.route),
        request_id: facts.request_id,
        client: facts.client,
        mutation: None,
        logged: facts.logged,
        metered: facts.metered,
        colo: facts.colo,
        shield: None,
    };
    // Only reading the body is awaited in Rust (this request's own I/O). The call to the
    // counter is then chained like every other request's (`settle`), not awaited: a batched
    // request is woken by another request's call, and a Rust task woken there would run in
    // that request's context.
    wasm_bindgen_futures::future_to_promise(async move {
        let call = match body::read(&req, MAX_BODY_BYTES).await {
            Ok(body) => mutation(pending, &body, &mut facts),
            Err(p) => Err(p),
        };
        let reply = call.and_then(|call| batch::call(&env, &call, &Config::get(&env)));
        let (arrival, start) = (facts.arrival(), facts.start());
        match reply {
            Ok((promise, url)) => Ok(settle(
                promise,
                Some(url),
                arrival.as_deref(),
                start.as_deref(),
                facts.shield.as_deref(),
                origin.as_deref(),
            )
            .into()),
            Err(p) => {
                let response = http::problem_response(&p)?;
                let finished = finish(
                    arrival.as_deref(),
                    start.as_deref(),
                    origin.as_deref(),
                    response,
                    Some(p.slug()),
                )?;
                Ok(finished.into())
            }
        }
    })
}

/// The public path of a mutation route (for the log of a request handled after an await).
fn routes_path(route: Route) -> &'static str {
    match route {
        Route::Step(Operation::Increment) => "/api/increment",
        Route::Step(_) => "/api/decrement",
        Route::AdminSet => "/api/admin/set",
        _ => "/api/admin/reset",
    }
}

/// A file from the static assets.
fn static_file(env: &Env, url: &str) -> Result<js_sys::Promise, Problem> {
    config::assets(env)
        .and_then(|a| a.fetch_with_str(url).js("fetching a static file"))
        .map_err(|e| e.logged("static file failed"))
}

/// `(path, query)` of an absolute URL, without the fragment.
fn split_url(url: &str) -> (&str, &str) {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let path_start = url[after_scheme..]
        .find('/')
        .map_or(url.len(), |i| after_scheme + i);
    let rest = &url[path_start..];
    let rest = rest.split('#').next().unwrap_or("");
    match rest.split_once('?') {
        Some((p, q)) => (p, q),
        None => (rest, ""),
    }
}
