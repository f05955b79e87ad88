"""CloudFormation templates: intrinsic functions and the resource dependency graph.

Resolves the intrinsic functions the templates use (``Ref``, ``Fn::GetAtt``, ``Fn::Join``,
``Fn::Sub``, ``Fn::Select``, ``Fn::Split``, ``Fn::FindInMap``, ``Fn::If``, ``Fn::ImportValue``,
``Fn::GetStackOutput``, pseudo parameters), following the "Intrinsic function reference" and
"Pseudo parameters reference" of the CloudFormation User Guide, for a simulated
account/region/partition.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from device_sim.cloud.errors import AssemblyError

if TYPE_CHECKING:
    from device_sim.cloud.account import Cloud
    from device_sim.cloud.cloudformation.stack import DeployedResource, StackArtifact

NO_VALUE = object()


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
        self.stack_id = cloud.env.arn("cloudformation", f"stack/{stack.stack_name}/00000000-sim")

    def pseudo(self, name: str) -> Any:
        env = self.cloud.env
        table: dict[str, Any] = {
            "AWS::AccountId": env.account,
            "AWS::Region": env.region,
            "AWS::Partition": env.partition,
            "AWS::URLSuffix": env.url_suffix,
            "AWS::StackName": self.stack.stack_name,
            "AWS::StackId": self.stack_id,
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


def resource_order(resources: Mapping[str, Any]) -> list[str]:
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
