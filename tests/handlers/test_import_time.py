"""No handler module creates an AWS client (or session) when it is imported."""

from __future__ import annotations

import importlib
import sys
from typing import Any

import boto3
import boto3.session
import pytest

MODULES = [
    "wait_condition_signal",
    "training_logic",
    "training_handler",
    "training_signal",
    "compilation_logic",
    "compilation_handler",
    "packaging_logic",
    "packaging_handler",
    "cleanup_logic",
    "cleanup_handler",
    "deployment_logic",
    "deployment_handler",
]


@pytest.mark.parametrize("module", MODULES)
def test_import_creates_no_client(module: str, monkeypatch: pytest.MonkeyPatch) -> None:
    created: list[str] = []

    def refuse(*args: Any, **kwargs: Any) -> None:
        created.append(f"{module}: {args} {kwargs}")
        raise AssertionError(f"{module} created an AWS client or session at import time")

    monkeypatch.setattr(boto3, "client", refuse)
    monkeypatch.setattr(boto3, "resource", refuse)
    monkeypatch.setattr(boto3, "Session", refuse)
    monkeypatch.setattr(boto3.session.Session, "client", refuse)
    monkeypatch.setattr(boto3.session.Session, "resource", refuse)
    for name in MODULES:
        monkeypatch.delitem(sys.modules, name, raising=False)

    imported = importlib.import_module(module)

    assert created == []
    assert (
        hasattr(imported, "handler")
        or hasattr(imported, "on_event")
        or module.endswith(("_logic", "_signal"))
    )


@pytest.mark.parametrize(
    ("module", "function"),
    [
        ("training_handler", "handler"),
        ("training_signal", "handler"),
        ("compilation_handler", "on_event"),
        ("compilation_handler", "is_complete"),
        ("packaging_handler", "handler"),
        ("cleanup_handler", "on_event"),
        ("deployment_handler", "handler"),
    ],
)
def test_lambda_entry_points_exist(module: str, function: str) -> None:
    """The constructs point Lambda at these `module.function` names."""
    assert callable(getattr(importlib.import_module(module), function))
