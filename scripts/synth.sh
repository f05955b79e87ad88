#!/usr/bin/env bash
# `cdk synth --quiet -c stage=all` (extra arguments are passed on to cdk), without the hint the
# CDK CLI ends every multi-stack synth with, --quiet or not: "Supply a stack id (...) to display
# its template." (aws-cdk lib/cli/cdk-toolkit.js, CdkToolkit.synth: printed whenever more than
# one stack is selected; the CLI has no option below the info level that would hide it). The
# callers list the templates themselves. Needs scripts/env.sh's PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! output=$(cdk synth --quiet -c stage=all "$@" 2>&1); then
  printf '%s\n' "$output" >&2
  exit 1
fi
if [ -n "$output" ]; then
  printf '%s\n' "$output" | grep -v '^Supply a stack id' || true
fi
