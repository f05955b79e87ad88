"""The one error the configuration raises."""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration value a user got wrong; the message names key, value and what is allowed."""

    def __init__(self, key: str, value: object, allowed: str) -> None:
        super().__init__(f"invalid configuration {key}={value!r}: {allowed}")
        self.key = key
