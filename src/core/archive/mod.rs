//! The audit archive: which entries leave the object's database, the form they take in R2,
//! and how anything read back from R2 is checked before it is believed.
//!
//! - The object keeps the newest `AUDIT_HOT_ENTRIES` entries (the *hot window*; `0` keeps
//!   everything and archives nothing); with `AUDIT_HOT_HOURS` above 0, entries older than that
//!   leave too, even inside the window. Older entries are written to the `AUDIT_ARCHIVE` bucket
//!   as immutable *segments* of exactly [`SEGMENT_ENTRIES`] (1,024) consecutive entries, aligned:
//!   segment `j` holds versions `1024·j + 1 ..= 1024·(j + 1)`, which are the leaves of one
//!   complete subtree of the Merkle tree (level [`SEGMENT_LEVEL`]). So the object holds at most
//!   the window plus one segment's worth of entries that are due, and a segment's entries hash
//!   to a tree node the object keeps.
//! - A segment is NDJSON: one line per entry, exactly its canonical leaf bytes
//!   ([`ledger::leaf_bytes`], the bytes the Merkle tree hashes and the export's lines), each
//!   followed by `\n`. Its name, `audit/<first>-<last>.ndjson` with both versions zero-padded
//!   to 20 digits, sorts by version.
//! - The object records each segment (first, last, byte size, SHA-256) before it writes it and
//!   deletes the entries from SQLite only after reading the segment back and checking it.
//!   Whatever reads a segment later (the Worker, for audit pages) checks it against that record
//!   with [`read_segment`]: R2's content is never trusted, only its agreement with the record.
//!
//! Nothing here touches R2 or SQLite; the platform rooms are `counter/archive.rs` (the object's
//! alarm) and `edge/archive.rs` (reads).

use sha2::{Digest, Sha256};

use super::audit::AuditEntry;
use super::ledger::checkpoint::{decode_hash, encode_hash};
use super::json::JsonWriter;
use super::ledger;
use super::ledger::merkle::{self, Hash, MemoryTree, Node};

/// The Merkle level of a segment: a segment is one complete subtree of 2^10 leaves.
pub const SEGMENT_LEVEL: u32 = 10;
/// Entries in one segment (and so in one archival step of the alarm).
pub const SEGMENT_ENTRIES: u64 = 1 << SEGMENT_LEVEL;
/// The idempotency retention when `IDEMPOTENCY_RETENTION_SECONDS` is not set: the contract's
/// 24 hours.
pub const DEFAULT_RETENTION_SECS: u64 = 86_400;
/// How long after the window is exceeded the archival alarm runs, so that a burst of changes
/// becomes one segment rather than many small ones.
pub const DELAY_MS: i64 = 1_000;
/// Retry delays of a failing archival run: doubling from the first, capped at the last.
pub const BACKOFF_MS: (i64, i64) = (2_000, 300_000);
/// Expired idempotency keys removed per alarm run.
pub const EXPIRE_CHUNK: u64 = 5_000;

/// The archive's configuration (vars).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Entries kept in the object; 0 = keep everything (no archival).
    pub hot_entries: u64,
    /// Entries older than this many hours are archived even inside the window; 0 = no age limit.
    pub hot_hours: u64,
    /// How long an idempotency key is remembered, in seconds (at least).
    pub retention_secs: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            hot_entries: 0,
            hot_hours: 0,
            retention_secs: DEFAULT_RETENTION_SECS,
        }
    }
}

impl Settings {
    /// Reads the three vars (absent = the default). A malformed value keeps its default and is
    /// returned as an error text for the log, naming the var.
    pub fn parse(
        hot_entries: Option<&str>,
        hot_hours: Option<&str>,
        retention_secs: Option<&str>,
    ) -> (Settings, Vec<String>) {
        let mut s = Settings::default();
        let mut errors = Vec::new();
        let mut read = |name: &str, raw: Option<&str>, min: u64, into: &mut u64| {
            let Some(raw) = raw.map(str::trim).filter(|r| !r.is_empty()) else {
                return;
            };
            match raw.parse::<u64>() {
                Ok(v) if v >= min && v <= 1_000_000_000_000 => *into = v,
                _ => errors.push(format!(
                    "{name} must be an integer from {min} to 10^12; got {raw:?}"
                )),
            }
        };
        read("AUDIT_HOT_ENTRIES", hot_entries, 0, &mut s.hot_entries);
        read("AUDIT_HOT_HOURS", hot_hours, 0, &mut s.hot_hours);
        read(
            "IDEMPOTENCY_RETENTION_SECONDS",
            retention_secs,
            1,
            &mut s.retention_secs,
        );
        (s, errors)
    }

    /// Whether anything is ever archived.
    pub fn archives(&self) -> bool {
        self.hot_entries > 0
    }

