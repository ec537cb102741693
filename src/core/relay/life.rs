//! A browser socket's life on a relay: its deadline and the tag that carries it, bounded by
//! the life of the mark that placed it.

use super::walk::{MARK_REFRESH_MS, MARK_TTL_MS};

/// The default longest life of a browser socket on a relay (`RELAY_SOCKET_MAX_SECONDS`):
/// 12 hours. Each socket gets its own deadline between three quarters of it and all of it
/// ([`socket_deadline`]), so sockets opened together (after a deploy) do not close together.
pub const DEFAULT_SOCKET_MAX_SECONDS: u32 = 12 * 3600;

/// The longest a configuration may let a relay's browser socket live: 22 hours, below a
/// mark's life less its refresh ([`Marks`](super::Marks)). A socket a client opens past a
/// relay that passed it on is closed (1012, and the browser resumes with `since`) before that
/// relay can forget that it passed the client on, so no relay ever counts too few of a
/// client's sockets.
pub const MAX_SOCKET_MAX_SECONDS: u32 = 22 * 3600;

const _: () = assert!(
    (MAX_SOCKET_MAX_SECONDS as f64) * 1000.0 < MARK_TTL_MS - MARK_REFRESH_MS,
    "a relay's socket must end before the mark that placed it can expire"
);

/// The tag that carries a browser socket's deadline on a relay (`until=<ms since the epoch>`).
/// Client ids are hexadecimal digits, `.` and `:`, so no client id can be mistaken for it.
const DEADLINE_TAG: &str = "until=";

/// When a browser socket accepted at `now_ms` must be closed: between 0.75 and 1 times
/// `max_seconds` later (`random` in `0..1` picks where).
pub fn socket_deadline(now_ms: f64, max_seconds: u32, random: f64) -> f64 {
    let life = f64::from(max_seconds) * 1000.0;
    (now_ms + life * (0.75 + 0.25 * random.clamp(0.0, 1.0))).floor()
}

/// The tag of a socket whose deadline is `at_ms`.
pub fn deadline_tag(at_ms: f64) -> String {
    format!("{DEADLINE_TAG}{}", at_ms.max(0.0) as u64)
}

/// The deadline in a socket's tag, if the tag is one.
pub fn parse_deadline_tag(tag: &str) -> Option<f64> {
    let digits = tag.strip_prefix(DEADLINE_TAG)?;
    if digits.is_empty() || digits.len() > 16 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok().map(|ms| ms as f64)
}

#[cfg(test)]
mod tests {
    use super::super::walk::Marks;
    use super::*;

    #[test]
    fn a_socket_s_deadline_is_spread_over_the_last_quarter_of_its_life_and_read_back() {
        let max = 1000;
        assert_eq!(socket_deadline(5_000.0, max, 0.0), 755_000.0);
        assert_eq!(socket_deadline(5_000.0, max, 1.0), 1_005_000.0);
        assert_eq!(socket_deadline(5_000.0, max, 7.0), 1_005_000.0);
        let mid = socket_deadline(5_000.0, max, 0.5);
        assert!(mid > 755_000.0 && mid < 1_005_000.0);
        let at = socket_deadline(1_764_000_000_123.0, DEFAULT_SOCKET_MAX_SECONDS, 0.3);
        assert_eq!(parse_deadline_tag(&deadline_tag(at)), Some(at));
        for not in [
            "until=",
            "until=12a",
            "until=-5",
            "until=12345678901234567",
            "10.0.0.1",
            "::1",
            "relay",
        ] {
            assert_eq!(parse_deadline_tag(not), None, "{not}");
        }
        // No client id (hex digits, `.`, `:`) can look like a deadline.
        assert!(!crate::core::wire::is_client_id(&deadline_tag(at)));
    }

    #[test]
    fn every_relay_socket_ends_before_the_mark_that_placed_it() {
        // A mark is written at most MARK_REFRESH_MS before its last use and lasts MARK_TTL_MS
        // after it was written; the longest socket a configuration allows ends before that.
        let longest = socket_deadline(0.0, MAX_SOCKET_MAX_SECONDS, 1.0);
        assert!(longest < MARK_TTL_MS - MARK_REFRESH_MS);
        let mut m = Marks::default();
        m.record("c", 0.0);
        // Used again just before a rewrite was due: the stored time stays 0.
        assert!(!m.record("c", MARK_REFRESH_MS - 1.0));
        let placed = MARK_REFRESH_MS - 1.0;
        let closed = socket_deadline(placed, MAX_SOCKET_MAX_SECONDS, 1.0);
        assert!(
            m.passes("c", closed),
            "the mark expired before the socket ended"
        );
    }
}
