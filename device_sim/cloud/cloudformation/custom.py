"""Custom resources: the project's own handler code, replayed for every request type.

CloudFormation sends the function behind ``ServiceToken`` a request with ``RequestType``
(Create, Update, Delete), ``ResponseURL``, ``StackId``, ``RequestId``, ``ResourceType``,
``LogicalResourceId``, ``ResourceProperties`` (``ServiceToken`` included), and for Update and
Delete ``PhysicalResourceId``, for Update ``OldResourceProperties`` (User Guide, "Custom resource
request objects"). A rollback Update carries the old properties as ``ResourceProperties`` and
the failed new ones as ``OldResourceProperties``. An Update answering a new
``PhysicalResourceId`` is a replacement: CloudFormation deletes the old one in the cleanup
phase ("Custom resource response objects": "If you change the value during an update,
CloudFormation ... sends a delete request to the old resource").

The handler module comes from the code asset of the function behind the ServiceToken (through
the CDK Provider framework's ``USER_ON_EVENT_FUNCTION_ARN``); the clients it receives are the
simulated account's (``SageMakerClient``, ``GreengrassClient``, moto S3 over ``S3Backend``).
"""

from __future__ import annotations

import hashlib
from typing import Any

from device_sim.cloud.cloudformation.context import Context, Created, ResourceFailed
from device_sim.cloud.cloudformation.stack import DeployedResource
from device_sim.cloud.errors import AssemblyError
from device_sim.cloud.lambda_ import code_module
from device_sim.cloud.standins import onnx_archive, training_archive

# Custom resources whose requests change nothing a core device sees.
NO_DEVICE_EFFECT = {
    "Custom::VpcRestrictDefaultSG": "CDK's removal of the default security group's rules (EC2)",
    "Custom::DemoDeviceCleanup": "acts only on Delete: removes the demo device's thing",
}

# Resource type -> the logic module in its handler's asset.
LOGIC = {
    "Custom::TrainingJob": "training_logic",
    "Custom::CompilationJob": "compilation_logic",
    "Custom::ModelPackage": "packaging_logic",
    "Custom::PublishedArtifact": "packaging_logic",
    "Custom::GreengrassDeployment": "deployment_logic",
    "Custom::GreengrassComponentVersion": "component_logic",
    "Custom::GreengrassLogGroup": "log_group_logic",
    "Custom::IotPolicyRelease": "policy_release_logic",
    "Custom::DriftBaseline": "baseline_logic",
}


class CustomResource:
    def __init__(self, rtype: str) -> None:
        self.rtype = rtype

    def request(
        self,
        ctx: Context,
        request_type: str,
        logical: str,
        props: dict[str, Any],
        old: dict[str, Any] | None = None,
        physical: str | None = None,
    ) -> dict[str, Any]:
        event: dict[str, Any] = {
            "RequestType": request_type,
            "ServiceToken": props.get("ServiceToken", ""),
            "ResponseURL": "https://cloudformation-custom-resource-response.sim/",
            "StackId": ctx.stack_id,
            # "A unique ID for the request" (User Guide, "Custom resource request objects"):
            # a rollback Update is a request of its own, never the forward Update's again.
            "RequestId": hashlib.sha256(
                f"{ctx.stack_id}/{logical}/{request_type}/{ctx.cloud.next_request()}".encode()
            ).hexdigest()[:32],
            "ResourceType": self.rtype,
            "LogicalResourceId": logical,
            "ResourceProperties": dict(props),
        }
        if physical is not None:
            event["PhysicalResourceId"] = physical
        if old is not None:
            event["OldResourceProperties"] = dict(old)
        if self.rtype in NO_DEVICE_EFFECT:
            ctx.cloud.notes.append(f"{self.rtype}: not replayed ({NO_DEVICE_EFFECT[self.rtype]})")
            return {"PhysicalResourceId": physical or f"sim-{self.rtype.removeprefix('Custom::')}"}
        module = LOGIC.get(self.rtype)
        if module is None:
            raise AssemblyError(f"no replay for custom resource type {self.rtype}")
        function = ctx.cloud.lambda_.user_function(str(props.get("ServiceToken", "")))
        try:
            with ctx.cloud.wait_conditions.intercept(), code_module(function, module) as logic:
                return self._call(ctx, logic, event)
        except (AssemblyError, ResourceFailed):
            raise
        except Exception as error:
            raise ResourceFailed(f"{type(error).__name__}: {error}") from error

    def _call(self, ctx: Context, logic: Any, event: dict[str, Any]) -> dict[str, Any]:
        cloud = ctx.cloud
        if self.rtype == "Custom::TrainingJob":
            cloud.sagemaker.stand_ins = ctx.stand_ins
            return dict(logic.on_event(event, cloud.sagemaker.client()))
        if self.rtype == "Custom::CompilationJob":
            cloud.sagemaker.stand_ins = ctx.stand_ins
            props = event["ResourceProperties"]
            _bring(ctx, str(props.get("ModelArtifactUri", "")))
            response = dict(logic.on_event(event, cloud.sagemaker.client()))
            if event["RequestType"] == "Delete":
                return response
            # The Provider framework polls isComplete until it answers IsComplete.
            done = logic.is_complete({**event, **response}, cloud.sagemaker.client())
            if not done.get("IsComplete"):
                raise ResourceFailed("compilation job did not complete")
            response["Data"] = {**response.get("Data", {}), **done.get("Data", {})}
            return response
        if self.rtype in ("Custom::ModelPackage", "Custom::PublishedArtifact"):
            props = event["ResourceProperties"]
            for key in ("TrainingArtifactUri", "OnnxArtifactUri"):
                _bring(ctx, str(props.get(key, "")))
            _require_onnx(ctx, str(props.get("OnnxArtifactUri", "")))
            event["ResourceProperties"] = {k: v for k, v in props.items() if k != "ServiceToken"}
            if "OldResourceProperties" in event:
                old = event["OldResourceProperties"]
                event["OldResourceProperties"] = {
                    k: v for k, v in old.items() if k != "ServiceToken"
                }
            with cloud.s3_backend.session() as s3:
                return dict(logic.on_event(event, s3))
        if self.rtype == "Custom::DriftBaseline":
            # Reads the training stand-in's output.tar.gz, writes fleet/baselines/ (moto S3).
            with cloud.s3_backend.session() as s3:
                return dict(logic.on_event(event, s3))
        if self.rtype == "Custom::GreengrassDeployment":

            def stack_status() -> str:
                """DescribeStacks of the requesting stack: its StackStatus now."""
                for stack in cloud.stacks.values():
                    if stack.stack_id == ctx.stack_id:
                        return str(stack.status)
                raise AssemblyError(f"no stack {ctx.stack_id}")

            return dict(logic.on_event(event, cloud.greengrass.client(), stack_status))
        if self.rtype == "Custom::GreengrassComponentVersion":
            # Created or adopted against the simulated Greengrass backend, which computes the
            # artifacts' digests at creation and answers ConflictException for an existing
            # version, as CreateComponentVersion does.
            return dict(logic.on_event(event, cloud.greengrass.client(), _no_sleep))
        if self.rtype == "Custom::GreengrassLogGroup":
            caller = f"stack {ctx.artifact.stack_name}"
            return dict(logic.on_event(event, lambda: cloud.logs.client(caller), _no_sleep))
        if self.rtype == "Custom::IotPolicyRelease":
            # The simulated detach takes effect at once: the handler's wait never runs.
            return dict(logic.on_event(event, cloud.iot.client, _no_sleep, lambda: cloud.now))
        raise AssemblyError(f"no replay for custom resource type {self.rtype}")

    # -- the Provider protocol
    def create(self, ctx: Context, logical: str, props: dict[str, Any]) -> Created:
        response = self.request(ctx, "Create", logical, props)
        return str(response.get("PhysicalResourceId") or ctx.generated_name(logical, 64)), dict(
            response.get("Data") or {}
        )

    def update_request(
        self, ctx: Context, resource: DeployedResource, props: dict[str, Any]
    ) -> Created:
        response = self.request(
            ctx, "Update", resource.logical_id, props, resource.properties, resource.physical_id
        )
        return str(response.get("PhysicalResourceId") or resource.physical_id), dict(
            response.get("Data") or {}
        )

    def update(
        self, ctx: Context, resource: DeployedResource, props: dict[str, Any]
    ) -> dict[str, Any]:
        return self.update_request(ctx, resource, props)[1]

    def delete(self, ctx: Context, resource: DeployedResource) -> None:
        self.request(
            ctx, "Delete", resource.logical_id, resource.properties, None, resource.physical_id
        )


