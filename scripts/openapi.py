#!/usr/bin/env python3
"""Writes web/openapi.json, the OpenAPI 3.1 description of the HTTP API.

The description is generated so that the shared pieces (the problem responses, the key
headers) are written once. Run `python3 scripts/openapi.py` after changing the API; a test
checks (`--check`) that the file is current and that the service serves exactly this file.
"""
import json
import pathlib
import sys

MAX = 9007199254740991
KEY_PATTERN = "^[A-Za-z0-9._:-]{1,255}$"
# `*`, or entity tags (RFC 9110: optional W/, then a quoted run of visible ASCII except `"`).
# An empty value is allowed: the runtime drops an empty If-Match before the Worker sees it.
IF_MATCH_PATTERN = '^(|\\*|(W/)?"[!#-~]*"( ?, ?(W/)?"[!#-~]*")*)$'

def problem(description, headers=None):
    r = {
        "description": description,
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    if headers:
        r["headers"] = headers
    return r

RETRY = {"Retry-After": {"$ref": "#/components/headers/RetryAfter"}}
P = {
    "400": problem("Invalid input: malformed JSON, wrong types, unknown members, an amount out of range, a bad header or query parameter. Nothing was changed."),
    "401": problem("Missing or wrong admin token.", {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "`Bearer realm=\"number-acidizer admin\"`"}}),
    "403": problem("The request's Origin is not allowed to change the counter or to connect. Nothing was changed."),
    "404": problem("No such resource (also: the admin API when no admin token is configured)."),
    "409": problem("The result would leave ±(2^53 − 1). Nothing was changed."),
    "412": problem("If-Match did not name the current version. Nothing was changed.", {"ETag": {"$ref": "#/components/headers/ETag"}}),
    "413": problem("The body is larger than 1 KiB. Nothing was changed."),
    "414": problem("The URL is longer than 2 KiB."),
    "415": problem("A body whose media type is not JSON. Nothing was changed."),
    "422": problem("The idempotency key was already used for a different operation or amount. Nothing was changed."),
    "426": problem("WebSocket endpoint called without `Upgrade: websocket`."),
    "429": problem("Too many changes (or open sockets) from this client. Nothing was changed.", RETRY),
    "500": problem("A fault of ours; nothing was changed. Retry with the same idempotency key."),
    "503": problem("The counter is busy or restarting; nothing was changed. Retry with the same idempotency key after Retry-After.", RETRY),
}

def pick(*codes):
    return {c: {"$ref": f"#/components/responses/Problem{c}"} for c in codes}

def json_ok(description, schema_ref, headers=None):
    r = {"description": description, "content": {"application/json": {"schema": {"$ref": schema_ref}}}}
    if headers:
        r["headers"] = headers
    return r

preflight = {
    "summary": "CORS preflight",
    "description": "Allowed origins get `Access-Control-Allow-*`; requests without Origin or from the same origin get `Allow`; other origins get 403 without CORS headers.",
    "tags": ["cors"],
    "responses": {"204": {"description": "Preflight accepted.", "headers": {"Allow": {"schema": {"type": "string"}}}}, **pick("403", "414")},
}

mutation_params = [
    {"$ref": "#/components/parameters/IdempotencyKey"},
    {"$ref": "#/components/parameters/XRequestId"},
    {"$ref": "#/components/parameters/IfMatch"},
]

changed = json_ok(
    "Applied now, or (with `Idempotent-Replayed: true`) the stored response of the first request with this key, byte for byte.",
    "#/components/schemas/Change",
    {"ETag": {"$ref": "#/components/headers/ETag"}, "Idempotent-Replayed": {"$ref": "#/components/headers/Replayed"}},
)

def step(op):
    return {
        "post": {
            "operationId": op,
            "summary": f"{op.capitalize()} the counter",
            "description": f"{'Adds' if op == 'increment' else 'Subtracts'} `amount` (default 1) exactly once per idempotency key. Serialized with every other change, audited in the same transaction, broadcast to every socket after commit.",
            "tags": ["counter"],
            "parameters": mutation_params,
            "requestBody": {"required": False, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AmountBody"}}}},
            "responses": {"200": changed, **pick("400", "403", "409", "412", "413", "414", "415", "422", "429", "500", "503")},
        },
        "options": {**preflight, "operationId": f"{op}Preflight"},
    }

def admin(op, body):
    o = {
        "operationId": f"admin{op.capitalize()}",
        "summary": "Set the counter to a value (admin)" if op == "set" else "Reset the counter to 0 (admin)",
        "description": "Needs `Authorization: Bearer <ADMIN_TOKEN>`; without a configured token the admin API does not exist (404). A normal serialized, audited, idempotent, broadcast change; not rate limited.",
        "tags": ["admin"],
        "security": [{"admin": []}],
        "parameters": mutation_params,
        "responses": {"200": changed, **pick("400", "401", "403", "404", "409", "412", "413", "414", "415", "422", "500", "503")},
    }
    if body:
        o["requestBody"] = {"required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SetBody"}}}}
    return {"post": o, "options": {**preflight, "operationId": f"admin{op.capitalize()}Preflight"}}

