"""The one place that reads a score line: `charrnn-fast eval --json` (ours and PyTorch's model,
both scored by our `eval`) and nanogpt_score.py, which prints the same fields.

If `eval --json` names its fields otherwise, change FIELDS here and nothing else.
"""

import json

# (our key, the key in the score line)
FIELDS = (("loss_nats", "loss_nats"), ("bits", "bits"))


def eval_figures(text):
    """`{"loss_nats": float, "bits": float}` from the last JSON object line of `text` (the
    scorer's stdout; lines that are not JSON, such as progress, are passed over)."""
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            record = json.loads(line)
            return {ours: float(record[theirs]) for ours, theirs in FIELDS}
    raise ValueError("no JSON line in the scorer's output")
