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

/// The right edge of the tree: the hashes of the complete subtrees that make up the tree of
/// `size` leaves, largest first (one per set bit of `size`). Enough to append and to compute
/// the root, in O(log n) memory: the object keeps one in memory, the verifier streams leaves
/// through one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// `(level, hash)`, levels strictly decreasing.
    peaks: Vec<(u32, Hash)>,
}

impl Frontier {
    /// The empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// The frontier of the tree of `size` leaves from the hashes of its complete subtrees
    /// ([`Frontier::nodes`] says which). `None` if `get` lacks one.
    pub fn load(size: u64, get: &dyn Fn(Node) -> Option<Hash>) -> Option<Self> {
        let peaks = Self::nodes(size)
            .into_iter()
            .map(|n| get(n).map(|h| (n.level, h)))
            .collect::<Option<Vec<_>>>()?;
        Some(Frontier { size, peaks })
    }

    /// The complete subtrees a frontier of `size` leaves consists of.
    pub fn nodes(size: u64) -> Vec<Node> {
        perfect_nodes(0, size)
    }

    /// Leaves so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf hash and returns the hashes of the subtrees this completes: the leaf
    /// itself (level 0), then each level above it that became complete, in level order.
    pub fn push(&mut self, leaf: Hash) -> Vec<Hash> {
        let mut completed = vec![leaf];
        let mut level = 0;
        let mut acc = leaf;
        while let Some(&(l, h)) = self.peaks.last() {
            if l != level {
                break;
            }
            self.peaks.pop();
            acc = node_hash(&h, &acc);
            level += 1;
            completed.push(acc);
        }
        self.peaks.push((level, acc));
        self.size += 1;
        completed
    }

    /// The root of the tree so far.
    pub fn root(&self) -> Hash {
        let mut iter = self.peaks.iter().rev();
        let Some(&(_, mut acc)) = iter.next() else {
            return empty_root();
        };
        for (_, h) in iter {
            acc = node_hash(h, &acc);
        }
        acc
    }

    /// The hash of a complete subtree that is a peak of this frontier.
    pub fn peak(&self, node: Node) -> Option<Hash> {
        let mut start = 0u64;
        for &(level, h) in &self.peaks {
            if level == node.level
                && start >> level == node.index
                && start.is_multiple_of(1 << level)
            {
                return Some(h);
            }
            start += 1 << level;
        }
        None
    }
}

/// Every complete subtree of a tree held in memory, for tests and the offline verifier:
/// `levels[l][i]` is the hash of node `(l, i)`.
#[derive(Clone, Debug, Default)]
pub struct MemoryTree {
    levels: Vec<Vec<Hash>>,
}

impl MemoryTree {
    /// An empty tree.
    pub fn new() -> Self {
        MemoryTree {
            levels: vec![Vec::new()],
        }
    }

