"""Where the project's folders are, for the steps that run its code or read its files."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRAINING_SRC = ROOT / "training_src"
COMPONENT_SRC = ROOT / "component_src"
