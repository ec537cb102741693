//! A region's relays follow the crowd, against the real runtime. With 20 sockets per relay and
//! the local 4 starting relays (80 sockets), a crowd of 300 gets every socket: the region grows
//! into more relays, level by level, where its relays are full; every socket gets every update
//! exactly once, in order. Once the crowd has gone the grown relays go idle and close, and the
//! same clients come back to their starting relays. The per-client socket cap holds exactly
//! across a client's relays on three levels, and its next socket goes to the earliest relay of
//! its walk with room.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::changes::{join_all, keyed_increments};
use common::{key, shared, Options, Server, Socket};
use number_acidizer::core::relay::shard_order;
use serde_json::Value;

const ADMIN: &str = "growth-admin-token-0123456789abcdef";
const PER_RELAY: usize = 20;
/// wrangler.toml's local `RELAY_SHARDS`, which this server keeps.
const START: u32 = 4;
const MAX: u32 = number_acidizer::core::relay::MAX_RELAYS;
const PER_CLIENT: usize = 6;
/// Locally `request.cf` has no continent: every caller's region is `enam`.
const REGION: &str = "enam";

fn server() -> std::sync::MutexGuard<'static, Server> {
    shared(|| Options {
        vars: vec![
            ("RELAY_SOCKETS_PER_RELAY".into(), PER_RELAY.to_string()),
            ("ADMIN_TOKEN".into(), ADMIN.into()),
            ("WS_CONNECTIONS_PER_CLIENT".into(), PER_CLIENT.to_string()),
            ("RELAY_WATCHDOG_SECONDS".into(), "1".into()),
            ("RELAY_IDLE_SECONDS".into(), "3".into()),
        ],
        ..Options::default()
    })
}

/// A client address of its own per index.
fn ip(i: usize) -> String {
    format!("10.{}.{}.{}", 20 + i / 65536, (i / 256) % 256, i % 256)
}

fn walk(who: &str) -> Vec<u32> {
    shard_order(who, START, MAX).collect()
}

fn relay(shard: u32) -> String {
    format!("{REGION}-{shard}")
}

fn shard_of(name: &str) -> u32 {
    name.rsplit_once('-').unwrap().1.parse().unwrap()
}

/// `GET /api/admin/relays`: the relays connected to the counter.
fn relays(s: &Server) -> Vec<Value> {
    let a = format!("Bearer {ADMIN}");
    let r = s.request("GET", "/api/admin/relays", &[("authorization", &a)], None);
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["relays"].as_array().unwrap().clone()
}

