"""The simulated CloudFormation engine on small hand-written templates: what it refuses as
CloudFormation does, independent of this project's stacks."""

from __future__ import annotations

from typing import Any

from device_sim.cloud.account import Cloud
from device_sim.cloud.cloudformation.engine import CloudFormation
from device_sim.cloud.cloudformation.stack import StackArtifact
from device_sim.cloud.env import Env


def artifact(resources: dict[str, Any]) -> StackArtifact:
    return StackArtifact(
        artifact_id="Small",
        stack_name="small",
        display_name="test/Small",
        template={"Resources": resources},
        assets={},
        dependencies=[],
    )


def role(path: str, name: str = "fixed-name") -> dict[str, Any]:
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "RoleName": name,
            "Path": path,
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": []},
        },
    }


def test_a_custom_named_resource_that_needs_replacing_is_refused() -> None:
    """A create-only change (IAM Role ``Path``: createOnlyProperties of its registry schema)
    under an unchanged custom ``RoleName``: "If you specify a name, you can't perform updates
    that require replacement of this resource" (CloudFormation User Guide, "Name type"); the
    update fails with CloudFormation's message and rolls back, the role untouched."""
    cloud = Cloud(Env())
    cf = CloudFormation(cloud)
    assert cf.deploy(artifact({"Role": role("/a/")})).status == "CREATE_COMPLETE"
    updated = cf.deploy(artifact({"Role": role("/b/")}))
    assert updated.status == "UPDATE_ROLLBACK_COMPLETE"
    reasons = " ".join(e.reason for e in updated.failures())
    assert "custom-named resource requires replacing. Rename fixed-name" in reasons, reasons
    assert cloud.roles["fixed-name"].arn.endswith(":role/a/fixed-name")


def test_a_renamed_replacement_goes_through() -> None:
    """Changing the name too makes the replacement possible: the new role is created, the old
    one deleted in the cleanup."""
    cloud = Cloud(Env())
    cf = CloudFormation(cloud)
    cf.deploy(artifact({"Role": role("/a/")}))
    updated = cf.deploy(artifact({"Role": role("/b/", name="other-name")}))
    assert updated.status == "UPDATE_COMPLETE", [e.reason for e in updated.failures()]
    assert set(cloud.roles) == {"other-name"}


def test_a_resource_type_change_under_one_logical_id_is_refused() -> None:
    """CloudFormation refuses "Update of resource type is not permitted" (aws/aws-sam-cli#6786):
    the native Greengrass resources became custom ones under new logical IDs for this reason;
    a template that reused the old ID must fail here as it would in AWS (found by the hostile
    review: the engine replaced the resource and reported UPDATE_COMPLETE)."""
    cloud = Cloud(Env())
    cf = CloudFormation(cloud)
    cf.deploy(artifact({"Group": {"Type": "AWS::IoT::ThingGroup", "Properties": {}}}))
    queue = {"Type": "AWS::SQS::Queue", "Properties": {}}
    updated = cf.deploy(artifact({"Group": queue}))
    assert updated.status == "UPDATE_ROLLBACK_COMPLETE"
    reasons = " ".join(e.reason for e in updated.failures())
    assert "Update of resource type is not permitted" in reasons, reasons


def test_create_deployment_is_idempotent_on_its_client_token() -> None:
    """botocore greengrassv2 CreateDeployment ``clientToken``: a retried request with the same
    token gets the cached response (for up to 8 hours), not a second deployment; another token
    is another deployment. The deployment handler derives its token from the request's
    RequestId, which is unique per request, so a rollback Update deploys again."""
    cloud = Cloud(Env())
    client = cloud.greengrass.client()
    target = cloud.env.arn("iot", "thinggroup/G")
    request = {"targetArn": target, "deploymentName": "d", "components": {}}
    first = client.create_deployment(**request, clientToken="t-1")
    again = client.create_deployment(**request, clientToken="t-1")
    assert again["deploymentId"] == first["deploymentId"]
    assert len(cloud.greengrass.records) == 1
    cloud.advance(8 * 3600 + 1)
    later = client.create_deployment(**request, clientToken="t-1")
    other = client.create_deployment(**request, clientToken="t-2")
    assert len({first["deploymentId"], later["deploymentId"], other["deploymentId"]}) == 3
