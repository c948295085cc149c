#!/usr/bin/env python3
"""The model-size rule from the sweeps: a small scaling law of validation loss against
parameters N and tokens seen D, fitted to the sweep CSVs of every corpus,

    L(N, D) = E_c + A_c / N^a + B_c / D^b     (E, A, B per corpus c; the exponents a, b shared),

then, for each budget, the configuration of the sweep with the lowest predicted loss, given its
measured tokens/s: D = tokens/s x budget x the share of a budget spent training (measured).

  fit_rule.py DIR1/sweep.csv DIR2/sweep.csv … [--loss val_stream] [--budgets 1,3,10,30] [--json]

No scipy: the exponents on a grid, and for each pair (E, A, B) by least squares (numpy), each
kept non-negative by refitting without a term that comes out negative (E too). Run it with a Python
that has numpy (the torch venv's).
"""

import argparse
import csv
import itertools
import json
import statistics
import sys

import numpy as np

EXPONENTS = np.round(np.arange(0.05, 1.5001, 0.05), 2)


def read_rows(paths, loss_column):
    """{corpus: [row]} of the CSV rows with a loss, each with N, D and L as floats."""
    corpora = {}
    for path in paths:
        with open(path, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                if not row.get(loss_column) or not row.get("params") or not row.get("tokens_seen"):
                    continue
                row["N"], row["D"], row["L"] = float(row["params"]), float(row["tokens_seen"]), float(row[loss_column])
                corpora.setdefault(row["corpus"], []).append(row)
    return corpora


def fit_terms(N, D, L, a, b):
    """(E, A, B, squared error) at exponents a, b, all three >= 0 (an entropy, two excesses)."""
    columns = {"E": np.ones_like(L), "A": N**-a, "B": D**-b}
    best = None
    for terms in (("E", "A", "B"), ("E", "A"), ("E", "B"), ("E",)):
        X = np.stack([columns[t] for t in terms], axis=1)
        coef, *_ = np.linalg.lstsq(X, L, rcond=None)
        fitted = dict(zip(terms, coef))
        if any(value < 0 for value in fitted.values()):
            continue
        error = float(np.sum((X @ coef - L) ** 2))
        if best is None or error < best[3]:
            best = (fitted["E"], fitted.get("A", 0.0), fitted.get("B", 0.0), error)
    return best


def fit(corpora):
    """Shared (a, b) and per-corpus (E, A, B) with the least total squared error."""
    best = None
    for a, b in itertools.product(EXPONENTS, EXPONENTS):
        per_corpus, total = {}, 0.0
        for corpus, rows in corpora.items():
            N, D, L = (np.array([r[k] for r in rows]) for k in ("N", "D", "L"))
            E, A, B, error = fit_terms(N, D, L, a, b)
            per_corpus[corpus] = {"E": E, "A": A, "B": B}
            total += error
        if best is None or total < best["error"]:
            best = {"a": float(a), "b": float(b), "corpora": per_corpus, "error": total}
    return best


def predict(law, corpus, N, D):
    c = law["corpora"][corpus]
    return c["E"] + c["A"] * N ** -law["a"] + c["B"] * D ** -law["b"]


def choices(law, corpus, rows, budgets_min):
    """Per budget: (minutes, [(predicted loss, config, N, D)] best first)."""
    shares = [float(r["train_share"]) for r in rows if r.get("train_share")]
    share = statistics.median(shares) if shares else 1.0
    configs = {}
    for r in rows:  # one entry per configuration: its speed (median over the sweeps' budgets)
        configs.setdefault(r["config"], (r["N"], r["flags"], []))[2].append(float(r["tokens_per_s"]))
    out = []
    for minutes in budgets_min:
        ranked = []
        for name, (N, flags, rates) in configs.items():
            D = statistics.median(rates) * minutes * 60 * share
            ranked.append((predict(law, corpus, N, D), name, N, D, flags))
        out.append((minutes, sorted(ranked)))
    return out, share


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("csv", nargs="+", help="sweep.csv files (sweep.py), of one or more corpora and budgets")
    ap.add_argument("--loss", default="val_stream", help="the loss column: val_stream, val_windows256 or val_run")
    ap.add_argument("--budgets", default="1,3,10,30", help="minutes, comma-separated")
    ap.add_argument("--json", action="store_true", help="also print the fitted law as one JSON line")
    args = ap.parse_args()
    corpora = read_rows(args.csv, args.loss)
    if not corpora:
        sys.exit(f"error: no row with '{args.loss}', params and tokens_seen in {', '.join(args.csv)}")
    for corpus, rows in corpora.items():
        if len(rows) < 4:
            print(f"warning: {corpus}: {len(rows)} runs for 3 coefficients and 2 shared exponents: "
                  f"the fit is not determined", file=sys.stderr)
    law = fit(corpora)
    budgets = [float(m) for m in args.budgets.split(",")]
    print(f"L(N, D) = E + A / N^{law['a']:.2f} + B / D^{law['b']:.2f}   ({args.loss}, nats/char)")
    for corpus, rows in corpora.items():
        c = law["corpora"][corpus]
        residuals = [r["L"] - predict(law, corpus, r["N"], r["D"]) for r in rows]
        rms = (sum(x * x for x in residuals) / len(residuals)) ** 0.5
        print(f"\n{corpus}: E = {c['E']:.4f}, A = {c['A']:.4g}, B = {c['B']:.4g}; {len(rows)} runs, "
              f"RMS residual {rms:.4f}")
        ranked, share = choices(law, corpus, rows, budgets)
        print(f"  a budget trains for {share:.0%} of its time (median of the sweep)")
        for minutes, order in ranked:
            loss, name, N, D, flags = order[0]
            measured = [r for r in rows if float(r["budget_s"]) == minutes * 60]
            note = ""
            if measured:
                top = min(measured, key=lambda r: r["L"])
                note = f"; the sweep at {minutes:g} min measured best {top['config']} {top['L']:.4f}"
            runner = f", then {order[1][1]} {order[1][0]:.4f}" if len(order) > 1 else ""
            print(f"  {minutes:g} min: {name} ({N:,.0f} parameters, {D:,.0f} tokens) predicted {loss:.4f}"
                  f"{runner}{note}\n      {flags}")
    if args.json:
        print(json.dumps({"loss": args.loss, "a": law["a"], "b": law["b"], "corpora": law["corpora"]}))


if __name__ == "__main__":
    main()
