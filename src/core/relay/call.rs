//! The edge → relay call, encoded in one URL like [`crate::core::wire`].

use super::region::parse_relay_name;
use super::walk::Mode;
use crate::core::problem::Problem;
use crate::core::query;
use crate::core::vocab::MAX_VALUE;

/// The origin of edge → relay URLs; the relay ignores it.
pub const RELAY_ORIGIN: &str = "https://relay";

/// One thing the edge asks a relay to do. Every call names the relay, which is how a relay
/// learns its own name (the platform does not tell an object its name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RelayCall {
    /// Accept a browser socket (the request carries the upgrade). `held`: sockets the client
    /// has on the relays it passed because they were full, counted against its cap.
    Connect {
        relay: String,
        client: String,
        since: Option<u64>,
        held: u32,
        /// Take it ([`Mode::Take`]), take it even if this relay passed the client on before
        /// (every other relay of the walk was counted: `held` counts all of its sockets
        /// there), or only count ([`Mode::Count`]).
        mode: Mode,
        /// An event stream (`GET /api/events`) instead of a socket: the same start, the same
        /// caps, the same updates, as Server-Sent Events.
        events: bool,
    },
    /// A nearby read.
    Value {
        relay: String,
        min_version: Option<u64>,
    },
    /// The relay's sockets, version, upstream state and lag behind `counter`, the counter's
    /// version (admin).
    Stats { relay: String, counter: u64 },
    /// Test hook: reset the relay (`ctx.abort`).
    Reset { relay: String },
    /// Test hook: drop the next update from the counter, as if it were lost on the way.
    Withhold { relay: String },
    /// Test hook: the relay hears nothing more on its current upstream socket, which stays
    /// open (a half-open connection); only the watchdog can notice.
    Silence { relay: String },
    /// Test hook: as if the relay's isolate were lost while the runtime kept its browsers'
    /// sockets: the upstream closes, nothing reconnects, and the watchdog's alarm is moved
    /// [`SEVER_ALARM_MS`] ahead, long enough for the runtime to evict the idle relay.
    Sever { relay: String },
    /// Test hook: the relay's upstream closes and nothing schedules a reconnect (as if the
    /// task that reconnects were lost) while its browsers stay; only the watchdog can notice.
    Unlink { relay: String },
}

/// How far the `sever` test hook moves the watchdog's alarm (the local runtime evicts an idle
/// object after about 10 s).
pub const SEVER_ALARM_MS: f64 = 20_000.0;

impl RelayCall {
    pub fn relay(&self) -> &str {
        match self {
            RelayCall::Connect { relay, .. }
            | RelayCall::Value { relay, .. }
            | RelayCall::Stats { relay, .. }
            | RelayCall::Reset { relay }
            | RelayCall::Withhold { relay }
            | RelayCall::Silence { relay }
            | RelayCall::Sever { relay }
            | RelayCall::Unlink { relay } => relay,
        }
    }

    /// The internal URL for this call.
    pub fn encode(&self) -> String {
        let o = RELAY_ORIGIN;
        match self {
            RelayCall::Connect {
                relay,
                client,
                since,
                held,
                mode,
                events,
            } => {
                let path = if *events { "events" } else { "connect" };
                let mut url = format!("{o}/{path}?relay={relay}&client={client}&held={held}");
                if let Some(s) = since {
                    url.push_str(&format!("&since={s}"));
                }
                match mode {
                    Mode::Take => {}
                    Mode::Force => url.push_str("&force=1"),
                    Mode::Count => url.push_str("&count=1"),
                }
                url
            }
            RelayCall::Value { relay, min_version } => match min_version {
                Some(v) => format!("{o}/value?relay={relay}&min_version={v}"),
                None => format!("{o}/value?relay={relay}"),
            },
            RelayCall::Stats { relay, counter } => {
                format!("{o}/stats?relay={relay}&counter={counter}")
            }
            RelayCall::Reset { relay } => format!("{o}/reset?relay={relay}"),
            RelayCall::Withhold { relay } => format!("{o}/withhold?relay={relay}"),
            RelayCall::Silence { relay } => format!("{o}/silence?relay={relay}"),
            RelayCall::Sever { relay } => format!("{o}/sever?relay={relay}"),
            RelayCall::Unlink { relay } => format!("{o}/unlink?relay={relay}"),
        }
    }

