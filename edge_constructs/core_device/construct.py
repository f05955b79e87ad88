"""What a Greengrass core device needs to join: the prerequisites the reference tutorial did by
hand, composed from the small constructs beside this module. No IAM user and no long-term keys:
the installer policy is attached to whatever principal (an SSO role, a provisioning role) runs
the Greengrass installer. The reasons behind each grant: docs/CORE_DEVICE.md."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from aws_cdk import CustomResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import custom_resources as cr
from constructs import Construct

from edge_constructs.core_device.device_policies import DevicePolicies
from edge_constructs.core_device.installer_policy import InstallerPolicy
from edge_constructs.core_device.logical_ids import keep_flat_logical_ids
from edge_constructs.core_device.thing_groups import ThingGroups
from edge_constructs.core_device.token_exchange import TokenExchange
from edge_constructs.lambda_function import PythonFunction
from edge_constructs.nag import acknowledge_provider_framework, acknowledge_wildcards

RUNTIME_DIR = Path(__file__).parent / "runtime"


class CoreDevicePrerequisites(Construct):
    """Thing groups, token-exchange role and alias, the device's IoT policies, the installer
    policy, and the release of the IoT policies on stack delete (docs/CORE_DEVICE.md).

    Props:
        name_prefix: prefix of every physical name (e.g. ``edge-ai-dev``); device thing names
            must start with it (the installer policy is scoped to ``thing/<name_prefix>-*``).
        thing_group_name: the IoT thing group of the first device class (the installer
            command names it).
        more_thing_group_names: the other classes' groups and the canary groups; the
            installer may add a new device to any of them.
        bucket: the artifact bucket; the token-exchange role may read ``device_prefixes`` only.
        device_prefixes: key prefixes holding what devices download.
        capture_prefixes: key prefixes devices may upload captures to (default: none).
        publish_topic_prefix: results go to ``<prefix>/<thing name>/...``; the IoT policy allows
            a device to publish only under its own thing name.
        log_retention: retention of the policy-release handler's logs (default one month).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name_prefix: str,
        thing_group_name: str,
        bucket: s3.IBucket,
        device_prefixes: Sequence[str],
        publish_topic_prefix: str,
        capture_prefixes: Sequence[str] = (),
        more_thing_group_names: Sequence[str] = (),
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
    ) -> None:
        super().__init__(scope, id_)
        stack = Stack.of(self)
        self.name_prefix = name_prefix
        # Each part keeps the logical IDs its resources had before the split (logical_ids.py).
        groups = ThingGroups(
            self,
            "ThingGroups",
            names=[thing_group_name, *more_thing_group_names],
            description=f"Greengrass core devices of {name_prefix}",
        )
        keep_flat_logical_ids(groups)
        self.thing_group = groups.first
        self.thing_group_arn = groups.arns[0]
        self.thing_group_arns = groups.arns

        tes = TokenExchange(
            self,
            "TokenExchange",
            name_prefix=name_prefix,
            bucket=bucket,
            device_prefixes=device_prefixes,
            capture_prefixes=capture_prefixes,
        )
        keep_flat_logical_ids(tes)
        self.token_exchange_role_name = tes.role_name
        self.token_exchange_role = tes.role
        self.tes_access_policy_name = tes.access_policy_name
        self.tes_access_policy = tes.access_policy
        self.role_alias = tes.role_alias

        device_policies = DevicePolicies(
            self,
            "DevicePolicies",
            name_prefix=name_prefix,
            publish_topic_prefix=publish_topic_prefix,
            role_alias_name=tes.role_alias_name,
            role_alias_arn=tes.role_alias_arn,
        )
        keep_flat_logical_ids(device_policies)
        self.core_device_policy = device_policies.core_device_policy
        self.tes_certificate_policy = device_policies.tes_certificate_policy

        self.policy_release = self._policy_release(stack, log_retention)

        installer = InstallerPolicy(
            self,
            "Installer",
            name_prefix=name_prefix,
            thing_group_arns=self.thing_group_arns,
            role_alias_arn=tes.role_alias_arn,
            iot_policy_arns=[
                self.core_device_policy.attr_arn,
                self.tes_certificate_policy.attr_arn,
            ],
            tes_access_policy_name=tes.access_policy_name,
        )
        keep_flat_logical_ids(installer)
        self.installer_policy = installer.policy

    def _policy_release(self, stack: Stack, log_retention: logs.RetentionDays) -> CustomResource:
        """Custom::IotPolicyRelease: on stack delete, detach both IoT policies from every
        certificate that holds them and delete them; the policies are ``RetainExceptOnCreate``
        (docs/CORE_DEVICE.md#releasing-the-iot-policies-on-stack-delete)."""
        policies = (self.core_device_policy, self.tes_certificate_policy)
        for policy in policies:
            policy.apply_removal_policy(RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE)
        handler = PythonFunction(
            self,
            "PolicyReleaseHandler",
            code_dir=RUNTIME_DIR,
            handler="policy_release_handler.on_event",
            # Detach, then up to policy_release_logic.WAIT_SECONDS (7 min) of DeletePolicy
            # retries; a custom resource must answer within one hour.
            timeout=Duration.minutes(10),
            log_retention=log_retention,
            description="Custom::IotPolicyRelease: detaches and deletes the core-device IoT "
            "policies on stack delete",
        )
        # Resource types per action: "How AWS IoT works with IAM", AWS IoT resources table
        # (ListTargetsForPolicy, ListPolicyVersions, DeletePolicyVersion, DeletePolicy: policy;
        # DetachPolicy: the target, a certificate or a thing group).
        handler.role.add_to_policy(
            iam.PolicyStatement(
                sid="DevicePolicies",
                actions=[
                    "iot:ListTargetsForPolicy",
                    "iot:ListPolicyVersions",
                    "iot:DeletePolicyVersion",
                    "iot:DeletePolicy",
                    "iot:DetachPolicy",
                ],
                resources=[policy.attr_arn for policy in policies],
            )
        )
        handler.role.add_to_policy(
            iam.PolicyStatement(
                sid="TheirTargets",
                actions=["iot:DetachPolicy"],
                resources=[
                    stack.format_arn(service="iot", resource="cert", resource_name="*"),
                    *self.thing_group_arns,
                ],
            )
        )
        acknowledge_wildcards(
            handler.role,
            "Certificates are created by the Greengrass installer on each device; their IDs "
            "are only known from ListTargetsForPolicy at delete time (cert/*).",
            ["Resource::arn:<AWS::Partition>:iot:<AWS::Region>:<AWS::AccountId>:cert/*"],
        )
        provider = cr.Provider(
            self,
            "PolicyReleaseProvider",
            on_event_handler=handler.function,
            log_group=logs.LogGroup(self, "PolicyReleaseProviderLogs", retention=log_retention),
        )
        acknowledge_provider_framework(provider)
        resource = CustomResource(
            self,
            "PolicyRelease",
            service_token=provider.service_token,
            resource_type="Custom::IotPolicyRelease",
            properties={
                "Policies": stack.to_json_string(
                    {"CoreDevice": policies[0].ref, "TesCertificate": policies[1].ref}
                )
            },
        )
        resource.node.add_dependency(handler.role)
        return resource

    def installer_command(
        self, region: str, device_name: str = "<device-name>", thing_group_name: str = ""
    ) -> str:
        """The Greengrass installer command line for a new device.

        The thing name is ``<name_prefix>-<device_name>``; the default leaves a placeholder for
        a person to fill in, a script passes a shell expression (``demo-"$INSTANCE_ID"``).
        ``thing_group_name``: one of this construct's groups (default: the first class's).
        """
        group = thing_group_name or self.thing_group.thing_group_name
        return (
            'sudo -E java -Droot="/greengrass/v2" -Dlog.store=FILE '
            "-jar ./GreengrassInstaller/lib/Greengrass.jar "
            f"--aws-region {region} "
            f"--thing-name {self.name_prefix}-{device_name} "
            f"--thing-group-name {group} "
            f"--thing-policy-name {self.core_device_policy.policy_name} "
            f"--tes-role-name {self.token_exchange_role_name} "
            f"--tes-role-alias-name {self.role_alias.role_alias} "
            "--component-default-user ggc_user:ggc_group "
            "--provision true --setup-system-service true"
        )
