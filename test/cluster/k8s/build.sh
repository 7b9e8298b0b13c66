#!/usr/bin/env bash
# Builds the Kubernetes components (and etcd) for the e2e cluster from the Go module
# proxy into one multi-call binary, cached outside the clone keyed by version:
#   $NSDEBUG_CACHE/k8s-<version>/bin/{k8s,kube-apiserver,kube-controller-manager,
#                                     kube-scheduler,kubelet,etcd}
# Prints the bin directory on its last line. A cache hit takes milliseconds; a cold
# build on 2 cores takes the time written in ../README.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
K8S_VERSION=v1.37.2            # keep in step with go.mod (k8s.io/kubernetes + replaces)
cache=${NSDEBUG_CACHE:-/var/cache/nsdebug}
# The stamp covers the wrapper module's sources, so editing them rebuilds.
stamp=$(cat "$here/go.mod" "$here/go.sum" "$here/main.go" "$0" | sha256sum | cut -c1-16)
out=$cache/k8s-$K8S_VERSION
bin=$out/bin
if [ -x "$bin/k8s" ] && [ "$(cat "$out/stamp" 2>/dev/null)" = "$stamp" ]; then
  echo "$bin"; exit 0
fi
mkdir -p "$out" "$cache/go/mod" "$cache/go/cache"
export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=${CGO_ENABLED:-1}
export GOMODCACHE=$cache/go/mod GOCACHE=$cache/go/cache
export GOPROXY=${GOPROXY:-https://proxy.golang.org,direct}
v=k8s.io/component-base/version cv=k8s.io/client-go/pkg/version
minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
ldflags="-s -w"
for p in $v $cv; do
  ldflags+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
  ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
done
start=$(date +%s)
echo "building Kubernetes $K8S_VERSION + etcd (one binary; cold build ~ see README)…" >&2
cd "$here"
go build -p "${GO_BUILD_P:-2}" -trimpath -ldflags "$ldflags" -o "$out/k8s.new" .
mkdir -p "$bin"
mv "$out/k8s.new" "$bin/k8s"
for n in kube-apiserver kube-controller-manager kube-scheduler kubelet etcd; do
  ln -sfn k8s "$bin/$n"
done
echo "$stamp" > "$out/stamp"
# Other versions' builds are dead weight (a running cluster keeps its open binaries).
find "$cache" -mindepth 1 -maxdepth 1 -type d -name 'k8s-v*' ! -name "k8s-$K8S_VERSION" -exec rm -rf {} +
echo "built in $(( $(date +%s) - start ))s" >&2
echo "$bin"
