#!/usr/bin/env python3
"""A time budget as every script here takes it: seconds (`90`, `90s`), minutes (`10m`) or hours
(`1h`), as `charrnn-fast train --time` does. `budget.py BUDGET` prints the seconds."""

import re
import sys

UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600}


def budget_seconds(text):
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([smh]?)\s*", text)
    if not m or float(m.group(1)) <= 0:
        raise ValueError(f"'{text}' is not a time budget (90, 90s, 10m, 1h)")
    return float(m.group(1)) * UNIT_SECONDS[m.group(2)]


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: budget.py BUDGET")
    try:
        print(f"{budget_seconds(sys.argv[1]):g}")
    except ValueError as e:
        sys.exit(f"error: {e}")
