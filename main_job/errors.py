"""The main job's one error type: every step raises it when the job cannot go on."""

from __future__ import annotations


class MainJobError(Exception):
    """The main job cannot go on; ``str()`` is one line naming the problem."""
