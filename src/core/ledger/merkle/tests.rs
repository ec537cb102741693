//! The RFC 6962 reference vectors and exhaustive checks of proofs up to 64 leaves.

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
