//! Nearby reads: `GET /api/value?consistency=…&min_version=…`.

use crate::core::problem::Problem;
use crate::core::query;
use crate::core::vocab::{truncate, MAX_VALUE};

/// `GET /api/value`'s query: which read the caller wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueRead {
    /// The counter's own answer (the default): every acknowledged write is in it.
    Linearizable,
    /// The regional relay's memory; with `min_version`, at least that version.
    Nearby { min_version: Option<u64> },
}

impl ValueRead {
    /// Parses `consistency=linearizable|nearby` and `min_version=<v>`. A linearizable read
    /// already includes every acknowledged change, so `min_version` asks nothing more of it.
    pub fn parse(q: &str) -> Result<Self, Problem> {
        let pairs = query::parse(q, &["consistency", "min_version"])?;
        let min_version = query::uint(&pairs, "min_version", 0, MAX_VALUE as u64, None)?;
        let consistency = pairs
            .iter()
            .find(|(n, _)| *n == "consistency")
            .map(|(_, v)| v.as_str());
        match consistency {
            None | Some("linearizable") => Ok(ValueRead::Linearizable),
            Some("nearby") => Ok(ValueRead::Nearby { min_version }),
            Some(other) => Err(Problem::InvalidQuery(format!(
                "consistency must be linearizable or nearby; got {:?}.",
                truncate(other, 40)
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_reads() {
        assert_eq!(ValueRead::parse(""), Ok(ValueRead::Linearizable));
        assert_eq!(
            ValueRead::parse("consistency=linearizable"),
            Ok(ValueRead::Linearizable)
        );
        assert_eq!(
            ValueRead::parse("consistency=nearby"),
            Ok(ValueRead::Nearby { min_version: None })
        );
        assert_eq!(
            ValueRead::parse("consistency=nearby&min_version=7"),
            Ok(ValueRead::Nearby {
                min_version: Some(7)
            })
        );
        assert_eq!(
            ValueRead::parse("min_version=7"),
            Ok(ValueRead::Linearizable)
        );
        for bad in [
            "consistency=strong",
            "consistency=nearby&min_version=-1",
            "consistency=nearby&consistency=nearby",
            "x=1",
        ] {
            assert_eq!(
                ValueRead::parse(bad).map_err(|p| p.status()),
                Err(400),
                "{bad}"
            );
        }
    }
}
