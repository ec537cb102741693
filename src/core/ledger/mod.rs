//! The audit trail as a verifiable ledger: which bytes an audit entry is in the Merkle tree,
//! the proof queries, and the replay checks anyone can run over the whole history.
//!
//! - Leaf bytes: the entry's canonical JSON (RFC 8785 — members sorted by name, no white
//!   space). With integers within ±(2^53 − 1) and RFC 8785's string escapes (which
//!   [`JsonWriter`] and serde both write), the compact object with its members written in
//!   sorted order is exactly that, without an intermediate value; a test holds it to serde's
//!   output of the same struct and to a generic sort-and-print.
//! - Leaf `i` (0-based) is the entry of version `i + 1`, so the tree of size `N` is the
//!   history up to version `N`.
//! - [`Auditor`] replays a history line by line in O(log N) memory and says precisely what is
//!   wrong with it: a line that is not canonical, a gap, a broken `previous_value` chain, a
//!   value that does not follow its operation, a root that differs from a checkpoint's.

use serde::Deserialize;

pub mod checkpoint;
pub mod merkle;

use super::audit::AuditEntry;
use self::checkpoint::{decode_hash, encode_hash, Checkpoint};
use super::json::JsonWriter;
use self::merkle::{Frontier, Hash};
use super::problem::Problem;
use super::query;
use super::vocab::{Operation, MAX_VALUE};

/// The leaf form of an audit entry: the same seven facts, members in sorted order.
#[derive(Deserialize, Debug, PartialEq, Eq)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
struct Leaf<'a> {
    amount: i64,
    at: &'a str,
    operation: &'a str,
    previous_value: i64,
    request_id: &'a str,
    value: i64,
    version: u64,
}

/// The canonical JSON bytes of `e`: its Merkle leaf and its NDJSON export line.
pub fn leaf_bytes(e: &AuditEntry) -> Vec<u8> {
    JsonWriter::object_with_capacity(192)
        .int("amount", e.amount)
        .string("at", &e.at)
        .string("operation", e.operation.as_str())
        .int("previous_value", e.previous_value)
        .string("request_id", &e.request_id)
        .int("value", e.value)
        .uint("version", e.version)
        .finish()
        .into_bytes()
}

/// The leaf hash of `e`.
pub fn entry_hash(e: &AuditEntry) -> Hash {
    merkle::leaf_hash(&leaf_bytes(e))
}

/// What is wrong with a history, each with its own message (and the verifier's exit).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tamper {
    /// A line is not JSON of an audit entry, or not in canonical form.
    NotCanonical { line: u64, why: String },
    /// Versions do not run 1, 2, 3, … .
    Gap { expected: u64, found: u64 },
    /// An entry's `previous_value` is not the prior entry's `value`.
    BrokenChain {
        version: u64,
        previous_value: i64,
        prior_value: i64,
    },
    /// An entry's `value` does not follow from its operation and amount.
    WrongValue { version: u64, detail: String },
    /// The history has fewer entries than the checkpoint's tree size.
    Truncated { entries: u64, size: u64 },
    /// The root over the history differs from the checkpoint's.
    RootMismatch { size: u64 },
    /// The checkpoint's signature does not verify with the given key.
    BadSignature(String),
    /// The log is smaller than a checkpoint saved earlier: history was rolled back.
    RolledBack { saved: u64, size: u64 },
    /// The log's tree does not extend the tree of a checkpoint saved earlier.
    Inconsistent { saved: u64, size: u64 },
}

impl std::fmt::Display for Tamper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Tamper::NotCanonical { line, why } => {
                write!(f, "line {line} is not a canonical audit entry: {why}")
            }
            Tamper::Gap { expected, found } => {
                write!(f, "version gap: expected version {expected}, found {found}")
            }
            Tamper::BrokenChain {
                version,
                previous_value,
                prior_value,
            } => write!(
                f,
                "broken chain at version {version}: previous_value {previous_value} but the prior entry's value is {prior_value}"
            ),
            Tamper::WrongValue { version, detail } => {
                write!(f, "wrong value at version {version}: {detail}")
            }
            Tamper::Truncated { entries, size } => write!(
                f,
                "the history has {entries} entries but the checkpoint covers {size}"
            ),
            Tamper::RootMismatch { size } => write!(
                f,
                "root mismatch: the entries 1..{size} do not hash to the checkpoint's root"
            ),
            Tamper::BadSignature(why) => write!(f, "bad checkpoint signature: {why}"),
            Tamper::RolledBack { saved, size } => write!(
                f,
                "rolled back: the log's tree size is {size}, but a checkpoint saved earlier has {saved}"
            ),
            Tamper::Inconsistent { saved, size } => write!(
                f,
                "inconsistent: the tree of size {size} does not extend the saved checkpoint of size {saved}; history was rewritten"
            ),
        }
    }
}

