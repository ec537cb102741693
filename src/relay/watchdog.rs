//! The relay's watchdog: its alarm, which reconnects a lost or silent upstream, ends the
//! sockets whose life is over, and lets an idle relay go.

use std::rc::Rc;

use wasm_bindgen::prelude::*;

use super::{Inner, Link, Relay, CLOSE_RESTART};
use crate::core::relay::parse_deadline_tag;
use crate::log::log_event;

#[wasm_bindgen]
impl Relay {
    /// The watchdog, every `RELAY_WATCHDOG_SECONDS` while the relay is in use:
    /// - a relay rebuilt after losing its memory has closed its orphaned sockets (1012) in
    ///   the constructor, which this alarm is the occasion for;
    /// - an upstream that is down with nothing reconnecting is connected;
    /// - an upstream that stayed silent since the last check's `ping` (a half-open
    ///   connection: the counter answers `ping` even while hibernating) is dropped and
    ///   resumed with `since`;
    /// - a relay with no browser and no nearby read for `RELAY_IDLE_SECONDS` closes its
    ///   upstream and stops the watchdog, so the runtime can evict it.
    pub fn alarm(&self) {
        let inner = &self.inner;
        inner.watchdog.set(false);
        // Rebuilt by this alarm: the constructor closed every socket, and the relay does not
        // know its name (the platform does not tell it) until a call names it. Nothing to
        // watch: let the runtime evict it.
        if inner.name.borrow().is_empty() {
            log_event(
                "info",
                "relay rebuilt by its watchdog; nothing to watch",
                |_| {},
            );
            return;
        }
        let browsers = inner.browsers();
        let idle = js_sys::Date::now() - inner.last_used.get();
        if browsers == 0 && idle >= inner.idle_ms {
            if !matches!(*inner.link.borrow(), Link::Connecting) {
                inner.send_report();
                let was_up = inner.drop_upstream("relay idle");
                log_event("info", "relay idle; upstream closed", |w| {
                    w.string("relay", &inner.name.borrow())
                        .bool("was_up", was_up)
                        .uint("idle_ms", idle as u64);
                });
                return;
            }
        } else if !inner.severed.get() {
            inner.close_expired();
            Inner::check_upstream(inner);
        }
        inner.arm_watchdog();
    }
}

impl Inner {
    pub(super) fn arm_watchdog(&self) {
        if self.watchdog.replace(true) {
            return;
        }
        self.set_alarm(self.watchdog_ms);
    }

    pub(super) fn set_alarm(&self, in_ms: f64) {
        if let Ok(storage) = self.state.as_raw().storage() {
            let at = js_sys::Date::new(&JsValue::from_f64(js_sys::Date::now() + in_ms));
            let _ = storage.set_alarm(at, js_sys::Object::new());
        }
    }

    /// Closes the browser sockets whose life ended
    /// ([`relay::socket_deadline`](crate::core::relay::socket_deadline)) with 1012: each
    /// browser reconnects with `since` and misses nothing. Every socket's life ends before a
    /// mark that placed it could expire
    /// ([`relay::MAX_SOCKET_MAX_SECONDS`](crate::core::relay::MAX_SOCKET_MAX_SECONDS)).
    fn close_expired(&self) {
        let raw = self.state.as_raw();
        let now = js_sys::Date::now();
        let mut closed = 0u64;
        for ws in raw.get_websockets().unwrap_or_default() {
            let ended = raw.get_tags(&ws).is_ok_and(|tags| {
                tags.iter()
                    .filter_map(|t| parse_deadline_tag(t))
                    .any(|until| now >= until)
            });
            if ended
                && ws
                    .close_with_code_and_reason(CLOSE_RESTART, "socket lifetime reached; reconnect")
                    .is_ok()
            {
                closed += 1;
            }
        }
        if closed > 0 {
            self.last_used.set(now);
            log_event(
                "info",
                "relay closed sockets at the end of their life",
                |w| {
                    w.string("relay", &self.name.borrow())
                        .uint("closed", closed);
                },
            );
        }
    }

    /// The watchdog's look at the upstream (see [`Relay::alarm`]).
    fn check_upstream(this: &Rc<Inner>) {
        let ping = match &*this.link.borrow() {
            Link::Down => None,
            Link::Connecting => return,
            Link::Up(ws) => Some(ws.clone()),
        };
        let Some(ws) = ping else {
            log_event("warn", "relay watchdog found no upstream", |w| {
                w.string("relay", &this.name.borrow());
            });
            Inner::ensure_upstream(this);
            return;
        };
        if this.pinged.get() && !this.heard.get() {
            Inner::upstream_lost(this, this.generation.get(), "silent");
            return;
        }
        this.heard.set(false);
        this.pinged.set(true);
        let _ = ws.send_with_str("ping");
    }
}
