"""The simulated account: one backend per service, and the facade the device reads.

The device simulator and the tests read ``cloud.roles``, ``cloud.iot_policies``,
``cloud.role_aliases``, ``cloud.thing_groups``, ``cloud.components``, ``cloud.deployments``,
``cloud.s3``, ``cloud.bucket_regions``, ``cloud.bucket_policies``, ``cloud.managed_policies``:
each is the owning backend's own (live) collection, so writing to it writes the backend.
"""

from __future__ import annotations

from typing import Any

from device_sim.cloud.cloudformation.stack import DeployedStack
from device_sim.cloud.cloudwatch import CloudWatchBackend
from device_sim.cloud.env import Env
from device_sim.cloud.errors import AssemblyError
from device_sim.cloud.events import EventsBackend
from device_sim.cloud.greengrass import ComponentVersion, GreengrassBackend
from device_sim.cloud.iam import IamBackend, Role
from device_sim.cloud.iot import IotBackend
from device_sim.cloud.lambda_ import LambdaBackend
from device_sim.cloud.logs import LogsBackend
from device_sim.cloud.rules import Clients, RulesEngine
from device_sim.cloud.s3 import ObjectReader, S3Backend
from device_sim.cloud.sagemaker import SageMakerBackend
from device_sim.cloud.sqs import SqsBackend
from device_sim.cloud.waitcondition import WaitConditions
from device_sim.iam import Policy

START_TIME = 1_800_000_000.0  # the simulated clock's start (epoch seconds)


class Cloud:
    """What exists in the simulated account: the services' state and the stacks."""

    def __init__(self, env: Env) -> None:
        self.env = env
        self.now = START_TIME
        self.stacks: dict[str, DeployedStack] = {}  # by stack name
        self.notes: list[str] = []
        self.requests = 0
        self.s3_backend = S3Backend(env)
        self.iam = IamBackend(env)
        self.iot = IotBackend(env)
        self.greengrass = GreengrassBackend(env, self.s3_backend.get)
        self.greengrass.clock = lambda: self.now
        self.logs = LogsBackend(env)
        self.lambda_ = LambdaBackend(env)
        self.sagemaker = SageMakerBackend(env, self.s3_backend)
        self.sagemaker.notes = self.notes
        self.sqs = SqsBackend(env, self.lambda_.invoke)
        self.events = EventsBackend(env, self.lambda_.invoke, self.sqs.send_message)
        self.sagemaker.emit = self.events.put_event
        self.wait_conditions = WaitConditions(env, lambda: self.now)
        self.cloudwatch = CloudWatchBackend()
        self.rules = RulesEngine(self._rule_clients, self.lambda_.get)

    def _rule_clients(self) -> Clients:
        """The AWS clients of a function a rule invokes: this account's services."""
        return Clients(
            cloudwatch=self.cloudwatch.client(),
            iot=self.iot.client(),
            s3=ObjectReader(self.s3_backend),
            now=self.cloudwatch.clock,
        )

    def next_request(self) -> int:
        """A new number for each request CloudFormation sends a custom resource."""
        self.requests += 1
        return self.requests

    def advance(self, seconds: float) -> None:
        """Let simulated time pass (presigned URLs expire, jobs run)."""
        self.now += seconds

    # -- the facade (same names and types as before the backends)
    @property
    def s3(self) -> dict[str, dict[str, bytes]]:
        return self.s3_backend.objects

    @property
    def bucket_regions(self) -> dict[str, str]:
        return self.s3_backend.bucket_regions

    @property
    def bucket_policies(self) -> dict[str, Policy]:
        return self.s3_backend.bucket_policies

    @property
    def roles(self) -> dict[str, Role]:
        return self.iam.roles

    @property
    def managed_policies(self) -> dict[str, Policy]:
        return self.iam.managed_policies

    @property
    def iot_policies(self) -> dict[str, Policy]:
        return self.iot.policies

    @property
    def role_aliases(self) -> dict[str, str]:
        return self.iot.role_aliases

    @property
    def thing_groups(self) -> dict[str, str]:
        return self.iot.thing_groups

    @property
    def components(self) -> dict[tuple[str, str], ComponentVersion]:
        return self.greengrass.components

    @property
    def deployments(self) -> list[dict[str, Any]]:
        return self.greengrass.deployments

    def output(self, stack_suffix: str, name: str) -> Any:
        for stack in self.stacks.values():
            if (
                stack.display_name.endswith("/" + stack_suffix)
                and stack.status != "DELETE_COMPLETE"
            ):
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
