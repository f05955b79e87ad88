"""Captures from the simulated device reach the simulated account's S3 under the token-exchange
role, evaluated as S3 would (issue 15).

The whole device (``dev_run``) boots online, reboots offline, then boots with the network back:
its inference component (the real one, in its real venv, as ggc_user) captures its
low-confidence and failed inputs and uploads them with the credentials the simulated
token-exchange service gives it (``device_sim/cloud/s3_http.py``: the SigV4 signature checked
with botocore's signer, the role's policies and the bucket policy evaluated). What the offline
boot captured is uploaded by the next online one.

Least privilege: the role may put only into ``captures/<stage>/<class>/<its thing>/``
(``device_contract/captures.py``); the other tests here ask the same endpoint for everything
else a device could try.
"""

from __future__ import annotations

import datetime
import json
import shutil
import sys
from pathlib import Path

import pytest

from device_contract import captures
from device_sim.assembly import Cloud
from device_sim.cloud.s3_http import S3Endpoint, Sessions, TokenExchangeEndpoint
from device_sim.device import Device, DeviceOptions
from device_sim.download import tes_role_policies
from tests.sim.conftest import Run, reachable_dir, run_device

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "component_src"))
from edge_inference.s3_upload import S3Uploader, UploadError

STAGE = "dev"


def _sample_everything(cloud: Cloud) -> None:
    """A deployment's configuration merge, as a team would set it: capture every input."""
    for deployment in cloud.deployments:
        for name, spec in deployment.get("Components", {}).items():
            if name.endswith("Inference"):
                spec["ConfigurationUpdate"] = {"Merge": json.dumps({"CaptureSampleRate": 1.0})}


_IMAGES: list[Path] = []


@pytest.fixture(scope="module")
def capture_run(
    reachable_base: Path, dev_assembly: Path, wheelhouse: Path | None, sample_images: Path
) -> Run:
    images = reachable_dir(reachable_base, "capture-images")
    for image in sample_images.iterdir():
        shutil.copy(image, images / image.name)
    (images / "broken.jpg").write_bytes(b"not a jpeg")  # a failed input: captured too
    _IMAGES[:] = [images]
    return run_device(
        reachable_dir(reachable_base, "capture-root") / "gg",
        dev_assembly,
        STAGE,
        images=images,
        wheelhouse=wheelhouse,
        wait_seconds=60,
        cloud_patch=_sample_everything,
    )


def _capture_objects(run: Run) -> dict[str, bytes]:
    base = run.root / "cloud" / "s3"
    return {
        str(p.relative_to(base)): p.read_bytes()
        for p in base.rglob("*")
        if p.is_file() and "/captures/" in str(p)
    }


def test_captures_reach_s3_under_the_things_own_prefix(capture_run: Run) -> None:
    uploads = capture_run.report.uploads
    assert uploads, f"no capture was uploaded; notes: {capture_run.report.notes[-5:]}"
    refused = [f"{u.key}: {u.status} {u.code}" for u in uploads if u.status != 200]
    assert refused == []
    thing = capture_run.report.provision.thing_name if capture_run.report.provision else ""
    objects = _capture_objects(capture_run)
    assert objects, "nothing under <root>/cloud/s3/<bucket>/captures/"
    for path in objects:
        _bucket, key = path.split("/", 1)
        parsed = captures.parse_key(key)
        assert parsed is not None, key
        assert (parsed.stage, parsed.device_class, parsed.thing) == (STAGE, "default", thing)


def test_each_capture_is_its_input_and_a_sidecar_saying_why(capture_run: Run) -> None:
    objects = _capture_objects(capture_run)
    sidecars = {k: json.loads(v) for k, v in objects.items() if k.endswith(".json")}
    inputs = {k: v for k, v in objects.items() if not k.endswith(".json")}
    assert len(sidecars) == len(inputs) > 0
    for key, sidecar in sidecars.items():
        assert key[: -len(".json")] in inputs  # the input beside its sidecar
        assert sidecar["reason"] in ("low-confidence", "failed", "sample")
        if sidecar["reason"] == "failed":
            assert "error" in sidecar["message"]
        if sidecar["reason"] == "low-confidence":
            assert sidecar["message"]["top"][0]["score"] < 0.5  # CaptureBelowConfidence
        source = Path(sidecar["message"]["input"]).name.split("-", 1)[1]
        assert inputs[key[: -len(".json")]] == (_IMAGES[0] / source).read_bytes()


def test_what_the_offline_boot_captured_is_uploaded_when_the_network_is_back(
    capture_run: Run,
) -> None:
    steps = [s for s, ok, _ in capture_run.report.steps if s.startswith("boot 3")]
    assert steps, "no boot with the network back"
    results = [m for m in capture_run.report.published if isinstance(m["payload"], dict)]
    sidecars = [
        json.loads(v) for k, v in _capture_objects(capture_run).items() if k.endswith(".json")
    ]
    captured_inputs = {s["message"]["input"] for s in sidecars}
    # every result of both boots (CaptureSampleRate 1), the offline boot's uploaded in boot 3
    assert {m["payload"]["input"] for m in results} == captured_inputs
    boots = {name.split("-", 1)[0] for name in captured_inputs}
    assert len(boots) >= 2, captured_inputs  # inputs of the online and the offline boot


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory, dev_assembly: Path) -> Device:
    root = tmp_path_factory.mktemp("capture-iam") / "gg"
    device = Device(
        DeviceOptions(assembly=dev_assembly, stage=STAGE, root=root, run_lifecycle=False)
    )
    report = device.run()
    assert report.ok, report.steps
    return device


