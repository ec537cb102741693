//! The few JavaScript APIs this service binds itself.
//!
//! workers-rs 0.8.7 does not bind `DurableObjectStorage.transactionSync`, and its generic
//! `SqlStorage::exec` builds a JavaScript array value by value (one JS↔Wasm crossing per
//! binding). Here the storage and its SQL interface get our own extern types with:
//!
//! - [`Storage::transaction_sync`]: runs a Rust closure inside one SQLite transaction. If the
//!   closure returns `Err` (which wasm-bindgen throws as a JavaScript exception), the runtime
//!   rolls back every write made inside it, so a failing statement leaves nothing behind.
//! - fixed-arity `exec` variants named after their argument types (`n` = number,
//!   `s` = string): one crossing per statement, arguments passed directly.
//!
//! Every SQL integer crosses as a JavaScript number; the counter keeps values within
//! ±(2^53 − 1), where that is exact.
//!
//! The edge also chains work onto the counter's answer without awaiting it in Rust:
//! [`Thenable`] and [`Callback`] let it attach one long-lived Rust function to a promise with
//! its per-request arguments bound (`fn.bind(null, …)`), which costs two crossings instead of
//! the closures and task wake-ups of an `async` handler.
//!
//! Everything else the service needs comes from the `worker`, `web-sys` and `js-sys` crates
//! (R2, Analytics Engine, streams, the Cache API, stubs). What stays bound here is on the
//! request path and measured to pay (BENCHMARKS.md, "Measured design decisions"): the SQL
//! calls and `transactionSync` of every change; `then`/`bind` for returning the object's promise
//! instead of awaiting it (about 130 µs of CPU per request); and `setTimeout`/`clearTimeout`,
//! one binding for the waiting requests' keep-alive timers and the relays' waits. Where no
//! request waits on it (the archive's test pause), `worker::Delay` does the same.
//!
//! This is where `JsValue` errors belong: the bindings here, and the callbacks and promises
//! handed to the runtime, keep them; the rest of the platform code returns
//! [`crate::error::Error`], which keeps the thrown value as its cause ([`crate::error::Thrown`]).

