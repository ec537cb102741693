//! The soak's checkers: the recorded history against the versioned counter (directly, and
//! chunk by chunk with the WGL checker of `todc-utils`), and the digest that lets a socket's
//! whole stream be compared with the audit trail without keeping every message.

use std::cell::Cell;
use std::time::Instant;

use todc_utils::linearizability::history::{Action, History};
use todc_utils::{Specification, WGLChecker};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Increment,
    Decrement,
    Read,
}

/// One operation with its outcome: for a change, the value and version it was acknowledged
/// with; for a linearizable read, the value and version it saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Op {
    pub kind: Kind,
    pub amount: i64,
    pub value: i64,
    pub version: u64,
}

impl Op {
    pub fn delta(&self) -> i64 {
        match self.kind {
            Kind::Increment => self.amount,
            Kind::Decrement => -self.amount,
            Kind::Read => 0,
        }
    }

    pub fn is_change(&self) -> bool {
        self.kind != Kind::Read
    }
}

/// One operation as recorded: which sequential process ran it, when it was invoked (for a
/// change: its first attempt) and when its answer was complete (for a change: the attempt
/// that was acknowledged), on one monotonic clock.
#[derive(Clone, Debug)]
pub struct Record {
    pub process: usize,
    pub invoked: Instant,
    pub returned: Instant,
    pub op: Op,
}

/// Where an operation sits in the one order a versioned history allows: the change of
/// version v at 2v, a read that saw version u at 2u + 1 (after the change it saw, before the
/// next one).
fn place(op: &Op) -> u64 {
    if op.is_change() {
        2 * op.version
    } else {
        2 * op.version + 1
    }
}

/// The whole history against the versioned counter, without a search (the WGL search over
/// tens of thousands of operations from 70 processes would not finish): every change names
/// its version, so the order of the changes is known, and a read names the version it saw, so
/// it belongs right after that change. The history is linearizable exactly when the changes
/// are versions 1..=n, each taking the value of the one before to its own, every read saw the
/// value of its version, and that one order respects real time: whatever returned before
/// another operation was invoked is not placed after it. The last part is checked in
/// O(n log n): sorted by place, no operation may have been invoked after an operation placed
/// later had already returned.
///
/// Returns why not, or `None` when it is linearizable.
pub fn versioned_order(records: &[Record]) -> Option<String> {
    let changes: Vec<&Record> = records.iter().filter(|r| r.op.is_change()).collect();
    let n = changes.len();
    let mut by_version: Vec<Option<&Record>> = vec![None; n + 1];
    for r in &changes {
        let v = r.op.version as usize;
        if v == 0 || v > n {
            return Some(format!("version {v} outside 1..={n}: {r:?}"));
        }
        if let Some(other) = by_version[v] {
            return Some(format!(
                "version {v} acknowledged twice: {other:?} and {r:?}"
            ));
        }
        by_version[v] = Some(r);
    }
    let mut values = vec![0i64; n + 1];
    for v in 1..=n {
        let op = by_version[v].expect("every version once").op;
        if values[v - 1] + op.delta() != op.value {
            return Some(format!(
                "version {v} does not follow from version {}'s value {}: {op:?}",
                v - 1,
                values[v - 1]
            ));
        }
        values[v] = op.value;
    }
    for r in records.iter().filter(|r| !r.op.is_change()) {
        let v = r.op.version as usize;
        if v > n || values[v] != r.op.value {
            return Some(format!("a read of a state the counter never had: {r:?}"));
        }
    }
    let mut order: Vec<&Record> = records.iter().collect();
    order.sort_by_key(|r| std::cmp::Reverse(place(&r.op)));
    // Sweeping from the last place down: `earliest` is the earliest return among the
    // operations placed strictly later than the group at hand.
    let mut earliest: Option<&Record> = None;
    let mut i = 0;
    while i < order.len() {
        let p = place(&order[i].op);
        let mut j = i;
        while j < order.len() && place(&order[j].op) == p {
            if let Some(later) = earliest {
                if later.returned < order[j].invoked {
                    return Some(format!(
                        "real time broken: {later:?} returned before {:?} was invoked, yet comes after it",
                        order[j]
                    ));
                }
            }
            j += 1;
        }
        for r in &order[i..j] {
            if earliest.is_none_or(|e| r.returned < e.returned) {
                earliest = Some(r);
            }
        }
        i = j;
    }
    None
}

