//! Rules of the relay tier: which relay a caller reaches, how a relay keeps the stream in
//! order, and what it can serve from memory.
//!
//! A relay is a Durable Object near a group of browsers. It holds one upstream WebSocket to
//! the counter (which sends it every committed update once), keeps the recent updates in a
//! [`Feed`], and fans them out to its own browser sockets. Nothing here touches the platform:
//! the relay object ([`crate::relay`]) feeds upstream messages and audit pages in and sends
//! what comes out.
//!
//! - [`region`]: a caller's `request.cf` (continent, longitude) → a location hint.
//! - [`shard_order`]: the relays of a region a caller may use, in the order it tries them: one
//!   per [`levels`] of the region, chosen by its address (so one client's sockets stay
//!   together, and a region grows into more relays only where its relays are full).
//! - [`Feed`]: forward version v only after v − 1; on a gap, say which versions to fetch from
//!   the audit trail; drop duplicates; serve `since` from the last updates in memory.
//! - [`RelayCall`]: the edge → relay call, encoded in one URL like [`super::wire`].
//! - [`ValueRead`]: `GET /api/value?consistency=…&min_version=…`.

use std::collections::{BTreeMap, HashMap, VecDeque};

use super::audit::{AuditEntry, AuditQuery, MAX_LIMIT};
use super::json::JsonWriter;
use super::problem::Problem;
use super::query;
use super::realtime::{self, Start};
use super::vocab::{truncate, Operation, MAX_VALUE};

/// Updates a relay keeps in memory: at least [`realtime::MAX_REPLAY`], so every `since` that
/// gets a replay at all is served without asking the counter.
pub const RING: usize = 1024;

/// Out-of-order updates a relay holds while it fetches a gap; more are dropped (the gap fetch
/// brings them again).
pub const MAX_PENDING: usize = 4096;

/// The default cap of browser sockets per relay (`RELAY_SOCKETS_PER_RELAY`).
pub const DEFAULT_SOCKETS_PER_RELAY: u32 = 2500;

/// The default number of relays a region starts with (`RELAY_SHARDS`): its first level, where
/// every client's sockets start.
pub const DEFAULT_SHARDS: u32 = 4;

/// The most starting shards per region a configuration may ask for.
pub const MAX_SHARDS: u32 = 256;

/// The most relays one region may grow to, and the default of `RELAY_MAX_SHARDS`. The counter
/// sends every update once per relay in use: nine regions of 512 are 4,608 upstream sockets,
/// well within what one object holds, and 512 relays of 2,500 sockets carry 1.28 million
/// browsers per region. A client's walk is one relay per level, so 512 relays from 16 starting
/// ones are 4 relays per walk.
pub const MAX_RELAYS: u32 = 512;

/// How much larger each level of a region is than all the levels before it together, less
/// one: level 1 is shards `S..4S`, level 2 `4S..16S`, and so on (`S` = `RELAY_SHARDS`).
pub const GROWTH: u32 = 4;

/// The tag of every relay's upstream socket at the counter.
pub const UPSTREAM_TAG: &str = "relay";

/// Response header of a relay that passes a socket on to the next shard (it is full, or it
/// passed this client on before): how many sockets the caller's client holds there.
pub const FULL_HEADER: &str = "relay-full";

/// Response header, with [`FULL_HEADER`], of a relay that passes a client on only because it
/// did so before ([`Marks`]), or of a relay only asked to count ([`Mode::Count`]): it has room,
/// and takes the socket once the walk has counted every other relay of the client.
pub const ROOM_HEADER: &str = "relay-room";

/// How long a relay remembers that it passed a client on (24 hours after the last time).
pub const MARK_TTL_MS: f64 = 24.0 * 3600.0 * 1000.0;

/// The default seconds between a relay's watchdog checks (`RELAY_WATCHDOG_SECONDS`).
pub const DEFAULT_WATCHDOG_SECONDS: u32 = 30;

/// The default seconds a relay with no browser and no nearby read keeps its upstream
/// (`RELAY_IDLE_SECONDS`).
pub const DEFAULT_IDLE_SECONDS: u32 = 60;

/// The default longest life of a browser socket on a relay (`RELAY_SOCKET_MAX_SECONDS`):
/// 12 hours. Each socket gets its own deadline between three quarters of it and all of it
/// ([`socket_deadline`]), so sockets opened together (after a deploy) do not close together.
pub const DEFAULT_SOCKET_MAX_SECONDS: u32 = 12 * 3600;

/// The longest a configuration may let a relay's browser socket live: 22 hours, below a
/// mark's life less its refresh ([`Marks`]). A socket a client opens past a relay that
/// passed it on is closed (1012, and the browser resumes with `since`) before that relay can
/// forget that it passed the client on, so no relay ever counts too few of a client's sockets.
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

/// The report a relay sends the counter on its upstream socket: browser sockets it refused
/// (429, the per-client cap) since its last report, so that the counter's
/// `acidizer_rate_limited_total{limit="sockets"}` counts every refusal, wherever it happened.
pub fn report_message(refused_sockets: u64) -> String {
    JsonWriter::object_with_capacity(48)
        .string("type", "report")
        .uint("refused_sockets", refused_sockets)
        .finish()
}

