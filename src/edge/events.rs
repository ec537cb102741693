//! `GET /api/events` without relays (`RELAY_SOCKETS_PER_RELAY = 0`): the edge follows the
//! counter for the browser and passes the stream on as Server-Sent Events.
//!
//! With relays on, a relay keeps the stream (`relay/events.rs`). Without them the edge opens a
//! socket to the counter exactly as a browser's own socket would reach it (same client, same
//! `since`), so the counter starts it the same way (snapshot or the missed updates), counts it
//! against `WS_CONNECTIONS_PER_CLIENT`, and refuses it the same way (its problem is the
//! answer). Each message becomes an event; a comment line goes out every
//! [`sse::HEARTBEAT_MS`]. When the counter's socket closes (a deploy, a restart) the stream
//! ends and the browser reconnects with `Last-Event-ID`; when the browser leaves, the next
//! heartbeat finds the stream errored and closes the socket.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{future_to_promise, spawn_local, JsFuture};
use web_sys::{Headers, Request, RequestInit, Response};
use worker::{Delay, Env};

use crate::core::sse;
use crate::core::wire::ObjectCall;
use crate::sockets::Outgoing;
use crate::streams::{self, Writer};

/// The stream for `call` (an [`ObjectCall::Connect`]); resolves to the stream's response or
/// the counter's refusal.
pub fn follow(env: Env, call: ObjectCall) -> js_sys::Promise {
    future_to_promise(async move {
        let headers = Headers::new()?;
        headers.set("upgrade", "websocket")?;
        headers.set("sec-websocket-version", "13")?;
        let init = RequestInit::new();
        init.set_headers(&headers);
        let upgrade = Request::new_with_str_and_init(&call.encode(), &init)?;
        let resp: Response = JsFuture::from(super::forward::connect(env, upgrade, call))
            .await?
            .dyn_into()?;
        let ws = js_sys::Reflect::get(&resp, &JsValue::from_str("webSocket"))?;
        if ws.is_null() || ws.is_undefined() {
            // A refusal (429, 503): the browser gets it as it is.
            return Ok(resp.into());
        }
        let ws: Rc<Outgoing> = Rc::new(ws.unchecked_into());
        ws.accept()?;
        let (writer, body) = streams::open()?;
        let writer: Rc<Writer> = Rc::new(writer);
        writer.write_text(&sse::preamble());
        let on_message = {
            let writer = writer.clone();
            Closure::<dyn FnMut(JsValue)>::new(move |e: JsValue| {
                let text = js_sys::Reflect::get(&e, &JsValue::from_str("data"))
                    .ok()
                    .and_then(|d| d.as_string());
                if let Some(event) = text.as_deref().and_then(sse::event) {
                    writer.write_text(&event);
                }
            })
        };
        ws.listen("message", on_message.as_ref().unchecked_ref());
        let ended = Rc::new(Cell::new(false));
        let on_end = {
            let (writer, ended) = (writer.clone(), ended.clone());
            Closure::<dyn FnMut(JsValue)>::new(move |_e: JsValue| {
                if !ended.replace(true) {
                    writer.close();
                }
            })
        };
        ws.listen("close", on_end.as_ref().unchecked_ref());
        ws.listen("error", on_end.as_ref().unchecked_ref());
        spawn_local(async move {
            // The listeners live as long as the stream.
            let _keep = (on_message, on_end);
            loop {
                Delay::from(Duration::from_millis(u64::from(sse::HEARTBEAT_MS))).await;
                if ended.get() {
                    return;
                }
                if writer.alive() != Some(true) {
                    ended.set(true);
                    let _ = ws.close(1000, "stream closed");
                    writer.abort("gone or too slow");
                    return;
                }
                writer.write_text(sse::HEARTBEAT);
            }
        });
        Ok(crate::http::event_stream(&body)?.into())
    })
}
