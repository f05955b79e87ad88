"""Parse an Amazon ECR image URI: registry, repository (may hold '/'), and a tag or a digest.

Pure Python (no CDK): ``app_config`` validates ``training_image_uri`` with it, and the training
construct builds the repository ARN its execution role may pull from.

The grammar, and where each part comes from:

* registry ``<account>.dkr.ecr.<region>.amazonaws.com`` (``.amazonaws.com.cn`` in China); the
  account is 12 digits (botocore ecr ``RegistryId`` pattern ``[0-9]{12}``);
* repository: botocore ecr ``RepositoryName``, 2-256 characters matching
  ``[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(\\/[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*)*``: lower case,
  and '/' separates the parts of a nested name;
* then ``:tag`` or ``@digest``: SageMaker "supports both ``registry/repository[:tag]`` and
  ``registry/repository[@digest]`` image path formats" (botocore sagemaker
  ``AlgorithmSpecification.TrainingImage``). A tag follows the Docker reference grammar
  (``[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}``, distribution/reference ``reference.go``); an ECR
  digest is ``sha256:`` and 64 hex digits. This project requires one of the two (an untagged
  URI means ``latest``, which moves under a job that should be reproducible) and refuses both
  at once, a form SageMaker does not list.

The repository ARN is ``arn:<partition>:ecr:<region>:<account>:repository/<name>`` (botocore ecr
``Repository.repositoryArn``), the region being the registry's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

KEY = "training_image_uri"
_REGISTRY_RE = re.compile(
    r"^(?P<account>[0-9]{12})\.dkr\.ecr\.(?P<region>[a-z]{2}(?:-[a-z]+)+-[0-9]+)"
    r"\.(?P<suffix>amazonaws\.com(?:\.cn)?)$"
)
_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_REPOSITORY_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
EXPECTED = (
    "expected empty or an ECR image URI ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPOSITORY:TAG "
    "or .../REPOSITORY@sha256:DIGEST"
)


class ImageUriError(ValueError):
    """``training_image_uri`` is not an ECR image URI; the message says which part is wrong."""


@dataclass(frozen=True)
class EcrImage:
    account: str
    region: str
    repository: str
    tag: Optional[str]
    digest: Optional[str]

    def repository_arn(self, partition: str) -> str:
        return f"arn:{partition}:ecr:{self.region}:{self.account}:repository/{self.repository}"


def parse_ecr_image_uri(uri: str) -> EcrImage:
    """Split ``uri`` into its parts; raise ImageUriError naming what is wrong."""
    registry, slash, path = uri.partition("/")
    registry_match = _REGISTRY_RE.match(registry)
    if not slash or registry_match is None or any(c.isspace() for c in uri):
        raise ImageUriError(EXPECTED)
    name, at, digest = path.partition("@")
    # A ':' after the last '/' starts the tag (a repository name holds no ':').
    last_slash = name.rfind("/")
    colon = name.find(":", last_slash + 1)
    repository, tag = (name[:colon], name[colon + 1 :]) if colon >= 0 else (name, "")
    if not (2 <= len(repository) <= 256 and _REPOSITORY_RE.match(repository)):
        raise ImageUriError(
            f"repository name {repository!r} is not an ECR repository name (lower-case letters, "
            "digits, '.', '_', '-', with '/' between the parts of a nested name)"
        )
    if at and colon >= 0:
        raise ImageUriError("give a tag or a digest, not both")
    if at:
        if not _DIGEST_RE.match(digest):
            raise ImageUriError(f"digest {digest!r} must be sha256: and 64 hex digits")
        return EcrImage(
            registry_match["account"], registry_match["region"], repository, None, digest
        )
    if colon < 0:
        raise ImageUriError("give a tag or a digest (an untagged image means latest, which moves)")
    if not _TAG_RE.match(tag):
        raise ImageUriError(
            f"tag {tag!r} must be 1-128 letters, digits, '_', '.', '-', not starting with . or -"
        )
    return EcrImage(registry_match["account"], registry_match["region"], repository, tag, None)
