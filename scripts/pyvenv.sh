#!/usr/bin/env bash
# The Python test environments: for each stock profile, a virtual
# environment holding exactly the locked closure `ftc build` installs for a
# recipe on that profile (stdlib/python/envs/PROFILE/requirements.txt,
# written by `go run ./internal/pyenvs/pylock`), installed with pip
# --require-hashes --no-deps from a wheelhouse; then, when the closure has
# sdists ftc builds from source (requirements-sdist.txt beside it:
# deepspeed), those, with the pip options and build environment its
# header gives (no build isolation, against the installed wheels). The
# tests of ftc's entrypoints on the real libraries run there.
#
#   bash scripts/pyvenv.sh ensure PROFILE      build it once (downloads the
#                                              wheels the wheelhouse lacks)
#   bash scripts/pyvenv.sh run PROFILE CMD...  run CMD with the environment's
#                                              python first on PATH, offline
#   bash scripts/pyvenv.sh entry PROFILE ARGS  python -m ftc.entry ARGS in it
#                                              (ftc run --entrypoint stand-in)
#   bash scripts/pyvenv.sh versions PROFILE    the library versions inside
#   bash scripts/pyvenv.sh python PROFILE      build it once, then print its
#                                              interpreter's path (tests that
#                                              run torch themselves use it)
#   bash scripts/pyvenv.sh profiles            the profiles, one a line
#   bash scripts/pyvenv.sh readers             build once, then print, the
#                                              folder of the trackers'
#                                              readers (envs/readers.txt),
#                                              for PYTHONPATH beside a
#                                              profile's interpreter
#   bash scripts/pyvenv.sh server NAME         build once, then print the
#                                              python of, the environment of
#                                              envs/NAME.txt (a tracking
#                                              server the tests send to:
#                                              mlflow-server)
#
# FTC_PYVENVS  the cache (default /var/cache/ftc-pyenvs): wheels/ (shared by
#              the profiles, reused between runs), PROFILE-DIGEST/ (one
#              environment per requirements file; another file, another one)
# FTC_PYTHON   the CPython 3.11 interpreter to make them with (default: the
#              python3.11 on PATH)
#
# Only `ensure` (and `python`, `readers`, `server`) use the network (the package index, when wheels are
# missing). `run` and `entry` set HF_HUB_OFFLINE=1 and PIP_NO_INDEX=1: no
# test reaches the network. pytest and its two missing dependencies
# (stdlib/python/envs/tools.txt) sit in a folder of their own on
# PYTHONPATH, so the environment itself stays exactly the lock. The C++
# ops torch and DeepSpeed compile at run time (DeepSpeed's shared-memory
# allreduce on the CPU, about a minute) are kept in the environment's
# torch-extensions/ (TORCH_EXTENSIONS_DIR), built once.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
cache="${FTC_PYVENVS:-/var/cache/ftc-pyenvs}"
wheels="$cache/wheels"
envs="$repo/stdlib/python/envs"

log() { echo "pyvenv: $*" >&2; }

profiles() { (cd "$envs" && for d in */; do [ -f "$d/requirements.txt" ] && echo "${d%/}"; done); }

reqs_of() {
	local f="$envs/$1/requirements.txt"
	[ -f "$f" ] || { log "no profile $1 (profiles: $(profiles | tr '\n' ' '))"; exit 2; }
	echo "$f"
}

# sdists_of PROFILE: its sdists' requirements file, or nothing.
sdists_of() {
	local f="$envs/$1/requirements-sdist.txt"
	[ -f "$f" ] && echo "$f" || true
}

# dir_of PROFILE: the environment's folder, named by the digest of what it
# holds (the requirements, the sdists and the tools).
dir_of() {
	local d
	d=$(cat "$(reqs_of "$1")" $(sdists_of "$1") "$envs/tools.txt" | sha256sum | cut -c1-12)
	echo "$cache/$1-$d"
}

ready() { [ -f "$1/.ftc-pyvenv" ] && [ -f "$1/.ftc-pyvenv-compiled" ]; }

# compile DIR: byte-compile what pip installed (--no-compile, as ftc build
# does). Without it every interpreter compiles torch, transformers, trl and
# DeepSpeed from source on each import wherever PYTHONDONTWRITEBYTECODE is
# set (it is on our machines): about 12 s more for each entrypoint process,
# and the libtests start a few hundred. Environments built before this step
# get it on their next ensure.
compile() {
	local t0=$SECONDS
	if ! timeout 1200 "$1/bin/python" -m compileall -q -j 0 "$1/lib" "$1/tools" >&2; then
		log "byte-compiling $1 failed"
		exit 1
	fi
	touch "$1/.ftc-pyvenv-compiled"
	log "byte-compiled $1 in $((SECONDS - t0)) s"
}

