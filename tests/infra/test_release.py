"""Release rings: canary first, promote by a reviewed cdk.json change, roll back by reverting it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from app_config import ConfigError, load_config
from app_config.releases import PROMOTED_PREFIX
from rollout import promote
from tests.infra.conftest import CDK_JSON_CONTEXT, JETSON_RELEASE, REPO_ROOT, THREE_CLASSES
from tests.infra.fast import pipeline_template
from tests.infra.rendering import resources_of_type

CLASSES = {"jetson": THREE_CLASSES["jetson"], "onnx": THREE_CLASSES["onnx"]}


def deployments(template: dict) -> dict[str, dict]:
    """ring -> Components of the jetson class's deployments."""
    result = {}
    for resource in resources_of_type(template, "Custom::GreengrassDeployment").values():
        ring = resource["Metadata"]["EdgeAiRing"]
        if ring["class"] == "jetson":
            result[ring["ring"]] = resource["Properties"]["Components"]
    return result


def write_cdk_json(path: Path, releases: dict | None = None) -> Path:
    context = {**CDK_JSON_CONTEXT, "device_classes": CLASSES}
    if releases is not None:
        context["releases"] = releases
    path.write_text(json.dumps({"app": "python3 app.py", "context": context}, indent=2) + "\n")
    return path


def synth(outdir: Path, cdk_json: Path, repo_root: Path = REPO_ROOT) -> dict:
    context = json.loads(cdk_json.read_text())["context"]
    return pipeline_template(outdir, repo_root=repo_root, context=context)


