"""The main job's pipeline function (``main_job.pipeline.run``, what ``scripts/main.sh`` runs)
on the photos that ship in packages, and on a user's folder.

Photos whose subject is an ImageNet class, and the class that must be in the top 3 (see
``tests/component/test_real_photos.py`` for why top 3): matplotlib's ``grace_hopper.jpg``
"military uniform", scikit-learn's ``china.jpg`` "palace" and ``flower.jpg`` "daisy".
Here the labels come from the whole path: the synthesized stage's package (its metadata.json
carries the brought model's normalization), the simulated device, ONNX Runtime in the venv its
runtime component installed, and the messages it published.
"""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import pytest

from main_job.__main__ import main
from main_job.pipeline import MainJob, run
from main_job.report import outcome, subscriber_lines, table

EXPECTED = {"grace_hopper.jpg": "military uniform", "china.jpg": "palace", "flower.jpg": "daisy"}


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("main-job-cache")


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory, cache: Path) -> MainJob:
    return run(tmp_path_factory.mktemp("main-job") / "out", cache=cache, digits_epochs=1)


@pytest.mark.parametrize("photo", sorted(EXPECTED))
def test_shipped_photo_gets_its_imagenet_class_in_the_top_3(job: MainJob, photo: str) -> None:
    result = next(r for r in job.results if r.photo == photo)
    assert result.error is None, result.error
    assert EXPECTED[photo] in [t["label"] for t in result.top], result.top
    assert len(result.top) == 3 and result.latency_ms is not None and result.latency_ms > 0


def test_every_photo_was_published_by_the_device_and_is_in_the_outputs(job: MainJob) -> None:
    assert job.steps_failed == []
    assert sorted(m["payload"]["input"] for m in job.messages) == sorted(
        f"boot1-{r.photo}" for r in job.results
    )
    lines = (job.out / "results.jsonl").read_text().splitlines()
    assert [json.loads(line)["photo"] for line in lines] == [r.photo for r in job.results]
    html = job.report_html.read_text()
    assert job.fleet is not None  # each photo's card, then each capture's (issue 15)
    thumbnails = len(job.results) + len(job.fleet.captured)
    assert html.count('src="data:image/jpeg;base64,') == thumbnails
    assert "military uniform" in html
    assert job.package_zip is not None and job.package_zip.suffix == ".zip"
    assert (job.out / "model" / "model.tar.gz").is_file()
    # the package the device ran carries the brought model's normalization, not ImageNet's
    metadata = json.loads(
        next(
            (job.out / "device").glob("packages/artifacts-unarchived/*/*/*/metadata.json")
        ).read_text()
    )
    assert metadata["mean"] == pytest.approx([127 / 255] * 3, abs=1e-5)
    assert metadata["architecture"] == "efficientnet_lite0"


def test_table_and_subscriber_lines_show_each_photo(job: MainJob) -> None:
    text = table(job.results)
    for result in job.results:
        assert result.photo in text
    assert "palace" in text and " ms" in text
    lines = subscriber_lines(job.messages)
    assert len(lines) == len(job.results)
    # the user's file name, not the simulator's boot1- staging name (issue 18)
    assert any("edge-ai-dev-sim-1  china.jpg  palace" in line for line in lines), lines
    assert not any("boot1-" in line for line in lines), lines


def test_digits_training_really_trained(job: MainJob) -> None:
    assert (job.digits.model_dir / "model.pth").is_file()
    assert job.digits.metrics.startswith("epoch=1 ") and "val_acc=" in job.digits.metrics


