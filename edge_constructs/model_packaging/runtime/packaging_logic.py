"""Custom::ModelPackage and Custom::PublishedArtifact logic (the retired Edge Manager packaging
step, rebuilt). The S3 client is passed in, never created here.

ModelPackage turns Neo's output tar.gz into the ZIP laid out as docs/CONTRACTS.md "The model
package" and stores it under a content-addressed key that is never overwritten: Greengrass
checks artifact digests on the device, so an object a deployed component version points at
must never change.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import posixpath
import re
import tarfile
import tempfile
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional

from botocore.exceptions import ClientError
from cr_names import Package, Published
from cr_properties import PropertyError, json_object, split_s3_uri, string

LOGGER = logging.getLogger(__name__)

MODEL_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
ONNX_FILE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}\.onnx$")
INT8_RECORD = "int8"  # metadata.json's gate record (training_src/edge_training/quantize.py)
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o100644
DIR_MODE = 0o040755
UNIX = 3
CHUNK = 1024 * 1024
MAX_SINGLE_PUT = 5 * 1024**3  # S3 PutObject limit; a conditional write must be one PUT.
LABELS = "labels.json"
METADATA = "metadata.json"
MANIFEST = "manifest.json"
MODEL_DIR = "model"
ONNX_FILE = "model.onnx"


class PackagingError(ValueError):
    """The inputs cannot make a model package; CloudFormation shows the message."""


@contextmanager
def _as_packaging_error() -> Iterator[None]:
    """A bad property is a PackagingError too: this module raises one error type."""
    try:
        yield
    except PropertyError as error:
        raise PackagingError(str(error)) from None


# ---------------------------------------------------------------- properties
@dataclass(frozen=True)
class PackageProps:
    bucket: str
    key_prefix: str
    model_name: str
    compiled_artifact_uri: str
    training_artifact_uri: str
    metadata: dict[str, Any]
    # An archive holding model.onnx at its root (the training job's output.tar.gz): packaged
    # instead of Neo output for ONNX Runtime devices. Exactly one of the two is set.
    onnx_artifact_uri: str = ""
    onnx_file: str = "model.onnx"  # the file packaged from onnx_artifact_uri's root


def parse_package_props(props: Mapping[str, Any]) -> PackageProps:
    with _as_packaging_error():
        model_name = string(props, Package.MODEL_NAME)
        if not MODEL_NAME_RE.match(model_name):
            raise PackagingError(
                f"Property ModelName must match {MODEL_NAME_RE.pattern}, got {model_name!r}"
            )
        prefix = string(props, Package.KEY_PREFIX, required=False).lstrip("/")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        onnx = string(props, Package.ONNX_ARTIFACT_URI, required=False)
        compiled = string(props, Package.COMPILED_ARTIFACT_URI, required=not onnx)
        if compiled and onnx:
            raise PackagingError(
                f"Set one of {Package.COMPILED_ARTIFACT_URI} (Neo output) or "
                f"{Package.ONNX_ARTIFACT_URI} (an ONNX export), not both"
            )
        split_s3_uri(
            compiled or onnx,
            Package.COMPILED_ARTIFACT_URI if compiled else Package.ONNX_ARTIFACT_URI,
        )
        onnx_file = string(props, Package.ONNX_FILE, required=False) or ONNX_FILE
        if not ONNX_FILE_RE.match(onnx_file):
            raise PackagingError(
                f"Property OnnxFile must be a file name ending .onnx, got {onnx_file!r}"
            )
        if onnx_file != ONNX_FILE and not onnx:
            raise PackagingError(f"Property OnnxFile needs {Package.ONNX_ARTIFACT_URI}")
        training = string(props, Package.TRAINING_ARTIFACT_URI, required=False)
        if training:
            split_s3_uri(training, "TrainingArtifactUri")
        return PackageProps(
            bucket=string(props, Package.BUCKET),
            key_prefix=prefix,
            model_name=model_name,
            compiled_artifact_uri=compiled,
            training_artifact_uri=training,
            metadata=json_object(props, Package.METADATA),
            onnx_artifact_uri=onnx,
            onnx_file=onnx_file,
        )


# ---------------------------------------------------------------- safe extraction
def _member_path(member: tarfile.TarInfo, archive: str) -> Optional[str]:
    """Normalized relative path of ``member``; None for the archive's root folder entry."""
    name = member.name
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise PackagingError(f"{archive}: absolute path {name!r} in archive; refusing it")
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise PackagingError(f"{archive}: path traversal {name!r} in archive; refusing it")
    if member.issym() or member.islnk():
        raise PackagingError(
            f"{archive}: link {name!r} -> {member.linkname!r} in archive; refusing it"
        )
    if not (member.isreg() or member.isdir()):
        raise PackagingError(f"{archive}: {name!r} is a device, FIFO or other special file")
    return "/".join(parts) or None


