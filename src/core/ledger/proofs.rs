//! The proof endpoints: their queries (`GET /api/audit/proof/inclusion`, `…/consistency`) and
//! their bodies, and the tree head the edge makes a checkpoint of.

use super::checkpoint::{decode_hash, encode_hash};
use super::merkle::Hash;
use super::MAX;
use crate::core::json::JsonWriter;
use crate::core::problem::Problem;
use crate::core::query;

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
    JsonWriter::object_with_capacity(hashes.len() * 48 + 160)
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
    JsonWriter::object_with_capacity(hashes.len() * 48 + 64)
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
    use crate::core::ledger::checkpoint::Checkpoint;

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
