"""Custom::DriftBaseline (edge_constructs/drift_baseline) against moto S3 with real archives.

The archive is what SageMaker uploads from the training job's output data folder
(``output/output.tar.gz``: SageMaker developer guide, "How Amazon SageMaker Processes Training
Output"); ``metadata.json`` in it carries the ``"baseline"`` record that
``training_src/edge_training/baseline.py`` writes. The rule this resource follows: whatever
keeps a baseline from being read writes nothing and never fails the deploy.
"""

from __future__ import annotations

import io
import json
import logging
import random
import tarfile
from typing import Any

import baseline_logic
import pytest

from device_contract import drift

BUCKET = "artifacts"
SOURCE = f"s3://{BUCKET}/training/edge-ai-dev-train-1/output/output.tar.gz"
RECORD = {
    "images": 40,
    "confidence_edges": [0.0, 0.5, 0.7, 0.9],
    "confidence": {"0-0.5": 2, "0.5-0.7": 2, "0.7-0.9": 8, "0.9-1": 28},
    "classes": {"cat": 22, "dog": 18},
}


def archive(members: dict[str, bytes], big: int = 0) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        if big:
            info = tarfile.TarInfo("model.onnx")
            info.size = big
            tar.addfile(info, io.BytesIO(b"\0" * big))
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def metadata(record: Any = RECORD) -> bytes:
    doc = {"model_name": "vgg16", "input_shape": [1, 3, 224, 224]}
    if record is not None:
        doc["baseline"] = record
    return json.dumps(doc).encode()


def event(request: str = "Create", ids: Any = ("vgg16-0123456789ab",), **extra: Any) -> Any:
    return {
        "RequestType": request,
        "ResourceType": "Custom::DriftBaseline",
        "ResourceProperties": {
            "ServiceToken": "arn:aws:lambda:eu-west-1:123456789012:function:x",
            "Bucket": BUCKET,
            "SourceUri": SOURCE,
            "ModelIds": list(ids),
        },
        **extra,
    }


@pytest.fixture
def bucket(s3: Any) -> Any:
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    return s3


def put_source(s3: Any, data: bytes) -> None:
    s3.put_object(Bucket=BUCKET, Key=SOURCE.split("/", 3)[3], Body=data)


def baselines(s3: Any) -> dict[str, Any]:
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=drift.PREFIX).get("Contents", [])
    return {
        o["Key"]: json.loads(s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read())
        for o in listed
    }


def test_the_baseline_is_written_for_each_model_id_streamed_past_the_model(bucket: Any) -> None:
    """metadata.json after a 3 MB model.onnx: read as a stream, one object per model id, in
    the format the fleet Lambda parses (drift.parse_document)."""
    put_source(bucket, archive({"labels.json": b"{}", "metadata.json": metadata()}, big=3 << 20))
    ids = ("vgg16-0123456789ab", "vgg16-ba9876543210")
    response = baseline_logic.on_event(event(ids=ids), bucket)
    assert response["PhysicalResourceId"] == f"drift-baseline:{SOURCE}"
    data = response["Data"]
    assert data["Images"] == "40"
    assert data["Status"] == (
        "baseline of 40 validation results: 0-0.5 5%, 0.5-0.7 5%, 0.7-0.9 20%, 0.9-1 70%"
    )
    stored = baselines(bucket)
    assert (
        sorted(stored)
        == sorted(drift.baseline_key(i) for i in ids)
        == sorted(data["Baselines"].split(","))
    )
    for model_id in ids:
        body = json.dumps(stored[drift.baseline_key(model_id)]).encode()
        assert drift.parse_document(body, model_id) == pytest.approx(
            {"0-0.5": 0.05, "0.5-0.7": 0.05, "0.7-0.9": 0.2, "0.9-1": 0.7}
        )
        assert stored[drift.baseline_key(model_id)]["source"] == SOURCE


class CountingBody:
    """A GetObject body that records each read, to tell a stream from a download."""

    def __init__(self, body: Any) -> None:
        self.body = body
        self.sizes: list[Any] = []
        self.total = 0

    def read(self, size: Any = None) -> bytes:
        self.sizes.append(size)
        data: bytes = self.body.read() if size is None or size < 0 else self.body.read(size)
        self.total += len(data)
        return data


class RecordingS3:
    """The moto client, with each GetObject body counted."""

    def __init__(self, s3: Any) -> None:
        self.s3 = s3
        self.bodies: list[CountingBody] = []

    def get_object(self, **kwargs: Any) -> Any:
        response = self.s3.get_object(**kwargs)
        self.bodies.append(CountingBody(response["Body"]))
        return {**response, "Body": self.bodies[-1]}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.s3, name)


