//! Answers that never change, and how the edge keeps them.
//!
//! Most of the API is about the present and is never cached (`Cache-Control: no-store`). A few
//! answers are about a fixed past, and the same request gets the same bytes forever:
//!
//! - an inclusion proof for an explicit `tree_size`, and a consistency proof between two
//!   explicit sizes: a tree of a given size never changes (the log is append-only), and a size
//!   beyond the tree is refused (never a 200, so never kept);
//! - a past value by version (`as_of_version`) without a proof: the entry of a committed
//!   version never changes. With `proof=true` the proof is in the *current* tree, which grows,
//!   and by time (`as_of`) a later change could still carry an earlier instant's clock reading
//!   from another machine, so neither is kept;
//! - an audit page read from an archived segment: archived entries never change and never
//!   become hot again, so the page the edge renders from the segment is the same forever. A
//!   page of hot entries is not kept (the last page grows, and a page is kept only once the
//!   edge knows it came from the archive).
//!
//! Only 200 answers are kept, under a key made from the call's canonical form (the edge → object
//! URL, so two spellings of one query share an entry and a mutable call has no key at all), with
//! `Cache-Control: public, max-age=31536000, immutable` and a strong `ETag` of the body's
//! SHA-256, so browsers and the CDN keep them too, and a cached answer is byte for byte the
//! fresh one.

use sha2::{Digest, Sha256};

use super::ledger::{AsOf, AsOfQuery, ConsistencyQuery, InclusionQuery};
use super::wire::ObjectCall;

/// `Cache-Control` of an answer that never changes.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// The origin of cache keys: never a real host, so no fetch can be answered from them.
const KEY_ORIGIN: &str = "https://cache.number-acidizer.invalid";

/// The cache key of `call`'s answer if that answer can never change, `None` otherwise.
pub fn immutable_key(call: &ObjectCall) -> Option<String> {
    let fixed = match call {
        ObjectCall::Inclusion(InclusionQuery { tree_size, .. }) => tree_size.is_some(),
        ObjectCall::Consistency(ConsistencyQuery { to, .. }) => to.is_some(),
        ObjectCall::ValueAsOf(AsOfQuery {
            at: AsOf::Version(_),
            proof: false,
        }) => true,
        _ => false,
    };
    let url = call.encode();
    let path = url.strip_prefix(super::wire::ORIGIN)?;
    fixed.then(|| format!("{KEY_ORIGIN}/answer{path}"))
}

/// The cache key of an audit page, kept only when it was read from the archive.
pub fn archived_page_key(call: &ObjectCall) -> Option<String> {
    let ObjectCall::Audit(_) = call else {
        return None;
    };
    let url = call.encode();
    let path = url.strip_prefix(super::wire::ORIGIN)?;
    Some(format!("{KEY_ORIGIN}/answer{path}"))
}

/// A strong `ETag` for `body`: its SHA-256, quoted.
pub fn etag(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    let mut out = String::with_capacity(66);
    out.push('"');
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out.push('"');
    out
}

/// Whether an `If-None-Match` header matches `etag` (a list, `*`, or weak forms of it).
pub fn not_modified(if_none_match: Option<&str>, etag: &str) -> bool {
    let Some(header) = if_none_match else {
        return false;
    };
    header
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag == etag || tag.strip_prefix("W/") == Some(etag))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::audit::AuditQuery;

    fn key(q: &str, call: fn(&str) -> ObjectCall) -> Option<String> {
        immutable_key(&call(q))
    }

    #[test]
    fn only_answers_about_a_fixed_past_have_a_key() {
        let incl = |q: &str| ObjectCall::Inclusion(InclusionQuery::parse(q).unwrap());
        let cons = |q: &str| ObjectCall::Consistency(ConsistencyQuery::parse(q).unwrap());
        let as_of = |q: &str| ObjectCall::ValueAsOf(AsOfQuery::parse(q).unwrap());
        assert!(key("version=3&tree_size=10", incl).is_some());
        assert!(key("version=3", incl).is_none(), "the current tree grows");
        assert!(key("from=3&to=10", cons).is_some());
        assert!(key("from=3", cons).is_none());
        assert!(key("as_of_version=3", as_of).is_some());
        assert!(key("as_of_version=3&proof=true", as_of).is_none());
        assert!(key("as_of=2026-11-29T20:00:00Z", as_of).is_none());
        let page = ObjectCall::Audit(AuditQuery::parse("after=0&limit=1").unwrap());
        assert!(archived_page_key(&page).is_some());
        assert!(archived_page_key(&ObjectCall::Value).is_none());
        for mutable in [
            ObjectCall::Value,
            ObjectCall::Health,
            ObjectCall::Checkpoint,
            ObjectCall::Audit(AuditQuery::parse("after=0&limit=1").unwrap()),
        ] {
            assert_eq!(immutable_key(&mutable), None, "{mutable:?}");
        }
    }

    #[test]
    fn one_query_spelled_two_ways_shares_a_key_and_two_queries_do_not() {
        let incl = |q: &str| ObjectCall::Inclusion(InclusionQuery::parse(q).unwrap());
        assert_eq!(
            key("version=3&tree_size=10", incl),
            key("tree_size=10&version=3", incl)
        );
        assert_ne!(
            key("version=3&tree_size=10", incl),
            key("version=3&tree_size=11", incl)
        );
        let k = key("version=3&tree_size=10", incl).unwrap();
        assert!(k.starts_with(KEY_ORIGIN), "{k}");
    }

    #[test]
    fn etags_and_if_none_match() {
        let e = etag(b"{}");
        assert_eq!(e.len(), 66);
        assert_ne!(e, etag(b"{ }"));
        assert!(not_modified(Some(&e), &e));
        assert!(not_modified(Some(&format!("\"x\", W/{e}")), &e));
        assert!(not_modified(Some("*"), &e));
        assert!(!not_modified(Some("\"x\""), &e));
        assert!(!not_modified(None, &e));
    }
}
