"""The hand-built Neo model really runs under dlr==1.6.0's libdlr.so, and phone-home stays off.

DLR's import has a side effect (phone-home) that `dlr_phone_home.disable_phone_home()` switches
off, so `dlr` is imported only inside fixtures, after that call.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap
from types import ModuleType
from typing import Any, Dict, List, Tuple

import numpy as np
import pytest

from stand_ins.neo_model import (
    INPUT_NAME,
    TinyClassifier,
    adaptive_avg_pool_4x4,
    build_tiny_classifier,
)

REPO = pathlib.Path(__file__).resolve().parents[2]
PHONE_HOME_SRC = REPO / "component_src" / "edge_inference" / "dlr_phone_home.py"
SHAPES = [(1, 3, 32, 32), (1, 3, 224, 224), (1, 3, 37, 29)]  # last: H, W not multiples of 4


def _load_phone_home() -> ModuleType:
    """Load the component's module from its file, independent of how the component is packaged."""
    spec = importlib.util.spec_from_file_location("dlr_phone_home_under_test", PHONE_HOME_SRC)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


phone_home = _load_phone_home()


@pytest.fixture(scope="module")
def dlr() -> Any:
    assert phone_home.disable_phone_home() is not None
    import dlr as dlr_module

    return dlr_module


@pytest.fixture(scope="module", params=SHAPES, ids=lambda s: "x".join(map(str, s[2:])))
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    out = tmp_path_factory.mktemp("neo") / "model"
    return build_tiny_classifier(out, input_shape=request.param, seed=7)


def test_folder_holds_neo_output_files_only(built: TinyClassifier) -> None:
    names = sorted(p.name for p in built.model_dir.iterdir())
    assert names == ["compiled.meta", "compiled.params", "compiled.so", "compiled_model.json"]


def test_dlr_output_matches_numpy_reference(dlr: Any, built: TinyClassifier) -> None:
    model = dlr.DLRModel(str(built.model_dir), "cpu", 0)
    rng = np.random.default_rng(123)
    top_classes = set()
    for _ in range(6):
        x = rng.random(built.input_shape, dtype=np.float32)
        (out,) = model.run({INPUT_NAME: x})
        expected = built.predict(x)
        assert out.shape == (1, built.num_classes)
        assert out.dtype == np.float32
        np.testing.assert_allclose(out, expected, rtol=0, atol=1e-5)
        np.testing.assert_allclose(out.sum(), 1.0, atol=1e-5)
        top_classes.add(int(out.argmax()))
    # The weights separate inputs: random images do not all land in one class.
    assert len(top_classes) >= 3


def test_dlr_reports_neo_input_and_output_names(dlr: Any, built: TinyClassifier) -> None:
    model = dlr.DLRModel(str(built.model_dir), "cpu", 0)
    assert model.get_input_names() == ["input0"]
    assert model.get_input_dtypes() == ["float32"]
    assert model.has_metadata()
    assert model.get_output_names() == ["output0"]


def test_params_are_bound_from_compiled_params(dlr: Any, tmp_path: pathlib.Path) -> None:
    """Same graph and operators, other seed: only compiled.params differs, and so do outputs."""
    a = build_tiny_classifier(tmp_path / "a", seed=1)
    b = build_tiny_classifier(tmp_path / "b", seed=2)
    assert (a.model_dir / "compiled_model.json").read_bytes() == (
        b.model_dir / "compiled_model.json"
    ).read_bytes()
    x = np.random.default_rng(0).random(a.input_shape, dtype=np.float32)
    out_a = dlr.DLRModel(str(a.model_dir), "cpu", 0).run({INPUT_NAME: x})[0]
    out_b = dlr.DLRModel(str(b.model_dir), "cpu", 0).run({INPUT_NAME: x})[0]
    np.testing.assert_allclose(out_b, b.predict(x), atol=1e-5)
    assert np.abs(out_a - out_b).max() > 1e-3