    /// Decodes an internal URL; anything else is an internal error (only the edge makes these).
    pub fn decode(url: &str) -> Result<Self, Problem> {
        let rest = url.strip_prefix(RELAY_ORIGIN).ok_or(Problem::Internal)?;
        let (path, q) = rest.split_once('?').unwrap_or((rest, ""));
        let bad = |_| Problem::Internal;
        let pairs = query::parse(
            q,
            &[
                "relay",
                "client",
                "since",
                "held",
                "force",
                "count",
                "min_version",
                "counter",
            ],
        )
        .map_err(bad)?;
        let get = |name: &str| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| v);
        let relay = get("relay")
            .filter(|r| parse_relay_name(r).is_some())
            .ok_or(Problem::Internal)?
            .clone();
        let uint = |name| query::uint(&pairs, name, 0, MAX_VALUE as u64, None).map_err(bad);
        let only = |names: &[&str]| pairs.iter().all(|(n, _)| names.contains(n));
        match path {
            "/connect" | "/events"
                if only(&["relay", "client", "since", "held", "force", "count"]) =>
            {
                let client = get("client")
                    .filter(|c| crate::core::wire::is_client_id(c))
                    .ok_or(Problem::Internal)?
                    .clone();
                let held = uint("held")?.ok_or(Problem::Internal)?;
                Ok(RelayCall::Connect {
                    relay,
                    client,
                    since: uint("since")?,
                    held: u32::try_from(held).map_err(|_| Problem::Internal)?,
                    mode: match (
                        get("force").map(String::as_str),
                        get("count").map(String::as_str),
                    ) {
                        (None, None) => Mode::Take,
                        (Some("1"), None) => Mode::Force,
                        (None, Some("1")) => Mode::Count,
                        _ => return Err(Problem::Internal),
                    },
                    events: path == "/events",
                })
            }
            "/value" if only(&["relay", "min_version"]) => Ok(RelayCall::Value {
                relay,
                min_version: uint("min_version")?,
            }),
            "/stats" if only(&["relay", "counter"]) => Ok(RelayCall::Stats {
                relay,
                counter: uint("counter")?.ok_or(Problem::Internal)?,
            }),
            "/reset" if only(&["relay"]) => Ok(RelayCall::Reset { relay }),
            "/withhold" if only(&["relay"]) => Ok(RelayCall::Withhold { relay }),
            "/silence" if only(&["relay"]) => Ok(RelayCall::Silence { relay }),
            "/sever" if only(&["relay"]) => Ok(RelayCall::Sever { relay }),
            "/unlink" if only(&["relay"]) => Ok(RelayCall::Unlink { relay }),
            _ => Err(Problem::Internal),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_calls_roundtrip() {
        let calls = vec![
            RelayCall::Connect {
                relay: "enam-3".into(),
                client: "203.0.113.9".into(),
                since: Some(4),
                held: 2,
                mode: Mode::Force,
                events: false,
            },
            RelayCall::Connect {
                relay: "oc-0".into(),
                client: "unknown".into(),
                since: None,
                held: 0,
                mode: Mode::Take,
                events: true,
            },
            RelayCall::Connect {
                relay: "enam-300".into(),
                client: "10.0.0.1".into(),
                since: None,
                held: 7,
                mode: Mode::Count,
                events: false,
            },
            RelayCall::Value {
                relay: "weur-1".into(),
                min_version: Some(9),
            },
            RelayCall::Value {
                relay: "weur-1".into(),
                min_version: None,
            },
            RelayCall::Stats {
                relay: "apac-2".into(),
                counter: 17,
            },
            RelayCall::Reset {
                relay: "apac-2".into(),
            },
            RelayCall::Withhold {
                relay: "apac-2".into(),
            },
            RelayCall::Silence {
                relay: "apac-2".into(),
            },
            RelayCall::Sever {
                relay: "apac-2".into(),
            },
            RelayCall::Unlink {
                relay: "apac-2".into(),
            },
        ];
        for c in calls {
            assert_eq!(
                RelayCall::decode(&c.encode()),
                Ok(c.clone()),
                "{}",
                c.encode()
            );
        }
        for bad in [
            "https://counter/stats?relay=enam-1",
            "https://relay/stats?relay=mars-1&counter=1",
            "https://relay/stats?relay=enam-1",
            "https://relay/stats?relay=enam-1&counter=1&since=3",
            "https://relay/connect?relay=enam-1&client=<x>&held=0",
            "https://relay/connect?relay=enam-1&client=unknown",
            "https://relay/connect?relay=enam-1&client=unknown&held=0&force=yes",
            "https://relay/connect?relay=enam-1&client=unknown&held=0&count=0",
            "https://relay/connect?relay=enam-1&client=unknown&held=0&force=1&count=1",
            "https://relay/nope?relay=enam-1",
        ] {
            assert_eq!(RelayCall::decode(bad), Err(Problem::Internal), "{bad}");
        }
    }
}
