//! The edge: the stateless Worker in front of the counter.
//!
//! It runs in whichever location a request arrives at and holds no state of its own. For each
//! `/api/*` request it:
//! 1. finds the route (404/405 otherwise) and applies the cross-origin rules;
//! 2. validates everything about the request (body size, media type, JSON, amount, key,
//!    `If-Match`, query) and turns it into one [`ObjectCall`];
//! 3. gives every mutation its idempotency key *before* the first attempt (the client's, or a
//!    new UUID), so that retrying the call to the object can never apply a change twice;
//! 4. sends the call to the one counter object (retrying only errors the platform marks
//!    retryable, see [`forward`]) and returns its answer, adding CORS headers when needed;
//!    with batching on, a read or change that finds `BATCH_MAX_IN_FLIGHT` calls of this
//!    isolate in flight waits and shares the next call with the others waiting (`batch.rs`);
//! 5. writes one structured log line and one metrics data point per request ([`metrics`]).
//!
//! The handler is synchronous: it returns the counter's promise instead of awaiting it, with
//! the logging (and CORS) step chained onto it. Only a request with a body to read goes through
//! an `async` block. An `async` handler would cost a promise, several closures and task
//! wake-ups per request, which on the hot path is more than all the validation together.
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
mod forward;
mod metrics;
mod relays;
mod shield;

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{Headers, Request, Response};
use worker::Env;

use crate::core::command::{self, Amount, IfMatch, Mutation, MAX_BODY_BYTES};
use crate::core::cors::{self, Access};
use crate::core::idempotency::{self, RequestKey};
use crate::core::log::{self, Arrival, Departure};
use crate::core::metrics::{End, Start};
use crate::core::problem::Problem;
use crate::core::relay::ValueRead;
use crate::core::routes::{self, Route};
use crate::core::vocab::Operation;
use crate::core::wire::{self, ObjectCall};
use crate::ffi::{Callback, Thenable};
use crate::http::{self, log_line, now_ms};
use config::Config;

/// The longest `If-Match` header read, in bytes.
const MAX_IF_MATCH_BYTES: usize = 512;
/// The longest URL accepted, in bytes.
const MAX_URL_BYTES: usize = 2048;

/// What the edge knows about a request, for its log line.
struct Facts<'a> {
    started: i64,
    method: &'a str,
    path: &'a str,
    request_id: String,
    /// The client identifier; read only when a limit or the log needs it.
    client: String,
    mutation: Option<(Operation, i64)>,
    /// Whether this request gets a log line (`REQUEST_LOG_SAMPLE_RATE`).
    logged: bool,
    /// Whether this request gets a metrics point (the `METRICS` binding exists).
    metered: bool,
    /// `request.cf.colo`, for the metrics point.
    colo: Option<String>,
    /// A change the shield learns from: its client and key ([`shield::tag`]).
    shield: Option<String>,
}

impl Facts<'_> {
    /// The encoded arrival for the log line, or `None` when this request is not logged.
    fn arrival(&self) -> Option<String> {
        if !self.logged {
            return None;
        }
        Some(
            Arrival {
                started_ms: self.started,
                request_id: if self.request_id.is_empty() {
                    "-"
                } else {
                    &self.request_id
                },
                method: self.method,
                path: self.path,
                client: &self.client,
                mutation: self.mutation.map(|(op, n)| (op.as_str(), n)),
            }
            .encode(),
        )
    }

    /// The encoded start of the metrics point, or `None` when there is no dataset.
    fn start(&self) -> Option<String> {
        self.metered.then(|| {
            Start {
                started_ms: self.started,
                path: self.path,
                method: self.method,
                colo: self.colo.as_deref(),
                amount: self.mutation.map(|(_, n)| n),
            }
            .encode()
        })
    }

    /// Reads the client identifier (`CF-Connecting-IP`) if it is not known yet; a missing or
    /// malformed one is `unknown`.
    fn read_client(&mut self, headers: &Headers) {
        if self.client.is_empty() {
            self.client = headers
                .get("cf-connecting-ip")
                .ok()
                .flatten()
                .filter(|ip| wire::is_client_id(ip))
                .unwrap_or_else(|| "unknown".to_string());
        }
    }
}

