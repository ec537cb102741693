//! The edge's side of the relay tier: which relay a caller reaches, and the admin views.
//!
//! A socket (`/api/ws`), an event stream (`/api/events`, counted as a socket) and a nearby
//! read go to a relay of the caller's region
//! ([`region::region`](crate::core::relay::region) from `request.cf`), starting at the shard
//! its address hashes to among the region's `RELAY_SHARDS` (its home), created there with that
//! `locationHint`. A relay that passes the socket on (it is full, or it passed this client on
//! before: [`relay::Marks`]) answers 503 with `relay-full: <the client's sockets there>`; the
//! edge then tries the client's relay on the next level of the region ([`relay::shard_order`]:
//! one relay per level, the levels growing up to `RELAY_MAX_SHARDS`), passing on how many
//! sockets the client holds on the relays it passed, so `WS_CONNECTIONS_PER_CLIENT` holds
//! across relays ([`relay::Walk`]). A connect asks at most one relay per level (4 in
//! production) and the edge keeps no state: a region grows where its relays are full and
//! shrinks as its grown relays go idle. With `RELAY_SOCKETS_PER_RELAY = 0` there are no relays:
//! sockets go to the counter as before.

use std::cell::OnceCell;

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{future_to_promise, JsFuture};
use web_sys::{Request, RequestInit, Response};
use worker::worker_sys::{DurableObject, DurableObjectNamespace};
use worker::Env;

use crate::bindings::{binding, counter_stub, setting, string_var};
use crate::core::json::JsonWriter;
use crate::core::problem::Problem;
use crate::core::relay::{self, Mode, RelayCall, Walk, FULL_HEADER, ROOM_HEADER};
use crate::core::routes::Route;
use crate::core::wire::ObjectCall;
use crate::error::{Context, Result};
use crate::http;
use crate::log::log_event;

/// The relay settings of this isolate.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// `RELAY_SOCKETS_PER_RELAY`: 0 = no relays.
    pub per_relay: u32,
    /// `RELAY_SHARDS`: the relays a region starts with (every client's home is one of them).
    pub shards: u32,
    /// `RELAY_MAX_SHARDS`: the most relays a region grows to (at least `shards`).
    pub max_shards: u32,
    /// `ADMIN_TEST_HOOKS = "1"`: the admin test hooks exist.
    pub hooks: bool,
}

thread_local! {
    static SETTINGS: OnceCell<Settings> = const { OnceCell::new() };
}

/// The relay settings (read once per isolate; a malformed value is logged and the default
/// used).
pub fn settings(env: &Env) -> Settings {
    SETTINGS.with(|s| {
        *s.get_or_init(|| {
            let read = |name: &str, default: u32, max: u32| {
                setting(
                    env,
                    name,
                    |v| relay::parse_setting(v, default, max),
                    default,
                )
            };
            let mut per_relay = read(
                "RELAY_SOCKETS_PER_RELAY",
                relay::DEFAULT_SOCKETS_PER_RELAY,
                32_768,
            );
            // Without the binding there are no relays to reach: sockets go to the counter.
            if per_relay > 0 && binding::<JsValue>(env, "RELAY").is_err() {
                log_event(
                    "error",
                    "the RELAY binding is missing; relays are off",
                    |_| {},
                );
                per_relay = 0;
            }
            let shards = read("RELAY_SHARDS", relay::DEFAULT_SHARDS, relay::MAX_SHARDS).max(1);
            Settings {
                per_relay,
                shards,
                max_shards: read("RELAY_MAX_SHARDS", relay::MAX_RELAYS, relay::MAX_RELAYS)
                    .max(shards),
                hooks: string_var(env, "ADMIN_TEST_HOOKS").as_deref() == Some("1"),
            }
        })
    })
}

/// What the edge asks of the relay tier.
pub enum Call {
    /// A browser socket (`request` carries the upgrade), or with `events` an event stream.
    Connect {
        region: &'static str,
        client: String,
        since: Option<u64>,
        events: bool,
    },
    /// A nearby read.
    Nearby {
        region: &'static str,
        client: String,
        min_version: Option<u64>,
    },
    /// `GET /api/admin/relays`.
    List,
    /// A test hook; `relay` for the relay hooks.
    Hook { route: Route, relay: Option<String> },
}