impl Tamper {
    /// A short stable name of the kind of tampering, for scripts.
    pub fn kind(&self) -> &'static str {
        match self {
            Tamper::NotCanonical { .. } => "not-canonical",
            Tamper::Gap { .. } => "gap",
            Tamper::BrokenChain { .. } => "broken-chain",
            Tamper::WrongValue { .. } => "wrong-value",
            Tamper::Truncated { .. } => "truncated",
            Tamper::RootMismatch { .. } => "root-mismatch",
            Tamper::BadSignature(_) => "bad-signature",
            Tamper::RolledBack { .. } => "rolled-back",
            Tamper::Inconsistent { .. } => "inconsistent",
        }
    }

    /// The verifier's exit status for this kind (1 is left for usage and I/O errors).
    pub fn exit_code(&self) -> u8 {
        match self {
            Tamper::BadSignature(_) => 2,
            Tamper::NotCanonical { .. } => 3,
            Tamper::Gap { .. } => 4,
            Tamper::BrokenChain { .. } => 5,
            Tamper::WrongValue { .. } => 6,
            Tamper::Truncated { .. } => 7,
            Tamper::RootMismatch { .. } => 8,
            Tamper::RolledBack { .. } => 9,
            Tamper::Inconsistent { .. } => 10,
        }
    }
}

/// Parses one export line (without its newline) into an entry, refusing anything but the
/// canonical bytes of an entry.
pub fn parse_line(line: &str, line_no: u64) -> Result<AuditEntry, Tamper> {
    let bad = |why: String| Tamper::NotCanonical { line: line_no, why };
    let leaf: Leaf = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
    let operation = Operation::parse(leaf.operation)
        .ok_or_else(|| bad(format!("unknown operation {:?}", leaf.operation)))?;
    let entry = AuditEntry {
        version: leaf.version,
        operation,
        amount: leaf.amount,
        previous_value: leaf.previous_value,
        value: leaf.value,
        request_id: leaf.request_id.to_owned(),
        at: leaf.at.to_owned(),
    };
    if leaf_bytes(&entry) != line.as_bytes() {
        return Err(bad(
            "members out of order, extra white space or escapes".into()
        ));
    }
    Ok(entry)
}

/// An entry as `GET /api/audit` renders it.
pub fn entry_from_json(v: &serde_json::Value) -> Option<AuditEntry> {
    Some(AuditEntry {
        version: v.get("version")?.as_u64()?,
        operation: Operation::parse(v.get("operation")?.as_str()?)?,
        amount: v.get("amount")?.as_i64()?,
        previous_value: v.get("previous_value")?.as_i64()?,
        value: v.get("value")?.as_i64()?,
        request_id: v.get("request_id")?.as_str()?.to_owned(),
        at: v.get("at")?.as_str()?.to_owned(),
    })
}

/// Checks a new checkpoint against one saved earlier, given the consistency proof between
/// them (from the log, or computed from the replayed history).
pub fn check_saved(saved: &Checkpoint, now: &Checkpoint, proof: &[Hash]) -> Result<(), Tamper> {
    if saved.size > now.size {
        return Err(Tamper::RolledBack {
            saved: saved.size,
            size: now.size,
        });
    }
    merkle::verify_consistency(saved.size, now.size, &saved.root, &now.root, proof).map_err(|_| {
        Tamper::Inconsistent {
            saved: saved.size,
            size: now.size,
        }
    })
}

/// The value an operation leads to from `previous`, or why it cannot.
pub fn follows(op: Operation, amount: i64, previous: i64) -> Result<i64, String> {
    let max = MAX_VALUE;
    let value = match op {
        Operation::Increment | Operation::Decrement => {
            if !(1..=1_000_000).contains(&amount) {
                return Err(format!("amount {amount} is outside 1..=1000000"));
            }
            if op == Operation::Increment {
                previous + amount
            } else {
                previous - amount
            }
        }
        Operation::Set => amount,
        Operation::Reset if amount == 0 => 0,
        Operation::Reset => return Err(format!("reset with amount {amount}")),
    };
    if value.abs() > max {
        return Err(format!("value {value} is out of range"));
    }
    Ok(value)
}

/// Replays a history entry by entry: checks every rule and builds the Merkle tree over it.
#[derive(Debug, Default)]
pub struct Auditor {
    frontier: Frontier,
    prior_value: i64,
}

