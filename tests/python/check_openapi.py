"""Checks the admin API's OpenAPI document and the answers a test got from every path.

Usage: check_openapi.py OPENAPI.json CALLS.jsonl
The document must be valid OpenAPI (openapi-spec-validator); every documented operation must
have been called; every answer's status must be one its operation documents, and a JSON
answer must match that status's schema (JSON Schema 2020-12, as OpenAPI 3.1 says)."""

import json
import sys

import jsonschema
from openapi_spec_validator import validate

doc = json.load(open(sys.argv[1], encoding="utf-8"))
validate(doc)
calls = [json.loads(line) for line in open(sys.argv[2], encoding="utf-8") if line.strip()]
methods = ("get", "post", "put", "patch", "delete")
documented = {(m.upper(), p) for p, item in doc["paths"].items() for m in item if m in methods}
called = {(c["method"], c["template"]) for c in calls}
failures = [f"documented but never called: {m} {p}" for m, p in sorted(documented - called)]
failures += [f"called but not documented: {m} {p}" for m, p in sorted(called - documented)]
for c in calls:
    op = doc["paths"].get(c["template"], {}).get(c["method"].lower())
    if op is None:
        continue
    answer = op["responses"].get(str(c["status"]))
    where = f'{c["method"]} {c["path"]} -> {c["status"]}'
    if answer is None:
        failures.append(f"{where}: status not documented ({sorted(op['responses'])}): {c['body'][:300]}")
        continue
    content = answer.get("content", {}).get("application/json")
    if content is None:
        continue
    schema = dict(content["schema"])
    schema["components"] = doc["components"]
    try:
        jsonschema.validate(json.loads(c["body"]), schema, cls=jsonschema.Draft202012Validator)
    except (jsonschema.ValidationError, json.JSONDecodeError) as e:
        failures.append(f"{where}: the answer does not match its schema: {str(e)[:500]}")
if failures:
    sys.exit("\n".join(failures))
print(f"{len(documented)} operations, {len(calls)} calls: ok")
