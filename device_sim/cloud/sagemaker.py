"""Amazon SageMaker in the simulated account: training and compilation jobs, with stand-ins.

botocore's SageMaker model (``botocore/data/sagemaker/2017-07-24/service-2.json``):
``CreateTrainingJob``/``CreateCompilationJob`` -> ``ResourceInUse`` ("Resource being accessed is
in use") for a name that exists (a job name is unique per account and region, whatever its
status); ``Describe*`` of a missing job -> ``ValidationException`` ("Requested resource not
found", what ``sagemaker_calls.is_not_found`` reads); ``Stop*`` of a job that is not running ->
``ValidationException``.

SageMaker cannot run here. A created training job "runs" at once: the stand-in writes what the
handlers say SageMaker writes (``<OutputS3Uri>/<job>/output/model.tar.gz`` with ``labels.json``,
and ``output/output.tar.gz``, the output data folder: ``metadata.json`` with a stand-in drift
baseline, and ``model.onnx`` when there is an ONNX model: "How Amazon SageMaker Processes Training
Output", https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-training-algo-output.html),
marks the job Completed and emits the "SageMaker Training Job State Change" event (EventBridge).
A compilation job writes Neo's output (``model-<target>.tar.gz``) and is COMPLETED.

Checkpoints: "SageMaker ... copies checkpoint data from the S3 location [CheckpointS3Uri] to the
local path" when a job starts ("Use checkpoints in Amazon SageMaker",
https://docs.aws.amazon.com/sagemaker/latest/dg/model-checkpoints.html), so a new job whose
checkpoint prefix another job used resumes from that job's state: the stand-in refuses it
(``SharedCheckpointPrefix``), which AWS would not — it is a defect of the stack, not a refusal.
"""

from __future__ import annotations

import copy
import io
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from device_sim.cloud.env import Env
from device_sim.cloud.errors import AssemblyError, ServiceError
from device_sim.cloud.s3 import S3Backend
from device_sim.cloud.standins import (
    StandIns,
    int8_archive,
    onnx_archive,
    output_archive,
    stand_in_baseline,
    tar_folder,
    training_archive,
)


class SharedCheckpointPrefix(AssemblyError):
    """Two training jobs share a checkpoint prefix: the second resumes from the first's state."""


@dataclass
class Job:
    name: str
    kind: str  # "Training" | "Compilation"
    request: dict[str, Any]
    status: str
    arn: str
    artifact_uri: str = ""
    failure_reason: str = ""


