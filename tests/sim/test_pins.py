"""The nucleus source the simulator follows is cited at the v2.18.2 tag's commit, everywhere.

`git -C aws-greengrass-nucleus rev-parse v2.18.2^{commit}` is
c2277d585124ff8ea28964f5d6af66559472c0cc; a citation of another commit (the branch head after
the tag differs in four source files) names code no release ships.
"""

from __future__ import annotations

from pathlib import Path

import device_sim

TAG_COMMIT = "c2277d585124ff8ea28964f5d6af66559472c0cc"
ROOT = Path(device_sim.__file__).parent


def test_the_readme_cites_the_tag_commit() -> None:
    readme = (ROOT / "README.md").read_text()
    assert f"tag v2.18.2, commit `{TAG_COMMIT}`" in readme


def test_the_untagged_branch_head_is_not_cited() -> None:
    """a28341c (the nucleus branch head after v2.18.2) is no release: nothing cites it."""
    citing = [
        path.name
        for path in [ROOT / "README.md", *sorted(ROOT.rglob("*.py"))]
        if "a28341c" in path.read_text()
    ]
    assert not citing
