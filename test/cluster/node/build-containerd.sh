#!/usr/bin/env bash
# Builds containerd 2.x (containerd, containerd-shim-runc-v2, ctr) and runc from the Go module
# proxy for the VM nodes, cached outside the clone keyed by versions:
#   $NSDEBUG_CACHE/containerd-<version>/bin/{containerd,containerd-shim-runc-v2,ctr,runc}
# Static binaries, so they run on the VMs' Debian whatever the host's C library is: containerd
# without cgo (no btrfs snapshotter, which the nodes do not use); runc with cgo for seccomp,
# linked statically against libseccomp (libseccomp-dev). Debian 13's runc 1.1 cannot make
# idmapped mounts, which user-namespaced pods (hostUsers: false) need: runc >= 1.2.
# Prints the bin directory on its last line.
set -euo pipefail
CONTAINERD_VERSION=v2.4.2
RUNC_VERSION=v1.5.3
cache=${NSDEBUG_CACHE:-/var/cache/nsdebug}
out=$cache/containerd-$CONTAINERD_VERSION
bin=$out/bin
stamp=$(sha256sum <"$0" | cut -c1-16)
if [ -x "$bin/containerd" ] && [ "$(cat "$out/stamp" 2>/dev/null)" = "$stamp" ]; then
  echo "$bin"; exit 0
fi
mkdir -p "$out" "$cache/go/mod" "$cache/go/cache"
export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0
export GOMODCACHE=$cache/go/mod GOCACHE=$cache/go/cache
export GOPROXY=${GOPROXY:-https://proxy.golang.org,direct}
start=$(date +%s)
echo "building containerd $CONTAINERD_VERSION…" >&2
rm -rf "$out/bin.new"
m=github.com/containerd/containerd/v2
GOBIN=$out/bin.new go install -p "${GO_BUILD_P:-2}" -trimpath \
  -ldflags "-s -w -X $m/version.Version=$CONTAINERD_VERSION -X $m/version.Revision=proxy" \
  "$m/cmd/containerd@$CONTAINERD_VERSION" "$m/cmd/containerd-shim-runc-v2@$CONTAINERD_VERSION" \
  "$m/cmd/ctr@$CONTAINERD_VERSION"
echo "building runc $RUNC_VERSION…" >&2
r=github.com/opencontainers/runc
CGO_ENABLED=1 GOBIN=$out/bin.new go install -p "${GO_BUILD_P:-2}" -trimpath -tags "seccomp netgo osusergo" \
  -ldflags "-s -w -X main.version=${RUNC_VERSION#v} -extldflags -static" "$r@$RUNC_VERSION"
rm -rf "$bin"
mv "$out/bin.new" "$bin"
echo "$stamp" >"$out/stamp"
echo "built in $(( $(date +%s) - start ))s" >&2
echo "$bin"
