// A session is confined like the process it enters (what `kubectl exec` gives), and nothing a
// tenant puts in its container can block or mislead the agent. Every check is made from outside
// nsdebug: `kubectl exec` into the same container gives its own confinement to compare with.
import { execa } from 'execa';

import { busyboxPod, INSTALL_SETUP_MS, installAgent, kubectl, kubectlJson, type PodJson, waitFor } from './helpers/kube.js';
import { agentPodOn, onNode, pgrepOn, slow, targetNode } from './helpers/node.js';

const NODE = targetNode();
const NS = NODE.namespace;
const nsdebug = (args: string[], opts: Parameters<typeof kubectl>[1] = {}) => kubectl(['nsdebug', '-n', NS, ...args], opts);
const text = (v: unknown) => String(v ?? '');
const STATUS_FIELDS = /^(Uid|Gid|Groups|CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):/;
const statusOf = (out: unknown) =>
  text(out)
    .split('\n')
    .filter((l) => STATUS_FIELDS.test(l));

/** A restricted-compliant busybox pod (UID 1000, group 2000, no capabilities, RuntimeDefault) running script. */
const restrictedPod = (name: string, script: string, emptyDirs?: Record<string, string>) =>
  busyboxPod(name, NS, script, { restart: 'Always', user: 1000, supplementalGroups: [2000], ...(emptyDirs ? { emptyDirs } : {}) });

async function runPod(pod: ReturnType<typeof restrictedPod>): Promise<void> {
  const r = await kubectl(['apply', '-f', '-'], { input: JSON.stringify(pod) });
  if (r.exitCode !== 0) throw new Error(`kubectl apply ${pod.metadata.name}: ${text(r.stderr)}`);
  await waitFor(`pod ${pod.metadata.name} running`, async () => {
    const p = await kubectlJson<PodJson>(['-n', NS, 'get', 'pod', pod.metadata.name]);
    return p.status.containerStatuses?.[0]?.state.running !== undefined;
  });
}

beforeAll(async () => {
  await installAgent();
  await runPod(restrictedPod('confined', 'sleep infinity'));
  // a tenant's hostile files: /etc/passwd a FIFO nobody writes, a symlink to a device
  await runPod(
    restrictedPod('tenant', 'mkfifo /etc/passwd /etc/fifo && ln -s /dev/zero /etc/zero && exec sleep infinity', { etc: '/etc' }),
  );
}, INSTALL_SETUP_MS);

afterAll(async () => {
  await kubectl(['-n', NS, 'delete', 'pod', 'confined', 'tenant', '--grace-period=0', '--wait=false', '--ignore-not-found']);
});

