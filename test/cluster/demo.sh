#!/usr/bin/env bash
# `npm run demo`: the whole path on this machine, from nothing to a shell.
#   1. build nsdebug (TypeScript + native/)
#   2. bring the single-node cluster up (test/cluster/cluster.sh; reused when it runs)
#   3. build the agent image from the Dockerfile and import it into the node (images.sh)
#   4. `kubectl nsdebug install` it, then open a session in demo/distroless, a container
#      that has no shell at all: on a terminal an interactive shell (busybox from the
#      agent's toolbox, `exit` to leave), otherwise `ps` from the toolbox.
# Arguments replace the default target and command: npm run demo -- pod/busybox -- id
# `npm run cluster:down` stops the cluster afterwards.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
log() { echo "demo: $*" >&2; }

npm run -s build
out=$(bash test/cluster/cluster.sh up)
export KUBECONFIG
KUBECONFIG=$(sed -n 's/^KUBECONFIG=//p' <<<"$out")
address=$(sed -n 's/^CONTAINERD_ADDRESS=//p' <<<"$out")
image=$(bash test/cluster/images.sh build-agent "$address" | tail -n1)
export PATH="$ROOT/bin:$PATH"
kubectl nsdebug install --image "$image" --timeout 3m
bash test/cluster/cluster.sh wait-demo

log "KUBECONFIG=$KUBECONFIG"
if [ $# -gt 0 ]; then
  set -x
  exec kubectl nsdebug -n demo "$@"
elif [ -t 0 ] && [ -t 1 ]; then
  log "a shell in demo/distroless (no shell in its image: the agent's toolbox steps in); exit to leave"
  exec kubectl nsdebug -n demo pod/distroless
else
  log "no terminal: listing demo/distroless's processes from inside it"
  set -x
  exec kubectl nsdebug -n demo pod/distroless --tools -- ps -o pid,user,args
fi
