"""Parses every Terraform module and example under the given directory with an HCL parser
(the `hcl2` module, which checkov installs) and checks that each variable has a type and a description and is used, that
each output has a description, and that every module a configuration calls gets only
variables that module declares, and all of those without a default.

Usage: python3 check_terraform.py <terraform dir>
"""

import pathlib
import re
import sys

import hcl2


def value(attribute):
    """An attribute's value: older parsers (checkov's bc-python-hcl2) wrap each in a list."""
    if isinstance(attribute, list) and len(attribute) == 1:
        return attribute[0]
    return attribute


def attributes(body):
    return {k: v for k, v in body.items() if not k.startswith("__")}


def parse(directory):
    blocks = {"variable": {}, "output": {}, "module": {}}
    text = ""
    for path in sorted(directory.glob("*.tf")):
        source = path.read_text()
        text += source
        with path.open() as f:
            parsed = hcl2.load(f)
        for kind in blocks:
            for block in parsed.get(kind, []):
                for name, body in block.items():
                    blocks[kind][name] = (path.name, attributes(body))
    # Templates are part of a module's code: what they read counts as use.
    for template in sorted(directory.glob("**/*.tftpl")):
        text += template.read_text()
    return blocks, text


def main():
    root = pathlib.Path(sys.argv[1])
    configurations = sorted(
        {p.parent for p in root.glob("**/*.tf") if ".terraform" not in p.parts}
    )
    problems = []
    declared = {}
    for directory in configurations:
        blocks, text = parse(directory)
        declared[directory.resolve()] = blocks["variable"]
        where = directory.relative_to(root)
        for name, (file, body) in blocks["variable"].items():
            if not str(value(body.get("description", ""))).strip():
                problems.append(f"{where}/{file}: variable {name} has no description")
            if "type" not in body:
                problems.append(f"{where}/{file}: variable {name} has no type")
            if not re.search(r"\bvar\." + re.escape(name) + r"\b", text):
                problems.append(f"{where}/{file}: variable {name} is never used")
        for name, (file, body) in blocks["output"].items():
            if not str(value(body.get("description", ""))).strip():
                problems.append(f"{where}/{file}: output {name} has no description")
    for directory in configurations:
        blocks, _ = parse(directory)
        where = directory.relative_to(root)
        for name, (file, body) in blocks["module"].items():
            source = str(value(body.get("source", "")))
            if not source.startswith("."):
                continue
            called = (directory / source).resolve()
            variables = declared.get(called)
            if variables is None:
                problems.append(f"{where}/{file}: module {name} calls {source}, which is not a module here")
                continue
            arguments = set(body) - {"source", "providers", "depends_on", "count", "for_each", "version"}
            for argument in sorted(arguments - set(variables)):
                problems.append(f"{where}/{file}: module {name} sets {argument}, which {source} does not declare")
            for variable, (_, declaration) in sorted(variables.items()):
                if "default" not in declaration and variable not in arguments:
                    problems.append(f"{where}/{file}: module {name} does not set {variable}, which has no default")
    if problems:
        print("\n".join(problems))
        sys.exit(1)
    print(f"ok: {len(configurations)} configurations, {sum(len(v) for v in declared.values())} variables")


if __name__ == "__main__":
    main()
