//! The edge's walk over a client's relays and the marks that keep the per-client socket count
//! exact across them.

use std::collections::HashMap;

/// Response header of a relay that passes a socket on to the next shard (it is full, or it
/// passed this client on before): how many sockets the caller's client holds there.
pub const FULL_HEADER: &str = "relay-full";

/// Response header, with [`FULL_HEADER`], of a relay that passes a client on only because it
/// did so before ([`Marks`]), or of a relay only asked to count ([`Mode::Count`]): it has room,
/// and takes the socket once the walk has counted every other relay of the client.
pub const ROOM_HEADER: &str = "relay-room";

/// How long a relay remembers that it passed a client on (24 hours after the last time).
pub const MARK_TTL_MS: f64 = 24.0 * 3600.0 * 1000.0;

/// The clients a relay passed on to the next relay of their walk while it was full: they may
/// hold sockets further along it. A relay keeps passing such a client on (with its count
/// there, and that it has room) even after it has room again, so that the edge's walk counts
/// the client's sockets on every later relay before this one takes the next socket, and every
/// one of them is counted against `WS_CONNECTIONS_PER_CLIENT` (see [`Walk`]). A mark lasts
/// [`MARK_TTL_MS`] after it was last written (it is rewritten at most hourly).
#[derive(Clone, Debug, Default)]
pub struct Marks {
    at: HashMap<String, f64>,
}

/// How often a mark in use is rewritten (milliseconds).
pub(super) const MARK_REFRESH_MS: f64 = 3600.0 * 1000.0;

impl Marks {
    /// Marks as loaded from storage: `(client, written at)`.
    pub fn from_stored(rows: impl IntoIterator<Item = (String, f64)>) -> Marks {
        Marks {
            at: rows.into_iter().collect(),
        }
    }

    /// Whether this relay passes `client` on (it did so before, within the mark's life).
    pub fn passes(&self, client: &str, now: f64) -> bool {
        self.at.get(client).is_some_and(|t| now - t < MARK_TTL_MS)
    }

    /// Records that `client` was passed on now; returns whether the mark must be (re)written
    /// to storage.
    pub fn record(&mut self, client: &str, now: f64) -> bool {
        match self.at.get(client) {
            Some(t) if now - t < MARK_REFRESH_MS => false,
            _ => {
                self.at.insert(client.to_owned(), now);
                true
            }
        }
    }

    /// Forgets the expired marks; returns their clients (to delete from storage).
    pub fn expire(&mut self, now: f64) -> Vec<String> {
        let old: Vec<String> = self
            .at
            .iter()
            .filter(|(_, t)| now - **t >= MARK_TTL_MS)
            .map(|(c, _)| c.clone())
            .collect();
        for c in &old {
            self.at.remove(c);
        }
        old
    }

    pub fn len(&self) -> usize {
        self.at.len()
    }

    pub fn is_empty(&self) -> bool {
        self.at.is_empty()
    }
}

/// The storage key of a client's mark.
pub fn mark_key(client: &str) -> String {
    format!("{MARK_PREFIX}{client}")
}

/// The prefix of every mark's storage key.
pub const MARK_PREFIX: &str = "pass:";

/// The edge's walk over a client's relays ([`shard_order`](super::shard_order)) for one
/// socket: each relay that passes the socket on says how many sockets the client holds there.
/// A relay takes the socket with `held` = the client's sockets on the relays passed, and
/// counts its own.
///
/// A relay that passes the socket on although it has room (it marked the client: the client may
/// hold sockets further on) turns the rest of the walk into a count ([`Mode::Count`]): every
/// later relay only says how many sockets the client holds there. After the last one the walk
/// has counted every relay the client can hold a socket on, and the first relay that had room
/// takes the socket ([`Mode::Force`]) with every other relay's count. So a socket always lands
/// on the earliest relay of its walk with room: once a crowd has gone, its clients come back
/// to their starting relays and the grown ones stay idle.
#[derive(Clone, Debug, Default)]
pub struct Walk {
    held: u32,
    room: Option<(u32, u32)>,
}

