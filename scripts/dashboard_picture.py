"""Draw the fleet dashboard as the fleet stack defines it: docs/dashboard.svg.

    python scripts/dashboard_picture.py [ASSEMBLY_DIR]     # default: cdk.out/assembly-dev

Reads the ``AWS::CloudWatch::Dashboard`` of the synthesized ``Fleet`` stack (its
``DashboardBody``: the widgets' grid positions, titles, metrics and alarm lines; CloudWatch
API Reference, "Dashboard Body Structure and Syntax") and lays the widgets out on CloudWatch's
24-column grid. A test keeps the picture equal to what the dev stage synthesizes.
"""

from __future__ import annotations

import html
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PICTURE = ROOT / "docs" / "dashboard.svg"
COLUMN = 40  # px per grid column (24 columns)
ROW = 28  # px per grid row
MAX_LINES = 6


def dashboard_body(template: dict[str, Any]) -> dict[str, Any]:
    """The dashboard's body, references (the region) written ``REF``."""
    (dashboard,) = [
        r for r in template["Resources"].values() if r["Type"] == "AWS::CloudWatch::Dashboard"
    ]
    body = dashboard["Properties"]["DashboardBody"]
    if isinstance(body, dict) and "Fn::Join" in body:
        body = "".join(p if isinstance(p, str) else "REF" for p in body["Fn::Join"][1])
    parsed: dict[str, Any] = json.loads(body)
    return parsed


def _series(properties: dict[str, Any]) -> list[str]:
    names = []
    for metric in properties.get("metrics") or []:
        options = metric[-1] if metric and isinstance(metric[-1], dict) else {}
        if "label" in options:
            names.append(str(options["label"]))
        elif "expression" in options:
            names.append(str(options["expression"])[:60])
        elif len(metric) > 1:
            names.append(str(metric[1]))
    return names


def render(template: dict[str, Any]) -> str:
    widgets = dashboard_body(template)["widgets"]
    height = max(w["y"] + w["height"] for w in widgets) * ROW + 10
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{24 * COLUMN + 10}" height="{height}" '
        'font-family="sans-serif" font-size="11">',
        f'<rect width="{24 * COLUMN + 10}" height="{height}" fill="#f3f4f6"/>',
    ]
    for widget in widgets:
        x, y = widget["x"] * COLUMN + 5, widget["y"] * ROW + 5
        w, h = widget["width"] * COLUMN - 6, widget["height"] * ROW - 6
        props = widget.get("properties", {})
        out.append(f'<rect x="{x}" y="{y}" width="{w}" height="{h}" fill="#fff" stroke="#9ca3af"/>')
        out.append(
            f'<text x="{x + 8}" y="{y + 16}" font-weight="bold">'
            f"{html.escape(str(props.get('title', widget['type'])))}</text>"
        )
        lines = _series(props) if widget["type"] == "metric" else []
        if widget["type"] == "alarm":
            lines = [f"{len(props.get('alarms', []))} alarms: OK / ALARM / INSUFFICIENT_DATA"]
        for annotation in (props.get("annotations") or {}).get("horizontal", []):
            lines.append(f"--- {annotation.get('label', '')} at {annotation.get('value')}")
        shown = lines[:MAX_LINES] + (
            [f"... {len(lines) - MAX_LINES} more"] if len(lines) > MAX_LINES else []
        )
        for n, line in enumerate(shown):
            out.append(
                f'<text x="{x + 12}" y="{y + 34 + 14 * n}" fill="#374151">'
                f"{html.escape(line[:90])}</text>"
            )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main(argv: list[str]) -> int:
    assembly = Path(argv[0]) if argv else ROOT / "cdk.out" / "assembly-dev"
    templates = sorted(assembly.glob("*Fleet*.template.json"))
    if not templates:
        print(f"no Fleet template in {assembly}; run scripts/main.sh or python app.py first")
        return 2
    PICTURE.write_text(render(json.loads(templates[0].read_text())), encoding="utf-8")
    print(f"wrote {PICTURE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
