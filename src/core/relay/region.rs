//! Where a caller's relays are: the regions, the relays' names, a region's levels and the
//! order in which a client tries them.

/// The most starting shards per region a configuration may ask for.
pub const MAX_SHARDS: u32 = 256;

/// The most relays one region may grow to, and the default of `RELAY_MAX_SHARDS`. The counter
/// sends every update once per relay in use: nine regions of 512 are 4,608 upstream sockets,
/// well within what one object holds, and 512 relays of 2,500 sockets carry 1.28 million
/// browsers per region. A client's walk is one relay per level, so 512 relays from 16 starting
/// ones are 4 relays per walk.
pub const MAX_RELAYS: u32 = 512;

/// How much larger each level of a region is than all the levels before it together, less
/// one: level 1 is shards `S..4S`, level 2 `4S..16S`, and so on (`S` = `RELAY_SHARDS`).
pub const GROWTH: u32 = 4;

/// The regions relays are placed in: Cloudflare's Durable Object location hints.
pub const REGIONS: [&str; 9] = [
    "wnam", "enam", "sam", "weur", "eeur", "apac", "oc", "afr", "me",
];

/// The location hint for a caller from `continent` (`request.cf.continent`: `NA`, `SA`, `EU`,
/// `AS`, `OC`, `AF`, `AN`) at `longitude` (`request.cf.longitude`). Unknown callers (the local
/// runtime, or no `cf` at all) go to `enam`.
pub fn region(continent: Option<&str>, longitude: Option<f64>) -> &'static str {
    let lon = longitude.filter(|l| l.is_finite());
    match continent {
        Some("NA") => match lon {
            Some(l) if l < -100.0 => "wnam",
            _ => "enam",
        },
        Some("SA") => "sam",
        Some("EU") => match lon {
            Some(l) if l >= 20.0 => "eeur",
            _ => "weur",
        },
        Some("AS") => match lon {
            Some(l) if l < 63.0 => "me",
            _ => "apac",
        },
        Some("OC") | Some("AN") => "oc",
        Some("AF") => "afr",
        _ => "enam",
    }
}

/// A relay's name: `<region>-<shard>`, e.g. `enam-0`.
pub fn relay_name(region: &str, shard: u32) -> String {
    format!("{region}-{shard}")
}

/// Whether `name` is a relay name ([`relay_name`] of a known region and a shard below
/// [`MAX_RELAYS`]); returns its region.
pub fn parse_relay_name(name: &str) -> Option<&'static str> {
    let (region, shard) = name.rsplit_once('-')?;
    let region = REGIONS.iter().find(|r| **r == region)?;
    let canonical = !shard.is_empty()
        && shard.len() <= 3
        && shard.bytes().all(|b| b.is_ascii_digit())
        && (shard == "0" || !shard.starts_with('0'));
    let shard: u32 = shard.parse().ok().filter(|_| canonical)?;
    (shard < MAX_RELAYS).then_some(*region)
}

/// The levels of a region that starts with `start` relays and grows up to `max`: level 0 is
/// shards `0..start` (`RELAY_SHARDS`), each next level [`GROWTH`] times the end of the one
/// before, the last one cut at `max` (at most [`MAX_RELAYS`]). `start` = `max`: one level, no
/// growth.
pub fn levels(start: u32, max: u32) -> Vec<std::ops::Range<u32>> {
    let start = start.clamp(1, MAX_SHARDS);
    let max = max.clamp(start, MAX_RELAYS);
    let mut out = Vec::with_capacity(8);
    out.push(0..start);
    let mut low = start;
    while low < max {
        let high = low.saturating_mul(GROWTH).min(max);
        out.push(low..high);
        low = high;
    }
    out
}

/// The relays a client may use in a region of [`levels`]`(start, max)`, in the order it tries
/// them: one shard per level. The first (its *home*) is its address's hash over the starting
/// shards; each later one an independent hash over its level, so the clients that overflow one
/// relay spread over the whole next level. The order never depends on how many relays are in
/// use: a client's sockets are always on these relays, wherever the region stands, so one
/// walk over them counts every one of them ([`Walk`](super::Walk)).
pub fn shard_order(client: &str, start: u32, max: u32) -> impl Iterator<Item = u32> {
    let h = fnv1a(client.as_bytes());
    levels(start, max)
        .into_iter()
        .enumerate()
        .map(move |(k, level)| {
            let size = level.end - level.start;
            let pick = if k == 0 { h } else { mix(h, k as u32) };
            level.start + pick % size
        })
}

