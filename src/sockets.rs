//! The counter's WebSockets: accepting them for hibernation, catching a client up, fanning out.
//!
//! Sockets are accepted with the hibernation API (`ctx.acceptWebSocket`), never `accept()`:
//! the runtime then owns them, keeps them open while the object is evicted from memory, and
//! wakes the object only when a client sends something other than `ping` (which the runtime
//! answers itself). So the object keeps nothing about sockets in memory: the list comes from
//! `getWebSockets()` on every broadcast and each socket's client id is its tag.

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::WebSocket;
use worker::durable::State;

use crate::core::limits::MessageBudget;
use crate::core::realtime::{self, Start};
use crate::core::state::Snapshot;

use super::store::Store;

#[wasm_bindgen]
extern "C" {
    /// A WebSocket seen through our own binding, so a message made once as a JavaScript string
    /// can be sent to every socket without converting it again for each.
    type FanoutSocket;

    #[wasm_bindgen(method, catch, js_name = send)]
    fn send_js(this: &FanoutSocket, message: &js_sys::JsString) -> Result<(), JsValue>;
}

/// Sends `message` to every connected socket; returns how many took it. A socket that is
/// closing or broken throws on `send`; that is its problem, never the broadcast's.
pub fn broadcast(state: &State, message: &str) -> usize {
    let sockets = state.as_raw().get_websockets().unwrap_or_default();
    if sockets.is_empty() {
        return 0;
    }
    let message = js_sys::JsString::from(message);
    sockets
        .iter()
        .filter(|ws| ws.unchecked_ref::<FanoutSocket>().send_js(&message).is_ok())
        .count()
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
) -> Result<(), String> {
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
) -> Result<(), String> {
    let tags = tags.iter().map(|t| JsValue::from_str(t)).collect();
    state
        .as_raw()
        .accept_websocket_with_tags(server, tags)
        .map_err(|e| crate::ffi::error_text(&e))?;
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

/// Number of sockets `client` has open (each socket is tagged with its client).
pub fn count_for(state: &State, client: &str) -> usize {
    state
        .as_raw()
        .get_websockets_with_tag(client)
        .map(|v| v.len())
        .unwrap_or(0)
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

/// Number of open sockets.
pub fn count(state: &State) -> usize {
    state
        .as_raw()
        .get_websockets()
        .map(|v| v.len())
        .unwrap_or(0)
}

/// Handles a message from a client: over the size limit closes the socket with 1009, over the
/// message budget with 1008, anything else gets an `error` message back. Nothing a client
/// sends can touch the counter or another socket.
pub fn on_message(ws: &WebSocket, len: usize, binary: bool, now_ms: i64) {
    // The budget lives in the socket's attachment, so it survives hibernation with it.
    let socket = worker::WebSocket::from(ws.clone());
    let mut budget: MessageBudget = socket
        .deserialize_attachment()
        .ok()
        .flatten()
        .unwrap_or_default();
    let within = budget.spend(now_ms);
    let _ = socket.serialize_attachment(budget);
    if !within {
        let _ = ws.close_with_code_and_reason(realtime::CLOSE_POLICY, "too many messages");
        return;
    }
    match realtime::incoming(len, binary) {
        realtime::Incoming::TooBig => {
            let _ = ws.close_with_code_and_reason(realtime::CLOSE_TOO_BIG, "message too big");
        }
        realtime::Incoming::Unsupported(reply) => send(ws, &reply),
    }
}

/// Completes a close the client started, echoing its code where that is a code a server may
/// send, and 1000 otherwise (1005/1006 are reserved, and codes outside 1000–1003, 1007–1014
/// and 3000–4999 are not closing codes at all). If the runtime still refuses, a plain 1000
/// close ends the connection: a close left unanswered would hold the socket open forever.
pub fn on_close(ws: &WebSocket, code: u16, reason: &str) {
    let code = match code {
        1000..=1003 | 1007..=1014 | 3000..=4999 => code,
        _ => 1000,
    };
    let reason: String = reason.chars().take(60).collect();
    if ws.close_with_code_and_reason(code, &reason).is_err() {
        let _ = ws.close_with_code(1000);
    }
}

fn send(ws: &WebSocket, message: &str) {
    let _ = ws.send_with_str(message);
}
