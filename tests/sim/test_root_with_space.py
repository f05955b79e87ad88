"""A Greengrass root whose path holds a space (the installer's ``--root`` takes any folder).

The nucleus substitutes ``{work:path}``, ``{artifacts:path}`` and ``{<component>:work:path}``
into a lifecycle script as they are (``interpolation``: no shell quoting), and runs the
script with ``sh -c``; so the recipes quote every path they build, or the shell splits it at
the space. The hostile review hit this through ``main_job --out "my out"``: the runtime's
Install failed with "Permission denied: '/tmp/hcwd/my'"."""

from __future__ import annotations

from pathlib import Path

from tests.sim.conftest import reachable_dir, run_device


def test_a_root_with_a_space_installs_runs_and_publishes(
    reachable_base: Path, dev_assembly: Path, wheelhouse: Path | None, sample_images: Path
) -> None:
    spaced = reachable_dir(reachable_base, "root") / "green grass"
    spaced.mkdir()
    spaced.chmod(0o755)
    run = run_device(
        spaced / "v2",
        dev_assembly,
        "dev",
        images=sample_images,
        wheelhouse=wheelhouse,
        reboot=False,
        wait_seconds=90,
    )
    failed = [f"{step}: {detail}" for step, ok, detail in run.report.steps if not ok]
    assert not failed, failed
    assert run.report.published
