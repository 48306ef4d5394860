#!/usr/bin/env bash
# Wall time of a fully cached `ftc run` of an example (every stage a
# verified cache hit), next to the same binary's start-up (`ftc version`)
# measured in the same run. The stages were first run with the test
# trainer standing in for the Python entrypoints.
#
#   bash bench/cached_run.sh                       # examples/rlhf-ppo, 20 runs
#   N=50 bash bench/cached_run.sh examples/grpo-reward-model/recipe.cue
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-20}
recipe=${1:-examples/rlhf-ppo/recipe.cue}
mkdir -p bin
go build -o bin/ftc ./cmd/ftc
go build -o bin/testtrainer ./internal/testtrainer
cache=$(mktemp -d)
trap 'rm -rf "$cache"' EXIT
export FTC_CACHE=$cache FTC_ENTRYPOINT=$PWD/bin/testtrainer HF_HUB_OFFLINE=1

bin/ftc run "$recipe" >/dev/null
summary=$(bin/ftc run "$recipe" | grep 'stage(s):')
echo "$summary"
stages=$(echo "$summary" | sed -E 's/.*: ([0-9]+) stage\(s\).*/\1/')

mean_us() {
	local start end
	start=$(date +%s%N)
	for _ in $(seq "$N"); do "$@" >/dev/null; done
	end=$(date +%s%N)
	echo $(((end - start) / N / 1000))
}
div() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a / b }'; }

base=$(mean_us bin/ftc version)
cached=$(mean_us bin/ftc run "$recipe")
printf '%-34s %8s %10s\n' "" "ms" "× start-up"
printf '%-34s %8s %10s\n' "ftc version (baseline)" "$(div "$base" 1000)" "1.0"
printf '%-34s %8s %10s\n' "ftc run, all $stages stages cached" "$(div "$cached" 1000)" "$(div "$cached" "$base")"
printf '(%s, mean of %d runs, %s cores)\n' "$recipe" "$N" "$(nproc)"
