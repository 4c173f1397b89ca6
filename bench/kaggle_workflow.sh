#!/usr/bin/env bash
# The README's "Kaggle workflow, end to end", command for command, in a scratch directory.
#
#   bench/kaggle_workflow.sh [SCRATCH_DIR]          # the README's settings
#   MAX_STEPS=40 bench/kaggle_workflow.sh /tmp/kw   # a quick check of the commands only
#
# MNIST comes from `digitrec data fetch` (a copy named by $DIGITREC_DATA is used as it is).
#
# Writes bench/results/kaggle_workflow.json (or kaggle_workflow_check.json with MAX_STEPS):
# each step's wall time, the machine's load before it, and the two scores.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
digitrec="${DIGITREC:-$repo/.venv/bin/digitrec}"
scratch="${1:-$(mktemp -d)}"
extra=()
name=kaggle_workflow
if [[ -n "${MAX_STEPS:-}" ]]; then
    extra=(--max-steps "$MAX_STEPS" --no-report)
    name=kaggle_workflow_check
fi
mkdir -p "$scratch"
cd "$scratch"
log="$scratch/steps.tsv"
: >"$log"

step() {  # step NAME COMMAND...: run it, echo its output, record its wall time
    local label=$1
    shift
    local load start
    load=$(cut -d' ' -f1 /proc/loadavg)
    start=$(date +%s.%N)
    echo "\$ $*" | sed "s#$digitrec#digitrec#"
    "$@" 2>&1 | tee "$scratch/$label.out"
    printf '%s\t%s\t%s\n' "$label" "$(echo "$(date +%s.%N) - $start" | bc)" "$load" >>"$log"
}

step fetch "$digitrec" data fetch
step export "$digitrec" data export-kaggle --out kaggle/
step train_one "$digitrec" train --train-csv kaggle/train.csv "${extra[@]}"
step submit_one "$digitrec" submit -c runs/fast-seed0 --test kaggle/test.csv --out single.csv
step score_one "$digitrec" score single.csv --labels kaggle/test_labels.csv
step train_seeds "$digitrec" train --train-csv kaggle/train.csv --seeds 3 --out runs/kaggle "${extra[@]}"
step ensemble "$digitrec" ensemble runs/kaggle-seed0 runs/kaggle-seed1 runs/kaggle-seed2 \
    --out runs/kaggle-ensemble.json
step submit "$digitrec" submit -c runs/kaggle-ensemble.json --test kaggle/test.csv \
    --out submission.csv
step score "$digitrec" score submission.csv --labels kaggle/test_labels.csv
# Not in the README: each member alone, to compare the ensemble with its own members.
for seed in 0 1 2; do
    step "submit_member$seed" "$digitrec" submit -c "runs/kaggle-seed$seed" --test kaggle/test.csv \
        --out "member$seed.csv"
    step "score_member$seed" "$digitrec" score "member$seed.csv" --labels kaggle/test_labels.csv
done

"$repo/.venv/bin/python" - "$log" "$scratch" "$repo/bench/results/$name.json" "${MAX_STEPS:-}" <<'EOF'
import json, os, platform, sys
log, scratch, out, max_steps = sys.argv[1:5]
steps = {}
for line in open(log):
    label, secs, load = line.split("\t")
    steps[label] = {"wall_s": round(float(secs), 1), "load_before": float(load)}
def accuracy(label):  # "accuracy: 0.99120 (9912/10000)"
    return float(open(os.path.join(scratch, f"{label}.out")).read().split()[1])
result = {
    "what": "README 'Kaggle workflow, end to end' (bench/kaggle_workflow.sh)",
    "max_steps": int(max_steps) if max_steps else None,
    "cpu_count": os.cpu_count(),
    "machine": platform.processor() or platform.machine(),
    "single_model_score": accuracy("score_one"),
    "ensemble_of_3_score": accuracy("score"),
    "member_scores": [accuracy(f"score_member{seed}") for seed in range(3)],
    "scored_on": "kaggle/test_labels.csv = MNIST test (10,000), never used for any choice",
    "steps": steps,
}
with open(out, "w") as f:
    json.dump(result, f, indent=2)
print(json.dumps(result, indent=2))
EOF