def edited_repo(root: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")
    for folder in ("component_src", "training_src"):
        shutil.copytree(REPO_ROOT / folder, root / folder, ignore=ignore)
    main = root / "component_src" / "edge_inference" / "__init__.py"
    main.write_text(main.read_text() + "\n# release 2\n")
    return root


def test_before_any_promotion_only_the_canary_is_deployed(tmp_path) -> None:
    rings = deployments(synth(tmp_path / "out", write_cdk_json(tmp_path / "cdk.json")))
    assert set(rings) == {"canary"}


def test_promote_rollout_and_rollback(tmp_path) -> None:
    cdk_json = write_cdk_json(tmp_path / "cdk.json")
    # 1. Release 1 reaches the canary; promote it: the fleet runs exactly what the canary ran.
    first = synth(tmp_path / "r1", cdk_json)
    assert promote.main(["--stage", "dev", "--class", "jetson", "--assembly", str(tmp_path / "r1"),
                         "--cdk-json", str(cdk_json)]) == 0  # fmt: skip
    promoted_1 = cdk_json.read_text()
    rings = deployments(synth(tmp_path / "r1b", cdk_json))
    assert rings["fleet"] == rings["canary"] == deployments(first)["canary"]

    # 2. A code change goes to the canary only; the fleet stays on release 1.
    repo = edited_repo(tmp_path / "repo")
    second = synth(tmp_path / "r2", cdk_json, repo)
    rings_2 = deployments(second)
    assert rings_2["canary"] != rings["canary"]
    assert rings_2["fleet"] == rings["fleet"]

    # 3. Promote release 2: the diff moves the fleet deployment to release 2's versions.
    promote.promote(tmp_path / "r2", cdk_json, "dev", "jetson")
    rings_3 = deployments(synth(tmp_path / "r3", cdk_json, repo))
    assert rings_3["fleet"] == rings_2["canary"]
    inference = "com.example.edgeai.dev.jetson.DlrInference"
    assert rings_3["fleet"][inference] != rings["fleet"][inference]

    # 4. Roll back = revert cdk.json: the fleet is back on release 1 (still deployable: the
    #    component versions are retained), while the canary keeps release 2.
    cdk_json.write_text(promoted_1)
    rings_4 = deployments(synth(tmp_path / "r4", cdk_json, repo))
    assert rings_4["fleet"] == rings["fleet"]
    assert rings_4["canary"] == rings_2["canary"]


def test_promote_refuses_a_class_without_a_canary(tmp_path, capsys) -> None:
    cdk_json = write_cdk_json(tmp_path / "cdk.json")
    synth(tmp_path / "out", cdk_json)
    before = cdk_json.read_text()
    code = promote.main(["--stage", "dev", "--class", "onnx", "--assembly", str(tmp_path / "out"),
                         "--cdk-json", str(cdk_json)])  # fmt: skip
    assert code == 2
    assert "device class onnx has no canary ring" in capsys.readouterr().err
    assert cdk_json.read_text() == before
    with pytest.raises(promote.PromoteError, match=r"no device class pi .*classes: jetson, onnx"):
        promote.promote(tmp_path / "out", cdk_json, "dev", "pi")
    with pytest.raises(promote.PromoteError, match="no templates"):
        promote.promote(tmp_path / "empty", cdk_json, "dev", "jetson")


def test_a_release_for_a_class_without_canary_fails_synth(tmp_path) -> None:
    releases = {"dev": {"onnx": {"x.Model": {"version": "1.0.1"}}}}
    with pytest.raises(ConfigError, match=r"releases\.dev\.onnx=.*canary_thing_group"):
        synth(tmp_path / "out", write_cdk_json(tmp_path / "cdk.json", releases))
    releases = {"dev": {"jetson": {"x.Model": {"version": "latest"}}}}
    with pytest.raises(ConfigError, match=r"releases\.dev\.jetson\.x\.Model="):
        synth(tmp_path / "out", write_cdk_json(tmp_path / "cdk.json", releases))


def test_ring_metadata_key_and_type_match_the_construct() -> None:
    from edge_constructs.greengrass.construct import DEPLOYMENT_TYPE, RING_METADATA

    assert promote.RING_METADATA == RING_METADATA
    assert promote.DEPLOYMENT_TYPE == DEPLOYMENT_TYPE


def test_promote_rewrites_cdk_json_without_reformatting_it() -> None:
    """promote writes json.dumps(indent=2): the real cdk.json must already be in that form, so a
    promotion's diff holds the release and nothing else."""
    text = (REPO_ROOT / "cdk.json").read_text()
    assert json.dumps(json.loads(text), indent=2) + "\n" == text


# ------------------------------------------------------------------------------------------
# A rolled-back release goes back to the devices (issue 17, part 2, item 6).


def registry_schema(type_name: str) -> dict:
    """The CloudFormation registry schema of ``type_name`` as cfn-lint ships it
    (``cfnlint/data/schemas/resources``). A ``Custom::*`` type is an
    ``AWS::CloudFormation::CustomResource``, whose schema marks only ``ServiceToken``
    create-only."""
    import cfnlint

    wanted = (
        "AWS::CloudFormation::CustomResource" if type_name.startswith("Custom::") else type_name
    )
    folder = Path(cfnlint.__file__).parent / "data" / "schemas" / "resources"
    for path in folder.glob("*.json"):
        text = path.read_text()
        if f'"typeName": "{wanted}"' in text:
            return json.loads(text)  # type: ignore[no-any-return]
    raise AssertionError(f"no registry schema for {wanted} in cfn-lint's data")


def replaced_by(resource_before: dict, resource_after: dict) -> list[str]:
    """The create-only properties (registry schema ``createOnlyProperties``) whose value the
    change touches: any one makes CloudFormation replace the resource instead of updating it
    (CloudFormation User Guide, "Update behaviors of stack resources")."""
    assert resource_before["Type"] == resource_after["Type"]
    schema = registry_schema(resource_after["Type"])
    before, after = resource_before["Properties"], resource_after["Properties"]
    return [
        pointer
        for pointer in schema.get("createOnlyProperties", [])
        if before.get(pointer.rsplit("/", 1)[1]) != after.get(pointer.rsplit("/", 1)[1])
    ]


def one_deployment(stack) -> tuple[str, dict]:
    import aws_cdk as cdk

    template = cdk.assertions.Template.from_stack(stack).to_json()
    (found,) = [
        (logical, resource)
        for logical, resource in template["Resources"].items()
        if promote.RING_METADATA in (resource.get("Metadata") or {})
    ]
    return found


def test_a_release_change_is_an_update_so_its_rollback_reissues_the_old_release(
    tmp_path,
) -> None:
    """Rolling a release back must put the old release back on the devices.

    CloudFormation rolls an *updated* resource back with an Update whose properties are the
    old ones (custom resources: "Update" request type, CloudFormation User Guide,
    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/crpg-ref-requesttypes-update.html);
    a *replaced* resource is rolled back by deleting the new one, and nothing re-issues the
    old. ``AWS::GreengrassV2::Deployment`` marks every property create-only (its registry
    schema), and its delete handler cancels the new deployment, so after the rollback the
    devices keep the release the stack says it left. A release change must therefore be an
    in-place update of the deployment resource, under the same logical ID.
    """
    import aws_cdk as cdk

    from app_config import ComponentPin
    from edge_constructs.greengrass.construct import ThingGroupDeployment
    from tests.infra.test_constructs import POLICY

    def synth_release(version: str) -> tuple[str, dict]:
        stack = cdk.Stack(cdk.App(outdir=str(tmp_path / version)), "Bare")
        ThingGroupDeployment(
            stack,
            "Deployment",
            name="edge-ai-dev-default",
            target_arn="arn:aws:iot:eu-west-1:123456789012:thinggroup/G",
            components={"x.Model": ComponentPin(version), "x.Inference": ComponentPin("1.0.0")},
            policy=POLICY,
            ring={"stage": "dev", "class": "default", "ring": "all"},
        )
        return one_deployment(stack)

    (id_1, release_1), (id_2, release_2) = synth_release("1.0.1"), synth_release("1.0.2")
    assert id_1 == id_2, "a release change must keep the deployment's logical ID"
    assert release_1["Properties"]["Components"] != release_2["Properties"]["Components"]
    replaced = replaced_by(release_1, release_2)
    assert replaced == [], (
        f"{release_2['Type']}: a release change touches create-only {replaced}, so "
        "CloudFormation replaces the deployment, and its rollback deletes (cancels) the new "
        "one without re-issuing the old release to the devices"
    )


def test_the_custom_deployment_takes_a_new_logical_id(tmp_path) -> None:
    """CloudFormation refuses a template that changes a resource's type under one logical ID
    ("Update of resource type is not permitted. The new template modifies resource type of the
    following resources", e.g. aws/aws-sam-cli#6786), so stacks deployed with the native
    resource could not be updated if the custom one kept its logical ID: it must take a new
    one (CloudFormation creates it, then deletes the native one)."""
    import aws_cdk as cdk
    from constructs import Construct

    from app_config import ComponentPin
    from edge_constructs.greengrass.construct import ThingGroupDeployment
    from tests.infra.test_constructs import POLICY

    stack = cdk.Stack(cdk.App(outdir=str(tmp_path)), "Bare")
    ThingGroupDeployment(
        stack,
        "Deployment",
        name="d",
        target_arn="arn:aws:iot:eu-west-1:123456789012:thinggroup/G",
        components={"x.Model": ComponentPin("1.0.0")},
        policy=POLICY,
        ring={"stage": "dev", "class": "default", "ring": "all"},
    )
    logical, resource = one_deployment(stack)
    # Where the native resource was: <ThingGroupDeployment>/Resource.
    native = cdk.CfnResource(
        Construct(cdk.Stack(cdk.App(), "Bare"), "Deployment"), "Resource", type="AWS::X::Y"
    )
    assert resource["Type"] == "Custom::GreengrassDeployment"
    assert logical != cdk.Stack.of(native).get_logical_id(native)


def test_a_promoted_release_records_its_topic_prefix_and_synth_refuses_it_once_the_prefix_moves(
    tmp_path,
) -> None:
    """Issue 18, block 2: after promoting, ``-c publish_topic_prefix=acme/cams`` moves the
    core-device policy to ``acme/cams/...`` while the promoted inference version still
    publishes under ``edge-ai`` (its recipe's DefaultConfiguration): synth must refuse, naming
    the key; the same release with the prefix it was promoted under still synthesizes."""
    cdk_json = write_cdk_json(tmp_path / "cdk.json")
    synth(tmp_path / "r1", cdk_json)
    promote.promote(tmp_path / "r1", cdk_json, "dev", "jetson")
    release = json.loads(cdk_json.read_text())["context"]["releases"]["dev"]["jetson"]
    inference = "com.example.edgeai.dev.jetson.DlrInference"
    assert release[inference][promote.PROMOTED_PREFIX] == "edge-ai"
    assert [n for n, pin in release.items() if promote.PROMOTED_PREFIX in pin] == [inference]
    assert promote.PROMOTED_PREFIX == PROMOTED_PREFIX

    context = json.loads(cdk_json.read_text())["context"]
    with pytest.raises(ConfigError) as refused:
        load_config({**context, "publish_topic_prefix": "acme/cams"}, "dev")
    message = str(refused.value)
    assert f"releases.dev.jetson.{inference}.publish_topic_prefix='edge-ai'" in message
    assert "publish_topic_prefix is now acme/cams" in message
    assert "Move a release across a topic change" in message
    load_config(context, "dev")  # unchanged prefix: fine


def test_a_release_promoted_before_prefixes_were_recorded_still_synthesizes(tmp_path) -> None:
    """A cdk.json promoted by an earlier version has no publish_topic_prefix: nothing to check
    it against, so it is taken as it is (it cannot be told apart from a coherent one)."""
    context = {**CDK_JSON_CONTEXT, "device_classes": CLASSES}
    context["releases"] = {"dev": {"jetson": JETSON_RELEASE}}
    assert load_config({**context, "publish_topic_prefix": "acme/cams"}, "dev")


def test_a_recorded_prefix_that_is_not_a_string_is_named() -> None:
    release = json.loads(json.dumps(JETSON_RELEASE))
    release["com.example.edgeai.dev.jetson.DlrInference"]["publish_topic_prefix"] = 7
    context = {
        **CDK_JSON_CONTEXT,
        "device_classes": CLASSES,
        "releases": {"dev": {"jetson": release}},
    }
    with pytest.raises(
        ConfigError, match=r"DlrInference\.publish_topic_prefix=7.*expected a string"
    ):
        load_config(context, "dev")


def test_a_legacy_release_is_checked_by_its_merged_topic_and_every_class_is_named() -> None:
    """Found by the hostile review: a release without a recorded prefix was not checked though
    its merge names the topic, and the check stopped at the first class."""
    inference = "com.example.edgeai.dev.{}.DlrInference"
    release = json.loads(json.dumps(JETSON_RELEASE))
    release[inference.format("jetson")]["merge"] = {
        "TopK": 5,
        "PublishTopic": "edge-ai/{iot:thingName}/predictions",
    }
    pi = {
        name.replace(".jetson.", ".pi."): spec
        for name, spec in json.loads(json.dumps(release)).items()
    }
    classes = {
        "jetson": CLASSES["jetson"],
        "pi": {
            **CLASSES["jetson"],
            "thing_group": "EdgeAiDevPis",
            "canary_thing_group": "EdgeAiDevPisCanary",
        },
    }
    context = {
        **CDK_JSON_CONTEXT,
        "device_classes": classes,
        "releases": {"dev": {"jetson": release, "pi": pi}},
    }
    assert load_config(context, "dev")  # the prefix it was promoted under: fine
    with pytest.raises(ConfigError) as refused:
        load_config({**context, "publish_topic_prefix": "fleet-ai"}, "dev")
    message = str(refused.value)
    assert (
        f"releases.dev.jetson.{inference.format('jetson')}.merge.PublishTopic='edge-ai'" in message
    )
    assert f"(also: releases.dev.pi.{inference.format('pi')}.merge.PublishTopic)" in message
