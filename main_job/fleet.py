"""Step 6b, watch the fleet: what the simulated device reported about itself and what it
captured for retraining (issue 15).

* **Metrics**: the device's per-window numbers (``device_contract.messages.Metrics``): the ones
  it published on its metrics topic, and the ones still kept on the device (a window is
  published once it closes; the main job's device stops within the first minute, so its
  window is written at the stop and goes out at the next connection).
* **Captures**: what the inference component uploaded to the simulated account's S3 under
  ``captures/<stage>/<class>/<thing>/...`` (``device_contract/captures.py``), read from
  ``<device root>/cloud/s3/<bucket>/``, where the simulator writes it; each with the reason
  its sidecar gives.
* **CloudWatch**: what the fleet stack's IoT rule and Lambda made of the published windows in
  the simulated account, read from ``<device root>/cloud/cloudwatch/<namespace>/`` (one JSON
  line per datum, ``device_sim/cloud/cloudwatch.py``): each metric's sum for the device's
  class and ring, and the drift PSI of the period (``device_contract.drift``) when the model
  has a baseline.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from device_contract import captures, drift
from device_contract import fleet_metrics as fm
from device_contract.messages import confidence_buckets
from device_sim.run_record import original_input_name


@dataclass(frozen=True)
class Captured:
    photo: str  # the user's file name
    reason: str  # low-confidence, failed, sample
    score: float | None  # top-1 confidence (None for a failed input)
    label: str | None
    key: str  # the S3 URI, s3://<bucket>/<key>
    path: Path  # the uploaded bytes, as the simulated S3 holds them


@dataclass
class FleetView:
    windows: list[dict[str, Any]] = field(default_factory=list)  # Metrics, as dicts
    kept_on_device: int = 0  # of them, not yet published
    captured: list[Captured] = field(default_factory=list)
    s3_root: Path | None = None
    refused: list[str] = field(default_factory=list)  # uploads S3 refused
    #: the simulated CloudWatch: (class, ring) -> metric -> sum of its datums
    cloudwatch: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)
    cloudwatch_root: Path | None = None
    #: (class, ring) -> drift PSI over everything published (None: no baseline, no results)
    drift: dict[tuple[str, str], float | None] = field(default_factory=dict)

    @property
    def capture_folder(self) -> Path | None:
        """The folder that holds the captures' objects, for the user to open."""
        if not self.captured:
            return None
        return self.captured[0].path.parents[3]  # .../captures/<stage>/<class>/<thing>


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def fleet_view(
    root: Path, published_metrics: list[dict[str, Any]], uploads: list[Any]
) -> FleetView:
    """What ``root`` (the device root) shows about the fleet; ``published_metrics``: the metrics
    topic's messages (device_sim ``Report.metrics``); ``uploads``: its ``Report.uploads``."""
    view = FleetView()
    for message in published_metrics:
        payload = message.get("payload")
        if isinstance(payload, dict):
            view.windows.append(payload)
    for record in sorted((root / "work").glob("*/state/metrics/*.json")):
        kept = _json(record)
        if isinstance(kept, dict) and isinstance(kept.get("message"), dict):
            view.windows.append(kept["message"])
            view.kept_on_device += 1
    view.refused = [f"{u.key}: {u.status} {u.code}" for u in uploads if u.status != 200]
    read_cloudwatch(root / "cloud" / "cloudwatch", view)
    s3 = root / "cloud" / "s3"
    if not s3.is_dir():
        return view
    view.s3_root = s3
    for sidecar in sorted(s3.glob(f"*/{captures.ROOT}**/*{captures.SIDECAR_SUFFIX}")):
        bucket, key = str(sidecar.relative_to(s3)).split("/", 1)
        if captures.parse_key(key) is None:
            continue
        record = _json(sidecar)
        data = sidecar.with_name(sidecar.name[: -len(captures.SIDECAR_SUFFIX)])
        if not isinstance(record, dict) or not data.is_file():
            continue
        message = record.get("message") or {}
        top = message.get("top") or []
        view.captured.append(
            Captured(
                photo=original_input_name(str(record.get("input", data.name))),
                reason=str(record.get("reason", "?")),
                score=float(top[0]["score"]) if top else None,
                label=str(top[0]["label"]) if top else None,
                key=f"s3://{bucket}/{key[: -len(captures.SIDECAR_SUFFIX)]}",
                path=data,
            )
        )
    return view


