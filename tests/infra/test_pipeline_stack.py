"""The training -> compilation -> packaging -> Greengrass chain as CloudFormation sees it."""

from __future__ import annotations

import fnmatch
import json
import re
from typing import Any

from tests.infra.conftest import THREE_CLASSES
from tests.infra.fast import pipeline_template
from tests.infra.rendering import (
    COMPONENT_VERSION_TYPE,
    component_recipes,
    render,
    resources_of_type,
)


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


def test_component_versions_are_created_or_adopted_by_the_stacks_handler(tmp_path) -> None:
    """Every component version, in every kind of device class (bundled DLR, ONNX, a canary
    class), is a ``Custom::GreengrassComponentVersion`` served by the stack's one Greengrass
    handler, which creates the version or adopts the existing one with the same recipe, and
    whose Delete leaves it (edge_constructs/greengrass/runtime/component_logic.py).

    Why: a version is content-addressed (``naming.content_version``) and the native resource's
    InlineRecipe is create-only (the AWS::GreengrassV2::ComponentVersion registry schema in
    cfn-lint's data/schemas), so a version that exists (kept for rollback, left by a rolled-back
    update or a deleted stack) makes CreateComponentVersion of the same name@version fail with
    ConflictException (botocore greengrassv2 CreateComponentVersion errors): a revert, a retry
    after a rollback, a re-created stack. The policies stay ``Delete`` so CloudFormation sends
    the Delete the handler answers by keeping the version.

    Each version's handler grant names its own component and its versions only, and the
    artifact prefixes CreateComponentVersion reads (registry schema handlers.create).
    """
    template = pipeline_template(tmp_path, device_classes=THREE_CLASSES)
    assert not resources_of_type(template, "AWS::GreengrassV2::ComponentVersion")
    versions = resources_of_type(template, COMPONENT_VERSION_TYPE)
    assert len(versions) == 9  # three classes x model, runtime, inference
    tokens = set()
    checked = 0
    for logical, resource in versions.items():
        assert resource.get("DeletionPolicy", "Delete") == "Delete", logical
        assert resource.get("UpdateReplacePolicy", "Delete") == "Delete", logical
        tokens.add(json.dumps(resource["Properties"]["ServiceToken"]))
        recipe = json.loads(render(resource["Properties"]["InlineRecipe"]))
        name = recipe["ComponentName"]
        grants = [
            template["Resources"][d]
            for d in resource.get("DependsOn", [])
            if template["Resources"][d]["Type"] == "AWS::IAM::Policy" and "HandlerGrant" in d
        ]
        (grant,) = grants
        statements = grant["Properties"]["PolicyDocument"]["Statement"]
        (greengrass,) = [
            s for s in statements if "greengrass:CreateComponentVersion" in s["Action"]
        ]
        assert sorted(greengrass["Action"]) == [
            "greengrass:CreateComponentVersion",
            "greengrass:DescribeComponent",
            "greengrass:GetComponent",
            "greengrass:TagResource",  # each version carries its recipe's digest
        ]
        arns = [render(r) for r in greengrass["Resource"]]
        assert all(f":components:{name}" in arn for arn in arns), (name, arns)
        assert any(arn.endswith(f":components:{name}:versions:*") for arn in arns), arns
        (s3,) = [s for s in statements if s["Action"] == "s3:GetObject"]
        granted = sorted(render(r) for r in s3["Resource"])
        assert granted == [
            "arn:<AWS::Partition>:s3:::artifact-bucket/components/*",
            "arn:<AWS::Partition>:s3:::artifact-bucket/packages/*",
        ]
        uris = [a["Uri"] for m in recipe["Manifests"] for a in m.get("Artifacts", []) if "Uri" in a]
        for uri in uris:
            if uri.startswith("s3://"):  # not a GetAtt placeholder: the key is known
                arn = "arn:<AWS::Partition>:s3:::" + uri[len("s3://") :]
                assert any(fnmatch.fnmatchcase(arn, g) for g in granted), (uri, granted)
                checked += 1
    assert len(tokens) == 1  # one handler for the stack
    assert checked >= 3, checked  # each class's inference artifact at least


