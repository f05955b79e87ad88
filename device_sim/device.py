"""The simulated core device: provision -> resolve -> download -> interpolate -> install -> run ->
reboot (offline) -> run, on a synthesized cloud assembly.

Each step is in its own module, which names the nucleus source or AWS document it follows. This
module wires them together, serves IPC to the components (:mod:`device_sim.ipc`), feeds input
files to the inference component and records what the device publishes:

* a ``PublishToIoTCore`` is first authorized by the IPC server against the component's
  ``accessControl``; what it allows goes to the MQTT client;
* the MQTT client (``mqttclient/MqttClient.java``) publishes on one of its connections, round
  robin (``getConnection(false)``); it opens another connection, client id ``<thing>#2``, ...,
  only when a connection holds ``MAX_SUBSCRIPTIONS_PER_CONNECTION`` (50) subscriptions
  (``getNewMqttClient``). The nucleus itself subscribes to its jobs and deployment-shadow topics
  (:mod:`device_sim.dataplane`) and this deployment adds no subscriptions, so the device has one
  connection, client id = thing name;
* AWS IoT Core then authorizes ``iot:Publish`` on ``topic/<topic>`` against the policies attached
  to the device certificate. ``${iot:Connection.Thing.ThingName}`` resolves only when the client
  id is the thing name ("Thing policy variables",
  https://docs.aws.amazon.com/iot/latest/developerguide/thing-policy-variables.html); on a
  ``thing#2`` connection it does not, and statements using it do not match.

Allowed messages then reach the account's IoT rules (``device_sim/cloud/rules.py``): the fleet
stack's rule runs its Lambda on each metrics window, whose CloudWatch data lands in
``<root>/cloud/cloudwatch/<namespace>/<metric>.jsonl`` (``device_sim/cloud/cloudwatch.py``).

Allowed messages are appended to ``<root>/mqtt/published.jsonl`` (one JSON object per line:
``topic``, ``payload`` (the decoded JSON), ``qos``, ``client_id``, ``time``), except the
component's metrics windows (``<prefix>/<thing>/metrics``, ``device_contract.topics``), which go
to ``<root>/mqtt/metrics.jsonl`` and ``Report.metrics``, so that ``published`` holds one answer
per input; denied ones go to the report.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from device_contract import topics
from device_sim import dataplane
from device_sim.assembly import (
    AssemblyError,
    Cloud,
    Env,
    Stage,
    default_stand_ins,
    deploy_stage,
    load_stage,
)
from device_sim.brought import BroughtModel, brought_uris
from device_sim.cloud.s3_http import Put, S3Endpoint, Sessions, TokenExchangeEndpoint
from device_sim.deployment import (
    DEFAULT_NUCLEUS_VERSION,
    NUCLEUS,
    PLATFORMS,
    Resolution,
    deployment_for,
    resolve_deployment,
)
from device_sim.download import Downloader, tes_role_policies
from device_sim.iam import Policy, Request, evaluate
from device_sim.interpolation import NucleusPaths, ResolvedService, ServiceConfig, resolve_services
from device_sim.ipc import IpcServer, PublishRequest
from device_sim.lifecycle import Boot, LifecycleRunner, shutdown
from device_sim.provision import (
    ProvisionResult,
    installer_principal,
    parse_installer_command,
    provision,
)
from device_sim.run_record import ROOT_MARKER, RunRecord, staged_input_name, write_run_record
from device_sim.run_with import (
    Ownership,
    RunWith,
    RunWithError,
    access_problem,
    component_default_user,
    self_run_with,
    setup_run_with,
    update_owner,
)
from edge_constructs.greengrass.public_components import TOKEN_EXCHANGE

LOG = logging.getLogger(__name__)
HOST_PLATFORM = "linux/amd64"
MAX_SUBSCRIPTIONS_PER_CONNECTION = 50  # MqttClient.MAX_SUBSCRIPTIONS_PER_CONNECTION
# the nucleus's own subscriptions (IotJobsHelper, ShadowDeploymentListener: dataplane.py)
NUCLEUS_SUBSCRIPTIONS = len(dataplane.subscriptions("thing"))
# absolute paths in a component's interpolated lifecycle (scripts, Setenv values)
_PATH_IN_TEXT = re.compile(r"/[^\s'\"`;:|&<>(){}$,]+")
# Written into every root the simulator creates: only such a root (or an empty or new folder) is
# deleted and recreated by a run.
REPO_ROOT = Path(__file__).resolve().parents[1]


class StepFailed(RuntimeError):
    """A device step failed; ``str()`` is ``<step>: <reason>``."""

    def __init__(self, step: str, reason: str) -> None:
        super().__init__(f"{step}: {reason}")
        self.step = step
        self.reason = reason


@dataclass(frozen=True)
class DeviceOptions:
    assembly: Path
    stage: str
    root: Path
    platform: str = "linux/amd64"
    device_name: str = "sim-1"
    nucleus_version: str = DEFAULT_NUCLEUS_VERSION
    env: Env = field(default_factory=Env)
    model_dir: Path | None = None
    onnx_model: Path | None = None
    # the user's model.tar.gz (device_sim.brought), put at the stage's model_artifact_uri
    brought_model: BroughtModel | None = None
    thing_group: str | None = None
    images: Path | None = None
    interpolate_component_configuration: bool = False
    wheelhouse: Path | None = None
    wait_seconds: float = 90.0
    reboot: bool = True
    run_lifecycle: bool = True
    cloud_patch: Callable[[Cloud], None] | None = None


@dataclass
class Report:
    steps: list[tuple[str, bool, str]] = field(default_factory=list)
    published: list[dict[str, Any]] = field(default_factory=list)
    metrics: list[dict[str, Any]] = field(default_factory=list)  # the metrics topic's windows
    denied: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: every PutObject a component sent to the simulated S3 (captures), with S3's answer
    uploads: list[Put] = field(default_factory=list)
    provision: ProvisionResult | None = None
    resolution: Resolution | None = None
    services: dict[str, ResolvedService] = field(default_factory=dict)
    boots: list[Boot] = field(default_factory=list)
    failure: StepFailed | None = None

    def step(self, name: str, ok: bool, detail: str = "") -> None:
        self.steps.append((name, ok, detail))
        LOG.info("%s %s %s", "ok  " if ok else "FAIL", name, detail)

    @property
    def ok(self) -> bool:
        return self.failure is None and all(ok for _, ok, _ in self.steps)


@dataclass
class CloudEndpoints:
    """A boot's token-exchange service and S3 (device_sim/cloud/s3_http.py)."""

    tes: TokenExchangeEndpoint
    s3: S3Endpoint

    @property
    def environment(self) -> dict[str, str]:
        """What every component gets: the nucleus sets the credentials URI in its ``setenv``
        namespace (``TokenExchangeService.setEnvVariablesForDependencies``); the S3 endpoint
        variable is the simulator's, standing in for ``https://<bucket>.s3.<region>...``."""
        return {
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": self.tes.full_uri,
            "AWS_ENDPOINT_URL_S3": self.s3.url,
        }

    def start(self) -> None:
        self.tes.start()
        self.s3.start()

    def stop(self) -> None:
        self.tes.stop()
        self.s3.stop()


