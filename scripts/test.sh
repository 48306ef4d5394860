#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this script).
#
# Go: go vet, gofmt, then every package's tests with a summary line
# "N passed, N failed, N skipped" at the end.
set -uo pipefail
cd "$(dirname "$0")/.."

export GOFLAGS="${GOFLAGS:--buildvcs=false}"
status=0

# Services the tests start themselves (by PID, with bounded waits) need
# their programs installed. CI is a fresh Debian machine, as root.
apt_packages=()
command -v docker-registry >/dev/null || apt_packages+=(docker-registry)
command -v podman >/dev/null || apt_packages+=(podman)
command -v runc >/dev/null || apt_packages+=(runc)
[ -x /usr/libexec/podman/catatonit ] || apt_packages+=(catatonit)
/usr/bin/python3 -c 'import pytest' 2>/dev/null || apt_packages+=(python3-pytest)
# A private Slurm cluster (internal/slurmtest); its DDP jobs run in the
# pinned-2025q1 test environment (scripts/pyvenv.sh), like every test that
# needs torch.
for p in sbatch slurmctld slurmd; do command -v $p >/dev/null || { apt_packages+=(slurm-wlm); break; }; done
command -v munged >/dev/null || apt_packages+=(munge)
# ftc build against a real BuildKit (internal/buildkittest builds buildkitd
# from go.mod once per run into $FTC_TEST_CACHE; it needs runc, above):
# OCI readers, a static busybox for base images made on the spot, and
# debootstrap for the Debian base with a real Python and pip.
command -v skopeo >/dev/null || apt_packages+=(skopeo)
command -v umoci >/dev/null || apt_packages+=(umoci)
dpkg -s busybox-static >/dev/null 2>&1 || apt_packages+=(busybox-static)
command -v debootstrap >/dev/null || apt_packages+=(debootstrap)
# The run report rendered in a real headless browser (runtime/report).
command -v chromium >/dev/null || apt_packages+=(chromium)
if [ ${#apt_packages[@]} -gt 0 ]; then
	echo "== installing ${apt_packages[*]} (apt)"
	if [ "$(id -u)" = 0 ]; then
		export DEBIAN_FRONTEND=noninteractive
		timeout 600 apt-get update -qq >/dev/null &&
			timeout 600 apt-get install -y -qq --no-install-recommends "${apt_packages[@]}" >/dev/null ||
			{ echo "apt-get install ${apt_packages[*]} failed"; status=1; }
	else
		echo "not root: install ${apt_packages[*]} yourself (sudo apt-get install ${apt_packages[*]})"; status=1
	fi
fi

echo "== go vet"
go vet ./... || status=1

# The binary builds on macOS too: Linux-only calls live in _linux.go files
# (internal/sysproc, runtime/fileid). Vetting compiles the tests as well.
echo "== GOOS=darwin go vet (the macOS build)"
GOOS=darwin GOARCH=arm64 CGO_ENABLED=0 go vet ./... || status=1

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "not gofmt'ed:"; echo "$unformatted"; status=1
fi

# The Python entrypoints' pure parts, with Debian's interpreter (pyenv's
# python3 may come first on PATH and lacks pytest). pytest exits 5 when it
# collects nothing: that is a failure here too.
#
# Each pytest run gets a base temporary folder of its own (--basetemp),
# removed afterwards: pytest's default, /tmp/pytest-of-USER, is shared by
# every pytest of the user on the machine, and one starting there prunes
# the older numbered folders another one may still be using.
pytmp=$(mktemp -d "${TMPDIR:-/tmp}/ftc-pytest.XXXXXX")
trap 'rm -rf "$pytmp"' EXIT
echo "== pytest (stdlib/python)"
/usr/bin/python3 -m pytest -q -p no:cacheprovider --basetemp "$pytmp/stdlib" stdlib/python/tests || status=1
rm -rf "$pytmp/stdlib"

# The entrypoints on the real libraries, on the CPU, once per stock
# profile: each in a virtual environment holding exactly the closure ftc
# build installs for it (stdlib/python/envs/PROFILE/requirements.txt,
# pip --require-hashes), built once by scripts/pyvenv.sh under
# /var/cache/ftc-pyenvs (a fresh machine downloads the wheels: about
# 5.6 GB for both). The tests themselves run offline.
echo "== pytest (stdlib/python/libtests, each profile's locked environment)"
# The tests take each stage's trainer arguments from ftc's Go planner
# (ftc debug trainer-args, bench/gpu/assets.py), as a plan states them.
go build -o "$pytmp/ftc" ./cmd/ftc || exit 1
export FTC_BIN="$pytmp/ftc"
py_summaries=()
for profile in $(bash scripts/pyvenv.sh profiles); do
	echo "== libtests on $profile"
	if ! timeout 2700 bash scripts/pyvenv.sh ensure "$profile"; then
		py_summaries+=("libtests $profile: environment not built")
		status=1
		continue
	fi
	bash scripts/pyvenv.sh versions "$profile"
	out=$(mktemp)
	timeout 2400 bash scripts/pyvenv.sh run "$profile" python -m pytest -q -p no:cacheprovider \
		--durations 12 --basetemp "$pytmp/$profile" stdlib/python/libtests 2>&1 | tee "$out"
	rc=${PIPESTATUS[0]}
	rm -rf "${pytmp:?}/$profile"
	line=$(grep -E '^=*[ ]*[0-9]+ (passed|failed|error)' "$out" | tail -n 1 | tr -d '=' | sed 's/^ *//; s/ *$//')
	rm -f "$out"
	py_summaries+=("libtests $profile: ${line:-no summary (exit $rc)}")
	[ "$rc" = 0 ] || status=1
done
printf '%s\n' "${py_summaries[@]}"

# A bounded fuzzing run of ftc vet (compiler.FuzzVet): arbitrary recipe
# text and --set values must give diagnostics, never a panic or a hang.
# Inputs it fails on are saved under compiler/testdata/fuzz/FuzzVet; add
# them to git with the fix, and plain go test replays them. Minimising a
# new interesting input takes up to 60 s by default, and the workers report
# no executions meanwhile: 5 s leaves the run to fuzzing.
echo "== go test -fuzz FuzzVet (20 s)"
go test -run '^$' -fuzz '^FuzzVet$' -fuzztime 20s -fuzzminimizetime 5s ./compiler/ || { echo "FuzzVet failed"; status=1; }

# internal/e2e holds the journey (TestJourneyStockProfile: PyPI, BuildKit,
# a several-GB image, podman): 14-22 minutes of that package's share.
echo "== go test"
go build -o /tmp/ftc-testsummary.$$ ./internal/testsummary || exit 1
go test -count=1 -timeout 75m -json ./... | /tmp/ftc-testsummary.$$ || status=1
rm -f /tmp/ftc-testsummary.$$

exit $status
