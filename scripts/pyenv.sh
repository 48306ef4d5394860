#!/usr/bin/env bash
# A Debian testing root with CPU PyTorch 2.x and transformers 5, all from
# Debian's own packages, for the tests that run ftc's entrypoints on the
# real libraries. PyPI is not reachable on our machines and Debian 12 has
# torch 1.13 and no transformers; Debian testing ("forky") packages torch,
# transformers, tokenizers, safetensors, accelerate and pyarrow. It has no
# trl, peft or datasets: the stages that need them are checked on the GPU
# machine (bench/gpu/verify.sh).
#
#   bash scripts/pyenv.sh ensure      build the root once (about 4 min, 2.4 GB)
#   bash scripts/pyenv.sh run CMD...  run CMD in it, repository at /ftc, cwd /ftc
#   bash scripts/pyenv.sh versions    the library versions inside
#   bash scripts/pyenv.sh entry ARGS  python3 -m ftc.entry ARGS in it, in the
#                                     current directory: a stand-in for the
#                                     image's entrypoint (ftc run --entrypoint)
#
# FTC_PYENV       the root (default /var/cache/ftc-pyenv/forky)
# FTC_PYENV_SUITE Debian suite (default forky)
# FTC_PYSRC       optional host folder of extra source packages (fetched trl,
#                 peft, datasets for a local check; never committed), mounted
#                 at /pysrc and put on PYTHONPATH
# FTC_PYENV_BIND  host folders (colon-separated) mounted at the same paths
#                 inside, for `entry`: the run and cache folders of ftc run
# HF_HOME         passed through (a Hub cache prepared for offline loading)
#
# Needs root (debootstrap, chroot, a private mount namespace). Mounts live
# in that namespace only: nothing is left mounted when a command ends, even
# when it is killed.
set -euo pipefail

root="${FTC_PYENV:-/var/cache/ftc-pyenv/forky}"
suite="${FTC_PYENV_SUITE:-forky}"
mirror="${FTC_PYENV_MIRROR:-http://deb.debian.org/debian}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
packages=(python3-torch python3-transformers python3-tokenizers python3-safetensors python3-accelerate
	python3-huggingface-hub python3-jinja2 python3-pytest python3-pyarrow python3-pandas python3-dill
	python3-multiprocess python3-xxhash python3-fsspec python3-httpx python3-psutil python3-yaml)
# The stamp names what the root was built with; another list rebuilds it.
stamp="$suite ${packages[*]}"

log() { echo "pyenv: $*" >&2; }

ready() { [ -f "$root/.ftc-pyenv" ] && [ "$(cat "$root/.ftc-pyenv")" = "$stamp" ]; }

ensure() {
	ready && return 0
	[ "$(id -u)" = 0 ] || { log "needs root (debootstrap, chroot)"; exit 1; }
	command -v debootstrap >/dev/null || { log "debootstrap is missing: apt-get install debootstrap"; exit 1; }
	mkdir -p "$(dirname "$root")"
	exec 9>"$root.lock"
	# Another test run may be building it: wait for that one (bounded).
	flock -w 1500 9 || { log "timed out waiting for another build of $root"; exit 1; }
	ready && return 0
	local tmp="$root.tmp"
	# --one-file-system: never into a mount a killed build left behind.
	rm -rf --one-file-system "$tmp" "$root"
	log "building $root: Debian $suite, ${#packages[@]} packages (about 4 min the first time)"
	local t0=$SECONDS
	# debootstrap's own resolver does not follow virtual packages (pyarrow's
	# libre2 is one): bootstrap a minimal Python, then let apt install the rest.
	# The sid script serves testing suites this debootstrap predates.
	# In a private mount namespace: what debootstrap mounts (proc, sys)
	# goes with it, even when it is killed.
	if ! timeout 900 unshare --mount --propagation private debootstrap --variant=minbase \
		--include=python3,ca-certificates "$suite" "$tmp" "$mirror" \
		/usr/share/debootstrap/scripts/sid >"$root.debootstrap.log" 2>&1; then
		tail -20 "$root.debootstrap.log" >&2
		log "debootstrap failed (log: $root.debootstrap.log)"
		exit 1
	fi
	cp /etc/resolv.conf "$tmp/etc/resolv.conf"
	if ! timeout 900 unshare --mount --fork sh -c '
		mount -t proc proc "$1/proc" && shift &&
		chroot "$0" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"' \
		"$tmp" "$tmp" "${packages[@]}" >"$root.apt.log" 2>&1; then
		tail -20 "$root.apt.log" >&2
		log "apt-get install in $tmp failed (log: $root.apt.log)"
		exit 1
	fi
	chroot "$tmp" apt-get clean
	# torchrun's rendezvous resolves localhost; debootstrap writes no hosts file.
	[ -s "$tmp/etc/hosts" ] || printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$tmp/etc/hosts"
	mkdir -p "$tmp/ftc" "$tmp/pysrc"
	echo "$stamp" >"$tmp/.ftc-pyenv"
	mv "$tmp" "$root"
	exec 9>&- # the build lock; commands run later must not hold it
	log "built in $((SECONDS - t0)) s"
}

