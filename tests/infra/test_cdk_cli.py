"""The real CDK CLI (pinned in package.json), offline and without credentials.

`cdk synth` runs the app as users run it; `cdk diff --template` is the smoke check reviewers
rely on: no difference against the template just synthesized, and a difference (exit 1 with
--fail) against one with a resource removed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.infra.conftest import REPO_ROOT

CDK = REPO_ROOT / "node_modules" / ".bin" / "cdk"


def offline_env(tmp_path: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "CDK_")) or key == "CDK_DISABLE_VERSION_CHECK"
    }
    env.update(
        {
            "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
            "CDK_DISABLE_VERSION_CHECK": "1",
            "PATH": f"{REPO_ROOT / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        }
    )
    return env


def cdk(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CDK), *args, "--no-notices", "--no-version-reporting"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def cli_assembly(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    tmp = tmp_path_factory.mktemp("cli")
    env = offline_env(tmp)
    out = tmp / "cdk.out"
    # scripts/synth.sh, as scripts/main.sh runs it: cdk synth --quiet -c stage=all.
    result = subprocess.run(
        [str(REPO_ROOT / "scripts" / "synth.sh"), "--output", str(out), "--no-notices"],
        cwd=tmp,
        env={**env, "PATH": f"{CDK.parent}{os.pathsep}{env['PATH']}"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # The CLI's multi-stack hint is noise under --quiet (issue 18); the script drops it.
    assert "Supply a stack id" not in result.stdout + result.stderr
    return out, env


def template_of(assembly: Path, stage: str, stack: str) -> Path:
    (path,) = (assembly / f"assembly-{stage}").glob(f"{stage}{stack}*.template.json")
    return path


def test_cli_synthesizes_every_stage_without_credentials(cli_assembly) -> None:
    assembly, _ = cli_assembly
    for stage in ("dev", "prod"):
        for stack in ("Artifacts", "Devices", "Pipeline"):
            assert template_of(assembly, stage, stack).stat().st_size > 0


def test_cdk_diff_against_the_same_template_finds_nothing(cli_assembly) -> None:
    assembly, env = cli_assembly
    template = template_of(assembly, "dev", "Pipeline")
    result = cdk(
        "diff", "--app", str(assembly), "--exclusively", "--template", str(template),
        "dev/Pipeline", "--fail", env=env, cwd=REPO_ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "There were no differences" in result.stdout + result.stderr


def test_cdk_diff_reports_a_change_and_fails(cli_assembly, tmp_path) -> None:
    assembly, env = cli_assembly
    template = json.loads(template_of(assembly, "dev", "Pipeline").read_text())
    removed = next(k for k, v in template["Resources"].items() if v["Type"].endswith("Deployment"))
    del template["Resources"][removed]
    old = tmp_path / "old.template.json"
    old.write_text(json.dumps(template))
    result = cdk(
        "diff", "--app", str(assembly), "--exclusively", "--template", str(old),
        "dev/Pipeline", "--fail", env=env, cwd=REPO_ROOT,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert "[+] Custom::GreengrassDeployment" in result.stdout + result.stderr
    assert removed in result.stdout + result.stderr


def test_a_failed_synth_marks_the_assembly_and_nothing_reads_its_old_templates(
    cli_assembly, tmp_path
) -> None:
    """Issue 18: a failed ``cdk synth`` leaves the earlier templates in cdk.out (the app never
    reaches ``app.synth()``); device_sim, rollout.promote and edge_follow used them silently.
    The good synth above left a ``complete`` stamp; a failing one into a copy of that folder
    (the real CLI, a mistyped -c key) marks it ``failed`` with the error, and each reader
    refuses it, naming the error."""
    from device_sim.assembly import load_stage
    from device_sim.cloud.errors import AssemblyError
    from edge_follow.assembly import stage_prefix
    from edge_follow.sources import FollowError
    from rollout import promote
    from stacks import synth_stamp

    assembly, env = cli_assembly
    assert json.loads((assembly / synth_stamp.STAMP).read_text())["status"] == "complete"
    assert synth_stamp.problem(assembly) is None
    load_stage(assembly, "dev")  # the good synth is readable

    stale = tmp_path / "cdk.out"
    shutil.copytree(assembly, stale)
    result = subprocess.run(
        [str(REPO_ROOT / "scripts" / "synth.sh"), "--output", str(stale), "--no-notices",
         "-c", "inference_topk=3"],
        cwd=tmp_path, env={**env, "PATH": f"{CDK.parent}{os.pathsep}{env['PATH']}"},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode != 0
    assert "did you mean inference_top_k" in result.stdout + result.stderr
    stamp = json.loads((stale / synth_stamp.STAMP).read_text())
    assert stamp["status"] == "failed" and "inference_topk" in stamp["error"]
    assert template_of(stale, "dev", "Pipeline").is_file()  # the old templates are still there
    with pytest.raises(AssemblyError, match=r"the last synth into .* failed \(invalid config"):
        load_stage(stale, "dev")
    with pytest.raises(promote.PromoteError, match="inference_topk"):
        promote.find_canary(stale, "dev", "jetson")
    with pytest.raises(FollowError, match="failed"):
        stage_prefix(stale, "dev")


def test_an_assembly_older_than_cdk_json_is_refused_by_the_simulator(tmp_path) -> None:
    """cdk.json edited after the synth (a key changed, a release promoted): the simulator would
    run the old configuration; promote, which writes cdk.json itself, does not mind."""
    from device_sim.assembly import load_stage
    from device_sim.cloud.errors import AssemblyError
    from stacks import synth_stamp

    cdk_json = tmp_path / "cdk.json"
    cdk_json.write_text('{"context": {}}')
    assembly = tmp_path / "cdk.out"
    synth_stamp.write(assembly, synth_stamp.COMPLETE, cdk_json=cdk_json)
    (assembly / "manifest.json").write_text("{}")
    assert synth_stamp.problem(assembly) is None
    cdk_json.write_text('{"context": {"inference_top_k": 3}}')
    assert "changed since" in str(synth_stamp.problem(assembly))
    assert synth_stamp.problem(assembly, check_cdk_json=False) is None
    with pytest.raises(AssemblyError, match="changed since"):
        load_stage(assembly, "dev")


def test_a_synth_that_never_finished_or_no_stamp(tmp_path) -> None:
    from stacks import synth_stamp

    assert synth_stamp.problem(tmp_path) is None  # an assembly without a stamp: not ours to judge
    synth_stamp.write(tmp_path, synth_stamp.RUNNING)
    assert "did not finish" in str(synth_stamp.problem(tmp_path))
    (tmp_path / synth_stamp.STAMP).write_text("{not json")
    assert "unreadable" in str(synth_stamp.problem(tmp_path))


def test_a_file_named_as_the_assembly_is_said_to_be_a_file(tmp_path) -> None:
    from stacks import synth_stamp

    readme = tmp_path / "README.md"
    readme.write_text("not a folder")
    assert (
        synth_stamp.problem(readme) == f"{readme} is a file, not a cloud assembly folder (cdk.out)"
    )
