//! A segment: its name and bytes, the object's record of it, checking what R2 returns against
//! that record, and an audit page read from it.

use sha2::{Digest, Sha256};

use crate::core::audit::AuditEntry;
use crate::core::json::JsonWriter;
use crate::core::ledger;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::archive::fixtures::{entry, segment};

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
}
