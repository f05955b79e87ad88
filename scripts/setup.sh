#!/usr/bin/env bash
# Create .venv with the pinned development dependencies, install the pinned CDK CLI, and the
# Debian packages the tests need (mosquitto).
# Idempotent: re-installs only when a requirements file or package-lock.json changed.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian's MQTT broker and clients: the follow command's tests (tests/follow) start a real
# mosquitto. Nothing to do, and no apt-get update, when both are installed already.
apt_packages=(mosquitto mosquitto-clients)
missing=()
for package in "${apt_packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup: please install ${missing[*]} (a local MQTT broker for tests/follow)" >&2
  else
    sudo=()
    if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
    echo "setup: installing ${missing[*]} (apt-get)"
    # Quiet unless it fails (debconf chatters on stderr even with -qq).
    if ! apt_log=$("${sudo[@]}" apt-get update -qq 2>&1 &&
      "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "${missing[@]}" 2>&1); then
      echo "$apt_log" >&2
      echo "setup: could not install ${missing[*]}" >&2
      exit 1
    fi
  fi
fi

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
