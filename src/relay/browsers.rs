//! The relay's browsers: admission against the relay's cap and the client's (with the marks),
//! and the start of a socket or event stream with its catch-up.

use std::rc::Rc;
use std::time::Duration;

use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::spawn_local;
use web_sys::{Response, WebSocket};
use worker::Delay;

use super::Inner;
use crate::core::problem::Problem;
use crate::core::relay::{
    deadline_tag, mark_key, socket_deadline, CatchUp, Known, Marks, FULL_HEADER, MARK_PREFIX,
    ROOM_HEADER,
};
use crate::error::{Context, Result};
use crate::http::{self, now_ms};
use crate::log::log_event;
use crate::sockets;

/// How long a browser's connect waits for the relay's state (its upstream connecting, or a
/// backfill) before it gets 503.
const READY_WAIT_MS: i64 = 5000;
/// How long a browser ahead of the relay waits for the relay to catch up before it is treated
/// as ahead of the counter (a snapshot).
const AHEAD_WAIT_MS: i64 = 1000;

impl Inner {
    /// Refuses a browser when this relay is full (503 with [`FULL_HEADER`]: the edge moves on
    /// to the client's relay on the next level) or its client is at its cap (429). `held`: the client's sockets on
    /// the relays the edge passed because they were full.
    ///
    /// A relay that is full marks the client (memory and storage), and passes a marked client
    /// on even when it has room again, with [`ROOM_HEADER`], unless `force`: the edge's walk
    /// then counts the client's sockets on every relay it could hold them on
    /// ([`relay::Walk`](crate::core::relay::Walk)). Marks must be loaded ([`Inner::load_marks`]).
    fn refuse(&self, client: &str, held: u32, force: bool) -> Result<Option<Response>> {
        let here = sockets::count_for(&self.state, client) + self.streams.count_for(client);
        let now = js_sys::Date::now();
        let full = self.socket_cap > 0 && self.browsers() >= self.socket_cap as usize;
        let marked = !force
            && self
                .marks
                .borrow()
                .as_ref()
                .is_some_and(|m| m.passes(client, now));
        if full || marked {
            if full {
                self.mark(client, now);
            }
            return Ok(Some(passed_on(here, !full)?));
        }
        if self.client_cap > 0 && held as usize + here >= self.client_cap as usize {
            self.refused.set(self.refused.get() + 1);
            return Ok(Some(http::problem_response(&Problem::TooManyRequests {
                retry_after_secs: 10,
                detail: format!(
                    "This client already has {} open connections, the most allowed; close one first.",
                    self.client_cap
                ),
            })?));
        }
        Ok(None)
    }

    /// The answer to [`Mode::Count`](crate::core::relay::Mode::Count): the client's sockets
    /// here and whether there is room, as a relay that passes the socket on says them; nothing
    /// is taken or marked (the edge's walk places the socket on an earlier relay once it has
    /// counted this one).
    pub(super) fn tally(&self, client: &str) -> Result<Response> {
        let here = sockets::count_for(&self.state, client) + self.streams.count_for(client);
        let full = self.socket_cap > 0 && self.browsers() >= self.socket_cap as usize;
        passed_on(here, !full)
    }

    /// Accepts a browser socket (or event stream) and sends its catch-up, in one synchronous
    /// step.
    fn accept(this: &Rc<Inner>, client: &str, kind: Kind, messages: &[String]) -> Result<JsValue> {
        if let Some(refusal) = this.refuse(client, kind.held, kind.force)? {
            return Ok(refusal.into());
        }
        this.last_used.set(js_sys::Date::now());
        // When it ends (the watchdog or the heartbeat closes it then).
        let until = socket_deadline(
            js_sys::Date::now(),
            this.socket_max_s,
            js_sys::Math::random(),
        );
        if kind.events {
            let response = this.streams.open(client, until, messages)?;
            this.arm_watchdog();
            Inner::start_heartbeat(this);
            return Ok(response.into());
        }
        let pair = worker::WebSocketPair::new().js("making a socket pair")?;
        let server: &WebSocket = pair.server.as_ref();
        this.state
            .as_raw()
            .accept_websocket_with_tags(
                server,
                vec![
                    JsValue::from_str(client),
                    JsValue::from_str(&deadline_tag(until)),
                ],
            )
            .js("accepting a socket")?;
        for m in messages {
            let _ = server.send_with_str(m);
        }
        this.arm_watchdog();
        let response =
            worker::Response::from_websocket(pair.client).js("answering with a socket")?;
        Ok(web_sys::Response::from(response).into())
    }

    /// Records that `client` was passed on while this relay was full (in storage too, so a
    /// reset or an eviction keeps it).
    fn mark(&self, client: &str, now: f64) {
        let write = self
            .marks
            .borrow_mut()
            .get_or_insert_with(Marks::default)
            .record(client, now);
        if write {
            let storage = self.state.storage();
            let key = mark_key(client);
            spawn_local(async move {
                if let Err(e) = storage.put_raw(&key, JsValue::from_f64(now)).await {
                    log_event("error", "relay mark write failed", |w| {
                        w.string("error", &e.to_string());
                    });
                }
            });
        }
    }

