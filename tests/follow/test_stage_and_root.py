"""``--local`` after the simulated device has finished, the topic prefix of the stage rather
than a fixed one, and a folder that is not a device root (issue 18, "The follow command")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from device_sim import run_record
from edge_follow import assembly, cli
from edge_follow.sources import FollowError
from tests.follow.harness import PREDICTION, Follower, run_follow


def device_root(root: Path, *messages: tuple[str, str], record: run_record.RunRecord | None):
    """A folder as ``python -m device_sim --root`` leaves it: marker, publish log, record."""
    (root / run_record.ROOT_MARKER).write_text("")
    published = root / run_record.PUBLISHED
    published.parent.mkdir(parents=True, exist_ok=True)
    with published.open("a") as out:
        for topic, name in messages:
            payload = {**json.loads(PREDICTION), "input": name}
            out.write(json.dumps({"topic": topic, "payload": payload, "time": 1.0}) + "\n")
    if record is not None:
        run_record.write_run_record(root, record)


def finished(prefix: str | None = "edge-ai", published: int = 2) -> run_record.RunRecord:
    return run_record.RunRecord("dev", prefix, finished=True, ok=True, published=published)


def test_after_the_run_finished_it_shows_what_was_published(tmp_path):
    """Before: a follower started after device_sim had finished began at the end of the log
    and waited in silence for messages that would never come."""
    device_root(
        tmp_path,
        ("edge-ai/sim-1/predictions", "a.png"),
        ("edge-ai/sim-1/predictions", "b.png"),
        record=finished(),
    )
    result = run_follow("--local", str(tmp_path), "--count", "2", "--timeout", "20", "--json")
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["input"] for line in result.stdout.splitlines()] == [
        "a.png",
        "b.png",
    ]
    assert "run has finished (ok, 2 results published): showing them" in result.stderr


def test_while_the_run_goes_on_it_starts_at_the_end_like_a_subscriber(tmp_path):
    running = run_record.RunRecord("dev", "edge-ai", finished=False)
    device_root(tmp_path, ("edge-ai/sim-1/predictions", "old.png"), record=running)
    result = run_follow("--local", str(tmp_path), "--timeout", "1")
    assert result.returncode == 0 and result.stdout == ""
    assert "has finished" not in result.stderr


def test_local_follows_the_prefix_the_simulated_run_used(tmp_path):
    device_root(
        tmp_path,
        ("edge-ai/sim-1/predictions", "default-prefix.png"),
        ("acme/cams/sim-1/predictions", "stage-prefix.png"),
        record=finished("acme/cams"),
    )
    result = run_follow("--local", str(tmp_path), "--count", "1", "--timeout", "5", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["input"] == "stage-prefix.png"
    assert "following acme/cams/+/predictions" in result.stderr


def test_an_explicit_topic_prefix_wins_over_the_run_record(tmp_path):
    device_root(
        tmp_path, ("edge-ai/sim-1/predictions", "default.png"), record=finished("acme/cams")
    )
    result = run_follow(
        "--local", str(tmp_path), "--topic-prefix", "edge-ai", "--count", "1", "--timeout", "5"
    )
    assert result.returncode == 0, result.stderr
    assert "default.png" in result.stdout


def test_a_folder_that_is_not_a_device_root_is_refused(tmp_path):
    (tmp_path / "holiday.jpg").write_bytes(b"not a device")
    result = run_follow("--local", str(tmp_path), "--timeout", "1")
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        f"python -m edge_follow: error: --local {tmp_path}: not a simulated device's root "
        f"(no {run_record.ROOT_MARKER} in it); give the --root that python -m device_sim ran "
        "with (default build/device-sim)"
    )


def test_an_empty_folder_is_waited_for(tmp_path):
    """device_sim about to fill it: the follower waits, as for a log not there yet."""
    follower = Follower("--local", str(tmp_path), "--timeout", "1")
    code, out, err = follower.finish()
    assert code == 0 and out == "" and "waiting for" in err


# -------------------------------------------------------------------- the cloud assembly
@pytest.fixture(scope="module")
def acme_assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.infra.conftest import synthesize

    outdir = tmp_path_factory.mktemp("acme")
    synthesize(outdir, publish_topic_prefix="acme/cams")
    return outdir


def test_the_stage_prefix_is_read_from_the_synthesized_assembly(acme_assembly):
    assert assembly.stage_prefix(acme_assembly, "dev") == "acme/cams"
    args = cli.build_parser().parse_args(["--broker", "h:1", "--assembly", str(acme_assembly)])
    assert cli.topic_prefix(args, None) == "acme/cams"


def test_an_unknown_stage_in_the_assembly_names_the_stages_there(acme_assembly):
    with pytest.raises(
        FollowError, match=r"no stage 'qa' in the cloud assembly .* \(stages there: dev\)"
    ):
        assembly.stage_prefix(acme_assembly, "qa")
    result = run_follow(
        "--broker", "127.0.0.1:1", "--assembly", str(acme_assembly), "--stage", "qa"
    )
    assert result.returncode == 1
    assert "no stage 'qa'" in result.stderr and "pass --stage, or --topic-prefix" in result.stderr


def test_without_an_assembly_the_default_prefix_is_followed(tmp_path):
    args = cli.build_parser().parse_args(["--broker", "h:1", "--assembly", str(tmp_path)])
    assert cli.topic_prefix(args, None) == cli.DEFAULT_PREFIX