/// What to do with a validated request.
enum Plan {
    /// Answer now, without the counter.
    Answer(Response),
    /// Ask the counter.
    Call(ObjectCall),
    /// Open a socket: the counter needs the upgrade request itself.
    Connect(ObjectCall),
    /// An event stream without relays: the edge follows the counter ([`events`]).
    Events(ObjectCall),
    /// The value as an SVG badge ([`badge`]).
    Badge(badge::Ask),
    /// Serve a static file from the assets (the OpenAPI description).
    Static(String),
    /// Make (and sign) the ledger's checkpoint.
    Checkpoint,
    /// Serve the checkpoint verifier key.
    CheckpointKey,
    /// Stream an export of the audit trail (`true`: headers only).
    Export(crate::core::ledger::ExportQuery, bool),
    /// Read the body first: the only step that has to wait for the client.
    ReadBody(Pending),
    /// Ask the relay tier (a socket or nearby read through a relay, the relay admin views).
    Relay(relays::Call),
}

/// A mutation waiting for its body.
struct Pending {
    route: Route,
    key: RequestKey,
    if_match: Option<IfMatch>,
    content_type: Option<String>,
}

/// Handles one request to the Worker; returns a `Response` or a `Promise` of one.
pub fn handle(req: Request, env: Env) -> Result<JsValue, JsValue> {
    let started = now_ms();
    let url = req.url();
    let (path, query) = split_url(&url);
    if !path.starts_with("/api/") && path != "/api" {
        // Only reached when the assets router sends a non-API path here, which the
        // configuration does not do; answer from the assets anyway.
        return Ok(config::assets(&env)?.fetch(&req)?.into());
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
            headers.get("cf-ray")?.unwrap_or_default()
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
    let access = config
        .cors
        .check(headers.get("origin")?.as_deref(), cors::origin_of(&url));
    let origin = match &access {
        Access::Allowed(o) => Some(o.as_str()),
        _ => None,
    };

    let relay_settings = relays::settings(&env);
    let plan = plan(
        &req,
        &headers,
        (&config, relay_settings),
        &url,
        query,
        &access,
        &mut facts,
    );
    if logged {
        facts.read_client(&headers);
    }
    // History reads (audit pages, exports, proofs, past values) have their own per-client limit.
    let history = matches!(
        plan,
        Ok(Plan::Call(
            ObjectCall::Audit(_)
                | ObjectCall::Inclusion(_)
                | ObjectCall::Consistency(_)
                | ObjectCall::ValueAsOf(_)
        )) | Ok(Plan::Export(..))
    );
    let plan = if history && config.history_reads > 0 {
        facts.read_client(&headers);
        shield::history_read(&facts.client, config.history_reads).and(plan)
    } else {
        plan
    };
    let reply: Result<(js_sys::Promise, Option<String>), Problem> = match plan {
        Ok(Plan::Answer(r)) => {
            return finish(
                facts.arrival().as_deref(),
                facts.start().as_deref(),
                origin,
                r,
                None,
            )
            .map(Into::into)
        }
        Ok(Plan::Call(
            call @ (ObjectCall::Audit(_)
            | ObjectCall::Inclusion(_)
            | ObjectCall::Consistency(_)
            | ObjectCall::ValueAsOf(_)),
        )) => {
            let if_none_match = headers.get("if-none-match")?;
            let origin = origin.map(String::from);
            return Ok(archive_read(env, call, facts, origin, if_none_match).into());
        }
        Ok(Plan::Call(call)) => {
            batch::call(&env, &call, config.batch_in_flight).map(|(p, url)| (p, Some(url)))
        }
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
            let r = http::problem(&p)?;
            finish(
                facts.arrival().as_deref(),
                facts.start().as_deref(),
                origin,
                r,
                Some(p.slug()),
            )
            .map(Into::into)
        }
    }
}

