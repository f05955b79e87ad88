"""A byte-for-byte reproducible ``sourcedir.tar.gz`` of the training script.

SageMaker's training toolkit downloads ``sagemaker_submit_directory`` and opens it as a gzipped
tar, so a CDK directory asset (a zip) will not do. The archive is built at synth time with fixed
metadata (sorted names, mtime 0, uid/gid 0, gzip header without name or time), so the asset
hash, and with it the training job name, depends on the script's content alone.
"""

from __future__ import annotations

import fnmatch
import gzip
import hashlib
import io
import tarfile
from pathlib import Path

EXCLUDE = ("__pycache__", "*.pyc", ".*", "*.egg-info", "tests")


def _included(relative: Path) -> bool:
    return not any(fnmatch.fnmatch(part, pattern) for part in relative.parts for pattern in EXCLUDE)


def build_source_tarball(source_dir: Path, out_dir: Path) -> Path:
    """Write ``<out_dir>/sourcedir-<sha256[:16]>.tar.gz`` and return its path."""
    files = sorted(
        p for p in source_dir.rglob("*") if p.is_file() and _included(p.relative_to(source_dir))
    )
    if not files:
        raise ValueError(f"no files to ship in {source_dir}")
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in files:
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
    payload = compressed.getvalue()
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"sourcedir-{hashlib.sha256(payload).hexdigest()[:16]}.tar.gz"
    if not target.exists():
        target.write_bytes(payload)
    return target
