//! Reading a request body without trusting its size.

use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{ReadableStreamDefaultReader, Request};

use crate::core::problem::Problem;

/// Refuses (413) a body whose declared `Content-Length` exceeds `limit`, before reading it.
pub fn check_length(content_length: Option<&str>, limit: usize) -> Result<(), Problem> {
    let Some(len) = content_length else {
        return Ok(());
    };
    let len: usize = len.trim().parse().map_err(|_| Problem::InvalidHeader {
        name: "Content-Length",
        detail: "not a number.".into(),
    })?;
    if len > limit {
        return Err(Problem::PayloadTooLarge { limit });
    }
    Ok(())
}

/// Reads the body, refusing (413) as soon as it is known to exceed `limit` bytes (the caller
/// has checked `Content-Length` already; this also bounds a body sent without one). At most
/// `limit` bytes plus one chunk are ever held.
pub async fn read(req: &Request, limit: usize) -> Result<Vec<u8>, Problem> {
    let too_large = Problem::PayloadTooLarge { limit };
    let Some(stream) = req.body() else {
        return Ok(Vec::new());
    };
    let reader: ReadableStreamDefaultReader = stream
        .get_reader()
        .dyn_into()
        .map_err(|_| Problem::Internal)?;
    let mut out = Vec::new();
    loop {
        let chunk = JsFuture::from(reader.read())
            .await
            .map_err(|_| Problem::InvalidBody("The request body could not be read.".into()))?;
        let done = js_sys::Reflect::get(&chunk, &JsValue::from_str("done"))
            .map(|d| d.is_truthy())
            .unwrap_or(true);
        if done {
            return Ok(out);
        }
        let value = js_sys::Reflect::get(&chunk, &JsValue::from_str("value"))
            .map_err(|_| Problem::Internal)?;
        let bytes = js_sys::Uint8Array::new(&value);
        if out.len() + bytes.length() as usize > limit {
            let _ = reader.cancel();
            return Err(too_large);
        }
        let start = out.len();
        out.resize(start + bytes.length() as usize, 0);
        bytes.copy_to(&mut out[start..]);
    }
}
