#!/usr/bin/env python3
"""The PyTorch peer of charrnn-fast: the same model (nn.Embedding + nn.LSTM/nn.GRU/nn.RNN + nn.Linear,
CrossEntropyLoss, Adam, clip_grad_norm_, hidden state carried between batches) in three modes.

  fixture  write engine/tests/fixtures/torch_parity.safetensors: initial weights, batches, the
           first step's logits, loss and gradients, and the losses of 20 Adam steps, for every
           cell (lstm, rnn, gru), in float64 (the exact reference our f64 and f32 paths are tested against)
  bench    train a named config for N steps and print the median tokens/s and peak RSS
  init     load a model directory written by `charrnn-fast train` and print its validation
           loss (same split and batching as ours), then optionally train N more steps
  score    load a model directory as init does and score a text as `charrnn-fast eval` does:
           one stream from a zero state, and (--windows W --count N --seed S) random windows
           each from a zero state; --val-frac scores train's held-out tail
  scoring-fixture
           write engine/tests/fixtures/torch_scoring.safetensors: a tiny model per cell, a text,
           window starts, and PyTorch's per-character log-probabilities of the text as one
           stream and of each window, in float64

Module attributes are named `embedding`, `rnn`, `decoder`, so `state_dict` keys are exactly the
tensor names of charrnn-fast's model.safetensors.
"""

import argparse
import json
import math
import os
import resource
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn as nn
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
FIXTURE = os.path.join(REPO, "engine", "tests", "fixtures", "torch_parity.safetensors")
SCORING_FIXTURE = os.path.join(REPO, "engine", "tests", "fixtures", "torch_scoring.safetensors")
DEFAULT_CORPUS = os.path.join(REPO, "data", "tinyshakespeare", "input.txt")

CONFIGS = {
    # name: (layers, hidden = embed, batch, seq_len)
    "seed": (2, 128, 50, 50),
    "big": (3, 512, 50, 100),
}


class CharRNN(nn.Module):
    def __init__(self, cell, vocab, embed, hidden, layers):
        super().__init__()
        self.embedding = nn.Embedding(vocab, embed)
        if cell == "lstm":
            self.rnn = nn.LSTM(embed, hidden, layers)
        elif cell == "rnn":
            self.rnn = nn.RNN(embed, hidden, layers, nonlinearity="tanh")
        elif cell == "gru":
            self.rnn = nn.GRU(embed, hidden, layers)
        else:
            raise SystemExit(f"unknown cell {cell!r}")
        # Dropout on the last layer's output (ours: train --output-dropout); p = 0 is the identity.
        self.output_dropout = nn.Dropout(0.0)
        self.decoder = nn.Linear(hidden, vocab)
        self.cell = cell
        self.layers, self.hidden = layers, hidden

    def zero_state(self, batch, dtype=torch.float32):
        h = torch.zeros(self.layers, batch, self.hidden, dtype=dtype)
        return (h, h.clone()) if self.cell == "lstm" else h

    def forward(self, x, state):
        """x: [T, B] token ids (time-major, as charrnn-fast); returns logits [T, B, V]."""
        out, state = self.rnn(self.embedding(x), state)
        return self.decoder(self.output_dropout(out)), state


def detach(state):
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


def loss_of(logits, targets):
    return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def train_step(model, opt, x, y, state, clip, precision="f32"):
    # bf16: PyTorch's CPU mixed precision, the forward (and so its products) under autocast;
    # weights, gradients and Adam stay f32.
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        logits, state = model(x, state)
        loss = loss_of(logits, y)
    opt.zero_grad(set_to_none=False)
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    opt.step()
    return loss.item(), float(norm), detach(state)


# --------------------------------------------------------------------------------------------
# fixture