run() {
	ensure
	local cwd="$1"
	shift
	local extra="${FTC_PYSRC:-}" binds="${FTC_PYENV_BIND:-}"
	# The command sees a clean environment plus the FTC_* settings
	# (FTC_VERIFY_DEVICE, FTC_BENCH_SHAPE, ...) that bench/gpu reads.
	local -a pass=()
	local v
	while IFS= read -r v; do
		case "$v" in FTC_PYSRC=* | FTC_PYENV*) ;; *) pass+=("$v") ;; esac
	done < <(env | grep -E '^(FTC_[A-Z0-9_]*|HF_HOME)=' || true)
	# A private mount namespace: proc, shm and the bind mounts vanish with it.
	local rc=0
	unshare --mount --fork --propagation private sh -c '
		root=$1 repo=$2 extra=$3 binds=$4 cwd=$5; shift 5
		mount -t proc proc "$root/proc" &&
		mount -t tmpfs tmpfs "$root/dev/shm" &&
		mount -t sysfs sysfs "$root/sys" &&
		mount --bind "$repo" "$root/ftc" || exit 1
		pp=/ftc/stdlib/python
		if [ -n "$extra" ]; then mount --bind "$extra" "$root/pysrc" || exit 1; pp="$pp:/pysrc"; fi
		IFS=:
		for b in $binds; do
			[ -n "$b" ] || continue
			mkdir -p "$root$b" && mount --bind "$b" "$root$b" || exit 1
		done
		unset IFS
		cd "$root" && exec chroot "$root" env -i HOME=/tmp PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
			PYTHONPATH="$pp" PYTHONDONTWRITEBYTECODE=1 HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 \
			TOKENIZERS_PARALLELISM=false "$@"' sh "$root" "$repo" "$extra" "$binds" "$cwd" \
		${pass[@]+"${pass[@]}"} FTC_PYENV_CWD="$cwd" sh -c 'cd "$FTC_PYENV_CWD" && exec "$@"' sh "$@" || rc=$?
	# The empty folders the bind mounts stood on (unmounted with the
	# namespace) do not stay in the root.
	local -a dirs=()
	local d
	IFS=: read -ra dirs <<<"$binds"
	for d in ${dirs[@]+"${dirs[@]}"}; do
		[ -n "$d" ] || continue
		d="$root$d"
		# Up to, not including, the root's own top-level folders.
		while [ "$(dirname "$d")" != "$root" ] && rmdir "$d" 2>/dev/null; do
			d=$(dirname "$d")
		done
	done
	return $rc
}

case "${1:-}" in
ensure) ensure ;;
run)
	shift
	[ $# -gt 0 ] || { log "run needs a command"; exit 2; }
	run /ftc "$@"
	exit $?
	;;
entry)
	shift
	run "$(pwd)" python3 -m ftc.entry "$@"
	exit $?
	;;
versions)
	run /ftc python3 -c 'import importlib
for m in ("torch", "transformers", "tokenizers", "safetensors", "accelerate", "pyarrow", "trl", "peft", "datasets"):
    try:
        print(m, importlib.import_module(m).__version__)
    except ImportError:
        print(m, "-")'
	;;
*)
	echo "usage: bash scripts/pyenv.sh ensure | run CMD... | entry ARGS... | versions" >&2
	exit 2
	;;
esac