    /// The `at` of the oldest entry that may stay hot under `AUDIT_HOT_HOURS`, at `now_ms`
    /// (entries with an earlier `at` are archived); `None` without an age limit.
    pub fn age_cutoff(&self, now_ms: i64) -> Option<String> {
        (self.hot_hours > 0).then(|| {
            super::time::rfc3339_millis(now_ms - (self.hot_hours as i64).saturating_mul(3_600_000))
        })
    }

    /// The `at` before which an idempotency key is expired, at `now_ms`. `at` strings are
    /// RFC 3339 UTC with milliseconds, so they compare as text in time order.
    pub fn key_cutoff(&self, now_ms: i64) -> String {
        super::time::rfc3339_millis(now_ms - (self.retention_secs as i64).saturating_mul(1000))
    }
}

/// The next segment to archive, `(first, last)`, given the entries archived so far (through
/// `archived_through`, a multiple of [`SEGMENT_ENTRIES`]), the counter's `version`, the newest
/// version that is old enough to go under `AUDIT_HOT_HOURS` (`aged_through`, 0 if none) and
/// `ready_through`, the newest version the Merkle tree has hashed (an entry is archived only
/// once its hash is stored). A segment goes only once all of it is due.
pub fn next_segment(
    s: &Settings,
    archived_through: u64,
    version: u64,
    aged_through: u64,
    ready_through: u64,
) -> Option<(u64, u64)> {
    if !s.archives() {
        return None;
    }
    let cut = version
        .saturating_sub(s.hot_entries)
        .max(aged_through.min(version))
        .min(ready_through);
    let first = archived_through + 1;
    let last = archived_through + SEGMENT_ENTRIES;
    (last <= cut).then_some((first, last))
}

/// The object name of the segment `first..=last`: sorts by version.
pub fn segment_name(first: u64, last: u64) -> String {
    format!("audit/{first:020}-{last:020}.ndjson")
}

