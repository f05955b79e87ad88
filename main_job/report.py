"""What the main job shows: a table of the photos' top-3, the device's messages as a subscriber
sees them (``edge_follow``'s rendering), and a self-contained HTML report."""

from __future__ import annotations

import base64
import datetime
import html
import io
import json
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from device_contract import topics
from device_contract.messages import Key
from device_sim.run_record import original_input_name
from edge_follow.render import printable, render, topic_filter, topic_matches
from main_job.fleet import FleetView, cloudwatch_lines, metrics_lines
from main_job.int8 import Int8View, int8_lines
from main_job.results import PhotoResult

TOPIC_PREFIX = topics.DEFAULT_TOPIC_PREFIX  # the stage's default prefix (device_contract)
THUMBNAIL = 224
DEFAULT_NOTE = (
    "EfficientNet-Lite0 (ImageNet) packaged by the packaging custom resource, deployed with the "
    "synthesized dev stage's recipes, run by the inference component under ONNX Runtime on the "
    "simulated core device. Top 3 per photo."
)


def _top3(result: PhotoResult) -> list[str]:
    return [f"{t['label']} {float(t['score']):.3f}" for t in result.top[:3]]


NAME_COLUMNS = 40  # a longer photo name is shortened in the middle (the full one is in the HTML)


def width(text: str) -> int:
    """Terminal columns ``text`` takes: East Asian wide and fullwidth characters take two,
    combining marks none (Unicode Standard Annex #11, as ``unicodedata`` reports it)."""
    return sum(
        0 if unicodedata.combining(char) else 2 if unicodedata.east_asian_width(char) in "WF" else 1
        for char in text
    )


def pad(text: str, columns: int) -> str:
    return text + " " * max(0, columns - width(text))


def shorten(text: str, columns: int) -> str:
    """``text`` in at most ``columns`` terminal columns, its middle replaced by ``...``."""
    if width(text) <= columns:
        return text
    keep = columns - 3
    head, tail = "", ""
    for char in text:  # the head gets the first half of the columns
        if width(head + char) > (keep + 1) // 2:
            break
        head += char
    for char in reversed(text):
        if width(head) + width(char + tail) > keep:
            break
        tail = char + tail
    return f"{head}...{tail}"