/// The most refusals one report may carry; a larger number is not a relay's report.
pub const MAX_REPORTED: u64 = 1 << 32;

/// Reads a relay's report ([`report_message`]): the refused sockets it carries. `None` for
/// anything else, including a report with another member or a number out of range.
///
/// Only the relays write reports, always in exactly [`report_message`]'s bytes, so this
/// matches those bytes: any other spelling of the same JSON is not a relay's report.
pub fn parse_report(text: &str) -> Option<u64> {
    let digits = text.strip_prefix(REPORT_PREFIX)?.strip_suffix('}')?;
    let canonical = !digits.is_empty()
        && digits.len() <= 10
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    let n: u64 = digits.parse().ok().filter(|_| canonical)?;
    (n <= MAX_REPORTED).then_some(n)
}

const REPORT_PREFIX: &str = r#"{"type":"report","refused_sockets":"#;

/// The regions relays are placed in: Cloudflare's Durable Object location hints.
pub const REGIONS: [&str; 9] = [
    "wnam", "enam", "sam", "weur", "eeur", "apac", "oc", "afr", "me",
];

/// The location hint for a caller from `continent` (`request.cf.continent`: `NA`, `SA`, `EU`,
/// `AS`, `OC`, `AF`, `AN`) at `longitude` (`request.cf.longitude`). Unknown callers (the local
/// runtime, or no `cf` at all) go to `enam`.
pub fn region(continent: Option<&str>, longitude: Option<f64>) -> &'static str {
    let lon = longitude.filter(|l| l.is_finite());
    match continent {
        Some("NA") => match lon {
            Some(l) if l < -100.0 => "wnam",
            _ => "enam",
        },
        Some("SA") => "sam",
        Some("EU") => match lon {
            Some(l) if l >= 20.0 => "eeur",
            _ => "weur",
        },
        Some("AS") => match lon {
            Some(l) if l < 63.0 => "me",
            _ => "apac",
        },
        Some("OC") | Some("AN") => "oc",
        Some("AF") => "afr",
        _ => "enam",
    }
}

/// A relay's name: `<region>-<shard>`, e.g. `enam-0`.
pub fn relay_name(region: &str, shard: u32) -> String {
    format!("{region}-{shard}")
}

/// Whether `name` is a relay name ([`relay_name`] of a known region and a shard below
/// [`MAX_RELAYS`]); returns its region.
pub fn parse_relay_name(name: &str) -> Option<&'static str> {
    let (region, shard) = name.rsplit_once('-')?;
    let region = REGIONS.iter().find(|r| **r == region)?;
    let canonical = !shard.is_empty()
        && shard.len() <= 3
        && shard.bytes().all(|b| b.is_ascii_digit())
        && (shard == "0" || !shard.starts_with('0'));
    let shard: u32 = shard.parse().ok().filter(|_| canonical)?;
    (shard < MAX_RELAYS).then_some(*region)
}

/// The levels of a region that starts with `start` relays and grows up to `max`: level 0 is
/// shards `0..start` (`RELAY_SHARDS`), each next level [`GROWTH`] times the end of the one
/// before, the last one cut at `max` (at most [`MAX_RELAYS`]). `start` = `max`: one level, no
/// growth.
pub fn levels(start: u32, max: u32) -> Vec<std::ops::Range<u32>> {
    let start = start.clamp(1, MAX_SHARDS);
    let max = max.clamp(start, MAX_RELAYS);
    let mut out = Vec::with_capacity(8);
    out.push(0..start);
    let mut low = start;
    while low < max {
        let high = low.saturating_mul(GROWTH).min(max);
        out.push(low..high);
        low = high;
    }
    out
}

/// The relays a client may use in a region of [`levels`]`(start, max)`, in the order it tries
/// them: one shard per level. The first (its *home*) is its address's hash over the starting
/// shards; each later one an independent hash over its level, so the clients that overflow one
/// relay spread over the whole next level. The order never depends on how many relays are in
/// use: a client's sockets are always on these relays, wherever the region stands, so one
/// walk over them counts every one of them ([`Walk`]).
pub fn shard_order(client: &str, start: u32, max: u32) -> impl Iterator<Item = u32> {
    let h = fnv1a(client.as_bytes());
    levels(start, max)
        .into_iter()
        .enumerate()
        .map(move |(k, level)| {
            let size = level.end - level.start;
            let pick = if k == 0 { h } else { mix(h, k as u32) };
            level.start + pick % size
        })
}

/// A client's home: the first relay of its walk, where its nearby reads go.
pub fn home(client: &str, start: u32) -> u32 {
    fnv1a(client.as_bytes()) % start.clamp(1, MAX_SHARDS)
}

/// An independent hash of `h` for level `k` (the SplitMix64 finalizer): a plain FNV step would
/// keep the home's residue, sending the clients of one full relay to a few relays of the next
/// level.
fn mix(h: u32, k: u32) -> u32 {
    let mut z = (u64::from(h) << 32 | u64::from(k)).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    ((z ^ (z >> 31)) >> 32) as u32
}

/// 32-bit FNV-1a: a stable, even spread of addresses over shards.
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

