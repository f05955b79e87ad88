"""``python -m edge_inference.convert``: the tutorial's ``.npy`` inputs from images, with the
component's own preprocessing (issue 11, "A converter")."""

from __future__ import annotations

import json
import os
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


def test_a_name_as_long_as_the_file_system_allows_is_converted(tmp_path: Path):
    """NAME_MAX is 255 bytes on ext4/xfs/btrfs/tmpfs: the image's own name fits, so must the
    tensor's, and no temporary name may be longer than the file system takes."""
    image = tmp_path / ("a" * 251 + ".png")
    image.write_bytes(encode(photo(3), "PNG"))
    out = tmp_path / "out"
    out.mkdir()
    result = convert([str(image), "-o", str(out)], tmp_path)
    assert result.returncode == 0, result.stderr
    assert [p.name for p in out.iterdir()] == ["a" * 251 + ".npy"]


def test_a_destination_that_cannot_be_written_is_one_line(tmp_path: Path):
    image = tmp_path / "cat.png"
    image.write_bytes(encode(photo(3), "PNG"))
    too_long = tmp_path / ("b" * 256 + ".npy")
    result = convert([str(image), "-o", str(too_long)], tmp_path)
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("python -m edge_inference.convert: error: cannot write ")
    assert "File name too long" in line
    assert list(tmp_path.iterdir()) == [image]  # no temp file left behind


def test_two_images_for_one_tensor_name_are_refused_before_anything_is_written(tmp_path: Path):
    (tmp_path / "x" / "sub").mkdir(parents=True)
    images = [tmp_path / "x" / "same.png", tmp_path / "x" / "same.jpg"]
    images.append(tmp_path / "x" / "sub" / "same.png")
    images[0].write_bytes(encode(photo(1), "PNG"))
    images[1].write_bytes(encode(photo(2), "JPEG"))
    images[2].write_bytes(encode(photo(3), "PNG"))
    out = tmp_path / "outdir"
    out.mkdir()
    result = convert([*map(str, images), "-o", str(out)], tmp_path)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line == (
        f"python -m edge_inference.convert: error: {images[0]} and {images[1]} would both be "
        f"written to {out / 'same.npy'}: convert them in separate calls with different -o"
    )
    assert list(out.iterdir()) == []
    # Even the same image twice: one destination, one input.
    again = convert([str(images[0]), str(images[0]), "-o", str(out)], tmp_path)
    assert again.returncode == 2 and "would both be written" in again.stderr


def test_an_image_over_twice_the_limit_names_the_limit_that_was_set(tmp_path: Path):
    """Pillow raises DecompressionBombError above twice Image.MAX_IMAGE_PIXELS, quoting that
    doubled number; the user set the single one."""
    image = tmp_path / "big.png"
    image.write_bytes(encode(photo(4, (40, 30)), "PNG"))  # 1200 pixels
    for limit in ("1000", "500"):  # below 2x: our check; above 2x: Pillow's guard
        result = convert([str(image), "--max-image-pixels", limit], tmp_path)
        assert result.returncode == 1
        (line,) = result.stderr.strip().splitlines()
        assert f"more than --max-image-pixels={limit}" in line, line
        assert str(2 * int(limit)) not in line


def test_what_is_there_but_not_a_file_is_named_for_what_it_is(tmp_path: Path):
    folder = tmp_path / "dir.png"
    folder.mkdir()
    fifo = tmp_path / "fifo.jpg"
    os.mkfifo(fifo)
    result = convert([str(folder), str(fifo)], tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"python -m edge_inference.convert: error: {folder}: a folder, not an image file",
        f"python -m edge_inference.convert: error: {fifo}: a named pipe (FIFO), not an image file",
    ]
