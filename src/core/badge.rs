//! `GET /api/badge.svg`: the current value as a small SVG badge, for READMEs and pages.
//!
//! The label is the caller's text, so it is the one hostile input here: it is decoded from the
//! query (invalid UTF-8 or percent-encoding is a 400 problem), stripped of characters XML 1.0
//! cannot carry at all (C0 controls, U+FFFE, U+FFFF; whitespace runs become one space), cut
//! to [`MAX_LABEL_CHARS`] characters with an ellipsis, and escaped wherever it appears (`&`,
//! `<`, `>`, `"`, `'`); a label with nothing left is the default one.
//! The color is never the caller's text: it is one of [`COLORS`] or a hex color, written back
//! as `#rrggbb`; anything else is a 400 problem. The entity tag is the version plus a hash of
//! the label and color, so `If-None-Match` answers 304 until the counter changes.

use super::problem::Problem;
use super::query;
use super::vocab::truncate;

/// The longest label shown, in characters; a longer one ends with `…`.
pub const MAX_LABEL_CHARS: usize = 40;

/// The label when none is given.
pub const DEFAULT_LABEL: &str = "acidizer";

/// `Cache-Control` of a badge: shared caches and image proxies may keep it for 10 s.
pub const CACHE_CONTROL: &str = "public, max-age=10";

/// The media type of a badge.
pub const CONTENT_TYPE: &str = "image/svg+xml; charset=utf-8";

/// The named colors a badge may use, with their `#rrggbb`.
pub const COLORS: [(&str, &str); 12] = [
    ("brightgreen", "#44cc11"),
    ("green", "#97ca00"),
    ("yellowgreen", "#a4a61d"),
    ("yellow", "#dfb317"),
    ("orange", "#fe7d37"),
    ("red", "#e05d44"),
    ("blue", "#007ec6"),
    ("lightgrey", "#9f9f9f"),
    ("grey", "#555555"),
    ("purple", "#8a3ffc"),
    ("pink", "#e5609f"),
    ("black", "#1f1f1f"),
];

/// The color when none is given.
pub const DEFAULT_COLOR: &str = "#007ec6";

/// A validated badge request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Badge {
    /// The label as shown (cleaned and cut, not yet escaped).
    pub label: String,
    /// `#rrggbb`.
    pub color: String,
}

impl Badge {
    /// Parses `label` and `color` from the query string.
    pub fn parse(q: &str) -> Result<Badge, Problem> {
        let pairs = query::parse(q, &["label", "color"])?;
        let get = |name: &str| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| v);
        // A label with nothing left to show is the default one.
        let label = get("label")
            .map(|raw| clean_label(raw))
            .filter(|l| !l.is_empty())
            .unwrap_or_else(|| DEFAULT_LABEL.to_string());
        let color = match get("color") {
            None => DEFAULT_COLOR.to_string(),
            Some(raw) => parse_color(raw).ok_or_else(|| {
                Problem::InvalidQuery(format!(
                    "color must be one of {} or a hex color such as 4c1 or #44cc11; got {:?}.",
                    COLORS.map(|(n, _)| n).join(", "),
                    truncate(raw, 40)
                ))
            })?,
        };
        Ok(Badge { label, color })
    }

    /// The strong entity tag of this badge at `version`.
    pub fn etag(&self, version: u64) -> String {
        let mut h = 0x811c_9dc5u32;
        for b in self
            .label
            .bytes()
            .chain([0])
            .chain(self.color.bytes())
            .chain([0, RENDERING])
        {
            h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
        }
        format!("\"{version}-{h:08x}\"")
    }

    /// The SVG for `value`.
    pub fn svg(&self, value: i64) -> String {
        let value = group(value);
        let label = escape(&self.label);
        let lw = text_width(&self.label) + 12;
        let vw = text_width(&value) + 12;
        let w = lw + vw;
        let title = escape(&format!("{}: {value}", self.label));
        let (lx, vx) = (lw * 5, lw * 10 + vw * 5);
        let color = &self.color;
        format!(
            concat!(
                r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="20" role="img" aria-label="{title}">"##,
                r##"<title>{title}</title>"##,
                r##"<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient>"##,
                r##"<clipPath id="r"><rect width="{w}" height="20" rx="3" fill="#fff"/></clipPath>"##,
                r##"<g clip-path="url(#r)"><rect width="{lw}" height="20" fill="#555"/><rect x="{lw}" width="{vw}" height="20" fill="{color}"/><rect width="{w}" height="20" fill="url(#s)"/></g>"##,
                r##"<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="110">"##,
                r##"<text x="{lx}" y="150" fill="#010101" fill-opacity=".3" transform="scale(.1)">{label}</text>"##,
                r##"<text x="{lx}" y="140" transform="scale(.1)">{label}</text>"##,
                r##"<text x="{vx}" y="150" fill="#010101" fill-opacity=".3" transform="scale(.1)">{value}</text>"##,
                r##"<text x="{vx}" y="140" transform="scale(.1)">{value}</text>"##,
                r##"</g></svg>"##
            ),
            w = w,
            lw = lw,
            vw = vw,
            title = title,
            color = color,
            lx = lx,
            vx = vx,
            label = label,
            value = value,
        )
    }
}

/// Bumped whenever the drawing changes, so cached badges are not answered 304 for it.
const RENDERING: u8 = 1;

