//! Idempotency keys: the syntax of a key and the rule for a key seen before.
//!
//! Every mutation carries a key. A client that sends `Idempotency-Key` (or `X-Request-ID`) can
//! retry the same change as often as it likes and it is applied once; a request without one gets
//! a fresh UUID from the edge *before* the first attempt to reach the counter, so the edge's own
//! retries are exactly-once too.
//!
//! The record of a key is a copy of its audit entry's facts in the counter's `idempotency_keys`
//! table, written in the change's transaction: it says what the request was (operation and
//! amount: its fingerprint), and the response is a pure rendering of the entry
//! ([`crate::core::audit::AuditEntry::response_json`]), so a replay returns the same bytes
//! whether or not the audit entry itself has moved to the archive. Keys are remembered for
//! `IDEMPOTENCY_RETENTION_SECONDS` (at least; 24 hours by default, as the contract promises);
//! past that a key is new again ([`crate::core::archive::Settings::key_cutoff`]).

use super::problem::Problem;

/// Longest key accepted, in bytes (all allowed characters are ASCII).
pub const MAX_KEY_LEN: usize = 255;

/// A validated idempotency key: 1–255 characters of `A-Z a-z 0-9 . _ : -`.
///
/// The alphabet needs no escaping in URLs, headers, JSON or log lines, which is why it is this
/// narrow. As JSON it is its text, validated again as it is read.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct RequestKey(String);

impl TryFrom<String> for RequestKey {
    type Error = Problem;

    fn try_from(s: String) -> Result<Self, Problem> {
        RequestKey::parse(&s, "Idempotency-Key")?;
        Ok(RequestKey(s))
    }
}

impl RequestKey {
    /// Validates `s` as a key; `header` names the header for the error message.
    pub fn parse(s: &str, header: &'static str) -> Result<Self, Problem> {
        if s.is_empty() || s.len() > MAX_KEY_LEN {
            return Err(Problem::InvalidHeader {
                name: header,
                detail: format!(
                    "must be 1 to {MAX_KEY_LEN} characters long; got {}.",
                    s.len()
                ),
            });
        }
        if let Some(c) = s.chars().find(|c| !is_key_char(*c)) {
            return Err(Problem::InvalidHeader {
                name: header,
                detail: format!("may contain only A-Z a-z 0-9 . _ : - ; found {:?}.", c),
            });
        }
        Ok(RequestKey(s.to_owned()))
    }

    /// A key the server made (a UUID); always valid.
    pub fn generated(uuid: String) -> Self {
        debug_assert!(uuid.chars().all(is_key_char));
        RequestKey(uuid)
    }

    /// The key text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')
}

/// Picks the client's key from the request headers: `Idempotency-Key`, or `X-Request-ID` when
/// that is absent. A present but invalid header is an error even if the other one is valid:
/// silently ignoring a malformed key would turn a retry into a second change.
pub fn client_key(
    idempotency_key: Option<&str>,
    x_request_id: Option<&str>,
) -> Result<Option<RequestKey>, Problem> {
    let request_id = x_request_id
        .map(|k| RequestKey::parse(k, "X-Request-ID"))
        .transpose()?;
    match idempotency_key {
        Some(k) => RequestKey::parse(k, "Idempotency-Key").map(Some),
        None => Ok(request_id),
    }
}

/// What the counter does with a key it has seen before.
#[derive(Debug, PartialEq, Eq)]
pub enum Seen<'a> {
    /// Same operation and operand: answer with the stored response, apply nothing.
    Replay(&'a str),
    /// Something else under the same key: refuse (422), apply nothing.
    Conflict,
}

/// Judges a request whose key is already stored with `stored_fingerprint`, whose first
/// response was `stored_response`.
pub fn judge<'a>(
    fingerprint: &str,
    stored_fingerprint: &str,
    stored_response: &'a str,
) -> Seen<'a> {
    if fingerprint == stored_fingerprint {
        Seen::Replay(stored_response)
    } else {
        Seen::Conflict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_alphabet() {
        for k in [
            "a",
            "A-z_0.9:x",
            &"k".repeat(255),
            "550e8400-e29b-41d4-a716-446655440000",
        ] {
            assert_eq!(RequestKey::parse(k, "Idempotency-Key").unwrap().as_str(), k);
        }
    }

    #[test]
    fn refuses_everything_else() {
        for k in [
            "",
            &"k".repeat(256),
            "a b",
            "a/b",
            "ä",
            "a\"b",
            "a\nb",
            "a%20",
            "a,b",
            "\u{0}",
        ] {
            let e = RequestKey::parse(k, "Idempotency-Key").unwrap_err();
            assert_eq!(e.status(), 400, "{k:?}");
        }
    }

    #[test]
    fn idempotency_key_wins_over_request_id_and_bad_ones_are_errors() {
        assert_eq!(client_key(None, None), Ok(None));
        assert_eq!(
            client_key(Some("a"), Some("b")).unwrap().unwrap().as_str(),
            "a"
        );
        assert_eq!(client_key(None, Some("b")).unwrap().unwrap().as_str(), "b");
        assert!(client_key(Some("bad key"), Some("b")).is_err());
        assert!(
            client_key(Some("a"), Some("")).is_err(),
            "a bad X-Request-ID is an error too"
        );
        let e = client_key(None, Some("bad key")).unwrap_err();
        assert!(e.detail().starts_with("X-Request-ID"));
    }

    #[test]
    fn judging_a_seen_key() {
        assert_eq!(
            judge("increment:1", "increment:1", "{}"),
            Seen::Replay("{}")
        );
        assert_eq!(judge("increment:2", "increment:1", "{}"), Seen::Conflict);
        assert_eq!(judge("decrement:1", "increment:1", "{}"), Seen::Conflict);
    }
}
