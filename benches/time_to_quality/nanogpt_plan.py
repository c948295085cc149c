#!/usr/bin/env python3
"""nanoGPT's CPU recipe scaled to a wall-clock budget (nanogpt_budget.sh's arithmetic).

  nanogpt_plan.py split DATA_DIR
      checks the split prepare.py made in DATA_DIR (val.bin = the last 10% of input.txt's
      characters, cut at int(0.9 n)) and says how it differs from ours (n - floor(0.1 n))
  nanogpt_plan.py plan CALIBRATION_LOG BUDGET_SECONDS [--fit iters|wall]
      reads a short stamped run of the recipe (stamp_lines.py over train.py's output, with
      evaluations at iteration 0 and at its last iteration) and prints, as shell assignments,
      max_iters (= lr_decay_iters), eval_interval (a tenth of it: 11 points on the curve, the
      last at max_iters) and warmup_iters (the recipe's 100 of 2,000 iterations, 5%, kept when
      smaller than 5% of max_iters, else scaled to 5%), with iters_per_s and the predicted
      wall-clock on stderr

--fit iters (the default) sets max_iters = round(budget x iterations/s), the recipe's training
iterations filling the budget, its evaluations and start-up on top; --fit wall leaves room for
them (measured in the calibration run), so that the whole run fits the budget as ours does.
"""

import argparse
import os
import re
import statistics
import sys

from log_curves import stamped_lines

RECIPE_ITERS, RECIPE_WARMUP = 2000, 100
EVALS_PER_RUN = 11  # at 0, eval_interval, …, 10 x eval_interval = max_iters
ITER_LINE = re.compile(r"^iter (\d+): loss [0-9.]+, time ([0-9.]+)ms")
EVAL_LINE = re.compile(r"^step (\d+): train loss")
SETTLE_ITERS = 5  # nanoGPT's own: "let the training loop settle a bit"


def split(data_dir):
    with open(os.path.join(data_dir, "input.txt"), encoding="utf-8") as f:
        n = len(f.read())
    val = os.path.getsize(os.path.join(data_dir, "val.bin")) // 2  # uint16 ids
    expected = n - int(n * 0.9)
    if val != expected:
        sys.exit(f"error: val.bin holds {val} characters, not the last {expected} of {n}: prepare.py differs")
    ours = int(n * 0.1)  # charrnn-fast: n_val = floor(n x val_frac)
    print(f"nanoGPT's split: val = the last {val:,} of {n:,} characters (cut at int(0.9 n)); "
          f"charrnn-fast --val-frac 0.1 holds out the last {ours:,} ({val - ours} fewer)")


def calibration(log):
    """(seconds per iteration, seconds per evaluation, seconds before the first evaluation)."""
    iters, evals = {}, {}
    for seconds, line in stamped_lines(log):
        if m := ITER_LINE.match(line):
            iters[int(m.group(1))] = (seconds, float(m.group(2)) / 1000.0)
        elif m := EVAL_LINE.match(line):
            evals[int(m.group(1))] = seconds
    last = max(iters, default=-1)
    # An iteration's time includes an evaluation run just before it (at 0, and at the last).
    steady = [dt for it, (_, dt) in iters.items() if SETTLE_ITERS <= it < last]
    later_evals = [it for it in evals if it > 0 and it - 1 in iters]
    if len(steady) < 3 or not later_evals or 0 not in evals:
        sys.exit(f"error: {log}: too short a calibration run (need evaluations at 0 and later, "
                 f"and more than {SETTLE_ITERS + 3} iterations)")
    it = later_evals[0]
    eval_s = evals[it] - iters[it - 1][0]
    return statistics.median(steady), eval_s, max(evals[0] - eval_s, 0.0)


def plan(log, budget, fit):
    step_s, eval_s, startup_s = calibration(log)
    rate = 1.0 / step_s
    train_s = budget if fit == "iters" else budget - startup_s - EVALS_PER_RUN * eval_s
    if train_s <= 0:
        sys.exit(f"error: a {budget:g} s budget leaves no time to train after start-up ({startup_s:.1f} s) "
                 f"and {EVALS_PER_RUN} evaluations ({eval_s:.2f} s each)")
    max_iters = max(10, round(train_s * rate / 10) * 10)
    eval_interval = max_iters // 10
    warmup = min(RECIPE_WARMUP, round(max_iters * RECIPE_WARMUP / RECIPE_ITERS))
    predicted = startup_s + max_iters * step_s + EVALS_PER_RUN * eval_s
    print(f"nanoGPT at {rate:.2f} iterations/s, {eval_s:.2f} s per evaluation, {startup_s:.1f} s to start: "
          f"{max_iters} iterations (warm-up {warmup}, evaluations every {eval_interval}) for a {budget:g} s budget "
          f"(--fit {fit}); predicted wall-clock {predicted:.0f} s", file=sys.stderr)
    print(f"max_iters={max_iters}")
    print(f"eval_interval={eval_interval}")
    print(f"warmup_iters={warmup}")
    print(f"iters_per_s={rate:.4f}")
    print(f"eval_s={eval_s:.3f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    s = sub.add_parser("split")
    s.add_argument("data_dir")
    p = sub.add_parser("plan")
    p.add_argument("log")
    p.add_argument("budget", type=float)
    p.add_argument("--fit", choices=["iters", "wall"], default="iters")
    args = ap.parse_args()
    if args.command == "split":
        split(args.data_dir)
    else:
        plan(args.log, args.budget, args.fit)


if __name__ == "__main__":
    main()