def table(results: Sequence[PhotoResult]) -> str:
    """One row per photo: name, top-3 labels with scores, latency; or why it failed or was
    skipped. Columns line up in a terminal whatever the names hold."""
    rows = [("photo", "1st", "2nd", "3rd", "latency")]
    notes: dict[int, str] = {}
    for result in results:
        # names, labels and errors may hold newlines or escapes: escaped, one row stays one line
        photo = shorten(printable(result.photo), NAME_COLUMNS)
        if result.skipped is not None:
            notes[len(rows)] = f"skipped: {printable(result.skipped)}"
        elif result.error is not None:
            notes[len(rows)] = f"FAILED: {printable(result.error)}"
        top = [printable(cell) for cell in [*_top3(result), "", "", ""][:3]]
        latency = f"{result.latency_ms:.1f} ms" if result.latency_ms is not None else "?"
        rows.append((photo, top[0], top[1], top[2], latency))
    widths = [
        max(width(row[i]) for n, row in enumerate(rows) if i == 0 or n not in notes)
        for i in range(5)
    ]
    lines = []
    for index, row in enumerate(rows):
        if index in notes:
            lines.append(f"{pad(row[0], widths[0])}  {notes[index]}")
        else:
            lines.append("  ".join(pad(cell, widths[i]) for i, cell in enumerate(row)).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def outcome(results: Sequence[PhotoResult], steps_failed: Sequence[str]) -> tuple[int, str]:
    """The main job's exit status and the last line that says why: 0 when every photo sent to
    the device was classified (skipped files do not count against it), 1 otherwise."""
    sent = [r for r in results if r.skipped is None]
    failed = [r for r in sent if r.error is not None]
    skipped = len(results) - len(sent)
    also = f"; {skipped} skipped (not a supported type)" if skipped else ""
    if failed or steps_failed:
        why = []
        if failed:
            why.append(f"{len(failed)} of {len(sent)} photos failed (FAILED in the table)")
        if steps_failed:
            why.append(f"{len(steps_failed)} device step(s) failed (listed above)")
        return 1, f"exit status 1: {' and '.join(why)}{also}"
    return 0, f"exit status 0: all {len(sent)} photos classified on the simulated device{also}"


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
        if isinstance(payload, dict) and isinstance(payload.get(Key.INPUT), str):
            # the user's file name, not the name the simulator dropped it in as (boot1-...)
            payload = {**payload, Key.INPUT: original_input_name(payload[Key.INPUT])}
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
.mono { font-family: monospace; white-space: pre; }
.error { color: #b91c1c; } .skipped { color: #777; } .latency { color: #777; font-size: 0.8rem; }
.missing { width: 224px; height: 224px; display: flex; align-items: center;
  justify-content: center; background: #fee2e2; color: #b91c1c; }
"""


def fleet_section(view: FleetView | None) -> str:
    """The device's metrics windows and its captures, as report sections."""
    if view is None:
        return ""
    parts = ["<h2>Device metrics</h2>"]
    if view.windows:
        kept = (
            f" ({view.kept_on_device} kept on the device until its next connection)"
            if view.kept_on_device
            else ""
        )
        parts.append(f'<p class="note">One window per minute, per device{kept}.</p><ul>')
        parts += [f"<li>{html.escape(line)}</li>" for line in metrics_lines(view)]
        parts.append("</ul>")
    else:
        parts.append('<p class="note">No window closed while the device ran.</p>')
    if view.cloudwatch_root is not None:
        parts.append(
            '<h3>In CloudWatch</h3><p class="note">What the fleet stack\'s IoT rule and '
            f"Lambda put in the simulated account ({html.escape(str(view.cloudwatch_root))}), "
            "per class and ring: what the dashboard and the alarms read.</p><ul>"
        )
        parts += [f"<li>{html.escape(line)}</li>" for line in cloudwatch_lines(view)]
        parts.append("</ul>")
    parts.append("<h2>Captured for retraining</h2>")
    if not view.captured:
        parts.append(
            '<p class="note">Nothing was captured (every top-1 confidence was at or '
            "above CaptureBelowConfidence, no input failed).</p>"
        )
    else:
        parts.append(
            f'<p class="note">Uploaded to the simulated account\'s S3 '
            f"({html.escape(str(view.s3_root))}), each with a JSON sidecar.</p>"
        )
        cards = []
        for item in view.captured:
            uri = thumbnail_data_uri(item.path)
            picture = f'<img alt="{html.escape(item.photo)}" src="{uri}">' if uri else ""
            why = item.reason + (
                f": {item.label} {item.score:.3f}" if item.score is not None else ""
            )
            cards.append(
                f'<div class="card">{picture}<div class="name">{html.escape(item.photo)}</div>'
                f'<div class="latency">{html.escape(why)}</div>'
                f'<div class="latency">{html.escape(item.key)}</div></div>'
            )
        parts.append(f'<div class="grid">{"".join(cards)}</div>')
    return "".join(parts)


def int8_section(view: Int8View | None) -> str:
    """int8 beside FP32: the comparison's lines (sizes, latency, agreement, differences)."""
    if view is None:
        return ""
    lines = "".join(f"<li>{html.escape(line)}</li>" for line in int8_lines(view))
    return (
        '<h2>int8 beside FP32</h2><p class="note">The model an int8 device class would run, '
        "built by the training job's quantization code, and the FP32 model, each run by the "
        "inference component over the same photos.</p>"
        f'<ul class="mono">{lines}</ul>'
    )


def write_report(
    target: Path,
    results: Sequence[PhotoResult],
    *,
    title: str,
    note: str | None = None,
    fleet: FleetView | None = None,
    int8: Int8View | None = None,
) -> Path:
    """``report.html``: one card per photo, its thumbnail embedded, top-3 with score bars;
    then, with ``fleet``, the device's metrics and its captures.
    ``note``: what ran (default: the pretrained EfficientNet-Lite0)."""
    cards = []
    for result in results:
        uri = thumbnail_data_uri(result.source)
        picture = (
            f'<img alt="{html.escape(result.photo)}" src="{uri}">'
            if uri
            else '<div class="missing">no thumbnail</div>'
        )
        if result.skipped is not None:
            body = f'<div class="skipped">skipped: {html.escape(result.skipped)}</div>'
        elif result.error is not None:
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
        f'<p class="note">{html.escape(note or DEFAULT_NOTE)}</p>'
        f'<div class="grid">{"".join(cards)}</div>{int8_section(int8)}{fleet_section(fleet)}'
        "</body></html>\n"
    )
    scratch = target.with_name(f".{target.name}.tmp")  # renamed into place: never half a report
    scratch.write_text(document, encoding="utf-8")
    scratch.replace(target)
    return target
