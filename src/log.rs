//! The platform's log: every line the Worker and the objects write, one JSON object each
//! (their form is [`crate::core::log`]'s).

use wasm_bindgen::JsValue;

/// Writes one log line (already JSON) to the platform log.
pub fn log_line(line: &str) {
    web_sys::console::log_1(&JsValue::from_str(line));
}

/// Writes a `{"level","msg",...}` event line; see [`crate::core::log::event`].
pub fn log_event(level: &str, msg: &str, fields: impl FnOnce(&mut crate::core::json::JsonWriter)) {
    log_line(&crate::core::log::event(level, msg, fields));
}
