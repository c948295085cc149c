#!/usr/bin/env python3
"""Runs every command the README (and docs/*.md) shows, so that the guide cannot drift.

Every fenced block marked ```sh is a script a reader may paste: each runs, in the order of the
documents, as one `bash -euo pipefail` script in the repository root, and any failure fails CI.
Blocks marked ```text are synopses (the Usage block's `[--flag N]` forms) and are not run.
The one command skipped is the README's test command, which `.ci/run` runs itself.

It writes what the commands write (out/, the runs they name, a hostfile) into the working tree,
so it runs on CI's fresh clone; elsewhere pass --here to run it anyway.
"""

import os
import pathlib
import re
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
# Run by .ci/run directly (it is the README's test command).
SKIPPED = {"cargo test --workspace": "the README's test command, run by .ci/run itself"}
# No block of the guide should need longer; a hang fails instead of eating CI's time.
BLOCK_TIMEOUT_S = 900


def documents():
    yield ROOT / "README.md"
    yield from sorted((ROOT / "docs").glob("*.md"))


def sh_blocks(path):
    """(first line number, lines) of each ```sh block of a Markdown file."""
    lines = path.read_text(encoding="utf-8").splitlines()
    block, start = None, 0
    for number, line in enumerate(lines, 1):
        fence = re.match(r"^\s*```(\S*)", line)
        if fence and block is None:
            if fence.group(1) in ("sh", "bash", "shell", "console"):
                block, start = [], number + 1
            else:
                block, start = False, number
        elif fence:
            if block:
                yield start, block
            block = None
        elif block not in (None, False):
            block.append(line)


def command_of(line):
    """The command of a line, without its trailing comment (for the skip list)."""
    return re.sub(r"\s+#.*$", "", line).strip()


def main():
    if os.environ.get("CI") != "true" and "--here" not in sys.argv:
        sys.exit("readme_commands.py writes into the working tree (out/, runs, a hostfile): run it on a fresh "
                 "clone, as CI does, or pass --here")
    env = dict(os.environ)
    env["PATH"] = f"{ROOT / 'target' / 'release'}:{env['PATH']}"
    ran = skipped = 0
    for doc in documents():
        for start, block in sh_blocks(doc):
            kept = []
            for offset, line in enumerate(block):
                reason = SKIPPED.get(command_of(line))
                if reason:
                    print(f"-- {doc.name}:{start + offset}: skipped `{command_of(line)}` ({reason})")
                    skipped += 1
                    kept.append("")
                else:
                    kept.append(line)
            script = "\n".join(kept)
            if not script.strip():
                continue
            where = f"{doc.relative_to(ROOT)}:{start}"
            print(f"== {where}\n{script}", flush=True)
            began = time.monotonic()
            try:
                done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=ROOT, env=env,
                                      timeout=BLOCK_TIMEOUT_S, stdin=subprocess.DEVNULL)
            except subprocess.TimeoutExpired:
                sys.exit(f"FAILED: the block at {where} ran past {BLOCK_TIMEOUT_S} s")
            if done.returncode != 0:
                sys.exit(f"FAILED: the block at {where} exited {done.returncode}")
            print(f"-- {where}: ok in {time.monotonic() - began:.1f} s", flush=True)
            ran += 1
    if ran == 0:
        sys.exit("FAILED: no ```sh block found in the README: nothing was checked")
    print(f"README commands: {ran} blocks ran, {skipped} commands skipped (run elsewhere by .ci/run)")


if __name__ == "__main__":
    main()
