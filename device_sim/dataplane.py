"""The core device's own calls to AWS IoT Core and AWS IoT Greengrass, authorized as AWS does.

Each call is authorized with :func:`device_sim.iam.evaluate` against the AWS IoT policies
attached to the device certificate (the data planes authenticate the device by its certificate:
developer guide, "Device authentication and authorization for AWS IoT Greengrass", section "AWS
IoT policies for data plane operations"). The calls and where the nucleus makes them
(aws-greengrass-nucleus v2.18.2):

* MQTT subscriptions (``iot:Subscribe`` on ``topicfilter/<filter>``, then ``iot:Receive`` on
  ``topic/<topic>`` for what arrives): ``deployment/IotJobsHelper.java``
  ``subscribeToGetNextJobDescription`` (``$aws/things/<thing>/jobs/$next/get/accepted`` and
  ``/rejected``) and ``subscribeToEventNotifications`` (``$aws/things/<thing>/jobs/notify``);
  ``deployment/ShadowDeploymentListener.java`` ``subscribeToShadowTopics``
  (``$aws/things/<thing>/shadow/name/AWSManagedGreengrassV2Deployment/update/accepted``,
  ``/update/rejected``, ``/get/accepted``). It publishes ``$aws/things/<thing>/jobs/$next/get``
  (``IotJobsHelper.requestNextPendingJobDocument``) and the shadow's ``get``
  (``ShadowDeploymentListener``: ``PublishGetNamedShadow``).
* ``greengrass:GetDeploymentConfiguration``: ``deployment/DeploymentDocumentDownloader.java``,
  only for a deployment document larger than 7 KB (thing target) or 31 KB (thing group target)
  (developer guide, device-auth page, "AWS IoT Greengrass V2 policy actions").
* ``greengrass:ListThingGroupsForCoreDevice``: ``deployment/ThingGroupHelper.java``, on every
  deployment the device receives (same page: nucleus 2.5.0 and later).
* ``greengrass:ResolveComponentCandidates``: ``componentmanager/ComponentManager.java``
  ``negotiateVersionWithCloud`` -> ``ComponentServiceHelper.resolveComponentVersion``, for each
  component without a local candidate; a 403 is "Access denied when calling
  ResolveComponentCandidates. Ensure certificate policy grants
  greengrass:ResolveComponentCandidates" (``RESOLVE_COMPONENT_CANDIDATES_ACCESS_DENIED``). The
  nucleus itself is skipped when the deployment asks for the running version.
* ``greengrass:GetComponentVersionArtifact``: ``componentmanager/builtins/
  GreengrassRepositoryDownloader.java``, on the component version ARN, for public components'
  artifacts ("Grants permission to get a presigned URL to download a public component
  artifact"); a 403 is ``GET_COMPONENT_VERSION_ARTIFACT_ACCESS_DENIED``.
* ``iot:AssumeRoleWithCertificate`` on the role alias ARN: the token exchange service asks the
  AWS IoT credentials provider for the role behind the alias, which AWS IoT then assumes: the
  role must trust ``credentials.iot.amazonaws.com`` (AWS IoT developer guide, "Authorizing direct
  calls to AWS services using AWS IoT Core credential provider": the trust policy and the
  ``iot:AssumeRoleWithCertificate`` policy).

The developer guide's device-auth page also says thing policy variables
(``iot:Connection.Thing.*``) are not supported for Greengrass data plane operations: those
requests carry none.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from device_sim.assembly import Cloud, Env
from device_sim.iam import Decision, Policy, PolicyError, Request, evaluate

CREDENTIALS_SERVICE = "credentials.iot.amazonaws.com"
DEPLOYMENT_SHADOW = "AWSManagedGreengrassV2Deployment"  # ShadowDeploymentListener
# developer guide, device-auth page, greengrass:GetDeploymentConfiguration
LARGE_DOCUMENT_BYTES = {"thing": 7 * 1024, "thinggroup": 31 * 1024}


class CallDenied(RuntimeError):
    """A call the nucleus makes is refused; ``str()`` names the call, the action, the resource
    and why."""


@dataclass
class Transcript:
    calls: list[str] = field(default_factory=list)

    def record(self, decision: Decision, action: str, resource: str) -> None:
        self.calls.append(f"{'ALLOW' if decision.allowed else 'DENY '} {action} on {resource}")


def subscriptions(thing: str) -> list[str]:
    """The topic filters the nucleus subscribes to (IotJobsHelper, ShadowDeploymentListener)."""
    shadow = f"$aws/things/{thing}/shadow/name/{DEPLOYMENT_SHADOW}"
    return [
        f"$aws/things/{thing}/jobs/$next/get/accepted",
        f"$aws/things/{thing}/jobs/$next/get/rejected",
        f"$aws/things/{thing}/jobs/notify",
        f"{shadow}/update/accepted",
        f"{shadow}/update/rejected",
        f"{shadow}/get/accepted",
    ]


def publishes(thing: str) -> list[str]:
    """Topics the nucleus publishes to to fetch its deployments."""
    return [
        f"$aws/things/{thing}/jobs/$next/get",
        f"$aws/things/{thing}/shadow/name/{DEPLOYMENT_SHADOW}/get",
    ]


def _authorize(
    policies: Sequence[Policy],
    action: str,
    resource: str,
    context: Mapping[str, Any],
    transcript: Transcript,
    failure: str,
) -> None:
    decision = evaluate(policies, Request(action, resource, context))
    transcript.record(decision, action, resource)
    if not decision.allowed:
        raise CallDenied(f"{failure}: {action} on {resource}: {decision.reason}")


def check_mqtt(
    policies: Sequence[Policy],
    env: Env,
    thing: str,
    context: Mapping[str, Any],
    transcript: Transcript,
) -> int:
    """Subscribe (and receive) on every nucleus topic, and publish its requests; returns the
    number of subscriptions."""
    filters = subscriptions(thing)
    for topic in filters:
        _authorize(
            policies,
            "iot:Subscribe",
            env.arn("iot", f"topicfilter/{topic}"),
            context,
            transcript,
            "the nucleus cannot subscribe to its deployment topics (IotJobsHelper / "
            "ShadowDeploymentListener)",
        )
        _authorize(
            policies,
            "iot:Receive",
            env.arn("iot", f"topic/{topic}"),
            context,
            transcript,
            "AWS IoT Core does not deliver the nucleus's deployment messages",
        )
    for topic in publishes(thing):
        _authorize(
            policies,
            "iot:Publish",
            env.arn("iot", f"topic/{topic}"),
            context,
            transcript,
            "the nucleus cannot ask for its deployments (IotJobsHelper / ShadowDeploymentListener)",
        )
    return len(filters)


def check_deployment_document(
    policies: Sequence[Policy],
    env: Env,
    thing: str,
    deployment: Mapping[str, Any],
    deployment_id: str,
    transcript: Transcript,
) -> None:
    """GetDeploymentConfiguration (large documents only), then ListThingGroupsForCoreDevice."""
    target = str(deployment.get("TargetArn", ""))
    kind = "thinggroup" if ":thinggroup/" in target else "thing"
    size = len(json.dumps(deployment, separators=(",", ":")).encode())
    if size > LARGE_DOCUMENT_BYTES[kind]:
        _authorize(
            policies,
            "greengrass:GetDeploymentConfiguration",
            env.arn("greengrass", f"deployments:{deployment_id}"),
            {},
            transcript,
            f"the deployment document is {size} bytes (over {LARGE_DOCUMENT_BYTES[kind]} for a "
            f"{kind} target), so the nucleus downloads it (DeploymentDocumentDownloader)",
        )
    _authorize(
        policies,
        "greengrass:ListThingGroupsForCoreDevice",
        env.arn("greengrass", f"coreDevices:{thing}"),
        {},
        transcript,
        "Access denied when calling ListThingGroupsForCoreDevice (ThingGroupHelper)",
    )


def component_arn(env: Env, name: str, public: bool) -> str:
    """Component ARN: AWS-published components live in the ``aws`` account."""
    account = "aws" if public else env.account
    return env.arn("greengrass", f"components:{name}", account=account)


def check_resolve(
    policies: Sequence[Policy],
    env: Env,
    components: Iterable[tuple[str, bool]],
    transcript: Transcript,
) -> None:
    """ResolveComponentCandidates for each (name, public) that the nucleus negotiates."""
    for name, public in components:
        _authorize(
            policies,
            "greengrass:ResolveComponentCandidates",
            component_arn(env, name, public),
            {},
            transcript,
            "Access denied when calling ResolveComponentCandidates. Ensure certificate policy "
            "grants greengrass:ResolveComponentCandidates "
            "(RESOLVE_COMPONENT_CANDIDATES_ACCESS_DENIED, ComponentManager."
            f"negotiateVersionWithCloud, component {name})",
        )


def check_public_artifacts(
    policies: Sequence[Policy],
    env: Env,
    components: Iterable[tuple[str, str]],
    transcript: Transcript,
) -> None:
    """GetComponentVersionArtifact on each public (name, version) with artifacts."""
    for name, version in components:
        arn = f"{component_arn(env, name, True)}:versions:{version}"
        _authorize(
            policies,
            "greengrass:GetComponentVersionArtifact",
            arn,
            {},
            transcript,
            f"{name}: Access denied when calling GetComponentVersionArtifact. Ensure certificate "
            "policy grants greengrass:GetComponentVersionArtifact "
            "(GET_COMPONENT_VERSION_ARTIFACT_ACCESS_DENIED, GreengrassRepositoryDownloader)",
        )


def trust_policy(cloud: Cloud, role_arn: str) -> tuple[str, Mapping[str, Any]]:
    """(role name, AssumeRolePolicyDocument) of the deployed role with this ARN."""
    for role in cloud.roles.values():
        if role.arn != role_arn:
            continue
        for stack in cloud.stacks.values():
            for resource in stack.resources.values():
                if resource.type == "AWS::IAM::Role" and resource.physical_id == role.name:
                    document = resource.properties.get("AssumeRolePolicyDocument")
                    if isinstance(document, Mapping):
                        return role.name, document
        raise CallDenied(f"role {role.name} has no trust policy in the deployed stacks")
    raise CallDenied(f"the role alias points at {role_arn}, which does not exist")


def _statements(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    raw = document.get("Statement", [])
    return list(raw) if isinstance(raw, list) else [raw]


def _services(principal: Any) -> list[str]:
    if principal == "*":
        return ["*"]
    if not isinstance(principal, Mapping):
        return []
    value = principal.get("Service", [])
    return [str(v) for v in (value if isinstance(value, list) else [value])]


def trusts_service(document: Mapping[str, Any], role_arn: str, service: str) -> Decision:
    """Does the trust policy let ``service`` call ``sts:AssumeRole`` on the role? Statements
    whose ``Principal`` names the service (or ``*``) are evaluated as IAM evaluates them;
    ``NotPrincipal`` is not modelled (PolicyError)."""
    kept = []
    for statement in _statements(document):
        if "NotPrincipal" in statement:
            raise PolicyError("NotPrincipal in a trust policy is not modelled")
        services = _services(statement.get("Principal"))
        if service in services or "*" in services:
            kept.append(
                {k: v for k, v in statement.items() if k != "Principal"} | {"Resource": "*"}
            )
    trust = Policy("trust policy", {**document, "Statement": kept})
    decision = evaluate([trust], Request("sts:AssumeRole", role_arn, {}))
    if not kept:
        return Decision(False, f"no statement of the trust policy names the service {service}")
    return decision


def check_credentials(
    cloud: Cloud,
    policies: Sequence[Policy],
    alias: str,
    context: Mapping[str, Any],
    transcript: Transcript,
) -> str:
    """What the token exchange service needs: ``iot:AssumeRoleWithCertificate`` on the role alias,
    and a role that trusts the credentials provider. Returns the role's name."""
    alias_arn = cloud.role_alias_arn(alias)
    _authorize(
        policies,
        "iot:AssumeRoleWithCertificate",
        alias_arn,
        context,
        transcript,
        "the AWS IoT credentials provider refuses the token exchange service's request",
    )
    role_arn = cloud.role_aliases.get(alias)
    if role_arn is None:
        raise CallDenied(f"role alias {alias} does not exist")
    role_name, document = trust_policy(cloud, role_arn)
    decision = trusts_service(document, role_arn, CREDENTIALS_SERVICE)
    transcript.record(decision, f"sts:AssumeRole by {CREDENTIALS_SERVICE}", role_arn)
    if not decision.allowed:
        raise CallDenied(
            f"the AWS IoT credentials provider cannot assume {role_arn}: its trust policy does "
            f"not allow sts:AssumeRole by the service principal {CREDENTIALS_SERVICE}: "
            f"{decision.reason}"
        )
    return role_name