/// `s` with the five XML special characters as entities (safe in text and in attributes).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The label without characters XML cannot carry, whitespace runs as one space, trimmed, cut
/// to [`MAX_LABEL_CHARS`] with `…`.
fn clean_label(raw: &str) -> String {
    let mut out = String::new();
    for c in raw.chars() {
        let c = if c.is_whitespace() { ' ' } else { c };
        let allowed = !c.is_control() && c != '\u{fffe}' && c != '\u{ffff}';
        if allowed && !(c == ' ' && (out.is_empty() || out.ends_with(' '))) {
            out.push(c);
        }
    }
    let out = out.trim_end();
    if out.chars().count() > MAX_LABEL_CHARS {
        let mut cut: String = out.chars().take(MAX_LABEL_CHARS - 1).collect();
        cut.truncate(cut.trim_end().len());
        cut.push('…');
        cut
    } else {
        out.to_string()
    }
}

/// A named color or `[#]rgb` / `[#]rrggbb` as `#rrggbb` (lowercase).
fn parse_color(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if let Some((_, hex)) = COLORS.iter().find(|(n, _)| n.eq_ignore_ascii_case(raw)) {
        return Some((*hex).to_string());
    }
    let hex = raw.strip_prefix('#').unwrap_or(raw);
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let hex = hex.to_ascii_lowercase();
    match hex.len() {
        6 => Some(format!("#{hex}")),
        3 => Some(hex.chars().fold(String::from("#"), |mut s, c| {
            s.push(c);
            s.push(c);
            s
        })),
        _ => None,
    }
}

/// `-1234567` as `-1,234,567`.
fn group(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + 8);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// An estimate of `s`'s width in pixels at 11 px Verdana (wide enough for most text; a badge
/// is a sketch, not typesetting).
fn text_width(s: &str) -> u32 {
    s.chars()
        .map(|c| match c {
            'i' | 'l' | 'j' | '.' | ',' | ':' | ';' | '\'' | '|' | '!' | ' ' => 4,
            'm' | 'w' | 'M' | 'W' | '@' => 10,
            c if c.is_ascii_uppercase() => 8,
            c if c.is_ascii() => 7,
            // Wide scripts and symbols.
            _ => 11,
        })
        .sum()
}

/// Whether `if_none_match` (a request's `If-None-Match`) names `etag` (weak comparison, as
/// RFC 9110 asks for `If-None-Match`), or is `*`.
pub fn not_modified(if_none_match: &str, etag: &str) -> bool {
    if_none_match.trim() == "*"
        || if_none_match
            .split(',')
            .map(|t| t.trim())
            .map(|t| t.strip_prefix("W/").unwrap_or(t))
            .any(|t| t == etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_cleaned_cut_and_escaped() {
        let b = Badge::parse("label=%3Cscript%3Ealert(1)%3C%2Fscript%3E").unwrap();
        assert_eq!(b.label, "<script>alert(1)</script>");
        let svg = b.svg(5);
        assert!(!svg.contains("<script"));
        assert!(svg.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert_eq!(
            escape(r#"a&b<c>d"e'f]]>"#),
            "a&amp;b&lt;c&gt;d&quot;e&#39;f]]&gt;"
        );
        let b = Badge::parse("label=a%00b%1Fc%09d%0A%0Ae%EF%BF%BE").unwrap();
        assert_eq!(b.label, "abc d e");
        let long = "x".repeat(100);
        let b = Badge::parse(&format!("label={long}")).unwrap();
        assert_eq!(b.label.chars().count(), MAX_LABEL_CHARS);
        assert!(b.label.ends_with('…'));
        assert_eq!(Badge::parse("").unwrap().label, DEFAULT_LABEL);
        assert_eq!(Badge::parse("label=").unwrap().label, DEFAULT_LABEL);
        assert_eq!(Badge::parse("label=%00%20").unwrap().label, DEFAULT_LABEL);
        assert!(Badge::parse("label=%ff").is_err());
        assert!(Badge::parse("label=%zz").is_err());
    }

    #[test]
    fn colors_come_from_a_safe_set() {
        let c = |q: &str| Badge::parse(q).map(|b| b.color);
        assert_eq!(c("").unwrap(), DEFAULT_COLOR);
        assert_eq!(c("color=red").unwrap(), "#e05d44");
        assert_eq!(c("color=RED").unwrap(), "#e05d44");
        assert_eq!(c("color=4c1").unwrap(), "#44cc11");
        assert_eq!(c("color=%234C1").unwrap(), "#44cc11");
        assert_eq!(c("color=%23aaBB00").unwrap(), "#aabb00");
        for bad in [
            "color=",
            "color=javascript:alert(1)",
            "color=%22%3E%3Cscript%3E",
            "color=url(x)",
            "color=12345",
            "color=%23ggg",
            "color=rgb(1,2,3)",
            "color=redd",
            "unknown=1",
        ] {
            assert_eq!(c(bad).map_err(|p| p.status()), Err(400), "{bad}");
        }
    }

    #[test]
    fn values_are_grouped_and_etags_follow_version_label_and_color() {
        assert_eq!(group(0), "0");
        assert_eq!(group(-1234567), "-1,234,567");
        assert_eq!(group(9_007_199_254_740_991), "9,007,199,254,740,991");
        assert_eq!(group(-9_007_199_254_740_991), "-9,007,199,254,740,991");
        let a = Badge::parse("label=a").unwrap();
        let b = Badge::parse("label=b").unwrap();
        assert_ne!(a.etag(1), a.etag(2));
        assert_ne!(a.etag(1), b.etag(1));
        assert_eq!(a.etag(1), a.etag(1));
        assert!(not_modified(&a.etag(1), &a.etag(1)));
        assert!(not_modified(&format!("\"x\", W/{}", a.etag(1)), &a.etag(1)));
        assert!(not_modified("*", &a.etag(1)));
        assert!(!not_modified(&a.etag(2), &a.etag(1)));
        assert!(!not_modified("", &a.etag(1)));
    }
}
