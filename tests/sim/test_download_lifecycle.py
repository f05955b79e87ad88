"""Artifact download (S3Downloader, ArtifactDownloader, Unarchiver) and lifecycle execution
(Lifecycle.java, GenericExternalService.shouldSkip, ShellRunner) on hand-written inputs."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import time
import zipfile
from pathlib import Path

import pytest

from device_sim.assembly import Cloud, Env
from device_sim.deployment import Resolution, ResolvedComponent
from device_sim.download import Downloader, DownloadFailed, unzip
from device_sim.iam import Policy
from device_sim.interpolation import NucleusPaths, ResolvedService
from device_sim.lifecycle import LifecycleRunner, should_skip, shutdown

BUCKET = "artifacts"


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _resolution(artifact: dict[str, object]) -> Resolution:
    component = ResolvedComponent("c", "1.0.0", False, {}, {}, {}, {}, {}, [artifact])
    return Resolution("linux/amd64", "2.18.2", {"c": component}, ["c"], {})


def _artifact(data: bytes, **extra: object) -> dict[str, object]:
    digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
    return {
        "Uri": f"s3://{BUCKET}/c/code.zip",
        "Digest": digest,
        "Algorithm": "SHA-256",
        "Unarchive": "ZIP",
        **extra,
    }


def _role(*actions: str) -> list[Policy]:
    return [
        Policy(
            "tes", {"Statement": [{"Effect": "Allow", "Action": list(actions), "Resource": "*"}]}
        )
    ]


def _downloader(tmp_path: Path, data: bytes, policies: list[Policy]) -> Downloader:
    cloud = Cloud(env=Env())
    cloud.s3[BUCKET] = {"c/code.zip": data}
    return Downloader(cloud, NucleusPaths(tmp_path), policies)


def test_download_checks_digest_and_unarchives_into_the_stem_folder(tmp_path: Path) -> None:
    data = _zip({"pkg/__init__.py": b"x = 1\n", "top.txt": b"t"})
    downloader = _downloader(tmp_path, data, _role("s3:GetObject", "s3:GetBucketLocation"))
    downloader.download_all(_resolution(_artifact(data)))
    stored = tmp_path / "packages/artifacts/c/1.0.0/code.zip"
    assert stored.read_bytes() == data
    unarchived = tmp_path / "packages/artifacts-unarchived/c/1.0.0/code"
    assert (unarchived / "pkg/__init__.py").read_text() == "x = 1\n"
    assert oct((unarchived / "pkg").stat().st_mode & 0o777) == "0o755"
    mode = (unarchived / "top.txt").stat().st_mode & 0o777
    # Read: OWNER by default: owner and group (Permission.toFileSystemPermission), no write
    assert mode == 0o440
    assert [c.split(" (")[0] for c in downloader.report.calls] == [
        "ALLOW GetBucketLocation",
        "ALLOW HeadObject",
        "ALLOW GetBucketLocation",
        "ALLOW GetObject",
    ]


def test_missing_get_bucket_location_is_denied_first(tmp_path: Path) -> None:
    data = _zip({"a": b"a"})
    downloader = _downloader(tmp_path, data, _role("s3:GetObject"))
    with pytest.raises(DownloadFailed, match="GetBucketLocation returns 403 Access Denied"):
        downloader.download_all(_resolution(_artifact(data)))


def test_digest_mismatch_and_missing_algorithm(tmp_path: Path) -> None:
    data = _zip({"a": b"a"})
    policies = _role("s3:GetObject", "s3:GetBucketLocation")
    with pytest.raises(DownloadFailed, match="ARTIFACT_CHECKSUM_MISMATCH"):
        _downloader(tmp_path, data, policies).download_all(
            _resolution(_artifact(data, Digest="AAAA"))
        )
    artifact = _artifact(data)
    del artifact["Algorithm"]
    with pytest.raises(DownloadFailed, match="Algorithm missing from artifact"):
        _downloader(tmp_path, data, policies).download_all(_resolution(artifact))


def test_unzip_refuses_entries_outside_the_folder(tmp_path: Path) -> None:
    with pytest.raises(DownloadFailed, match="outside of the target dir"):
        unzip(_zip({"../evil.sh": b"x"}), tmp_path / "dest")
    assert not (tmp_path / "evil.sh").exists()


def test_skipif_onpath_exists_and_negation(tmp_path: Path) -> None:
    path = os.environ["PATH"]
    assert should_skip("onpath sh", path, "/root")
    assert not should_skip("onpath no-such-command-xyz", path, "/root")
    assert should_skip("! onpath no-such-command-xyz", path, "/root")
    marker = tmp_path / "done"
    assert not should_skip(f"exists {marker}", path, "/root")
    marker.write_text("")
    assert should_skip(f"exists {marker}", path, "/root")
    assert should_skip("exists ~/done", path, str(tmp_path))


def _service(lifecycle: dict[str, object]) -> ResolvedService:
    return ResolvedService("c", "1.0.0", {}, lifecycle)


def _runner(tmp_path: Path, network: bool = True) -> LifecycleRunner:
    return LifecycleRunner(
        NucleusPaths(tmp_path),
        thing_name="t-1",
        region="eu-west-1",
        ipc_env=lambda name: {"SVCUID": f"TOKEN-{name}"},
        network=network,
    )


def test_install_runs_in_the_work_folder_with_the_nucleus_environment(tmp_path: Path) -> None:
    service = _service(
        {
            "Setenv": {"FROM_RECIPE": "r"},
            "Install": {"Script": "env > install.env; pwd > install.pwd", "Setenv": {"STEP": "s"}},
        }
    )
    boot = _runner(tmp_path).boot("b", {"c": service}, ["c"], {})
    assert not boot.broken
    work = tmp_path / "work/c"
    env = dict(
        line.split("=", 1)
        for line in (work / "install.env").read_text().splitlines()
        if "=" in line
    )
    assert (work / "install.pwd").read_text().strip() == str(work)
    assert env["SVCUID"] == "TOKEN-c" and env["AWS_IOT_THING_NAME"] == "t-1"
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert env["FROM_RECIPE"] == "r" and env["STEP"] == "s"


def test_install_skipped_by_skipif_and_failure_blocks_dependents(tmp_path: Path) -> None:
    runner = _runner(tmp_path)
    skipped = _service({"Install": {"Script": "exit 3", "Skipif": "onpath sh"}})
    boot = runner.boot("b", {"c": skipped}, ["c"], {})
    assert [r.outcome for r in boot.results] == ["skipped"]
    failing = _service({"Install": "echo boom >&2; exit 3"})
    app = ResolvedService("app", "1.0.0", {}, {"Run": "sleep 30"})
    boot = runner.boot("b2", {"c": failing, "app": app}, ["c", "app"], {"app": frozenset({"c"})})
    assert boot.broken["c"].startswith("Install failed: exit code 3; log tail:")
    assert "boom" in boot.broken["c"]
    assert boot.broken["app"] == "not started: dependency c is broken"
    assert "app" not in boot.processes


def test_install_timeout_and_run_stopped_with_sigterm(tmp_path: Path) -> None:
    runner = _runner(tmp_path)
    slow = _service({"Install": {"Script": "sleep 30", "Timeout": 1}})
    boot = runner.boot("b", {"c": slow}, ["c"], {})
    assert boot.results[0].outcome == "timeout" and "timed out after 1 s" in boot.broken["c"]
    forever = _service({"Run": "trap 'exit 7' TERM; touch ready; while true; do sleep 0.1; done"})
    boot = runner.boot("b2", {"c": forever}, ["c"], {})
    ready = tmp_path / "work/c/ready"
    for _ in range(100):
        if ready.exists():
            break
        time.sleep(0.05)
    assert shutdown(boot) == {"c": 7}


def test_offline_boot_has_no_network(tmp_path: Path) -> None:
    runner = _runner(tmp_path, network=False)
    probe = (
        'python3 -c "import socket; s = socket.socket(); s.settimeout(3); '
        "s.connect(('1.1.1.1', 443))\""
    )
    boot = runner.boot("b", {"c": _service({"Install": probe})}, ["c"], {})
    assert "c" in boot.broken, runner.isolation
