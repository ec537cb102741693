//! Cross-origin rules: who may change the counter from a browser page on another site.
//!
//! Anyone may read. Changing the counter or opening a socket from a page on another origin
//! needs that origin in `ALLOWED_ORIGINS`. Requests without `Origin` (curl, servers) and
//! same-origin requests (the app itself) are always allowed: `Origin` is what browsers send,
//! and the rule exists to keep other sites' pages from acting with a visitor's browser.

/// Request headers a cross-origin page may send.
pub const ALLOW_HEADERS: &str =
    "Content-Type, Idempotency-Key, If-Match, X-Request-ID, Authorization";
/// Response headers a cross-origin page may read.
pub const EXPOSE_HEADERS: &str = "ETag, Idempotent-Replayed, Retry-After";
/// How long a browser may cache a preflight answer, in seconds.
pub const MAX_AGE_SECS: &str = "600";

/// The parsed `ALLOWED_ORIGINS` list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    allowed: Vec<String>,
}

/// How a request's origin relates to the policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Access {
    /// No `Origin` header: not a cross-origin browser request.
    NoOrigin,
    /// `Origin` is this service's own origin.
    SameOrigin,
    /// A listed origin: allowed, and responses carry CORS headers for it.
    Allowed(String),
    /// Any other origin: may read (without CORS headers, so browsers hide the answer), may not
    /// change anything or connect.
    Denied(String),
}

impl Access {
    /// Whether this request may change the counter or open a socket.
    pub fn may_act(&self) -> bool {
        !matches!(self, Access::Denied(_))
    }
}

impl Policy {
    /// Parses a comma-separated list of exact origins (`https://example.com`); blanks are
    /// ignored, as are entries that are not origins (they could never match).
    pub fn parse(var: &str) -> Self {
        Policy {
            allowed: var
                .split(',')
                .map(|o| o.trim().trim_end_matches('/').to_string())
                .filter(|o| is_origin(o))
                .collect(),
        }
    }

    /// Classifies a request with `origin` arriving at `self_origin`.
    pub fn check(&self, origin: Option<&str>, self_origin: &str) -> Access {
        match origin {
            None => Access::NoOrigin,
            Some(o) if o == self_origin => Access::SameOrigin,
            Some(o) if self.allowed.iter().any(|a| a == o) => Access::Allowed(o.to_string()),
            Some(o) => Access::Denied(super::vocab::truncate(o, 100)),
        }
    }

    /// The listed origins.
    pub fn origins(&self) -> &[String] {
        &self.allowed
    }
}

/// Headers for a preflight answer to an allowed origin on a path allowing `methods`.
pub fn preflight_headers(origin: &str, methods: &str) -> Vec<(&'static str, String)> {
    vec![
        ("access-control-allow-origin", origin.to_string()),
        ("access-control-allow-methods", methods.to_string()),
        ("access-control-allow-headers", ALLOW_HEADERS.to_string()),
        ("access-control-max-age", MAX_AGE_SECS.to_string()),
        ("vary", "Origin".to_string()),
    ]
}

/// Headers added to an actual response for an allowed origin.
pub fn response_headers(origin: &str) -> [(&'static str, String); 3] {
    [
        ("access-control-allow-origin", origin.to_string()),
        ("access-control-expose-headers", EXPOSE_HEADERS.to_string()),
        ("vary", "Origin".to_string()),
    ]
}

/// The origin (`scheme://host[:port]`) of an absolute URL.
pub fn origin_of(url: &str) -> &str {
    let Some(scheme_end) = url.find("://") else {
        return url;
    };
    let rest = &url[scheme_end + 3..];
    let end = rest
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| scheme_end + 3 + i);
    &url[..end]
}

fn is_origin(s: &str) -> bool {
    (s.starts_with("https://") || s.starts_with("http://"))
        && origin_of(s) == s
        && s.len() > "http://".len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists() {
        let p = Policy::parse(
            " https://a.example , http://localhost:5173/,,not an origin, https://b.example/path",
        );
        assert_eq!(p.origins(), ["https://a.example", "http://localhost:5173"]);
        assert!(Policy::parse("").origins().is_empty());
    }

    #[test]
    fn classifies_origins() {
        let p = Policy::parse("https://a.example");
        let me = "https://counter.example";
        assert_eq!(p.check(None, me), Access::NoOrigin);
        assert_eq!(p.check(Some(me), me), Access::SameOrigin);
        assert_eq!(
            p.check(Some("https://a.example"), me),
            Access::Allowed("https://a.example".into())
        );
        for bad in [
            "https://evil.example",
            "null",
            "https://a.example.evil",
            "http://a.example",
            "https://A.example",
        ] {
            assert!(!p.check(Some(bad), me).may_act(), "{bad}");
        }
    }

    #[test]
    fn origin_of_urls() {
        assert_eq!(
            origin_of("http://127.0.0.1:8787/api/value?x=1"),
            "http://127.0.0.1:8787"
        );
        assert_eq!(origin_of("https://h.example"), "https://h.example");
        assert_eq!(origin_of("https://h.example?q"), "https://h.example");
    }

    #[test]
    fn header_sets() {
        let h = preflight_headers("https://a.example", "POST, OPTIONS");
        assert!(h.iter().any(|(k, v)| *k == "access-control-allow-headers"
            && v.contains("Idempotency-Key")
            && v.contains("If-Match")
            && v.contains("Content-Type")));
        let r = response_headers("https://a.example");
        assert!(r.iter().any(|(k, v)| *k == "access-control-expose-headers"
            && v.contains("ETag")
            && v.contains("Idempotent-Replayed")));
    }
}
