//! The edge: the stateless Worker in front of the counter.
//!
//! It runs in whichever location a request arrives at and holds no state of its own. For each
//! `/api/*` request it:
//! 1. finds the route (404/405 otherwise) and applies the cross-origin rules;
//! 2. validates everything about the request (body size, media type, JSON, amount, key,
//!    `If-Match`, query) and turns it into one [`ObjectCall`];
//! 3. gives every mutation its idempotency key *before* the first attempt (the client's, or a
//!    new UUID), so that retrying the call to the object can never apply a change twice;
//! 4. sends the call to the one counter object (with bounded retries on errors the platform
//!    marks retryable) and returns its answer, adding CORS headers when needed;
//! 5. writes one structured log line.
//!
//! Everything else (the web app) is served by the static assets binding before the Worker
//! runs (`run_worker_first = ["/api/*"]` in wrangler.toml).

mod body;
mod config;
mod forward;

use wasm_bindgen::{JsCast, JsValue};
use web_sys::{Request, Response};
use worker::Env;

use crate::core::command::{self, IfMatch, Mutation, Operation, MAX_BODY_BYTES};
use crate::core::cors::{self, Access};
use crate::core::idempotency::{self, RequestKey};
use crate::core::log::{MutationLog, Outcome, RequestLog};
use crate::core::problem::Problem;
use crate::core::routes::{self, Route};
use crate::core::time::rfc3339_millis;
use crate::core::wire::{self, ObjectCall};
use crate::http::{self, log_line, now_ms};
use config::Config;

/// The longest `If-Match` header read, in bytes.
const MAX_IF_MATCH_BYTES: usize = 512;
/// The longest URL accepted, in bytes.
const MAX_URL_BYTES: usize = 2048;

/// What the edge knows about a request, for its log line.
struct Facts {
    request_id: String,
    client: String,
    mutation: Option<(Operation, i64)>,
    problem: Option<&'static str>,
}

/// Handles one request to the Worker.
pub async fn handle(req: Request, env: Env) -> Result<Response, JsValue> {
    let started = now_ms();
    let url = req.url();
    let (path, query) = split_url(&url);
    if !path.starts_with("/api/") && path != "/api" {
        // Only reached when the assets router sends a non-API path here, which the
        // configuration does not do; answer from the assets anyway.
        let promise = config::assets(&env)?.fetch(&req)?;
        return wasm_bindgen_futures::JsFuture::from(promise)
            .await?
            .dyn_into();
    }
    let method = req.method();
    let headers = req.headers();
    let client = headers
        .get("cf-connecting-ip")?
        .filter(|ip| wire::is_client_id(ip))
        .unwrap_or_else(|| "unknown".to_string());
    let mut facts = Facts {
        request_id: headers.get("cf-ray")?.unwrap_or_default(),
        client,
        mutation: None,
        problem: None,
    };

    let config = Config::get(&env);
    let origin = headers.get("origin")?;
    let access = config.cors.check(origin.as_deref(), cors::origin_of(&url));

    let result = serve(
        &req, &env, &config, &method, path, query, &url, &access, &mut facts,
    )
    .await;
    let response = match result {
        Ok(r) => r,
        Err(p) => {
            facts.problem = Some(p.slug());
            http::problem(&p)?
        }
    };
    let response = match &access {
        Access::Allowed(o) => with_headers(response, &cors::response_headers(o))?,
        _ => response,
    };
    log(&facts, &method, path, &response, started);
    Ok(response)
}

