"""Count the resource types of each synthesized stack: the table in docs/COSTS.md.

    source scripts/env.sh && cdk synth --quiet -c demo_device=true
    python scripts/count_resources.py                  # every cdk.out/assembly-*/*.template.json
    python scripts/count_resources.py A.template.json B.template.json ...   # named templates

Reads the templates only (standard library, nothing is synthesized) and prints one Markdown
table: a row per resource type, a column per stack (the stack's logical name, as in the
assembly's ``manifest.json``, else the file name), and a total row.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path


def stack_names(assembly: Path) -> dict[str, str]:
    """Template file name -> the stack's display name, from the assembly manifest."""
    manifest = assembly / "manifest.json"
    if not manifest.is_file():
        return {}
    names: dict[str, str] = {}
    for artifact in json.loads(manifest.read_text()).get("artifacts", {}).values():
        template = artifact.get("properties", {}).get("templateFile")
        if artifact.get("type") == "aws:cloudformation:stack" and template:
            names[template] = str(artifact.get("displayName") or template)
    return names


def count(template: Path) -> Counter[str]:
    """How many resources of each type the template declares."""
    resources = json.loads(template.read_text()).get("Resources", {})
    return Counter(str(resource["Type"]) for resource in resources.values())


def templates(arguments: list[str]) -> list[Path]:
    if arguments:
        return [Path(argument) for argument in arguments]
    found = sorted(Path("cdk.out").glob("assembly-*/*.template.json"))
    if not found:
        raise SystemExit("no templates under cdk.out/assembly-*/: run `cdk synth` first")
    return found


def table(columns: dict[str, Counter[str]]) -> str:
    types = sorted(set().union(*columns.values()))
    lines = [
        "| resource type | " + " | ".join(columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for name in types:
        cells = [str(counts[name]) if counts[name] else "" for counts in columns.values()]
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    totals = [str(sum(counts.values())) for counts in columns.values()]
    lines.append("| **total** | " + " | ".join(totals) + " |")
    return "\n".join(lines)


def main(arguments: list[str]) -> int:
    columns: dict[str, Counter[str]] = {}
    for template in templates(arguments):
        name = stack_names(template.parent).get(template.name, template.name)
        columns[name] = count(template)
    print(table(columns))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
