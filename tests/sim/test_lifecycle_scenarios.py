"""The stacks' life after the first deploy, in one simulated account (issue 17, part 2).

Each scenario synthesizes the real app, drives the simulated CloudFormation
(``device_sim.cloud.cloudformation.engine``) through create / update / failure / rollback /
delete / create again, and asserts what AWS would leave. A scenario whose fix has not landed is
``xfail(strict=True)``: it documents today's failure and turns red the day the fix lands, so
the marker is removed then.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from app_config import ConfigError, load_config
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
from device_sim.provision import (
    ProvisionResult,
    installer_principal,
    parse_installer_command,
    provision,
)
from tests.infra.conftest import CDK_JSON_CONTEXT, synthesize
from tests.sim.lifecycle import NEW_HYPERPARAMETERS, deploy, new_account, reasons

TWO_DAYS = 2 * 24 * 3600


@pytest.fixture(scope="module")
def dev_stage(dev_assembly: Path) -> Stage:
    return load_stage(dev_assembly, "dev")


@pytest.fixture(scope="module")
def dev_retrained(tmp_path_factory: pytest.TempPathFactory) -> Stage:
    """dev with one hyperparameter changed: a new training job, model and model component."""
    out = tmp_path_factory.mktemp("sim-retrained")
    synthesize(out, hyperparameters=NEW_HYPERPARAMETERS)
    return load_stage(out, "dev")


@pytest.fixture(scope="module")
def stand_ins(dev_stage: Stage, tmp_path_factory: pytest.TempPathFactory) -> StandIns:
    return default_stand_ins(tmp_path_factory.mktemp("standins"), model_input_shape(dev_stage))


def provision_device(cloud: Cloud, name: str) -> ProvisionResult:
    """The demo installer command of the devices stack, replayed (``device_sim.provision``):
    the thing, its certificate and the stage's policies attached to it."""
    args = parse_installer_command(str(cloud.output("Devices", "InstallerCommand")), name)
    return provision(cloud, args, installer_principal(cloud))


def released(cloud: Cloud, target: str) -> dict[str, Any]:
    """The components of the target's latest deployment (what its devices are told to run)."""
    record = cloud.greengrass.active_for(target)
    assert record is not None, f"no deployment for {target}"
    return dict(copy.deepcopy(record.document["Components"]))


def logical_of(stack: DeployedStack, rtype: str) -> list[str]:
    return [r.logical_id for r in stack.resources.values() if r.type == rtype]


# ---------------------------------------------------------------- (f) side by side
def deploy_side_by_side(stand_ins: StandIns, *stages: Stage) -> tuple[Cloud, dict[str, Any]]:
    cloud, cf = new_account(stand_ins)
    stacks = {}
    for stage in stages:
        for name, stack in deploy(cf, stage).items():
            stacks[f"{stage.name}/{stack.name}/{name}"] = stack
    return cloud, stacks


def test_two_stages_share_one_account(
    dev_stage: Stage, prod_assembly: Path, stand_ins: StandIns
) -> None:
    """dev and prod in one account and region: every name that must be unique (IAM roles and
    policies, IoT policies, role aliases, thing groups, log groups, component versions,
    buckets, job names) differs, so every stack creates."""
    cloud, stacks = deploy_side_by_side(stand_ins, dev_stage, load_stage(prod_assembly, "prod"))
    failed = {k: reasons(s) for k, s in stacks.items() if s.status != "CREATE_COMPLETE"}
    assert not failed
    assert len(cloud.deployments) == 2  # one per stage, each its own thing group


def own_names_context(prefix: str) -> dict[str, Any]:
    """cdk.json's context for a second pipeline under ``prefix``, with the names that default to
    the prefix left to their defaults: no ``component_namespace``, no stage ``thing_group``."""
    pipeline = {k: v for k, v in CDK_JSON_CONTEXT["pipeline"].items() if k != "component_namespace"}
    stages = {
        name: {k: v for k, v in (overrides or {}).items() if k != "thing_group"}
        for name, overrides in CDK_JSON_CONTEXT["stages"].items()
    }
    return {"pipeline": {**pipeline, "prefix": prefix}, "stages": stages}


UNIQUE_TYPES = (
    "AWS::IoT::ThingGroup",
    "AWS::IoT::Policy",
    "AWS::IoT::RoleAlias",
    "AWS::IAM::Role",
    "AWS::Logs::LogGroup",
    "AWS::S3::Bucket",
)


def unique_names(stack: DeployedStack) -> set[tuple[str, str]]:
    """(kind, name) of what must be unique per account and region, as the stack created it."""
    names: set[tuple[str, str]] = set()
    for r in stack.resources.values():
        if r.type in ("AWS::GreengrassV2::ComponentVersion", "Custom::GreengrassComponentVersion"):
            names.add(("component", str(r.attributes["ComponentName"])))
        elif r.type in UNIQUE_TYPES:
            names.add((r.type, r.physical_id))
    return names