describe("a session has the target's confinement, not the agent's", () => {
  test('credentials, capabilities, no_new_privs and seccomp equal the container init’s, as kubectl exec sees them', async () => {
    const script = 'grep -E "^(Uid|Gid|Groups|CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):" /proc/1/status';
    const outside = await kubectl(['-n', NS, 'exec', 'confined', '--', 'sh', '-c', script]);
    expect(outside.exitCode).toBe(0);
    const init = statusOf(outside.stdout);
    expect(init).toContain('CapEff:\t0000000000000000');
    expect(init).toContain('Seccomp:\t2');

    for (const flags of [[], ['--tools']]) {
      const session = await nsdebug(['pod/confined', ...flags, '--', 'sh', '-c', script.replace('/proc/1/', '/proc/self/')]);
      expect([session.exitCode, text(session.stderr)]).toEqual([0, '']);
      expect(statusOf(session.stdout)).toEqual(init);
    }
    const id = await nsdebug(['pod/confined', '--', 'id']);
    expect(text(id.stdout).trim()).toMatch(/^uid=1000 gid=1000 groups=(1000,)?2000/);
  }, 60_000);

  test("its processes live in the container's cgroups (its limits and devices hold), as the node's /proc shows", async () => {
    const pod = await kubectlJson<PodJson>(['-n', NS, 'get', 'pod', 'confined']);
    const id = (pod.status.containerStatuses?.[0]?.containerID ?? '').replace(/^\w+:\/\//, '');
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    const session = nsdebug(['pod/confined', '--', 'sleep', '7321']);
    try {
      const pid = await waitFor('the session on the node', async () => {
        const [first] = await pgrepOn(NODE.name, 'sleep 7321', ['-x']);
        return first;
      });
      const lines = String((await onNode(NODE.name, ['cat', `/proc/${pid}/cgroup`])).stdout)
        .trim()
        .split('\n');
      expect(lines.length).toBeGreaterThan(0);
      // cgroupfs names the container's cgroup by its ID, systemd as the scope cri-containerd-ID.scope
      for (const line of lines) expect(line).toMatch(new RegExp(`/(cri-containerd-)?${id}(\\.scope)?(/nsdebug-session-[^/]+)?$`));
      expect(lines.filter((l) => l.includes('/nsdebug-session-'))).toHaveLength(1);
    } finally {
      await onNode(NODE.name, ['pkill', '-x', '-f', 'sleep 7321']);
      await session;
    }
  }, 60_000);

  test('what the container may not do, the session may not either: mknod, a new mount namespace, mount', async () => {
    const r = await nsdebug([
      'pod/confined',
      '--',
      'sh',
      '-c',
      'mknod /tmp/x b 7 0 && echo MKNOD; unshare -m true && echo UNSHARE; mount -t tmpfs none /tmp && echo MOUNT; exit 0',
    ]);
    expect(r.exitCode).toBe(0);
    expect(text(r.stdout)).toBe('');
    expect(text(r.stderr)).toMatch(/mknod: \/tmp\/x: Operation not permitted/);
    expect(text(r.stderr)).toMatch(/unshare: .*Operation not permitted/);
  }, 60_000);

  test('--read-only stays read-only: the session cannot remount its copy of the tree', async () => {
    const r = await nsdebug([
      'pod/confined',
      '--read-only',
      '--',
      'sh',
      '-c',
      'mount -o remount,rw / && echo REMOUNTED; touch /tmp/y && echo WROTE; exit 0',
    ]);
    expect(r.exitCode).toBe(0);
    expect(text(r.stdout)).toBe('');
    expect(text(r.stderr)).toMatch(/Read-only file system/);
  }, 60_000);

  test('--privileged (admin only) keeps the agent’s power, says so, and is audited', async () => {
    const r = await nsdebug(['pod/confined', '--privileged', '--', 'sh', '-c', 'id -u; grep -E "^(CapEff|Seccomp):" /proc/self/status']);
    expect(r.exitCode).toBe(0);
    expect(text(r.stderr)).toMatch(/^nsdebug: --privileged: this session has the agent's full privileges on node \S+$/m);
    const [uid, capEff, seccomp] = text(r.stdout).trim().split('\n');
    expect(uid).toBe('0');
    expect(capEff).not.toBe('CapEff:\t0000000000000000');
    expect(seccomp).toBe('Seccomp:\t0');
    const logs = await kubectl(['-n', 'nsdebug-system', 'logs', await agentPodOn(NODE.name), '--tail', '30']);
    const audit = text(logs.stdout)
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.msg === 'session' && l.pod === `${NS}/confined`);
    expect(audit.at(-1)).toMatchObject({ privileged: true, exitCode: 0 });
  }, 60_000);
});

describe("cp works with the container's permissions, not the agent's", () => {
  test('a file the container cannot read (mode 000), nsdebug cannot either; nor write where it may not', async () => {
    const made = await kubectl(['-n', NS, 'exec', 'confined', '--', 'sh', '-c', 'echo secret > /tmp/secret && chmod 000 /tmp/secret']);
    expect(made.exitCode).toBe(0);
    const out = await nsdebug(['cp', 'pod/confined:/tmp/secret', '-']);
    expect([out.exitCode, text(out.stdout)]).toEqual([73, '']);
    expect(text(out.stderr)).toMatch(/\/tmp\/secret: permission denied/);
    const into = await nsdebug(['cp', '/etc/hostname', 'pod/confined:/etc/copied']);
    expect(into.exitCode).toBe(73);
    expect(text(into.stderr)).toMatch(/\/etc\/copied: permission denied/);
    // where it may write, the copy belongs to the container's user
    const ok = await nsdebug(['cp', '/etc/hostname', 'pod/confined:/tmp/copied']);
    expect([ok.exitCode, text(ok.stderr)]).toEqual([0, '']);
    const owner = await kubectl(['-n', NS, 'exec', 'confined', '--', 'stat', '-c', '%u:%g', '/tmp/copied']);
    expect(text(owner.stdout).trim()).toBe('1000:1000');
  }, 60_000);
});

describe("a tenant's files cannot block or mislead the agent", () => {
  const timed = async (args: string[]) => {
    const started = Date.now();
    const r = await nsdebug(args);
    return { ...r, ms: Date.now() - started };
  };

  test('ps with a FIFO as /etc/passwd answers at once, with numeric users', async () => {
    const r = await timed(['ps', 'pod/tenant', '-o', 'json']);
    expect([r.exitCode, text(r.stderr)]).toEqual([0, '']);
    expect(r.ms).toBeLessThan(slow(5000));
    const processes = JSON.parse(text(r.stdout)) as Array<{ user: string; command: string }>;
    expect(processes.find((p) => p.command === 'sleep infinity')?.user).toBe('1000');
  }, 30_000);

  test.each([
    ['/etc/fifo', /\/etc\/fifo: not a regular file \(a FIFO\)/],
    ['/etc/zero', /\/etc\/zero: not a regular file \(a device\)/],
    ['/proc/1/pagemap', /\/proc\/1\/pagemap: a file of the kernel \(proc\)/],
    // runc masks /proc/kmsg with /dev/null: a device, or the kernel's file where it does not
    ['/proc/kmsg', /\/proc\/kmsg: (a file of the kernel \(proc\)|not a regular file \(a device\))/],
  ])(
    'cp of %s fails at once with what it is',
    async (path, message) => {
      const r = await timed(['cp', `pod/tenant:${path}`, '-']);
      expect(r.exitCode).toBe(73);
      expect(text(r.stderr)).toMatch(message);
      expect(r.ms).toBeLessThan(slow(5000));
    },
    30_000,
  );

  test("meanwhile another user's session on the same node works", async () => {
    const other = await execa('kubectl', ['nsdebug', '-n', NS, 'pod/busybox', '--', 'cat', '/etc/hostname'], { reject: false });
    expect([other.exitCode, other.stdout.trim()]).toEqual([0, 'busybox']);
  }, 30_000);
});
