"""The optional demo core device stack (``-c demo_device=true``).

Sources for what is asserted: the Ubuntu image parameter, "Find Ubuntu images on AWS"
(documentation.ubuntu.com/aws); ports, "Allow device traffic through a proxy or firewall"
(Greengrass V2 developer guide); the nucleus URL and installer flags, "Install AWS IoT
Greengrass Core software with automatic resource provisioning" (same guide); IMDSv2 reads,
"Use the Instance Metadata Service to access instance metadata" (EC2 user guide).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Annotations, Match

from app_config import ConfigError
from edge_constructs.demo_device.user_data import nucleus_url, user_data_script
from edge_constructs.greengrass.public_components import CURRENT_NUCLEUS
from tests.infra.conftest import REPO_ROOT, Synthesized, deploy
from tests.infra.rendering import render, resources_of_type
from tests.infra.test_config import config_with

STACK = "dev/DemoDevice"
SHELLCHECK = str(Path(sys.executable).parent / "shellcheck")
CFN_LINT = str(Path(sys.executable).parent / "cfn-lint")
REGION = "eu-west-1"
AMI_PARAMETER = "/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id"


def only(template: dict[str, Any], type_: str) -> tuple[str, dict[str, Any]]:
    found = resources_of_type(template, type_)
    assert len(found) == 1, f"{type_}: {sorted(found)}"
    return next(iter(found.items()))


def as_script(value: Any) -> str:
    """A template string value as the instance sees it (the region filled in)."""
    text = str(render(value)).replace("<AWS::Region>", REGION)
    assert "<" not in text.replace("2>&1", "").replace("> >(", ""), text
    return text


def user_data(template: dict[str, Any]) -> str:
    _, instance = only(template, "AWS::EC2::Instance")
    return as_script(instance["Properties"]["UserData"]["Fn::Base64"])


@pytest.fixture(scope="module")
def template(demo: Synthesized) -> dict[str, Any]:
    return demo.template_json(STACK)


def test_off_by_default(dev: Synthesized, prod: Synthesized) -> None:
    assert not any(name.endswith("/DemoDevice") for name in [*dev.stacks, *prod.stacks])
    assert config_with().demo_device.enabled is False


def test_on_adds_one_stack_per_stage_named_after_it(demo: Synthesized) -> None:
    assert sorted(demo.stacks) == sorted(
        ["dev/Artifacts", "dev/Devices", "dev/Pipeline", "dev/Fleet", "dev/DemoDevice"]
    )
    assert demo.stacks[STACK].stack_name == "edge-ai-dev-demo-device"


def test_image_is_resolved_at_deploy_time_from_the_public_ubuntu_parameter(
    template: dict[str, Any],
) -> None:
    _, instance = only(template, "AWS::EC2::Instance")
    parameter = instance["Properties"]["ImageId"]["Ref"]
    assert template["Parameters"][parameter] == {
        "Type": "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>",
        "Default": AMI_PARAMETER,
    }
    assert "ami-" not in json.dumps(template["Resources"])  # nothing looked up at synth


def test_synth_made_no_context_lookup(demo: Synthesized) -> None:
    manifest = json.loads((demo.assembly_dir / "manifest.json").read_text())
    assert "missing" not in manifest
    assert not (REPO_ROOT / "cdk.context.json").exists()


def test_instance_is_x86_64_sized_and_has_no_key_pair(template: dict[str, Any]) -> None:
    _, instance = only(template, "AWS::EC2::Instance")
    properties = instance["Properties"]
    assert properties["InstanceType"] == "t3.medium"
    assert "KeyName" not in properties
    _, launch_template = only(template, "AWS::EC2::LaunchTemplate")
    assert "KeyName" not in launch_template["Properties"]["LaunchTemplateData"]


def test_imdsv2_is_required(template: dict[str, Any]) -> None:
    name, launch_template = only(template, "AWS::EC2::LaunchTemplate")
    data = launch_template["Properties"]["LaunchTemplateData"]
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    _, instance = only(template, "AWS::EC2::Instance")
    assert instance["Properties"]["LaunchTemplate"]["Version"] == {
        "Fn::GetAtt": [name, "LatestVersionNumber"]
    }


def test_root_volume_is_encrypted_gp3_and_goes_with_the_instance(
    template: dict[str, Any],
) -> None:
    _, instance = only(template, "AWS::EC2::Instance")
    assert instance["Properties"]["BlockDeviceMappings"] == [
        {
            "DeviceName": "/dev/sda1",
            "Ebs": {
                "DeleteOnTermination": True,
                "Encrypted": True,
                "VolumeSize": 20,
                "VolumeType": "gp3",
            },
        }
    ]


def test_no_inbound_rule_and_egress_limited_to_greengrass_and_package_ports(
    template: dict[str, Any],
) -> None:
    assert resources_of_type(template, "AWS::EC2::SecurityGroupIngress") == {}
    _, group = only(template, "AWS::EC2::SecurityGroup")
    assert "SecurityGroupIngress" not in group["Properties"]
    egress = group["Properties"]["SecurityGroupEgress"]
    assert {(rule["IpProtocol"], rule["FromPort"], rule["ToPort"]) for rule in egress} == {
        ("tcp", 443, 443),
        ("tcp", 8443, 8443),
        ("tcp", 8883, 8883),
        ("tcp", 80, 80),
    }
    assert resources_of_type(template, "AWS::EC2::SecurityGroupEgress") == {}
    _, instance = only(template, "AWS::EC2::Instance")
    groups = instance["Properties"]["NetworkInterfaces"][0]["GroupSet"]
    assert groups == [{"Fn::GetAtt": [only(template, "AWS::EC2::SecurityGroup")[0], "GroupId"]}]


def test_own_vpc_with_one_public_subnet_and_no_nat(template: dict[str, Any]) -> None:
    assert len(resources_of_type(template, "AWS::EC2::VPC")) == 1
    assert len(resources_of_type(template, "AWS::EC2::Subnet")) == 1
    assert resources_of_type(template, "AWS::EC2::NatGateway") == {}
    _, flow_log = only(template, "AWS::EC2::FlowLog")
    assert flow_log["Properties"]["TrafficType"] == "REJECT"


def test_instance_role_carries_exactly_the_installer_policy_and_ssm_core(
    demo: Synthesized, template: dict[str, Any]
) -> None:
    _, profile = only(template, "AWS::IAM::InstanceProfile")
    (role_ref,) = profile["Properties"]["Roles"]
    role = template["Resources"][role_ref["Ref"]]
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "ec2.amazonaws.com"
    }
    assert "Policies" not in role["Properties"]
    attached = [
        p
        for p in resources_of_type(template, "AWS::IAM::Policy").values()
        if role_ref in p["Properties"]["Roles"]
    ]
    assert attached == []
    installer, ssm = role["Properties"]["ManagedPolicyArns"]
    assert render(ssm) == "arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore"
    # The installer policy comes from the devices stack: its ARN, exported there.
    output = installer["Fn::GetStackOutput"]
    assert output["StackName"] == "edge-ai-dev-devices"
    devices = demo.template_json("dev/Devices")
    policy_ids = [
        logical_id
        for logical_id, policy in resources_of_type(devices, "AWS::IAM::ManagedPolicy").items()
        if policy["Properties"]["ManagedPolicyName"] == "edge-ai-dev-GreengrassInstallerPolicy"
    ]
    assert devices["Outputs"][output["OutputName"]]["Value"] == {"Ref": policy_ids[0]}


def test_the_installer_run_by_the_user_data_provisions_under_the_installer_policy(
    demo: Synthesized, template: dict[str, Any], tmp_path: Path
) -> None:
    """Whatever the installer policy's statements become, the exact installer command the user
    data runs must provision (device_sim.provision replays DeviceProvisioningHelper's calls
    under the policy the instance role carries)."""
    from device_sim.provision import installer_principal, parse_installer_command, provision

    script = user_data(template)
    command = next(
        line.strip() for line in script.splitlines() if "-jar " in line and "Greengrass.jar" in line
    )
    command = command.removeprefix("if ").removesuffix("; then")
    instance = "i-0123456789abcdef0"
    args = parse_installer_command(command.replace('"$INSTANCE_ID"', instance), "")
    assert args.thing_name == f"edge-ai-dev-demo-{instance}"
    assert args.provision
    cloud = deploy(demo, "dev", tmp_path)
    result = provision(cloud, args, installer_principal(cloud))
    assert all(decision.allowed for _, decision, _ in result.calls), result.transcript()
    assert result.thing_arn.endswith(f":thing/edge-ai-dev-demo-{instance}")


def test_user_data_installs_the_runtime_and_the_nucleus(template: dict[str, Any]) -> None:
    script = user_data(template)
    assert script.startswith("#!/bin/bash\n")
    assert "set -euo pipefail" in script
    assert "apt-get install -y -q openjdk-17-jre-headless python3-venv unzip curl" in script
    assert (
        f"https://d2s8p88vqu9w66.cloudfront.net/releases/greengrass-{CURRENT_NUCLEUS}.zip" in script
    )
    assert "nucleus-latest" not in script
    assert "tee -a /var/log/edge-ai-demo-device.log" in script
    assert 'X-aws-ec2-metadata-token: $TOKEN" "$IMDS/meta-data/instance-id"' in script


def test_user_data_runs_the_devices_stacks_own_installer_command(
    demo: Synthesized, template: dict[str, Any]
) -> None:
    documented = render(demo.template_json("dev/Devices")["Outputs"]["InstallerCommand"]["Value"])
    expected = as_script(documented.replace("<device-name>", 'demo-"$INSTANCE_ID"'))
    assert f"if {expected}; then" in user_data(template)
    for flag in (
        "--provision true",
        "--setup-system-service true",
        "--component-default-user ggc_user:ggc_group",
        "--thing-group-name EdgeAiDevCoreDevices",
        f"--aws-region {REGION}",
        '--thing-name edge-ai-dev-demo-"$INSTANCE_ID"',
    ):
        assert flag in expected


def test_user_data_stops_when_greengrass_is_already_installed(template: dict[str, Any]) -> None:
    script = user_data(template)
    guard = script.index("systemctl is-enabled --quiet greengrass.service")
    assert guard < script.index("apt-get") < script.index("Greengrass.jar --aws-region")
    assert "if [ ! -f GreengrassInstaller/lib/Greengrass.jar ]" in script


def run_shellcheck(script: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "user-data.sh"
    path.write_text(script)
    return subprocess.run(
        [SHELLCHECK, "--shell=bash", "--severity=style", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_user_data_passes_shellcheck(template: dict[str, Any], tmp_path: Path) -> None:
    result = run_shellcheck(user_data(template), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_shellcheck_does_flag_a_broken_script(tmp_path: Path) -> None:
    result = run_shellcheck("#!/bin/bash\nfor f in $(ls *.txt); do cat $f; done\n", tmp_path)
    assert result.returncode != 0
    assert "SC2045" in result.stdout or "SC2086" in result.stdout


def test_a_pinned_nucleus_version_downloads_that_release(tmp_path: Path) -> None:
    assert nucleus_url("2.15.0") == (
        "https://d2s8p88vqu9w66.cloudfront.net/releases/greengrass-2.15.0.zip"
    )
    script = user_data_script(
        installer_command='java -jar x --thing-name p-demo-"$INSTANCE_ID"',
        nucleus_version="2.15.0",
    )
    assert "releases/greengrass-2.15.0.zip" in script and "nucleus-latest" not in script
    assert run_shellcheck(script, tmp_path).returncode == 0
    with pytest.raises(ValueError, match="INSTANCE_ID"):
        user_data_script(
            installer_command="java -jar x --thing-name fixed", nucleus_version="2.15.0"
        )


def test_an_unpinned_demo_device_installs_the_nucleus_the_simulator_proves(
    template: dict[str, Any],
) -> None:
    """With ``nucleus_version`` empty (cdk.json's default) the demo device installs the
    versioned archive of the one nucleus the stage is checked against: the simulated device's
    default nucleus, against which the public components' ranges are checked
    (``public_components.CURRENT_NUCLEUS``). ``greengrass-nucleus-latest.zip`` would install
    whatever AWS released last, a version no range here was checked against. Versioned
    archive: "Install AWS IoT Greengrass Core software with automatic resource provisioning",
    https://docs.aws.amazon.com/greengrass/v2/developerguide/quick-installation.html
    (releases/greengrass-<version>.zip)."""
    from device_sim.deployment import DEFAULT_NUCLEUS_VERSION

    assert DEFAULT_NUCLEUS_VERSION == CURRENT_NUCLEUS
    assert f"releases/greengrass-{DEFAULT_NUCLEUS_VERSION}.zip" in user_data(template)


@pytest.mark.parametrize("version", ["", "latest", "2.18", "v2.18.2", "2.18.2 ; rm -rf /"])
def test_a_nucleus_url_needs_an_exact_version(version: str) -> None:
    with pytest.raises(ValueError, match="nucleus version"):
        nucleus_url(version)


def test_instance_is_terminated_before_the_cleanup_runs(template: dict[str, Any]) -> None:
    """CloudFormation deletes a resource before what it depends on: the instance depends on
    the cleanup, so on stack deletion the instance goes first, then the cleanup's Delete."""
    cleanup_id, cleanup = only(template, "Custom::DemoDeviceCleanup")
    _, instance = only(template, "AWS::EC2::Instance")
    assert cleanup_id in instance["DependsOn"]
    # The handler's permissions outlive the cleanup's Delete.
    policy_id = next(
        name
        for name, policy in resources_of_type(template, "AWS::IAM::Policy").items()
        if "iot:DeleteThing" in json.dumps(policy)
    )
    assert policy_id in cleanup["DependsOn"]
    assert cleanup["Properties"]["ThingNamePrefix"] == "edge-ai-dev-demo-i-"
    assert cleanup["Properties"]["ThingGroupName"] == "EdgeAiDevCoreDevices"


def test_cleanup_permissions_are_scoped_to_the_demo_prefix(template: dict[str, Any]) -> None:
    policy = next(
        p
        for p in resources_of_type(template, "AWS::IAM::Policy").values()
        if "iot:DeleteThing" in json.dumps(p)
    )
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    unnamed = [s for s in statements if "Sid" not in s]
    assert [s["Action"] for s in unnamed] == [["logs:CreateLogStream", "logs:PutLogEvents"]]
    by_sid = {s["Sid"]: s for s in statements if "Sid" in s}
    assert set(by_sid) == {
        "ListThingsAndCoreDevices",
        "DemoThings",
        "TheirCertificates",
        "DemoCoreDevices",
    }
    assert by_sid["ListThingsAndCoreDevices"]["Resource"] == "*"
    assert sorted(by_sid["ListThingsAndCoreDevices"]["Action"]) == [
        "greengrass:ListCoreDevices",
        "iot:ListThings",
    ]
    things = [render(r) for r in by_sid["DemoThings"]["Resource"]]
    assert any(r.endswith(":thing/edge-ai-dev-demo-i-*") for r in things), things
    assert all(r.endswith(("demo-i-*", "thinggroup/EdgeAiDevCoreDevices")) for r in things)
    assert render(by_sid["DemoCoreDevices"]["Resource"]).endswith(
        ":coreDevices:edge-ai-dev-demo-i-*"
    )
    assert by_sid["DemoCoreDevices"]["Action"] == "greengrass:DeleteCoreDevice"
    actions = [a for s in by_sid.values() for a in json.dumps(s["Action"]).split('"')]
    assert not any(a.endswith("*") for a in actions)


def test_cdk_nag_is_clean_and_acknowledgements_are_narrow(demo: Synthesized) -> None:
    for name, stack in demo.stacks.items():
        annotations = Annotations.from_stack(stack)
        findings = annotations.find_error(
            "*", Match.string_like_regexp("AwsSolutions-.*")
        ) + annotations.find_warning("*", Match.string_like_regexp("AwsSolutions-.*"))
        assert findings == [], f"{name}: {[f.entry.data for f in findings]}"
    ours = {"DemoDeviceInstanceRole", "DemoDeviceCleanupHandlerRole"}
    for logical_id, resource in demo.template_json(STACK)["Resources"].items():
        for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", []):
            assert len(rule["reason"]) >= 60, rule
            if rule["id"] in ("AwsSolutions-IAM4", "AwsSolutions-IAM5") and any(
                logical_id.startswith(prefix) for prefix in ours
            ):
                assert rule.get("applies_to"), (logical_id, rule)


def test_cfn_lint_is_clean(demo: Synthesized) -> None:
    templates = sorted(str(p) for p in demo.assembly_dir.rglob("*.template.json"))
    assert len(templates) == 5  # artifacts, devices, pipeline, fleet, demo device
    result = subprocess.run(
        [CFN_LINT, "--format", "parseable", *templates],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"demo_device": "maybe"}, "demo_device='maybe': expected true or false"),
        ({"demo_device_instance_type": "t3.micro"}, "at least 2 GiB"),
        ({"demo_device_instance_type": "t4g.medium"}, "x86_64"),
        (
            {
                "demo_device": "true",
                "neo_target_device": "jetson_nano",
                "neo_target_platform": "",
            },
            "it joins device class 'default' (EdgeAiCoreDevices), which needs an x86_64",
        ),
    ],
)
def test_demo_configuration_errors_name_the_problem(
    overrides: dict[str, object], fragment: str
) -> None:
    with pytest.raises(ConfigError) as error:
        config_with(**overrides)
    assert fragment in str(error.value)
    assert "\n" not in str(error.value)


