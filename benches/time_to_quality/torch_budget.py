#!/usr/bin/env python3
"""PyTorch's LSTM trained for a wall-clock budget with our recipe, written as a charrnn-fast
model directory so that `charrnn-fast eval` scores it exactly as it scores our own models.

  torch_budget.py --data CORPUS --budget 10m --out OUTDIR [recipe flags]

The model, the vocabulary (every character of the corpus by descending count, ties by code
point), the split (the last --val-frac of the characters) and the batch layout (B rows, chunks of
T, the state carried from batch to batch and reset at each epoch) are charrnn-fast's, taken from
benches/reference/torch_charrnn.py. The recipe: Adam (AdamW with --weight-decay), gradients clipped to --clip, dropout
between layers (nn.LSTM's, where ours is), optionally state resets (--state-reset), optionally the forward under bf16 autocast; the
learning rate warms up linearly over the first --warmup of the training time, then follows a
cosine down to --lr-floor x --lr at the deadline, laid over wall-clock time (not steps), or over
--steps when that cap comes first (as ours: the rule caps a small corpus at ten passes). The
budget counts from this process's start (imports and encoding the corpus included) and covers
the evaluations and the final save: the loop stops when the next step and the final evaluation
would not fit. About --eval-points validations (over the first --eval-tokens characters of the
split, in the training batch layout from a zero state) give the loss against time.

Writes OUTDIR/model/ (model.safetensors under our tensor names, config.json, vocab.json: the
weights of the best validation) and OUTDIR/torch_log.csv (seconds, step, tokens, train_loss,
val_loss, lr). Run it with the torch venv's Python.
"""

import time

PROCESS_START = time.time()  # the budget's clock starts before the imports

import argparse  # noqa: E402
import copy  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
from torch_charrnn import CharRNN, batches, encode, evaluate, split, train_step, vocab_of  # noqa: E402

from budget import budget_seconds  # noqa: E402

MODEL_FORMAT = "charrnn-fast model"  # engine/src/files/model_dir.rs
MODEL_VERSION = 1
LOG_FIELDS = ["seconds", "step", "tokens", "train_loss", "val_loss", "lr"]


def learning_rate(args, progress):
    """The rate at `progress` (0 at the start of training, 1 at the deadline)."""
    if progress < args.warmup:
        return args.lr * max(progress / args.warmup, 0.01)
    decay = min((progress - args.warmup) / max(1.0 - args.warmup, 1e-9), 1.0)
    floor = args.lr * args.lr_floor
    return floor + (args.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * decay))


def reset_rows(state, p):
    """Zeroes each row (batch index) of the carried state with probability p, as ours'
    --state-reset (its own draws: the same law, not the same rows)."""
    tensors = state if isinstance(state, tuple) else (state,)
    kept = (torch.rand(tensors[0].shape[1]) >= p).to(tensors[0].dtype)[None, :, None]
    reset = tuple(t * kept for t in tensors)
    return reset if isinstance(state, tuple) else reset[0]


def validate(model, val_tokens, args):
    model.eval()  # no dropout
    loss = evaluate(model, val_tokens, args.batch, args.seq_len)
    model.train()
    return loss


def write_atomic(path, write):
    """`write(temporary path)`, then the temporary file renamed over `path`."""
    tmp = f"{path}.tmp{os.getpid()}"
    write(tmp)
    os.replace(tmp, path)