/// Routes and validates; every refusal is a [`Problem`].
fn plan(
    req: &Request,
    headers: &Headers,
    (config, relay_settings): (&Config, relays::Settings),
    url: &str,
    query: &str,
    access: &Access,
    facts: &mut Facts,
) -> Result<Plan, Problem> {
    if url.len() > MAX_URL_BYTES {
        return Err(Problem::UriTooLong {
            limit: MAX_URL_BYTES,
        });
    }
    let route = routes::route(facts.method, facts.path)?;
    if route == Route::Preflight {
        if routes::route("GET", facts.path) == Ok(Route::Events) {
            // Anyone may read the stream, from any page.
            return http::respond(204, http::JSON, "", &crate::core::sse::PREFLIGHT)
                .map(Plan::Answer)
                .map_err(|_| Problem::Internal);
        }
        return preflight(facts.path, access).map(Plan::Answer);
    }
    if route.is_mutation() || route == Route::Socket {
        if let Access::Denied(o) = access {
            return Err(Problem::ForbiddenOrigin(o.clone()));
        }
    }
    let header = |name: &str| header(headers, name);
    match route {
        // A past state is the counter's to answer (`core::ledger::AsOfQuery`).
        Route::Value if crate::core::ledger::AsOfQuery::wanted(query) => Ok(Plan::Call(
            ObjectCall::ValueAsOf(crate::core::ledger::AsOfQuery::parse(query)?),
        )),
        Route::Value => match ValueRead::parse(query)? {
            ValueRead::Nearby { min_version } if relay_settings.per_relay > 0 => {
                facts.read_client(headers);
                Ok(Plan::Relay(relays::Call::Nearby {
                    region: relays::region_of(req),
                    client: facts.client.clone(),
                    min_version,
                }))
            }
            // Without relays, a nearby read is the counter's own (linearizable) answer.
            _ => Ok(Plan::Call(ObjectCall::Value)),
        },
        Route::AdminRelays => {
            no_query(query)?;
            config.authorize_admin(header("authorization")?.as_deref())?;
            Ok(Plan::Relay(relays::Call::List))
        }
        Route::AdminRelayReset
        | Route::AdminRelayWithhold
        | Route::AdminRelaySilence
        | Route::AdminRelaySever
        | Route::AdminRelayUnlink
        | Route::AdminCounterRestart
        | Route::AdminEdgePanic => {
            config.authorize_admin(header("authorization")?.as_deref())?;
            if !relay_settings.hooks {
                return Err(Problem::NotFound);
            }
            if route == Route::AdminEdgePanic {
                no_query(query)?;
                // A trap, as a bug would cause: this request fails, and the runtime's next
                // request finds a fresh instance (src/entry.js).
                panic!("the edge panics on purpose (test hook)");
            }
            let relay = if route == Route::AdminCounterRestart {
                no_query(query)?;
                None
            } else {
                Some(relay_param(query)?)
            };
            Ok(Plan::Relay(relays::Call::Hook { route, relay }))
        }
        Route::Health => no_query(query).map(|()| Plan::Call(ObjectCall::Health)),
        Route::Metrics => {
            no_query(query)?;
            config.authorize_admin(header("authorization")?.as_deref())?;
            Ok(Plan::Call(ObjectCall::Metrics))
        }
        Route::Checkpoint => no_query(query).map(|()| Plan::Checkpoint),
        Route::AuditKey => no_query(query).map(|()| Plan::CheckpointKey),
        Route::Export => Ok(Plan::Export(
            crate::core::ledger::ExportQuery::parse(query)?,
            facts.method == "HEAD",
        )),
        Route::Inclusion => Ok(Plan::Call(ObjectCall::Inclusion(
            crate::core::ledger::InclusionQuery::parse(query)?,
        ))),
        Route::Consistency => Ok(Plan::Call(ObjectCall::Consistency(
            crate::core::ledger::ConsistencyQuery::parse(query)?,
        ))),
        Route::Audit => Ok(Plan::Call(ObjectCall::Audit(
            crate::core::audit::AuditQuery::parse(query)?,
        ))),
        Route::OpenApi => {
            no_query(query)?;
            // The description is a static file of the app (web/openapi.json).
            Ok(Plan::Static(format!(
                "{}/openapi.json",
                cors::origin_of(url)
            )))
        }
        Route::Socket => {
            let pairs = crate::core::query::parse(query, &["since"])?;
            let since = crate::core::query::uint(
                &pairs,
                "since",
                0,
                crate::core::vocab::MAX_VALUE as u64,
                None,
            )?;
            // A complete WebSocket handshake (RFC 6455 §4.1), or nothing reaches the object.
            let upgrade = header("upgrade")?;
            let key = header("sec-websocket-key")?;
            let version = header("sec-websocket-version")?;
            if !upgrade.is_some_and(|u| u.eq_ignore_ascii_case("websocket"))
                || key.is_none_or(|k| k.trim().is_empty())
                || version.as_deref().map(str::trim) != Some("13")
            {
                return Err(Problem::UpgradeRequired);
            }
            facts.read_client(headers);
            if relay_settings.per_relay > 0 {
                return Ok(Plan::Relay(relays::Call::Connect {
                    region: relays::region_of(req),
                    client: facts.client.clone(),
                    since,
                    events: false,
                }));
            }
            Ok(Plan::Connect(ObjectCall::Connect {
                since,
                client: facts.client.clone(),
            }))
        }
        Route::Badge => {
            let badge = crate::core::badge::Badge::parse(query)?;
            let nearby = (relay_settings.per_relay > 0).then(|| {
                facts.read_client(headers);
                (relays::region_of(req), facts.client.clone())
            });
            Ok(Plan::Badge(badge::Ask {
                badge,
                if_none_match: header("if-none-match")?,
                head: facts.method == "HEAD",
                nearby,
            }))
        }
        // Server-Sent Events: read by anyone (no origin rule), counted like a socket.
        Route::Events => {
            let pairs = crate::core::query::parse(query, &["since"])?;
            let since = crate::core::query::uint(
                &pairs,
                "since",
                0,
                crate::core::vocab::MAX_VALUE as u64,
                None,
            )?;
            let since = crate::core::sse::resume(header("last-event-id")?.as_deref(), since)?;
            facts.read_client(headers);
            if relay_settings.per_relay > 0 {
                return Ok(Plan::Relay(relays::Call::Connect {
                    region: relays::region_of(req),
                    client: facts.client.clone(),
                    since,
                    events: true,
                }));
            }
            Ok(Plan::Events(ObjectCall::Connect {
                since,
                client: facts.client.clone(),
            }))
        }
        Route::Step(_) | Route::AdminSet | Route::AdminReset => {
            no_query(query)?;
            facts.read_client(headers);
            if matches!(route, Route::AdminSet | Route::AdminReset) {
                config.authorize_admin(header("authorization")?.as_deref())?;
            }
            let key = idempotency::client_key(
                header("idempotency-key")?.as_deref(),
                header("x-request-id")?.as_deref(),
            )?
            .unwrap_or_else(new_key);
            facts.request_id = key.as_str().to_owned();
            let if_match = match header("if-match")? {
                Some(v) if v.len() > MAX_IF_MATCH_BYTES => {
                    return Err(Problem::InvalidHeader {
                        name: "If-Match",
                        detail: format!("longer than {MAX_IF_MATCH_BYTES} bytes."),
                    })
                }
                Some(v) => Some(IfMatch::parse(&v)?),
                None => None,
            };
            let pending = Pending {
                route,
                key,
                if_match,
                content_type: header("content-type")?,
            };
            // Most clicks carry no body at all; only a real body is worth waiting for.
            let length = header("content-length")?;
            if length.as_deref().map(str::trim) == Some("0") || req.body().is_none() {
                mutation(pending, &[], facts).map(Plan::Call)
            } else {
                body::check_length(length.as_deref(), MAX_BODY_BYTES)?;
                Ok(Plan::ReadBody(pending))
            }
        }
        Route::Preflight => Err(Problem::Internal),
    }
}

