#!/usr/bin/env bash
# The main job, with no AWS account: synthesize every stage's stacks, check them (cdk-nag,
# cfn-lint, an offline `cdk diff --template`), print where the templates are, then run the
# pipeline's own code end to end on this machine (python -m main_job): a pretrained model and a
# short real training run, deployed with the dev stage's own recipes to the simulated core
# device, which classifies real photos. Output: out/ (report.html).
#
#   scripts/main.sh                 # the photos that ship in installed packages
#   scripts/main.sh --images DIR    # your own photos
#   scripts/main.sh --model PATH    # your own model (model.tar.gz or its folder; README:
#                                   # "Bring an already-trained model"), checked, then run
set -euo pipefail
# relative --images/--out mean the caller's folder, not the repository this script cds to
export MAIN_JOB_CWD="$PWD"
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/env.sh

python -m main_job --check-args "$@"  # a wrong --images fails now, not after the synth

echo "== cdk synth (every stage; cdk-nag AwsSolutions runs during synth)"
rm -rf cdk.out
scripts/synth.sh

if [ -f cdk.out/validation-report.json ] && python3 -c "import json,sys
report = json.load(open('cdk.out/validation-report.json'))
sys.exit(0 if any(p.get('violations') for p in report.get('pluginReports', [])) else 1)"; then
  echo "cdk-nag found unacknowledged issues: see cdk.out/validation-report.json" >&2
  exit 1
fi
echo "cdk-nag: no unacknowledged findings"

echo "== cfn-lint"
cfn-lint cdk.out/assembly-*/*.template.json
echo "cfn-lint: clean"

echo "== cdk diff --template (offline, no credentials)"
for template in cdk.out/assembly-*/*.template.json; do
  stage=$(basename "$(dirname "$template")"); stage=${stage#assembly-}
  stack_id=$(python3 -c "import json,sys; m=json.load(open(sys.argv[1]));
print(next(k for k,v in m['artifacts'].items() if v.get('properties',{}).get('templateFile')==sys.argv[2]))" \
    "cdk.out/assembly-$stage/manifest.json" "$(basename "$template")")
  display=$(python3 -c "import json,sys; m=json.load(open(sys.argv[1]));
print(m['artifacts'][sys.argv[2]].get('displayName', sys.argv[2]))" "cdk.out/assembly-$stage/manifest.json" "$stack_id")
  if ! diff_output=$(cdk diff --app cdk.out --exclusively --template "$template" "$display" --fail 2>&1); then
    echo "$diff_output" >&2
    exit 1
  fi
  echo "no differences: $display"
done

echo
echo "Templates:"
for template in cdk.out/assembly-*/*.template.json; do
  echo "  $template"
done

echo
echo "== local pipeline: bring a model + train -> package -> simulated core device -> photos"
python -m main_job "$@"
