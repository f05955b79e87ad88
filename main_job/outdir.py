"""The output folder: which folders a run may fill (and replace things in), and preparing it."""

from __future__ import annotations

import shutil
from pathlib import Path

from main_job.errors import MainJobError

OUT_MARKER = ".main-job-out"
# What a run replaces or removes inside --out; the marker says the job made the folder.
REPLACED = ("photos", "model", "package", "cdk.out", "device", "results.jsonl", "report.html")


def out_problem(out: Path, images: Path | None = None, model: Path | None = None) -> str | None:
    """Why ``out`` must not be the output folder (a run replaces :data:`REPLACED` in it); None
    when it may. ``device_sim``'s :func:`~device_sim.device.root_problem` decides, with the
    main job's own marker :data:`OUT_MARKER` (which :func:`prepare_out` writes)."""
    from device_sim.device import root_problem

    resolved = out.resolve()
    problem = root_problem(
        out,
        marker=OUT_MARKER,
        made_by="the main job",
        a_run=f"a run replaces {', '.join(REPLACED)} in it",
        example="out",
    )
    if problem is None and images is not None:
        source = images.resolve()
        if source == resolved or resolved in source.parents:
            problem = f"--images {images} is inside --out (a run replaces what is in --out)"
        elif source in resolved.parents:
            problem = f"it is inside --images {images}; give a folder outside it"
    if problem is None and model is not None:
        source = model.resolve()
        if source == resolved or resolved in source.parents:
            problem = f"--model {model} is inside --out (a run replaces what is in --out)"
        elif source.is_dir() and source in resolved.parents:
            problem = f"it is inside --model {model}; the job would pack its own output"
    return problem


def prepare_out(out: Path, images: Path | None = None, model: Path | None = None) -> None:
    """Check ``out`` (:func:`out_problem`), create it with its marker, and remove the previous
    run's results and report so a failed run never leaves them looking current. The check
    comes first: the marker is what makes a folder acceptable, so writing it first would make
    any folder acceptable."""
    problem = out_problem(out, images, model)
    if problem is not None:
        raise MainJobError(f"--out {out}: {problem}")
    out.mkdir(parents=True, exist_ok=True)
    (out / OUT_MARKER).write_text(
        "made by python -m main_job; its next run replaces its contents\n"
    )
    for name in ("results.jsonl", "report.html"):
        (out / name).unlink(missing_ok=True)


def write_atomically(target: Path, text: str) -> None:
    """``text`` into ``target`` by rename: no reader ever sees half a file."""
    scratch = target.with_name(f".{target.name}.tmp")
    scratch.write_text(text, encoding="utf-8")
    scratch.replace(target)


def replace_tree(source: Path, target: Path) -> None:
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target)