use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// `ctx.storage` of a Durable Object.
    #[derive(Clone)]
    pub type Storage;

    /// `storage.transactionSync(fn)`: runs `f` in a transaction; commits if it returns,
    /// rolls back (and rethrows) if it throws.
    #[wasm_bindgen(method, catch, js_name = transactionSync)]
    pub fn transaction_sync(
        this: &Storage,
        f: &mut dyn FnMut() -> Result<JsValue, JsValue>,
    ) -> Result<JsValue, JsValue>;

    /// `storage.sql`.
    #[wasm_bindgen(method, getter)]
    pub fn sql(this: &Storage) -> Sql;

    /// `storage.setAlarm(ms)`: the object's `alarm()` runs at (or soon after) that time. Like
    /// every storage write it is covered by the output gate, so it needs no `await`.
    #[wasm_bindgen(method, catch, js_name = setAlarm)]
    pub fn set_alarm(this: &Storage, epoch_ms: f64) -> Result<js_sys::Promise, JsValue>;

    /// `ctx.storage.sql`.
    #[derive(Clone)]
    pub type Sql;

    /// `sql.databaseSize`.
    #[wasm_bindgen(method, getter, js_name = databaseSize)]
    pub fn database_size(this: &Sql) -> f64;

    #[wasm_bindgen(method, catch, js_name = exec)]
    pub fn exec(this: &Sql, query: &str) -> Result<Cursor, JsValue>;
    #[wasm_bindgen(method, catch, js_name = exec)]
    pub fn exec_n(this: &Sql, query: &str, a: f64) -> Result<Cursor, JsValue>;
    #[wasm_bindgen(method, catch, js_name = exec)]
    pub fn exec_s(this: &Sql, query: &str, a: &str) -> Result<Cursor, JsValue>;
    #[wasm_bindgen(method, catch, js_name = exec)]
    pub fn exec_nn(this: &Sql, query: &str, a: f64, b: f64) -> Result<Cursor, JsValue>;
    /// A number and a BLOB (an `ArrayBuffer`).
    #[wasm_bindgen(method, catch, js_name = exec)]
    pub fn exec_nb(
        this: &Sql,
        query: &str,
        a: f64,
        b: &js_sys::ArrayBuffer,
    ) -> Result<Cursor, JsValue>;
    #[wasm_bindgen(method, catch, js_name = exec)]
    pub fn exec_ss(this: &Sql, query: &str, a: &str, b: &str) -> Result<Cursor, JsValue>;
    #[wasm_bindgen(method, catch, js_name = exec)]
    pub fn exec_sn(this: &Sql, query: &str, a: &str, b: f64) -> Result<Cursor, JsValue>;
    #[wasm_bindgen(method, catch, js_name = exec)]
    pub fn exec_nnnss(
        this: &Sql,
        query: &str,
        a: f64,
        b: f64,
        c: f64,
        d: &str,
        e: &str,
    ) -> Result<Cursor, JsValue>;
    /// Three strings and a number; the third string may be `null`.
    #[wasm_bindgen(method, catch, js_name = exec)]
    pub fn exec_sssn(
        this: &Sql,
        query: &str,
        a: &str,
        b: &str,
        c: JsValue,
        d: f64,
    ) -> Result<Cursor, JsValue>;
    #[wasm_bindgen(method, catch, js_name = exec)]
    pub fn exec_nns(this: &Sql, query: &str, a: f64, b: f64, c: &str) -> Result<Cursor, JsValue>;
    #[wasm_bindgen(method, catch, js_name = exec)]
    #[allow(clippy::too_many_arguments)]
    pub fn exec_nsnnnss(
        this: &Sql,
        query: &str,
        a: f64,
        b: &str,
        c: f64,
        d: f64,
        e: f64,
        f: &str,
        g: &str,
    ) -> Result<Cursor, JsValue>;

    /// The cursor `exec` returns.
    pub type Cursor;

    /// All remaining rows as arrays of column values (`cursor.raw().toArray()`).
    #[wasm_bindgen(method, js_name = raw)]
    fn raw_iter(this: &Cursor) -> RawIter;

    /// `cursor.rowsWritten`.
    #[wasm_bindgen(method, getter, js_name = rowsWritten)]
    pub fn rows_written(this: &Cursor) -> f64;

    type RawIter;
    #[wasm_bindgen(method, js_name = toArray)]
    fn to_array(this: &RawIter) -> js_sys::Array;

    /// `ctx` of a Durable Object, for what workers-rs does not bind.
    pub type ObjectContext;

    /// `ctx.abort(reason)`: resets the object (every socket it holds is dropped, the next
    /// event builds it again); throws the reason to the caller.
    #[wasm_bindgen(method, catch)]
    pub fn abort(this: &ObjectContext, reason: &str) -> Result<(), JsValue>;

    /// A promise, seen through our own binding.
    pub type Thenable;

    /// `promise.then(f)`.
    #[wasm_bindgen(method, js_name = then)]
    pub fn then_call(this: &Thenable, f: &JsValue) -> js_sys::Promise;

    /// `promise.then(on_fulfilled, on_rejected)` (either may be `undefined`).
    #[wasm_bindgen(method, js_name = then)]
    pub fn then2(this: &Thenable, on_fulfilled: &JsValue, on_rejected: &JsValue)
        -> js_sys::Promise;

    /// `setTimeout(f, ms)`: the timer's handle.
    #[wasm_bindgen(js_name = setTimeout)]
    pub fn set_timeout(f: &JsValue, ms: f64) -> JsValue;

    /// `clearTimeout(handle)`.
    #[wasm_bindgen(js_name = clearTimeout)]
    pub fn clear_timeout(handle: &JsValue);

    /// A function, seen through our own binding.
    pub type Callback;

    /// `f.bind(null, a, b, c)`.
    #[wasm_bindgen(method, js_name = bind)]
    pub fn bind_str_str_value(
        this: &Callback,
        this_arg: &JsValue,
        a: &str,
        b: &str,
        c: &JsValue,
    ) -> JsValue;

    /// `f.bind(null, a, b, c, d)`.
    #[wasm_bindgen(method, js_name = bind)]
    pub fn bind_str_str_str_value(
        this: &Callback,
        this_arg: &JsValue,
        a: &str,
        b: &str,
        c: &str,
        d: &JsValue,
    ) -> JsValue;
    /// `f.bind(null, a)`.
    #[wasm_bindgen(method, js_name = bind)]
    pub fn bind_num(this: &Callback, this_arg: &JsValue, a: f64) -> JsValue;

    /// `f.bind(null, a, b)`.
    #[wasm_bindgen(method, js_name = bind)]
    pub fn bind_str_value(this: &Callback, this_arg: &JsValue, a: &str, b: &JsValue) -> JsValue;
}

impl Cursor {
    /// Every row as an array of column values.
    pub fn rows(&self) -> js_sys::Array {
        self.raw_iter().to_array()
    }
}

/// The message of a JavaScript exception, for logs.
pub fn error_text(e: &JsValue) -> String {
    if let Some(s) = e.as_string() {
        return s;
    }
    js_sys::Reflect::get(e, &JsValue::from_str("message"))
        .ok()
        .and_then(|m| m.as_string())
        .unwrap_or_else(|| format!("{e:?}"))
}
