"""The tables the sweep and the plot write: the same rows as Markdown (for the README) and CSV
(for fit_rule.py and spreadsheets)."""

import csv
import io

from run_record import write_atomic


def markdown(headers, rows):
    """A Markdown table; numbers as they are given (format them first)."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_tables(stem, headers, rows, title):
    """`stem.md` (a title line, then the table) and `stem.csv`, each written atomically."""
    write_atomic(stem + ".md", f"{title}\n\n{markdown(headers, rows)}")
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(headers)
    writer.writerows(rows)
    write_atomic(stem + ".csv", text.getvalue())
