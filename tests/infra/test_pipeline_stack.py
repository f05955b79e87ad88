"""The training -> compilation -> packaging -> Greengrass chain as CloudFormation sees it."""

from __future__ import annotations

import json
import re

from tests.infra.conftest import THREE_CLASSES
from tests.infra.fast import pipeline_template
from tests.infra.rendering import component_recipes, render, resources_of_type


def only(template: dict, type_: str) -> tuple[str, dict]:
    found = resources_of_type(template, type_)
    assert len(found) == 1, f"expected one {type_}, found {sorted(found)}"
    return next(iter(found.items()))


def test_training_job_properties(dev) -> None:
    template = dev.template_json("dev/Pipeline")
    _, training = only(template, "Custom::TrainingJob")
    props = training["Properties"]
    assert re.fullmatch(r"edge-ai-dev-train-[0-9a-f]{12}", props["JobName"])
    assert props["InstanceType"] == "ml.m5.xlarge"
    assert props["UseSpot"] == "true"  # dev stage: managed spot with checkpoints
    assert "/checkpoints/" in render(props["CheckpointS3Uri"])
    image = render(props["ImageUri"])
    assert image.endswith("/pytorch-training:1.8.1-cpu-py36-ubuntu18.04")
    hyperparameters = json.loads(render(props["Hyperparameters"]))
    assert hyperparameters["arch"] == "vgg16"
    assert hyperparameters["input-shape"] == "1,3,224,224"
    assert hyperparameters["sagemaker_program"] == "train.py"
    assert hyperparameters["sagemaker_submit_directory"].startswith("s3://cdk-")
    metrics = json.loads(props["MetricDefinitions"])
    assert {m["Name"] for m in metrics} >= {"train:loss", "validation:accuracy"}


def test_training_waits_on_a_condition_signalled_by_the_job_state_rule(dev) -> None:
    template = dev.template_json("dev/Pipeline")
    training_id, training = only(template, "Custom::TrainingJob")
    job_name = training["Properties"]["JobName"]
    digest = job_name.rsplit("-", 1)[1]
    handle_id, _ = only(template, "AWS::CloudFormation::WaitConditionHandle")
    wait_id, wait = only(template, "AWS::CloudFormation::WaitCondition")
    assert digest in handle_id and digest in wait_id
    assert wait["Properties"]["Handle"] == {"Ref": handle_id}
    assert training_id in wait["DependsOn"]
    assert int(wait["Properties"]["Timeout"]) <= 43_200
    assert training["Properties"]["WaitHandleUrl"] == {"Ref": handle_id}
    rule_id, rule = only(template, "AWS::Events::Rule")
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["detail-type"] == ["SageMaker Training Job State Change"]
    assert pattern["detail"]["TrainingJobName"] == [job_name]
    assert set(pattern["detail"]["TrainingJobStatus"]) == {"Completed", "Failed", "Stopped"}
    (target,) = rule["Properties"]["Targets"]
    transformer = target["InputTransformer"]
    assert transformer["InputPathsMap"] == {"detail": "$.detail"}
    sent = json.loads(render(transformer["InputTemplate"]).replace("<detail>", "{}"))
    assert sent == {"handleUrl": f"<{handle_id}>", "detail": {}}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
    # The rule must exist before the job can end.
    assert rule_id in training["DependsOn"]


def test_compilation_consumes_the_training_artifact_after_training_completes(dev) -> None:
    template = dev.template_json("dev/Pipeline")
    training_id, _ = only(template, "Custom::TrainingJob")
    wait_id, _ = only(template, "AWS::CloudFormation::WaitCondition")
    _, compilation = only(template, "Custom::CompilationJob")
    props = compilation["Properties"]
    assert props["ModelArtifactUri"] == {"Fn::GetAtt": [training_id, "ModelArtifactUri"]}
    assert wait_id in compilation["DependsOn"]
    assert props["Framework"] == "PYTORCH" and props["FrameworkVersion"] == "1.8"
    assert json.loads(props["DataInputConfig"]) == {"input0": [1, 3, 224, 224]}
    assert props["TargetPlatformOs"] == "LINUX" and props["TargetPlatformArch"] == "X86_64"
    assert "TargetDevice" not in props
    assert int(props["MaxRuntimeSeconds"]) <= 3000
    assert re.fullmatch(r"edge-ai-dev-neo-[0-9a-f]{12}", props["JobName"])


