//! The promise plumbing: the counter's promise, with the response's way out ([`finish`]) and
//! the retry of a failed call chained onto it, without a Rust future on the first attempt.

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::Response;

use crate::ffi::{Callback, Thenable};

use super::finish::{finish, finish_change};
use super::forward;

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
            .map_err(Into::into)
        });

    /// The failure path as a JavaScript function: `(url, arrival, start, origin, error)`: retry
    /// the call where that is safe ([`forward::retry`]), then finish as usual.
    #[allow(clippy::type_complexity)]
    static RECOVER: Closure<dyn Fn(String, String, String, JsValue, JsValue) -> js_sys::Promise> =
        Closure::new(|url: String, arrival: String, start: String, origin: JsValue, error: JsValue| {
            wasm_bindgen_futures::future_to_promise(async move {
                let response = forward::retry(url, error).await?;
                let finished = finish(
                    non_empty(&arrival),
                    non_empty(&start),
                    origin.as_string().as_deref(),
                    response,
                    None,
                )?;
                Ok(finished.into())
            })
        });
}

/// What happens once the counter (or the assets) answered: `promise.then(finish, recover)`
/// with this request's facts bound, or less where less is needed. One derived promise per
/// request; returning the platform's promise untouched would be cheaper still, but a failed
/// call must become a problem response, never the runtime's bare 500.
pub(super) fn settle(
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
