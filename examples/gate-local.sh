#!/usr/bin/env bash
# The CI gate on your own machine, as a git hook: evaluate the student the way CI does and gate
# it against the committed baseline. Exit 0 pass, 1 regression, 2 bad input (as harness gate).
#
# As a pre-push hook:      ln -s ../../examples/gate-local.sh .git/hooks/pre-push
# With pre-commit:         see examples/pre-commit-config.yaml (stage pre-push)
# Skip it once:            git push --no-verify
#
# Settings (environment): GATE_STUDENT, GATE_TASKS, GATE_LIMIT, GATE_BASELINE, GATE_RULES,
# GATE_RUNS. Keep the evaluation the same as the one that made the baseline.
set -euo pipefail

cd "$(git rev-parse --show-toplevel)"
student="${GATE_STUDENT:-llamacpp:smollm2-135m}"
tasks="${GATE_TASKS:-chains:n=1}"
limit="${GATE_LIMIT:-20}"
baseline="${GATE_BASELINE:-examples/baseline.json}"
rules="${GATE_RULES:-examples/gate.yaml}"
runs="${GATE_RUNS:-runs}"
run_id="gate-local"

if [ ! -f "$baseline" ]; then
  echo "gate: no baseline $baseline; make one with" \
    "\`harness gate --save-baseline RUN --out $baseline\`" >&2
  exit 2
fi

# Cached generations make a re-run of an unchanged model instant.
harness run --student "$student" --teacher reference --tasks "$tasks" --limit "$limit" \
  --temperature 0.7 --seed 0 --max-new-tokens 128 --chain-model none \
  --out "$runs" --run-id "$run_id" --quiet

status=0
harness gate --baseline "$baseline" --candidate "$run_id" --runs "$runs" --rules "$rules" \
  --markdown "$runs/$run_id/gate.md" || status=$?
if [ "$status" -eq 1 ]; then
  echo "gate: regression against $baseline (details: $runs/$run_id/gate.md);" \
    "push anyway with --no-verify" >&2
fi
exit "$status"
