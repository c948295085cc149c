#!/usr/bin/env python3
"""The time-to-quality plot and table, from the runs' result.json and curve.csv:

  plot_time_to_quality.py RUN_DIR… --out time_to_quality.svg [--protocol windows64] [--title-corpus NAME]

A RUN_DIR holds a run (its result.json) or runs one level down (race.sh's results folder).
Writes the SVG (validation loss against wall-clock minutes on a log scale, in the look of our
loss.svg: one curve per run, each implementation its colour, the final model's score a point at
the run's wall-clock) and, beside it, the table of final figures under both protocols (the same
name, .md and .csv). Curves are each run's own validation during training; the points are the
final models scored by one protocol for all (windows of 64 by default: the one nanoGPT's CPU
recipe's block size allows). Standard library only: runs on the system python3.
"""

import argparse
import math
import os
import sys
from xml.sax.saxutils import escape

from run_record import RESULT_FILE, read_curve, read_result, write_atomic
from tables import write_tables

WIDTH, HEIGHT = 900, 540
LEFT, RIGHT, TOP, BOTTOM = 68, 887, 38, 487  # the plot area, as loss.svg's
FONT = 'font-family="sans-serif"'
STYLE = {  # impl: (colour, legend)
    "ours": ("#FF0000", "charrnn-fast train --time"),
    "nanogpt": ("#0000FF", "nanoGPT CPU recipe, iterations scaled"),
    "pytorch": ("#008000", "PyTorch LSTM, the same recipe"),
}
PROTOCOLS = (("stream", "stream"), ("windows64", "windows of 64"), ("windows256", "windows of 256"))
MINUTE_TICKS = (0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30, 100, 300)


def find_runs(dirs):
    runs = []
    for d in dirs:
        candidates = [d] if os.path.exists(os.path.join(d, RESULT_FILE)) else sorted(
            os.path.join(d, sub) for sub in os.listdir(d))
        for run_dir in candidates:
            if os.path.exists(os.path.join(run_dir, RESULT_FILE)):
                runs.append((run_dir, read_result(run_dir), read_curve(run_dir)))
    return runs


def final_loss(result, protocol):
    score = result["scores"].get(protocol)
    return score["loss_nats"] if score else None


class Axes:
    """Log-scale minutes across, loss up."""

    def __init__(self, minutes, losses):
        self.x0, self.x1 = math.log10(min(minutes) / 1.3), math.log10(max(minutes) * 1.3)
        self.y0, self.y1 = min(losses) * 0.97, max(losses) * 1.02

    def x(self, minutes):
        return LEFT + (math.log10(minutes) - self.x0) / (self.x1 - self.x0) * (RIGHT - LEFT)

    def y(self, loss):
        return BOTTOM - (loss - self.y0) / (self.y1 - self.y0) * (BOTTOM - TOP)


def loss_ticks(y0, y1):
    step = next(s for s in (0.05, 0.1, 0.2, 0.25, 0.5, 1.0, 2.0) if (y1 - y0) / s <= 10)
    first = math.ceil(y0 / step) * step
    return [round(first + i * step, 2) for i in range(int((y1 - first) / step) + 1)]


def text(x, y, body, size=9.68, anchor="middle", extra=""):
    return (f'<text x="{x:.0f}" y="{y:.0f}" text-anchor="{anchor}" {FONT} font-size="{size}" fill="#000000"'
            f'{extra}>{escape(body)}</text>')


