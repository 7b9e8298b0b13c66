import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { CgroupMount } from '../../../src/agent/cgroups.js';
import { cgroupDriverOf, cgroupVersionOf, listeningLoopbackPorts, listeningUnixSockets } from '../../../src/agent/info.js';

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

describe("serve's listeners, as /proc/net shows them (the readiness probe opens no connection)", () => {
  test('unix sockets: only the listening ones (__SO_ACCEPTCON), by path', () => {
    const text = [
      'Num       RefCount Protocol Flags    Type St Inode Path',
      '00000000bc8b153f: 00000002 00000000 00010000 0001 01 2545761 /run/nsdebug/agent.sock',
      '00000000b5611e6d: 00000003 00000000 00000000 0001 03 2549452 /run/nsdebug/audit.sock',
      '00000000b5611e6e: 00000002 00000000 00010000 0001 01 2549453 /run/with space.sock',
      '00000000b5611e6f: 00000002 00000000 00000000 0002 01 2549454',
    ].join('\n');
    expect(listeningUnixSockets(text)).toEqual(['/run/nsdebug/agent.sock', '/run/with space.sock']);
  });

  test('TCP: listening ports on loopback or any address, not connected or other addresses', () => {
    const text = [
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 0100007F:1B9E 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1568 1',
      '   1: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1569 1',
      '   2: 0100007F:1F90 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000     0        0 1570 1',
      '   3: 0B00A8C0:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1571 1',
    ].join('\n');
    expect(listeningLoopbackPorts(text)).toEqual([7070, 2024]);
  });
});
