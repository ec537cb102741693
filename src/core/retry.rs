//! When the edge retries a failed call to the counter object, and how long it waits.
//!
//! The platform marks a failed call `retryable` when trying again is reasonable (the object
//! was reset or moved) and `overloaded` when the object is shedding load. A retry is safe
//! because every mutation carries its idempotency key from the first attempt; it is only
//! worth it for `retryable` errors, a few times, with backoff. Overload is never retried: the
//! client gets 503 and `Retry-After` at once, instead of the edge queuing more work on an
//! object that is already behind.

use super::problem::Problem;

/// Attempts per call, the first included.
pub const MAX_ATTEMPTS: u32 = 3;
/// The backoff cap before the second attempt; doubled for each further one.
pub const BASE_BACKOFF_MS: f64 = 25.0;

/// What to do after attempt number `attempt` (1-based) failed.
#[derive(Clone, Debug, PartialEq)]
pub enum Next {
    /// Wait `random × cap_ms` (full jitter), then try again.
    Retry { cap_ms: f64 },
    /// Stop and answer this problem.
    GiveUp(Problem),
}

/// The decision for a failure with the platform's `retryable` and `overloaded` flags.
pub fn after_failure(retryable: bool, overloaded: bool, attempt: u32) -> Next {
    if overloaded {
        return Next::GiveUp(Problem::Unavailable {
            retry_after_secs: 2,
        });
    }
    if !retryable || attempt >= MAX_ATTEMPTS {
        return Next::GiveUp(Problem::Unavailable {
            retry_after_secs: 1,
        });
    }
    Next::Retry {
        cap_ms: BASE_BACKOFF_MS * f64::from(1u32 << (attempt - 1).min(16)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_errors_are_retried_with_growing_backoff_then_given_up() {
        assert_eq!(after_failure(true, false, 1), Next::Retry { cap_ms: 25.0 });
        assert_eq!(after_failure(true, false, 2), Next::Retry { cap_ms: 50.0 });
        let Next::GiveUp(p) = after_failure(true, false, MAX_ATTEMPTS) else {
            panic!("a third failure must be the last")
        };
        assert_eq!(p.status(), 503);
        assert_eq!(p.headers()[0].0, "retry-after");
    }

    #[test]
    fn other_errors_and_overload_are_not_retried() {
        assert!(matches!(after_failure(false, false, 1), Next::GiveUp(_)));
        let Next::GiveUp(p) = after_failure(true, true, 1) else {
            panic!("overload must fail fast")
        };
        assert_eq!(
            p,
            Problem::Unavailable {
                retry_after_secs: 2
            }
        );
    }
}
