"""Names of the custom resources' ``ResourceProperties`` and ``Data`` keys.

One module for both sides: the constructs build their properties with these names and the
handlers parse them with the same ones, so a rename cannot leave one side behind. Standard
library only; shipped into every handler's asset root (see ``PythonFunction``), where it is
imported as the top-level module ``cr_names``, and imported by the constructs as
``edge_constructs.runtime_common.cr_names``.
"""

from __future__ import annotations


class Job:
    """Shared by ``Custom::TrainingJob`` and ``Custom::CompilationJob``."""

    JOB_NAME = "JobName"
    ROLE_ARN = "RoleArn"
    OUTPUT_S3_URI = "OutputS3Uri"
    MAX_RUNTIME_SECONDS = "MaxRuntimeSeconds"
    MODEL_ARTIFACT_URI = "ModelArtifactUri"
    TAGS = "Tags"


class Training(Job):
    """``Custom::TrainingJob``."""

    IMAGE_URI = "ImageUri"
    INSTANCE_TYPE = "InstanceType"
    INSTANCE_COUNT = "InstanceCount"
    VOLUME_SIZE_GB = "VolumeSizeGb"
    USE_SPOT = "UseSpot"
    MAX_WAIT_SECONDS = "MaxWaitSeconds"
    CHECKPOINT_S3_URI = "CheckpointS3Uri"
    TRAIN_S3_URI = "TrainS3Uri"
    VALIDATION_S3_URI = "ValidationS3Uri"
    HYPERPARAMETERS = "Hyperparameters"
    METRIC_DEFINITIONS = "MetricDefinitions"
    RUN_ID = "RunId"
    WAIT_HANDLE_URL = "WaitHandleUrl"


class Compilation(Job):
    """``Custom::CompilationJob`` (``ModelArtifactUri``: the model to compile)."""

    FRAMEWORK = "Framework"
    FRAMEWORK_VERSION = "FrameworkVersion"
    DATA_INPUT_CONFIG = "DataInputConfig"
    COMPILER_OPTIONS = "CompilerOptions"
    TARGET_DEVICE = "TargetDevice"
    TARGET_PLATFORM_OS = "TargetPlatformOs"
    TARGET_PLATFORM_ARCH = "TargetPlatformArch"
    TARGET_PLATFORM_ACCELERATOR = "TargetPlatformAccelerator"
    # Returned in Data.
    COMPILED_ARTIFACT_URI = "CompiledArtifactUri"


class Package:
    """``Custom::ModelPackage``."""

    BUCKET = "Bucket"
    KEY_PREFIX = "KeyPrefix"
    MODEL_NAME = "ModelName"
    COMPILED_ARTIFACT_URI = "CompiledArtifactUri"
    ONNX_ARTIFACT_URI = "OnnxArtifactUri"
    # The ONNX file to package from OnnxArtifactUri's root (default model.onnx): an int8
    # class packages the training job's model.int8.onnx, whose gate record is in metadata.json.
    ONNX_FILE = "OnnxFile"
    TRAINING_ARTIFACT_URI = "TrainingArtifactUri"
    METADATA = "Metadata"
    HANDLER_CODE_DIGEST = "HandlerCodeDigest"
    # Returned in Data.
    ARTIFACT_URI = "ArtifactUri"
    ARCHIVE_NAME = "ArchiveName"
    SHA256 = "Sha256"
    MODEL_ID = "ModelId"
    # int8 packages only: the accuracy gate's numbers (percent, and points for the drop).
    INT8_TOP1 = "Int8Top1"
    FP32_TOP1 = "Fp32Top1"
    INT8_TOP1_DROP = "Int8Top1Drop"
    INT8_TOP1_AGREEMENT = "Int8Top1Agreement"


class Published:
    """``Custom::PublishedArtifact``."""

    SOURCE_BUCKET = "SourceBucket"
    SOURCE_KEY = "SourceKey"
    BUCKET = "Bucket"
    KEY = "Key"


class GreengrassDeployment:
    """``Custom::GreengrassDeployment``: the properties of ``AWS::GreengrassV2::Deployment``
    (same names, same nesting), so the template reads as it did with the native resource."""

    TARGET_ARN = "TargetArn"
    DEPLOYMENT_NAME = "DeploymentName"
    COMPONENTS = "Components"
    DEPLOYMENT_POLICIES = "DeploymentPolicies"
    IOT_JOB_CONFIGURATION = "IotJobConfiguration"
    # Returned in Data (the native resource's attribute is DeploymentId).
    DEPLOYMENT_ID = "DeploymentId"
    IOT_JOB_ID = "IotJobId"


class GreengrassComponentVersion:
    """``Custom::GreengrassComponentVersion``: the property and attributes of
    ``AWS::GreengrassV2::ComponentVersion`` (same names), so every ``Fn::GetAtt`` reads as
    it did with the native resource."""

    TYPE = "Custom::GreengrassComponentVersion"
    INLINE_RECIPE = "InlineRecipe"
    # Returned in Data (the native resource's attributes).
    ARN = "Arn"
    COMPONENT_NAME = "ComponentName"
    COMPONENT_VERSION = "ComponentVersion"