impl Auditor {
    /// Before version 1 (value 0).
    pub fn new() -> Self {
        Self::default()
    }

    /// Entries checked so far (the last version).
    pub fn size(&self) -> u64 {
        self.frontier.size()
    }

    /// The value after the last entry.
    pub fn value(&self) -> i64 {
        self.prior_value
    }

    /// The root over the entries so far.
    pub fn root(&self) -> Hash {
        self.frontier.root()
    }

    /// Checks the next export line (without its newline).
    pub fn push_line(&mut self, line: &str) -> Result<(), Tamper> {
        let entry = parse_line(line, self.size() + 1)?;
        self.check(&entry)?;
        self.frontier.push(merkle::leaf_hash(line.as_bytes()));
        self.prior_value = entry.value;
        Ok(())
    }

    /// Checks the next entry.
    pub fn push(&mut self, entry: &AuditEntry) -> Result<(), Tamper> {
        self.check(entry)?;
        self.frontier.push(entry_hash(entry));
        self.prior_value = entry.value;
        Ok(())
    }

    fn check(&self, e: &AuditEntry) -> Result<(), Tamper> {
        let expected = self.size() + 1;
        if e.version != expected {
            return Err(Tamper::Gap {
                expected,
                found: e.version,
            });
        }
        if e.previous_value != self.prior_value {
            return Err(Tamper::BrokenChain {
                version: e.version,
                previous_value: e.previous_value,
                prior_value: self.prior_value,
            });
        }
        match follows(e.operation, e.amount, e.previous_value) {
            Ok(v) if v == e.value => Ok(()),
            Ok(v) => Err(Tamper::WrongValue {
                version: e.version,
                detail: format!(
                    "{} {} from {} gives {v}, the entry says {}",
                    e.operation.as_str(),
                    e.amount,
                    e.previous_value,
                    e.value
                ),
            }),
            Err(why) => Err(Tamper::WrongValue {
                version: e.version,
                detail: why,
            }),
        }
    }

    /// After the last entry: the history must be exactly the checkpoint's tree.
    pub fn finish(&self, checkpoint: &Checkpoint) -> Result<(), Tamper> {
        if self.size() < checkpoint.size {
            return Err(Tamper::Truncated {
                entries: self.size(),
                size: checkpoint.size,
            });
        }
        if self.size() > checkpoint.size {
            return Err(Tamper::Gap {
                expected: checkpoint.size,
                found: self.size(),
            });
        }
        if self.root() != checkpoint.root {
            return Err(Tamper::RootMismatch {
                size: checkpoint.size,
            });
        }
        Ok(())
    }
}

/// `GET /api/audit/proof/inclusion?version=&tree_size=`: tree size defaults to the current.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InclusionQuery {
    pub version: u64,
    pub tree_size: Option<u64>,
}

/// `GET /api/audit/proof/consistency?from=&to=`: `to` defaults to the current size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConsistencyQuery {
    pub from: u64,
    pub to: Option<u64>,
}

const MAX: u64 = MAX_VALUE as u64;

impl InclusionQuery {
    /// Parses the query string (without `?`).
    pub fn parse(q: &str) -> Result<Self, Problem> {
        let pairs = query::parse(q, &["version", "tree_size"])?;
        let version = query::uint(&pairs, "version", 1, MAX, None)?
            .ok_or_else(|| Problem::InvalidQuery("version is required.".into()))?;
        let tree_size = query::uint(&pairs, "tree_size", 1, MAX, None)?;
        if tree_size.is_some_and(|n| version > n) {
            return Err(Problem::InvalidQuery(
                "version must not be greater than tree_size.".into(),
            ));
        }
        Ok(InclusionQuery { version, tree_size })
    }

    /// The wire form (edge → object).
    pub fn encode(&self) -> String {
        match self.tree_size {
            Some(n) => format!("version={}&tree_size={n}", self.version),
            None => format!("version={}", self.version),
        }
    }
}

impl ConsistencyQuery {
    /// Parses the query string (without `?`).
    pub fn parse(q: &str) -> Result<Self, Problem> {
        let pairs = query::parse(q, &["from", "to"])?;
        let from = query::uint(&pairs, "from", 1, MAX, None)?
            .ok_or_else(|| Problem::InvalidQuery("from is required.".into()))?;
        let to = query::uint(&pairs, "to", 1, MAX, None)?;
        if to.is_some_and(|n| from > n) {
            return Err(Problem::InvalidQuery(
                "from must not be greater than to.".into(),
            ));
        }
        Ok(ConsistencyQuery { from, to })
    }

