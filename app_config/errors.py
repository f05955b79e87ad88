"""The one error the configuration raises, and the "did you mean" every unknown key gets."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ConfigError(ValueError):
    """A configuration value a user got wrong; the message names key, value and what is allowed."""

    def __init__(self, key: str, value: object, allowed: str) -> None:
        super().__init__(f"invalid configuration {key}={value!r}: {allowed}")
        self.key = key


def did_you_mean(key: str, known: Iterable[str]) -> str:
    """`` (did you mean a, b?)`` for a mistyped ``key``: the known keys that read most like it
    (``difflib``'s ratio of at least 0.75: a swapped, missing or extra letter or two), else
    those sharing its first word (``inference_`` ...); "" when nothing is close. A key written
    as the component's configuration spells it (``BatchSize`` for ``batch_size``) is matched
    without case and underscores first."""
    candidates = sorted(set(known))
    folded = key.replace("-", "").replace("_", "").lower()
    same = [k for k in candidates if k.replace("_", "").lower() == folded]
    close = same or difflib.get_close_matches(key, candidates, n=3, cutoff=0.75)
    if not close:
        first = key.replace("-", "_").lower().split("_")[0]
        close = [k for k in candidates if k.split("_")[0] == first][:5]
    return f" (did you mean {', '.join(close)}?)" if close else ""
