//! Proofs of the tree: which subtrees an inclusion or consistency proof carries (RFC 9162
//! §2.1.3.1, §2.1.4.1), making them from the hashes of complete subtrees, and checking them
//! (§2.1.3.2, §2.1.4.2).

use super::{node_hash, perfect_nodes, range_hash, split, Hash, Node};

/// A subtree `start..end` whose hash a proof carries.
pub type Range = (u64, u64);

/// The subtrees of the inclusion proof of leaf `index` in the tree of `size` leaves
/// (RFC 9162 §2.1.3.1, `PATH(m, D[n])`), in proof order: the sibling nearest the leaf first.
pub fn inclusion_ranges(index: u64, size: u64) -> Vec<Range> {
    let mut out = Vec::new();
    path(index, 0, size, &mut out);
    out
}

fn path(m: u64, start: u64, end: u64, out: &mut Vec<Range>) {
    let n = end - start;
    if n <= 1 {
        return;
    }
    let k = split(n);
    if m < k {
        path(m, start, start + k, out);
        out.push((start + k, end));
    } else {
        path(m - k, start + k, end, out);
        out.push((start, start + k));
    }
}

/// The subtrees of the consistency proof from the tree of `old` leaves to the tree of `new`
/// (RFC 9162 §2.1.4.1, `PROOF(m, D[n])`), in proof order. Empty when `old` is 0 or equals
/// `new`.
pub fn consistency_ranges(old: u64, new: u64) -> Vec<Range> {
    let mut out = Vec::new();
    if old > 0 && old < new {
        subproof(old, 0, new, true, &mut out);
    }
    out
}

fn subproof(m: u64, start: u64, end: u64, whole: bool, out: &mut Vec<Range>) {
    let n = end - start;
    if m == n {
        if !whole {
            out.push((start, end));
        }
        return;
    }
    let k = split(n);
    if m <= k {
        subproof(m, start, start + k, whole, out);
        out.push((start + k, end));
    } else {
        subproof(m - k, start + k, end, false, out);
        out.push((start, start + k));
    }
}

/// Every complete subtree the given ranges need, without duplicates (what storage reads).
pub fn nodes_for(ranges: &[Range]) -> Vec<Node> {
    let mut nodes: Vec<Node> = ranges
        .iter()
        .flat_map(|&(s, e)| perfect_nodes(s, e))
        .collect();
    nodes.sort_unstable();
    nodes.dedup();
    nodes
}

/// The inclusion proof of leaf `index` in the tree of `size` leaves. `None` if out of range
/// or `get` lacks a node.
pub fn inclusion_proof(
    index: u64,
    size: u64,
    get: &dyn Fn(Node) -> Option<Hash>,
) -> Option<Vec<Hash>> {
    if index >= size {
        return None;
    }
    inclusion_ranges(index, size)
        .into_iter()
        .map(|(s, e)| range_hash(s, e, get))
        .collect()
}

/// The consistency proof from `old` to `new` leaves. `None` if `old > new` or `get` lacks a
/// node.
pub fn consistency_proof(
    old: u64,
    new: u64,
    get: &dyn Fn(Node) -> Option<Hash>,
) -> Option<Vec<Hash>> {
    if old > new {
        return None;
    }
    consistency_ranges(old, new)
        .into_iter()
        .map(|(s, e)| range_hash(s, e, get))
        .collect()
}

/// Why a proof does not verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProofError {
    /// The leaf index is not below the tree size, or the old size is above the new one.
    OutOfRange,
    /// The proof has the wrong number of hashes for these sizes.
    WrongLength,
    /// The hashes do not lead to the expected root(s).
    Mismatch,
}

impl std::fmt::Display for ProofError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ProofError::OutOfRange => "the sizes are out of range",
            ProofError::WrongLength => "the proof has the wrong number of hashes",
            ProofError::Mismatch => "the proof does not lead to the root",
        })
    }
}

/// Checks an inclusion proof (RFC 9162 §2.1.3.2): leaf `index` with hash `leaf` is in the
/// tree of `size` leaves whose root is `root`.
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::OutOfRange);
    }
    let mut fn_ = index;
    let mut sn = size - 1;
    let mut r = *leaf;
    for p in proof {
        if sn == 0 {
            return Err(ProofError::WrongLength);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::WrongLength);
    }
    if &r != root {
        return Err(ProofError::Mismatch);
    }
    Ok(())
}

/// Checks a consistency proof (RFC 9162 §2.1.4.2): the tree of `old` leaves with root
/// `old_root` is a prefix of the tree of `new` leaves with root `new_root`.
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old > new {
        return Err(ProofError::OutOfRange);
    }
    if old == new {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength);
        }
        return if old_root == new_root {
            Ok(())
        } else {
            Err(ProofError::Mismatch)
        };
    }
    if old == 0 {
        // The empty tree is a prefix of every tree.
        return if proof.is_empty() {
            Ok(())
        } else {
            Err(ProofError::WrongLength)
        };
    }
    if proof.is_empty() {
        return Err(ProofError::WrongLength);
    }
    let mut path: Vec<&Hash> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(old_root);
    }
    path.extend(proof.iter());
    let mut fn_ = old - 1;
    let mut sn = new - 1;
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let mut fr = *path[0];
    let mut sr = *path[0];
    for c in &path[1..] {
        if sn == 0 {
            return Err(ProofError::WrongLength);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::WrongLength);
    }
    if &fr != old_root || &sr != new_root {
        return Err(ProofError::Mismatch);
    }
    Ok(())
}
