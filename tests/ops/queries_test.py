"""The runbook's queries (ops/queries/*.sql), checked offline on every test run:

- each parses as SQL (sqlglot, ClickHouse dialect: the Analytics Engine SQL API speaks a subset);
- each reads the request dataset only, and only columns the edge writes (src/core/metrics.rs:
  index1, blob1-blob7, double1-double4, plus timestamp and _sample_interval);
- each weights by _sample_interval and never uses COUNT(), which would count stored points
  instead of requests once the platform samples;
- docs/OPERATIONS.md names every file, names no file that does not exist, and holds no SQL of
  its own (every query it runs is one of these files).

    .venv/bin/python -m unittest tests/ops/queries_test.py
"""
import pathlib
import re
import unittest

import sqlglot
from sqlglot import exp

ROOT = pathlib.Path(__file__).resolve().parents[2]
QUERIES = sorted((ROOT / "ops" / "queries").glob("*.sql"))
RUNBOOK = ROOT / "docs" / "OPERATIONS.md"
DATASET = "number_acidizer_requests"
COLUMNS = {"timestamp", "_sample_interval", "index1"} | {f"blob{i}" for i in range(1, 8)} | {
    f"double{i}" for i in range(1, 5)
}


class Queries(unittest.TestCase):
    def test_there_are_queries(self):
        self.assertGreaterEqual(len(QUERIES), 5)

    def test_each_parses_and_reads_only_known_columns(self):
        for path in QUERIES:
            with self.subTest(query=path.name):
                sql = path.read_text()
                tree = sqlglot.parse_one(sql, read="clickhouse")
                self.assertIsInstance(tree, exp.Select)
                tables = {t.name for t in tree.find_all(exp.Table)}
                self.assertEqual(tables, {DATASET})
                aliases = {a.alias for a in tree.find_all(exp.Alias)}
                columns = {c.name for c in tree.find_all(exp.Column)} - aliases
                self.assertLessEqual(columns, COLUMNS, f"unknown columns in {path.name}")

    def test_each_accounts_for_sampling(self):
        for path in QUERIES:
            with self.subTest(query=path.name):
                sql = path.read_text()
                self.assertIn("_sample_interval", sql)
                self.assertNotRegex(sql.upper(), r"\bCOUNT\s*\(")

    def test_the_runbook_runs_exactly_these(self):
        text = RUNBOOK.read_text()
        named = set(re.findall(r"ops/queries/([a-z0-9-]+\.sql)", text))
        files = {p.name for p in QUERIES}
        self.assertEqual(files - named, set(), "queries the runbook does not use")
        self.assertEqual(named - files, set(), "the runbook names queries that do not exist")
        self.assertNotRegex(text, r"```sql", "SQL in the runbook must be a checked-in file")

    def test_a_broken_query_is_caught(self):
        with self.assertRaises(sqlglot.errors.ParseError):
            sqlglot.parse_one("SELECT SUM(_sample_interval FROM x", read="clickhouse")


if __name__ == "__main__":
    unittest.main()
