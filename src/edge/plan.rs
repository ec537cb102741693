//! Routing and validation: each request becomes a [`Plan`], or a [`Problem`] before it costs
//! the counter anything. [`plan`] finds the route and applies the origin rule; one function
//! per route reads and checks the rest.

use web_sys::{Headers, Request, Response};

use crate::core::command::{self, Amount, IfMatch, Mutation, MAX_BODY_BYTES};
use crate::core::cors::{self, Access};
use crate::core::idempotency::{self, RequestKey};
use crate::core::ledger::{AsOfQuery, ConsistencyQuery, ExportQuery, InclusionQuery};
use crate::core::problem::Problem;
use crate::core::relay::ValueRead;
use crate::core::routes::{self, Route};
use crate::core::vocab::Operation;
use crate::core::wire::ObjectCall;
use crate::core::{audit::AuditQuery, query, sse};
use crate::http;

use super::config::Config;
use super::finish::Facts;
use super::{badge, body, relays, shield};

/// The longest `If-Match` header read, in bytes.
const MAX_IF_MATCH_BYTES: usize = 512;
/// The longest URL accepted, in bytes.
const MAX_URL_BYTES: usize = 2048;

/// What to do with a validated request.
pub(super) enum Plan {
    /// Answer now, without the counter.
    Answer(Response),
    /// Ask the counter.
    Call(ObjectCall),
    /// Open a socket: the counter needs the upgrade request itself.
    Connect(ObjectCall),
    /// An event stream without relays: the edge follows the counter ([`super::events`]).
    Events(ObjectCall),
    /// The value as an SVG badge ([`badge`]).
    Badge(badge::Ask),
    /// Serve a static file from the assets (the OpenAPI description).
    Static(String),
    /// Make (and sign) the ledger's checkpoint.
    Checkpoint,
    /// Serve the checkpoint verifier key.
    CheckpointKey,
    /// Stream an export of the audit trail (`true`: headers only).
    Export(crate::core::ledger::ExportQuery, bool),
    /// Read the body first: the only step that has to wait for the client.
    ReadBody(Pending),
    /// Ask the relay tier (a socket or nearby read through a relay, the relay admin views).
    Relay(relays::Call),
}

/// A mutation waiting for its body.
pub(super) struct Pending {
    pub(super) route: Route,
    pub(super) key: RequestKey,
    pub(super) if_match: Option<IfMatch>,
    pub(super) content_type: Option<String>,
}

/// One request as routing sees it, and the facts it fills in for the log line (the client,
/// a change's key as the request id).
pub(super) struct Incoming<'r, 'f> {
    pub(super) req: &'r Request,
    pub(super) headers: &'r Headers,
    pub(super) url: &'r str,
    pub(super) query: &'r str,
    pub(super) access: &'r Access,
    pub(super) config: &'r Config,
    pub(super) relays: relays::Settings,
    pub(super) facts: &'r mut Facts<'f>,
}

impl Incoming<'_, '_> {
    fn header(&self, name: &str) -> Result<Option<String>, Problem> {
        self.headers.get(name).map_err(|_| Problem::InvalidHeader {
            name: "header",
            detail: "unreadable".into(),
        })
    }

    /// The client identifier, read from the headers the first time it is needed.
    fn client(&mut self) -> String {
        self.facts.read_client(self.headers);
        self.facts.client.clone()
    }

    fn authorize_admin(&self) -> Result<(), Problem> {
        self.config
            .authorize_admin(self.header("authorization")?.as_deref())
    }

    fn no_query(&self) -> Result<(), Problem> {
        query::parse(self.query, &[]).map(|_| ())
    }

    fn head(&self) -> bool {
        self.facts.method == "HEAD"
    }
}

/// Routes and validates; every refusal is a [`Problem`].
pub(super) fn plan(cx: &mut Incoming) -> Result<Plan, Problem> {
    if cx.url.len() > MAX_URL_BYTES {
        return Err(Problem::UriTooLong {
            limit: MAX_URL_BYTES,
        });
    }
    let route = routes::route(cx.facts.method, cx.facts.path)?;
    if route.is_mutation() || route == Route::Socket {
        if let Access::Denied(o) = cx.access {
            return Err(Problem::ForbiddenOrigin(o.clone()));
        }
    }
    let query = cx.query;
    match route {
        Route::Preflight => preflight(cx.facts.path, cx.access).map(Plan::Answer),
        Route::Value => value(cx),
        Route::Step(_) | Route::AdminSet | Route::AdminReset => change(cx, route),
        Route::Socket => socket(cx),
        Route::Events => event_stream(cx),
        Route::Badge => svg_badge(cx),
        Route::Health => cx.no_query().map(|()| Plan::Call(ObjectCall::Health)),
        Route::Metrics => {
            cx.no_query()?;
            cx.authorize_admin()?;
            Ok(Plan::Call(ObjectCall::Metrics))
        }
        Route::OpenApi => {
            cx.no_query()?;
            // The description is a static file of the app (web/openapi.json).
            let origin = cors::origin_of(cx.url);
            Ok(Plan::Static(format!("{origin}/openapi.json")))
        }
        // The ledger and the audit trail.
        Route::Checkpoint => cx.no_query().map(|()| Plan::Checkpoint),
        Route::AuditKey => cx.no_query().map(|()| Plan::CheckpointKey),
        Route::Export => Ok(Plan::Export(ExportQuery::parse(query)?, cx.head())),
        Route::Inclusion => Ok(Plan::Call(ObjectCall::Inclusion(InclusionQuery::parse(
            query,
        )?))),
        Route::Consistency => Ok(Plan::Call(ObjectCall::Consistency(
            ConsistencyQuery::parse(query)?,
        ))),
        Route::Audit => Ok(Plan::Call(ObjectCall::Audit(AuditQuery::parse(query)?))),
        Route::AdminRelays => {
            cx.no_query()?;
            cx.authorize_admin()?;
            Ok(Plan::Relay(relays::Call::List))
        }
        Route::AdminRelayReset
        | Route::AdminRelayWithhold
        | Route::AdminRelaySilence
        | Route::AdminRelaySever
        | Route::AdminRelayUnlink
        | Route::AdminCounterRestart
        | Route::AdminEdgePanic => test_hook(cx, route),
    }
}

