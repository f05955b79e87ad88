"""A wrapper around a moto SageMaker client that fills moto 5.2.5's gaps, honestly.

What moto does and does not do (read from moto/sagemaker/models.py and checked by
``test_moto_gaps_are_still_there`` so that a moto upgrade that closes a gap is noticed):

* every training job is created already ``Completed``, every compilation job ``COMPLETED``:
  there is no way to have a running or failed job, so ``set_training_status`` /
  ``set_compilation_status`` override the status (and FailureReason) that Describe returns;
* ``StopTrainingJob`` and ``StopCompilationJob`` raise NotImplementedError: the wrapper
  implements them as SageMaker does (a running job goes to Stopping/STOPPING; stopping a job
  that is not running is a ValidationException) and records each call;
* ``CreateTrainingJob`` with an existing name silently replaces the job (SageMaker answers
  ResourceInUse): the wrapper answers ResourceInUse, so a handler that started a second job
  fails the test instead of hiding it. Every create call is counted.

Everything else (requests, parameter validation, not-found errors, ARNs, model artifacts)
comes from moto.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Optional

from botocore.exceptions import ClientError


def _client_error(code: str, message: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


class SageMakerFake:
    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: Counter[str] = Counter()
        self.stopped: list[str] = []
        self._training: dict[str, tuple[str, Optional[str]]] = {}
        self._compilation: dict[str, tuple[str, Optional[str]]] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    # ------------------------------------------------------------------ training
    def set_training_status(self, name: str, status: str, reason: Optional[str] = None) -> None:
        self._training[name] = (status, reason)

    def create_training_job(self, **request: Any) -> Any:
        self.calls["create_training_job"] += 1
        name = request["TrainingJobName"]
        if name in self.training_job_names():
            raise _client_error(
                "ResourceInUse",
                f"Training job names must be unique within an AWS account and region, "
                f"and a training job with this name already exists ({name})",
                "CreateTrainingJob",
            )
        return self._client.create_training_job(**request)

    def describe_training_job(self, **kwargs: Any) -> Any:
        self.calls["describe_training_job"] += 1
        description = self._client.describe_training_job(**kwargs)
        override = self._training.get(kwargs["TrainingJobName"])
        if override is not None:
            description["TrainingJobStatus"], reason = override
            description.pop("FailureReason", None)
            if reason is not None:
                description["FailureReason"] = reason
        return description

    def stop_training_job(self, TrainingJobName: str) -> dict[str, Any]:
        self.calls["stop_training_job"] += 1
        status = self.describe_training_job(TrainingJobName=TrainingJobName)["TrainingJobStatus"]
        if status != "InProgress":
            raise _client_error(
                "ValidationException",
                f"The request was rejected because the training job is in status {status}.",
                "StopTrainingJob",
            )
        self._training[TrainingJobName] = ("Stopping", None)
        self.stopped.append(TrainingJobName)
        return {}

    def training_job_names(self) -> list[str]:
        jobs = self._client.list_training_jobs(MaxResults=100)["TrainingJobSummaries"]
        return [job["TrainingJobName"] for job in jobs]

    # ------------------------------------------------------------------ compilation
    def set_compilation_status(self, name: str, status: str, reason: Optional[str] = None) -> None:
        self._compilation[name] = (status, reason)

    def create_compilation_job(self, **request: Any) -> Any:
        self.calls["create_compilation_job"] += 1
        return self._client.create_compilation_job(**request)

    def describe_compilation_job(self, **kwargs: Any) -> Any:
        self.calls["describe_compilation_job"] += 1
        description = self._client.describe_compilation_job(**kwargs)
        override = self._compilation.get(kwargs["CompilationJobName"])
        if override is not None:
            description["CompilationJobStatus"], reason = override
            description["FailureReason"] = reason or ""
        return description

    def stop_compilation_job(self, CompilationJobName: str) -> dict[str, Any]:
        self.calls["stop_compilation_job"] += 1
        status = self.describe_compilation_job(CompilationJobName=CompilationJobName)[
            "CompilationJobStatus"
        ]
        if status not in ("INPROGRESS", "STARTING"):
            raise _client_error(
                "ValidationException",
                f"Compilation job {CompilationJobName} is {status} and cannot be stopped",
                "StopCompilationJob",
            )
        self._compilation[CompilationJobName] = ("STOPPING", None)
        self.stopped.append(CompilationJobName)
        return {}

    def compilation_job_names(self) -> list[str]:
        jobs = self._client.list_compilation_jobs(MaxResults=100)["CompilationJobSummaries"]
        return [job["CompilationJobName"] for job in jobs]
