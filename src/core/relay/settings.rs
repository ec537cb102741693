//! The relays' settings: their defaults and how a value is read.

/// The default cap of browser sockets per relay (`RELAY_SOCKETS_PER_RELAY`).
pub const DEFAULT_SOCKETS_PER_RELAY: u32 = 2500;

/// The default number of relays a region starts with (`RELAY_SHARDS`): its first level, where
/// every client's sockets start.
pub const DEFAULT_SHARDS: u32 = 4;

/// The default seconds between a relay's watchdog checks (`RELAY_WATCHDOG_SECONDS`).
pub const DEFAULT_WATCHDOG_SECONDS: u32 = 30;

/// The default seconds a relay with no browser and no nearby read keeps its upstream
/// (`RELAY_IDLE_SECONDS`).
pub const DEFAULT_IDLE_SECONDS: u32 = 60;

/// A relay setting: absent = `default`; otherwise a non-negative integer up to `max`.
pub fn parse_setting(raw: Option<&str>, default: u32, max: u32) -> Result<u32, String> {
    match raw.map(str::trim) {
        None | Some("") => Ok(default),
        Some(s) => s
            .parse::<u32>()
            .ok()
            .filter(|n| *n <= max)
            .ok_or_else(|| format!("expected an integer from 0 to {max}, got {s:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings() {
        assert_eq!(parse_setting(None, 2500, 32768), Ok(2500));
        assert_eq!(parse_setting(Some("0"), 2500, 32768), Ok(0));
        assert_eq!(parse_setting(Some(" 50 "), 2500, 32768), Ok(50));
        assert!(parse_setting(Some("-1"), 2500, 32768).is_err());
        assert!(parse_setting(Some("40000"), 2500, 32768).is_err());
    }
}
