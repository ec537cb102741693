//! `GET /api/badge.svg`: the current value drawn as an SVG badge ([`crate::core::badge`]).
//!
//! With relays the value is the caller's regional relay's (a nearby read, so badges embedded
//! in busy pages cost the counter nothing); without them it is the counter's. The entity tag
//! follows the version, so `If-None-Match` gets 304 until the counter changes, and
//! `Cache-Control: public, max-age=10` lets image proxies keep it briefly. Anyone may load it
//! (`Access-Control-Allow-Origin: *`).

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{future_to_promise, JsFuture};
use web_sys::{Request, Response};
use worker::Env;

use crate::core::badge::{self, Badge};
use crate::core::problem::Problem;
use crate::core::wire::ObjectCall;
use crate::error::{Context, Result};
use crate::http;

use super::{forward, relays};

/// A badge request, validated.
pub struct Ask {
    pub badge: Badge,
    pub if_none_match: Option<String>,
    /// `HEAD`: the headers only.
    pub head: bool,
    /// With relays: the caller's region and client, for the nearby read.
    pub nearby: Option<(&'static str, String)>,
}

/// The badge, 304, or the problem of the read behind it; never rejects.
pub fn badge(env: Env, req: Request, ask: Ask) -> js_sys::Promise {
    future_to_promise(async move { Ok(draw(env, req, ask).await?.into()) })
}

async fn draw(env: Env, req: Request, ask: Ask) -> Result<Response> {
    let read = match ask.nearby {
        Some((region, client)) => {
            let call = relays::Call::Nearby {
                region,
                client,
                min_version: None,
            };
            JsFuture::from(relays::run(env, req, call))
                .await
                .and_then(|r| r.dyn_into::<Response>())
                .js("a relay's nearby read")
        }
        None => forward::answer(&env, &ObjectCall::Value).await,
    };
    let read = match read {
        Ok(read) => read,
        Err(e) => return http::problem_response(&e.problem()),
    };
    if read.status() != 200 {
        return Ok(read);
    }
    let text = async { JsFuture::from(read.text()?).await };
    let text = text
        .await
        .js("reading the value")?
        .as_string()
        .unwrap_or_default();
    // JSON.parse: the runtime's parser, no code in the module.
    let v = js_sys::JSON::parse(&text).js("parsing the value")?;
    let num = |k: &str| {
        js_sys::Reflect::get(&v, &JsValue::from_str(k))
            .ok()
            .and_then(|n| n.as_f64())
    };
    let (Some(value), Some(version)) = (num("value"), num("version")) else {
        return http::problem_response(&Problem::Internal);
    };
    let etag = ask.badge.etag(version as u64);
    let headers = [
        ("etag", etag.as_str()),
        ("cache-control", badge::CACHE_CONTROL),
        ("access-control-allow-origin", "*"),
        ("access-control-expose-headers", "ETag"),
        // Nothing in a badge runs or loads anything, even opened on its own.
        ("content-security-policy", "default-src 'none'"),
    ];
    if ask
        .if_none_match
        .as_deref()
        .is_some_and(|inm| badge::not_modified(inm, &etag))
    {
        return http::respond(304, badge::CONTENT_TYPE, "", &headers);
    }
    let svg = if ask.head {
        String::new()
    } else {
        ask.badge.svg(value as i64)
    };
    http::respond(200, badge::CONTENT_TYPE, &svg, &headers)
}