impl Walk {
    /// Sockets the client holds on the relays passed so far.
    pub fn held(&self) -> u32 {
        self.held
    }

    /// How to ask the next relay: [`Mode::Count`] once a relay with room passed the socket on.
    pub fn mode(&self) -> Mode {
        if self.room.is_some() {
            Mode::Count
        } else {
            Mode::Take
        }
    }

    /// Shard `shard` passed the socket on; the client holds `here` sockets there; `room`: it
    /// has room (it passed the socket on only because of a mark, or it was only counted).
    pub fn passed(&mut self, shard: u32, here: u32, room: bool) {
        self.held = self.held.saturating_add(here);
        if room && self.room.is_none() {
            self.room = Some((shard, here));
        }
    }

    /// After every relay of the walk passed the socket on: the shard that must take it
    /// ([`Mode::Force`]) and the client's sockets on every other relay; `None` when every relay
    /// of the walk is full.
    pub fn fallback(&self) -> Option<(u32, u32)> {
        self.room
            .map(|(shard, here)| (shard, self.held.saturating_sub(here)))
    }
}

/// How the edge asks a relay for a socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Take it if there is room and the client is not marked ([`Marks`]); otherwise pass it on.
    Take,
    /// Take it if there is room, mark or not: the walk counted every other relay.
    Force,
    /// Take nothing: say how many sockets the client holds here, and whether there is room.
    Count,
}

#[cfg(test)]
mod tests {
    use super::super::region::shard_order;
    use super::*;

    #[test]
    fn marks_pass_a_client_on_until_they_expire() {
        let mut m = Marks::default();
        assert!(!m.passes("a", 0.0));
        assert!(m.record("a", 0.0));
        assert!(m.passes("a", 1.0));
        // Rewritten at most hourly.
        assert!(!m.record("a", 60_000.0));
        assert!(m.record("a", MARK_REFRESH_MS));
        assert!(m.passes("a", MARK_REFRESH_MS + MARK_TTL_MS - 1.0));
        assert!(!m.passes("a", MARK_REFRESH_MS + MARK_TTL_MS));
        assert!(m.expire(MARK_REFRESH_MS + 1.0).is_empty());
        assert_eq!(
            m.expire(MARK_REFRESH_MS + MARK_TTL_MS),
            vec!["a".to_string()]
        );
        assert!(m.is_empty());
        let m = Marks::from_stored([("b".to_string(), 5.0)]);
        assert!(m.passes("b", 6.0) && m.len() == 1);
        assert_eq!(mark_key("b"), "pass:b");
    }

    #[test]
    fn a_walk_falls_back_to_the_first_relay_with_room_with_every_other_count() {
        let mut w = Walk::default();
        assert_eq!(w.mode(), Mode::Take);
        w.passed(3, 2, false);
        assert_eq!(w.fallback(), None);
        assert_eq!(w.mode(), Mode::Take, "a full relay: the walk goes on");
        w.passed(0, 1, true);
        assert_eq!(
            w.mode(),
            Mode::Count,
            "a relay with room passed: only count"
        );
        w.passed(1, 4, true);
        assert_eq!(w.held(), 7);
        assert_eq!(w.fallback(), Some((0, 6)));
    }

