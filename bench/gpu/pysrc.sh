#!/usr/bin/env bash
# Assembles FTC_PYSRC for bench/gpu (and scripts/pyenv.sh): the pure-Python
# libraries the GPU machine and Debian lack, exported from git mirrors at
# their release tags, with the metadata that importlib.metadata and the
# packages' own version checks read. The result is fetched third-party
# source: carry it to the device, never commit it.
#
#   bash bench/gpu/pysrc.sh OUT TRL_GIT DATASETS_GIT DILL_GIT MULTIPROCESS_GIT [PEFT_GIT]
#
# Each *_GIT is a git directory holding the release tags (the search
# tool's `fetch github:huggingface/trl` and so on gives one). Versions are
# DESIGN.md §5's: trl v1.9.0, datasets 5.0.1, dill 0.4.0, multiprocess
# 0.70.18, and peft v0.20.0 where asked (the GPU machine has its own peft).
# PYVER (default 3.12, the GPU machine's) picks multiprocess's source
# folder.
set -euo pipefail
if [ $# -lt 5 ]; then
	sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
fi
out=$1 trl=$2 datasets=$3 dill=$4 mp=$5 peft=${6:-}
pyver=${PYVER:-3.12}
mkdir -p "$out"
out=$(cd "$out" && pwd)

# export GIT TAG PATH-IN-REPO NAME: the package folder at the tag, as OUT/NAME.
export_pkg() {
	local git=$1 tag=$2 path=$3 name=$4 tmp
	git -C "$git" rev-parse -q --verify "$tag^{commit}" >/dev/null || {
		echo "pysrc: $git has no tag $tag" >&2
		return 1
	}
	tmp=$(mktemp -d)
	# set -e does not reach into a function called from a && list: every
	# step says itself whether it failed.
	if ! git -C "$git" archive "$tag" "$path" | tar -x -C "$tmp" || [ ! -d "$tmp/$path" ]; then
		rm -rf "$tmp"
		echo "pysrc: exporting $path at $tag from $git failed" >&2
		return 1
	fi
	rm -rf "${out:?}/$name"
	mv "$tmp/$path" "$out/$name" || { rm -rf "$tmp"; return 1; }
	rm -rf "$tmp"
}

# metadata NAME VERSION: a minimal dist-info, so importlib.metadata.version
# (trl's __version__, transformers' dependency checks) finds the package.
metadata() {
	rm -rf "$out/$1"-*.dist-info
	mkdir -p "$out/$1-$2.dist-info"
	printf 'Metadata-Version: 2.1\nName: %s\nVersion: %s\n' "$1" "$2" >"$out/$1-$2.dist-info/METADATA"
}

# info NAME VERSION: dill and multiprocess read their version from a
# generated __info__.py, which their repositories do not hold.
info() {
	printf '__version__ = "%s"\n__author__ = "uqfoundation"\n__license__ = "BSD-3-Clause"\n__doc__ = ""\n' "$2" \
		>"$out/$1/__info__.py"
}

export_pkg "$trl" v1.9.0 trl trl || exit 1
metadata trl 1.9.0
export_pkg "$datasets" 5.0.1 src/datasets datasets || exit 1
metadata datasets 5.0.1
export_pkg "$dill" 0.4.0 dill dill || exit 1
metadata dill 0.4.0
info dill 0.4.0
export_pkg "$mp" 0.70.18 "py$pyver/multiprocess" multiprocess || exit 1
metadata multiprocess 0.70.18
info multiprocess 0.70.18
# multiprocess ships _multiprocess (its C-free shim) beside the package.
if git -C "$mp" cat-file -e "0.70.18:py$pyver/_multiprocess" 2>/dev/null; then
	export_pkg "$mp" 0.70.18 "py$pyver/_multiprocess" _multiprocess || exit 1
fi
if [ -n "$peft" ]; then
	export_pkg "$peft" v0.20.0 src/peft peft || exit 1
	metadata peft 0.20.0
fi
echo "pysrc: $out holds $(cd "$out" && ls -d */ | tr -d / | tr '\n' ' ')"
