"""Resource registry schemas as cfn-lint ships them (``cfnlint/data/schemas/providers/
us_east_1/aws-*.json``): which properties are create-only (a change replaces the resource) and
which attributes ``Fn::GetAtt`` may read."""

from __future__ import annotations

from functools import cache
from typing import Any


@cache
def _schema(rtype: str, region: str) -> dict[str, Any] | None:
    try:
        from cfnlint.schema import PROVIDER_SCHEMA_MANAGER, ResourceNotFoundError
    except ImportError:  # cfn-lint is a development dependency
        return None
    try:
        schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(region, rtype)
    except ResourceNotFoundError:
        return None
    return {"schema": schema.schema, "get_atts": list(schema.get_atts)}


def create_only(rtype: str, region: str = "us-east-1") -> frozenset[str]:
    """Top-level property names under ``createOnlyProperties``."""
    found = _schema(rtype, "us-east-1")
    if found is None:
        return frozenset()
    paths = found["schema"].get("createOnlyProperties", [])
    return frozenset(str(p).removeprefix("/properties/").split("/")[0] for p in paths)


def attributes(rtype: str, region: str) -> list[str]:
    found = _schema(rtype, "us-east-1")
    return [] if found is None else list(found["get_atts"])
