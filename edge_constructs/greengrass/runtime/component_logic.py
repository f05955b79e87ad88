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

import hashlib
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
# A recipe read back carries keys ours does not: "AWS IoT Greengrass calculates the digest" of
# each artifact when the component is created (developer guide, "Component recipe reference",
# Artifacts: Digest, Algorithm), and may fill in defaults; ``missing`` allows keys only the
# stored recipe has.


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


# The version's identity, set when this handler creates it: CreateComponentVersion ``tags``,
# read back by GetComponent (its response has ``tags``; botocore greengrassv2). A version this
# handler made is adopted when the tag matches the recipe's digest, whatever the service's
# read-back recipe looks like; one made otherwise (the native resource of an earlier release,
# by hand) is compared by recipe.
RECIPE_TAG = "edge-ai:recipe-sha256"


def recipe_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def missing(ours: Any, theirs: Any, path: str = "") -> list[str]:
    """Where ``theirs`` (the stored recipe, read back) lacks or changes something ``ours``
    says, key by key and item by item (keys compared exactly: configuration keys and Setenv
    names are case-sensitive). Keys only ``theirs`` has are the service's (the artifact
    ``Digest`` and ``Algorithm`` it adds at creation, defaults it fills in) and are allowed."""
    if isinstance(ours, Mapping):
        if not isinstance(theirs, Mapping):
            return [path or "(recipe)"]
        found: list[str] = []
        for key, value in ours.items():
            where = f"{path}.{key}" if path else str(key)
            if key not in theirs:
                found.append(where)
            else:
                found += missing(value, theirs[key], where)
        return found
    if isinstance(ours, list):
        if not isinstance(theirs, list) or len(ours) != len(theirs):
            return [path]
        return [
            w for i, (a, b) in enumerate(zip(ours, theirs)) for w in missing(a, b, f"{path}[{i}]")
        ]
    return [] if ours == theirs else [path]


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


def adopt(greengrass: Any, arn: str, what: str, text: str, recipe: Mapping[str, Any]) -> None:
    """Accept the existing version ``arn`` if this handler made it from this recipe
    (``RECIPE_TAG``), or, untagged, if its stored recipe holds everything ``recipe`` says;
    refuse it otherwise, naming it."""
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
    tags = found.get("tags") or {}
    if tags.get(RECIPE_TAG) == recipe_digest(text):
        LOGGER.info("%s exists, made from this recipe (%s): adopted", what, RECIPE_TAG)
        return
    if RECIPE_TAG in tags:
        raise ComponentVersionError(
            f"component {what} exists, made from another recipe ({RECIPE_TAG} differs); a "
            "version cannot change (botocore greengrassv2 CreateComponentVersion): delete it "
            f"if nothing deploys it (aws greengrassv2 delete-component --arn {arn}), or change "
            "the recipe's ComponentName or version"
        )
    body = found.get("recipe", b"")
    text = body.decode() if isinstance(body, bytes | bytearray) else str(body)
    try:
        existing = json.loads(text)
    except json.JSONDecodeError:
        raise ComponentVersionError(
            f"GetComponent for {what}: the existing recipe is not JSON"
        ) from None
    changed = missing(recipe, existing)
    if changed:
        raise ComponentVersionError(
            f"component {what} exists with a different recipe ({', '.join(changed[:8])} "
            "differ); "
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
    adopted = False
    try:
        response = greengrass.create_component_version(
            inlineRecipe=text.encode(), tags={RECIPE_TAG: recipe_digest(text)}
        )
    except ClientError as error:
        if _code(error) != "ConflictException":
            raise _refusal("CreateComponentVersion", what, error) from None
        adopt(greengrass, arn, what, text, recipe)
        status = None
        adopted = True
    else:
        arn = str(response.get("arn") or arn)
        status = response.get("status")
        LOGGER.info("created %s (%s)", what, arn)
    try:
        wait_deployable(greengrass, arn, what, status, sleep)
    except ComponentVersionError as error:
        if not adopted:
            raise
        # A version is a digest of its recipe, so retrying creates this same failed version
        # again: nothing can deploy it until it is deleted (FAILED is final, botocore
        # CloudComponentState).
        raise ComponentVersionError(
            f"{error}. This version existed already and cannot recover: delete it (aws "
            f"greengrassv2 delete-component --arn {arn}) and deploy again"
        ) from None
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
