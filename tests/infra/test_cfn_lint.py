"""cfn-lint is clean on every synthesized template (settings in .cfnlintrc.yaml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.infra.conftest import REPO_ROOT

CFN_LINT = str(Path(sys.executable).parent / "cfn-lint")


@pytest.mark.parametrize("configuration", ["dev", "prod", "byo_jetson", "three_classes"])
def test_cfn_lint_clean(configuration, request) -> None:
    synthesized = request.getfixturevalue(configuration)
    templates = sorted(str(p) for p in synthesized.assembly_dir.rglob("*.template.json"))
    assert len(templates) == 4  # artifacts, devices, pipeline, fleet
    result = subprocess.run(
        [CFN_LINT, "--format", "parseable", *templates],
        cwd=REPO_ROOT,  # picks up .cfnlintrc.yaml
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_reports_a_broken_template(tmp_path) -> None:
    broken = tmp_path / "broken.template.json"
    broken.write_text(
        '{"Resources": {"B": {"Type": "AWS::S3::Bucket", "Properties": {"Versioning": 1}}}}'
    )
    result = subprocess.run(
        [CFN_LINT, "--format", "parseable", str(broken)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert ":E3002:" in result.stdout  # the finding itself, not a crash
