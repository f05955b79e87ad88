"""Releases across a failed update (issue 17, part 2, item 6, and "a canary release, promote,
and roll back across a failed update"): after CloudFormation rolls an update back, what each
thing group's devices run must be the release the stack says it is on.

What the devices run is the target's latest deployment in the simulated Greengrass
(``device_sim.cloud.greengrass``): botocore greengrassv2 ``CreateDeployment`` ("When you create
a new deployment for a target that has an existing deployment, you replace the previous
deployment"), while ``CancelDeployment`` and ``DeleteDeployment`` change nothing on a device
that received it. The failure is injected at the deployment resource *after* its call reached
Greengrass (``Failure(..., "stabilize")``), the latest point in the update it can come: the
new release is on its way to the devices when the stack rolls back.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from device_sim.assembly import (
    Cloud,
    Failure,
    Stage,
    StandIns,
    default_stand_ins,
    load_stage,
)
from device_sim.cloud.cloudformation.stack import DeployedStack
from device_sim.device import model_input_shape
from rollout import promote
from tests.infra.conftest import REPO_ROOT, THREE_CLASSES, synthesize
from tests.sim.lifecycle import NEW_HYPERPARAMETERS, deploy, new_account, reasons

DEPLOYMENT_TYPES = ("AWS::GreengrassV2::Deployment", "Custom::GreengrassDeployment")
# One canary class: the jetson class of tests/infra/conftest.py THREE_CLASSES.
CANARY_CLASSES = {"jetson": THREE_CLASSES["jetson"]}


@pytest.fixture(scope="module")
def dev_stage(dev_assembly: Path) -> Stage:
    return load_stage(dev_assembly, "dev")


@pytest.fixture(scope="module")
def stand_ins(dev_stage: Stage, tmp_path_factory: pytest.TempPathFactory) -> StandIns:
    return default_stand_ins(tmp_path_factory.mktemp("standins"), model_input_shape(dev_stage))


def release(document: dict[str, Any]) -> dict[str, str]:
    """component -> version of a deployment, in CloudFormation's property shape or the
    CreateDeployment request's (``components``/``componentVersion``)."""
    components = document.get("Components") or document.get("components") or {}
    return {
        name: str(spec.get("ComponentVersion") or spec.get("componentVersion"))
        for name, spec in components.items()
    }


def deployments(stack: DeployedStack) -> dict[str, dict[str, Any]]:
    """ring -> the deployment resource's properties, as the stack now records them; the ring
    from the resource's ``EdgeAiRing`` metadata (``all`` without it)."""
    assert stack.artifact is not None
    resources = stack.artifact.template["Resources"]
    out: dict[str, dict[str, Any]] = {}
    for logical, resource in stack.resources.items():
        if resource.type in DEPLOYMENT_TYPES:
            ring = (resources[logical].get("Metadata") or {}).get(promote.RING_METADATA) or {}
            out[str(ring.get("ring", "all"))] = {"logical": logical, **resource.properties}
    return out


def on_devices(cloud: Cloud, target: str) -> dict[str, str]:
    """What the target's devices run: the document of its latest deployment."""
    (document,) = [d for d in cloud.deployments if d.get("TargetArn") == target]
    return release(document)


def active(cloud: Cloud, target: str) -> dict[str, str] | None:
    """The release of the target's latest deployment while it is ACTIVE, else None."""
    record = cloud.greengrass.active_for(target)
    return release(record.document) if record and record.status == "ACTIVE" else None


def spy_on_greengrass(cloud: Cloud) -> list[tuple[dict[str, Any], dict[str, str]]]:
    """Every CreateDeployment request the account receives, in order, each with what its
    target's devices run right after it."""
    issued: list[tuple[dict[str, Any], dict[str, str]]] = []
    create = cloud.greengrass.create_deployment

    def recording(request: dict[str, Any]) -> str:
        deployment_id = create(request)
        target = str(request.get("TargetArn", request.get("targetArn")))
        issued.append((json.loads(json.dumps(request)), on_devices(cloud, target)))
        return deployment_id

    cloud.greengrass.create_deployment = recording  # type: ignore[method-assign]
    return issued