    /// Appends a leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        self.levels[0].push(leaf);
        let mut level = 0;
        while self.levels[level].len().is_multiple_of(2) {
            let row = &self.levels[level];
            let h = node_hash(&row[row.len() - 2], &row[row.len() - 1]);
            if self.levels.len() == level + 1 {
                self.levels.push(Vec::new());
            }
            self.levels[level + 1].push(h);
            level += 1;
        }
    }

    /// Leaves so far.
    pub fn size(&self) -> u64 {
        self.levels[0].len() as u64
    }

    /// A complete subtree's hash.
    pub fn node(&self, n: Node) -> Option<Hash> {
        self.levels
            .get(n.level as usize)?
            .get(usize::try_from(n.index).ok()?)
            .copied()
    }

    /// The accessor the proof functions take.
    pub fn getter(&self) -> impl Fn(Node) -> Option<Hash> + '_ {
        move |n| self.node(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Hash {
        let v: Vec<u8> = (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect();
        v.try_into().unwrap()
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    // The leaves and roots of transparency-dev/merkle's proof tests (proof/verify_test.go),
    // which are the Certificate Transparency reference vectors.
    const LEAVES: [&str; 8] = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ];
    const ROOTS: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    fn reference_tree() -> MemoryTree {
        let mut t = MemoryTree::new();
        for l in LEAVES {
            t.push(leaf_hash(&unhex(l)));
        }
        t
    }

    fn tree_of(n: u64) -> MemoryTree {
        let mut t = MemoryTree::new();
        for i in 0..n {
            t.push(leaf_hash(format!("leaf {i}").as_bytes()));
        }
        t
    }

    #[test]
    fn hashes_match_rfc6962_vectors() {
        // transparency-dev/merkle rfc6962/rfc6962_test.go
        assert_eq!(
            empty_root(),
            hex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        );
        assert_eq!(
            leaf_hash(b""),
            hex("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
        );
        assert_eq!(
            leaf_hash(b"L123456"),
            hex("395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56")
        );
        // HashChildren takes raw bytes there; here both children are 4 bytes, so hash by hand.
        let node: Hash = Sha256::new()
            .chain_update([1u8])
            .chain_update(b"N123")
            .chain_update(b"N456")
            .finalize()
            .into();
        assert_eq!(
            node,
            hex("aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb")
        );
    }

    #[test]
    fn roots_of_one_to_eight_leaves_match_the_reference() {
        let t = reference_tree();
        let mut f = Frontier::new();
        for (i, l) in LEAVES.iter().enumerate() {
            f.push(leaf_hash(&unhex(l)));
            let n = i as u64 + 1;
            assert_eq!(root(n, &t.getter()), Some(hex(ROOTS[i])), "size {n}");
            assert_eq!(f.root(), hex(ROOTS[i]), "frontier size {n}");
        }
        assert_eq!(root(0, &t.getter()), Some(empty_root()));
    }

    #[test]
    fn reference_inclusion_proofs() {
        let t = reference_tree();
        // (leaf 1-based, size, proof) from proof/verify_test.go.
        let cases: &[(u64, u64, &[&str])] = &[
            (1, 1, &[]),
            (
                1,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                6,
                8,
                &[
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                3,
                3,
                &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
            ),
            (
                2,
                5,
                &[
                    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
        ];
        for &(leaf, size, want) in cases {
            let want: Vec<Hash> = want.iter().map(|h| hex(h)).collect();
            let got = inclusion_proof(leaf - 1, size, &t.getter()).unwrap();
            assert_eq!(got, want, "leaf {leaf} size {size}");
            let lh = leaf_hash(&unhex(LEAVES[leaf as usize - 1]));
            let r = hex(ROOTS[size as usize - 1]);
            assert_eq!(verify_inclusion(leaf - 1, size, &lh, &want, &r), Ok(()));
        }
    }

    #[test]
    fn reference_consistency_proofs() {
        let t = reference_tree();
        let cases: &[(u64, u64, &[&str])] = &[
            (1, 1, &[]),
            (
                1,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                6,
                8,
                &[
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                5,
                &[
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
            (
                6,
                7,
                &[
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
        ];
        for &(old, new, want) in cases {
            let want: Vec<Hash> = want.iter().map(|h| hex(h)).collect();
            let got = consistency_proof(old, new, &t.getter()).unwrap();
            assert_eq!(got, want, "{old} -> {new}");
            let r1 = hex(ROOTS[old as usize - 1]);
            let r2 = hex(ROOTS[new as usize - 1]);
            assert_eq!(verify_consistency(old, new, &r1, &r2, &want), Ok(()));
        }
    }

    /// Every way of spoiling a valid proof that the reference tests use.
    fn spoiled(proof: &[Hash], extra: Hash) -> Vec<(String, Vec<Hash>)> {
        let mut out = Vec::new();
        for i in 0..proof.len() {
            for bit in [0u8, 3, 7] {
                let mut p = proof.to_vec();
                p[i][i % 32] ^= 1 << bit;
                out.push((format!("flipped bit {bit} of hash {i}"), p));
            }
        }
        if !proof.is_empty() {
            out.push(("truncated".into(), proof[..proof.len() - 1].to_vec()));
            out.push(("first dropped".into(), proof[1..].to_vec()));
        }
        let mut longer = proof.to_vec();
        longer.push(extra);
        out.push(("extended".into(), longer));
        let mut prefixed = vec![extra];
        prefixed.extend_from_slice(proof);
        out.push(("prefixed".into(), prefixed));
        if proof.len() > 1 {
            let mut swapped = proof.to_vec();
            swapped.swap(0, 1);
            if swapped != proof {
                out.push(("reordered".into(), swapped));
            }
        }
        out
    }

    #[test]
    fn every_inclusion_proof_up_to_64_verifies_and_no_spoiled_one_does() {
        let t = tree_of(64);
        for size in 1..=64u64 {
            let r = root(size, &t.getter()).unwrap();
            let bound = 2 * (64 - (size - 1).leading_zeros()) as usize;
            for index in 0..size {
                let leaf = t.node(Node { level: 0, index }).unwrap();
                let proof = inclusion_proof(index, size, &t.getter()).unwrap();
                assert!(proof.len() <= bound, "{index}/{size}");
                assert_eq!(
                    verify_inclusion(index, size, &leaf, &proof, &r),
                    Ok(()),
                    "{index}/{size}"
                );
                for (what, p) in spoiled(&proof, r) {
                    assert!(
                        verify_inclusion(index, size, &leaf, &p, &r).is_err(),
                        "{what}: {index}/{size}"
                    );
                }
                if size > 1 {
                    let other = (index + 1) % size;
                    assert!(verify_inclusion(other, size, &leaf, &proof, &r).is_err());
                }
                assert!(verify_inclusion(index, size * 2, &leaf, &proof, &r).is_err());
                let mut wrong = leaf;
                wrong[0] ^= 1;
                assert!(verify_inclusion(index, size, &wrong, &proof, &r).is_err());
            }
            assert_eq!(
                verify_inclusion(size, size, &r, &[], &r),
                Err(ProofError::OutOfRange)
            );
        }
    }

    #[test]
    fn every_consistency_proof_up_to_64_verifies_and_no_spoiled_one_does() {
        let t = tree_of(64);
        for new in 1..=64u64 {
            let r2 = root(new, &t.getter()).unwrap();
            let bound = 2 * (64 - (new - 1).leading_zeros()) as usize;
            for old in 0..=new {
                let r1 = root(old, &t.getter()).unwrap();
                let proof = consistency_proof(old, new, &t.getter()).unwrap();
                assert!(proof.len() <= bound, "{old}->{new}");
                assert_eq!(
                    verify_consistency(old, new, &r1, &r2, &proof),
                    Ok(()),
                    "{old}->{new}"
                );
                if old == 0 || old == new {
                    assert!(proof.is_empty());
                    continue;
                }
                for (what, p) in spoiled(&proof, r2) {
                    assert!(
                        verify_consistency(old, new, &r1, &r2, &p).is_err(),
                        "{what}: {old}->{new}"
                    );
                }
                assert!(verify_consistency(old, new, &r2, &r2, &proof).is_err());
                assert!(verify_consistency(old, new, &r1, &r1, &proof).is_err());
                assert!(verify_consistency(old + 1, new, &r1, &r2, &proof).is_err());
                assert!(verify_consistency(old, new * 2, &r1, &r2, &proof).is_err());
                assert!(verify_consistency(new, old, &r2, &r1, &proof).is_err());
            }
        }
    }

    #[test]
    fn frontier_pushes_exactly_the_completed_subtrees() {
        let t = tree_of(100);
        let mut f = Frontier::new();
        // Storage as the object keeps it: one row per leaf with the subtrees it completed.
        let mut rows: Vec<Vec<Hash>> = Vec::new();
        for i in 0..100u64 {
            let completed = f.push(t.node(Node { level: 0, index: i }).unwrap());
            assert_eq!(completed.len() as u32, (i + 1).trailing_zeros() + 1);
            for (level, h) in completed.iter().enumerate() {
                let n = Node {
                    level: level as u32,
                    index: i >> level,
                };
                assert_eq!(n.last_leaf(), i);
                assert_eq!(t.node(n), Some(*h));
            }
            rows.push(completed);
            assert_eq!(f.root(), root(i + 1, &t.getter()).unwrap());
        }
        let from_rows = |n: Node| -> Option<Hash> {
            rows.get(n.last_leaf() as usize)?
                .get(n.level as usize)
                .copied()
        };
        for size in 0..=100u64 {
            let loaded = Frontier::load(size, &from_rows).unwrap();
            assert_eq!(loaded.size(), size);
            assert_eq!(loaded.root(), root(size, &t.getter()).unwrap());
            for n in Frontier::nodes(size) {
                assert_eq!(loaded.peak(n), t.node(n));
            }
        }
    }

    #[test]
    fn perfect_nodes_cover_ranges_exactly() {
        assert_eq!(
            perfect_nodes(0, 7),
            vec![
                Node { level: 2, index: 0 },
                Node { level: 1, index: 2 },
                Node { level: 0, index: 6 }
            ]
        );
        assert_eq!(perfect_nodes(8, 16), vec![Node { level: 3, index: 1 }]);
        assert!(perfect_nodes(5, 5).is_empty());
        for end in 1..70u64 {
            let nodes = perfect_nodes(0, end);
            assert_eq!(nodes.len() as u32, end.count_ones());
            // A proof reads at most 2 log n complete subtrees' worth.
            let needed = nodes_for(&inclusion_ranges(end / 2, end));
            assert!(needed.len() <= 2 * (64 - end.leading_zeros()) as usize);
        }
    }
}
