// The (step, errno) a forked child reports is a number of enum nsd_step; the binding's Step enum
// names it and STEP_WORDING words it. Both grow by appending: this keeps them member by member alike.
import { readFileSync } from 'node:fs';

import { Step, STEP_WORDING } from '../../../src/native/libnsdebug.js';

const header = readFileSync(new URL('../../../native/libnsdebug.h', import.meta.url), 'utf8');
const enumSteps = /enum nsd_step \{([^}]*)\}/
  .exec(header)![1]!
  .replace(/\/\*[\s\S]*?\*\//g, '')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);

/** Step.SetUid → NSD_STEP_SET_UID */
const cName = (name: string) => `NSD_STEP_${name.replace(/(?<=[a-z])(?=[A-Z])/g, '_').toUpperCase()}`;
const tsSteps = Object.keys(Step).filter((key) => Number.isNaN(Number(key)));

describe('enum nsd_step, Step and STEP_WORDING', () => {
  test('name the same steps, in the same order, each worded once', () => {
    expect(enumSteps[0]).toBe('NSD_STEP_NONE = 0');
    expect(tsSteps.map(cName)).toEqual(enumSteps.map((s) => s.replace(/ = 0$/, '')));
    for (const name of tsSteps) expect(STEP_WORDING[Step[name as keyof typeof Step]]).toMatch(/^[a-z]/);
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
  ])('%s is worded "%s"', (name, wording) => expect(STEP_WORDING[enumSteps.indexOf(name) as Step]).toBe(wording));
});