@pytest.mark.parametrize("metadata_first", [True, False])
def test_the_archive_is_read_in_small_pieces_and_no_further_than_metadata_json(
    bucket: Any, metadata_first: bool
) -> None:
    """The real archive holds a model.onnx of hundreds of MB: it is never read whole (every
    read asks for a bounded size), and when metadata.json comes first, nothing past it is
    read. The model stand-in is random, so it stays 4 MB compressed."""
    model = random.Random(0).randbytes(4 << 20)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        members = [("metadata.json", metadata()), ("model.onnx", model)]
        for name, data in members if metadata_first else members[::-1]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    put_source(bucket, buffer.getvalue())
    s3 = RecordingS3(bucket)
    data = baseline_logic.on_event(event(), s3)["Data"]
    assert data["Baselines"] == drift.baseline_key("vgg16-0123456789ab")
    (body,) = s3.bodies
    assert all(size is not None and 0 < size <= 1 << 20 for size in body.sizes), body.sizes
    if metadata_first:
        assert body.total < 1 << 20, body.total
    else:
        assert body.total >= 4 << 20


def test_an_update_with_new_model_ids_writes_their_baselines_and_keeps_the_old(
    bucket: Any,
) -> None:
    put_source(bucket, archive({"metadata.json": metadata()}))
    baseline_logic.on_event(event(ids=["vgg16-000000000001"]), bucket)
    baseline_logic.on_event(
        event("Update", ids=["vgg16-000000000002"], PhysicalResourceId="x"), bucket
    )
    assert sorted(baselines(bucket)) == [
        drift.baseline_key("vgg16-000000000001"),
        drift.baseline_key("vgg16-000000000002"),
    ]


def test_delete_touches_nothing(bucket: Any) -> None:
    put_source(bucket, archive({"metadata.json": metadata()}))
    baseline_logic.on_event(event(), bucket)
    before = baselines(bucket)
    response = baseline_logic.on_event(event("Delete", PhysicalResourceId="p"), bucket)
    assert response == {"PhysicalResourceId": "p"} and baselines(bucket) == before


@pytest.mark.parametrize(
    "members, why",
    [
        ({"metadata.json": metadata(None)}, "has no 'baseline' record (no validation images)"),
        ({"labels.json": b"{}"}, "holds no metadata.json"),
        (
            {"metadata.json": metadata({**RECORD, "confidence_edges": [0, 0.6, 0.8, 0.95]})},
            "are not the device's",
        ),
        ({"metadata.json": b"{not json"}, "metadata.json is not JSON"),
        # found by the hostile review: these escaped on_event and failed the deploy
        (
            {"metadata.json": metadata({**RECORD, "confidence_edges": ["a", 0.5, 0.7, 0.9]})},
            "are not the device's",
        ),
        (
            {"metadata.json": metadata({**RECORD, "confidence_edges": [None, 0.5, 0.7, 0.9]})},
            "are not the device's",
        ),
        (
            {"metadata.json": metadata({**RECORD, "confidence": {"0-0.5": 10**400}})},
            "count of bucket",
        ),
        ({"metadata.json": b"[" * 200_000}, "metadata.json is not JSON"),
        ({"../metadata.json": metadata()}, "unsafe path"),
        ({"/etc/metadata.json": metadata()}, "unsafe path"),
    ],
)
def test_no_usable_baseline_writes_nothing_and_never_fails_the_deploy(
    bucket: Any, members: dict[str, bytes], why: str, caplog: pytest.LogCaptureFixture
) -> None:
    put_source(bucket, archive(members))
    with caplog.at_level(logging.WARNING):
        data = baseline_logic.on_event(event(), bucket)["Data"]
    assert data["Images"] == "0" and data["Baselines"] == ""
    assert data["Status"].startswith("no baseline: ") and why in data["Status"], data["Status"]
    assert why in caplog.text
    assert baselines(bucket) == {}


def test_a_missing_or_unreadable_archive_is_said_in_the_status(bucket: Any) -> None:
    data = baseline_logic.on_event(event(), bucket)["Data"]
    assert "cannot read the training output" in data["Status"] and "NoSuchKey" in data["Status"]
    put_source(bucket, b"this is not a gzip tar")
    data = baseline_logic.on_event(event(), bucket)["Data"]
    assert "is not a gzip tar archive" in data["Status"]
    assert baselines(bucket) == {}


@pytest.mark.parametrize(
    "props, why",
    [
        ({"ModelIds": []}, "names no model id"),
        ({"ModelIds": ["../escape"]}, "cannot name a baseline key"),
        ({"SourceUri": "https://example.com/output.tar.gz"}, "must be an s3:// URI"),
        ({"Bucket": ""}, "Bucket"),
    ],
)
def test_properties_the_stack_never_sends_fail_the_resource_by_name(
    bucket: Any, props: dict[str, Any], why: str
) -> None:
    bad = event()
    bad["ResourceProperties"].update(props)
    with pytest.raises(baseline_logic.BaselineFailed, match=why):
        baseline_logic.on_event(bad, bucket)


def test_the_construct_sends_the_names_the_handler_reads() -> None:
    from edge_constructs.drift_baseline import construct

    assert (construct.BUCKET, construct.SOURCE_URI, construct.MODEL_IDS) == (
        baseline_logic.BUCKET,
        baseline_logic.SOURCE_URI,
        baseline_logic.MODEL_IDS,
    )