/// Milliseconds to wait before reconnect attempt `attempt` (1, 2, …): full jitter over an
/// exponential cap from 200 ms to 15 s, so that a thousand relays dropped by one deploy come
/// back spread out. `random` is in `0..1`.
pub fn backoff_ms(attempt: u32, random: f64) -> u64 {
    let cap = (200u64 << attempt.saturating_sub(1).min(7)).min(15_000);
    // Never zero: even the first retry waits a little, spreading a simultaneous drop.
    ((cap as f64 * random.clamp(0.0, 1.0)) as u64).max(20)
}

/// The clients a relay passed on to the next relay of their walk while it was full: they may
/// hold sockets further along it. A relay keeps passing such a client on (with its count
/// there, and that it has room) even after it has room again, so that the edge's walk counts
/// the client's sockets on every later relay before this one takes the next socket, and every
/// one of them is counted against `WS_CONNECTIONS_PER_CLIENT` (see [`Walk`]). A mark lasts
/// [`MARK_TTL_MS`] after it was last written (it is rewritten at most hourly).
#[derive(Clone, Debug, Default)]
pub struct Marks {
    at: HashMap<String, f64>,
}

/// How often a mark in use is rewritten (milliseconds).
const MARK_REFRESH_MS: f64 = 3600.0 * 1000.0;

impl Marks {
    /// Marks as loaded from storage: `(client, written at)`.
    pub fn from_stored(rows: impl IntoIterator<Item = (String, f64)>) -> Marks {
        Marks {
            at: rows.into_iter().collect(),
        }
    }

    /// Whether this relay passes `client` on (it did so before, within the mark's life).
    pub fn passes(&self, client: &str, now: f64) -> bool {
        self.at.get(client).is_some_and(|t| now - t < MARK_TTL_MS)
    }

    /// Records that `client` was passed on now; returns whether the mark must be (re)written
    /// to storage.
    pub fn record(&mut self, client: &str, now: f64) -> bool {
        match self.at.get(client) {
            Some(t) if now - t < MARK_REFRESH_MS => false,
            _ => {
                self.at.insert(client.to_owned(), now);
                true
            }
        }
    }

    /// Forgets the expired marks; returns their clients (to delete from storage).
    pub fn expire(&mut self, now: f64) -> Vec<String> {
        let old: Vec<String> = self
            .at
            .iter()
            .filter(|(_, t)| now - **t >= MARK_TTL_MS)
            .map(|(c, _)| c.clone())
            .collect();
        for c in &old {
            self.at.remove(c);
        }
        old
    }

    pub fn len(&self) -> usize {
        self.at.len()
    }

    pub fn is_empty(&self) -> bool {
        self.at.is_empty()
    }
}

/// The storage key of a client's mark.
pub fn mark_key(client: &str) -> String {
    format!("{MARK_PREFIX}{client}")
}

/// The prefix of every mark's storage key.
pub const MARK_PREFIX: &str = "pass:";

/// The edge's walk over a client's relays ([`shard_order`]) for one socket: each relay that
/// passes the socket on says how many sockets the client holds there. A relay takes the socket
/// with `held` = the client's sockets on the relays passed, and counts its own.
///
/// A relay that passes the socket on although it has room (it marked the client: the client may
/// hold sockets further on) turns the rest of the walk into a count ([`Mode::Count`]): every
/// later relay only says how many sockets the client holds there. After the last one the walk
/// has counted every relay the client can hold a socket on, and the first relay that had room
/// takes the socket ([`Mode::Force`]) with every other relay's count. So a socket always lands
/// on the earliest relay of its walk with room: once a crowd has gone, its clients come back
/// to their starting relays and the grown ones stay idle.
#[derive(Clone, Debug, Default)]
pub struct Walk {
    held: u32,
    room: Option<(u32, u32)>,
}

impl Walk {
    /// Sockets the client holds on the relays passed so far.
    pub fn held(&self) -> u32 {
        self.held
    }

    /// How to ask the next relay: [`Mode::Count`] once a relay with room passed the socket on.
    pub fn mode(&self) -> Mode {
        if self.room.is_some() {
            Mode::Count
        } else {
            Mode::Take
        }
    }

    /// Shard `shard` passed the socket on; the client holds `here` sockets there; `room`: it
    /// has room (it passed the socket on only because of a mark, or it was only counted).
    pub fn passed(&mut self, shard: u32, here: u32, room: bool) {
        self.held = self.held.saturating_add(here);
        if room && self.room.is_none() {
            self.room = Some((shard, here));
        }
    }

    /// After every relay of the walk passed the socket on: the shard that must take it
    /// ([`Mode::Force`]) and the client's sockets on every other relay; `None` when every relay
    /// of the walk is full.
    pub fn fallback(&self) -> Option<(u32, u32)> {
        self.room
            .map(|(shard, here)| (shard, self.held.saturating_sub(here)))
    }
}

/// How the edge asks a relay for a socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Take it if there is room and the client is not marked ([`Marks`]); otherwise pass it on.
    Take,
    /// Take it if there is room, mark or not: the walk counted every other relay.
    Force,
    /// Take nothing: say how many sockets the client holds here, and whether there is room.
    Count,
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

/// `GET /api/value`'s query: which read the caller wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueRead {
    /// The counter's own answer (the default): every acknowledged write is in it.
    Linearizable,
    /// The regional relay's memory; with `min_version`, at least that version.
    Nearby { min_version: Option<u64> },
}

