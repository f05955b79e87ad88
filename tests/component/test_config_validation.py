"""Configuration under hostile input (issue 9, defects 2 and 8): every bad value is refused
with one line naming the key (IPC) or the flag (command line); nothing runs on defaults."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Dict, List

import pytest
from awsiot.greengrasscoreipc import model
from edge_inference.cli import UsageError, build_parser, build_service

from tests.component.harness import Folders, TinyPackage, run_cli
from tests.component.test_ipc import FakeIpcClient, recipe_defaults


@pytest.fixture(autouse=True)
def thing_name(monkeypatch: Any) -> None:
    monkeypatch.setenv("AWS_IOT_THING_NAME", "core-device-7")


def ipc_args(folders: Folders, package: TinyPackage) -> Any:
    return build_parser().parse_args(
        ["--ipc", "--model-dir", str(package.model_dir), "--state-dir", str(folders.state)]
    )


def test_an_invalid_start_up_configuration_stops_the_service_instead_of_using_defaults(
    folders: Folders, tiny_package: TinyPackage
):
    config = dict(recipe_defaults(tiny_package), InputDir="elsewhere", TopK="many")
    client = FakeIpcClient(config)

    with pytest.raises(UsageError, match="TopK"):
        build_service(ipc_args(folders, tiny_package), threading.Event(), ipc_client=client,
                      cwd=folders.root)  # fmt: skip


def bad_configurations(root: Path) -> List[Dict[str, Any]]:
    state = root / "state"
    return [
        {"ProcessedDir": str(state / "processed")},
        {"FailedDir": str(state / "outbox" / "failed")},
        {"InputDir": str(state / "inbox")},
        {"ProcessedDir": str(root / "input" / "done")},
        {"InputDir": "/etc/hostname/input"},
        {"FailedDir": "fail\x00ed"},
        {"ProcessedDir": "p" * 300},
        {"PollIntervalSeconds": 10**400},
        {"SettleSeconds": -(10**400)},
        {"TopK": 10**400},
        {"MaxImagePixels": [1]},
        {"Runtime": None, "PublishTopic": 7},
    ]


@pytest.mark.parametrize("index", range(12))
def test_every_bad_deployment_value_gets_a_rejection_report_naming_its_key(
    folders: Folders, tiny_package: TinyPackage, index: int
):
    client = FakeIpcClient(recipe_defaults(tiny_package))
    build_service(ipc_args(folders, tiny_package), threading.Event(), ipc_client=client,
                  cwd=folders.root)  # fmt: skip
    change = bad_configurations(folders.root)[index]
    bad = dict(recipe_defaults(tiny_package), **change)

    report = client.validate(bad)

    assert report.status == model.ConfigurationValidityStatus.REJECTED
    assert "\n" not in report.message
    key = next(k for k, v in change.items() if v is not None)
    assert key in report.message, report.message


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["--top-k", "0"], "--top-k"),
        (["--poll-interval", "1e400"], "--poll-interval"),
        (["--max-image-pixels", "9" * 30], "--max-image-pixels"),
        (["--input-dir", "/etc/hostname/in"], "--input-dir"),
        (["--state-dir", "input/state"], "--state-dir"),
        (["--processed-dir", "state/processed"], "--processed-dir"),
        (["--failed-dir", "x\x00y"], "--failed-dir"),
        (["--input-dir", "i" * 5000], "--input-dir"),
    ],
)
def test_bad_flags_are_named_as_typed(
    folders: Folders, tiny_package: TinyPackage, argv: List[str], flag: str
):
    args = build_parser().parse_args(["--model-dir", str(tiny_package.model_dir), *argv])
    with pytest.raises(UsageError) as caught:
        build_service(args, threading.Event(), cwd=folders.root)
    message = str(caught.value)
    assert flag in message and "\n" not in message, message


def test_an_impossible_folder_exits_2_with_one_line(folders: Folders, tiny_package: TinyPackage):
    result = run_cli(
        ["--model-dir", str(tiny_package.model_dir), "--once", "--failed-dir", "/etc/hostname/f"],
        cwd=folders.root,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert "--failed-dir" in line
