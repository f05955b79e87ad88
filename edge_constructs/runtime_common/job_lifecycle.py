"""The lifecycle of a SageMaker job behind a custom resource, written once for every job kind.

The rules (README, "Lifecycle rules shared by the job resources"):

* Create, and a retried Create: start the job unless one of that name exists (names derive
  from the inputs, so the existing one is the same work); never start a second one.
* Update with a new name (changed inputs): start the new job; CloudFormation then deletes the
  old physical resource, which stops the old job if it still runs.
* Update with the same name: start nothing, unless the job no longer exists (deleted outside
  the stack): then start it again, so the update does not wait for a model that never comes.
* Delete: stop the job if it runs; never delete the job record or its artifacts; safe twice;
  a physical ID that is no job name (a failed create) is a no-op.

Standard library and botocore only; shipped into every handler's asset root (see
``PythonFunction``) and imported there as the top-level module ``job_lifecycle``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Dict, FrozenSet, Mapping, Optional, Tuple

from botocore.exceptions import ClientError
from cr_properties import is_job_name
from sagemaker_calls import describe_or_none

LOGGER = logging.getLogger(__name__)

Description = Dict[str, Any]


@dataclass(frozen=True)
class JobKind:
    """How to manage one kind of SageMaker job.

    noun: ``Training`` or ``Compilation`` (the API's ``<noun>Job`` operations).
    running: statuses in which Stop<noun>Job applies.
    """

    noun: str
    running: FrozenSet[str]

    @property
    def status_key(self) -> str:
        return f"{self.noun}JobStatus"

    def _call(self, client: Any, verb: str, name: str, **kwargs: Any) -> Any:
        operation = getattr(client, f"{verb}_{self.noun.lower()}_job")
        return operation(**{f"{self.noun}JobName": name}, **kwargs)

    def describe(self, client: Any, name: str) -> Optional[Description]:
        """Describe<noun>Job, or None when the job does not exist."""
        found: Optional[Description] = describe_or_none(
            lambda: self._call(client, "describe", name)
        )
        return found

    def ensure(
        self, client: Any, name: str, request: Callable[[], Mapping[str, Any]]
    ) -> Tuple[Description, bool]:
        """Start the job unless one named ``name`` exists: (description, started now)."""
        existing = self.describe(client, name)
        if existing is not None:
            LOGGER.info(
                "%s job %s already exists (%s): not starting another",
                self.noun,
                name,
                existing.get(self.status_key),
            )
            return existing, False
        create = getattr(client, f"create_{self.noun.lower()}_job")
        try:
            created = create(**request())
        except ClientError as error:
            # A concurrent retry created it between our describe and create.
            if error.response.get("Error", {}).get("Code") != "ResourceInUse":
                raise
            LOGGER.info("%s job %s was created concurrently", self.noun, name)
            again = self.describe(client, name)
            return (again or {}), False
        LOGGER.info("Started %s job %s", self.noun.lower(), name)
        # No Describe right after Create: a read just after a write is where eventual
        # consistency bites. The Create answer (the ARN) is enough.
        answer: Description = dict(created or {})
        answer.setdefault(self.status_key, "")
        return answer, True

    def update(
        self,
        client: Any,
        name: str,
        old_name: Optional[str],
        request: Callable[[], Mapping[str, Any]],
    ) -> Tuple[Description, bool]:
        """Apply the Update rules above: (description, started now)."""
        if old_name != name:
            LOGGER.info("JobName changed from %s to %s: replacing the job", old_name, name)
            return self.ensure(client, name, request)
        description = self.describe(client, name)
        if description is None:
            LOGGER.warning("%s job %s no longer exists: starting it again", self.noun, name)
            return self.ensure(client, name, request)
        LOGGER.info("%s job %s inputs unchanged: starting nothing", self.noun, name)
        return description, False

    def delete(self, client: Any, physical_id: Optional[str]) -> Dict[str, Any]:
        """Stop the job if it runs. Never deletes the job record or its artifacts. Safe twice."""
        if not is_job_name(physical_id):
            LOGGER.info(
                "Physical ID is not a %s job name (failed create?): nothing to do", self.noun
            )
            return {"PhysicalResourceId": physical_id}
        name = str(physical_id)
        description = self.describe(client, name)
        if description is None:
            LOGGER.info("%s job %s not found: nothing to stop", self.noun, name)
        elif description.get(self.status_key) in self.running:
            try:
                self._call(client, "stop", name)
            except ClientError:
                again = self.describe(client, name)
                if again is not None and again.get(self.status_key) in self.running:
                    raise
                LOGGER.info("%s job %s ended while being stopped", self.noun, name)
            else:
                LOGGER.info("Stopping %s job %s", self.noun.lower(), name)
        else:
            LOGGER.info(
                "%s job %s is %s: nothing to stop (artifacts and job record are kept)",
                self.noun,
                name,
                description.get(self.status_key),
            )
        return {"PhysicalResourceId": name}
