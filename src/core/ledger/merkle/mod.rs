//! The audit trail as an RFC 6962 / RFC 9162 Merkle tree: hashing, roots, proofs, and their
//! verification.
//!
//! - Leaf hash `SHA-256(0x00 ‖ leaf)`, node hash `SHA-256(0x01 ‖ left ‖ right)`; a tree of
//!   `n > 1` leaves splits at the largest power of two below `n`, so the tree of size `n` is
//!   fixed by its leaves and every older tree is a prefix of it.
//! - Storage keeps the hash of every *complete* subtree (a perfect subtree of `2^level` leaves
//!   starting at a multiple of `2^level`). Appending leaf `i` completes exactly the subtrees
//!   that end at `i`: [`Frontier::push`] returns their hashes, lowest level first, which is one
//!   row per append (two hashes on average). Any subtree the proofs need is a combination of
//!   complete ones ([`perfect_nodes`]), so a proof or a root costs O(log n) stored hashes.
//! - Proofs are generated ([`inclusion_proof`], [`consistency_proof`]) in the order of
//!   RFC 9162 §2.1.3.1 and §2.1.4.1 and verified with the algorithms of §2.1.3.2 and §2.1.4.2
//!   ([`verify_inclusion`], [`verify_consistency`]).
//!
//! Nothing here knows what a leaf means; `core::ledger` says which bytes an audit entry is.

//! The rooms: this file (hashes, complete subtrees, roots), [`proof`] (proofs made and
//! checked), [`tree`] ([`Frontier`] and [`MemoryTree`]).

use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// The root of the empty tree: `SHA-256("")`.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// `SHA-256(0x00 ‖ leaf)`. Never inlined, like [`node_hash`]: one copy of SHA-256 in the
/// Wasm module.
#[inline(never)]
pub fn leaf_hash(leaf: &[u8]) -> Hash {
    Sha256::new()
        .chain_update([0u8])
        .chain_update(leaf)
        .finalize()
        .into()
}

/// `SHA-256(0x01 ‖ left ‖ right)`.
#[inline(never)]
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    Sha256::new()
        .chain_update([1u8])
        .chain_update(left)
        .chain_update(right)
        .finalize()
        .into()
}

/// The largest power of two strictly below `n` (`n >= 2`).
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// A complete subtree: the `2^level` leaves from `index * 2^level`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Node {
    pub level: u32,
    pub index: u64,
}

impl Node {
    /// The leaf index whose append completes this subtree (its last leaf). Storage keeps the
    /// hash of this node in that leaf's row, at position `level`.
    pub fn last_leaf(self) -> u64 {
        ((self.index + 1) << self.level) - 1
    }
}

/// The complete subtrees that together make up leaves `start..end` (a range the RFC 6962 tree
/// of size `end` or larger has as a subtree, or any prefix-aligned range), left to right.
pub fn perfect_nodes(start: u64, end: u64) -> Vec<Node> {
    let mut out = Vec::new();
    let mut at = start;
    while at < end {
        // The largest aligned power of two that starts at `at` and fits before `end`.
        let mut level = if at == 0 { 63 } else { at.trailing_zeros() };
        while level > 0 && (1u64.checked_shl(level).is_none() || at + (1 << level) > end) {
            level -= 1;
        }
        out.push(Node {
            level,
            index: at >> level,
        });
        at += 1 << level;
    }
    out
}

/// The hash of leaves `start..end` of an RFC 6962 tree (`start < end`, `start` a multiple of
/// the largest power of two not above `end - start`, which every subtree the proofs use is),
/// from the hashes of complete subtrees. `None` if `get` lacks a node.
pub fn range_hash(start: u64, end: u64, get: &dyn Fn(Node) -> Option<Hash>) -> Option<Hash> {
    let nodes = perfect_nodes(start, end);
    // The complete subtrees decrease in size left to right; the tree joins them right to left.
    let mut iter = nodes.iter().rev();
    let mut acc = get(*iter.next()?)?;
    for n in iter {
        acc = node_hash(&get(*n)?, &acc);
    }
    Some(acc)
}

/// The root of the tree of `size` leaves.
pub fn root(size: u64, get: &dyn Fn(Node) -> Option<Hash>) -> Option<Hash> {
    if size == 0 {
        return Some(empty_root());
    }
    range_hash(0, size, get)
}

pub mod proof;
pub mod tree;

pub use proof::{
    consistency_proof, consistency_ranges, inclusion_proof, inclusion_ranges, nodes_for,
    verify_consistency, verify_inclusion, ProofError, Range,
};
pub use tree::{Frontier, MemoryTree};

#[cfg(test)]
mod tests;