def sent_to(
    issued: list[tuple[dict[str, Any], dict[str, str]]], target: str
) -> list[dict[str, str]]:
    """The releases sent to ``target``, checking that its devices got each one."""
    out = []
    for request, devices in issued:
        if request.get("TargetArn", request.get("targetArn")) == target:
            assert devices == release(request), "CreateDeployment replaces what devices run"
            out.append(release(request))
    return out


def failing_at(stack: DeployedStack, ring: str) -> Failure:
    return Failure(deployments(stack)[ring]["logical"], "stabilize", "the rollout failed")


# ---------------------------------------------------------------- (e) a release rolled back


def test_a_rolled_back_release_goes_back_to_the_devices(
    dev_stage: Stage, tmp_path: Path, stand_ins: StandIns
) -> None:
    """A hyperparameter change (new training job, model, model component version) deployed,
    then the update fails after the deployment went out: after the rollback the devices run
    the old release again, and Greengrass's active deployment for the group is that release."""
    synthesize(tmp_path / "retrained", hyperparameters=NEW_HYPERPARAMETERS)
    retrained = load_stage(tmp_path / "retrained", "dev")
    cloud, cf = new_account(stand_ins)
    deploy(cf, dev_stage)
    pipeline = cloud.stacks[dev_stage.stack("Pipeline").stack_name]
    before = deployments(pipeline)["all"]
    target, old = str(before["TargetArn"]), release(before)
    assert on_devices(cloud, target) == old == active(cloud, target)
    issued = spy_on_greengrass(cloud)

    rolled = cf.update_stack(retrained.stack("Pipeline"), failing_at(pipeline, "all"))

    assert rolled.status == "UPDATE_ROLLBACK_COMPLETE", reasons(rolled)
    # The guard: the new release did reach Greengrass for this target before the failure.
    new = sent_to(issued, target)
    assert new and new[0] != old, issued
    assert release(deployments(rolled)["all"]) == old  # what the stack says
    assert on_devices(cloud, target) == old  # what the devices run
    assert active(cloud, target) == old  # and Greengrass's active deployment for the group


# ---------------------------------------------------------------- (g) canary, promote, roll back
def synth_canary(out: Path, releases: dict[str, Any] | None = None, **context: Any) -> Stage:
    synthesize(out, device_classes=CANARY_CLASSES, releases=releases or {}, **context)
    return load_stage(out, "dev")


def promoted(assembly: Path, tmp_path: Path) -> dict[str, Any]:
    """``python -m rollout.promote --stage dev --class jetson`` on a copy of cdk.json; the
    ``releases`` context it leaves."""
    cdk_json = tmp_path / "cdk.json"
    shutil.copy(REPO_ROOT / "cdk.json", cdk_json)
    assert (
        promote.main(
            [
                "--stage",
                "dev",
                "--class",
                "jetson",
                "--assembly",
                str(assembly),
                "--cdk-json",
                str(cdk_json),
            ]
        )
        == 0
    )
    releases: dict[str, Any] = json.loads(cdk_json.read_text())["context"]["releases"]
    return releases


