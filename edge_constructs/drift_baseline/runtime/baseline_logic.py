"""Custom::DriftBaseline: copy the training job's drift baseline to each model id it built.

The training job writes ``metadata.json`` into its output data folder with a ``"baseline"``
record (``training_src/edge_training/baseline.py``); SageMaker uploads that folder as
``<S3OutputPath>/<job>/output/output.tar.gz`` (SageMaker developer guide, "How Amazon SageMaker
Processes Training Output"). This resource reads the record from ``SourceUri`` (that archive)
and writes ``fleet/baselines/<model id>.json`` (``device_contract.drift``) for each of
``ModelIds``, the packages built from the job, where the fleet stack's Lambda reads it by the
model id each device's metrics window names.

* The archive also holds the ONNX export (hundreds of MB for VGG16): it is read as a stream
  (``tarfile`` mode ``r|gz`` over the GetObject body), never written to disk, and reading stops
  at ``metadata.json``. A member with an absolute path or ``..`` is refused, as packaging
  refuses it.
* Whatever keeps a baseline from being read writes nothing and succeeds, saying why in
  ``Status`` (each class's stack output ``...DriftBaselineStatus``) and in the log: monitoring
  must never block a model deploy; the drift alarm then stays OK for lack of data. That covers
  a run with no validation images (no record), a record the fleet cannot compare with
  (``drift.shares`` says why), a missing archive (``AccessDenied``: the role may not list the
  bucket, and "If you don't have the s3:ListBucket permission, Amazon S3 returns an HTTP status
  code 403 Access Denied error", botocore s3 GetObject documentation; ``NoSuchKey`` where it
  may), and an archive that is not a gzip tar or holds an unsafe path. Only properties that
  are not what the stack sends fail the resource.
* Delete writes and deletes nothing: devices may still report with the model (a rollback, a
  fleet ring that was not promoted), and the objects are a few hundred bytes.
"""

from __future__ import annotations

import json
import logging
import tarfile
from typing import Any, Mapping, Optional, Tuple

from botocore.exceptions import ClientError
from cr_properties import PropertyError, json_list, split_s3_uri, string

from device_contract import drift

LOGGER = logging.getLogger(__name__)

BUCKET = "Bucket"
SOURCE_URI = "SourceUri"
MODEL_IDS = "ModelIds"
METADATA = "metadata.json"
MAX_METADATA_BYTES = 1024 * 1024


class BaselineFailed(ValueError):
    """The training output cannot be read; CloudFormation shows the message."""


def parse(props: Mapping[str, Any]) -> Tuple[str, str, list[str]]:
    try:
        bucket = string(props, BUCKET)
        source = string(props, SOURCE_URI)
        split_s3_uri(source, SOURCE_URI)
        ids = [str(i) for i in json_list(props, MODEL_IDS)]
    except PropertyError as error:
        raise BaselineFailed(str(error)) from None
    if not ids:
        raise BaselineFailed(f"Property {MODEL_IDS} names no model id")
    for model_id in ids:
        try:
            drift.baseline_key(model_id)
        except drift.BaselineError as error:
            raise BaselineFailed(str(error)) from None
    return bucket, source, ids


def _member_name(member: tarfile.TarInfo, uri: str) -> str:
    name = member.name.replace("\\", "/")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if name.startswith("/") or ".." in parts:
        raise BaselineFailed(f"{uri}: unsafe path {member.name!r} in the archive; refusing it")
    return "/".join(parts)


def read_metadata(s3: Any, uri: str) -> Optional[dict[str, Any]]:
    """``metadata.json`` at the root of the archive at ``uri``, or None when it has none."""
    bucket, key = split_s3_uri(uri, SOURCE_URI)
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        raise BaselineFailed(
            f"cannot read the training output {uri} ({code}): the training job writes it "
            "when it ends; a job that did not end, or a bucket this role cannot read, leaves "
            "none"
        ) from None
    try:
        with tarfile.open(fileobj=body, mode="r|gz") as archive:
            for member in archive:
                if _member_name(member, uri) != METADATA:
                    continue
                if not member.isreg():
                    raise BaselineFailed(f"{uri}: {METADATA} is not a regular file")
                if member.size > MAX_METADATA_BYTES:
                    raise BaselineFailed(f"{uri}: {METADATA} is {member.size} bytes")
                handle = archive.extractfile(member)
                assert handle is not None
                data = json.loads(handle.read())
                return data if isinstance(data, dict) else {}
    except (tarfile.TarError, EOFError, OSError) as error:
        raise BaselineFailed(f"{uri} is not a gzip tar archive: {error}") from None
    except (ValueError, RecursionError) as error:  # metadata.json that is not JSON
        if isinstance(error, BaselineFailed):
            raise
        raise BaselineFailed(f"{uri}: {METADATA} is not JSON: {error!s:.200}") from None
    return None


def summary(record: Mapping[str, Any]) -> str:
    shares = drift.shares(record)
    parts = ", ".join(f"{bucket} {100 * share:.0f}%" for bucket, share in shares.items())
    return f"baseline of {record.get('images', '?')} validation results: {parts}"


def find_record(s3: Any, source: str) -> Tuple[Optional[Mapping[str, Any]], str]:
    """(the usable baseline record, "") or (None, why there is none)."""
    try:
        metadata = read_metadata(s3, source)
    except BaselineFailed as error:
        return None, str(error)
    if metadata is None:
        return None, f"{source} holds no {METADATA}"
    record = metadata.get(drift.RECORD)
    if record is None:
        return None, f"{METADATA} has no {drift.RECORD!r} record (no validation images)"
    try:
        drift.shares(record)
    except drift.BaselineError as error:
        return None, str(error)
    return record, ""


def publish(s3: Any, props: Mapping[str, Any]) -> dict[str, Any]:
    bucket, source, ids = parse(props)
    record, reason = find_record(s3, source)
    if record is None:
        LOGGER.warning("no drift baseline: %s; the drift alarm stays OK for lack of data", reason)
        return {"Images": "0", "Baselines": "", "Status": f"no baseline: {reason}"}
    keys = []
    for model_id in ids:
        key = drift.baseline_key(model_id)
        body = json.dumps(drift.document(model_id, record, source), sort_keys=True)
        s3.put_object(
            Bucket=bucket, Key=key, Body=body.encode("utf-8"), ContentType="application/json"
        )
        keys.append(key)
        LOGGER.info("wrote s3://%s/%s", bucket, key)
    return {
        "Images": str(record.get("images", 0)),
        "Baselines": ",".join(keys),
        "Status": summary(record),
    }


def on_event(event: Mapping[str, Any], s3: Any) -> dict[str, Any]:
    request_type = event["RequestType"]
    props = event.get("ResourceProperties", {})
    if request_type == "Delete":
        return {"PhysicalResourceId": event.get("PhysicalResourceId", "")}
    if request_type not in ("Create", "Update"):
        raise ValueError(f"Unknown RequestType {request_type!r}")
    data = publish(s3, props)
    return {"PhysicalResourceId": f"drift-baseline:{props.get(SOURCE_URI, '')}", "Data": data}
