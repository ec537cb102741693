//! Per-client limits, exact because one place sees every request: the counter object.
//!
//! Every mutation in the world passes through the one counter object, so it can count each
//! client's applied changes precisely, with no extra storage round trip. (The platform's
//! rate-limiting binding counts per location and only approximately; it would let a client
//! spread over locations exceed the limit, and it would add a call to every mutation.)
//!
//! The windows live in memory. That loses nothing that matters: the object is only evicted
//! after several seconds without any event, by which time every 10-second window has expired
//! anyway; a restart of the object (a deployment) forgets at most one window per client.

use std::collections::{HashMap, VecDeque};

/// The window of `RATE_LIMIT_PER_10S`.
pub const WINDOW_MS: i64 = 10_000;

/// A sliding-window log per client: at most `limit` events in any `WINDOW_MS`.
#[derive(Debug)]
pub struct RateLimiter {
    limit: usize,
    clients: HashMap<String, VecDeque<i64>>,
    calls_since_sweep: u32,
}

impl RateLimiter {
    /// A limiter allowing `limit` events per window; `0` turns it off.
    pub fn new(limit: u32) -> Self {
        RateLimiter {
            limit: limit as usize,
            clients: HashMap::new(),
            calls_since_sweep: 0,
        }
    }

    /// Whether the limiter does anything.
    pub fn enabled(&self) -> bool {
        self.limit > 0
    }

    /// `Ok` if `client` may act at `now_ms`; otherwise the seconds until it may (≥ 1). Does not
    /// record anything: call [`RateLimiter::record`] once the action really happened, so that
    /// refused or replayed requests never use up the allowance.
    pub fn check(&mut self, client: &str, now_ms: i64) -> Result<(), u32> {
        if !self.enabled() {
            return Ok(());
        }
        self.maybe_sweep(now_ms);
        let Some(log) = self.clients.get_mut(client) else {
            return Ok(());
        };
        expire(log, now_ms);
        if log.len() < self.limit {
            return Ok(());
        }
        let oldest = log.front().copied().unwrap_or(now_ms);
        let wait_ms = (oldest + WINDOW_MS - now_ms).max(1);
        Err(((wait_ms + 999) / 1000) as u32)
    }

    /// Records one action of `client` at `now_ms`.
    pub fn record(&mut self, client: &str, now_ms: i64) {
        if !self.enabled() {
            return;
        }
        let log = self.clients.entry(client.to_owned()).or_default();
        log.push_back(now_ms);
        while log.len() > self.limit {
            log.pop_front();
        }
    }

    /// Takes back one action of `client` recorded at `now_ms` (the latest), for an action
    /// that was rolled back after all.
    pub fn forget(&mut self, client: &str, now_ms: i64) {
        if let Some(log) = self.clients.get_mut(client) {
            if log.back() == Some(&now_ms) {
                log.pop_back();
            }
        }
    }

    /// Number of clients currently tracked.
    pub fn tracked(&self) -> usize {
        self.clients.len()
    }

    /// Drops clients whose windows are empty, every 1024 calls, so memory follows the number
    /// of clients active in the last window, not all clients ever seen.
    fn maybe_sweep(&mut self, now_ms: i64) {
        self.calls_since_sweep += 1;
        if self.calls_since_sweep < 1024 {
            return;
        }
        self.calls_since_sweep = 0;
        self.clients.retain(|_, log| {
            expire(log, now_ms);
            !log.is_empty()
        });
    }
}

fn expire(log: &mut VecDeque<i64>, now_ms: i64) {
    while log.front().is_some_and(|t| *t <= now_ms - WINDOW_MS) {
        log.pop_front();
    }
}

/// A fixed window counter for one socket's messages, small enough to live in the socket's
/// attachment (so it survives hibernation with the socket).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MessageBudget {
    /// Start of the current window (ms).
    pub window_start: i64,
    /// Messages in it so far.
    pub count: u32,
}

/// Messages a client may send per [`WINDOW_MS`] before its socket is closed (1008). `ping` is
/// answered by the runtime and never counts.
pub const MAX_MESSAGES_PER_WINDOW: u32 = 20;

impl MessageBudget {
    /// Counts one message at `now_ms`; `false` when the socket is over its budget.
    pub fn spend(&mut self, now_ms: i64) -> bool {
        if now_ms - self.window_start >= WINDOW_MS {
            self.window_start = now_ms;
            self.count = 0;
        }
        self.count += 1;
        self.count <= MAX_MESSAGES_PER_WINDOW
    }
}

/// Parses a numeric limit var: absent, empty or `0` means off; anything else must be a
/// non-negative integer.
pub fn parse_limit(var: Option<&str>) -> Result<u32, String> {
    match var.map(str::trim) {
        None | Some("") => Ok(0),
        Some(s) => s
            .parse::<u32>()
            .map_err(|_| format!("expected a non-negative integer, got {s:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rolled_back_action_is_taken_back() {
        let mut r = RateLimiter::new(2);
        r.record("a", 100);
        r.record("a", 200);
        assert!(r.check("a", 300).is_err());
        r.forget("a", 200);
        assert!(r.check("a", 300).is_ok());
        r.forget("a", 999); // not the latest: nothing happens
        r.record("a", 300);
        assert!(r.check("a", 400).is_err());
    }

    #[test]
    fn off_means_unlimited() {
        let mut r = RateLimiter::new(0);
        for t in 0..1000 {
            assert!(r.check("a", t).is_ok());
            r.record("a", t);
        }
        assert_eq!(r.tracked(), 0);
    }

    #[test]
    fn the_sixth_in_ten_seconds_waits() {
        let mut r = RateLimiter::new(5);
        for t in [0, 100, 200, 300, 400] {
            assert_eq!(r.check("a", t), Ok(()));
            r.record("a", t);
        }
        assert_eq!(r.check("a", 500), Err(10));
        assert_eq!(r.check("a", 9_100), Err(1));
        assert_eq!(r.check("b", 500), Ok(()), "clients are independent");
        // The oldest leaves the window at 10 000.
        assert_eq!(r.check("a", 9_999), Err(1));
        assert_eq!(r.check("a", 10_000), Ok(()));
    }

    #[test]
    fn refused_checks_use_no_allowance() {
        let mut r = RateLimiter::new(1);
        r.record("a", 0);
        for t in 1..100 {
            assert!(r.check("a", t).is_err());
        }
        assert!(r.check("a", 10_000).is_ok());
    }

    #[test]
    fn sweeping_forgets_idle_clients() {
        let mut r = RateLimiter::new(2);
        for i in 0..2000 {
            r.record(&format!("c{i}"), 0);
        }
        for i in 0..1100 {
            let _ = r.check("x", 20_000 + i);
        }
        assert_eq!(r.tracked(), 0);
    }

    #[test]
    fn message_budget() {
        let mut b = MessageBudget::default();
        for _ in 0..MAX_MESSAGES_PER_WINDOW {
            assert!(b.spend(5));
        }
        assert!(!b.spend(6));
        assert!(b.spend(5 + WINDOW_MS), "a new window");
    }

    #[test]
    fn limit_vars() {
        assert_eq!(parse_limit(None), Ok(0));
        assert_eq!(parse_limit(Some("")), Ok(0));
        assert_eq!(parse_limit(Some("0")), Ok(0));
        assert_eq!(parse_limit(Some(" 5 ")), Ok(5));
        assert!(parse_limit(Some("-1")).is_err());
        assert!(parse_limit(Some("five")).is_err());
    }
}
