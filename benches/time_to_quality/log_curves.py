"""Validation loss against wall-clock seconds, from each kind of run's log: the points of the
plot's curves. Every function returns `[(seconds, val_loss), …]` in the log's order.

A stamped log is one written by stamp_lines.py: `<seconds>\t<line>` per line.
"""

import csv
import re

# nanoGPT's train.py at each eval_interval.
NANOGPT_EVAL = re.compile(r"^step (\d+): train loss ([0-9.]+), val loss ([0-9.]+)")
# charrnn-fast train's progress lines (cli/src/train/progress.rs).
OURS_EVAL = re.compile(r"^validation after step (\d+) .*: loss ([0-9.]+) nats/")
# Column names of log.csv's elapsed-time column: `elapsed_s` (written since 2026-12-07); the others are accepted too.
ELAPSED_COLUMNS = ("elapsed_s", "elapsed", "seconds", "time_s")


def stamped_lines(path):
    """(seconds, line) of each line of a stamped log."""
    with open(path, encoding="utf-8", errors="replace") as f:
        for row in f:
            seconds, _, line = row.rstrip("\n").partition("\t")
            yield float(seconds), line


def matched_losses(stamped_log, pattern, group):
    """(seconds, the loss in `group`) of each line that `pattern` matches."""
    return [(seconds, float(m.group(group))) for seconds, line in stamped_lines(stamped_log)
            if (m := pattern.match(line))]


def nanogpt_curve(stamped_log):
    """nanoGPT's own estimate (eval_iters random batches of the val split) at each evaluation."""
    return matched_losses(stamped_log, NANOGPT_EVAL, 3)


def ours_curve(stamped_log, log_csv=None):
    """Our run's validations: from log.csv when it has an elapsed-time column (its own clock),
    else from the stamped progress lines (the time each validation was printed)."""
    if log_csv is not None:
        points = log_csv_curve(log_csv)
        if points is not None:
            return points
    return matched_losses(stamped_log, OURS_EVAL, 2)


def log_csv_curve(path):
    """(elapsed, val_loss) of the rows of a log.csv with a validation, or None when the log has
    no elapsed-time column (logs written before cli/src/train/run_log.rs wrote elapsed_s)."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    column = next((c for c in ELAPSED_COLUMNS if rows and c in rows[0]), None)
    if column is None:
        return None
    return [(float(r[column]), float(r["val_loss"])) for r in rows if r.get("val_loss")]


def torch_curve(torch_log_csv):
    """torch_budget.py's log: its rows with a validation."""
    with open(torch_log_csv, newline="", encoding="utf-8") as f:
        return [(float(r["seconds"]), float(r["val_loss"])) for r in csv.DictReader(f) if r["val_loss"]]
