"""Lambda functions for the custom-resource handlers, built the same way everywhere."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from aws_cdk import Duration, RemovalPolicy, Size
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from edge_constructs.bundles import source_files, trusted_build_dir

# Files that must never reach an asset: they change its hash (flaky snapshots) and are not code.
ASSET_EXCLUDES = ["__pycache__", "*.pyc", ".*", "tests", "*.egg-info"]
RUNTIME = lambda_.Runtime.PYTHON_3_14
# Modules every handler imports as top-level modules (``import cr_properties``): copied into
# each function's code folder, since each runtime folder is its own asset root.
RUNTIME_COMMON_DIR = Path(__file__).parent / "runtime_common"


def stage_code(
    code_dir: Path,
    build_dir: Path,
    common_dir: Path = RUNTIME_COMMON_DIR,
    packages: Sequence[Path] = (),
) -> Path:
    """A folder holding ``code_dir``'s files plus ``common_dir``'s, made at synth time, and
    each of ``packages`` as a folder of its name (``device_contract``, which a handler imports
    as a package, as the component zip ships it: ``bundles.build_source_zip``).

    It is named by a digest of the relative paths and contents (``lambda-<sha256[:16]>`` under
    ``build_dir``, the cloud assembly's own folder) and written with fixed modes, so the asset
    hash depends on content alone. A relative path present in both folders is an error, never a
    silent override.
    """
    files: dict[str, bytes] = {}
    origin: dict[str, Path] = {}
    roots = [(code_dir, ""), (common_dir, ""), *((p, f"{p.name}/") for p in packages)]
    for root, prefix in roots:
        for path in source_files(root, tuple(ASSET_EXCLUDES)):
            name = prefix + path.relative_to(root).as_posix()
            if name in files:
                raise ValueError(
                    f"{name} is in both {origin[name]} and {root}: a Lambda asset root can hold "
                    "only one; rename one of them"
                )
            files[name] = path.read_bytes()
            origin[name] = root
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    target = build_dir / f"lambda-{digest.hexdigest()[:16]}"
    if _holds_exactly(target, files):
        return target
    build_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Build beside the target, then rename: a concurrent synth never sees a half-written folder.
    scratch = Path(tempfile.mkdtemp(prefix=".lambda-", dir=build_dir))
    try:
        for name, data in files.items():
            path = scratch / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            path.chmod(0o644)
        for folder in (p for p in scratch.rglob("*") if p.is_dir()):
            folder.chmod(0o755)
        scratch.chmod(0o755)  # mkdtemp makes it 0o700
        if target.exists() and not _holds_exactly(target, files):
            shutil.rmtree(target)  # damaged (e.g. a temp cleaner took some files): replace it
        os.rename(scratch, target)
    except OSError:
        if not _holds_exactly(target, files):  # not a concurrent writer that got there first
            raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def _holds_exactly(folder: Path, files: dict[str, bytes]) -> bool:
    if not folder.is_dir():
        return False
    present = {p.relative_to(folder).as_posix(): p for p in folder.rglob("*") if p.is_file()}
    return present.keys() == files.keys() and all(
        present[name].read_bytes() == data for name, data in files.items()
    )


class PythonFunction(Construct):
    """A Python Lambda with its own role and log group (no managed policies, set retention).

    Props:
        code_dir: the handler's own modules; deployed together with ``runtime_common``'s files
            in one folder (see ``stage_code``), whose root is on ``sys.path``.
        handler: ``module.function``.
        timeout: function timeout; custom-resource work must fit in it.
        log_retention: retention of the function's log group.
        memory_mb: memory (default 256).
        ephemeral_storage_mb: /tmp size (default 512).
        packages: package folders shipped beside the code, each under its own name
            (default none).
        environment: the function's environment variables (default none).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        code_dir: Path,
        handler: str,
        timeout: Duration,
        log_retention: logs.RetentionDays,
        memory_mb: int = 256,
        ephemeral_storage_mb: int = 512,
        description: str,
        packages: Sequence[Path] = (),
        environment: dict[str, str] | None = None,
    ) -> None:
        super().__init__(scope, id_)
        #: The staged folder the function's code asset is made from.
        self.code_dir = stage_code(code_dir, trusted_build_dir(self), packages=packages)
        self.log_group = logs.LogGroup(
            self, "Logs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY
        )
        self.role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            )
        )
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=RUNTIME,
            code=lambda_.Code.from_asset(str(self.code_dir), exclude=ASSET_EXCLUDES),
            handler=handler,
            timeout=timeout,
            memory_size=memory_mb,
            ephemeral_storage_size=Size.mebibytes(ephemeral_storage_mb),
            role=self.role,
            log_group=self.log_group,
            description=description,
            environment=environment,
        )