def read(op_id, summary, description, ok, params=(), extra=("503",)):
    get = {
        "operationId": op_id,
        "summary": summary,
        "description": description,
        "tags": ["counter"],
        "responses": {"200": ok, **pick("400", "414", *extra)},
    }
    if params:
        get["parameters"] = list(params)
    head = {"operationId": f"{op_id}Head", "summary": f"{summary} (headers only)", "tags": ["counter"],
            "responses": {"200": {"description": "As GET, without a body."}, **pick("400", "414", *extra)}}
    if params:
        head["parameters"] = list(params)
    return {"get": get, "head": head, "options": {**preflight, "operationId": f"{op_id}Preflight"}}

def text_ok(description, headers=None):
    r = {"description": description, "content": {"text/plain; charset=utf-8": {"schema": {"type": "string"}}}}
    if headers:
        r["headers"] = headers
    return r

def ledger_read(op_id, summary, description, ok, params=(), extra=("503",)):
    r = read(op_id, summary, description, ok, params, extra)
    for method in ("get", "head"):
        r[method]["tags"] = ["ledger"]
    return r

HISTORY_LIMIT = " Reading history is limited per client (`HISTORY_READS_PER_10S`, refused by the Worker with 429 and `Retry-After`)."
CACHEABLE = " An answer that can never change (see the parameters) carries `Cache-Control: public, max-age=31536000, immutable` and an `ETag` of its SHA-256; `If-None-Match` with it answers 304, and the Worker serves repeats from the platform's cache."
NOT_MODIFIED = {"description": "Not modified: the `If-None-Match` entity tag is this answer's.", "headers": {"ETag": {"$ref": "#/components/headers/ETag"}}}

def history(r, cacheable):
    """A read of history: 429 past the per-client limit, and 304 where the answer never changes."""
    for method in ("get", "head"):
        r[method]["responses"]["429"] = {"$ref": "#/components/responses/Problem429"}
        if cacheable:
            r[method]["responses"]["304"] = NOT_MODIFIED
            r[method].setdefault("parameters", []).append({"$ref": "#/components/parameters/IfNoneMatch"})
    r["get"]["description"] += HISTORY_LIMIT + (CACHEABLE if cacheable else "")
    return r
def relay_list():
    get = {
        "operationId": "adminRelays",
        "summary": "Every connected relay (admin)",
        "description": "Needs `Authorization: Bearer <ADMIN_TOKEN>` (404 without a configured token). The relays connected to the counter now, each with its browser sockets, the last version it forwarded and its lag behind the counter.",
        "tags": ["admin"],
        "security": [{"admin": []}],
        "responses": {"200": json_ok("The relays.", "#/components/schemas/RelayList"), **pick("400", "401", "404", "414", "503")},
    }
    head = {"operationId": "adminRelaysHead", "summary": "Every connected relay (headers only)", "tags": ["admin"], "security": [{"admin": []}],
            "responses": {"200": {"description": "As GET, without a body."}, **pick("400", "401", "404", "414", "503")}}
    return {"get": get, "head": head, "options": {**preflight, "operationId": "adminRelaysPreflight"}}

def hook(op_id, summary, description, relay):
    o = {
        "operationId": op_id,
        "summary": summary,
        "description": description + " Needs `Authorization: Bearer <ADMIN_TOKEN>` and exists only when `ADMIN_TEST_HOOKS` is `1` (404 otherwise).",
        "tags": ["admin"],
        "security": [{"admin": []}],
        "responses": {"200": json_ok("Done.", "#/components/schemas/HookDone"), **pick("400", "401", "404", "414", "503")},
    }
    if relay:
        o["parameters"] = [{"$ref": "#/components/parameters/Relay"}]
    return {"post": o, "options": {**preflight, "operationId": f"{op_id}Preflight"}}

def edge_panic():
    o = hook("adminEdgePanic", "Make the edge panic (test hook)", "The edge panics (a Wasm trap, as a bug would cause) while planning this request, so it never answers 200: it gets a 500 problem, and the edge's next request finds a fresh instance. Nothing reaches the counter.", False)
    o["post"]["responses"] = {"500": {"$ref": "#/components/responses/Problem500"}, **pick("400", "401", "404", "414", "503")}
    return o