def _uploader(device: Device, thing: str, *, clock=None) -> tuple[S3Uploader, S3Endpoint]:
    cloud = device.cloud
    assert cloud is not None
    alias = str(cloud.output("Devices", "TokenExchangeRoleAlias"))
    sessions = Sessions(clock=clock) if clock else Sessions()
    tes = TokenExchangeEndpoint(
        sessions,
        tokens=lambda: {"token"},
        role="tes",
        thing_name=thing,
        policies=tes_role_policies(cloud, alias),
    )
    s3 = S3Endpoint(
        sessions=sessions,
        region=cloud.env.region,
        partition=cloud.env.partition,
        objects=cloud.s3,
        bucket_policies=cloud.bucket_policies,
        folder=None,
    )
    tes.start()
    s3.start()
    _started.append(tes)
    env = {
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": tes.full_uri,
        "AWS_CONTAINER_AUTHORIZATION_TOKEN": "token",
        "AWS_REGION": cloud.env.region,
        "AWS_ENDPOINT_URL_S3": s3.url,
    }
    bucket = str(cloud.output("Artifacts", "ArtifactBucketName"))
    return S3Uploader(bucket, environ=env), s3


_started: list[TokenExchangeEndpoint] = []


@pytest.fixture(autouse=True)
def _stop_credential_endpoints():
    yield
    while _started:
        _started.pop().stop()


OWN = "captures/dev/default/edge-ai-dev-cam-1/2027/01/15/0001-a.jpg"


@pytest.mark.parametrize(
    "key, why",
    [
        ("captures/dev/default/edge-ai-dev-cam-2/2027/01/15/0001-a.jpg", "another thing's folder"),
        ("captures/prod/default/edge-ai-dev-cam-1/2027/01/15/0001-a.jpg", "another stage"),
        (
            "captures/dev/nosuchclass/edge-ai-dev-cam-1/2027/01/15/0001-a.jpg",
            "a class not deployed",
        ),
        ("packages/model.tar.gz", "the packages devices download"),
        ("components/x.zip", "component artifacts"),
        ("captures/dev/default/0001-a.jpg", "above the thing's folder"),
    ],
)
def test_a_device_cannot_write_anywhere_else(deployed: Device, key: str, why: str) -> None:
    uploader, s3 = _uploader(deployed, "edge-ai-dev-cam-1")
    try:
        uploader.put(OWN, b"ok", "image/jpeg")  # its own folder: allowed
        with pytest.raises(UploadError, match="403 AccessDenied"):
            uploader.put(key, b"x", "image/jpeg")
    finally:
        s3.stop()
    assert [(p.key, p.status) for p in s3.puts] == [(OWN, 200), (key, 403)], why


def test_expired_credentials_are_refused_and_fetched_again(deployed: Device) -> None:
    now = [datetime.datetime(2027, 1, 15, tzinfo=datetime.timezone.utc)]
    uploader, s3 = _uploader(deployed, "edge-ai-dev-cam-1", clock=lambda: now[0])
    try:
        uploader.put(OWN, b"1", "image/jpeg")
        # the device's cache still thinks they are good (its clock is behind); S3 says expired
        now[0] += datetime.timedelta(hours=2)
        uploader.put(OWN, b"2", "image/jpeg")
    finally:
        s3.stop()
    assert [p.code for p in s3.puts] == ["", "ExpiredToken", ""]


def test_a_tampered_body_or_a_wrong_secret_is_refused(deployed: Device) -> None:
    uploader, s3 = _uploader(deployed, "edge-ai-dev-cam-1")
    real = uploader.credentials.get()
    try:
        cached = uploader.credentials._cached
        assert cached is not None
        uploader.credentials._cached = (real[0], "wrong-secret", real[2], cached[3])
        with pytest.raises(UploadError, match="403 SignatureDoesNotMatch"):
            uploader.put(OWN, b"x", "image/jpeg")
    finally:
        s3.stop()


def test_without_the_token_exchange_dependency_there_are_no_credentials() -> None:
    uploader = S3Uploader("bucket", environ={"AWS_REGION": "us-east-1"})
    with pytest.raises(UploadError, match=r"aws\.greengrass\.TokenExchangeService"):
        uploader.put("captures/x", b"x", "image/jpeg")


def test_a_component_without_a_valid_token_gets_no_credentials(deployed: Device) -> None:
    uploader, s3 = _uploader(deployed, "edge-ai-dev-cam-1")
    uploader.credentials.token = "not-a-component"
    try:
        with pytest.raises(UploadError, match="token-exchange service answered 403"):
            uploader.put(OWN, b"x", "image/jpeg")
    finally:
        s3.stop()