def test_deployment_pins_every_component_and_is_safe(dev) -> None:
    template = dev.template_json("dev/Pipeline")
    recipes = component_recipes(template)
    _, deployment = only(template, "Custom::GreengrassDeployment")
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
    # accessControl is the recipe's; the class keys go back to the defaults unless merged
    assert inference["ConfigurationUpdate"]["Reset"] == [
        "/accessControl",
        "/BatchSize",
        "/InferenceThreads",
    ]
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
    _, deployment = only(prod.template_json("prod/Pipeline"), "Custom::GreengrassDeployment")
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
    _, deployment = only(dev.template_json("dev/Pipeline"), "Custom::GreengrassDeployment")
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
    _, deployment = only(template, "Custom::GreengrassDeployment")
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


def test_the_deployment_handler_may_do_what_its_calls_need_and_no_more(dev) -> None:
    """The actions are those of AWS::GreengrassV2::Deployment's own create, delete and list
    handlers (its registry schema, as cfn-lint ships it; the Service Authorization Reference
    lists the same iot:* actions as dependent actions of greengrass:CreateDeployment and
    CancelDeployment), all of which the handler calls (it tags its deployments and reads the
    tags back); the target group's own actions are on the stage's thing group only.

    The same handler serves Custom::GreengrassComponentVersion: the create handler's
    permissions of AWS::GreengrassV2::ComponentVersion's registry schema, less what it never
    calls (lambda:GetFunction: no Lambda recipes; the tag actions: no tags), plus
    greengrass:GetComponent, which reads an existing version's recipe before adopting it. No
    DeleteComponent: Delete leaves the version."""
    from tests.infra.test_release import registry_schema

    handlers = registry_schema("AWS::GreengrassV2::Deployment")["handlers"]
    needed = {a for kind in ("create", "delete", "list") for a in handlers[kind]["permissions"]}
    # GetDeployment reads back the ownership tag CreateDeployment sets (TagResource).
    versions = registry_schema("AWS::GreengrassV2::ComponentVersion")["handlers"]
    needed |= set(versions["create"]["permissions"]) - {
        "lambda:GetFunction",
        "greengrass:TagResource",
        "greengrass:ListTagsForResource",
    }
    needed |= {"greengrass:GetComponent"}
    # A Delete in a rollback's cleanup reads the stack's status (deployment_logic.delete).
    needed |= {"cloudformation:DescribeStacks"}
    template = dev.template_json("dev/Pipeline")
    (role,) = [
        logical
        for logical in resources_of_type(template, "AWS::IAM::Role")
        if logical.startswith("GreengrassDeploymentHandlerRole")
    ]
    statements = [
        statement
        for resource in resources_of_type(template, "AWS::IAM::Policy").values()
        if {"Ref": role} in resource["Properties"]["Roles"]
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
    ]
    granted: dict[str, list[str]] = {}
    for statement in statements:
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        resources = statement["Resource"]
        for action in actions:
            granted.setdefault(action, []).extend(
                render(r) for r in (resources if isinstance(resources, list) else [resources])
            )
    assert set(granted) - {"logs:CreateLogStream", "logs:PutLogEvents"} == needed
    assert granted["iot:DescribeThingGroup"] == [
        "arn:<AWS::Partition>:iot:<AWS::Region>:<AWS::AccountId>:thinggroup/EdgeAiDevCoreDevices"
    ]
    assert "*" not in granted["greengrass:CancelDeployment"] + granted["iot:CancelJob"]
    assert "greengrass:DeleteComponent" not in granted
    for action in ("greengrass:CreateComponentVersion", "greengrass:GetComponent"):
        assert all(":greengrass:" in arn and ":components:" in arn for arn in granted[action])


