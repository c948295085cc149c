#!/usr/bin/env python3
"""A budgeted run's record in its OUTDIR, the same for ours, nanoGPT and PyTorch, read by the
plot and the tables:

  result.json  one object: impl, machine, corpus and its SHA-256, budget_s, wall_s (measured),
               params, scores ({protocol: {loss_nats, bits}}) and the run's settings
  curve.csv    seconds,val_loss: validation loss against wall-clock during the run

The budget scripts call it last:

  run_record.py --impl ours --outdir D --corpus F --budget 600 --wall 612.3 \
      --curve ours:D/train.log [--log-csv D/log.csv] [--params N] [--setting key=value]…

Scores are the files D/score_<protocol>.json (a scorer's stdout, read by eval_output.py);
parameters come from --params, else from D/info.json (`charrnn-fast info --json`).
"""

import argparse
import csv
import glob
import hashlib
import io
import json
import os

import eval_output
import log_curves
from machine import machine_name

RESULT_FILE = "result.json"
CURVE_FILE = "curve.csv"
SCORE_PREFIX = "score_"


def write_atomic(path, text):
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_result(outdir):
    with open(os.path.join(outdir, RESULT_FILE), encoding="utf-8") as f:
        return json.load(f)


def read_curve(outdir):
    """[(seconds, val_loss)] of a run's curve.csv ([] when it has none)."""
    path = os.path.join(outdir, CURVE_FILE)
    if not os.path.exists(path):
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return [(float(r["seconds"]), float(r["val_loss"])) for r in csv.DictReader(f)]


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def scores_in(outdir):
    """{protocol: {loss_nats, bits}} from the score files in outdir."""
    scores = {}
    for path in sorted(glob.glob(os.path.join(outdir, SCORE_PREFIX + "*.json"))):
        protocol = os.path.basename(path)[len(SCORE_PREFIX):-len(".json")]
        with open(path, encoding="utf-8") as f:
            scores[protocol] = eval_output.eval_figures(f.read())
    return scores


def params_in(outdir):
    path = os.path.join(outdir, "info.json")
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f).get("parameters")


def curve_of(kind, log, log_csv):
    if kind == "nanogpt":
        return log_curves.nanogpt_curve(log)
    if kind == "ours":
        return log_curves.ours_curve(log, log_csv)
    if kind == "torch":
        return log_curves.torch_curve(log)
    raise SystemExit(f"error: unknown curve kind '{kind}' (nanogpt, ours, torch)")


def setting_value(text):
    """A --setting value as JSON when it parses (numbers, true), else as the string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--impl", required=True, choices=["ours", "nanogpt", "pytorch"])
    ap.add_argument("--outdir", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--budget", type=float, required=True, help="the budget in seconds")
    ap.add_argument("--wall", type=float, required=True, help="the run's measured wall-clock in seconds")
    ap.add_argument("--curve", required=True, help="KIND:LOG, KIND one of nanogpt, ours, torch")
    ap.add_argument("--log-csv", help="our run's log.csv (used when it has an elapsed-time column)")
    ap.add_argument("--params", type=int)
    ap.add_argument("--setting", action="append", default=[], help="KEY=VALUE, recorded under settings")
    args = ap.parse_args()

    kind, _, log = args.curve.partition(":")
    curve = curve_of(kind, log, args.log_csv)
    settings = {}
    for item in args.setting:
        key, _, value = item.partition("=")
        settings[key] = setting_value(value)
    result = {
        "impl": args.impl,
        "machine": machine_name(),
        "corpus": os.path.abspath(args.corpus),
        "corpus_sha256": sha256_of(args.corpus),
        "budget_s": args.budget,
        "wall_s": round(args.wall, 3),
        "params": args.params if args.params is not None else params_in(args.outdir),
        "scores": scores_in(args.outdir),
        "settings": settings,
        "curve_points": len(curve),
    }
    write_atomic(os.path.join(args.outdir, RESULT_FILE), json.dumps(result, indent=2) + "\n")
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["seconds", "val_loss"])
    writer.writerows([(f"{s:.3f}", f"{v:.6f}") for s, v in curve])
    write_atomic(os.path.join(args.outdir, CURVE_FILE), text.getvalue())
    figures = ", ".join(f"{p} {s['loss_nats']:.4f}" for p, s in result["scores"].items()) or "no scores"
    print(f"{args.impl}: {result['wall_s']:.1f} s of wall-clock for a {args.budget:g} s budget; {figures} "
          f"(nats/char); {len(curve)} curve points -> {os.path.join(args.outdir, RESULT_FILE)}")


if __name__ == "__main__":
    main()
