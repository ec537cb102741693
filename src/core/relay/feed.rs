//! What comes down a relay's upstream and how the relay keeps it: the counter's messages, the
//! in-order feed with its gaps, the recent updates in memory, and the reconnect backoff.

use std::collections::{BTreeMap, VecDeque};

use crate::core::audit::{AuditEntry, AuditQuery, MAX_LIMIT};
use crate::core::json::JsonWriter;
use crate::core::realtime::{self, Start};
use crate::core::vocab::Operation;

/// Updates a relay keeps in memory: at least [`realtime::MAX_REPLAY`], so every `since` that
/// gets a replay at all is served without asking the counter.
pub const RING: usize = 1024;

/// Out-of-order updates a relay holds while it fetches a gap; more are dropped (the gap fetch
/// brings them again).
pub const MAX_PENDING: usize = 4096;

/// Milliseconds to wait before reconnect attempt `attempt` (1, 2, …): full jitter over an
/// exponential cap from 200 ms to 15 s, so that a thousand relays dropped by one deploy come
/// back spread out. `random` is in `0..1`.
pub fn backoff_ms(attempt: u32, random: f64) -> u64 {
    let cap = (200u64 << attempt.saturating_sub(1).min(7)).min(15_000);
    // Never zero: even the first retry waits a little, spreading a simultaneous drop.
    ((cap as f64 * random.clamp(0.0, 1.0)) as u64).max(20)
}

/// The relay's latest forwarded state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Known {
    pub value: i64,
    pub version: u64,
}

impl Known {
    /// `{"type":"snapshot","value","version"}`, as the counter writes it.
    pub fn snapshot_message(&self) -> String {
        JsonWriter::object_with_capacity(80)
            .string("type", "snapshot")
            .int("value", self.value)
            .uint("version", self.version)
            .finish()
    }

    /// The body of a nearby read: `{"value","version","source"}`.
    pub fn nearby_json(&self, source: &str) -> String {
        JsonWriter::object_with_capacity(80)
            .int("value", self.value)
            .uint("version", self.version)
            .string("source", source)
            .finish()
    }
}

/// One message from the counter on a relay's upstream socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Upstream {
    Snapshot(Known),
    /// An update: its version and value, and the message itself (forwarded verbatim).
    Update(Known, String),
}

/// Reads a message from the counter; `None` for anything that is neither a snapshot nor an
/// update (a `pong`, an error).
pub fn parse_upstream(text: &str) -> Option<Upstream> {
    let v: serde_json::Value = serde_json::from_slice(text.as_bytes()).ok()?;
    let known = Known {
        value: v.get("value")?.as_i64()?,
        version: v.get("version")?.as_u64()?,
    };
    match v.get("type")?.as_str()? {
        "snapshot" => Some(Upstream::Snapshot(known)),
        "update" => Some(Upstream::Update(known, text.to_owned())),
        _ => None,
    }
}

/// The entries of a `GET /api/audit` page (the counter's answer to a relay's fetch).
pub fn parse_audit_page(body: &str) -> Result<Vec<AuditEntry>, String> {
    let v: serde_json::Value =
        serde_json::from_slice(body.as_bytes()).map_err(|e| e.to_string())?;
    let entries = v
        .get("entries")
        .and_then(|e| e.as_array())
        .ok_or("no entries")?;
    entries
        .iter()
        .map(|e| {
            let int = |k: &str| e.get(k).and_then(|x| x.as_i64()).ok_or(format!("no {k}"));
            let text = |k: &str| {
                e.get(k)
                    .and_then(|x| x.as_str())
                    .map(str::to_owned)
                    .ok_or(format!("no {k}"))
            };
            Ok(AuditEntry {
                version: e
                    .get("version")
                    .and_then(|x| x.as_u64())
                    .ok_or("no version")?,
                operation: Operation::parse(&text("operation")?).ok_or("bad operation")?,
                amount: int("amount")?,
                previous_value: int("previous_value")?,
                value: int("value")?,
                request_id: text("request_id")?,
                at: text("at")?,
            })
        })
        .collect()
}

