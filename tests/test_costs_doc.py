"""docs/COSTS.md's table of what one stage creates stays the templates' truth: each stack's
column equals the resource types of that stack's snapshot template (``dev``; the demo device
from the ``demo`` configuration), the ``AWS::CDK::Metadata`` row aside (the snapshots leave it
out). A construct that adds a resource without the doc moving fails here, naming the row."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SNAPSHOTS = REPO / "tests" / "infra" / "__snapshots__" / "test_snapshots"
METADATA = "AWS::CDK::Metadata"


def documented() -> dict[str, Counter[str]]:
    """stack column ("dev/Fleet") -> resource type -> count, from the doc's table."""
    lines = (REPO / "docs" / "COSTS.md").read_text().splitlines()
    start = next(n for n, line in enumerate(lines) if line.startswith("| resource type |"))
    columns = [c.strip() for c in lines[start].strip("|").split("|")][1:]
    table: dict[str, Counter[str]] = {column: Counter() for column in columns}
    for line in lines[start + 2 :]:
        if not line.startswith("| `"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        kind = cells[0].strip("`")
        for column, cell in zip(columns, cells[1:]):
            if cell and kind != METADATA:
                table[column][kind] = int(cell)
    return table


def synthesized(column: str) -> Counter[str]:
    stage, stack = column.split("/")
    configuration = "demo" if stack == "DemoDevice" else stage
    path = SNAPSHOTS / f"test_templates_match_snapshots[{configuration}][{stage}-{stack}].json"
    resources = json.loads(path.read_text())["Resources"]
    return Counter(r["Type"] for r in resources.values() if r["Type"] != METADATA)


def test_every_stack_column_matches_its_template() -> None:
    table = documented()
    assert set(table) == {
        "dev/Artifacts",
        "dev/DemoDevice",
        "dev/Devices",
        "dev/Fleet",
        "dev/Pipeline",
    }
    for column, counts in table.items():
        assert counts == synthesized(column), (
            f"docs/COSTS.md column {column} differs from its template: regenerate the table "
            "with python scripts/count_resources.py"
        )
