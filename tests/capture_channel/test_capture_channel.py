"""``python -m capture_channel`` (issue 15): labelled captures become a channel the training
script accepts, merged with the current one, each image once, and every input a user can get
wrong is named without losing what exists.

The manifest lines follow the SageMaker developer guide's image-classification output
("Labeling job output data": ``source-ref``, the label attribute, and its ``-metadata`` with
``class-name`` and ``"type": "groundtruth/image-classification"``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from capture_channel.__main__ import main

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "training_src"))
from edge_training.data import check_images, scan_image_folder


def photo(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(path)
    return path


def gt_line(uri: str, label: str, index: int = 0) -> str:
    return json.dumps(
        {
            "source-ref": uri,
            "animal": index,
            "animal-metadata": {
                "class-name": label,
                "confidence": 0.9,
                "type": "groundtruth/image-classification",
                "job-name": "labeling-job/captures",
                "human-annotated": "yes",
                "creation-date": "2027-01-15T08:00:00",
            },
        }
    )


def test_labelled_folders_become_a_channel_the_training_script_accepts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labelled = tmp_path / "labelled"
    for i in range(3):
        photo(labelled / "cat" / f"c{i}.jpg", i)
        photo(labelled / "dog" / f"d{i}.png", 10 + i)
    (labelled / "cat" / "c0.jpg.json").write_text("{}")  # a capture's sidecar: ignored
    out = tmp_path / "channel"
    assert main(["--folders", str(labelled), "--out", str(out), "--stage", "prod",
                 "--bucket", "my-bucket"]) == 0  # fmt: skip
    classes, samples = scan_image_folder(str(out), "train")
    check_images(samples)
    assert classes == ["cat", "dog"] and len(samples) == 6
    printed = capsys.readouterr().out
    assert "aws s3 sync" in printed
    assert "-c training_data_uri=s3://my-bucket/training/channels/channel/" in printed
    assert "-c stage=prod" in printed


def test_the_current_channel_is_merged_and_duplicates_kept_once(tmp_path: Path) -> None:
    base = tmp_path / "train"
    photo(base / "cat" / "old.jpg", 1)
    photo(base / "dog" / "old.jpg", 2)
    labelled = tmp_path / "labelled"
    photo(labelled / "cat" / "again.jpg", 1)  # the same picture as base/cat/old.jpg
    photo(labelled / "fox" / "new.jpg", 3)
    out = tmp_path / "channel"
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps(["cat", "dog"]))
    assert main(["--folders", str(labelled), "--base", str(base), "--labels", str(labels),
                 "--out", str(out)]) == 0  # fmt: skip
    assert sorted(str(p.relative_to(out)).split("/")[0] for p in out.rglob("*.*")) == [
        "cat",
        "dog",
        "fox",
    ]


def test_an_image_labelled_two_ways_is_left_out_and_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labelled = tmp_path / "labelled"
    photo(labelled / "cat" / "x.jpg", 5)
    photo(labelled / "dog" / "x.jpg", 5)
    photo(labelled / "cat" / "a.jpg", 6)
    photo(labelled / "dog" / "b.jpg", 7)
    whole = photo(tmp_path / "whole.png", 8).read_bytes()
    (labelled / "dog" / "cut.png").write_bytes(whole[: len(whole) // 2])  # a cut-off upload
    out = tmp_path / "channel"
    assert main(["--folders", str(labelled), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "labelled both 'cat' and 'dog'" in printed
    assert "left out: dog/cut.png" in printed
    assert len(list(out.rglob("*.jpg"))) == 2


def test_a_ground_truth_manifest_reads_the_images_from_a_copy_of_the_bucket(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    objects = tmp_path / "s3"
    key = "captures/dev/default/cam-1/2027/01/15"
    photo(objects / "bkt" / key / "0001-a.jpg", 1)
    photo(objects / "bkt" / key / "0002-b.jpg", 2)
    photo(objects / "bkt" / key / "0003-c.jpg", 3)
    (objects / "bkt" / key / "0004-broken.jpg").write_bytes(b"not a jpeg")
    manifest = tmp_path / "output.manifest"
    manifest.write_text("\n".join([
        gt_line(f"s3://bkt/{key}/0001-a.jpg", "cat"),
        gt_line(f"s3://bkt/{key}/0002-b.jpg", "dog", 1),
        gt_line(f"s3://bkt/{key}/0003-c.jpg", "dog", 1),
        gt_line(f"s3://bkt/{key}/0004-broken.jpg", "cat"),
        gt_line(f"s3://bkt/{key}/0005-gone.jpg", "cat"),
    ]) + "\n")  # fmt: skip
    out = tmp_path / "channel"
    assert main(["--manifest", str(manifest), "--objects", str(objects), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "cat: 1" in printed and "dog: 2" in printed
    assert "0004-broken.jpg" in printed and "0005-gone.jpg" in printed  # named, left out
    classes, samples = scan_image_folder(str(out), "train")
    assert classes == ["cat", "dog"] and len(samples) == 3


@pytest.mark.parametrize(
    "line, message",
    [
        ("not json", "line 1: Expecting value"),
        (json.dumps({"animal": 0}), "line 1: no source-ref"),
        (json.dumps({"source-ref": "/local/a.jpg"}), "is not an s3://bucket/key URI"),
        (
            json.dumps({"source-ref": "s3://b/k.jpg", "x-metadata": {"type": "groundtruth/bbox"}}),
            "found 0",
        ),
        (gt_line("s3://b/k.jpg", "../etc"), "cannot be a class folder name"),
    ],
)
def test_a_bad_manifest_line_is_named_and_nothing_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str, message: str
) -> None:
    manifest = tmp_path / "m.manifest"
    manifest.write_text(line + "\n")
    out = tmp_path / "channel"
    assert main(["--manifest", str(manifest), "--objects", str(tmp_path), "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_one_class_is_refused_and_an_existing_folder_is_never_replaced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labelled = tmp_path / "labelled"
    photo(labelled / "cat" / "a.jpg", 1)
    out = tmp_path / "channel"
    assert main(["--folders", str(labelled), "--out", str(out)]) == 2
    assert "training needs at least two" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.glob(".channel*"))
    photo(labelled / "dog" / "b.jpg", 2)
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    assert main(["--folders", str(labelled), "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (out / "mine.txt").read_text() == "keep"


def test_objects_without_a_manifest_and_a_missing_folder_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--folders", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    assert "no such folder" in capsys.readouterr().err
    assert main(["--folders", str(tmp_path), "--objects", str(tmp_path),
                 "--out", str(tmp_path / "o")]) == 2  # fmt: skip
    assert "--objects goes with --manifest" in capsys.readouterr().err


# ---------------------------------------------------------------- found by the hostile review
def test_files_training_does_not_read_are_named_not_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A .webp or extensionless manifest object was counted and written, then the training
    script found no image in the class; a .npy capture, a nested folder and an empty class
    folder were dropped without a word. Each is now named, and what is counted is what
    scan_image_folder reads."""
    objects = tmp_path / "s3"
    photo(objects / "b" / "k" / "1.jpg", 1)
    photo(objects / "b" / "k" / "2.png", 2)
    photo(objects / "b" / "k" / "3.webp", 3).rename(objects / "b" / "k" / "3")
    photo(objects / "b" / "k" / "4.webp", 4)
    manifest = tmp_path / "m.manifest"
    manifest.write_text("\n".join([
        gt_line("s3://b/k/1.jpg", "cat"),
        gt_line("s3://b/k/2.png", "dog", 1),
        gt_line("s3://b/k/3", "cat"),
        gt_line("s3://b/k/4.webp", "dog", 1),
    ]) + "\n")  # fmt: skip
    out = tmp_path / "channel"
    assert main(["--manifest", str(manifest), "--objects", str(objects), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "wrote 2 images in 2 classes" in printed
    assert "s3://b/k/3: not a file type" in printed and "s3://b/k/4.webp: not a file" in printed
    classes, samples = scan_image_folder(str(out), "train")
    assert classes == ["cat", "dog"] and len(samples) == 2

    labelled = tmp_path / "labelled"
    photo(labelled / "cat" / "a.jpg", 5)
    photo(labelled / "dog" / "b.jpg", 6)
    np.save(labelled / "dog" / "c.npy", np.zeros((1, 3, 8, 8), dtype=np.float32))
    photo(labelled / "dog" / "2027" / "01" / "n.jpg", 7)
    (labelled / "bird").mkdir()
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps(["cat", "dog", "bird", "fish"]))
    out2 = tmp_path / "channel2"
    code = main(["--folders", str(labelled), "--labels", str(labels), "--out", str(out2)])
    printed = capsys.readouterr().out
    assert code == 0
    assert "dog/c.npy: not a file type" in printed
    assert "dog/2027/: a folder" in printed and "bird/: an empty class folder" in printed
    assert "no image in this channel: bird, fish" in printed


def test_unreadable_manifests_and_unwritable_outputs_are_named_not_raised(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "m.manifest"
    manifest.write_bytes(b"\xff\xfe{not utf-8}\n")
    out = tmp_path / "channel"
    assert main(["--manifest", str(manifest), "--objects", str(tmp_path), "--out", str(out)]) == 2
    assert "not UTF-8" in capsys.readouterr().err
    manifest.write_text(gt_line("s3://b/../../etc/a.jpg", "cat") + "\n")
    assert main(["--manifest", str(manifest), "--objects", str(tmp_path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "'..' part" in err and err.count("line 1") == 1
    labelled = tmp_path / "labelled"
    photo(labelled / "cat" / "a.jpg", 1)
    photo(labelled / "dog" / "b.jpg", 2)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert main(["--folders", str(labelled), "--out", str(blocker / "x")]) == 2
    assert "cannot write there" in capsys.readouterr().err


def test_a_run_where_no_new_image_can_be_used_fails_instead_of_writing_the_base_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by the hostile review: with no AWS credentials every capture of a manifest was
    left out one by one, and the run still wrote the --base channel alone and exited 0."""
    base = tmp_path / "base"
    photo(base / "cat" / "a.jpg", 1)
    photo(base / "dog" / "b.jpg", 2)
    manifest = tmp_path / "m.manifest"
    manifest.write_text(gt_line("s3://b/k/1.jpg", "cat") + "\n" + gt_line("s3://b/k/2.jpg", "dog"))
    out = tmp_path / "channel"
    empty = tmp_path / "empty-copy"
    empty.mkdir()
    args = ["--manifest", str(manifest), "--objects", str(empty), "--base", str(base)]
    assert main([*args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "none of the 2 new image(s) could be used (first: s3://b/k/1.jpg:" in err
    assert not out.exists()