def write_text(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def save_model_dir(directory, model, vocab, record):
    """A model directory as engine/src/files/model_dir.rs reads it."""
    os.makedirs(directory, exist_ok=True)
    tensors = {k: v.detach().float().contiguous() for k, v in model.state_dict().items()}
    write_atomic(os.path.join(directory, "model.safetensors"),
                 lambda p: save_file(tensors, p, metadata={"format": MODEL_FORMAT}))
    config = {
        "format": MODEL_FORMAT,
        "version": MODEL_VERSION,
        "model": {"cell": model.cell, "vocab_size": len(vocab["symbols"]), "embed_size": model.embedding.embedding_dim,
                  "hidden_size": model.hidden, "num_layers": model.layers},
        "training": record,
    }
    for name, value in (("config.json", config), ("vocab.json", vocab)):
        text = json.dumps(value, indent=2 if name == "config.json" else None, ensure_ascii=False) + "\n"
        write_atomic(os.path.join(directory, name), lambda p, t=text: write_text(p, t))


class Log:
    """torch_log.csv, a row per logged step, flushed as it goes."""

    def __init__(self, path):
        self.file = open(path, "x", newline="", encoding="utf-8")
        self.writer = csv.DictWriter(self.file, LOG_FIELDS)
        self.writer.writeheader()

    def row(self, **fields):
        self.writer.writerow({k: fields.get(k, "") for k in LOG_FIELDS})
        self.file.flush()


def train(args):
    budget = budget_seconds(args.budget)
    deadline = PROCESS_START + budget
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    vocab = vocab_of(args.data)
    train_tokens, val_tokens = split(encode(args.data, vocab), args.val_frac)
    val_tokens = val_tokens[: args.eval_tokens]
    model = CharRNN(args.cell, len(vocab["symbols"]), args.embed, args.hidden, args.layers)
    model.rnn.dropout = args.dropout if args.layers > 1 else 0.0  # between layers, as ours
    model.output_dropout.p = args.output_dropout  # on the last layer's output, as ours
    # Ours' --weight-decay is AdamW's decoupled decay over every parameter; 0 is plain Adam.
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    clip = args.clip if args.clip > 0 else math.inf  # 0 disables clipping, as ours
    os.makedirs(args.out, exist_ok=True)
    log = Log(os.path.join(args.out, "torch_log.csv"))
    params = sum(p.numel() for p in model.parameters())
    print(f"pytorch: {args.layers} x {args.hidden} {args.cell}, embedding {args.embed}, {params:,} parameters, "
          f"B={args.batch}, T={args.seq_len}, {args.precision}, {args.threads} threads, "
          f"{budget:g} s budget, {len(train_tokens):,} training characters", file=sys.stderr)

    train_start = time.time()
    eval_every = budget / args.eval_points
    next_eval = PROCESS_START + eval_every
    # The time the final validation will take: the last one's, and until one is timed, a
    # forward over the validation characters at three times the training rate.
    eval_seconds = None
    step, tokens, step_seconds, lr = 0, 0, 0.0, args.lr
    best, best_state = math.inf, None
    loss = math.nan
    done = False
    while not done:
        state = model.zero_state(args.batch)
        for x, y in batches(train_tokens, args.batch, args.seq_len):
            now = time.time()
            final_eval = eval_seconds if eval_seconds is not None else (
                len(val_tokens) / (args.batch * args.seq_len) * step_seconds / 3)
            end = deadline - final_eval - args.save_reserve
            if (step > 0 and now + step_seconds > end) or (args.steps and step >= args.steps):
                done = True
                break
            progress = (now - train_start) / max(end - train_start, 1e-9)
            if args.steps:  # the schedule ends with whichever comes first, as ours' run_loop
                progress = max(progress, step / args.steps)
            lr = learning_rate(args, min(max(progress, 0.0), 1.0))
            for group in opt.param_groups:
                group["lr"] = lr
            if args.state_reset > 0:
                state = reset_rows(state, args.state_reset)
            loss, _, state = train_step(model, opt, x, y, state, clip, args.precision)
            step += 1
            tokens += args.batch * args.seq_len
            elapsed = time.time() - now
            step_seconds = elapsed if step == 1 else 0.9 * step_seconds + 0.1 * elapsed
            if time.time() >= next_eval:
                start = time.time()
                val = validate(model, val_tokens, args)
                eval_seconds = time.time() - start
                while next_eval <= time.time():  # the next point of the grid still ahead
                    next_eval += eval_every
                if val < best:
                    best, best_state = val, copy.deepcopy(model.state_dict())
                log.row(seconds=f"{time.time() - PROCESS_START:.3f}", step=step, tokens=tokens,
                        train_loss=f"{loss:.6f}", val_loss=f"{val:.6f}", lr=f"{lr:.6g}")
                print(f"{time.time() - PROCESS_START:.1f} s, step {step}: validation {val:.4f}", file=sys.stderr)
            elif step % args.log_every == 0:
                log.row(seconds=f"{time.time() - PROCESS_START:.3f}", step=step, tokens=tokens,
                        train_loss=f"{loss:.6f}", lr=f"{lr:.6g}")
    val = validate(model, val_tokens, args)
    log.row(seconds=f"{time.time() - PROCESS_START:.3f}", step=step, tokens=tokens, train_loss=f"{loss:.6f}",
            val_loss=f"{val:.6f}", lr=f"{lr:.6g}")
    if val < best or best_state is None:
        best = val
    else:
        model.load_state_dict(best_state)
    train_seconds = time.time() - train_start
    record = {
        "trainer": "PyTorch " + torch.__version__ + ", benches/time_to_quality/torch_budget.py",
        "data": os.path.abspath(args.data), "val_frac": args.val_frac, "batch_size": args.batch,
        "seq_len": args.seq_len, "lr": args.lr, "lr_floor": args.lr_floor, "warmup": args.warmup, "clip": args.clip,
        "dropout": args.dropout, "output_dropout": args.output_dropout, "precision": args.precision, "seed": args.seed, "threads": args.threads,
        "budget_s": budget, "step_cap": args.steps or None, "steps": step, "tokens": tokens, "tokens_per_sec": tokens / train_seconds,
        "val_loss": best, "val_tokens": len(val_tokens),
    }
    save_model_dir(os.path.join(args.out, "model"), model, vocab, record)
    print(f"pytorch: {step} steps, {tokens:,} tokens in {train_seconds:.1f} s of training "
          f"({tokens / train_seconds:.0f} tokens/s), best validation {best:.4f}; "
          f"{time.time() - PROCESS_START:.1f} s in all -> {os.path.join(args.out, 'model')}", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--budget", required=True, help="wall-clock budget: 90, 90s, 10m, 1h")
    ap.add_argument("--out", required=True, help="directory for model/ and torch_log.csv")
    ap.add_argument("--val-frac", type=float, default=0.1)
    ap.add_argument("--cell", choices=["lstm", "gru", "rnn"], default="lstm")
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--embed", type=int, default=128)
    ap.add_argument("--dropout", type=float, default=0.25)
    ap.add_argument("--output-dropout", type=float, default=0.0, help="on the last layer's output (ours' --output-dropout)")
    ap.add_argument("--state-reset", type=float, default=0.0,
                    help="probability of zeroing a row's carried state before each step (ours' --state-reset)")
    ap.add_argument("--steps", type=int, default=0,
                    help="end after this many steps if the budget has not ended first (0: no cap; ours' --steps)")
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--seq-len", type=int, default=50)
    ap.add_argument("--lr", type=float, default=0.002)
    ap.add_argument("--lr-floor", type=float, default=0.1, help="the final rate, as a fraction of --lr")
    ap.add_argument("--warmup", type=float, default=0.02, help="fraction of the training time to warm up over")
    ap.add_argument("--clip", type=float, default=5.0, help="global L2 norm to clip gradients to (0: none)")
    ap.add_argument("--weight-decay", type=float, default=0.0,
                    help="AdamW's decoupled weight decay over every parameter (ours' --weight-decay; 0: Adam)")
    ap.add_argument("--precision", choices=["f32", "bf16"], default="f32", help="bf16: the forward under autocast")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--eval-points", type=int, default=10, help="validations over the budget")
    ap.add_argument("--eval-tokens", type=int, default=200_000, help="validation characters used during the run")
    ap.add_argument("--save-reserve", type=float, default=1.0, help="seconds kept for writing the model")
    ap.add_argument("--log-every", type=int, default=50, help="steps between log rows without a validation")
    args = ap.parse_args()
    if not 0.0 < args.val_frac < 1.0 or not 0.0 <= min(args.dropout, args.output_dropout) or max(args.dropout, args.output_dropout) >= 1.0 or not 0.0 < args.warmup < 1.0 or args.steps < 0:
        sys.exit("error: --val-frac and --warmup must be in (0, 1), --dropout and --output-dropout in [0, 1), --steps at least 0")
    try:
        train(args)
    except ValueError as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
