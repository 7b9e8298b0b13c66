import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { CgroupMount } from '../../../src/agent/cgroups.js';
import { cgroupDriverOf, cgroupVersionOf } from '../../../src/agent/info.js';

describe("the node's cgroup driver, from the kubelet's pod tree on disk", () => {
  let root: string;
  const mount = (path: string, version: 1 | 2): CgroupMount =>
    ({ path, version, controllers: version === 1 ? ['pids'] : [] }) as CgroupMount;
  beforeEach(() => (root = mkdtempSync(join(tmpdir(), 'nsdebug-driver-'))));
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  test('systemd: kubepods.slice at the root (cgroup v2, as on the VM nodes)', () => {
    mkdirSync(join(root, 'kubepods.slice'));
    expect(cgroupDriverOf([mount(root, 2)], [''])).toBe('systemd');
  });

  test("cgroupfs below a kubelet root of its own (kind's and the e2e host's /kubelet), not only at /", () => {
    mkdirSync(join(root, 'kubelet', 'kubepods'), { recursive: true });
    expect(cgroupDriverOf([mount(root, 1)], [''])).toBe('unknown');
    expect(cgroupDriverOf([mount(root, 1)], ['', 'kubelet'])).toBe('cgroupfs');
  });

  test('versions: hybrid when both kinds are mounted', () => {
    expect(cgroupVersionOf([mount(root, 1), mount(root, 2)])).toBe('hybrid');
    expect(cgroupVersionOf([mount(root, 2)])).toBe('v2');
  });
});
