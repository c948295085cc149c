#!/usr/bin/env python3
"""The sweep behind the model-size rule: our `train` at one budget for each configuration of a
list (explicit flags, so the budget's own choice of model is off), each scored by `eval`, in turn
(never in parallel: they would share the cores).

  sweep.py --corpus F --budget 10m --configs sweep_configs.json --out DIR [--only NAME,...]

Each configuration runs through ours_budget.sh into DIR/NAME (a configuration whose
DIR/NAME/result.json exists is not run again, so a sweep cut short goes on where it stopped).
Then DIR/sweep.md and DIR/sweep.csv: per configuration its flags, parameters, tokens seen (steps
x batch x seq_len, from log.csv), tokens/s (training only: the steps' own rates, from log.csv),
the share of the budget spent training, and the validation loss (nats/char) as one stream and
over windows of 256 (`eval`), and the run's own last validation (val_run: train's batch layout).
fit_rule.py reads the CSVs.

The configuration file is a JSON list of {"name": ..., "flags": {"hidden": 512, "seq-len": 50,
...}}: each flag becomes `--flag value`.
"""

import argparse
import csv
import json
import os
import subprocess
import sys

from budget import budget_seconds
from machine import machine_name
from run_record import RESULT_FILE, read_result
from tables import write_tables

HERE = os.path.dirname(os.path.abspath(__file__))
HEADERS = ["corpus", "budget_s", "config", "flags", "params", "tokens_seen", "tokens_per_s", "train_share",
           "val_stream", "val_windows256", "val_run"]


def flag_list(flags):
    out = []
    for name, value in flags.items():
        out += [f"--{name}", str(value)]
    return out


def training_figures(run_dir):
    """(steps x batch x seq_len, tokens/s over the training steps) from the run's log.csv."""
    with open(os.path.join(run_dir, "config.json"), encoding="utf-8") as f:
        training = json.load(f)["training"]
    tokens_per_step = training["batch_size"] * training["seq_len"]
    steps, seconds = 0, 0.0
    with open(os.path.join(run_dir, "log.csv"), newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            steps = max(steps, int(row["step"]))
            seconds += tokens_per_step / float(row["tokens_per_sec"])
    return steps * tokens_per_step, (steps * tokens_per_step / seconds if seconds else 0.0)


def run_validation(run_dir):
    """The run's own last validation (train's batch layout: B rows with carried state)."""
    with open(os.path.join(run_dir, "info.json"), encoding="utf-8") as f:
        loss = json.load(f).get("val_loss")
    return f"{loss:.4f}" if loss is not None else ""


def row_of(corpus, budget_s, config, run_dir):
    result = read_result(run_dir)
    tokens, rate = training_figures(run_dir)
    scores = result["scores"]
    loss = lambda protocol: f"{scores[protocol]['loss_nats']:.4f}" if protocol in scores else ""  # noqa: E731
    train_share = tokens / rate / budget_s if rate and budget_s else ""
    return [os.path.basename(corpus), f"{budget_s:g}", config["name"], " ".join(flag_list(config["flags"])),
            result["params"], tokens, f"{rate:.0f}", f"{train_share:.3f}" if train_share else "",
            loss("stream"), loss("windows256"), run_validation(run_dir)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--budget", required=True, help="90s, 10m, … (steps=N for a binary without --time)")
    ap.add_argument("--configs", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--only", help="comma-separated names: run only these configurations")
    args = ap.parse_args()
    with open(args.configs, encoding="utf-8") as f:
        configs = json.load(f)
    if args.only:
        wanted = set(args.only.split(","))
        unknown = wanted - {c["name"] for c in configs}
        if unknown:
            sys.exit(f"error: no configuration named {', '.join(sorted(unknown))} in {args.configs}")
        configs = [c for c in configs if c["name"] in wanted]
    budget_s = 0.0 if args.budget.startswith("steps=") else budget_seconds(args.budget)
    os.makedirs(args.out, exist_ok=True)
    rows, failed = [], []
    for i, config in enumerate(configs, 1):
        run_dir = os.path.join(args.out, config["name"])
        if not os.path.exists(os.path.join(run_dir, RESULT_FILE)):
            print(f"== sweep {i}/{len(configs)}: {config['name']} at {args.budget}", file=sys.stderr)
            command = [os.path.join(HERE, "ours_budget.sh"), args.corpus, args.budget, run_dir,
                       *flag_list(config["flags"])]
            if subprocess.run(command).returncode != 0:
                failed.append(config["name"])
                continue
        rows.append(row_of(args.corpus, budget_s, config, run_dir))
    title = (f"Sweep on {os.path.basename(args.corpus)} at {args.budget}, {machine_name()}: validation loss in "
             f"nats/char (last 10%), as one stream and over 2,000 windows of 256 from a cold start")
    write_tables(os.path.join(args.out, "sweep"), HEADERS, rows, title)
    print(f"wrote {os.path.join(args.out, 'sweep.md')} and sweep.csv ({len(rows)} configurations)", file=sys.stderr)
    if failed:
        sys.exit(f"error: {len(failed)} configuration(s) failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
