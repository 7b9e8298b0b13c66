#!/usr/bin/env bash
# Images for the e2e cluster, built on this machine (there is no container registry).
#
#   images.sh base          the base image the project's Dockerfile starts from,
#                           docker.io/library/node:26-bookworm-slim, in podman's storage:
#                           debootstrap --variant=minbase bookworm + this machine's Node (the
#                           LTS test/support/deps.sh installs) and npm. Cached (tarball and podman image) under a
#                           key of this script + Node + npm versions; a hit takes ~1 s.
#   images.sh build-agent [ADDRESS]
#                           podman build --pull=never -t nsdebug.local/agent:dev on the repo's
#                           Dockerfile (builds `base` first), then podman save --format
#                           oci-archive → ctr -n k8s.io images import into the node's
#                           containerd (ADDRESS, default: the running cluster's) and into every
#                           VM node's (cluster.sh import-image) that lacks it. Skips with a
#                           message when there is no Dockerfile.
#   images.sh test [ADDRESS] the pause, busybox and distroless test images
#                           (test/support/images.sh), imported into the node's containerd.
#
# Environment: NSDEBUG_CACHE (default /var/cache/nsdebug), AGENT_IMAGE (nsdebug.local/agent:dev),
# DEBIAN_MIRROR (default: the first deb.debian.org-style URI in /etc/apt, else deb.debian.org).
# Needs: podman, runc, debootstrap, ctr (containerd).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${NSDEBUG_CACHE:-/var/cache/nsdebug}
AGENT_IMAGE=${AGENT_IMAGE:-nsdebug.local/agent:dev}
NODE_MAJOR=26 # the line of the Dockerfile's NODE_IMAGE and of test/support/deps.sh
BASE_IMAGE=docker.io/library/node:$NODE_MAJOR-bookworm-slim
HOST_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
# podman as measured to work here (runc, cgroupfs, file events, rlimits within the hard
# limit: there is no CAP_SYS_RESOURCE). Our own file: nothing in /etc is changed.
export CONTAINERS_CONF=${CONTAINERS_CONF:-$HERE/config/containers.conf}

log() { echo "images.sh: $*" >&2; }
die() { echo "images.sh: $*" >&2; exit 1; }

default_address() {
  bash "$HERE/cluster.sh" env | sed -n 's/^CONTAINERD_ADDRESS=//p'
}

mirror() {
  if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
  local uri
  uri=$(grep -rhsE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
    grep -v security | grep -oE 'https?://[^ ]+' | head -n1)
  echo "${uri:-http://deb.debian.org/debian}"
}