def fixture(args):
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    V, E, H, L, B, T, S = 11, 8, 12, 2, 4, 6, 20
    lr, clip = 0.01, 0.25  # a small clip so that clipping is active in some of the 20 steps
    weight_decay = 1.0  # AdamW's: 1% off every weight per step, 18% over the 20
    tensors, meta = {}, {"vocab": V, "embed": E, "hidden": H, "layers": L, "batch": B, "seq_len": T,
                         "steps": S, "lr": lr, "clip": clip, "weight_decay": weight_decay,
                         "torch": torch.__version__.split("+")[0]}
    # Each cell's case is independent of the others (its own seeds), so adding a cell leaves
    # the other cells' tensors byte-identical.
    for cell in ("lstm", "rnn", "gru"):
        torch.manual_seed(1234)
        model = CharRNN(cell, V, E, H, L).double()
        init = {k: v.detach().clone() for k, v in model.state_dict().items()}
        gen = torch.Generator().manual_seed(99)
        inputs = torch.randint(0, V, (S, T, B), generator=gen)
        targets = torch.randint(0, V, (S, T, B), generator=gen)
        h0 = 0.5 * torch.randn(L, B, H, generator=gen, dtype=torch.float64)
        c0 = 0.5 * torch.randn(L, B, H, generator=gen, dtype=torch.float64)
        state0 = (h0, c0) if cell == "lstm" else h0

        logits, _ = model(inputs[0], state0)
        loss = loss_of(logits, targets[0])
        loss.backward()
        p = f"{cell}."
        for k, v in init.items():
            tensors[p + "init." + k] = v
        for k, v in model.named_parameters():
            tensors[p + "step0.grad." + k] = v.grad.detach().clone()
        tensors[p + "step0.logits"] = logits.detach().reshape(T * B, V).clone()
        tensors[p + "step0.loss"] = loss.detach().reshape(1).clone()

        model.load_state_dict(init)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        state, losses, norms = state0, [], []
        for s in range(S):
            l, n, state = train_step(model, opt, inputs[s], targets[s], state, clip)
            losses.append(l)
            norms.append(n)
        tensors[p + "losses"] = torch.tensor(losses, dtype=torch.float64)
        tensors[p + "grad_norms"] = torch.tensor(norms, dtype=torch.float64)
        # The same 20 steps with AdamW's decoupled weight decay (ours' --weight-decay).
        model.load_state_dict(init)
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
        state, decayed = state0, []
        for s in range(S):
            l, _, state = train_step(model, opt, inputs[s], targets[s], state, clip)
            decayed.append(l)
        tensors[p + "losses_adamw"] = torch.tensor(decayed, dtype=torch.float64)
        tensors[p + "inputs"] = inputs.to(torch.int32)
        tensors[p + "targets"] = targets.to(torch.int32)
        tensors[p + "h0"] = h0
        tensors[p + "c0"] = c0
        clipped = sum(n > clip for n in norms)
        print(f"{cell}: step-0 loss {loss.item():.6f}, 20-step losses {losses[0]:.4f} → {losses[-1]:.4f}, "
              f"clipping active in {clipped}/{S} steps", file=sys.stderr)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    save_file({k: v.contiguous() for k, v in sorted(tensors.items())}, args.out,
              metadata={"config": json.dumps(meta, sort_keys=True)})  # one key: a stable byte order
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes)", file=sys.stderr)


# --------------------------------------------------------------------------------------------
# data: charrnn-fast's vocabulary and batch layout


def encode(path, vocab):
    if vocab["kind"] == "bytes":
        table = {b: i for i, b in enumerate(vocab["symbols"])}
        with open(path, "rb") as f:
            data = f.read()
        return np.array([table[b] for b in data], dtype=np.int64)
    table = {c: i for i, c in enumerate(vocab["symbols"])}
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return np.array([table[c] for c in text], dtype=np.int64)


