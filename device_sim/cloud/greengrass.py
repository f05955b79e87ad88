"""AWS IoT Greengrass V2 in the simulated account: component versions and deployments.

botocore's model (``botocore/data/greengrassv2/2020-11-30/service-2.json``):

* ``CreateComponentVersion``: the service reads each artifact and adds its digest to the recipe
  (developer guide, "Component recipe reference", ``Artifacts``/``Digest``: "AWS IoT Greengrass
  calculates the digest" when the component is created); a name and version that exist already
  -> ``ConflictException`` ("Your request has conflicting operations"): a component version is
  immutable, so CloudFormation's create of an existing version fails.
* ``GetComponent`` ("Gets the recipe for a version of a component": ``recipe``, a blob, in
  ``recipeOutputFormat`` JSON or YAML) and ``DescribeComponent`` (metadata and ``status``:
  ``componentState`` REQUESTED | INITIATED | DEPLOYABLE | FAILED | DEPRECATED, ``message``,
  ``errors``); an unknown ARN -> ``ResourceNotFoundException``. ``ConflictException`` carries
  ``resourceId`` and ``resourceType`` (its required members).
* ``CreateDeployment``: "You can define one deployment for each target. When you create a new
  deployment for a target that has an existing deployment, you replace the previous deployment.
  IoT Greengrass applies the new deployment to the target devices."
* ``CancelDeployment``: "cancels the deployment for devices that haven't yet received it. If a
  device already received the deployment, this operation doesn't change anything for that device."
* ``DeleteDeployment``: "To delete an active deployment, you must first cancel it"
  (``ConflictException`` otherwise). "Deleting a deployment doesn't affect core devices".

``client()`` is a boto3-client-like adapter for the project's handler code.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from device_sim.cloud.env import Env
from device_sim.cloud.errors import AssemblyError, ServiceError


@dataclass
class ComponentVersion:
    name: str
    version: str
    arn: str
    recipe: dict[str, Any]  # with Digest/Algorithm added as the service does
    created: float = 0.0  # the account clock at creation
    # CloudComponentState: the simulated service has every artifact's digest at once.
    state: str = "DEPLOYABLE"
    tags: dict[str, str] = field(default_factory=dict)  # CreateComponentVersion tags


@dataclass
class DeploymentRecord:
    deployment_id: str
    target_arn: str
    document: dict[str, Any]  # the CreateDeployment request (CloudFormation's properties)
    status: str = "ACTIVE"  # ACTIVE | COMPLETED | CANCELED | FAILED | INACTIVE
    is_latest_for_target: bool = True
    history: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)  # CreateDeployment tags
    request: dict[str, Any] = field(default_factory=dict)  # the API request (camelCase)
    created: float = 0.0  # the account clock, and the order of creation


class GreengrassBackend:
    def __init__(self, env: Env, read_object: Callable[[str, str], bytes | None]) -> None:
        self.env = env
        self._read_object = read_object
        self.components: dict[tuple[str, str], ComponentVersion] = {}
        # What the device_sim device reads: one document per target, the target's latest
        # non-cancelled deployment (a live list: tests may append documents directly).
        self.deployments: list[dict[str, Any]] = []
        self.records: dict[str, DeploymentRecord] = {}
        self._counter = 0
        self.clock: Callable[[], float] = lambda: 0.0  # the account's (Cloud sets it)
        # CreateDeployment clientToken -> (deployment ID, when): "When a request succeeds, and
        # you specify the same client token for subsequent successful requests, the IoT
        # Greengrass V2 service returns the successful response that it caches from the
        # previous request. IoT Greengrass V2 caches successful responses for idempotent
        # requests for up to 8 hours." (botocore greengrassv2 CreateDeploymentRequest
        # clientToken)
        self.client_tokens: dict[str, tuple[str, float]] = {}

    # -- component versions
    def component_arn(self, name: str, version: str) -> str:
        return self.env.arn("greengrass", f"components:{name}:versions:{version}")

    def create_component_version(self, recipe: dict[str, Any]) -> ComponentVersion:
        name, version = str(recipe["ComponentName"]), str(recipe["ComponentVersion"])
        if (name, version) in self.components:
            arn = self.component_arn(name, version)
            error = ServiceError(
                "CreateComponentVersion",
                "ConflictException",
                f"Component {name} version {version} already exists "
                f"({arn}); a component version cannot change",
                409,
            )
            error.response.update({"resourceId": arn, "resourceType": "componentVersion"})
            raise error
        recipe = copy.deepcopy(recipe)
        for manifest in recipe.get("Manifests", []):
            for artifact in manifest.get("Artifacts", []):
                uri = artifact.get("Uri") or artifact.get("URI", "")
                if not uri.startswith("s3://"):
                    continue
                bucket, _, key = uri[len("s3://") :].partition("/")
                data = self._read_object(bucket, key)
                if data is None:
                    raise ServiceError(
                        "CreateComponentVersion",
                        "ValidationException",
                        f"component {name}@{version}: artifact {uri} does not exist, so "
                        "CreateComponentVersion cannot compute its digest",
                    )
                artifact.setdefault(
                    "Digest", base64.b64encode(hashlib.sha256(data).digest()).decode()
                )
                artifact.setdefault("Algorithm", "SHA-256")
        component = ComponentVersion(
            name, version, self.component_arn(name, version), recipe, self.clock()
        )
        self.components[(name, version)] = component
        return component

    def component(self, operation: str, arn: str) -> ComponentVersion:
        for component in self.components.values():
            if component.arn == arn:
                return component
        raise ServiceError(operation, "ResourceNotFoundException", f"{arn} not found", 404)

    def delete_component(self, arn: str) -> None:
        for key, component in list(self.components.items()):
            if component.arn == arn:
                del self.components[key]
                return
        raise ServiceError("DeleteComponent", "ResourceNotFoundException", f"{arn} not found", 404)

    # -- deployments
    def create_deployment(self, request: dict[str, Any]) -> str:
        target = str(request.get("targetArn") or request.get("TargetArn") or "")
        if not target:
            raise ServiceError("CreateDeployment", "ValidationException", "targetArn is required")
        document = _document(request)
        self._counter += 1
        digest = hashlib.sha256(f"{target}/{self._counter}".encode()).hexdigest()
        deployment_id = (
            f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"
        )
        for record in self.records.values():
            if record.target_arn == target and record.is_latest_for_target:
                record.is_latest_for_target = False
                if record.status == "ACTIVE":
                    record.status = "INACTIVE"
                    record.history.append(f"replaced by {deployment_id}")
        self.records[deployment_id] = DeploymentRecord(deployment_id, target, document)
        self._refresh()
        return deployment_id

    def _record(self, operation: str, deployment_id: str) -> DeploymentRecord:
        if deployment_id not in self.records:
            raise ServiceError(
                operation, "ResourceNotFoundException", f"deployment {deployment_id} not found", 404
            )
        return self.records[deployment_id]

    def cancel_deployment(self, deployment_id: str) -> None:
        record = self._record("CancelDeployment", deployment_id)
        if record.status == "ACTIVE":
            record.status = "CANCELED"
            record.history.append("cancelled")
        self._refresh()

    def delete_deployment(self, deployment_id: str) -> None:
        record = self._record("DeleteDeployment", deployment_id)
        if record.status == "ACTIVE":
            raise ServiceError(
                "DeleteDeployment",
                "ConflictException",
                f"deployment {deployment_id} is active: cancel it first",
                409,
            )
        del self.records[deployment_id]
        self._refresh()

    def _refresh(self) -> None:
        """What each target's devices run: the document of the latest deployment created for
        the target. Cancelling or deleting it changes nothing for devices that received it
        (``CancelDeployment``, ``DeleteDeployment`` above), so only a create changes this."""
        latest = {r.target_arn: r.document for r in self.records.values() if r.is_latest_for_target}
        for target, document in latest.items():
            for i, existing in enumerate(self.deployments):
                if existing.get("TargetArn") == target:
                    self.deployments[i] = document
                    break
            else:
                self.deployments.append(document)

    def active_for(self, target_arn: str) -> DeploymentRecord | None:
        latest = [
            r
            for r in self.records.values()
            if r.target_arn == target_arn and r.is_latest_for_target
        ]
        return latest[0] if latest else None

    def client(self) -> GreengrassClient:
        return GreengrassClient(self)


def _document(request: dict[str, Any]) -> dict[str, Any]:
    """The deployment in CloudFormation's (PascalCase) shape, whichever shape it came in."""
    if "TargetArn" in request:
        return copy.deepcopy(request)
    out: dict[str, Any] = {}
    for key, value in request.items():
        pascal = key[:1].upper() + key[1:]
        if key == "components":
            value = {
                name: {k[:1].upper() + k[1:]: v for k, v in spec.items()}
                for name, spec in value.items()
            }
            for spec in value.values():
                update = spec.get("ConfigurationUpdate")
                if isinstance(update, dict):
                    spec["ConfigurationUpdate"] = {
                        k[:1].upper() + k[1:]: v for k, v in update.items()
                    }
        out[pascal] = value
    result: dict[str, Any] = json.loads(json.dumps(out))
    return result