def draw(runs, protocol, title):
    finals = [(r, final_loss(r, protocol)) for _, r, _ in runs]
    minutes = [p[0] / 60 for _, _, c in runs for p in c] + [r["wall_s"] / 60 for r, _ in finals]
    finite = [v for _, v in finals if v is not None]
    losses = finite + [p[1] for _, _, c in runs for p in c]
    if not minutes or not losses:
        sys.exit("error: no curve points or scores to plot")
    # The early, high losses of a run's first validations would squash the finish: the top is
    # capped a nat above the worst final score (the curves are clipped there).
    top = min(max(losses), (max(finite) if finite else max(losses)) + 1.0)
    axes = Axes([m for m in minutes if m > 0], [v for v in losses if v <= top] + [top])
    out = [f'<svg width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" xmlns="http://www.w3.org/2000/svg">',
           f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#FFFFFF" stroke="none"/>',
           f'<clipPath id="area"><rect x="{LEFT}" y="{TOP}" width="{RIGHT - LEFT}" height="{BOTTOM - TOP}"/></clipPath>',
           text(WIDTH / 2, 28, title, size=16.13)]
    for tick in MINUTE_TICKS:
        if axes.x0 <= math.log10(tick) <= axes.x1:
            x = axes.x(tick)
            out.append(f'<line opacity="0.2" stroke="#000000" x1="{x:.0f}" y1="{BOTTOM}" x2="{x:.0f}" y2="{TOP}"/>')
            out.append(f'<polyline fill="none" stroke="#000000" points="{x:.0f},{BOTTOM + 1} {x:.0f},{BOTTOM + 6}"/>')
            out.append(text(x, BOTTOM + 18, f"{tick:g}"))
    for tick in loss_ticks(axes.y0, axes.y1):
        y = axes.y(tick)
        out.append(f'<line opacity="0.2" stroke="#000000" x1="{LEFT}" y1="{y:.0f}" x2="{RIGHT}" y2="{y:.0f}"/>')
        out.append(f'<polyline fill="none" stroke="#000000" points="{LEFT - 5},{y:.0f} {LEFT},{y:.0f}"/>')
        out.append(text(LEFT - 10, y + 3, f"{tick:g}", anchor="end"))
    out.append(f'<polyline fill="none" stroke="#000000" points="{LEFT - 1},{TOP} {LEFT - 1},{BOTTOM + 1} {RIGHT},{BOTTOM + 1}"/>')
    out.append(text((LEFT + RIGHT) / 2, HEIGHT - 14, "wall-clock minutes (log scale)"))
    middle = (TOP + BOTTOM) / 2
    out.append(text(14, middle, "validation loss (nats/char)", extra=f' transform="rotate(270, 14, {middle:.0f})"'))
    for (_, result, curve), (_, final) in zip(runs, finals):
        colour = STYLE.get(result["impl"], ("#000000", result["impl"]))[0]
        points = " ".join(f"{axes.x(s / 60):.1f},{axes.y(v):.1f}" for s, v in curve if s > 0)
        if points:
            out.append(f'<polyline clip-path="url(#area)" fill="none" opacity="0.6" stroke="{colour}" '
                       f'stroke-width="1.5" points="{points}"/>')
        if final is not None:
            x, y = axes.x(result["wall_s"] / 60), axes.y(final)
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour}" stroke="none"/>')
            out.append(text(x + 6, y - 6, f"{final:.3f}", size=8.5, anchor="start"))
    impls = [i for i in STYLE if any(r["impl"] == i for _, r, _ in runs)]
    box_y = TOP + 12
    out.append(f'<rect x="{RIGHT - 290}" y="{box_y}" width="280" height="{15 * len(impls) + 30}" opacity="0.8" '
               f'fill="#FFFFFF" stroke="#000000"/>')
    for i, impl in enumerate(impls):
        colour, label = STYLE[impl]
        y = box_y + 15 + 15 * i
        out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" '
                   f'points="{RIGHT - 280},{y} {RIGHT - 260},{y}"/>')
        out.append(text(RIGHT - 252, y + 3, label, anchor="start"))
    protocol_name = dict(PROTOCOLS).get(protocol, protocol)
    out.append(text(RIGHT - 280, box_y + 15 * len(impls) + 18, f"points: final model, {protocol_name}", anchor="start"))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def duration(seconds, number_format):
    """Seconds under two minutes, else minutes."""
    return f"{seconds:{number_format}} s" if seconds < 120 else f"{seconds / 60:{number_format}} min"


def table_rows(runs):
    rows = []
    order = {impl: i for i, impl in enumerate(STYLE)}
    for _, r, _ in sorted(runs, key=lambda run: (run[1]["budget_s"], order.get(run[1]["impl"], 9))):
        figures = [f"{final_loss(r, p):.4f}" if final_loss(r, p) is not None else "" for p, _ in PROTOCOLS]
        params = f"{r['params']:,}" if r.get("params") else ""
        rows.append([STYLE.get(r["impl"], ("", r["impl"]))[1], duration(r["budget_s"], "g"),
                     duration(r["wall_s"], ".2f"), params, *figures])
    return rows


def corpus_name(path):
    """data/tinyshakespeare/input.txt is 'tinyshakespeare'; other corpora go by their file name."""
    name = os.path.basename(path)
    return os.path.basename(os.path.dirname(path)) if name == "input.txt" else name


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="run directories, or folders of them")
    ap.add_argument("--out", required=True, help="the SVG; the table goes beside it (.md, .csv)")
    ap.add_argument("--protocol", default="windows64", choices=[p for p, _ in PROTOCOLS],
                    help="the score the final points show")
    ap.add_argument("--title-corpus", help="the corpus's name in the title [default: its file name, or for an "
                    "input.txt its folder's]")
    args = ap.parse_args()
    runs = find_runs(args.runs)
    if not runs:
        sys.exit(f"error: no {RESULT_FILE} in {', '.join(args.runs)}")
    corpus = args.title_corpus or corpus_name(runs[0][1]["corpus"])
    machines = sorted({r["machine"] for _, r, _ in runs})
    title = f"Time to quality: {corpus}, validation = last 10%; {' / '.join(machines)}"
    write_atomic(args.out, draw(runs, args.protocol, title))
    headers = ["run", "budget", "wall-clock", "parameters"] + [f"{name} (nats/char)" for _, name in PROTOCOLS]
    stem = os.path.splitext(args.out)[0]
    write_tables(stem, headers, table_rows(runs), f"{title}. Final models, both protocols (2,000 windows, seed 1; "
                 f"nanoGPT's block size of 64 allows windows of 64 only).")
    print(f"wrote {args.out}, {stem}.md and {stem}.csv ({len(runs)} runs)", file=sys.stderr)


if __name__ == "__main__":
    main()
