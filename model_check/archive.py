"""The brought model's files, as SageMaker and the packaging step will see them: a
``.tar.gz`` unpacked (tarfile's ``data`` filter: no absolute paths, no ``..``, no links out of
the folder, no device files; Python docs, "Extraction filters"), or a folder as it is."""

from __future__ import annotations

import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz")
MODEL_PTH = "model.pth"
MODEL_ONNX = "model.onnx"
LABELS = "labels.json"
METADATA = "metadata.json"
MODEL_FILES = (MODEL_PTH, MODEL_ONNX)


class ModelCheckError(ValueError):
    """A brought model that cannot work; the message names the file and the fix."""


@dataclass(frozen=True)
class OpenedModel:
    given: Path  # what the user named
    root: Path  # the archive's root: the given folder, or where the archive was unpacked
    files: tuple[str, ...]  # every file under root, relative, sorted

    @property
    def is_archive(self) -> bool:
        return self.given.is_file()

    def has(self, name: str) -> bool:
        return name in self.files


def _files(root: Path) -> tuple[str, ...]:
    return tuple(
        sorted(
            p.relative_to(root).as_posix()
            for p in root.rglob("*")
            if p.is_file() and not p.name.startswith("._")  # macOS tar's AppleDouble files
        )
    )


def open_model(given: Path, workdir: Path) -> OpenedModel:
    """``given`` (a folder, or a ``.tar.gz`` unpacked into ``workdir``, which is replaced) with
    ``model.pth`` or ``model.onnx`` at its root; :class:`ModelCheckError` otherwise."""
    if given.is_dir():
        root = given
    elif not given.exists():
        raise ModelCheckError(f"{given}: no such file or folder")
    elif not given.name.endswith(ARCHIVE_SUFFIXES):
        hint = (
            f"; put it in a folder or archive: tar -czf model.tar.gz {given.name} labels.json"
            if given.name in MODEL_FILES
            else ""
        )
        raise ModelCheckError(f"{given}: not a folder or a .tar.gz archive{hint}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
        try:
            with tarfile.open(given, "r:*") as archive:
                archive.extractall(workdir, filter="data")
        except tarfile.FilterError as error:
            raise ModelCheckError(f"{given}: refused an unsafe archive member ({error})") from None
        except (tarfile.TarError, OSError, EOFError) as error:
            first = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise ModelCheckError(f"{given}: not a readable .tar.gz ({first})") from None
        root = workdir
    files = _files(root)
    opened = OpenedModel(given, root, files)
    if any(opened.has(name) for name in MODEL_FILES):
        return opened
    what = "archive" if opened.is_archive else "folder"
    nested = sorted({f.split("/")[0] for f in files if f.rsplit("/", 1)[-1] in MODEL_FILES})
    if nested:
        inner = nested[0]
        raise ModelCheckError(
            f"{given}: the model is under {inner}/, not at the {what}'s root: SageMaker Neo "
            "and the packaging step read the root; make the archive with "
            f"tar -C {inner} -czf model.tar.gz ."
        )
    raise ModelCheckError(
        f"{given}: no {MODEL_PTH} (traced TorchScript, for Neo) or {MODEL_ONNX} (for ONNX "
        f"Runtime) at the {what}'s root (files: {', '.join(files[:10]) or 'none'})"
    )
