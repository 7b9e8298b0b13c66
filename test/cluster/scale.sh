#!/usr/bin/env bash
# A thousand nodes on two cores: kwok (sigs.k8s.io/kwok) makes fake Nodes and keeps them Ready
# (node leases), and plays the kubelet for the pods bound to them (they go Running and Ready, and
# are deleted when asked). The API server, scheduler and controllers are the e2e cluster's own
# and treat them as real; the agent DaemonSet (it tolerates every taint) gets a pod on each.
# Off by default: the scale tier (test/scale) and `npm run bench` turn it on next to the real nodes.
#
#   scale.sh build                         kwok from the Go module proxy, once (cached by version)
#   scale.sh up [--nodes N] [--pods P]     N fake nodes kwok-0001…, and P pods spread over them in
#                                          namespace nsdebug-scale (for completion); kwok started
#   scale.sh down                          the pods, the fake nodes and kwok gone
#
# Fake nodes are tainted kwok.x-k8s.io/node=fake:NoSchedule, so only what tolerates it lands there.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
DIR=${NSDEBUG_CLUSTER_DIR:-/var/lib/nsdebug-cluster}
CACHE=${NSDEBUG_CACHE:-/var/cache/nsdebug}
KWOK_VERSION=v0.8.0
KWOK=$CACHE/kwok-$KWOK_VERSION/kwok
LOGS=$DIR/logs
# where cluster.sh keeps its processes: its `down` stops kwok too
PID_FILE=$DIR/pids/kwok.pid
NAMESPACE=nsdebug-scale
# kwok renews each fake node's Lease every quarter of this: 40 s, inside the node controller's
# 50 s grace period, and 25 writes a second for 1,000 nodes rather than kubelet's 100
LEASE_SECONDS=160

log() { echo "scale.sh: $*" >&2; }
die() { log "$*"; exit 1; }

build() {
  [ -x "$KWOK" ] && return 0
  log "building kwok $KWOK_VERSION from the Go module proxy (once)"
  local start=$SECONDS tmp
  tmp=$(mktemp -d)
  GOBIN=$tmp GOMODCACHE=${GOMODCACHE:-$CACHE/go/mod} GOFLAGS=-mod=mod CGO_ENABLED=0 \
    go install -trimpath -ldflags='-s -w' "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" >&2 || die "building kwok failed"
  mkdir -p "$(dirname "$KWOK")"
  mv "$tmp/kwok" "$KWOK"
  rm -rf "$tmp"
  log "kwok built in $((SECONDS - start))s"
}

kubeconfig() {
  export KUBECONFIG=$DIR/admin.kubeconfig
  [ -f "$KUBECONFIG" ] || die "the e2e cluster is not up ($KUBECONFIG missing): test/cluster/cluster.sh up"
}

# N Node objects as one List; their status (runtime, kernel) is what kwok's stage keeps
nodes_yaml() {
  local n=$1 i runtime
  echo 'apiVersion: v1'
  echo 'kind: List'
  echo 'items:'
  for ((i = 1; i <= n; i++)); do
    # a fleet with two runtime versions, as one being upgraded is
    if ((i % 10 == 0)); then runtime=containerd://1.7.27; else runtime=containerd://2.1.4; fi
    printf -v name 'kwok-%04d' "$i"
    cat <<EOF
- apiVersion: v1
  kind: Node
  metadata:
    name: $name
    annotations: { kwok.x-k8s.io/node: fake }
    labels: { kubernetes.io/hostname: $name, kubernetes.io/os: linux, kubernetes.io/arch: amd64, nsdebug.test/kwok: "true" }
  spec:
    taints: [{ key: kwok.x-k8s.io/node, value: fake, effect: NoSchedule }]
  status:
    nodeInfo:
      { containerRuntimeVersion: $runtime, kernelVersion: 6.12.48-kwok, operatingSystem: linux, architecture: amd64,
        kubeletVersion: fake, kubeProxyVersion: fake, osImage: kwok, machineID: "", systemUUID: "", bootID: "" }
EOF
  done
}

# P pods bound to the fake nodes round robin (no scheduler in the way), in batches of 500
pods_yaml() {
  local from=$1 to=$2 nodes=$3 i
  echo 'apiVersion: v1'
  echo 'kind: List'
  echo 'items:'
  for ((i = from; i <= to; i++)); do
    printf -v name 'load-%05d' "$i"
    printf -v node 'kwok-%04d' $(((i - 1) % nodes + 1))
    cat <<EOF
- apiVersion: v1
  kind: Pod
  metadata: { name: $name, namespace: $NAMESPACE, labels: { app: load } }
  spec:
    nodeName: $node
    tolerations: [{ key: kwok.x-k8s.io/node, operator: Exists }]
    containers: [{ name: app, image: registry.k8s.io/pause:3.6 }]
EOF
  done
}

