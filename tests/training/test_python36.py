"""training_src must run on Python 3.6: the PyTorch 1.8 image that traces models for Neo edge
targets. vermin (pinned in requirements-dev.txt) finds the minimum version from the syntax and
standard-library use, annotations included (Python 3.6 evaluates them at definition time)."""

import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import TRAINING_SRC

RUN_VERMIN = "import sys, vermin; sys.exit(vermin.main())"  # vermin has no __main__
VERMIN = [sys.executable, "-c", RUN_VERMIN, "--no-tips", "--violations", "--eval-annotations"]
TARGET = "-t=3.6-"


def _vermin(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*VERMIN, TARGET, str(path)], capture_output=True, text=True, timeout=120, check=False
    )


def _minimum(output: str) -> tuple[int, int]:
    match = re.search(r"Minimum required versions:.*?(?:~?3\.(\d+)|~3)\s*$", output, re.M)
    assert match, output
    return (3, int(match.group(1) or 0))


def test_training_src_runs_on_python_36():
    files = sorted(TRAINING_SRC.rglob("*.py"))
    assert len(files) >= 2
    result = _vermin(TRAINING_SRC)
    assert result.returncode == 0, result.stdout + result.stderr
    assert _minimum(result.stdout) <= (3, 6), result.stdout


def test_the_check_catches_newer_syntax(tmp_path):
    newer = tmp_path / "newer.py"
    newer.write_text("import dataclasses\n\nif (n := 1):\n    print(f'{n=}')\n")
    result = _vermin(newer)
    assert result.returncode != 0
    assert _minimum(result.stdout) == (3, 8)