/// A client's home: the first relay of its walk, where its nearby reads go.
pub fn home(client: &str, start: u32) -> u32 {
    fnv1a(client.as_bytes()) % start.clamp(1, MAX_SHARDS)
}

/// An independent hash of `h` for level `k` (the SplitMix64 finalizer): a plain FNV step would
/// keep the home's residue, sending the clients of one full relay to a few relays of the next
/// level.
fn mix(h: u32, k: u32) -> u32 {
    let mut z = (u64::from(h) << 32 | u64::from(k)).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    ((z ^ (z >> 31)) >> 32) as u32
}

/// 32-bit FNV-1a: a stable, even spread of addresses over shards.
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_from_cf() {
        assert_eq!(region(Some("NA"), Some(-122.4)), "wnam");
        assert_eq!(region(Some("NA"), Some(-74.0)), "enam");
        assert_eq!(region(Some("NA"), None), "enam");
        assert_eq!(region(Some("SA"), Some(-46.6)), "sam");
        assert_eq!(region(Some("EU"), Some(2.35)), "weur");
        assert_eq!(region(Some("EU"), Some(21.0)), "eeur");
        assert_eq!(region(Some("AS"), Some(139.7)), "apac");
        assert_eq!(region(Some("AS"), Some(55.3)), "me");
        assert_eq!(region(Some("OC"), Some(151.2)), "oc");
        assert_eq!(region(Some("AF"), Some(28.0)), "afr");
        assert_eq!(region(None, None), "enam");
        assert_eq!(region(Some("XX"), Some(f64::NAN)), "enam");
        for r in REGIONS {
            assert_eq!(parse_relay_name(&relay_name(r, 7)), Some(r));
        }
    }

    #[test]
    fn relay_names_are_strict() {
        assert_eq!(parse_relay_name("enam-0"), Some("enam"));
        assert_eq!(parse_relay_name("enam-511"), Some("enam"));
        for bad in [
            "enam", "enam-", "enam-512", "enam-01", "enam--1", "mars-1", "enam-1a", "-1", "",
        ] {
            assert_eq!(parse_relay_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_region_grows_in_levels_up_to_its_maximum() {
        assert_eq!(levels(16, 512), vec![0..16, 16..64, 64..256, 256..512]);
        assert_eq!(levels(4, 512), vec![0..4, 4..16, 16..64, 64..256, 256..512]);
        assert_eq!(levels(12, 100), vec![0..12, 12..48, 48..100]);
        let one = |start, max| match levels(start, max).as_slice() {
            [only] => only.clone(),
            more => panic!("{more:?}"),
        };
        assert_eq!(one(8, 8), 0..8, "no growth");
        assert_eq!(one(8, 2), 0..8, "the maximum is at least the start");
        assert_eq!(one(0, 0), 0..1);
        assert_eq!(levels(1, 9999).last(), Some(&(256..MAX_RELAYS)));
        assert_eq!(levels(MAX_SHARDS, MAX_RELAYS).len(), 2);
    }

    #[test]
    fn a_client_walks_one_relay_per_level_starting_at_its_home() {
        let order: Vec<u32> = shard_order("203.0.113.9", 12, 512).collect();
        assert_eq!(
            order,
            shard_order("203.0.113.9", 12, 512).collect::<Vec<_>>()
        );
        let lv = levels(12, 512);
        assert_eq!(order.len(), lv.len());
        for (s, l) in order.iter().zip(&lv) {
            assert!(l.contains(s), "{s} outside {l:?}");
        }
        // The home does not depend on the maximum; a smaller maximum is a prefix of levels.
        assert_eq!(
            shard_order("203.0.113.9", 12, 12).collect::<Vec<_>>(),
            vec![order[0]]
        );
        assert_eq!(shard_order("x", 0, 0).collect::<Vec<_>>(), vec![0]);
        assert_eq!(home("203.0.113.9", 12), order[0]);
        // Addresses spread over the starting shards, and the clients of ONE home spread over
        // the whole next level (each level's hash is independent of the home's).
        let mut homes = std::collections::BTreeSet::new();
        let mut next = std::collections::BTreeSet::new();
        for i in 0..4000 {
            let o: Vec<u32> =
                shard_order(&format!("10.0.{}.{}", i / 250, i % 250), 16, 512).collect();
            homes.insert(o[0]);
            if o[0] == 5 {
                next.insert(o[1]);
            }
        }
        assert_eq!(homes.len(), 16);
        assert_eq!(next.len(), 48, "{next:?}");
    }
}
