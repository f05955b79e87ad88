"""The Greengrass component names a device class deploys.

``<namespace>.<stage>.<part>`` for the default class (the single-target names), else
``<namespace>.<stage>.<class>.<part>``: a thing in two classes' groups never gets two versions of
one component.
"""

from __future__ import annotations

from typing import Optional

DEFAULT_CLASS = "default"
MODEL = "Model"
# botocore greengrassv2 service-2.json ComponentNameString: "max": 128.
COMPONENT_NAME_MAX = 128


def runtime_part(dlr: bool) -> str:
    return "DlrRuntime" if dlr else "OnnxRuntime"


def inference_part(dlr: bool) -> str:
    return "DlrInference" if dlr else "OnnxInference"


def component_prefix(namespace: str, stage: str, device_class: Optional[str]) -> str:
    """``<namespace>.<stage>``, plus ``.<class>`` unless ``device_class`` is the default one
    (``None`` or ``"default"``)."""
    base = f"{namespace}.{stage}"
    return base if device_class in (None, DEFAULT_CLASS) else f"{base}.{device_class}"


def component_name(namespace: str, stage: str, device_class: Optional[str], part: str) -> str:
    """The name of ``part`` (:data:`MODEL`, :func:`runtime_part`, :func:`inference_part`)."""
    return f"{component_prefix(namespace, stage, device_class)}.{part}"
