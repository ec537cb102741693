//! The shared vocabulary at the bottom of the core: what a change can be and the bounds every
//! number lives in. Everything else in [`crate::core`] builds on these; this module imports
//! nothing from its siblings, so the core's modules stack above it without a cycle.

use std::fmt;

/// The largest magnitude the counter may hold: 2^53 − 1, the largest integer every JSON
/// client (JavaScript included) and the platform's SQL bindings represent exactly.
pub const MAX_VALUE: i64 = (1 << 53) - 1;

/// What a mutation does to the counter. As JSON: its name ([`Operation::as_str`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    /// Adds the amount.
    Increment,
    /// Subtracts the amount.
    Decrement,
    /// Replaces the value (admin only); the amount is the new value.
    Set,
    /// Sets the value to 0 (admin only).
    Reset,
}

impl Operation {
    /// The name used in JSON, the audit trail and the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Increment => "increment",
            Operation::Decrement => "decrement",
            Operation::Set => "set",
            Operation::Reset => "reset",
        }
    }

    /// The inverse of [`Operation::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "increment" => Some(Operation::Increment),
            "decrement" => Some(Operation::Decrement),
            "set" => Some(Operation::Set),
            "reset" => Some(Operation::Reset),
            _ => None,
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A version number in canonical decimal (no sign, no leading zeros, at most 2^53 − 1).
pub fn parse_version(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 16 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if s.len() > 1 && s.starts_with('0') {
        return None;
    }
    s.parse::<u64>().ok().filter(|v| *v <= MAX_VALUE as u64)
}

/// At most `n` characters of `s`, for echoing hostile input in a detail.
pub fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}
