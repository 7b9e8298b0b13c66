#!/usr/bin/env bash
# The Debian packages the demo and the test tiers need, installed when any is missing (root).
# containerd/runc/CNI/busybox-static: real containers (integration, e2e); tmux: real terminals
# in tests; debootstrap/podman/buildah/openssl/curl/iptables: the e2e cluster and images;
# gcc/make: native/. The cluster's Kubernetes components and etcd are built from the Go module
# proxy by test/cluster/k8s/build.sh (cached in /var/cache/nsdebug by version).
set -euo pipefail
PACKAGES=(
  containerd runc containernetworking-plugins busybox-static
  iptables iproute2 util-linux procps tmux openssl ca-certificates curl time
  debootstrap podman buildah uidmap fuse-overlayfs slirp4netns
  gcc libc6-dev make
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps.sh: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v go >/dev/null || { echo "deps.sh: no Go toolchain: the e2e cluster is built with it (test/cluster/k8s)" >&2; exit 1; }
