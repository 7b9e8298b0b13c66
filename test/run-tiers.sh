#!/usr/bin/env bash
# Runs the named jest tiers one after another (unit, integration, e2e), each in its own jest
# process so a tier's global setup (containerd, the cluster) starts only when that tier runs.
# Ends with one line "N passed, M failed" summed over every tier, for CI.
set -uo pipefail
cd "$(dirname "$0")/.."
out=test-results
mkdir -p "$out"
npm run -s build || { echo "0 passed, 1 failed"; exit 1; }
passed=0 failed=0 status=0
for tier in "$@"; do
  if [ "$tier" = e2e ]; then
    # The e2e tier needs the cluster; its runner brings it up (or reuses a running one).
    bash test/e2e/run.sh --json --outputFile="$out/$tier.json"
  else
    NODE_OPTIONS=--experimental-vm-modules npx jest --selectProjects "$tier" --json --outputFile="$out/$tier.json"
  fi
  rc=$?
  [ $rc -ne 0 ] && status=1
  if [ -s "$out/$tier.json" ]; then
    read -r p f < <(node -e 'const r=JSON.parse(require("fs").readFileSync(process.argv[1]));console.log(r.numPassedTests, r.numFailedTests + (r.numRuntimeErrorTestSuites||0))' "$out/$tier.json")
  else
    p=0 f=1
  fi
  [ $rc -ne 0 ] && [ "$f" -eq 0 ] && f=1
  echo "tier $tier: $p passed, $f failed"
  passed=$((passed + p)) failed=$((failed + f))
  rm -f "$out/$tier.json"
done
echo "$passed passed, $failed failed"
exit $status
