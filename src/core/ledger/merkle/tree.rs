//! Trees that hold hashes: [`Frontier`], the right edge the object and the verifier append to,
//! and [`MemoryTree`], every complete subtree in memory.

use super::{empty_root, node_hash, perfect_nodes, Hash, Node};

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
