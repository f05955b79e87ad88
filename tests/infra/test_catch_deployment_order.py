"""A deployment that carries this synth's component versions is created after them (issue 14,
"Tests that catch what matters": the single-ring deployment losing that dependency was caught
only by a template snapshot).

The deployment pins each version as a literal string, not a reference, so ``DependsOn`` is the
only thing that orders it after the ``Custom::GreengrassComponentVersion`` resources that
create those versions. Without it CloudFormation may create both at once, and the deployment
handler's CreateDeployment can name a version that does not exist yet (botocore greengrassv2
2020-11-30 service model: CreateDeployment's errors include ResourceNotFoundException, "The
requested resource can't be found"). The default configuration's class has no canary ring: it
deploys from one resource (ring ``all``). The template is the suite's shared ``dev`` synth,
read with ``aws_cdk.assertions``."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Template

from tests.infra.conftest import Synthesized
from tests.infra.rendering import render

DEPLOYMENT = "Custom::GreengrassDeployment"
COMPONENT_VERSION = "Custom::GreengrassComponentVersion"


@pytest.fixture(scope="module")
def template(dev: Synthesized) -> Template:
    return dev.template("dev/Pipeline")


def created_versions(template: Template) -> dict[tuple[str, str], str]:
    """(component name, version) -> logical ID of the resource that creates it."""
    created = {}
    for logical_id, resource in template.find_resources(COMPONENT_VERSION).items():
        recipe = json.loads(render(resource["Properties"]["InlineRecipe"]))
        created[(recipe["ComponentName"], recipe["ComponentVersion"])] = logical_id
    return created


def deployment(template: Template, device_class: str, ring: str) -> dict[str, Any]:
    matches = [
        resource
        for resource in template.find_resources(DEPLOYMENT).values()
        if resource["Metadata"]["EdgeAiRing"]["class"] == device_class
        and resource["Metadata"]["EdgeAiRing"]["ring"] == ring
    ]
    assert len(matches) == 1, f"{device_class}/{ring}: {len(matches)} deployments"
    return matches[0]


def test_the_single_ring_deployment_depends_on_every_component_version_it_deploys(
    template: Template,
) -> None:
    device_class, ring = "default", "all"
    resource = deployment(template, device_class, ring)
    created = created_versions(template)
    needed = {
        created[(name, spec["ComponentVersion"])]
        for name, spec in resource["Properties"]["Components"].items()
        if (name, spec["ComponentVersion"]) in created
    }
    # The class's model, runtime and inference components: built here, deployed here.
    assert {name.rsplit(".", 1)[1] for name, _ in created} == {
        "Model",
        "DlrRuntime",
        "DlrInference",
    }
    assert len(needed) == 3, needed
    missing = needed - set(resource.get("DependsOn", []))
    assert not missing, f"{device_class}/{ring} deployment is not ordered after {missing}"