def strict_filter(archive: str) -> Any:
    """A tarfile extraction filter: our own checks (clear errors), then the stdlib "data" one."""

    def _filter(member: tarfile.TarInfo, dest: str) -> Optional[tarfile.TarInfo]:
        if _member_path(member, archive) is None:
            return None
        return tarfile.data_filter(member, dest)

    return _filter


def extract_archive(tar_path: Path, dest: Path, archive: str) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(tar_path, "r:*") as tar:
            tar.extractall(dest, filter=strict_filter(archive))  # noqa: S202 - filtered
    except PackagingError:
        raise
    except (tarfile.TarError, EOFError, OSError) as error:
        raise PackagingError(f"{archive} is not a readable tar archive: {error}") from None


def list_files(root: Path) -> list[str]:
    """Relative POSIX paths of the regular files under ``root``, sorted."""
    files = []
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            path = Path(dirpath, name)
            if path.is_symlink() or not path.is_file():
                raise PackagingError(f"Unexpected non-regular file {name!r} after extraction")
            files.append(path.relative_to(root).as_posix())
    return sorted(files)


def check_neo_output(files: list[str], archive: str) -> None:
    """Refuse anything that does not look like SageMaker Neo's output."""
    if not files:
        raise PackagingError(f"{archive} is empty: not a Neo compilation output")
    base = {posixpath.basename(f) for f in files}
    if not any(f.endswith(".so") for f in files):
        raise PackagingError(
            f"{archive} holds no .so file: not a Neo compilation output (files: "
            f"{', '.join(files[:10])})"
        )
    tvm = {"compiled.params", "compiled_model.json"}
    if base & tvm and not tvm <= base:
        missing = ", ".join(sorted(tvm - base))
        raise PackagingError(f"{archive} is TVM output but lacks {missing}")


# ---------------------------------------------------------------- labels
def read_labels(tar_path: Path, archive: str) -> Optional[bytes]:
    """labels.json from the root of the training archive; None when it has none."""
    try:
        with tarfile.open(tar_path, "r:*") as tar:
            for member in tar:
                parts = [x for x in member.name.split("/") if x not in ("", ".")]
                if parts != [LABELS]:
                    continue
                if not member.isreg():
                    raise PackagingError(f"{archive}: {LABELS} is not a regular file")
                handle = tar.extractfile(member)
                if handle is None:
                    raise PackagingError(f"{archive}: cannot read {LABELS}")
                data = handle.read()
                break
            else:
                return None
    except PackagingError:
        raise
    except (tarfile.TarError, EOFError, OSError) as error:
        raise PackagingError(f"{archive} is not a readable tar archive: {error}") from None
    try:
        labels = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise PackagingError(f"{archive}: {LABELS} is not valid JSON: {error}") from None
    if not isinstance(labels, (dict, list)):
        raise PackagingError(f"{archive}: {LABELS} must be a JSON object or list")
    return data


# ---------------------------------------------------------------- deterministic zip
def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True) + "\n").encode("utf-8")


