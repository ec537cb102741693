//! Sockets to the counter: a browser's or a relay's upstream, accepted for hibernation and
//! caught up from the audit trail; and which of the open sockets are relays.

use wasm_bindgen::prelude::*;
use web_sys::{Response, WebSocket};
use worker::durable::State;

use crate::core::problem::Problem;
use crate::core::realtime::{self, Start};
use crate::core::relay::UPSTREAM_TAG;
use crate::core::state::Snapshot;
use crate::error::{Context, Result};
use crate::http;
use crate::sockets::{self, send};

use super::store::Store;
use super::Counter;

impl Counter {
    pub(super) fn connect(
        &self,
        current: &Snapshot,
        since: Option<u64>,
        client: &str,
    ) -> Result<Response> {
        if self.socket_cap > 0
            && sockets::count_for(&self.state, client) >= self.socket_cap as usize
        {
            self.count(|t| t.rate_limited_sockets += 1);
            return http::problem_response(&Problem::TooManyRequests {
                retry_after_secs: 10,
                detail: format!(
                    "This client already has {} open connections, the most allowed; close one first.",
                    self.socket_cap
                ),
            });
        }
        let pair = worker::WebSocketPair::new().js("making a socket pair")?;
        let server: &web_sys::WebSocket = pair.server.as_ref();
        if let Err(e) = accept(&self.state, &self.store, server, client, since, current) {
            return http::problem_response(&e.logged("socket accept failed"));
        }
        let response =
            worker::Response::from_websocket(pair.client).js("answering with a socket")?;
        Ok(response.into())
    }

    /// A relay's upstream socket: a socket like any other, tagged as a relay (and with the
    /// relay's name), so the broadcast sends it every update once and no client cap counts it.
    /// Unlike a browser's, a resumed one also gets the snapshot after its replay.
    pub(super) fn upstream(
        &self,
        current: &Snapshot,
        since: Option<u64>,
        relay: &str,
    ) -> Result<Response> {
        let pair = worker::WebSocketPair::new().js("making a socket pair")?;
        let server: &web_sys::WebSocket = pair.server.as_ref();
        let tags = [UPSTREAM_TAG, &format!("{UPSTREAM_TAG}:{relay}")];
        if let Err(e) = accept_tagged(&self.state, &self.store, server, &tags, since, current) {
            return http::problem_response(&e.logged("relay accept failed"));
        }
        // A resume ends with the counter's state, so the relay knows it is caught up (its
        // nearby reads wait for that); a fresh upstream already started with it.
        if since.is_some() {
            let _ = server.send_with_str(&current.snapshot_message());
        }
        let response =
            worker::Response::from_websocket(pair.client).js("answering with a socket")?;
        Ok(response.into())
    }
}

/// Accepts the server end of a new socket for `client` and sends it its start: the snapshot,
/// or the missed changes after `since` from the audit trail. Runs synchronously, between two
/// mutations, so the live updates that follow continue exactly where this left off.
pub fn accept(
    state: &State,
    store: &Store,
    server: &WebSocket,
    client: &str,
    since: Option<u64>,
    current: &Snapshot,
) -> Result<()> {
    accept_tagged(state, store, server, &[client], since, current)
}

/// [`accept`] with the socket's tags given: a relay's upstream socket is tagged as a relay.
pub fn accept_tagged(
    state: &State,
    store: &Store,
    server: &WebSocket,
    tags: &[&str],
    since: Option<u64>,
    current: &Snapshot,
) -> Result<()> {
    let tags = tags.iter().map(|t| JsValue::from_str(t)).collect();
    state
        .as_raw()
        .accept_websocket_with_tags(server, tags)
        .js("accepting a socket")?;
    match realtime::start(since, current.version) {
        Start::Snapshot => send(server, &current.snapshot_message()),
        Start::Replay { after } => {
            let missed = store.audit(after, realtime::MAX_REPLAY)?;
            // Entries after `since` that moved to the archive: too old to replay from here,
            // so a snapshot, as for a client too far behind.
            if after < current.version && missed.first().map(|e| e.version) != Some(after + 1) {
                send(server, &current.snapshot_message());
                return Ok(());
            }
            for entry in &missed {
                send(server, &entry.update_message());
            }
        }
    }
    Ok(())
}

/// The names of the relays whose upstream sockets are open (each once).
pub fn relay_names(state: &State) -> Vec<String> {
    let raw = state.as_raw();
    let prefix = format!("{}:", crate::core::relay::UPSTREAM_TAG);
    let mut names: Vec<String> = raw
        .get_websockets_with_tag(crate::core::relay::UPSTREAM_TAG)
        .unwrap_or_default()
        .iter()
        .filter_map(|ws| raw.get_tags(ws).ok())
        .flat_map(|tags| tags.into_iter())
        .filter_map(|t| t.strip_prefix(&prefix).map(str::to_owned))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Whether `ws` is a relay's upstream socket (tagged [`UPSTREAM_TAG`] when it was accepted;
/// no browser's client id can be that tag).
///
/// [`UPSTREAM_TAG`]: crate::core::relay::UPSTREAM_TAG
pub fn is_relay(state: &State, ws: &WebSocket) -> bool {
    state
        .as_raw()
        .get_tags(ws)
        .is_ok_and(|tags| tags.iter().any(|t| t == crate::core::relay::UPSTREAM_TAG))
}
