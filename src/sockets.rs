//! The hibernating WebSockets of a Durable Object, which the counter and the relays both hold:
//! fanning a message out, counting sockets, and answering what a client sends or how it closes.
//! Accepting a socket and catching it up is each object's own (`counter/connect.rs`,
//! `relay/mod.rs`).
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
use crate::core::realtime;

#[wasm_bindgen]
extern "C" {
    /// A WebSocket seen through our own binding, so a message made once as a JavaScript string
    /// can be sent to every socket without converting it again for each.
    type FanoutSocket;

    #[wasm_bindgen(method, catch, js_name = send)]
    fn send_js(this: &FanoutSocket, message: &js_sys::JsString) -> Result<(), JsValue>;

    /// This side's end of a socket it opened to the counter (a relay's upstream, the edge's
    /// socket behind an event stream): accepted, then followed with event listeners.
    pub type Outgoing;

    #[wasm_bindgen(method, catch)]
    pub fn accept(this: &Outgoing) -> Result<(), JsValue>;

    #[wasm_bindgen(method, js_name = addEventListener)]
    pub fn listen(this: &Outgoing, kind: &str, f: &js_sys::Function);

    #[wasm_bindgen(method, catch)]
    pub fn close(this: &Outgoing, code: u16, reason: &str) -> Result<(), JsValue>;
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

/// Number of sockets `client` has open (each socket is tagged with its client).
pub fn count_for(state: &State, client: &str) -> usize {
    state
        .as_raw()
        .get_websockets_with_tag(client)
        .map(|v| v.len())
        .unwrap_or(0)
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

/// Sends one message to one socket; a socket that is closing or broken is not our problem.
pub fn send(ws: &WebSocket, message: &str) {
    let _ = ws.send_with_str(message);
}
