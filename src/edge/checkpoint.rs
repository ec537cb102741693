//! `GET /api/audit/checkpoint` and `GET /api/audit/key`: the ledger's checkpoint, signed here.
//!
//! The counter object only says what its Merkle tree is (size and root). The edge makes the
//! C2SP checkpoint of it and, when `AUDIT_SIGNING_KEY` is set, signs it as a note with the
//! platform's WebCrypto Ed25519 (`crypto.subtle`): the signing arithmetic is not in the Wasm
//! module, and signing never occupies the one counter object. The key is imported once per
//! isolate (as PKCS #8); its public half, exported as a JWK, gives the key ID, which must match
//! the one the secret names. The last signed note is kept per isolate: Ed25519 is
//! deterministic, so a tree size always gets the same note.

use std::cell::{OnceCell, RefCell};
use std::rc::Rc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{future_to_promise, JsFuture};
use web_sys::Response;
use worker::Env;

use crate::bindings::string_var;
use crate::core::ledger::checkpoint;
use crate::core::problem::Problem;
use crate::core::wire::ObjectCall;
use crate::error::{Context, Error, Result};
use crate::http;

use super::forward;

/// The origin line of checkpoints when no signing key is set.
pub const UNSIGNED_ORIGIN: &str = "number-acidizer/unsigned";

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = ["crypto", "subtle"], js_name = importKey, catch)]
    fn import_key(
        format: &str,
        data: &[u8],
        algorithm: &str,
        extractable: bool,
        usages: &js_sys::Array,
    ) -> Result<js_sys::Promise, JsValue>;

    #[wasm_bindgen(js_namespace = ["crypto", "subtle"], js_name = exportKey, catch)]
    fn export_key(format: &str, key: &JsValue) -> Result<js_sys::Promise, JsValue>;

    #[wasm_bindgen(js_namespace = ["crypto", "subtle"], js_name = sign, catch)]
    fn sign(algorithm: &str, key: &JsValue, data: &[u8]) -> Result<js_sys::Promise, JsValue>;
}

/// The signing key of this isolate.
enum Signer {
    /// `AUDIT_SIGNING_KEY` is not set: checkpoints are unsigned.
    None,
    Key {
        name: String,
        id: u32,
        public: [u8; 32],
        key: JsValue,
    },
    /// Set but unusable (the reason was logged, never the key).
    Invalid,
}

thread_local! {
    static SIGNER: OnceCell<Rc<Signer>> = const { OnceCell::new() };
    /// The last signed note: `(tree head, note)`.
    static NOTE: RefCell<Option<(String, String)>> = const { RefCell::new(None) };
}

async fn signer(env: &Env) -> Rc<Signer> {
    if let Some(s) = SIGNER.with(|c| c.get().cloned()) {
        return s;
    }
    let loaded = Rc::new(load(string_var(env, "AUDIT_SIGNING_KEY")).await);
    SIGNER.with(|c| c.get_or_init(|| loaded.clone()).clone())
}

async fn load(secret: Option<String>) -> Signer {
    let Some(text) = secret.filter(|t| !t.trim().is_empty()) else {
        return Signer::None;
    };
    match import(&text).await {
        Ok(s) => s,
        Err(why) => {
            why.log("invalid AUDIT_SIGNING_KEY; checkpoints are refused");
            Signer::Invalid
        }
    }
}

async fn import(text: &str) -> Result<Signer> {
    let (name, id, seed) =
        checkpoint::parse_private_key(text).map_err(|e| Error::Key(e.to_string()))?;
    let usages = js_sys::Array::of1(&JsValue::from_str("sign"));
    let key = async {
        let pkcs8 = checkpoint::pkcs8(&seed);
        JsFuture::from(import_key("pkcs8", &pkcs8, "Ed25519", true, &usages)?).await
    };
    let key = key.await.js("importing the signing key")?;
    let jwk = async { JsFuture::from(export_key("jwk", &key)?).await };
    let jwk = jwk.await.js("exporting the public key")?;
    let public: [u8; 32] = js_sys::Reflect::get(&jwk, &JsValue::from_str("x"))
        .ok()
        .and_then(|x| x.as_string())
        .and_then(|x| URL_SAFE_NO_PAD.decode(x).ok())
        .and_then(|x| x.try_into().ok())
        .ok_or_else(|| Error::Key("the platform did not give the public key".into()))?;
    if checkpoint::key_id(name, &public) != id {
        return Err(Error::Key("the key ID does not match the key".into()));
    }
    Ok(Signer::Key {
        name: name.to_owned(),
        id,
        public,
        key,
    })
}