def test_users_folder_an_undecodable_file_fails_alone(
    tmp_path: Path, cache: Path, job: MainJob
) -> None:
    """A second run reuses the cache (pretrained export, digits model, wheelhouse)."""
    folder = tmp_path / "mine"
    folder.mkdir()
    shutil.copyfile(job.results[1].source, folder / "temple.jpg")  # china.jpg
    assert job.results[1].photo == "china.jpg"
    (folder / "broken.jpg").write_bytes(b"not a jpeg at all")
    (folder / "notes.txt").write_text("not an image: skipped")
    mine = run(tmp_path / "out", images=folder, cache=cache, digits_epochs=1)
    assert mine.brought.reused and mine.digits.reused
    by_name = {r.photo: r for r in mine.results}
    assert sorted(by_name) == ["broken.jpg", "notes.txt", "temple.jpg"]
    # skipped, not failed (issue 18): never sent, and not counted against the exit status
    assert str(by_name["notes.txt"].skipped).startswith("not a supported type (.jpg")
    assert by_name["notes.txt"].error is None
    assert by_name["broken.jpg"].error and not by_name["broken.jpg"].top
    assert "palace" in [t["label"] for t in by_name["temple.jpg"].top]
    text = table(mine.results)
    assert "broken.jpg  FAILED: " in text and "notes.txt   skipped: not a supported type" in text
    assert outcome(mine.results, mine.steps_failed) == (
        1,
        "exit status 1: 1 of 2 photos failed (FAILED in the table); 1 skipped (not a "
        "supported type)",
    )


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "absent", "no such folder"),
        (lambda p: (p / "empty").mkdir() or p / "empty", "no file of a supported type in it"),
        (lambda p: (p / "file.jpg").write_text("x") and p / "file.jpg", "not a folder"),
    ],
)
def test_images_argument_errors_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make, message: str
) -> None:  # type: ignore[no-untyped-def]
    code = main(["--images", str(make(tmp_path)), "--out", str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and message in err and err.startswith("main_job: error:")


# ---------------------------------------------------------------- arguments a user gets wrong
# These run no pipeline step: the job must refuse before it touches anything.


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("main_job: error:"), err
    return err


@pytest.mark.parametrize("check_only", [True, False])
def test_out_refuses_a_users_non_empty_folder_and_deletes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], check_only: bool
) -> None:
    """A run replaces ``<out>/photos``, ``model``, ``package``, ``cdk.out``: in a folder the job
    did not make, those are the user's files."""
    home = tmp_path / "home"
    (home / "photos").mkdir(parents=True)
    (home / "model").mkdir()
    wedding = home / "photos" / "precious_wedding.png"
    thesis = home / "model" / "my_thesis_model.pt"
    wedding.write_bytes(b"png")
    thesis.write_bytes(b"pt")
    args = ["--out", str(home), "--no-progress", *(["--check-args"] if check_only else [])]
    assert main(args) == 2
    assert "not empty" in _one_line_error(capsys)
    assert wedding.read_bytes() == b"png" and thesis.read_bytes() == b"pt"


def test_out_accepts_a_folder_the_job_made(tmp_path: Path) -> None:
    from main_job.outdir import OUT_MARKER, prepare_out

    out = tmp_path / "out"
    prepare_out(out)
    assert (out / OUT_MARKER).is_file()
    (out / "report.html").write_text("old")
    assert main(["--out", str(out), "--check-args"]) == 0


@pytest.mark.parametrize(
    ("where", "message"),
    [
        (lambda: ".", "the current folder"),
        (lambda: str(Path.home()), "home folder"),
        (lambda: "/", "the filesystem root"),
        (lambda: str(Path(__file__).resolve().parents[2]), "the repository"),
    ],
)
def test_out_refuses_the_current_folder_home_root_and_repository(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    where,  # type: ignore[no-untyped-def]
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["--out", where(), "--check-args"]) == 2
    assert message in _one_line_error(capsys)


