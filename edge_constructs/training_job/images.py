"""SageMaker PyTorch training images, resolved at synth time without any AWS call.

Which image traces the model for which target: the model must be trained *and traced* with the
PyTorch version Neo compiles it as (SageMaker developer guide, Neo "Supported Frameworks":
https://docs.aws.amazon.com/sagemaker/latest/dg/neo-supported-devices-edge-frameworks.html).
Edge targets accept 1.7/1.8 only, so for them the job runs the PyTorch 1.8.1 (or 1.7.1)
training image, whose Python is 3.6; cloud ``ml_*`` targets may use the newer images.
``training_src`` stays Python-3.6 compatible for that reason.
"""

from __future__ import annotations

from aws_cdk import Aws, CfnMapping, Fn, Stack, Token
from constructs import Construct

from edge_constructs.training_job.sdk_images import REGISTRIES, SOURCE

REPOSITORY = "pytorch-training"

# framework version -> (cpu tag, gpu tag)
TAGS = {
    "1.4": ("1.4.0-cpu-py36-ubuntu16.04", "1.4.0-gpu-py36-cu101-ubuntu16.04"),
    "1.5": ("1.5.1-cpu-py36-ubuntu16.04", "1.5.1-gpu-py36-cu101-ubuntu16.04"),
    "1.6": ("1.6.0-cpu-py36-ubuntu16.04", "1.6.0-gpu-py36-cu110-ubuntu18.04"),
    "1.7": ("1.7.1-cpu-py36-ubuntu18.04", "1.7.1-gpu-py36-cu110-ubuntu18.04"),
    "1.8": ("1.8.1-cpu-py36-ubuntu18.04", "1.8.1-gpu-py36-cu111-ubuntu18.04"),
    "1.12": (
        "1.12.1-cpu-py38-ubuntu20.04-sagemaker",
        "1.12.1-gpu-py38-cu113-ubuntu20.04-sagemaker",
    ),
    "1.13": (
        "1.13.1-cpu-py39-ubuntu20.04-sagemaker",
        "1.13.1-gpu-py39-cu117-ubuntu20.04-sagemaker",
    ),
    "2.0": ("2.0.1-cpu-py310-ubuntu20.04-sagemaker", "2.0.1-gpu-py310-cu118-ubuntu20.04-sagemaker"),
}
GPU_FAMILIES = ("ml.p", "ml.g")


def image_tag(framework_version: str, instance_type: str) -> str:
    cpu, gpu = TAGS[framework_version]
    return gpu if instance_type.startswith(GPU_FAMILIES) else cpu


def registry_accounts(framework_version: str) -> dict[str, str]:
    """Region -> registry account of the PyTorch training image, as the SageMaker Python SDK
    lists it (``sdk_images.py``, generated from the SDK's ``image_uri_config/pytorch.json``
    by ``scripts/generate_training_images.py``)."""
    try:
        return dict(REGISTRIES[framework_version])
    except KeyError:
        raise ValueError(
            f"no SageMaker PyTorch training image table for version {framework_version!r} "
            f"(known: {', '.join(REGISTRIES)})"
        ) from None


def registry_mapping(scope: Construct, framework_version: str) -> CfnMapping:
    """One CfnMapping per stack and framework version (region -> DLC registry account)."""
    stack = Stack.of(scope)
    mapping_id = f"DlcRegistryAccounts{framework_version.replace('.', '')}"
    existing = stack.node.try_find_child(mapping_id)
    if isinstance(existing, CfnMapping):
        return existing
    accounts = registry_accounts(framework_version)
    region = stack.region
    if not Token.is_unresolved(region) and region not in accounts:
        raise ValueError(
            f"region {region} has no SageMaker PyTorch {framework_version} training image "
            f"({SOURCE}); set training_image_uri or deploy to one of: {', '.join(accounts)}"
        )
    mapping = {region: {"account": account} for region, account in accounts.items()}
    return CfnMapping(stack, mapping_id, mapping=mapping)


def training_image(scope: Construct, framework_version: str, instance_type: str) -> tuple[str, str]:
    """(image URI, registry account) for the stack's region, as CloudFormation expressions."""
    account = registry_mapping(scope, framework_version).find_in_map(Aws.REGION, "account")
    uri = Fn.join(
        "",
        [
            account,
            f".dkr.ecr.{Aws.REGION}.{Aws.URL_SUFFIX}/{REPOSITORY}:",
            image_tag(framework_version, instance_type),
        ],
    )
    return uri, account
