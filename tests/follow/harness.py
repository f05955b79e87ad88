"""Run ``python -m edge_follow`` as the user would: a subprocess, stdout and stderr captured."""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parents[2]
# The follower's working folder: empty, so no cloud assembly (cdk.out) a developer synthesized
# in the repository decides the topic prefix; tests that want one pass --assembly.
WORKDIR = Path(tempfile.mkdtemp(prefix="edge-follow-cwd-"))

PREDICTION = (
    '{"input": "cat.jpg", "top": [{"index": 281, "label": "tabby", "score": 0.91}, '
    '{"index": 282, "label": "tiger cat", "score": 0.05}], "latency_ms": 71.3, '
    '"inference_ms": 66.0, "model": "vgg16-3f2a", "runtime": "onnx", '
    '"timestamp": "2026-01-01T12:00:00.000+00:00"}'
)
PREDICTION_LINE = (
    "2026-01-01T12:00:00.000+00:00  thing-1  cat.jpg  tabby 0.910, tiger cat 0.050  71.3 ms"
)


def follow_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"PYTHONPATH": str(ROOT), "AWS_EC2_METADATA_DISABLED": "true", **extra})
    return env


class Follower:
    """``python -m edge_follow ARGS``; :meth:`ready` waits for its "following ..." line."""

    def __init__(self, *args: str, env: Optional[dict[str, str]] = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "edge_follow", *args],
            cwd=WORKDIR,
            env=env or follow_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.early_stderr = b""

    def ready(self, timeout: float = 30) -> str:
        """The first stderr line that says it is following (subscribed / file open)."""
        assert self.process.stderr is not None
        selector = selectors.DefaultSelector()
        selector.register(self.process.stderr, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while b"following " not in self.early_stderr:
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                raise AssertionError(f"not following within {timeout} s: {self.early_stderr!r}")
            chunk = os.read(self.process.stderr.fileno(), 4096)
            if not chunk:
                raise AssertionError(f"exited before following: {self.early_stderr!r}")
            self.early_stderr += chunk
        selector.close()
        return self.early_stderr.decode()

    def finish(self, timeout: float = 30) -> tuple[int, str, str]:
        """(exit code, stdout, all of stderr) once it exits by itself."""
        out, err = self.process.communicate(timeout=timeout)
        return self.process.returncode, out.decode(), (self.early_stderr + err).decode()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


def run_follow(*args: str, env: Optional[dict[str, str]] = None, timeout: float = 60):
    return subprocess.run(
        [sys.executable, "-m", "edge_follow", *args],
        cwd=WORKDIR, env=env or follow_env(), capture_output=True, text=True, timeout=timeout,
        check=False,
    )  # fmt: skip
