//! Reads of history (audit pages, proofs, past values) with this location's cache and the
//! archive in R2.

use worker::Env;

use crate::core::wire::ObjectCall;
use crate::http;

use super::finish::{finish, Facts};
use super::{archive, cache, forward};

/// Whether `call` reads history (an audit page, a proof, a past value): answered by [`read`],
/// and with the export under the per-client limit of history reads.
pub(super) fn is_read(call: &ObjectCall) -> bool {
    matches!(
        call,
        ObjectCall::Audit(_)
            | ObjectCall::Inclusion(_)
            | ObjectCall::Consistency(_)
            | ObjectCall::ValueAsOf(_)
    )
}

/// A read of history (an audit page, a proof, a past value): from this location's cache when
/// the answer never changes ([`cache`]), else from the object, completed from the archive when
/// the object points there ([`archive::resolve`]).
pub(super) fn read(
    env: Env,
    call: ObjectCall,
    facts: Facts,
    origin: Option<String>,
    if_none_match: Option<String>,
) -> js_sys::Promise {
    let arrival = facts.arrival();
    let start = facts.start();
    wasm_bindgen_futures::future_to_promise(async move {
        // An answer that never changes may be in this location's cache: an archived page is
        // looked up there, and kept only once it came from the archive.
        let always = crate::core::cache::immutable_key(&call);
        let lookup = always
            .clone()
            .or_else(|| crate::core::cache::archived_page_key(&call));
        let outcome = async {
            if let Some(key) = &lookup {
                if let Some(hit) = cache::lookup(key, if_none_match.as_deref()).await {
                    return Ok(hit);
                }
            }
            let response = forward::answer(&env, &call)
                .await
                .map_err(|e| e.problem())?;
            let archived = archive::is_pointer(&response);
            let answer = archive::resolve(&env, &call, response).await?;
            let keep = always.as_ref().or(lookup.as_ref().filter(|_| archived));
            Ok(match keep {
                Some(key) => cache::keep(key, answer, if_none_match.as_deref()).await,
                None => answer,
            })
        }
        .await;
        let (response, problem) = match outcome {
            Ok(r) => (r, None),
            Err(p) => (http::problem_response(&p)?, Some(p.slug())),
        };
        let finished = finish(
            arrival.as_deref(),
            start.as_deref(),
            origin.as_deref(),
            response,
            problem,
        )?;
        Ok(finished.into())
    })
}