interpreter() {
	local py="${FTC_PYTHON:-python3.11}"
	py=$(command -v "$py") || { log "no python3.11 on PATH (FTC_PYTHON names another)"; exit 1; }
	# The real interpreter (pyenv's shims are scripts), and it must be 3.11:
	# the locks are for CPython 3.11.
	"$py" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version; print(sys.executable)' ||
		{ log "$py is not CPython 3.11"; exit 1; }
}

# pip without the machine's own configuration (find-links, other indexes).
pip_env=(env PIP_CONFIG_FILE=/dev/null PIP_FIND_LINKS= PIP_EXTRA_INDEX_URL= PIP_DISABLE_PIP_VERSION_CHECK=1
	PIP_ROOT_USER_ACTION=ignore)

ensure() {
	local profile=$1 reqs dir
	reqs=$(reqs_of "$profile")
	dir=$(dir_of "$profile")
	ready "$dir" && return 0
	mkdir -p "$cache" "$wheels"
	exec 9>"$cache/.lock"
	# Another test run may be building one: wait for it (bounded).
	flock -w 2400 9 || { log "timed out waiting for another build under $cache"; exit 1; }
	if ready "$dir"; then exec 9>&-; return 0; fi
	if [ -f "$dir/.ftc-pyvenv" ]; then
		compile "$dir"
		exec 9>&-
		return 0
	fi
	local py t0=$SECONDS
	py=$(interpreter)
	rm -rf "$dir"
	log "building $dir from $reqs ($(grep -c '^[^#]' "$reqs") packages)"
	# The environment lives where it was made (its scripts name their
	# interpreter by absolute path); the stamp, written last, marks it done.
	"$py" -m venv "$dir"
	# Wheels the wheelhouse lacks come from the index, each checked against
	# its hash; those it has are checked and reused.
	if ! timeout 2400 "${pip_env[@]}" "$dir/bin/python" -m pip download -q --no-deps --require-hashes \
		--only-binary=:all: -d "$wheels" -r "$reqs" -r "$envs/tools.txt"; then
		log "downloading the wheels of $reqs failed"
		exit 1
	fi
	local t1=$SECONDS
	# No index from here on: the lock is the closure, the wheelhouse has it.
	if ! timeout 1800 "${pip_env[@]}" "$dir/bin/python" -m pip install -q --no-index --find-links "$wheels" \
		--no-deps --require-hashes --only-binary=:all: --no-compile -r "$reqs"; then
		log "installing $reqs failed"
		exit 1
	fi
	# The sdists (image.InstallPasses' second pass): fetched into the
	# wheelhouse, checked against their hashes, then built offline against
	# what is installed, with the pip options and environment the file's
	# header gives.
	local sdists t2=$SECONDS
	sdists=$(sdists_of "$profile")
	if [ -n "$sdists" ]; then
		local -a args benv
		read -r -a args <<<"$(sed -n 's/^# pip-args //p' "$sdists")"
		read -r -a benv <<<"$(sed -n 's/^# build-env //p' "$sdists")"
		if ! timeout 600 "${pip_env[@]}" "${benv[@]}" "$dir/bin/python" -m pip download -q --no-deps --require-hashes \
			--no-binary=:all: --no-build-isolation -d "$wheels" -r "$sdists" ||
			! timeout 1800 "${pip_env[@]}" "${benv[@]}" "$dir/bin/python" -m pip install -q --no-index --find-links "$wheels" \
				"${args[@]}" --no-compile -r "$sdists"; then
			log "building the sdists of $sdists failed"
			exit 1
		fi
	fi
	if ! timeout 600 "${pip_env[@]}" "$dir/bin/python" -m pip install -q --no-index --find-links "$wheels" \
		--no-deps --require-hashes --only-binary=:all: --no-compile --target "$dir/tools" -r "$envs/tools.txt"; then
		log "installing $envs/tools.txt failed"
		exit 1
	fi
	# pip check: the lock is a consistent closure for this interpreter.
	"${pip_env[@]}" "$dir/bin/python" -m pip check >&2 || { log "pip check failed in $dir"; exit 1; }
	echo "$profile" >"$dir/.ftc-pyvenv"
	compile "$dir"
	exec 9>&-
	log "built $dir in $((SECONDS - t0)) s (wheels $((t1 - t0)) s, install $((t2 - t1)) s, sdists and tools $((SECONDS - t2)) s)"
}

# build_once DIR STAMP CMD...: CMD builds DIR (from nothing) unless DIR has
# STAMP, which is written after it. Another test run may be building it
# under the same cache: wait for it, bounded.
build_once() {
	local dir=$1 stamp=$2
	shift 2
	[ -f "$dir/$stamp" ] && return 0
	mkdir -p "$cache" "$wheels"
	exec 9>"$cache/.lock"
	flock -w 2400 9 || { log "timed out waiting for another build under $cache"; exit 1; }
	if [ ! -f "$dir/$stamp" ]; then
		rm -rf "$dir"
		"$@"
		touch "$dir/$stamp"
	fi
	exec 9>&-
}

