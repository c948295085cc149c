#!/usr/bin/env python3
"""The recipe a run of ours used, as torch_budget.py flags, so that PyTorch's LSTM trains with
exactly what `train --time` chose (or was given):

  recipe_flags.py OURS_RUN_DIR    ->  --cell lstm --hidden 512 --layers 2 --embed 128 …

Read from the run's config.json (the model's shape and the training record).
"""

import json
import os
import sys

# torch_budget.py flag: (section of config.json, key)
FLAGS = {
    "--cell": ("model", "cell"),
    "--hidden": ("model", "hidden_size"),
    "--layers": ("model", "num_layers"),
    "--embed": ("model", "embed_size"),
    "--dropout": ("training", "dropout"),
    "--output-dropout": ("training", "output_dropout"),
    "--state-reset": ("training", "state_reset"),
    "--batch": ("training", "batch_size"),
    "--seq-len": ("training", "seq_len"),
    "--lr": ("training", "lr"),
    "--clip": ("training", "clip"),
    "--weight-decay": ("training", "weight_decay"),
    "--precision": ("training", "precision"),
}


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: recipe_flags.py OURS_RUN_DIR")
    with open(os.path.join(sys.argv[1], "config.json"), encoding="utf-8") as f:
        config = json.load(f)
    flags = []
    for flag, (section, key) in FLAGS.items():
        value = config.get(section, {}).get(key)
        if value is not None:
            flags += [flag, str(value)]
    # A step cap (typed, or the rule's for a small corpus); uncapped runs record u64::MAX.
    total_steps = config.get("training", {}).get("total_steps")
    if total_steps is not None and total_steps < 2**63:
        flags += ["--steps", str(total_steps)]
    print(" ".join(flags))


if __name__ == "__main__":
    main()
