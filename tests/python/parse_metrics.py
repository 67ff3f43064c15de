"""Parses a /metrics scrape with the Prometheus project's own parsers (prometheus_client) and
prints every sample as a JSON line: [name, labels, value]. Exits non-zero if the text does not
parse. Usage: parse_metrics.py FILE prometheus|openmetrics"""

import json
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics
from prometheus_client.parser import text_string_to_metric_families as prometheus

text = open(sys.argv[1], encoding="utf-8").read()
parse = openmetrics if sys.argv[2] == "openmetrics" else prometheus
names = set()
for family in parse(text):
    if family.name in names:
        sys.exit(f"metric family {family.name} appears twice")
    names.add(family.name)
    if not family.documentation:
        sys.exit(f"metric family {family.name} has no help text")
    for sample in family.samples:
        print(json.dumps([sample.name, sample.labels, sample.value]))
