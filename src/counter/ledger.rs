//! The counter's side of the verifiable ledger: the Merkle tree's right edge in memory, the
//! chunked backfill, checkpoints and proofs.
//!
//! - The tree has one leaf per audit entry; its size is the counter's version. Each commit
//!   hashes the entry's leaf bytes ([`ledger::leaf_bytes`]) with pure Rust, synchronously, and
//!   writes the hashes of the subtrees it completes as one row in the same transaction
//!   ([`Ledger::prepare`] → `Store::commit`); the new right edge is adopted after the commit.
//! - On start the right edge is loaded from O(log N) stored hashes. A database that has
//!   entries without Merkle rows (one from before schema 4) is hashed by [`Ledger::backfill`]
//!   from the object's alarm, [`CHUNK`] entries per transaction, so no single event holds the
//!   object for long; meanwhile commits skip their rows (the backfill reaches them too) and
//!   the ledger endpoints answer 503.
//! - The object only says what the tree is (its size and root, [`Ledger::tree_head`]); the
//!   edge makes and signs the checkpoint (`edge/checkpoint.rs`), off the object's event loop.

use std::cell::RefCell;

use crate::core::audit::AuditEntry;
use crate::core::ledger::merkle::{self, Frontier, Hash};
use crate::core::ledger::{self, ConsistencyQuery, InclusionQuery};
use crate::core::problem::Problem;
use crate::error::{Error, Result};
use crate::log::log_event;

use super::store::Store;

/// Entries hashed per backfill transaction.
pub const CHUNK: u64 = 1000;

/// Where the tree stands.
enum Tree {
    /// Every entry has its Merkle row; this is the right edge.
    Live(Frontier),
    /// Entries up to the frontier's size have rows; the backfill does the rest.
    Building(Frontier),
    /// The stored hashes are unusable (a missing row); the reason is logged.
    Broken,
}

/// The ledger state of the one counter object.
pub struct Ledger {
    tree: RefCell<Tree>,
}

impl Ledger {
    /// Loads the right edge for a counter at `version`.
    pub fn load(store: &Store, version: u64) -> Ledger {
        let tree = match load_tree(store, version) {
            Ok(t) => t,
            Err(e) => {
                e.log("merkle tree unusable");
                Tree::Broken
            }
        };
        Ledger {
            tree: RefCell::new(tree),
        }
    }

    /// Whether the backfill still has work.
    pub fn building(&self) -> bool {
        matches!(*self.tree.borrow(), Tree::Building(_))
    }

    /// For a commit of `entry`: the right edge after it and the hashes its row holds, or
    /// `None` while the tree is not live (the backfill will hash the entry).
    pub fn prepare(&self, entry: &AuditEntry) -> Option<(Frontier, Vec<Hash>)> {
        match &*self.tree.borrow() {
            Tree::Live(f) if f.size() + 1 == entry.version => {
                let mut next = f.clone();
                let row = next.push(ledger::entry_hash(entry));
                Some((next, row))
            }
            _ => None,
        }
    }

    /// The right edge while the tree is live: a batch keeps it, to put it back with
    /// [`Ledger::adopt`] if the batch's transaction fails as a whole.
    pub fn saved(&self) -> Option<Frontier> {
        match &*self.tree.borrow() {
            Tree::Live(f) => Some(f.clone()),
            _ => None,
        }
    }

    /// After the commit: the new right edge.
    pub fn adopt(&self, next: Frontier) {
        *self.tree.borrow_mut() = Tree::Live(next);
    }

    /// Hashes the next chunk of entries that lack Merkle rows. Returns whether more remain.
    pub fn backfill(&self, store: &Store, version: u64) -> bool {
        let mut frontier = match &*self.tree.borrow() {
            Tree::Building(f) => f.clone(),
            _ => return false,
        };
        let result = (|| -> Result<()> {
            let entries = store.audit(frontier.size(), CHUNK)?;
            let mut rows = Vec::with_capacity(entries.len());
            for e in &entries {
                if e.version != frontier.size() + 1 {
                    return Err(Error::Corrupt(format!(
                        "the audit trail has version {} where {} was expected",
                        e.version,
                        frontier.size() + 1
                    )));
                }
                rows.push((e.version, frontier.push(ledger::entry_hash(e))));
            }
            store.write_merkle_rows(&rows)
        })();
        let mut tree = self.tree.borrow_mut();
        match result {
            Err(e) => {
                e.log("merkle backfill failed");
                *tree = Tree::Broken;
                false
            }
            Ok(()) => {
                let done = frontier.size() >= version;
                log_event("info", "merkle backfill", |w| {
                    w.uint("tree_size", frontier.size())
                        .uint("version", version);
                });
                *tree = if done {
                    Tree::Live(frontier)
                } else {
                    Tree::Building(frontier)
                };
                !done
            }
        }
    }