/// `GET /api/audit/key`: a promise of the response (never rejected).
pub fn key(env: Env) -> js_sys::Promise {
    future_to_promise(async move {
        let response = match &*signer(&env).await {
            Signer::Key { name, public, .. } => http::respond(
                200,
                http::TEXT,
                &format!("{}\n", checkpoint::verifier_key_text(name, public)),
                &[],
            ),
            Signer::None => http::problem_response(&Problem::NotFound),
            Signer::Invalid => http::problem_response(&Problem::Internal),
        }?;
        Ok(response.into())
    })
}

/// `GET /api/audit/checkpoint`: a promise of the response (never rejected).
pub fn checkpoint(env: Env) -> js_sys::Promise {
    future_to_promise(async move {
        let response = match make(&env).await {
            Ok(r) => r,
            Err(p) => http::problem_response(&p)?,
        };
        Ok(response.into())
    })
}

async fn make(env: &Env) -> Result<Response, Problem> {
    let (note, signed, _) = note(env).await?;
    http::respond(
        200,
        http::TEXT,
        &note,
        &[(
            "audit-checkpoint-signed",
            if signed { "true" } else { "false" },
        )],
    )
    .map_err(|e| e.problem())
}

/// The checkpoint of the current tree: `(note, signed, tree size)`. While the object is still
/// hashing existing entries this is its 503.
pub async fn note(env: &Env) -> Result<(String, bool, u64), Problem> {
    let response = forward::answer(env, &ObjectCall::Checkpoint)
        .await
        .map_err(|e| e.problem())?;
    match response.status() {
        200 => {}
        503 => {
            return Err(Problem::Unavailable {
                retry_after_secs: 5,
            })
        }
        _ => return Err(Problem::Internal),
    }
    let head = match response.text() {
        Ok(p) => JsFuture::from(p).await.ok().and_then(|b| b.as_string()),
        Err(_) => None,
    }
    .filter(|h| h.ends_with('\n') && h.lines().count() == 2)
    .ok_or(Problem::Internal)?;
    let size = head
        .lines()
        .next()
        .and_then(|l| l.parse::<u64>().ok())
        .ok_or(Problem::Internal)?;
    let signer = signer(env).await;
    let (note, signed) = match &*signer {
        Signer::Invalid => return Err(Problem::Internal),
        Signer::None => (format!("{UNSIGNED_ORIGIN}\n{head}"), false),
        Signer::Key { name, id, key, .. } => (signed(name, *id, key, head).await?, true),
    };
    Ok((note, signed, size))
}

/// The signed note of the checkpoint `<name>\n<head>`, where `head` is the tree head's
/// `<size>\n<base64 root>\n` as the object wrote it.
async fn signed(name: &str, id: u32, key: &JsValue, head: String) -> Result<String, Problem> {
    let cached = NOTE.with(|n| {
        n.borrow()
            .as_ref()
            .filter(|(h, _)| *h == head)
            .map(|(_, note)| note.clone())
    });
    if let Some(note) = cached {
        return Ok(note);
    }
    let text = format!("{name}\n{head}");
    let sig = async { JsFuture::from(sign("Ed25519", key, text.as_bytes())?).await };
    let sig = sig
        .await
        .js("signing the checkpoint")
        .map_err(|e| e.logged("checkpoint signing failed"))?;
    let sig: [u8; 64] = js_sys::Uint8Array::new(&sig)
        .to_vec()
        .try_into()
        .map_err(|_| Problem::Internal)?;
    let note = checkpoint::signed_note(&text, name, id, &sig);
    NOTE.with(|n| *n.borrow_mut() = Some((head, note.clone())));
    Ok(note)
}
