#!/usr/bin/env bash
# The e2e tier: brings the cluster up (or reuses a running one, test/cluster),
# loads the demo workloads and waits for them, builds the agent image from the Dockerfile and
# imports it into the node, then runs the e2e jest project against the cluster with
#   KUBECONFIG, KUBECONFIG_LIMITED, CONTAINERD_ADDRESS   exported, and
#   the repo's bin/ first on PATH (kubectl finds `kubectl-nsdebug` through its plugin lookup).
# Afterwards it deletes what the tests created (namespaces and pods labelled
# nsdebug.test/e2e=true, and pods in `demo` that are not demo workloads) and restores the demo
# workloads; the cluster stays up for the next run (`npm run cluster:down` stops it).
#
#   test/e2e/run.sh [jest args…]      e.g. --json --outputFile=x.json, -t 'node Ready'
# Environment: NSDEBUG_E2E_SKIP_AGENT=1 skips the agent image build; NSDEBUG_E2E_NODE=NODE
# targets that node's type (test/e2e/helpers/node.ts; default this host's node, demo; a VM node
# targets demo-vm).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"

log() { echo "e2e: $*" >&2; }
start=$SECONDS

if ! out=$(bash test/cluster/cluster.sh status 2>/dev/null); then
  log "bringing the cluster up (test/cluster/cluster.sh up)"
  out=$(bash test/cluster/cluster.sh up) || { log "cluster.sh up failed"; exit 1; }
else
  log "reusing the running cluster"
fi
while IFS= read -r line; do
  case $line in
    KUBECONFIG=* | KUBECONFIG_LIMITED=* | CONTAINERD_ADDRESS=*) export "${line?}" ;;
  esac
done <<<"$out"
[ -n "${KUBECONFIG:-}" ] && [ -n "${KUBECONFIG_LIMITED:-}" ] && [ -n "${CONTAINERD_ADDRESS:-}" ] ||
  { log "cluster.sh did not print KUBECONFIG, KUBECONFIG_LIMITED and CONTAINERD_ADDRESS"; exit 1; }

bash test/cluster/cluster.sh demo --wait || { log "the demo workloads are not ready"; exit 1; }
if [ -z "${NSDEBUG_E2E_SKIP_AGENT:-}" ]; then
  bash test/cluster/images.sh build-agent "$CONTAINERD_ADDRESS" >/dev/null || { log "building the agent image failed"; exit 1; }
fi
log "cluster ready in $((SECONDS - start))s; running jest"

export PATH="$ROOT/bin:$PATH"
# in band: install.test.ts uninstalls and reinstalls the agent the other suites use
NODE_OPTIONS=--experimental-vm-modules npx jest --selectProjects e2e --runInBand "$@"
rc=$?

# What the tests created; the cluster itself stays up.
kubectl delete namespace -l nsdebug.test/e2e=true --ignore-not-found --wait=false >/dev/null 2>&1 || true
for ns in demo demo-vm; do
  kubectl -n "$ns" delete pod -l 'nsdebug.test/e2e=true' --ignore-not-found --wait=false >/dev/null 2>&1 || true
  kubectl -n "$ns" delete pod -l '!nsdebug.test/demo' --ignore-not-found --wait=false >/dev/null 2>&1 || true
done
bash test/cluster/cluster.sh demo >/dev/null 2>&1 || log "warning: restoring the demo workloads failed"
log "done in $((SECONDS - start))s (jest exit $rc)"
exit $rc