/// The bytes of a segment: each entry's canonical leaf bytes and a newline.
pub fn segment_bytes(entries: &[AuditEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * 160);
    for e in entries {
        out.extend_from_slice(&ledger::leaf_bytes(e));
        out.push(b'\n');
    }
    out
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut s = String::with_capacity(64);
    for b in digest {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// The object's record of one segment: what it holds and what its bytes must hash to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    pub first: u64,
    pub last: u64,
    /// Size of the object in bytes.
    pub bytes: u64,
    /// SHA-256 of the object, lowercase hex.
    pub sha256: String,
}

impl Segment {
    /// The record of `entries` (consecutive, ascending) as a segment with these `bytes`.
    pub fn of(first: u64, last: u64, bytes: &[u8]) -> Segment {
        Segment {
            first,
            last,
            bytes: bytes.len() as u64,
            sha256: sha256_hex(bytes),
        }
    }

    /// The R2 object name.
    pub fn name(&self) -> String {
        segment_name(self.first, self.last)
    }

    /// Entries in the segment.
    pub fn entries(&self) -> u64 {
        self.last + 1 - self.first
    }

    /// The JSON the object hands the Worker so that it can read the segment itself.
    pub fn to_json(&self) -> String {
        JsonWriter::object()
            .string("name", &self.name())
            .uint("first", self.first)
            .uint("last", self.last)
            .uint("bytes", self.bytes)
            .string("sha256", &self.sha256)
            .finish()
    }

    /// The inverse of [`Segment::to_json`], for a JSON value.
    pub fn from_json(v: &serde_json::Value) -> Option<Segment> {
        let s = Segment {
            first: v.get("first")?.as_u64()?,
            last: v.get("last")?.as_u64()?,
            bytes: v.get("bytes")?.as_u64()?,
            sha256: v.get("sha256")?.as_str()?.to_owned(),
        };
        (s.first >= 1 && s.last >= s.first && s.sha256.len() == 64).then_some(s)
    }
}

/// Checks `bytes` read back from R2 against the segment's record and parses them: the size
/// and SHA-256 must match, and every line must be the canonical leaf bytes of the entry of the
/// next version, from `first` through `last`. Anything else is an error naming what differs.
pub fn read_segment(seg: &Segment, bytes: &[u8]) -> Result<Vec<AuditEntry>, String> {
    if bytes.len() as u64 != seg.bytes {
        return Err(format!(
            "segment {} has {} bytes, the record says {}",
            seg.name(),
            bytes.len(),
            seg.bytes
        ));
    }
    let digest = sha256_hex(bytes);
    if digest != seg.sha256 {
        return Err(format!(
            "segment {} has SHA-256 {digest}, the record says {}",
            seg.name(),
            seg.sha256
        ));
    }
    let text =
        std::str::from_utf8(bytes).map_err(|_| format!("segment {} is not UTF-8", seg.name()))?;
    let body = text
        .strip_suffix('\n')
        .ok_or_else(|| format!("segment {} does not end with a newline", seg.name()))?;
    let mut out = Vec::with_capacity(seg.entries() as usize);
    for (i, line) in body.split('\n').enumerate() {
        // serde_json's `Value` (already in the module) rather than a typed parser; the
        // re-rendering check then holds the line to exactly the canonical bytes.
        let entry = serde_json::from_str::<serde_json::Value>(line)
            .ok()
            .and_then(|v| ledger::entry_from_json(&v))
            .filter(|e| ledger::leaf_bytes(e) == line.as_bytes())
            .ok_or_else(|| {
                format!(
                    "segment {}: line {} is not a canonical audit entry",
                    seg.name(),
                    i + 1
                )
            })?;
        let expected = seg.first + i as u64;
        if entry.version != expected {
            return Err(format!(
                "segment {}: line {} has version {}, expected {expected}",
                seg.name(),
                i + 1,
                entry.version
            ));
        }
        out.push(entry);
    }
    if out.len() as u64 != seg.entries() {
        return Err(format!(
            "segment {} has {} entries, the record says {}",
            seg.name(),
            out.len(),
            seg.entries()
        ));
    }
    Ok(out)
}

/// The object's answer to an audit read that starts in the archive: the segment to read and
/// the counter's version (so the Worker knows whether another page follows the segment).
pub fn pointer_json(seg: &Segment, version: u64) -> String {
    JsonWriter::object()
        .raw("segment", &seg.to_json())
        .uint("version", version)
        .finish()
}

/// The header that marks an object answer as a [`pointer_json`] rather than a page.
pub const POINTER_HEADER: &str = "x-archive-segment";

/// An audit page from a checked segment: entries after `after`, at most `limit`, ending at the
/// segment's end at the latest; `next_after` is set whenever the counter has entries beyond the
/// page (`version` is the counter's version).
pub fn page_from_segment(entries: &[AuditEntry], after: u64, limit: u64, version: u64) -> String {
    let page: Vec<AuditEntry> = entries
        .iter()
        .filter(|e| e.version > after)
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
        .cloned()
        .collect();
    let mut list = String::with_capacity(page.len() * 180 + 2);
    list.push('[');
    for (i, e) in page.iter().enumerate() {
        if i > 0 {
            list.push(',');
        }
        list.push_str(&e.entry_json());
    }
    list.push(']');
    let next = page.last().map(|e| e.version).filter(|v| *v < version);
    JsonWriter::object_with_capacity(list.len() + 40)
        .raw("entries", &list)
        .opt_uint("next_after", next)
        .finish()
}

/// A proof the counter cannot make alone because some of the hashes it needs belong to
/// archived segments (their Merkle rows below [`SEGMENT_LEVEL`] leave the object with their
/// entries). The counter sends this instead: the query, every needed hash it still holds
/// (including each segment's root, level 10, which it always keeps), and the segments; the
/// Worker rebuilds the missing hashes from the segments and makes the proof
/// ([`ProofPointer::prove`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProofPointer {
    pub query: ProofQuery,
    pub segments: Vec<Segment>,
    pub nodes: Vec<(Node, Hash)>,
}

/// The proof asked for, with its sizes resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProofQuery {
    Inclusion { version: u64, tree_size: u64 },
    Consistency { from: u64, to: u64 },
}

impl ProofQuery {
    /// Every complete subtree whose hash the proof is made of.
    pub fn nodes(&self) -> Vec<Node> {
        match *self {
            ProofQuery::Inclusion { version, tree_size } => {
                let index = version - 1;
                let mut ranges = merkle::inclusion_ranges(index, tree_size);
                ranges.push((index, index + 1));
                merkle::nodes_for(&ranges)
            }
            ProofQuery::Consistency { from, to } => {
                merkle::nodes_for(&merkle::consistency_ranges(from, to))
            }
        }
    }
}

/// The segments (by index `j`: versions `1024·j + 1 ..= 1024·(j + 1)`) holding hashes among
/// `nodes` that the object no longer has, when everything through `archived_through` is
/// archived: nodes below the segment level whose leaves are all archived.
pub fn archived_blocks(nodes: &[Node], archived_through: u64) -> Vec<u64> {
    let mut blocks: Vec<u64> = nodes
        .iter()
        .filter(|n| n.level < SEGMENT_LEVEL && n.last_leaf() < archived_through)
        .map(|n| (n.index << n.level) / SEGMENT_ENTRIES)
        .collect();
    blocks.sort_unstable();
    blocks.dedup();
    blocks
}

