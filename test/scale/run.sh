#!/usr/bin/env bash
# The scale tier: the e2e cluster (brought up, or reused as the e2e tier left it) with
# NSDEBUG_SCALE_NODES kwok nodes (default 200) and NSDEBUG_SCALE_PODS pods on them (default
# 2,000) next to its real nodes (test/cluster/scale.sh), then the scale jest project against it.
# Afterwards the fake nodes, their pods and kwok are gone again; the cluster stays up.
#   test/scale/run.sh [jest args…]
# Environment: NSDEBUG_E2E_SKIP_AGENT=1 skips the agent image build (the e2e tier built it).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
log() { echo "scale: $*" >&2; }
start=$SECONDS
export NSDEBUG_SCALE_NODES=${NSDEBUG_SCALE_NODES:-200} NSDEBUG_SCALE_PODS=${NSDEBUG_SCALE_PODS:-2000}

if ! out=$(bash test/cluster/cluster.sh status 2>/dev/null); then
  log "bringing the cluster up (test/cluster/cluster.sh up)"
  out=$(bash test/cluster/cluster.sh up) || { log "cluster.sh up failed"; exit 1; }
fi
while IFS= read -r line; do
  case $line in
    KUBECONFIG=* | KUBECONFIG_LIMITED=* | CONTAINERD_ADDRESS=*) export "${line?}" ;;
  esac
done <<<"$out"
bash test/cluster/cluster.sh demo --wait || { log "the demo workloads are not ready"; exit 1; }
if [ -z "${NSDEBUG_E2E_SKIP_AGENT:-}" ]; then
  bash test/cluster/images.sh build-agent "$CONTAINERD_ADDRESS" >/dev/null || { log "building the agent image failed"; exit 1; }
fi
bash test/cluster/scale.sh up --nodes "$NSDEBUG_SCALE_NODES" --pods "$NSDEBUG_SCALE_PODS" || {
  bash test/cluster/scale.sh down || true
  log "the fake nodes did not come up"
  exit 1
}
log "$NSDEBUG_SCALE_NODES fake nodes ready in $((SECONDS - start))s; running jest"

export PATH="$ROOT/bin:$PATH"
NODE_OPTIONS=--experimental-vm-modules npx jest --selectProjects scale --runInBand "$@"
rc=$?
bash test/cluster/scale.sh down || log "warning: removing the fake nodes failed"
log "done in $((SECONDS - start))s (jest exit $rc)"
exit $rc