    /// The wire form (edge → object).
    pub fn encode(&self) -> String {
        match self.to {
            Some(n) => format!("from={}&to={n}", self.from),
            None => format!("from={}", self.from),
        }
    }
}

/// `GET /api/audit/export?format=ndjson|csv&after=&until=`: the entries with versions in
/// `after+1..=until` (`until` defaults to the tree size when the export starts).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExportQuery {
    pub csv: bool,
    pub after: u64,
    pub until: Option<u64>,
}

/// Entries per page the edge asks the object for while streaming an export.
pub const EXPORT_PAGE: u64 = 1000;

impl ExportQuery {
    /// Parses the query string (without `?`).
    pub fn parse(q: &str) -> Result<Self, Problem> {
        let pairs = query::parse(q, &["format", "after", "until"])?;
        let csv = match pairs
            .iter()
            .find(|(n, _)| *n == "format")
            .map(|(_, v)| v.as_str())
        {
            None | Some("ndjson") => false,
            Some("csv") => true,
            Some(other) => {
                return Err(Problem::InvalidQuery(format!(
                    "format must be ndjson or csv; got {:?}.",
                    super::vocab::truncate(other, 40)
                )))
            }
        };
        let after = query::uint(&pairs, "after", 0, MAX, Some(0))?.unwrap_or(0);
        let until = query::uint(&pairs, "until", 0, MAX, None)?;
        if until.is_some_and(|u| after > u) {
            return Err(Problem::InvalidQuery(
                "after must not be greater than until.".into(),
            ));
        }
        Ok(ExportQuery { csv, after, until })
    }

    /// The object's part of an export: one page, `after+1..=until` (edge → object).
    pub fn encode_page(csv: bool, after: u64, until: u64) -> String {
        format!(
            "format={}&after={after}&until={until}",
            if csv { "csv" } else { "ndjson" }
        )
    }
}

/// The header row of a CSV export (RFC 4180, CRLF line ends).
pub const CSV_HEADER: &str = "version,operation,amount,previous_value,value,request_id,at\r\n";

/// One CSV record of an entry. Text cells are quoted when RFC 4180 needs it, and a text cell a
/// spreadsheet could take for a formula (starting with `=`, `+`, `-`, `@`, tab or CR) gets a
/// leading `'`; numbers are written as they are.
pub fn csv_row(e: &AuditEntry) -> String {
    let mut row = format!(
        "{},{},{},{},{},",
        e.version,
        e.operation.as_str(),
        e.amount,
        e.previous_value,
        e.value
    );
    push_csv_text(&mut row, &e.request_id);
    row.push(',');
    push_csv_text(&mut row, &e.at);
    row.push_str("\r\n");
    row
}

fn push_csv_text(out: &mut String, cell: &str) {
    let guarded = matches!(
        cell.chars().next(),
        Some('=' | '+' | '-' | '@' | '\t' | '\r')
    );
    let quoted = cell.contains([',', '"', '\r', '\n']) || guarded;
    if quoted {
        out.push('"');
    }
    if guarded {
        out.push('\'');
    }
    for c in cell.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    if quoted {
        out.push('"');
    }
}

/// One page of an export: NDJSON lines (the leaf bytes) or CSV records.
pub fn export_page(entries: &[AuditEntry], csv: bool) -> String {
    let mut out = String::with_capacity(entries.len() * 170);
    for e in entries {
        if csv {
            out.push_str(&csv_row(e));
        } else {
            out.push_str(std::str::from_utf8(&leaf_bytes(e)).unwrap_or_default());
            out.push('\n');
        }
    }
    out
}

/// Which past state `GET /api/value?as_of_version=` or `?as_of=` asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AsOf {
    /// The value after this version.
    Version(u64),
    /// The value after the last change at or before this instant (RFC 3339, as the audit
    /// trail writes it: UTC, milliseconds).
    Time(String),
}

/// `GET /api/value?as_of_version=<v>|as_of=<RFC 3339>[&proof=true]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AsOfQuery {
    pub at: AsOf,
    /// Include the inclusion proof of that version's entry in the current tree.
    pub proof: bool,
}

impl AsOfQuery {
    /// Whether a `/api/value` query asks for a past state.
    pub fn wanted(q: &str) -> bool {
        q.split('&')
            .any(|p| matches!(p.split('=').next(), Some("as_of" | "as_of_version")))
    }

