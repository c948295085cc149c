#!/usr/bin/env python3
"""Scores a nanoGPT checkpoint over random windows of its val split, each from a cold start:
the protocol of nanoGPT's own estimate_loss (a window at a uniform start i in [0, len - W - 1],
inputs val[i : i+W], targets val[i+1 : i+W+1], the loss averaged over all W x N predictions),
but with N windows drawn once from a seed instead of eval_iters random batches, so that runs
compare on the same windows. Run it with the torch venv's Python:

  nanogpt_score.py --nanogpt DIR --checkpoint OUT/ckpt.pt --val DATA/val.bin [--window 64]
                   [--count 2000] [--seed 1]

The window is bounded by the model's block_size (64 in the CPU recipe: windows of 256 need a
block_size of 256 or more). Prints one JSON line, with the fields of `charrnn-fast eval --json`
that eval_output.py reads (loss_nats, loss_bits), the protocol and the parameters.
"""

import argparse
import contextlib
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F


def load_model(nanogpt_dir, checkpoint_path):
    sys.path.insert(0, os.path.abspath(nanogpt_dir))
    from model import GPT, GPTConfig  # nanoGPT's model.py

    checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    with contextlib.redirect_stdout(sys.stderr):  # its "number of parameters" line: stdout is the result's
        model = GPT(GPTConfig(**checkpoint["model_args"]))
    # train.py's own fix-up of a compiled model's keys.
    state = {k.removeprefix("_orig_mod."): v for k, v in checkpoint["model"].items()}
    model.load_state_dict(state)
    model.eval()
    return model, checkpoint


@torch.no_grad()
def windows_loss(model, val, window, count, seed, batch):
    """Mean cross-entropy in nats over `count` windows of `window` predictions."""
    starts = np.random.default_rng(seed).integers(0, len(val) - window, size=count)
    total = 0.0
    for first in range(0, count, batch):
        rows = starts[first : first + batch]
        x = torch.from_numpy(np.stack([val[i : i + window] for i in rows]).astype(np.int64))
        y = torch.from_numpy(np.stack([val[i + 1 : i + 1 + window] for i in rows]).astype(np.int64))
        logits, _ = model(x, y)  # with targets, the logits of every position
        total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]).double(), y.reshape(-1), reduction="sum").item()
    return total / (count * window)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nanogpt", required=True, help="nanoGPT's directory (for its model.py)")
    ap.add_argument("--checkpoint", required=True, help="ckpt.pt written by nanoGPT's train.py")
    ap.add_argument("--val", required=True, help="val.bin written by its prepare.py (uint16 ids)")
    ap.add_argument("--window", type=int, default=64)
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--batch", type=int, default=100, help="windows per forward pass")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model, checkpoint = load_model(args.nanogpt, args.checkpoint)
    block = model.config.block_size
    if args.window > block:
        sys.exit(f"error: a window of {args.window} is longer than the model's block_size {block}")
    val = np.memmap(args.val, dtype=np.uint16, mode="r")
    if args.count < 1 or len(val) <= args.window:
        sys.exit(f"error: {len(val)} validation characters, {args.count} windows of {args.window}: nothing to score")
    loss = windows_loss(model, val, args.window, args.count, args.seed, args.batch)
    print(json.dumps({
        "impl": "nanogpt",
        "protocol": "windows",
        "window": args.window,
        "count": args.count,
        "seed": args.seed,
        "loss_nats": loss,
        "loss_bits": loss / math.log(2),
        "params": sum(p.numel() for p in model.parameters()),
        "iter_num": checkpoint["iter_num"],
        "val_characters": len(val),
    }))


if __name__ == "__main__":
    main()
