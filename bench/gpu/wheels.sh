#!/usr/bin/env bash
# The wheels the GPU machine lacks (bench/gpu/wheels.txt: trl, datasets,
# dill, multiprocess at exact versions, with hashes), carried to it as
# files: downloaded here, installed there. No source trees.
#
#   bash bench/gpu/wheels.sh download [DIR]        here, with the index: DIR
#                                                  (default .whl, git-ignored;
#                                                  about 1.7 MB) gets the wheels
#   bash bench/gpu/wheels.sh install DIR TARGET    on the device, no index:
#                                                  pip --require-hashes --no-deps
#                                                  into TARGET (put it on PYTHONPATH)
#
# Run the device command with carry [".whl"] (64 MiB at most).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
reqs="$here/wheels.txt"
py="${PYTHON:-python3}"
pip=(env PIP_CONFIG_FILE=/dev/null PIP_FIND_LINKS= PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore "$py" -m pip)

case "${1:-}" in
download)
	dir="${2:-$repo/.whl}"
	mkdir -p "$dir"
	# The GPU machine's interpreter, not this one: 3.12 wheels.
	"${pip[@]}" download -q --no-deps --require-hashes --only-binary=:all: --python-version 3.12 \
		--implementation cp --abi cp312 --platform manylinux_2_28_x86_64 --platform any -d "$dir" -r "$reqs"
	echo "wheels: $dir holds $(cd "$dir" && ls *.whl | tr '\n' ' ')($(du -sh "$dir" | cut -f1))"
	;;
install)
	[ $# -eq 3 ] || { echo "usage: wheels.sh install DIR TARGET" >&2; exit 2; }
	"${pip[@]}" install -q --no-index --find-links "$2" --no-deps --require-hashes --only-binary=:all: \
		--python-version 3.12 --implementation cp --abi cp312 --platform manylinux_2_28_x86_64 --platform any \
		--no-compile --target "$3" -r "$reqs"
	;;
*)
	sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
	;;
esac
