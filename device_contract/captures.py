"""Where captured inputs live in the artifact bucket: one layout for every side that names it.

``captures/<stage>/<class>/<thing>/<yyyy>/<mm>/<dd>/<id>-<name>`` and its sidecar
``...<id>-<name>.json``. The recipe's ``CapturePrefix`` (:func:`device_prefix`) is the first four
levels with the ``{iot:thingName}`` the component fills in; the token-exchange role may write
under :func:`iam_prefix` only, the thing level being ``${credentials-iot:ThingName}``, the
thing name the nucleus sends when it asks for credentials (aws-greengrass-nucleus
``iot/IotCloudHelper.java``, header ``x-amzn-iot-thingname``; AWS IoT developer guide,
"Authorizing direct calls to AWS services": passing the thing name "allows you to use
thingName ... as policy variables in the role's access policy"). One statement per class:
thing names have no ``/`` (botocore ``iot`` ``ThingName`` pattern ``[a-zA-Z0-9:_-]+``) and
neither do class names (``app_config``), so a device can write only into its own folder.

Standard library only: the component, the stacks and the tools import it.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

from device_contract.topics import THING_NAME_VARIABLE

ROOT = "captures/"
IAM_THING_NAME = "${credentials-iot:ThingName}"
SIDECAR_SUFFIX = ".json"


def stage_prefix(stage: str) -> str:
    """``captures/<stage>/``: everything a stage's devices captured."""
    return f"{ROOT}{stage}/"


def class_prefix(stage: str, device_class: str) -> str:
    return f"{stage_prefix(stage)}{device_class}/"


def device_prefix(stage: str, device_class: str) -> str:
    """The recipe's ``CapturePrefix``: ``captures/<stage>/<class>/{iot:thingName}/``."""
    return f"{class_prefix(stage, device_class)}{THING_NAME_VARIABLE}/"


def iam_prefix(stage: str, device_class: str) -> str:
    """What the token-exchange role may write: ``captures/<stage>/<class>/${thing}/``."""
    return f"{class_prefix(stage, device_class)}{IAM_THING_NAME}/"


@dataclasses.dataclass(frozen=True)
class CaptureKey:
    stage: str
    device_class: str
    thing: str
    date: str  # yyyy/mm/dd
    name: str  # <id>-<name>

    @property
    def sidecar(self) -> bool:
        return self.name.endswith(SIDECAR_SUFFIX)


def parse_key(key: str) -> Optional[CaptureKey]:
    """The parts of a capture's key; None for a key of another layout."""
    if not key.startswith(ROOT):
        return None
    parts = key[len(ROOT) :].split("/")
    if len(parts) != 7 or not all(parts):
        return None
    stage, device_class, thing, year, month, day, name = parts
    return CaptureKey(stage, device_class, thing, f"{year}/{month}/{day}", name)