def _bring(ctx: Context, uri: str) -> None:
    """A brought model (``model_artifact_uri``) lives in the user's own bucket, outside the
    stage: put it there once. The user's own archive when given (``--brought-model``);
    otherwise a stand-in, said plainly in the notes: with an ONNX model it is the archive an
    ONNX class packages (``model.onnx`` + ``labels.json`` at the root), else ``labels.json``
    alone, and the device then runs a stand-in, not the user's model."""
    if not uri.startswith("s3://") or ctx.stand_ins is None:
        return
    s3 = ctx.cloud.s3_backend
    bucket, _, key = uri[5:].partition("/")
    if bucket in s3.bucket_regions and (bucket not in ctx.brought or s3.exists(bucket, key)):
        return  # a stage bucket (the training stand-in writes there), or written already
    onnx = ctx.stand_ins.onnx_model
    if ctx.stand_ins.brought_archive is not None:
        data = ctx.stand_ins.brought_archive
        note = f"model_artifact_uri {uri}: holds your archive (--brought-model)"
    elif onnx is not None:
        data = onnx_archive(onnx, ctx.stand_ins.labels)
        note = f"model_artifact_uri {uri}: holds an archive of --onnx-model"
    else:
        data = training_archive(ctx.stand_ins.labels)
        note = (
            f"model_artifact_uri {uri}: holds a STAND-IN (labels class-0.., random weights), "
            "not your model; give --brought-model model.tar.gz to run yours"
        )
    s3.ensure_bucket(bucket)
    s3.put(bucket, key, data)
    ctx.brought.add(bucket)
    ctx.cloud.notes.append(note)


def _require_onnx(ctx: Context, uri: str) -> None:
    if not uri.startswith("s3://") or ctx.stand_ins is None or ctx.stand_ins.onnx_model is not None:
        return
    bucket, _, key = uri[5:].partition("/")
    s3 = ctx.cloud.s3_backend
    if bucket in s3.bucket_regions and not _holds_onnx(s3.get(bucket, key)):
        # absent, or the training stand-in's output.tar.gz without a model (export-onnx false)
        raise AssemblyError(
            f"an ONNX device class packages {uri}, and the training stand-in "
            "has no ONNX model to put there: give one (--onnx-model DIR with "
            "model.onnx and labels.json)"
        )


def _holds_onnx(archive: bytes | None) -> bool:
    import io
    import tarfile

    if archive is None:
        return False
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:*") as tar:
            return any(name.lstrip("./") == "model.onnx" for name in tar.getnames())
    except tarfile.TarError:
        return True  # not ours to judge: packaging refuses it with its own message


def _no_sleep(seconds: float) -> None:
    """Handlers' waits between retries: simulated time does not need to pass for them."""
