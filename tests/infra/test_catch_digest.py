"""The code digest behind the model component's version covers each file's path, not only its
bytes (issue 14, "Tests that catch what matters": dropping the path from the digest was caught
only by a template snapshot).

``ArtifactHandler.code_digest`` is ``tree_digest`` of the packaging handler's code folder and
goes into every model package's content, hence into the model component's version
(``content_version``): a new packaging layout must give a new model version. A module renamed
with the same bytes is a new layout (``packaging_handler.handler`` no longer imports), so it
must move the digest and the version."""

from __future__ import annotations

import shutil
from pathlib import Path

from edge_constructs.naming import content_version, tree_digest
from tests.infra.conftest import REPO_ROOT

HANDLER_CODE = REPO_ROOT / "edge_constructs" / "model_packaging" / "runtime"


def handler_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "runtime"
    shutil.copytree(HANDLER_CODE, folder, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def test_renaming_a_handler_module_with_the_same_bytes_changes_the_version(
    tmp_path: Path,
) -> None:
    folder = handler_copy(tmp_path)
    before = tree_digest(folder)
    assert before == tree_digest(HANDLER_CODE)  # a copy is the same content

    (folder / "packaging_logic.py").rename(folder / "packaging_logic_v2.py")

    after = tree_digest(folder)
    assert after != before
    assert content_version("1.0", after) != content_version("1.0", before)


def test_moving_a_file_into_a_subfolder_changes_the_digest(tmp_path: Path) -> None:
    folder = handler_copy(tmp_path)
    before = tree_digest(folder)
    (folder / "nested").mkdir()
    (folder / "packaging_logic.py").rename(folder / "nested" / "packaging_logic.py")
    assert tree_digest(folder) != before


def test_swapping_two_files_contents_changes_the_digest(tmp_path: Path) -> None:
    """Same set of paths, same set of bytes, paired differently: another layout."""
    folder = tmp_path / "code"
    folder.mkdir()
    (folder / "a.py").write_text("A = 1\n")
    (folder / "b.py").write_text("B = 2\n")
    before = tree_digest(folder)
    (folder / "a.py").write_text("B = 2\n")
    (folder / "b.py").write_text("A = 1\n")
    assert tree_digest(folder) != before


def test_caches_and_dotfiles_do_not_change_the_digest(tmp_path: Path) -> None:
    """What the digest leaves out (bytecode, editor files) must not move a version."""
    folder = handler_copy(tmp_path)
    before = tree_digest(folder)
    (folder / "__pycache__").mkdir(exist_ok=True)
    (folder / "__pycache__" / "packaging_logic.cpython-311.pyc").write_bytes(b"\0bytecode")
    (folder / ".packaging_logic.py.swp").write_bytes(b"editor")
    assert tree_digest(folder) == before
