//! Routing and validation: each request becomes a [`Plan`], or a [`Problem`] before it costs
//! the counter anything.

use web_sys::{Headers, Request, Response};

use crate::core::command::{self, Amount, IfMatch, Mutation, MAX_BODY_BYTES};
use crate::core::cors::{self, Access};
use crate::core::idempotency::{self, RequestKey};
use crate::core::problem::Problem;
use crate::core::relay::ValueRead;
use crate::core::routes::{self, Route};
use crate::core::vocab::Operation;
use crate::core::wire::ObjectCall;
use crate::http;

use super::config::Config;
use super::finish::Facts;
use super::{badge, body, relays, shield, Pending, Plan};

/// The longest `If-Match` header read, in bytes.
const MAX_IF_MATCH_BYTES: usize = 512;
/// The longest URL accepted, in bytes.
const MAX_URL_BYTES: usize = 2048;

/// Routes and validates; every refusal is a [`Problem`].
pub(super) fn plan(
    req: &Request,
    headers: &Headers,
    (config, relay_settings): (&Config, relays::Settings),
    url: &str,
    query: &str,
    access: &Access,
    facts: &mut Facts,
) -> Result<Plan, Problem> {
    if url.len() > MAX_URL_BYTES {
        return Err(Problem::UriTooLong {
            limit: MAX_URL_BYTES,
        });
    }
    let route = routes::route(facts.method, facts.path)?;
    if route == Route::Preflight {
        if routes::route("GET", facts.path) == Ok(Route::Events) {
            // Anyone may read the stream, from any page.
            return http::respond(204, http::JSON, "", &crate::core::sse::PREFLIGHT)
                .map(Plan::Answer)
                .map_err(|_| Problem::Internal);
        }
        return preflight(facts.path, access).map(Plan::Answer);
    }
    if route.is_mutation() || route == Route::Socket {
        if let Access::Denied(o) = access {
            return Err(Problem::ForbiddenOrigin(o.clone()));
        }
    }
    let header = |name: &str| header(headers, name);
    match route {
        // A past state is the counter's to answer (`core::ledger::AsOfQuery`).
        Route::Value if crate::core::ledger::AsOfQuery::wanted(query) => Ok(Plan::Call(
            ObjectCall::ValueAsOf(crate::core::ledger::AsOfQuery::parse(query)?),
        )),
        Route::Value => match ValueRead::parse(query)? {
            ValueRead::Nearby { min_version } if relay_settings.per_relay > 0 => {
                facts.read_client(headers);
                Ok(Plan::Relay(relays::Call::Nearby {
                    region: relays::region_of(req),
                    client: facts.client.clone(),
                    min_version,
                }))
            }
            // Without relays, a nearby read is the counter's own (linearizable) answer.
            _ => Ok(Plan::Call(ObjectCall::Value)),
        },
        Route::AdminRelays => {
            no_query(query)?;
            config.authorize_admin(header("authorization")?.as_deref())?;
            Ok(Plan::Relay(relays::Call::List))
        }
        Route::AdminRelayReset
        | Route::AdminRelayWithhold
        | Route::AdminRelaySilence
        | Route::AdminRelaySever
        | Route::AdminRelayUnlink
        | Route::AdminCounterRestart
        | Route::AdminEdgePanic => {
            config.authorize_admin(header("authorization")?.as_deref())?;
            if !relay_settings.hooks {
                return Err(Problem::NotFound);
            }
            if route == Route::AdminEdgePanic {
                no_query(query)?;
                // A trap, as a bug would cause: this request fails, and the runtime's next
                // request finds a fresh instance (src/entry.js).
                panic!("the edge panics on purpose (test hook)");
            }
            let relay = if route == Route::AdminCounterRestart {
                no_query(query)?;
                None
            } else {
                Some(relay_param(query)?)
            };
            Ok(Plan::Relay(relays::Call::Hook { route, relay }))
        }
        Route::Health => no_query(query).map(|()| Plan::Call(ObjectCall::Health)),
        Route::Metrics => {
            no_query(query)?;
            config.authorize_admin(header("authorization")?.as_deref())?;
            Ok(Plan::Call(ObjectCall::Metrics))
        }
        Route::Checkpoint => no_query(query).map(|()| Plan::Checkpoint),
        Route::AuditKey => no_query(query).map(|()| Plan::CheckpointKey),
        Route::Export => Ok(Plan::Export(
            crate::core::ledger::ExportQuery::parse(query)?,
            facts.method == "HEAD",
        )),
        Route::Inclusion => Ok(Plan::Call(ObjectCall::Inclusion(
            crate::core::ledger::InclusionQuery::parse(query)?,
        ))),
        Route::Consistency => Ok(Plan::Call(ObjectCall::Consistency(
            crate::core::ledger::ConsistencyQuery::parse(query)?,
        ))),
        Route::Audit => Ok(Plan::Call(ObjectCall::Audit(
            crate::core::audit::AuditQuery::parse(query)?,
        ))),
        Route::OpenApi => {
            no_query(query)?;
            // The description is a static file of the app (web/openapi.json).
            Ok(Plan::Static(format!(
                "{}/openapi.json",
                cors::origin_of(url)
            )))
        }
        Route::Socket => {
            let pairs = crate::core::query::parse(query, &["since"])?;
            let since = crate::core::query::uint(
                &pairs,
                "since",
                0,
                crate::core::vocab::MAX_VALUE as u64,
                None,
            )?;
            // A complete WebSocket handshake (RFC 6455 §4.1), or nothing reaches the object.
            let upgrade = header("upgrade")?;
            let key = header("sec-websocket-key")?;
            let version = header("sec-websocket-version")?;
            if !upgrade.is_some_and(|u| u.eq_ignore_ascii_case("websocket"))
                || key.is_none_or(|k| k.trim().is_empty())
                || version.as_deref().map(str::trim) != Some("13")
            {
                return Err(Problem::UpgradeRequired);
            }
            facts.read_client(headers);
            if relay_settings.per_relay > 0 {
                return Ok(Plan::Relay(relays::Call::Connect {
                    region: relays::region_of(req),
                    client: facts.client.clone(),
                    since,
                    events: false,
                }));
            }
            Ok(Plan::Connect(ObjectCall::Connect {
                since,
                client: facts.client.clone(),
            }))
        }
        Route::Badge => {
            let badge = crate::core::badge::Badge::parse(query)?;
            let nearby = (relay_settings.per_relay > 0).then(|| {
                facts.read_client(headers);
                (relays::region_of(req), facts.client.clone())
            });
            Ok(Plan::Badge(badge::Ask {
                badge,
                if_none_match: header("if-none-match")?,
                head: facts.method == "HEAD",
                nearby,
            }))
        }
        // Server-Sent Events: read by anyone (no origin rule), counted like a socket.
        Route::Events => {
            let pairs = crate::core::query::parse(query, &["since"])?;
            let since = crate::core::query::uint(
                &pairs,
                "since",
                0,
                crate::core::vocab::MAX_VALUE as u64,
                None,
            )?;
            let since = crate::core::sse::resume(header("last-event-id")?.as_deref(), since)?;
            facts.read_client(headers);
            if relay_settings.per_relay > 0 {
                return Ok(Plan::Relay(relays::Call::Connect {
                    region: relays::region_of(req),
                    client: facts.client.clone(),
                    since,
                    events: true,
                }));
            }
            Ok(Plan::Events(ObjectCall::Connect {
                since,
                client: facts.client.clone(),
            }))
        }
        Route::Step(_) | Route::AdminSet | Route::AdminReset => {
            no_query(query)?;
            facts.read_client(headers);
            if matches!(route, Route::AdminSet | Route::AdminReset) {
                config.authorize_admin(header("authorization")?.as_deref())?;
            }
            let key = idempotency::client_key(
                header("idempotency-key")?.as_deref(),
                header("x-request-id")?.as_deref(),
            )?
            .unwrap_or_else(new_key);
            facts.request_id = key.as_str().to_owned();
            let if_match = match header("if-match")? {
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
                content_type: header("content-type")?,
            };
            // Most clicks carry no body at all; only a real body is worth waiting for.
            let length = header("content-length")?;
            if length.as_deref().map(str::trim) == Some("0") || req.body().is_none() {
                mutation(pending, &[], facts).map(Plan::Call)
            } else {
                body::check_length(length.as_deref(), MAX_BODY_BYTES)?;
                Ok(Plan::ReadBody(pending))
            }
        }
        Route::Preflight => Err(Problem::Internal),
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
        if let Some(config) = Config::loaded().filter(|c| c.changes_limited) {
            shield::check_change(&facts.client, p.key.as_str(), config.history_reads)?;
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

/// A CORS preflight: allowed origins get the methods and headers they may use; same-origin
/// and origin-less preflights get `Allow`; other origins get 403 without any CORS header.
fn preflight(path: &str, access: &Access) -> Result<Response, Problem> {
    let methods = routes::allowed(path).ok_or(Problem::NotFound)?;
    match access {
        Access::Allowed(origin) => {
            let h = cors::preflight_headers(origin, methods);
            let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
            http::respond(204, http::JSON, "", &h).map_err(|_| Problem::Internal)
        }
        Access::Denied(o) => Err(Problem::ForbiddenOrigin(o.clone())),
        Access::NoOrigin | Access::SameOrigin => {
            http::respond(204, http::JSON, "", &[("allow", methods)]).map_err(|_| Problem::Internal)
        }
    }
}

/// `relay=<region>-<shard>`, the one parameter of the relay test hooks.
fn relay_param(query: &str) -> Result<String, Problem> {
    let pairs = crate::core::query::parse(query, &["relay"])?;
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

fn no_query(query: &str) -> Result<(), Problem> {
    crate::core::query::parse(query, &[]).map(|_| ())
}

fn header(headers: &Headers, name: &str) -> Result<Option<String>, Problem> {
    headers.get(name).map_err(|_| Problem::InvalidHeader {
        name: "header",
        detail: "unreadable".into(),
    })
}

/// A fresh key for a mutation that came without one.
fn new_key() -> RequestKey {
    RequestKey::generated(uuid::Uuid::new_v4().to_string())
}
