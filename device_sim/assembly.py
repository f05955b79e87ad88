"""Read a synthesized cloud assembly and "deploy" one stage of it into an in-memory cloud.

What it reads (cloud-assembly schema, aws-cdk-lib ``cloud-assembly-schema``): the top-level
``manifest.json``, the stage's nested assembly (an artifact of type ``cdk:cloud-assembly`` whose
``displayName`` is the stage), its ``aws:cloudformation:stack`` artifacts (``templateFile``,
``stackName``, ``dependencies``) and ``cdk:asset-manifest`` files (``source.path``,
``packaging``, ``destinations.*.objectKey``).

What it does with the templates: resolves the CloudFormation intrinsic functions the templates
use (``Ref``, ``Fn::GetAtt``, ``Fn::Join``, ``Fn::Sub``, ``Fn::Select``, ``Fn::Split``,
``Fn::FindInMap``, ``Fn::If``, ``Fn::ImportValue``, ``Fn::GetStackOutput``, pseudo parameters),
following the "Intrinsic function reference" and "Pseudo parameters reference" of the
CloudFormation User Guide, for a simulated account/region/partition; and builds the state that
the stacks create: S3 buckets and objects, IAM roles with their inline and managed policies, IoT
policies, role alias, thing group, Greengrass component versions and the deployment.

Custom resources are replayed by calling the project's own handler logic, taken from the Lambda
code assets in the assembly (exactly the code that would be deployed):

* ``Custom::ModelPackage`` / ``Custom::PublishedArtifact``: ``packaging_logic.on_event`` against
  an S3 emulated by moto;
* ``Custom::TrainingJob`` / ``Custom::CompilationJob``: SageMaker cannot run here. A stand-in puts
  what SageMaker would write where the handlers say it is (``training_logic.model_artifact_uri``;
  ``compilation_logic.completion`` fed a ``DescribeCompilationJob`` answer): ``model.tar.gz``
  with ``labels.json`` for training, and Neo's output for compilation, which is the model folder
  the caller passes (by default the tiny Neo-layout model of ``tests/support/neo_model.py``).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import importlib.util
import io
import json
import re
import shutil
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from device_sim.iam import Policy

NO_VALUE = object()


ONNX_FILE = "model.onnx"


class AssemblyError(ValueError):
    """The assembly cannot be read or deployed; the message names what and where."""


@dataclass(frozen=True)
class Env:
    """The simulated account, region and partition (CloudFormation pseudo parameters)."""

    account: str = "111122223333"
    region: str = "eu-west-1"
    partition: str = "aws"
    url_suffix: str = "amazonaws.com"

    def arn(
        self, service: str, resource: str, *, region: str | None = None, account: str | None = None
    ) -> str:
        r = self.region if region is None else region
        a = self.account if account is None else account
        return f"arn:{self.partition}:{service}:{r}:{a}:{resource}"


@dataclass(frozen=True)
class AssetFile:
    asset_hash: str
    source: Path
    packaging: str  # "file" or "zip"
    bucket_template: str
    object_key: str


@dataclass
class StackArtifact:
    artifact_id: str
    stack_name: str
    display_name: str
    template: dict[str, Any]
    assets: dict[str, AssetFile]
    dependencies: list[str]


@dataclass
class Stage:
    name: str
    directory: Path
    stacks: list[StackArtifact]  # in deployment (dependency) order

    def stack(self, suffix: str) -> StackArtifact:
        for s in self.stacks:
            if s.display_name.endswith("/" + suffix):
                return s
        raise AssemblyError(f"stage {self.name} has no stack {suffix!r}")


def load_stage(assembly_dir: Path, stage: str) -> Stage:
    """The nested assembly of ``stage`` in ``assembly_dir`` (a ``cdk.out`` or a synth outdir)."""
    manifest_path = assembly_dir / "manifest.json"
    if not assembly_dir.is_dir():
        raise AssemblyError(f"cloud assembly {assembly_dir} does not exist (run cdk synth first)")
    if not manifest_path.is_file():
        raise AssemblyError(f"{assembly_dir} is not a cloud assembly: no manifest.json")
    manifest = _read_json(manifest_path)
    nested = {
        a.get("properties", {}).get("displayName", aid): a["properties"]["directoryName"]
        for aid, a in manifest.get("artifacts", {}).items()
        if a.get("type") == "cdk:cloud-assembly"
    }
    if stage not in nested:
        raise AssemblyError(
            f"unknown stage {stage!r} in {assembly_dir}; stages there: "
            f"{', '.join(sorted(nested)) or 'none'}"
        )
    directory = assembly_dir / nested[stage]
    inner = _read_json(directory / "manifest.json")
    artifacts = inner.get("artifacts", {})
    asset_files: dict[str, AssetFile] = {}
    for artifact in artifacts.values():
        if artifact.get("type") != "cdk:asset-manifest":
            continue
        asset_manifest_path = directory / artifact["properties"]["file"]
        for asset_hash, entry in _read_json(asset_manifest_path).get("files", {}).items():
            destination = next(iter(entry["destinations"].values()))
            asset_files[asset_hash] = AssetFile(
                asset_hash=asset_hash,
                source=(asset_manifest_path.parent / entry["source"]["path"]).resolve(),
                packaging=entry["source"].get("packaging", "file"),
                bucket_template=destination["bucketName"],
                object_key=destination["objectKey"],
            )
    stacks: dict[str, StackArtifact] = {}
    for aid, artifact in artifacts.items():
        if artifact.get("type") != "aws:cloudformation:stack":
            continue
        props = artifact["properties"]
        stacks[aid] = StackArtifact(
            artifact_id=aid,
            stack_name=props.get("stackName", aid),
            display_name=artifact.get("displayName", aid),
            template=_read_json(directory / props["templateFile"]),
            assets=asset_files,
            dependencies=[d for d in artifact.get("dependencies", []) if d in artifacts],
        )
    ordered: list[StackArtifact] = []
    seen: set[str] = set()

    def visit(aid: str, path: tuple[str, ...]) -> None:
        if aid in seen or aid not in stacks:
            return
        if aid in path:
            raise AssemblyError(f"stack dependency cycle: {' -> '.join((*path, aid))}")
        for dep in stacks[aid].dependencies:
            visit(dep, (*path, aid))
        seen.add(aid)
        ordered.append(stacks[aid])

    for aid in sorted(stacks):
        visit(aid, ())
    if not ordered:
        raise AssemblyError(f"stage {stage!r} in {assembly_dir} has no stacks")
    return Stage(name=stage, directory=directory, stacks=ordered)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AssemblyError(f"{path} is missing") from None
    except json.JSONDecodeError as error:
        raise AssemblyError(f"{path} is not valid JSON: {error}") from None


# ---------------------------------------------------------------- the simulated cloud
@dataclass
class Role:
    name: str
    arn: str
    policies: list[Policy] = field(default_factory=list)
    managed_policy_arns: list[str] = field(default_factory=list)


@dataclass
class ComponentVersion:
    name: str
    version: str
    arn: str
    recipe: dict[str, Any]  # with Digest/Algorithm added as the service does


@dataclass
class DeployedStack:
    name: str
    display_name: str
    resources: dict[str, DeployedResource]
    outputs: dict[str, Any]


@dataclass
class DeployedResource:
    logical_id: str
    type: str
    properties: dict[str, Any]
    physical_id: str
    attributes: dict[str, Any]


@dataclass
class Cloud:
    """What exists in the simulated account once the stage's stacks are deployed."""

    env: Env
    stacks: dict[str, DeployedStack] = field(default_factory=dict)  # by stack name
    s3: dict[str, dict[str, bytes]] = field(default_factory=dict)  # bucket -> key -> bytes
    bucket_regions: dict[str, str] = field(default_factory=dict)
    bucket_policies: dict[str, Policy] = field(default_factory=dict)  # bucket -> policy
    roles: dict[str, Role] = field(default_factory=dict)  # by role name
    managed_policies: dict[str, Policy] = field(default_factory=dict)  # by ARN
    iot_policies: dict[str, Policy] = field(default_factory=dict)  # by policy name
    role_aliases: dict[str, str] = field(default_factory=dict)  # alias -> role ARN
    thing_groups: dict[str, str] = field(default_factory=dict)  # name -> ARN
    components: dict[tuple[str, str], ComponentVersion] = field(default_factory=dict)
    deployments: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def output(self, stack_suffix: str, name: str) -> Any:
        for stack in self.stacks.values():
            if stack.display_name.endswith("/" + stack_suffix):
                if name not in stack.outputs:
                    raise AssemblyError(f"stack {stack.display_name} has no output {name}")
                return stack.outputs[name]
        raise AssemblyError(f"no deployed stack {stack_suffix!r}")

    def role_policies(self, role_name: str) -> list[Policy]:
        """Inline policies plus attached managed policies of a role (what IAM evaluates)."""
        role = self.roles.get(role_name)
        if role is None:
            raise AssemblyError(f"role {role_name} does not exist in the simulated account")
        attached = [
            self.managed_policies[a] for a in role.managed_policy_arns if a in self.managed_policies
        ]
        return [*role.policies, *attached]

    def role_alias_arn(self, alias: str) -> str:
        return self.env.arn("iot", f"rolealias/{alias}")


