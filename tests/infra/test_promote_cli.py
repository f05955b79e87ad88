"""``python -m rollout.promote`` against hand-edited cdk.json files and partial assemblies: one
``error:`` line naming the file and the problem, nothing written. No synth: the assembly is
one hand-written template with the canary deployment's ring metadata."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rollout import promote


def assembly(root: Path, stage: str = "dev") -> Path:
    """A cloud assembly with the jetson class's canary deployment in ``stage``."""
    folder = root / "cdk.out" / f"assembly-{stage}"
    folder.mkdir(parents=True)
    deployment = {
        "Type": promote.DEPLOYMENT_TYPE,
        "Metadata": {promote.RING_METADATA: {"stage": stage, "class": "jetson", "ring": "canary"}},
        "Properties": {"Components": {"x.Model": {"ComponentVersion": "1.0.7"}}},
    }
    template = {"Resources": {"Canary": deployment}}
    (folder / f"{stage}-Pipeline.template.json").write_text(json.dumps(template))
    return root / "cdk.out"


def run(tmp_path: Path, cdk_json_text: str, *extra: str) -> tuple[int, str, Path]:
    cdk_json = tmp_path / "cdk.json"
    cdk_json.write_text(cdk_json_text)
    out = tmp_path / "cdk.out"
    if not out.exists():
        assembly(tmp_path)
    args = ["--stage", "dev", "--class", "jetson", "--assembly", str(out)]
    code = promote.main([*args, "--cdk-json", str(cdk_json), *extra])
    return code, cdk_json.read_text(), cdk_json


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"context": "oops"}', "context is a string; expected an object"),
        ('{"context": {"releases": "oops"}}', "context.releases is a string; expected an object"),
        ('{"context": {"releases": {"dev": []}}}', "context.releases.dev is an array; expected"),
        ("[]", "the top level is an array; expected an object"),
        ('{"context": {"releases": {"dev": {"jetson": 3}}}}', "context.releases.dev.jetson is a"),
    ],
)
def test_a_cdk_json_of_the_wrong_shape_is_one_line_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, problem: str
) -> None:
    code, after, cdk_json = run(tmp_path, text)
    assert code == 2 and after == text
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: {cdk_json}: ") and problem in line, line


def test_invalid_json_names_the_file_and_the_place(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, after, cdk_json = run(tmp_path, '{"context": {,}}')
    assert code == 2 and after == '{"context": {,}}'
    assert capsys.readouterr().err.strip() == (
        f"error: {cdk_json}: not valid JSON: Expecting property name enclosed in double quotes: "
        "line 1 column 14 (char 13)"
    )


def test_a_stage_that_was_not_synthesized_says_how_to_synth_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, _ = run(tmp_path, "{}", "--stage", "prod")
    assert code == 2
    out = tmp_path / "cdk.out"
    assert capsys.readouterr().err.strip() == (
        f"error: stage prod is not in {out} (stages there: dev): run "
        f"`cdk synth -c stage=prod --output {out}` first"
    )


def test_a_good_cdk_json_gets_the_release(tmp_path: Path) -> None:
    code, after, _ = run(tmp_path, '{"app": "python3 app.py"}')
    assert code == 0
    assert json.loads(after)["context"]["releases"] == {
        "dev": {"jetson": {"x.Model": {"version": "1.0.7"}}}
    }


def test_help_keeps_the_example_lines(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        promote.main(["--help"])
    assert "\n    python -m rollout.promote --stage dev --class jetson    # writes cdk.json\n" in (
        capsys.readouterr().out
    )


def test_a_stage_the_last_synth_did_not_write_is_not_read_from_its_leftovers(tmp_path) -> None:
    """Found by the hostile review: after a dev synth, ``cdk synth -c stage=prod`` into the
    same folder leaves ``assembly-dev/`` behind, unlisted by the new manifest; promote read it
    as current and promoted the old build. It reads only what the manifest lists now."""
    from rollout.assembly import templates
    from tests.infra.conftest import THREE_CLASSES, synthesize

    out = tmp_path / "cdk.out"
    synthesize(out, device_classes=THREE_CLASSES, stage="dev")
    assert promote.find_canary(out, "dev", "jetson")
    synthesize(out, device_classes=THREE_CLASSES, stage="prod")
    assert (out / "assembly-dev").is_dir()  # the leftovers are there
    assert all("assembly-prod" in str(path) for path in templates(out))
    with pytest.raises(promote.PromoteError, match=r"stage dev is not in .*stages there: prod"):
        promote.find_canary(out, "dev", "jetson")
