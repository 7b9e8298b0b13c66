// Reads one jest --json result and prints "passed failed skipped fixture-passed" for
// test/run-tiers.sh. Skipped = jest's pending and todo tests (describe.skip / test.skip with the
// reason printed by the test file). A suite that failed to run counts as one failure.
// Fixture tests check the test harness itself, not nsdebug: FIXTURE_SUITES below.
import { readFileSync } from 'node:fs';

const FIXTURE_SUITES = [/\/test\/integration\/harness\.test\.ts$/, /\/test\/e2e\/cluster\.test\.ts$/];
const r = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const fixtures = r.testResults
  .filter((suite) => FIXTURE_SUITES.some((re) => re.test(suite.name)))
  .flatMap((suite) => suite.assertionResults)
  .filter((t) => t.status === 'passed').length;
console.log(r.numPassedTests, r.numFailedTests + (r.numRuntimeErrorTestSuites ?? 0), r.numPendingTests + (r.numTodoTests ?? 0), fixtures);
