"""Run the pipeline's own code end to end on this machine, with no AWS account.

    .venv/bin/python scripts/local_pipeline.py [--workdir build/local-pipeline] [--epochs 5]

1. Train: ``training_src/train.py`` fine-tunes a small torchvision net on scikit-learn's bundled
   digits (rendered as an image folder), exactly as SageMaker would run it (SM_* variables), and
   exports the traced ``model.pth`` + ``labels.json`` (Neo's input) and an ONNX copy.
2. Compile: Neo cannot run offline, so a Neo-layout stand-in (a small network compiled here
   against the TVM 0.8 runtime ABI, tests/support/neo_model.py) takes the compiled model's place.
3. Package: the packaging custom resource's own code builds the Greengrass model package from
   that "Neo output" and the training archive, in an S3 bucket emulated by moto.
4. Run on the "device": the inference component (component_src) classifies held-out images,
   once with DLR on the package, once with ONNX Runtime on the trained model, and prints
   predictions and accuracy.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# The packaging Lambda's asset root: its own runtime folder plus runtime_common (cr_properties).
sys.path.insert(0, str(ROOT / "edge_constructs" / "runtime_common"))
sys.path.insert(0, str(ROOT / "edge_constructs" / "model_packaging" / "runtime"))

from tests.support.digits import write_digits  # noqa: E402
from tests.support.neo_model import build_tiny_classifier  # noqa: E402

# Small and fast on a CPU (a few seconds an epoch); the cloud default is vgg16.
ARCH = "shufflenet_v2_x0_5"
SIZE = 32


def step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def tar_gz(folder: Path, target: Path) -> Path:
    with tarfile.open(target, "w:gz") as tar:
        for path in sorted(folder.iterdir()):
            tar.add(path, arcname=path.name)
    return target


def train(workdir: Path, epochs: int) -> tuple[Path, Path, Path]:
    step(f"1. train {ARCH} on scikit-learn digits with training_src/train.py")
    data = write_digits(workdir / "data", size=SIZE)
    model_dir, output_dir = workdir / "model", workdir / "output"
    for folder in (model_dir, output_dir):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    env = {
        **os.environ,
        "SM_MODEL_DIR": str(model_dir),
        "SM_CHANNEL_TRAIN": str(data.train),
        "SM_CHANNEL_VALIDATION": str(data.validation),
        "SM_OUTPUT_DATA_DIR": str(output_dir),
    }
    command = [
        sys.executable,
        str(ROOT / "training_src" / "train.py"),
        "--arch",
        ARCH,
        "--epochs",
        str(epochs),
        "--batch-size",
        "64",
        "--lr",
        "0.04",
        "--lr-schedule",
        "cosine",
        "--pretrained",
        "false",
        "--input-shape",
        f"1,3,{SIZE},{SIZE}",
        "--resize-shorter",
        str(SIZE),
        "--export-onnx",
        "true",
        "--checkpoint-dir",
        str(workdir / "checkpoints"),
    ]
    subprocess.run(command, env=env, check=True, cwd=ROOT / "training_src")
    print(f"model dir (Neo's input): {sorted(p.name for p in model_dir.iterdir())}")
    return model_dir, output_dir, data.heldout


def package(workdir: Path, model_dir: Path) -> Path:
    step("2-3. Neo-layout stand-in, then the packaging custom resource's code (moto S3)")
    import boto3
    import packaging_logic
    from moto import mock_aws

    neo_dir = workdir / "neo-output"
    shutil.rmtree(neo_dir, ignore_errors=True)
    build_tiny_classifier(neo_dir, input_shape=(1, 3, SIZE, SIZE))
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="artifacts")
        s3.upload_file(
            str(tar_gz(neo_dir, workdir / "compiled.tar.gz")), "artifacts", "compiled/model.tar.gz"
        )
        s3.upload_file(
            str(tar_gz(model_dir, workdir / "model.tar.gz")), "artifacts", "training/model.tar.gz"
        )
        props = {
            "Bucket": "artifacts",
            "KeyPrefix": "packages/",
            "ModelName": ARCH,
            "CompiledArtifactUri": "s3://artifacts/compiled/model.tar.gz",
            "TrainingArtifactUri": "s3://artifacts/training/model.tar.gz",
            "Metadata": json.dumps(
                {"input_shape": [1, 3, SIZE, SIZE], "resize_shorter": SIZE, "input_name": "input0"}
            ),
        }
        scratch = workdir / "packaging-tmp"
        scratch.mkdir(exist_ok=True)
        data = packaging_logic.make_package(s3, props, scratch)["Data"]
        print(f"package: {data['ArtifactUri']}")
        payload = s3.get_object(Bucket="artifacts", Key=data["Key"])["Body"].read()
    device_dir = workdir / "device" / data["ArchiveName"]
    shutil.rmtree(device_dir, ignore_errors=True)
    with zipfile.ZipFile(io.BytesIO(payload)) as archive:
        archive.extractall(device_dir)  # noqa: S202 (our own package; as Unarchive: ZIP)
    print(f"unzipped on the device: {sorted(p.name for p in device_dir.iterdir())}")
    return device_dir


def classify(model_dir: Path, images: list[Path], runtime: str, inbox: Path) -> list[dict]:
    shutil.rmtree(inbox.parent, ignore_errors=True)
    inbox.mkdir(parents=True)
    for image in images:
        shutil.copy(image, inbox / f"{image.parent.name}__{image.name}")
    command = [
        sys.executable,
        "-m",
        "edge_inference",
        "--model-dir",
        str(model_dir),
        "--input-dir",
        str(inbox),
        "--runtime",
        runtime,
        "--once",
        "--top-k",
        "3",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "component_src")}
    result = subprocess.run(
        command, env=env, check=True, capture_output=True, text=True, cwd=inbox.parent
    )
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def report(results: list[dict], title: str, *, accuracy: bool) -> None:
    ok = [r for r in results if "top" in r]
    latency = np.median([r.get("latency_ms", 0.0) for r in ok]) if ok else float("nan")
    line = f"{title}: {len(ok)} classified, {len(results) - len(ok)} failed"
    if accuracy:
        correct = sum(r["input"].split("__")[0] == r["top"][0]["label"] for r in ok)
        line += f", top-1 accuracy {correct / max(len(ok), 1):.3f}"
    print(f"{line}, median latency {latency:.2f} ms")
    for result in results[:3]:
        print("  " + json.dumps(result)[:200])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=ROOT / "build" / "local-pipeline")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--images", type=int, default=200, help="held-out images to classify")
    args = parser.parse_args()
    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)

    model_dir, onnx_dir, heldout = train(workdir, args.epochs)
    device_dir = package(workdir, model_dir)
    every = sorted(heldout.rglob("*.png"))
    images = every[:: max(1, len(every) // args.images)]

    step("4. inference component on the device")
    report(
        classify(device_dir, images[:20], "dlr", workdir / "run-dlr" / "input"),
        "DLR (libdlr.so) on the packaged Neo-layout stand-in (random weights)",
        accuracy=False,
    )
    report(
        classify(onnx_dir, images, "onnx", workdir / "run-onnx" / "input"),
        f"ONNX Runtime on the trained {ARCH}",
        accuracy=True,
    )


if __name__ == "__main__":
    main()
