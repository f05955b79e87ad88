"""``python -m edge_inference.convert``: the tutorial's ``.npy`` inputs from images, with the
component's own preprocessing (issue 11, "A converter")."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import List

import numpy as np
from edge_inference.inputs import InputDecoder
from edge_inference.model import ModelInfo, read_metadata

from tests.component.harness import (
    Folders,
    TinyPackage,
    component_env,
    encode,
    photo,
    run_once,
)


def convert(args: List[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "edge_inference.convert", *args],
        cwd=str(cwd), env=component_env(), capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip


def test_the_converter_writes_exactly_the_component_tensor(tmp_path: Path):
    jpeg = tmp_path / "cat.jpg"
    jpeg.write_bytes(encode(photo(1, (500, 333)), "JPEG", quality=90))
    png = tmp_path / "dog.png"
    png.write_bytes(encode(photo(2, (301, 640)), "PNG"))

    result = convert([str(jpeg), str(png), "-o", str(tmp_path)], tmp_path)

    assert result.returncode == 0, result.stderr
    decoder = InputDecoder(ModelInfo("x"), 50_000_000)
    for image in (jpeg, png):
        written = np.load(image.with_suffix(".npy"), allow_pickle=False)
        assert written.dtype == np.float32 and written.shape == (1, 3, 224, 224)
        assert np.array_equal(written, decoder.load(image))


def test_converted_tensors_get_the_same_predictions_as_the_images(
    folders: Folders, tiny_package: TinyPackage, tmp_path: Path
):
    for seed in range(3):
        (folders.input / f"img{seed}.png").write_bytes(encode(photo(seed, (90, 61)), "PNG"))
    images = sorted(folders.input.iterdir())
    out = tmp_path / "npy"
    out.mkdir()
    result = convert(
        [*map(str, images), "-o", str(out), "--model-dir", str(tiny_package.model_dir)], tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert read_metadata(tiny_package.model_dir).input_shape == (1, 3, 32, 32)
    from_images = {m["input"][:-4]: m["top"] for m in run_once(folders, tiny_package.model_dir)}
    for npy in out.iterdir():
        (folders.input / npy.name).write_bytes(npy.read_bytes())
    from_tensors = {m["input"][:-4]: m["top"] for m in run_once(folders, tiny_package.model_dir)}
    assert from_tensors == from_images and len(from_images) == 3


def test_bad_inputs_and_outputs_give_one_line_each(tmp_path: Path):
    good = tmp_path / "good.png"
    good.write_bytes(encode(photo(1), "PNG"))
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")

    missing = convert([str(tmp_path / "missing.jpg")], tmp_path)
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines() == [
        f"python -m edge_inference.convert: error: {tmp_path / 'missing.jpg'}: no such file"
    ]
    undecodable = convert([str(broken), str(good), "-o", str(tmp_path)], tmp_path)
    assert undecodable.returncode == 1
    (line,) = undecodable.stderr.strip().splitlines()
    assert "broken.jpg" in line and ("cannot decode" in line or "not a JPEG" in line)
    assert (tmp_path / "good.npy").is_file()  # the others are still converted

    for output, reason in [
        (tmp_path / "no" / "such" / "x.npy", "does not exist"),
        (tmp_path / "x.txt", "must end in .npy"),
    ]:
        bad = convert([str(good), "-o", str(output)], tmp_path)
        assert bad.returncode == 2
        (line,) = bad.stderr.strip().splitlines()
        assert reason in line and str(output) in line
    several = convert([str(good), str(good), "-o", str(tmp_path / "one.npy")], tmp_path)
    assert several.returncode == 2 and "existing folder" in several.stderr
    bad_meta = tmp_path / "model"
    bad_meta.mkdir()
    (bad_meta / "metadata.json").write_text(json.dumps({"layout": "NCWH"}))
    meta = convert([str(good), "--model-dir", str(bad_meta)], tmp_path)
    assert meta.returncode == 2 and "layout" in meta.stderr