def test_a_second_prefix_with_the_default_pipelines_names_is_refused_at_synth() -> None:
    """cdk.json copied and only ``prefix`` changed: its thing group and component namespace are
    still the default pipeline's, which the prefix does not reach. Thing groups and component
    names are unique per account and region (botocore iot ``CreateThingGroup``:
    ResourceAlreadyExistsException; greengrassv2 ``CreateComponentVersion``:
    ConflictException), so synth refuses, naming each key to set."""
    context = {**CDK_JSON_CONTEXT, "pipeline": {**CDK_JSON_CONTEXT["pipeline"], "prefix": "edge-b"}}
    with pytest.raises(ConfigError) as caught:
        load_config(context, "dev")
    message = str(caught.value)
    assert "component_namespace" in message and "thing_group" in message, message
    assert "com.example.edgeb" in message and "EdgeBDevCoreDevices" in message, message


def test_two_prefixes_share_one_account(
    dev_stage: Stage, tmp_path: Path, stand_ins: StandIns
) -> None:
    """dev under the default prefix and dev under ``edge-b``, whose thing group and component
    namespace default to names derived from its prefix: nothing the two pipelines create shares
    a name, and every stack creates."""
    other = tmp_path / "other-prefix"
    synthesize(other, **own_names_context("edge-b"))
    second = load_stage(other, "dev")
    cloud, stacks = deploy_side_by_side(stand_ins, dev_stage, second)
    failed = {k: reasons(s) for k, s in stacks.items() if s.status != "CREATE_COMPLETE"}
    assert not failed
    by_pipeline: dict[str, set[tuple[str, str]]] = {}
    for stack in stacks.values():
        by_pipeline.setdefault(stack.name.split("-dev-")[0], set()).update(unique_names(stack))
    first, other_names = by_pipeline["edge-ai"], by_pipeline["edge-b"]
    assert {kind for kind, _ in first} >= {"component", "AWS::IoT::ThingGroup"}
    assert not first & other_names, sorted(first & other_names)
    assert len(cloud.deployments) == 2  # one per pipeline, each its own thing group


def test_the_same_stage_twice_collides_as_aws_refuses(
    dev_stage: Stage, stand_ins: StandIns
) -> None:
    """The guard for the test above: the same names in one account do collide (a second
    devices stack under another stack name is refused by IoT), so "no collision" is not
    vacuous."""
    _, cf = new_account(stand_ins)
    deploy(cf, dev_stage)
    devices = dev_stage.stack("Devices")
    clone = type(devices)(**{**devices.__dict__, "stack_name": devices.stack_name + "-copy"})
    stack = cf.create_stack(clone)
    assert stack.status == "ROLLBACK_COMPLETE"
    assert "already exists" in reasons(stack)


# ---------------------------------------------------------------- (c) delete and re-create
def test_recreating_the_pipeline_while_devices_keep_logging(
    dev_stage: Stage, stand_ins: StandIns
) -> None:
    cloud, cf = new_account(stand_ins)
    stacks = deploy(cf, dev_stage)
    pipeline = stacks["Pipeline"]
    groups = [
        r.physical_id
        for r in pipeline.resources.values()
        if r.type in ("AWS::Logs::LogGroup", "Custom::GreengrassLogGroup")
        and r.physical_id.startswith("/aws/greengrass/")
    ]
    assert groups, "the pipeline stack creates the components' log groups"
    retention = {g: cloud.logs.groups[g].retention_days for g in groups}
    assert all(retention.values()), retention
    thing = provision_device(cloud, "dev-1").thing_name
    (target,) = [str(d["TargetArn"]) for d in cloud.deployments]
    running = [d for d in cloud.deployments if d["TargetArn"] == target]
    assert cf.delete_stack(pipeline.name).status == "DELETE_COMPLETE"
    # Deleting the deployment changes nothing on the device (greengrassv2 DeleteDeployment:
    # "Deleting a deployment doesn't affect core devices"): it keeps its components.
    assert [d for d in cloud.deployments if d["TargetArn"] == target] == running
    assert cloud.greengrass.active_for(target) is None
    # The stack left the groups (Custom::GreengrassLogGroup's Delete keeps them), so the
    # device's log manager goes on uploading into them, with their retention.
    assert cloud.logs.device_uploads(thing, groups) == []
    assert {g: cloud.logs.groups[g].retention_days for g in groups} == retention
    # Someone deletes one by hand: the running device's log manager recreates it, without
    # retention (CloudWatchLogsUploader.createNewLogGroup sets none).
    cloud.logs.delete_log_group(groups[0])
    assert cloud.logs.device_uploads(thing, groups) == groups[:1]
    assert cloud.logs.groups[groups[0]].retention_days is None
    again = cf.deploy(dev_stage.stack("Pipeline"))
    assert "log group already exists" not in reasons(again), reasons(again)
    assert again.status == "CREATE_COMPLETE", reasons(again)
    # The re-created stack adopted the groups the devices made and gave them their retention.
    assert {g: cloud.logs.groups[g].retention_days for g in groups} == retention


