"""Fixtures for the inference component's tests; helpers live in ``harness.py``."""

from tests.component.harness import folders, tiny_package

__all__ = ["folders", "tiny_package"]