/// The segment-root node of block `j`.
pub fn block_root(j: u64) -> Node {
    Node {
        level: SEGMENT_LEVEL,
        index: j,
    }
}

impl ProofPointer {
    pub fn to_json(&self) -> String {
        let query = match self.query {
            ProofQuery::Inclusion { version, tree_size } => JsonWriter::object()
                .string("kind", "inclusion")
                .uint("version", version)
                .uint("tree_size", tree_size)
                .finish(),
            ProofQuery::Consistency { from, to } => JsonWriter::object()
                .string("kind", "consistency")
                .uint("from", from)
                .uint("to", to)
                .finish(),
        };
        let segments: Vec<String> = self.segments.iter().map(Segment::to_json).collect();
        let nodes: Vec<String> = self
            .nodes
            .iter()
            .map(|(n, h)| format!("[{},{},\"{}\"]", n.level, n.index, encode_hash(h)))
            .collect();
        JsonWriter::object()
            .raw("query", &query)
            .raw("segments", &format!("[{}]", segments.join(",")))
            .raw("nodes", &format!("[{}]", nodes.join(",")))
            .finish()
    }

    pub fn from_json(v: &serde_json::Value) -> Option<ProofPointer> {
        let q = v.get("query")?;
        let int = |k: &str| q.get(k).and_then(serde_json::Value::as_u64);
        let query = match q.get("kind")?.as_str()? {
            "inclusion" => ProofQuery::Inclusion {
                version: int("version")?,
                tree_size: int("tree_size")?,
            },
            "consistency" => ProofQuery::Consistency {
                from: int("from")?,
                to: int("to")?,
            },
            _ => return None,
        };
        let segments = v
            .get("segments")?
            .as_array()?
            .iter()
            .map(Segment::from_json)
            .collect::<Option<Vec<_>>>()?;
        let nodes = v
            .get("nodes")?
            .as_array()?
            .iter()
            .map(|n| {
                let level = u32::try_from(n.get(0)?.as_u64()?).ok()?;
                let index = n.get(1)?.as_u64()?;
                Some((Node { level, index }, decode_hash(n.get(2)?.as_str()?)?))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(ProofPointer {
            query,
            segments,
            nodes,
        })
    }

    /// The proof's JSON (exactly what the counter renders for a proof it makes alone), from
    /// the pointer and its segments' checked entries (`blocks[k]` are the entries of
    /// `segments[k]`). Each segment's hashes are rebuilt from its entries and believed only if
    /// they hash to the segment root the counter holds.
    pub fn prove(&self, blocks: &[Vec<AuditEntry>]) -> Result<String, String> {
        // A short list, not a map: a proof needs O(log n) hashes (and a map's hashing code
        // would cost the Wasm module more than the scans cost here).
        let held = |n: Node| self.nodes.iter().find(|(m, _)| *m == n).map(|(_, h)| *h);
        let mut known: Vec<(Node, Hash)> = self.nodes.clone();
        let needed = self.query.nodes();
        if blocks.len() != self.segments.len() {
            return Err("a segment the proof needs was not read".into());
        }
        for (seg, entries) in self.segments.iter().zip(blocks) {
            let j = (seg.first - 1) / SEGMENT_ENTRIES;
            let tree = checked_tree(seg, entries, held(block_root(j)))?;
            let base = j * SEGMENT_ENTRIES;
            for n in &needed {
                let first = n.index << n.level;
                if n.level < SEGMENT_LEVEL && first >= base && first < base + SEGMENT_ENTRIES {
                    let local = Node {
                        level: n.level,
                        index: n.index - (base >> n.level),
                    };
                    if let Some(h) = tree.node(local) {
                        known.push((*n, h));
                    }
                }
            }
        }
        let get = |n: Node| known.iter().find(|(m, _)| *m == n).map(|(_, h)| *h);
        let missing = || "a hash the proof needs is neither held nor archived".to_string();
        match self.query {
            ProofQuery::Inclusion { version, tree_size } => {
                let index = version - 1;
                let proof = merkle::inclusion_proof(index, tree_size, &get).ok_or_else(missing)?;
                let leaf = merkle::range_hash(index, index + 1, &get).ok_or_else(missing)?;
                Ok(ledger::inclusion_json(version, tree_size, &leaf, &proof))
            }
            ProofQuery::Consistency { from, to } => {
                let proof = merkle::consistency_proof(from, to, &get).ok_or_else(missing)?;
                Ok(ledger::consistency_json(from, to, &proof))
            }
        }
    }
}

/// The Merkle tree of a segment's checked entries, believed only if it is one whole segment
/// that hashes to `root`, the segment root the counter holds.
fn checked_tree(
    seg: &Segment,
    entries: &[AuditEntry],
    root: Option<Hash>,
) -> Result<MemoryTree, String> {
    let mut tree = MemoryTree::new();
    for e in entries {
        tree.push(ledger::entry_hash(e));
    }
    let got = merkle::root(tree.size(), &tree.getter());
    if tree.size() != SEGMENT_ENTRIES || got.is_none() || got != root {
        return Err(format!(
            "segment {} does not hash to the segment root the counter holds",
            seg.name()
        ));
    }
    Ok(tree)
}

/// Which past state a [`AsOfPointer`] asks of its segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AsOfTarget {
    /// The entry of this version (in the segment).
    Version(u64),
    /// The last entry at or before this instant (RFC 3339 UTC with milliseconds, as the trail
    /// writes `at`). The counter chose the segment so that this entry is in it: the segment's
    /// first entry is at or before the instant, and the entry after the segment is not.
    Time(String),
}

/// The counter's answer to `GET /api/value?as_of_version=|as_of=` when the past state lies in
/// an archived segment: what to look for, whether the inclusion proof is wanted, and a
/// [`ProofPointer`] for an inclusion proof of the segment's first version in the current tree,
/// naming the one segment and holding its segment root and every hash above it. Every entry
/// of a complete, aligned segment has the same hashes above the segment's root on its path,
/// so the same pointer proves whichever entry the Worker finds in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AsOfPointer {
    pub target: AsOfTarget,
    pub proof: bool,
    pub pointer: ProofPointer,
}

