#!/usr/bin/env bash
# The helm client the charts tier renders deploy/helm/nsdebug with: `helm` on PATH, else one built
# from the Go module proxy into $NSDEBUG_CACHE/helm-<version>/ (shares the Go module and build
# caches of test/cluster/k8s/build.sh). Prints the binary's path on its last line; a cache hit
# takes milliseconds, a cold build a few minutes (README "Tests").
set -euo pipefail
HELM_VERSION=v3.22.0
cache=${NSDEBUG_CACHE:-/var/cache/nsdebug}
if [ -n "${NSDEBUG_HELM:-}" ]; then echo "$NSDEBUG_HELM"; exit 0; fi
if command -v helm >/dev/null; then command -v helm; exit 0; fi
out=$cache/helm-$HELM_VERSION
if [ -x "$out/helm" ]; then echo "$out/helm"; exit 0; fi
command -v go >/dev/null || { echo "helm.sh: no helm on PATH and no Go toolchain to build $HELM_VERSION with" >&2; exit 1; }
mkdir -p "$out" "$cache/go/mod" "$cache/go/cache"
export GOTOOLCHAIN=local GOFLAGS=-mod=mod GOMODCACHE=$cache/go/mod GOCACHE=$cache/go/cache
export GOPROXY=${GOPROXY:-https://proxy.golang.org,direct}
start=$(date +%s)
echo "helm.sh: building helm $HELM_VERSION from Go modules into $out (once)…" >&2
GOBIN=$out.part go install -trimpath -ldflags "-s -w" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
mv "$out.part/helm" "$out/helm" && rmdir "$out.part"
echo "helm.sh: built in $(( $(date +%s) - start ))s" >&2
echo "$out/helm"
