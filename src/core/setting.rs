//! How a numeric setting (a wrangler var) is read, for every part that has one.

/// A setting: absent or empty = `default`; otherwise a non-negative integer up to `max`.
pub fn parse_setting(raw: Option<&str>, default: u32, max: u32) -> Result<u32, String> {
    match raw.map(str::trim) {
        None | Some("") => Ok(default),
        Some(s) => s
            .parse::<u32>()
            .ok()
            .filter(|n| *n <= max)
            .ok_or_else(|| format!("expected an integer from 0 to {max}, got {s:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings() {
        assert_eq!(parse_setting(None, 2500, 32768), Ok(2500));
        assert_eq!(parse_setting(Some("0"), 2500, 32768), Ok(0));
        assert_eq!(parse_setting(Some(" 50 "), 2500, 32768), Ok(50));
        assert!(parse_setting(Some("-1"), 2500, 32768).is_err());
        assert!(parse_setting(Some("40000"), 2500, 32768).is_err());
    }
}