thread_local! {
    /// The state a chunk's history starts from (the checker's `init` takes no argument).
    static CHUNK_START: Cell<(i64, u64)> = const { Cell::new((0, 0)) };
}

/// The counter with its version, as the WGL checker reads it: a change is valid where it takes
/// the state to the value it was acknowledged with and moves the version by exactly one; a
/// read where it saw the state.
pub struct VersionedCounter;

impl Specification for VersionedCounter {
    type State = (i64, u64);
    type Operation = Op;

    fn init() -> (i64, u64) {
        CHUNK_START.with(Cell::get)
    }

    fn apply(op: &Op, &(value, version): &(i64, u64)) -> (bool, (i64, u64)) {
        match op.kind {
            Kind::Read => ((op.value, op.version) == (value, version), (value, version)),
            _ if value + op.delta() == op.value && version + 1 == op.version => {
                (true, (op.value, op.version))
            }
            _ => (false, (value, version)),
        }
    }
}

fn history(records: &[&Record]) -> History<Op> {
    let mut events: Vec<(Instant, u8, usize, Op)> = Vec::with_capacity(2 * records.len());
    for r in records {
        events.push((r.invoked, 0, r.process, r.op));
        events.push((r.returned, 1, r.process, r.op));
    }
    // At equal instants invocations first: that only makes operations overlap (lenient).
    events.sort_by_key(|e| (e.0, e.1));
    History::from_actions(
        events
            .into_iter()
            .map(|(_, kind, process, op)| {
                let action = if kind == 0 {
                    Action::Call(op)
                } else {
                    Action::Response(op)
                };
                (process, action)
            })
            .collect(),
    )
}

/// The history through the WGL checker, `chunk` versions at a time. A versioned history
/// decomposes: the operations of versions a..b (the changes a..b and the reads that saw one
/// of them) form a history of their own, starting from the state of version a − 1, and the
/// whole is linearizable exactly when every such piece is, and no operation of a later piece
/// returned before an operation of an earlier piece was invoked (then the pieces' orders
/// concatenate; conversely the one order of a versioned history restricts to each piece).
/// That last condition is part of [`versioned_order`]'s real-time check over the whole.
///
/// Returns the number of pieces checked, or the first piece that is not linearizable.
pub fn wgl_in_chunks(records: &[Record], chunk: u64) -> Result<usize, String> {
    let mut pieces: std::collections::BTreeMap<u64, Vec<&Record>> = Default::default();
    // A read of version 0 belongs to the first piece (its start is the initial state).
    for r in records {
        let v = r.op.version.max(1);
        pieces.entry((v - 1) / chunk).or_default().push(r);
    }
    // The state each piece starts from: the value of the last change before it.
    let mut value_of: std::collections::BTreeMap<u64, i64> = Default::default();
    value_of.insert(0, 0);
    for r in records.iter().filter(|r| r.op.is_change()) {
        value_of.insert(r.op.version, r.op.value);
    }
    for (&k, piece) in &pieces {
        let start_version = k * chunk;
        let Some(&start_value) = value_of.get(&start_version) else {
            return Err(format!("no change of version {start_version}"));
        };
        CHUNK_START.with(|c| c.set((start_value, start_version)));
        if !WGLChecker::<VersionedCounter>::is_linearizable(history(piece)) {
            return Err(format!(
                "versions {}..={} ({} operations) are not linearizable from ({start_value}, {start_version})",
                start_version + 1,
                start_version + chunk,
                piece.len()
            ));
        }
    }
    Ok(pieces.len())
}

/// One term of a stream's digest: a 64-bit mix of a version and its value. A stream's digest
/// is the wrapping sum of its terms, so the audit trail's prefix sums give the digest of any
/// range of versions.
pub fn term(version: u64, value: i64) -> u64 {
    let mut z = version
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add((value as u64).rotate_left(29) ^ 0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
