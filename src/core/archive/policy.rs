//! Which entries leave the object, and when: the archive's settings (vars), the next segment
//! that is due, and the delays of the alarm that moves it.

use super::SEGMENT_ENTRIES;

/// The idempotency retention when `IDEMPOTENCY_RETENTION_SECONDS` is not set: the contract's
/// 24 hours.
pub const DEFAULT_RETENTION_SECS: u64 = 86_400;
/// How long after the window is exceeded the archival alarm runs, so that a burst of changes
/// becomes one segment rather than many small ones.
pub const DELAY_MS: i64 = 1_000;
/// Retry delays of a failing archival run: doubling from the first, capped at the last.
pub const BACKOFF_MS: (i64, i64) = (2_000, 300_000);
/// Expired idempotency keys removed per alarm run.
pub const EXPIRE_CHUNK: u64 = 5_000;

/// The archive's configuration (vars).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Entries kept in the object; 0 = keep everything (no archival).
    pub hot_entries: u64,
    /// Entries older than this many hours are archived even inside the window; 0 = no age limit.
    pub hot_hours: u64,
    /// How long an idempotency key is remembered, in seconds (at least).
    pub retention_secs: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            hot_entries: 0,
            hot_hours: 0,
            retention_secs: DEFAULT_RETENTION_SECS,
        }
    }
}

impl Settings {
    /// Reads the three vars (absent = the default). A malformed value keeps its default and is
    /// returned as an error text for the log, naming the var.
    pub fn parse(
        hot_entries: Option<&str>,
        hot_hours: Option<&str>,
        retention_secs: Option<&str>,
    ) -> (Settings, Vec<String>) {
        let mut s = Settings::default();
        let mut errors = Vec::new();
        let mut read = |name: &str, raw: Option<&str>, min: u64, into: &mut u64| {
            let Some(raw) = raw.map(str::trim).filter(|r| !r.is_empty()) else {
                return;
            };
            match raw.parse::<u64>() {
                Ok(v) if v >= min && v <= 1_000_000_000_000 => *into = v,
                _ => errors.push(format!(
                    "{name} must be an integer from {min} to 10^12; got {raw:?}"
                )),
            }
        };
        read("AUDIT_HOT_ENTRIES", hot_entries, 0, &mut s.hot_entries);
        read("AUDIT_HOT_HOURS", hot_hours, 0, &mut s.hot_hours);
        read(
            "IDEMPOTENCY_RETENTION_SECONDS",
            retention_secs,
            1,
            &mut s.retention_secs,
        );
        (s, errors)
    }

    /// Whether anything is ever archived.
    pub fn archives(&self) -> bool {
        self.hot_entries > 0
    }

    /// The `at` of the oldest entry that may stay hot under `AUDIT_HOT_HOURS`, at `now_ms`
    /// (entries with an earlier `at` are archived); `None` without an age limit.
    pub fn age_cutoff(&self, now_ms: i64) -> Option<String> {
        (self.hot_hours > 0).then(|| {
            crate::core::time::rfc3339_millis(
                now_ms - (self.hot_hours as i64).saturating_mul(3_600_000),
            )
        })
    }

    /// The `at` before which an idempotency key is expired, at `now_ms`. `at` strings are
    /// RFC 3339 UTC with milliseconds, so they compare as text in time order.
    pub fn key_cutoff(&self, now_ms: i64) -> String {
        crate::core::time::rfc3339_millis(
            now_ms - (self.retention_secs as i64).saturating_mul(1000),
        )
    }
}

/// The next segment to archive, `(first, last)`, given the entries archived so far (through
/// `archived_through`, a multiple of [`SEGMENT_ENTRIES`]), the counter's `version`, the newest
/// version that is old enough to go under `AUDIT_HOT_HOURS` (`aged_through`, 0 if none) and
/// `ready_through`, the newest version the Merkle tree has hashed (an entry is archived only
/// once its hash is stored). A segment goes only once all of it is due.
pub fn next_segment(
    s: &Settings,
    archived_through: u64,
    version: u64,
    aged_through: u64,
    ready_through: u64,
) -> Option<(u64, u64)> {
    if !s.archives() {
        return None;
    }
    let cut = version
        .saturating_sub(s.hot_entries)
        .max(aged_through.min(version))
        .min(ready_through);
    let first = archived_through + 1;
    let last = archived_through + SEGMENT_ENTRIES;
    (last <= cut).then_some((first, last))
}

/// When the next archival attempt runs after `failures` consecutive failures.
pub fn backoff_ms(failures: u32) -> i64 {
    let (first, cap) = BACKOFF_MS;
    let shift = failures.saturating_sub(1).min(20);
    first.saturating_mul(1 << shift).min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_defaults_and_errors() {
        let (s, e) = Settings::parse(None, None, None);
        assert_eq!(s, Settings::default());
        assert!(e.is_empty());
        assert!(!s.archives());
        let (s, e) = Settings::parse(Some("500"), Some("24"), Some("60"));
        assert!(e.is_empty());
        assert_eq!(
            (s.hot_entries, s.hot_hours, s.retention_secs),
            (500, 24, 60)
        );
        let (s, e) = Settings::parse(Some("-1"), Some("x"), Some("0"));
        assert_eq!(s, Settings::default());
        assert_eq!(e.len(), 3);
        assert!(e[2].contains("IDEMPOTENCY_RETENTION_SECONDS"));
    }

    #[test]
    fn cutoffs_compare_as_text() {
        let s = Settings {
            hot_entries: 1,
            hot_hours: 2,
            retention_secs: 60,
        };
        assert_eq!(s.key_cutoff(120_000), "1970-01-01T00:01:00.000Z");
        assert_eq!(
            s.age_cutoff(3 * 3_600_000).as_deref(),
            Some("1970-01-01T01:00:00.000Z")
        );
        assert_eq!(Settings::default().age_cutoff(0), None);
        assert!(s.key_cutoff(120_000) < crate::core::time::rfc3339_millis(60_001));
    }

    #[test]
    fn segments_follow_the_window_in_bounded_steps() {
        let s = Settings {
            hot_entries: 100,
            hot_hours: 0,
            retention_secs: 60,
        };
        assert_eq!(next_segment(&s, 0, 1_123, 0, 1_123), None);
        assert_eq!(next_segment(&s, 0, 1_124, 0, 1_124), Some((1, 1024)));
        assert_eq!(next_segment(&s, 0, 5_000, 0, 5_000), Some((1, 1024)));
        assert_eq!(next_segment(&s, 1024, 5_000, 0, 5_000), Some((1025, 2048)));
        assert_eq!(next_segment(&s, 4096, 5_000, 0, 5_000), None);
        // Never beyond what the Merkle tree has hashed.
        assert_eq!(next_segment(&s, 0, 5_000, 0, 1_023), None);
        assert_eq!(next_segment(&s, 0, 5_000, 0, 1_024), Some((1, 1024)));
        // The age limit archives inside the window, never beyond the counter.
        assert_eq!(next_segment(&s, 0, 1_100, 1_050, 1_100), Some((1, 1024)));
        assert_eq!(next_segment(&s, 0, 1_000, 5_000, 1_000), None);
        // 0 keeps everything.
        let keep = Settings::default();
        assert_eq!(
            next_segment(&keep, 0, 1_000_000, 1_000_000, 1_000_000),
            None
        );
    }

    #[test]
    fn backoff_doubles_to_a_cap() {
        assert_eq!(backoff_ms(1), 2_000);
        assert_eq!(backoff_ms(2), 4_000);
        assert_eq!(backoff_ms(30), 300_000);
    }
}
