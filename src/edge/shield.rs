//! The isolate's shield ([`crate::core::shield`] holds its rules): a client the counter
//! refused is refused here, before any call, until the counter's `Retry-After` passed; a client
//! a relay refused a socket for its cap is held off briefly; history reads are limited per
//! client. One per isolate: what one isolate learned, its requests use.

use std::cell::RefCell;

use crate::core::problem::Problem;
use crate::core::shield::Shield;
use crate::http::now_ms;

thread_local! {
    static SHIELD: RefCell<Option<Shield>> = const { RefCell::new(None) };
}

/// The isolate's shield, made on first use with the settings every request loads first.
fn with<R>(f: impl FnOnce(&mut Shield) -> R) -> R {
    SHIELD.with(|s| {
        let mut s = s.borrow_mut();
        f(s.get_or_insert_with(|| {
            Shield::new(super::config::Config::loaded().map_or(0, |c| c.history_reads))
        }))
    })
}

/// The same refusal the counter gives a client over its rate, with the time that is left.
fn refusal(retry_after_secs: u32) -> Problem {
    Problem::TooManyRequests {
        retry_after_secs,
        detail: format!(
            "This client made more changes than allowed in 10 seconds; nothing was changed. Retry after {retry_after_secs} s."
        ),
    }
}

/// Refuses `client`'s change with `key` if the counter refused the client lately.
pub fn check_change(client: &str, key: &str) -> Result<(), Problem> {
    with(|s| s.check_change(client, key, now_ms())).map_err(refusal)
}

/// Learns from the counter's answer to a change: `tag` is [`tag`]'s, `status` and
/// `retry_after` the answer's.
pub fn learn_change(tag: &str, status: u16, retry_after: Option<&str>) {
    let Some((client, key)) = tag.split_once(' ') else {
        return;
    };
    let secs = retry_after.and_then(|s| s.trim().parse::<u32>().ok());
    with(|s| s.learn_change(client, key, status, secs, now_ms()));
}

/// What [`learn_change`] needs of a change, as one string (client ids and keys hold no space).
pub fn tag(client: &str, key: &str) -> String {
    format!("{client} {key}")
}

/// Counts one history read of `client` (audit pages, export, proofs, past values).
pub fn history_read(client: &str) -> Result<(), Problem> {
    with(|s| s.history_read(client, now_ms())).map_err(|retry_after_secs| {
        Problem::TooManyRequests {
            retry_after_secs,
            detail: format!(
                "This client read more history than allowed in 10 seconds. Retry after {retry_after_secs} s."
            ),
        }
    })
}

/// Refuses `client`'s socket or event stream if a relay refused it one for its cap moments ago.
pub fn check_socket(client: &str) -> Result<(), Problem> {
    with(|s| s.check_socket(client, now_ms())).map_err(|retry_after_secs| {
        Problem::TooManyRequests {
            retry_after_secs,
            detail: "This client already has the most open connections allowed; close one first."
                .into(),
        }
    })
}

/// A relay (or the counter) refused `client`'s socket for its cap.
pub fn learn_socket_refused(client: &str) {
    with(|s| s.learn_socket_refused(client, now_ms()));
}
