// Proves the integration harness itself: containerd from Debian, locally built images, and
// pods laid out exactly as kubelet lays them out (cgroups, namespaces, hostname, read-only
// root, stopped containers kept). The agent's tests build on these facts.
import { randomUUID } from 'node:crypto';
import { readFileSync, readlinkSync, statSync } from 'node:fs';
import { CriClient } from '../support/cri.js';
import {
  IMAGES,
  MARKERS,
  cgroupMounts,
  cgroupProcs,
  containerPid,
  createPod,
  podCgroupParent,
  stopContainer,
  waitContainerState,
  type Pod,
} from '../support/pods.js';

const HEX64 = /^[0-9a-f]{64}$/;
// jest ignores a project-level testTimeout (it is a global option), so each test says its own.
const T = 30_000;

let cri: CriClient;
const pods: Pod[] = [];

beforeAll(() => {
  cri = new CriClient();
});
afterAll(async () => {
  for (const p of pods) await p.remove().catch(() => undefined);
  cri.close();
}, T);

async function pod(spec: Parameters<typeof createPod>[1]): Promise<Pod> {
  const p = await createPod(cri, spec);
  pods.push(p);
  return p;
}

/** /proc/PID/cgroup as { hierarchy-id:controllers → path }. */
function procCgroups(pid: number): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().split('\n')) {
    const i = line.indexOf(':', line.indexOf(':') + 1);
    m.set(line.slice(0, i), line.slice(i + 1));
  }
  return m;
}

const nsInode = (pid: number, ns: string) => readlinkSync(`/proc/${pid}/ns/${ns}`);
const nspid = (pid: number) =>
  readFileSync(`/proc/${pid}/status`, 'utf8')
    .match(/^NSpid:\s*(.*)$/m)![1]!
    .trim()
    .split(/\s+/)
    .map(Number);
const sh = async (id: string, script: string) => {
  const r = await cri.execSync(id, ['/bin/sh', '-c', script], 10);
  return { code: r.exitCode, out: r.stdout.toString().trim(), err: r.stderr.toString().trim() };
};

describe('containerd', () => {
  test(
    'CRI answers, is ready, and has the locally built images',
    async () => {
      const v = await cri.version();
      expect(v.runtimeName).toBe('containerd');
      expect(v.runtimeApiVersion).toBe('v1');
      const { conditions } = await cri.status();
      expect(conditions.map((c) => [c.type, c.status])).toEqual(
        expect.arrayContaining([
          ['RuntimeReady', true],
          ['NetworkReady', true],
        ]),
      );
      for (const image of Object.values(IMAGES)) {
        expect(await cri.imageStatus(image)).toMatchObject({ repoTags: expect.arrayContaining([image]) });
      }
      expect(await cri.imageStatus('nsdebug.test/absent:1')).toBeNull();
    },
    T,
  );
});

