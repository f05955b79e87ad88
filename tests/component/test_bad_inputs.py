"""Bad inputs end in the failed folder with a reason, and the next input is still processed."""

from __future__ import annotations

import io
import json
import pickle
import struct
import sys
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from tests.component.harness import (
    Folders,
    RecordingPublisher,
    TinyPackage,
    encode,
    make_service,
    photo,
    random_tensor,
    run_once,
)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims ``width x height`` pixels (a decompression-bomb header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def save_npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


BAD_INPUTS = {
    # name: (content, substring expected in the reason)
    "truncated.jpg": (encode(photo(1, (200, 150)), "JPEG")[:1500], "truncated"),
    "text.jpg": (b"this is not an image\n", "not a JPEG or PNG"),
    "zero.png": (b"", "empty file"),
    "wrong_shape.npy": (save_npy_bytes(np.zeros((1, 3, 16, 16), np.float32)), "shape"),
    "wrong_dtype.npy": (save_npy_bytes(np.zeros((1, 3, 32, 32), np.float64)), "dtype"),
    "int_tensor.npy": (save_npy_bytes(np.zeros((3, 32, 32), np.int32)), "dtype"),
    "object_array.npy": (save_npy_bytes(np.array([{"a": 1}], dtype=object)), "pickle"),
    "pickle_file.npy": (pickle.dumps({"not": "a tensor"}), "pickle"),
    "truncated.npy": (save_npy_bytes(np.zeros((1, 3, 32, 32), np.float32))[:900], "npy"),
    "bomb.png": (png_header_only(100_000, 100_000), "pixels"),
    "notes.txt": (b"hello", "unsupported file type"),
    "gif_named.png": (encode(photo(2), "GIF"), "unsupported image format"),
}


def test_each_bad_input_fails_with_its_reason_and_good_ones_still_run(
    folders: Folders, tiny_package: TinyPackage
):
    for name, (content, _) in BAD_INPUTS.items():
        (folders.input / name).write_bytes(content)
    np.save(folders.input / "good.npy", random_tensor(1))
    (folders.input / "good.jpg").write_bytes(encode(photo(3), "JPEG"))

    messages = run_once(folders, tiny_package.model_dir)

    by_name = {m["input"]: m for m in messages}
    assert sorted(by_name) == sorted([*BAD_INPUTS, "good.npy", "good.jpg"])
    for name, (_, reason) in BAD_INPUTS.items():
        assert reason in by_name[name]["error"], (name, by_name[name])
        assert "top" not in by_name[name]
        error_file = folders.failed / f"{name}.error.json"
        assert json.loads(error_file.read_text())["error"] == by_name[name]["error"]
        assert str(folders.state) not in by_name[name]["error"]  # no internal paths
    assert by_name["good.npy"]["top"][0]["index"] >= 0
    assert by_name["good.jpg"]["top"][0]["index"] >= 0
    assert folders.names(folders.processed) == ["good.jpg", "good.npy"]
    expected_failed = sorted([*BAD_INPUTS, *(f"{n}.error.json" for n in BAD_INPUTS)])
    assert folders.names(folders.failed) == expected_failed
    assert folders.names(folders.input) == []
    assert folders.names(folders.in_progress) == []


def test_real_image_above_a_lowered_max_image_pixels_fails(
    folders: Folders, tiny_package: TinyPackage
):
    (folders.input / "big.png").write_bytes(encode(photo(4, (200, 100)), "PNG"))
    (folders.input / "fits.png").write_bytes(encode(photo(5, (90, 100)), "PNG"))
    # Over twice the limit Pillow's own guard (DecompressionBombError) fires first, quoting its
    # doubled limit (20000); the error must still name the limit that was set.
    (folders.input / "bomb.png").write_bytes(encode(photo(6, (300, 100)), "PNG"))

    messages = run_once(folders, tiny_package.model_dir, max_image_pixels=10_000)

    by_name = {m["input"]: m for m in messages}
    assert "20000 pixels" in by_name["big.png"]["error"]
    assert "MaxImagePixels=10000" in by_name["big.png"]["error"]
    bomb = by_name["bomb.png"]["error"]
    assert "30000 pixels, more than MaxImagePixels=10000" in bomb and "20000" not in bomb
    assert "top" in by_name["fits.png"]


def test_a_file_still_being_written_is_taken_only_once_complete(
    folders: Folders, tiny_package: TinyPackage
):
    tensor = random_tensor(7)
    payload = save_npy_bytes(tensor)
    publisher = RecordingPublisher()
    stop = threading.Event()
    service = make_service(
        folders, tiny_package.model_dir, publisher=publisher, stop=stop, settle_seconds=1.5
    )
    worker = threading.Thread(target=service.run)
    worker.start()
    try:
        (folders.input / "upload.part").write_bytes(payload)  # *.part is never taken
        target = folders.input / "slow.npy"
        chunks = [payload[i : i + 1000] for i in range(0, len(payload), 1000)]
        with target.open("wb") as handle:
            for chunk in chunks:  # one chunk every 0.1 s, well inside the settle time
                handle.write(chunk)
                handle.flush()
                time.sleep(0.1)
                assert target.exists(), "picked up while still being written"
        deadline = time.monotonic() + 10
        while not publisher.messages and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        worker.join(10)
    assert [m["input"] for m in publisher.messages] == ["slow.npy"]
    assert "top" in publisher.messages[0]
    assert folders.names(folders.processed) == ["slow.npy"]
    assert folders.names(folders.input) == ["upload.part"]


@pytest.mark.parametrize("name", [".hidden.jpg", "camera.jpg.tmp", "copy.PART"])
def test_dotfiles_and_temp_names_are_never_taken(
    folders: Folders, tiny_package: TinyPackage, name: str
):
    (folders.input / name).write_bytes(encode(photo(6), "JPEG"))
    assert run_once(folders, tiny_package.model_dir) == []
    assert (folders.input / name).exists()


def test_a_file_that_stops_growing_truncated_fails_as_a_bad_input(
    folders: Folders, tiny_package: TinyPackage
):
    jpeg = encode(photo(8, (300, 200)), "JPEG")
    path: Path = folders.input / "cut.jpg"
    path.write_bytes(jpeg[: len(jpeg) // 2])
    (message,) = run_once(folders, tiny_package.model_dir)
    assert "truncated" in message["error"]
    assert folders.names(folders.failed) == ["cut.jpg", "cut.jpg.error.json"]


def test_without_pillow_tensors_still_run_and_images_fail_with_the_reason(
    folders: Folders, tiny_package: TinyPackage, monkeypatch
):
    """variant.DLR's Python environment has no Pillow: .npy inputs must still work there."""
    np.save(folders.input / "t.npy", random_tensor(9))
    (folders.input / "p.png").write_bytes(encode(photo(9), "PNG"))
    monkeypatch.setitem(sys.modules, "PIL", None)  # makes "import PIL..." raise ImportError
    monkeypatch.setitem(sys.modules, "PIL.Image", None)

    by_name = {m["input"]: m for m in run_once(folders, tiny_package.model_dir)}

    assert "top" in by_name["t.npy"]
    assert "Pillow is not installed" in by_name["p.png"]["error"]
