"""The main job's console output as a newcomer reads it (issue 18, "Smaller edges"): the table
stays aligned whatever the names hold, skipped files are not failures, the last line says why
the exit status is what it is, and inputs carry the user's names."""

from __future__ import annotations

from pathlib import Path

import pytest

from device_sim.run_record import original_input_name, staged_input_name
from main_job.report import NAME_COLUMNS, outcome, table, width
from main_job.results import PhotoResult, photo_results


def classified(name: str, label: str = "tabby") -> PhotoResult:
    top = [
        {"label": label, "score": 0.9},
        {"label": "b", "score": 0.05},
        {"label": "c", "score": 0.01},
    ]
    return PhotoResult(name, Path(name), top=top, latency_ms=12.5)


def columns(line: str) -> list[int]:
    """The terminal columns where the line's cells start (after a run of two or more spaces)."""
    starts, col, gap = [], 0, 0
    for char in line:
        if char == " ":
            gap += 1
        else:
            if gap >= 2:
                starts.append(col)
            gap = 0
        col += width(char)
    return starts


def test_wide_characters_keep_the_columns_aligned() -> None:
    """Before: ``ljust`` counts characters, so a name of CJK characters (two columns each in a
    terminal) pushed its row's labels right of the others'."""
    rows = [classified("猫の写真.jpg", "貓"), classified("dog.jpg"), classified("e\u0301te.png")]
    lines = table(rows).splitlines()
    body = [lines[0], *lines[2:]]
    assert len({tuple(columns(line)) for line in body}) == 1, "\n".join(lines)


def test_a_long_name_is_shortened_in_the_middle_and_keeps_its_ends() -> None:
    long = "holiday-" + "x" * 80 + "-beach.jpg"
    lines = table([classified(long), classified("a.jpg")]).splitlines()
    shown = lines[2].split("  ")[0]
    assert width(shown) == NAME_COLUMNS and shown.startswith("holiday-")
    assert shown.endswith("beach.jpg") and "..." in shown
    assert columns(lines[2]) == columns(lines[3])


def test_skipped_files_do_not_fail_the_run_and_the_last_line_says_so() -> None:
    results = [
        classified("a.jpg"),
        PhotoResult("notes.txt", Path("notes.txt"), skipped="not a supported type (.jpg)"),
    ]
    text = table(results)
    assert "notes.txt  skipped: not a supported type (.jpg)" in text and "FAILED" not in text
    assert outcome(results, []) == (
        0,
        "exit status 0: all 1 photos classified on the simulated device; 1 skipped (not a "
        "supported type)",
    )


def test_a_failed_step_alone_fails_the_run_and_is_named() -> None:
    code, line = outcome([classified("a.jpg")], ["boot 2: timed out"])
    assert code == 1 and line == "exit status 1: 1 device step(s) failed (listed above)"


@pytest.mark.parametrize(
    ("staged", "original"),
    [("boot1-cat.jpg", "cat.jpg"), ("boot12-a-b.png", "a-b.png"), ("cat.jpg", "cat.jpg"),
     ("boot-x.jpg", "boot-x.jpg"), ("bootX-y.jpg", "bootX-y.jpg")],
)  # fmt: skip
def test_the_simulators_staging_prefix_comes_off(staged: str, original: str) -> None:
    assert original_input_name(staged) == original
    assert original_input_name(staged_input_name(3, original)) == original


def test_a_message_without_the_staging_prefix_is_still_matched() -> None:
    """Before: ``split("-", 1)[1]`` raised IndexError on an input name with no ``-``."""
    (result,) = photo_results(
        {"cat.jpg": Path("cat.jpg")},
        [{"payload": {"input": "cat.jpg", "top": [], "latency_ms": 1.0}}],
    )
    assert result.error is None and result.latency_ms == 1.0
