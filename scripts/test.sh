#!/usr/bin/env bash
# The quality gate: format check, lint, type check, then every test. Same command in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/env.sh

echo "== ruff format --check"
ruff format --check .
echo "== ruff check"
ruff check .
echo "== mypy (strict on app.py, app_config/, device_contract/, stacks/, edge_constructs/, rollout/, edge_follow/, device_sim/, main_job/, model_check/, capture_channel/)"
mypy app.py app_config device_contract stacks edge_constructs rollout edge_follow device_sim main_job model_check capture_channel --exclude 'runtime/'
echo "== mypy --strict on the device component (component_src/edge_inference)"
MYPYPATH=component_src:. mypy --strict -p edge_inference  # . : device_contract, shipped beside it
echo "== mypy --strict on each Lambda runtime, staged as deployed"
scripts/typecheck_runtimes.sh
echo "== pytest"
pytest "$@"