def test_stray_json_in_model_folder_breaks_dlr(
    dlr: Any, tmp_path: pathlib.Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Keep labels.json outside the model folder: DLR 1.6 rejects a second *.json there (this
    test shows it against the real libdlr; docs/CONTRACTS.md puts labels beside model/)."""
    model = build_tiny_classifier(tmp_path / "model")
    dlr.DLRModel(str(model.model_dir), "cpu", 0)  # loads while the folder is clean
    (model.model_dir / "labels.json").write_text(json.dumps({"0": "cat"}), encoding="utf-8")
    capfd.readouterr()
    with pytest.raises(Exception) as excinfo:
        dlr.DLRModel(str(model.model_dir), "cpu", 0)
    assert type(excinfo.value).__name__ == "DLRError"
    assert str(excinfo.value) == ""  # the reason is only on stderr
    assert "multiple *.json" in capfd.readouterr().err


@pytest.mark.parametrize("size", [(32, 32), (224, 224), (37, 29), (5, 3)])
def test_reference_pooling_is_torch_adaptive_avg_pool(size: Tuple[int, int]) -> None:
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(5).random((1, 3, *size), dtype=np.float32)
    expected = torch.nn.functional.adaptive_avg_pool2d(torch.from_numpy(x), (4, 4)).numpy()
    np.testing.assert_allclose(adaptive_avg_pool_4x4(x), expected, rtol=1e-6, atol=1e-6)


def test_reference_rejects_wrong_input_shape(tmp_path: pathlib.Path) -> None:
    model = build_tiny_classifier(tmp_path / "model")
    with pytest.raises(ValueError, match="expected input of shape"):
        model.predict(np.zeros((1, 3, 224, 224), dtype=np.float32))


def test_builder_refuses_a_folder_with_other_files(tmp_path: pathlib.Path) -> None:
    (tmp_path / "labels.json").write_text("{}", encoding="utf-8")
    with pytest.raises(FileExistsError):
        build_tiny_classifier(tmp_path)


# --- disable_phone_home() on a fake, unimportable dlr package ---------------------------------


@pytest.fixture
def fake_dlr(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    """A `dlr` package first on sys.path whose import fails: the switch must not import it."""
    package = tmp_path / "site" / "dlr"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("raise RuntimeError('dlr imported')\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "dlr", raising=False)
    return package


def _config(package: pathlib.Path) -> Dict[str, Any]:
    config: Dict[str, Any] = json.loads(
        (package / "counter" / "ccm_config.json").read_text(encoding="utf-8")
    )
    return config


def test_switch_creates_config_and_counter_dir(fake_dlr: pathlib.Path) -> None:
    path = phone_home.disable_phone_home()
    assert path == fake_dlr / "counter" / "ccm_config.json"
    assert _config(fake_dlr) == {"enable_phone_home": False}
    assert "dlr" not in sys.modules


def test_switch_turns_off_an_enabled_config_and_keeps_other_keys(fake_dlr: pathlib.Path) -> None:
    (fake_dlr / "counter").mkdir()
    (fake_dlr / "counter" / "ccm_config.json").write_text(
        '{"enable_phone_home": true, "enable_device_info": true}', encoding="utf-8"
    )
    assert phone_home.disable_phone_home() is not None
    assert _config(fake_dlr) == {"enable_phone_home": False, "enable_device_info": True}
    assert [p.name for p in (fake_dlr / "counter").iterdir()] == ["ccm_config.json"]


def test_switch_replaces_a_corrupt_config(fake_dlr: pathlib.Path) -> None:
    (fake_dlr / "counter").mkdir()
    (fake_dlr / "counter" / "ccm_config.json").write_text("{not json", encoding="utf-8")
    assert phone_home.disable_phone_home() is not None
    assert _config(fake_dlr) == {"enable_phone_home": False}


def test_switch_leaves_an_already_disabled_config_alone(fake_dlr: pathlib.Path) -> None:
    (fake_dlr / "counter").mkdir()
    config = fake_dlr / "counter" / "ccm_config.json"
    config.write_text('{"enable_phone_home": false}', encoding="utf-8")
    os.utime(config, (1_000_000, 1_000_000))
    before = config.stat()
    assert phone_home.disable_phone_home() == config
    after = config.stat()
    assert (after.st_ino, after.st_mtime) == (before.st_ino, before.st_mtime)


def test_switch_warns_and_returns_none_when_it_cannot_write(
    fake_dlr: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    (fake_dlr / "counter").write_text("a file where the folder should be", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        assert phone_home.disable_phone_home() is None
    assert str(fake_dlr / "counter" / "ccm_config.json") in caplog.text


def test_switch_returns_none_without_dlr(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(sys, "path", [str(tmp_path)])
    monkeypatch.delitem(sys.modules, "dlr", raising=False)
    with caplog.at_level(logging.WARNING):
        assert phone_home.disable_phone_home() is None
    assert "not installed" in caplog.text


# --- the real dlr 1.6 package, in a subprocess whose network calls are recorded and blocked ----

_PROBE = textwrap.dedent(
    """
    import json, socket, sys

    attempts = []

    def block_network(event, args):
        if event in ("socket.getaddrinfo", "socket.connect", "socket.sendto"):
            attempts.append(event + " " + repr(args)[:200])
            raise socket.gaierror("network blocked by test")

    sys.addaudithook(block_network)
    switch, model_dir, phone_home_dir = sys.argv[1:4]
    if switch == "on":
        sys.path.insert(0, phone_home_dir)
        import dlr_phone_home
        assert dlr_phone_home.disable_phone_home() is not None
    import dlr
    dlr.DLRModel(model_dir, "cpu", 0)
    dlr.DLRModel(model_dir, "cpu", 0)
    print(json.dumps({"attempts": attempts, "dlr": dlr.__file__}))
    """
)


@pytest.fixture
def dlr_copy(tmp_path: pathlib.Path) -> pathlib.Path:
    """A private copy of the installed dlr Python package with no ccm_config.json (DLR's
    out-of-the-box state); libdlr.so still comes from sys.prefix/dlr. Keeps the shared venv's
    config untouched."""
    spec = importlib.util.find_spec("dlr")
    assert spec is not None and spec.submodule_search_locations
    source = pathlib.Path(next(iter(spec.submodule_search_locations)))
    site = tmp_path / "site"
    shutil.copytree(
        source, site / "dlr", ignore=shutil.ignore_patterns("__pycache__", "ccm_config.json")
    )
    return site


def _probe(site: pathlib.Path, model_dir: pathlib.Path, switch: str) -> Dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(site)}
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, switch, str(model_dir), str(PHONE_HOME_SRC.parent)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report: Dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["dlr"].startswith(str(site))  # the copy was imported, not the venv's
    return report


def test_without_switch_dlr_phones_home(dlr_copy: pathlib.Path, tmp_path: pathlib.Path) -> None:
    """Shows the probe can see DLR's phone-home: without the switch, it tries the network."""
    model = build_tiny_classifier(tmp_path / "model")
    attempts: List[str] = _probe(dlr_copy, model.model_dir, "off")["attempts"]
    assert any("neo-dlr.amazonaws.com" in a for a in attempts), attempts


def test_with_switch_dlr_makes_no_network_attempt(
    dlr_copy: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    model = build_tiny_classifier(tmp_path / "model")
    assert _probe(dlr_copy, model.model_dir, "on")["attempts"] == []
    assert _config(dlr_copy / "dlr")["enable_phone_home"] is False