impl AsOfPointer {
    pub fn to_json(&self) -> String {
        let mut w = JsonWriter::object();
        match &self.target {
            AsOfTarget::Version(v) => w.uint("version", *v),
            AsOfTarget::Time(t) => w.string("at", t),
        };
        w.bool("proof", self.proof)
            .raw("pointer", &self.pointer.to_json())
            .finish()
    }

    pub fn from_json(v: &serde_json::Value) -> Option<AsOfPointer> {
        let target = match (v.get("version"), v.get("at")) {
            (Some(n), None) => AsOfTarget::Version(n.as_u64()?),
            (None, Some(t)) => AsOfTarget::Time(t.as_str()?.to_owned()),
            _ => return None,
        };
        let pointer = ProofPointer::from_json(v.get("pointer")?)?;
        let one = pointer.segments.len() == 1
            && matches!(pointer.query, ProofQuery::Inclusion { version, .. } if version == pointer.segments[0].first);
        one.then_some(AsOfPointer {
            target,
            proof: v.get("proof")?.as_bool()?,
            pointer,
        })
    }

    /// The segment to read.
    pub fn segment(&self) -> &Segment {
        &self.pointer.segments[0]
    }

    /// The body of the past value (exactly what the counter renders for a hot one), from the
    /// segment's checked entries ([`read_segment`]). They are believed only if they hash to the
    /// segment root the counter holds; the entry must be where the counter said it is.
    pub fn answer(&self, entries: &[AuditEntry]) -> Result<String, String> {
        let seg = self.segment();
        let j = (seg.first - 1) / SEGMENT_ENTRIES;
        let root = self
            .pointer
            .nodes
            .iter()
            .find(|(n, _)| *n == block_root(j))
            .map(|(_, h)| *h);
        checked_tree(seg, entries, root)?;
        let entry = match &self.target {
            AsOfTarget::Version(v) => entries.iter().find(|e| e.version == *v),
            AsOfTarget::Time(t) => entries.iter().rev().find(|e| e.at.as_str() <= t.as_str()),
        }
        .ok_or_else(|| {
            format!(
                "segment {} does not hold the entry the counter pointed to",
                seg.name()
            )
        })?;
        let proof = if self.proof {
            let ProofQuery::Inclusion { tree_size, .. } = self.pointer.query else {
                return Err("the as-of pointer does not carry an inclusion query".into());
            };
            let p = ProofPointer {
                query: ProofQuery::Inclusion {
                    version: entry.version,
                    tree_size,
                },
                ..self.pointer.clone()
            };
            Some(p.prove(&[entries.to_vec()])?)
        } else {
            None
        };
        Ok(ledger::as_of_json(Some(entry), proof.as_deref()))
    }
}

