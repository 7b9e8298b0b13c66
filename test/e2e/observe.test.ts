// `--read-only` (observe a running container without changing a byte), `--process PID` (enter a
// process's own namespaces, here a grandchild PID namespace made inside a container with
// `unshare --pid --fork --mount-proc`, as the seed material does with nsenter) and node/NAME (a
// shell in the node's own namespaces) on the real cluster.
import { hostname } from 'node:os';

import { clusterEnv, E2E_LABEL, isReady, kubectl, kubectlJson, waitFor, type PodJson } from './helpers/kube.js';

clusterEnv();
const IMAGE = process.env.NSDEBUG_AGENT_IMAGE ?? 'nsdebug.local/agent:dev';
const PRIVILEGED_NS = 'nsdebug-e2e-nested';
const lines = (v: unknown) =>
  String(v ?? '')
    .split('\n')
    .filter(Boolean);

beforeAll(async () => {
  const install = await kubectl(['nsdebug', 'install', '--image', IMAGE, '--timeout', '3m']);
  if (install.exitCode !== 0) throw new Error(`kubectl nsdebug install: ${String(install.stderr)}`);
  // unshare needs CAP_SYS_ADMIN: a namespace of its own that PodSecurity lets run it
  const objects = [
    {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: PRIVILEGED_NS, labels: { [E2E_LABEL]: 'true', 'pod-security.kubernetes.io/enforce': 'privileged' } },
    },
    {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'nested', namespace: PRIVILEGED_NS },
      spec: {
        terminationGracePeriodSeconds: 0,
        containers: [
          {
            name: 'app',
            image: 'nsdebug.test/busybox:1',
            imagePullPolicy: 'Never',
            command: ['unshare', '--pid', '--fork', '--mount-proc', 'sh', '-c', 'sleep 3601 & sleep 3602'],
            securityContext: { privileged: true },
          },
        ],
      },
    },
  ];
  const r = await kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }) });
  if (r.exitCode !== 0) throw new Error(`kubectl apply: ${String(r.stderr)}`);
  await waitFor('pod nested Ready', async () => isReady(await kubectlJson<PodJson>(['-n', PRIVILEGED_NS, 'get', 'pod', 'nested'])));
}, 300_000);

afterAll(async () => {
  await kubectl(['delete', 'namespace', PRIVILEGED_NS, '--wait=false']);
});

describe('kubectl nsdebug --read-only', () => {
  test("every write fails with EROFS, reads work, and the container's own view stays writable", async () => {
    const r = await kubectl([
      'nsdebug',
      '-n',
      'demo',
      'pod/busybox',
      '--read-only',
      '--',
      'sh',
      '-c',
      'cat /marker.txt; touch /tmp/nsdebug-ro 2>&1',
    ]);
    expect([r.exitCode, lines(r.stdout)]).toEqual([1, ['nsdebug-marker', 'touch: /tmp/nsdebug-ro: Read-only file system']]);
    const ls = await kubectl([
      '-n',
      'demo',
      'exec',
      'busybox',
      '--',
      'sh',
      '-c',
      'ls /tmp/nsdebug-ro 2>&1; touch /tmp/w && rm /tmp/w && echo writable',
    ]);
    expect(lines(ls.stdout)).toEqual(['ls: /tmp/nsdebug-ro: No such file or directory', 'writable']);
  }, 120_000);
});

describe('kubectl nsdebug --process PID', () => {
  test('ps shows the nesting; --process enters the grandchild PID namespace, where ps sees only it', async () => {
    const ps = await kubectl(['nsdebug', '-n', PRIVILEGED_NS, 'ps', 'pod/nested', '-o', 'json']);
    expect(ps.exitCode).toBe(0);
    const procs = JSON.parse(String(ps.stdout)) as Array<{ nsPids: number[]; command: string }>;
    const sleeper = procs.find((p) => p.command === 'sleep 3601');
    // host PID, PID in the container, PID in the nested namespace
    expect(sleeper?.nsPids).toHaveLength(3);
    const inside = sleeper!.nsPids[1]!;

    const r = await kubectl(['nsdebug', '-n', PRIVILEGED_NS, 'pod/nested', '--process', String(inside), '--', 'ps', '-o', 'pid,args']);
    expect(r.exitCode).toBe(0);
    const [header, ...rows] = lines(r.stdout).map((l) => l.trim().replace(/\s+/g, ' '));
    expect(header).toBe('PID COMMAND');
    const commands = rows.map((row) => row.replace(/^\d+ /, ''));
    // the nested namespace's PID 1 (the shell exec'd its last command), its child, and the session
    expect([...commands].sort()).toEqual(['nsdebug-init', 'ps -o pid,args', 'sleep 3601', 'sleep 3602']);
    expect(rows).toContainEqual('1 sleep 3602');
    // the container's own PID 1 (unshare) lives outside this namespace: not listed
    expect(commands.some((c) => c.startsWith('unshare'))).toBe(false);

    const missing = await kubectl(['nsdebug', '-n', PRIVILEGED_NS, 'pod/nested', '--process', '4242', '--', 'true']);
    expect(missing.exitCode).toBe(65);
    expect(lines(missing.stderr)).toEqual([expect.stringMatching(/no process 4242 in container [0-9a-f]{12}: see `kubectl nsdebug ps`/)]);
  }, 120_000);
});

describe('kubectl nsdebug node/NAME', () => {
  test("a shell in the node's own namespaces: its files, its hostname, its processes; audited", async () => {
    const node = (await kubectlJson<{ items: Array<{ metadata: { name: string } }> }>(['get', 'nodes'])).items[0]!.metadata.name;
    const r = await kubectl(['nsdebug', `node/${node}`], {
      input:
        'hostname; test -d /var/lib/nsdebug-cluster/kubelet && echo node-files; pgrep -x kubelet >/dev/null && echo kubelet-visible\nexit 0\n',
    });
    expect([r.exitCode, lines(r.stdout)]).toEqual([0, [hostname(), 'node-files', 'kubelet-visible']]);
    const pod = String((await kubectl(['-n', 'nsdebug-system', 'get', 'pods', '-o', 'jsonpath={.items[0].metadata.name}'])).stdout);
    const audit = lines((await kubectl(['-n', 'nsdebug-system', 'logs', pod, '-c', 'agent'])).stdout).filter((l) =>
      l.includes(`"node":"${node}"`),
    );
    expect(audit.length).toBeGreaterThan(0);
    expect(JSON.parse(audit.at(-1)!)).toMatchObject({ msg: 'session', node, exitCode: 0 });
  }, 120_000);
});
