//! Writing each request's metrics data point (its layout: [`crate::core::metrics`]).

use wasm_bindgen::JsValue;
use web_sys::Request;

use worker::{AnalyticsEngineDataPointBuilder, AnalyticsEngineDataset};

use crate::core::metrics::{self, End};
use crate::log::log_event;

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
pub fn write(dataset: &AnalyticsEngineDataset, start: &str, end: &End) {
    let Some(point) = metrics::point(start, end) else {
        return;
    };
    let written = AnalyticsEngineDataPointBuilder::new()
        .indexes([point.index.as_str()])
        .blobs(point.blobs)
        .doubles(point.doubles)
        .write_to(dataset);
    if let Err(e) = written {
        log_event("error", "metrics point not written", |w| {
            w.string("error", &e.to_string());
        });
    }
}
