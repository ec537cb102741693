//! Human text for the API's JSON bodies. Whatever the server sends, these never fail: a
//! missing or odd field prints as `?`.

use serde_json::Value;

/// A field as plain text (`?` when absent).
fn f(v: &Value, k: &str) -> String {
    match v.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "?".into(),
        Some(other) => other.to_string(),
    }
}

/// What a change did: `+5`, `-5`, `set to 7`, `reset`.
fn what(v: &Value) -> String {
    match v.get("operation").and_then(Value::as_str) {
        Some("increment") => format!("+{}", f(v, "amount")),
        Some("decrement") => format!("-{}", f(v, "amount")),
        Some("set") => format!("set to {}", f(v, "value")),
        Some("reset") => "reset".into(),
        _ => format!("{} {}", f(v, "operation"), f(v, "amount")),
    }
}

/// `GET /api/value`.
pub fn value(v: &Value) -> String {
    let updated = match v.get("updated_at") {
        Some(Value::String(at)) => format!(", updated {at}"),
        _ => String::new(),
    };
    format!("{} (version {}{updated})", f(v, "value"), f(v, "version"))
}

/// A change's answer; `replayed` when it is the stored answer of an earlier request.
pub fn change(v: &Value, key: &str, replayed: bool) -> String {
    let mut line = format!(
        "{} (version {}): {} from {}, key {key}",
        f(v, "value"),
        f(v, "version"),
        what(v),
        f(v, "previous_value"),
    );
    if replayed {
        line.push_str(
            " (replayed: a request with this key was already applied; nothing changed now)",
        );
    }
    line
}

/// One audit entry.
pub fn entry(v: &Value) -> String {
    format!(
        "{:>8}  {:<10} {:>9}  {} -> {}  {}  {}",
        f(v, "version"),
        f(v, "operation"),
        f(v, "amount"),
        f(v, "previous_value"),
        f(v, "value"),
        f(v, "at"),
        f(v, "request_id"),
    )
}

/// A WebSocket message: a snapshot or an update.
pub fn live(v: &Value) -> String {
    match v.get("type").and_then(Value::as_str) {
        Some("update") => format!(
            "{} (version {}): {} from {} at {}",
            f(v, "value"),
            f(v, "version"),
            what(v),
            f(v, "previous_value"),
            f(v, "at")
        ),
        _ => format!("{} (version {})", f(v, "value"), f(v, "version")),
    }
}