/// The caller's region, from `request.cf` (continent, longitude).
pub fn region_of(req: &Request) -> &'static str {
    let cf = js_sys::Reflect::get(req, &JsValue::from_str("cf")).unwrap_or(JsValue::UNDEFINED);
    if !cf.is_object() {
        return relay::region(None, None);
    }
    let get = |k: &str| js_sys::Reflect::get(&cf, &JsValue::from_str(k)).ok();
    let continent = get("continent").and_then(|v| v.as_string());
    let longitude = get("longitude").and_then(|v| {
        v.as_f64()
            .or_else(|| v.as_string().and_then(|s| s.trim().parse().ok()))
    });
    relay::region(continent.as_deref(), longitude)
}

/// Runs `call`; the promise resolves to a response (problems included), never rejects.
pub fn run(env: Env, req: Request, call: Call) -> js_sys::Promise {
    future_to_promise(async move {
        let outcome = match call {
            Call::Connect {
                region,
                client,
                since,
                events,
            } => {
                // A client a relay just refused for its cap is refused here, before any call.
                if let Err(p) = super::shield::check_socket(&client) {
                    return Ok(http::problem_response(&p)?.into());
                }
                let answer = connect(&env, &req, region, &client, (since, events)).await;
                if answer.as_ref().is_ok_and(|r| r.status() == 429) {
                    super::shield::learn_socket_refused(&client);
                }
                answer
            }
            Call::Nearby {
                region,
                client,
                min_version,
            } => nearby(&env, region, &client, min_version).await,
            Call::List => list(&env).await,
            Call::Hook { route, relay } => hook(&env, route, relay).await,
        };
        let response = match outcome {
            Ok(r) => r,
            Err(e) => {
                e.log("relay call failed");
                http::problem_response(&Problem::Unavailable {
                    retry_after_secs: 2,
                })?
            }
        };
        Ok(response.into())
    })
}

fn relay_stub(env: &Env, name: &str) -> Result<DurableObject> {
    let ns: DurableObjectNamespace = binding(env, "RELAY")?;
    let options = js_sys::Object::new();
    if let Some(region) = relay::parse_relay_name(name) {
        js_sys::Reflect::set(
            &options,
            &JsValue::from_str("locationHint"),
            &JsValue::from_str(region),
        )
        .js("setting a relay's location hint")?;
    }
    ns.get_by_name_with_options(name, &options)
        .js("getting a relay's stub")
}

async fn fetch(stub: DurableObject, req: &Request) -> Result<Response> {
    answer(stub.fetch_with_request(req).js("calling an object")?).await
}

async fn fetch_url(stub: DurableObject, url: &str) -> Result<Response> {
    answer(stub.fetch_with_str(url).js("calling an object")?).await
}

/// The response a call to an object (`stub.fetch`'s promise) resolves to.
async fn answer(call: js_sys::Promise) -> Result<Response> {
    let response = async { JsFuture::from(call).await?.dyn_into::<Response>() };
    response.await.js("calling an object")
}

/// A response's body as text.
async fn text(response: &Response) -> Result<String> {
    let body = async { JsFuture::from(response.text()?).await };
    Ok(body
        .await
        .js("reading an object's answer")?
        .as_string()
        .unwrap_or_default())
}

async fn connect(
    env: &Env,
    req: &Request,
    region: &'static str,
    client: &str,
    (since, events): (Option<u64>, bool),
) -> Result<Response> {
    let Settings {
        shards, max_shards, ..
    } = settings(env);
    let mut walk = Walk::default();
    let mut last = None;
    let ask = |shard: u32, held: u32, mode: Mode| {
        let name = relay::relay_name(region, shard);
        let url = RelayCall::Connect {
            relay: name.clone(),
            client: client.to_owned(),
            since,
            held,
            mode,
            events,
        }
        .encode();
        let init = RequestInit::new();
        init.set_headers(&req.headers());
        let internal = Request::new_with_str_and_init(&url, &init).js("building a relay call");
        async move { fetch(relay_stub(env, &name)?, &internal?).await }
    };
    for shard in relay::shard_order(client, shards, max_shards) {
        let mode = walk.mode();
        let resp = ask(shard, walk.held(), mode).await?;
        match resp
            .headers()
            .get(FULL_HEADER)
            .js("reading a relay's answer")?
        {
            Some(here) => {
                let room = resp
                    .headers()
                    .has(ROOM_HEADER)
                    .js("reading a relay's answer")?;
                walk.passed(shard, here.parse().unwrap_or(0), room);
                if mode == Mode::Take {
                    last = Some(resp);
                }
            }
            // Only a relay asked to take answers without the header (a count always has it);
            // anything else is that relay's own failure, passed on.
            None => return Ok(resp),
        }
    }
    // Every relay of the walk passed the socket on: the first that has room takes it,
    // counting the client's sockets on all the others.
    if let Some((shard, held)) = walk.fallback() {
        return ask(shard, held, Mode::Force).await;
    }
    // Every relay of the client's walk is full: the last one's 503 (with Retry-After).
    match last {
        Some(r) => Ok(r),
        None => http::problem_response(&Problem::Unavailable {
            retry_after_secs: 5,
        }),
    }
}

