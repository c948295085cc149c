#!/usr/bin/env bash
# Ours at a wall-clock budget: `charrnn-fast train --time BUDGET` on CORPUS (validation = its
# last 10%), then its model scored by `charrnn-fast eval` under both protocols (score_model.sh),
# then the run's record (run_record.py: result.json, curve.csv) in OUTDIR.
#
#   ours_budget.sh CORPUS BUDGET OUTDIR [extra train flags…]
#
# BUDGET: 90, 90s, 10m, 1h (passed to --time), or steps=N for a binary without --time (smoke
# tests: --steps N with a validation every N/10 steps). The train flags given after OUTDIR
# override the defaults (explicit sizes switch off the budget's own choice of model).
# OUTDIR is train's --out; it must be new or empty. The run's stderr, each line stamped with
# its wall-clock second, is OUTDIR/train.log; the validation loss against time comes from
# log.csv's elapsed_s column where the binary writes one, else from those stamps.
set -euo pipefail
source "$(dirname "$0")/common.sh"
[ $# -ge 3 ] || usage "ours_budget.sh CORPUS BUDGET OUTDIR [extra train flags...]"
corpus=$1 budget=$2 outdir=$3
shift 3
[ -f "$corpus" ] || die "no corpus '$corpus'"
[ -x "$CHARRNN" ] || die "no binary '$CHARRNN' (cargo build --release, or set CHARRNN)"

case $budget in
  steps=*)
    steps=${budget#steps=}
    limit=(--steps "$steps" --eval-every "$(((steps + 9) / 10))")
    budget_s=0
    ;;
  *)
    limit=(--time "$budget")
    budget_s=$(budget_seconds "$budget")
    ;;
esac
new_outdir "$outdir"

start=$(now)
"$CHARRNN" train --data "$corpus" --val-frac "${VAL_FRAC:-0.1}" "${limit[@]}" --out "$outdir" "$@" 2>&1 |
  "$PY" "$HERE/stamp_lines.py" --since "$start" "$outdir/train.log"
wall=$(seconds_between "$start" "$(now)")

"$HERE/score_model.sh" "$outdir" "$corpus" "$outdir"
"$PY" "$HERE/run_record.py" --impl ours --outdir "$outdir" --corpus "$corpus" --budget "$budget_s" --wall "$wall" \
  --curve "ours:$outdir/train.log" --log-csv "$outdir/log.csv" --setting "budget=$budget" --setting "flags=$*"
