"""The inference component, run from the exact zip the stack ships, as the nucleus would run it.

The Run command comes from the synthesized recipe with its interpolation variables rendered
(work paths, the model's and the runtime's folders, the artifact's unzip folder); the model is a
package built by the packaging handler's own code around a Neo-layout model that real
``libdlr.so`` runs; IPC is a fake that records what gets published.
"""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from stand_ins.neo_model import build_tiny_classifier
from tests.infra.conftest import REPO_ROOT
from tests.infra.rendering import component_recipes, render, resources_of_type

sys.path.insert(0, str(REPO_ROOT / "edge_constructs" / "runtime_common"))
sys.path.insert(0, str(REPO_ROOT / "edge_constructs" / "model_packaging" / "runtime"))
import packaging_logic

NAMESPACE = "com.example.edgeai.dev"
THING = "core-device-7"
SHAPE = (1, 3, 32, 32)


@pytest.fixture(scope="module")
def shipped(dev) -> dict:
    """The inference recipe and the path of its artifact in the cloud assembly."""
    template = dev.template_json("dev/Pipeline")
    recipes = component_recipes(template)
    (published,) = [
        r
        for r in resources_of_type(template, "Custom::PublishedArtifact").values()
        if "DlrInference" in render(r["Properties"]["Key"])
    ]
    source_key = render(published["Properties"]["SourceKey"])
    (zip_path,) = list(dev.assembly_dir.glob(f"asset.{source_key}"))
    return {"recipe": recipes[f"{NAMESPACE}.DlrInference"], "zip": zip_path}


def install_model_package(root: Path) -> tuple[Path, object]:
    """What the model component's artifact unzips to, built by the packaging code."""
    neo = root / "neo-output"
    classifier = build_tiny_classifier(neo, input_shape=SHAPE)
    labels = json.dumps({str(i): f"class-{i}" for i in range(10)}).encode()
    built = packaging_logic.build_package(
        neo, labels, {"input_shape": list(SHAPE)}, "tiny", root / "package.zip"
    )
    name = packaging_logic.archive_name("tiny", built.sha256)
    target = root / "model-artifacts" / name
    with zipfile.ZipFile(built.zip_path) as archive:
        archive.extractall(target)
    return target, classifier


def fake_runtime_venv(work: Path) -> None:
    """The runtime component's venv: a python that is this test environment's interpreter."""
    python = work / "venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    python.chmod(python.stat().st_mode | stat.S_IEXEC)


def test_shipped_zip_runs_under_the_rendered_recipe(shipped, tmp_path) -> None:
    recipe = shipped["recipe"]
    (manifest,) = recipe["Manifests"]
    (artifact,) = manifest["Artifacts"]
    assert artifact["Unarchive"] == "ZIP"

    # The nucleus's layout: unzip the artifact into decompressedPath/<zip name without .zip>.
    decompressed = tmp_path / "artifacts-decompressed"
    zip_name = artifact["Uri"].rsplit("/", 1)[1]
    with zipfile.ZipFile(shipped["zip"]) as archive:
        names = archive.namelist()
        archive.extractall(decompressed / zip_name[: -len(".zip")])
    assert "edge_inference/__main__.py" in names
    assert not [n for n in names if "__pycache__" in n or n.startswith("tests/")]

    model_dir, classifier = install_model_package(tmp_path / "model")
    runtime_work = tmp_path / "work" / f"{NAMESPACE}.DlrRuntime"
    fake_runtime_venv(runtime_work)
    work = tmp_path / "work" / f"{NAMESPACE}.DlrInference"
    (work / "input").mkdir(parents=True)

    variables = {
        "{work:path}": str(work),
        "{artifacts:decompressedPath}": str(decompressed),
        "{iot:thingName}": THING,
        f"{{{NAMESPACE}.DlrRuntime:work:path}}": str(runtime_work),
        f"{{{NAMESPACE}.Model:artifacts:decompressedPath}}": str(model_dir.parent),
    }

    def interpolate(text: str) -> str:
        text = re.sub(r"<ModelPackage[0-9A-F]+\.ArchiveName>", model_dir.name, text)
        for variable, value in variables.items():
            text = text.replace(variable, value)
        assert not re.search(r"\{[^{}\s]+\}", text), f"uninterpolated variable in {text!r}"
        return text

    lifecycle = manifest["Lifecycle"]
    run = interpolate(lifecycle["Run"]["Script"])
    env = {key: interpolate(value) for key, value in lifecycle["Setenv"].items()}
    configuration = recipe["ComponentConfiguration"]["DefaultConfiguration"]
    (tmp_path / "config.json").write_text(json.dumps(configuration))
    record = tmp_path / "published.jsonl"

    inputs = {}
    rng = np.random.default_rng(3)
    for i in range(6):
        tensor = rng.random(SHAPE, dtype=np.float32) * (i + 1)
        np.save(work / "input" / f"frame-{i}.npy", tensor)
        inputs[f"frame-{i}.npy"] = tensor
    (work / "input" / "broken.npy").write_bytes(b"not a numpy file")

    process_env = {
        **os.environ,
        **env,
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent / "fake_ipc"), env["PYTHONPATH"]]),
        "AWS_IOT_THING_NAME": THING,
        # Set by the nucleus for every component (ShellRunner, IPCEventStreamService); the
        # component checks them before connecting, the fake client ignores their values.
        "SVCUID": "fake-svcuid",
        "AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT": str(work / "ipc.socket"),
        "FAKE_IPC_CONFIG": str(tmp_path / "config.json"),
        "FAKE_IPC_RECORD": str(record),
    }
    log = (tmp_path / "component.log").open("w")
    process = subprocess.Popen(
        ["sh", "-c", run], cwd=work, env=process_env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 90
        published: list[dict] = []
        while time.monotonic() < deadline and process.poll() is None:
            if record.exists():
                published = [json.loads(line) for line in record.read_text().splitlines()]
            if len(published) > len(inputs):
                break
            time.sleep(0.2)
        assert process.poll() is None, (tmp_path / "component.log").read_text()
        stopped_at = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=10)
        assert time.monotonic() - stopped_at < 5, "must stop within Greengrass's grace period"
        assert code == 0
    finally:
        if process.poll() is None:
            process.kill()
        log.close()

    assert {entry["topic"] for entry in published} == {f"edge-ai/{THING}/predictions"}
    by_input = {entry["payload"]["input"]: entry["payload"] for entry in published}
    assert set(by_input) == {*inputs, "broken.npy"}
    assert "error" in by_input.pop("broken.npy")  # failures are reported too, with the reason
    assert [p.name for p in (work / "failed").iterdir() if p.suffix == ".npy"] == ["broken.npy"]
    for name, tensor in inputs.items():
        expected = classifier.predict(tensor)[0]
        top = by_input[name]["top"]
        assert len(top) == configuration["TopK"]
        assert top[0]["index"] == int(np.argmax(expected))
        assert top[0]["label"] == f"class-{top[0]['index']}"
        assert top[0]["score"] == pytest.approx(float(expected.max()), abs=1e-5)
    assert sorted(p.name for p in (work / "processed").iterdir() if p.suffix == ".npy") == sorted(
        inputs
    )
    assert not list((work / "input").iterdir())
