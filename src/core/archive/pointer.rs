//! What the object sends the Worker when an answer lies in the archive: the segment to read
//! for an audit page ([`pointer_json`]), the hashes and segments a proof needs
//! ([`ProofPointer`]), and a past value's segment ([`AsOfPointer`]); and how the Worker
//! completes each from the segments it read.
//!
//! The pointers are JSON written and read with serde derive; what the types cannot say (a
//! segment's bounds, a hash's encoding, an as-of pointer's one segment) is checked as they are
//! read, and a pointer that fails is a [`serde_json::Error`] naming the cause.
//!
//! The file is past 600 lines only with its unit tests, which sit beside the code they check.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::segment::Segment;
use super::{SEGMENT_ENTRIES, SEGMENT_LEVEL};
use crate::core::audit::AuditEntry;
use crate::core::ledger;
use crate::core::ledger::checkpoint::{decode_hash, encode_hash};
use crate::core::ledger::merkle::{self, Hash, MemoryTree, Node};

/// The object's answer to an audit read that starts in the archive: the segment to read and
/// the counter's version (so the Worker knows whether another page follows the segment). As
/// JSON: `{"segment":…,"version":…}` ([`pointer_json`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentPointer {
    #[serde(with = "segment")]
    pub segment: Segment,
    pub version: u64,
}

impl SegmentPointer {
    /// A pointer from its JSON, or why not.
    pub fn from_json(text: &str) -> Result<SegmentPointer, serde_json::Error> {
        serde_json::from_str(text)
    }
}

/// The JSON of a [`SegmentPointer`] to `seg` at `version`.
pub fn pointer_json(seg: &Segment, version: u64) -> String {
    // Integers and strings: serializing cannot fail.
    serde_json::to_string(&SegmentPointer {
        segment: seg.clone(),
        version,
    })
    .unwrap_or_default()
}

/// The header that marks an object answer as a [`pointer_json`] rather than a page.
pub const POINTER_HEADER: &str = "x-archive-segment";

/// A proof the counter cannot make alone because some of the hashes it needs belong to
/// archived segments (their Merkle rows below [`SEGMENT_LEVEL`] leave the object with their
/// entries). The counter sends this instead: the query, every needed hash it still holds
/// (including each segment's root, level 10, which it always keeps), and the segments; the
/// Worker rebuilds the missing hashes from the segments and makes the proof
/// ([`ProofPointer::prove`]). As JSON: `{"query":…,"segments":[…],"nodes":[[level,index,hash],…]}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofPointer {
    pub query: ProofQuery,
    #[serde(with = "segments")]
    pub segments: Vec<Segment>,
    #[serde(with = "nodes")]
    pub nodes: Vec<(Node, Hash)>,
}

/// The proof asked for, with its sizes resolved. As JSON: `{"kind":"inclusion","version":…,
/// "tree_size":…}` or `{"kind":"consistency","from":…,"to":…}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
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

/// A segment record in a pointer: [`Segment::to_json`]'s members (`name`, which the reader
/// does not need, included), read back with [`Segment::from_json`]'s checks.
#[derive(Serialize, Deserialize)]
struct SegmentRecord {
    #[serde(default, skip_deserializing)]
    name: String,
    first: u64,
    last: u64,
    bytes: u64,
    sha256: String,
}

impl SegmentRecord {
    fn of(seg: &Segment) -> SegmentRecord {
        SegmentRecord {
            name: seg.name(),
            first: seg.first,
            last: seg.last,
            bytes: seg.bytes,
            sha256: seg.sha256.clone(),
        }
    }

    fn segment<E: serde::de::Error>(self) -> Result<Segment, E> {
        let seg = Segment {
            first: self.first,
            last: self.last,
            bytes: self.bytes,
            sha256: self.sha256,
        };
        if seg.first >= 1 && seg.last >= seg.first && seg.sha256.len() == 64 {
            Ok(seg)
        } else {
            Err(E::custom(format!(
                "segment {}..={} is not a segment record",
                seg.first, seg.last
            )))
        }
    }
}

mod segment {
    use super::*;

    pub fn serialize<S: Serializer>(seg: &Segment, s: S) -> Result<S::Ok, S::Error> {
        SegmentRecord::of(seg).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Segment, D::Error> {
        SegmentRecord::deserialize(d)?.segment()
    }
}

mod segments {
    use super::*;

    pub fn serialize<S: Serializer>(segs: &[Segment], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(segs.iter().map(SegmentRecord::of))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Segment>, D::Error> {
        Vec::<SegmentRecord>::deserialize(d)?
            .into_iter()
            .map(SegmentRecord::segment)
            .collect()
    }
}

/// Nodes and their hashes as `[level, index, "<base64>"]`.
mod nodes {
    use super::*;

