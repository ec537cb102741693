"""Parses Prometheus text exposition from stdin with prometheus_client's own parser and prints
the families as JSON: {"name": {"type": ..., "help": ..., "samples": [[name, labels, value]]}}.
A malformed exposition makes the parser raise, and this exits non-zero."""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

families = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    families[family.name] = {
        "type": family.type,
        "help": family.documentation,
        "samples": [[s.name, s.labels, s.value] for s in family.samples],
    }
json.dump(families, sys.stdout)
