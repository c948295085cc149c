#!/usr/bin/env python3
"""Copies stdin to stdout line by line and writes each line to LOG after the seconds elapsed
since START (a Unix time, `date +%s.%N` taken just before the run was launched) and a tab:
the wall-clock of every log line, from which log_curves.py takes validation loss against time.

  START=$(date +%s.%N); some-run 2>&1 | python3 stamp_lines.py --since "$START" LOG
"""

import argparse
import sys
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--since", type=float, required=True, help="Unix time the run was launched")
    ap.add_argument("log")
    args = ap.parse_args()
    sys.stdin.reconfigure(errors="replace")
    with open(args.log, "x", encoding="utf-8") as log:
        for line in sys.stdin:
            log.write(f"{time.time() - args.since:.3f}\t{line}")
            log.flush()
            sys.stdout.write(line)
            sys.stdout.flush()


if __name__ == "__main__":
    main()
