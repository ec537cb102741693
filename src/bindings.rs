//! The Worker's bindings and vars looked up by name, and the counter's stub: written once, for
//! the edge and the relays alike.

use wasm_bindgen::{JsCast, JsValue};
use worker::worker_sys::{DurableObject, DurableObjectNamespace};
use worker::Env;

use crate::core::wire::OBJECT_NAME;
use crate::error::{Context, Error, Result};

/// The binding `name` of `env` as a `T`, or an error that names it when it is missing.
pub fn binding<T: JsCast>(env: &Env, name: &'static str) -> Result<T> {
    let v = js_sys::Reflect::get(env, &JsValue::from_str(name)).js("reading a binding")?;
    if v.is_undefined() {
        return Err(Error::Unbound(name));
    }
    Ok(v.unchecked_into())
}

/// Var `name` of `env` as text, when it is set.
pub fn string_var(env: &Env, name: &str) -> Option<String> {
    js_sys::Reflect::get(env, &JsValue::from_str(name))
        .ok()
        .and_then(|v| v.as_string())
}

/// Numeric var `name` read with `parse` (absent: its default); a malformed value is logged and
/// means `default`.
pub fn setting(
    env: &Env,
    name: &str,
    parse: impl Fn(Option<&str>) -> std::result::Result<u32, String>,
    default: u32,
) -> u32 {
    parse(string_var(env, name).as_deref()).unwrap_or_else(|e| {
        crate::log::log_event("error", "invalid setting; using the default", |w| {
            w.string("var", name).string("error", &e);
        });
        default
    })
}

/// The stub of the one counter object in `ns`, the `COUNTER` namespace.
pub fn counter_in(ns: &DurableObjectNamespace) -> Result<DurableObject> {
    ns.get_by_name(OBJECT_NAME).js("getting the counter's stub")
}

/// The stub of the one counter object, through `env`'s `COUNTER` binding.
pub fn counter_stub(env: &Env) -> Result<DurableObject> {
    counter_in(&binding(env, "COUNTER")?)
}
