//! The Worker's bindings looked up by name, and the counter's stub: written once, for the edge
//! and the relays alike.

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

/// The stub of the one counter object in `ns`, the `COUNTER` namespace.
pub fn counter_in(ns: &DurableObjectNamespace) -> Result<DurableObject> {
    ns.get_by_name(OBJECT_NAME).js("getting the counter's stub")
}

/// The stub of the one counter object, through `env`'s `COUNTER` binding.
pub fn counter_stub(env: &Env) -> Result<DurableObject> {
    counter_in(&binding(env, "COUNTER")?)
}
