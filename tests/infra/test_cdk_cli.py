"""The real CDK CLI (pinned in package.json), offline and without credentials.

`cdk synth` runs the app as users run it; `cdk diff --template` is the smoke check reviewers
rely on: no difference against the template just synthesized, and a difference (exit 1 with
--fail) against one with a resource removed.
"""

from __future__ import annotations

import json
import os
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
