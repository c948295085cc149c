#!/usr/bin/env bash
# Side-by-side speed: charrnn-fast's `bench` and PyTorch's (torch_charrnn.py bench) on the same
# config, corpus and thread count, alternating, ROUNDS times each; prints both medians, the
# ratio, and peak RSS.
#
#   benches/reference/compare.sh CONFIG THREADS [ROUNDS]     CONFIG: seed | big
#
# PyTorch (pinned in requirements.txt) goes into a virtual environment outside the repository,
# created on first use: $CHARRNN_TORCH_VENV, default ~/.cache/charrnn-fast/torch-venv.
# Steps per run: $STEPS (default 20 for seed, 6 for big), after $WARMUP (default 2) warm-up steps.
set -euo pipefail

config=${1:?usage: compare.sh CONFIG THREADS [ROUNDS]   (CONFIG: seed | big)}
threads=${2:?usage: compare.sh CONFIG THREADS [ROUNDS]}
rounds=${3:-3}
case "$config" in
  seed) steps=${STEPS:-20} ;;
  big) steps=${STEPS:-6} ;;
  *) echo "compare.sh: unknown config '$config' (seed | big)" >&2; exit 2 ;;
esac
warmup=${WARMUP:-2}

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
venv=${CHARRNN_TORCH_VENV:-$HOME/.cache/charrnn-fast/torch-venv}

if ! "$venv/bin/python" -c "import torch, numpy, safetensors" 2>/dev/null; then
  echo "creating the PyTorch environment in $venv (once; a few minutes)..." >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q -r "$here/requirements.txt"
fi

(cd "$repo" && cargo build --release --quiet --bin charrnn-fast)
ours=("$repo/target/release/charrnn-fast" bench --config "$config" --threads "$threads" --steps "$steps" --warmup "$warmup")
theirs=("$venv/bin/python" "$here/torch_charrnn.py" bench --config "$config" --threads "$threads" --steps "$steps" --warmup "$warmup")

field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p"; }
ours_tps=() theirs_tps=() ours_rss=() theirs_rss=()
for ((i = 1; i <= rounds; i++)); do
  line=$(cd "$repo" && "${ours[@]}" 2>/dev/null | grep '^RESULT')
  ours_tps+=("$(field tokens_per_sec <<<"$line")"); ours_rss+=("$(field peak_rss_mb <<<"$line")")
  line=$(cd "$repo" && OMP_NUM_THREADS=$threads "${theirs[@]}" 2>/dev/null | grep '^RESULT')
  theirs_tps+=("$(field tokens_per_sec <<<"$line")"); theirs_rss+=("$(field peak_rss_mb <<<"$line")")
  echo "round $i: charrnn-fast ${ours_tps[-1]} tokens/s, PyTorch ${theirs_tps[-1]} tokens/s" >&2
done

python3 - "$config" "$threads" "${ours_tps[*]}" "${theirs_tps[*]}" "${ours_rss[*]}" "${theirs_rss[*]}" <<'PY'
import statistics, sys
config, threads = sys.argv[1], sys.argv[2]
ours, theirs, ours_rss, theirs_rss = ([float(x) for x in a.split()] for a in sys.argv[3:7])
mo, mt = statistics.median(ours), statistics.median(theirs)
print(f"{'config':<6} {'threads':>7} {'charrnn-fast tok/s':>19} {'PyTorch tok/s':>14} {'ratio':>6} {'RSS ours MB':>12} {'RSS PyTorch MB':>15}")
print(f"{config:<6} {threads:>7} {mo:>19.0f} {mt:>14.0f} {mo / mt:>6.2f} {max(ours_rss):>12.1f} {max(theirs_rss):>15.1f}")
PY
