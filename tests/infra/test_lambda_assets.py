"""Every handler Lambda's asset carries the shared runtime modules beside its own."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from edge_constructs.lambda_function import stage_code
from tests.infra.conftest import Synthesized

# module.function of every handler PythonFunction (the Provider framework's own are not ours).
HANDLERS = {
    "training_handler.handler",
    "training_signal.handler",
    "compilation_handler.on_event",
    "compilation_handler.is_complete",
    "packaging_handler.handler",
}
SHARED = ("cr_properties.py",)


def handler_asset_dirs(dev: Synthesized) -> dict[str, Path]:
    """Handler name -> the asset folder its code comes from, read from the cloud assembly.

    A function's ``Code.S3Key`` is the object key of a file asset in its stack's assets
    manifest, whose ``source.path`` is the staged folder (relative to the manifest).
    """
    found: dict[str, Path] = {}
    for template_path in sorted(dev.assembly_dir.glob("assembly-*/*.template.json")):
        manifest_path = template_path.with_name(
            template_path.name.replace(".template.json", ".assets.json")
        )
        sources = {
            destination["objectKey"]: asset["source"]
            for asset in json.loads(manifest_path.read_text())["files"].values()
            for destination in asset["destinations"].values()
        }
        resources = json.loads(template_path.read_text())["Resources"]
        for resource in resources.values():
            if resource["Type"] != "AWS::Lambda::Function":
                continue
            handler = resource["Properties"].get("Handler")
            if handler in HANDLERS:
                source = sources[resource["Properties"]["Code"]["S3Key"]]
                assert source["packaging"] == "zip", handler
                found[handler] = (template_path.parent / source["path"]).resolve()
    return found


def test_each_handler_asset_holds_the_shared_modules_beside_its_handler(
    dev: Synthesized,
) -> None:
    assets = handler_asset_dirs(dev)
    assert set(assets) == HANDLERS
    for handler, folder in assets.items():
        module = handler.split(".")[0]
        names = {p.relative_to(folder).as_posix() for p in folder.rglob("*")}
        assert f"{module}.py" in names, handler
        for shared in SHARED:
            assert shared in names, f"{handler}: {shared} missing from {folder}"
        assert not any("__pycache__" in n or n.endswith(".pyc") for n in names), handler


def test_staging_is_content_addressed_and_skips_caches(tmp_path: Path) -> None:
    code, common = tmp_path / "code", tmp_path / "common"
    (code / "__pycache__").mkdir(parents=True)
    common.mkdir()
    (code / "handler.py").write_text("import shared\n")
    (code / "__pycache__" / "handler.cpython-311.pyc").write_bytes(b"\0")
    (code / ".hidden").write_text("x")
    (common / "shared.py").write_text("X = 1\n")

    staged = stage_code(code, common)

    assert sorted(p.name for p in staged.iterdir()) == ["handler.py", "shared.py"]
    assert stage_code(code, common) == staged
    (common / "shared.py").write_text("X = 2\n")
    assert stage_code(code, common) != staged


def test_a_file_in_both_folders_is_refused(tmp_path: Path) -> None:
    code, common = tmp_path / "code", tmp_path / "common"
    for folder in (code, common):
        folder.mkdir()
        (folder / "cr_properties.py").write_text("")
    with pytest.raises(ValueError, match=re.escape("cr_properties.py is in both")):
        stage_code(code, common)
