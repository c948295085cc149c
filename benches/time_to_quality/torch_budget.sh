#!/usr/bin/env bash
# PyTorch's LSTM at a wall-clock budget: torch_budget.py trains it (OUTDIR/model/, a charrnn-fast
# model directory, and OUTDIR/torch_log.csv), `charrnn-fast eval` scores it under both protocols
# exactly as it scores ours (score_model.sh), run_record.py writes result.json and curve.csv.
#
#   torch_budget.sh CORPUS BUDGET OUTDIR [torch_budget.py recipe flags…]
#
# BUDGET: 90, 90s, 10m, 1h. OUTDIR must be new or empty.
set -euo pipefail
source "$(dirname "$0")/common.sh"
[ $# -ge 3 ] || usage "torch_budget.sh CORPUS BUDGET OUTDIR [torch_budget.py flags...]"
corpus=$1 budget=$2 outdir=$3
shift 3
[ -f "$corpus" ] || die "no corpus '$corpus'"
budget_s=$(budget_seconds "$budget")
new_outdir "$outdir"

start=$(now)
OMP_NUM_THREADS=${THREADS:-2} "$TORCH_PY" "$HERE/torch_budget.py" --data "$corpus" --budget "$budget" \
  --out "$outdir" --val-frac "${VAL_FRAC:-0.1}" --threads "${THREADS:-2}" "$@"
wall=$(seconds_between "$start" "$(now)")

"$HERE/score_model.sh" "$outdir/model" "$corpus" "$outdir"
"$PY" "$HERE/run_record.py" --impl pytorch --outdir "$outdir" --corpus "$corpus" --budget "$budget_s" \
  --wall "$wall" --curve "torch:$outdir/torch_log.csv" --setting "budget=$budget" --setting "flags=$*"