async fn nearby(
    env: &Env,
    region: &'static str,
    client: &str,
    min_version: Option<u64>,
) -> Result<Response> {
    let shard = relay::home(client, settings(env).shards);
    let name = relay::relay_name(region, shard);
    let url = RelayCall::Value {
        relay: name.clone(),
        min_version,
    }
    .encode();
    fetch_url(relay_stub(env, &name)?, &url).await
}

/// Every relay connected to the counter, with its sockets, version and lag behind the
/// counter, asked six at a time (the platform's limit of open subrequests per invocation).
async fn list(env: &Env) -> Result<Response> {
    let resp = fetch_url(counter_stub(env)?, &ObjectCall::Relays.encode()).await?;
    // JSON.parse: the runtime's parser, no code in the module.
    let v = js_sys::JSON::parse(&text(&resp).await?).js("parsing the counter's relay list")?;
    let get = |k: &str| {
        js_sys::Reflect::get(&v, &JsValue::from_str(k)).js("reading the counter's relay list")
    };
    let version = get("version")?.as_f64().unwrap_or(0.0) as u64;
    let names: Vec<String> = js_sys::Array::from(&get("relays")?)
        .iter()
        .filter_map(|n| n.as_string())
        .filter(|n| relay::parse_relay_name(n).is_some())
        .collect();
    let mut rows = Vec::with_capacity(names.len());
    for chunk in names.chunks(6) {
        let mut promises = Vec::new();
        for name in chunk {
            let url = RelayCall::Stats {
                relay: name.clone(),
                counter: version,
            }
            .encode();
            let stub = relay_stub(env, name)?;
            promises.push(stub.fetch_with_str(&url).js("calling a relay")?);
        }
        for p in promises {
            rows.push(text(&answer(p).await?).await?);
        }
    }
    let body = JsonWriter::object()
        .uint("version", version)
        .uint("count", rows.len() as u64)
        .raw("relays", &format!("[{}]", rows.join(",")))
        .finish();
    http::json(&body, &[])
}

/// A test hook. A reset makes the call itself fail (the object is gone); that is the
/// expected outcome and answers 200.
async fn hook(env: &Env, route: Route, relay: Option<String>) -> Result<Response> {
    let name = relay.unwrap_or_default();
    let relay = name.clone();
    let relay_hook = match route {
        Route::AdminRelayReset => Some((RelayCall::Reset { relay }, "reset")),
        Route::AdminRelayWithhold => Some((RelayCall::Withhold { relay }, "withholding")),
        Route::AdminRelaySilence => Some((RelayCall::Silence { relay }, "silenced")),
        Route::AdminRelaySever => Some((RelayCall::Sever { relay }, "severed")),
        Route::AdminRelayUnlink => Some((RelayCall::Unlink { relay }, "unlinked")),
        _ => None,
    };
    let (stub, url, what) = match relay_hook {
        Some((call, what)) => (relay_stub(env, &name)?, call.encode(), what),
        None => (
            counter_stub(env)?,
            ObjectCall::Restart.encode(),
            "restarted",
        ),
    };
    let target = if name.is_empty() { "counter" } else { &name };
    let ok = JsonWriter::object().string(what, target).finish();
    // Only a reset's own call fails by design; every other hook must answer 200.
    let resets = matches!(route, Route::AdminRelayReset | Route::AdminCounterRestart);
    match fetch_url(stub, &url).await {
        Ok(r) if r.status() == 200 || resets => http::json(&ok, &[]),
        Ok(r) => Ok(r),
        Err(_) if resets => http::json(&ok, &[]),
        Err(e) => Err(e),
    }
}
