#!/usr/bin/env bash
# The race on tinyshakespeare (validation = the last 10%): at each budget in turn, never two runs
# at once, ours (`train --time`), then PyTorch's LSTM with the recipe ours used (recipe_flags.py),
# then nanoGPT's CPU recipe scaled to the budget; then the plot and the table.
#
#   race.sh BUDGETS...          e.g. race.sh 1m 3m 10m 30m
#
# Environment (besides common.sh's): NANOGPT (nanoGPT at 3adf61e1; default ../nanoGPT beside this
# checkout), RESULTS (default race-<UTC time> in the current directory; one folder per run,
# <impl>-<budget>, then time_to_quality.svg/.md/.csv), CORPUS (default tinyshakespeare),
# OURS_FLAGS (extra train flags for ours, e.g. explicit sizes; default none: the budget chooses).
#
# Wall-clock: about three times the sum of the budgets, plus about a minute per budget (start-up,
# nanoGPT's calibration, the scoring) and nanoGPT's evaluations (about 7% of its budget): for
# 1m 3m 10m 30m, about 2 h 20 min. Run it on a quiet machine: every figure is a timing.
set -euo pipefail
source "$(dirname "$0")/common.sh"
[ $# -ge 1 ] || usage "race.sh BUDGETS...   (e.g. race.sh 1m 3m 10m 30m)"
nanogpt=${NANOGPT:-$REPO/../nanoGPT}
corpus=${CORPUS:-$REPO/data/tinyshakespeare/input.txt}
results=${RESULTS:-race-$(date -u +%Y%m%dT%H%M%SZ)}
[ -f "$nanogpt/train.py" ] || die "no nanoGPT at '$nanogpt' (set NANOGPT; see README.md here)"
[ -x "$CHARRNN" ] || die "no binary '$CHARRNN' (cargo build --release, or set CHARRNN)"
[ -x "$TORCH_PY" ] || die "no torch Python at '$TORCH_PY' (set TORCH_PY)"
for budget in "$@"; do
  budget_seconds "$budget" >/dev/null
done
mkdir -p "$results"

start=$(now)
for budget in "$@"; do
  echo "== $budget: ours" >&2
  # shellcheck disable=SC2086 # OURS_FLAGS is a list of flags
  "$HERE/ours_budget.sh" "$corpus" "$budget" "$results/ours-$budget" ${OURS_FLAGS:-}
  echo "== $budget: PyTorch's LSTM" >&2
  read -r -a recipe <<<"$("$PY" "$HERE/recipe_flags.py" "$results/ours-$budget")"
  "$HERE/torch_budget.sh" "$corpus" "$budget" "$results/pytorch-$budget" "${recipe[@]}"
  echo "== $budget: nanoGPT" >&2
  "$HERE/nanogpt_budget.sh" "$nanogpt" "$corpus" "$budget" "$results/nanogpt-$budget"
done
"$PY" "$HERE/plot_time_to_quality.py" "$results" --out "$results/time_to_quality.svg"
echo "race.sh: $(seconds_between "$start" "$(now)") s in all; $results/time_to_quality.svg and .md" >&2
