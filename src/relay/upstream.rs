//! The relay's upstream: its socket to the counter, what arrives on it, the gap fills and
//! backfills from the audit trail, and the reports of refusals it carries.

use std::rc::Rc;
use std::time::Duration;

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{spawn_local, JsFuture};
use web_sys::{Headers, Request, RequestInit, Response};
use worker::worker_sys::DurableObject;
use worker::Delay;

use super::{Inner, Link};
use crate::core::audit::{AuditEntry, AuditQuery};
use crate::core::relay::{
    backoff_ms, parse_audit_page, parse_upstream, report_message, CatchUp, Upstream,
};
use crate::core::wire::ObjectCall;
use crate::error::{Context, Error, Result};
use crate::log::log_event;
use crate::sockets::{self, Outgoing};

/// How long a relay gathers its refusals before it reports them to the counter (ms).
const REPORT_DELAY_MS: u64 = 1000;

impl Inner {
    /// Reports the refusals gathered so far to the counter on the upstream socket, unless it
    /// is down (they wait for the next report).
    pub(super) fn send_report(&self) {
        let refused = self.refused.get();
        if refused == 0 {
            return;
        }
        if let Link::Up(ws) = &*self.link.borrow() {
            if ws.send_with_str(&report_message(refused)).is_ok() {
                self.refused.set(0);
            }
        }
    }

    /// Sends a report [`REPORT_DELAY_MS`] from now if there is anything to report, so the
    /// counter hears of refusals at most once a second per relay.
    pub(super) fn schedule_report(this: &Rc<Inner>) {
        if this.refused.get() == 0 || this.reporting.replace(true) {
            return;
        }
        let this = this.clone();
        spawn_local(async move {
            Delay::from(Duration::from_millis(REPORT_DELAY_MS)).await;
            this.reporting.set(false);
            this.send_report();
        });
    }

    /// Closes the upstream socket (if up) and forgets it: nothing reconnects until a browser
    /// or a nearby read needs it. Returns whether it was up.
    pub(super) fn drop_upstream(&self, why: &str) -> bool {
        self.generation.set(self.generation.get().wrapping_add(1));
        self.synced.set(false);
        self.stale.set(true);
        self.pinged.set(false);
        let old = std::mem::replace(&mut *self.link.borrow_mut(), Link::Down);
        match old {
            Link::Up(ws) => {
                let _ = ws.close_with_code_and_reason(1000, why);
                true
            }
            _ => false,
        }
    }

    /// Starts connecting upstream unless connected or under way.
    pub(super) fn ensure_upstream(this: &Rc<Inner>) {
        if !matches!(*this.link.borrow(), Link::Down)
            || this.severed.get()
            || this.name.borrow().is_empty()
        {
            return;
        }
        *this.link.borrow_mut() = Link::Connecting;
        spawn_local(open_upstream(this.clone()));
    }

    fn counter(&self) -> Result<DurableObject> {
        crate::bindings::counter_stub(&self.env)
    }

    /// A message from the counter.
    fn on_upstream(this: &Rc<Inner>, text: &str) {
        this.heard.set(true);
        let out = match parse_upstream(text) {
            Some(Upstream::Snapshot(k)) => {
                this.feed.borrow_mut().on_snapshot(k);
                this.synced.set(true);
                this.stale.set(false);
                Vec::new()
            }
            Some(Upstream::Update(k, m)) => {
                if this.withhold.replace(false) {
                    log_event("info", "relay withheld an update", |w| {
                        w.string("relay", &this.name.borrow())
                            .uint("version", k.version);
                    });
                    return;
                }
                this.feed.borrow_mut().on_update(k, m)
            }
            None => return,
        };
        this.forward(&out);
        this.wake();
        if this.feed.borrow().gap().is_some() {
            Inner::start_fill(this);
        }
    }

    fn forward(&self, messages: &[String]) {
        for m in messages {
            sockets::broadcast(&self.state, m);
        }
        if self.streams.send(messages) > 0 {
            self.last_used.set(js_sys::Date::now());
        }
    }

