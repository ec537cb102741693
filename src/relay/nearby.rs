//! The relay's nearby reads.

use std::rc::Rc;

use wasm_bindgen::prelude::*;
use web_sys::Response;

use super::upstream::text_of;
use super::{Inner, Link};
use crate::core::problem::Problem;
use crate::core::relay::Known;
use crate::core::wire::ObjectCall;
use crate::error::{Context, Error, Result};
use crate::http::{self, now_ms};

/// How long a nearby read waits for `min_version` before it asks the counter.
const NEARBY_WAIT_MS: i64 = 500;

/// A nearby read: the relay's state once it has `min_version` and its upstream has delivered
/// the counter's state (a relay that had closed its idle upstream reconnects first);
/// otherwise, after a short wait, the counter's.
pub(super) async fn nearby(this: Rc<Inner>, min_version: Option<u64>) -> Result<Response> {
    this.last_used.set(js_sys::Date::now());
    this.arm_watchdog();
    Inner::ensure_upstream(&this);
    let started = now_ms();
    loop {
        let up = matches!(*this.link.borrow(), Link::Up(_)) && this.synced.get();
        let known = this.feed.borrow().known().cloned();
        if let Some(k) = known.filter(|k| up && min_version.is_none_or(|m| k.version >= m)) {
            let etag = format!("\"{}\"", k.version);
            return http::json(&k.nearby_json("relay"), &[("etag", &etag)]);
        }
        if now_ms() - started >= NEARBY_WAIT_MS {
            break;
        }
        Inner::changed(&this, 100).await;
    }
    let answer = text_of(&this, &ObjectCall::Value.encode())
        .await
        .and_then(|t| {
            // JSON.parse: the runtime's parser, no code in the module.
            let v = js_sys::JSON::parse(&t).js("parsing the counter's value")?;
            let num = |k: &str| {
                js_sys::Reflect::get(&v, &JsValue::from_str(k))
                    .ok()
                    .and_then(|n| n.as_f64())
                    .ok_or_else(|| Error::Answer(format!("no {k}")))
            };
            Ok(Known {
                value: num("value")? as i64,
                version: num("version")? as u64,
            })
        });
    match answer {
        Ok(k) => {
            let etag = format!("\"{}\"", k.version);
            http::json(&k.nearby_json("counter"), &[("etag", &etag)])
        }
        Err(e) => {
            e.log("relay value read failed");
            http::problem_response(&Problem::Unavailable {
                retry_after_secs: 2,
            })
        }
    }
}