/// A CORS preflight: allowed origins get the methods and headers they may use; same-origin
/// and origin-less preflights get `Allow`; other origins get 403 without any CORS header. The
/// event stream's preflight admits any page.
fn preflight(path: &str, access: &Access) -> Result<Response, Problem> {
    if routes::route("GET", path) == Ok(Route::Events) {
        // Anyone may read the stream, from any page.
        return http::respond(204, http::JSON, "", &sse::PREFLIGHT).map_err(|e| e.problem());
    }
    let methods = routes::allowed(path).ok_or(Problem::NotFound)?;
    match access {
        Access::Allowed(origin) => {
            let h = cors::preflight_headers(origin, methods);
            let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
            http::respond(204, http::JSON, "", &h).map_err(|e| e.problem())
        }
        Access::Denied(o) => Err(Problem::ForbiddenOrigin(o.clone())),
        Access::NoOrigin | Access::SameOrigin => {
            http::respond(204, http::JSON, "", &[("allow", methods)]).map_err(|e| e.problem())
        }
    }
}

/// `GET /api/value`: now (the counter's, or with relays a nearby read), or as of the past.
fn value(cx: &mut Incoming) -> Result<Plan, Problem> {
    // A past state is the counter's to answer (`core::ledger::AsOfQuery`).
    if AsOfQuery::wanted(cx.query) {
        return Ok(Plan::Call(ObjectCall::ValueAsOf(AsOfQuery::parse(
            cx.query,
        )?)));
    }
    match ValueRead::parse(cx.query)? {
        ValueRead::Nearby { min_version } if cx.relays.per_relay > 0 => {
            Ok(Plan::Relay(relays::Call::Nearby {
                region: relays::region_of(cx.req),
                client: cx.client(),
                min_version,
            }))
        }
        // Without relays, a nearby read is the counter's own (linearizable) answer.
        _ => Ok(Plan::Call(ObjectCall::Value)),
    }
}

/// A change (increment, decrement, set, reset): its key before the first attempt, its
/// `If-Match`, and its body now when it has none, else once it is read ([`Plan::ReadBody`]).
fn change(cx: &mut Incoming, route: Route) -> Result<Plan, Problem> {
    cx.no_query()?;
    cx.facts.read_client(cx.headers);
    if matches!(route, Route::AdminSet | Route::AdminReset) {
        cx.authorize_admin()?;
    }
    let key = idempotency::client_key(
        cx.header("idempotency-key")?.as_deref(),
        cx.header("x-request-id")?.as_deref(),
    )?
    .unwrap_or_else(new_key);
    cx.facts.request_id = key.as_str().to_owned();
    let if_match = match cx.header("if-match")? {
        Some(v) if v.len() > MAX_IF_MATCH_BYTES => {
            return Err(Problem::InvalidHeader {
                name: "If-Match",
                detail: format!("longer than {MAX_IF_MATCH_BYTES} bytes."),
            })
        }
        Some(v) => Some(IfMatch::parse(&v)?),
        None => None,
    };
    let pending = Pending {
        route,
        key,
        if_match,
        content_type: cx.header("content-type")?,
    };
    // Most clicks carry no body at all; only a real body is worth waiting for.
    let length = cx.header("content-length")?;
    if length.as_deref().map(str::trim) == Some("0") || cx.req.body().is_none() {
        mutation(pending, &[], cx.facts).map(Plan::Call)
    } else {
        body::check_length(length.as_deref(), MAX_BODY_BYTES)?;
        Ok(Plan::ReadBody(pending))
    }
}