cmd_base() {
  for b in podman debootstrap; do
    command -v "$b" >/dev/null || die "$b not found: apt-get install -y --no-install-recommends podman debootstrap"
  done
  local node npm_dir node_v npm_v key
  node=$(command -v node) || die "no node on this machine"
  node=$(readlink -f "$node")
  node_v=$("$node" --version)
  case $node_v in v$NODE_MAJOR.*) ;; *) die "the base must carry Node $NODE_MAJOR; this machine has $node_v (run test/support/deps.sh)" ;; esac
  # npm is the machine's (Debian's, or the one beside a Node tarball install): the package's root
  npm_dir=$(command -v npm) && npm_dir=$(readlink -f "$npm_dir") && npm_dir=${npm_dir%/bin/npm-cli.js} &&
    [ -f "$npm_dir/package.json" ] || die "no npm package found behind $(command -v npm || echo 'npm (not on PATH)')"
  npm_v=$(node -p "require('$npm_dir/package.json').version")
  [ -s "$HOST_CA_BUNDLE" ] || die "no CA bundle at $HOST_CA_BUNDLE: apt-get install -y ca-certificates"
  key=$( { sha256sum "$0" "$node" "$HOST_CA_BUNDLE" | cut -d' ' -f1; echo "$node_v $npm_v bookworm minbase"; } | sha256sum | cut -c1-16)

  if [ "$(podman image inspect "$BASE_IMAGE" --format '{{index .Config.Labels "nsdebug.base.key"}}' 2>/dev/null)" = "$key" ]; then
    log "$BASE_IMAGE is current (node $node_v, npm $npm_v)"
    return 0
  fi
  local dir=$CACHE/base tar
  tar=$dir/node$NODE_MAJOR-bookworm-slim-$key.tar
  mkdir -p "$dir"
  if [ ! -s "$tar" ]; then
    local root
    root=$(mktemp -d "$dir/.rootfs.XXXXXX")
    # shellcheck disable=SC2064
    trap "rm -rf '$root'" EXIT
    # libatomic1: the official Node 26 Linux build links it (the upstream slim image has it too)
    log "debootstrap --variant=minbase bookworm ($(mirror)); ~1 min"
    debootstrap --variant=minbase --include=libatomic1 bookworm "$root" "$(mirror)" >"$dir/debootstrap.log" 2>&1 ||
      { tail -n 20 "$dir/debootstrap.log" >&2; die "debootstrap failed (log: $dir/debootstrap.log)"; }
    # Node and npm where the upstream node image has them.
    install -D -m 0755 "$node" "$root/usr/local/bin/node"
    mkdir -p "$root/usr/local/lib/node_modules"
    cp -a "$npm_dir" "$root/usr/local/lib/node_modules/npm"
    ln -sfn ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
    ln -sfn ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
    # This machine reaches npm through a TLS proxy whose CA only the host's bundle holds:
    # the base carries that bundle and Node trusts it (NODE_EXTRA_CA_CERTS below), so the
    # Dockerfile's `npm ci` works here unchanged.
    install -D -m 0644 "$HOST_CA_BUNDLE" "$root/etc/ssl/certs/ca-certificates.crt"
    chroot "$root" /usr/local/bin/node --version >/dev/null ||
      die "the copied node does not run in the bookworm rootfs (missing libraries?)"
    chroot "$root" /usr/local/bin/npm --version >/dev/null || die "npm does not run in the rootfs"
    # what the slim image leaves out
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
      "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/var/log/*.log
    tar --numeric-owner -C "$root" -cf "$tar.tmp" .
    mv "$tar.tmp" "$tar"
    rm -rf "$root"
    trap - EXIT
    find "$dir" -maxdepth 1 -name 'node*-bookworm-slim-*.tar' ! -name "$(basename "$tar")" -delete
  fi
  podman import --quiet \
    --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    --change "ENV NODE_VERSION=${node_v#v}" \
    --change "ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt" \
    --change 'CMD ["node"]' \
    --change "LABEL nsdebug.base.key=$key" \
    "$tar" "$BASE_IMAGE" >/dev/null
  log "imported $BASE_IMAGE (node $node_v, npm $npm_v)"
}

# The same tag now names a new image: agent pods already running keep the old one until they
# are replaced (nothing is pulled), so replace them when the agent is installed.
restart_agents() {
  local kubeconfig
  kubeconfig=$(bash "$HERE/cluster.sh" env | sed -n 's/^KUBECONFIG=//p')
  [ -s "$kubeconfig" ] || return 0
  if kubectl --kubeconfig "$kubeconfig" -n nsdebug-system get daemonset nsdebug-agent >/dev/null 2>&1; then
    kubectl --kubeconfig "$kubeconfig" -n nsdebug-system rollout restart daemonset/nsdebug-agent >/dev/null &&
      kubectl --kubeconfig "$kubeconfig" -n nsdebug-system rollout status daemonset/nsdebug-agent --timeout=120s >/dev/null &&
      log "restarted the agent pods on the new image"
  fi
}

