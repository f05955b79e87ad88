"""Turn synthesized CloudFormation values back into the strings a service would see.

Intrinsics become readable placeholders (``<ModelPackage.ArtifactUri>``, ``<AWS::Region>``),
so a recipe, which the template holds as an ``Fn::Join``, can be parsed as JSON again.
"""

from __future__ import annotations

import json
import re
from typing import Any

BUCKET_PLACEHOLDER = "artifact-bucket"
#: The component versions' resource type (edge_constructs/greengrass/construct.py).
COMPONENT_VERSION_TYPE = "Custom::GreengrassComponentVersion"


def render(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Fn::Join":
            separator, parts = arg
            return separator.join(str(render(p)) for p in parts)
        if key == "Fn::GetAtt":
            return f"<{arg[0]}.{arg[1]}>"
        if key == "Ref":
            return f"<{arg}>"
        if key == "Fn::GetStackOutput":
            return BUCKET_PLACEHOLDER if "ArtifactBucket" in arg["OutputName"] else "<output>"
        if key == "Fn::ImportValue":
            return BUCKET_PLACEHOLDER if "ArtifactBucket" in str(arg) else "<import>"
        if key == "Fn::FindInMap":
            return "<mapped>"
        if key == "Fn::Sub":
            text = arg if isinstance(arg, str) else arg[0]
            return re.sub(r"\$\{([^}]+)\}", r"<\1>", text)
        if key == "Fn::Select":
            return f"<select{arg[0]}>"
    if isinstance(value, dict):
        return {k: render(v) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v) for v in value]
    return value


def resources_of_type(template: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == type_}


def component_recipes(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """ComponentName -> recipe (parsed) for every ComponentVersion in the template."""
    recipes = {}
    for resource in resources_of_type(template, COMPONENT_VERSION_TYPE).values():
        recipe = json.loads(render(resource["Properties"]["InlineRecipe"]))
        recipes[recipe["ComponentName"]] = recipe
    return recipes


def lower_keys(value: Any) -> Any:
    """The recipe schema's property names are lower-case; values keep their case."""
    if isinstance(value, dict):
        return {k.lower(): lower_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [lower_keys(v) for v in value]
    return value


def strings_in(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings_in(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings_in(v)]
    return []
