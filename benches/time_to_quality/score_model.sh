#!/usr/bin/env bash
# Scores a charrnn-fast model directory (ours, or PyTorch's written by torch_budget.py) on the
# held-out tail of CORPUS with `charrnn-fast eval`, under both protocols:
#   score_stream.json      one stream over the split from a zero state
#   score_windows64.json   2,000 random windows of 64 characters from a cold state (nanoGPT's CPU recipe)
#   score_windows256.json  the same with windows of 256 (nanoGPT's GPU recipe's protocol)
# and writes info.json (`charrnn-fast info --json`: parameters), all into OUTDIR.
#
#   score_model.sh MODEL_DIR CORPUS OUTDIR
#
# Environment (besides common.sh's): VAL_FRAC (0.1), WINDOWS_COUNT (2000), WINDOWS_SEED (1).
# CHARRNN_NO_EVAL=1, for a binary without `eval` (smoke tests only), checks that the directory
# loads (`sample`) and scores nothing.
set -euo pipefail
source "$(dirname "$0")/common.sh"
[ $# -eq 3 ] || usage "score_model.sh MODEL_DIR CORPUS OUTDIR"
model=$1 corpus=$2 outdir=$3
val_frac=${VAL_FRAC:-0.1}
count=${WINDOWS_COUNT:-2000}
seed=${WINDOWS_SEED:-1}

"$CHARRNN" info --json "$model" >"$outdir/info.json"
if [ "${CHARRNN_NO_EVAL:-0}" = 1 ]; then
  echo "score_model.sh: CHARRNN_NO_EVAL=1: no scores; checking that $model loads" >&2
  "$CHARRNN" sample --model "$model" --length 20 --seed 1 >/dev/null
  exit 0
fi
score() {
  "$CHARRNN" eval --model "$model" --data "$corpus" --val-frac "$val_frac" --json "$@"
}
score >"$outdir/score_stream.json"
score --windows 64 --count "$count" --seed "$seed" >"$outdir/score_windows64.json"
score --windows 256 --count "$count" --seed "$seed" >"$outdir/score_windows256.json"
