"""Fixtures for the inference component's tests; helpers live in ``harness.py``."""

from tests.component.harness import dual_package, folders, tiny_package

__all__ = ["dual_package", "folders", "tiny_package"]