def test_compilation_polling_ends_inside_the_custom_resource_hour(dev) -> None:
    template = dev.template_json("dev/Pipeline")
    machines = resources_of_type(template, "AWS::StepFunctions::StateMachine")
    assert len(machines) == 1
    definition = json.loads(render(next(iter(machines.values()))["Properties"]["DefinitionString"]))
    (retry,) = definition["States"]["framework-isComplete-task"]["Retry"]
    assert retry["BackoffRate"] == 1
    # 900 s stopping condition + 10 min headroom, polled every 30 s: well under an hour.
    assert retry["IntervalSeconds"] * retry["MaxAttempts"] == 1500


def test_named_neo_device_and_brought_model_skip_training(byo_jetson) -> None:
    template = byo_jetson.template_json("dev/Pipeline")
    assert not resources_of_type(template, "Custom::TrainingJob")
    assert not resources_of_type(template, "AWS::CloudFormation::WaitCondition")
    _, compilation = only(template, "Custom::CompilationJob")
    assert compilation["Properties"]["TargetDevice"] == "jetson_nano"
    assert compilation["Properties"]["ModelArtifactUri"] == "s3://my-models/vgg16/model.tar.gz"
    _, package = only(template, "Custom::ModelPackage")
    assert package["Properties"]["TrainingArtifactUri"] == "s3://my-models/vgg16/model.tar.gz"


def test_model_package_metadata_matches_the_configuration(dev) -> None:
    template = dev.template_json("dev/Pipeline")
    compilation_id, compilation = only(template, "Custom::CompilationJob")
    _, package = only(template, "Custom::ModelPackage")
    props = package["Properties"]
    assert props["CompiledArtifactUri"] == {"Fn::GetAtt": [compilation_id, "CompiledArtifactUri"]}
    assert props["KeyPrefix"] == "packages/"
    metadata = json.loads(props["Metadata"])
    assert metadata["input_shape"] == [1, 3, 224, 224]
    assert metadata["input_name"] == "input0"
    assert metadata["resize_shorter"] == 256
    assert metadata["compilation_job"] == compilation["Properties"]["JobName"]


def test_component_versions_are_kept_when_replaced_and_deleted_otherwise(tmp_path) -> None:
    """Every component version, in every kind of device class (bundled DLR, ONNX, a canary
    class), is kept when an update replaces it (UpdateReplacePolicy Retain: a deployment can
    roll back to it, a promoted release pins it), and deleted when the stack operation that
    created it rolls back or the stack is deleted (DeletionPolicy Delete).

    Why: a version is content-addressed (``naming.content_version``) and its InlineRecipe is
    create-only (the AWS::GreengrassV2::ComponentVersion registry schema in cfn-lint's
    data/schemas lists /properties/InlineRecipe under createOnlyProperties), so a version left
    behind by a rolled-back create (the old ``Retain``) makes the retry's
    CreateComponentVersion of the same name@version fail with ConflictException (botocore
    greengrassv2 CreateComponentVersion errors), and so does one left by a deleted stack when
    the stack is created again (``RetainExceptOnCreate``, which retains on stack delete:
    CloudFormation User Guide, "DeletionPolicy attribute").
    """
    template = pipeline_template(tmp_path, device_classes=THREE_CLASSES)
    versions = resources_of_type(template, "AWS::GreengrassV2::ComponentVersion")
    assert len(versions) == 9  # three classes x model, runtime, inference
    for logical, resource in versions.items():
        assert resource.get("DeletionPolicy") == "Delete", logical
        assert resource.get("UpdateReplacePolicy") == "Retain", logical


