"""Byte-for-byte reproducible archives of source folders, built at synth time.

* The training script ships as ``sourcedir.tar.gz``: SageMaker's training toolkit downloads
  ``sagemaker_submit_directory`` and opens it as a gzipped tar, so a CDK directory asset (a zip
  made at publish time) will not do.
* The device component ships as a zip that exists in ``cdk.out`` after synth, so tests can run
  the exact bytes a device will download.

Fixed metadata (sorted names, mtime 0 / 1980-01-01, uid/gid 0, fixed modes, gzip header without
name or time) makes the asset hash, and everything derived from it, depend on content alone.

Where they are built: inside the cloud assembly's own folder (:func:`trusted_build_dir`), which
belongs to whoever runs the synth, never in a shared, predictable ``/tmp`` folder that another
local user could fill first. And an archive found there is reused only if its bytes are exactly
the ones this synth would write; anything else is replaced.
"""

from __future__ import annotations

import fnmatch
import gzip
import hashlib
import io
import os
import tarfile
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

from aws_cdk import Stage
from constructs import IConstruct

EXCLUDE = ("__pycache__", "*.pyc", ".*", "*.egg-info", "tests")
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
BUILD_FOLDER = ".edge-ai-build"


def trusted_build_dir(scope: IConstruct) -> Path:
    """``<cloud assembly>/.edge-ai-build``: the app's own output folder (``cdk.out``, or the
    ``outdir`` a test gives), created owner-only. CDK then copies what is built here into the
    assembly as assets."""
    root = scope.node.root
    if not isinstance(root, Stage):
        raise TypeError("trusted_build_dir needs a construct inside a cdk.App")
    build_dir = Path(root.outdir) / BUILD_FOLDER
    build_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    return build_dir


def _included(relative: Path, exclude: tuple[str, ...]) -> bool:
    return not any(fnmatch.fnmatch(part, pattern) for part in relative.parts for pattern in exclude)


def source_files(source_dir: Path, exclude: tuple[str, ...] = EXCLUDE) -> list[Path]:
    files = sorted(
        p
        for p in source_dir.rglob("*")
        if p.is_file() and _included(p.relative_to(source_dir), exclude)
    )
    if not files:
        raise ValueError(f"no files to ship in {source_dir}")
    return files


def _write_once(payload: bytes, out_dir: Path, stem: str, suffix: str) -> Path:
    """``<stem>-<sha256[:16]><suffix>`` holding exactly ``payload``: an existing file is reused
    only if its content is identical (else it is replaced, atomically)."""
    out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    target = out_dir / f"{stem}-{hashlib.sha256(payload).hexdigest()[:16]}{suffix}"
    if target.is_file() and not target.is_symlink() and target.read_bytes() == payload:
        return target
    handle, scratch = tempfile.mkstemp(prefix=f".{stem}-", dir=out_dir)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(payload)
        os.chmod(scratch, 0o644)
        os.replace(scratch, target)  # also replaces a planted symlink, never follows it
    except BaseException:
        Path(scratch).unlink(missing_ok=True)
        raise
    return target


def build_source_tarball(source_dir: Path, out_dir: Path, exclude: tuple[str, ...] = ()) -> Path:
    """Write ``<out_dir>/sourcedir-<sha256[:16]>.tar.gz`` and return its path; ``exclude``:
    file name patterns left out beside :data:`EXCLUDE`."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in source_files(source_dir, EXCLUDE + exclude):
            data = path.read_bytes()
            info = tarfile.TarInfo(path.relative_to(source_dir).as_posix())
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    compressed = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=compressed, mtime=0) as gz:
        gz.write(raw.getvalue())
    return _write_once(compressed.getvalue(), out_dir, "sourcedir", ".tar.gz")


def build_source_zip(
    source_dir: Path,
    out_dir: Path,
    stem: str,
    *,
    packages: Sequence[Path] = (),
    package_exclude: tuple[str, ...] = (),
) -> Path:
    """Write ``<out_dir>/<stem>-<sha256[:16]>.zip`` (``source_dir``'s files at the zip's root,
    each of ``packages`` as a folder of its name beside them) and return it.

    ``packages``: folders that ship with the source, such as ``device_contract``, which the
    device imports from the same ``PYTHONPATH`` (the unarchived zip) as the component's code;
    ``package_exclude``: file name patterns left out of them (``device_contract.CLOUD_ONLY``)."""
    entries: dict[str, Path] = {}
    roots = [(source_dir, (), ""), *((p, package_exclude, f"{p.name}/") for p in packages)]
    for folder, extra, prefix in roots:
        for path in source_files(folder, EXCLUDE + extra):
            name = prefix + path.relative_to(folder).as_posix()
            if name in entries:
                raise ValueError(f"{name} is both in {entries[name]} and in {path}")
            entries[name] = path
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in entries:  # source_files order, then each package's
            info = zipfile.ZipInfo(name, ZIP_EPOCH)
            info.external_attr = 0o644 << 16
            info.create_system = 3  # Unix, so the mode above is honoured
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, entries[name].read_bytes())
    return _write_once(raw.getvalue(), out_dir, stem, ".zip")
