import {
  containerCgroupCandidates,
  containerIdOf,
  kubeletRootOf,
  parseCgroupMounts,
  parseProcCgroup,
  podUidOf,
} from '../../../src/agent/cgroups.js';
import { fixture } from '../../fixtures.js';

const ID = '4b1f6a8b8e3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e';
const UID = '8d2f3c1e-5b4a-4c3d-9e8f-7a6b5c4d3e2f';

describe('container cgroup paths', () => {
  // Every layout kubelet and the runtimes produce, as /proc/PID/cgroup shows it.
  const layouts: Array<[string, string | undefined]> = [
    ['cgroup-v1-cgroupfs-containerd.txt', UID],
    ['cgroup-v2-cgroupfs-containerd-guaranteed.txt', UID],
    ['cgroup-v2-systemd-containerd.txt', UID],
    ['cgroup-v1-systemd-crio.txt', UID],
    ['cgroup-v2-systemd-cri-dockerd.txt', UID],
    ['cgroup-hybrid-cgroupfs-crio.txt', UID],
    ['cgroup-v2-containerd-bare.txt', undefined],
    ['cgroup-v1-containerd-default-ns.txt', undefined],
    ['cgroup-v1-docker.txt', undefined],
  ];

  test.each(layouts)('%s names the container and its pod', (file, podUid) => {
    const paths = parseProcCgroup(fixture(file))
      .map((m) => m.path)
      .filter((p) => p !== '/');
    expect(paths.length).toBeGreaterThan(0);
    for (const path of paths) {
      expect(containerIdOf(path)).toBe(ID);
      expect(podUidOf(path)).toBe(podUid);
    }
  });

  test.each(layouts)('%s is among the directories tried first', (file, podUid) => {
    const candidates = containerCgroupCandidates(ID, podUid).map((c) => `/${c}`);
    const path = parseProcCgroup(fixture(file)).find((m) => m.path !== '/')?.path;
    expect(candidates).toContain(path);
  });

  test.each([
    ['/kubepods/besteffort/pod8d2f3c1e-5b4a-4c3d-9e8f-7a6b5c4d3e2f/' + 'a'.repeat(64), ''],
    ['/kubelet/kubepods/burstable/pod8d2f3c1e-5b4a-4c3d-9e8f-7a6b5c4d3e2f/' + 'a'.repeat(64), 'kubelet'],
    ['/kubelet.slice/kubelet-kubepods.slice/x', undefined],
    ['/system.slice/containerd.service', undefined],
  ])('the kubelet cgroup root named by %s is %p', (path, root) => {
    expect(kubeletRootOf(path)).toBe(root);
  });

  test("a kubelet with its own cgroup root (kind's /kubelet): its pods' directories are tried first", () => {
    const podUid = '8d2f3c1e-5b4a-4c3d-9e8f-7a6b5c4d3e2f';
    const candidates = containerCgroupCandidates(ID, podUid, ['', 'kubelet']);
    expect(candidates).toContain(`kubelet/kubepods/besteffort/pod${podUid}/${ID}`);
    expect(candidates).toContain(`kubepods/besteffort/pod${podUid}/${ID}`);
    expect(candidates.indexOf(`kubelet/kubepods/besteffort/pod${podUid}/${ID}`)).toBeLessThan(candidates.indexOf(`k8s.io/${ID}`));
  });

  test('a host process names no container', () => {
    const [line] = parseProcCgroup(fixture('cgroup-v2-host-process.txt'));
    expect(line).toEqual({ hierarchyId: '0', controllers: [], path: '/system.slice/containerd.service' });
    expect(containerIdOf(line!.path)).toBeUndefined();
    expect(podUidOf(line!.path)).toBeUndefined();
  });

  test('a 63-digit or uppercase ID is not a container ID', () => {
    expect(containerIdOf(`/k8s.io/${ID.slice(1)}`)).toBeUndefined();
    expect(containerIdOf(`/k8s.io/${ID.toUpperCase()}`)).toBeUndefined();
    expect(containerIdOf(`/k8s.io/${ID}x`)).toBeUndefined();
  });

  test('v1 controller lists are split', () => {
    const lines = parseProcCgroup(fixture('cgroup-v1-cgroupfs-containerd.txt'));
    expect(lines.find((l) => l.hierarchyId === '10')?.controllers).toEqual(['cpu', 'cpuacct']);
  });
});

describe('cgroup mounts', () => {
  test('hybrid: every v1 hierarchy and the unified one', () => {
    expect(parseCgroupMounts(fixture('mountinfo-hybrid.txt'))).toEqual([
      { path: '/sys/fs/cgroup/cpu,cpuacct', version: 1, controllers: ['cpu', 'cpuacct'] },
      { path: '/sys/fs/cgroup/pids', version: 1, controllers: ['pids'] },
      { path: '/sys/fs/cgroup/systemd', version: 1, controllers: ['name=systemd'] },
      { path: '/sys/fs/cgroup/unified', version: 2, controllers: [] },
    ]);
  });

  test('only whole hierarchies, and the host view through a prefix', () => {
    expect(parseCgroupMounts(fixture('mountinfo-v2-container-private-ns.txt'), '/proc/1/root')).toEqual([
      { path: '/proc/1/root/sys/fs/cgroup', version: 2, controllers: [] },
    ]);
  });
});