def test_deployment_pins_every_component_and_is_safe(dev) -> None:
    template = dev.template_json("dev/Pipeline")
    recipes = component_recipes(template)
    _, deployment = only(template, "AWS::GreengrassV2::Deployment")
    props = deployment["Properties"]
    components = props["Components"]
    for name, recipe in recipes.items():
        assert components[name]["ComponentVersion"] == recipe["ComponentVersion"]
    assert re.fullmatch(
        r"\d+\.\d+\.\d+", components["aws.greengrass.LogManager"]["ComponentVersion"]
    )
    for spec in components.values():
        assert re.fullmatch(r"\d+\.\d+\.\d+", spec["ComponentVersion"])
    inference = components["com.example.edgeai.dev.DlrInference"]
    assert inference["ConfigurationUpdate"]["Reset"] == ["/accessControl"]
    merged = json.loads(inference["ConfigurationUpdate"]["Merge"])
    assert merged["Runtime"] == "dlr" and merged["TopK"] == 5
    assert props["DeploymentPolicies"]["FailureHandlingPolicy"] == "ROLLBACK"
    assert props["DeploymentPolicies"]["ComponentUpdatePolicy"]["Action"] == "NOTIFY_COMPONENTS"
    job = props["IotJobConfiguration"]
    assert job["JobExecutionsRolloutConfig"]["MaximumPerMinute"] == 50
    assert job["AbortConfig"]["CriteriaList"][0]["ThresholdPercentage"] == 10
    assert job["TimeoutConfig"]["InProgressTimeoutInMinutes"] == 60
    assert "aws.greengrass.Nucleus" not in components  # not pinned unless configured


def test_prod_rollout_settings_come_from_its_stage(prod) -> None:
    _, deployment = only(prod.template_json("prod/Pipeline"), "AWS::GreengrassV2::Deployment")
    job = deployment["Properties"]["IotJobConfiguration"]
    assert job["JobExecutionsRolloutConfig"]["MaximumPerMinute"] == 10
    assert job["AbortConfig"]["CriteriaList"][0]["ThresholdPercentage"] == 5
    assert job["TimeoutConfig"]["InProgressTimeoutInMinutes"] == 120


def test_component_logs_reach_cloudwatch_with_retention(dev, prod) -> None:
    """The log manager's fixed-name groups get the stage's retention, through a resource that
    creates or adopts them (Custom::GreengrassLogGroup), never AWS::Logs::LogGroup: devices
    that outlive a stack delete recreate the group (aws-greengrass-logmanager
    CloudWatchLogsUploader.createNewLogGroup), and a stack create of an AWS::Logs::LogGroup
    with an existing (create-only) LogGroupName fails with ResourceAlreadyExistsException
    (botocore logs CreateLogGroup)."""
    for synthesized, stage, days in ((dev, "dev", 14), (prod, "prod", 365)):
        template = synthesized.template_json(f"{stage}/Pipeline")
        fixed = [
            logical
            for logical, resource in resources_of_type(template, "AWS::Logs::LogGroup").items()
            if "/aws/greengrass/" in json.dumps(resource["Properties"].get("LogGroupName", ""))
        ]
        assert fixed == [], f"fixed-name Greengrass log groups as AWS::Logs::LogGroup: {fixed}"
        groups = {
            render(r["Properties"]["LogGroupName"]): r
            for r in resources_of_type(template, "Custom::GreengrassLogGroup").values()
        }
        for component in ("DlrInference", "DlrRuntime"):
            region = "<AWS::Region>"
            name = f"/aws/greengrass/UserComponent/{region}/com.example.edgeai.{stage}.{component}"
            assert name in groups, sorted(groups)
            assert int(groups[name]["Properties"]["RetentionInDays"]) == days
            # Nothing for CloudFormation to delete: the handler leaves the group on Delete.
            assert groups[name].get("DeletionPolicy", "Delete") == "Delete"
    _, deployment = only(dev.template_json("dev/Pipeline"), "AWS::GreengrassV2::Deployment")
    log_manager = json.loads(
        deployment["Properties"]["Components"]["aws.greengrass.LogManager"]["ConfigurationUpdate"][
            "Merge"
        ]
    )
    uploaded = log_manager["logsUploaderConfiguration"]["componentLogsConfigurationMap"]
    assert "com.example.edgeai.dev.DlrInference" in uploaded


