#!/usr/bin/env bash
# Runs the named jest tiers one after another, each in its own jest process so a tier's set-up
# (helm, containerd, the cluster) happens only when that tier runs:
#   unit         no root, no network, no compiler
#   charts       the Helm chart rendered by a real helm (test/support/helm.sh builds it, cached)
#   integration  root: real containerd + runc
#   e2e          root: the real cluster (test/e2e/run.sh brings it up), targets on this host's
#                legacy node (cgroup v1 hybrid, cgroupfs, containerd 1.6)
#   e2e-vm       the suites whose outcome depends on the node (VM_SUITES), targets on a VM node
#                (systemd, cgroup v2, containerd 2.x); skipped when the cluster runs without VM
#                nodes (cluster.sh up --nodes 1). The cluster-wide suites (install and its rollouts
#                on every node, session authorization's API policies, recording settings, the
#                sessions listing, sessions ended away from their node: liveness-cluster) already
#                ran over all nodes, VMs included, in tier e2e.
#   scale        the same cluster with 200 kwok nodes and 2,000 pods beside the real ones
#                (test/scale/run.sh): the cluster-wide views' API requests counted
# Prints a line per tier and ends with one line "N passed, M failed" (", K skipped" when any
# test was skipped) summed over every tier, for CI. Tests of the test fixtures themselves
# (the integration harness, the cluster bring-up) are counted in the tier line apart.
set -uo pipefail
cd "$(dirname "$0")/.."
out=test-results
mkdir -p "$out"
needs_native=0
for tier in "$@"; do case $tier in integration | e2e* | scale) needs_native=1 ;; esac; done
# On a cold machine the cluster's parts (Kubernetes, the VM image, containerd 2, the agent
# image's base, kwok: ~10 min, each cached by version) build in the background at the lowest
# priority while the tiers before e2e run; the first tier that needs the cluster waits for them
# (a failed build is tried again, and reported, by cluster.sh up or scale.sh).
prebuild=
if [ "$(id -u)" = 0 ] && [[ " $* " =~ \ (e2e|e2e-vm|scale)\  ]]; then
  echo "run-tiers: building the cluster's parts ahead (log: $out/prebuild.log)"
  {
    nice -n 19 bash test/cluster/cluster.sh build &
    if [[ " $* " == *" scale "* ]]; then nice -n 19 bash test/cluster/scale.sh build & fi
    wait
  } >"$out/prebuild.log" 2>&1 &
  prebuild=$!
fi
# The unit and charts tiers need only the TypeScript build; the others also native/ (gcc).
if [ $needs_native = 1 ]; then build=build; else build=build:js; fi
npm run -s "$build" || { echo "0 passed, 1 failed"; exit 1; }
# sessions, confinement, post-mortem snapshots, ps/ns, copies, sessions ended on their node, the node's own checks
VM_SUITES='test/e2e/(nsdebug|confinement|postmortem|observe|cp|cp-tree|liveness|cluster)\.test\.ts$'
passed=0 failed=0 skipped=0 status=0
for tier in "$@"; do
  case $tier in
    e2e* | scale)
      if [ -n "$prebuild" ]; then
        wait "$prebuild" || echo "run-tiers: building ahead failed (log: $out/prebuild.log); the tier builds again"
        prebuild=
      fi ;;
  esac
  case $tier in
    e2e)
      # The e2e tier needs the cluster; its runner brings it up (or reuses a running one).
      bash test/e2e/run.sh --json --outputFile="$out/$tier.json" ;;
    e2e-vm)
      if [ "$(cat "${NSDEBUG_CLUSTER_DIR:-/var/lib/nsdebug-cluster}/nodes" 2>/dev/null)" = 1 ]; then
        echo "tier $tier: skipped: the cluster runs without VM nodes (cluster.sh up --nodes 1)"
        skipped=$((skipped + 1))
        continue
      fi
      NSDEBUG_E2E_NODE=nsdebug-vm1 bash test/e2e/run.sh --json --outputFile="$out/$tier.json" "$VM_SUITES" ;;
    scale)
      bash test/scale/run.sh --json --outputFile="$out/$tier.json" ;;
    charts)
      if helm=$(bash test/support/helm.sh | tail -n1); then export NSDEBUG_HELM=$helm; else unset NSDEBUG_HELM; fi
      NODE_OPTIONS=--experimental-vm-modules npx jest --selectProjects "$tier" --json --outputFile="$out/$tier.json" ;;
    *)
      NODE_OPTIONS=--experimental-vm-modules npx jest --selectProjects "$tier" --json --outputFile="$out/$tier.json" ;;
  esac
  rc=$?
  [ $rc -ne 0 ] && status=1
  if [ -s "$out/$tier.json" ]; then
    read -r p f s fixtures < <(node test/support/tier-counts.mjs "$out/$tier.json")
  else
    p=0 f=1 s=0 fixtures=0
  fi
  [ $rc -ne 0 ] && [ "$f" -eq 0 ] && f=1
  echo "tier $tier: $p passed, $f failed, $s skipped ($fixtures of the passed check the test fixtures)"
  passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
  rm -f "$out/$tier.json"
done
if [ $skipped -gt 0 ]; then echo "$passed passed, $failed failed, $skipped skipped"; else echo "$passed passed, $failed failed"; fi
exit $status
