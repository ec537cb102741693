//! Query strings from hostile clients: percent-decoded, every parameter known, none repeated.

use super::problem::Problem;

/// The longest query string read at all, in bytes.
pub const MAX_QUERY_BYTES: usize = 512;

/// Parses `query` (without the `?`) into `(name, value)` pairs, allowing only the names in
/// `known`, each at most once. `+` is not special (these are not form submissions).
pub fn parse<'k>(query: &str, known: &[&'k str]) -> Result<Vec<(&'k str, String)>, Problem> {
    if query.len() > MAX_QUERY_BYTES {
        return Err(Problem::InvalidQuery(format!(
            "The query string is longer than {MAX_QUERY_BYTES} bytes."
        )));
    }
    let mut out: Vec<(&'k str, String)> = Vec::new();
    for part in query.split('&').filter(|p| !p.is_empty()) {
        let (raw_name, raw_value) = part.split_once('=').unwrap_or((part, ""));
        let name = percent_decode(raw_name)?;
        let Some(&known_name) = known.iter().find(|k| **k == name) else {
            let allowed = if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            };
            return Err(Problem::InvalidQuery(format!(
                "Unknown query parameter {:?}; allowed: {allowed}.",
                super::vocab::truncate(&name, 40)
            )));
        };
        if out.iter().any(|(n, _)| *n == known_name) {
            return Err(Problem::InvalidQuery(format!(
                "The query parameter {known_name:?} appears more than once."
            )));
        }
        out.push((known_name, percent_decode(raw_value)?));
    }
    Ok(out)
}

/// The value of `name` in `pairs` as a non-negative integer in `min..=max`, or `default` when
/// absent.
pub fn uint(
    pairs: &[(&str, String)],
    name: &str,
    min: u64,
    max: u64,
    default: Option<u64>,
) -> Result<Option<u64>, Problem> {
    let Some((_, raw)) = pairs.iter().find(|(n, _)| *n == name) else {
        return Ok(default);
    };
    match super::vocab::parse_version(raw) {
        Some(v) if (min..=max).contains(&v) => Ok(Some(v)),
        _ => Err(Problem::InvalidQuery(format!(
            "{name} must be an integer from {min} to {max}; got {:?}.",
            super::vocab::truncate(raw, 40)
        ))),
    }
}

fn percent_decode(s: &str) -> Result<String, Problem> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    Problem::InvalidQuery("Invalid percent-encoding in the query.".into())
                })?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| Problem::InvalidQuery("The query is not UTF-8.".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_parameters_parse_and_decode() {
        let p = parse("after=5&limit=%31%30", &["after", "limit"]).unwrap();
        assert_eq!(
            p,
            vec![("after", "5".to_string()), ("limit", "10".to_string())]
        );
        assert_eq!(uint(&p, "limit", 1, 1000, Some(100)), Ok(Some(10)));
        assert_eq!(uint(&p, "missing", 1, 1000, Some(100)), Ok(Some(100)));
        assert!(parse("", &["after"]).unwrap().is_empty());
        assert!(parse("&&", &["after"]).unwrap().is_empty());
    }

    #[test]
    fn hostile_queries_are_refused() {
        assert!(parse("x=1", &["after"]).is_err());
        assert!(parse("after=1&after=2", &["after"]).is_err());
        assert!(parse("after=%zz", &["after"]).is_err());
        assert!(parse("after=%ff", &["after"]).is_err());
        assert!(parse(&"a".repeat(600), &["after"]).is_err());
        let p = parse("limit=0", &["limit"]).unwrap();
        assert!(uint(&p, "limit", 1, 1000, None).is_err());
        for v in ["-1", "1.5", "", "abc", "1001", "01"] {
            let p = vec![("limit", v.to_string())];
            assert!(uint(&p, "limit", 1, 1000, None).is_err(), "{v}");
        }
    }
}
