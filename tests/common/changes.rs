//! Keyed changes from many clients at once, and what the sockets and streams must then carry.

use std::collections::BTreeMap;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{key, try_request, Server};

/// Starts `threads` clients that each apply `each` keyed increments, retrying every change
/// with its key until it is applied (30 s at most: then the thread panics). `who(t, i)` is the
/// client address (`CF-Connecting-IP`) of thread `t`'s change `i`, if any.
pub fn keyed_increments(
    base: &str,
    threads: usize,
    each: usize,
    tag: &str,
    who: fn(usize, usize) -> Option<String>,
) -> Vec<JoinHandle<()>> {
    (0..threads)
        .map(|t| {
            let base = base.to_string();
            let tag = format!("{tag}-{t}");
            std::thread::spawn(move || {
                for i in 0..each {
                    let k = key(&format!("{tag}-{i}"));
                    let ip = who(t, i);
                    let mut headers = vec![("idempotency-key", k.as_str())];
                    if let Some(ip) = &ip {
                        headers.push(("cf-connecting-ip", ip));
                    }
                    let deadline = Instant::now() + Duration::from_secs(30);
                    loop {
                        let r = try_request(&base, "POST", "/api/increment", &headers, None);
                        if matches!(&r, Ok(r) if r.status == 200) {
                            break;
                        }
                        assert!(Instant::now() < deadline, "change never applied: {r:?}");
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
            })
        })
        .collect()
}

/// Waits for every thread of [`keyed_increments`]; a failed one fails the test.
pub fn join_all(handles: Vec<JoinHandle<()>>) {
    for h in handles {
        h.join().expect("a change thread failed");
    }
}

/// The update message of every committed change, by version, from the audit trail: what every
/// socket and event stream must have carried.
pub fn expected_updates(s: &Server) -> BTreeMap<u64, Value> {
    s.audit_all()
        .into_iter()
        .map(|e| {
            let v = e["version"].as_u64().expect("an audit entry's version");
            let u = serde_json::json!({
                "type": "update", "value": e["value"], "version": v,
                "previous_value": e["previous_value"], "operation": e["operation"],
                "amount": e["amount"], "at": e["at"],
            });
            (v, u)
        })
        .collect()
}
