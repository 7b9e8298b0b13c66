// The (step, errno) a forked child reports is an index into enum nsd_step; the binding words it
// from STEPS. Both lists grow by appending: this keeps them the same length and in step.
import { readFileSync } from 'node:fs';

import { STEPS } from '../../../src/native/libnsdebug.js';

const header = readFileSync(new URL('../../../native/libnsdebug.h', import.meta.url), 'utf8');
const enumSteps = /enum nsd_step \{([^}]*)\}/
  .exec(header)![1]!
  .replace(/\/\*[\s\S]*?\*\//g, '')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);

describe('enum nsd_step and STEPS', () => {
  test('have one wording per step, in the same order', () => {
    expect(enumSteps[0]).toBe('NSD_STEP_NONE = 0');
    expect(STEPS).toHaveLength(enumSteps.length);
  });

  test.each([
    ['NSD_STEP_SETNS', 'join the namespaces'],
    ['NSD_STEP_POSTMORTEM', "mount the container's last filesystem"],
    ['NSD_STEP_DROP_BOUNDING', "drop the capabilities outside the target's bounding set"],
    ['NSD_STEP_SET_UID', "take the target's user IDs"],
    ['NSD_STEP_SECCOMP', "install the target's seccomp filter"],
    ['NSD_STEP_PM_PRIVATE', "make the session's mounts private"],
    ['NSD_STEP_PIVOT_ROOT', "make the container's last filesystem the root (pivot_root)"],
    ['NSD_STEP_DETACH_OLD_ROOT', "detach the node's root"],
    ['NSD_STEP_PM_PROC', "mount the session's /proc"],
  ])('%s is worded "%s"', (name, wording) => expect(STEPS[enumSteps.indexOf(name)]).toBe(wording));
});
