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
    "log_group_handler.on_event",
    "policy_release_handler.on_event",
}
SHARED = ("cr_properties.py", "cr_names.py", "lambda_entry.py")


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

    staged = stage_code(code, tmp_path / "build", common)

    assert sorted(p.name for p in staged.iterdir()) == ["handler.py", "shared.py"]
    assert stage_code(code, tmp_path / "build", common) == staged
    (common / "shared.py").write_text("X = 2\n")
    assert stage_code(code, tmp_path / "build", common) != staged


def test_a_file_in_both_folders_is_refused(tmp_path: Path) -> None:
    code, common = tmp_path / "code", tmp_path / "common"
    for folder in (code, common):
        folder.mkdir()
        (folder / "cr_properties.py").write_text("")
    with pytest.raises(ValueError, match=re.escape("cr_properties.py is in both")):
        stage_code(code, tmp_path / "build", common)


def test_a_planted_archive_is_replaced_not_reused(tmp_path: Path) -> None:
    """Another user (or a stale run) put a file under the name the build will use: its content
    is checked, and it is replaced by the bytes this synth makes."""
    from edge_constructs.bundles import build_source_zip

    source = tmp_path / "src"
    source.mkdir()
    (source / "main.py").write_text("print('hello')\n")
    build = tmp_path / "build"
    honest = build_source_zip(source, build, "component")
    expected = honest.read_bytes()
    honest.write_bytes(b"planted")
    assert build_source_zip(source, build, "component") == honest
    assert honest.read_bytes() == expected
    honest.unlink()
    honest.symlink_to(tmp_path / "elsewhere")
    build_source_zip(source, build, "component")
    assert not honest.is_symlink() and honest.read_bytes() == expected
    assert not (tmp_path / "elsewhere").exists()


def test_bundles_are_built_inside_the_cloud_assembly(tmp_path: Path) -> None:
    import aws_cdk as cdk

    from edge_constructs.bundles import BUILD_FOLDER, trusted_build_dir

    app = cdk.App(outdir=str(tmp_path / "cdk.out"))
    stage = cdk.Stage(app, "dev")
    build = trusted_build_dir(cdk.Stack(stage, "S"))
    assert build == tmp_path / "cdk.out" / BUILD_FOLDER
    assert build.stat().st_mode & 0o077 == 0  # owner-only