    /// Resolves every waiting request's promise: the feed moved.
    fn wake(&self) {
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        for resolve in waiters {
            let _ = resolve.call0(&JsValue::NULL);
        }
    }

    /// Waits until the feed moves or `ms` pass.
    pub(super) async fn changed(this: &Rc<Inner>, ms: i32) {
        let promise = js_sys::Promise::new(&mut |resolve, _reject| {
            crate::ffi::set_timeout(&resolve, f64::from(ms));
            this.waiters.borrow_mut().push(resolve);
        });
        let _ = JsFuture::from(promise).await;
    }

    pub(super) fn upstream_lost(this: &Rc<Inner>, generation: u32, why: &str) {
        if generation != this.generation.get() || !matches!(*this.link.borrow(), Link::Up(_)) {
            return;
        }
        log_event("warn", "relay upstream lost", |w| {
            w.string("relay", &this.name.borrow()).string("why", why);
        });
        let old = std::mem::replace(&mut *this.link.borrow_mut(), Link::Connecting);
        this.synced.set(false);
        this.pinged.set(false);
        if let Link::Up(ws) = old {
            // Already closed, unless it went silent: then close it at the counter too.
            let _ = ws.close_with_code_and_reason(1000, why);
        }
        Inner::reconnect_later(this);
    }

    fn reconnect_later(this: &Rc<Inner>) {
        let attempt = this.attempt.get() + 1;
        this.attempt.set(attempt);
        let ms = backoff_ms(attempt, js_sys::Math::random());
        let this = this.clone();
        spawn_local(async move {
            Delay::from(Duration::from_millis(ms)).await;
            open_upstream(this).await;
        });
    }

    /// Fetches missing versions from the counter until the feed has no gap.
    fn start_fill(this: &Rc<Inner>) {
        if this.filling.replace(true) {
            return;
        }
        let this = this.clone();
        spawn_local(async move {
            let mut failures = 0;
            loop {
                let Some(q) = this.feed.borrow().gap() else {
                    break;
                };
                match audit(&this, q).await {
                    Ok(entries) if entries.is_empty() => break,
                    Ok(entries) => {
                        let out = this.feed.borrow_mut().fill(&entries);
                        log_event("info", "relay filled a gap", |w| {
                            w.string("relay", &this.name.borrow())
                                .uint("after", q.after)
                                .uint("forwarded", out.len() as u64);
                        });
                        this.forward(&out);
                        this.wake();
                        failures = 0;
                    }
                    Err(e) => {
                        failures += 1;
                        e.log("relay gap fetch failed");
                        let ms = backoff_ms(failures, js_sys::Math::random());
                        Delay::from(Duration::from_millis(ms)).await;
                    }
                }
            }
            this.filling.set(false);
        });
    }

    /// Asks for older updates for browsers resuming from before the relay's memory: one fetch
    /// at a time, for the oldest `since` waiting.
    pub(super) fn request_backfill(this: &Rc<Inner>, q: AuditQuery) {
        match this.backfill.get() {
            Some(w) if w.after <= q.after => {}
            _ => this.backfill.set(Some(q)),
        }
        if this.backfilling.replace(true) {
            return;
        }
        let this = this.clone();
        spawn_local(async move {
            while let Some(wanted) = this.backfill.take() {
                let q = match this.feed.borrow().catch_up(Some(wanted.after)) {
                    CatchUp::Backfill(q) => q,
                    _ => continue,
                };
                match audit(&this, q).await {
                    Ok(entries) => this.feed.borrow_mut().backfill(&entries),
                    Err(e) => {
                        e.log("relay backfill failed");
                        Delay::from(Duration::from_millis(200)).await;
                    }
                }
                this.wake();
            }
            this.backfilling.set(false);
        });
    }
}