    /// Loads the marks from storage once per incarnation (forgetting expired ones).
    async fn load_marks(this: &Rc<Inner>) -> Result<()> {
        if this.marks.borrow().is_some() {
            return Ok(());
        }
        let storage = this.state.storage();
        let map = storage
            .list_with_options(worker::ListOptions::new().prefix(MARK_PREFIX))
            .await
            .storage("reading the marks")?;
        let mut rows = Vec::new();
        map.for_each(&mut |v, k| {
            if let (Some(k), Some(at)) = (k.as_string(), v.as_f64()) {
                if let Some(client) = k.strip_prefix(MARK_PREFIX) {
                    rows.push((client.to_owned(), at));
                }
            }
        });
        // Another request may have loaded them meanwhile (and added marks): keep that.
        if this.marks.borrow().is_some() {
            return Ok(());
        }
        let mut marks = Marks::from_stored(rows);
        let expired = marks.expire(js_sys::Date::now());
        *this.marks.borrow_mut() = Some(marks);
        if !expired.is_empty() {
            let keys: Vec<String> = expired.iter().map(|c| mark_key(c)).collect();
            let _ = storage.delete_multiple(keys).await;
        }
        Ok(())
    }

    /// Every [`sse::HEARTBEAT_MS`](crate::core::sse::HEARTBEAT_MS) while streams are open: a
    /// comment line to each (which also finds the streams whose reader left), and the end of
    /// the streams whose life is over, as for sockets.
    fn start_heartbeat(this: &Rc<Inner>) {
        if this.beating.replace(true) {
            return;
        }
        let this = this.clone();
        spawn_local(async move {
            while !this.streams.is_empty() {
                let ms = u64::from(crate::core::sse::HEARTBEAT_MS);
                Delay::from(Duration::from_millis(ms)).await;
                let ended = this.streams.close_expired(js_sys::Date::now());
                let gone = this.streams.heartbeat();
                if ended + gone > 0 {
                    this.last_used.set(js_sys::Date::now());
                }
            }
            this.beating.set(false);
        });
    }
}

/// How a browser connects: `held` and `force` as in
/// [`RelayCall::Connect`](crate::core::relay::RelayCall::Connect); `events`: an event stream
/// instead of a socket.
#[derive(Clone, Copy)]
pub(super) struct Kind {
    pub(super) held: u32,
    pub(super) force: bool,
    pub(super) events: bool,
}

/// A browser's socket: waits until the relay can start it exactly as the counter would,
/// then accepts it and sends the catch-up in one step.
pub(super) async fn connect(
    this: Rc<Inner>,
    client: String,
    since: Option<u64>,
    kind: Kind,
) -> Result<JsValue> {
    let answer = start_browser(&this, client, since, kind).await;
    // A refusal is reported to the counter (its metrics count every socket refused).
    Inner::schedule_report(&this);
    answer
}

async fn start_browser(
    this: &Rc<Inner>,
    client: String,
    since: Option<u64>,
    kind: Kind,
) -> Result<JsValue> {
    Inner::load_marks(this).await?;
    if let Some(refusal) = this.refuse(&client, kind.held, kind.force)? {
        return Ok(refusal.into());
    }
    Inner::ensure_upstream(this);
    let started = now_ms();
    loop {
        let waited = now_ms() - started;
        let step = if this.stale.get() {
            CatchUp::NotReady
        } else {
            this.feed.borrow().catch_up(since)
        };
        match step {
            CatchUp::Send(messages) => return Inner::accept(this, &client, kind, &messages),
            CatchUp::Ahead if waited >= AHEAD_WAIT_MS => {
                let snapshot = this.feed.borrow().known().map(Known::snapshot_message);
                let messages: Vec<String> = snapshot.into_iter().collect();
                return Inner::accept(this, &client, kind, &messages);
            }
            CatchUp::Backfill(q) => Inner::request_backfill(this, q),
            CatchUp::NotReady => Inner::ensure_upstream(this),
            CatchUp::Ahead => {}
        }
        if waited >= READY_WAIT_MS {
            return http::problem_response(&Problem::Unavailable {
                retry_after_secs: 2,
            })
            .map(Into::into);
        }
        Inner::changed(this, 250).await;
    }
}

/// A relay's 503 that passes a socket on: [`FULL_HEADER`] with the client's sockets here, and
/// [`ROOM_HEADER`] when it has room.
fn passed_on(here: usize, room: bool) -> Result<Response> {
    let r = http::problem_response(&Problem::Unavailable {
        retry_after_secs: 5,
    })?;
    let set = || {
        r.headers().set(FULL_HEADER, &here.to_string())?;
        if room {
            r.headers().set(ROOM_HEADER, "1")?;
        }
        Ok::<_, JsValue>(())
    };
    set().js("marking a relay's answer")?;
    Ok(r)
}
