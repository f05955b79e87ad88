"""Whether a cloud assembly (``cdk.out``) is what the last synth made: a stamp the app writes.

A synth that fails (a configuration error, a bug) leaves the folder as the previous synth
wrote it: the CDK CLI runs the app, which writes into ``CDK_OUTDIR`` only when it gets to
``app.synth()`` (aws-cdk-lib cx-api ``OUTDIR_ENV``). ``device_sim`` and ``rollout.promote``
would then read the earlier templates without a word. So ``app.py`` writes
``edge-ai-synth.json`` into the folder: ``running`` before it builds anything, ``failed`` with
the error when it stops on one, ``complete`` (with the digest of the ``cdk.json`` it read)
after ``app.synth()``. Readers call :func:`problem`.

Standard library only: ``rollout.promote`` and ``device_sim`` read it without the CDK.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

STAMP = "edge-ai-synth.json"
RUNNING, FAILED, COMPLETE = "running", "failed", "complete"


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def write(outdir: Path, status: str, *, cdk_json: Path | None = None, error: str = "") -> None:
    """Record ``status`` in ``outdir`` (atomically: a reader never sees half a stamp)."""
    outdir.mkdir(parents=True, exist_ok=True)
    stamp: dict[str, Any] = {"status": status}
    if error:
        stamp["error"] = error
    if cdk_json is not None:
        stamp["cdk_json"] = str(cdk_json.resolve())
        stamp["cdk_json_sha256"] = _digest(cdk_json)
    scratch = outdir / f".{STAMP}.{os.getpid()}"
    scratch.write_text(json.dumps(stamp, indent=2) + "\n")
    os.replace(scratch, outdir / STAMP)


def problem(assembly: Path, *, check_cdk_json: bool = True) -> str | None:
    """Why ``assembly`` should not be used as it is, in words a user can act on; None when it
    can (or when it has no stamp: made by an earlier version, or by a test's own synth)."""
    if assembly.exists() and not assembly.is_dir():
        return f"{assembly} is a file, not a cloud assembly folder (cdk.out)"
    try:
        stamp = json.loads((assembly / STAMP).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        return f"{assembly / STAMP} is unreadable ({error}): synthesize again (cdk synth)"
    status = stamp.get("status") if isinstance(stamp, dict) else None
    if status == FAILED:
        return (
            f"the last synth into {assembly} failed ({stamp.get('error') or 'no error recorded'}); "
            "any templates there are an earlier synth's: fix that and synthesize again (cdk synth)"
        )
    if status != COMPLETE:
        return (
            f"the last synth into {assembly} did not finish; any templates there may be an "
            "earlier synth's: synthesize again (cdk synth)"
        )
    recorded = stamp.get("cdk_json")
    changed = (
        check_cdk_json
        and isinstance(recorded, str)
        and Path(recorded).is_file()
        and _digest(Path(recorded)) != stamp.get("cdk_json_sha256")
    )
    if changed:
        return (
            f"{recorded} changed since {assembly} was synthesized: synthesize again "
            "(cdk synth) so that the templates follow it"
        )
    return None