impl ValueRead {
    /// Parses `consistency=linearizable|nearby` and `min_version=<v>`. A linearizable read
    /// already includes every acknowledged change, so `min_version` asks nothing more of it.
    pub fn parse(q: &str) -> Result<Self, Problem> {
        let pairs = query::parse(q, &["consistency", "min_version"])?;
        let min_version = query::uint(&pairs, "min_version", 0, MAX_VALUE as u64, None)?;
        let consistency = pairs
            .iter()
            .find(|(n, _)| *n == "consistency")
            .map(|(_, v)| v.as_str());
        match consistency {
            None | Some("linearizable") => Ok(ValueRead::Linearizable),
            Some("nearby") => Ok(ValueRead::Nearby { min_version }),
            Some(other) => Err(Problem::InvalidQuery(format!(
                "consistency must be linearizable or nearby; got {:?}.",
                truncate(other, 40)
            ))),
        }
    }
}

/// The origin of edge → relay URLs; the relay ignores it.
pub const RELAY_ORIGIN: &str = "https://relay";

/// One thing the edge asks a relay to do. Every call names the relay, which is how a relay
/// learns its own name (the platform does not tell an object its name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RelayCall {
    /// Accept a browser socket (the request carries the upgrade). `held`: sockets the client
    /// has on the relays it passed because they were full, counted against its cap.
    Connect {
        relay: String,
        client: String,
        since: Option<u64>,
        held: u32,
        /// Take it ([`Mode::Take`]), take it even if this relay passed the client on before
        /// (every other relay of the walk was counted: `held` counts all of its sockets
        /// there), or only count ([`Mode::Count`]).
        mode: Mode,
        /// An event stream (`GET /api/events`) instead of a socket: the same start, the same
        /// caps, the same updates, as Server-Sent Events.
        events: bool,
    },
    /// A nearby read.
    Value {
        relay: String,
        min_version: Option<u64>,
    },
    /// The relay's sockets, version, upstream state and lag behind `counter`, the counter's
    /// version (admin).
    Stats { relay: String, counter: u64 },
    /// Test hook: reset the relay (`ctx.abort`).
    Reset { relay: String },
    /// Test hook: drop the next update from the counter, as if it were lost on the way.
    Withhold { relay: String },
    /// Test hook: the relay hears nothing more on its current upstream socket, which stays
    /// open (a half-open connection); only the watchdog can notice.
    Silence { relay: String },
    /// Test hook: as if the relay's isolate were lost while the runtime kept its browsers'
    /// sockets: the upstream closes, nothing reconnects, and the watchdog's alarm is moved
    /// [`SEVER_ALARM_MS`] ahead, long enough for the runtime to evict the idle relay.
    Sever { relay: String },
    /// Test hook: the relay's upstream closes and nothing schedules a reconnect (as if the
    /// task that reconnects were lost) while its browsers stay; only the watchdog can notice.
    Unlink { relay: String },
}

/// How far the `sever` test hook moves the watchdog's alarm (the local runtime evicts an idle
/// object after about 10 s).
pub const SEVER_ALARM_MS: f64 = 20_000.0;

impl RelayCall {
    pub fn relay(&self) -> &str {
        match self {
            RelayCall::Connect { relay, .. }
            | RelayCall::Value { relay, .. }
            | RelayCall::Stats { relay, .. }
            | RelayCall::Reset { relay }
            | RelayCall::Withhold { relay }
            | RelayCall::Silence { relay }
            | RelayCall::Sever { relay }
            | RelayCall::Unlink { relay } => relay,
        }
    }

    /// The internal URL for this call.
    pub fn encode(&self) -> String {
        let o = RELAY_ORIGIN;
        match self {
            RelayCall::Connect {
                relay,
                client,
                since,
                held,
                mode,
                events,
            } => {
                let path = if *events { "events" } else { "connect" };
                let mut url = format!("{o}/{path}?relay={relay}&client={client}&held={held}");
                if let Some(s) = since {
                    url.push_str(&format!("&since={s}"));
                }
                match mode {
                    Mode::Take => {}
                    Mode::Force => url.push_str("&force=1"),
                    Mode::Count => url.push_str("&count=1"),
                }
                url
            }
            RelayCall::Value { relay, min_version } => match min_version {
                Some(v) => format!("{o}/value?relay={relay}&min_version={v}"),
                None => format!("{o}/value?relay={relay}"),
            },
            RelayCall::Stats { relay, counter } => {
                format!("{o}/stats?relay={relay}&counter={counter}")
            }
            RelayCall::Reset { relay } => format!("{o}/reset?relay={relay}"),
            RelayCall::Withhold { relay } => format!("{o}/withhold?relay={relay}"),
            RelayCall::Silence { relay } => format!("{o}/silence?relay={relay}"),
            RelayCall::Sever { relay } => format!("{o}/sever?relay={relay}"),
            RelayCall::Unlink { relay } => format!("{o}/unlink?relay={relay}"),
        }
    }