    /// Parses the query string (without `?`).
    pub fn parse(q: &str) -> Result<Self, Problem> {
        let pairs = query::parse(q, &["as_of", "as_of_version", "proof"])?;
        let get = |n: &str| pairs.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str());
        let at = match (get("as_of_version"), get("as_of")) {
            (Some(_), None) => AsOf::Version(
                query::uint(&pairs, "as_of_version", 0, MAX, None)?.unwrap_or(0),
            ),
            (None, Some(t)) => AsOf::Time(
                super::time::parse_rfc3339(t)
                    .map(super::time::rfc3339_millis)
                    .ok_or_else(|| {
                        Problem::InvalidQuery(format!(
                            "as_of must be an RFC 3339 date-time such as 2026-11-29T20:00:00Z; got {:?}.",
                            super::vocab::truncate(t, 40)
                        ))
                    })?,
            ),
            _ => {
                return Err(Problem::InvalidQuery(
                    "give either as_of_version or as_of.".into(),
                ))
            }
        };
        let proof = match get("proof") {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => return Err(Problem::InvalidQuery("proof must be true or false.".into())),
        };
        Ok(AsOfQuery { at, proof })
    }

    /// The wire form (edge → object).
    pub fn encode(&self) -> String {
        let at = match &self.at {
            AsOf::Version(v) => format!("as_of_version={v}"),
            AsOf::Time(t) => format!("as_of={t}"),
        };
        if self.proof {
            format!("{at}&proof=true")
        } else {
            at
        }
    }
}

/// The body of a past value: `{"value","version","updated_at"}` after `entry` (`None`: before
/// the first change), with `"inclusion"` (an inclusion proof body) when asked for.
pub fn as_of_json(entry: Option<&AuditEntry>, inclusion: Option<&str>) -> String {
    let mut w = JsonWriter::object_with_capacity(128);
    w.int("value", entry.map_or(0, |e| e.value))
        .uint("version", entry.map_or(0, |e| e.version))
        .opt_string("updated_at", entry.map(|e| e.at.as_str()));
    if let Some(p) = inclusion {
        w.raw("inclusion", p);
    }
    w.finish()
}

/// A size asked for beyond the current tree.
pub fn beyond(name: &str, asked: u64, size: u64) -> Problem {
    Problem::InvalidQuery(format!(
        "{name} {asked} is beyond the log, whose tree size is {size}."
    ))
}

/// `["<base64>", …]`.
fn hash_list(hashes: &[Hash]) -> String {
    let mut out = String::with_capacity(hashes.len() * 47 + 2);
    out.push('[');
    for (i, h) in hashes.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        out.push_str(&encode_hash(h));
        out.push('"');
    }
    out.push(']');
    out
}

/// The body of an inclusion proof.
pub fn inclusion_json(version: u64, tree_size: u64, leaf: &Hash, hashes: &[Hash]) -> String {
    super::json::JsonWriter::object_with_capacity(hashes.len() * 48 + 160)
        .uint("version", version)
        .uint("leaf_index", version - 1)
        .uint("tree_size", tree_size)
        .string("leaf_hash", &encode_hash(leaf))
        .raw("hashes", &hash_list(hashes))
        .finish()
}

/// What the object tells the edge to make a checkpoint of: the checkpoint's lines after the
/// origin (`<size>\n<base64 root>\n`); the edge puts its key's name in front.
pub fn tree_head(size: u64, root: &Hash) -> String {
    format!("{size}\n{}\n", encode_hash(root))
}

/// The body of a consistency proof.
pub fn consistency_json(from: u64, to: u64, hashes: &[Hash]) -> String {
    super::json::JsonWriter::object_with_capacity(hashes.len() * 48 + 64)
        .uint("from", from)
        .uint("to", to)
        .raw("hashes", &hash_list(hashes))
        .finish()
}