/// How a browser socket connecting to a relay with `since` starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CatchUp {
    /// Send these messages (a snapshot, or the missed updates, possibly none), then go live.
    Send(Vec<String>),
    /// The relay has no state yet (its upstream is connecting): wait.
    NotReady,
    /// The client is ahead of this relay: wait for the relay to catch up (briefly; after that
    /// it is ahead of the counter and gets a snapshot, as the counter would send it).
    Ahead,
    /// The missed updates are older than the relay's memory: fetch this page from the counter
    /// first ([`Feed::backfill`]).
    Backfill(AuditQuery),
}

/// What a relay knows of the stream, and the rules that keep it in order.
#[derive(Debug, Default)]
pub struct Feed {
    known: Option<Known>,
    /// The last updates forwarded, contiguous, ending at `known.version`.
    ring: VecDeque<(u64, String)>,
    /// Updates that arrived before their predecessor, by version.
    pending: BTreeMap<u64, (Known, String)>,
    /// The highest version the counter is known to have committed.
    target: u64,
}

impl Feed {
    pub fn new() -> Self {
        Self::default()
    }

    /// The latest forwarded state, once the relay has one.
    pub fn known(&self) -> Option<&Known> {
        self.known.as_ref()
    }

    /// The version to resume the upstream from.
    pub fn since(&self) -> Option<u64> {
        self.known.as_ref().map(|k| k.version)
    }

    /// Updates held in memory, and out-of-order ones waiting.
    pub fn sizes(&self) -> (usize, usize) {
        (self.ring.len(), self.pending.len())
    }

    /// The highest version the counter is known to have committed.
    pub fn target(&self) -> u64 {
        self.target.max(self.since().unwrap_or(0))
    }

    /// A snapshot from the counter (the start of an upstream connection). The first one gives
    /// the relay its state; later ones (a resume more than 1,000 behind) only tell how far the
    /// counter is, and the versions in between are fetched ([`Feed::gap`]). Returns whether
    /// this was the relay's first state.
    pub fn on_snapshot(&mut self, snap: Known) -> bool {
        self.target = self.target.max(snap.version);
        if self.known.is_none() {
            self.known = Some(snap);
            self.ring.clear();
            let v = self.since().unwrap_or(0);
            self.pending = self.pending.split_off(&(v + 1));
            return true;
        }
        false
    }

    /// An update from the counter, or from a gap fetch. Returns the messages to forward now,
    /// in version order: this one and any held ones it unblocks, or nothing (a duplicate, or a
    /// gap before it, which [`Feed::gap`] then names).
    pub fn on_update(&mut self, k: Known, message: String) -> Vec<String> {
        self.target = self.target.max(k.version);
        let Some(last) = self.since() else {
            // No state yet: hold it until the snapshot says where the stream is.
            self.hold(k, message);
            return Vec::new();
        };
        if k.version <= last {
            return Vec::new();
        }
        if k.version > last + 1 {
            self.hold(k, message);
            return Vec::new();
        }
        let mut out = vec![self.adopt(k, message)];
        loop {
            let next = self.since().unwrap_or(0) + 1;
            let Some((&first, _)) = self.pending.first_key_value() else {
                break;
            };
            if first > next {
                break;
            }
            if let Some((k, m)) = self.pending.remove(&first) {
                if first == next {
                    out.push(self.adopt(k, m));
                }
            }
        }
        out
    }

    fn hold(&mut self, k: Known, message: String) {
        if self.pending.len() < MAX_PENDING {
            self.pending.insert(k.version, (k, message));
        }
    }

    fn adopt(&mut self, k: Known, message: String) -> String {
        self.ring.push_back((k.version, message.clone()));
        while self.ring.len() > RING {
            self.ring.pop_front();
        }
        self.known = Some(k);
        message
    }

    /// The audit page to fetch when versions are missing between what was forwarded and what
    /// the counter has committed.
    pub fn gap(&self) -> Option<AuditQuery> {
        let last = self.since()?;
        (self.target > last).then(|| AuditQuery {
            after: last,
            limit: (self.target - last).min(MAX_LIMIT),
        })
    }

