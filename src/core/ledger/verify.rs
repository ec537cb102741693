//! The replay checks anyone can run over the whole history: [`Auditor`] replays it entry by
//! entry in O(log N) memory and says precisely what is wrong with it (a line that is not
//! canonical, a gap, a broken `previous_value` chain, a value that does not follow its
//! operation, a root that differs from a checkpoint's); [`check_saved`] holds a new checkpoint
//! to one saved earlier.

use super::checkpoint::Checkpoint;
use super::leaf::{entry_hash, parse_line};
use super::merkle::{self, Frontier, Hash};
use super::tamper::Tamper;
use crate::core::audit::AuditEntry;
use crate::core::vocab::{Operation, MAX_VALUE};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ledger::fixtures::history;
    use crate::core::ledger::leaf::{entry_from_json, leaf_bytes};

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
}