def _zip_info(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
    info.create_system = UNIX
    info.external_attr = mode << 16
    if mode & 0o040000:
        info.external_attr |= 0x10  # MS-DOS directory flag
        info.compress_type = zipfile.ZIP_STORED
    else:
        info.compress_type = zipfile.ZIP_DEFLATED
    return info


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def model_id_for(model_name: str, model_digests: Mapping[str, str]) -> str:
    canonical = json.dumps(dict(sorted(model_digests.items())), separators=(",", ":"))
    return f"{model_name}-{hashlib.sha256(canonical.encode()).hexdigest()[:12]}"


@dataclass(frozen=True)
class BuiltPackage:
    zip_path: Path
    sha256: str
    model_id: str
    manifest: dict[str, str]


def build_package(
    model_root: Path,
    labels: Optional[bytes],
    metadata: Mapping[str, Any],
    model_name: str,
    zip_path: Path,
) -> BuiltPackage:
    """Write the package ZIP: the same inputs give the same bytes on every run."""
    model_files = list_files(model_root)
    model_digests = {f"{MODEL_DIR}/{f}": file_sha256(model_root / f) for f in model_files}
    meta = dict(metadata)
    meta.setdefault("model_id", model_id_for(model_name, model_digests))

    extra: dict[str, bytes] = {METADATA: _json_bytes(meta)}
    if labels is not None:
        extra[LABELS] = labels
    manifest = dict(model_digests)
    manifest.update({name: hashlib.sha256(data).hexdigest() for name, data in extra.items()})
    manifest = dict(sorted(manifest.items()))
    extra[MANIFEST] = _json_bytes({"files": manifest})

    dirs = {MODEL_DIR + "/"}
    for f in model_files:
        parent = posixpath.dirname(f)
        while parent:
            dirs.add(f"{MODEL_DIR}/{parent}/")
            parent = posixpath.dirname(parent)
    entries: list[tuple[str, Optional[Path], Optional[bytes]]] = [(d, None, None) for d in dirs]
    entries += [(f"{MODEL_DIR}/{f}", model_root / f, None) for f in model_files]
    entries += [(name, None, data) for name, data in extra.items()]

    with zipfile.ZipFile(zip_path, "w", allowZip64=True) as archive:
        for name, path, data in sorted(entries, key=lambda e: e[0]):
            if name.endswith("/"):
                archive.writestr(_zip_info(name, DIR_MODE), b"")
            elif data is not None:
                archive.writestr(_zip_info(name, FILE_MODE), data)
            else:
                assert path is not None
                info = _zip_info(name, FILE_MODE)
                info.file_size = path.stat().st_size
                with path.open("rb") as src, archive.open(info, "w") as dst:
                    for chunk in iter(lambda: src.read(CHUNK), b""):
                        dst.write(chunk)
    return BuiltPackage(
        zip_path=zip_path,
        sha256=file_sha256(zip_path),
        model_id=str(meta["model_id"]),
        manifest=manifest,
    )


def package_key(prefix: str, model_name: str, sha256: str) -> str:
    return f"{prefix}{model_name}/{archive_name(model_name, sha256)}.zip"


def archive_name(model_name: str, sha256: str) -> str:
    return f"{model_name}-{sha256[:32]}"


# ---------------------------------------------------------------- S3
def _is_missing(error: ClientError) -> bool:
    code = str(error.response.get("Error", {}).get("Code", ""))
    return code in ("404", "NoSuchKey", "NotFound")


def head_or_none(s3: Any, bucket: str, key: str) -> Optional[dict[str, Any]]:
    try:
        head: dict[str, Any] = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if _is_missing(error):
            return None
        raise
    return head


def download(s3: Any, uri: str, name: str, dest: Path) -> None:
    with _as_packaging_error():
        bucket, key = split_s3_uri(uri, name)
    try:
        s3.download_file(bucket, key, str(dest))
    except ClientError as error:
        if _is_missing(error):
            raise PackagingError(f"{name} {uri} does not exist") from None
        raise


def _check_existing(head: Mapping[str, Any], bucket: str, key: str, sha256: str) -> None:
    stored = (head.get("Metadata") or {}).get("sha256")
    if stored != sha256:
        raise PackagingError(
            f"s3://{bucket}/{key} exists with sha256 metadata {stored!r}, not {sha256}: "
            "something wrote a different object under this content-addressed key; "
            "it is left untouched"
        )


def upload_if_absent(s3: Any, bucket: str, key: str, zip_path: Path, sha256: str) -> bool:
    """Store the package unless the key exists; True when uploaded now. Never overwrites."""
    head = head_or_none(s3, bucket, key)
    if head is not None:
        _check_existing(head, bucket, key, sha256)
        LOGGER.info("s3://%s/%s already holds this package: not uploading", bucket, key)
        return False
    size = zip_path.stat().st_size
    if size > MAX_SINGLE_PUT:
        raise PackagingError(f"Package is {size} bytes: larger than one S3 PUT allows (5 GiB)")
    checksum = base64.b64encode(bytes.fromhex(sha256)).decode()
    try:
        with zip_path.open("rb") as body:
            s3.put_object(
                Bucket=bucket,
                Key=key,
                Body=body,
                ContentType="application/zip",
                Metadata={"sha256": sha256},
                ChecksumSHA256=checksum,
                IfNoneMatch="*",  # S3 conditional write: a concurrent writer cannot be overwritten
            )
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code")
        if code not in ("PreconditionFailed", "ConditionalRequestConflict"):
            raise
        head = head_or_none(s3, bucket, key)
        if head is None:
            raise
        _check_existing(head, bucket, key, sha256)
        LOGGER.info("s3://%s/%s was written concurrently with the same package", bucket, key)
        return False
    LOGGER.info("Uploaded s3://%s/%s (%d bytes)", bucket, key, size)
    return True


# ---------------------------------------------------------------- resources
def make_package(s3: Any, props: Mapping[str, Any], workdir: Path) -> dict[str, Any]:
    p = parse_package_props(props)
    model_root = workdir / "extracted"
    metadata = dict(p.metadata)
    gate: dict[str, Any] = {}
    if p.onnx_artifact_uri:
        gate = extract_onnx(s3, p.onnx_artifact_uri, workdir, model_root, p.onnx_file)
        if gate:
            metadata[INT8_RECORD] = gate
    else:
        neo_tar = workdir / "compiled.tar.gz"
        download(s3, p.compiled_artifact_uri, Package.COMPILED_ARTIFACT_URI, neo_tar)
        extract_archive(neo_tar, model_root, p.compiled_artifact_uri)
        neo_tar.unlink()
        check_neo_output(list_files(model_root), p.compiled_artifact_uri)

    labels: Optional[bytes] = None
    if p.training_artifact_uri:
        training_tar = workdir / "training.tar.gz"
        download(s3, p.training_artifact_uri, "TrainingArtifactUri", training_tar)
        labels = read_labels(training_tar, p.training_artifact_uri)
        training_tar.unlink()
        if labels is None:
            LOGGER.warning(
                "%s has no %s: the package carries none", p.training_artifact_uri, LABELS
            )
    else:
        LOGGER.warning("No TrainingArtifactUri: the package carries no %s", LABELS)

    built = build_package(model_root, labels, metadata, p.model_name, workdir / "package.zip")
    key = package_key(p.key_prefix, p.model_name, built.sha256)
    upload_if_absent(s3, p.bucket, key, built.zip_path, built.sha256)
    return {
        "PhysicalResourceId": key,
        "Data": {
            "ArtifactUri": f"s3://{p.bucket}/{key}",
            "Bucket": p.bucket,
            "Key": key,
            "ArchiveName": archive_name(p.model_name, built.sha256),
            "Sha256": built.sha256,
            "ModelId": built.model_id,
            **(
                {
                    Package.INT8_TOP1: str(gate["int8_top1"]),
                    Package.FP32_TOP1: str(gate["fp32_top1"]),
                    Package.INT8_TOP1_DROP: str(gate["top1_drop"]),
                    Package.INT8_TOP1_AGREEMENT: str(gate["top1_agreement"]),
                }
                if gate
                else {}
            ),
        },
    }


def extract_onnx(
    s3: Any, uri: str, workdir: Path, model_root: Path, onnx_file: str = ONNX_FILE
) -> dict[str, Any]:
    """``onnx_file`` from the root of the archive at ``uri``, alone in ``model_root`` as
    ``model.onnx`` (what the component loads); for any other file than ``model.onnx`` (an int8
    class's ``model.int8.onnx``) also its gate record (:func:`int8_gate`), else ``{}``.

    The training script writes model.onnx, labels.json and metadata.json to
    ``SM_OUTPUT_DATA_DIR``; SageMaker uploads that folder as ``output/output.tar.gz`` beside
    ``model.tar.gz`` (SageMaker developer guide, "How Amazon SageMaker Processes Training
    Output": https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-training-algo-output.html).
    Only model.onnx goes under ``model/``: labels and metadata come from the same sources as
    for a Neo package, so both kinds of package read the same.
    """
    archive = workdir / "onnx.tar.gz"
    extracted = workdir / "onnx-archive"
    download(s3, uri, Package.ONNX_ARTIFACT_URI, archive)
    extract_archive(archive, extracted, uri)
    archive.unlink()
    source = extracted / onnx_file
    if onnx_file != ONNX_FILE:
        gate = int8_gate(extracted, onnx_file, uri)
        model_root.mkdir(parents=True, exist_ok=True)
        source.rename(model_root / ONNX_FILE)
        return gate
    if not source.is_file():
        files = list_files(extracted)
        raise PackagingError(
            f"{uri} holds no {ONNX_FILE} at its root (files: {', '.join(files[:10]) or 'none'}):"
            f" an onnx device class runs {ONNX_FILE} from this archive. A training job writes it"
            " with export-onnx true (the default); a model you bring (model_artifact_uri) needs"
            f" {ONNX_FILE} beside model.pth: python -m model_check checks the archive, and"
            " python -m main_job --model exports one from a traced model.pth"
        )
    model_root.mkdir(parents=True, exist_ok=True)
    source.rename(model_root / ONNX_FILE)
    return {}


def int8_gate(extracted: Path, onnx_file: str, uri: str) -> dict[str, Any]:
    """The training job's int8 record (metadata.json ``"int8"``, written by
    training_src/edge_training/quantize.py) for ``onnx_file``: the file is there, is the one
    the record describes (sha256), and passed the accuracy gate. The training job fails when
    the gate fails; this refuses a package built from anything else, with both numbers."""
    files = list_files(extracted)
    if not (extracted / onnx_file).is_file():
        raise PackagingError(
            f"{uri} holds no {onnx_file} at its root (files: {', '.join(files[:10]) or 'none'}):"
            " an int8 class packages the training job's int8 model (quantize: int8 sets "
            "--quantize int8 on the job)"
        )
    try:
        record = json.loads((extracted / METADATA).read_text(encoding="utf-8"))[INT8_RECORD]
        numbers = {
            k: float(record[k]) for k in ("fp32_top1", "int8_top1", "top1_drop", "max_top1_drop")
        }
        float(record["top1_agreement"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise PackagingError(
            f"{uri}: {METADATA} has no readable int8 gate record for {onnx_file} ({error!r})"
        ) from None
    if record.get("file") != onnx_file or record.get("sha256") != file_sha256(
        extracted / onnx_file
    ):
        raise PackagingError(
            f"{uri}: {METADATA}'s int8 record describes another file than {onnx_file} "
            "(file name or sha256 differ): refusing an ungated model"
        )
    if record.get("passed") is not True or numbers["top1_drop"] > numbers["max_top1_drop"]:
        raise PackagingError(
            f"{uri}: the int8 model failed its accuracy gate: int8 top-1 "
            f"{numbers['int8_top1']:.2f}% vs FP32 {numbers['fp32_top1']:.2f}%, a drop of "
            f"{numbers['top1_drop']:.2f} points (max_int8_top1_drop {numbers['max_top1_drop']:g})"
            ": the stack operation fails and rolls back"
        )
    return dict(record)


def publish_artifact(s3: Any, props: Mapping[str, Any]) -> dict[str, Any]:
    """Copy a CDK asset object to a content-addressed key, only if that key is absent."""
    with _as_packaging_error():
        source_bucket = string(props, Published.SOURCE_BUCKET)
        source_key = string(props, Published.SOURCE_KEY)
        bucket = string(props, Package.BUCKET)
        key = string(props, Published.KEY)
    existing = head_or_none(s3, bucket, key)
    if existing is None:
        s3.copy({"Bucket": source_bucket, "Key": source_key}, bucket, key)
        LOGGER.info("Copied s3://%s/%s to s3://%s/%s", source_bucket, source_key, bucket, key)
    else:
        source = s3.head_object(Bucket=source_bucket, Key=source_key)
        if source.get("ContentLength") != existing.get("ContentLength"):
            raise PackagingError(
                f"s3://{bucket}/{key} exists with {existing.get('ContentLength')} bytes but "
                f"the source has {source.get('ContentLength')}: a different object sits under "
                "this content-addressed key; it is left untouched"
            )
        LOGGER.info("s3://%s/%s already exists: not copying", bucket, key)
    return {
        "PhysicalResourceId": key,
        "Data": {"ArtifactUri": f"s3://{bucket}/{key}", "Bucket": bucket, "Key": key},
    }


def on_event(event: Mapping[str, Any], s3: Any, tmp_root: Optional[str] = None) -> dict[str, Any]:
    request_type = event["RequestType"]
    resource_type = event.get("ResourceType", "")
    props = event.get("ResourceProperties", {})
    if request_type == "Delete":
        LOGGER.info(
            "Delete of %s %s: no-op, the object is retained so a rollback can use it",
            resource_type,
            event.get("PhysicalResourceId"),
        )
        return {"PhysicalResourceId": event.get("PhysicalResourceId")}
    if request_type not in ("Create", "Update"):
        raise ValueError(f"Unknown RequestType {request_type!r}")
    if resource_type == "Custom::PublishedArtifact":
        return publish_artifact(s3, props)
    if resource_type == "Custom::ModelPackage":
        # /tmp survives between warm invocations: always clean up.
        with tempfile.TemporaryDirectory(prefix="package-", dir=tmp_root) as workdir:
            return make_package(s3, props, Path(workdir))
    raise ValueError(f"Unknown ResourceType {resource_type!r}")
