"""What the main job shows: a table of the photos' top-3, the device's messages as a subscriber
sees them (``edge_follow``'s rendering), and a self-contained HTML report."""

from __future__ import annotations

import base64
import datetime
import html
import io
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from device_contract import topics
from edge_follow.render import printable, render, topic_filter, topic_matches
from main_job.results import PhotoResult

TOPIC_PREFIX = topics.DEFAULT_TOPIC_PREFIX  # the stage's default prefix (device_contract)
THUMBNAIL = 224


def _top3(result: PhotoResult) -> list[str]:
    return [f"{t['label']} {float(t['score']):.3f}" for t in result.top[:3]]


def table(results: Sequence[PhotoResult]) -> str:
    """One row per photo: name, top-3 labels with scores, latency (or the failure)."""
    rows = [("photo", "1st", "2nd", "3rd", "latency")]
    for result in results:
        # names, labels and errors may hold newlines or escapes: escaped, one row stays one line
        photo = printable(result.photo)
        if result.error is not None:
            rows.append((photo, f"FAILED: {printable(result.error)}", "", "", ""))
            continue
        top = [printable(cell) for cell in [*_top3(result), "", "", ""][:3]]
        latency = f"{result.latency_ms:.1f} ms" if result.latency_ms is not None else "?"
        rows.append((photo, top[0], top[1], top[2], latency))
    widths = [max(len(row[i]) for row in rows if not row[1].startswith("FAILED")) for i in range(5)]
    lines = []
    for index, row in enumerate(rows):
        if row[1].startswith("FAILED"):
            lines.append(f"{row[0].ljust(widths[0])}  {row[1]}")
        else:
            lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def subscriber_lines(messages: Iterable[dict[str, Any]]) -> list[str]:
    """The published messages as ``python -m edge_follow`` prints them for a subscriber to
    :func:`device_contract.topics.subscription_filter` of the default prefix."""
    wanted = topic_filter(TOPIC_PREFIX)
    lines = []
    for message in messages:
        topic = str(message.get("topic", ""))
        if not topic_matches(wanted, topic):
            continue
        payload = message.get("payload")
        raw = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        received = None
        if isinstance(message.get("time"), (int, float)):
            received = datetime.datetime.fromtimestamp(
                float(message["time"]), datetime.timezone.utc
            ).isoformat(timespec="milliseconds")
        lines.append(render(TOPIC_PREFIX, topic, raw, as_json=False, received=received).text)
    return lines


def thumbnail_data_uri(path: Path) -> str | None:
    """A JPEG thumbnail as a ``data:`` URI; None when the file is not an image Pillow reads."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.thumbnail((THUMBNAIL, THUMBNAIL))
            buffer = io.BytesIO()
            image.convert("RGB").save(buffer, "JPEG", quality=85)
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
        # DecompressionBombError (a header claiming over 2 x Image.MAX_IMAGE_PIXELS) is neither
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
h1 { font-size: 1.4rem; } p.note { color: #555; }
.grid { display: flex; flex-wrap: wrap; gap: 1.2rem; }
.card { width: 250px; border: 1px solid #ddd; border-radius: 8px; padding: 12px; }
.card img { width: 224px; height: 224px; object-fit: contain; background: #f4f4f4; }
.name { font-weight: 600; margin: 6px 0; word-break: break-all; }
.row { display: flex; align-items: center; gap: 6px; font-size: 0.9rem; margin: 3px 0; }
.bar { height: 8px; background: #3b82f6; border-radius: 4px; }
.label { flex: 1; } .score { width: 3.2rem; text-align: right; color: #555; }
.error { color: #b91c1c; } .latency { color: #777; font-size: 0.8rem; }
.missing { width: 224px; height: 224px; display: flex; align-items: center;
  justify-content: center; background: #fee2e2; color: #b91c1c; }
"""


def write_report(target: Path, results: Sequence[PhotoResult], *, title: str) -> Path:
    """``report.html``: one card per photo, its thumbnail embedded, top-3 with score bars."""
    cards = []
    for result in results:
        uri = thumbnail_data_uri(result.source)
        picture = (
            f'<img alt="{html.escape(result.photo)}" src="{uri}">'
            if uri
            else '<div class="missing">no thumbnail</div>'
        )
        if result.error is not None:
            body = f'<div class="error">failed: {html.escape(result.error)}</div>'
        else:
            rows = []
            for entry in result.top[:3]:
                score = float(entry["score"])
                rows.append(
                    '<div class="row"><span class="label">'
                    f"{html.escape(str(entry['label']))}</span>"
                    f'<span class="bar" style="width:{max(2, round(score * 80))}px"></span>'
                    f'<span class="score">{score:.3f}</span></div>'
                )
            latency = (
                f'<div class="latency">{result.latency_ms:.1f} ms on the device</div>'
                if result.latency_ms is not None
                else ""
            )
            body = "".join(rows) + latency
        cards.append(
            f'<div class="card">{picture}<div class="name">{html.escape(result.photo)}</div>'
            f"{body}</div>"
        )
    document = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        '<p class="note">EfficientNet-Lite0 (ImageNet) packaged by the packaging custom '
        "resource, deployed with the synthesized dev stage's recipes, run by the inference "
        "component under ONNX Runtime on the simulated core device. Top 3 per photo.</p>"
        f'<div class="grid">{"".join(cards)}</div></body></html>\n'
    )
    scratch = target.with_name(f".{target.name}.tmp")  # renamed into place: never half a report
    scratch.write_text(document, encoding="utf-8")
    scratch.replace(target)
    return target