cmd_build_agent() {
  local address=${1:-}
  if [ ! -f "$REPO/Dockerfile" ]; then
    log "no Dockerfile in $REPO yet: skipping the agent image"
    return 0
  fi
  [ -n "$address" ] || address=$(default_address)
  address=${address#unix://}
  [ -S "$address" ] || die "no containerd socket at $address (is the cluster up?)"
  cmd_base
  log "podman build --pull=never -t $AGENT_IMAGE $REPO"
  local start=$SECONDS
  # host network for RUN steps: no CNI state (bridge, iptables, IPAM) to leak when a build dies
  podman build --pull=never --network host -t "$AGENT_IMAGE" "$REPO" >"$CACHE/agent-build.log" 2>&1 ||
    { tail -n 30 "$CACHE/agent-build.log" >&2; die "podman build failed (log: $CACHE/agent-build.log)"; }
  local id present archive= imported=
  id=$(podman image inspect "$AGENT_IMAGE" --format '{{.Id}}')
  # Import only when containerd does not have this very image (config digest) yet.
  present=$(ctr --address "$address" -n k8s.io images ls "name==$AGENT_IMAGE" 2>/dev/null | awk 'NR > 1 { print $3 }')
  if [ -n "$present" ] && [ "$(cat "$CACHE/agent-imported.$present" 2>/dev/null)" = "$id" ]; then
    log "$AGENT_IMAGE ($id) already in containerd"
  else
    archive=$(mktemp "$CACHE/agent.XXXXXX.oci.tar")
    podman save --format oci-archive -o "$archive" "$AGENT_IMAGE" >/dev/null
    ctr --address "$address" -n k8s.io images import "$archive" >/dev/null
    present=$(ctr --address "$address" -n k8s.io images ls "name==$AGENT_IMAGE" | awk 'NR > 1 { print $3 }')
    [ -n "$present" ] || { rm -f "$archive"; die "import did not produce $AGENT_IMAGE in containerd"; }
    rm -f "$CACHE"/agent-imported.*
    echo "$id" >"$CACHE/agent-imported.$present"
    log "imported $AGENT_IMAGE into containerd ($present)"
    imported=1
  fi
  # The VM nodes' containerd (cluster.sh import-image skips a node that has this digest).
  local stale
  stale=$(bash "$HERE/cluster.sh" image-missing "$AGENT_IMAGE" "$present" | tr "\n" " ") || die "cannot ask the VM nodes for $AGENT_IMAGE"
  if [ -n "$stale" ]; then
    if [ -z "$archive" ]; then
      archive=$(mktemp "$CACHE/agent.XXXXXX.oci.tar")
      podman save --format oci-archive -o "$archive" "$AGENT_IMAGE" >/dev/null
    fi
    bash "$HERE/cluster.sh" import-image "$archive" $stale || { rm -f "$archive"; die "importing $AGENT_IMAGE into $stale failed"; }
    # Content is digest-checked on import, its unpacked snapshot is not: once (a TCG VM node
    # under load) its node binary differed from the image's and every agent start died with
    # SIGSEGV. So the image's node must run on each node; if not, it is imported again, once.
    local node
    for node in $stale; do
      vm_runs_agent_image "$node" && continue
      log "$AGENT_IMAGE as unpacked on $node does not run (node -e 0); importing it again"
      bash "$HERE/cluster.sh" ssh "$node" "ctr -n k8s.io images rm --sync $AGENT_IMAGE >/dev/null" || true
      bash "$HERE/cluster.sh" import-image "$archive" "$node" || { rm -f "$archive"; die "importing $AGENT_IMAGE into $node failed"; }
      vm_runs_agent_image "$node" || { rm -f "$archive"; die "$AGENT_IMAGE does not run on $node even imported again (ctr run … node -e 0)"; }
    done
    log "imported $AGENT_IMAGE into $stale"
    imported=1
  fi
  rm -f "$archive"
  [ -z "$imported" ] || restart_agents
  log "agent image ready in $((SECONDS - start))s"
  echo "$AGENT_IMAGE"
}

# vm_runs_agent_image NODE: the agent image's node runs on that VM node's containerd.
vm_runs_agent_image() {
  bash "$HERE/cluster.sh" ssh "$1" "timeout 120 ctr -n k8s.io run --rm $AGENT_IMAGE nsdebug-image-check-\$\$ /usr/local/bin/node -e 0" >/dev/null 2>&1
}

case ${1:-} in
  base) cmd_base ;;
  build-agent) shift; cmd_build_agent "$@" ;;
  test) shift; a=${1:-$(default_address)}; bash "$REPO/test/support/images.sh" "$a" ;;
  *) sed -n '2,24p' "$0" | cut -c3- >&2; exit 2 ;;
esac
