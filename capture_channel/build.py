"""Labelled captures into a training channel: ``<out>/<class>/<image>``, the layout the training
script reads (``training_src/edge_training/data.py``, ``scan_image_folder``).

Two ways a team labels what the fleet captured (``captures/<stage>/<class>/<thing>/...``,
``device_contract/captures.py``):

* **a folder per class**: someone sorted the downloaded captures into ``<dir>/<label>/``
  (sidecars ``*.json`` beside them are ignored);
* **a SageMaker Ground Truth output manifest** (JSON lines) of an image-classification labelling
  job: each line has ``source-ref`` (the image's ``s3://`` URI) and a label attribute whose
  ``<attribute>-metadata`` has ``"type": "groundtruth/image-classification"`` and the label in
  ``class-name`` (SageMaker developer guide, "Labeling job output data", classification job
  output). The images are read from ``--objects`` (``<objects>/<bucket>/<key>``: what
  ``aws s3 sync s3://<bucket> <objects>/<bucket>`` writes, and where the device simulator puts
  its simulated S3), or downloaded with the caller's AWS credentials.

An existing channel (``--base``) can be merged in, so the next model trains on the old data and
the new. Identical images are kept once (SHA-256); one image labelled two ways is left out and
named. Images that do not open are left out and named. The output folder must not exist: nothing
a user already has is overwritten.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from PIL import Image

#: What the training script reads (training_src/edge_training/data.py IMAGE_EXTENSIONS).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".ppm", ".pgm", ".tif", ".tiff")
GROUND_TRUTH_TYPE = "groundtruth/image-classification"
_UNSAFE = re.compile(r"[^0-9A-Za-z._-]")


class ChannelError(ValueError):
    """Input the command cannot use; the message names it and what to do."""


@dataclasses.dataclass(frozen=True)
class Labelled:
    """One labelled image: where it is read from, its label, where it came from."""

    path: Path | None
    label: str
    origin: str
    uri: str | None = None  # an s3:// image not on disk (downloaded when building)
    #: why it cannot be used, when that is known before reading it (said, then left out)
    unusable: str = ""


@dataclasses.dataclass
class Summary:
    counts: dict[str, int] = dataclasses.field(default_factory=dict)
    duplicates: int = 0
    left_out: list[str] = dataclasses.field(default_factory=list)
    new_classes: list[str] = dataclasses.field(default_factory=list)
    #: classes of --labels that the channel holds no image of
    missing_classes: list[str] = dataclasses.field(default_factory=list)


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


NOT_READ = (
    "not a file type the training script reads ("
    + ", ".join(IMAGE_EXTENSIONS)
    + "); convert it to one of those to use it"
)


def _check_label(label: str, where: str) -> str:
    text = label.strip()
    if not text or text.startswith(".") or "/" in text or "\\" in text or "\x00" in text:
        raise ChannelError(f"{where}: {label!r} cannot be a class folder name")
    return text


def from_folders(root: Path) -> Iterator[Labelled]:
    """``<root>/<label>/<image>``."""
    if not root.is_dir():
        raise ChannelError(f"--folders {root}: no such folder")
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise ChannelError(f"--folders {root}: no class folders (expected {root}/<label>/<image>)")
    for folder in classes:
        label = _check_label(folder.name, f"--folders {root}")
        entries = [p for p in sorted(folder.iterdir()) if not p.name.startswith(".")]
        if not entries:
            yield Labelled(None, label, f"{folder.name}/", unusable="an empty class folder")
        for path in entries:
            origin = f"{folder.name}/{path.name}"
            if path.is_dir():
                yield Labelled(
                    path, label, origin + "/", unusable="a folder: only <label>/<image> is read"
                )
            elif not _is_image(path.name):
                yield Labelled(path, label, origin, unusable=NOT_READ)
            else:
                yield Labelled(path, label, origin)


def _split_s3(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise ValueError(f"source-ref {uri!r} is not an s3://bucket/key URI")
    bucket, key = uri[5:].split("/", 1)
    if ".." in bucket.split("/") + key.split("/") or not bucket or not key:
        raise ValueError(f"source-ref {uri!r} has an empty or '..' part")
    return bucket, key


def _ground_truth_label(line: dict[str, Any]) -> str:
    found = [
        str(value.get("class-name", ""))
        for key, value in line.items()
        if key.endswith("-metadata")
        and isinstance(value, dict)
        and value.get("type") == GROUND_TRUTH_TYPE
    ]
    if len(found) != 1:
        raise ValueError(
            f"expected one label attribute whose -metadata has type {GROUND_TRUTH_TYPE!r}, "
            f"found {len(found)}"
        )
    if not found[0]:
        raise ValueError("the label's metadata has no class-name")
    return found[0]


def from_manifest(manifest: Path, objects: Path | None) -> Iterator[Labelled]:
    """A Ground Truth image-classification output manifest (JSON lines)."""
    if not manifest.is_file():
        raise ChannelError(f"--manifest {manifest}: no such file")
    try:
        texts = manifest.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise ChannelError(f"--manifest {manifest}: not UTF-8 JSON lines ({error})") from None
    except OSError as error:
        raise ChannelError(f"--manifest {manifest}: {error.strerror or error}") from None
    for number, text in enumerate(texts, start=1):
        if not text.strip():
            continue
        where = f"--manifest {manifest} line {number}"
        try:
            line = json.loads(text)
            if not isinstance(line, dict):
                raise ValueError("not a JSON object")
            uri = str(line["source-ref"])
            bucket, key = _split_s3(uri)
            label = _check_label(_ground_truth_label(line), where)
        except ChannelError:
            raise
        except KeyError:
            raise ChannelError(f"{where}: no source-ref") from None
        except (ValueError, RecursionError) as error:
            raise ChannelError(f"{where}: {error}") from None
        unusable = "" if _is_image(key) else NOT_READ
        if objects is None:
            yield Labelled(None, label, uri, uri=uri, unusable=unusable)
        else:
            yield Labelled(objects / bucket / key, label, uri, unusable=unusable)


def _download(uri: str, into: Path) -> Path:
    import boto3  # only for a manifest read without --objects

    bucket, key = _split_s3(uri)
    target = into / hashlib.sha256(uri.encode()).hexdigest()[:16]
    boto3.client("s3").download_file(bucket, key, str(target))
    return target


def _safe_name(name: str) -> str:
    return _UNSAFE.sub("_", name)[-80:] or "image"


def build(
    sources: Iterable[Labelled],
    out: Path,
    *,
    base: Path | None = None,
    known_labels: Iterable[str] = (),
    min_per_class: int = 1,
) -> Summary:
    """Write the channel; :class:`ChannelError` before writing anything when the result could
    not train (an existing ``out``, fewer than two classes)."""
    if out.exists():
        raise ChannelError(f"--out {out} already exists; choose a new folder (nothing is replaced)")
    items = list(from_folders(base)) if base is not None else []
    new = list(sources)
    items.extend(new)
    staging = out.with_name(f".{out.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir(parents=True)
    except OSError as error:
        raise ChannelError(f"--out {out}: cannot write there ({error.strerror or error})") from None
    summary = Summary()
    seen: dict[str, tuple[str, Path]] = {}  # sha256 -> (label, written path)
    conflicted: set[str] = set()
    new_ids = {id(item) for item in new}
    used_new = 0  # new images written or already there (a whole-run failure leaves none)
    first_new_left_out = ""

    def leave_out(item: Labelled, why: str) -> None:
        nonlocal first_new_left_out
        summary.left_out.append(f"{item.origin}: {why}")
        if id(item) in new_ids and not first_new_left_out:
            first_new_left_out = summary.left_out[-1]

    try:
        downloads = staging / ".downloads"
        for item in items:
            if item.unusable:
                leave_out(item, item.unusable)
                continue
            path = item.path
            try:
                if path is None and item.uri is not None:
                    downloads.mkdir(exist_ok=True)
                    path = _download(item.uri, downloads)
                assert path is not None
                data = path.read_bytes()
                with Image.open(path) as image:
                    image.verify()
            except Exception as error:  # a missing object, a broken image: named, left out
                leave_out(item, str(error) or type(error).__name__)
                continue
            if id(item) in new_ids:
                used_new += 1
            digest = hashlib.sha256(data).hexdigest()
            if digest in conflicted:
                continue
            if digest in seen:
                label, written = seen[digest]
                if label == item.label:
                    summary.duplicates += 1
                    continue
                written.unlink()
                summary.counts[label] -= 1
                conflicted.add(digest)
                leave_out(item, f"labelled both {label!r} and {item.label!r}; left out")
                continue
            folder = staging / item.label
            folder.mkdir(exist_ok=True)
            source_name = item.origin.rsplit("/", 1)[-1]
            target = folder / f"{digest[:12]}-{_safe_name(source_name)}"
            target.write_bytes(data)
            seen[digest] = (item.label, target)
            summary.counts[item.label] = summary.counts.get(item.label, 0) + 1
        shutil.rmtree(downloads, ignore_errors=True)
        if new and used_new == 0:
            raise ChannelError(
                f"none of the {len(new)} new image(s) could be used (first: "
                f"{first_new_left_out}); nothing "
                "was written"
            )
        summary.counts = {k: v for k, v in sorted(summary.counts.items()) if v > 0}
        for label in list(os.listdir(staging)):
            if label not in summary.counts:
                shutil.rmtree(staging / label)
        few = {k: v for k, v in summary.counts.items() if v < min_per_class}
        if len(summary.counts) < 2:
            raise ChannelError(
                f"the channel would hold {len(summary.counts)} class(es) "
                f"({', '.join(summary.counts) or 'none'}); training needs at least two (add "
                "--base with the current training channel, or label more captures)"
            )
        if few:
            listing = ", ".join(f"{k} ({v})" for k, v in few.items())
            raise ChannelError(
                f"classes with fewer than --min-per-class {min_per_class} images: {listing}"
            )
        known = set(known_labels)
        if known:
            summary.new_classes = sorted(set(summary.counts) - known)
            summary.missing_classes = sorted(known - set(summary.counts))
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return summary


def read_labels(path: Path) -> list[str]:
    """The class names of a model's ``labels.json`` (a list, or an index -> name object)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ChannelError(f"--labels {path}: {error}") from None
    if isinstance(raw, list):
        return [str(x) for x in raw]
    if isinstance(raw, dict):
        return [str(v) for v in raw.values()]
    raise ChannelError(f"--labels {path}: expected a list or an object of class names")
