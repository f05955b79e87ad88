"""Custom::GreengrassComponentVersion logic: create a component version, or adopt the one that
exists with the same recipe. The greengrassv2 client and the sleep between status polls are
passed in, never created here.

Why not ``AWS::GreengrassV2::ComponentVersion``: its ``InlineRecipe`` is create-only (the
type's registry schema, ``createOnlyProperties``, as cfn-lint ships it), so a recipe change
replaces it, and this project's versions are digests of their recipes
(``naming.content_version``). A version that exists already (kept by an earlier replacement for
rollback and promoted releases, kept by a rolled-back update, or left by a deleted stack) makes
CreateComponentVersion answer ``ConflictException`` (botocore greengrassv2
``CreateComponentVersion`` errors). Reverting a change (A -> B -> A) or retrying an update after
its rollback then fails. Because a version is a digest of its whole recipe, an existing
``name@version`` made by this project has that recipe by construction: this handler checks
that it does (GetComponent returns "the recipe for a version of a component", botocore) and
adopts it; a different recipe under the same version is refused, naming the version.

Delete leaves the version: devices and promoted releases may still use it, and deleting a
version makes "deployments that refer to this component version ... fail" (botocore
greengrassv2 ``DeleteComponent``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import ClientError
from cr_names import GreengrassComponentVersion as Names

LOGGER = logging.getLogger(__name__)

# botocore greengrassv2 CloudComponentState: REQUESTED | INITIATED | DEPLOYABLE | FAILED |
# DEPRECATED. CreateComponentVersion and DescribeComponent both return ``status``; the native
# resource's create handler calls DescribeComponent after CreateComponentVersion (registry
# schema handlers.create.permissions), as this does until the version is DEPLOYABLE.
DEPLOYABLE = "DEPLOYABLE"
PENDING = frozenset({"REQUESTED", "INITIATED"})
#: Seconds between DescribeComponent polls, and how many: 90 s in all, inside the handler
#: Lambda's two-minute timeout (edge_constructs/greengrass/construct.py).
POLL_SECONDS = 5.0
POLLS = 18
# Keys CloudFormation or the CDK Provider framework add that are not properties.
NOT_PROPERTIES = frozenset({"ServiceToken", "ServiceTimeout"})
# Artifact keys the service adds at creation: "AWS IoT Greengrass calculates the digest" of each
# artifact when the component is created (developer guide, "Component recipe reference",
# Artifacts: Digest, Algorithm), so a recipe read back carries them and ours does not.
SERVICE_ADDED = frozenset({"digest", "algorithm"})


class ComponentVersionError(ValueError):
    """The version cannot be created or adopted; CloudFormation shows the message."""


def recipe_of(props: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The recipe text and its parsed form, which must name the component and its version."""
    unknown = sorted(set(props) - {Names.INLINE_RECIPE} - NOT_PROPERTIES)
    if unknown:
        raise ComponentVersionError(
            f"unknown properties {', '.join(unknown)} (known: {Names.INLINE_RECIPE})"
        )
    text = props.get(Names.INLINE_RECIPE)
    if not isinstance(text, str) or not text.strip():
        raise ComponentVersionError(f"{Names.INLINE_RECIPE} must be a JSON recipe, got {text!r}")
    try:
        recipe = json.loads(text)
    except json.JSONDecodeError as error:
        raise ComponentVersionError(f"{Names.INLINE_RECIPE} is not valid JSON: {error}") from None
    if not isinstance(recipe, dict):
        raise ComponentVersionError(f"{Names.INLINE_RECIPE} must be a JSON object")
    for key in ("ComponentName", "ComponentVersion"):
        if not isinstance(recipe.get(key), str) or not recipe[key]:
            raise ComponentVersionError(f"{Names.INLINE_RECIPE} has no {key}")
    return text, recipe


def version_arn(stack_id: str, name: str, version: str) -> str:
    """arn:<partition>:greengrass:<region>:<account>:components:<name>:versions:<version>
    (botocore shape ComponentVersionARN), in the stack's partition, region and account."""
    parts = stack_id.split(":")
    if len(parts) < 6 or parts[0] != "arn" or parts[2] != "cloudformation":
        raise ComponentVersionError(f"the request's StackId is no stack ARN: {stack_id!r}")
    partition, region, account = parts[1], parts[3], parts[4]
    return f"arn:{partition}:greengrass:{region}:{account}:components:{name}:versions:{version}"


def canonical(value: Any, *, in_artifact: bool = False) -> Any:
    """A recipe as compared: keys lower-cased (recipe keys are case-insensitive: the recipe
    JSON schema is applied to lower-cased keys, developer guide "Component recipe reference"),
    and the digests the service adds to each artifact left out."""
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            lower = str(key).lower()
            if in_artifact and lower in SERVICE_ADDED:
                continue
            out[lower] = canonical(item, in_artifact=False)
            if lower == "artifacts" and isinstance(item, list):
                out[lower] = [canonical(a, in_artifact=True) for a in item]
        return out
    if isinstance(value, list):
        return [canonical(item) for item in value]
    return value