    /// Decodes an internal URL; anything else is an internal error (only the edge makes these).
    pub fn decode(url: &str) -> Result<Self, Problem> {
        let rest = url.strip_prefix(RELAY_ORIGIN).ok_or(Problem::Internal)?;
        let (path, q) = rest.split_once('?').unwrap_or((rest, ""));
        let bad = |_| Problem::Internal;
        let pairs = query::parse(
            q,
            &[
                "relay",
                "client",
                "since",
                "held",
                "force",
                "count",
                "min_version",
                "counter",
            ],
        )
        .map_err(bad)?;
        let get = |name: &str| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| v);
        let relay = get("relay")
            .filter(|r| parse_relay_name(r).is_some())
            .ok_or(Problem::Internal)?
            .clone();
        let uint = |name| query::uint(&pairs, name, 0, MAX_VALUE as u64, None).map_err(bad);
        let only = |names: &[&str]| pairs.iter().all(|(n, _)| names.contains(n));
        match path {
            "/connect" | "/events"
                if only(&["relay", "client", "since", "held", "force", "count"]) =>
            {
                let client = get("client")
                    .filter(|c| super::wire::is_client_id(c))
                    .ok_or(Problem::Internal)?
                    .clone();
                let held = uint("held")?.ok_or(Problem::Internal)?;
                Ok(RelayCall::Connect {
                    relay,
                    client,
                    since: uint("since")?,
                    held: u32::try_from(held).map_err(|_| Problem::Internal)?,
                    mode: match (
                        get("force").map(String::as_str),
                        get("count").map(String::as_str),
                    ) {
                        (None, None) => Mode::Take,
                        (Some("1"), None) => Mode::Force,
                        (None, Some("1")) => Mode::Count,
                        _ => return Err(Problem::Internal),
                    },
                    events: path == "/events",
                })
            }
            "/value" if only(&["relay", "min_version"]) => Ok(RelayCall::Value {
                relay,
                min_version: uint("min_version")?,
            }),
            "/stats" if only(&["relay", "counter"]) => Ok(RelayCall::Stats {
                relay,
                counter: uint("counter")?.ok_or(Problem::Internal)?,
            }),
            "/reset" if only(&["relay"]) => Ok(RelayCall::Reset { relay }),
            "/withhold" if only(&["relay"]) => Ok(RelayCall::Withhold { relay }),
            "/silence" if only(&["relay"]) => Ok(RelayCall::Silence { relay }),
            "/sever" if only(&["relay"]) => Ok(RelayCall::Sever { relay }),
            "/unlink" if only(&["relay"]) => Ok(RelayCall::Unlink { relay }),
            _ => Err(Problem::Internal),
        }
    }
}

/// A relay's line in the admin view: `{"relay","sockets","streams","version","upstream","lag",
/// "memory","pending"}`; `sockets` counts every browser connection (WebSockets and event
/// streams, as the caps do), `streams` the event streams among them; `lag` is how many
/// versions it is behind `counter`.
pub fn stats_json(
    relay: &str,
    (sockets, streams): (usize, usize),
    feed: &Feed,
    upstream: bool,
    counter: u64,
) -> String {
    let version = feed.since();
    let (memory, pending) = feed.sizes();
    JsonWriter::object()
        .string("relay", relay)
        .uint("sockets", (sockets + streams) as u64)
        .uint("streams", streams as u64)
        .opt_uint("version", version)
        .bool("upstream", upstream)
        .opt_uint("lag", version.map(|v| counter.saturating_sub(v)))
        .uint("memory", memory as u64)
        .uint("pending", pending as u64)
        .finish()
}

/// A JSON array of strings that need no escaping (relay names).
pub fn name_list(names: &[String]) -> String {
    let mut out = String::from("[");
    for (i, n) in names.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        super::json::push_string(&mut out, n);
    }
    out.push(']');
    out
}

