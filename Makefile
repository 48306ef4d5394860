# ftc — common tasks. The README's two commands need nothing but Go.

VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/ftc-dev/ftc/internal/cli.Version=$(VERSION)

.PHONY: build release test lint bench golden docs k8s-test pylock journey

build:
	go build -ldflags '$(LDFLAGS)' -o bin/ftc ./cmd/ftc

# A release binary: no local paths (-trimpath), no symbol table, the
# version stamped; cgo on, so that vet parses reward-function files.
release:
	CGO_ENABLED=1 go build -trimpath -ldflags '-s -w $(LDFLAGS)' -o bin/ftc ./cmd/ftc

test:
	bash scripts/test.sh

lint:
	go vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)

bench:
	go test -run '^$$' -bench . -benchtime 20x ./bench/
	bash bench/vet.sh
	bash bench/cached_run.sh
	go run ./bench/hashbench

# Refresh golden files (plans of the examples, vet messages) after a
# deliberate change; review the diff before committing.
golden:
	FTC_UPDATE_GOLDEN=1 go test ./...

# Regenerate docs/cli.md, the command reference, from the commands'
# definitions (go test ./internal/cli fails while it is stale).
docs:
	go run ./internal/cli/gendocs

# Opt-in: a real Kubernetes API server (kube-apiserver and etcd built from
# the Go module proxy, about 8 minutes cold) validates every example's
# manifests by server-side dry run, and the Kubernetes backend is exercised.
k8s-test:
	bash scripts/kube-apiserver.sh
	go test -tags kubernetes -run 'TestServerDryRun|TestKubernetesBackend' -v ./internal/e2e/

# Re-lock the Python test environments (stdlib/python/envs/PROFILE/
# requirements.txt) after a profile changed: ftc lock's resolution without
# BuildKit, against the package index (a few minutes: pip downloads torch to
# read its metadata). go test ./internal/pyenvs says when this is due.
pylock:
	go run ./internal/pyenvs/pylock

# Issue 13's journey alone (go test runs it too): ftc lock (PyPI) -> ftc
# build (BuildKit, the pinned-2025q1 wheels, several GB) -> podman pull ->
# prepare and sft of a tiny model on the CPU in the image under
# `ftc run --backend podman` -> a cached rerun -> the same digest again.
# 14 to 22 minutes on a 2-core machine (README, "Python entrypoints").
journey:
	go test -count=1 -timeout 60m -run '^TestJourneyStockProfile$$' -v ./internal/e2e/