def differences(ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> list[str]:
    """Top-level recipe keys whose canonical values differ."""
    a, b = canonical(ours), canonical(theirs)
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _refusal(action: str, what: str, error: ClientError) -> ComponentVersionError:
    code = _code(error)
    message = error.response.get("Error", {}).get("Message", "") or error.response.get(
        "message", ""
    )
    if code == "AccessDeniedException":
        hint = "the handler's role lacks a permission it needs"
    elif code == "ValidationException":
        hint = "the recipe is not valid"
    elif code == "ResourceNotFoundException":
        hint = "not found"
    else:
        hint = "refused"
    return ComponentVersionError(f"{action} for {what}: {code}: {hint}: {message}")


def adopt(greengrass: Any, arn: str, what: str, recipe: Mapping[str, Any]) -> None:
    """Accept the existing version ``arn`` if its recipe is ``recipe`` (service-added digests
    aside); refuse it otherwise, naming it."""
    try:
        found = greengrass.get_component(arn=arn, recipeOutputFormat="JSON")
    except ClientError as error:
        if _code(error) == "ResourceNotFoundException":
            # ConflictException also means "more than one operation on the same resource at
            # the same time" (botocore ConflictException): not an existing version.
            raise ComponentVersionError(
                f"CreateComponentVersion for {what}: ConflictException, and no such version "
                "exists: another operation on it is in progress; retry the stack"
            ) from None
        raise _refusal("GetComponent", what, error) from None
    body = found.get("recipe", b"")
    text = body.decode() if isinstance(body, bytes | bytearray) else str(body)
    try:
        existing = json.loads(text)
    except json.JSONDecodeError:
        raise ComponentVersionError(
            f"GetComponent for {what}: the existing recipe is not JSON"
        ) from None
    changed = differences(recipe, existing) if isinstance(existing, dict) else ["(recipe)"]
    if changed:
        raise ComponentVersionError(
            f"component {what} exists with a different recipe ({', '.join(changed)} differ); "
            "a version cannot change (botocore greengrassv2 CreateComponentVersion). It was "
            "not made from this recipe: delete it if nothing deploys it "
            f"(aws greengrassv2 delete-component --arn {arn}), or change the recipe's "
            "ComponentName or version"
        )
    LOGGER.info("%s exists with this recipe: adopted", what)


def wait_deployable(
    greengrass: Any,
    arn: str,
    what: str,
    status: Mapping[str, Any] | None,
    sleep: Callable[[float], None],
) -> None:
    """Poll DescribeComponent until the version is DEPLOYABLE; FAILED, DEPRECATED, or still
    pending after ``POLLS`` polls is an error with the service's message and errors."""
    for poll in range(POLLS + 1):
        if status is None or poll > 0:
            try:
                status = greengrass.describe_component(arn=arn).get("status") or {}
            except ClientError as error:
                raise _refusal("DescribeComponent", what, error) from None
        state = str((status or {}).get("componentState", ""))
        if state == DEPLOYABLE:
            return
        if state not in PENDING:
            errors = (status or {}).get("errors") or {}
            detail = "; ".join(f"{k}: {v}" for k, v in sorted(errors.items()))
            raise ComponentVersionError(
                f"component {what} is {state or 'in no state'}: "
                f"{(status or {}).get('message', '')}" + (f" ({detail})" if detail else "")
            )
        if poll < POLLS:
            sleep(POLL_SECONDS)
    raise ComponentVersionError(
        f"component {what} is still {state} after {POLLS * POLL_SECONDS:.0f} s; retry the stack"
    )


def create_or_adopt(
    event: Mapping[str, Any], greengrass: Any, sleep: Callable[[float], None]
) -> dict[str, Any]:
    """Create, Update and rollback Update alike: the version these properties name, created
    or adopted. The physical ID is the version ARN: a recipe change gives a new one (a new
    version), which CloudFormation treats as a replacement and follows with a Delete of the old
    one in the cleanup phase (CloudFormation User Guide, custom resource "Update" request
    type), which leaves it (see :func:`delete`)."""
    text, recipe = recipe_of(event.get("ResourceProperties") or {})
    name, version = recipe["ComponentName"], recipe["ComponentVersion"]
    what = f"{name}@{version}"
    arn = version_arn(str(event.get("StackId") or ""), name, version)
    status: Mapping[str, Any] | None
    try:
        response = greengrass.create_component_version(inlineRecipe=text.encode())
    except ClientError as error:
        if _code(error) != "ConflictException":
            raise _refusal("CreateComponentVersion", what, error) from None
        adopt(greengrass, arn, what, recipe)
        status = None
    else:
        arn = str(response.get("arn") or arn)
        status = response.get("status")
        LOGGER.info("created %s (%s)", what, arn)
    wait_deployable(greengrass, arn, what, status, sleep)
    return {
        "PhysicalResourceId": arn,
        "Data": {Names.ARN: arn, Names.COMPONENT_NAME: name, Names.COMPONENT_VERSION: version},
    }


def delete(event: Mapping[str, Any]) -> dict[str, Any]:
    """Leave the version (module docstring): a stack delete, a replaced version and a rolled-
    back create all keep it, and a later create of the same recipe adopts it. Safe twice."""
    physical = str(event.get("PhysicalResourceId") or "")
    LOGGER.info("left %s in place (component versions are kept)", physical)
    return {"PhysicalResourceId": physical}


def on_event(
    event: Mapping[str, Any], greengrass: Any, sleep: Callable[[float], None]
) -> dict[str, Any]:
    """CDK Provider framework on_event."""
    request_type = event.get("RequestType")
    if request_type in ("Create", "Update"):
        return create_or_adopt(event, greengrass, sleep)
    if request_type == "Delete":
        return delete(event)
    raise ComponentVersionError(f"unknown RequestType {request_type!r}")
