"""Run the resolved components' lifecycles for real, in a sandboxed nucleus root.

Followed (aws-greengrass-nucleus):

* ``lifecyclemanager/Lifecycle.java``: the nucleus runs ``install`` at every launch of a
  component (new deployment, reboot, nucleus restart); default timeouts
  ``DEFAULT_INSTALL_STAGE_TIMEOUT_IN_SEC`` = 120 s, ``DEFAULT_STARTUP_STAGE_TIMEOUT_IN_SEC`` =
  120 s; ``run`` has no timeout unless the recipe sets one
  (``GenericExternalService.handleRunScript``).
* ``lifecyclemanager/GenericExternalService.java`` ``shouldSkip``: ``Skipif`` is ``onpath CMD``
  (CMD found on the nucleus's PATH) or ``exists FILE``, optionally negated with ``!``; anything
  else throws InputValidationException, which ``run`` turns into RunStatus.Errored with
  ``<STEP>_CONFIG_NOT_VALID`` (``ComponentStatusCode.getCodeInvalidConfigForState``): the step's
  script never runs and the component errors. Lifecycle keys are case-insensitive (config topics).
* ``GenericExternalService.startup``: the Startup step runs; only when it did nothing (absent, or
  skipped by its Skipif: RunStatus.NothingDone) does ``handleRunScript`` run the Run step. A
  component with a Startup step never runs its Run step.
* ``lifecyclemanager/ShellRunner.java`` ``setup``: the script runs with ``sh -c`` (``UnixExec
  .withShell``) in ``<root>/work/<component>``, with ``SVCUID`` and
  ``AWS_CONTAINER_AUTHORIZATION_TOKEN`` (both the service's unique id) and ``GG_ROOT_CA_PATH``;
  the ``setenv`` namespace adds ``AWS_IOT_THING_NAME`` (``DeviceConfiguration``),
  ``AWS_REGION``/``AWS_DEFAULT_REGION`` (``DeviceConfiguration``),
  ``AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH`` and ``..._FOR_COMPONENT``
  (``ipc/IPCEventStreamService.java``); the recipe's ``Setenv`` (lifecycle-wide, then per step)
  comes on top. ``Exec`` passes the nucleus's own environment (``PATH``, ``HOME``).
* Stopping: SIGTERM, then SIGKILL after ``Exec.gracefulShutdownTimeout`` (5 s) (``UnixExec.close``).
* Dependency order: a component starts after its dependencies (``ComponentDependencies``);
  a component whose HARD dependency is broken does not start.

Who runs the scripts (:mod:`device_sim.run_with`): the component default user (``ggc_user:
ggc_group``), as ``UnixPlatform.getSudoCommand`` does (``sudo -n -E -H -u USER -g GROUP``:
environment kept, ``HOME`` the user's); a step with ``RequiresPrivilege: true`` runs as the
nucleus's user (root) (``GenericExternalService.addUser``). Before the first step of a service
that runs a command (not one skipped by ``Skipif``), its files are handed to that user
(``GenericExternalService.run`` -> ``updateComponentPathOwner``); the work folder is created
rwx------ (``NucleusPaths.workPath``).

Not modelled: retries of a failed install (the nucleus retries three times before BROKEN; the
simulator reports the first failure), the token exchange service.

Network refusal for the reboot: ``unshare -n`` (a new, empty network namespace: no route to
anything, loopback down; UNIX domain sockets such as the IPC socket still work). Where
``unshare`` is not permitted, proxy variables pointing at a closed loopback port are set instead
(weaker: a tool that ignores proxies still reaches the network); :attr:`LifecycleRunner.isolation`
says which one was used.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from device_sim.interpolation import NucleusPaths, ResolvedService
from device_sim.run_with import Ownership, RunWith, prepare_work_path, update_owner

DEFAULT_INSTALL_TIMEOUT = 120
DEFAULT_STARTUP_TIMEOUT = 120
GRACEFUL_SHUTDOWN_SECONDS = 5
SKIP_COMMAND = re.compile(r"(exists|onpath) +(.+)")
DEVICE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class LifecycleFailed(RuntimeError):
    """A lifecycle step failed; the message names component, step and reason."""


class SkipifInvalid(LifecycleFailed):
    """A ``Skipif`` that is not ``[!](exists|onpath) ARG`` (``shouldSkip``'s
    InputValidationException)."""


# ComponentStatusCode.getCodeInvalidConfigForState
INVALID_CONFIG_CODE = {
    "install": "INSTALL_CONFIG_NOT_VALID",
    "startup": "STARTUP_CONFIG_NOT_VALID",
    "run": "RUN_CONFIG_NOT_VALID",
}


def _ci(mapping: Mapping[str, Any], key: str) -> Any:
    for k, v in mapping.items():
        if k.lower() == key.lower():
            return v
    return None


@dataclass(frozen=True)
class Step:
    name: str
    script: str
    timeout: int | None
    skipif: str | None
    setenv: Mapping[str, str]
    requires_privilege: bool


def step_of(lifecycle: Mapping[str, Any], name: str) -> Step | None:
    raw = _ci(lifecycle, name)
    if raw is None:
        return None
    if isinstance(raw, str):
        return Step(name, raw, None, None, {}, False)
    if not isinstance(raw, Mapping):
        raise LifecycleFailed(f"lifecycle step {name} is neither a script nor an object")
    script = _ci(raw, "Script")
    if script is None:
        raise LifecycleFailed(
            f"lifecycle step {name} has no Script (generic-service-invalid-config)"
        )
    timeout = _ci(raw, "Timeout")
    return Step(
        name=name,
        script=str(script),
        timeout=int(timeout) if timeout is not None else None,
        skipif=str(_ci(raw, "Skipif")) if _ci(raw, "Skipif") is not None else None,
        setenv={str(k): str(v) for k, v in (_ci(raw, "Setenv") or {}).items()},
        requires_privilege=str(_ci(raw, "RequiresPrivilege")).lower() == "true",
    )


def should_skip(expression: str, env_path: str, home: str) -> bool:
    """``GenericExternalService.shouldSkip``."""
    expr = expression.strip()
    negate = expr.startswith("!")
    if negate:
        expr = expr[1:].strip()
    match = SKIP_COMMAND.fullmatch(expr)
    if not match:
        raise SkipifInvalid(
            f"Invalid format for skipif: {expression!r} (valid pattern: [!]{SKIP_COMMAND.pattern})"
        )
    operator, argument = match.group(1), match.group(2)
    if operator == "onpath":
        found = shutil.which(argument, path=env_path) is not None
    else:  # exists: KernelCommandLine.deTilde expands a leading ~
        path = home + argument[1:] if argument.startswith("~") else argument
        found = Path(path).exists()
    return found != negate


@dataclass
class StepResult:
    component: str
    step: str
    outcome: str  # "ok", "skipped", "failed", "timeout", "started"
    seconds: float
    detail: str = ""


@dataclass
class Boot:
    label: str
    results: list[StepResult] = field(default_factory=list)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    broken: dict[str, str] = field(default_factory=dict)


def unshare_available() -> bool:
    unshare = shutil.which("unshare")
    if unshare is None:
        return False
    try:
        probe = subprocess.run([unshare, "-n", "true"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


class LifecycleRunner:
    def __init__(
        self,
        paths: NucleusPaths,
        *,
        thing_name: str,
        region: str,
        ipc_env: Callable[[str], Mapping[str, str]],
        extra_env: Mapping[str, str] | None = None,
        network: bool = True,
        run_with: RunWith | None = None,
        ownership: Ownership | None = None,
    ) -> None:
        self.paths = paths
        self.run_with = run_with
        self.ownership = ownership or Ownership(paths.root)
        # services whose runWith this nucleus launch has computed (GenericExternalService.runWith
        # is null again after a restart, so a reboot hands the files over again)
        self._handed_over: set[str] = set()
        self.thing_name = thing_name
        self.region = region
        self.ipc_env = ipc_env
        self.extra_env = dict(extra_env or {})
        self.network = network
        self.isolation = "none"
        if not network:
            self.isolation = "unshare -n" if unshare_available() else "proxy to 127.0.0.1:9"
        (paths.root / "logs").mkdir(parents=True, exist_ok=True)

    def environment(self, service: ResolvedService, step: Step) -> dict[str, str]:
        env = {
            "PATH": DEVICE_PATH,
            "HOME": os.environ.get("HOME", "/root"),
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            "AWS_IOT_THING_NAME": self.thing_name,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "GG_ROOT_CA_PATH": str(self.paths.root / "rootCA.pem"),
        }
        if self._switches(step):
            assert self.run_with is not None
            env["HOME"] = self.run_with.home  # sudo -H
        env.update(self.ipc_env(service.name))
        env.update(self.extra_env)
        setenv = _ci(service.lifecycle, "Setenv") or {}
        env.update({str(k): str(v) for k, v in setenv.items()})
        env.update(step.setenv)
        if not self.network and self.isolation.startswith("proxy"):
            closed = "http://127.0.0.1:9"
            for name in (
                "HTTP_PROXY",
                "HTTPS_PROXY",
                "ALL_PROXY",
                "http_proxy",
                "https_proxy",
                "all_proxy",
            ):
                env[name] = closed
            env["NO_PROXY"] = env["no_proxy"] = ""
        return env

    def _switches(self, step: Step) -> bool:
        """The step's process runs as the run-with user (not as this process's user)."""
        return self.run_with is not None and self.run_with.real and not step.requires_privilege

    def _command(self, script: str, step: Step | None = None) -> list[str]:
        if not self.network and self.isolation == "unshare -n":
            if step is not None and self._switches(step):
                # unshare needs root: enter the namespace first, then become the user (unshare
                # --setgid also drops supplementary groups; the primary group is the run-with one)
                assert self.run_with is not None
                return [
                    "unshare",
                    "-n",
                    "--setgid",
                    str(self.run_with.gid),
                    "--setuid",
                    str(self.run_with.uid),
                    "sh",
                    "-c",
                    script,
                ]
            return ["unshare", "-n", "sh", "-c", script]
        return ["sh", "-c", script]

    def _spawn(
        self, service: ResolvedService, step: Step, env: Mapping[str, str], log: IO[bytes]
    ) -> subprocess.Popen[bytes]:
        """Hand the service's files over on its first command, then start ``step`` as the
        run-with user (root for ``RequiresPrivilege``), in its rwx------ work folder."""
        cwd = self.paths.work(service.name)
        prepare_work_path(cwd)
        if self.run_with is not None and service.name not in self._handed_over:
            self._handed_over.add(service.name)
            update_owner(
                self.ownership,
                self.paths.artifacts(service.name, service.version),
                self.paths.unarchived(service.name, service.version),
                cwd,
                self.run_with,
            )
        switch: dict[str, Any] = {}
        isolated = not self.network and self.isolation == "unshare -n"
        if self._switches(step) and not isolated:
            assert self.run_with is not None
            switch = {
                "user": self.run_with.uid,
                "group": self.run_with.gid,
                "extra_groups": list(self.run_with.groups),
            }
        return subprocess.Popen(
            self._command(step.script, step),
            cwd=cwd,
            env=dict(env),
            stdout=log,
            stderr=log,
            start_new_session=True,
            **switch,
        )

    def _log(self, component: str) -> IO[bytes]:
        return (self.paths.root / "logs" / f"{component}.log").open("ab")

    def run_step(
        self, service: ResolvedService, step: Step, default_timeout: int | None, boot: Boot
    ) -> StepResult:
        env = self.environment(service, step)
        try:
            skip = step.skipif is not None and should_skip(step.skipif, env["PATH"], env["HOME"])
        except SkipifInvalid as error:
            return self._invalid(service, step, error)
        if skip:
            return StepResult(service.name, step.name, "skipped", 0.0, f"Skipif {step.skipif}")
        timeout = step.timeout if step.timeout is not None else default_timeout
        started = time.monotonic()
        with self._log(service.name) as log:
            log.write(f"--- {boot.label}: {step.name} ---\n".encode())
            log.flush()
            process = self._spawn(service, step, env, log)
            try:
                code = process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                stop(process)
                return StepResult(
                    service.name,
                    step.name,
                    "timeout",
                    time.monotonic() - started,
                    f"timed out after {timeout} s",
                )
        seconds = time.monotonic() - started
        if code != 0:
            tail = self.log_tail(service.name)
            return StepResult(
                service.name, step.name, "failed", seconds, f"exit code {code}; log tail: {tail}"
            )
        return StepResult(service.name, step.name, "ok", seconds)

    @staticmethod
    def _invalid(service: ResolvedService, step: Step, error: SkipifInvalid) -> StepResult:
        code = INVALID_CONFIG_CODE[step.name.lower()]
        return StepResult(service.name, step.name, "failed", 0.0, f"{code}: {error}")

    def log_tail(self, component: str, lines: int = 2) -> str:
        return self.log_tail_of(self.paths, component, lines)

    @staticmethod
    def log_tail_of(paths: NucleusPaths, component: str, lines: int = 2) -> str:
        path = paths.root / "logs" / f"{component}.log"
        text = path.read_text(errors="replace").strip().splitlines() if path.exists() else []
        return " | ".join(line.strip()[:240] for line in text[-lines:])

    def start(self, service: ResolvedService, boot: Boot) -> None:
        lifecycle = service.lifecycle
        for name, default in (
            ("Install", DEFAULT_INSTALL_TIMEOUT),
            ("Startup", DEFAULT_STARTUP_TIMEOUT),
        ):
            step = step_of(lifecycle, name)
            if step is None:
                continue
            result = self.run_step(service, step, default, boot)
            boot.results.append(result)
            if result.outcome in ("failed", "timeout"):
                boot.broken[service.name] = f"{name} {result.outcome}: {result.detail}"
                return
            if name == "Startup" and result.outcome != "skipped":
                return  # startup(): handleRunScript only after a Startup that did nothing
        run = step_of(lifecycle, "Run")
        if run is None:
            return
        env = self.environment(service, run)
        try:
            skip = run.skipif is not None and should_skip(run.skipif, env["PATH"], env["HOME"])
        except SkipifInvalid as error:
            result = self._invalid(service, run, error)
            boot.results.append(result)
            boot.broken[service.name] = f"Run failed: {result.detail}"
            return
        if skip:
            boot.results.append(StepResult(service.name, "Run", "skipped", 0.0, run.skipif or ""))
            return
        with self._log(service.name) as log:
            log.write(f"--- {boot.label}: Run ---\n".encode())
            log.flush()
            boot.processes[service.name] = self._spawn(service, run, env, log)
        boot.results.append(StepResult(service.name, "Run", "started", 0.0))

    def boot(
        self,
        label: str,
        services: Mapping[str, ResolvedService],
        order: list[str],
        dependencies: Mapping[str, frozenset[str]],
    ) -> Boot:
        boot = Boot(label)
        for name in order:
            service = services.get(name)
            if service is None:
                continue
            broken_deps = [d for d in dependencies.get(name, frozenset()) if d in boot.broken]
            if broken_deps:
                boot.broken[name] = f"not started: dependency {', '.join(broken_deps)} is broken"
                boot.results.append(StepResult(name, "-", "failed", 0.0, boot.broken[name]))
                continue
            self.start(service, boot)
        return boot


def stop(process: subprocess.Popen[bytes], grace: float = GRACEFUL_SHUTDOWN_SECONDS) -> int | None:
    """SIGTERM the process group, SIGKILL after ``grace`` seconds (UnixExec.close)."""
    if process.poll() is not None:
        return process.returncode
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        return process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        return process.wait()


def shutdown(boot: Boot) -> dict[str, int | None]:
    """Stop every Run process of a boot (reverse start order); exit codes by component."""
    codes = {}
    for name in reversed(list(boot.processes)):
        codes[name] = stop(boot.processes[name])
    return codes