/// Sockets on each relay connected to the counter.
fn sockets_by_relay(s: &Server) -> BTreeMap<String, u64> {
    relays(s)
        .iter()
        .map(|r| {
            (
                r["relay"].as_str().unwrap().to_string(),
                r["sockets"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Waits up to 30 s for `pred` over the sockets by relay.
fn wait(s: &Server, what: &str, pred: impl Fn(&BTreeMap<String, u64>) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = sockets_by_relay(s);
        if pred(&now) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: {now:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn connect(s: &Server, who: &str) -> Result<Socket, String> {
    let url = format!("ws://127.0.0.1:{}/api/ws", s.port);
    let mut sock = Socket::try_connect(&url, &[("cf-connecting-ip", who)])?;
    sock.set_timeout(Duration::from_secs(30));
    let snap = sock.next_json();
    assert_eq!(snap["type"], "snapshot", "{snap}");
    Ok(sock)
}

/// Applies `n` increments from `threads` clients at once.
fn changes(s: &Server, threads: usize, n: usize, tag: &str) {
    join_all(keyed_increments(&s.base, threads, n, tag, |t, i| {
        Some(format!("10.250.{t}.{}", i % 250))
    }));
}

#[test]
fn a_crowd_gets_sockets_on_grown_relays_and_the_region_shrinks_back_when_it_leaves() {
    let s = server();
    const CROWD: usize = 300;
    // 300 clients at once, from 6 threads: none is refused.
    let port = s.port;
    let opened: Vec<(String, Result<Socket, String>)> = (0..6)
        .map(|t| {
            std::thread::spawn(move || {
                (t * CROWD / 6..(t + 1) * CROWD / 6)
                    .map(|i| {
                        let who = ip(i);
                        let url = format!("ws://127.0.0.1:{port}/api/ws");
                        let sock = Socket::try_connect(&url, &[("cf-connecting-ip", &who)]);
                        (who, sock)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .flat_map(|h| h.join().unwrap())
        .collect();
    let refused: Vec<&String> = opened
        .iter()
        .filter_map(|(who, r)| r.as_ref().err().map(|_| who))
        .collect();
    assert!(refused.is_empty(), "refused: {refused:?}");
    let mut socks: Vec<(String, Socket, u64)> = opened
        .into_iter()
        .map(|(who, r)| {
            let mut sock = r.unwrap();
            sock.set_timeout(Duration::from_secs(30));
            let snap = sock.next_json();
            assert_eq!(snap["type"], "snapshot", "{snap}");
            (who, sock, snap["version"].as_u64().unwrap())
        })
        .collect();
    // Over at least 15 relays, none over its cap, and past the starting ones.
    let by_relay = sockets_by_relay(&s);
    let holding: Vec<(&String, &u64)> = by_relay.iter().filter(|(_, n)| **n > 0).collect();
    assert!(holding.len() >= 15, "{by_relay:?}");
    assert!(
        by_relay.values().sum::<u64>() >= CROWD as u64,
        "{by_relay:?}"
    );
    assert!(
        by_relay.values().all(|n| *n <= PER_RELAY as u64),
        "{by_relay:?}"
    );
    assert!(
        holding.iter().any(|(r, _)| shard_of(r) >= START),
        "{by_relay:?}"
    );
    // Every relay in use is on the walk of some client of the crowd.
    let walks: Vec<Vec<u32>> = socks.iter().map(|(w, _, _)| walk(w)).collect();
    for (r, _) in &holding {
        let shard = shard_of(r);
        assert!(walks.iter().any(|w| w.contains(&shard)), "{r} on no walk");
    }

    // Every socket gets every change once, in order, and then exactly the marker.
    let v0 = socks.iter().map(|(_, _, v)| *v).min().unwrap();
    changes(&s, 4, 15, "crowd");
    let last = s.get("/api/value").json()["version"].as_u64().unwrap();
    assert!(last >= v0 + 60);
    let marker = s.increment(&key("marker"), 3).json()["version"]
        .as_u64()
        .unwrap();
    for (who, sock, since) in &mut socks {
        for v in *since + 1..=marker {
            let m = sock.next_json();
            assert_eq!(m["type"], "update", "{who}: {m}");
            assert_eq!(m["version"], v, "{who}: gap or duplicate: {m}");
        }
    }
    for (_, sock, _) in socks {
        sock.close();
    }

    // The crowd leaves: the grown relays go idle and close (the starting ones too).
    wait(&s, "the grown relays close", |now| {
        now.keys().all(|r| shard_of(r) < START)
    });
    // The same clients come back, at most 15 per starting relay: each to its home, the earliest
    // relay of its walk with room (most of them were passed on by their full home before, which
    // marked them; the edge counts their other relays and comes back to the home).
    let mut per_home: BTreeMap<u32, usize> = BTreeMap::new();
    let back: Vec<String> = (0..CROWD)
        .rev()
        .map(ip)
        .filter(|who| {
            let n = per_home.entry(walk(who)[0]).or_default();
            *n += 1;
            *n <= 15
        })
        .collect();
    let again: Vec<Socket> = back
        .iter()
        .map(|who| connect(&s, who).unwrap_or_else(|e| panic!("{who}: {e}")))
        .collect();
    let now = sockets_by_relay(&s);
    assert!(now.keys().all(|r| shard_of(r) < START), "{now:?}");
    assert_eq!(now.values().sum::<u64>(), back.len() as u64, "{now:?}");
    for sock in again {
        sock.close();
    }
}

/// How long the edge holds off a client a relay refused for its cap, and a little more.
const SHIELD_HOLD: Duration = Duration::from_millis(2_200);

#[test]
fn the_per_client_cap_holds_across_grown_relays_and_the_next_socket_goes_to_the_earliest_with_room()
{
    let s = server();
    let client = ip(50_000);
    let mine_walk = walk(&client);
    let (home, second, third) = (mine_walk[0], mine_walk[1], mine_walk[2]);
    // Clients with the same home fill it; clients with the same first two relays fill the
    // second.
    let mut pool = (50_001..200_000).map(ip);
    let home_fill: Vec<String> = pool
        .by_ref()
        .filter(|w| walk(w)[0] == home)
        .take(PER_RELAY)
        .collect();
    let second_fill: Vec<String> = pool
        .filter(|w| walk(w)[..2] == mine_walk[..2])
        .take(PER_RELAY)
        .collect();
    assert_eq!(second_fill.len(), PER_RELAY);
    let mut fillers: Vec<Socket> = home_fill
        .iter()
        .map(|w| connect(&s, w).unwrap_or_else(|e| panic!("{w}: {e}")))
        .collect();
    wait(&s, "the home full", |now| {
        now.get(&relay(home)) == Some(&(PER_RELAY as u64))
    });
    fillers.extend(
        second_fill
            .iter()
            .map(|w| connect(&s, w).unwrap_or_else(|e| panic!("{w}: {e}"))),
    );
    wait(&s, "the second relay full", |now| {
        now.get(&relay(second)) == Some(&(PER_RELAY as u64))
    });
    // The client gets exactly its cap, on its third relay, then 429.
    let mut mine: Vec<Socket> = (0..PER_CLIENT)
        .map(|i| connect(&s, &client).unwrap_or_else(|e| panic!("socket {i}: {e}")))
        .collect();
    assert_eq!(
        sockets_by_relay(&s).get(&relay(third)),
        Some(&(PER_CLIENT as u64))
    );
    assert_eq!(connect(&s, &client).err().as_deref(), Some("status 429"));
    // Room at home: still 429, the walk counts the client's sockets on the third relay.
    fillers.remove(0).close();
    wait(&s, "room at home", |now| {
        now.get(&relay(home)) == Some(&(PER_RELAY as u64 - 1))
    });
    // The edge holds a client refused for its cap off for 2 s (its shield): past that, the
    // connect reaches the relays, whose walk counts the client's sockets.
    std::thread::sleep(SHIELD_HOLD);
    assert_eq!(connect(&s, &client).err().as_deref(), Some("status 429"));
    // One of its sockets closes: the next goes home, the earliest relay with room.
    mine.pop().unwrap().close();
    wait(&s, "one socket fewer", |now| {
        now.get(&relay(third)) == Some(&(PER_CLIENT as u64 - 1))
    });
    std::thread::sleep(SHIELD_HOLD);
    mine.push(connect(&s, &client).expect("the client's next socket"));
    let now = sockets_by_relay(&s);
    assert_eq!(now.get(&relay(home)), Some(&(PER_RELAY as u64)), "{now:?}");
    assert_eq!(connect(&s, &client).err().as_deref(), Some("status 429"));
    for sock in mine.into_iter().chain(fillers) {
        sock.close();
    }
}
