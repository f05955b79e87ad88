"""What the lifecycle scenarios share: a new simulated account, ``cdk deploy`` of a stage, and
the failure reasons of a stack operation."""

from __future__ import annotations

from device_sim.assembly import Cloud, CloudFormation, Env, Stage, StandIns
from device_sim.cloud.cloudformation.stack import DeployedStack

# A training change: a new job, a new model, new model component versions.
NEW_HYPERPARAMETERS = {"epochs": "12", "batch-size": "32", "lr": "0.001", "pretrained": "true"}


def new_account(stand_ins: StandIns) -> tuple[Cloud, CloudFormation]:
    cloud = Cloud(Env())
    return cloud, CloudFormation(cloud, stand_ins)


def deploy(cf: CloudFormation, stage: Stage) -> dict[str, DeployedStack]:
    """``cdk deploy`` of every stack of the stage, in dependency order."""
    return {s.display_name.rsplit("/", 1)[-1]: cf.deploy(s) for s in stage.stacks}


def reasons(stack: DeployedStack) -> str:
    return "; ".join(f"{e.logical_id}: {e.reason}" for e in stack.failures())
