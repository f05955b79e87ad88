"""``--local`` (the simulated device's publish record), the AWS IoT Core mode up to the network
(credentials, endpoint lookup, the signed WebSocket connection), the output format, and the
one-line errors for bad arguments."""

from __future__ import annotations

import json
import re
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from device_sim import run_record
from edge_follow import cli, connections, render
from edge_follow.sources import LocalSource
from tests.follow.harness import PREDICTION, PREDICTION_LINE, Follower, follow_env, run_follow


def record(topic: str, payload: object, time: str = "2026-01-02T03:04:05.000+00:00") -> str:
    """One line of ROOT/mqtt/published.jsonl, as the simulated device writes it."""
    return (
        json.dumps(
            {"topic": topic, "payload": payload, "qos": 1, "client_id": "thing-1", "time": time}
        )
        + "\n"
    )


def append(path: Path, text: str) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(text)


# ------------------------------------------------------------------------------ --local
def test_local_follows_new_records_of_the_simulated_device(tmp_path):
    (tmp_path / run_record.ROOT_MARKER).write_text("")
    published = tmp_path / "mqtt" / "published.jsonl"
    published.parent.mkdir()
    append(published, record("edge-ai/thing-1/predictions", json.loads(PREDICTION)))  # old
    follower = Follower("--local", str(tmp_path), "--count", "2", "--timeout", "60")
    try:
        follower.ready()
        no_timestamp = {k: v for k, v in json.loads(PREDICTION).items() if k != "timestamp"}
        append(published, record("edge-ai/thing-1/status", {"state": "RUNNING"}))  # not shown
        append(published, record("edge-ai/thing-9/predictions", no_timestamp))
        half = record("edge-ai/thing-1/predictions", "not json")
        append(published, half[:20])  # a line written in two parts is read once, whole
        append(published, half[20:])
        code, out, err = follower.finish()
    finally:
        follower.kill()
    assert code == 0, err
    lines = out.splitlines()
    # No payload timestamp: the record's publish time is shown.
    shown = PREDICTION_LINE.replace("thing-1", "thing-9")
    assert lines[0] == shown.replace("2026-01-01T12:00:00.000", "2026-01-02T03:04:05.000")
    assert lines[1] == (
        "2026-01-02T03:04:05.000+00:00  thing-1  malformed payload (not JSON (Expecting value: "
        "line 1 column 1 (char 0))): 'not json'"
    )


def test_local_from_start_replays_and_waits_for_a_file_not_there_yet(tmp_path):
    result = run_follow("--local", str(tmp_path), "--timeout", "1")
    assert result.returncode == 0 and result.stdout == ""
    assert f"waiting for {tmp_path}/mqtt/published.jsonl" in result.stderr
    (tmp_path / run_record.ROOT_MARKER).write_text("")
    published = tmp_path / "mqtt" / "published.jsonl"
    published.parent.mkdir()
    append(published, record("edge-ai/thing-1/predictions", json.loads(PREDICTION)))
    replay = run_follow("--local", str(tmp_path), "--from-start", "--count", "1", "--json")
    assert replay.returncode == 0, replay.stderr
    assert json.loads(replay.stdout) == json.loads(PREDICTION)


def drain(source: LocalSource) -> list[str]:
    """Inputs of the messages the source has now."""
    names = []
    while (message := source.get(0)) is not None:
        names.append(json.loads(message.payload)["input"])
    return names


def prediction(name: str) -> object:
    return {**json.loads(PREDICTION), "input": name}


@pytest.mark.parametrize("longer", [False, True])
def test_local_follows_a_record_that_device_sim_replaced(tmp_path, longer):
    """A device_sim run deletes its root and writes a new published.jsonl: the follower must
    read the new file from its start, whether it is shorter or longer than the old one."""
    published = tmp_path / "mqtt" / "published.jsonl"
    published.parent.mkdir()
    append(published, record("edge-ai/t/predictions", prediction("old-1.png")))
    source = LocalSource(tmp_path, "edge-ai/+/predictions", from_start=True)
    source.start()
    try:
        assert drain(source) == ["old-1.png"]
        published.unlink()
        append(published, record("edge-ai/t/predictions", prediction("new-1.png")))
        if longer:
            append(published, record("edge-ai/t/predictions", prediction("new-2.png")))
        assert drain(source) == ["new-1.png", "new-2.png"][: 2 if longer else 1]
        append(published, record("edge-ai/t/predictions", prediction("new-3.png")))
        assert drain(source) == ["new-3.png"]
    finally:
        source.close()