def test_images_inside_out_and_out_inside_images_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The job recreates ``<out>/photos``: ``--images out/photos`` would delete the input."""
    from main_job.outdir import prepare_out

    out = tmp_path / "out"
    prepare_out(out)
    photos = out / "photos"
    photos.mkdir()
    (photos / "a.jpg").write_bytes(b"jpg")
    assert main(["--out", str(out), "--images", str(photos), "--check-args"]) == 2
    assert "inside --out" in _one_line_error(capsys)
    assert (photos / "a.jpg").read_bytes() == b"jpg"
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "b.jpg").write_bytes(b"jpg")
    assert main(["--out", str(mine / "out"), "--images", str(mine), "--check-args"]) == 2
    assert "inside --images" in _one_line_error(capsys)


# ---------------------------------------------------------------- report
def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims ``width x height``: Pillow refuses it on open (decompression
    bomb check), so nothing of that size is ever allocated."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))
    return path


def test_report_shows_a_huge_image_as_failed_without_a_thumbnail(tmp_path: Path) -> None:
    from main_job.report import write_report
    from main_job.results import PhotoResult

    huge = _png_header_only(tmp_path / "huge.png", 20000, 20000)
    result = PhotoResult("huge.png", huge, error="image too large")
    html = write_report(tmp_path / "report.html", [result], title="t").read_text()
    assert "huge.png" in html and "failed: image too large" in html
    assert "data:image/jpeg" not in html


def test_a_failed_run_leaves_no_stale_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from main_job import pipeline
    from main_job.errors import MainJobError
    from main_job.outdir import prepare_out

    out = tmp_path / "out"
    prepare_out(out)
    (out / "report.html").write_text("the previous run's report")
    (out / "results.jsonl").write_text("{}\n")

    def fail(cache: Path) -> None:
        raise MainJobError("pretrained model: broken on purpose")

    monkeypatch.setattr(pipeline, "bring_pretrained", fail)
    with pytest.raises(MainJobError):
        run(out, cache=tmp_path / "cache")
    assert not (out / "report.html").exists() and not (out / "results.jsonl").exists()


# ---------------------------------------------------------------- errors at the top
def test_an_output_folder_that_cannot_be_written_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    assert main(["--out", str(blocker / "out"), "--no-progress"]) == 2
    err = _one_line_error(capsys)
    assert str(blocker) in err


def test_ctrl_c_is_one_line_and_exit_130(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import main_job.__main__ as entry

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(entry, "run", interrupted)
    assert main(["--out", str(tmp_path / "out"), "--no-progress"]) == 130
    assert "interrupted" in capsys.readouterr().err.strip()


# ---------------------------------------------------------------- file types
def test_a_folder_of_only_unsupported_types_fails_check_args_naming_the_supported_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The inference component reads only ``edge_inference.inputs.SUPPORTED_SUFFIXES``."""
    folder = tmp_path / "mine"
    folder.mkdir()
    for name in ("a.gif", "b.bmp", "c.tif", "d.tiff", "e.webp"):
        (folder / name).write_bytes(b"x")
    assert main(["--images", str(folder), "--out", str(tmp_path / "out"), "--check-args"]) == 2
    err = _one_line_error(capsys)
    assert ".jpg, .jpeg, .png, .npy" in err and ".gif" not in err.split("(")[-1]


def test_unsupported_files_are_listed_as_skipped_and_npy_is_picked_up(tmp_path: Path) -> None:
    from main_job.inputs import unsupported_files, user_images

    folder = tmp_path / "mine"
    folder.mkdir()
    for name in ("a.jpg", "b.npy", "c.gif", "notes.txt", ".DS_Store"):
        (folder / name).write_bytes(b"x")
    assert [p.name for p in user_images(folder)] == ["a.jpg", "b.npy"]
    assert [p.name for p in unsupported_files(folder)] == ["c.gif", "notes.txt"]