def test_canary_promote_and_a_failed_update_leave_each_ring_on_its_release(
    tmp_path: Path, stand_ins: StandIns
) -> None:
    """The jetson class with a canary ring: deploy (the canary carries the change); promote
    (the fleet gets the canary's release, through cdk.json and a new synth); then a change
    whose update fails after the canary deployment went out, rolled back. Each ring ends on
    the release its stack says: the canary on the latest deployed change, the fleet on the
    promoted release."""
    first = synth_canary(tmp_path / "first")
    cloud, cf = new_account(stand_ins)
    stacks = deploy(cf, first)
    assert {s.status for s in stacks.values()} == {"CREATE_COMPLETE"}, stacks
    pipeline_name = first.stack("Pipeline").stack_name
    rings = deployments(cloud.stacks[pipeline_name])
    assert set(rings) == {"canary"}, rings  # no release yet: the canary is the class's only one
    canary_release = release(rings["canary"])

    releases = promoted(tmp_path / "first", tmp_path)
    second = synth_canary(tmp_path / "second", releases)
    stack = cf.deploy(second.stack("Pipeline"))
    assert stack.status == "UPDATE_COMPLETE", reasons(stack)
    rings = deployments(stack)
    fleet_target, canary_target = (
        str(rings["fleet"]["TargetArn"]),
        str(rings["canary"]["TargetArn"]),
    )
    assert release(rings["fleet"]) == canary_release == release(rings["canary"])
    for target in (fleet_target, canary_target):
        assert on_devices(cloud, target) == canary_release == active(cloud, target)

    third = synth_canary(tmp_path / "third", releases, hyperparameters=NEW_HYPERPARAMETERS)
    issued = spy_on_greengrass(cloud)
    rolled = cf.update_stack(third.stack("Pipeline"), failing_at(stack, "canary"))

    assert rolled.status == "UPDATE_ROLLBACK_COMPLETE", reasons(rolled)
    sent = sent_to(issued, canary_target)
    assert sent and sent[0] != canary_release, "the change reached the canary group"
    rings = deployments(rolled)
    assert release(rings["canary"]) == canary_release and release(rings["fleet"]) == canary_release
    for target in (canary_target, fleet_target):
        assert on_devices(cloud, target) == canary_release  # what the devices run
        assert active(cloud, target) == canary_release  # Greengrass's active deployment


@pytest.mark.parametrize("outcome", ["completes", "rolls back"])
def test_adding_a_canary_ring_keeps_the_fleet_deployed(
    tmp_path: Path, stand_ins: StandIns, outcome: str
) -> None:
    """A class without a canary ring deploys to its group from one resource (ring "all"); with
    a canary ring and a promoted release, from another (ring "fleet"): same target, same
    deployment name.

    Completes: CloudFormation creates the new resource, then deletes the old one in the cleanup
    phase; that Delete must not cancel the deployment the new resource just made (found by the
    hostile review: the fleet was left with no active deployment, the stack UPDATE_COMPLETE).

    Rolls back (the new fleet deployment fails to stabilize): the rollback deletes the new
    resource and sends the old one nothing; the group must end on the old resource's release,
    not on a cancelled deployment (found by the second hostile review)."""
    plain = {
        "jetson": {k: v for k, v in CANARY_CLASSES["jetson"].items() if k != "canary_thing_group"}
    }
    synthesize(tmp_path / "plain", device_classes=plain)
    first = load_stage(tmp_path / "plain", "dev")
    cloud, cf = new_account(stand_ins)
    deploy(cf, first)
    rings = deployments(cloud.stacks[first.stack("Pipeline").stack_name])
    target, running = str(rings["all"]["TargetArn"]), release(rings["all"])
    assert active(cloud, target) == running

    # Promote what the fleet runs, then add the canary ring.
    releases: dict[str, Any] = {"dev": {"jetson": {}}}
    for name, spec in rings["all"]["Components"].items():
        pin: dict[str, Any] = {"version": spec["ComponentVersion"]}
        update = spec.get("ConfigurationUpdate")
        if update:
            pin["merge"] = json.loads(update["Merge"])
        releases["dev"]["jetson"][name] = pin
    second = synth_canary(tmp_path / "canary", releases)
    if outcome == "completes":
        stack = cf.deploy(second.stack("Pipeline"))
        assert stack.status == "UPDATE_COMPLETE", reasons(stack)
        rings = deployments(stack)
        assert str(rings["fleet"]["TargetArn"]) == target
        assert active(cloud, target) == release(rings["fleet"]) == running
        return
    template = second.stack("Pipeline").template["Resources"]
    (fleet,) = [
        logical
        for logical, resource in template.items()
        if ((resource.get("Metadata") or {}).get(promote.RING_METADATA) or {}).get("ring")
        == "fleet"
    ]
    stack = cf.deploy(second.stack("Pipeline"), Failure(fleet, "stabilize", "rollout failed"))
    assert stack.status == "UPDATE_ROLLBACK_COMPLETE", reasons(stack)
    rings = deployments(stack)
    assert set(rings) == {"all"}, rings  # what the stack says the group runs
    assert active(cloud, target) == release(rings["all"]) == running
    assert on_devices(cloud, target) == running
