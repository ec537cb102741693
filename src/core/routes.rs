//! The public API surface: which paths exist and which methods each accepts.

use super::problem::Problem;
use super::vocab::Operation;

/// Everything the API serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// `GET /api/value`
    Value,
    /// `POST /api/increment`, `POST /api/decrement`
    Step(Operation),
    /// `GET /api/audit`
    Audit,
    /// `GET /api/health`
    Health,
    /// `GET /api/audit/checkpoint`
    Checkpoint,
    /// `GET /api/audit/key`
    AuditKey,
    /// `GET /api/audit/proof/inclusion`
    Inclusion,
    /// `GET /api/audit/proof/consistency`
    Consistency,
    /// `GET /api/audit/export`
    Export,
    /// `GET /api/ws` (WebSocket)
    Socket,
    /// `GET /api/events` (Server-Sent Events)
    Events,
    /// `GET /api/badge.svg`
    Badge,
    /// `GET /api/openapi.json`
    OpenApi,
    /// `POST /api/admin/set`
    AdminSet,
    /// `POST /api/admin/reset`
    AdminReset,
    /// `GET /api/metrics` (admin): the object's metrics as Prometheus text.
    Metrics,
    /// `GET /api/admin/relays`: every connected relay's sockets, version and lag.
    AdminRelays,
    /// `POST /api/admin/relays/reset?relay=…` (test hook): reset one relay.
    AdminRelayReset,
    /// `POST /api/admin/relays/withhold?relay=…` (test hook): drop one update on its way to
    /// one relay.
    AdminRelayWithhold,
    /// `POST /api/admin/relays/silence?relay=…` (test hook): the relay stops hearing its
    /// upstream socket, which stays open.
    AdminRelaySilence,
    /// `POST /api/admin/relays/sever?relay=…` (test hook): the relay loses its upstream and
    /// stops until its watchdog's alarm, as if its isolate were lost.
    AdminRelaySever,
    /// `POST /api/admin/relays/unlink?relay=…` (test hook): the relay's upstream closes and
    /// nothing reconnects it but the watchdog.
    AdminRelayUnlink,
    /// `POST /api/admin/counter/restart` (test hook): reset the counter object.
    AdminCounterRestart,
    /// `POST /api/admin/edge/panic` (test hook): the edge panics (a Wasm trap), to show that
    /// the next request finds a fresh instance and no change is lost or applied twice.
    AdminEdgePanic,
    /// `OPTIONS` on any of the above (CORS preflight).
    Preflight,
}

impl Route {
    /// Whether the route changes the counter.
    pub fn is_mutation(self) -> bool {
        matches!(self, Route::Step(_) | Route::AdminSet | Route::AdminReset)
    }
}

/// One path: its `Allow` value and the route each method reaches.
type PathSpec = (&'static str, &'static str, &'static [(&'static str, Route)]);

/// Every path of the API.
const TABLE: &[PathSpec] = &[
    (
        "/api/value",
        "GET, HEAD, OPTIONS",
        &[("GET", Route::Value), ("HEAD", Route::Value)],
    ),
    (
        "/api/increment",
        "POST, OPTIONS",
        &[("POST", Route::Step(Operation::Increment))],
    ),
    (
        "/api/decrement",
        "POST, OPTIONS",
        &[("POST", Route::Step(Operation::Decrement))],
    ),
    (
        "/api/audit",
        "GET, HEAD, OPTIONS",
        &[("GET", Route::Audit), ("HEAD", Route::Audit)],
    ),
    (
        "/api/audit/checkpoint",
        "GET, HEAD, OPTIONS",
        &[("GET", Route::Checkpoint), ("HEAD", Route::Checkpoint)],
    ),
    (
        "/api/audit/key",
        "GET, HEAD, OPTIONS",
        &[("GET", Route::AuditKey), ("HEAD", Route::AuditKey)],
    ),
    (
        "/api/audit/export",
        "GET, HEAD, OPTIONS",
        &[("GET", Route::Export), ("HEAD", Route::Export)],
    ),
    (
        "/api/audit/proof/inclusion",
        "GET, HEAD, OPTIONS",
        &[("GET", Route::Inclusion), ("HEAD", Route::Inclusion)],
    ),
    (
        "/api/audit/proof/consistency",
        "GET, HEAD, OPTIONS",
        &[("GET", Route::Consistency), ("HEAD", Route::Consistency)],
    ),
    (
        "/api/health",
        "GET, HEAD, OPTIONS",
        &[("GET", Route::Health), ("HEAD", Route::Health)],
    ),
    ("/api/ws", "GET, OPTIONS", &[("GET", Route::Socket)]),
    ("/api/events", "GET, OPTIONS", &[("GET", Route::Events)]),
    (
        "/api/badge.svg",
        "GET, HEAD, OPTIONS",
        &[("GET", Route::Badge), ("HEAD", Route::Badge)],
    ),
    (
        "/api/openapi.json",
        "GET, HEAD, OPTIONS",
        &[("GET", Route::OpenApi), ("HEAD", Route::OpenApi)],
    ),
    (
        "/api/admin/set",
        "POST, OPTIONS",
        &[("POST", Route::AdminSet)],
    ),
    (
        "/api/admin/reset",
        "POST, OPTIONS",
        &[("POST", Route::AdminReset)],
    ),
    (
        "/api/metrics",
        "GET, HEAD, OPTIONS",
        &[("GET", Route::Metrics), ("HEAD", Route::Metrics)],
    ),
    (
        "/api/admin/relays",
        "GET, HEAD, OPTIONS",
        &[("GET", Route::AdminRelays), ("HEAD", Route::AdminRelays)],
    ),
    (
        "/api/admin/relays/reset",
        "POST, OPTIONS",
        &[("POST", Route::AdminRelayReset)],
    ),
    (
        "/api/admin/relays/withhold",
        "POST, OPTIONS",
        &[("POST", Route::AdminRelayWithhold)],
    ),
    (
        "/api/admin/relays/silence",
        "POST, OPTIONS",
        &[("POST", Route::AdminRelaySilence)],
    ),
    (
        "/api/admin/relays/sever",
        "POST, OPTIONS",
        &[("POST", Route::AdminRelaySever)],
    ),
    (
        "/api/admin/relays/unlink",
        "POST, OPTIONS",
        &[("POST", Route::AdminRelayUnlink)],
    ),
    (
        "/api/admin/counter/restart",
        "POST, OPTIONS",
        &[("POST", Route::AdminCounterRestart)],
    ),
    (
        "/api/admin/edge/panic",
        "POST, OPTIONS",
        &[("POST", Route::AdminEdgePanic)],
    ),
];