/// The call for a mutation with its (possibly empty) body.
fn mutation(p: Pending, body: &[u8], facts: &mut Facts) -> Result<ObjectCall, Problem> {
    command::check_json_media_type(p.content_type.as_deref(), body.len())?;
    let (op, operand) = match p.route {
        Route::Step(op) => (op, i64::from(command::parse_amount_body(body)?.get())),
        Route::AdminSet => (Operation::Set, command::parse_set_body(body)?),
        _ if body.is_empty() => (Operation::Reset, 0),
        _ => return Err(Problem::InvalidBody("reset takes no body.".into())),
    };
    facts.mutation = Some((op, operand));
    if matches!(op, Operation::Increment | Operation::Decrement) {
        // A client the counter refused lately is refused here, before any call.
        if let Some(config) = Config::loaded().filter(|c| c.changes_limited) {
            shield::check_change(&facts.client, p.key.as_str(), config.history_reads)?;
            facts.shield = Some(shield::tag(&facts.client, p.key.as_str()));
        }
    }
    let mutation = match op {
        Operation::Increment | Operation::Decrement => {
            Mutation::step(op, Amount::new(operand)?, p.key, p.if_match)
        }
        Operation::Set | Operation::Reset => Mutation {
            op,
            operand,
            key: p.key,
            if_match: p.if_match,
        },
    };
    Ok(ObjectCall::Mutate {
        mutation,
        client: facts.client.clone(),
    })
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
        let reply = call.and_then(|call| {
            let in_flight = Config::get(&env).batch_in_flight;
            batch::call(&env, &call, in_flight)
        });
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
                let response = http::problem(&p)?;
                finish(
                    arrival.as_deref(),
                    start.as_deref(),
                    origin.as_deref(),
                    response,
                    Some(p.slug()),
                )
                .map(Into::into)
            }
        }
    })
}