/// The call for a mutation with its (possibly empty) body.
pub(super) fn mutation(p: Pending, body: &[u8], facts: &mut Facts) -> Result<ObjectCall, Problem> {
    command::check_json_media_type(p.content_type.as_deref(), body.len())?;
    let (op, operand) = match p.route {
        Route::Step(op) => (op, i64::from(command::parse_amount_body(body)?.get())),
        Route::AdminSet => (Operation::Set, command::parse_set_body(body)?),
        _ if body.is_empty() => (Operation::Reset, 0),
        _ => return Err(Problem::InvalidBody("reset takes no body.".into())),
    };
    facts.mutation = Some((op, operand));
    if matches!(op, Operation::Increment | Operation::Decrement) {
        // A client the counter refused lately is refused here, before any call.
        if Config::loaded().is_some_and(|c| c.changes_limited) {
            shield::check_change(&facts.client, p.key.as_str())?;
            facts.shield = Some(shield::tag(&facts.client, p.key.as_str()));
        }
    }
    let mutation = match op {
        Operation::Increment | Operation::Decrement => {
            Mutation::step(op, Amount::new(operand)?, p.key, p.if_match)
        }
        Operation::Set | Operation::Reset => Mutation {
            op,
            operand,
            key: p.key,
            if_match: p.if_match,
        },
    };
    Ok(ObjectCall::Mutate {
        mutation,
        client: facts.client.clone(),
    })
}

/// A fresh key for a mutation that came without one.
fn new_key() -> RequestKey {
    RequestKey::generated(uuid::Uuid::new_v4().to_string())
}

/// `GET /api/ws`: a complete WebSocket handshake (RFC 6455 §4.1), or nothing reaches the
/// object.
fn socket(cx: &mut Incoming) -> Result<Plan, Problem> {
    let since = since(cx.query)?;
    let upgrade = cx.header("upgrade")?;
    let key = cx.header("sec-websocket-key")?;
    let version = cx.header("sec-websocket-version")?;
    if !upgrade.is_some_and(|u| u.eq_ignore_ascii_case("websocket"))
        || key.is_none_or(|k| k.trim().is_empty())
        || version.as_deref().map(str::trim) != Some("13")
    {
        return Err(Problem::UpgradeRequired);
    }
    Ok(follow(cx, since, false))
}

/// `GET /api/events`, Server-Sent Events: read by anyone (no origin rule), counted like a
/// socket; `Last-Event-ID` wins over `?since=`.
fn event_stream(cx: &mut Incoming) -> Result<Plan, Problem> {
    let since = since(cx.query)?;
    let since = sse::resume(cx.header("last-event-id")?.as_deref(), since)?;
    Ok(follow(cx, since, true))
}

/// `?since=`, the version a socket or an event stream resumes after.
fn since(query: &str) -> Result<Option<u64>, Problem> {
    let pairs = query::parse(query, &["since"])?;
    query::uint(
        &pairs,
        "since",
        0,
        crate::core::vocab::MAX_VALUE as u64,
        None,
    )
}

/// A socket (`events: false`) or an event stream for this client: through its relay, or
/// from the counter itself when there are no relays.
fn follow(cx: &mut Incoming, since: Option<u64>, events: bool) -> Plan {
    let client = cx.client();
    if cx.relays.per_relay > 0 {
        return Plan::Relay(relays::Call::Connect {
            region: relays::region_of(cx.req),
            client,
            since,
            events,
        });
    }
    let call = ObjectCall::Connect { since, client };
    if events {
        Plan::Events(call)
    } else {
        Plan::Connect(call)
    }
}

/// `GET /api/badge.svg`: its label and color, and with relays the caller's relay to read.
fn svg_badge(cx: &mut Incoming) -> Result<Plan, Problem> {
    let badge = crate::core::badge::Badge::parse(cx.query)?;
    let nearby = (cx.relays.per_relay > 0).then(|| (relays::region_of(cx.req), cx.client()));
    Ok(Plan::Badge(badge::Ask {
        badge,
        if_none_match: cx.header("if-none-match")?,
        head: cx.head(),
        nearby,
    }))
}

/// The test hooks (relays, the counter, the edge itself): an admin's, and only where
/// `ADMIN_TEST_HOOKS=1` turns them on.
fn test_hook(cx: &mut Incoming, route: Route) -> Result<Plan, Problem> {
    cx.authorize_admin()?;
    if !cx.relays.hooks {
        return Err(Problem::NotFound);
    }
    if route == Route::AdminEdgePanic {
        cx.no_query()?;
        // A trap, as a bug would cause: this request fails, and the runtime's next
        // request finds a fresh instance (src/entry.js).
        panic!("the edge panics on purpose (test hook)");
    }
    let relay = if route == Route::AdminCounterRestart {
        cx.no_query()?;
        None
    } else {
        Some(relay_param(cx.query)?)
    };
    Ok(Plan::Relay(relays::Call::Hook { route, relay }))
}

/// `relay=<region>-<shard>`, the one parameter of the relay test hooks.
fn relay_param(query: &str) -> Result<String, Problem> {
    let pairs = query::parse(query, &["relay"])?;
    pairs
        .into_iter()
        .next()
        .map(|(_, v)| v)
        .filter(|v| crate::core::relay::parse_relay_name(v).is_some())
        .ok_or_else(|| {
            Problem::InvalidQuery(
                "relay must name a relay, such as enam-0 (see GET /api/admin/relays).".into(),
            )
        })
}