/// Finds the route for `method` and `path`: 404 for an unknown path, 405 (with `Allow`) for a
/// known path and another method.
pub fn route(method: &str, path: &str) -> Result<Route, Problem> {
    let (_, allow, methods) = TABLE
        .iter()
        .find(|(p, _, _)| *p == path)
        .ok_or(Problem::NotFound)?;
    if method == "OPTIONS" {
        return Ok(Route::Preflight);
    }
    methods
        .iter()
        .find(|(m, _)| *m == method)
        .map(|(_, r)| *r)
        .ok_or(Problem::MethodNotAllowed { allow })
}

/// The methods a path allows (for preflight answers), if the path exists.
pub fn allowed(path: &str) -> Option<&'static str> {
    TABLE
        .iter()
        .find(|(p, _, _)| *p == path)
        .map(|(_, a, _)| *a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_routes() {
        assert_eq!(route("GET", "/api/value"), Ok(Route::Value));
        assert_eq!(route("HEAD", "/api/value"), Ok(Route::Value));
        assert_eq!(
            route("POST", "/api/increment"),
            Ok(Route::Step(Operation::Increment))
        );
        assert_eq!(
            route("POST", "/api/decrement"),
            Ok(Route::Step(Operation::Decrement))
        );
        assert_eq!(route("GET", "/api/ws"), Ok(Route::Socket));
        assert_eq!(route("GET", "/api/events"), Ok(Route::Events));
        assert_eq!(route("HEAD", "/api/events").unwrap_err().status(), 405);
        assert_eq!(route("GET", "/api/metrics"), Ok(Route::Metrics));
        assert!(!Route::Metrics.is_mutation());
        assert_eq!(route("GET", "/api/audit/checkpoint"), Ok(Route::Checkpoint));
        assert_eq!(
            route("HEAD", "/api/audit/proof/consistency"),
            Ok(Route::Consistency)
        );
        assert_eq!(route("POST", "/api/audit/key").unwrap_err().status(), 405);
        assert_eq!(route("OPTIONS", "/api/increment"), Ok(Route::Preflight));
        assert!(route("POST", "/api/admin/set").unwrap().is_mutation());
        assert!(!route("GET", "/api/audit").unwrap().is_mutation());
    }

    #[test]
    fn unknown_paths_are_404_and_wrong_methods_405() {
        for p in [
            "/api",
            "/api/",
            "/api/value/",
            "/api/VALUE",
            "/api/nope",
            "/api/admin",
        ] {
            assert_eq!(route("GET", p), Err(Problem::NotFound), "{p}");
        }
        assert_eq!(route("OPTIONS", "/api/nope"), Err(Problem::NotFound));
        let e = route("DELETE", "/api/value").unwrap_err();
        assert_eq!(e.status(), 405);
        assert_eq!(e.headers()[0].1, "GET, HEAD, OPTIONS");
        assert_eq!(route("GET", "/api/increment").unwrap_err().status(), 405);
        assert_eq!(route("post", "/api/increment").unwrap_err().status(), 405);
    }
}