def test_variant_dlr_option_pins_the_public_component(byo_jetson) -> None:
    template = byo_jetson.template_json("dev/Pipeline")
    recipes = component_recipes(template)
    assert "com.example.edgeai.dev.DlrRuntime" not in recipes
    inference = recipes["com.example.edgeai.dev.DlrInference"]
    assert inference["ComponentDependencies"]["variant.DLR"] == {
        "VersionRequirement": "=1.6.16",
        "DependencyType": "HARD",
    }
    run = inference["Manifests"][0]["Lifecycle"]["Run"]["Script"]
    assert "greengrass_ml_dlr_venv/bin/activate" in run  # jetson_nano is aarch64
    _, deployment = only(template, "AWS::GreengrassV2::Deployment")
    components = deployment["Properties"]["Components"]
    assert components["variant.DLR"]["ComponentVersion"] == "1.6.16"
    assert components["aws.greengrass.Nucleus"]["ComponentVersion"] == "2.12.6"


def test_handlers_may_only_pass_the_job_roles_to_sagemaker(dev) -> None:
    template = dev.template_json("dev/Pipeline")
    pass_role = []
    for resource in resources_of_type(template, "AWS::IAM::Policy").values():
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            actions = (
                statement["Action"]
                if isinstance(statement["Action"], list)
                else [statement["Action"]]
            )
            if "iam:PassRole" in actions:
                pass_role.append(statement)
    assert len(pass_role) == 2  # training handler, compilation handler
    for statement in pass_role:
        assert statement["Condition"] == {
            "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
        }
        assert "Fn::GetAtt" in statement["Resource"]


def test_training_role_reads_only_the_data_channels_it_is_given(tmp_path) -> None:
    from tests.infra.conftest import synthesize

    synthesized = synthesize(
        tmp_path,
        training_data_uri="s3://my-data/digits/train/",
        validation_data_uri="s3://my-data/digits/val/",
    )
    template = synthesized.template_json("dev/Pipeline")
    role_id = next(k for k in template["Resources"] if k.startswith("TrainingExecutionRole"))
    statements = [
        s
        for r in resources_of_type(template, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in r["Properties"]["Roles"]
        for s in r["Properties"]["PolicyDocument"]["Statement"]
    ]
    reads = set()
    for statement in statements:
        if statement["Action"] == "s3:GetObject":
            resources = render(statement["Resource"])  # CDK merges same-action statements
            reads.update(resources if isinstance(resources, list) else [resources])
    assert "arn:<AWS::Partition>:s3:::my-data/digits/train/*" in reads
    assert "arn:<AWS::Partition>:s3:::my-data/digits/val/*" in reads
    listing = [s for s in statements if s["Action"] == "s3:ListBucket"]
    assert {tuple(s["Condition"]["StringLike"]["s3:prefix"]) for s in listing} == {
        ("digits/train/*",),
        ("digits/val/*",),
    }
    _, training = only(template, "Custom::TrainingJob")
    assert training["Properties"]["TrainS3Uri"] == "s3://my-data/digits/train/"


def test_compiler_options_reach_the_compilation_job(tmp_path) -> None:
    from tests.infra.conftest import synthesize

    options = {"gpu-code": "sm_72", "trt-ver": "8.5.2", "cuda-ver": "11.4"}
    synthesized = synthesize(
        tmp_path,
        neo_target_platform="LINUX/ARM64/NVIDIA",
        neo_compiler_options=json.dumps(options),
    )
    template = synthesized.template_json("dev/Pipeline")
    _, compilation = only(template, "Custom::CompilationJob")
    assert json.loads(compilation["Properties"]["CompilerOptions"]) == options
    assert compilation["Properties"]["TargetPlatformAccelerator"] == "NVIDIA"