    /// Feeds the entries of a gap fetch; returns the messages to forward, in order.
    pub fn fill(&mut self, entries: &[AuditEntry]) -> Vec<String> {
        let mut out = Vec::new();
        for e in entries {
            let k = Known {
                value: e.value,
                version: e.version,
            };
            out.extend(self.on_update(k, e.update_message()));
        }
        out
    }

    /// How a socket connecting with `since` starts: the same rule as the counter's
    /// ([`realtime::start`]), served from memory.
    pub fn catch_up(&self, since: Option<u64>) -> CatchUp {
        let Some(known) = &self.known else {
            return CatchUp::NotReady;
        };
        match realtime::start(since, known.version) {
            Start::Snapshot if since.is_some_and(|s| s > known.version) => CatchUp::Ahead,
            Start::Snapshot => CatchUp::Send(vec![known.snapshot_message()]),
            Start::Replay { after } => {
                let first = self.ring.front().map_or(known.version + 1, |(v, _)| *v);
                if after + 1 >= first {
                    let skip = (after + 1 - first) as usize;
                    CatchUp::Send(
                        self.ring
                            .iter()
                            .skip(skip)
                            .map(|(_, m)| m.clone())
                            .collect(),
                    )
                } else {
                    CatchUp::Backfill(AuditQuery {
                        after,
                        limit: (first - 1 - after).min(MAX_LIMIT),
                    })
                }
            }
        }
    }

