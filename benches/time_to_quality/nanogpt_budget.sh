#!/usr/bin/env bash
# nanoGPT's CPU recipe (its README's shakespeare_char command) scaled to a wall-clock budget,
# run beside the project, never inside it:
#
#   nanogpt_budget.sh NANOGPT_DIR CORPUS BUDGET OUTDIR
#
# NANOGPT_DIR: karpathy/nanoGPT at commit 3adf61e1
#   (git clone https://github.com/karpathy/nanoGPT && git -C nanoGPT checkout 3adf61e1).
# 1. The corpus becomes input.txt of a copy of data/shakespeare_char (data/charrnn_<its
#    sha256's first 12 digits> in NANOGPT_DIR, reused when it exists), and nanoGPT's own
#    prepare.py cuts it: val = the last 10% of the characters (checked, nanogpt_plan.py split).
# 2. A calibration run of the recipe (30 iterations, evaluations at 0 and 30) measures its
#    iterations/s; nanogpt_plan.py sets max_iters = lr_decay_iters = round(BUDGET x iterations/s)
#    (rounded to tens), eval_interval a tenth of that, warm-up 5% at most.
# 3. The recipe runs with those, its output stamped with wall-clock seconds (OUTDIR/train.log),
#    the wall-clock measured; then its checkpoint (the best by its own estimate, as train.py
#    saves it) is scored over 2,000 random windows of 64 characters (nanogpt_score.py), and
#    run_record.py writes result.json and curve.csv.
#
# Environment (besides common.sh's): THREADS (2: OMP/MKL threads), NANOGPT_FIT (iters, or wall:
# the budget also covers start-up and evaluations, see nanogpt_plan.py), WINDOWS_COUNT (2000),
# WINDOWS_SEED (1), CALIBRATION_ITERS (30).
set -euo pipefail
source "$(dirname "$0")/common.sh"
[ $# -eq 4 ] || usage "nanogpt_budget.sh NANOGPT_DIR CORPUS BUDGET OUTDIR"
COMMIT=3adf61e1
[ -f "$1/train.py" ] && [ -f "$1/data/shakespeare_char/prepare.py" ] ||
  die "'$1' is not a nanoGPT checkout (no train.py, data/shakespeare_char/prepare.py)"
[ -f "$2" ] || die "no corpus '$2'"
nanogpt=$(cd "$1" && pwd) corpus=$(realpath "$2") budget=$3 outdir=$4
budget_s=$(budget_seconds "$budget")
commit=$(git -C "$nanogpt" rev-parse HEAD 2>/dev/null || echo "unknown (not a git checkout)")
case $commit in
  "$COMMIT"* | unknown*) ;;
  *) echo "warning: nanoGPT is at $commit, not $COMMIT" >&2 ;;
esac
new_outdir "$outdir"
outdir=$(cd "$outdir" && pwd)
export OMP_NUM_THREADS=${THREADS:-2} MKL_NUM_THREADS=${THREADS:-2} PYTHONUTF8=1

# 1. The data folder, prepared by nanoGPT's own prepare.py.
sha=$(sha256sum "$corpus" | cut -c1-12)
dataset=charrnn_$sha
data=$nanogpt/data/$dataset
if [ ! -f "$data/val.bin" ]; then
  mkdir -p "$data"
  cp "$nanogpt/data/shakespeare_char/prepare.py" "$data/"
  cp "$corpus" "$data/input.txt"
  PYTHONPATH=$HERE/offline "$TORCH_PY" "$data/prepare.py"
fi
cmp -s "$corpus" "$data/input.txt" || die "$data/input.txt is not '$corpus' (remove $data to prepare again)"
"$PY" "$HERE/nanogpt_plan.py" split "$data"

# The README's CPU recipe; later --key=value arguments override earlier ones.
recipe=(config/train_shakespeare_char.py --device=cpu --compile=False --eval_iters=20 --log_interval=1
  --block_size=64 --batch_size=12 --n_layer=4 --n_head=4 --n_embd=128 --max_iters=2000
  --lr_decay_iters=2000 --dropout=0.0 --dataset="$dataset")
run_recipe() { # LOG OUT_DIR extra overrides...
  local log=$1 out=$2
  shift 2
  local start
  start=$(now)
  # The terminal is spared the line per iteration; the log keeps them.
  if ! (cd "$nanogpt" && "$TORCH_PY" train.py "${recipe[@]}" --out_dir="$out" "$@") 2>&1 |
    "$PY" "$HERE/stamp_lines.py" --since "$start" "$log" | { grep -v '^iter ' || true; }; then
    die "nanoGPT's train.py failed (see $log)"
  fi
}

# 2. Calibration.
cal=${CALIBRATION_ITERS:-30}
run_recipe "$outdir/calibration.log" "$outdir/calibration" --max_iters="$cal" --lr_decay_iters="$cal" \
  --eval_interval="$cal"
plan=$("$PY" "$HERE/nanogpt_plan.py" plan "$outdir/calibration.log" "$budget_s" --fit "${NANOGPT_FIT:-iters}")
eval "$plan" # max_iters, eval_interval, warmup_iters, iters_per_s, eval_s

# 3. The run, its score and its record.
start=$(now)
run_recipe "$outdir/train.log" "$outdir/nanogpt-out" --max_iters="$max_iters" --lr_decay_iters="$max_iters" \
  --warmup_iters="$warmup_iters" --eval_interval="$eval_interval"
wall=$(seconds_between "$start" "$(now)")
[ -f "$outdir/nanogpt-out/ckpt.pt" ] || die "nanoGPT saved no checkpoint (its validation never improved)"
"$TORCH_PY" "$HERE/nanogpt_score.py" --nanogpt "$nanogpt" --checkpoint "$outdir/nanogpt-out/ckpt.pt" \
  --val "$data/val.bin" --window 64 --count "${WINDOWS_COUNT:-2000}" --seed "${WINDOWS_SEED:-1}" \
  --threads "${THREADS:-2}" >"$outdir/score_windows64.json"
params=$("$PY" -c 'import json, sys; print(json.load(sys.stdin)["params"])' <"$outdir/score_windows64.json")
"$PY" "$HERE/run_record.py" --impl nanogpt --outdir "$outdir" --corpus "$corpus" --budget "$budget_s" \
  --wall "$wall" --curve "nanogpt:$outdir/train.log" --params "$params" --setting "nanogpt_commit=$commit" \
  --setting "max_iters=$max_iters" --setting "warmup_iters=$warmup_iters" --setting "eval_interval=$eval_interval" \
  --setting "iters_per_s=$iters_per_s" --setting "eval_s=$eval_s" --setting "fit=${NANOGPT_FIT:-iters}" \
  --setting "recipe=${recipe[*]}"