/// When the next archival attempt runs after `failures` consecutive failures.
pub fn backoff_ms(failures: u32) -> i64 {
    let (first, cap) = BACKOFF_MS;
    let shift = failures.saturating_sub(1).min(20);
    first.saturating_mul(1 << shift).min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::vocab::Operation;
    use std::collections::HashMap;

    fn entry(version: u64) -> AuditEntry {
        AuditEntry {
            version,
            operation: Operation::Increment,
            amount: 1,
            previous_value: version as i64 - 1,
            value: version as i64,
            request_id: format!("k-{version}"),
            at: "2026-11-29T21:00:00.000Z".into(),
        }
    }

    fn segment(first: u64, last: u64) -> (Segment, Vec<u8>) {
        let entries: Vec<_> = (first..=last).map(entry).collect();
        let bytes = segment_bytes(&entries);
        (Segment::of(first, last, &bytes), bytes)
    }

    #[test]
    fn settings_defaults_and_errors() {
        let (s, e) = Settings::parse(None, None, None);
        assert_eq!(s, Settings::default());
        assert!(e.is_empty());
        assert!(!s.archives());
        let (s, e) = Settings::parse(Some("500"), Some("24"), Some("60"));
        assert!(e.is_empty());
        assert_eq!(
            (s.hot_entries, s.hot_hours, s.retention_secs),
            (500, 24, 60)
        );
        let (s, e) = Settings::parse(Some("-1"), Some("x"), Some("0"));
        assert_eq!(s, Settings::default());
        assert_eq!(e.len(), 3);
        assert!(e[2].contains("IDEMPOTENCY_RETENTION_SECONDS"));
    }

    #[test]
    fn cutoffs_compare_as_text() {
        let s = Settings {
            hot_entries: 1,
            hot_hours: 2,
            retention_secs: 60,
        };
        assert_eq!(s.key_cutoff(120_000), "1970-01-01T00:01:00.000Z");
        assert_eq!(
            s.age_cutoff(3 * 3_600_000).as_deref(),
            Some("1970-01-01T01:00:00.000Z")
        );
        assert_eq!(Settings::default().age_cutoff(0), None);
        assert!(s.key_cutoff(120_000) < crate::core::time::rfc3339_millis(60_001));
    }

    #[test]
    fn segments_follow_the_window_in_bounded_steps() {
        let s = Settings {
            hot_entries: 100,
            hot_hours: 0,
            retention_secs: 60,
        };
        assert_eq!(next_segment(&s, 0, 1_123, 0, 1_123), None);
        assert_eq!(next_segment(&s, 0, 1_124, 0, 1_124), Some((1, 1024)));
        assert_eq!(next_segment(&s, 0, 5_000, 0, 5_000), Some((1, 1024)));
        assert_eq!(next_segment(&s, 1024, 5_000, 0, 5_000), Some((1025, 2048)));
        assert_eq!(next_segment(&s, 4096, 5_000, 0, 5_000), None);
        // Never beyond what the Merkle tree has hashed.
        assert_eq!(next_segment(&s, 0, 5_000, 0, 1_023), None);
        assert_eq!(next_segment(&s, 0, 5_000, 0, 1_024), Some((1, 1024)));
        // The age limit archives inside the window, never beyond the counter.
        assert_eq!(next_segment(&s, 0, 1_100, 1_050, 1_100), Some((1, 1024)));
        assert_eq!(next_segment(&s, 0, 1_000, 5_000, 1_000), None);
        // 0 keeps everything.
        let keep = Settings::default();
        assert_eq!(
            next_segment(&keep, 0, 1_000_000, 1_000_000, 1_000_000),
            None
        );
    }

    #[test]
    fn names_sort_by_version() {
        let a = segment_name(1, 1000);
        let b = segment_name(1001, 2000);
        let c = segment_name(10_001, 11_000);
        assert!(a < b && b < c);
        assert_eq!(a, "audit/00000000000000000001-00000000000000001000.ndjson");
    }

    #[test]
    fn a_segment_is_the_leaf_bytes_and_reads_back() {
        let (seg, bytes) = segment(5, 9);
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert_eq!(text.lines().count(), 5);
        assert_eq!(
            text.lines().next().unwrap().as_bytes(),
            ledger::leaf_bytes(&entry(5))
        );
        let back = read_segment(&seg, &bytes).unwrap();
        assert_eq!(back, (5..=9).map(entry).collect::<Vec<_>>());
        let v: serde_json::Value = serde_json::from_str(&seg.to_json()).unwrap();
        assert_eq!(Segment::from_json(&v), Some(seg));
    }

    #[test]
    fn hostile_segments_are_refused() {
        let (seg, bytes) = segment(1, 3);
        // One byte changed: the hash differs.
        let mut changed = bytes.clone();
        let at = changed.iter().position(|b| *b == b'1').unwrap();
        changed[at] = b'2';
        assert!(read_segment(&seg, &changed)
            .unwrap_err()
            .contains("SHA-256"));
        // Truncated: the size differs.
        assert!(read_segment(&seg, &bytes[..bytes.len() - 1])
            .unwrap_err()
            .contains("bytes"));
        // A record that lies about the range, with matching hash and size: versions differ.
        let lying = Segment {
            first: 2,
            last: 4,
            ..seg.clone()
        };
        assert!(read_segment(&lying, &bytes)
            .unwrap_err()
            .contains("expected 2"));
        let short = Segment {
            last: 4,
            ..seg.clone()
        };
        assert!(read_segment(&short, &bytes)
            .unwrap_err()
            .contains("entries"));
        // Well-formed but not canonical JSON, hash recomputed to match: refused by the line check.
        let spaced = String::from_utf8(bytes)
            .unwrap()
            .replacen(":", ": ", 1)
            .into_bytes();
        let rec = Segment::of(1, 3, &spaced);
        assert!(read_segment(&rec, &spaced).is_err());
    }

    #[test]
    fn pages_from_a_segment() {
        let entries: Vec<_> = (1..=10).map(entry).collect();
        let v: serde_json::Value =
            serde_json::from_str(&page_from_segment(&entries, 3, 4, 50)).unwrap();
        let versions: Vec<u64> = v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["version"].as_u64().unwrap())
            .collect();
        assert_eq!(versions, vec![4, 5, 6, 7]);
        assert_eq!(v["next_after"], 7);
        // The segment's end: the page stops there and points past it.
        let v: serde_json::Value =
            serde_json::from_str(&page_from_segment(&entries, 8, 100, 50)).unwrap();
        assert_eq!(v["entries"].as_array().unwrap().len(), 2);
        assert_eq!(v["next_after"], 10);
        // Nothing after the counter's version: no next page.
        let v: serde_json::Value =
            serde_json::from_str(&page_from_segment(&entries, 8, 100, 10)).unwrap();
        assert!(v["next_after"].is_null());
    }

    /// A log of `n` entries, its in-memory tree, and what an object that archived through
    /// `through` still holds (segment roots, and every node not below the segment level
    /// inside an archived block).
    fn archived_log(n: u64, through: u64) -> (Vec<AuditEntry>, MemoryTree, HashMap<Node, Hash>) {
        archived_log_of((1..=n).map(entry).collect(), through)
    }

    fn archived_log_of(
        entries: Vec<AuditEntry>,
        through: u64,
    ) -> (Vec<AuditEntry>, MemoryTree, HashMap<Node, Hash>) {
        let n = entries.len() as u64;
        let mut tree = MemoryTree::new();
        for e in &entries {
            tree.push(ledger::entry_hash(e));
        }
        let mut held = HashMap::new();
        for level in 0..20u32 {
            for index in 0..(n >> level) {
                let node = Node { level, index };
                if level < SEGMENT_LEVEL && node.last_leaf() < through {
                    continue;
                }
                held.insert(node, tree.node(node).unwrap());
            }
        }
        (entries, tree, held)
    }

    fn pointer_for(
        q: ProofQuery,
        through: u64,
        entries: &[AuditEntry],
        held: &HashMap<Node, Hash>,
    ) -> (ProofPointer, Vec<Vec<AuditEntry>>) {
        let nodes = q.nodes();
        let blocks = archived_blocks(&nodes, through);
        let mut with_roots: Vec<(Node, Hash)> = nodes
            .iter()
            .filter_map(|n| held.get(n).map(|h| (*n, *h)))
            .collect();
        for j in &blocks {
            with_roots.push((block_root(*j), held[&block_root(*j)]));
        }
        let mut segs = Vec::new();
        let mut parts = Vec::new();
        for j in &blocks {
            let part: Vec<AuditEntry> =
                entries[(*j * 1024) as usize..((*j + 1) * 1024) as usize].to_vec();
            let bytes = segment_bytes(&part);
            segs.push(Segment::of(j * 1024 + 1, (j + 1) * 1024, &bytes));
            parts.push(part);
        }
        let p = ProofPointer {
            query: q,
            segments: segs,
            nodes: with_roots,
        };
        let back = ProofPointer::from_json(&serde_json::from_str(&p.to_json()).unwrap()).unwrap();
        assert_eq!(back, p);
        (p, parts)
    }

    #[test]
    fn proofs_over_archived_segments_verify_and_spoiled_segments_do_not() {
        let (n, through) = (5_000u64, 3 * 1024);
        let (entries, tree, held) = archived_log(n, through);
        let root = merkle::root(n, &tree.getter()).unwrap();
        for version in [1u64, 2, 777, 1024, 1025, 2048, 3072, 3073, 4999, 5000] {
            let q = ProofQuery::Inclusion {
                version,
                tree_size: n,
            };
            let (p, parts) = pointer_for(q, through, &entries, &held);
            let v: serde_json::Value = serde_json::from_str(&p.prove(&parts).unwrap()).unwrap();
            let proof = ledger::parse_hashes(&v).unwrap();
            let leaf = ledger::entry_hash(&entries[version as usize - 1]);
            merkle::verify_inclusion(version - 1, n, &leaf, &proof, &root)
                .unwrap_or_else(|e| panic!("{version}: {e}"));
        }
        for from in [1u64, 5, 1023, 1024, 1500, 3072, 3100, 4999] {
            let q = ProofQuery::Consistency { from, to: n };
            let (p, parts) = pointer_for(q, through, &entries, &held);
            let v: serde_json::Value = serde_json::from_str(&p.prove(&parts).unwrap()).unwrap();
            let proof = ledger::parse_hashes(&v).unwrap();
            let old = merkle::root(from, &tree.getter()).unwrap();
            merkle::verify_consistency(from, n, &old, &root, &proof)
                .unwrap_or_else(|e| panic!("{from}: {e}"));
        }
        // A segment whose entries were altered (even with a matching record) is refused.
        let q = ProofQuery::Inclusion {
            version: 10,
            tree_size: n,
        };
        let (p, mut parts) = pointer_for(q, through, &entries, &held);
        parts[0][9].amount += 1;
        assert!(p.prove(&parts).unwrap_err().contains("segment root"));
        // Hot versions need no segment at all.
        assert!(archived_blocks(
            &ProofQuery::Inclusion {
                version: 4000,
                tree_size: n
            }
            .nodes(),
            through
        )
        .is_empty());
    }

    #[test]
    fn past_values_from_an_archived_segment_with_proofs() {
        let (n, through) = (4_000u64, 3 * 1024);
        // Distinct instants, two entries each, so that a time names one entry.
        let mut entries: Vec<_> = (1..=n).map(entry).collect();
        for e in entries.iter_mut() {
            e.at = format!(
                "2026-11-29T21:00:{:02}.{:03}Z",
                e.version / 2000,
                e.version / 2 % 1000
            );
        }
        let (entries, tree, held) = archived_log_of(entries, through);
        let root = merkle::root(n, &tree.getter()).unwrap();
        for j in [0u64, 2] {
            let first = j * 1024 + 1;
            let q = ProofQuery::Inclusion {
                version: first,
                tree_size: n,
            };
            let (pointer, parts) = pointer_for(q, through, &entries, &held);
            assert_eq!(parts.len(), 1);
            for version in (first..first + 1024).step_by(211).chain([first + 1023]) {
                let e = &entries[version as usize - 1];
                for (target, want) in [
                    (AsOfTarget::Version(version), version),
                    // The instant of an odd version is its even predecessor's too: the last
                    // entry at or before it is the later of the two.
                    (AsOfTarget::Time(e.at.clone()), version | 1),
                ] {
                    let want = want.min(first + 1023);
                    let p = AsOfPointer {
                        target,
                        proof: true,
                        pointer: pointer.clone(),
                    };
                    let back = AsOfPointer::from_json(&serde_json::from_str(&p.to_json()).unwrap());
                    assert_eq!(back.as_ref(), Some(&p));
                    let v: serde_json::Value =
                        serde_json::from_str(&p.answer(&parts[0]).unwrap()).unwrap();
                    assert_eq!(v["version"], want, "{p:?}");
                    assert_eq!(v["value"], entries[want as usize - 1].value);
                    assert_eq!(v["updated_at"], entries[want as usize - 1].at);
                    let proof = ledger::parse_hashes(&v["inclusion"]).unwrap();
                    let leaf = ledger::entry_hash(&entries[want as usize - 1]);
                    merkle::verify_inclusion(want - 1, n, &leaf, &proof, &root)
                        .unwrap_or_else(|e| panic!("{want}: {e}"));
                }
            }
            // Without the proof: the same value, no inclusion member.
            let p = AsOfPointer {
                target: AsOfTarget::Version(first + 5),
                proof: false,
                pointer: pointer.clone(),
            };
            let v: serde_json::Value = serde_json::from_str(&p.answer(&parts[0]).unwrap()).unwrap();
            assert_eq!(v["version"], first + 5);
            assert!(v.get("inclusion").is_none());
            // Entries that do not hash to the segment root the counter holds are refused, even
            // when they would pass the record's checks (a record that was rewritten with them).
            let mut spoiled = parts[0].clone();
            spoiled[3].value += 1;
            assert!(p.answer(&spoiled).unwrap_err().contains("segment root"));
            assert!(p.answer(&parts[0][..1023]).is_err());
            // A version the segment does not hold.
            let outside = AsOfPointer {
                target: AsOfTarget::Version(first + 1024),
                ..p.clone()
            };
            assert!(outside.answer(&parts[0]).is_err());
        }
    }

    #[test]
    fn backoff_doubles_to_a_cap() {
        assert_eq!(backoff_ms(1), 2_000);
        assert_eq!(backoff_ms(2), 4_000);
        assert_eq!(backoff_ms(30), 300_000);
    }
}