def _role_statements(template: dict, role_prefix: str) -> list[dict]:
    role_id = next(k for k in template["Resources"] if k.startswith(role_prefix))
    return [
        s
        for r in resources_of_type(template, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in r["Properties"]["Roles"]
        for s in r["Properties"]["PolicyDocument"]["Statement"]
    ]


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def test_neo_role_may_write_its_job_logs_and_metrics_and_nothing_wider(tmp_path) -> None:
    """Issue 17 part 2, item 4: CreateCompilationJob's RoleArn "enables SageMaker ... to: Read
    input data from an S3 bucket, Write model artifacts to an S3 bucket, Write logs to Amazon
    CloudWatch Logs, Publish metrics to Amazon CloudWatch" (botocore sagemaker
    CreateCompilationJobRequest.RoleArn). With S3 alone a failed compile leaves no log to read.
    Neo writes to log group /aws/sagemaker/CompilationJobs, stream [compilation-job-name]
    (SageMaker developer guide, "Log groups and streams that Amazon SageMaker AI sends to
    Amazon CloudWatch Logs"); the group actions take the group ARN, with ":*" for all but
    CreateLogGroup (CloudWatch Logs User Guide, "Overview of managing access permissions to
    your CloudWatch Logs resources")."""
    import aws_cdk as cdk
    from aws_cdk import aws_logs as logs
    from aws_cdk import aws_s3 as s3

    from edge_constructs.compilation_job.construct import CompilationService

    stack = cdk.Stack(cdk.App(outdir=str(tmp_path)), "Bare")
    CompilationService(
        stack,
        "Compilation",
        name_prefix="edge-ai-dev",
        bucket=s3.Bucket.from_bucket_name(stack, "B", "artifact-bucket"),
        max_runtime_seconds=900,
        log_retention=logs.RetentionDays.ONE_WEEK,
    )
    template = cdk.assertions.Template.from_stack(stack).to_json()
    statements = _role_statements(template, "CompilationExecutionRole")

    def granted(action: str) -> list[dict]:
        return [s for s in statements if action in _as_list(s["Action"])]

    group = "arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:"
    (create_group,) = granted("logs:CreateLogGroup")
    assert _as_list(render(create_group["Resource"])) == [f"{group}/aws/sagemaker/CompilationJobs"]
    for action in ("logs:CreateLogStream", "logs:DescribeLogStreams"):
        (statement,) = granted(action)
        assert _as_list(render(statement["Resource"])) == [
            f"{group}/aws/sagemaker/CompilationJobs:*"
        ]
    (put,) = granted("logs:PutLogEvents")
    # The streams are named after the jobs: only this stack's jobs' streams.
    assert _as_list(render(put["Resource"])) == [
        f"{group}/aws/sagemaker/CompilationJobs:log-stream:edge-ai-dev-neo-*"
    ]
    (metrics,) = granted("cloudwatch:PutMetricData")
    assert metrics["Resource"] == "*"  # PutMetricData supports no resource ARN
    assert metrics["Condition"] == {"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}}
    assert all(s["Resource"] != "*" for s in statements if s is not metrics)


def _bare_training_template(tmp_path) -> dict:
    import aws_cdk as cdk
    from aws_cdk import aws_logs as logs
    from aws_cdk import aws_s3 as s3

    from edge_constructs.training_job.construct import TrainingJob
    from tests.infra.conftest import REPO_ROOT
    from tests.infra.test_constructs import TRAINING

    stack = cdk.Stack(cdk.App(outdir=str(tmp_path)), "Bare")
    TrainingJob(
        stack,
        "Training",
        name_prefix="edge-ai-dev",
        bucket=s3.Bucket.from_bucket_name(stack, "B", "artifact-bucket"),
        training=TRAINING,
        architecture="vgg16",
        input_shape=(1, 3, 224, 224),
        framework_version="1.8",
        source_dir=REPO_ROOT / "training_src",
        log_retention=logs.RetentionDays.ONE_WEEK,
    )
    return cdk.assertions.Template.from_stack(stack).to_json()


def test_the_end_signal_goes_through_a_queue_retried_until_a_dead_letter_alarm(tmp_path) -> None:
    """Issue 17 part 2, item 7. Invoked asynchronously, Lambda retries a failed invocation twice
    (Lambda Developer Guide, "Error handling for asynchronous invocation"); EventBridge's retry
    policy covers delivery only ("How EventBridge retries delivering events"). So: rule -> SQS
    queue -> event source mapping with partial batch responses; a failed record is received
    again after the visibility timeout (at least six times the function timeout: Lambda
    Developer Guide, "Creating and configuring an Amazon SQS event source mapping") until
    maxReceiveCount moves it to the dead-letter queue, whose alarm a user sees."""
    template = _bare_training_template(tmp_path)
    queues = resources_of_type(template, "AWS::SQS::Queue")
    (dlq_id,) = [k for k, q in queues.items() if "RedrivePolicy" not in q["Properties"]]
    (queue_id,) = [k for k, q in queues.items() if "RedrivePolicy" in q["Properties"]]
    queue, dlq = queues[queue_id]["Properties"], queues[dlq_id]["Properties"]

    rule_id, rule = only(template, "AWS::Events::Rule")
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    # Only this rule may send to the queues, and only over TLS.
    for policy in resources_of_type(template, "AWS::SQS::QueuePolicy").values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        sends = [s for s in statements if s["Effect"] == "Allow"]
        assert sends and all(
            s["Principal"] == {"Service": "events.amazonaws.com"}
            and s["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [rule_id, "Arn"]}}}
            for s in sends
        )
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements
        )
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [dlq_id, "Arn"]}}
    assert not resources_of_type(template, "AWS::Lambda::Permission")  # no direct invoke

    functions = resources_of_type(template, "AWS::Lambda::Function")
    (signaller_id,) = [
        k for k, f in functions.items() if f["Properties"]["Handler"] == "training_signal.handler"
    ]
    signaller_timeout = functions[signaller_id]["Properties"]["Timeout"]
    _, mapping = only(template, "AWS::Lambda::EventSourceMapping")
    assert mapping["Properties"]["EventSourceArn"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    assert mapping["Properties"]["FunctionName"] == {"Ref": signaller_id}
    assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]

    assert queue["VisibilityTimeout"] >= 6 * signaller_timeout
    redrive = queue["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": [dlq_id, "Arn"]}
    assert redrive["maxReceiveCount"] >= 5  # Lambda's recommended minimum
    retry_window = queue["VisibilityTimeout"] * redrive["maxReceiveCount"]
    assert retry_window >= 3600  # an hour of retries, not three attempts
    assert queue["MessageRetentionPeriod"] > retry_window  # retried until the DLQ, not expired
    assert dlq["MessageRetentionPeriod"] == 14 * 24 * 3600  # SQS's maximum: time to look
    for properties in (queue, dlq):  # the messages carry the presigned handle URL
        assert properties["SqsManagedSseEnabled"] is True

    _, alarm = only(template, "AWS::CloudWatch::Alarm")
    alarm_props = alarm["Properties"]
    assert alarm_props["Namespace"] == "AWS/SQS"
    assert alarm_props["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm_props["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq_id, "QueueName"]}}
    ]
    assert alarm_props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm_props["Threshold"] == 1


