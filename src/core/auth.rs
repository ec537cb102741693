//! Admin authorization: `Authorization: Bearer <ADMIN_TOKEN>`, compared in constant time.

use super::problem::Problem;

/// Checks an `Authorization` header against the configured token. The comparison takes the
/// same time wherever the first difference is, so the token cannot be guessed byte by byte
/// from response times. (Its length can be; tokens should be long and random.)
pub fn check_bearer(header: Option<&str>, token: &str) -> Result<(), Problem> {
    let presented = header
        .and_then(|h| {
            let (scheme, rest) = h.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .ok_or(Problem::Unauthorized)?;
    if constant_time_eq(presented.as_bytes(), token.as_bytes()) {
        Ok(())
    } else {
        Err(Problem::Unauthorized)
    }
}

/// `a == b` without an early exit on the first differing byte.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens() {
        let t = "s3cret-token";
        assert!(check_bearer(Some("Bearer s3cret-token"), t).is_ok());
        assert!(check_bearer(Some("bearer  s3cret-token "), t).is_ok());
        for bad in [
            None,
            Some(""),
            Some("Bearer"),
            Some("Bearer s3cret-tokem"),
            Some("Bearer s3cret-token2"),
            Some("Basic s3cret-token"),
            Some("s3cret-token"),
        ] {
            assert_eq!(check_bearer(bad, t), Err(Problem::Unauthorized), "{bad:?}");
        }
    }

    #[test]
    fn constant_time_eq_is_eq() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"abc\0", b"abc"));
    }
}
