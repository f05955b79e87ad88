"""Step 6, the results: one :class:`PhotoResult` per photo from what the device published,
``results.jsonl``, and the model package the device downloaded."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from device_contract.messages import Key
from device_sim.run_record import original_input_name
from main_job.outdir import write_atomically


@dataclass
class PhotoResult:
    photo: str
    source: Path
    top: list[dict[str, Any]] = field(default_factory=list)
    latency_ms: float | None = None
    error: str | None = None  # it failed: the device's reason, or that no result came
    skipped: str | None = None  # never sent to the device: why (not a supported type)

    def as_json(self) -> dict[str, Any]:
        return {
            "photo": self.photo,
            "source": str(self.source),
            "top": self.top,
            "latency_ms": self.latency_ms,
            "error": self.error,
            "skipped": self.skipped,
        }


def photo_results(staged: dict[str, Path], messages: list[dict[str, Any]]) -> list[PhotoResult]:
    """Each staged photo (name -> source) with the device's message for it, or why none."""
    by_name: dict[str, dict[str, Any]] = {}
    for message in messages:
        payload = message.get("payload")
        if isinstance(payload, dict) and isinstance(payload.get(Key.INPUT), str):
            by_name[original_input_name(payload[Key.INPUT])] = payload
    results = []
    for name, source in staged.items():
        result = PhotoResult(name, source)
        payload = by_name.get(name)
        if payload is None:
            result.error = "no result from the device"
        elif Key.ERROR in payload:
            result.error = str(payload[Key.ERROR])
        else:
            result.top = list(payload.get(Key.TOP, []))[:3]
            result.latency_ms = payload.get(Key.LATENCY_MS)
        results.append(result)
    return results


def write_results(target: Path, results: list[PhotoResult]) -> None:
    """``results.jsonl``: one JSON object per photo, written by rename."""
    write_atomically(
        target, "".join(json.dumps(r.as_json(), sort_keys=True) + "\n" for r in results)
    )


def copy_package(root: Path, target: Path) -> Path | None:
    """The model package zip the device downloaded (the packaging handler's output)."""
    zips = sorted((root / "packages" / "artifacts").glob("*.Model/*/*.zip"))
    if not zips:
        return None
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    shutil.copyfile(zips[0], target / zips[0].name)
    return target / zips[0].name