# ---------------------------------------------------------------- intrinsic functions
class Resolver:
    """Resolves one template's intrinsic functions against the deployed state."""

    def __init__(
        self, cloud: Cloud, stack: StackArtifact, deployed: dict[str, DeployedResource]
    ) -> None:
        self.cloud = cloud
        self.stack = stack
        self.deployed = deployed
        self.template = stack.template
        self.conditions: dict[str, bool] = {}

    def pseudo(self, name: str) -> Any:
        env = self.cloud.env
        table: dict[str, Any] = {
            "AWS::AccountId": env.account,
            "AWS::Region": env.region,
            "AWS::Partition": env.partition,
            "AWS::URLSuffix": env.url_suffix,
            "AWS::StackName": self.stack.stack_name,
            "AWS::StackId": env.arn(
                "cloudformation", f"stack/{self.stack.stack_name}/00000000-sim"
            ),
            "AWS::NoValue": NO_VALUE,
            "AWS::NotificationARNs": [],
        }
        if name not in table:
            raise AssemblyError(f"{self._where()}: unknown pseudo parameter {name}")
        return table[name]

    def _where(self) -> str:
        return self.stack.display_name

    def condition(self, name: str) -> bool:
        if name not in self.conditions:
            spec = self.template.get("Conditions", {}).get(name)
            if spec is None:
                raise AssemblyError(f"{self._where()}: unknown condition {name}")
            self.conditions[name] = bool(self.resolve(spec))
        return self.conditions[name]

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            items = [self.resolve(v) for v in value]
            return [v for v in items if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                logical, attr = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.get_att(logical, self.resolve(attr))
            if key == "Fn::Join":
                sep, parts = arg
                return str(sep).join(_str(p) for p in self.resolve(parts))
            if key == "Fn::Sub":
                return self.sub(arg)
            if key == "Fn::Select":
                index, items = self.resolve(arg)
                return items[int(index)]
            if key == "Fn::Split":
                sep, text = self.resolve(arg)
                return str(text).split(sep)
            if key == "Fn::FindInMap":
                m, k1, k2 = self.resolve(arg)
                try:
                    return self.template["Mappings"][m][k1][k2]
                except KeyError:
                    raise AssemblyError(
                        f"{self._where()}: Fn::FindInMap {m}/{k1}/{k2} has no value (a region "
                        f"the template's mapping does not cover?)"
                    ) from None
            if key == "Fn::If":
                name, yes, no = arg
                return self.resolve(yes if self.condition(name) else no)
            if key == "Fn::Equals":
                a, b = self.resolve(arg)
                return a == b
            if key == "Fn::Not":
                return not self.resolve(arg[0])
            if key == "Fn::And":
                return all(self.resolve(a) for a in arg)
            if key == "Fn::Or":
                return any(self.resolve(a) for a in arg)
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::Base64":
                return base64.b64encode(str(self.resolve(arg)).encode()).decode()
            if key == "Fn::ImportValue":
                return self.import_value(self.resolve(arg))
            if key == "Fn::GetStackOutput":
                return self.stack_output(self.resolve(arg))
            if key == "Fn::GetAZs":
                # The region's Availability Zones (CloudFormation User Guide, Fn::GetAZs); the
                # simulated region has three.
                return [f"{self.cloud.env.region}{zone}" for zone in "abc"]
            if key.startswith("Fn::"):
                raise AssemblyError(f"{self._where()}: intrinsic {key} is not supported")
        out = {}
        for k, v in value.items():
            resolved = self.resolve(v)
            if resolved is not NO_VALUE:
                out[k] = resolved
        return out

    def ref(self, name: str) -> Any:
        if name.startswith("AWS::"):
            return self.pseudo(name)
        params = self.template.get("Parameters", {})
        if name in params:
            return _parameter_value(name, params[name])
        if name in self.deployed:
            return self.deployed[name].physical_id
        if name in self.template.get("Resources", {}):
            raise AssemblyError(f"{self._where()}: Ref {name} before it was created")
        raise AssemblyError(f"{self._where()}: Ref to unknown name {name}")

    def get_att(self, logical: str, attr: str) -> Any:
        resource = self.deployed.get(logical)
        if resource is None:
            raise AssemblyError(f"{self._where()}: Fn::GetAtt {logical}.{attr}: no such resource")
        if attr not in resource.attributes:
            raise AssemblyError(
                f"{self._where()}: Fn::GetAtt {logical}.{attr}: {resource.type} has no attribute "
                f"{attr} here (known: {', '.join(sorted(resource.attributes)) or 'none'})"
            )
        return resource.attributes[attr]

    def sub(self, arg: Any) -> str:
        if isinstance(arg, list):
            text, variables = arg[0], self.resolve(arg[1])
        else:
            text, variables = arg, {}

        def replace(match: re.Match[str]) -> str:
            body = match.group(1)
            if body.startswith("!"):
                return "${" + body[1:] + "}"
            if body in variables:
                return _str(variables[body])
            if "." in body and not body.startswith("AWS::"):
                logical, attr = body.split(".", 1)
                return _str(self.get_att(logical, attr))
            return _str(self.ref(body))

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    def import_value(self, name: str) -> Any:
        for stack in self.cloud.stacks.values():
            exports = stack.outputs.get("__exports__", {})
            if name in exports:
                return exports[name]
        raise AssemblyError(f"{self._where()}: Fn::ImportValue {name}: no stack exports it")

    def stack_output(self, arg: Mapping[str, Any]) -> Any:
        name, output = arg.get("StackName"), arg.get("OutputName")
        stack = self.cloud.stacks.get(str(name))
        if stack is None:
            raise AssemblyError(f"{self._where()}: Fn::GetStackOutput: stack {name} not deployed")
        if output not in stack.outputs:
            raise AssemblyError(f"{self._where()}: stack {name} has no output {output}")
        return stack.outputs[output]


def _parameter_value(name: str, spec: Mapping[str, Any]) -> Any:
    if "Default" not in spec:
        raise AssemblyError(f"parameter {name} has no default; the simulator passes none")
    if str(spec.get("Type", "")).startswith("AWS::SSM::Parameter::Value"):
        return "21"  # the CDK bootstrap version parameter: any bootstrap >= 6 passes
    return spec["Default"]


def _str(value: Any) -> str:
    if value is NO_VALUE:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _dependencies(value: Any) -> set[str]:
    """Logical IDs a value refers to (Ref, GetAtt, Sub)."""
    found: set[str] = set()
    if isinstance(value, list):
        for v in value:
            found |= _dependencies(v)
    elif isinstance(value, dict):
        for k, v in value.items():
            if k == "Ref" and isinstance(v, str):
                found.add(v)
            elif k == "Fn::GetAtt":
                found.add(v[0] if isinstance(v, list) else str(v).split(".")[0])
            elif k == "Fn::Sub":
                text = v[0] if isinstance(v, list) else v
                for m in re.findall(r"\$\{([^}!]+)\}", text):
                    found.add(m.split(".")[0])
                if isinstance(v, list):
                    found |= _dependencies(v[1])
            else:
                found |= _dependencies(v)
    return found


def _resource_order(resources: Mapping[str, Any]) -> list[str]:
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(name: str) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            raise AssemblyError(f"resource dependency cycle through {name}")
        state[name] = 1
        spec = resources[name]
        deps = _dependencies(spec.get("Properties", {})) | set(_as_list(spec.get("DependsOn")))
        for dep in sorted(deps):
            if dep in resources:
                visit(dep)
        state[name] = 2
        order.append(name)

    for name in resources:
        visit(name)
    return order


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


# ---------------------------------------------------------------- handler code from the assets
@contextlib.contextmanager
def handler_module(stage: Stage, module: str) -> Iterator[ModuleType]:
    """Import ``module`` from the Lambda code asset that ships it, as Lambda would (the asset
    folder is the import root, so sibling modules import each other as top-level modules)."""
    folder = None
    for stack in stage.stacks:
        for asset in stack.assets.values():
            if asset.source.is_dir() and (asset.source / f"{module}.py").is_file():
                folder = asset.source
                break
    if folder is None:
        raise AssemblyError(f"no Lambda asset in stage {stage.name} ships {module}.py")
    siblings = {p.stem for p in folder.glob("*.py")}
    saved = {name: sys.modules.pop(name) for name in list(sys.modules) if name in siblings}
    sys.path.insert(0, str(folder))
    try:
        spec = importlib.util.spec_from_file_location(module, folder / f"{module}.py")
        assert spec is not None and spec.loader is not None
        loaded = importlib.util.module_from_spec(spec)
        sys.modules[module] = loaded
        spec.loader.exec_module(loaded)
        yield loaded
    finally:
        sys.path.remove(str(folder))
        for name in siblings:
            sys.modules.pop(name, None)
        sys.modules.update(saved)


# ---------------------------------------------------------------- deploying a stage
@dataclass(frozen=True)
class StandIns:
    """What SageMaker would have produced: Neo's output folder, the class labels (the
    training job's ``model.tar.gz`` holds only ``labels.json``), and, when the caller has one,
    a real ONNX model for the training job's ``output/output.tar.gz`` (what ``train.py``
    exports to ``SM_OUTPUT_DATA_DIR``; ONNX device classes package it). ``onnx_model`` is None
    when no ONNX model was given: a stage with an ONNX class then fails to deploy, naming it."""

    model_dir: Path
    labels: Mapping[str, str]
    onnx_model: Path | None = None


# Custom resources whose Create changes nothing a core device sees; any other unknown type fails.
_NO_DEVICE_EFFECT = {
    "Custom::VpcRestrictDefaultSG": "CDK's removal of the default security group's rules (EC2)",
    "Custom::DemoDeviceCleanup": "acts only on Delete: removes the demo device's thing",
    "Custom::IotPolicyRelease": "acts only on Delete: detaches and deletes the IoT policies",
    "Custom::GreengrassLogGroup": "creates or adopts a log group and sets its retention",
}


def _unmodelled_attributes(rtype: str, logical: str, region: str) -> dict[str, Any]:
    """A resource the device never touches (a VPC, an instance, ...) still answers Fn::GetAtt:
    with an opaque ``sim-<logical>-<attribute>`` value for each attribute its CloudFormation
    resource schema declares (cfn-lint's copy of the schemas, ``get_atts``); a type with no
    schema has none."""
    try:
        from cfnlint.schema import PROVIDER_SCHEMA_MANAGER, ResourceNotFoundError

        try:
            schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(region, rtype)
        except ResourceNotFoundError:
            return {}
    except ImportError:  # cfn-lint is a development dependency
        return {}
    return {name: f"sim-{logical}-{name}" for name in schema.get_atts}


def _generated_name(env: Env, stack: str, logical: str, limit: int, lower: bool = False) -> str:
    """CloudFormation names unnamed resources ``<stack>-<logical id>-<random>`` ("Name type"
    page of the CloudFormation User Guide); the random part is a digest here (deterministic)."""
    suffix = hashlib.sha256(f"{env.account}/{env.region}/{stack}/{logical}".encode()).hexdigest()
    name = f"{stack[: limit // 2]}-{logical[: limit // 3]}-{suffix[:12].upper()}"
    name = name[:limit]
    return name.lower() if lower else name


class _Deployer:
    def __init__(self, stage: Stage, env: Env, stand_ins: StandIns, s3: Any) -> None:
        self.stage = stage
        self.env = env
        self.stand_ins = stand_ins
        self.s3 = s3
        self.cloud = Cloud(env=env)
        self.brought: set[str] = set()  # the user's own buckets the stand-ins wrote to

    # -- S3 helpers (moto)
    def ensure_bucket(self, bucket: str) -> None:
        if bucket in self.cloud.bucket_regions:
            return
        if self.env.region == "us-east-1":
            self.s3.create_bucket(Bucket=bucket)
        else:
            self.s3.create_bucket(
                Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": self.env.region}
            )
        self.cloud.bucket_regions[bucket] = self.env.region

    def bring(self, uri: str) -> None:
        """A brought model (``model_artifact_uri``) lives in the user's own bucket, outside the
        stage: put the stand-in there once. With an ONNX model it is the archive an ONNX class
        packages (``model.onnx`` + ``labels.json`` at the root), else ``labels.json`` alone."""
        if not uri.startswith("s3://"):
            return
        bucket, key = _split_s3(uri)
        if bucket in self.cloud.bucket_regions and (
            bucket not in self.brought or self._exists(bucket, key)
        ):
            return  # a stage bucket (the training stand-in writes there), or written already
        onnx = self.stand_ins.onnx_model
        data = (
            _onnx_archive(onnx, self.stand_ins.labels)
            if onnx is not None
            else _training_archive(self.stand_ins.labels)
        )
        self.put(uri, data)
        self.brought.add(bucket)
        self.cloud.notes.append(f"brought-model stand-in wrote {uri}")

    def _exists(self, bucket: str, key: str) -> bool:
        listed = self.s3.list_objects_v2(Bucket=bucket, Prefix=key)
        return any(item["Key"] == key for item in listed.get("Contents", []))

    def put(self, uri: str, data: bytes) -> None:
        bucket, key = _split_s3(uri)
        self.ensure_bucket(bucket)
        self.s3.put_object(Bucket=bucket, Key=key, Body=data)

    def publish_assets(self) -> None:
        """``cdk deploy`` uploads file assets to the bootstrap bucket before the stacks."""
        for stack in self.stage.stacks:
            for asset in stack.assets.values():
                bucket = (
                    asset.bucket_template.replace("${AWS::AccountId}", self.env.account)
                    .replace("${AWS::Region}", self.env.region)
                    .replace("${AWS::Partition}", self.env.partition)
                )
                self.ensure_bucket(bucket)
                if asset.packaging == "file":
                    data = asset.source.read_bytes()
                else:
                    data = _zip_folder(asset.source)
                self.s3.put_object(Bucket=bucket, Key=asset.object_key, Body=data)

    def deploy(self) -> Cloud:
        self.publish_assets()
        for stack in self.stage.stacks:
            self.deploy_stack(stack)
        for bucket in self.cloud.bucket_regions:
            objects: dict[str, bytes] = {}
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                for item in page.get("Contents", []):
                    body = self.s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                    objects[item["Key"]] = body
            self.cloud.s3[bucket] = objects
        self.finish_component_versions()
        return self.cloud

    def deploy_stack(self, stack: StackArtifact) -> None:
        resources = stack.template.get("Resources", {})
        deployed: dict[str, DeployedResource] = {}
        resolver = Resolver(self.cloud, stack, deployed)
        for logical in _resource_order(resources):
            spec = resources[logical]
            if "Condition" in spec and not resolver.condition(spec["Condition"]):
                continue
            props = resolver.resolve(spec.get("Properties", {}))
            deployed[logical] = self.create(stack, logical, spec["Type"], props)
        outputs: dict[str, Any] = {}
        exports: dict[str, Any] = {}
        for name, out in stack.template.get("Outputs", {}).items():
            if "Condition" in out and not resolver.condition(out["Condition"]):
                continue
            outputs[name] = resolver.resolve(out["Value"])
            if "Export" in out:
                exports[str(resolver.resolve(out["Export"]["Name"]))] = outputs[name]
        outputs["__exports__"] = exports
        self.cloud.stacks[stack.stack_name] = DeployedStack(
            name=stack.stack_name,
            display_name=stack.display_name,
            resources=deployed,
            outputs=outputs,
        )

    def create(
        self, stack: StackArtifact, logical: str, rtype: str, props: dict[str, Any]
    ) -> DeployedResource:
        env, cloud = self.env, self.cloud
        attrs: dict[str, Any] = {}
        physical = _generated_name(env, stack.stack_name, logical, 64)
        if rtype == "AWS::S3::Bucket":
            physical = props.get("BucketName") or _generated_name(
                env, stack.stack_name, logical, 63, lower=True
            )
            self.ensure_bucket(physical)
            attrs = {
                "Arn": f"arn:{env.partition}:s3:::{physical}",
                "DomainName": f"{physical}.s3.{env.url_suffix}",
                "RegionalDomainName": f"{physical}.s3.{env.region}.{env.url_suffix}",
            }
        elif rtype == "AWS::S3::BucketPolicy":
            cloud.bucket_policies[props["Bucket"]] = Policy(
                f"{props['Bucket']} bucket policy", props["PolicyDocument"]
            )
        elif rtype == "AWS::IAM::Role":
            physical = props.get("RoleName") or physical
            path = props.get("Path", "/")
            arn = f"arn:{env.partition}:iam::{env.account}:role{path}{physical}"
            role = Role(
                name=physical, arn=arn, managed_policy_arns=list(props.get("ManagedPolicyArns", []))
            )
            for p in props.get("Policies", []):
                role.policies.append(Policy(p["PolicyName"], p["PolicyDocument"]))
            cloud.roles[physical] = role
            attrs = {"Arn": arn, "RoleId": "AROA" + physical[:16].upper()}
        elif rtype == "AWS::IAM::Policy":
            physical = props["PolicyName"]
            for role_name in props.get("Roles", []):
                cloud.roles[role_name].policies.append(
                    Policy(f"{role_name}/{physical}", props["PolicyDocument"])
                )
        elif rtype == "AWS::IAM::ManagedPolicy":
            name = props.get("ManagedPolicyName") or physical
            physical = (
                f"arn:{env.partition}:iam::{env.account}:policy{props.get('Path', '/')}{name}"
            )
            cloud.managed_policies[physical] = Policy(name, props["PolicyDocument"])
            for role_name in props.get("Roles", []):
                cloud.roles[role_name].managed_policy_arns.append(physical)
            attrs = {"PolicyArn": physical}
        elif rtype == "AWS::IoT::Policy":
            physical = props.get("PolicyName") or physical
            cloud.iot_policies[physical] = Policy(physical, props["PolicyDocument"])
            attrs = {"Arn": env.arn("iot", f"policy/{physical}"), "Id": physical}
        elif rtype == "AWS::IoT::RoleAlias":
            physical = props.get("RoleAlias") or physical
            cloud.role_aliases[physical] = props["RoleArn"]
            attrs = {"RoleAliasArn": env.arn("iot", f"rolealias/{physical}")}
        elif rtype == "AWS::IoT::ThingGroup":
            physical = props.get("ThingGroupName") or physical
            cloud.thing_groups[physical] = env.arn("iot", f"thinggroup/{physical}")
            attrs = {"Arn": cloud.thing_groups[physical], "Id": physical}
        elif rtype == "AWS::Lambda::Function":
            physical = props.get("FunctionName") or physical
            attrs = {"Arn": env.arn("lambda", f"function:{physical}")}
        elif rtype == "AWS::Logs::LogGroup":
            physical = props.get("LogGroupName") or physical
            attrs = {"Arn": env.arn("logs", f"log-group:{physical}:*")}
        elif rtype == "AWS::StepFunctions::StateMachine":
            attrs = {"Arn": env.arn("states", f"stateMachine:{physical}"), "Name": physical}
        elif rtype == "AWS::Events::Rule":
            attrs = {"Arn": env.arn("events", f"rule/{physical}")}
        elif rtype == "AWS::CloudFormation::WaitConditionHandle":
            physical = f"https://cloudformation-waitcondition-{env.region}.s3.amazonaws.com/sim"
        elif rtype == "AWS::GreengrassV2::ComponentVersion":
            recipe = _parse_recipe(props["InlineRecipe"], stack.display_name, logical)
            name, version = recipe["ComponentName"], recipe["ComponentVersion"]
            physical = env.arn("greengrass", f"components:{name}:versions:{version}")
            cloud.components[(name, version)] = ComponentVersion(name, version, physical, recipe)
            attrs = {"Arn": physical, "ComponentName": name, "ComponentVersion": version}
        elif rtype == "AWS::GreengrassV2::Deployment":
            cloud.deployments.append(props)
            physical = (
                "sim-deployment-"
                + hashlib.sha256(json.dumps(props, sort_keys=True).encode()).hexdigest()[:12]
            )
            attrs = {"DeploymentId": physical}
        elif rtype.startswith("Custom::"):
            physical, attrs = self.custom(rtype, props)
        else:
            attrs = _unmodelled_attributes(rtype, logical, env.region)
        return DeployedResource(logical, rtype, props, physical, attrs)

    # -- custom resources
    def custom(self, rtype: str, props: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        if rtype == "Custom::TrainingJob":
            with handler_module(self.stage, "training_logic") as logic:
                uri = logic.model_artifact_uri(props["OutputS3Uri"], props["JobName"])
            self.put(uri, _training_archive(self.stand_ins.labels))
            self.cloud.notes.append(f"SageMaker training stand-in wrote {uri}")
            if self.stand_ins.onnx_model is not None:
                # SageMaker uploads SM_OUTPUT_DATA_DIR as output/output.tar.gz beside
                # model.tar.gz ("How Amazon SageMaker Processes Training Output",
                # https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-training-algo-output.html).
                output = uri.rsplit("/", 1)[0] + "/output.tar.gz"
                self.put(output, _onnx_archive(self.stand_ins.onnx_model, self.stand_ins.labels))
                self.cloud.notes.append(f"SageMaker training stand-in wrote {output}")
            return props["JobName"], {
                "JobName": props["JobName"],
                "ModelArtifactUri": uri,
                "TrainingJobArn": self.env.arn("sagemaker", f"training-job/{props['JobName']}"),
            }
        if rtype == "Custom::CompilationJob":
            target = props.get("TargetDevice") or "_".join(
                p for p in (props.get("TargetPlatformOs"), props.get("TargetPlatformArch")) if p
            )
            # Neo names its output after the input archive and the target.
            uri = f"{props['OutputS3Uri'].rstrip('/')}/model-{target}.tar.gz"
            self.put(uri, _tar_folder(self.stand_ins.model_dir))
            self.bring(props.get("ModelArtifactUri", ""))
            description = {
                "CompilationJobName": props["JobName"],
                "CompilationJobStatus": "COMPLETED",
                "ModelArtifacts": {"S3ModelArtifacts": uri},
            }
            with handler_module(self.stage, "compilation_logic") as logic:
                data = logic.completion(description)["Data"]
            self.cloud.notes.append(f"SageMaker Neo stand-in wrote {uri}")
            return props["JobName"], dict(data)
        if rtype in ("Custom::ModelPackage", "Custom::PublishedArtifact"):
            for key in ("TrainingArtifactUri", "OnnxArtifactUri"):
                self.bring(str(props.get(key, "")))
            onnx_uri = str(props.get("OnnxArtifactUri", ""))
            if onnx_uri.startswith("s3://") and self.stand_ins.onnx_model is None:
                bucket, key = _split_s3(onnx_uri)
                if bucket in self.cloud.bucket_regions and not self._exists(bucket, key):
                    raise AssemblyError(
                        f"an ONNX device class packages {onnx_uri}, and the training stand-in "
                        "has no ONNX model to put there: give one (--onnx-model DIR with "
                        "model.onnx and labels.json)"
                    )
            event = {
                "RequestType": "Create",
                "ResourceType": rtype,
                "ResourceProperties": {k: v for k, v in props.items() if k != "ServiceToken"},
            }
            with handler_module(self.stage, "packaging_logic") as logic:
                response = logic.on_event(event, self.s3)
            return str(response["PhysicalResourceId"]), dict(response.get("Data", {}))
        if rtype in _NO_DEVICE_EFFECT:
            self.cloud.notes.append(f"{rtype}: not replayed ({_NO_DEVICE_EFFECT[rtype]})")
            return f"sim-{rtype.removeprefix('Custom::')}", {}
        raise AssemblyError(f"no replay for custom resource type {rtype}")

    def finish_component_versions(self) -> None:
        """The Greengrass service reads each artifact when the version is created and adds its
        digest to the recipe (CreateComponentVersion; developer guide "Component recipe
        reference", Artifacts/Digest: "AWS IoT Greengrass calculates the digest" when the
        component is created); the nucleus then checks that digest (ArtifactDownloader)."""
        for component in self.cloud.components.values():
            for manifest in component.recipe.get("Manifests", []):
                for artifact in manifest.get("Artifacts", []):
                    uri = artifact.get("Uri") or artifact.get("URI", "")
                    if not uri.startswith("s3://"):
                        continue
                    bucket, key = _split_s3(uri)
                    data = self.cloud.s3.get(bucket, {}).get(key)
                    if data is None:
                        raise AssemblyError(
                            f"component {component.name}@{component.version}: artifact {uri} "
                            "does not exist, so CreateComponentVersion cannot compute its digest"
                        )
                    digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
                    artifact.setdefault("Digest", digest)
                    artifact.setdefault("Algorithm", "SHA-256")


def _parse_recipe(text: str, where: str, logical: str) -> dict[str, Any]:
    try:
        recipe = json.loads(text)
    except json.JSONDecodeError:
        import yaml

        recipe = yaml.safe_load(text)
    if not isinstance(recipe, dict) or "ComponentName" not in recipe:
        raise AssemblyError(f"{where}/{logical}: InlineRecipe is not a component recipe")
    return recipe


def _split_s3(uri: str) -> tuple[str, str]:
    match = re.match(r"^s3://([^/]+)/(.+)$", uri)
    if not match:
        raise AssemblyError(f"not an s3://bucket/key URI: {uri!r}")
    return match.group(1), match.group(2)


def split_s3(uri: str) -> tuple[str, str]:
    return _split_s3(uri)


def _tar_folder(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                tar.add(path, arcname=path.relative_to(folder).as_posix())
    return buffer.getvalue()


def _training_archive(labels: Mapping[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        data = json.dumps(dict(labels), sort_keys=True).encode()
        info = tarfile.TarInfo("labels.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _onnx_archive(onnx_model: Path, labels: Mapping[str, str]) -> bytes:
    """``output.tar.gz`` as ``train.py --export-onnx true`` leaves it: ``model.onnx`` and
    ``labels.json`` at the root (plus ``metadata.json`` when the model folder has one)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(onnx_model / ONNX_FILE, arcname=ONNX_FILE)
        metadata = onnx_model / "metadata.json"
        if metadata.is_file():
            tar.add(metadata, arcname="metadata.json")
        data = json.dumps(dict(labels), sort_keys=True).encode()
        info = tarfile.TarInfo("labels.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def read_onnx_model(folder: Path) -> dict[str, str]:
    """The labels of a caller's ONNX model folder (``model.onnx`` + ``labels.json``, as
    ``train.py`` and ``edge_training.pretrained`` export it); a one-line error otherwise."""
    if not (folder / ONNX_FILE).is_file():
        raise AssemblyError(f"--onnx-model {folder}: no {ONNX_FILE} in it")
    try:
        raw = json.loads((folder / "labels.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AssemblyError(f"--onnx-model {folder}: no labels.json in it") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise AssemblyError(f"--onnx-model {folder}/labels.json: not JSON ({error})") from None
    if isinstance(raw, list):
        raw = {str(i): name for i, name in enumerate(raw)}
    if not isinstance(raw, dict) or not raw:
        raise AssemblyError(f"--onnx-model {folder}/labels.json: expected a non-empty object")
    return {str(k): str(v) for k, v in raw.items()}


def _zip_folder(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())
    return buffer.getvalue()


def deploy_stage(stage: Stage, env: Env, stand_ins: StandIns) -> Cloud:
    """Deploy every stack of ``stage`` (in dependency order) into a fresh simulated account."""
    import boto3
    from moto import mock_aws

    with tempfile.TemporaryDirectory(prefix="device-sim-") as tmp, mock_aws():
        _ = tmp
        s3 = boto3.client(
            "s3",
            region_name=env.region,
            aws_access_key_id="sim",
            aws_secret_access_key="sim",  # noqa: S106 - moto, no AWS call
        )
        return _Deployer(stage, env, stand_ins, s3).deploy()


def default_stand_ins(
    workdir: Path,
    input_shape: tuple[int, ...],
    num_classes: int = 10,
    model_dir: Path | None = None,
    onnx_model: Path | None = None,
) -> StandIns:
    """The model folder Neo would have produced; default: the tiny Neo-layout classifier built
    for the real ``libdlr.so`` (``tests/support/neo_model.py``) at the stack's input shape.
    With ``onnx_model`` (a folder with ``model.onnx`` and ``labels.json``), the labels are
    that model's (one training job feeds every class, so they are the tiny model's too, with
    as many classes) and the training stand-in writes it as ``output/output.tar.gz``."""
    labels = {str(i): f"class-{i}" for i in range(num_classes)}
    if onnx_model is not None:
        labels = read_onnx_model(onnx_model)
        num_classes = len(labels)
    if model_dir is not None:
        if not model_dir.is_dir() or not any(model_dir.iterdir()):
            raise AssemblyError(f"--model {model_dir} is not a folder with a compiled model")
        return StandIns(model_dir=model_dir, labels=labels, onnx_model=onnx_model)
    repo = Path(__file__).resolve().parents[1]
    if str(repo) not in sys.path:
        sys.path.insert(0, str(repo))
    from tests.support.neo_model import build_tiny_classifier

    target = workdir / "neo-model"
    if target.exists():
        shutil.rmtree(target)
    build_tiny_classifier(target, input_shape=input_shape, num_classes=num_classes)
    return StandIns(model_dir=target, labels=labels, onnx_model=onnx_model)
