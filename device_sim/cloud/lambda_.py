"""AWS Lambda in the simulated account: functions and the code they run.

A function's code is the CDK asset its ``Code.S3Key`` names (``cdk deploy`` uploads the asset
folder as that zip); invoking it imports ``Handler`` (``module.function``) from that folder, as
the Lambda Python runtime does (the code root is on ``sys.path``, so sibling modules import each
other as top-level modules). A CDK ``Provider`` framework function (Node.js) forwards to the
function named by its ``USER_ON_EVENT_FUNCTION_ARN`` environment variable (aws-cdk-lib
``custom-resources/lib/provider-framework/runtime/framework.ts``); ``user_function`` follows it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from device_sim.cloud.env import Env
from device_sim.cloud.errors import AssemblyError, ServiceError


@dataclass
class Function:
    name: str
    arn: str
    handler: str
    code: Path | None  # the asset folder; None: code this simulator does not run (Node.js)
    environment: dict[str, str] = field(default_factory=dict)


class LambdaBackend:
    def __init__(self, env: Env) -> None:
        self.env = env
        self.functions: dict[str, Function] = {}  # by ARN

    def arn(self, name: str) -> str:
        return self.env.arn("lambda", f"function:{name}")

    def create_function(self, function: Function) -> None:
        """botocore lambda ``CreateFunction`` -> ``ResourceConflictException`` ("The resource
        already exists") for a name that exists."""
        if function.arn in self.functions:
            raise ServiceError(
                "CreateFunction",
                "ResourceConflictException",
                f"Function already exist: {function.name}",
                409,
            )
        self.functions[function.arn] = function

    def delete_function(self, arn: str) -> None:
        self.functions.pop(arn, None)

    def get(self, arn: str) -> Function:
        if arn not in self.functions:
            raise ServiceError(
                "Invoke", "ResourceNotFoundException", f"Function not found: {arn}", 404
            )
        return self.functions[arn]

    def user_function(self, service_token: str) -> Function:
        function = self.get(service_token)
        seen = {function.arn}
        while "USER_ON_EVENT_FUNCTION_ARN" in function.environment:
            function = self.get(function.environment["USER_ON_EVENT_FUNCTION_ARN"])
            if function.arn in seen:
                raise AssemblyError(f"USER_ON_EVENT_FUNCTION_ARN loop at {function.arn}")
            seen.add(function.arn)
        return function

    def invoke(self, arn: str, event: dict[str, Any]) -> Any:
        function = self.get(arn)
        module, _, attribute = function.handler.rpartition(".")
        with code_module(function, module) as loaded:
            return getattr(loaded, attribute)(event, None)


@contextlib.contextmanager
def code_module(function: Function, module: str) -> Iterator[ModuleType]:
    if function.code is None or not (function.code / f"{module}.py").is_file():
        raise AssemblyError(f"Lambda function {function.name} ships no {module}.py")
    with import_from(function.code, module) as loaded:
        yield loaded


@contextlib.contextmanager
def import_from(folder: Path, module: str) -> Iterator[ModuleType]:
    """Import ``module`` from ``folder`` as the Lambda runtime would, then forget it (and its
    siblings), so two assets' modules of the same name never mix."""
    siblings = {p.stem for p in folder.glob("*.py")}
    saved = {name: sys.modules.pop(name) for name in list(sys.modules) if name in siblings}
    sys.path.insert(0, str(folder))
    try:
        spec = importlib.util.spec_from_file_location(module, folder / f"{module}.py")
        assert spec is not None and spec.loader is not None
        loaded = importlib.util.module_from_spec(spec)
        sys.modules[module] = loaded
        # A Lambda module may set the root logger's level at import (the Lambda Python
        # runtime's convention, e.g. training_signal): keep the simulator's own verbosity.
        root = logging.getLogger()
        level = root.level
        try:
            spec.loader.exec_module(loaded)
        finally:
            root.setLevel(level)
        yield loaded
    finally:
        sys.path.remove(str(folder))
        for name in siblings:
            sys.modules.pop(name, None)
        sys.modules.update(saved)
