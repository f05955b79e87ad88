"""A real MQTT broker for the follow command's tests: Debian's mosquitto (scripts/setup.sh
installs it), started on a free loopback port with a generated config, anonymous, no TLS."""

from __future__ import annotations

import dataclasses
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclasses.dataclass(frozen=True)
class Broker:
    host: str
    port: int
    log: Path

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def publish(self, topic: str, payload: str | bytes, qos: int = 1) -> None:
        """Publish with mosquitto_pub: a second, independent MQTT client."""
        data = payload.encode() if isinstance(payload, str) else payload
        subprocess.run(
            ["mosquitto_pub", "-h", self.host, "-p", str(self.port), "-q", str(qos),
             "-t", topic, "-s"],
            input=data, check=True, timeout=30, capture_output=True,
        )  # fmt: skip


def _require(tool: str) -> str:
    path = shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/usr/bin")
    if path is None:
        pytest.fail(f"{tool} is not installed: run scripts/setup.sh (apt-get install mosquitto "
                    "mosquitto-clients)")  # fmt: skip
    return path


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    mosquitto = _require("mosquitto")
    _require("mosquitto_pub")
    port = free_port()
    config = tmp_path / "mosquitto.conf"
    log = tmp_path / "mosquitto.log"
    config.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        f"log_dest file {log}\nlog_type all\n"
    )
    process = subprocess.Popen([mosquitto, "-c", str(config)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            if process.poll() is not None:
                pytest.fail(
                    f"mosquitto exited: {process.stderr.read().decode() if process.stderr else ''}"
                )
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"mosquitto did not listen on 127.0.0.1:{port} within 10 s")
                time.sleep(0.05)
        yield Broker("127.0.0.1", port, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr:
            process.stderr.close()