    /// Relays and an edge that follow the rules of [`Marks`] and [`Walk`] in a region that
    /// grows ([`levels`]), driven by random opens and closes: whenever a relay takes or refuses
    /// a socket against the client cap, the count it uses is the client's true total over the
    /// whole region; every socket sits on a relay of its client's walk, on the earliest one
    /// that had room.
    #[test]
    fn the_per_client_cap_counts_every_socket_across_relays() {
        #[derive(Default)]
        struct Relay {
            sockets: Vec<String>,
            marks: Marks,
        }
        const START: u32 = 2;
        const MAX: u32 = 20;
        const PER_RELAY: usize = 3;
        const CLIENT_CAP: u32 = 4;
        let mut relays: Vec<Relay> = (0..MAX).map(|_| Relay::default()).collect();
        let clients: Vec<String> = (0..24).map(|i| format!("10.0.0.{i}")).collect();
        let walks: Vec<Vec<u32>> = clients
            .iter()
            .map(|c| shard_order(c, START, MAX).collect())
            .collect();
        assert!(walks.iter().all(|w| w.len() == 3));
        let mut seed = 0x2545_f491_u64;
        let mut rand = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let (mut taken, mut capped, mut full, mut forced) = (0, 0, 0, 0);
        for step in 0..40_000 {
            let now = step as f64;
            let ci = rand(clients.len());
            let c = &clients[ci];
            let truth = relays
                .iter()
                .map(|r| r.sockets.iter().filter(|s| *s == c).count() as u32)
                .sum::<u32>();
            if rand(3) == 0 {
                // A random socket closes.
                let r = rand(MAX as usize);
                if !relays[r].sockets.is_empty() {
                    let i = rand(relays[r].sockets.len());
                    relays[r].sockets.swap_remove(i);
                }
                continue;
            }
            // The relay's decision: pass on (full, marked or only counting), 429, or take.
            let visit = |shard: u32, held: u32, mode: Mode, relays: &mut [Relay]| {
                let r = &mut relays[shard as usize];
                let here = r.sockets.iter().filter(|s| *s == c).count() as u32;
                let is_full = r.sockets.len() >= PER_RELAY;
                let marked = mode == Mode::Take && r.marks.passes(c, now);
                if is_full || marked || mode == Mode::Count {
                    if is_full && mode == Mode::Take {
                        r.marks.record(c, now);
                    }
                    return Err((here, !is_full));
                }
                assert_eq!(held + here, truth, "step {step}: {c} counted wrong");
                if held + here >= CLIENT_CAP {
                    return Ok(false);
                }
                r.sockets.push(c.clone());
                Ok(true)
            };
            let mut walk = Walk::default();
            let mut outcome = None;
            for &shard in &walks[ci] {
                let mode = walk.mode();
                let before: Vec<bool> = walks[ci]
                    .iter()
                    .take_while(|s| **s != shard)
                    .map(|s| relays[*s as usize].sockets.len() >= PER_RELAY)
                    .collect();
                match visit(shard, walk.held(), mode, &mut relays) {
                    Ok(t) => {
                        // Taken without a count: every relay before it was full.
                        assert!(before.iter().all(|f| *f), "step {step}: not the earliest");
                        outcome = Some(t);
                        break;
                    }
                    Err((here, room)) => walk.passed(shard, here, room),
                }
            }
            if outcome.is_none() {
                if let Some((shard, held)) = walk.fallback() {
                    outcome = visit(shard, held, Mode::Force, &mut relays).ok();
                    forced += 1;
                }
            }
            match outcome {
                Some(true) => taken += 1,
                Some(false) => capped += 1,
                None => full += 1,
            }
            for (i, cl) in clients.iter().enumerate() {
                let mut n = 0;
                for (shard, r) in relays.iter().enumerate() {
                    let here = r.sockets.iter().filter(|s| *s == cl).count() as u32;
                    assert!(
                        here == 0 || walks[i].contains(&(shard as u32)),
                        "step {step}: a socket off its client's walk"
                    );
                    n += here;
                }
                assert!(n <= CLIENT_CAP, "step {step}: client {i} holds {n}");
            }
        }
        // The run went through every case, and the region grew past its first level.
        assert!(
            taken > 1000 && capped > 100 && full > 100 && forced > 100,
            "{taken} {capped} {full} {forced}"
        );
        assert!(relays[START as usize..]
            .iter()
            .any(|r| !r.sockets.is_empty()));
    }
}