# readers: the folder of stdlib/python/envs/readers.txt's packages (the
# trackers' own readers, for tests of what ftc's tracking wrote), installed
# --no-deps by any CPython 3.11, outside every environment.
readers() {
	local reqs="$envs/readers.txt" dir
	dir="$cache/readers-$(sha256sum "$reqs" | cut -c1-12)"
	build_once "$dir" .ftc-readers build_readers "$reqs" "$dir"
	echo "$dir"
}

build_readers() {
	local reqs=$1 dir=$2 py
	py=$(interpreter)
	if ! timeout 600 "${pip_env[@]}" "$py" -m pip download -q --no-deps --require-hashes --only-binary=:all: \
		-d "$wheels" -r "$reqs" ||
		! timeout 600 "${pip_env[@]}" "$py" -m pip install -q --no-index --find-links "$wheels" --no-deps \
			--require-hashes --only-binary=:all: --target "$dir" -r "$reqs" ||
		! "$py" -m compileall -q "$dir" >&2; then
		log "installing $reqs into $dir failed"
		exit 1
	fi
}

# server NAME: the interpreter of a virtual environment holding exactly
# envs/NAME.txt (a whole closure, each wheel by version and hash), for a
# service the tests start by PID (the MLflow tracking server), outside
# every profile's environment.
server() {
	local reqs="$envs/$1.txt" dir
	[[ "$1" =~ ^[a-z][a-z0-9-]*-server$ && -f "$reqs" ]] || { log "no server environment $1 (envs/NAME-server.txt)"; exit 2; }
	dir="$cache/$1-$(sha256sum "$reqs" | cut -c1-12)"
	build_once "$dir" .ftc-server build_server "$reqs" "$dir"
	echo "$dir/bin/python"
}

build_server() {
	local reqs=$1 dir=$2 py t0=$SECONDS
	py=$(interpreter)
	log "building $dir from $reqs ($(grep -c '^[^#]' "$reqs") packages)"
	"$py" -m venv "$dir"
	if ! timeout 1200 "${pip_env[@]}" "$dir/bin/python" -m pip download -q --no-deps --require-hashes \
		--only-binary=:all: -d "$wheels" -r "$reqs" ||
		! timeout 1200 "${pip_env[@]}" "$dir/bin/python" -m pip install -q --no-index --find-links "$wheels" \
			--no-deps --require-hashes --only-binary=:all: --no-compile -r "$reqs" ||
		! "${pip_env[@]}" "$dir/bin/python" -m pip check >&2 ||
		! timeout 1200 "$dir/bin/python" -m compileall -q -j 0 "$dir/lib" >&2; then
		log "building $dir from $reqs failed"
		exit 1
	fi
	log "built $dir in $((SECONDS - t0)) s"
}

run() {
	local profile=$1 dir
	shift
	ensure "$profile"
	dir=$(dir_of "$profile")
	env -u PYTHONHOME VIRTUAL_ENV="$dir" PATH="$dir/bin:$PATH" \
		PYTHONPATH="$repo/stdlib/python:$dir/tools${PYTHONPATH:+:$PYTHONPATH}" \
		PIP_NO_INDEX=1 PIP_CONFIG_FILE=/dev/null HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
		HF_HUB_DISABLE_TELEMETRY=1 TOKENIZERS_PARALLELISM=false FTC_PYVENV_PROFILE="$profile" \
		TORCH_EXTENSIONS_DIR="${TORCH_EXTENSIONS_DIR:-$dir/torch-extensions}" "$@"
}

case "${1:-}" in
ensure)
	[ $# -eq 2 ] || { log "usage: ensure PROFILE"; exit 2; }
	ensure "$2"
	;;
run)
	[ $# -ge 3 ] || { log "usage: run PROFILE CMD..."; exit 2; }
	shift
	run "$@"
	;;
entry)
	[ $# -ge 2 ] || { log "usage: entry PROFILE ARGS..."; exit 2; }
	p=$2
	shift 2
	run "$p" python -m ftc.entry "$@"
	;;
versions)
	[ $# -eq 2 ] || { log "usage: versions PROFILE"; exit 2; }
	run "$2" python -c 'import importlib, sys
print("python", sys.version.split()[0], end="")
for m in ("torch", "transformers", "trl", "peft", "accelerate", "datasets", "tokenizers", "safetensors", "bitsandbytes", "deepspeed"):
    try:
        print(f" {m} {importlib.import_module(m).__version__}", end="")
    except Exception as e:
        print(f" {m} - ({type(e).__name__})", end="")
print()'
	;;
python)
	[ $# -eq 2 ] || { log "usage: python PROFILE"; exit 2; }
	ensure "$2"
	echo "$(dir_of "$2")/bin/python"
	;;
profiles) profiles ;;
readers) readers ;;
server)
	[ $# -eq 2 ] || { log "usage: server NAME"; exit 2; }
	server "$2"
	;;
*)
	sed -n '2,47p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
	;;
esac
