"""Packaging (the retired Edge Manager step, rebuilt) and artifact publishing.

One Lambda serves two custom-resource types:

* ``Custom::ModelPackage`` turns Neo's output into the model package (CONTRACTS.md): compiled
  files under ``model/``, labels and metadata beside it, a manifest of digests, written once
  under a content-addressed key in ``packages/``.
* ``Custom::PublishedArtifact`` copies a CDK asset into ``components/`` under a
  content-addressed key, so the artifact a component version points at lives in our versioned
  bucket (not in the CDK asset bucket, which ``cdk gc`` may clean) and never changes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from aws_cdk import CfnResource, CustomResource, Duration
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import custom_resources as cr
from constructs import Construct, IDependable

from edge_constructs.artifact_bucket.construct import Prefixes
from edge_constructs.lambda_function import PythonFunction
from edge_constructs.nag import (
    ASSET_OBJECTS,
    S3_OBJECT_ACTIONS,
    acknowledge_provider_framework,
    acknowledge_wildcards,
    resource_ending,
)
from edge_constructs.naming import digest, register_content, tree_digest
from edge_constructs.runtime_common.cr_names import Package, Published
from edge_constructs.s3_grants import grant_read_object

RUNTIME_DIR = Path(__file__).parent / "runtime"


class ArtifactHandler(Construct):
    """The Lambda and Provider behind ModelPackage and PublishedArtifact (one per stack).

    Props:
        bucket: the artifact bucket it writes to (``packages/``, ``components/``).
        log_retention: retention of its logs.
        memory_mb / ephemeral_storage_mb: sized for a VGG16-sized Neo output (~550 MB).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        bucket: s3.IBucket,
        log_retention: logs.RetentionDays,
        memory_mb: int = 3008,
        ephemeral_storage_mb: int = 10240,
    ) -> None:
        super().__init__(scope, id_)
        self.bucket = bucket
        self.function = PythonFunction(
            self,
            "Handler",
            code_dir=RUNTIME_DIR,
            handler="packaging_handler.handler",
            timeout=Duration.minutes(15),
            memory_mb=memory_mb,
            ephemeral_storage_mb=ephemeral_storage_mb,
            log_retention=log_retention,
            description="Custom::ModelPackage and Custom::PublishedArtifact",
        )
        self.role = self.function.role
        # Write-once keys: Put and Head (GetObject) on the two prefixes, ListBucket for 404s.
        for prefix in Prefixes.DEVICE_READABLE:
            bucket.grant_put(self.role, f"{prefix}*")
            bucket.grant_read(self.role, f"{prefix}*")
        bucket.grant_read(self.role, f"{Prefixes.COMPILED}*")
        bucket.grant_read(self.role, f"{Prefixes.TRAINING}*")
        acknowledge_wildcards(
            self.role,
            "Reads Neo output (compiled/) and training archives (training/), writes "
            "content-addressed keys under packages/ and components/ whose names are digests "
            "computed at run time; reads CDK asset objects (content-hash keys) to publish "
            "them. grant_* adds the object-level action families for those prefixes only.",
            [
                *S3_OBJECT_ACTIONS,
                *(
                    resource_ending(f"/{prefix}*")
                    for prefix in (*Prefixes.DEVICE_READABLE, Prefixes.COMPILED, Prefixes.TRAINING)
                ),
                ASSET_OBJECTS,
            ],
        )
        self.provider = cr.Provider(
            self,
            "Provider",
            on_event_handler=self.function.function,
            log_group=logs.LogGroup(self, "ProviderLogs", retention=log_retention),
        )
        acknowledge_provider_framework(self.provider)
        #: Digest of the handler code; a new packaging layout must give a new model version.
        self.code_digest = tree_digest(self.function.code_dir)

    def grant_read_uri(self, uri: str) -> None:
        """Let the handler read a literal ``s3://`` object given from outside this app."""
        grant_read_object(self.role, uri)


# What train.py --quantize int8 writes beside model.onnx (training_src/edge_training/
# quantize.py INT8_ONNX_FILE; a test holds the two equal).
INT8_ONNX_FILE = "model.int8.onnx"


