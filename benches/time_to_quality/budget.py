#!/usr/bin/env python3
"""A time budget as every script here takes it, and as `charrnn-fast train --time` does: a bare
number of seconds (`90`) or numbers with units s/sec, m/min, h, summed (`90s`, `10m`, `1h30m`,
`2.5m`). `budget.py BUDGET` prints the seconds."""

import re
import sys

UNIT_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}


def budget_seconds(text):
    text = text.strip()
    usage = f"'{text}' is not a time budget such as 90s, 10m, 1h or 1h30m"
    if re.fullmatch(r"[0-9]+(?:\.[0-9]+)?", text):
        seconds = float(text)
    else:
        parts = re.findall(r"([0-9]+(?:\.[0-9]+)?)([a-z]+)", text)
        if not parts or "".join(n + u for n, u in parts) != text or any(u not in UNIT_SECONDS for _, u in parts):
            raise ValueError(usage)
        seconds = sum(float(n) * UNIT_SECONDS[u] for n, u in parts)
    if seconds < 1:
        raise ValueError(f"'{text}' is shorter than a second")
    return seconds


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: budget.py BUDGET")
    try:
        print(f"{budget_seconds(sys.argv[1]):g}")
    except ValueError as e:
        sys.exit(f"error: {e}")