def vocab_of(path):
    """Distinct characters by descending count, ties by code point (as `charrnn-fast prepare`)."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    counts = {}
    for c in text:
        counts[c] = counts.get(c, 0) + 1
    symbols = sorted(counts, key=lambda c: (-counts[c], ord(c)))
    return {"kind": "chars", "symbols": symbols}


def batches(tokens, batch, seq_len):
    """karpathy/TensorFlow char-rnn layout: B rows, chunks of T, targets shifted by one with the
    last target wrapping to the first token of the cut stream. Yields time-major [T, B] pairs."""
    nb = len(tokens) // (batch * seq_len)
    if nb == 0:
        raise SystemExit(f"{len(tokens)} tokens: too few for one batch of {batch}x{seq_len}")
    x = tokens[: nb * batch * seq_len]
    y = np.roll(x, -1)
    xs = np.split(x.reshape(batch, -1), nb, axis=1)
    ys = np.split(y.reshape(batch, -1), nb, axis=1)
    for bx, by in zip(xs, ys):
        yield torch.from_numpy(np.ascontiguousarray(bx.T)), torch.from_numpy(np.ascontiguousarray(by.T))


def split(tokens, val_frac):
    n_val = int(math.floor(len(tokens) * val_frac))
    cut = len(tokens) - n_val
    return tokens[:cut], tokens[cut:]


@torch.no_grad()
def evaluate(model, tokens, batch, seq_len):
    state = model.zero_state(batch, next(model.parameters()).dtype)
    losses = []
    for x, y in batches(tokens, batch, seq_len):
        logits, state = model(x, state)
        losses.append(loss_of(logits, y).item())
    return sum(losses) / len(losses)


# --------------------------------------------------------------------------------------------
# init


def load_model_dir(path, float64):
    """A charrnn-fast model directory: the model (in float64 if asked), its config and vocabulary."""
    with open(os.path.join(path, "config.json")) as f:
        cfg = json.load(f)
    with open(os.path.join(path, "vocab.json")) as f:
        vocab = json.load(f)
    m = cfg["model"]
    model = CharRNN(m["cell"], m["vocab_size"], m["embed_size"], m["hidden_size"], m["num_layers"])
    model.load_state_dict(load_file(os.path.join(path, "model.safetensors")), strict=True)
    return (model.double() if float64 else model), cfg, vocab


def init(args):
    torch.set_num_threads(args.threads)
    model, cfg, vocab = load_model_dir(args.model, args.float64)
    rec = cfg["training"]
    data = args.data or rec["data"]
    batch, seq_len = rec["batch_size"], rec["seq_len"]
    val_frac = rec["val_frac"] if args.val_frac is None else args.val_frac
    train_tokens, val_tokens = split(encode(data, vocab), val_frac)
    ours = rec.get("val_loss")
    if len(val_tokens) >= batch * seq_len:
        val = evaluate(model, val_tokens, batch, seq_len)
        line = f"validation loss (PyTorch) {val:.6f}"
        if ours is not None:
            line += f"; charrnn-fast recorded {ours:.6f}; difference {abs(val - ours):.2e}"
        print(line)
    if args.steps:
        opt = torch.optim.Adam(model.parameters(), lr=rec["lr"])
        state = model.zero_state(batch, next(model.parameters()).dtype)
        for step, (x, y) in enumerate(batches(train_tokens, batch, seq_len), start=1):
            if step > args.steps:
                break
            loss, norm, state = train_step(model, opt, x, y, state, rec["clip"])
            print(f"step {step}, loss {loss:.6f}, grad norm {norm:.6f}")


# --------------------------------------------------------------------------------------------
# score: the protocols of `charrnn-fast eval`


@torch.no_grad()
def stream_log_probs(model, tokens):
    """Log-probability of tokens[1:], read as one stream from a zero state: [len - 1]."""
    x = torch.as_tensor(tokens[:-1]).reshape(-1, 1)
    y = torch.as_tensor(tokens[1:]).reshape(-1, 1)
    logits, _ = model(x, model.zero_state(1, next(model.parameters()).dtype))
    return torch.log_softmax(logits, dim=-1).gather(-1, y.unsqueeze(-1)).reshape(-1)


@torch.no_grad()
def window_log_probs(model, tokens, starts, width):
    """Log-probabilities of each window's targets, each window from a zero state (nanoGPT's
    estimate_loss): [count, width]."""
    tokens = torch.as_tensor(tokens)
    x = torch.stack([tokens[s:s + width] for s in starts], dim=1)
    y = torch.stack([tokens[s + 1:s + width + 1] for s in starts], dim=1)
    logits, _ = model(x, model.zero_state(len(starts), next(model.parameters()).dtype))
    return torch.log_softmax(logits, dim=-1).gather(-1, y.unsqueeze(-1)).squeeze(-1).T


def score(args):
    torch.set_num_threads(args.threads)
    model, cfg, vocab = load_model_dir(args.model, args.float64)
    model.eval()
    tokens = encode(args.data or cfg["training"]["data"], vocab)
    if args.val_frac:
        tokens = split(tokens, args.val_frac)[1]
    start = time.perf_counter()
    lp = stream_log_probs(model, tokens)
    seconds = time.perf_counter() - start
    print(f"stream: {-lp.mean().item():.6f} nats/symbol over {len(lp)} predictions "
          f"({len(lp) / seconds:.0f} symbols/s)")
    if args.windows:
        gen = np.random.default_rng(args.seed)
        starts = gen.integers(0, len(tokens) - args.windows, size=args.count)
        nats, count = 0.0, 0
        start = time.perf_counter()
        for i in range(0, len(starts), 256):
            w = window_log_probs(model, tokens, starts[i:i + 256], args.windows)
            nats -= w.sum().item()
            count += w.numel()
        seconds = time.perf_counter() - start
        print(f"windows: {nats / count:.6f} nats/symbol over {args.count} windows of {args.windows} "
              f"({count / seconds:.0f} symbols/s; numpy's starts, not charrnn-fast's)")


def scoring_fixture(args):
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    V, E, H, L, N, W, C = 11, 8, 12, 2, 400, 100, 9
    tensors, meta = {}, {"vocab": V, "embed": E, "hidden": H, "layers": L, "width": W, "count": C,
                         "torch": torch.__version__.split("+")[0]}
    for cell in ("lstm", "rnn", "gru"):
        torch.manual_seed(4321)
        model = CharRNN(cell, V, E, H, L)
        with torch.no_grad():
            # Three times PyTorch's initial scale: confident, varied predictions and saturating
            # gates, which show a difference in the recurrence more than a near-uniform guess.
            for w in model.parameters():
                w.mul_(3.0)
        # The weights rounded to f32 and held in f64: our f32 path reads the same weights.
        model = model.float().double()
        gen = torch.Generator().manual_seed(7)
        # A text with some structure: a cycle through the vocabulary, a third of it random.
        cycle = torch.arange(N) % V
        noise = torch.randint(0, V, (N,), generator=gen)
        text = torch.where(torch.rand(N, generator=gen, dtype=torch.float64) < 0.3, noise, cycle)
        starts = torch.randint(0, N - W, (C,), generator=gen)
        p = f"{cell}."
        for k, v in model.state_dict().items():
            tensors[p + "init." + k] = v.detach().clone()
        tensors[p + "text"] = text.to(torch.int32)
        tensors[p + "starts"] = starts.to(torch.int32)
        tensors[p + "stream.log_probs"] = stream_log_probs(model, text.numpy())
        tensors[p + "windows.log_probs"] = window_log_probs(model, text.numpy(), starts.tolist(), W).contiguous()
        print(f"{cell}: stream {-tensors[p + 'stream.log_probs'].mean().item():.6f}, windows "
              f"{-tensors[p + 'windows.log_probs'].mean().item():.6f} nats/symbol", file=sys.stderr)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    save_file({k: v.contiguous() for k, v in sorted(tensors.items())}, args.out,
              metadata={"config": json.dumps(meta, sort_keys=True)})
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes)", file=sys.stderr)


# --------------------------------------------------------------------------------------------
# bench


def bench(args):
    torch.set_num_threads(args.threads)
    layers, width, batch, seq_len = CONFIGS[args.config]
    path = args.data or DEFAULT_CORPUS
    if os.path.exists(path):
        tokens = encode(path, vocab_of(path))
        vocab_size = int(tokens.max()) + 1
        source = path
    else:
        vocab_size = 65
        tokens = np.random.default_rng(7).integers(0, vocab_size, size=batch * seq_len * 64)
        source = "random tokens"
    torch.manual_seed(42)
    model = CharRNN(args.cell, vocab_size, width, width, layers)
    opt = torch.optim.Adam(model.parameters(), lr=0.002)
    state = model.zero_state(batch)
    print(f"bench: {args.config} config, {layers} x {width} {args.cell}, B={batch}, T={seq_len}, "
          f"{args.precision} ({'bf16 autocast' if args.precision == 'bf16' else 'no autocast'}), "
          f"{args.threads} threads, torch {torch.__version__}, data: {source}", file=sys.stderr)
    stream = batches(tokens, batch, seq_len)
    rates = []
    for i in range(args.warmup + args.steps):
        try:
            x, y = next(stream)
        except StopIteration:
            stream = batches(tokens, batch, seq_len)
            x, y = next(stream)
        start = time.perf_counter()
        _, _, state = train_step(model, opt, x, y, state, 5.0, args.precision)
        seconds = time.perf_counter() - start
        if i >= args.warmup:
            rates.append(batch * seq_len / seconds)
    median = statistics.median(rates)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"median {median:.0f} tokens/s over {len(rates)} steps (min {min(rates):.0f}, max {max(rates):.0f}), "
          f"peak RSS {peak_mb:.1f} MB")
    print(f"RESULT impl=pytorch config={args.config} threads={args.threads} tokens_per_sec={median:.1f} "
          f"peak_rss_mb={peak_mb:.1f} precision={args.precision}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)
    f = sub.add_parser("fixture", help="write the parity fixture")
    f.add_argument("--out", default=FIXTURE)
    b = sub.add_parser("bench", help="median tokens/s of full training steps")
    b.add_argument("--config", choices=sorted(CONFIGS), default="seed")
    b.add_argument("--cell", choices=["lstm", "rnn", "gru"], default="lstm")
    b.add_argument("--threads", type=int, default=os.cpu_count())
    b.add_argument("--steps", type=int, default=20)
    b.add_argument("--warmup", type=int, default=3)
    b.add_argument("--data")
    b.add_argument("--precision", choices=["f32", "bf16"], default="f32",
                   help="bf16: the forward under torch.autocast('cpu', dtype=torch.bfloat16)")
    i = sub.add_parser("init", help="evaluate (and train on from) a charrnn-fast model directory")
    i.add_argument("--model", required=True)
    i.add_argument("--data", help="corpus [default: the one recorded in config.json]")
    i.add_argument("--val-frac", type=float)
    i.add_argument("--steps", type=int, default=0, help="train this many steps from the loaded weights")
    i.add_argument("--threads", type=int, default=os.cpu_count())
    i.add_argument("--float64", action="store_true", help="evaluate in float64")
    sc = sub.add_parser("score", help="score a text with a charrnn-fast model directory, as `eval` does")
    sc.add_argument("--model", required=True)
    sc.add_argument("--data", help="text [default: the corpus recorded in config.json]")
    sc.add_argument("--val-frac", type=float, help="score only the tail train --val-frac holds out")
    sc.add_argument("--windows", type=int, help="also score random windows of W symbols")
    sc.add_argument("--count", type=int, default=2000)
    sc.add_argument("--seed", type=int, default=42)
    sc.add_argument("--threads", type=int, default=os.cpu_count())
    sc.add_argument("--float64", action="store_true", help="score in float64")
    sf = sub.add_parser("scoring-fixture", help="write the scoring parity fixture")
    sf.add_argument("--out", default=SCORING_FIXTURE)
    args = ap.parse_args()
    modes = {"fixture": fixture, "bench": bench, "init": init, "score": score, "scoring-fixture": scoring_fixture}
    modes[args.mode](args)


if __name__ == "__main__":
    main()
