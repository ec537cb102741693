//! The audit export (`GET /api/audit/export`): its query, and its pages as NDJSON (the leaf
//! bytes) or CSV.

use super::leaf::leaf_bytes;
use super::MAX;
use crate::core::audit::AuditEntry;
use crate::core::problem::Problem;
use crate::core::query;

/// `GET /api/audit/export?format=ndjson|csv&after=&until=`: the entries with versions in
/// `after+1..=until` (`until` defaults to the tree size when the export starts).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExportQuery {
    pub csv: bool,
    pub after: u64,
    pub until: Option<u64>,
}

/// Entries per page the edge asks the object for while streaming an export.
pub const EXPORT_PAGE: u64 = 1000;

impl ExportQuery {
    /// Parses the query string (without `?`).
    pub fn parse(q: &str) -> Result<Self, Problem> {
        let pairs = query::parse(q, &["format", "after", "until"])?;
        let csv = match pairs
            .iter()
            .find(|(n, _)| *n == "format")
            .map(|(_, v)| v.as_str())
        {
            None | Some("ndjson") => false,
            Some("csv") => true,
            Some(other) => {
                return Err(Problem::InvalidQuery(format!(
                    "format must be ndjson or csv; got {:?}.",
                    crate::core::vocab::truncate(other, 40)
                )))
            }
        };
        let after = query::uint(&pairs, "after", 0, MAX, Some(0))?.unwrap_or(0);
        let until = query::uint(&pairs, "until", 0, MAX, None)?;
        if until.is_some_and(|u| after > u) {
            return Err(Problem::InvalidQuery(
                "after must not be greater than until.".into(),
            ));
        }
        Ok(ExportQuery { csv, after, until })
    }

    /// The object's part of an export: one page, `after+1..=until` (edge → object).
    pub fn encode_page(csv: bool, after: u64, until: u64) -> String {
        format!(
            "format={}&after={after}&until={until}",
            if csv { "csv" } else { "ndjson" }
        )
    }
}

/// The header row of a CSV export (RFC 4180, CRLF line ends).
pub const CSV_HEADER: &str = "version,operation,amount,previous_value,value,request_id,at\r\n";

/// One CSV record of an entry. Text cells are quoted when RFC 4180 needs it, and a text cell a
/// spreadsheet could take for a formula (starting with `=`, `+`, `-`, `@`, tab or CR) gets a
/// leading `'`; numbers are written as they are.
pub fn csv_row(e: &AuditEntry) -> String {
    let mut row = format!(
        "{},{},{},{},{},",
        e.version,
        e.operation.as_str(),
        e.amount,
        e.previous_value,
        e.value
    );
    push_csv_text(&mut row, &e.request_id);
    row.push(',');
    push_csv_text(&mut row, &e.at);
    row.push_str("\r\n");
    row
}

fn push_csv_text(out: &mut String, cell: &str) {
    let guarded = matches!(
        cell.chars().next(),
        Some('=' | '+' | '-' | '@' | '\t' | '\r')
    );
    let quoted = cell.contains([',', '"', '\r', '\n']) || guarded;
    if quoted {
        out.push('"');
    }
    if guarded {
        out.push('\'');
    }
    for c in cell.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    if quoted {
        out.push('"');
    }
}

/// One page of an export: NDJSON lines (the leaf bytes) or CSV records.
pub fn export_page(entries: &[AuditEntry], csv: bool) -> String {
    let mut out = String::with_capacity(entries.len() * 170);
    for e in entries {
        if csv {
            out.push_str(&csv_row(e));
        } else {
            out.push_str(std::str::from_utf8(&leaf_bytes(e)).unwrap_or_default());
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ledger::fixtures::{entry, history};
    use crate::core::vocab::Operation;

    #[test]
    fn export_queries_and_pages() {
        assert_eq!(
            ExportQuery::parse("").unwrap(),
            ExportQuery {
                csv: false,
                after: 0,
                until: None
            }
        );
        assert_eq!(
            ExportQuery::parse("format=csv&after=3&until=9").unwrap(),
            ExportQuery {
                csv: true,
                after: 3,
                until: Some(9)
            }
        );
        for bad in [
            "format=xml",
            "after=5&until=4",
            "until=-1",
            "after=x",
            "page=1",
            "format=csv&format=csv",
        ] {
            assert_eq!(ExportQuery::parse(bad).unwrap_err().status(), 400, "{bad}");
        }
        let h = history();
        let nd = export_page(&h, false);
        let lines: Vec<&str> = nd.lines().collect();
        assert_eq!(lines.len(), 5);
        for (line, e) in lines.iter().zip(&h) {
            assert_eq!(line.as_bytes(), leaf_bytes(e).as_slice());
        }
        assert!(nd.ends_with('\n'));
        let csv = export_page(&h[..1], true);
        assert_eq!(csv, "1,increment,5,0,5,key-1,2026-11-29T20:00:00.000Z\r\n");
        assert_eq!(
            ExportQuery::parse(&ExportQuery::encode_page(true, 4, 9)).unwrap(),
            ExportQuery {
                csv: true,
                after: 4,
                until: Some(9)
            }
        );
    }

    #[test]
    fn csv_cells_are_quoted_and_guarded() {
        let mut e = entry(2, Operation::Decrement, 3, 1, -2);
        for (id, cell) in [
            ("-2+3", "\"'-2+3\""),
            ("=cmd|' /C calc'!A0", "\"'=cmd|' /C calc'!A0\""),
            ("@sum", "\"'@sum\""),
            ("a,b", "\"a,b\""),
            ("say \"hi\"", "\"say \"\"hi\"\"\""),
            ("plain-key", "plain-key"),
        ] {
            e.request_id = id.into();
            let row = csv_row(&e);
            assert_eq!(
                row,
                format!("2,decrement,3,1,-2,{cell},2026-11-29T20:00:00.000Z\r\n"),
                "{id}"
            );
        }
        assert_eq!(CSV_HEADER.matches(',').count(), 6);
    }
}