/// Routes, validates and forwards; every refusal is a [`Problem`].
#[allow(clippy::too_many_arguments)]
async fn serve(
    req: &Request,
    env: &Env,
    config: &Config,
    method: &str,
    path: &str,
    query: &str,
    url: &str,
    access: &Access,
    facts: &mut Facts,
) -> Result<Response, Problem> {
    if url.len() > MAX_URL_BYTES {
        return Err(Problem::UriTooLong {
            limit: MAX_URL_BYTES,
        });
    }
    let route = routes::route(method, path)?;
    if route == Route::Preflight {
        return preflight(path, access);
    }
    if (route.is_mutation() || route == Route::Socket) && !access.may_act() {
        if let Access::Denied(o) = access {
            return Err(Problem::ForbiddenOrigin(o.clone()));
        }
    }
    let call = match route {
        Route::Value => no_query(query).map(|()| ObjectCall::Value)?,
        Route::Health => no_query(query).map(|()| ObjectCall::Health)?,
        Route::Audit => ObjectCall::Audit(crate::core::audit::AuditQuery::parse(query)?),
        Route::OpenApi => {
            no_query(query)?;
            // The description is a static file of the app (web/openapi.json).
            return static_file(env, &format!("{}/openapi.json", cors::origin_of(url))).await;
        }
        Route::Socket => {
            let pairs = crate::core::query::parse(query, &["since"])?;
            let since = crate::core::query::uint(
                &pairs,
                "since",
                0,
                crate::core::state::MAX_VALUE as u64,
                None,
            )?;
            // A complete WebSocket handshake (RFC 6455 §4.1), or nothing reaches the object.
            let upgrade = header(req, "upgrade")?;
            let key = header(req, "sec-websocket-key")?;
            let version = header(req, "sec-websocket-version")?;
            if !upgrade.is_some_and(|u| u.eq_ignore_ascii_case("websocket"))
                || key.is_none_or(|k| k.trim().is_empty())
                || version.as_deref().map(str::trim) != Some("13")
            {
                return Err(Problem::UpgradeRequired);
            }
            let call = ObjectCall::Connect {
                since,
                client: facts.client.clone(),
            };
            return forward::connect(env, req, &call).await;
        }
        Route::Step(op) => {
            no_query(query)?;
            let (key, if_match) = mutation_headers(req, facts)?;
            let body = body::read(req, MAX_BODY_BYTES).await?;
            command::check_json_media_type(header(req, "content-type")?.as_deref(), body.len())?;
            let amount = command::parse_amount_body(&body)?;
            facts.mutation = Some((op, i64::from(amount.get())));
            mutate(Mutation::step(op, amount, key, if_match), facts)
        }
        Route::AdminSet | Route::AdminReset => {
            no_query(query)?;
            config.authorize_admin(header(req, "authorization")?.as_deref())?;
            let (key, if_match) = mutation_headers(req, facts)?;
            let body = body::read(req, MAX_BODY_BYTES).await?;
            command::check_json_media_type(header(req, "content-type")?.as_deref(), body.len())?;
            let (op, operand) = if route == Route::AdminSet {
                (Operation::Set, command::parse_set_body(&body)?)
            } else {
                if !body.is_empty() {
                    return Err(Problem::InvalidBody("reset takes no body.".into()));
                }
                (Operation::Reset, 0)
            };
            facts.mutation = Some((op, operand));
            mutate(
                Mutation {
                    op,
                    operand,
                    key,
                    if_match,
                },
                facts,
            )
        }
        Route::Preflight => return Err(Problem::Internal),
    };
    forward::call(env, &call).await
}

/// A file from the static assets.
async fn static_file(env: &Env, url: &str) -> Result<Response, Problem> {
    let fetched = async {
        let promise = config::assets(env)?.fetch_with_str(url)?;
        wasm_bindgen_futures::JsFuture::from(promise)
            .await?
            .dyn_into::<Response>()
    };
    fetched.await.map_err(|e| {
        http::log_event("error", "static file failed", |w| {
            w.string("error", &crate::ffi::error_text(&e));
        });
        Problem::Internal
    })
}

/// The key and precondition of a mutation; the key also becomes the request id.
fn mutation_headers(
    req: &Request,
    facts: &mut Facts,
) -> Result<(RequestKey, Option<IfMatch>), Problem> {
    let key = idempotency::client_key(
        header(req, "idempotency-key")?.as_deref(),
        header(req, "x-request-id")?.as_deref(),
    )?
    .unwrap_or_else(new_key);
    facts.request_id = key.as_str().to_owned();
    let if_match = match header(req, "if-match")? {
        Some(v) if v.len() > MAX_IF_MATCH_BYTES => {
            return Err(Problem::InvalidHeader {
                name: "If-Match",
                detail: format!("longer than {MAX_IF_MATCH_BYTES} bytes."),
            })
        }
        Some(v) => Some(IfMatch::parse(&v)?),
        None => None,
    };
    Ok((key, if_match))
}

fn mutate(mutation: Mutation, facts: &Facts) -> ObjectCall {
    ObjectCall::Mutate {
        mutation,
        client: facts.client.clone(),
    }
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

fn no_query(query: &str) -> Result<(), Problem> {
    crate::core::query::parse(query, &[]).map(|_| ())
}

fn header(req: &Request, name: &str) -> Result<Option<String>, Problem> {
    req.headers().get(name).map_err(|_| Problem::InvalidHeader {
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
    let headers = web_sys::Headers::new_with_headers(&response.headers())?;
    for (k, v) in extra {
        headers.set(k, v)?;
    }
    let init = web_sys::ResponseInit::new();
    init.set_status(response.status());
    init.set_headers(&headers);
    if response.status() == 101 {
        return Ok(response);
    }
    Response::new_with_opt_readable_stream_and_init(response.body().as_ref(), &init)
}

fn log(facts: &Facts, method: &str, path: &str, response: &Response, started: i64) {
    let status = response.status();
    let h = response.headers();
    let version = h
        .get("etag")
        .ok()
        .flatten()
        .and_then(|e| e.trim_matches('"').parse::<u64>().ok());
    let replayed = facts.mutation.is_some()
        && h.get("idempotent-replayed").ok().flatten().as_deref() == Some("true");
    let request_id = if facts.request_id.is_empty() {
        "-"
    } else {
        facts.request_id.as_str()
    };
    let ts = rfc3339_millis(started);
    let line = RequestLog {
        ts: &ts,
        request_id,
        method,
        path,
        status,
        duration_ms: (now_ms() - started).max(0) as u64,
        client: &facts.client,
        mutation: facts.mutation.map(|(op, amount)| MutationLog {
            operation: op.as_str(),
            amount,
            version: if (200..300).contains(&status) {
                version
            } else {
                None
            },
            outcome: Outcome::of(status, replayed),
        }),
        problem: facts.problem,
    };
    log_line(&line.to_json());
}