class ModelPackage(Construct):
    """The Greengrass-ready model package for one compiled model.

    Props:
        handler: the stack's :class:`ArtifactHandler`.
        model_name: name used in the key (``packages/<name>/<name>-<sha>.zip``).
        compiled_artifact_uri: Neo's output archive (token from the compilation job), or "".
        onnx_artifact_uri: instead, an archive with ``model.onnx`` at its root (the training
            job's ``output.tar.gz``), or "". Exactly one of the two.
        training_artifact_uri: the training ``model.tar.gz`` ("" = none), read for labels.json.
        metadata: the package's metadata.json content (input shape, normalization, ...).
        after: what must exist first (the compilation job or the training WaitCondition).

    Every property counts towards :attr:`content` (registered, so that a component version
    whose recipe reads the package's attributes follows it by construction).

    Attributes (tokens): ``artifact_uri``, ``archive_name``, ``sha256``, ``model_id``.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        handler: ArtifactHandler,
        model_name: str,
        training_artifact_uri: str,
        metadata: Mapping[str, object],
        after: Sequence[IDependable],
        compiled_artifact_uri: str = "",
        onnx_artifact_uri: str = "",
        onnx_file: str = "",
    ) -> None:
        super().__init__(scope, id_)
        if bool(compiled_artifact_uri) == bool(onnx_artifact_uri):
            raise ValueError("ModelPackage: give exactly one of compiled_ or onnx_artifact_uri")
        source = (
            {Package.COMPILED_ARTIFACT_URI: compiled_artifact_uri}
            if compiled_artifact_uri
            else {
                Package.ONNX_ARTIFACT_URI: onnx_artifact_uri,
                **({Package.ONNX_FILE: onnx_file} if onnx_file else {}),
            }
        )
        properties = {
            Package.BUCKET: handler.bucket.bucket_name,
            Package.KEY_PREFIX: Prefixes.PACKAGES,
            Package.MODEL_NAME: model_name,
            **source,
            Package.TRAINING_ARTIFACT_URI: training_artifact_uri,
            Package.METADATA: json.dumps(dict(metadata), sort_keys=True),
            # The packaging code: a new layout must give a new package (and model version).
            Package.HANDLER_CODE_DIGEST: handler.code_digest[:16],
        }
        self.content = digest(self, properties)
        self.resource = CustomResource(
            self,
            "Resource",
            service_token=handler.provider.service_token,
            resource_type="Custom::ModelPackage",
            properties=properties,
        )
        self.resource.node.add_dependency(handler.role, *after)
        cfn = self.resource.node.default_child
        assert isinstance(cfn, CfnResource)
        register_content(cfn, self.content)
        self.artifact_uri = self.resource.get_att_string(Package.ARTIFACT_URI)
        self.archive_name = self.resource.get_att_string(Package.ARCHIVE_NAME)
        self.sha256 = self.resource.get_att_string(Package.SHA256)
        self.model_id = self.resource.get_att_string(Package.MODEL_ID)


class PublishedArtifact(Construct):
    """A local file shipped as ``components/<component>/<asset hash><ext>``.

    The key is known at synth time (the asset hash), so a recipe that points at it changes,
    and with it the component version, exactly when the artifact's content changes.

    Props:
        handler: the stack's :class:`ArtifactHandler`.
        path: the file (build a folder into a reproducible zip first: see bundles.py).
        component_name: folder under ``components/``.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        handler: ArtifactHandler,
        path: Path,
        component_name: str,
    ) -> None:
        super().__init__(scope, id_)
        if not path.is_file():
            raise ValueError(f"PublishedArtifact ships one file; {path} is not a file")
        self.asset = s3_assets.Asset(self, "Asset", path=str(path))
        self.asset.grant_read(handler.role)
        extension = path.suffix
        #: The file name on the device (``{artifacts:path}/<file_name>``).
        self.file_name = f"{self.asset.asset_hash[:32]}{extension}"
        #: For a zip: the folder Greengrass unarchives it into.
        self.unarchived_name = self.file_name[: -len(extension)] if extension else self.file_name
        self.key = f"{Prefixes.COMPONENTS}{component_name}/{self.file_name}"
        self.resource = CustomResource(
            self,
            "Resource",
            service_token=handler.provider.service_token,
            resource_type="Custom::PublishedArtifact",
            properties={
                Published.SOURCE_BUCKET: self.asset.s3_bucket_name,
                Published.SOURCE_KEY: self.asset.s3_object_key,
                Published.BUCKET: handler.bucket.bucket_name,
                Published.KEY: self.key,
            },
        )
        self.resource.node.add_dependency(handler.role)
        cfn = self.resource.node.default_child
        assert isinstance(cfn, CfnResource)
        register_content(cfn, self.asset.asset_hash)
        self.uri = f"s3://{handler.bucket.bucket_name}/{self.key}"
