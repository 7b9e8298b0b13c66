// Grouping a pod's processes by namespace inode: who shares what, nested PID namespaces, the node.
import { groupNamespaces, inodeOf, type ProcessNamespaces } from '../../../src/agent/namespaces.js';

const SANDBOX = 's'.repeat(64);
const APP = 'a'.repeat(64);
const HELPER = 'h'.repeat(64);
const NODE = { user: 1, cgroup: 2, ipc: 3, uts: 4, net: 5, pid: 6, mnt: 7, time: 8 };

/** A process with the node's namespaces except those given. */
const proc = (hostPid: number, containerId: string, innermostPid: number, own: Partial<typeof NODE>, level = 1): ProcessNamespaces => ({
  hostPid,
  containerId,
  level,
  innermostPid,
  command: `cmd-${hostPid}`,
  inodes: { ...NODE, ...own },
});

describe('inodeOf', () => {
  test.each([
    ['pid:[4026531836]', 4026531836],
    ['mnt:[1]', 1],
    ['pid:4026531836', undefined],
    ['', undefined],
  ])('%s', (link, inode) => expect(inodeOf(link)).toBe(inode));
});

describe('groupNamespaces', () => {
  // sandbox (pause) holds the pod's ipc/uts/net; app and helper share them, each has its own pid and mnt
  const pod = [
    proc(100, SANDBOX, 1, { ipc: 30, uts: 40, net: 50, pid: 60, mnt: 70 }),
    proc(200, APP, 1, { ipc: 30, uts: 40, net: 50, pid: 61, mnt: 71 }),
    proc(201, APP, 7, { ipc: 30, uts: 40, net: 50, pid: 61, mnt: 71 }),
    proc(300, HELPER, 1, { ipc: 30, uts: 40, net: 50, pid: 62, mnt: 72 }),
  ];
  const inits = new Map([
    [SANDBOX, 100],
    [APP, 200],
    [HELPER, 300],
  ]);

  test('one entry per namespace, in kind order; the node shares user, cgroup, time', () => {
    const entries = groupNamespaces(pod, inits, NODE);
    expect(entries.map((e) => [e.kind, e.inode, e.node, e.processes])).toEqual([
      ['user', 1, true, 4],
      ['cgroup', 2, true, 4],
      ['ipc', 30, false, 4],
      ['uts', 40, false, 4],
      ['net', 50, false, 4],
      ['pid', 60, false, 1],
      ['pid', 61, false, 2],
      ['pid', 62, false, 1],
      ['mnt', 70, false, 1],
      ['mnt', 71, false, 2],
      ['mnt', 72, false, 1],
      ['time', 8, true, 4],
    ]);
    const net = entries.find((e) => e.kind === 'net')!;
    expect([...net.containers].sort()).toEqual([APP, HELPER, SANDBOX].sort());
    expect(entries.find((e) => e.inode === 61)).toMatchObject({ containers: [APP], level: 1, hostPid: 200, command: 'cmd-200' });
    expect(entries.find((e) => e.kind === 'net')).not.toHaveProperty('level');
  });

  test('hostNetwork and hostPID: the node is in the list', () => {
    const host = pod.map((p) => ({ ...p, level: 0, inodes: { ...p.inodes, net: NODE.net, pid: NODE.pid } }));
    const entries = groupNamespaces(host, inits, NODE);
    expect(entries.filter((e) => e.kind === 'net')).toEqual([expect.objectContaining({ inode: NODE.net, node: true, processes: 4 })]);
    expect(entries.filter((e) => e.kind === 'pid')).toEqual([expect.objectContaining({ inode: NODE.pid, node: true, level: 0 })]);
  });

  test('a PID namespace made inside a container: nested in it, one level deeper, its PID 1 named', () => {
    const nested = [
      ...pod,
      // unshare --pid --fork inside app: 202 is the new namespace's PID 2, 203 its PID 1
      proc(202, APP, 2, { ipc: 30, uts: 40, net: 50, pid: 63, mnt: 73 }, 2),
      proc(203, APP, 1, { ipc: 30, uts: 40, net: 50, pid: 63, mnt: 73 }, 2),
    ];
    const entries = groupNamespaces(nested, inits, NODE);
    expect(entries.find((e) => e.inode === 63)).toEqual({
      kind: 'pid',
      inode: 63,
      containers: [],
      nestedIn: APP,
      node: false,
      level: 2,
      processes: 2,
      hostPid: 203,
      command: 'cmd-203',
    });
    expect(entries.find((e) => e.inode === 73)).toMatchObject({ kind: 'mnt', nestedIn: APP, containers: [] });
    // PID namespaces by level: the nested one comes after the containers' own
    expect(entries.filter((e) => e.kind === 'pid').map((e) => e.inode)).toEqual([60, 61, 62, 63]);
  });

  test('a kind the kernel lacks is left out', () => {
    const noTime = pod.map((p) => {
      const { time: _time, ...inodes } = p.inodes;
      return { ...p, inodes };
    });
    expect(groupNamespaces(noTime, inits, NODE).some((e) => e.kind === 'time')).toBe(false);
  });
});
