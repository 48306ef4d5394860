#!/usr/bin/env bash
# Start-up of a stage process in an image, which carries no bytecode:
# the import of the training libraries (torch, transformers, peft, trl)
#   baseline  no bytecode anywhere, none written (each stage of an image
#             before ftc kept it in the cache: every process compiles)
#   cold      PYTHONPYCACHEPREFIX set to an empty folder (the first stage
#             of an image: compiles and writes)
#   warm      the same folder again (every later stage and rank)
# measured in the same run, as ratios to the baseline.
#
#   bash bench/pycache.sh [PYTHON]      # default: the current-2026 test environment
#
# The sources' own __pycache__ folders (a virtual environment has them)
# are not read: a prefix replaces them, as in an image that has none.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${1:-$(ls -d /var/cache/ftc-pyenvs/current-2026-*/bin/python 2>/dev/null | head -1)}
[ -x "$py" ] || { echo "usage: bash bench/pycache.sh PYTHON (an interpreter with torch, transformers, peft, trl)" >&2; exit 2; }
N=${N:-3}
prefix=$(mktemp -d)
empty=$(mktemp -d)
trap 'rm -rf "$prefix" "$empty"' EXIT
imports='import torch, transformers, peft, trl; from transformers import Trainer; from trl import SFTTrainer'

secs() { # seconds of one import, with the given environment
	local start end
	start=$(date +%s%N)
	env "$@" "$py" -c "$imports" 2>/dev/null
	end=$(date +%s%N)
	echo "scale=2; ($end - $start) / 1000000000" | bc
}
best() { # the fastest of N
	local b="" s
	for _ in $(seq "$N"); do
		s=$("$@")
		if [ -z "$b" ] || [ "$(echo "$s < $b" | bc)" = 1 ]; then b=$s; fi
	done
	echo "$b"
}
base=$(best secs PYTHONDONTWRITEBYTECODE=1 PYTHONPYCACHEPREFIX="$empty")
cold=$(secs PYTHONDONTWRITEBYTECODE= PYTHONPYCACHEPREFIX="$prefix")
warm=$(best secs PYTHONDONTWRITEBYTECODE= PYTHONPYCACHEPREFIX="$prefix")
files=$(find "$prefix" -name '*.pyc' | wc -l)
size=$(du -sh "$prefix" | cut -f1)
echo "python: $py ($("$py" -c 'import sys; print(sys.version.split()[0])'))"
printf '%-10s %8s %8s\n' case seconds ratio
printf '%-10s %8s %8s\n' baseline "$base" 1.00
printf '%-10s %8s %8s\n' cold "$cold" "$(echo "scale=2; $cold / $base" | bc)"
printf '%-10s %8s %8s\n' warm "$warm" "$(echo "scale=2; $warm / $base" | bc)"
echo "bytecode kept: $files files, $size"