up() {
  local nodes=1000 pods=0
  while [ $# -gt 0 ]; do
    case $1 in
      --nodes) nodes=$2; shift 2 ;;
      --pods) pods=$2; shift 2 ;;
      *) die "unknown argument $1" ;;
    esac
  done
  build
  kubeconfig
  mkdir -p "$LOGS"
  local start=$SECONDS
  if ! { [ -f "$PID_FILE" ] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; }; then
    # config/kwok-stages.yaml: nodes made Ready (and leased), pods running and ready, deleted pods removed
    mkdir -p "$DIR/kwok-home"
    HOME=$DIR/kwok-home setsid "$KWOK" --kubeconfig "$KUBECONFIG" \
      --manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
      --node-lease-duration-seconds "$LEASE_SECONDS" --cidr 10.250.0.0/16 --node-ip 10.250.255.254 \
      --config "$HERE/config/kwok-stages.yaml" --v WARN >"$LOGS/kwok.log" 2>&1 </dev/null &
    echo $! >"$PID_FILE"
  fi
  nodes_yaml "$nodes" | kubectl apply --server-side --force-conflicts -f - >/dev/null
  local deadline=$((SECONDS + 300)) ready=0
  while ((SECONDS < deadline)); do
    ready=$(kubectl get nodes -l nsdebug.test/kwok=true --no-headers 2>/dev/null | grep -c ' Ready ' || true)
    [ "$ready" -ge "$nodes" ] && break
    kill -0 "$(cat "$PID_FILE")" 2>/dev/null || die "kwok exited (log: $LOGS/kwok.log)"
    sleep 2
  done
  [ "$ready" -ge "$nodes" ] || die "$ready of $nodes fake nodes Ready after 300 s (log: $LOGS/kwok.log)"
  if [ "$pods" -gt 0 ]; then
    kubectl get namespace "$NAMESPACE" >/dev/null 2>&1 || kubectl create namespace "$NAMESPACE" >/dev/null
    local from batch=() pid
    for ((from = 1; from <= pods; from += 500)); do
      pods_yaml "$from" $((from + 499 < pods ? from + 499 : pods)) "$nodes" | kubectl apply --server-side --force-conflicts -f - >/dev/null &
      batch+=($!)
      # two batches at a time: the API server shares the two cores (kwok is a child too: wait by PID)
      if [ ${#batch[@]} = 2 ]; then
        for pid in "${batch[@]}"; do wait "$pid" || die "creating the pods failed"; done
        batch=()
      fi
    done
    for pid in "${batch[@]}"; do wait "$pid" || die "creating the pods failed"; done
  fi
  log "$nodes fake nodes Ready, $pods pods in $NAMESPACE ($((SECONDS - start))s)"
}

down() {
  kubeconfig
  local start=$SECONDS ns
  # nothing runs these pods: they are removed from the API at once, a collection at a time
  kubectl delete nodes -l nsdebug.test/kwok=true --wait=false >/dev/null 2>&1 || true
  if kubectl get namespace "$NAMESPACE" >/dev/null 2>&1; then
    kubectl -n "$NAMESPACE" delete pods --all --force --grace-period=0 --wait=false >/dev/null 2>&1 || true
    kubectl delete namespace "$NAMESPACE" --wait=false >/dev/null
  fi
  # pods of other namespaces bound to a fake node (the agent's): by namespace, in one call each
  for ns in $(kubectl get pods -A -o jsonpath='{range .items[*]}{.metadata.namespace} {.spec.nodeName}{"\n"}{end}' 2>/dev/null |
    awk '$2 ~ /^kwok-/ {print $1}' | sort -u); do
    kubectl -n "$ns" get pods -o jsonpath='{range .items[*]}{.metadata.name} {.spec.nodeName}{"\n"}{end}' |
      awk '$2 ~ /^kwok-/ {print $1}' | xargs -r kubectl -n "$ns" delete pod --force --grace-period=0 --wait=false >/dev/null 2>&1 || true
  done
  local deadline=$((SECONDS + 180))
  while { kubectl get namespace "$NAMESPACE" >/dev/null 2>&1 || [ -n "$(kubectl get nodes -l nsdebug.test/kwok=true -o name 2>/dev/null)" ]; } &&
    ((SECONDS < deadline)); do sleep 2; done
  if [ -f "$PID_FILE" ]; then
    kill "$(cat "$PID_FILE")" 2>/dev/null || true
    rm -f "$PID_FILE"
  fi
  log "fake nodes gone ($((SECONDS - start))s)"
}

case ${1:-} in
  build) build ;;
  up) shift; up "$@" ;;
  down) down ;;
  *) die "usage: scale.sh build | up [--nodes N] [--pods P] | down" ;;
esac
