//! What can be wrong with a history: each kind with its own message, name and exit status of
//! the offline verifier.

/// What is wrong with a history, each with its own message (and the verifier's exit).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tamper {
    /// A line is not JSON of an audit entry, or not in canonical form.
    NotCanonical { line: u64, why: String },
    /// Versions do not run 1, 2, 3, … .
    Gap { expected: u64, found: u64 },
    /// An entry's `previous_value` is not the prior entry's `value`.
    BrokenChain {
        version: u64,
        previous_value: i64,
        prior_value: i64,
    },
    /// An entry's `value` does not follow from its operation and amount.
    WrongValue { version: u64, detail: String },
    /// The history has fewer entries than the checkpoint's tree size.
    Truncated { entries: u64, size: u64 },
    /// The root over the history differs from the checkpoint's.
    RootMismatch { size: u64 },
    /// The checkpoint's signature does not verify with the given key.
    BadSignature(String),
    /// The log is smaller than a checkpoint saved earlier: history was rolled back.
    RolledBack { saved: u64, size: u64 },
    /// The log's tree does not extend the tree of a checkpoint saved earlier.
    Inconsistent { saved: u64, size: u64 },
}

impl std::fmt::Display for Tamper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Tamper::NotCanonical { line, why } => {
                write!(f, "line {line} is not a canonical audit entry: {why}")
            }
            Tamper::Gap { expected, found } => {
                write!(f, "version gap: expected version {expected}, found {found}")
            }
            Tamper::BrokenChain {
                version,
                previous_value,
                prior_value,
            } => write!(
                f,
                "broken chain at version {version}: previous_value {previous_value} but the prior entry's value is {prior_value}"
            ),
            Tamper::WrongValue { version, detail } => {
                write!(f, "wrong value at version {version}: {detail}")
            }
            Tamper::Truncated { entries, size } => write!(
                f,
                "the history has {entries} entries but the checkpoint covers {size}"
            ),
            Tamper::RootMismatch { size } => write!(
                f,
                "root mismatch: the entries 1..{size} do not hash to the checkpoint's root"
            ),
            Tamper::BadSignature(why) => write!(f, "bad checkpoint signature: {why}"),
            Tamper::RolledBack { saved, size } => write!(
                f,
                "rolled back: the log's tree size is {size}, but a checkpoint saved earlier has {saved}"
            ),
            Tamper::Inconsistent { saved, size } => write!(
                f,
                "inconsistent: the tree of size {size} does not extend the saved checkpoint of size {saved}; history was rewritten"
            ),
        }
    }
}

impl Tamper {
    /// A short stable name of the kind of tampering, for scripts.
    pub fn kind(&self) -> &'static str {
        match self {
            Tamper::NotCanonical { .. } => "not-canonical",
            Tamper::Gap { .. } => "gap",
            Tamper::BrokenChain { .. } => "broken-chain",
            Tamper::WrongValue { .. } => "wrong-value",
            Tamper::Truncated { .. } => "truncated",
            Tamper::RootMismatch { .. } => "root-mismatch",
            Tamper::BadSignature(_) => "bad-signature",
            Tamper::RolledBack { .. } => "rolled-back",
            Tamper::Inconsistent { .. } => "inconsistent",
        }
    }

    /// The verifier's exit status for this kind (1 is left for usage and I/O errors).
    pub fn exit_code(&self) -> u8 {
        match self {
            Tamper::BadSignature(_) => 2,
            Tamper::NotCanonical { .. } => 3,
            Tamper::Gap { .. } => 4,
            Tamper::BrokenChain { .. } => 5,
            Tamper::WrongValue { .. } => 6,
            Tamper::Truncated { .. } => 7,
            Tamper::RootMismatch { .. } => 8,
            Tamper::RolledBack { .. } => 9,
            Tamper::Inconsistent { .. } => 10,
        }
    }
}