def test_instance_type_is_configurable() -> None:
    config = config_with(demo_device="true", demo_device_instance_type="m7i.large")
    assert config.demo_device.enabled is True
    assert config.demo_device.instance_type == "m7i.large"


@pytest.fixture(scope="module")
def demo_canary(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """The demo device of a class with a canary ring."""
    from tests.infra.conftest import synthesize

    return synthesize(
        tmp_path_factory.mktemp("demo-canary"),
        demo_device="true",
        canary_thing_group="EdgeAiDevCanary",
    )


def test_with_a_canary_ring_the_demo_device_joins_the_canary_group(
    demo_canary: Synthesized,
) -> None:
    """Until a release is promoted the stack deploys to the canary group only (README, Release
    rings): a demo device in the fleet group would get nothing. It is a device for trying the
    latest change, so it joins the canary group, where the latest deployment goes."""
    template = demo_canary.template_json(STACK)
    script = user_data(template)
    assert "--thing-group-name EdgeAiDevCanary " in script
    assert "--thing-group-name EdgeAiDevCoreDevices" not in script
    _, cleanup = only(template, "Custom::DemoDeviceCleanup")
    assert cleanup["Properties"]["ThingGroupName"] == "EdgeAiDevCanary"
    policy = next(
        p
        for p in resources_of_type(template, "AWS::IAM::Policy").values()
        if "iot:RemoveThingFromThingGroup" in json.dumps(p)
    )
    (statement,) = [
        s
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if s.get("Sid") == "DemoThings"
    ]
    groups = [render(r) for r in statement["Resource"] if "thinggroup/" in render(r)]
    assert len(groups) == 1 and groups[0].endswith(":thinggroup/EdgeAiDevCanary"), groups
    # ...and that group is the one the canary deployment targets.
    pipeline = demo_canary.template_json("dev/Pipeline")
    targets = [
        render(d["Properties"]["TargetArn"])
        for d in resources_of_type(pipeline, "Custom::GreengrassDeployment").values()
    ]
    assert targets and all(t.endswith(":thinggroup/EdgeAiDevCanary") for t in targets), targets


def test_demo_device_class_chooses_the_class_it_joins() -> None:
    from tests.infra.conftest import THREE_CLASSES

    config = config_with(demo_device="true", device_classes=THREE_CLASSES)
    assert (config.demo_device.device_class, config.demo_device.thing_group) == (
        "gateway",
        "EdgeAiDevGateways",
    )
    config = config_with(demo_device="true", device_classes=THREE_CLASSES, demo_device_class="onnx")
    assert (config.demo_device.device_class, config.demo_device.thing_group) == (
        "onnx",
        "EdgeAiDevOnnx",
    )


@pytest.mark.parametrize(
    ("overrides", "key", "fragment"),
    [
        ({"demo_device_class": "nope"}, "demo_device_class", "classes: gateway, jetson, onnx"),
        (
            {"demo_device_class": "jetson"},
            "demo_device_class",
            "device class 'jetson' (EdgeAiDevJetsonsCanary), which needs an x86_64",
        ),
    ],
)
def test_demo_device_class_is_checked(overrides, key, fragment) -> None:
    from tests.infra.conftest import THREE_CLASSES

    with pytest.raises(ConfigError) as error:
        config_with(demo_device="true", device_classes=THREE_CLASSES, **overrides)
    assert error.value.key == key
    assert fragment in str(error.value)
