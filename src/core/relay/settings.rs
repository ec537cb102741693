//! The relays' settings: their defaults (read with [`crate::core::setting::parse_setting`]).

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