# ---------------------------------------------------------------- (b) retry after rollback
def test_retrying_an_update_after_its_rollback(
    dev_stage: Stage, dev_retrained: Stage, stand_ins: StandIns
) -> None:
    cloud, cf = new_account(stand_ins)
    deploy(cf, dev_stage)
    pipeline = dev_retrained.stack("Pipeline")
    deployment = logical_of(cloud.stacks[pipeline.stack_name], "AWS::GreengrassV2::Deployment")
    deployment += logical_of(cloud.stacks[pipeline.stack_name], "Custom::GreengrassDeployment")
    failed = cf.update_stack(pipeline, Failure(deployment[0], "update", "the rollout failed"))
    assert failed.status == "UPDATE_ROLLBACK_COMPLETE", reasons(failed)
    retry = cf.update_stack(pipeline)
    assert "ConflictException" not in reasons(retry), reasons(retry)
    assert retry.status == "UPDATE_COMPLETE", reasons(retry)


def test_reverting_a_change_deploys_the_earlier_versions_again(
    dev_stage: Stage, dev_retrained: Stage, stand_ins: StandIns
) -> None:
    """A -> B -> A: a user reverts a training change and deploys. The model and inference
    component versions of A are content-versioned, so A's ``name@version`` comes back; A's
    versions still exist (B's update kept them for rollback and pinned releases), and
    CreateComponentVersion of an existing version is ConflictException (botocore greengrassv2
    CreateComponentVersion errors). The update must adopt them, and the devices run A again."""
    cloud, cf = new_account(stand_ins)
    first = deploy(cf, dev_stage)
    (target,) = [str(d["TargetArn"]) for d in cloud.deployments]
    before = released(cloud, target)
    pipeline = first["Pipeline"].name
    changed = cf.update_stack(dev_retrained.stack("Pipeline"))
    assert changed.status == "UPDATE_COMPLETE", reasons(changed)
    assert released(cloud, target) != before  # the change reached the devices: B is not A
    # A's versions are kept (a rollback returns to them, a promoted release may pin them).
    ours = {n: str(c["ComponentVersion"]) for n, c in before.items() if n.startswith("com.")}
    assert ours and all((n, v) in cloud.greengrass.components for n, v in ours.items()), ours
    reverted = cf.update_stack(dev_stage.stack("Pipeline"))
    assert "ConflictException" not in reasons(reverted), reasons(reverted)
    assert reverted.status == "UPDATE_COMPLETE", reasons(reverted)
    assert cloud.stacks[pipeline].status == "UPDATE_COMPLETE"
    assert released(cloud, target) == before


# ---------------------------------------------------------------- (d) delete the devices stack
def test_deleting_the_devices_stack_while_a_device_holds_its_policies(
    dev_stage: Stage, stand_ins: StandIns
) -> None:
    cloud, cf = new_account(stand_ins)
    stacks = deploy(cf, dev_stage)
    devices = stacks["Devices"]
    policies = [r.physical_id for r in devices.resources.values() if r.type == "AWS::IoT::Policy"]
    assert len(policies) == 2  # the core device policy and the TES certificate policy
    provision_device(cloud, "dev-1")  # the installer attaches both to its certificate
    assert all(cloud.iot.attached_targets(p) for p in policies)
    assert cf.delete_stack(stacks["Pipeline"].name).status == "DELETE_COMPLETE"
    deleted = cf.delete_stack(devices.name)
    assert "DeleteConflictException" not in reasons(deleted), reasons(deleted)
    assert deleted.status == "DELETE_COMPLETE", reasons(deleted)


# ---------------------------------------------------------------- (a) roll back a training change
def test_rolling_back_a_training_change_days_later(
    dev_stage: Stage, dev_retrained: Stage, stand_ins: StandIns
) -> None:
    cloud, cf = new_account(stand_ins)
    deploy(cf, dev_stage)
    cloud.advance(TWO_DAYS)  # the next change comes days later: the old handle has expired
    pipeline = dev_retrained.stack("Pipeline")
    stack = cloud.stacks[pipeline.stack_name]
    old_job = str(stack.outputs["TrainingJobName"])
    late = logical_of(stack, "AWS::GreengrassV2::Deployment") or logical_of(
        stack, "Custom::GreengrassDeployment"
    )
    # The failure hits the forward update only: the rollback itself must go through.
    rolled = cf.update_stack(pipeline, Failure(late[0], "update", "the rollout failed"))
    # The new job ran; the rollback returned the training resource to the old job.
    assert rolled.outputs["TrainingJobName"] == old_job
    assert rolled.status == "UPDATE_ROLLBACK_COMPLETE", reasons(rolled)


def test_a_shared_checkpoint_prefix_is_caught(dev_stage: Stage, stand_ins: StandIns) -> None:
    """SageMaker copies what is under CheckpointS3Uri into a job before it starts: a second job
    on the same prefix resumes from the first. The training stand-in refuses it, naming both."""
    cloud, cf = new_account(stand_ins)
    deploy(cf, dev_stage)
    (job,) = [j for j in cloud.sagemaker.jobs.values() if j.kind == "Training"]
    request: dict[str, Any] = {**job.request, "TrainingJobName": job.name + "-again"}
    with pytest.raises(Exception, match="checkpoints: CheckpointS3Uri"):
        cloud.sagemaker.create_training_job(request)
