"""The one job lifecycle (runtime_common/job_lifecycle.py), driven through both handlers.

Training and compilation run the same rules; this file runs each rule against both with one
in-memory SageMaker that can lose a job, as a job deleted outside the stack would be.
"""

from __future__ import annotations

from typing import Any, Callable

import compilation_logic
import job_lifecycle
import pytest
import training_logic
from botocore.exceptions import ClientError

from . import test_compilation_job as compilation_case
from . import test_training_job as training_case


class MemorySageMaker:
    """Describe/Create/Stop for both job kinds; Describe of a missing job answers as SageMaker
    does (ValidationException "... not found")."""

    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.created: list[str] = []
        self.stopped: list[str] = []

    def _describe(self, noun: str, name: str) -> dict[str, Any]:
        if name not in self.jobs:
            raise ClientError(
                {"Error": {"Code": "ValidationException", "Message": f"Job {name} not found"}},
                f"Describe{noun}Job",
            )
        return dict(self.jobs[name])

    def _create(self, noun: str, status: str, request: dict[str, Any]) -> dict[str, Any]:
        name = request[f"{noun}JobName"]
        if name in self.jobs:
            raise ClientError({"Error": {"Code": "ResourceInUse", "Message": "exists"}}, "Create")
        self.created.append(name)
        self.jobs[name] = {f"{noun}JobName": name, f"{noun}JobStatus": status}
        return {f"{noun}JobArn": f"arn:aws:sagemaker:eu-west-1:1:job/{name}"}

    def describe_training_job(self, TrainingJobName: str) -> dict[str, Any]:
        return self._describe("Training", TrainingJobName)

    def create_training_job(self, **request: Any) -> dict[str, Any]:
        return self._create("Training", "InProgress", request)

    def stop_training_job(self, TrainingJobName: str) -> None:
        self.stopped.append(TrainingJobName)

    def describe_compilation_job(self, CompilationJobName: str) -> dict[str, Any]:
        return self._describe("Compilation", CompilationJobName)

    def create_compilation_job(self, **request: Any) -> dict[str, Any]:
        return self._create("Compilation", "INPROGRESS", request)

    def stop_compilation_job(self, CompilationJobName: str) -> None:
        self.stopped.append(CompilationJobName)


def _training(event: dict[str, Any], client: Any) -> dict[str, Any]:
    return training_logic.on_event(event, client, lambda *args: None)


KINDS: dict[str, tuple[Callable[..., dict[str, Any]], Any, Any]] = {
    "training": (_training, training_case.props, training_case.event),
    "compilation": (compilation_logic.on_event, compilation_case.props, compilation_case.event),
}


@pytest.fixture(params=sorted(KINDS))
def kind(request: pytest.FixtureRequest) -> tuple[Callable[..., dict[str, Any]], Any, Any]:
    return KINDS[request.param]


def test_an_update_whose_job_was_deleted_outside_the_stack_starts_it_again(kind) -> None:
    on_event, props, event = kind
    client = MemorySageMaker()
    properties = props()
    on_event(event("Create", properties), client)
    client.jobs.clear()  # deleted outside the stack
    on_event(event("Update", properties, OldResourceProperties=properties), client)
    name = properties["JobName"]
    assert client.created == [name, name]


def test_an_update_with_unchanged_inputs_starts_nothing(kind) -> None:
    on_event, props, event = kind
    client = MemorySageMaker()
    properties = props()
    on_event(event("Create", properties), client)
    on_event(event("Update", properties, OldResourceProperties=properties), client)
    assert client.created == [properties["JobName"]]


def test_a_retried_create_and_a_changed_name(kind) -> None:
    on_event, props, event = kind
    client = MemorySageMaker()
    old, new = props(), props(JobName="edge-ai-dev-x-0123456789ab")
    on_event(event("Create", old), client)
    on_event(event("Create", old), client)  # retried: finds it
    on_event(event("Update", new, OldResourceProperties=old), client)
    assert client.created == [old["JobName"], new["JobName"]]


def test_delete_stops_a_running_job_once_and_is_safe_twice(kind) -> None:
    on_event, props, event = kind
    client = MemorySageMaker()
    properties = props()
    name = properties["JobName"]
    on_event(event("Create", properties), client)
    on_event(event("Delete", properties, PhysicalResourceId=name), client)
    client.jobs.clear()
    on_event(event("Delete", properties, PhysicalResourceId=name), client)
    on_event(event("Delete", properties, PhysicalResourceId="not a job name!"), client)
    assert client.stopped == [name]


def test_both_handlers_use_the_one_lifecycle() -> None:
    assert isinstance(training_logic.JOB, job_lifecycle.JobKind)
    assert isinstance(compilation_logic.JOB, job_lifecycle.JobKind)
