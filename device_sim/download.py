"""Artifact download as the nucleus does it, authorized against the token-exchange role.

* ``componentmanager/builtins/ArtifactDownloader.java`` ``download``: the recipe's ``Algorithm``
  must be present ("Algorithm missing from artifact", ``RECIPE_MISSING_ARTIFACT_HASH_ALGORITHM``);
  ``getDownloadSize`` first, then the ranged download; the base64 digest of the bytes must equal
  the recipe's ``Digest`` (``ARTIFACT_CHECKSUM_MISMATCH``).
* ``componentmanager/builtins/S3Downloader.java``: ``getDownloadSize`` = ``GetBucketLocation``
  (``getRegionClientForBucket``) then ``HeadObject``; ``download`` = ``GetBucketLocation`` then
  ``GetObject``. A 403 on GetBucketLocation is ``S3_GET_BUCKET_LOCATION_ACCESS_DENIED``, on
  HeadObject ``S3_HEAD_OBJECT_ACCESS_DENIED``, on GetObject ``S3_GET_OBJECT_ACCESS_DENIED``.
  The file name is the key's last path segment (``getArtifactFilename``).
* Authorization (S3 User Guide, "Amazon S3 actions" / Service Authorization Reference for S3):
  ``GetBucketLocation`` needs ``s3:GetBucketLocation`` on the bucket ARN; ``HeadObject`` and
  ``GetObject`` need ``s3:GetObject`` on the object ARN. Explicit denies of the bucket policy
  apply too; the nucleus uses HTTPS (``aws:SecureTransport`` true).
* Store and unarchive (``ComponentManager.prepareArtifacts``, ``Unarchiver.unzip``,
  ``util/Permissions.setArtifactPermission``): ``packages/artifacts/<name>/<version>/<file>``;
  ``Unarchive: ZIP`` into ``packages/artifacts-unarchived/<name>/<version>/<file name without its
  last extension>/``, refusing entries outside that folder; folders get ``rwxr-xr-x``, files
  the recipe's ``Permission`` as :func:`permission_bits` maps it. Owner: the nucleus's user
  (root); :mod:`device_sim.run_with` hands them to a component's user when it runs a command.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import stat
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from device_sim.assembly import Cloud, split_s3
from device_sim.deployment import Resolution
from device_sim.iam import Policy, Request, evaluate
from device_sim.interpolation import NucleusPaths


class DownloadFailed(RuntimeError):
    """The deployment fails while preparing artifacts; the message names call and reason."""


STORE_FOLDER_MODE = 0o755  # Permissions.OWNER_RWX_EVERYONE_RX


@dataclass
class DownloadReport:
    calls: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def permission_bits(permission: dict[str, Any] | None) -> int:
    """The mode of an artifact file: ``models/Permission.toFileSystemPermission`` (``Read`` and
    ``Execute``: ``NONE``, ``OWNER``, ``ALL``; default ``Read: OWNER``, ``Execute: NONE``).

    The owner may always read; ``OWNER`` is granted to the owner *and its group* ("user group is
    considered to be owner"); execute implies read. So ``Read: NONE`` is ``r--------`` (0400),
    ``Read: OWNER`` ``r--r-----`` (0440), ``Read: ALL`` ``r--r--r--`` (0444). The nucleus runs as
    root here (the InstallerCommand uses sudo), so ``Permissions.setArtifactPermission`` adds no
    owner-write (it does that only for a non-root nucleus).
    """
    read = str((permission or {}).get("Read", "OWNER")).upper()
    execute = str((permission or {}).get("Execute", "NONE")).upper()
    for key, value in (("Read", read), ("Execute", execute)):
        if value not in ("NONE", "OWNER", "ALL"):
            raise DownloadFailed(f"artifact Permission {key}: {value!r} is not NONE, OWNER or ALL")
    bits = stat.S_IRUSR
    if execute in ("OWNER", "ALL"):
        bits |= stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP
    if read in ("OWNER", "ALL"):
        bits |= stat.S_IRGRP
    if read == "ALL" or execute == "ALL":
        bits |= stat.S_IROTH
    if execute == "ALL":
        bits |= stat.S_IXOTH
    return bits


def set_artifact_permission(path: Path, bits: int) -> None:
    """``Permissions.setArtifactPermission``: folders rwxr-xr-x, recursively; files ``bits``."""
    if path.is_dir():
        path.chmod(STORE_FOLDER_MODE)
        for child in path.iterdir():
            set_artifact_permission(child, bits)
    elif path.exists():
        path.chmod(bits)


def store_folder(root: Path, folder: Path) -> Path:
    """Create ``folder`` and every folder between ``root`` and it rwxr-xr-x, as
    ``NucleusPaths.setRootPath``, ``setComponentStorePath``, ``artifactPath(id)`` and
    ``unarchiveArtifactPath(id, name)`` do (``OWNER_RWX_EVERYONE_RX``)."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in [folder, *folder.parents]:
        if path != root and root not in path.parents:
            break
        path.chmod(STORE_FOLDER_MODE)
    return folder


def unzip(data: bytes, dest: Path) -> None:
    """``Unarchiver.unzip``: entries resolving outside ``dest`` fail the whole unarchive."""
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            target = (dest / info.filename).resolve()
            if not str(target).startswith(str(root) + os.sep) and target != root:
                raise DownloadFailed(f"Entry is outside of the target dir: {info.filename}")
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists() and target.stat().st_size == info.file_size:
                continue  # same size: not extracted again
            if target.exists():
                target.chmod(0o600)
            target.write_bytes(archive.read(info))


class Downloader:
    def __init__(self, cloud: Cloud, paths: NucleusPaths, role_policies: Sequence[Policy]) -> None:
        self.cloud = cloud
        self.paths = paths
        self.role_policies = list(role_policies)
        self.report = DownloadReport()

    def authorize(self, component: str, api: str, action: str, resource: str, code: str) -> None:
        request = Request(action, resource, {"aws:SecureTransport": True})
        decision = evaluate(self.role_policies, request)
        bucket = resource.split(":::", 1)[-1].split("/", 1)[0]
        bucket_policy = self.cloud.bucket_policies.get(bucket)
        if decision.allowed and bucket_policy is not None:
            deny_only = Policy(
                bucket_policy.name,
                {"Statement": [s for s in _statements(bucket_policy) if s.get("Effect") == "Deny"]},
            )
            deny = evaluate([deny_only], request)
            if deny.reason.startswith("explicitly denied"):
                decision = deny
        self.report.calls.append(
            f"{'ALLOW' if decision.allowed else 'DENY '} {api} ({action} on {resource})"
        )
        if not decision.allowed:
            raise DownloadFailed(
                f"{component}: S3 {api} returns 403 Access Denied ({code}): {action} on "
                f"{resource}: {decision.reason} (S3Downloader)"
            )

    def download_all(self, resolution: Resolution) -> DownloadReport:
        for name in resolution.order:
            component = resolution.components[name]
            if component.public:
                self.report.skipped.append(
                    f"{name}@{component.version}: public component, its artifacts live in an "
                    "AWS-owned bucket the simulator does not have"
                )
                continue
            for artifact in component.artifacts:
                self.download(name, component.version, artifact)
        return self.report

    def download(self, name: str, version: str, artifact: dict[str, Any]) -> Path:
        uri = str(artifact.get("Uri") or artifact.get("URI") or "")
        if not uri.startswith("s3://"):
            raise DownloadFailed(f"{name}: artifact URI {uri!r} is not s3:// (not simulated)")
        algorithm = artifact.get("Algorithm")
        if not algorithm:
            raise DownloadFailed(
                f"{name}: Algorithm missing from artifact {uri} (ArtifactDownloader)"
            )
        if str(algorithm).upper() not in ("SHA-256", "SHA256"):
            raise DownloadFailed(f"{name}: digest algorithm {algorithm} is not simulated")
        bucket, key = split_s3(uri)
        bucket_arn = f"arn:{self.cloud.env.partition}:s3:::{bucket}"
        object_arn = f"{bucket_arn}/{key}"
        location = (
            "GetBucketLocation",
            "s3:GetBucketLocation",
            bucket_arn,
            "S3_GET_BUCKET_LOCATION_ACCESS_DENIED",
        )
        self.authorize(name, *location)
        self.authorize(
            name, "HeadObject", "s3:GetObject", object_arn, "S3_HEAD_OBJECT_ACCESS_DENIED"
        )
        data = self.cloud.s3.get(bucket, {}).get(key)
        if data is None:
            raise DownloadFailed(f"{name}: S3 HeadObject returns 404 Resource Not Found: {uri}")
        self.authorize(name, *location)
        self.authorize(name, "GetObject", "s3:GetObject", object_arn, "S3_GET_OBJECT_ACCESS_DENIED")
        digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
        if digest != artifact.get("Digest"):
            raise DownloadFailed(
                f"{name}: ARTIFACT_CHECKSUM_MISMATCH for {uri}: recipe digest "
                f"{artifact.get('Digest')}, downloaded {digest}"
            )
        directory = store_folder(self.paths.root, self.paths.artifacts(name, version))
        file_name = key.split("/")[-1]
        target = directory / file_name
        if target.exists():
            target.chmod(0o600)
        target.write_bytes(data)
        bits = permission_bits(artifact.get("Permission"))
        set_artifact_permission(target, bits)
        self.report.files.append(target)
        if str(artifact.get("Unarchive", "NONE")).upper() == "ZIP":
            stem = file_name[: file_name.rindex(".")] if file_name.find(".") > 0 else file_name
            into = store_folder(self.paths.root, self.paths.unarchived(name, version) / stem)
            unzip(data, into)
            set_artifact_permission(into, bits)
            self.report.files.append(into)
        return target


def _statements(policy: Policy) -> list[dict[str, Any]]:
    raw = policy.document.get("Statement", [])
    return list(raw) if isinstance(raw, list) else [raw]


def tes_role_policies(cloud: Cloud, role_alias: str) -> list[Policy]:
    """The policies of the role behind the role alias (what TES credentials carry)."""
    role_arn = cloud.role_aliases.get(role_alias)
    if role_arn is None:
        raise DownloadFailed(f"role alias {role_alias} does not exist")
    for role in cloud.roles.values():
        if role.arn == role_arn:
            return cloud.role_policies(role.name)
    raise DownloadFailed(f"role alias {role_alias} points at {role_arn}, which does not exist")
