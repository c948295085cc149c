"""The one place that reads a score line: `charrnn-fast eval --json` (ours and PyTorch's model,
both scored by our `eval`) and nanogpt_score.py, which prints the same fields.

If `eval --json` names its fields otherwise, change FIELDS here and nothing else.
"""

import json

# (our key, the key in the score line)
FIELDS = (("loss_nats", "loss_nats"), ("bits", "loss_bits"))
# Recorded when the line has them: `eval`'s speed (characters per second).
OPTIONAL_FIELDS = (("chars_per_s", "per_second"),)


def eval_figures(text):
    """`{"loss_nats": float, "bits": float[, "chars_per_s": float]}` from the scorer's stdout: one JSON object (on one
    line or several), or else its last line that is one (other lines, such as progress, are
    passed over)."""
    try:
        record = json.loads(text)
    except json.JSONDecodeError:
        lines = [line.strip() for line in text.splitlines() if line.strip().startswith("{")]
        if not lines:
            raise ValueError("no JSON object in the scorer's output") from None
        record = json.loads(lines[-1])
    figures = {ours: float(record[theirs]) for ours, theirs in FIELDS}
    figures.update({ours: float(record[theirs]) for ours, theirs in OPTIONAL_FIELDS if record.get(theirs) is not None})
    return figures