def read_cloudwatch(folder: Path, view: FleetView) -> None:
    """Sum the simulated CloudWatch's datums per class and ring (the alarms' dimensions)."""
    names = confidence_buckets()
    buckets: dict[tuple[str, str], dict[str, list[float]]] = {}
    for path in sorted(folder.rglob("*.jsonl")) if folder.is_dir() else []:
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                datum = json.loads(line)
                dims = datum["Dimensions"]
                ring = (dims[fm.CLASS_DIMENSION], dims[fm.RING_DIMENSION])
                value = float(datum["Value"])
                name = str(datum.get("MetricName", path.stem))
                bucket = names.index(dims[drift.BUCKET_DIMENSION]) if len(dims) == 3 else None
            except (ValueError, KeyError, TypeError):
                continue
            view.cloudwatch_root = path.parent
            if bucket is not None:
                pair = buckets.setdefault(
                    ring, {drift.OBSERVED: [0.0] * len(names), drift.EXPECTED: [0.0] * len(names)}
                )
                if name in pair:
                    pair[name][bucket] += value
            elif len(dims) == 2:
                sums = view.cloudwatch.setdefault(ring, {})
                sums[name] = sums.get(name, 0.0) + value
    for ring in view.cloudwatch:
        found = buckets.get(ring)
        view.drift[ring] = (
            drift.psi(found[drift.OBSERVED], found[drift.EXPECTED]) if found else None
        )


def cloudwatch_lines(view: FleetView) -> list[str]:
    """Per class and ring: what reached the simulated CloudWatch, and the drift PSI."""
    lines = []
    shown = (fm.PROCESSED, fm.FAILED, fm.LOW_CONFIDENCE, fm.DEVICES_REPORTING, fm.CAPTURED)
    for (device_class, ring), sums in sorted(view.cloudwatch.items()):
        numbers = ", ".join(f"{name} {sums.get(name, 0):g}" for name in shown)
        psi = view.drift.get((device_class, ring))
        drifted = (
            f"drift PSI {psi:.3f} against the training baseline"
            if psi is not None
            else "no drift: the model has no training baseline here"
        )
        lines.append(f"{device_class} {ring}: {numbers}; {drifted}")
    return lines


def metrics_lines(view: FleetView) -> list[str]:
    """One line per window, as the main job prints them."""
    lines = []
    for window in view.windows:
        latency = window.get("latency") or {}
        buckets = ", ".join(f"{c['name']}: {c['count']}" for c in window.get("confidence", []))
        failed = sum(int(c.get("count", 0)) for c in window.get("failed", []))
        lines.append(
            f"{window.get('window_start', '?')} {window.get('thing', '?')}: "
            f"{window.get('processed', 0)} processed, {failed} failed, latency p50 "
            f"{latency.get('p50_ms', 0):.1f} / p95 {latency.get('p95_ms', 0):.1f} / max "
            f"{latency.get('max_ms', 0):.1f} ms, top-1 confidence [{buckets}], "
            f"{window.get('captured', 0)} captured"
        )
    return lines


def capture_lines(view: FleetView) -> list[str]:
    lines = []
    for item in view.captured:
        why = item.reason
        if item.score is not None:
            why += f" (top-1 {item.label} {item.score:.3f})"
        lines.append(f"{item.photo}: {why} -> {item.key}")
    return lines


def retrain_commands(view: FleetView, stage: str) -> list[str]:
    """What the user types next: label the captures, make a channel, retrain."""
    folder = view.capture_folder
    if folder is None:
        return []
    return [
        f"label the captured photos (in {folder}) into labelled/<class>/, then:",
        "  python -m capture_channel --folders labelled --base <your current training channel>"
        f" --out channel-1 --stage {stage}",
        "  (--base merges the current channel in: retraining on the captures alone would lose "
        "the rest)",
        "  (it prints the upload and `cdk deploy -c training_data_uri=...` that retrain on them)",
    ]