# ---------------------------------------------------------------- relative paths
def test_relative_images_resolve_against_the_callers_folder_not_the_repository(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``scripts/main.sh`` cds to the repository first and passes the caller's folder in
    ``MAIN_JOB_CWD``."""
    caller = tmp_path / "caller"
    (caller / "mine").mkdir(parents=True)
    (caller / "mine" / "a.jpg").write_bytes(b"x")
    monkeypatch.setenv("MAIN_JOB_CWD", str(caller))
    assert main(["--images", "mine", "--out", str(tmp_path / "out"), "--check-args"]) == 0
    assert main(["--images", "absent", "--out", str(tmp_path / "out"), "--check-args"]) == 2
    assert str(caller / "absent") in _one_line_error(capsys)


# ---------------------------------------------------------------- table
def test_table_escapes_control_characters_in_names(tmp_path: Path) -> None:
    from main_job.results import PhotoResult

    ok = PhotoResult("two\nlines.jpg", tmp_path / "x", top=[{"label": "cat", "score": 0.5}])
    ok.latency_ms = 1.0
    bad = PhotoResult("esc\x1b[31m.jpg", tmp_path / "y", error="bad\nthing")
    text = table([ok, bad])
    assert len(text.splitlines()) == 4, text
    assert "two\\nlines.jpg" in text and "\x1b" not in text and "bad\\nthing" in text


# ---------------------------------------------------------------- cache
def test_a_partly_deleted_cache_entry_is_rebuilt(tmp_path: Path) -> None:
    from main_job.cache import cached

    builds: list[Path] = []

    def build(scratch: Path) -> None:
        builds.append(scratch)
        (scratch / "sub").mkdir()
        (scratch / "sub" / "wheel.whl").write_bytes(b"wheel")
        (scratch / "model.onnx").write_bytes(b"onnx")

    folder = tmp_path / "entry"
    assert cached(folder, build) is False
    assert cached(folder, build) is True and len(builds) == 1
    (folder / "sub" / "wheel.whl").unlink()
    assert cached(folder, build) is False and len(builds) == 2
    assert (folder / "sub" / "wheel.whl").read_bytes() == b"wheel"
    (folder / "model.onnx").write_bytes(b"on")  # truncated
    assert cached(folder, build) is False and len(builds) == 3


# ---------------------------------------------------------------- names a user chose
def test_report_keeps_a_photo_name_with_quotes_inside_its_attributes(tmp_path: Path) -> None:
    """A file may be named ``x" onerror="alert(1).png``: in ``report.html`` that name is text
    in the ``alt`` attribute and in the card, never an attribute or element of its own."""
    from html.parser import HTMLParser

    from PIL import Image

    from main_job.report import write_report
    from main_job.results import PhotoResult

    name = 'x" onerror="alert(1)\' <b>.png'
    source = tmp_path / "photo.png"
    Image.new("RGB", (4, 4), (200, 10, 10)).save(source)
    label = '<script>alert("label")</script>'
    result = PhotoResult(name, source, top=[{"label": label, "score": 0.9}], latency_ms=1.0)
    document = write_report(tmp_path / "report.html", [result], title="t").read_text()

    class Elements(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.tags: list[tuple[str, dict[str, str | None]]] = []
            self.text: list[str] = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.tags.append((tag, dict(attrs)))

        def handle_data(self, data: str) -> None:
            self.text.append(data)

    parsed = Elements()
    parsed.feed(document)
    images = [attrs for tag, attrs in parsed.tags if tag == "img"]
    assert len(images) == 1 and images[0]["alt"] == name, images
    assert sorted(images[0]) == ["alt", "src"]
    assert [tag for tag, _ in parsed.tags if tag in ("b", "script")] == []
    assert name in parsed.text and label in parsed.text


def test_prepare_out_refuses_a_users_folder_before_writing_its_marker(tmp_path: Path) -> None:
    """The marker is what makes a non-empty folder acceptable: written before the check, it
    would make the user's folder the job's, and the same call would delete their
    ``report.html``."""
    from main_job.errors import MainJobError
    from main_job.outdir import OUT_MARKER, out_problem, prepare_out

    home = tmp_path / "home"
    home.mkdir()
    (home / "report.html").write_text("the user's own report")
    (home / "notes.txt").write_text("the user's notes")
    with pytest.raises(MainJobError, match="not empty"):
        prepare_out(home)
    assert not (home / OUT_MARKER).exists()
    assert (home / "report.html").read_text() == "the user's own report"
    assert out_problem(home) is not None  # still refused on the next run


# ---------------------------------------------------------------- --model (issue 18)
def test_your_own_resnet18_archive_runs_on_the_device_with_its_4_labels(
    tmp_path: Path, cache: Path, job: MainJob, capsys: pytest.CaptureFixture[str]
) -> None:
    """What ``scripts/main.sh --model model.tar.gz`` ends with (``python -m main_job``): a
    user's traced ResNet-18 with 4 classes (made here) is checked, gets a ``model.onnx``
    exported from its ``model.pth``, is put at the stage's ``model_artifact_uri`` and packaged
    by the stage's own packaging handler, and the device predicts the user's 4 labels, not the
    simulator's ``class-0``.. stand-in. The cache (wheelhouse) is the module's, copied in."""
    from main_job.outdir import prepare_out
    from tests.own_model import LABELS, labels_json, tar_gz, traced_resnet18

    pth = traced_resnet18(tmp_path / "src" / "model.pth")
    archive = tar_gz(
        tmp_path / "resnet18-pets.tar.gz", {"model.pth": pth, "labels.json": labels_json()}
    )
    out = tmp_path / "out"
    prepare_out(out)
    shutil.copytree(cache, out / "cache", ignore=shutil.ignore_patterns("pretrained", "digits*"))
    assert main(["--model", str(archive), "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    results = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert results and all(r.get("error") is None for r in results)
    for result in results:
        assert {t["label"] for t in result["top"]} <= set(LABELS), result["top"]
    seen = {t["label"] for r in results for t in r["top"]}
    assert len(seen) >= 3  # top 3 of 4 labels per photo: the user's names, not class-N
    # the package the device ran: the user's labels and model, named for it
    package = next((out / "device").glob("packages/artifacts-unarchived/*/*/*/labels.json"))
    assert json.loads(package.read_text()) == LABELS
    metadata = json.loads((package.parent / "metadata.json").read_text())
    assert metadata["architecture"] == "resnet18_pets"
    assert metadata["model_id"].startswith("resnet18_pets-")
    with tarfile.open(out / "model" / "model.tar.gz") as uploaded:
        assert sorted(uploaded.getnames()) == ["labels.json", "model.onnx", "model.pth"]
    assert "your model resnet18_pets: checked, packaged and run on the device" in printed
    assert "only Neo can check" in printed
    assert "cdk deploy --all -c architecture=resnet18_pets" in printed
    assert "digits training" not in printed  # a brought model skips training


def test_a_wrong_model_fails_before_the_long_steps_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.own_model import tar_gz

    nested = tar_gz(tmp_path / "model.tar.gz", {"resnet/model.onnx": b"x"})
    assert main(["--model", str(nested), "--out", str(tmp_path / "out"), "--check-args"]) == 2
    assert "under resnet/, not at the archive's root" in _one_line_error(capsys)
    assert main(["--model", str(tmp_path / "absent"), "--check-args"]) == 2
    assert "no such file or folder" in _one_line_error(capsys)
    assert main(["--model-name", "x", "--check-args"]) == 2
    assert "give --model" in _one_line_error(capsys)
    inside = tmp_path / "out2"
    inside.mkdir()
    (inside / "m.tar.gz").write_bytes(b"x")
    assert main(["--model", str(inside / "m.tar.gz"), "--out", str(inside), "--check-args"]) == 2
    assert "--out" in _one_line_error(capsys)


def test_main_sh_passes_model_to_the_job(tmp_path: Path) -> None:
    """``scripts/main.sh --model`` reaches the job's argument check before any long step."""
    import subprocess

    from main_job.paths import ROOT

    result = subprocess.run(
        [str(ROOT / "scripts" / "main.sh"), "--model", "no-such-model.tar.gz"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert f"--model {tmp_path / 'no-such-model.tar.gz'}: no such file" in result.stderr
    assert "cdk synth" not in result.stdout


def _tiny_onnx(folder: Path) -> Path:
    """A small 3-class ONNX classifier at ``folder/model.onnx`` (average pool + linear)."""
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.AdaptiveAvgPool2d(4), torch.nn.Flatten(), torch.nn.Linear(48, 3)
    ).eval()
    folder.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        model,
        (torch.zeros(1, 3, 224, 224),),
        str(folder / "model.onnx"),
        input_names=["input0"],
        output_names=["output0"],
        opset_version=17,
        dynamo=False,
    )
    return folder / "model.onnx"


def test_out_inside_the_model_folder_is_refused_and_a_space_is_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The hostile review: ``--out`` inside ``--model`` packed the job's own output into the
    archive, then deleted it on the next run. A space in ``--out`` failed after 85 s at the
    device's install script ({work:path} unquoted); the recipes quote their paths now."""
    folder = tmp_path / "mf"
    folder.mkdir()
    (folder / "model.onnx").write_bytes(b"x")
    assert main(["--model", str(folder), "--out", str(folder / "out"), "--check-args"]) == 2
    assert "inside --model" in _one_line_error(capsys)
    # the device's install scripts quote their paths now (tests/sim/test_root_with_space.py)
    assert main(["--out", str(tmp_path / "my out"), "--check-args"]) == 0


def test_a_symlinked_model_file_is_archived_as_the_file(tmp_path: Path) -> None:
    """Symlinked weights (DVC, a cache) go into the archive as files: packaging refuses links
    (the review found the job failing at packaging, after synth and deploy)."""
    from main_job.own_model import bring_own

    real = _tiny_onnx(tmp_path / "store")
    folder = tmp_path / "linked"
    folder.mkdir()
    (folder / "model.onnx").symlink_to(real)
    (folder / "labels.json").write_text('["a", "b", "c"]')
    own = bring_own(folder, None, tmp_path / "out" / "model", tmp_path / "scratch")
    with tarfile.open(own.archive) as archive:
        members = {m.name: m for m in archive.getmembers()}
    assert members["model.onnx"].isfile() and members["model.onnx"].size == real.stat().st_size


def test_an_onnx_only_model_is_deployed_to_onnx_classes(tmp_path: Path) -> None:
    """The review: the job printed a deploy command for the default (Neo) stage, which cannot
    compile an archive without model.pth."""
    from main_job.own_model import bring_own

    folder = tmp_path / "onnxonly"
    _tiny_onnx(folder)
    own = bring_own(folder, None, tmp_path / "out" / "model", tmp_path / "scratch")
    assert any("no model.pth" in note for note in own.notes)
    command = own.deploy_command()
    assert '"build": "onnx"' in command and "-c device_classes=" in command


def test_the_report_shows_the_devices_metrics_and_what_it_captured(job: MainJob) -> None:
    """Issue 15 in the main job: the device's metrics window (kept on the device: the run is
    shorter than a window) counts the photos, and every photo whose top-1 confidence is below
    the recipe's CaptureBelowConfidence (0.5) reached the simulated S3 with its reason."""
    assert job.fleet is not None
    classified = [r for r in job.results if r.top]
    assert sum(int(w["processed"]) for w in job.fleet.windows) == len(classified)
    low = {r.photo for r in classified if float(r.top[0]["score"]) < 0.5}
    captured = {c.photo: c for c in job.fleet.captured}
    assert set(captured) == low
    for photo in low:
        item = captured[photo]
        assert item.reason == "low-confidence" and item.path.is_file()
        assert item.key.startswith("s3://") and "/captures/dev/" in item.key
        assert item.path.read_bytes() == (job.out / "photos" / photo).read_bytes()
    assert job.fleet.refused == []
    page = job.report_html.read_text(encoding="utf-8")
    assert "Device metrics" in page and "Captured for retraining" in page
    assert page.count('class="card"') == len(job.results) + len(low)


def test_the_int8_model_runs_beside_fp32_and_the_report_compares_them(job: MainJob) -> None:
    """Issue 16: an int8 model (the training job's quantization code) beside the FP32 one,
    both run by the inference component over the photos: sizes, latency, top-1 agreement."""
    view = job.int8
    assert view is not None and view.problem is None, view and view.problem
    fp32, int8 = view.runs
    photos = {r.photo for r in job.results if r.error is None and r.skipped is None}
    assert set(fp32.top1) == set(int8.top1) == photos
    # ORT's quantization guide: int8 weights make the model about 4x smaller
    assert 3.0 < fp32.size_bytes / int8.size_bytes < 4.5
    same, both = view.agreement
    assert both == len(photos) and same >= both - 1  # ImageNet weights keep their top-1
    assert all(ms > 0 for ms in fp32.inference_ms + int8.inference_ms)
    assert len(fp32.inference_ms) == 2 * len(photos)  # two alternated runs of each
    assert view.calibration_images == 32
    html = job.report_html.read_text()
    assert "int8 beside FP32" in html and f"{same} of {both} photos" in html
