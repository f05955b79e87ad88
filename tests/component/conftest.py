"""Fixtures for the inference component's tests; helpers live in ``harness.py``."""

from tests.component.harness import batch_package, dual_package, folders, tiny_package

__all__ = ["batch_package", "dual_package", "folders", "tiny_package"]
