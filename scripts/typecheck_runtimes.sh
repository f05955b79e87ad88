#!/usr/bin/env bash
# mypy --strict on each Lambda runtime exactly as it is deployed: its own modules plus
# runtime_common's (and device_contract where it imports it), side by side in one folder (see edge_constructs/lambda_function.py).
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
for runtime in edge_constructs/*/runtime; do
  staged=$(mktemp -d)
  cp "$runtime"/*.py edge_constructs/runtime_common/*.py "$staged"/
  # device_contract ships in the bundles that import it (PythonFunction's packages).
  if grep -qs "device_contract" "$runtime"/*.py; then cp -r device_contract "$staged"/; fi
  echo "-- $runtime"
  (cd "$staged" && mypy --strict --ignore-missing-imports --python-version 3.11 \
    --no-incremental --cache-dir=/dev/null ./*.py) || status=1
  rm -rf "$staged"
done
exit $status