def test_local_starts_over_when_the_record_is_truncated(tmp_path):
    published = tmp_path / "mqtt" / "published.jsonl"
    published.parent.mkdir()
    append(published, record("edge-ai/t/predictions", prediction("old-1.png")))
    append(published, record("edge-ai/t/predictions", prediction("old-2.png")))
    source = LocalSource(tmp_path, "edge-ai/+/predictions", from_start=True)
    source.start()
    try:
        assert drain(source) == ["old-1.png", "old-2.png"]
        published.write_text(record("edge-ai/t/predictions", prediction("new-1.png")))
        assert drain(source) == ["new-1.png"]
    finally:
        source.close()


# ------------------------------------------------------------------------------ AWS IoT Core
def test_aws_mode_without_credentials_is_one_clear_line(tmp_path):
    env = follow_env(
        AWS_REGION="us-east-1",
        AWS_CONFIG_FILE=str(tmp_path / "none"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
    )
    result = run_follow("--count", "1", env=env)
    assert result.returncode == 1
    assert result.stderr.startswith("python -m edge_follow: error: no AWS credentials found")
    assert len(result.stderr.splitlines()) == 1


def test_aws_mode_without_a_region_is_one_clear_line(tmp_path):
    env = follow_env(AWS_CONFIG_FILE=str(tmp_path / "none"))
    result = run_follow("--count", "1", env=env)
    assert result.returncode == 1
    assert result.stderr == (
        "python -m edge_follow: error: no AWS region: pass --region, or set AWS_REGION or a "
        "profile region\n"
    )


def test_aws_mode_signs_a_websocket_connection_to_the_endpoint_on_port_443(tmp_path):
    """Real credentials chain and awsiotsdk builder; 127.0.0.1:443 has no listener, so the
    connection is refused locally: nothing leaves the machine."""
    env = follow_env(
        AWS_ACCESS_KEY_ID="AKIAIOSFODNN7EXAMPLE",
        AWS_SECRET_ACCESS_KEY="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",  # AWS docs example
        AWS_CONFIG_FILE=str(tmp_path / "none"),
    )
    result = run_follow("--region", "eu-west-1", "--endpoint", "127.0.0.1", "--count", "1", env=env)
    assert result.returncode == 1
    assert result.stderr == (
        "python -m edge_follow: error: cannot connect to AWS IoT Core 127.0.0.1 (eu-west-1): "
        "AWS_IO_SOCKET_CONNECTION_REFUSED: socket connection refused.\n"
    )


def test_the_endpoint_is_the_accounts_ats_data_endpoint(monkeypatch):
    """moto answers iot:DescribeEndpoint like IoT Core: ``<id>-ats.iot.<region>...`` for
    ``iot:Data-ATS`` only (``iot:Data`` has no ``-ats``)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        endpoint = connections.data_endpoint("eu-west-1")
    assert re.fullmatch(r"[a-z0-9]+-ats\.iot\.eu-west-1\.amazonaws\.com", endpoint), endpoint


def test_an_endpoint_lookup_that_fails_says_to_pass_endpoint(monkeypatch):
    class Failing:
        def describe_endpoint(self, **kwargs):
            from botocore.exceptions import ClientError

            assert kwargs == {"endpointType": "iot:Data-ATS"}
            raise ClientError(
                {"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}},
                "DescribeEndpoint",
            )

    monkeypatch.setattr(boto3, "client", lambda *a, **k: Failing())
    with pytest.raises(connections.FollowError) as caught:
        connections.data_endpoint("us-east-1")
    assert str(caught.value) == (
        "cannot look up the AWS IoT endpoint in us-east-1 (AccessDeniedException: not allowed); "
        "pass --endpoint HOST"
    )


# ------------------------------------------------------------------------------ arguments
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--broker", "localhost"], "argument --broker: expected HOST:PORT, got 'localhost'"),
        (["--broker", "h:99999"], "argument --broker: port must be 1-65535, got 99999"),
        (["--broker", "h:x"], "argument --broker: port must be a number, got 'x'"),
        (["--count", "0"], "argument --count: must be at least 1, got 0"),
        (["--timeout", "-1"], "argument --timeout: must be a positive number of seconds, got -1"),
        (["--topic-prefix", "a/+"], "argument --topic-prefix: must not contain MQTT wildcards"),
        (["--topic-prefix", "/a"], "argument --topic-prefix: expected a topic prefix like"),
        (["--broker", "h:1", "--local", "."], "argument --local: not allowed with argument"),
        (["--broker", "h:1", "--region", "x"], "--region is for AWS IoT Core; it does not apply"),
        (["--local", "/no/such/dir"], "--local /no/such/dir: no such folder"),
        (["--from-start"], "--from-start applies to --local only"),
    ],
)
def test_bad_arguments_are_one_clear_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith("python -m edge_follow: error: ")
    assert message in err[-1]


# ------------------------------------------------------------------------------ output
def test_a_failed_input_and_a_result_without_top_are_shown_for_what_they_are():
    failed = render.render(
        "edge-ai", "edge-ai/t/predictions",
        b'{"input": "b.jpg", "error": "cannot decode image", "timestamp": "T"}', as_json=False,
    )  # fmt: skip
    assert failed.text == "T  t  b.jpg  ERROR cannot decode image" and not failed.malformed
    odd = render.render("edge-ai", "edge-ai/t/predictions", b'{"input": "x", "top": 3}',
                        as_json=False, received="R")  # fmt: skip
    assert odd.malformed
    assert odd.text.startswith("R  t  malformed prediction (no top list of label/score)")


HOSTILE_TOPIC = "edge-ai/t\x1b]0;pwned\x07/predictions"  # sets the terminal title, raw


def test_device_text_with_control_characters_is_escaped_in_human_output():
    """Thing names, input names, labels and error texts come from devices: a newline would forge
    a second line, an escape sequence would drive the terminal."""
    result = {
        "input": "a.png\n2026-01-01T00:00:00  thing-9  forged.png  cat 1.000",
        "top": [{"index": 0, "label": "cat\x9b2J\u202e", "score": 0.5}],
        "timestamp": "T\r",
    }
    line = render.render("edge-ai", HOSTILE_TOPIC, json.dumps(result).encode(), as_json=False)
    assert line.text == (
        "T\\r  t\\x1b]0;pwned\\x07  "
        "a.png\\n2026-01-01T00:00:00  thing-9  forged.png  cat 1.000  cat\\x9b2J\\u202e 0.500"
    )
    failed = {"input": "b\x1b[2J.jpg", "error": "bad\x00\x7f\u2028", "timestamp": "T"}
    line = render.render("edge-ai", "edge-ai/t/predictions", json.dumps(failed).encode(),
                         as_json=False)  # fmt: skip
    assert line.text == "T  t  b\\x1b[2J.jpg  ERROR bad\\x00\\x7f\\u2028"
    bad = render.render("edge-ai", HOSTILE_TOPIC, b"\x1b[31m", as_json=True, received="R")
    assert bad.malformed and "\x1b" not in bad.text and "t\\x1b]0;pwned\\x07" in bad.text


def test_json_output_stays_exact_json_with_no_raw_terminal_controls():
    message = {"input": "a\x9b.png\u2028", "error": "x\x1b\u202e", "n": 1}
    line = render.render("edge-ai", HOSTILE_TOPIC, json.dumps(message).encode(), as_json=True)
    assert json.loads(line.text) == message
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F or c in "\u2028\u202e"
                   for c in line.text)  # fmt: skip
    assert "\n" not in line.text


@pytest.mark.parametrize(
    ("topic", "matches"),
    [
        ("edge-ai/t/predictions", True),
        ("edge-ai/t/x/predictions", False),
        ("edge-ai//predictions", True),
        ("edge-ai/t/predictions/more", False),
        ("other/t/predictions", False),
    ],
)
def test_topic_filter_matching_follows_mqtt(topic, matches):
    assert render.topic_matches("edge-ai/+/predictions", topic) is matches


def test_local_without_a_root_follows_device_sims_default_root():
    """One default root everywhere: device_sim writes there, edge_follow --local reads there,
    and the README's commands use it."""
    from device_sim.__main__ import _parser as device_sim_parser

    default = device_sim_parser().get_default("root")
    assert cli.build_parser().parse_args(["--local"]).local == default
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert f"python -m edge_follow --local {default}" in readme
    assert f"--root {default}" in readme
