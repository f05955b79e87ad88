"""What a ``python -m device_sim`` run leaves in its root for the tools that read it
(``edge_follow --local``, the main job): the marker that makes a folder a device root, the
publish log, and the run record (the stage, its topic prefix, and whether the run finished).

Standard library only, so a reader imports it without the simulator.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path
from typing import Any

#: A folder holding this file was made by device_sim (its next run may delete it).
ROOT_MARKER = ".device-sim-root"
#: The run record, rewritten when the run finishes.
RUN_RECORD = "device-sim.json"
#: One JSON line per message the device published: {"topic", "payload", "qos", ...}.
PUBLISHED = Path("mqtt") / "published.jsonl"


# Each boot's inputs are dropped into the component's folder as boot<N>-<name>, so a reboot's
# copy of a photo is a new input and not a duplicate the component already answered.
_STAGED = re.compile(r"boot[0-9]+-(.+)", re.DOTALL)


def staged_input_name(boot: int, name: str) -> str:
    """The name under which boot ``boot`` drops the input ``name``."""
    return f"boot{boot}-{name}"


def original_input_name(staged: str) -> str:
    """The user's file name of a staged input (``boot1-cat.jpg`` -> ``cat.jpg``); a name
    that was not staged by device_sim comes back unchanged."""
    match = _STAGED.fullmatch(staged)
    return match.group(1) if match else staged


@dataclasses.dataclass(frozen=True)
class RunRecord:
    stage: str
    topic_prefix: str | None  # the stage's, from its PredictionsTopic output; None if unknown
    finished: bool = False
    ok: bool | None = None  # set when finished
    published: int | None = None  # messages on the predictions topics, set when finished


def is_device_root(root: Path) -> bool:
    return (root / ROOT_MARKER).is_file()


def write_run_record(root: Path, record: RunRecord) -> None:
    """Written by rename, so a reader sees the old record or the new one, never half."""
    path = root / RUN_RECORD
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(dataclasses.asdict(record), indent=2) + "\n")
    os.replace(partial, path)


def read_run_record(root: Path) -> RunRecord | None:
    """The record of the run that made ``root``; None before the run has written one, or
    when it cannot be read (an older simulator, a damaged file)."""
    try:
        raw: Any = json.loads((root / RUN_RECORD).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("stage"), str):
        return None
    prefix = raw.get("topic_prefix")
    ok, published = raw.get("ok"), raw.get("published")
    return RunRecord(
        stage=raw["stage"],
        topic_prefix=prefix if isinstance(prefix, str) and prefix else None,
        finished=raw.get("finished") is True,
        ok=ok if isinstance(ok, bool) else None,
        published=published if isinstance(published, int) else None,
    )
