//! The edge's shield for the one counter: refusals decided in the Worker's isolate, so a
//! client that floods the service costs the counter (nearly) nothing.
//!
//! The counter's own count stays the exact rule ([`super::limits`]): it sees every change in
//! the world. The shield never invents a refusal the counter would not make; it remembers the
//! counter's:
//!
//! - **Changes.** When the counter refuses a client's change with 429 and `Retry-After: s`, the
//!   isolate refuses that client's further changes itself until those `s` seconds have passed,
//!   with the time that is left. The counter's `s` is its window's remaining time rounded up to
//!   a whole second, so a client that waits as told never meets the shield's refusal, and one
//!   that does not is refused at most under a second longer than the counter would. A change
//!   whose key this isolate saw applied recently still goes through: a retry of an applied
//!   change is answered with its stored answer whatever the rate (the counter's rule). A
//!   replay of a key applied through another isolate, or longer ago, is refused here while the
//!   client is refused, and gets its stored answer once it retries after `Retry-After`.
//! - **Sockets and event streams.** When a relay or the counter refuses a client's socket with
//!   429 (its cap), the isolate refuses that client's next connects for [`SOCKET_HOLD_MS`]:
//!   a client at its cap stays there until it closes one, so a short hold loses nothing and
//!   spares the relays a storm of doomed connects.
//! - **Expensive reads** (audit pages, export, proofs, past values): the isolate counts each
//!   client's requests in a sliding window of 10 s and refuses past `HISTORY_READS_PER_10S`.
//!   These are reads, so there is nothing to replay and no exact count to defer to: the limit
//!   is per isolate (a client spread over many locations gets that many per location).
//!
//! Memory is bounded: at most [`MAX_CLIENTS`] clients are remembered per kind, expired ones go
//! first, and a full table forgets its oldest entry.

use std::collections::{HashMap, VecDeque};

use super::limits::{RateLimiter, WINDOW_MS};

/// How long a socket refused for its client's cap keeps that client's connects at the edge.
pub const SOCKET_HOLD_MS: i64 = 2_000;
/// Clients remembered per kind of refusal.
pub const MAX_CLIENTS: usize = 10_000;
/// Keys remembered per refused client as applied through this isolate.
const KEYS_PER_CLIENT: usize = 64;

/// One client the counter refused.
#[derive(Debug, Default)]
struct Refused {
    /// Until when (ms) the client's changes are refused here.
    until_ms: i64,
}

/// The isolate's shield: what the counter and the relays refused lately, and the history-read
/// counts.
#[derive(Debug)]
pub struct Shield {
    changes: HashMap<String, Refused>,
    sockets: HashMap<String, i64>,
    /// Keys of changes applied through this isolate, per client, newest last.
    applied: HashMap<String, VecDeque<String>>,
    reads: RateLimiter,
}

impl Shield {
    /// A shield whose history reads are limited to `history_reads_per_10s` per client (0: off).
    pub fn new(history_reads_per_10s: u32) -> Shield {
        Shield {
            changes: HashMap::new(),
            sockets: HashMap::new(),
            applied: HashMap::new(),
            reads: RateLimiter::new(history_reads_per_10s),
        }
    }

    /// `Err(seconds)` if `client`'s change with `key` is to be refused here at `now_ms`.
    pub fn check_change(&self, client: &str, key: &str, now_ms: i64) -> Result<(), u32> {
        let Some(r) = self.changes.get(client) else {
            return Ok(());
        };
        if r.until_ms <= now_ms {
            return Ok(());
        }
        let applied_here = self
            .applied
            .get(client)
            .is_some_and(|keys| keys.iter().any(|k| k == key));
        if applied_here {
            return Ok(());
        }
        Err(seconds_until(r.until_ms, now_ms))
    }

    /// What the counter answered to `client`'s change with `key`: `status`, and for a 429 its
    /// `Retry-After` seconds.
    pub fn learn_change(
        &mut self,
        client: &str,
        key: &str,
        status: u16,
        retry_after_secs: Option<u32>,
        now_ms: i64,
    ) {
        match status {
            429 => {
                let secs = retry_after_secs
                    .unwrap_or(1)
                    .clamp(1, (WINDOW_MS / 1000) as u32);
                let until_ms = now_ms + i64::from(secs) * 1000;
                make_room(&mut self.changes, now_ms, |r| r.until_ms);
                let r = self.changes.entry(client.to_owned()).or_default();
                r.until_ms = r.until_ms.max(until_ms);
            }
            200..=299 => {
                if self.applied.len() >= MAX_CLIENTS && !self.applied.contains_key(client) {
                    // Full: keep the keys of the clients refused now, forget the rest.
                    let refused = &self.changes;
                    self.applied
                        .retain(|c, _| refused.get(c).is_some_and(|r| r.until_ms > now_ms));
                    if self.applied.len() >= MAX_CLIENTS {
                        return;
                    }
                }
                let keys = self.applied.entry(client.to_owned()).or_default();
                if !keys.iter().any(|k| k == key) {
                    keys.push_back(key.to_owned());
                    while keys.len() > KEYS_PER_CLIENT {
                        keys.pop_front();
                    }
                }
            }
            _ => {}
        }
    }

    /// `Err(seconds)` if `client`'s new socket or event stream is to be refused here.
    pub fn check_socket(&self, client: &str, now_ms: i64) -> Result<(), u32> {
        match self.sockets.get(client) {
            Some(&until) if until > now_ms => Err(seconds_until(until, now_ms)),
            _ => Ok(()),
        }
    }