/// The `hashes` of a proof body, decoded; `None` if any is not 32 bytes of base64.
pub fn parse_hashes(v: &serde_json::Value) -> Option<Vec<Hash>> {
    v.get("hashes")?
        .as_array()?
        .iter()
        .map(|h| decode_hash(h.as_str()?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(version: u64, op: Operation, amount: i64, prev: i64, value: i64) -> AuditEntry {
        AuditEntry {
            version,
            operation: op,
            amount,
            previous_value: prev,
            value,
            request_id: format!("key-{version}"),
            at: "2026-11-29T20:00:00.000Z".into(),
        }
    }

    fn history() -> Vec<AuditEntry> {
        vec![
            entry(1, Operation::Increment, 5, 0, 5),
            entry(2, Operation::Decrement, 7, 5, -2),
            entry(3, Operation::Set, 100, -2, 100),
            entry(4, Operation::Reset, 0, 100, 0),
            entry(5, Operation::Increment, 1, 0, 1),
        ]
    }

    #[test]
    fn leaf_bytes_are_sorted_compact_json() {
        let e = entry(3, Operation::Decrement, 2, -1, -3);
        let bytes = String::from_utf8(leaf_bytes(&e)).unwrap();
        assert_eq!(
            bytes,
            r#"{"amount":2,"at":"2026-11-29T20:00:00.000Z","operation":"decrement","previous_value":-1,"request_id":"key-3","value":-3,"version":3}"#
        );
        // The same as a generic canonicalization: parse, sort members, print compactly.
        let v: serde_json::Value = serde_json::from_str(&e.entry_json()).unwrap();
        let sorted: std::collections::BTreeMap<String, serde_json::Value> =
            serde_json::from_value(v).unwrap();
        assert_eq!(serde_json::to_string(&sorted).unwrap(), bytes);
        assert_eq!(parse_line(&bytes, 1), Ok(e));
    }

    #[test]
    fn non_canonical_lines_are_refused() {
        let good = String::from_utf8(leaf_bytes(&entry(1, Operation::Increment, 1, 0, 1))).unwrap();
        for bad in [
            good.replace(",\"at\"", ", \"at\""),
            good.replace(
                "{\"amount\":1,\"at\":\"2026-11-29T20:00:00.000Z\"",
                "{\"at\":\"2026-11-29T20:00:00.000Z\",\"amount\":1",
            ),
            good.replace("}", ",\"extra\":1}"),
            good.replace("\"amount\":1", "\"amount\":1.0"),
            good.replace("key-1", "key\\u002d1"),
            good.replace("increment", "explode"),
            format!("{good} "),
            "not json".into(),
        ] {
            assert!(
                matches!(
                    parse_line(&bad, 7),
                    Err(Tamper::NotCanonical { line: 7, .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn an_honest_history_replays_to_its_root() {
        let h = history();
        let mut a = Auditor::new();
        let mut tree = merkle::MemoryTree::new();
        for e in &h {
            let line = String::from_utf8(leaf_bytes(e)).unwrap();
            a.push_line(&line).unwrap();
            tree.push(entry_hash(e));
        }
        assert_eq!(a.value(), 1);
        let cp = Checkpoint {
            origin: "o".into(),
            size: 5,
            root: merkle::root(5, &tree.getter()).unwrap(),
        };
        assert_eq!(a.finish(&cp), Ok(()));
        assert_eq!(
            a.finish(&Checkpoint {
                size: 6,
                ..cp.clone()
            }),
            Err(Tamper::Truncated {
                entries: 5,
                size: 6
            })
        );
        assert_eq!(
            a.finish(&Checkpoint {
                root: [0; 32],
                ..cp
            }),
            Err(Tamper::RootMismatch { size: 5 })
        );
    }

    fn replay(h: &[AuditEntry]) -> Result<Auditor, Tamper> {
        let mut a = Auditor::new();
        for e in h {
            a.push(e)?;
        }
        Ok(a)
    }

    #[test]
    fn each_kind_of_tampering_is_named() {
        let mut gap = history();
        gap.remove(2);
        assert_eq!(
            replay(&gap).unwrap_err(),
            Tamper::Gap {
                expected: 3,
                found: 4
            }
        );
        let mut reordered = history();
        reordered.swap(1, 2);
        assert_eq!(replay(&reordered).unwrap_err().kind(), "gap");
        let mut chain = history();
        chain[1].previous_value = 6;
        chain[1].value = -1;
        assert_eq!(replay(&chain).unwrap_err().kind(), "broken-chain");
        let mut value = history();
        value[4].value = 2;
        assert_eq!(replay(&value).unwrap_err().kind(), "wrong-value");
        let mut reset = history();
        reset[3].amount = 3;
        assert_eq!(replay(&reset).unwrap_err().kind(), "wrong-value");
        // A consistent rewrite (every rule kept) still changes the root.
        let mut rewritten = history();
        rewritten[4].request_id = "other".into();
        let honest = replay(&history()).unwrap();
        assert_ne!(replay(&rewritten).unwrap().root(), honest.root());
    }

    #[test]
    fn saved_checkpoints_must_be_extended() {
        let h = history();
        let mut tree = merkle::MemoryTree::new();
        for e in &h {
            tree.push(entry_hash(e));
        }
        let cp = |size: u64| Checkpoint {
            origin: "o".into(),
            size,
            root: merkle::root(size, &tree.getter()).unwrap(),
        };
        let proof = merkle::consistency_proof(2, 5, &tree.getter()).unwrap();
        assert_eq!(check_saved(&cp(2), &cp(5), &proof), Ok(()));
        assert_eq!(check_saved(&cp(5), &cp(5), &[]), Ok(()));
        assert_eq!(
            check_saved(&cp(5), &cp(2), &[]),
            Err(Tamper::RolledBack { saved: 5, size: 2 })
        );
        let forged = Checkpoint {
            root: [1; 32],
            ..cp(2)
        };
        assert_eq!(
            check_saved(&forged, &cp(5), &proof).unwrap_err().kind(),
            "inconsistent"
        );
        let e = &h[2];
        let v: serde_json::Value = serde_json::from_str(&e.entry_json()).unwrap();
        assert_eq!(entry_from_json(&v).as_ref(), Some(e));
        let mut kinds: Vec<u8> = [
            Tamper::BadSignature(String::new()),
            Tamper::NotCanonical {
                line: 1,
                why: String::new(),
            },
            Tamper::Gap {
                expected: 1,
                found: 2,
            },
            Tamper::BrokenChain {
                version: 1,
                previous_value: 0,
                prior_value: 1,
            },
            Tamper::WrongValue {
                version: 1,
                detail: String::new(),
            },
            Tamper::Truncated {
                entries: 1,
                size: 2,
            },
            Tamper::RootMismatch { size: 1 },
            Tamper::RolledBack { saved: 2, size: 1 },
            Tamper::Inconsistent { saved: 1, size: 2 },
        ]
        .iter()
        .map(Tamper::exit_code)
        .collect();
        kinds.dedup();
        assert_eq!(kinds.len(), 9, "each kind has its own exit status");
    }

    #[test]
    fn follows_each_operation() {
        assert_eq!(follows(Operation::Increment, 3, 4), Ok(7));
        assert_eq!(follows(Operation::Decrement, 3, 4), Ok(1));
        assert_eq!(follows(Operation::Set, -9, 4), Ok(-9));
        assert_eq!(follows(Operation::Reset, 0, 4), Ok(0));
        assert!(follows(Operation::Increment, 0, 4).is_err());
        assert!(follows(Operation::Increment, 1, MAX_VALUE).is_err());
    }

    #[test]
    fn proof_queries() {
        assert_eq!(
            InclusionQuery::parse("version=3&tree_size=9").unwrap(),
            InclusionQuery {
                version: 3,
                tree_size: Some(9)
            }
        );
        assert_eq!(InclusionQuery::parse("version=3").unwrap().tree_size, None);
        for bad in [
            "",
            "version=0",
            "version=4&tree_size=3",
            "version=x",
            "version=1&version=2",
            "version=1&leaf=2",
            "tree_size=5",
        ] {
            assert_eq!(
                InclusionQuery::parse(bad).unwrap_err().status(),
                400,
                "{bad}"
            );
        }
        assert_eq!(
            ConsistencyQuery::parse("from=2&to=5").unwrap(),
            ConsistencyQuery {
                from: 2,
                to: Some(5)
            }
        );
        for bad in ["", "from=0", "from=6&to=5", "to=5", "from=1&size=2"] {
            assert_eq!(
                ConsistencyQuery::parse(bad).unwrap_err().status(),
                400,
                "{bad}"
            );
        }
        for q in [
            InclusionQuery {
                version: 2,
                tree_size: None,
            },
            InclusionQuery {
                version: 2,
                tree_size: Some(8),
            },
        ] {
            assert_eq!(InclusionQuery::parse(&q.encode()), Ok(q));
        }
        let c = ConsistencyQuery { from: 1, to: None };
        assert_eq!(ConsistencyQuery::parse(&c.encode()), Ok(c));
    }

    #[test]
    fn the_tree_head_is_a_checkpoint_without_its_origin() {
        let cp = Checkpoint {
            origin: "o.example/log".into(),
            size: 12,
            root: [3; 32],
        };
        assert_eq!(
            format!("{}\n{}", cp.origin, tree_head(12, &[3; 32])),
            cp.to_text()
        );
    }

    #[test]
    fn leaf_bytes_equal_serdes_output_for_any_text() {
        for text in [
            "plain",
            "q\"uote\\",
            "\u{8}\u{c}\n\r\t\u{1}\u{1f}",
            "é/ü€",
            "",
        ] {
            let mut e = entry(9, Operation::Set, -5, 7, -5);
            e.request_id = text.into();
            e.at = format!("{text}!");
            let leaf = Leaf {
                amount: e.amount,
                at: &e.at,
                operation: e.operation.as_str(),
                previous_value: e.previous_value,
                request_id: &e.request_id,
                value: e.value,
                version: e.version,
            };
            assert_eq!(
                String::from_utf8(leaf_bytes(&e)).unwrap(),
                serde_json::to_string(&leaf).unwrap(),
                "{text:?}"
            );
        }
    }

    #[test]
    fn export_queries_and_pages() {
        assert_eq!(
            ExportQuery::parse("").unwrap(),
            ExportQuery {
                csv: false,
                after: 0,
                until: None
            }
        );
        assert_eq!(
            ExportQuery::parse("format=csv&after=3&until=9").unwrap(),
            ExportQuery {
                csv: true,
                after: 3,
                until: Some(9)
            }
        );
        for bad in [
            "format=xml",
            "after=5&until=4",
            "until=-1",
            "after=x",
            "page=1",
            "format=csv&format=csv",
        ] {
            assert_eq!(ExportQuery::parse(bad).unwrap_err().status(), 400, "{bad}");
        }
        let h = history();
        let nd = export_page(&h, false);
        let lines: Vec<&str> = nd.lines().collect();
        assert_eq!(lines.len(), 5);
        for (line, e) in lines.iter().zip(&h) {
            assert_eq!(line.as_bytes(), leaf_bytes(e).as_slice());
        }
        assert!(nd.ends_with('\n'));
        let csv = export_page(&h[..1], true);
        assert_eq!(csv, "1,increment,5,0,5,key-1,2026-11-29T20:00:00.000Z\r\n");
        assert_eq!(
            ExportQuery::parse(&ExportQuery::encode_page(true, 4, 9)).unwrap(),
            ExportQuery {
                csv: true,
                after: 4,
                until: Some(9)
            }
        );
    }

    #[test]
    fn csv_cells_are_quoted_and_guarded() {
        let mut e = entry(2, Operation::Decrement, 3, 1, -2);
        for (id, cell) in [
            ("-2+3", "\"'-2+3\""),
            ("=cmd|' /C calc'!A0", "\"'=cmd|' /C calc'!A0\""),
            ("@sum", "\"'@sum\""),
            ("a,b", "\"a,b\""),
            ("say \"hi\"", "\"say \"\"hi\"\"\""),
            ("plain-key", "plain-key"),
        ] {
            e.request_id = id.into();
            let row = csv_row(&e);
            assert_eq!(
                row,
                format!("2,decrement,3,1,-2,{cell},2026-11-29T20:00:00.000Z\r\n"),
                "{id}"
            );
        }
        assert_eq!(CSV_HEADER.matches(',').count(), 6);
    }

    #[test]
    fn as_of_queries() {
        assert!(AsOfQuery::wanted("as_of_version=3"));
        assert!(AsOfQuery::wanted("proof=true&as_of=x"));
        assert!(!AsOfQuery::wanted("consistency=nearby&min_version=2"));
        assert_eq!(
            AsOfQuery::parse("as_of_version=3&proof=true").unwrap(),
            AsOfQuery {
                at: AsOf::Version(3),
                proof: true
            }
        );
        assert_eq!(
            AsOfQuery::parse("as_of=2026-11-29T21:00:00.5+01:00")
                .unwrap()
                .at,
            AsOf::Time("2026-11-29T20:00:00.500Z".into())
        );
        for bad in [
            "as_of_version=1&as_of=2026-11-29T20:00:00Z",
            "as_of_version=-1",
            "as_of=yesterday",
            "as_of_version=1&proof=yes",
            "as_of_version=1&consistency=nearby",
            "proof=true",
        ] {
            assert_eq!(AsOfQuery::parse(bad).unwrap_err().status(), 400, "{bad}");
        }
        for q in [
            AsOfQuery {
                at: AsOf::Version(0),
                proof: false,
            },
            AsOfQuery {
                at: AsOf::Time("2026-11-29T20:00:00.000Z".into()),
                proof: true,
            },
        ] {
            assert_eq!(AsOfQuery::parse(&q.encode()), Ok(q));
        }
        assert_eq!(
            as_of_json(None, None),
            "{\"value\":0,\"version\":0,\"updated_at\":null}"
        );
        let h = history();
        let v: serde_json::Value =
            serde_json::from_str(&as_of_json(Some(&h[1]), Some("{\"a\":1}"))).unwrap();
        assert_eq!(
            (v["value"].as_i64(), v["version"].as_u64()),
            (Some(-2), Some(2))
        );
        assert_eq!(v["inclusion"]["a"], 1);
    }

    #[test]
    fn proof_bodies_parse_back() {
        let body = inclusion_json(2, 5, &[1; 32], &[[2; 32], [3; 32]]);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["leaf_index"], 1);
        assert_eq!(parse_hashes(&v), Some(vec![[2; 32], [3; 32]]));
        let body = consistency_json(2, 5, &[]);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(parse_hashes(&v), Some(vec![]));
    }
}