/// A relay setting: absent = `default`; otherwise a non-negative integer up to `max`.
pub fn parse_setting(raw: Option<&str>, default: u32, max: u32) -> Result<u32, String> {
    match raw.map(str::trim) {
        None | Some("") => Ok(default),
        Some(s) => s
            .parse::<u32>()
            .ok()
            .filter(|n| *n <= max)
            .ok_or_else(|| format!("expected an integer from 0 to {max}, got {s:?}")),
    }
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn a_relay_report_is_read_back_and_nothing_else_is_one() {
        assert_eq!(
            report_message(3),
            r#"{"type":"report","refused_sockets":3}"#
        );
        assert_eq!(parse_report(&report_message(3)), Some(3));
        assert_eq!(parse_report(&report_message(0)), Some(0));
        assert_eq!(
            parse_report(&report_message(MAX_REPORTED)),
            Some(MAX_REPORTED)
        );
        for not in [
            "ping",
            "",
            r#"{"type":"report"}"#,
            r#"{"type":"report","refused_sockets":-1}"#,
            r#"{"type":"report","refused_sockets":1.5}"#,
            r#"{"type":"report","refused_sockets":"1"}"#,
            r#"{"type":"report","refused_sockets":4294967297}"#,
            r#"{"type":"report","refused_sockets":1,"x":2}"#,
            r#"{"type":"report","refused_sockets":1,"refused_sockets":2}"#,
            r#"{"type":"update","refused_sockets":1}"#,
            r#" {"type":"report","refused_sockets":1}"#,
            r#"{"type":"report","refused_sockets":1}trailing"#,
            r#"{"type":"report","refused_sockets":01}"#,
            r#"{"type":"report", "refused_sockets":1}"#,
            r#"{"refused_sockets":1,"type":"report"}"#,
        ] {
            assert_eq!(parse_report(not), None, "{not}");
        }
        let long = format!(
            r#"{{"type":"report","refused_sockets":1{}}}"#,
            " ".repeat(200)
        );
        assert_eq!(parse_report(&long), None);
    }

    #[test]
    fn marks_pass_a_client_on_until_they_expire() {
        let mut m = Marks::default();
        assert!(!m.passes("a", 0.0));
        assert!(m.record("a", 0.0));
        assert!(m.passes("a", 1.0));
        // Rewritten at most hourly.
        assert!(!m.record("a", 60_000.0));
        assert!(m.record("a", MARK_REFRESH_MS));
        assert!(m.passes("a", MARK_REFRESH_MS + MARK_TTL_MS - 1.0));
        assert!(!m.passes("a", MARK_REFRESH_MS + MARK_TTL_MS));
        assert!(m.expire(MARK_REFRESH_MS + 1.0).is_empty());
        assert_eq!(
            m.expire(MARK_REFRESH_MS + MARK_TTL_MS),
            vec!["a".to_string()]
        );
        assert!(m.is_empty());
        let m = Marks::from_stored([("b".to_string(), 5.0)]);
        assert!(m.passes("b", 6.0) && m.len() == 1);
        assert_eq!(mark_key("b"), "pass:b");
    }

    #[test]
    fn a_walk_falls_back_to_the_first_relay_with_room_with_every_other_count() {
        let mut w = Walk::default();
        assert_eq!(w.mode(), Mode::Take);
        w.passed(3, 2, false);
        assert_eq!(w.fallback(), None);
        assert_eq!(w.mode(), Mode::Take, "a full relay: the walk goes on");
        w.passed(0, 1, true);
        assert_eq!(
            w.mode(),
            Mode::Count,
            "a relay with room passed: only count"
        );
        w.passed(1, 4, true);
        assert_eq!(w.held(), 7);
        assert_eq!(w.fallback(), Some((0, 6)));
    }

    /// Relays and an edge that follow the rules of [`Marks`] and [`Walk`] in a region that
    /// grows ([`levels`]), driven by random opens and closes: whenever a relay takes or refuses
    /// a socket against the client cap, the count it uses is the client's true total over the
    /// whole region; every socket sits on a relay of its client's walk, on the earliest one
    /// that had room.
    #[test]
    fn the_per_client_cap_counts_every_socket_across_relays() {
        #[derive(Default)]
        struct Relay {
            sockets: Vec<String>,
            marks: Marks,
        }
        const START: u32 = 2;
        const MAX: u32 = 20;
        const PER_RELAY: usize = 3;
        const CLIENT_CAP: u32 = 4;
        let mut relays: Vec<Relay> = (0..MAX).map(|_| Relay::default()).collect();
        let clients: Vec<String> = (0..24).map(|i| format!("10.0.0.{i}")).collect();
        let walks: Vec<Vec<u32>> = clients
            .iter()
            .map(|c| shard_order(c, START, MAX).collect())
            .collect();
        assert!(walks.iter().all(|w| w.len() == 3));
        let mut seed = 0x2545_f491_u64;
        let mut rand = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let (mut taken, mut capped, mut full, mut forced) = (0, 0, 0, 0);
        for step in 0..40_000 {
            let now = step as f64;
            let ci = rand(clients.len());
            let c = &clients[ci];
            let truth = relays
                .iter()
                .map(|r| r.sockets.iter().filter(|s| *s == c).count() as u32)
                .sum::<u32>();
            if rand(3) == 0 {
                // A random socket closes.
                let r = rand(MAX as usize);
                if !relays[r].sockets.is_empty() {
                    let i = rand(relays[r].sockets.len());
                    relays[r].sockets.swap_remove(i);
                }
                continue;
            }
            // The relay's decision: pass on (full, marked or only counting), 429, or take.
            let visit = |shard: u32, held: u32, mode: Mode, relays: &mut [Relay]| {
                let r = &mut relays[shard as usize];
                let here = r.sockets.iter().filter(|s| *s == c).count() as u32;
                let is_full = r.sockets.len() >= PER_RELAY;
                let marked = mode == Mode::Take && r.marks.passes(c, now);
                if is_full || marked || mode == Mode::Count {
                    if is_full && mode == Mode::Take {
                        r.marks.record(c, now);
                    }
                    return Err((here, !is_full));
                }
                assert_eq!(held + here, truth, "step {step}: {c} counted wrong");
                if held + here >= CLIENT_CAP {
                    return Ok(false);
                }
                r.sockets.push(c.clone());
                Ok(true)
            };
            let mut walk = Walk::default();
            let mut outcome = None;
            for &shard in &walks[ci] {
                let mode = walk.mode();
                let before: Vec<bool> = walks[ci]
                    .iter()
                    .take_while(|s| **s != shard)
                    .map(|s| relays[*s as usize].sockets.len() >= PER_RELAY)
                    .collect();
                match visit(shard, walk.held(), mode, &mut relays) {
                    Ok(t) => {
                        // Taken without a count: every relay before it was full.
                        assert!(before.iter().all(|f| *f), "step {step}: not the earliest");
                        outcome = Some(t);
                        break;
                    }
                    Err((here, room)) => walk.passed(shard, here, room),
                }
            }
            if outcome.is_none() {
                if let Some((shard, held)) = walk.fallback() {
                    outcome = visit(shard, held, Mode::Force, &mut relays).ok();
                    forced += 1;
                }
            }
            match outcome {
                Some(true) => taken += 1,
                Some(false) => capped += 1,
                None => full += 1,
            }
            for (i, cl) in clients.iter().enumerate() {
                let mut n = 0;
                for (shard, r) in relays.iter().enumerate() {
                    let here = r.sockets.iter().filter(|s| *s == cl).count() as u32;
                    assert!(
                        here == 0 || walks[i].contains(&(shard as u32)),
                        "step {step}: a socket off its client's walk"
                    );
                    n += here;
                }
                assert!(n <= CLIENT_CAP, "step {step}: client {i} holds {n}");
            }
        }
        // The run went through every case, and the region grew past its first level.
        assert!(
            taken > 1000 && capped > 100 && full > 100 && forced > 100,
            "{taken} {capped} {full} {forced}"
        );
        assert!(relays[START as usize..]
            .iter()
            .any(|r| !r.sockets.is_empty()));
    }

    fn k(version: u64) -> Known {
        Known {
            value: version as i64 * 10,
            version,
        }
    }

    fn entry(version: u64) -> AuditEntry {
        AuditEntry {
            version,
            operation: Operation::Increment,
            amount: 10,
            previous_value: (version as i64 - 1) * 10,
            value: version as i64 * 10,
            request_id: format!("k{version}"),
            at: "2026-01-01T00:00:00.000Z".into(),
        }
    }

    fn msg(version: u64) -> String {
        entry(version).update_message()
    }

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
    fn regions_from_cf() {
        assert_eq!(region(Some("NA"), Some(-122.4)), "wnam");
        assert_eq!(region(Some("NA"), Some(-74.0)), "enam");
        assert_eq!(region(Some("NA"), None), "enam");
        assert_eq!(region(Some("SA"), Some(-46.6)), "sam");
        assert_eq!(region(Some("EU"), Some(2.35)), "weur");
        assert_eq!(region(Some("EU"), Some(21.0)), "eeur");
        assert_eq!(region(Some("AS"), Some(139.7)), "apac");
        assert_eq!(region(Some("AS"), Some(55.3)), "me");
        assert_eq!(region(Some("OC"), Some(151.2)), "oc");
        assert_eq!(region(Some("AF"), Some(28.0)), "afr");
        assert_eq!(region(None, None), "enam");
        assert_eq!(region(Some("XX"), Some(f64::NAN)), "enam");
        for r in REGIONS {
            assert_eq!(parse_relay_name(&relay_name(r, 7)), Some(r));
        }
    }

    #[test]
    fn relay_names_are_strict() {
        assert_eq!(parse_relay_name("enam-0"), Some("enam"));
        assert_eq!(parse_relay_name("enam-511"), Some("enam"));
        for bad in [
            "enam", "enam-", "enam-512", "enam-01", "enam--1", "mars-1", "enam-1a", "-1", "",
        ] {
            assert_eq!(parse_relay_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_region_grows_in_levels_up_to_its_maximum() {
        assert_eq!(levels(16, 512), vec![0..16, 16..64, 64..256, 256..512]);
        assert_eq!(levels(4, 512), vec![0..4, 4..16, 16..64, 64..256, 256..512]);
        assert_eq!(levels(12, 100), vec![0..12, 12..48, 48..100]);
        let one = |start, max| match levels(start, max).as_slice() {
            [only] => only.clone(),
            more => panic!("{more:?}"),
        };
        assert_eq!(one(8, 8), 0..8, "no growth");
        assert_eq!(one(8, 2), 0..8, "the maximum is at least the start");
        assert_eq!(one(0, 0), 0..1);
        assert_eq!(levels(1, 9999).last(), Some(&(256..MAX_RELAYS)));
        assert_eq!(levels(MAX_SHARDS, MAX_RELAYS).len(), 2);
    }

    #[test]
    fn a_client_walks_one_relay_per_level_starting_at_its_home() {
        let order: Vec<u32> = shard_order("203.0.113.9", 12, 512).collect();
        assert_eq!(
            order,
            shard_order("203.0.113.9", 12, 512).collect::<Vec<_>>()
        );
        let lv = levels(12, 512);
        assert_eq!(order.len(), lv.len());
        for (s, l) in order.iter().zip(&lv) {
            assert!(l.contains(s), "{s} outside {l:?}");
        }
        // The home does not depend on the maximum; a smaller maximum is a prefix of levels.
        assert_eq!(
            shard_order("203.0.113.9", 12, 12).collect::<Vec<_>>(),
            vec![order[0]]
        );
        assert_eq!(shard_order("x", 0, 0).collect::<Vec<_>>(), vec![0]);
        assert_eq!(home("203.0.113.9", 12), order[0]);
        // Addresses spread over the starting shards, and the clients of ONE home spread over
        // the whole next level (each level's hash is independent of the home's).
        let mut homes = std::collections::BTreeSet::new();
        let mut next = std::collections::BTreeSet::new();
        for i in 0..4000 {
            let o: Vec<u32> =
                shard_order(&format!("10.0.{}.{}", i / 250, i % 250), 16, 512).collect();
            homes.insert(o[0]);
            if o[0] == 5 {
                next.insert(o[1]);
            }
        }
        assert_eq!(homes.len(), 16);
        assert_eq!(next.len(), 48, "{next:?}");
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
        let page = super::super::audit::page_json(&[entry(1), entry(2)], 10);
        assert_eq!(parse_audit_page(&page), Ok(vec![entry(1), entry(2)]));
        assert!(parse_audit_page("{}").is_err());
    }

    #[test]
    fn value_reads() {
        assert_eq!(ValueRead::parse(""), Ok(ValueRead::Linearizable));
        assert_eq!(
            ValueRead::parse("consistency=linearizable"),
            Ok(ValueRead::Linearizable)
        );
        assert_eq!(
            ValueRead::parse("consistency=nearby"),
            Ok(ValueRead::Nearby { min_version: None })
        );
        assert_eq!(
            ValueRead::parse("consistency=nearby&min_version=7"),
            Ok(ValueRead::Nearby {
                min_version: Some(7)
            })
        );
        assert_eq!(
            ValueRead::parse("min_version=7"),
            Ok(ValueRead::Linearizable)
        );
        for bad in [
            "consistency=strong",
            "consistency=nearby&min_version=-1",
            "consistency=nearby&consistency=nearby",
            "x=1",
        ] {
            assert_eq!(
                ValueRead::parse(bad).map_err(|p| p.status()),
                Err(400),
                "{bad}"
            );
        }
    }

    #[test]
    fn relay_calls_roundtrip() {
        let calls = vec![
            RelayCall::Connect {
                relay: "enam-3".into(),
                client: "203.0.113.9".into(),
                since: Some(4),
                held: 2,
                mode: Mode::Force,
                events: false,
            },
            RelayCall::Connect {
                relay: "oc-0".into(),
                client: "unknown".into(),
                since: None,
                held: 0,
                mode: Mode::Take,
                events: true,
            },
            RelayCall::Connect {
                relay: "enam-300".into(),
                client: "10.0.0.1".into(),
                since: None,
                held: 7,
                mode: Mode::Count,
                events: false,
            },
            RelayCall::Value {
                relay: "weur-1".into(),
                min_version: Some(9),
            },
            RelayCall::Value {
                relay: "weur-1".into(),
                min_version: None,
            },
            RelayCall::Stats {
                relay: "apac-2".into(),
                counter: 17,
            },
            RelayCall::Reset {
                relay: "apac-2".into(),
            },
            RelayCall::Withhold {
                relay: "apac-2".into(),
            },
            RelayCall::Silence {
                relay: "apac-2".into(),
            },
            RelayCall::Sever {
                relay: "apac-2".into(),
            },
            RelayCall::Unlink {
                relay: "apac-2".into(),
            },
        ];
        for c in calls {
            assert_eq!(
                RelayCall::decode(&c.encode()),
                Ok(c.clone()),
                "{}",
                c.encode()
            );
        }
        for bad in [
            "https://counter/stats?relay=enam-1",
            "https://relay/stats?relay=mars-1&counter=1",
            "https://relay/stats?relay=enam-1",
            "https://relay/stats?relay=enam-1&counter=1&since=3",
            "https://relay/connect?relay=enam-1&client=<x>&held=0",
            "https://relay/connect?relay=enam-1&client=unknown",
            "https://relay/connect?relay=enam-1&client=unknown&held=0&force=yes",
            "https://relay/connect?relay=enam-1&client=unknown&held=0&count=0",
            "https://relay/connect?relay=enam-1&client=unknown&held=0&force=1&count=1",
            "https://relay/nope?relay=enam-1",
        ] {
            assert_eq!(RelayCall::decode(bad), Err(Problem::Internal), "{bad}");
        }
    }

    #[test]
    fn admin_lines() {
        let mut f = Feed::new();
        let line = stats_json("enam-1", (3, 0), &f, false, 9);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["version"], serde_json::Value::Null);
        assert_eq!(v["lag"], serde_json::Value::Null);
        f.on_snapshot(k(7));
        let v: serde_json::Value =
            serde_json::from_str(&stats_json("enam-1", (3, 2), &f, true, 9)).unwrap();
        assert_eq!(v["lag"], 2);
        assert_eq!(v["sockets"], 5);
        assert_eq!(v["streams"], 2);
        assert_eq!(
            name_list(&["enam-0".into(), "oc-3".into()]),
            "[\"enam-0\",\"oc-3\"]"
        );
    }

    #[test]
    fn settings() {
        assert_eq!(parse_setting(None, 2500, 32768), Ok(2500));
        assert_eq!(parse_setting(Some("0"), 2500, 32768), Ok(0));
        assert_eq!(parse_setting(Some(" 50 "), 2500, 32768), Ok(50));
        assert!(parse_setting(Some("-1"), 2500, 32768).is_err());
        assert!(parse_setting(Some("40000"), 2500, 32768).is_err());
    }
}