    pub fn serialize<S: Serializer>(nodes: &[(Node, Hash)], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            nodes
                .iter()
                .map(|(n, h)| (n.level, n.index, encode_hash(h))),
        )
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(Node, Hash)>, D::Error> {
        Vec::<(u32, u64, String)>::deserialize(d)?
            .into_iter()
            .map(|(level, index, hash)| {
                let h = decode_hash(&hash).ok_or_else(|| {
                    D::Error::custom(format!("the hash of node {level}/{index} is not one"))
                })?;
                Ok((Node { level, index }, h))
            })
            .collect()
    }
}

impl ProofPointer {
    /// The pointer as JSON.
    pub fn to_json(&self) -> String {
        // Integers, strings and sequences: serializing cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A pointer from its JSON, or why not.
    pub fn from_json(text: &str) -> Result<ProofPointer, serde_json::Error> {
        serde_json::from_str(text)
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

/// Which past state a [`AsOfPointer`] asks of its segment. As JSON, a member of the pointer:
/// `"version":…` or `"at":…`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AsOfTarget {
    /// The entry of this version (in the segment).
    Version(u64),
    /// The last entry at or before this instant (RFC 3339 UTC with milliseconds, as the trail
    /// writes `at`). The counter chose the segment so that this entry is in it: the segment's
    /// first entry is at or before the instant, and the entry after the segment is not.
    #[serde(rename = "at")]
    Time(String),
}

/// The counter's answer to `GET /api/value?as_of_version=|as_of=` when the past state lies in
/// an archived segment: what to look for, whether the inclusion proof is wanted, and a
/// [`ProofPointer`] for an inclusion proof of the segment's first version in the current tree,
/// naming the one segment and holding its segment root and every hash above it. Every entry
/// of a complete, aligned segment has the same hashes above the segment's root on its path,
/// so the same pointer proves whichever entry the Worker finds in it. As JSON:
/// `{"version"|"at":…,"proof":…,"pointer":…}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AsOfPointer {
    #[serde(flatten)]
    pub target: AsOfTarget,
    pub proof: bool,
    pub pointer: ProofPointer,
}

impl AsOfPointer {
    /// The pointer as JSON.
    pub fn to_json(&self) -> String {
        // Integers, strings and sequences: serializing cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A pointer from its JSON, or why not: it must name one segment, with an inclusion query
    /// for the segment's first version.
    pub fn from_json(text: &str) -> Result<AsOfPointer, serde_json::Error> {
        let p: AsOfPointer = serde_json::from_str(text)?;
        let one = p.pointer.segments.len() == 1
            && matches!(p.pointer.query, ProofQuery::Inclusion { version, .. } if version == p.pointer.segments[0].first);
        if one {
            Ok(p)
        } else {
            Err(serde_json::Error::custom(
                "an as-of pointer must name one segment and prove its first version",
            ))
        }
    }

    /// The segment to read.
    pub fn segment(&self) -> &Segment {
        &self.pointer.segments[0]
    }

    /// The body of the past value (exactly what the counter renders for a hot one), from the
    /// segment's checked entries ([`read_segment`](super::read_segment)). They are believed only if they hash to the
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::archive::fixtures::entry;
    use crate::core::archive::segment::segment_bytes;
    use std::collections::HashMap;

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
        let back = ProofPointer::from_json(&p.to_json()).unwrap();
        assert_eq!(back, p);
        (p, parts)
    }

    #[test]
    fn pointers_keep_their_json() {
        let seg = Segment {
            first: 1025,
            last: 2048,
            bytes: 123,
            sha256: "ab".repeat(32),
        };
        let sp = pointer_json(&seg, 7);
        assert_eq!(
            sp,
            format!(r#"{{"segment":{},"version":7}}"#, seg.to_json())
        );
        let back = SegmentPointer::from_json(&sp).unwrap();
        assert_eq!((back.segment, back.version), (seg.clone(), 7));
        let hash: Hash = [7u8; 32];
        let p = ProofPointer {
            query: ProofQuery::Inclusion {
                version: 1025,
                tree_size: 4000,
            },
            segments: vec![seg.clone()],
            nodes: vec![(
                Node {
                    level: 10,
                    index: 1,
                },
                hash,
            )],
        };
        let proof_json = format!(
            r#"{{"query":{{"kind":"inclusion","version":1025,"tree_size":4000}},"segments":[{}],"nodes":[[10,1,"{}"]]}}"#,
            seg.to_json(),
            encode_hash(&hash)
        );
        assert_eq!(p.to_json(), proof_json);
        let c = ProofPointer {
            query: ProofQuery::Consistency { from: 2, to: 9 },
            segments: vec![],
            nodes: vec![],
        };
        assert_eq!(
            c.to_json(),
            r#"{"query":{"kind":"consistency","from":2,"to":9},"segments":[],"nodes":[]}"#
        );
        for (target, member) in [
            (AsOfTarget::Version(1030), r#""version":1030"#.to_owned()),
            (
                AsOfTarget::Time("2026-11-29T20:00:00.000Z".into()),
                r#""at":"2026-11-29T20:00:00.000Z""#.to_owned(),
            ),
        ] {
            let a = AsOfPointer {
                target,
                proof: false,
                pointer: p.clone(),
            };
            assert_eq!(
                a.to_json(),
                format!(r#"{{{member},"proof":false,"pointer":{proof_json}}}"#)
            );
            assert_eq!(AsOfPointer::from_json(&a.to_json()).unwrap(), a);
        }
        // What the types cannot say is checked as they are read, and the error says what.
        let bad_hash = proof_json.replace(&encode_hash(&hash), "not base64");
        let e = ProofPointer::from_json(&bad_hash).unwrap_err();
        assert!(e.to_string().contains("node 10/1"), "{e}");
        let bad_seg = proof_json.replace(r#""first":1025"#, r#""first":0"#);
        assert!(ProofPointer::from_json(&bad_seg).is_err());
        let two = AsOfPointer {
            target: AsOfTarget::Version(1030),
            proof: false,
            pointer: ProofPointer {
                segments: vec![seg.clone(), seg.clone()],
                ..p.clone()
            },
        };
        assert!(AsOfPointer::from_json(&two.to_json())
            .unwrap_err()
            .to_string()
            .contains("one segment"));
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
                    let back = AsOfPointer::from_json(&p.to_json()).ok();
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
}
