#!/usr/bin/env python3
"""The constants of `engine/src/training/model_sizing.rs` from the sweep CSVs of every corpus:

    L = E_c + A / N^alpha + B / D'^beta,   D' = D                                    (D <= U)
                                           D' = U (1 + R (1 - exp(-(D/U - 1) / R)))  (D > U)

N parameters, D tokens seen, U the corpus's training tokens (one epoch), E_c one per corpus (its
entropy: it does not change which size wins), A, B, alpha, beta and R shared by the corpora so
that one rule serves any corpus. alpha, beta and R on a grid, E_c, A, B by least squares (numpy).
Also prints the peak share of each width (measured tokens/s x the standard FLOPs per token /
(threads x the machine's peak)) and the share of a budget spent training, the other constants of
the rule, and each run's residual.

  fit_sizing_law.py --peak FLOPS --threads 2 --unique CORPUS=TOKENS ... [--speeds FILE] DIR/sweep.csv ...

(the peak: one thread's, in the sweep's precision; `charrnn-fast bench` prints it.) With
--speeds (lines "WIDTH TOKENS_PER_S": each width's training speed measured on a quiet machine),
it also prints the peak share of each width and, for every corpus and budget of the sweep, the
loss the law predicts for each width and the width it would choose.
"""

import argparse
import csv
import itertools
import json
import math

import numpy as np


def flops_per_token(hidden, layers, embed, vocab):
    """The engine's standard count: 3 x (sum over layers of 2 G H (in + H) + 2 H V), G = 4."""
    total, width = 0, embed
    for _ in range(layers):
        total += 2 * 4 * hidden * (width + hidden)
        width = hidden
    return 3 * (total + 2 * hidden * vocab)


def effective(d, u, r):
    return d if d <= u else u * (1 + r * (1 - math.exp(-(d / u - 1) / r)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("csv", nargs="+")
    ap.add_argument("--peak", type=float, required=True, help="one thread's peak flop/s")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--unique", action="append", default=[], help="CORPUS=TRAINING_TOKENS")
    ap.add_argument("--vocab", action="append", default=[], help="CORPUS=VOCABULARY")
    ap.add_argument("--min-exponent", type=float, default=0.05, help="the smallest exponent tried")
    ap.add_argument("--speeds", help="lines 'WIDTH TOKENS_PER_S' (2 layers, embedding 128, the sweep's batch)")
    ap.add_argument("--training-share", type=float, default=0.93, help="share of a budget spent in steps")
    args = ap.parse_args()
    unique = {k: float(v) for k, v in (x.split("=") for x in args.unique)}
    vocab = {k: int(v) for k, v in (x.split("=") for x in args.vocab)}
    rows = []
    for path in args.csv:
        with open(path, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                if row.get("val_stream"):
                    rows.append(row)
    corpora = sorted({r["corpus"] for r in rows})
    N = np.array([float(r["params"]) for r in rows])
    D = np.array([float(r["tokens_seen"]) for r in rows])
    L = np.array([float(r["val_stream"]) for r in rows])
    U = np.array([unique[r["corpus"]] for r in rows])
    best = None
    for alpha, beta, r in itertools.product(np.arange(args.min_exponent, 1.51, 0.05), np.arange(args.min_exponent, 1.51, 0.05), (1, 2, 4, 8, 16, 32)):
        Deff = np.array([effective(d, u, r) for d, u in zip(D, U)])
        cols = [np.array([1.0 if x["corpus"] == c else 0.0 for x in rows]) for c in corpora]
        cols += [N**-alpha, Deff**-beta]
        X = np.stack(cols, axis=1)
        coef, *_ = np.linalg.lstsq(X, L, rcond=None)
        if coef[-1] < 0 or coef[-2] < 0:
            continue
        err = float(np.sum((X @ coef - L) ** 2))
        if best is None or err < best[0]:
            best = (err, alpha, beta, r, coef, X @ coef)
    err, alpha, beta, r, coef, fitted = best
    e = dict(zip(corpora, coef[: len(corpora)]))
    a, b = coef[-2], coef[-1]
    print(json.dumps({"a": a, "alpha": round(alpha, 2), "b": b, "beta": round(beta, 2), "repetitions": r,
                      "entropy": e, "rms": math.sqrt(err / len(rows))}, indent=1))
    print("\n| corpus | budget | config | N | D | epochs | loss (stream) | fitted | residual |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row, f in zip(rows, fitted):
        u = unique[row["corpus"]]
        print(f"| {row['corpus']} | {row['budget_s']} s | {row['config']} | {int(row['params']):,} | "
              f"{int(float(row['tokens_seen'])):,} | {float(row['tokens_seen']) / u:.2f} | {float(row['val_stream']):.4f} | "
              f"{f:.4f} | {float(row['val_stream']) - f:+.4f} |")
    print("\npeak share by width (measured tokens/s x FLOPs per token / (threads x peak)); training share:")
    for row in rows:
        flags = row["flags"].split()
        get = lambda name: int(flags[flags.index(f"--{name}") + 1])
        v = vocab.get(row["corpus"], 65)
        share = float(row["tokens_per_s"]) * flops_per_token(get("hidden"), get("layers"), get("embed"), v)
        share /= args.threads * args.peak
        print(f"  {row['corpus']} {row['budget_s']} s {row['config']}: peak share {share:.3f}, training share {row['train_share']}")
    if args.speeds:
        speeds = {}
        with open(args.speeds, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    width, rate = line.split()
                    speeds[int(width)] = float(rate)
        print("\nquiet speeds: width, tokens/s, peak share")
        for width, rate in sorted(speeds.items()):
            share = rate * flops_per_token(width, 2, 128, 65) / (args.threads * args.peak)
            print(f"  {width}: {rate:.0f}, {share:.3f}")
        print("\nthe law's choice (predicted loss above the corpus's entropy, by width):")
        for corpus in corpora:
            v = vocab.get(corpus, 65)
            for budget in sorted({float(r["budget_s"]) for r in rows if r["corpus"] == corpus}):
                predicted = {}
                for width, rate in sorted(speeds.items()):
                    e = min(128, width)
                    n = v * e + 4 * width * (e + width + 2) + 4 * width * (2 * width + 2) + (width + 1) * v
                    d = rate * budget * args.training_share
                    predicted[width] = a * n**-alpha + b * effective(d, unique[corpus], r) ** -beta
                best_width = min(predicted, key=predicted.get)
                cells = ", ".join(f"{w}: {p:.4f}" for w, p in predicted.items())
                print(f"  {corpus} {budget:g} s -> {best_width} ({cells})")


if __name__ == "__main__":
    main()
