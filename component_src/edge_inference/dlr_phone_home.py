"""Switch off DLR's phone-home before ``dlr`` is imported.

DLR (1.6 through 1.10, ``dlr/counter/phone_home.py``) posts device and model data to
``https://api.neo-dlr.amazonaws.com`` with no timeout: once when ``dlr`` is imported (the module
global ``MGR = PhoneHome.get_instance()``) and again on every ``DLRModel()``. Its only switch is
the file ``<site-packages>/dlr/counter/ccm_config.json``: phone-home is on when that file is
missing, and otherwise on only if its ``"enable_phone_home"`` is true. The decision is taken once,
at import, so the file must say false before the first ``import dlr``. This module therefore finds
the package without importing it. Stdlib only; Python 3.9+.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import pathlib
import sys
import tempfile
from typing import Any, Dict, Optional

LOG = logging.getLogger(__name__)

CONFIG_KEY = "enable_phone_home"
CONFIG_RELPATH = pathlib.Path("counter", "ccm_config.json")


def disable_phone_home() -> Optional[pathlib.Path]:
    """Make ``dlr/counter/ccm_config.json`` say ``"enable_phone_home": false``.

    Call it before ``import dlr``. Returns the config file's path when phone-home is off, or
    ``None`` (after logging a warning) when DLR is not installed or the file cannot be written.
    Other keys in an existing file are kept. Never raises for a missing or read-only install.
    """
    package_dir = _dlr_package_dir()
    if package_dir is None:
        LOG.warning("dlr is not installed; no phone-home to switch off")
        return None
    config_path = package_dir / CONFIG_RELPATH
    if "dlr.counter.phone_home" in sys.modules:
        LOG.warning(
            "dlr was imported before its phone-home was switched off; "
            "this process may still report to AWS (call disable_phone_home() before import dlr)"
        )
    config = _read_config(config_path)
    if config.get(CONFIG_KEY) is False:
        return config_path
    config[CONFIG_KEY] = False
    try:
        _write_atomically(config_path, json.dumps(config))
    except OSError as err:
        LOG.warning("cannot switch off DLR phone-home: %s is not writable (%s)", config_path, err)
        return None
    LOG.info("DLR phone-home switched off in %s", config_path)
    return config_path


def _dlr_package_dir() -> Optional[pathlib.Path]:
    """The installed ``dlr`` package's folder, found without importing ``dlr``."""
    try:
        spec = importlib.util.find_spec("dlr")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return pathlib.Path(next(iter(spec.submodule_search_locations)))


def _read_config(path: pathlib.Path) -> Dict[str, Any]:
    """The existing config as a dict; empty when missing, unreadable or not a JSON object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as err:
        LOG.warning("ignoring unreadable DLR config %s (%s)", path, err)
        return {}
    return data if isinstance(data, dict) else {}


def _write_atomically(path: pathlib.Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path`` and rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".ccm_config.", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
