#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this script).
#
# Go: go vet, gofmt, then every package's tests with a summary line
# "N passed, N failed, N skipped" at the end.
set -uo pipefail
cd "$(dirname "$0")/.."

export GOFLAGS="${GOFLAGS:--buildvcs=false}"
status=0

echo "== go vet"
go vet ./... || status=1

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "not gofmt'ed:"; echo "$unformatted"; status=1
fi

echo "== go test"
go build -o /tmp/ftc-testsummary.$$ ./internal/testsummary || exit 1
go test -count=1 -json ./... | /tmp/ftc-testsummary.$$ || status=1
rm -f /tmp/ftc-testsummary.$$

exit $status
