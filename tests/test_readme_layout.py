"""The README's layout lists every top-level folder of the repository (issue 14: a newcomer
finds each folder explained), and names no folder that is gone."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def layout_block(readme: str) -> str:
    match = re.search(r"^## Layout\n\n```\n(.*?)^```", readme, re.MULTILINE | re.DOTALL)
    assert match is not None, "README.md has no '## Layout' section with a code block"
    return match.group(1)


def listed_folders(block: str) -> set[str]:
    """The ``name/`` that starts a line of the block (top-level entries are not indented)."""
    return {m.group(1) for m in re.finditer(r"^([A-Za-z0-9_.-]+)/", block, re.MULTILINE)}


def ignored_folders(repo: Path) -> set[str]:
    """Top-level folders ``.gitignore`` names (``node_modules/``, ``/out/``): tools make them."""
    ignored = set()
    for line in (repo / ".gitignore").read_text().splitlines():
        name = line.strip().strip("/")
        if line.strip().endswith("/") and name and "/" not in name:
            ignored.add(name)
    return ignored


def project_folders(repo: Path) -> set[str]:
    return {
        p.name
        for p in repo.iterdir()
        if p.is_dir() and not p.name.startswith(".") and p.name not in ignored_folders(repo)
    }


def test_the_layout_lists_every_top_level_folder_and_no_other() -> None:
    listed = listed_folders(layout_block((REPO / "README.md").read_text()))
    folders = project_folders(REPO)
    assert folders - listed == set(), f"README.md's layout does not list {sorted(folders - listed)}"
    assert listed - folders == set(), (
        f"README.md's layout lists no longer there {sorted(listed - folders)}"
    )


def test_the_checker_sees_a_missing_and_a_stale_folder(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("node_modules/\n/out/\n*.pyc\n")
    for name in ("stacks", "stand_ins", "node_modules", "out", ".venv"):
        (tmp_path / name).mkdir()
    block = layout_block("## Layout\n\n```\nstacks/   x\n  nested/  y\ngone/  z\n```\n")
    assert listed_folders(block) == {"stacks", "gone"}
    assert project_folders(tmp_path) == {"stacks", "stand_ins"}
