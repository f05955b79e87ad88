"""``python -m edge_follow --broker`` against a real mosquitto (tests/follow/conftest.py), with
predictions published by mosquitto_pub. The plain-MQTT mode shares everything with the AWS IoT
Core mode but the connection (edge_follow/connections.py)."""

from __future__ import annotations

import json
import signal
import socket

import pytest

from tests.follow.conftest import free_port
from tests.follow.harness import PREDICTION, PREDICTION_LINE, Follower, run_follow


@pytest.fixture
def follower_factory():
    started: list[Follower] = []

    def start(*args: str) -> Follower:
        follower = Follower(*args)
        started.append(follower)
        return follower

    yield start
    for follower in started:
        follower.kill()


def test_prints_a_prediction_published_to_the_broker(broker, follower_factory):
    follower = follower_factory("--broker", broker.address, "--count", "1", "--timeout", "60")
    assert f"following edge-ai/+/predictions on broker {broker.address}" in follower.ready()
    broker.publish("edge-ai/thing-1/predictions", PREDICTION)
    code, out, err = follower.finish()
    assert code == 0, err
    assert out == PREDICTION_LINE + "\n"


def test_malformed_payloads_are_reported_and_following_goes_on(broker, follower_factory):
    follower = follower_factory("--broker", broker.address, "--count", "3", "--timeout", "60")
    follower.ready()
    broker.publish("edge-ai/thing-1/status", PREDICTION)  # not a predictions topic: not shown
    broker.publish("edge-ai/thing-2/predictions", "not json")
    broker.publish("edge-ai/thing-3/predictions", '["a", "list"]')
    broker.publish("edge-ai/thing-1/predictions", PREDICTION)
    code, out, err = follower.finish()
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 3, out
    assert lines[0].endswith("  thing-2  malformed payload (not JSON (Expecting value: line 1 "
                             "column 1 (char 0))): 'not json'")  # fmt: skip
    assert lines[1].endswith("  thing-3  malformed payload (a JSON list, not an object): "
                             "'[\"a\", \"list\"]'")  # fmt: skip
    assert lines[2] == PREDICTION_LINE


def test_json_prints_each_message_as_one_json_line(broker, follower_factory):
    follower = follower_factory("--broker", broker.address, "--count", "1", "--json")
    follower.ready()
    pretty = json.dumps(json.loads(PREDICTION), indent=2)  # a multi-line payload
    broker.publish("edge-ai/thing-1/predictions", pretty)
    code, out, err = follower.finish()
    assert code == 0, err
    assert len(out.splitlines()) == 1
    assert json.loads(out) == json.loads(PREDICTION)


def test_a_custom_topic_prefix_names_the_thing_between_prefix_and_predictions(
    broker, follower_factory
):
    follower = follower_factory("--broker", broker.address, "--count", "1",
                                "--topic-prefix", "fleet/eu")  # fmt: skip
    assert "following fleet/eu/+/predictions" in follower.ready()
    broker.publish("edge-ai/thing-1/predictions", PREDICTION)  # another prefix: not shown
    broker.publish("fleet/eu/cam-7/predictions", PREDICTION)
    code, out, err = follower.finish()
    assert code == 0, err
    assert out == PREDICTION_LINE.replace("thing-1", "cam-7") + "\n"


def test_sigint_stops_it_cleanly(broker, follower_factory):
    follower = follower_factory("--broker", broker.address)
    follower.ready()
    follower.process.send_signal(signal.SIGINT)
    code, out, err = follower.finish(timeout=15)
    assert code == 0
    assert out == "" and "Traceback" not in err


def test_count_not_reached_within_timeout_fails_with_one_line(broker):
    result = run_follow("--broker", broker.address, "--count", "2", "--timeout", "1")
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        "python -m edge_follow: timed out after 1 s: 0 of 2 messages arrived"
    )


def test_an_unreachable_broker_is_one_clear_line():
    port = free_port()  # nothing listens there
    result = run_follow("--broker", f"127.0.0.1:{port}", "--count", "1")
    assert result.returncode == 1
    assert result.stderr == (
        f"python -m edge_follow: error: cannot connect to broker 127.0.0.1:{port}: "
        "AWS_IO_SOCKET_CONNECTION_REFUSED: socket connection refused.\n"
    )
    assert result.stdout == ""


def test_a_listener_that_is_not_mqtt_is_reported(tmp_path):
    """Something answers on the port but never speaks MQTT: the connect times out cleanly."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        result = run_follow("--broker", f"127.0.0.1:{port}", "--connect-timeout", "1")
    assert result.returncode == 1
    assert result.stderr.startswith(f"python -m edge_follow: error: cannot connect to broker "
                                    f"127.0.0.1:{port}: ")  # fmt: skip
    assert len(result.stderr.splitlines()) == 1