class _DenialLog(logging.Handler):
    """Collects the IPC server's "Not Authorized" decisions (accessControl denials)."""

    def __init__(self, sink: list[str]) -> None:
        super().__init__(level=logging.INFO)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Not Authorized"):
            self.sink.append(f"accessControl: {message}")


class Device:
    def __init__(self, options: DeviceOptions) -> None:
        if options.platform not in PLATFORMS:
            raise StepFailed(
                "arguments",
                f"unknown platform {options.platform!r}; supported: {', '.join(sorted(PLATFORMS))}",
            )
        if options.images is not None and not options.images.is_dir():
            raise StepFailed("arguments", f"--images {options.images} is not a folder")
        self.options = options
        self.paths = NucleusPaths(options.root.resolve())
        self.report = Report()
        self.cloud: Cloud | None = None
        self.sessions = Sessions()  # credentials the token-exchange service issued
        self.thing_name = ""
        self.thing_group = ""
        self.certificate_policies: list[Policy] = []
        self._lock = threading.Lock()
        self.client_ids: list[str] = []
        self.run_with: RunWith | None = None
        self.ownership = Ownership(self.paths.root)
        self.calls = dataplane.Transcript()
        self._root_prepared = False

    # ------------------------------------------------------------ steps
    def deploy(self) -> tuple[Stage, Cloud]:
        o = self.options
        stage = load_stage(o.assembly, o.stage)
        shape = model_input_shape(stage)
        if o.brought_model is not None and not brought_uris(stage):
            raise StepFailed(
                "deploy stacks",
                f"--brought-model {o.brought_model.given}: stage {stage.name} trains its own "
                "model (no model_artifact_uri); synth it with "
                "-c model_artifact_uri=s3://<bucket>/<key>/model.tar.gz -c architecture=<name>",
            )
        stand_ins = default_stand_ins(
            self.paths.root / "sim",
            shape,
            model_dir=o.model_dir,
            onnx_model=o.onnx_model,
            brought=o.brought_model,
        )
        cloud = deploy_stage(stage, o.env, stand_ins)
        if o.cloud_patch is not None:
            o.cloud_patch(cloud)
        self.report.notes.extend(cloud.notes)
        if o.brought_model is not None and any(
            r.get("Type") == "Custom::CompilationJob"
            for s in stage.stacks
            for r in s.template.get("Resources", {}).values()
        ):
            self.report.notes.append(
                "neo classes: Neo does not run here, so they run a stand-in compiled model "
                f"with your {len(o.brought_model.labels)} labels and random weights; an onnx "
                "class runs your model itself (model_check lists what only Neo checks)"
            )
        self.cloud = cloud
        # What the stacks' IoT rules make of the device's messages lands under <root>/cloud/.
        cloud.cloudwatch.folder = self.paths.root / "cloud" / "cloudwatch"
        cloud.rules.folder = self.paths.root / "cloud" / "iot" / "rules"
        self.report.step("deploy stacks", True, ", ".join(s.display_name for s in stage.stacks))
        return stage, cloud

    def provision(self, cloud: Cloud) -> None:
        try:
            args = parse_installer_command(
                str(cloud.output("Devices", "InstallerCommand")), self.options.device_name
            )
            if self.options.thing_group is not None:
                # The stack's DeviceClassThingGroups output: each device is provisioned into
                # its class's group, or its canary group (--thing-group-name).
                if self.options.thing_group not in cloud.thing_groups:
                    known = ", ".join(sorted(cloud.thing_groups)) or "none"
                    raise StepFailed(
                        "provision",
                        f"--thing-group {self.options.thing_group}: the stage has no such "
                        f"thing group (it has: {known})",
                    )
                args = replace(args, thing_group_name=self.options.thing_group)
            self.thing_name = args.thing_name
            self.thing_group = args.thing_group_name
            result = provision(cloud, args, installer_principal(cloud))
        except RuntimeError as error:
            raise StepFailed("provision", str(error)) from None
        self.report.provision = result
        self.certificate_policies = [
            cloud.iot_policies[name]
            for name in result.iot_policies_attached
            if name in cloud.iot_policies
        ]
        self.report.step("provision", True, f"thing {args.thing_name}, {len(result.calls)} calls")
        self.component_user(str(cloud.output("Devices", "InstallerCommand")))

    def component_user(self, installer_command: str) -> None:
        """The installer's component default user, created where missing (run_with.py)."""
        spec = component_default_user(installer_command)
        try:
            run_with = setup_run_with(spec)
        except RunWithError as error:
            raise StepFailed("component user", str(error)) from None
        if run_with.real:
            # Components run in <root>/work/<name>: their user must be able to search every
            # folder above the root, as anyone can above /greengrass/v2 on a device. A root
            # below a private folder (a clone under /root, pytest's /tmp/pytest-of-root) cannot
            # host them: they run as the simulator's user instead, and the output says why.
            problem = access_problem(self.ownership, self.paths.root / "work", run_with)
            if problem:
                run_with = self_run_with(
                    f"--root {self.options.root}: {run_with.label} {problem} (give a root that "
                    "other users may reach, as /greengrass/v2 is on a device)",
                    run_with.user,
                    run_with.group,
                )
        self.run_with = run_with
        if run_with.real:
            self.report.step("component user", True, f"{run_with.label} (uid {run_with.uid})")
        else:
            self.report.notes.append(run_with.note)
            self.report.step(
                "component user", True, f"{run_with.label} NOT SWITCHED: {run_with.note}"
            )

    def cloud_calls(self, cloud: Cloud) -> None:
        """The nucleus's own MQTT subscriptions and the deployment document calls (dataplane.py)."""
        context = self.iot_context(self.thing_name)
        try:
            count = dataplane.check_mqtt(
                self.certificate_policies, cloud.env, self.thing_name, context, self.calls
            )
            document = deployment_for(cloud, self.thing_group or None)
            deployment_id = str(document.get("DeploymentName") or "deployment")
            dataplane.check_deployment_document(
                self.certificate_policies,
                cloud.env,
                self.thing_name,
                document,
                deployment_id,
                self.calls,
            )
        except (dataplane.CallDenied, RuntimeError) as error:
            raise StepFailed("receive deployment", str(error)) from None
        self.report.step(
            "receive deployment", True, f"{count} subscriptions (jobs, deployment shadow)"
        )

    def credentials(self, cloud: Cloud) -> None:
        """Token exchange: AssumeRoleWithCertificate and the role's trust (dataplane.py)."""
        alias = str(cloud.output("Devices", "TokenExchangeRoleAlias"))
        try:
            role = dataplane.check_credentials(
                cloud,
                self.certificate_policies,
                alias,
                self.iot_context(self.thing_name),
                self.calls,
            )
        except dataplane.CallDenied as error:
            raise StepFailed("token exchange credentials", str(error)) from None
        self.report.step("token exchange credentials", True, f"role alias {alias} -> {role}")

    def resolve(self, cloud: Cloud) -> Resolution:
        try:
            resolution = resolve_deployment(
                cloud,
                self.options.platform,
                self.options.nucleus_version,
                thing_group=self.thing_group or None,
            )
        except RuntimeError as error:
            raise StepFailed("resolve deployment", str(error)) from None
        negotiated = [
            (name, component.public)
            for name, component in resolution.components.items()
            # negotiateVersionWithCloud: the running nucleus version is not negotiated
            if not (name == NUCLEUS and component.version == self.options.nucleus_version)
        ]
        try:
            dataplane.check_resolve(self.certificate_policies, cloud.env, negotiated, self.calls)
        except dataplane.CallDenied as error:
            raise StepFailed("resolve deployment", str(error)) from None
        self.report.resolution = resolution
        self.report.notes.extend(resolution.notes)
        pinned = ", ".join(f"{n}@{resolution.components[n].version}" for n in resolution.order)
        self.report.step(
            "resolve deployment",
            True,
            f"{self.options.platform}, {resolution.deployment_name or 'deployment'} "
            f"(thing group {resolution.thing_group}): {pinned}",
        )
        return resolution

    def download(self, cloud: Cloud, resolution: Resolution) -> None:
        public = [
            (name, c.version)
            for name, c in resolution.components.items()
            if c.public and name != NUCLEUS
        ]
        try:
            dataplane.check_public_artifacts(
                self.certificate_policies, cloud.env, public, self.calls
            )
        except dataplane.CallDenied as error:
            raise StepFailed("download artifacts", str(error)) from None
        alias = str(cloud.output("Devices", "TokenExchangeRoleAlias"))
        downloader = Downloader(cloud, self.paths, tes_role_policies(cloud, alias))
        try:
            downloader.download_all(resolution)
        except RuntimeError as error:
            raise StepFailed("download artifacts", str(error)) from None
        self.report.notes.extend(downloader.report.skipped)
        self.report.step("download artifacts", True, f"{len(downloader.report.files)} files")

    def interpolate(self, resolution: Resolution) -> dict[str, ResolvedService]:
        services = {
            name: ServiceConfig(
                name, c.version, c.configuration, c.lifecycle, frozenset(c.dependencies)
            )
            for name, c in resolution.components.items()
        }
        resolved, unresolved = resolve_services(
            services,
            self.paths,
            self.thing_name,
            interpolate_component_configuration=self.options.interpolate_component_configuration,
        )
        self.report.services = resolved
        self.report.notes.extend(f"left as is: {u}" for u in unresolved)
        recipes = self.paths.recipes()
        recipes.mkdir(parents=True, exist_ok=True)
        for name, component in resolution.components.items():
            if component.recipe is not None:
                (recipes / f"{name}-{component.version}.recipe.json").write_text(
                    json.dumps(component.recipe, indent=2)
                )
        (self.paths.root / "config").mkdir(exist_ok=True)
        (self.paths.root / "config" / "effectiveConfig.json").write_text(
            json.dumps(
                {
                    "services": {
                        n: {
                            "version": s.version,
                            "configuration": s.configuration,
                            "lifecycle": s.lifecycle,
                        }
                        for n, s in resolved.items()
                    },
                    "interpolateComponentConfiguration": (
                        self.options.interpolate_component_configuration
                    ),
                },
                indent=2,
            )
        )
        self.report.step("interpolate", True, f"{len(unresolved)} placeholders left as is")
        return resolved

    def file_access(self, services: Mapping[str, ResolvedService]) -> None:
        """Can each component read the files its lifecycle names, as the user it runs as?

        Judged from the owners and modes the nucleus sets (run_with.py, download.py): a
        component that runs a command owns its own artifacts and work folder by then
        (``updateOwner``); a dependency without a lifecycle command (the model) does not. Every
        absolute path inside the nucleus root, and the ``--wheelhouse``, that a lifecycle
        script or ``Setenv`` names is checked; paths not created yet (a venv before its
        Install) are checked as far as they exist. The boots then show it for real where the
        components really run as that user.
        """
        run_with = self.run_with
        if run_with is None:
            return
        expected = Ownership(self.ownership.root, dict(self.ownership.owners), apply=False)
        runs = [n for n, s in services.items() if _runs_a_command(s.lifecycle)]
        for name in runs:
            service = services[name]
            update_owner(
                expected,
                self.paths.artifacts(name, service.version),
                self.paths.unarchived(name, service.version),
                self.paths.work(name),
                run_with,
            )
        problems = []
        checked = 0
        for name in runs:
            for path in _paths_named(services[name].lifecycle, self.paths.root, self.options):
                checked += 1
                problem = access_problem(expected, path, run_with)
                if problem:
                    problems.append(f"{name} (runs as {run_with.label}) needs {path}: {problem}")
        if problems:
            self.report.step("file access", False, "; ".join(problems))
        else:
            self.report.step("file access", True, f"{checked} paths readable by {run_with.label}")

    # ------------------------------------------------------------ MQTT
    def mqtt_connections(self) -> list[str]:
        """Client ids of the nucleus's MQTT connections (MqttClient.getNewMqttClient)."""
        needed = max(1, -(-NUCLEUS_SUBSCRIPTIONS // MAX_SUBSCRIPTIONS_PER_CONNECTION))
        return [self.thing_name if i == 0 else f"{self.thing_name}#{i + 1}" for i in range(needed)]

    def iot_context(self, client_id: str) -> dict[str, str]:
        context = {"iot:ClientId": client_id}
        if client_id == self.thing_name:
            context["iot:Connection.Thing.ThingName"] = self.thing_name
            context["iot:Connection.Thing.IsAttached"] = "true"
        return context

    def connect(self, cloud: Cloud) -> None:
        self.client_ids = self.mqtt_connections()
        for client_id in self.client_ids:
            resource = cloud.env.arn("iot", f"client/{client_id}")
            decision = evaluate(
                self.certificate_policies,
                Request("iot:Connect", resource, self.iot_context(client_id)),
            )
            if not decision.allowed:
                raise StepFailed("mqtt connect", f"iot:Connect on {resource}: {decision.reason}")
        self.report.step("mqtt connect", True, ", ".join(self.client_ids))

    def on_publish(self, request: PublishRequest) -> None:
        assert self.cloud is not None
        with self._lock:
            index = len(self.report.published) + len(self.report.denied)
            client_id = self.client_ids[index % len(self.client_ids)]
        resource = self.cloud.env.arn("iot", f"topic/{request.topic}")
        decision = evaluate(
            self.certificate_policies, Request("iot:Publish", resource, self.iot_context(client_id))
        )
        if not decision.allowed:
            with self._lock:
                self.report.denied.append(
                    f"IoT policy: iot:Publish on {resource} by {client_id}: {decision.reason}"
                )
            return
        try:
            payload: Any = json.loads(request.payload)
        except (json.JSONDecodeError, UnicodeDecodeError):
            payload = request.payload.decode("utf-8", "replace")
        line = {
            "topic": request.topic,
            "payload": payload,
            "qos": request.qos,
            "client_id": client_id,
            "time": time.time(),
        }
        mqtt = self.paths.root / "mqtt"
        mqtt.mkdir(exist_ok=True)
        is_metrics = request.topic.endswith("/" + topics.METRICS_SUFFIX)
        with self._lock:
            (self.report.metrics if is_metrics else self.report.published).append(line)
            log = "metrics.jsonl" if is_metrics else "published.jsonl"
            with (mqtt / log).open("a", encoding="utf-8") as out:
                out.write(json.dumps(line, sort_keys=True) + "\n")
        # AWS IoT Core hands the message to the account's rules (the fleet stack's metrics rule).
        self.cloud.rules.publish(request.topic, payload)

    def _results_seen(self) -> int:
        """Messages that answer an input: published results, or denied publishes."""
        with self._lock:
            return len(self.report.published) + len(self.report.denied)

    # ------------------------------------------------------------ boots
    def boot(
        self,
        label: str,
        network: bool,
        resolution: Resolution,
        services: dict[str, ResolvedService],
        images: list[Path],
    ) -> Boot:
        socket_path = self.paths.root / "ipc.socket"
        server = IpcServer(
            socket_path,
            configuration=lambda n: services[n].configuration,
            on_publish=self.on_publish,
        )
        tokens = {name: server.register(name) for name in services}

        def ipc_env(name: str) -> dict[str, str]:
            return {
                "SVCUID": tokens[name],
                "AWS_CONTAINER_AUTHORIZATION_TOKEN": tokens[name],
                "AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH": str(socket_path),
                "AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT": str(socket_path),
            }

        extra: dict[str, str] = {}
        if network and self.options.wheelhouse is not None:
            extra = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(self.options.wheelhouse)}
        assert self.cloud is not None
        endpoints = self.cloud_endpoints(resolution, set(tokens.values()))
        if endpoints is not None:
            extra.update(endpoints.environment)
        runner = LifecycleRunner(
            self.paths,
            thing_name=self.thing_name,
            region=self.cloud.env.region,
            ipc_env=ipc_env,
            extra_env=extra,
            network=network,
            run_with=self.run_with,
            ownership=self.ownership,
        )
        if not network:
            self.report.notes.append(f"{label}: network refused with {runner.isolation}")
        dependencies = {n: frozenset(resolution.components[n].dependencies) for n in services}
        handler = _DenialLog(self.report.denied)
        ipc_log = logging.getLogger("device_sim.ipc.server")
        ipc_log.addHandler(handler)
        previous_level = ipc_log.level
        ipc_log.setLevel(logging.INFO)
        server.start()
        if endpoints is not None:
            endpoints.start()
        boot = runner.boot(label, services, resolution.order, dependencies)
        self.report.boots.append(boot)
        try:
            for result in boot.results:
                ok = result.outcome not in ("failed", "timeout")
                self.report.step(
                    f"{label}: {result.component} {result.step}",
                    ok,
                    f"{result.outcome} {result.detail}".strip(),
                )
            if boot.broken:
                return boot
            self.feed_and_wait(label, services, images)
            if endpoints is not None and network:
                self.wait_for_uploads(services)
        finally:
            codes = shutdown(boot)
            server.stop()
            if endpoints is not None:
                endpoints.stop()
                self.report.uploads.extend(endpoints.s3.puts)
            ipc_log.removeHandler(handler)
            ipc_log.setLevel(previous_level)
            for name, code in codes.items():
                LOG.info("%s: %s exited with %s", label, name, code)
        return boot

    def cloud_endpoints(self, resolution: Resolution, tokens: set[str]) -> CloudEndpoints | None:
        """The token-exchange service and S3 for the components, when the deployment has the
        token-exchange service (the nucleus runs it only then)."""
        if TOKEN_EXCHANGE not in resolution.components:
            return None
        assert self.cloud is not None
        alias = str(self.cloud.output("Devices", "TokenExchangeRoleAlias"))
        role_arn = self.cloud.role_aliases.get(alias, "")
        tes = TokenExchangeEndpoint(
            self.sessions,
            tokens=lambda: tokens,
            role=role_arn.rsplit("/", 1)[-1],
            thing_name=self.thing_name,
            policies=tes_role_policies(self.cloud, alias),
        )
        s3 = S3Endpoint(
            sessions=self.sessions,
            region=self.cloud.env.region,
            partition=self.cloud.env.partition,
            objects=self.cloud.s3,
            bucket_policies=self.cloud.bucket_policies,
            folder=self.paths.root / "cloud" / "s3",
        )
        return CloudEndpoints(tes, s3)

    def wait_for_uploads(self, services: Mapping[str, ResolvedService]) -> None:
        """Give the components' capture uploads time to finish (they run in the background)."""
        folders = [self.paths.work(name) / "state" / "captures" for name in services]
        deadline = time.monotonic() + min(30.0, self.options.wait_seconds)
        while time.monotonic() < deadline:
            waiting = [f for f in folders if f.is_dir() and any(f.glob("*.json"))]
            if not waiting:
                return
            time.sleep(0.2)

    def feed_and_wait(
        self, label: str, services: Mapping[str, ResolvedService], images: list[Path]
    ) -> None:
        consumers = [s for s in services.values() if "InputDir" in s.configuration]
        if not consumers or not images:
            return
        service = consumers[0]
        work = self.paths.work(service.name)
        input_dir = work / str(service.configuration["InputDir"])
        created = not input_dir.exists()
        input_dir.mkdir(parents=True, exist_ok=True)
        # Images are dropped in as the component's user would (its work folder is rwx------).
        if created and self.run_with is not None:
            self.ownership.set(input_dir, self.run_with)
        before = self._results_seen()
        for image in images:
            staging = input_dir.parent / f".{image.name}.part"
            shutil.copyfile(image, staging)
            if self.run_with is not None:
                self.ownership.set(staging, self.run_with)
            staging.rename(input_dir / staged_input_name(len(self.report.boots), image.name))
        deadline = time.monotonic() + self.options.wait_seconds
        want = before + len(images)
        while time.monotonic() < deadline:
            if self._results_seen() >= want:
                break
            boot = self.report.boots[-1]
            dead = [n for n, p in boot.processes.items() if p.poll() is not None]
            if dead:
                break
            time.sleep(0.2)
        published = self._results_seen() - before
        if self.report.denied:
            self.report.step(f"{label}: publish", False, self.report.denied[-1])
        elif published < len(images):
            tail = LifecycleRunner.log_tail_of(self.paths, service.name)
            self.report.step(
                f"{label}: publish",
                False,
                f"{published} of {len(images)} results within "
                f"{self.options.wait_seconds:.0f} s; log: {tail}",
            )
        else:
            self.report.step(f"{label}: publish", True, f"{published} messages")

    # ------------------------------------------------------------ all of it
    def run(self) -> Report:
        try:
            self._run()
        except StepFailed as failure:
            self.report.failure = failure
            self.report.step(failure.step, False, failure.reason)
        finally:
            self._record_run(finished=True)
        return self.report

    def _record_run(self, *, finished: bool) -> None:
        """The run record readers of the root use (device_sim/run_record.py); only in a root
        this run prepared, so a refused --root is left as it was."""
        root = self.paths.root
        if not (root / ROOT_MARKER).is_file() or not self._root_prepared:
            return
        prefix = None
        if self.cloud is not None:
            try:
                output = str(self.cloud.output("Pipeline", "PredictionsTopic"))
            except AssemblyError:
                output = ""
            prefix = topics.prefix_of_predictions_output(output)
        record = RunRecord(
            stage=self.options.stage,
            topic_prefix=prefix,
            finished=finished,
            ok=self.report.ok if finished else None,
            published=len(self.report.published) if finished else None,
        )
        try:
            write_run_record(root, record)
        except OSError as error:  # the run's result stands; readers fall back to defaults
            LOG.warning("cannot write the run record in %s: %s", root, error)

    def _run(self) -> None:
        o = self.options
        prepare_root(o.root)
        self._root_prepared = True
        try:
            _, cloud = self.deploy()
        except (ValueError, RuntimeError) as error:
            raise StepFailed("deploy stacks", str(error)) from None
        self._record_run(finished=False)
        self.provision(cloud)
        self.connect(cloud)
        self.cloud_calls(cloud)
        resolution = self.resolve(cloud)
        self.credentials(cloud)
        self.download(cloud, resolution)
        services = self.interpolate(resolution)
        self.file_access(services)
        if o.platform != HOST_PLATFORM:
            self.report.notes.append(
                f"{o.platform}: resolution, download and interpolation are for {o.platform}; the "
                f"lifecycle scripts run on this {HOST_PLATFORM} host, which proves nothing about "
                f"them on {o.platform}"
            )
        if not o.run_lifecycle:
            return
        images = sorted(p for p in o.images.iterdir() if p.is_file()) if o.images else []
        first = self.boot("boot 1", True, resolution, services, images)
        if first.broken:
            raise StepFailed("boot 1", "; ".join(f"{k}: {v}" for k, v in first.broken.items()))
        if o.reboot:
            second = self.boot("boot 2 (reboot, offline)", False, resolution, services, images)
            if second.broken:
                raise StepFailed(
                    "boot 2 (reboot, offline)",
                    "; ".join(f"{k}: {v}" for k, v in second.broken.items()),
                )
            if TOKEN_EXCHANGE in resolution.components:
                # what the offline boot kept (captures, metrics windows) goes out now
                third = self.boot("boot 3 (network back)", True, resolution, services, [])
                if third.broken:
                    raise StepFailed(
                        "boot 3 (network back)",
                        "; ".join(f"{k}: {v}" for k, v in third.broken.items()),
                    )


def _runs_a_command(lifecycle: Mapping[str, Any]) -> bool:
    """A lifecycle with a step the nucleus runs as a command (GenericExternalService.run)."""
    steps = ("install", "startup", "run", "bootstrap", "shutdown", "recover")
    return any(str(k).lower() in steps and v for k, v in lifecycle.items())


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [t for v in value.values() for t in _strings(v)]
    if isinstance(value, list):
        return [t for v in value for t in _strings(v)]
    return []


def _paths_named(lifecycle: Mapping[str, Any], root: Path, options: DeviceOptions) -> list[Path]:
    """Absolute paths inside the nucleus root (and the wheelhouse) in a lifecycle's strings."""
    bases = [root.resolve()]
    if options.wheelhouse is not None:
        bases.append(options.wheelhouse.resolve())
    found: list[Path] = []
    for text in _strings(lifecycle):
        for match in _PATH_IN_TEXT.findall(text):
            path = Path(match.rstrip("."))
            if any(path == b or b in path.parents for b in bases) and path not in found:
                found.append(path)
    if options.wheelhouse is not None and any("pip" in t for t in _strings(lifecycle)):
        found.append(options.wheelhouse.resolve())  # PIP_FIND_LINKS of the first boot
    return found


def root_problem(
    root: Path,
    *,
    marker: str = ROOT_MARKER,
    made_by: str = "device_sim",
    a_run: str = "a run deletes its root",
    example: str = "build/device-sim",
) -> str | None:
    """Why ``root`` must not be used as a folder a run deletes or replaces; None when it may.

    Refused: the filesystem root, the home folder, the current folder, the repository, any
    folder holding one of them, something that is not a folder, and a non-empty folder without
    ``marker`` (one that ``made_by`` did not make). The main job checks its ``--out`` with it
    too, under its own marker.
    """
    resolved = root.resolve()
    keep = (
        (Path(resolved.anchor), "the filesystem root"),
        (Path.home().resolve(), "your home folder"),
        (REPO_ROOT, "the repository"),
        (Path.cwd().resolve(), "the current folder"),
    )
    for path, what in keep:
        if resolved == path:
            return f"{what}; give a folder of its own, e.g. {example}"
    held = [f"{what} ({path})" for path, what in keep if resolved in path.parents]
    if held:  # all of them: a clone directly under /tmp holds the repository and more
        return f"a folder that holds {' and '.join(held)}; give a folder of its own, e.g. {example}"
    if root.exists() and not root.is_dir():
        return "not a folder"
    if root.is_dir() and any(root.iterdir()) and not (root / marker).is_file():
        return (
            f"not empty and not made by {made_by} (no {marker} in it); {a_run}, so give a new "
            "or empty folder"
        )
    return None


def prepare_root(root: Path) -> None:
    """Recreate ``root`` empty, with the marker that lets a later run recreate it again."""
    problem = root_problem(root)
    if problem:
        raise StepFailed("arguments", f"--root {root}: {problem}")
    # Through a symbolic link or "..", the folder itself is what is recreated.
    root = root.resolve()
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    root.chmod(0o755)  # NucleusPaths.setRootPath: Permissions.setRootPermission, rwxr-xr-x
    (root / ROOT_MARKER).write_text("made by python -m device_sim; deleted by its next run\n")


def model_input_shape(stage: Stage) -> tuple[int, ...]:
    """The model input shape the stack packages for (Custom::ModelPackage Metadata)."""
    for stack in stage.stacks:
        for resource in stack.template.get("Resources", {}).values():
            if resource.get("Type") == "Custom::ModelPackage":
                metadata = resource.get("Properties", {}).get("Metadata")
                if isinstance(metadata, str):
                    shape = json.loads(metadata).get("input_shape")
                    if shape:
                        return tuple(int(d) for d in shape)
    return (1, 3, 224, 224)
