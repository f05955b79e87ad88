"""``Custom::DriftBaseline``: after the packages are built, the training job's drift baseline is
written to ``fleet/baselines/<model id>.json`` for each of them (``device_contract.drift``), so
the fleet stack's Lambda finds it by the model id a device reports, at run time, with no
reference from the fleet stack to this one.

Its own Lambda, not the packaging handler's: that handler's code digest versions every model
package (``ModelPackage``), so a change here must not touch it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from aws_cdk import CustomResource, Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import custom_resources as cr
from constructs import Construct, IDependable

import device_contract
from device_contract import drift
from edge_constructs.artifact_bucket.construct import Prefixes
from edge_constructs.lambda_function import PythonFunction
from edge_constructs.nag import (
    acknowledge_provider_framework,
    acknowledge_wildcards,
    resource_ending,
)

RUNTIME_DIR = Path(__file__).parent / "runtime"
RESOURCE_TYPE = "Custom::DriftBaseline"
# baseline_logic's property and attribute names (a test holds them equal).
BUCKET = "Bucket"
SOURCE_URI = "SourceUri"
MODEL_IDS = "ModelIds"


class DriftBaselineHandler(Construct):
    """The Lambda and Provider behind every ``Custom::DriftBaseline`` of a stack.

    Props:
        bucket: the artifact bucket (the training output is read from ``training/``; the
            baselines are written under ``fleet/baselines/``, nothing else).
        log_retention: retention of the Lambda's and the provider's logs.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        bucket: s3.IBucket,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, id_)
        self.bucket = bucket
        self.function = PythonFunction(
            self,
            "Handler",
            code_dir=RUNTIME_DIR,
            handler="baseline_handler.handler",
            # Streams an archive of a few hundred MB to reach metadata.json.
            timeout=Duration.minutes(10),
            log_retention=log_retention,
            description="Custom::DriftBaseline: the training baseline, per model id",
            packages=[Path(device_contract.__file__).parent],
        )
        self.role = self.function.role
        # GetObject on the training output, PutObject under fleet/baselines/: no List (a missing
        # archive then answers AccessDenied, which the handler reports as no baseline).
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadTrainingOutput",
                actions=["s3:GetObject"],
                resources=[bucket.arn_for_objects(f"{Prefixes.TRAINING}*")],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteDriftBaselines",
                actions=["s3:PutObject"],
                resources=[bucket.arn_for_objects(f"{drift.PREFIX}*")],
            )
        )
        acknowledge_wildcards(
            self.role,
            "Reads the training job's output archive (training/, whose key holds the job name "
            "made at deploy time) and writes fleet/baselines/<model id>.json, whose model ids "
            "are digests computed at packaging time: GetObject and PutObject only.",
            [
                resource_ending(f"/{Prefixes.TRAINING}*"),
                resource_ending(f"/{drift.PREFIX}*"),
            ],
        )
        self.provider = cr.Provider(
            self,
            "Provider",
            on_event_handler=self.function.function,
            log_group=logs.LogGroup(self, "ProviderLogs", retention=log_retention),
        )
        acknowledge_provider_framework(self.provider)


class DriftBaseline(Construct):
    """One class's baseline: ``fleet/baselines/<its model id>.json``.

    Props:
        handler: the stack's :class:`DriftBaselineHandler`.
        source_uri: the training job's ``output.tar.gz``.
        model_ids: the model id of the package(s) built from that job (tokens).
        after: what must exist first (the package).

    Attributes (tokens): ``status`` (one line: the baseline's buckets, or why there is none),
    ``images`` (validation results counted, "0" with none).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        handler: DriftBaselineHandler,
        source_uri: str,
        model_ids: Sequence[str],
        after: Sequence[IDependable],
    ) -> None:
        super().__init__(scope, id_)
        self.resource = CustomResource(
            self,
            "Resource",
            service_token=handler.provider.service_token,
            resource_type=RESOURCE_TYPE,
            properties={
                BUCKET: handler.bucket.bucket_name,
                SOURCE_URI: source_uri,
                MODEL_IDS: list(model_ids),
            },
        )
        self.resource.node.add_dependency(handler.role, *after)
        self.status = self.resource.get_att_string("Status")
        self.images = self.resource.get_att_string("Images")