    /// A relay or the counter refused `client`'s socket for its cap (429).
    pub fn learn_socket_refused(&mut self, client: &str, now_ms: i64) {
        make_room(&mut self.sockets, now_ms, |until| *until);
        self.sockets
            .insert(client.to_owned(), now_ms + SOCKET_HOLD_MS);
    }

    /// Counts one history read of `client`; `Err(seconds)` past its limit (the read is then not
    /// counted).
    pub fn history_read(&mut self, client: &str, now_ms: i64) -> Result<(), u32> {
        self.reads.check(client, now_ms)?;
        self.reads.record(client, now_ms);
        Ok(())
    }

    /// Clients with a refusal in force, for the tests.
    pub fn refused_clients(&self, now_ms: i64) -> usize {
        self.changes
            .values()
            .filter(|r| r.until_ms > now_ms)
            .count()
    }
}

/// Whole seconds from `now_ms` until `until_ms`, at least 1.
fn seconds_until(until_ms: i64, now_ms: i64) -> u32 {
    let ms = (until_ms - now_ms).max(1);
    u32::try_from((ms + 999) / 1000).unwrap_or(u32::MAX)
}

/// Before an insert into a table at its size limit: drop expired entries, then, if still full,
/// the one that expires first.
fn make_room<T>(table: &mut HashMap<String, T>, now_ms: i64, until: impl Fn(&T) -> i64) {
    if table.len() < MAX_CLIENTS {
        return;
    }
    table.retain(|_, v| until(v) > now_ms);
    if table.len() >= MAX_CLIENTS {
        if let Some(first) = table
            .iter()
            .min_by_key(|(_, v)| until(v))
            .map(|(k, _)| k.clone())
        {
            table.remove(&first);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_is_refused_only_after_the_counter_refused_it_and_for_as_long() {
        let mut s = Shield::new(0);
        assert_eq!(s.check_change("a", "k1", 0), Ok(()));
        s.learn_change("a", "k1", 200, None, 0);
        assert_eq!(
            s.check_change("a", "k2", 10),
            Ok(()),
            "a 200 refuses nothing"
        );
        s.learn_change("a", "k2", 429, Some(3), 1_000);
        assert_eq!(s.check_change("a", "k3", 1_000), Err(3));
        assert_eq!(s.check_change("a", "k3", 3_500), Err(1));
        assert_eq!(
            s.check_change("a", "k3", 4_000),
            Ok(()),
            "the counter's time passed"
        );
        assert_eq!(
            s.check_change("b", "k9", 1_500),
            Ok(()),
            "other clients go through"
        );
        assert_eq!(s.refused_clients(1_500), 1);
    }

    #[test]
    fn a_retry_of_a_change_applied_here_goes_through_while_its_client_is_refused() {
        let mut s = Shield::new(0);
        s.learn_change("a", "applied", 200, None, 0);
        s.learn_change("a", "late", 429, Some(10), 100);
        assert_eq!(s.check_change("a", "applied", 200), Ok(()));
        assert_eq!(s.check_change("a", "late", 200), Err(10));
    }

    #[test]
    fn a_refusal_never_outlasts_a_window() {
        let mut s = Shield::new(0);
        s.learn_change("a", "k", 429, Some(3_600), 0);
        assert_eq!(s.check_change("a", "x", 0), Err(10));
        assert_eq!(s.check_change("a", "x", 10_000), Ok(()));
        s.learn_change("a", "k", 429, None, 20_000);
        assert_eq!(s.check_change("a", "x", 20_000), Err(1));
    }

    #[test]
    fn sockets_refused_for_the_cap_hold_briefly() {
        let mut s = Shield::new(0);
        assert_eq!(s.check_socket("a", 0), Ok(()));
        s.learn_socket_refused("a", 0);
        assert_eq!(s.check_socket("a", 1), Err(2));
        assert_eq!(s.check_socket("b", 1), Ok(()));
        assert_eq!(s.check_socket("a", SOCKET_HOLD_MS), Ok(()));
    }

    #[test]
    fn history_reads_are_counted_per_client_in_a_sliding_window() {
        let mut s = Shield::new(3);
        for t in 0..3 {
            assert_eq!(s.history_read("a", t), Ok(()));
        }
        assert_eq!(s.history_read("a", 5), Err(10));
        assert_eq!(s.history_read("b", 5), Ok(()));
        assert_eq!(
            s.history_read("a", 10_001),
            Ok(()),
            "the first read left the window"
        );
        let mut off = Shield::new(0);
        for t in 0..1000 {
            assert_eq!(off.history_read("a", t), Ok(()));
        }
    }

    #[test]
    fn memory_is_bounded_whatever_the_number_of_clients() {
        let mut s = Shield::new(0);
        for i in 0..(MAX_CLIENTS * 2) {
            let c = format!("c{i}");
            s.learn_change(&c, "k", 429, Some(5), i as i64);
            s.learn_change(&c, "k", 200, None, i as i64);
            s.learn_socket_refused(&c, i as i64);
        }
        assert!(s.changes.len() <= MAX_CLIENTS);
        assert!(s.sockets.len() <= MAX_CLIENTS);
        assert!(s.applied.len() <= MAX_CLIENTS);
        // The newest refusal is remembered.
        let last = format!("c{}", MAX_CLIENTS * 2 - 1);
        assert!(s
            .check_change(&last, "x", (MAX_CLIENTS * 2) as i64)
            .is_err());
    }
}