    /// The live right edge, or the problem to answer instead.
    fn live(&self) -> Result<Frontier, Problem> {
        match &*self.tree.borrow() {
            Tree::Live(f) => Ok(f.clone()),
            Tree::Building(_) => Err(Problem::Unavailable {
                retry_after_secs: 5,
            }),
            Tree::Broken => Err(Problem::Internal),
        }
    }

    /// The current tree's size and root, for the edge's checkpoint.
    pub fn tree_head(&self) -> Result<String, Problem> {
        let f = self.live()?;
        Ok(ledger::tree_head(f.size(), &f.root()))
    }

    /// `GET /api/audit/proof/inclusion`.
    pub fn inclusion(&self, store: &Store, q: &InclusionQuery) -> Result<String, Problem> {
        let size = self.live()?.size();
        let tree_size = q.tree_size.unwrap_or(size);
        if tree_size > size {
            return Err(ledger::beyond("tree_size", tree_size, size));
        }
        if q.version > tree_size {
            return Err(ledger::beyond("version", q.version, tree_size));
        }
        let index = q.version - 1;
        let mut ranges = merkle::inclusion_ranges(index, tree_size);
        ranges.push((index, index + 1));
        let nodes = read(store, &ranges)?;
        let get = |n| find(&nodes, n);
        let proof = merkle::inclusion_proof(index, tree_size, &get).ok_or_else(missing)?;
        let leaf = merkle::range_hash(index, index + 1, &get).ok_or_else(missing)?;
        Ok(ledger::inclusion_json(q.version, tree_size, &leaf, &proof))
    }

    /// `GET /api/audit/proof/consistency`.
    pub fn consistency(&self, store: &Store, q: &ConsistencyQuery) -> Result<String, Problem> {
        let size = self.live()?.size();
        let to = q.to.unwrap_or(size);
        if to > size {
            return Err(ledger::beyond("to", to, size));
        }
        if q.from > to {
            return Err(ledger::beyond("from", q.from, to));
        }
        let nodes = read(store, &merkle::consistency_ranges(q.from, to))?;
        let get = |n| find(&nodes, n);
        let proof = merkle::consistency_proof(q.from, to, &get).ok_or_else(missing)?;
        Ok(ledger::consistency_json(q.from, to, &proof))
    }
}

/// A node among those read.
fn find(nodes: &[(merkle::Node, Hash)], n: merkle::Node) -> Option<Hash> {
    nodes.iter().find(|(m, _)| *m == n).map(|(_, h)| *h)
}

/// The stored hashes the ranges need.
fn read(store: &Store, ranges: &[merkle::Range]) -> Result<Vec<(merkle::Node, Hash)>, Problem> {
    store
        .merkle_nodes(&merkle::nodes_for(ranges))
        .map_err(|e| e.logged("merkle read failed"))
}

fn missing() -> Problem {
    log_event("error", "a merkle node is missing", |_| {});
    Problem::Internal
}

/// The tree as stored: live when every entry has its row, building otherwise.
fn load_tree(store: &Store, version: u64) -> Result<Tree> {
    let size = store.merkle_size()?.min(version);
    let nodes = store.merkle_nodes(&Frontier::nodes(size))?;
    let frontier = Frontier::load(size, &|n| find(&nodes, n)).ok_or_else(|| {
        Error::Corrupt(format!(
            "a Merkle row of the tree of size {size} is missing"
        ))
    })?;
    Ok(if size == version {
        Tree::Live(frontier)
    } else {
        Tree::Building(frontier)
    })
}