    /// Puts older updates (a backfill page) in front of the memory, so that sockets resuming
    /// from before the relay's own start are served from it. Only the entries that continue
    /// the memory backwards, without a hole, are kept.
    pub fn backfill(&mut self, entries: &[AuditEntry]) {
        let Some(known) = &self.known else { return };
        let mut first = self.ring.front().map_or(known.version + 1, |(v, _)| *v);
        let floor = known.version.saturating_sub(realtime::MAX_REPLAY) + 1;
        for e in entries.iter().rev() {
            if e.version + 1 == first && e.version >= floor && self.ring.len() < RING {
                self.ring.push_front((e.version, e.update_message()));
                first = e.version;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{entry, k, msg};
    use super::*;

    fn upd(f: &mut Feed, v: u64) -> Vec<u64> {
        f.on_update(k(v), msg(v))
            .iter()
            .map(|m| match parse_upstream(m) {
                Some(Upstream::Update(k, _)) => k.version,
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn backoff_is_jittered_and_capped() {
        assert!(backoff_ms(1, 0.0) >= 20);
        assert!(backoff_ms(1, 1.0) <= 200);
        assert!(backoff_ms(3, 1.0) <= 800);
        assert_eq!(backoff_ms(40, 1.0), 15_000);
        assert!(backoff_ms(2, 0.5) < backoff_ms(2, 0.9));
    }

    #[test]
    fn forwards_in_order_holds_gaps_and_drops_duplicates() {
        let mut f = Feed::new();
        assert_eq!(f.catch_up(None), CatchUp::NotReady);
        assert_eq!(upd(&mut f, 6), Vec::<u64>::new(), "no state yet: held");
        assert!(f.on_snapshot(k(5)));
        assert_eq!(f.gap().map(|q| (q.after, q.limit)), Some((5, 1)));
        assert_eq!(upd(&mut f, 6), vec![6]);
        assert_eq!(upd(&mut f, 6), Vec::<u64>::new(), "duplicate");
        assert_eq!(upd(&mut f, 9), Vec::<u64>::new(), "gap before 9");
        assert_eq!(upd(&mut f, 8), Vec::<u64>::new());
        assert_eq!(f.gap().map(|q| (q.after, q.limit)), Some((6, 3)));
        // The gap fetch brings 7..=9; 8 and 9 were held, and come out once, in order.
        assert_eq!(f.fill(&[entry(7), entry(8), entry(9)]).len(), 3);
        assert_eq!(f.gap(), None);
        assert_eq!(f.known(), Some(&k(9)));
        assert_eq!(upd(&mut f, 10), vec![10]);
        assert_eq!(f.sizes(), (5, 0));
    }

    #[test]
    fn a_later_snapshot_is_a_gap_not_a_jump() {
        let mut f = Feed::new();
        f.on_snapshot(k(1));
        assert!(
            !f.on_snapshot(k(3000)),
            "only the first snapshot is adopted"
        );
        assert_eq!(f.known(), Some(&k(1)));
        let q = f.gap().unwrap();
        assert_eq!((q.after, q.limit), (1, 1000));
        let page: Vec<AuditEntry> = (2..=1001).map(entry).collect();
        assert_eq!(f.fill(&page).len(), 1000);
        assert_eq!(f.gap().map(|q| (q.after, q.limit)), Some((1001, 1000)));
    }

    #[test]
    fn serves_since_from_memory_or_asks_for_one_backfill() {
        let mut f = Feed::new();
        f.on_snapshot(k(2000));
        assert_eq!(f.catch_up(Some(2000)), CatchUp::Send(vec![]));
        assert_eq!(
            f.catch_up(None),
            CatchUp::Send(vec![k(2000).snapshot_message()])
        );
        assert_eq!(f.catch_up(Some(2001)), CatchUp::Ahead);
        assert_eq!(
            f.catch_up(Some(999)),
            CatchUp::Send(vec![k(2000).snapshot_message()]),
            "more than 1,000 behind"
        );
        for v in 2001..=2010 {
            upd(&mut f, v);
        }
        assert_eq!(
            f.catch_up(Some(2008)),
            CatchUp::Send(vec![msg(2009), msg(2010)])
        );
        // From before the relay's start: one page from the counter, then from memory.
        let CatchUp::Backfill(q) = f.catch_up(Some(1500)) else {
            panic!()
        };
        assert_eq!((q.after, q.limit), (1500, 500));
        let page: Vec<AuditEntry> = (1501..=2000).map(entry).collect();
        f.backfill(&page);
        let CatchUp::Send(m) = f.catch_up(Some(1500)) else {
            panic!()
        };
        assert_eq!(m.len(), 510);
        assert_eq!(m[0], msg(1501));
        assert_eq!(m[509], msg(2010));
        // Exactly 1,000 behind is still served.
        let CatchUp::Backfill(q) = f.catch_up(Some(1010)) else {
            panic!()
        };
        f.backfill(&(q.after + 1..=1500).map(entry).collect::<Vec<_>>());
        let CatchUp::Send(m) = f.catch_up(Some(1010)) else {
            panic!()
        };
        assert_eq!(m.len(), 1000);
        // A backfill page with a hole is not used past the hole.
        let mut g = Feed::new();
        g.on_snapshot(k(100));
        g.backfill(&[entry(97), entry(99), entry(100)]);
        assert_eq!(
            g.sizes().0,
            2,
            "100 and 99 continue the memory, 97 does not"
        );
        assert_eq!(g.catch_up(Some(98)), CatchUp::Send(vec![msg(99), msg(100)]));
    }

    #[test]
    fn memory_keeps_the_last_updates() {
        let mut f = Feed::new();
        f.on_snapshot(k(0));
        for v in 1..=3000 {
            upd(&mut f, v);
        }
        assert_eq!(f.sizes().0, RING);
        let CatchUp::Send(m) = f.catch_up(Some(2000)) else {
            panic!()
        };
        assert_eq!(m.len(), 1000);
    }

    #[test]
    fn upstream_messages_and_audit_pages() {
        assert_eq!(
            parse_upstream("{\"type\":\"snapshot\",\"value\":-3,\"version\":4}"),
            Some(Upstream::Snapshot(Known {
                value: -3,
                version: 4
            }))
        );
        let m = msg(8);
        assert_eq!(parse_upstream(&m), Some(Upstream::Update(k(8), m.clone())));
        assert_eq!(parse_upstream("pong"), None);
        assert_eq!(parse_upstream("{\"type\":\"error\"}"), None);
        let page = crate::core::audit::page_json(&[entry(1), entry(2)], 10);
        assert_eq!(parse_audit_page(&page), Ok(vec![entry(1), entry(2)]));
        assert!(parse_audit_page("{}").is_err());
    }
}