CLIENT_TOKEN_SECONDS = 8 * 3600


class GreengrassClient:
    """The boto3 ``greengrassv2`` client calls a deployment handler makes."""

    def __init__(self, backend: GreengrassBackend) -> None:
        self.backend = backend

    def create_component_version(
        self, *, inlineRecipe: bytes | str, tags: dict[str, str] | None = None, **_: Any
    ) -> dict[str, Any]:
        text = inlineRecipe.decode() if isinstance(inlineRecipe, bytes) else inlineRecipe
        try:
            recipe = parse_recipe(text, "CreateComponentVersion", "inlineRecipe")
        except ValueError as error:
            raise ServiceError(
                "CreateComponentVersion", "ValidationException", str(error)
            ) from None
        component = self.backend.create_component_version(recipe)
        component.tags = dict(tags or {})
        return {**self._metadata(component), "arn": component.arn}

    def get_component(self, *, arn: str, recipeOutputFormat: str = "YAML") -> dict[str, Any]:
        """The stored recipe (with the digests the service added); YAML by default."""
        recipe = self.backend.component("GetComponent", arn).recipe
        if recipeOutputFormat == "JSON":
            text = json.dumps(recipe)
        else:
            import yaml

            text = yaml.safe_dump(recipe)
        return {
            "recipeOutputFormat": recipeOutputFormat,
            "recipe": text.encode(),
            "tags": dict(self.backend.component("GetComponent", arn).tags),
        }

    def delete_component(self, *, arn: str) -> dict[str, Any]:
        """DeleteComponent: "deletes the component's recipe and artifacts"."""
        self.backend.delete_component(arn)
        return {}

    def describe_component(self, *, arn: str) -> dict[str, Any]:
        component = self.backend.component("DescribeComponent", arn)
        return {**self._metadata(component), "arn": component.arn}

    @staticmethod
    def _metadata(component: ComponentVersion) -> dict[str, Any]:
        return {
            "componentName": component.name,
            "componentVersion": component.version,
            "creationTimestamp": datetime.fromtimestamp(component.created, timezone.utc),
            "status": {"componentState": component.state, "message": "NONE", "errors": {}},
        }

    def create_deployment(self, **request: Any) -> dict[str, Any]:
        tags = dict(request.pop("tags", None) or {})
        token = request.pop("clientToken", None)
        cached = self.backend.client_tokens.get(token) if token else None
        if cached is not None and self.backend.clock() - cached[1] <= CLIENT_TOKEN_SECONDS:
            return {"deploymentId": cached[0], "iotJobId": f"job-{cached[0]}"}
        api = copy.deepcopy(request)
        deployment_id = self.backend.create_deployment(request)
        record = self.backend.records[deployment_id]
        record.tags, record.request = tags, api
        record.created = self.backend.clock() + len(self.backend.records) * 1e-3
        if token:
            self.backend.client_tokens[token] = (deployment_id, self.backend.clock())
        return {"deploymentId": deployment_id, "iotJobId": f"job-{deployment_id}"}

    def cancel_deployment(self, *, deploymentId: str) -> dict[str, Any]:
        self.backend.cancel_deployment(deploymentId)
        return {"message": "cancelled"}

    def delete_deployment(self, *, deploymentId: str) -> dict[str, Any]:
        self.backend.delete_deployment(deploymentId)
        return {}

    def get_deployment(self, *, deploymentId: str) -> dict[str, Any]:
        record = self.backend._record("GetDeployment", deploymentId)
        return {
            "deploymentId": record.deployment_id,
            "targetArn": record.target_arn,
            "deploymentStatus": record.status,
            "isLatestForTarget": record.is_latest_for_target,
            "deploymentName": record.document.get("DeploymentName", ""),
            "creationTimestamp": datetime.fromtimestamp(record.created, timezone.utc),
            "tags": dict(record.tags),
            # GetDeployment answers the deployment's components and policies too (botocore
            # GetDeploymentResponse), in the request's shape.
            **{
                key: copy.deepcopy(record.request[key])
                for key in ("components", "deploymentPolicies", "iotJobConfiguration")
                if key in record.request
            },
        }

    def list_deployments(self, **kwargs: Any) -> dict[str, Any]:
        target = kwargs.get("targetArn")
        history = kwargs.get("historyFilter", "LATEST_ONLY")
        return {
            "deployments": [
                self.get_deployment(deploymentId=r.deployment_id)
                for r in self.backend.records.values()
                if (target is None or r.target_arn == target)
                and (history == "ALL" or r.is_latest_for_target)
            ]
        }


def parse_recipe(text: str, where: str, logical: str) -> dict[str, Any]:
    """The component recipe in ``text`` (JSON, else YAML); ``where/logical`` name it in the
    error when it is not one (the API call and the resource both pass their recipe here)."""
    try:
        recipe = json.loads(text)
    except json.JSONDecodeError:
        import yaml

        recipe = yaml.safe_load(text)
    if not isinstance(recipe, dict) or "ComponentName" not in recipe:
        raise AssemblyError(f"{where}/{logical}: InlineRecipe is not a component recipe")
    return recipe