describe('createPod', () => {
  test(
    'a besteffort busybox pod runs with kubelet cgroup layout, labels and a pod IP',
    async () => {
      const p = await pod({ name: 'web', image: IMAGES.busybox });
      expect(p.containers).toHaveLength(1);
      const c = p.container();
      expect(c.id).toMatch(HEX64);
      expect(p.sandboxId).toMatch(HEX64);
      expect(c.pid).toBeGreaterThan(1);
      expect(readFileSync(`/proc/${c.pid}/cmdline`, 'utf8').split('\0')).toEqual(['sleep', 'infinity', '']);

      const { status } = await cri.containerStatus(c.id);
      expect(status.state).toBe('CONTAINER_RUNNING');
      expect(status.labels).toMatchObject({
        'io.kubernetes.container.name': 'main',
        'io.kubernetes.pod.name': 'web',
        'io.kubernetes.pod.namespace': 'default',
        'io.kubernetes.pod.uid': p.podUid,
      });

      // The container's cgroup, in every v1 hierarchy and on the 0:: (cgroup2) line.
      const want = `/kubepods/besteffort/pod${p.podUid}/${c.id}`;
      expect(p.cgroupParent).toBe(`/kubepods/besteffort/pod${p.podUid}`);
      const cg = procCgroups(c.pid);
      expect(cg.get('0:')).toBe(want);
      const v1 = [...cg].filter(([k]) => !k.startsWith('0:'));
      expect(v1.length).toBeGreaterThan(0);
      for (const [k, path] of v1) expect([k, path]).toEqual([k, want]);
      expect(cgroupProcs(want)).toEqual([c.pid]);
      expect(await containerPid(cri, c.id)).toBe(c.pid);
      expect(await containerPid(cri, p.sandboxId)).toBe(p.sandboxPid);
      // The sandbox (pause) sits next to it in the same pod cgroup.
      expect(procCgroups(p.sandboxPid).get('0:')).toBe(`/kubepods/besteffort/pod${p.podUid}/${p.sandboxId}`);

      // Files of the image, seen through the host.
      expect(readFileSync(`/proc/${c.pid}/root/marker.txt`, 'utf8').trim()).toBe(MARKERS.busybox);

      // Network: an address from the harness subnet (a /16: its first two octets).
      const sb = await cri.podSandboxStatus(p.sandboxId);
      expect(sb.status.state).toBe('SANDBOX_READY');
      const [a, b] = (process.env.NSDEBUG_IT_SUBNET ?? '10.99.0.0/16').split('.');
      expect(sb.status.network?.ip).toMatch(new RegExp(`^${a}\\.${b}\\.\\d+\\.\\d+$`));
      expect(sb.status.labels['io.kubernetes.pod.uid']).toBe(p.podUid);
    },
    T,
  );

  test(
    'burstable and guaranteed pods get kubelet cgroup parents',
    async () => {
      const b = await pod({ name: 'burst', image: IMAGES.busybox, qos: 'burstable' });
      const g = await pod({ name: 'guar', image: IMAGES.busybox, qos: 'guaranteed' });
      expect(procCgroups(b.container().pid).get('0:')).toBe(`/kubepods/burstable/pod${b.podUid}/${b.container().id}`);
      expect(procCgroups(g.container().pid).get('0:')).toBe(`/kubepods/pod${g.podUid}/${g.container().id}`);
      const mem = cgroupMounts().find((m) => m.endsWith('/memory'));
      if (mem) {
        const limit = readFileSync(`${mem}/kubepods/pod${g.podUid}/${g.container().id}/memory.limit_in_bytes`, 'utf8');
        expect(Number(limit)).toBe(64 * 1024 * 1024);
      }
    },
    T,
  );

  test(
    'each container has its own PID namespace; the pod shares net, ipc and uts',
    async () => {
      const p = await pod({
        name: 'two',
        containers: [
          { name: 'a', image: IMAGES.busybox },
          { name: 'b', image: IMAGES.distroless },
        ],
      });
      const [a, b] = p.containers;
      for (const c of [a!, b!]) {
        expect(nsInode(c.pid, 'pid')).not.toBe(nsInode(p.sandboxPid, 'pid'));
        expect(nspid(c.pid).at(-1)).toBe(1); // init of its own PID namespace
        for (const ns of ['net', 'ipc', 'uts']) expect(nsInode(c.pid, ns)).toBe(nsInode(p.sandboxPid, ns));
        expect(nsInode(c.pid, 'mnt')).not.toBe(nsInode(p.sandboxPid, 'mnt'));
      }
      expect(nsInode(a!.pid, 'pid')).not.toBe(nsInode(b!.pid, 'pid'));
      expect(p.container('b').name).toBe('b');
    },
    T,
  );

  test(
    'shareProcessNamespace: containers join the sandbox PID namespace, pause is PID 1',
    async () => {
      const p = await pod({ name: 'shared', image: IMAGES.busybox, shareProcessNamespace: true });
      const c = p.container();
      expect(nsInode(c.pid, 'pid')).toBe(nsInode(p.sandboxPid, 'pid'));
      expect(nspid(p.sandboxPid).at(-1)).toBe(1);
      expect(nspid(c.pid).at(-1)).toBeGreaterThan(1);
      const ps = await sh(c.id, 'ps -o pid,args');
      expect(ps.out).toMatch(/^\s*1\s+\/pause/m);
    },
    T,
  );

  test(
    'hostname is the pod name',
    async () => {
      const p = await pod({ name: 'host-name-check', image: IMAGES.busybox });
      expect(await sh(p.container().id, 'hostname')).toMatchObject({ code: 0, out: 'host-name-check' });
    },
    T,
  );

  test(
    'a read-only root filesystem refuses writes',
    async () => {
      const p = await pod({ name: 'ro', image: IMAGES.busybox, readOnlyRootfs: true, runAsUser: 1000 });
      const c = p.container();
      const w = await sh(c.id, 'echo x > /written; echo rc=$?');
      expect(w.out).toBe('rc=1');
      expect(w.err).toMatch(/read-only file system/i);
      const rootLine = readFileSync(`/proc/${c.pid}/mountinfo`, 'utf8')
        .split('\n')
        .find((l) => l.split(' ')[4] === '/');
      expect(rootLine?.split(' ')[5]).toMatch(/(^|,)ro(,|$)/);
      expect(readFileSync(`/proc/${c.pid}/status`, 'utf8')).toMatch(/^Uid:\s+1000\s/m);
      expect(statSync(`/proc/${c.pid}/root/marker.txt`).isFile()).toBe(true);
    },
    T,
  );

  test(
    'the distroless image has no shell',
    async () => {
      const p = await pod({ name: 'nosh', image: IMAGES.distroless });
      const c = p.container();
      expect(readlinkSync(`/proc/${c.pid}/exe`)).toBe('/app');
      expect(readFileSync(`/proc/${c.pid}/root/marker.txt`, 'utf8').trim()).toBe(MARKERS.distroless);
      expect(statSync(`/proc/${c.pid}/root/bin/sh`, { throwIfNoEntry: false })).toBeUndefined();
      await expect(cri.execSync(c.id, ['/bin/sh', '-c', 'true'], 5)).rejects.toThrow(/no such file/i);
    },
    T,
  );

  test(
    'a stopped container is EXITED and still exists; remove() cleans up the pod cgroup',
    async () => {
      const p = await createPod(cri, { name: 'stopped', image: IMAGES.distroless });
      const c = p.container();
      const st = await stopContainer(cri, c.id, 5); // /app exits on SIGTERM
      expect(st.state).toBe('CONTAINER_EXITED');
      expect(st.exitCode).toBe(0);
      expect(Number(st.finishedAt)).toBeGreaterThan(0);
      expect((await cri.listContainers({ podSandboxId: p.sandboxId })).map((x) => [x.id, x.state])).toEqual([[c.id, 'CONTAINER_EXITED']]);
      expect(statSync(`/proc/${c.pid}`, { throwIfNoEntry: false })).toBeUndefined();

      // Killed (busybox's sleep ignores SIGTERM as PID 1): exit code 137.
      const q = await createPod(cri, { name: 'killed', image: IMAGES.busybox });
      expect((await stopContainer(cri, q.container().id, 0)).exitCode).toBe(137);

      // A container whose process exits by itself (a crash) keeps its exit code and its files.
      const r = await createPod(cri, {
        name: 'crashed',
        image: IMAGES.busybox,
        command: ['sh', '-c', 'echo bye | tee /last-words; exit 3'],
      });
      const crashed = await waitContainerState(cri, r.container().id, 'CONTAINER_EXITED');
      expect(crashed.exitCode).toBe(3);
      expect(crashed.reason).toBe('Error');
      // Its log, in kubelet's layout and CRI format, under $NSDEBUG_POD_LOG_ROOT.
      expect(crashed.logPath).toBe(`${process.env.NSDEBUG_POD_LOG_ROOT}/default_crashed_${r.podUid}/main/0.log`);
      expect(readFileSync(crashed.logPath, 'utf8')).toMatch(/^\S+ stdout F bye$/m);
      expect((await cri.podSandboxStatus(r.sandboxId)).status.state).toBe('SANDBOX_READY');

      for (const x of [p, q, r]) {
        await x.remove();
        await expect(cri.podSandboxStatus(x.sandboxId)).rejects.toThrow(/NOT_FOUND/);
        for (const m of cgroupMounts()) expect(statSync(`${m}${x.cgroupParent}`, { throwIfNoEntry: false })).toBeUndefined();
      }
    },
    T,
  );

  test(
    'a pod that cannot be created leaves nothing behind',
    async () => {
      const uid = randomUUID();
      await expect(createPod(cri, { name: 'broken', uid, image: 'nsdebug.test/absent:1' })).rejects.toThrow(/CreateContainer/);
      expect(await cri.listPodSandbox({ labelSelector: { 'io.kubernetes.pod.uid': uid } })).toEqual([]);
      for (const m of cgroupMounts())
        expect(statSync(`${m}${podCgroupParent('besteffort', uid)}`, { throwIfNoEntry: false })).toBeUndefined();
    },
    T,
  );
});
