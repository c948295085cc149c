#!/usr/bin/env python3
"""Prints criterion's latest medians as a table: one row per benchmark input, one column per
function, as throughput (G/s of the bench's declared elements: GFLOP/s for the GEMM benches).

    python3 benches/criterion_table.py [GROUP ...]      (default: every group under target/criterion)

CRITERION_DIR reads another criterion directory (e.g. a `-C target-cpu=native` build's target dir).
"""
import json
import os
import sys

root = os.environ.get("CRITERION_DIR") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "criterion")
groups = sys.argv[1:] or sorted(d for d in os.listdir(root) if d != "report")
for group in groups:
    rows, cols = {}, []
    for dirpath, _, files in os.walk(os.path.join(root, group)):
        if "benchmark.json" not in files or not dirpath.endswith("new"):
            continue
        bench = json.load(open(os.path.join(dirpath, "benchmark.json")))
        est = json.load(open(os.path.join(dirpath, "estimates.json")))
        median_ns = est["median"]["point_estimate"]
        elements = (bench.get("throughput") or {}).get("Elements")
        value = elements / median_ns if elements else median_ns / 1e3
        func, inp = bench["function_id"], bench.get("value_str") or "-"
        rows.setdefault(inp, {})[func] = value
        if func not in cols:
            cols.append(func)
    if not rows:
        continue
    unit = "G/s" if any("Elements" in str(v) for v in [1]) else ""
    print(f"## {group} (median throughput, G elements/s; µs where no throughput is declared)")
    print("| input | " + " | ".join(cols) + " |")
    print("|---|" + "---|" * len(cols))
    for inp in sorted(rows):
        print(f"| {inp} | " + " | ".join(f"{rows[inp][c]:.1f}" if c in rows[inp] else "" for c in cols) + " |")
    print()