BADGE_HEADERS = {
    "ETag": {"description": "`\"<version>-<hash of label and color>\"`.", "schema": {"type": "string", "pattern": "^\"[0-9]+-[0-9a-f]{8}\"$"}},
    "Cache-Control": {"schema": {"const": "public, max-age=10"}},
    "Access-Control-Allow-Origin": {"schema": {"const": "*"}},
}

int53 = {"type": "integer", "minimum": -MAX, "maximum": MAX}
version = {"type": "integer", "minimum": 0, "maximum": MAX}
operation = {"type": "string", "enum": ["increment", "decrement", "set", "reset"]}
timestamp = {"type": "string", "format": "date-time"}
request_id = {"type": "string", "pattern": KEY_PATTERN}

doc = {
    "openapi": "3.1.0",
    "info": {
        "title": "Number Acidizer",
        "version": "1.0.0",
        "summary": "One global counter: exactly-once, audited, live.",
        "description": "Every change is applied exactly once per idempotency key, serialized with every other change, written with its audit entry in one transaction and broadcast to every WebSocket after it is durable. Every error is `application/problem+json` (RFC 9457).",
        "license": {"name": "MIT", "identifier": "MIT"},
    },
    "servers": [{"url": "/", "description": "This service"}],
    "tags": [
        {"name": "counter", "description": "Read and change the counter."},
        {"name": "realtime", "description": "The live stream of changes."},
        {"name": "admin", "description": "Operator changes behind a bearer token."},
        {"name": "cors", "description": "Cross-origin preflights."},
        {"name": "ledger", "description": "The audit trail as a verifiable log: signed checkpoints and Merkle proofs (RFC 6962 / RFC 9162, C2SP tlog-checkpoint)."},
        {"name": "meta", "description": "Service description."},
    ],
    "paths": {
        "/api/value": read(
            "getValue", "Read the counter",
            "By default (`consistency=linearizable`) the counter's own answer: it reflects every acknowledged change. `consistency=nearby` answers from the caller's regional relay's memory with the `version` it holds (`source: relay`), so staleness is visible; with `min_version`, the relay waits briefly for that version and otherwise asks the counter (`source: counter`): read-your-writes. A nearby read never shows a change that is not committed. Without relays, a nearby read is the counter's answer. `ETag` is the version. With `as_of_version` (or `as_of`, an RFC 3339 instant: the last change at or before it) the counter answers the value after that past version from its audit entry, with its inclusion proof in the current tree when `proof=true`; these do not combine with `consistency`. Past values span the R2 archive and the counter's hot entries alike (an archived entry is read from R2 by the Worker and checked against the counter's record and Merkle tree); 503 with `Retry-After` when the archive cannot be read. A past value is reading history: limited per client (`HISTORY_READS_PER_10S`, 429). A past value by version without a proof never changes: it carries `Cache-Control: public, max-age=31536000, immutable` and an `ETag` of its SHA-256, `If-None-Match` with it answers 304, and the Worker serves repeats from the platform's cache.",
            {"description": "The value.", "headers": {"ETag": {"$ref": "#/components/headers/ETag"}, "Cache-Control": {"schema": {"type": "string"}}},
             "content": {"application/json": {"schema": {"anyOf": [{"$ref": "#/components/schemas/Value"}, {"$ref": "#/components/schemas/NearbyValue"}, {"$ref": "#/components/schemas/PastValue"}]}}}},
            params=({"$ref": "#/components/parameters/Consistency"}, {"$ref": "#/components/parameters/MinVersion"},
                    {"name": "as_of_version", "in": "query", "required": False, "schema": version},
                    {"name": "as_of", "in": "query", "required": False, "schema": {"type": "string", "format": "date-time"}},
                    {"name": "proof", "in": "query", "required": False, "schema": {"type": "boolean", "default": False}},
                    {"$ref": "#/components/parameters/IfNoneMatch"}),
            extra=("429", "503"),
        ),
        "/api/increment": step("increment"),
        "/api/decrement": step("decrement"),
        "/api/audit": history(read(
            "getAudit", "Read the audit trail",
            "Entries after `after`, ascending by version, contiguous, at most `limit`. `next_after` is set when another page follows. Pages span the R2 archive and the counter's hot entries; a page that starts in the archive ends at the end of its 1,024-entry segment at the latest. 503 with `Retry-After` when the archive cannot be read.",
            json_ok("A page of the audit trail.", "#/components/schemas/AuditPage"),
            params=({"$ref": "#/components/parameters/After"}, {"$ref": "#/components/parameters/Limit"}),
        ), True),
        "/api/audit/checkpoint": ledger_read(
            "getCheckpoint", "The current checkpoint",
            "The C2SP tlog-checkpoint of the audit log (origin, tree size = version, base64 root hash), as a signed note with an Ed25519 signature line when `AUDIT_SIGNING_KEY` is set (`Audit-Checkpoint-Signed: true`); otherwise the bare checkpoint with origin `number-acidizer/unsigned` and `Audit-Checkpoint-Signed: false`. 503 while existing entries are still being hashed after an upgrade.",
            text_ok("The checkpoint.", {"Audit-Checkpoint-Signed": {"schema": {"type": "string", "enum": ["true", "false"]}}}),
            extra=("500", "503"),
        ),
        "/api/audit/key": ledger_read(
            "getCheckpointKey", "The checkpoint verifier key",
            "The note verifier key `<name>+<key ID>+<base64>` (golang.org/x/mod/sumdb/note) that checks checkpoint signatures. 404 when no signing key is set.",
            text_ok("The verifier key, one line."),
            extra=("404", "500"),
        ),
        "/api/audit/export": history(ledger_read(
            "exportAudit", "Export the audit trail",
            "The entries `after+1..=until` (`until` defaults to the tree size when the export starts), streamed page by page with flat memory. NDJSON (default): one line per entry, exactly its Merkle leaf bytes (canonical JSON). CSV: RFC 4180 with a header row and CRLF; text cells that a spreadsheet could read as a formula get a leading `'`. `Audit-Tree-Size` is the tree the export is pinned to and `Audit-Checkpoint` its checkpoint (base64 of the note). 400 when `until` is beyond the log.",
            {"description": "The export.", "content": {"application/x-ndjson": {"schema": {"type": "string"}}, "text/csv; charset=utf-8; header=present": {"schema": {"type": "string"}}},
             "headers": {"Audit-Tree-Size": {"schema": {"type": "string", "pattern": "^[0-9]+$"}},
                         "Audit-Checkpoint": {"schema": {"type": "string"}, "description": "Base64 of the checkpoint note."},
                         "Content-Disposition": {"schema": {"type": "string"}}}},
            params=({"name": "format", "in": "query", "required": False, "schema": {"type": "string", "enum": ["ndjson", "csv"], "default": "ndjson"}},
                    {"name": "after", "in": "query", "required": False, "schema": {**version, "default": 0}},
                    {"name": "until", "in": "query", "required": False, "schema": version}),
            extra=("500", "503"),
        ), False),
        "/api/audit/proof/inclusion": history(ledger_read(
            "getInclusionProof", "Inclusion proof of an entry",
            "Proves that the entry of `version` is leaf `version - 1` of the tree of `tree_size` leaves (default: the current size). `hashes` in RFC 9162 order. 400 when a size is beyond the log.",
            json_ok("The proof.", "#/components/schemas/InclusionProof"),
            params=({"name": "version", "in": "query", "required": True, "schema": {**version, "minimum": 1}},
                    {"name": "tree_size", "in": "query", "required": False, "schema": {**version, "minimum": 1}}),
            extra=("500", "503"),
        ), True),
        "/api/audit/proof/consistency": history(ledger_read(
            "getConsistencyProof", "Consistency proof between two tree sizes",
            "Proves that the tree of `from` leaves is a prefix of the tree of `to` leaves (default: the current size): history up to `from` was only appended to. `hashes` in RFC 9162 order. 400 when a size is beyond the log.",
            json_ok("The proof.", "#/components/schemas/ConsistencyProof"),
            params=({"name": "from", "in": "query", "required": True, "schema": {**version, "minimum": 1}},
                    {"name": "to", "in": "query", "required": False, "schema": {**version, "minimum": 1}}),
            extra=("500", "503"),
        ), True),
        "/api/health": read(
            "getHealth", "Health and storage facts", "200 when the counter can serve; 503 otherwise.",
            json_ok("Healthy.", "#/components/schemas/Health"),
        ),
        "/api/ws": {
            "get": {
                "operationId": "connect",
                "summary": "Live stream (WebSocket)",
                "description": "Upgrade to a WebSocket. First message `{\"type\":\"snapshot\",\"value\",\"version\"}`; then `{\"type\":\"update\",\"value\",\"version\",\"previous_value\",\"operation\",\"amount\",\"at\"}` per applied change, in version order, after commit. With `since`, first every change after that version from the audit trail (a snapshot instead when more than 1,000 were missed or `since` is ahead), then live: no gap, no duplicate. Send `ping` for `pong`. Other client messages get `{\"type\":\"error\",\"problem\":{...}}`; a frame over 1 KiB closes the socket with 1009, more than 20 messages in 10 s with 1008.",
                "tags": ["realtime"],
                "parameters": [
                    {"$ref": "#/components/parameters/Since"},
                    {"name": "Upgrade", "in": "header", "required": False, "schema": {"type": "string"}, "description": "`websocket`"},
                ],
                "responses": {"101": {"description": "Switching to the WebSocket protocol."}, **pick("400", "403", "414", "426", "429", "503")},
            },
            "options": {**preflight, "operationId": "connectPreflight"},
        },
        "/api/events": {
            "get": {
                "operationId": "streamEvents",
                "summary": "Live stream (Server-Sent Events)",
                "description": "The WebSocket's stream as `text/event-stream`, for `EventSource` and `curl -N`. First `retry: 2000`, then an event `snapshot` (or, resuming, the missed `update` events), then one event `update` per committed change in version order; each event has `id: <version>` and as `data` the socket's message, byte for byte. Resume with `Last-Event-ID` (what `EventSource` sends by itself when it reconnects; it wins over `since`) or `since`: the missed changes with no gap and no duplicate, or a snapshot when more than 1,000 were missed or the version is ahead. A comment line (`: heartbeat`) every 15 s. The stream counts against `WS_CONNECTIONS_PER_CLIENT` like a socket (429 with `Retry-After`). Anyone may read it from any origin: `Access-Control-Allow-Origin: *`, no credentials. With relays the caller's regional relay serves it; without relays the edge follows the counter for it.",
                "tags": ["realtime"],
                "parameters": [
                    {"$ref": "#/components/parameters/Since"},
                    {"name": "Last-Event-ID", "in": "header", "required": False, "description": "The last event id (version) this client saw; wins over `since`. Empty counts as absent.", "schema": {"type": "string", "pattern": "^ *(0|[1-9][0-9]{0,15})? *$"}},
                ],
                "responses": {
                    "200": {"description": "The stream; it does not end by itself.",
                            "headers": {"Access-Control-Allow-Origin": {"schema": {"const": "*"}}, "Cache-Control": {"schema": {"const": "no-store"}}},
                            "content": {"text/event-stream": {"schema": {"type": "string"}, "example": "retry: 2000\n: live\n\nevent: snapshot\nid: 41\ndata: {\"type\":\"snapshot\",\"value\":7,\"version\":41}\n\nevent: update\nid: 42\ndata: {\"type\":\"update\",\"value\":8,\"version\":42,\"previous_value\":7,\"operation\":\"increment\",\"amount\":1,\"at\":\"2025-01-01T00:00:00.000Z\"}\n\n: heartbeat\n\n"}}},
                    **pick("400", "414", "429", "503"),
                },
            },
            "options": {**preflight, "operationId": "eventsPreflight", "description": "Any origin gets `Access-Control-Allow-Origin: *` with `Last-Event-ID` allowed: anyone may read the stream."},
        },
        "/api/badge.svg": {
            "get": {
                "operationId": "getBadge",
                "summary": "The value as an SVG badge",
                "description": "A small SVG image of the current value, for READMEs and pages: `<img src=\"https://…/api/badge.svg?label=visitors&color=green\">`. `label` (default `acidizer`) is any text: characters XML cannot carry are dropped, it is cut to 40 characters with `…`, and escaped. `color` is one of `brightgreen`, `green`, `yellowgreen`, `yellow`, `orange`, `red`, `blue` (default), `lightgrey`, `grey`, `purple`, `pink`, `black`, or a hex color (`4c1`, `%2344cc11`); anything else is a 400 problem. `ETag` changes with the version (and the label and color): `If-None-Match` with it answers 304. With relays the value is the caller's regional relay's (as a nearby read), otherwise the counter's. Anyone may load it (`Access-Control-Allow-Origin: *`).",
                "tags": ["counter"],
                "parameters": [
                    {"name": "label", "in": "query", "required": False, "schema": {"type": "string"}},
                    {"name": "color", "in": "query", "required": False, "schema": {"type": "string", "pattern": "^(brightgreen|green|yellowgreen|yellow|orange|red|blue|lightgrey|grey|purple|pink|black|#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6}))$"}},
                    {"name": "If-None-Match", "in": "header", "required": False, "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": {"description": "The badge.", "headers": BADGE_HEADERS,
                            "content": {"image/svg+xml": {"schema": {"type": "string"}}}},
                    "304": {"description": "Not modified: `If-None-Match` names the current badge.", "headers": BADGE_HEADERS},
                    **pick("400", "414", "503"),
                },
            },
            "head": {"operationId": "getBadgeHead", "summary": "The value as an SVG badge (headers only)", "tags": ["counter"],
                     "parameters": [{"name": "label", "in": "query", "required": False, "schema": {"type": "string"}},
                                    {"name": "color", "in": "query", "required": False, "schema": {"type": "string", "pattern": "^(brightgreen|green|yellowgreen|yellow|orange|red|blue|lightgrey|grey|purple|pink|black|#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6}))$"}}],
                     "responses": {"200": {"description": "As GET, without a body.", "headers": BADGE_HEADERS}, **pick("400", "414", "503")}},
            "options": {**preflight, "operationId": "badgePreflight"},
        },
        "/api/admin/set": admin("set", True),
        "/api/admin/reset": admin("reset", False),
        "/api/metrics": {
            "get": {
                "operationId": "getMetrics",
                "summary": "The counter object's metrics (admin)",
                "description": "Prometheus text exposition (version 0.0.4). Gauges: `acidizer_value`, `acidizer_version`, `acidizer_sockets`, `acidizer_relays`, `acidizer_database_bytes`, `acidizer_audit_entries`, `acidizer_hot_entries`, `acidizer_archived_entries`, `acidizer_archive_segments`, `acidizer_schema_version`, `acidizer_start_time_seconds`. Counters since the object started: `acidizer_commits_total`, `acidizer_replays_total`, `acidizer_rate_limited_total{limit=\"changes\"|\"sockets\"}`. Needs `Authorization: Bearer <ADMIN_TOKEN>`; without a configured token it does not exist (404).",
                "tags": ["admin"],
                "security": [{"admin": []}],
                "responses": {
                    "200": {"description": "The metrics.", "content": {"text/plain": {"schema": {"type": "string"}}}},
                    **pick("400", "401", "404", "414", "500", "503"),
                },
            },
            "head": {
                "operationId": "getMetricsHead",
                "summary": "The counter object's metrics (admin, headers only)",
                "tags": ["admin"],
                "security": [{"admin": []}],
                "responses": {"200": {"description": "As GET, without a body."}, **pick("400", "401", "404", "414", "500", "503")},
            },
            "options": {**preflight, "operationId": "metricsPreflight"},
        },
        "/api/admin/relays": relay_list(),
        "/api/admin/relays/reset": hook("adminRelayReset", "Reset one relay (test hook)", "Resets the relay like a deploy does (`ctx.abort`): its browsers are dropped and resume with `since`.", True),
        "/api/admin/relays/withhold": hook("adminRelayWithhold", "Withhold the next update from one relay (test hook)", "The relay drops the next update it receives from the counter, as if it were lost; it must fetch it before forwarding anything later.", True),
        "/api/admin/relays/silence": hook("adminRelaySilence", "Silence one relay's upstream (test hook)", "The relay hears nothing more on its upstream socket, which stays open (a half-open connection): its watchdog must notice and resume with `since`.", True),
        "/api/admin/relays/sever": hook("adminRelaySever", "Sever one relay (test hook)", "As if the relay's isolate were lost while the runtime kept its browsers' sockets: its upstream closes, nothing reconnects, and its watchdog alarm moves 20 s ahead; the runtime evicts the idle relay, the alarm rebuilds it, and it closes its browsers with 1012.", True),
        "/api/admin/relays/unlink": hook("adminRelayUnlink", "Unlink one relay from the counter (test hook)", "The relay's upstream socket closes and nothing schedules a reconnect, while its browsers keep their sockets: only the relay's watchdog notices (at its next check) and resumes the upstream with `since`.", True),
        "/api/admin/counter/restart": hook("adminCounterRestart", "Restart the counter object (test hook)", "Resets the counter object (`ctx.abort`); relays resume from their last version.", False),
        "/api/admin/edge/panic": edge_panic(),
        "/api/openapi.json": {
            "get": {
                "operationId": "getOpenApi",
                "summary": "This description",
                "tags": ["meta"],
                "responses": {"200": {"description": "The OpenAPI document.", "content": {"application/json": {"schema": {"type": "object"}}}}, **pick("400", "414")},
            },
            "head": {"operationId": "getOpenApiHead", "summary": "This description (headers only)", "tags": ["meta"], "responses": {"200": {"description": "As GET, without a body."}, **pick("400", "414")}},
            "options": {**preflight, "operationId": "openApiPreflight"},
        },
    },
    "components": {
        "responses": {f"Problem{c}": r for c, r in P.items()},
        "securitySchemes": {"admin": {"type": "http", "scheme": "bearer", "description": "The `ADMIN_TOKEN` secret."}},
        "headers": {
            "ETag": {"description": "The counter's version as a strong entity tag: `\"<version>\"`; for an answer that never changes, the SHA-256 of its body: `\"<64 hex digits>\"`.", "schema": {"type": "string", "pattern": "^\"([0-9]+|[0-9a-f]{64})\"$"}},
            "Replayed": {"description": "`true` when this is the stored response of an earlier request with the same key.", "schema": {"type": "string", "enum": ["true"]}},
            "RetryAfter": {"description": "Seconds to wait before retrying.", "schema": {"type": "string", "pattern": "^[0-9]+$"}},
        },
        "parameters": {
            "IdempotencyKey": {"name": "Idempotency-Key", "in": "header", "required": False, "description": "Makes the change exactly-once: a retry with the same key and the same operation and amount gets the stored response; the key is kept at least 24 hours. Without a key (and without X-Request-ID) the server makes one (a UUID).", "schema": {"type": "string", "pattern": KEY_PATTERN}},
            "XRequestId": {"name": "X-Request-ID", "in": "header", "required": False, "description": "Used as the idempotency key when Idempotency-Key is absent.", "schema": {"type": "string", "pattern": KEY_PATTERN}},
            "IfNoneMatch": {"name": "If-None-Match", "in": "header", "required": False, "description": "The entity tag of an answer that never changes, to get 304 instead of the answer again; anything else is ignored.", "schema": {"type": "string"}},
            "IfMatch": {"name": "If-Match", "in": "header", "required": False, "description": "Apply only if the current version is one of these strong entity tags (`\"12\"`) or `*`. Weak or non-numeric tags never match (412). An empty value counts as absent.", "schema": {"type": "string", "maxLength": 512, "pattern": IF_MATCH_PATTERN}, "examples": {"version": {"value": "\"1\""}, "any": {"value": "*"}}},
            "After": {"name": "after", "in": "query", "required": False, "description": "Entries with a version greater than this.", "schema": {**version, "default": 0}},
            "Limit": {"name": "limit", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}},
            "Consistency": {"name": "consistency", "in": "query", "required": False, "description": "`linearizable` (the counter) or `nearby` (the caller's regional relay).", "schema": {"type": "string", "enum": ["linearizable", "nearby"], "default": "linearizable"}},
            "MinVersion": {"name": "min_version", "in": "query", "required": False, "description": "With `consistency=nearby`: at least this version (read-your-writes). A linearizable read always includes every acknowledged change, so there it asks nothing more.", "schema": version},
            "Relay": {"name": "relay", "in": "query", "required": True, "description": "A relay's name, `<region>-<shard>` (see `GET /api/admin/relays`).", "schema": {"type": "string", "pattern": "^(wnam|enam|sam|weur|eeur|apac|oc|afr|me)-(0|[1-9][0-9]{0,2})$"}},
            "Since": {"name": "since", "in": "query", "required": False, "description": "The last version this client saw.", "schema": version},
        },
        "schemas": {
            "Value": {"type": "object", "additionalProperties": False, "required": ["value", "version", "updated_at"],
                      "properties": {"value": int53, "version": version, "updated_at": {"oneOf": [timestamp, {"type": "null"}]}}},
            "PastValue": {"type": "object", "additionalProperties": False, "required": ["value", "version", "updated_at"],
                          "properties": {"value": int53, "version": version, "updated_at": {"oneOf": [timestamp, {"type": "null"}]},
                                         "inclusion": {"$ref": "#/components/schemas/InclusionProof"}}},
            "NearbyValue": {"type": "object", "additionalProperties": False, "required": ["value", "version", "source"],
                            "properties": {"value": int53, "version": version, "source": {"type": "string", "enum": ["relay", "counter"]}}},
            "RelayList": {"type": "object", "additionalProperties": False, "required": ["version", "count", "relays"],
                          "properties": {"version": version, "count": {"type": "integer", "minimum": 0},
                                         "relays": {"type": "array", "items": {"type": "object", "required": ["relay", "sockets", "version", "upstream", "lag"],
                                                    "properties": {"relay": {"type": "string"}, "sockets": {"type": "integer", "minimum": 0},
                                                                   "version": {"oneOf": [version, {"type": "null"}]}, "upstream": {"type": "boolean"},
                                                                   "memory": {"type": "integer"}, "pending": {"type": "integer"},
                                                                   "lag": {"oneOf": [version, {"type": "null"}]}}}}}},
            "HookDone": {"type": "object", "minProperties": 1, "additionalProperties": {"type": "string"}},
            "AmountBody": {"type": "object", "additionalProperties": False,
                           "properties": {"amount": {"type": "integer", "minimum": 1, "maximum": 1000000, "default": 1}}},
            "SetBody": {"type": "object", "additionalProperties": False, "required": ["value"], "properties": {"value": int53}},
            "Change": {"type": "object", "additionalProperties": False,
                       "required": ["value", "version", "previous_value", "operation", "amount", "request_id", "applied_at"],
                       "properties": {"value": int53, "version": {**version, "minimum": 1}, "previous_value": int53, "operation": operation,
                                      "amount": int53, "request_id": request_id, "applied_at": timestamp}},
            "AuditEntry": {"type": "object", "additionalProperties": False,
                           "required": ["version", "operation", "amount", "previous_value", "value", "request_id", "at"],
                           "properties": {"version": {**version, "minimum": 1}, "operation": operation, "amount": int53,
                                          "previous_value": int53, "value": int53, "request_id": request_id, "at": timestamp}},
            "AuditPage": {"type": "object", "additionalProperties": False, "required": ["entries", "next_after"],
                          "properties": {"entries": {"type": "array", "maxItems": 1000, "items": {"$ref": "#/components/schemas/AuditEntry"}},
                                         "next_after": {"oneOf": [version, {"type": "null"}]}}},
            "InclusionProof": {"type": "object", "additionalProperties": False, "required": ["version", "leaf_index", "tree_size", "leaf_hash", "hashes"],
                               "properties": {"version": {**version, "minimum": 1}, "leaf_index": version, "tree_size": {**version, "minimum": 1},
                                              "leaf_hash": {"type": "string", "contentEncoding": "base64"},
                                              "hashes": {"type": "array", "maxItems": 106, "items": {"type": "string", "contentEncoding": "base64"}}}},
            "ConsistencyProof": {"type": "object", "additionalProperties": False, "required": ["from", "to", "hashes"],
                                 "properties": {"from": {**version, "minimum": 1}, "to": {**version, "minimum": 1},
                                                "hashes": {"type": "array", "maxItems": 106, "items": {"type": "string", "contentEncoding": "base64"}}}},
            "Health": {"type": "object", "required": ["status", "schema_version", "version"],
                       "properties": {"status": {"const": "ok"}, "schema_version": {"type": "integer"}, "latest_schema_version": {"type": "integer"},
                                      "value": int53, "version": version, "audit_entries": {"type": "integer"},
                                      "sockets": {"type": "integer", "description": "Sockets the counter holds itself (with relays on: the relays' upstream sockets)."},
                                      "relays": {"type": "integer", "description": "Relays connected upstream now."}, "database_bytes": {"type": "integer"},
                                      "calls_by_size": {"type": "object", "description": "Read and change calls the counter object received since it started, by how many requests each carried (batching, `BATCH_MAX_IN_FLIGHT`): buckets `1`, `2-3`, `4-7`, `8-15`, `16-31`, `32-63`, `64`.",
                                                        "additionalProperties": {"type": "integer", "minimum": 0}},
                                      "hot_entries": {"type": "integer", "description": "Audit entries in the counter's database."},
                                      "oldest_key_at": {"type": ["string", "null"], "description": "When the oldest idempotency key still remembered was used."},
                                      "archived_entries": {"type": "integer", "description": "Audit entries in the R2 archive."},
                                      "archive_segments": {"type": "integer"},
                                      "oldest_hot_version": {"type": ["integer", "null"]},
                                      "last_archival": {"oneOf": [{"type": "null"}, {"type": "object", "required": ["at", "outcome", "consecutive_failures"],
                                                        "properties": {"at": {"type": "string", "format": "date-time"}, "outcome": {"enum": ["ok", "failed", "idle"]},
                                                                       "error": {"type": ["string", "null"]}, "consecutive_failures": {"type": "integer"}}}]}}},
            "Problem": {"type": "object", "required": ["type", "title", "status", "detail"],
                        "description": "RFC 9457 problem details. `status` equals the HTTP status.",
                        "properties": {"type": {"type": "string", "format": "uri-reference"}, "title": {"type": "string"},
                                       "status": {"type": "integer", "minimum": 400, "maximum": 599}, "detail": {"type": "string"},
                                       "current_version": version, "retry_after": {"type": "integer", "minimum": 0},
                                       "header": {"type": "string"}}},
        },
    },
}

out = pathlib.Path(__file__).resolve().parent.parent / "web" / "openapi.json"
text = json.dumps(doc, indent=1, ensure_ascii=False) + "\n"
if "--check" in sys.argv:
    if out.read_text() != text:
        sys.exit(f"{out} is not current: run python3 scripts/openapi.py")
    print(f"{out} is current")
else:
    out.write_text(text)
    print(f"wrote {out}")
