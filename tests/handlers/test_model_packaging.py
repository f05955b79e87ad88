"""Custom::ModelPackage and Custom::PublishedArtifact against moto S3, with synthetic Neo output."""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
import zipfile
from pathlib import Path
from typing import Any, Optional

import packaging_handler
import packaging_logic
import pytest

from .conftest import REGION

BUCKET = "artifacts-bucket"
NEO_FILES = {
    "compiled.so": b"\x7fELF compiled operators",
    "compiled.params": b"params" * 100,
    "compiled_model.json": b'{"nodes": []}',
    "compiled.meta": b'{"Requirements": {}}',
    "libdlr.so": b"\x7fELF dlr runtime",
    "dlr.h": b"/* dlr */",
    "manifest": b"compiled.so\n",
}
LABELS = b'{"0": "cat", "1": "dog"}'
NEO_KEY = "compiled/jetson_nano/model-jetson_nano.tar.gz"
TRAINING_KEY = "training/job/output/model.tar.gz"


def tar_gz(files: dict[str, bytes], *, prefix: str = "") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(prefix + name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def hostile_tar(kind: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        good = tarfile.TarInfo("compiled.so")
        good.size = 3
        tar.addfile(good, io.BytesIO(b"abc"))
        if kind in ("traversal", "absolute"):
            info = tarfile.TarInfo("../../evil.so" if kind == "traversal" else "/tmp/evil.so")
            info.size = 4
            tar.addfile(info, io.BytesIO(b"evil"))
        elif kind in ("symlink", "hardlink"):
            info = tarfile.TarInfo("libdlr.so")
            info.type = tarfile.SYMTYPE if kind == "symlink" else tarfile.LNKTYPE
            info.linkname = "/etc/passwd"
            tar.addfile(info)
        elif kind == "device":
            info = tarfile.TarInfo("dev.so")
            info.type = tarfile.CHRTYPE
            info.devmajor, info.devminor = 1, 3
            tar.addfile(info)
    return buffer.getvalue()


@pytest.fixture
def bucket(s3: Any) -> Any:
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    # Versioning makes every PUT visible: an overwrite would leave a second version.
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=BUCKET, Key=NEO_KEY, Body=tar_gz(NEO_FILES))
    s3.put_object(
        Bucket=BUCKET,
        Key=TRAINING_KEY,
        Body=tar_gz({"model.pth": b"torchscript", "labels.json": LABELS}),
    )
    return s3


@pytest.fixture
def client(bucket: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(packaging_handler, "s3_client", lambda: bucket)
    return bucket


def props(**overrides: str) -> dict[str, str]:
    base = {
        "ServiceToken": "arn:aws:lambda:eu-west-1:123456789012:function:provider",
        "Bucket": BUCKET,
        "KeyPrefix": "packages/",
        "ModelName": "vgg16",
        "CompiledArtifactUri": f"s3://{BUCKET}/{NEO_KEY}",
        "TrainingArtifactUri": f"s3://{BUCKET}/{TRAINING_KEY}",
        "Metadata": json.dumps({"input_shape": [1, 3, 224, 224], "target": "jetson_nano"}),
    }
    base.update(overrides)
    return base


def event(request_type: str, properties: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {
        "RequestType": request_type,
        "RequestId": "6d0c2f0e-9a1b-4c3d-8e7f-0a1b2c3d4e5f",
        "LogicalResourceId": "ModelPackage",
        "ResourceType": "Custom::ModelPackage",
        "ResourceProperties": properties,
        **extra,
    }


def package(properties: Optional[dict[str, str]] = None) -> dict[str, Any]:
    result: dict[str, Any] = packaging_handler.handler(event("Create", properties or props()), None)
    return result


def fetch_zip(s3: Any, key: str) -> zipfile.ZipFile:
    body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return zipfile.ZipFile(io.BytesIO(body))


def versions(s3: Any, key: str) -> int:
    listed = s3.list_object_versions(Bucket=BUCKET, Prefix=key).get("Versions", [])
    return len([v for v in listed if v["Key"] == key])


# ---------------------------------------------------------------- the package
def test_package_layout_manifest_and_data(client: Any) -> None:
    result = package()
    data = result["Data"]
    key = data["Key"]
    body = client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    sha = hashlib.sha256(body).hexdigest()

    assert key == f"packages/vgg16/vgg16-{sha[:32]}.zip"
    assert result["PhysicalResourceId"] == key
    assert data == {
        "ArtifactUri": f"s3://{BUCKET}/{key}",
        "Bucket": BUCKET,
        "Key": key,
        "ArchiveName": f"vgg16-{sha[:32]}",
        "Sha256": sha,
        "ModelId": data["ModelId"],
    }
    head = client.head_object(Bucket=BUCKET, Key=key)
    assert head["Metadata"]["sha256"] == sha
    assert head["ContentType"] == "application/zip"

    archive = zipfile.ZipFile(io.BytesIO(body))
    files = {i.filename for i in archive.infolist() if not i.is_dir()}
    assert files == {f"model/{n}" for n in NEO_FILES} | {
        "labels.json",
        "metadata.json",
        "manifest.json",
    }
    for name, content in NEO_FILES.items():
        assert archive.read(f"model/{name}") == content
    assert archive.read("labels.json") == LABELS

    manifest = json.loads(archive.read("manifest.json"))["files"]
    assert set(manifest) == files - {"manifest.json"}
    for name, digest in manifest.items():
        assert hashlib.sha256(archive.read(name)).hexdigest() == digest

    model_manifest = {k: v for k, v in manifest.items() if k.startswith("model/")}
    canonical = json.dumps(dict(sorted(model_manifest.items())), separators=(",", ":"))
    expected_id = f"vgg16-{hashlib.sha256(canonical.encode()).hexdigest()[:12]}"
    metadata = json.loads(archive.read("metadata.json"))
    assert metadata == {
        "input_shape": [1, 3, 224, 224],
        "target": "jetson_nano",
        "model_id": expected_id,
    }
    assert data["ModelId"] == expected_id


def test_zip_entries_are_sorted_with_fixed_times_and_permissions(client: Any) -> None:
    archive = fetch_zip(client, package()["Data"]["Key"])
    infos = archive.infolist()
    assert [i.filename for i in infos] == sorted(i.filename for i in infos)
    for info in infos:
        assert info.date_time == (1980, 1, 1, 0, 0, 0)
        assert info.create_system == 3
        if info.is_dir():
            assert info.external_attr >> 16 == 0o040755
        else:
            assert info.external_attr >> 16 == 0o100644
            assert info.compress_type == zipfile.ZIP_DEFLATED


def test_given_model_id_is_kept(client: Any) -> None:
    result = package(props(Metadata='{"model_id": "vgg16-release-7"}'))
    archive = fetch_zip(client, result["Data"]["Key"])
    assert json.loads(archive.read("metadata.json"))["model_id"] == "vgg16-release-7"
    assert result["Data"]["ModelId"] == "vgg16-release-7"


def test_same_input_twice_gives_the_same_key_and_one_upload(client: Any) -> None:
    puts: list[str] = []
    client.meta.events.register(
        "before-parameter-build.s3.PutObject", lambda params, **_: puts.append(params["Key"])
    )
    first = package()
    second = packaging_handler.handler(
        event(
            "Update",
            props(),
            PhysicalResourceId=first["PhysicalResourceId"],
            OldResourceProperties=props(),
        ),
        None,
    )
    assert second == first
    assert puts == [first["Data"]["Key"]]  # the second run found the key and sent nothing
    assert versions(client, first["Data"]["Key"]) == 1


def test_different_content_gives_a_different_key(client: Any) -> None:
    first = package()
    changed = dict(NEO_FILES, **{"compiled.params": b"other weights"})
    client.put_object(Bucket=BUCKET, Key="compiled/v2.tar.gz", Body=tar_gz(changed))
    second = package(props(CompiledArtifactUri=f"s3://{BUCKET}/compiled/v2.tar.gz"))
    assert second["Data"]["Key"] != first["Data"]["Key"]
    assert second["Data"]["ModelId"] != first["Data"]["ModelId"]
    assert versions(client, first["Data"]["Key"]) == 1
    assert versions(client, second["Data"]["Key"]) == 1


def test_metadata_change_changes_the_key_but_not_the_model_id(client: Any) -> None:
    first = package()
    second = package(props(Metadata='{"resize_shorter": 300}'))
    assert second["Data"]["Key"] != first["Data"]["Key"]
    assert second["Data"]["ModelId"] == first["Data"]["ModelId"]


def test_neo_output_under_a_dot_prefix_packs_the_same(client: Any) -> None:
    first = package()
    client.put_object(Bucket=BUCKET, Key="compiled/dot.tar.gz", Body=tar_gz(NEO_FILES, prefix="./"))
    second = package(props(CompiledArtifactUri=f"s3://{BUCKET}/compiled/dot.tar.gz"))
    assert second["Data"]["Key"] == first["Data"]["Key"]


def test_existing_key_with_other_content_is_never_overwritten(client: Any) -> None:
    first = package()
    key = first["Data"]["Key"]
    client.put_object(Bucket=BUCKET, Key=key, Body=b"impostor", Metadata={"sha256": "0" * 64})
    with pytest.raises(packaging_logic.PackagingError, match=re.escape("different object")):
        package()
    assert client.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"impostor"
    assert versions(client, key) == 2  # ours, then the impostor; we added none


def test_concurrent_writer_is_not_overwritten(bucket: Any, tmp_path: Path) -> None:
    """The PUT is conditional (If-None-Match: *): a writer between HEAD and PUT wins."""
    zip_path = tmp_path / "p.zip"
    zip_path.write_bytes(b"package")
    sha = hashlib.sha256(b"package").hexdigest()

    class RacingS3:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        def put_object(self, **kwargs: Any) -> Any:
            self.inner.put_object(
                Bucket=BUCKET, Key=kwargs["Key"], Body=b"package", Metadata={"sha256": sha}
            )
            return self.inner.put_object(**kwargs)

    uploaded = packaging_logic.upload_if_absent(RacingS3(bucket), BUCKET, "k.zip", zip_path, sha)
    assert uploaded is False
    assert versions(bucket, "k.zip") == 1


# ---------------------------------------------------------------- labels
def test_training_archive_without_labels_is_tolerated(client: Any) -> None:
    client.put_object(Bucket=BUCKET, Key="training/nolabels.tar.gz", Body=tar_gz({"m.pth": b"x"}))
    result = package(props(TrainingArtifactUri=f"s3://{BUCKET}/training/nolabels.tar.gz"))
    archive = fetch_zip(client, result["Data"]["Key"])
    assert "labels.json" not in archive.namelist()
    assert "labels.json" not in json.loads(archive.read("manifest.json"))["files"]


def test_no_training_archive_is_tolerated(client: Any) -> None:
    result = package(props(TrainingArtifactUri=""))
    assert "labels.json" not in fetch_zip(client, result["Data"]["Key"]).namelist()


def test_unreadable_training_archive_names_its_key(client: Any) -> None:
    client.put_object(Bucket=BUCKET, Key="training/broken.tar.gz", Body=b"not a tar at all")
    with pytest.raises(packaging_logic.PackagingError, match=re.escape("training/broken.tar.gz")):
        package(props(TrainingArtifactUri=f"s3://{BUCKET}/training/broken.tar.gz"))


def test_missing_compiled_artifact_names_it(client: Any) -> None:
    with pytest.raises(
        packaging_logic.PackagingError, match=re.escape("compiled/absent.tar.gz does not")
    ):
        package(props(CompiledArtifactUri=f"s3://{BUCKET}/compiled/absent.tar.gz"))


def test_invalid_labels_json_is_an_error(client: Any) -> None:
    client.put_object(
        Bucket=BUCKET, Key="training/badlabels.tar.gz", Body=tar_gz({"labels.json": b"{oops"})
    )
    with pytest.raises(
        packaging_logic.PackagingError, match=re.escape("labels.json is not valid JSON")
    ):
        package(props(TrainingArtifactUri=f"s3://{BUCKET}/training/badlabels.tar.gz"))


# ---------------------------------------------------------------- hostile or wrong input
@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("traversal", "path traversal '../../evil.so'"),
        ("absolute", "absolute path '/tmp/evil.so'"),
        ("symlink", "link 'libdlr.so' -> '/etc/passwd'"),
        ("hardlink", "link 'libdlr.so' -> '/etc/passwd'"),
        ("device", "'dev.so' is a device"),
    ],
)
def test_hostile_neo_archive_is_rejected(
    client: Any, kind: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client.put_object(Bucket=BUCKET, Key="compiled/hostile.tar.gz", Body=hostile_tar(kind))
    monkeypatch.setattr(packaging_logic.tempfile, "tempdir", str(tmp_path))
    with pytest.raises(packaging_logic.PackagingError, match=re.escape(message)):
        package(props(CompiledArtifactUri=f"s3://{BUCKET}/compiled/hostile.tar.gz"))
    assert not (tmp_path.parent / "evil.so").exists()
    assert list(tmp_path.iterdir()) == []  # the work folder is cleaned up
    listed = client.list_objects_v2(Bucket=BUCKET, Prefix="packages/").get("KeyCount")
    assert listed == 0


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"model.pth": b"x"}, "holds no .so file"),
        ({"compiled.so": b"x", "compiled.params": b"p"}, "lacks compiled_model.json"),
        ({}, "is empty"),
    ],
)
def test_archive_that_is_not_neo_output_is_rejected(
    client: Any, files: dict[str, bytes], message: str
) -> None:
    client.put_object(Bucket=BUCKET, Key="compiled/odd.tar.gz", Body=tar_gz(files))
    with pytest.raises(packaging_logic.PackagingError, match=re.escape(message)):
        package(props(CompiledArtifactUri=f"s3://{BUCKET}/compiled/odd.tar.gz"))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"ModelName": "../vgg"}, "ModelName must match"),
        ({"Metadata": "[1]"}, "Metadata must be a JSON object"),
        ({"Metadata": "{bad"}, "Metadata is not valid JSON"),
        ({"CompiledArtifactUri": "s3://bucket-only"}, "CompiledArtifactUri must be s3://bucket"),
        ({"Bucket": ""}, "Bucket is required"),
    ],
)
def test_bad_properties_raise_naming_the_property(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(packaging_logic.PackagingError, match=re.escape(message)):
        packaging_logic.parse_package_props(props(**overrides))


def test_key_prefix_without_slash_and_minimal_metadata(client: Any) -> None:
    result = package(props(KeyPrefix="packages", Metadata=""))
    assert result["Data"]["Key"].startswith("packages/vgg16/vgg16-")


def test_delete_is_a_no_op_that_keeps_the_package(client: Any) -> None:
    key = package()["PhysicalResourceId"]
    for _ in range(2):
        result = packaging_handler.handler(event("Delete", props(), PhysicalResourceId=key), None)
        assert result == {"PhysicalResourceId": key}
    assert client.head_object(Bucket=BUCKET, Key=key)


def test_unknown_resource_type_is_an_error(client: Any) -> None:
    with pytest.raises(ValueError, match=re.escape("Custom::Other")):
        packaging_handler.handler(
            dict(event("Create", props()), ResourceType="Custom::Other"), None
        )


# ---------------------------------------------------------------- PublishedArtifact
def published(request_type: str = "Create", **overrides: str) -> dict[str, Any]:
    properties = {
        "SourceBucket": "cdk-assets",
        "SourceKey": "0123abcd.zip",
        "Bucket": BUCKET,
        "Key": "components/inference/0123abcd.zip",
    }
    properties.update(overrides)
    result: dict[str, Any] = packaging_handler.handler(
        {
            "RequestType": request_type,
            "ResourceType": "Custom::PublishedArtifact",
            "LogicalResourceId": "Published",
            "PhysicalResourceId": properties["Key"],
            "ResourceProperties": properties,
        },
        None,
    )
    return result


@pytest.fixture
def assets(client: Any) -> Any:
    client.create_bucket(
        Bucket="cdk-assets", CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    client.put_object(Bucket="cdk-assets", Key="0123abcd.zip", Body=b"component code")
    return client


def test_published_artifact_is_copied_once(assets: Any) -> None:
    key = "components/inference/0123abcd.zip"
    assert published() == {
        "PhysicalResourceId": key,
        "Data": {"ArtifactUri": f"s3://{BUCKET}/{key}", "Bucket": BUCKET, "Key": key},
    }
    assert assets.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"component code"
    published("Update")
    assert versions(assets, key) == 1
    published("Delete")
    assert versions(assets, key) == 1


def test_published_artifact_never_overwrites_a_different_object(assets: Any) -> None:
    key = "components/inference/0123abcd.zip"
    assets.put_object(Bucket=BUCKET, Key=key, Body=b"a different, longer object")
    with pytest.raises(packaging_logic.PackagingError, match=re.escape("different object")):
        published()
    assert assets.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"a different, longer object"


# ---------------------------------------------------------------- ONNX device classes
ONNX_KEY = "training/job/output/output.tar.gz"
ONNX_OUTPUT = {
    "model.onnx": b"onnx graph bytes",
    "labels.json": b'{"0": "other"}',  # labels come from the training archive, not here
    "metadata.json": b'{"resize_shorter": 1}',  # metadata comes from the stack, not here
}


def onnx_props(**overrides: str) -> dict[str, str]:
    base = props(OnnxArtifactUri=f"s3://{BUCKET}/{ONNX_KEY}", **overrides)
    del base["CompiledArtifactUri"]
    return base


def test_onnx_class_packages_the_training_jobs_model_onnx(client: Any) -> None:
    client.put_object(Bucket=BUCKET, Key=ONNX_KEY, Body=tar_gz(ONNX_OUTPUT))
    result = package(onnx_props(Metadata=json.dumps({"target": "onnx-amd64"})))
    archive = fetch_zip(client, result["Data"]["Key"])
    names = sorted(archive.namelist())
    assert names == ["labels.json", "manifest.json", "metadata.json", "model/", "model/model.onnx"]
    assert archive.read("model/model.onnx") == ONNX_OUTPUT["model.onnx"]
    assert archive.read("labels.json") == LABELS
    assert json.loads(archive.read("metadata.json"))["target"] == "onnx-amd64"
    manifest = json.loads(archive.read("manifest.json"))["files"]
    assert manifest["model/model.onnx"] == hashlib.sha256(ONNX_OUTPUT["model.onnx"]).hexdigest()


def test_onnx_archive_without_model_onnx_names_the_fix(client: Any) -> None:
    """Both routes to the archive get their fix: a training job (export-onnx) and a brought
    model (issue 18: a user with no training job was told only to train with --export-onnx)."""
    client.put_object(Bucket=BUCKET, Key=ONNX_KEY, Body=tar_gz({"model.pth": b"x"}))
    with pytest.raises(packaging_logic.PackagingError) as raised:
        package(onnx_props())
    message = str(raised.value)
    assert "no model.onnx at its root (files: model.pth)" in message
    assert "export-onnx true" in message  # the training route
    assert "model_artifact_uri" in message and "python -m model_check" in message


def test_neo_and_onnx_sources_are_exclusive(client: Any) -> None:
    both = props(OnnxArtifactUri=f"s3://{BUCKET}/{ONNX_KEY}")
    with pytest.raises(packaging_logic.PackagingError, match="not both"):
        package(both)
    neither = props()
    del neither["CompiledArtifactUri"]
    with pytest.raises(packaging_logic.PackagingError, match="CompiledArtifactUri is required"):
        package(neither)


# ---------------------------------------------------------------- int8 classes (issue 16)
INT8 = b"int8 QDQ graph bytes"


def int8_output(**record: Any) -> bytes:
    """output.tar.gz as train.py --quantize int8 leaves it: both models, and metadata.json's
    gate record (training_src/edge_training/quantize.py gate_record)."""
    gate = {
        "file": "model.int8.onnx",
        "sha256": hashlib.sha256(INT8).hexdigest(),
        "fp32_top1": 91.5,
        "int8_top1": 91.0,
        "top1_drop": 0.5,
        "top1_agreement": 97.25,
        "max_top1_drop": 1.0,
        "passed": True,
        **record,
    }
    return tar_gz(
        {
            **ONNX_OUTPUT,
            "model.int8.onnx": INT8,
            "metadata.json": json.dumps({"int8": gate}).encode(),
        }
    )


def test_int8_class_packages_the_int8_model_as_model_onnx_with_its_gate(client: Any) -> None:
    client.put_object(Bucket=BUCKET, Key=ONNX_KEY, Body=int8_output())
    result = package(onnx_props(OnnxFile="model.int8.onnx", Metadata=json.dumps({"a": 1})))
    archive = fetch_zip(client, result["Data"]["Key"])
    assert archive.read("model/model.onnx") == INT8  # the component loads model/model.onnx
    assert "model/model.int8.onnx" not in archive.namelist()
    metadata = json.loads(archive.read("metadata.json"))
    assert metadata["a"] == 1 and metadata["int8"]["top1_agreement"] == 97.25
    data = result["Data"]
    assert (data["Int8Top1"], data["Fp32Top1"], data["Int8Top1Drop"]) == ("91.0", "91.5", "0.5")
    assert data["Int8Top1Agreement"] == "97.25"


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (
            {"passed": False, "top1_drop": 3.5, "int8_top1": 88.0},
            "failed its accuracy gate: int8 top-1 88.00% vs FP32 91.50%, a drop of 3.50 points "
            "(max_int8_top1_drop 1): the stack operation fails and rolls back",
        ),
        ({"sha256": "0" * 64}, "describes another file"),
        ({"file": "other.onnx"}, "describes another file"),
        ({"int8_top1": "n/a"}, "no readable int8 gate record"),
    ],
)
def test_an_ungated_or_failed_int8_model_is_refused(
    client: Any, record: dict[str, Any], message: str
) -> None:
    client.put_object(Bucket=BUCKET, Key=ONNX_KEY, Body=int8_output(**record))
    with pytest.raises(packaging_logic.PackagingError) as raised:
        package(onnx_props(OnnxFile="model.int8.onnx"))
    assert message in str(raised.value)


def test_int8_output_without_the_int8_model_names_the_option(client: Any) -> None:
    client.put_object(Bucket=BUCKET, Key=ONNX_KEY, Body=tar_gz(ONNX_OUTPUT))
    with pytest.raises(packaging_logic.PackagingError, match="quantize: int8 sets"):
        package(onnx_props(OnnxFile="model.int8.onnx"))


def test_onnx_file_must_name_an_onnx_file(client: Any) -> None:
    with pytest.raises(packaging_logic.PackagingError, match=r"ending \.onnx"):
        package(onnx_props(OnnxFile="../x.onnx"))