def _split(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise AssemblyError(f"not an s3://bucket/key URI: {uri!r}")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def _overlaps(a: str, b: str) -> bool:
    a, b = a.rstrip("/") + "/", b.rstrip("/") + "/"
    return a.startswith(b) or b.startswith(a)


class SageMakerBackend:
    def __init__(self, env: Env, s3: S3Backend) -> None:
        self.env = env
        self.s3 = s3
        self.jobs: dict[tuple[str, str], Job] = {}  # (kind, name)
        self.stand_ins: StandIns | None = None
        self.notes: list[str] = []
        # EventBridge: called with (source, detail-type, detail) when a job changes state.
        self.emit: Callable[[str, str, dict[str, Any]], None] = lambda *_: None
        self.fail_next_training: str | None = None  # a FailureReason for the next job

    # -- training
    def create_training_job(self, request: dict[str, Any]) -> Job:
        name = request["TrainingJobName"]
        if ("Training", name) in self.jobs:
            raise ServiceError(
                "CreateTrainingJob",
                "ResourceInUse",
                "Training job names must be unique within an AWS account and region, and a "
                f"training job with this name already exists: {name}",
            )
        checkpoint = request.get("CheckpointConfig", {}).get("S3Uri", "")
        if checkpoint:
            for other in self.jobs.values():
                theirs = other.request.get("CheckpointConfig", {}).get("S3Uri", "")
                if theirs and _overlaps(theirs, checkpoint):
                    raise SharedCheckpointPrefix(
                        f"training job {name} would start from training job {other.name}'s "
                        f"checkpoints: CheckpointS3Uri {checkpoint} overlaps {theirs} (SageMaker "
                        "copies what is under CheckpointS3Uri into a job before it starts)"
                    )
        job = Job(
            name,
            "Training",
            copy.deepcopy(request),
            "InProgress",
            self.env.arn("sagemaker", f"training-job/{name}"),
        )
        self.jobs[("Training", name)] = job
        self._run_training(job)
        return job

    def _run_training(self, job: Job) -> None:
        """The stand-in: the job completes (or fails, when told to) and the event is emitted."""
        output = job.request["OutputDataConfig"]["S3OutputPath"].rstrip("/")
        job.artifact_uri = f"{output}/{job.name}/output/model.tar.gz"
        if self.fail_next_training is not None:
            job.status, job.failure_reason = "Failed", self.fail_next_training
            self.fail_next_training = None
        else:
            stand_ins = self._stand_ins()
            bucket, key = _split(job.artifact_uri)
            self.s3.put(bucket, key, training_archive(stand_ins.labels))
            self.notes.append(f"SageMaker training stand-in wrote {job.artifact_uri}")
            # SageMaker uploads the output data folder as output/output.tar.gz; train.py writes
            # metadata.json there (with the drift baseline) and model.onnx when it exports one.
            uri = job.artifact_uri.rsplit("/", 1)[0] + "/output.tar.gz"
            bucket, key = _split(uri)
            baseline = stand_in_baseline()
            if stand_ins.onnx_model is not None:
                hyper = job.request.get("HyperParameters") or {}
                if hyper.get("quantize") == "int8":
                    data, record = int8_archive(
                        stand_ins.onnx_model,
                        stand_ins.labels,
                        str(hyper.get("int8-format", "s8s8")),
                        str(hyper.get("max-int8-top1-drop", "1")),
                        stand_ins.model_dir.parent / "int8",
                        baseline,
                    )
                    self.notes.append(
                        "SageMaker training stand-in quantized model.onnx to int8 with the "
                        f"training code (ONNX Runtime, {record['int8_format']}): "
                        f"{record['size_bytes']} bytes vs {record['fp32_size_bytes']}, top-1 "
                        f"agreement {record['top1_agreement']}% on stand-in tensors (the job's "
                        "gate runs on held-out images)"
                    )
                else:
                    data = onnx_archive(stand_ins.onnx_model, stand_ins.labels, baseline)
            else:
                data = output_archive(stand_ins.labels, baseline)
            self.s3.put(bucket, key, data)
            self.notes.append(
                f"SageMaker training stand-in wrote {uri} (its drift baseline is a stand-in: "
                "the same share in each confidence bucket; a job measures its validation set)"
            )
            job.status = "Completed"
        detail = {
            "TrainingJobName": job.name,
            "TrainingJobArn": job.arn,
            "TrainingJobStatus": job.status,
            "ModelArtifacts": {"S3ModelArtifacts": job.artifact_uri},
        }
        if job.failure_reason:
            detail["FailureReason"] = job.failure_reason
        self.emit("aws.sagemaker", "SageMaker Training Job State Change", detail)

    def _stand_ins(self) -> StandIns:
        if self.stand_ins is None:
            raise AssemblyError("the SageMaker stand-in has no model (give StandIns)")
        return self.stand_ins

    # -- compilation
    def create_compilation_job(self, request: dict[str, Any]) -> Job:
        name = request["CompilationJobName"]
        if ("Compilation", name) in self.jobs:
            raise ServiceError(
                "CreateCompilationJob", "ResourceInUse", f"Compilation job {name} already exists"
            )
        output = request["OutputConfig"]
        platform = output.get("TargetPlatform", {})
        target = output.get("TargetDevice") or "_".join(
            str(v) for v in (platform.get("Os"), platform.get("Arch")) if v
        )
        # Neo names its output after the input archive and the target.
        uri = f"{output['S3OutputLocation'].rstrip('/')}/model-{target}.tar.gz"
        job = Job(
            name,
            "Compilation",
            copy.deepcopy(request),
            "COMPLETED",
            self.env.arn("sagemaker", f"compilation-job/{name}"),
            artifact_uri=uri,
        )
        missing = _no_pytorch_model(self.s3, request.get("InputConfig", {}))
        if missing:
            job.status, job.failure_reason, job.artifact_uri = "FAILED", missing, ""
            self.notes.append(f"SageMaker Neo stand-in failed {name}: {missing}")
        else:
            bucket, key = _split(uri)
            self.s3.put(bucket, key, tar_folder(self._stand_ins().model_dir))
            self.notes.append(f"SageMaker Neo stand-in wrote {uri}")
        self.jobs[("Compilation", name)] = job
        return job

    # -- reads
    def describe(self, kind: str, name: str) -> dict[str, Any]:
        job = self.jobs.get((kind, name))
        if job is None:
            raise ServiceError(
                f"Describe{kind}Job", "ValidationException", "Requested resource not found."
            )
        answer = {
            f"{kind}JobName": job.name,
            f"{kind}JobArn": job.arn,
            f"{kind}JobStatus": job.status,
            "ModelArtifacts": {"S3ModelArtifacts": job.artifact_uri},
        }
        if job.failure_reason:
            answer["FailureReason"] = job.failure_reason
        return answer

    def stop(self, kind: str, name: str) -> None:
        job = self.jobs.get((kind, name))
        running = {"Training": {"InProgress"}, "Compilation": {"INPROGRESS", "STARTING"}}[kind]
        if job is None or job.status not in running:
            raise ServiceError(
                f"Stop{kind}Job", "ValidationException", f"The job {name} is not running"
            )
        job.status = "Stopped" if kind == "Training" else "STOPPED"

    def client(self) -> SageMakerClient:
        return SageMakerClient(self)


class SageMakerClient:
    """The boto3 ``sagemaker`` client calls the job handlers make (``job_lifecycle.JobKind``)."""

    def __init__(self, backend: SageMakerBackend) -> None:
        self.backend = backend

    def create_training_job(self, **request: Any) -> dict[str, Any]:
        return {"TrainingJobArn": self.backend.create_training_job(request).arn}

    def describe_training_job(self, *, TrainingJobName: str) -> dict[str, Any]:
        return self.backend.describe("Training", TrainingJobName)

    def stop_training_job(self, *, TrainingJobName: str) -> dict[str, Any]:
        self.backend.stop("Training", TrainingJobName)
        return {}

    def create_compilation_job(self, **request: Any) -> dict[str, Any]:
        return {"CompilationJobArn": self.backend.create_compilation_job(request).arn}

    def describe_compilation_job(self, *, CompilationJobName: str) -> dict[str, Any]:
        return self.backend.describe("Compilation", CompilationJobName)

    def stop_compilation_job(self, *, CompilationJobName: str) -> dict[str, Any]:
        self.backend.stop("Compilation", CompilationJobName)
        return {}


def _no_pytorch_model(s3: Any, input_config: dict[str, Any]) -> str:
    """Why Neo cannot compile the archive at ``InputConfig.S3Uri``, "" when it can, as far as
    the stand-in can tell: a PyTorch model is a ``.pt``/``.pth`` file in the ``.tar.gz``
    ("Saving Models for SageMaker Neo", PyTorch: "save ... as model.pth ... compress it",
    https://docs.aws.amazon.com/sagemaker/latest/dg/neo-compilation-preparing-model.html).
    A brought archive without one (an ONNX-only model) fails the job, as Neo would; the
    stand-in does not guess Neo's exact message."""
    uri = str(input_config.get("S3Uri", ""))
    if input_config.get("Framework") != "PYTORCH" or not uri.startswith("s3://"):
        return ""
    bucket, key = _split(uri)
    data = s3.get(bucket, key)
    if data is None:
        return f"ClientError: {uri} does not exist"
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
            names = [m.name.lstrip("./") for m in archive.getmembers() if m.isfile()]
    except (tarfile.TarError, EOFError) as error:
        return f"ClientError: {uri} is not a readable tar.gz ({error})"
    if any(n.endswith((".pth", ".pt")) and "/" not in n for n in names):
        return ""
    return (
        f"ClientError: {uri} holds no .pth or .pt model at its root (files: "
        f"{', '.join(sorted(names)[:10]) or 'none'}): Neo compiles a traced PyTorch model"
    )