/// Opens the upstream socket with `since` = the last forwarded version.
async fn open_upstream(this: Rc<Inner>) {
    if this.severed.get() {
        *this.link.borrow_mut() = Link::Down;
        return;
    }
    let generation = this.generation.get().wrapping_add(1);
    this.generation.set(generation);
    let since = this.feed.borrow().since();
    match dial(&this, since).await {
        Ok(ws) => {
            let listen = |kind: &str, why: &'static str| {
                let inner = this.clone();
                let f = Closure::<dyn FnMut(JsValue)>::new(move |_e: JsValue| {
                    Inner::upstream_lost(&inner, generation, why);
                });
                ws.listen(kind, f.as_ref().unchecked_ref());
                // One pair of listeners per connection, kept for the relay's life.
                f.forget();
            };
            listen("close", "closed");
            listen("error", "error");
            let inner = this.clone();
            let on_message = Closure::<dyn FnMut(JsValue)>::new(move |e: JsValue| {
                if generation != inner.generation.get() || inner.deaf.get() == Some(generation) {
                    return;
                }
                if let Some(text) = js_sys::Reflect::get(&e, &JsValue::from_str("data"))
                    .ok()
                    .and_then(|d| d.as_string())
                {
                    Inner::on_upstream(&inner, &text);
                }
            });
            ws.listen("message", on_message.as_ref().unchecked_ref());
            on_message.forget();
            this.attempt.set(0);
            this.synced.set(false);
            this.heard.set(false);
            this.pinged.set(false);
            log_event("info", "relay connected upstream", |w| {
                w.string("relay", &this.name.borrow())
                    .opt_uint("since", since);
            });
            *this.link.borrow_mut() = Link::Up(ws.unchecked_into());
            this.send_report();
        }
        Err(e) => {
            log_event("error", "relay upstream connect failed", |w| {
                w.string("relay", &this.name.borrow())
                    .string("error", &e.to_string());
            });
            Inner::reconnect_later(&this);
        }
    }
}

async fn dial(this: &Rc<Inner>, since: Option<u64>) -> Result<Outgoing> {
    let url = ObjectCall::Upstream {
        since,
        relay: this.name.borrow().clone(),
    }
    .encode();
    let stub = this.counter()?;
    let call = async {
        let headers = Headers::new()?;
        headers.set("upgrade", "websocket")?;
        let init = RequestInit::new();
        init.set_headers(&headers);
        let req = Request::new_with_str_and_init(&url, &init)?;
        JsFuture::from(stub.fetch_with_request(&req)?)
            .await?
            .dyn_into::<Response>()
    };
    let resp = call.await.js("calling the counter")?;
    let ws = js_sys::Reflect::get(&resp, &JsValue::from_str("webSocket"))
        .js("reading the counter's answer")?;
    if ws.is_null() || ws.is_undefined() {
        return Err(Error::Answer(format!(
            "the counter answered {} without a socket",
            resp.status()
        )));
    }
    let ws: Outgoing = ws.unchecked_into();
    ws.accept().js("accepting the upstream socket")?;
    Ok(ws)
}

/// One audit page from the counter.
async fn audit(this: &Rc<Inner>, q: AuditQuery) -> Result<Vec<AuditEntry>> {
    let text = text_of(this, &ObjectCall::Audit(q).encode()).await?;
    parse_audit_page(&text).map_err(Error::Answer)
}

/// The counter's answer to the call at `url`, which must be a 200 with a body.
pub(super) async fn text_of(this: &Rc<Inner>, url: &str) -> Result<String> {
    let stub = this.counter()?;
    let call = async {
        JsFuture::from(stub.fetch_with_str(url)?)
            .await?
            .dyn_into::<Response>()
    };
    let resp = call.await.js("calling the counter")?;
    if resp.status() != 200 {
        return Err(Error::Answer(format!("status {}", resp.status())));
    }
    let body = async { JsFuture::from(resp.text()?).await };
    body.await
        .js("reading the counter's answer")?
        .as_string()
        .ok_or_else(|| Error::Answer("not text".into()))
}