/// A read of history (an audit page, a proof, a past value): from the object, or completed from the archive
/// when the object points there ([`archive::resolve`]).
fn archive_read(
    env: Env,
    call: ObjectCall,
    facts: Facts,
    origin: Option<String>,
    if_none_match: Option<String>,
) -> js_sys::Promise {
    let arrival = facts.arrival();
    let start = facts.start();
    wasm_bindgen_futures::future_to_promise(async move {
        // An answer that never changes may be in this location's cache: an archived page is
        // looked up there, and kept only once it came from the archive.
        let always = crate::core::cache::immutable_key(&call);
        let lookup = always
            .clone()
            .or_else(|| crate::core::cache::archived_page_key(&call));
        let outcome = async {
            if let Some(key) = &lookup {
                if let Some(hit) = cache::lookup(key, if_none_match.as_deref()).await {
                    return Ok(hit);
                }
            }
            let (promise, url) = forward::call(&env, &call)?;
            let response = match wasm_bindgen_futures::JsFuture::from(promise).await {
                Ok(r) => r.dyn_into::<Response>(),
                Err(error) => forward::retry(url, error).await,
            }
            .map_err(|_| Problem::Internal)?;
            let archived = archive::is_pointer(&response);
            let answer = archive::resolve(&env, &call, response).await?;
            let keep = always.as_ref().or(lookup.as_ref().filter(|_| archived));
            Ok(match keep {
                Some(key) => cache::keep(key, answer, if_none_match.as_deref()).await,
                None => answer,
            })
        }
        .await;
        let (response, problem) = match outcome {
            Ok(r) => (r, None),
            Err(p) => (http::problem(&p)?, Some(p.slug())),
        };
        finish(
            arrival.as_deref(),
            start.as_deref(),
            origin.as_deref(),
            response,
            problem,
        )
        .map(Into::into)
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

/// Logs the request (when `arrival` is given), writes its metrics point (when `start` is
/// given) and adds CORS headers for an allowed cross-origin caller. `problem` is the problem
/// type when the edge refused the request; a refusal by the object is known by its status.
fn finish(
    arrival: Option<&str>,
    start: Option<&str>,
    origin: Option<&str>,
    response: Response,
    problem: Option<&str>,
) -> Result<Response, JsValue> {
    finish_change(arrival, start, None, origin, response, problem)
}

/// [`finish`] for a change the shield learns from (`shield`: [`shield::tag`]'s).
fn finish_change(
    arrival: Option<&str>,
    start: Option<&str>,
    shield: Option<&str>,
    origin: Option<&str>,
    response: Response,
    problem: Option<&str>,
) -> Result<Response, JsValue> {
    let status = response.status();
    if let (Some(tag), Some(config)) = (shield, Config::loaded()) {
        let retry_after = (status == 429)
            .then(|| response.headers().get("retry-after").ok().flatten())
            .flatten();
        shield::learn_change(tag, status, retry_after.as_deref(), config.history_reads);
    }
    let problem = problem.or_else(|| {
        (status >= 400)
            .then(|| Problem::slug_of_status(status))
            .flatten()
    });
    let config = if arrival.is_some() || start.is_some() {
        Config::loaded()
    } else {
        None
    };
    let version_id = config.as_ref().map_or("", |c| c.version_id.as_str());
    let change = arrival.is_some_and(log::is_mutation) || start.is_some_and(is_change);
    let (version, replayed) = if change {
        let h = response.headers();
        let version = h
            .get("etag")?
            .and_then(|e| e.trim_matches('"').parse::<u64>().ok());
        (
            version,
            h.get("idempotent-replayed")?.as_deref() == Some("true"),
        )
    } else {
        (None, false)
    };
    let now = now_ms();
    if let Some(arrival) = arrival {
        let departure = Departure {
            status,
            now_ms: now,
            version,
            replayed,
            problem,
            version_id,
        };
        if let Some(line) = log::finish(arrival, &departure) {
            log_line(&line);
        }
    }
    if let (Some(start), Some(dataset)) = (start, config.as_ref().and_then(|c| c.metrics.as_ref()))
    {
        let end = End {
            status,
            now_ms: now,
            replayed,
            problem,
            version_id,
        };
        metrics::write(dataset, start, &end);
    }
    match origin {
        Some(o) => with_headers(response, &cors::response_headers(o)),
        None => Ok(response),
    }
}

/// Whether an encoded metrics start is a change's (it carries an amount).
fn is_change(start: &str) -> bool {
    !start.ends_with("|-")
}

thread_local! {
    /// [`finish_change`] as a JavaScript function, made once per isolate: `(arrival, start,
    /// shield, origin, response)`, where an empty arrival means "not logged", an empty start
    /// "no metrics" and an empty shield "nothing to learn".
    #[allow(clippy::type_complexity)]
    static FINISH: Closure<dyn Fn(String, String, String, JsValue, Response) -> Result<JsValue, JsValue>> =
        Closure::new(|arrival: String, start: String, shield: String, origin: JsValue, response: Response| {
            finish_change(
                non_empty(&arrival),
                non_empty(&start),
                non_empty(&shield),
                origin.as_string().as_deref(),
                response,
                None,
            )
            .map(Into::into)
        });

    /// The failure path as a JavaScript function: `(url, arrival, start, origin, error)`: retry
    /// the call where that is safe ([`forward::retry`]), then finish as usual.
    #[allow(clippy::type_complexity)]
    static RECOVER: Closure<dyn Fn(String, String, String, JsValue, JsValue) -> js_sys::Promise> =
        Closure::new(|url: String, arrival: String, start: String, origin: JsValue, error: JsValue| {
            wasm_bindgen_futures::future_to_promise(async move {
                let response = forward::retry(url, error).await?;
                finish(
                    non_empty(&arrival),
                    non_empty(&start),
                    origin.as_string().as_deref(),
                    response,
                    None,
                )
                .map(Into::into)
            })
        });
}

/// What happens once the counter (or the assets) answered: `promise.then(finish, recover)`
/// with this request's facts bound, or less where less is needed. One derived promise per
/// request; returning the platform's promise untouched would be cheaper still, but a failed
/// call must become a problem response, never the runtime's bare 500.
fn settle(
    promise: js_sys::Promise,
    retry_url: Option<String>,
    arrival: Option<&str>,
    start: Option<&str>,
    shield: Option<&str>,
    origin: Option<&str>,
) -> js_sys::Promise {
    let origin = origin.map_or(JsValue::UNDEFINED, JsValue::from_str);
    let on_fulfilled =
        if arrival.is_some() || start.is_some() || shield.is_some() || !origin.is_undefined() {
            FINISH.with(|f| {
                f.as_ref()
                    .unchecked_ref::<Callback>()
                    .bind_str_str_str_value(
                        &JsValue::NULL,
                        arrival.unwrap_or(""),
                        start.unwrap_or(""),
                        shield.unwrap_or(""),
                        &origin,
                    )
            })
        } else {
            JsValue::UNDEFINED
        };
    let on_rejected = match &retry_url {
        Some(url) => RECOVER.with(|f| {
            f.as_ref()
                .unchecked_ref::<Callback>()
                .bind_str_str_str_value(
                    &JsValue::NULL,
                    url,
                    arrival.unwrap_or(""),
                    start.unwrap_or(""),
                    &origin,
                )
        }),
        None => JsValue::UNDEFINED,
    };
    if on_fulfilled.is_undefined() && on_rejected.is_undefined() {
        return promise;
    }
    promise
        .unchecked_ref::<Thenable>()
        .then2(&on_fulfilled, &on_rejected)
}

fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

/// A file from the static assets.
fn static_file(env: &Env, url: &str) -> Result<js_sys::Promise, Problem> {
    config::assets(env)
        .and_then(|a| a.fetch_with_str(url))
        .map_err(|e| {
            http::log_event("error", "static file failed", |w| {
                w.string("error", &crate::ffi::error_text(&e));
            });
            Problem::Internal
        })
}

/// A CORS preflight: allowed origins get the methods and headers they may use; same-origin
/// and origin-less preflights get `Allow`; other origins get 403 without any CORS header.
fn preflight(path: &str, access: &Access) -> Result<Response, Problem> {
    let methods = routes::allowed(path).ok_or(Problem::NotFound)?;
    match access {
        Access::Allowed(origin) => {
            let h = cors::preflight_headers(origin, methods);
            let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
            http::respond(204, http::JSON, "", &h).map_err(|_| Problem::Internal)
        }
        Access::Denied(o) => Err(Problem::ForbiddenOrigin(o.clone())),
        Access::NoOrigin | Access::SameOrigin => {
            http::respond(204, http::JSON, "", &[("allow", methods)]).map_err(|_| Problem::Internal)
        }
    }
}

/// `relay=<region>-<shard>`, the one parameter of the relay test hooks.
fn relay_param(query: &str) -> Result<String, Problem> {
    let pairs = crate::core::query::parse(query, &["relay"])?;
    pairs
        .into_iter()
        .next()
        .map(|(_, v)| v)
        .filter(|v| crate::core::relay::parse_relay_name(v).is_some())
        .ok_or_else(|| {
            Problem::InvalidQuery(
                "relay must name a relay, such as enam-0 (see GET /api/admin/relays).".into(),
            )
        })
}

fn no_query(query: &str) -> Result<(), Problem> {
    crate::core::query::parse(query, &[]).map(|_| ())
}

fn header(headers: &Headers, name: &str) -> Result<Option<String>, Problem> {
    headers.get(name).map_err(|_| Problem::InvalidHeader {
        name: "header",
        detail: "unreadable".into(),
    })
}

/// A fresh key for a mutation that came without one.
fn new_key() -> RequestKey {
    RequestKey::generated(uuid::Uuid::new_v4().to_string())
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

/// A copy of `response` with `extra` headers set. Responses that came from the object have
/// immutable headers, so this re-wraps the body stream; used only for cross-origin requests.
fn with_headers(response: Response, extra: &[(&'static str, String)]) -> Result<Response, JsValue> {
    if response.status() == 101 {
        return Ok(response);
    }
    let headers = web_sys::Headers::new_with_headers(&response.headers())?;
    for (k, v) in extra {
        headers.set(k, v)?;
    }
    let init = web_sys::ResponseInit::new();
    init.set_status(response.status());
    init.set_headers(&headers);
    Response::new_with_opt_readable_stream_and_init(response.body().as_ref(), &init)
}
