"""SageMaker PyTorch training images, resolved at synth time without any AWS call.

Which image traces the model for which target: the model must be trained *and traced* with the
PyTorch version Neo compiles it as (FACTS.md). Edge targets accept 1.7/1.8 only, so for them the
job runs the PyTorch 1.8.1 (or 1.7.1) training image, whose Python is 3.6; cloud ``ml_*``
targets may use the newer images. ``training_src`` stays Python-3.6 compatible for that reason.
"""

from __future__ import annotations

from aws_cdk import Aws, CfnMapping, Fn, Stack
from constructs import Construct

REPOSITORY = "pytorch-training"

# Deep Learning Containers registry account per region (the default serves most regions).
DEFAULT_REGISTRY_ACCOUNT = "763104351884"
REGISTRY_ACCOUNTS = {
    "af-south-1": "626614931356",
    "ap-east-1": "871362719292",
    "ap-south-2": "772153158452",
    "ap-southeast-3": "907027046896",
    "ap-southeast-4": "457447274322",
    "ca-west-1": "204538143572",
    "cn-north-1": "727897471807",
    "cn-northwest-1": "727897471807",
    "eu-central-2": "380420809688",
    "eu-south-1": "692866216735",
    "eu-south-2": "503227376785",
    "il-central-1": "780543022126",
    "me-central-1": "914824155844",
    "me-south-1": "217643126080",
    "us-gov-east-1": "446045086412",
    "us-gov-west-1": "442386744353",
}
COMMON_REGIONS = (
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ca-central-1",
    "eu-central-1",
    "eu-north-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
)

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


def registry_mapping(scope: Construct) -> CfnMapping:
    """One CfnMapping per stack (region -> DLC registry account)."""
    stack = Stack.of(scope)
    existing = stack.node.try_find_child("DlcRegistryAccounts")
    if isinstance(existing, CfnMapping):
        return existing
    mapping = {region: {"account": DEFAULT_REGISTRY_ACCOUNT} for region in COMMON_REGIONS}
    mapping.update({region: {"account": acct} for region, acct in REGISTRY_ACCOUNTS.items()})
    return CfnMapping(stack, "DlcRegistryAccounts", mapping=dict(sorted(mapping.items())))


def training_image(scope: Construct, framework_version: str, instance_type: str) -> tuple[str, str]:
    """(image URI, registry account) for the stack's region, as CloudFormation expressions."""
    account = registry_mapping(scope).find_in_map(Aws.REGION, "account")
    uri = Fn.join(
        "",
        [
            account,
            f".dkr.ecr.{Aws.REGION}.{Aws.URL_SUFFIX}/{REPOSITORY}:",
            image_tag(framework_version, instance_type),
        ],
    )
    return uri, account
