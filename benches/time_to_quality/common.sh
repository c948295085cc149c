# Sourced by the scripts here: where things are, and the helpers they share.
# Environment: CHARRNN (our binary; default target/release/charrnn-fast of this checkout),
# TORCH_PY (the Python with torch, numpy and safetensors; default the venv of
# benches/reference/compare.sh: $CHARRNN_TORCH_VENV/bin/python, ~/.cache/charrnn-fast/torch-venv),
# PY (the Python for the stdlib-only helpers; default python3).
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CHARRNN=${CHARRNN:-$REPO/target/release/charrnn-fast}
TORCH_PY=${TORCH_PY:-${CHARRNN_TORCH_VENV:-$HOME/.cache/charrnn-fast/torch-venv}/bin/python}
PY=${PY:-python3}

die() {
  echo "error: $*" >&2
  exit 1
}

# The script's usage line, as a usage error (exit 2).
usage() {
  echo "usage: $*" >&2
  exit 2
}

# The current Unix time with fractions, for wall-clock measurements.
now() {
  date +%s.%N
}

# Seconds between two `now` readings.
seconds_between() {
  "$PY" -c 'import sys; print(f"{float(sys.argv[2]) - float(sys.argv[1]):.3f}")' "$1" "$2"
}

# Seconds of a budget (90, 90s, 10m, 1h).
budget_seconds() {
  "$PY" "$HERE/budget.py" "$1"
}

# Creates the output directory of a run; one that holds anything already is refused, so that a
# run never mixes with, or replaces, files it did not write.
new_outdir() {
  if [ -e "$1" ] && { [ ! -d "$1" ] || [ -n "$(ls -A "$1")" ]; }; then
    die "'$1' exists and is not an empty directory: give a new OUTDIR"
  fi
  mkdir -p "$1"
}
