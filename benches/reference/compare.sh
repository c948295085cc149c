#!/usr/bin/env bash
# Side-by-side speed: charrnn-fast's `bench` and PyTorch's (torch_charrnn.py bench) on the same
# config, corpus and thread count, in f32 and in bf16 (ours: --precision bf16; PyTorch: bf16
# autocast), alternating, ROUNDS times each; prints the four medians, the two ratios, and peak
# RSS.
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
common=(--config "$config" --threads "$threads" --steps "$steps" --warmup "$warmup")
ours=("$repo/target/release/charrnn-fast" bench "${common[@]}")
theirs=("$venv/bin/python" "$here/torch_charrnn.py" bench "${common[@]}")

# Four columns, run in turn each round: ours and PyTorch in f32, then ours with --precision bf16
# and PyTorch with bf16 autocast.
field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p"; }
declare -A tps rss
# One run of `$@` (a bench command line): appends its tokens/s and peak RSS under key $1.
measure() {
  local key=$1 line
  shift
  line=$(cd "$repo" && OMP_NUM_THREADS=$threads "$@" 2>/dev/null | grep '^RESULT')
  tps[$key]+="$(field tokens_per_sec <<<"$line") "
  rss[$key]+="$(field peak_rss_mb <<<"$line") "
  echo "  $key: $(field tokens_per_sec <<<"$line") tokens/s" >&2
}
for ((i = 1; i <= rounds; i++)); do
  echo "round $i" >&2
  for precision in f32 bf16; do
    measure "ours_$precision" "${ours[@]}" --precision "$precision"
    measure "torch_$precision" "${theirs[@]}" --precision "$precision"
  done
done

python3 - "$config" "$threads" "${tps[ours_f32]}" "${tps[torch_f32]}" "${tps[ours_bf16]}" "${tps[torch_bf16]}" \
  "${rss[ours_f32]}" "${rss[torch_f32]}" "${rss[ours_bf16]}" "${rss[torch_bf16]}" <<'PY'
import statistics, sys
config, threads = sys.argv[1], sys.argv[2]
tps = [statistics.median(float(x) for x in a.split()) for a in sys.argv[3:7]]
rss = [max(float(x) for x in a.split()) for a in sys.argv[7:11]]
of, tf, ob, tb = tps
print(f"{'config':<6} {'threads':>7} {'ours f32':>9} {'torch f32':>9} {'ratio':>6} {'ours bf16':>9} {'torch bf16':>10} {'ratio':>6}"
      f"   RSS MB (ours f32, torch f32, ours bf16, torch bf16)")
print(f"{config:<6} {threads:>7} {of:>9.0f} {tf:>9.0f} {of / tf:>6.2f} {ob:>9.0f} {tb:>10.0f} {ob / tb:>6.2f}"
      f"   {', '.join(f'{r:.1f}' for r in rss)}")
PY
