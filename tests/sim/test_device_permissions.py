"""The device's own permissions and file access, each caught when injected (issue 17, part 1).

Each test breaks one thing a real device depends on, in the deployed simulated cloud
(``cloud_patch``), runs the device up to the step that needs it (``run_lifecycle=False``: no
component is started) and expects that step to FAIL with a reason naming the action and
resource, or the file. Sources: device_sim/dataplane.py and device_sim/run_with.py.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from device_sim.assembly import Cloud
from device_sim.iam import Policy
from tests.sim.conftest import run_device

MODEL = "com.example.edgeai.dev.Model"


def _failure(tmp_path: Path, assembly: Path, patch: Callable[[Cloud], None]) -> tuple[str, str]:
    run = run_device(tmp_path / "gg", assembly, "dev", run_lifecycle=False, cloud_patch=patch)
    failed = [(step, detail) for step, ok, detail in run.report.steps if not ok]
    assert failed, f"the injection was not caught: {run.report.steps}"
    return failed[0]


def _core_policy(cloud: Cloud) -> tuple[str, dict[str, Any]]:
    name = next(n for n in cloud.iot_policies if n.endswith("-GreengrassCoreDevicePolicy"))
    return name, json.loads(json.dumps(cloud.iot_policies[name].document))


def _without_action(action: str) -> Callable[[Cloud], None]:
    """Drop ``action`` from every IoT policy of the stage: the core-device policy, and the
    GreengrassTESCertificatePolicy<alias> that also grants iot:AssumeRoleWithCertificate."""

    def patch(cloud: Cloud) -> None:
        for name, policy in list(cloud.iot_policies.items()):
            document = json.loads(json.dumps(policy.document))
            statements = document["Statement"]
            for statement in statements if isinstance(statements, list) else [statements]:
                actions = statement["Action"]
                actions = [actions] if isinstance(actions, str) else actions
                statement["Action"] = [a for a in actions if a != action] or ["iot:NoSuchAction"]
            cloud.iot_policies[name] = Policy(name, document)

    return patch


@pytest.mark.parametrize(
    ("action", "step", "resource"),
    [
        (
            "greengrass:ResolveComponentCandidates",
            "resolve deployment",
            ":greengrass:eu-west-1:",
        ),
        (
            "greengrass:GetComponentVersionArtifact",
            "download artifacts",
            ":aws:components:aws.greengrass.LogManager:versions:2.3.7",
        ),
        ("greengrass:ListThingGroupsForCoreDevice", "receive deployment", ":coreDevices:"),
        ("iot:Subscribe", "receive deployment", ":topicfilter/$aws/things/edge-ai-dev-sim-1/"),
        ("iot:Receive", "receive deployment", ":topic/$aws/things/edge-ai-dev-sim-1/"),
        ("iot:AssumeRoleWithCertificate", "token exchange credentials", ":rolealias/"),
    ],
)
def test_core_device_policy_without_an_action_fails_the_step_that_needs_it(
    action: str, step: str, resource: str, tmp_path: Path, dev_assembly: Path
) -> None:
    """Each action of the developer guide's "Minimal AWS IoT policy for AWS IoT Greengrass V2
    core devices" that this deployment uses, dropped from the device's IoT policies, fails the
    step where the nucleus calls it (dataplane.py names the Java caller)."""
    failed_step, reason = _failure(tmp_path, dev_assembly, _without_action(action))
    assert failed_step == step
    assert action in reason and resource in reason
    assert "implicitly denied" in reason or "no statement" in reason or "denied" in reason


def test_core_device_policy_without_version_takes_variables_literally(
    tmp_path: Path, dev_assembly: Path
) -> None:
    """Without "Version": "2012-10-17" policy variables are literal text (IAM User Guide, "IAM
    JSON policy elements: Version"; "Policy variables": "If you don't include the Version
    element, ... variables such as ${aws:username} aren't recognized as variables"), so the
    core-device policy's ${iot:Connection.Thing.ThingName} statements match nothing and the
    device cannot connect."""

    def patch(cloud: Cloud) -> None:
        name, document = _core_policy(cloud)
        document.pop("Version")
        cloud.iot_policies[name] = Policy(name, document)

    failed_step, reason = _failure(tmp_path, dev_assembly, patch)
    assert failed_step == "mqtt connect"
    assert "iot:Connect" in reason and ":client/edge-ai-dev-sim-1" in reason


def test_token_exchange_role_trusting_another_service_fails_the_credentials(
    tmp_path: Path, dev_assembly: Path
) -> None:
    """The AWS IoT credentials provider assumes the role as credentials.iot.amazonaws.com (AWS
    IoT developer guide, "Authorizing direct calls to AWS services using AWS IoT Core credential
    provider"): a role trusting iot.amazonaws.com gives the device no credentials."""

    def patch(cloud: Cloud) -> None:
        for stack in cloud.stacks.values():
            for resource in stack.resources.values():
                if resource.physical_id.endswith("-GreengrassTokenExchangeRole"):
                    document = resource.properties["AssumeRolePolicyDocument"]
                    for statement in document["Statement"]:
                        statement["Principal"] = {"Service": "iot.amazonaws.com"}

    failed_step, reason = _failure(tmp_path, dev_assembly, patch)
    assert failed_step == "token exchange credentials"
    assert "credentials.iot.amazonaws.com" in reason and "sts:AssumeRole" in reason
    assert "-GreengrassTokenExchangeRole" in reason


def _model_permission(permission: dict[str, str]) -> Callable[[Cloud], None]:
    def patch(cloud: Cloud) -> None:
        for (name, _), component in cloud.components.items():
            if name == MODEL:
                for manifest in component.recipe["Manifests"]:
                    for artifact in manifest["Artifacts"]:
                        artifact["Permission"] = permission

    return patch


@pytest.mark.parametrize("read", ["NONE", "OWNER"])
def test_model_the_inference_user_cannot_read_fails_file_access(
    read: str, tmp_path: Path, dev_assembly: Path
) -> None:
    """The model component has no lifecycle command, so its files stay root's
    (RunWithPathOwnershipHandler.updateOwner runs only from GenericExternalService.run), with
    mode 0400 (Read: NONE) or 0440 (Read: OWNER: owner and its group, Permission
    .toFileSystemPermission): the inference component, running as ggc_user, cannot read them."""
    failed_step, reason = _failure(tmp_path, dev_assembly, _model_permission({"Read": read}))
    assert failed_step == "file access"
    mode = "0400" if read == "NONE" else "0440"
    assert f"packages/artifacts-unarchived/{MODEL}/" in reason
    assert "runs as ggc_user:ggc_group" in reason and "owner root:root, mode -r--" in reason
    assert mode in reason


def test_the_inference_component_can_read_the_model_it_is_deployed_with(
    tmp_path: Path, dev_assembly: Path
) -> None:
    """The stack's own recipes, unchanged: every file a component's lifecycle names is readable
    by ggc_user; the model's files stay root's, world-readable (Read: ALL: 0444)."""
    run = run_device(tmp_path / "gg", dev_assembly, "dev", run_lifecycle=False)
    steps = {step: (ok, detail) for step, ok, detail in run.report.steps}
    assert steps["file access"][0], steps["file access"][1]
    model_files = [
        p for p in (tmp_path / "gg/packages/artifacts-unarchived" / MODEL).rglob("*") if p.is_file()
    ]
    assert model_files
    for path in model_files:
        assert path.stat().st_uid == 0 and oct(path.stat().st_mode & 0o777) == "0o444", path


def test_get_deployment_configuration_is_needed_only_for_a_large_document(
    tmp_path: Path, dev_assembly: Path
) -> None:
    """greengrass:GetDeploymentConfiguration "is evaluated when a core device receives a
    deployment that specifies a deployment document larger than 7 KB (if the deployment targets
    a thing) or 31 KB (if the deployment targets a thing group)" (developer guide, device-auth
    page; DeploymentDocumentDownloader)."""
    drop = _without_action("greengrass:GetDeploymentConfiguration")
    run = run_device(tmp_path / "small", dev_assembly, "dev", run_lifecycle=False, cloud_patch=drop)
    assert dict((s, ok) for s, ok, _ in run.report.steps)["receive deployment"]

    def large(cloud: Cloud) -> None:
        drop(cloud)
        components = cloud.deployments[0]["Components"]
        name = next(iter(components))
        components[name]["ConfigurationUpdate"] = {"Merge": json.dumps({"pad": "x" * 32 * 1024})}

    failed_step, reason = _failure(tmp_path, dev_assembly, large)
    assert failed_step == "receive deployment"
    assert "greengrass:GetDeploymentConfiguration" in reason and "over 31744" in reason


def test_a_root_ggc_user_cannot_reach_runs_components_as_the_simulator_naming_the_folder(
    tmp_path: Path, dev_assembly: Path
) -> None:
    """Components run in <root>/work/<name> as ggc_user: below a rwx------ folder every
    lifecycle step would fail, so the simulator runs them as its own user and says why at the
    "component user" step (file access is still judged for ggc_user)."""
    if os.geteuid() != 0:
        pytest.skip("users are switched only as root")
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    run = run_device(private / "gg", dev_assembly, "dev", run_lifecycle=False)
    assert run.report.failure is None, run.report.failure
    (detail,) = [d for name, _, d in run.report.steps if name == "component user"]
    assert "ggc_user:ggc_group NOT SWITCHED" in detail
    assert f"cannot search {private} (owner root:root, mode drwx------ 0700)" in detail
