#!/usr/bin/env bash
# Create .venv with the pinned development dependencies and install the pinned CDK CLI.
# Idempotent: re-installs only when a requirements file or package-lock.json changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.requirements.sha256
wanted=$(cat requirements.txt requirements-dev.txt component_src/requirements.txt | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
  echo "setup: installing Python dependencies into .venv (first run: a few minutes)"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip==25.3
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
  echo "$wanted" > "$stamp"
fi

lock_stamp=node_modules/.package-lock.sha256
lock_wanted=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$lock_stamp" ] || [ "$(cat "$lock_stamp")" != "$lock_wanted" ]; then
  echo "setup: installing the pinned AWS CDK CLI (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_wanted" > "$lock_stamp"
fi
