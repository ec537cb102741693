//! Writing each request's metrics data point (its layout: [`crate::core::metrics`]).

use wasm_bindgen::JsValue;
use web_sys::Request;

use crate::core::metrics::{self, End};
use crate::ffi::Dataset;
use crate::http::log_event;

/// `request.cf.colo`: the location serving the request, if the platform says.
pub fn colo(req: &Request) -> Option<String> {
    let cf = js_sys::Reflect::get(req, &JsValue::from_str("cf")).ok()?;
    if !cf.is_object() {
        return None;
    }
    js_sys::Reflect::get(&cf, &JsValue::from_str("colo"))
        .ok()?
        .as_string()
}

/// Writes the point for an encoded [`metrics::Start`] and its [`End`]. A point that cannot be
/// written is logged, never an error of the request.
pub fn write(dataset: &Dataset, start: &str, end: &End) {
    let Some(point) = metrics::point(start, end) else {
        return;
    };
    let written = js_sys::JSON::parse(&point.to_json()).and_then(|p| dataset.write_data_point(&p));
    if let Err(e) = written {
        log_event("error", "metrics point not written", |w| {
            w.string("error", &crate::ffi::error_text(&e));
        });
    }
}