def test_each_class_publishes_its_drift_baseline_after_its_package(dev: Any) -> None:
    """Custom::DriftBaseline per class (in the class's own scope), reading the training job's
    output.tar.gz and naming the class's package model id; the handler may read training/ and
    write fleet/baselines/ only (device_contract.drift)."""
    from device_contract import drift

    template = dev.template_json("dev/Pipeline")
    resources = template["Resources"]
    baselines = {k: r for k, r in resources.items() if r["Type"] == "Custom::DriftBaseline"}
    assert len(baselines) == 1
    # (the default class's scope is the construct id "Default", which CDK leaves out of
    # logical ids; other classes' start with Class<name>: test_device_classes)
    ((_, resource),) = baselines.items()
    props = resource["Properties"]
    (model_id,) = props["ModelIds"]
    package = model_id["Fn::GetAtt"][0]
    assert resources[package]["Type"] == "Custom::ModelPackage"
    assert package in resource["DependsOn"]
    source = json.dumps(props["SourceUri"])
    assert "/output/output.tar.gz" in source and "training" in source
    outputs = [k for k in template["Outputs"] if "DriftBaselineStatus" in k]
    assert len(outputs) == 1
    role = next(
        k
        for k, r in resources.items()
        if r["Type"] == "AWS::Lambda::Function"
        and "DriftBaseline" in json.dumps(r["Properties"].get("Description", ""))
    )
    role_ref = resources[role]["Properties"]["Role"]["Fn::GetAtt"][0]
    statements = [
        s
        for r in resources.values()
        if r["Type"] == "AWS::IAM::Policy" and {"Ref": role_ref} in r["Properties"]["Roles"]
        for s in r["Properties"]["PolicyDocument"]["Statement"]
    ]
    # Anything but a read (Put, Delete, Abort, ...) is a write: only on fleet/baselines/.
    writes = [
        s
        for s in statements
        if any(
            a.startswith("s3:") and not a.startswith(("s3:Get", "s3:List"))
            for a in _listed(s["Action"])
        )
    ]
    assert writes
    for statement in writes:
        for resource_arn in _listed(statement["Resource"]):
            assert json.dumps(resource_arn).endswith(f'/{drift.PREFIX}*"]]}}'), resource_arn
    # It reads the training output only: no listing of the bucket (the second hostile review:
    # grant_read gave s3:List* and s3:GetBucket* on the whole bucket).
    s3_actions = {a for s in statements for a in _listed(s["Action"]) if a.startswith("s3:")}
    assert s3_actions == {"s3:GetObject", "s3:PutObject"}, s3_actions


def test_a_brought_model_has_no_drift_baseline(byo_jetson: Any) -> None:
    template = byo_jetson.template_json("dev/Pipeline")
    assert not [r for r in template["Resources"].values() if r["Type"] == "Custom::DriftBaseline"]


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
