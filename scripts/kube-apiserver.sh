#!/usr/bin/env bash
# Builds kube-apiserver (and etcd) from the Go module proxy into $1
# (default: $HOME/.cache/ftc/kube-bin), in a throwaway module, because
# `go install` refuses modules with replace directives. Cold: about 8
# minutes and 2 GB of build cache; warm: seconds. Used by `make k8s-test`.
set -euo pipefail
out=${1:-$HOME/.cache/ftc/kube-bin}
version=${KUBE_VERSION:-v1.32.0}
minor=${version#v1.}; minor=${minor%%.*}
staging="v0.${minor}.${version##*.}"
mkdir -p "$out"
if [ -x "$out/kube-apiserver" ] && [ -x "$out/etcd" ]; then
	echo "kube-apiserver and etcd already in $out"; exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
cat > go.mod <<EOM
module ftc.local/kubebuild

go 1.26

require (
	k8s.io/kubernetes $version
	go.etcd.io/etcd/server/v3 v3.5.17
)
EOM
# Every ./staging replace of kubernetes' own go.mod, pointed at the
# published module of the same minor version.
go mod download -json "k8s.io/kubernetes@$version" > dl.json
gomod=$(sed -n 's/.*"GoMod": "\(.*\)".*/\1/p' dl.json)
grep -E '^\s*k8s.io/[a-z-]+ => ./staging' "$gomod" | awk -v v="$staging" '{print "replace " $1 " => " $1 " " v}' >> go.mod
cat > tools.go <<'EOM'
//go:build tools

package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
)
EOM
go mod tidy >/dev/null 2>&1 || go mod tidy
ldflags="-X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
echo "building kube-apiserver $version (cold: about 8 minutes)"
go build -tags tools -ldflags "$ldflags" -o "$out/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
go build -o "$out/etcd" go.etcd.io/etcd/server/v3
echo "built into $out"
